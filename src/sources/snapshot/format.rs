//! Byte-level layout of the `.gss` snapshot format, version 1.
//!
//! This module is the only place in gospy that turns capture structures into
//! bytes and back. Everything here is pure (no I/O): fixed little-endian
//! records for the preamble, chunk table and region index, bincode for the
//! capture metadata, zstd for chunk payloads and CRC-32 for integrity.
//! `snapshot-format.md` at the crate root is the normative description; keep
//! the two in sync (a test decodes the worked example printed there).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::SnapshotError;
use crate::model::{
    Aarch64Regs, Arch, CaptureFlags, CaptureMeta, MapEntry, RegionKind, Regs, ThreadInfo,
    UnstableG, NON_BLOCKING_NOTE, REDACTED_NOTE, REDACTED_PREFIX, UNSTABLE_PREFIX,
};

/// First eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"GOSPYSS\0";
/// Format (major) version written by this code; readers reject larger ones.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the version-1 preamble, including its trailing CRC.
pub const PREAMBLE_LEN: usize = 128;
/// Largest preamble a reader accepts (future versions may append fields).
pub const MAX_PREAMBLE_LEN: u32 = 4096;
/// Size of one chunk table entry.
pub const CHUNK_ENTRY_LEN: usize = 24;
/// Size of one region index entry.
pub const REGION_ENTRY_LEN: usize = 32;

/// `optional_flags` bit: an embedded executable is present.
pub const FLAG_HAS_BINARY: u32 = 1 << 0;
/// `required_flags` bits this reader understands (none in version 1).
pub const KNOWN_REQUIRED_FLAGS: u32 = 0;

/// Default zstd level for chunks and the embedded binary.
pub const DEFAULT_LEVEL: i32 = 3;
/// Default target uncompressed chunk size.
pub const DEFAULT_CHUNK_SIZE: usize = 2 << 20;
/// Range the writer clamps `WriteOptions::chunk_size` to.
pub const MIN_CHUNK_SIZE: usize = 64 << 10;
pub const MAX_CHUNK_SIZE: usize = 16 << 20;

// Reader sanity limits. A file exceeding them is rejected up front with a
// clear error instead of making the reader allocate absurd amounts. The
// writer refuses to produce files that break them.
/// Largest encoded capture metadata.
pub const MAX_HEADER_LEN: u64 = 32 << 20;
/// Largest uncompressed size of one chunk.
pub const MAX_CHUNK_RAW: u32 = 64 << 20;
/// Most chunks in one file (16 Mi chunks of 2 MiB is 32 TiB).
pub const MAX_CHUNKS: u64 = 1 << 24;
/// Most regions in one file.
pub const MAX_REGIONS: u64 = 1 << 26;
/// Largest embedded executable (uncompressed).
pub const MAX_BINARY_RAW: u64 = 4 << 30;
/// Total uncompressed bytes (chunks + binary) may be at most
/// `max(RAW_ALLOWANCE, file_len * MAX_EXPANSION)`, and never above
/// `MAX_TOTAL_RAW`.
pub const RAW_ALLOWANCE: u64 = 4 << 30;
pub const MAX_EXPANSION: u64 = 1024;
pub const MAX_TOTAL_RAW: u64 = 1 << 40;

/// CRC-32/ISO-HDLC (the zlib/PNG/Ethernet CRC), as `crc32fast` computes it.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// How many uncompressed bytes a file of `file_len` bytes may declare.
pub fn raw_budget(file_len: u64) -> u64 {
    RAW_ALLOWANCE
        .max(file_len.saturating_mul(MAX_EXPANSION))
        .min(MAX_TOTAL_RAW)
}

// ---------------------------------------------------------------------------
// Region kinds
// ---------------------------------------------------------------------------

/// All region kinds, in the order of their on-disk codes (0..=7).
pub const ALL_KINDS: [RegionKind; 8] = [
    RegionKind::Data,
    RegionKind::Allgs,
    RegionKind::G,
    RegionKind::Stack,
    RegionKind::P,
    RegionKind::M,
    RegionKind::Heap,
    RegionKind::Other,
];

/// The on-disk code of a region kind.
pub fn kind_code(kind: RegionKind) -> u8 {
    match kind {
        RegionKind::Data => 0,
        RegionKind::Allgs => 1,
        RegionKind::G => 2,
        RegionKind::Stack => 3,
        RegionKind::P => 4,
        RegionKind::M => 5,
        RegionKind::Heap => 6,
        RegionKind::Other => 7,
    }
}

/// The region kind for an on-disk code. Codes this version does not know
/// (written by a newer minor revision) read as `Other`: kinds are
/// informative only.
pub fn kind_from_code(code: u8) -> RegionKind {
    ALL_KINDS
        .get(usize::from(code))
        .copied()
        .unwrap_or(RegionKind::Other)
}

// ---------------------------------------------------------------------------
// Preamble
// ---------------------------------------------------------------------------

/// The fixed-size record at offset 0. All integers little-endian; see the
/// table in snapshot-format.md.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preamble {
    pub version: u32,
    pub preamble_len: u32,
    pub required_flags: u32,
    pub optional_flags: u32,
    pub file_len: u64,
    pub header_off: u64,
    pub header_len: u64,
    pub chunk_table_off: u64,
    pub chunk_count: u64,
    pub region_index_off: u64,
    pub region_count: u64,
    pub binary_off: u64,
    pub binary_comp_len: u64,
    pub binary_raw_len: u64,
    pub header_crc: u32,
    pub chunk_table_crc: u32,
    pub region_index_crc: u32,
    pub binary_comp_crc: u32,
    pub binary_raw_crc: u32,
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Preamble {
    pub fn has_binary(&self) -> bool {
        self.optional_flags & FLAG_HAS_BINARY != 0
    }

    /// The 128 bytes of a version-1 preamble, CRC included. `version`,
    /// `preamble_len` are written as 1 and 128 whatever the struct says.
    pub fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut b = [0u8; PREAMBLE_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        let u32s: [(usize, u32); 7] = [
            (8, FORMAT_VERSION),
            (12, PREAMBLE_LEN as u32),
            (16, self.required_flags),
            (20, self.optional_flags),
            (104, self.header_crc),
            (108, self.chunk_table_crc),
            (112, self.region_index_crc),
        ];
        for (off, v) in u32s {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[116..120].copy_from_slice(&self.binary_comp_crc.to_le_bytes());
        b[120..124].copy_from_slice(&self.binary_raw_crc.to_le_bytes());
        let u64s: [(usize, u64); 10] = [
            (24, self.file_len),
            (32, self.header_off),
            (40, self.header_len),
            (48, self.chunk_table_off),
            (56, self.chunk_count),
            (64, self.region_index_off),
            (72, self.region_count),
            (80, self.binary_off),
            (88, self.binary_comp_len),
            (96, self.binary_raw_len),
        ];
        for (off, v) in u64s {
            b[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        let crc = crc32(&b[..PREAMBLE_LEN - 4]);
        b[PREAMBLE_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// How many leading bytes of the file [`Preamble::decode`] wants to see:
    /// `min(file_len, MAX_PREAMBLE_LEN)`.
    pub fn prefix_len(file_len: u64) -> usize {
        file_len.min(u64::from(MAX_PREAMBLE_LEN)) as usize
    }

    /// Parse and check the preamble. `prefix` holds the first
    /// [`Preamble::prefix_len`] bytes of a file of `file_len` bytes.
    ///
    /// Checks, in order: magic, preamble length, preamble CRC, version,
    /// required flags, file length, then that every section lies inside the
    /// file and every count and size is within the reader's limits.
    pub fn decode(prefix: &[u8], file_len: u64) -> Result<Preamble, SnapshotError> {
        let n = prefix.len();
        if n < MAGIC.len() {
            // Too short to tell: a prefix of the magic is a truncated snapshot.
            return if prefix == &MAGIC[..n] && n > 0 {
                Err(SnapshotError::Truncated {
                    expected: PREAMBLE_LEN as u64,
                    actual: file_len,
                })
            } else {
                Err(SnapshotError::BadMagic)
            };
        }
        if prefix[..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        // Best guess of the intended size for truncation messages.
        let claimed_len = if n >= 32 {
            le_u64(prefix, 24)
        } else {
            PREAMBLE_LEN as u64
        };
        if n < 16 {
            return Err(SnapshotError::Truncated {
                expected: claimed_len,
                actual: file_len,
            });
        }
        let version = le_u32(prefix, 8);
        let preamble_len = le_u32(prefix, 12);
        if !(20..=MAX_PREAMBLE_LEN).contains(&preamble_len) {
            // Either corrupted, or a layout this reader cannot even frame.
            if version > FORMAT_VERSION {
                return Err(SnapshotError::UnsupportedVersion {
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            return Err(corrupt(format!(
                "preamble length {preamble_len} is out of range"
            )));
        }
        let plen = preamble_len as usize;
        if n < plen {
            return Err(SnapshotError::Truncated {
                expected: claimed_len.max(plen as u64),
                actual: file_len,
            });
        }
        let stored = le_u32(prefix, plen - 4);
        if crc32(&prefix[..plen - 4]) != stored {
            return Err(SnapshotError::Checksum {
                what: "preamble".into(),
            });
        }
        if version > FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(corrupt("format version 0 does not exist".into()));
        }
        if plen < PREAMBLE_LEN {
            return Err(corrupt(format!(
                "preamble is {plen} bytes, version 1 needs {PREAMBLE_LEN}"
            )));
        }
        let p = Preamble {
            version,
            preamble_len,
            required_flags: le_u32(prefix, 16),
            optional_flags: le_u32(prefix, 20),
            file_len: le_u64(prefix, 24),
            header_off: le_u64(prefix, 32),
            header_len: le_u64(prefix, 40),
            chunk_table_off: le_u64(prefix, 48),
            chunk_count: le_u64(prefix, 56),
            region_index_off: le_u64(prefix, 64),
            region_count: le_u64(prefix, 72),
            binary_off: le_u64(prefix, 80),
            binary_comp_len: le_u64(prefix, 88),
            binary_raw_len: le_u64(prefix, 96),
            header_crc: le_u32(prefix, 104),
            chunk_table_crc: le_u32(prefix, 108),
            region_index_crc: le_u32(prefix, 112),
            binary_comp_crc: le_u32(prefix, 116),
            binary_raw_crc: le_u32(prefix, 120),
        };
        let unknown = p.required_flags & !KNOWN_REQUIRED_FLAGS;
        if unknown != 0 {
            return Err(SnapshotError::UnsupportedFeatures { flags: unknown });
        }
        if p.file_len > file_len {
            return Err(SnapshotError::Truncated {
                expected: p.file_len,
                actual: file_len,
            });
        }
        if p.file_len < file_len {
            return Err(SnapshotError::TrailingData {
                expected: p.file_len,
                actual: file_len,
            });
        }
        p.check_sections()?;
        Ok(p)
    }

    /// Every section inside the file, every count within limits.
    fn check_sections(&self) -> Result<(), SnapshotError> {
        let body = u64::from(self.preamble_len);
        let section = |name: &str, off: u64, len: u64| -> Result<(), SnapshotError> {
            match off.checked_add(len) {
                Some(end) if off >= body && end <= self.file_len => Ok(()),
                _ => Err(corrupt(format!(
                    "{name} ({len} bytes at offset {off}) lies outside the {} byte file",
                    self.file_len
                ))),
            }
        };
        if self.header_len > MAX_HEADER_LEN {
            return Err(SnapshotError::Limit(format!(
                "capture metadata is {} bytes, the limit is {MAX_HEADER_LEN}",
                self.header_len
            )));
        }
        section("capture metadata", self.header_off, self.header_len)?;
        if self.chunk_count > MAX_CHUNKS {
            return Err(SnapshotError::Limit(format!(
                "{} chunks declared, the limit is {MAX_CHUNKS}",
                self.chunk_count
            )));
        }
        // Cannot overflow: chunk_count <= 2^24.
        section(
            "chunk table",
            self.chunk_table_off,
            self.chunk_count * CHUNK_ENTRY_LEN as u64,
        )?;
        if self.region_count > MAX_REGIONS {
            return Err(SnapshotError::Limit(format!(
                "{} regions declared, the limit is {MAX_REGIONS}",
                self.region_count
            )));
        }
        section(
            "region index",
            self.region_index_off,
            self.region_count * REGION_ENTRY_LEN as u64,
        )?;
        if self.has_binary() {
            if self.binary_raw_len > MAX_BINARY_RAW {
                return Err(SnapshotError::Limit(format!(
                    "embedded binary is {} bytes uncompressed, the limit is {MAX_BINARY_RAW}",
                    self.binary_raw_len
                )));
            }
            section("embedded binary", self.binary_off, self.binary_comp_len)?;
        }
        Ok(())
    }
}

fn corrupt(msg: String) -> SnapshotError {
    SnapshotError::Corrupt(msg)
}

// ---------------------------------------------------------------------------
// Chunk table and region index
// ---------------------------------------------------------------------------

/// One chunk table entry: where a zstd frame lies and what it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Absolute file offset of the compressed frame.
    pub file_offset: u64,
    /// Compressed size (bytes of the zstd frame).
    pub comp_len: u32,
    /// Uncompressed size.
    pub raw_len: u32,
    /// CRC-32 of the compressed bytes.
    pub comp_crc: u32,
    /// CRC-32 of the uncompressed bytes.
    pub raw_crc: u32,
}

impl ChunkEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.file_offset.to_le_bytes());
        out.extend_from_slice(&self.comp_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.comp_crc.to_le_bytes());
        out.extend_from_slice(&self.raw_crc.to_le_bytes());
    }
    /// `b` is exactly [`CHUNK_ENTRY_LEN`] bytes.
    pub fn decode(b: &[u8]) -> ChunkEntry {
        ChunkEntry {
            file_offset: le_u64(b, 0),
            comp_len: le_u32(b, 8),
            raw_len: le_u32(b, 12),
            comp_crc: le_u32(b, 16),
            raw_crc: le_u32(b, 20),
        }
    }
}

/// One region index entry: a captured address range and where its bytes are.
///
/// The bytes of a region are `len` consecutive bytes of the *data stream*
/// (all chunks' uncompressed contents concatenated in chunk order), starting
/// at byte `offset` of chunk `chunk`. A region longer than the rest of its
/// chunk continues in the following chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionEntry {
    pub addr: u64,
    pub len: u64,
    pub kind: RegionKind,
    /// First chunk holding the region (0 and meaningless when `len == 0`).
    pub chunk: u32,
    /// Offset of the first byte in that chunk's uncompressed data.
    pub offset: u32,
}

impl RegionEntry {
    /// End address (exclusive). Never overflows for a validated entry.
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.len)
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.addr.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.chunk.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.push(kind_code(self.kind));
        out.extend_from_slice(&[0u8; 7]);
    }
    /// `b` is exactly [`REGION_ENTRY_LEN`] bytes.
    pub fn decode(b: &[u8]) -> RegionEntry {
        RegionEntry {
            addr: le_u64(b, 0),
            len: le_u64(b, 8),
            chunk: le_u32(b, 16),
            offset: le_u32(b, 20),
            kind: kind_from_code(b[24]),
        }
    }
}

/// Parse the chunk table and check every entry against the file and the
/// limits. Returns the entries and, per chunk, its start in the data stream
/// (one extra element at the end: the stream's total length).
pub fn decode_chunk_table(
    bytes: &[u8],
    p: &Preamble,
) -> Result<(Vec<ChunkEntry>, Vec<u64>), SnapshotError> {
    let mut chunks = Vec::with_capacity(bytes.len() / CHUNK_ENTRY_LEN);
    let mut starts = Vec::with_capacity(chunks.capacity() + 1);
    let mut total: u64 = 0;
    let budget = raw_budget(p.file_len);
    for (i, b) in bytes.chunks_exact(CHUNK_ENTRY_LEN).enumerate() {
        let c = ChunkEntry::decode(b);
        if c.raw_len > MAX_CHUNK_RAW {
            return Err(SnapshotError::Limit(format!(
                "chunk {i} declares {} uncompressed bytes, the limit is {MAX_CHUNK_RAW}",
                c.raw_len
            )));
        }
        let inside = c
            .file_offset
            .checked_add(u64::from(c.comp_len))
            .is_some_and(|end| c.file_offset >= u64::from(p.preamble_len) && end <= p.file_len);
        if !inside {
            return Err(corrupt(format!(
                "chunk {i} ({} bytes at offset {}) lies outside the {} byte file",
                c.comp_len, c.file_offset, p.file_len
            )));
        }
        starts.push(total);
        total += u64::from(c.raw_len); // <= 2^24 * 2^26: no overflow
        chunks.push(c);
    }
    starts.push(total);
    let declared = total.saturating_add(if p.has_binary() { p.binary_raw_len } else { 0 });
    if declared > budget {
        return Err(SnapshotError::Limit(format!(
            "snapshot declares {declared} uncompressed bytes in a {} byte file (at most {budget} allowed)",
            p.file_len
        )));
    }
    Ok((chunks, starts))
}

/// Parse the region index and check every entry: address range does not
/// wrap, and its bytes lie inside the data stream described by `starts`
/// (from [`decode_chunk_table`]).
pub fn decode_region_index(
    bytes: &[u8],
    chunks: &[ChunkEntry],
    starts: &[u64],
) -> Result<Vec<RegionEntry>, SnapshotError> {
    let stream_len = starts.last().copied().unwrap_or(0);
    let mut regions = Vec::with_capacity(bytes.len() / REGION_ENTRY_LEN);
    for (i, b) in bytes.chunks_exact(REGION_ENTRY_LEN).enumerate() {
        let r = RegionEntry::decode(b);
        if r.addr.checked_add(r.len).is_none() {
            return Err(corrupt(format!(
                "region {i} at {:#x} with length {} wraps around the address space",
                r.addr, r.len
            )));
        }
        if r.len > 0 {
            let c = chunks.get(r.chunk as usize).ok_or_else(|| {
                corrupt(format!(
                    "region {i} at {:#x} refers to chunk {} of {}",
                    r.addr,
                    r.chunk,
                    chunks.len()
                ))
            })?;
            if r.offset >= c.raw_len {
                return Err(corrupt(format!(
                    "region {i} at {:#x} starts at offset {} of chunk {} which holds {} bytes",
                    r.addr, r.offset, r.chunk, c.raw_len
                )));
            }
            let start = starts[r.chunk as usize] + u64::from(r.offset);
            if r.len > stream_len - start {
                return Err(corrupt(format!(
                    "region {i} at {:#x} ({} bytes) runs past the end of the data",
                    r.addr, r.len
                )));
            }
        }
        regions.push(r);
    }
    Ok(regions)
}

// ---------------------------------------------------------------------------
// Capture metadata (bincode)
// ---------------------------------------------------------------------------
//
// The wire structs below *are* the format: their field order and types define
// the bytes (see snapshot-format.md, "Capture metadata"). They mirror the
// model types but are decoupled from them, so that a change to model.rs cannot
// silently change the file format: the conversions destructure exhaustively
// and stop compiling when a model field is added or removed.
//
// Decoding borrows strings from the input (`&'a str`): bincode then checks
// each declared length against the bytes actually present before anything is
// allocated, and serde preallocates sequences cautiously (<= 1 MiB), so a
// hostile header cannot trigger a huge allocation.

/// bincode configuration of the metadata: little-endian, fixed-width integers
/// (lengths are u64), no size limit (see above for why none is needed).
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

#[derive(Serialize, Deserialize)]
struct MetaWire<'a> {
    gospy_version: &'a str,
    pid: i32,
    exe_path: &'a str,
    #[serde(borrow)]
    cmdline: Vec<&'a str>,
    hostname: &'a str,
    #[serde(borrow)]
    go_build_id: Option<&'a str>,
    #[serde(borrow)]
    gnu_build_id: Option<&'a str>,
    go_version: &'a str,
    load_bias: u64,
    wall_time_ns: u64,
    mono_time_ns: u64,
    pause_ns: u64,
    stopped: bool,
    #[serde(borrow)]
    maps: Vec<MapWire<'a>>,
    auxv: Vec<(u64, u64)>,
    #[serde(borrow)]
    threads: Vec<ThreadWire<'a>>,
    #[serde(borrow)]
    warnings: Vec<&'a str>,
}

#[derive(Serialize, Deserialize)]
struct MapWire<'a> {
    start: u64,
    end: u64,
    perms: &'a str,
    offset: u64,
    path: &'a str,
}

#[derive(Serialize, Deserialize)]
struct ThreadWire<'a> {
    tid: i32,
    name: &'a str,
    /// Unicode scalar value of the state letter.
    state: u32,
    regs: Option<RegsWire>,
}

/// The 27 registers in `user_regs_struct` order.
#[derive(Serialize, Deserialize)]
struct RegsWire([u64; 27]);

impl RegsWire {
    fn from_model(r: &Regs) -> RegsWire {
        let Regs {
            r15,
            r14,
            r13,
            r12,
            rbp,
            rbx,
            r11,
            r10,
            r9,
            r8,
            rax,
            rcx,
            rdx,
            rsi,
            rdi,
            orig_rax,
            rip,
            cs,
            eflags,
            rsp,
            ss,
            fs_base,
            gs_base,
            ds,
            es,
            fs,
            gs,
            aarch64: _,
        } = *r;
        RegsWire([
            r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip,
            cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs,
        ])
    }
    fn to_model(&self) -> Regs {
        let [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs] =
            self.0;
        Regs {
            r15,
            r14,
            r13,
            r12,
            rbp,
            rbx,
            r11,
            r10,
            r9,
            r8,
            rax,
            rcx,
            rdx,
            rsi,
            rdi,
            orig_rax,
            rip,
            cs,
            eflags,
            rsp,
            ss,
            fs_base,
            gs_base,
            ds,
            es,
            fs,
            gs,
            aarch64: None,
        }
    }
}

impl<'a> MetaWire<'a> {
    fn from_model(m: &'a CaptureMeta) -> MetaWire<'a> {
        let CaptureMeta {
            gospy_version,
            pid,
            exe_path,
            cmdline,
            hostname,
            go_build_id,
            gnu_build_id,
            go_version,
            load_bias,
            wall_time_ns,
            mono_time_ns,
            pause_ns,
            stopped,
            maps,
            auxv,
            threads,
            warnings,
            // Recorded as notes among the warnings: see `encode_meta`.
            flags: _,
            // Extension records: see `encode_meta`.
            arch: _,
            ns_pid: _,
        } = m;
        MetaWire {
            gospy_version,
            pid: *pid,
            exe_path,
            cmdline: cmdline.iter().map(String::as_str).collect(),
            hostname,
            go_build_id: go_build_id.as_deref(),
            gnu_build_id: gnu_build_id.as_deref(),
            go_version,
            load_bias: *load_bias,
            wall_time_ns: *wall_time_ns,
            mono_time_ns: *mono_time_ns,
            pause_ns: *pause_ns,
            stopped: *stopped,
            maps: maps
                .iter()
                .map(|e| {
                    let MapEntry {
                        start,
                        end,
                        perms,
                        offset,
                        path,
                    } = e;
                    MapWire {
                        start: *start,
                        end: *end,
                        perms,
                        offset: *offset,
                        path,
                    }
                })
                .collect(),
            auxv: auxv.clone(),
            threads: threads
                .iter()
                .map(|t| {
                    let ThreadInfo {
                        tid,
                        name,
                        state,
                        regs,
                    } = t;
                    ThreadWire {
                        tid: *tid,
                        name,
                        state: u32::from(*state),
                        regs: regs.as_ref().map(RegsWire::from_model),
                    }
                })
                .collect(),
            warnings: warnings.iter().map(String::as_str).collect(),
        }
    }

    fn to_model(&self) -> CaptureMeta {
        let s = |v: &str| v.to_owned();
        CaptureMeta {
            gospy_version: s(self.gospy_version),
            pid: self.pid,
            exe_path: s(self.exe_path),
            cmdline: self.cmdline.iter().map(|v| s(v)).collect(),
            hostname: s(self.hostname),
            go_build_id: self.go_build_id.map(s),
            gnu_build_id: self.gnu_build_id.map(s),
            go_version: s(self.go_version),
            load_bias: self.load_bias,
            wall_time_ns: self.wall_time_ns,
            mono_time_ns: self.mono_time_ns,
            pause_ns: self.pause_ns,
            stopped: self.stopped,
            maps: self
                .maps
                .iter()
                .map(|e| MapEntry {
                    start: e.start,
                    end: e.end,
                    perms: s(e.perms),
                    offset: e.offset,
                    path: s(e.path),
                })
                .collect(),
            auxv: self.auxv.clone(),
            threads: self
                .threads
                .iter()
                .map(|t| ThreadInfo {
                    tid: t.tid,
                    name: s(t.name),
                    // Not a Unicode scalar value: only a forged file can say so.
                    state: char::from_u32(t.state).unwrap_or('?'),
                    regs: t.regs.as_ref().map(RegsWire::to_model),
                })
                .collect(),
            warnings: self.warnings.iter().map(|v| s(v)).collect(),
            flags: flags_from_notes(self.stopped, &self.warnings),
            // From the extension records, when present.
            arch: Arch::X86_64,
            ns_pid: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Capture flags: recorded as notes among the warnings (the file has no field
// for them), so that every snapshot, old or new, reads the same way.
// ---------------------------------------------------------------------------

/// The typed flags that a capture's notes stand for.
pub fn flags_from_notes<S: AsRef<str>>(stopped: bool, warnings: &[S]) -> CaptureFlags {
    let ws = || warnings.iter().map(AsRef::as_ref);
    CaptureFlags {
        redacted: ws().any(is_redaction_note),
        // A core file is not stopped either: the note tells them apart.
        non_blocking: !stopped && ws().any(|w| w == NON_BLOCKING_NOTE),
        unstable: ws().filter_map(parse_unstable).collect(),
    }
}

/// The note of a redacted capture (`analyze` shows it with the warnings).
pub fn is_redaction_note(w: &str) -> bool {
    w.starts_with(REDACTED_PREFIX)
}

/// `unstable goroutine: g 0x{g:x} (goid {goid}): {why}`.
fn parse_unstable(w: &str) -> Option<UnstableG> {
    let rest = w.strip_prefix(UNSTABLE_PREFIX)?;
    let hex_len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
    let g = u64::from_str_radix(&rest[..hex_len], 16).ok()?;
    let tail = &rest[hex_len..];
    let (goid, why) = tail
        .strip_prefix(" (goid ")
        .and_then(|t| t.split_once("): "))
        .and_then(|(n, why)| Some((n.parse().ok()?, why)))
        .unwrap_or((0, tail));
    Some(UnstableG {
        g,
        goid,
        why: why.to_string(),
    })
}

/// Notes of flags set in `meta` that its warnings do not already hold.
fn missing_flag_notes(meta: &CaptureMeta) -> Vec<String> {
    let have: std::collections::HashSet<&str> = meta.warnings.iter().map(String::as_str).collect();
    let f = &meta.flags;
    let mut out = Vec::new();
    if f.redacted && !meta.warnings.iter().any(|w| is_redaction_note(w)) {
        out.push(REDACTED_NOTE.to_string());
    }
    if f.non_blocking && !have.contains(NON_BLOCKING_NOTE) {
        out.push(NON_BLOCKING_NOTE.to_string());
    }
    out.extend(
        f.unstable
            .iter()
            .map(UnstableG::note)
            .filter(|n| !have.contains(n.as_str())),
    );
    out
}

/// Encode capture metadata as the header section.
pub fn encode_meta(meta: &CaptureMeta) -> Result<Vec<u8>, SnapshotError> {
    let extra = missing_flag_notes(meta);
    let mut wire = MetaWire::from_model(meta);
    wire.warnings.extend(extra.iter().map(String::as_str));
    let enc =
        |e: bincode::error::EncodeError| SnapshotError::Encode(format!("capture metadata: {e}"));
    let mut out = bincode::serde::encode_to_vec(wire, bincode_config()).map_err(enc)?;
    let ext = encode_extensions(meta).map_err(enc)?;
    if !ext.is_empty() {
        out.extend_from_slice(EXT_MAGIC);
        out.extend(bincode::serde::encode_to_vec(ext, bincode_config()).map_err(enc)?);
    }
    Ok(out)
}

/// Decode the header section: the structure, then its extension records.
pub fn decode_meta(bytes: &[u8]) -> Result<CaptureMeta, SnapshotError> {
    let (wire, used): (MetaWire<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(bytes, bincode_config())
            .map_err(|e| corrupt(format!("capture metadata cannot be decoded: {e}")))?;
    let mut meta = wire.to_model();
    let rest = &bytes[used.min(bytes.len())..];
    // Other trailing bytes are a later revision's: ignored, as the format says.
    if let Some(rest) = rest.strip_prefix(EXT_MAGIC) {
        let (records, _): (Vec<ExtWire<'_>>, usize) =
            bincode::serde::borrow_decode_from_slice(rest, bincode_config()).map_err(|e| {
                corrupt(format!(
                    "capture metadata extensions cannot be decoded: {e}"
                ))
            })?;
        decode_extensions(&records, &mut meta)?;
    }
    Ok(meta)
}

// ---------------------------------------------------------------------------
// Extension records (after the structure)
// ---------------------------------------------------------------------------
//
// Fields added after version 1.0 follow the structure as a sequence of
// (tag, bytes) records, each value bincode-encoded on its own: a reader skips
// tags it does not know, and files without records (every file written before
// them, and every x86-64 capture with nothing to add) decode as before.

/// What starts the extension records, telling them from other trailing bytes.
pub const EXT_MAGIC: &[u8; 4] = b"GSX1";
/// Tag of the target's ELF `e_machine` (`u16`); absent means x86-64.
pub const EXT_ARCH: u32 = 1;
/// Tag of the target's `NSpid` chain (`Vec<i32>`, outermost first).
pub const EXT_NS_PID: u32 = 2;
/// Tag of arm64 thread registers (`Vec<(i32, [u64; 34])>`: tid and
/// `user_pt_regs`, for the threads whose registers are arm64 ones; their
/// x86-64 registers in the structure are zero).
pub const EXT_AARCH64_REGS: u32 = 3;

#[derive(Serialize, Deserialize)]
struct ExtWire<'a> {
    tag: u32,
    #[serde(borrow)]
    value: &'a [u8],
}

fn encode_extensions(
    meta: &CaptureMeta,
) -> Result<Vec<(u32, Vec<u8>)>, bincode::error::EncodeError> {
    let mut out = Vec::new();
    if meta.arch != Arch::X86_64 {
        out.push((
            EXT_ARCH,
            bincode::serde::encode_to_vec(meta.arch.e_machine(), bincode_config())?,
        ));
    }
    let a64: Vec<(i32, Vec<u64>)> = meta
        .threads
        .iter()
        .filter_map(|t| Some((t.tid, t.regs?.aarch64?.to_words().to_vec())))
        .collect();
    if !a64.is_empty() {
        out.push((
            EXT_AARCH64_REGS,
            bincode::serde::encode_to_vec(&a64, bincode_config())?,
        ));
    }
    if !meta.ns_pid.is_empty() {
        out.push((
            EXT_NS_PID,
            bincode::serde::encode_to_vec(&meta.ns_pid, bincode_config())?,
        ));
    }
    Ok(out)
}

fn decode_extensions(records: &[ExtWire<'_>], meta: &mut CaptureMeta) -> Result<(), SnapshotError> {
    fn value<T: serde::de::DeserializeOwned>(tag: u32, b: &[u8]) -> Result<T, SnapshotError> {
        bincode::serde::decode_from_slice(b, bincode_config())
            .map(|(v, _)| v)
            .map_err(|e| {
                corrupt(format!(
                    "capture metadata extension {tag} cannot be decoded: {e}"
                ))
            })
    }
    for r in records {
        match r.tag {
            EXT_ARCH => {
                let m: u16 = value(r.tag, r.value)?;
                meta.arch = Arch::from_e_machine(m).ok_or_else(|| {
                    corrupt(format!(
                        "capture metadata names an unknown architecture (ELF machine {m})"
                    ))
                })?;
            }
            EXT_NS_PID => meta.ns_pid = value(r.tag, r.value)?,
            EXT_AARCH64_REGS => {
                let regs: Vec<(i32, Vec<u64>)> = value(r.tag, r.value)?;
                for (tid, words) in regs {
                    let words: [u64; Aarch64Regs::WORDS] = words.try_into().map_err(|_| {
                        corrupt(format!("arm64 registers of thread {tid} have a bad size"))
                    })?;
                    if let Some(t) = meta.threads.iter_mut().find(|t| t.tid == tid) {
                        t.regs.get_or_insert_with(Regs::default).aarch64 =
                            Some(Aarch64Regs::from_words(&words));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

/// Compress one chunk or the embedded binary as a single zstd frame
/// (content size recorded in the frame header, no zstd checksum: the format
/// has its own CRCs).
pub fn compress(raw: &[u8], level: i32) -> Result<Vec<u8>, SnapshotError> {
    zstd::bulk::compress(raw, level).map_err(|e| SnapshotError::Encode(format!("zstd: {e}")))
}

/// Decompress a zstd frame that must yield exactly `raw_len` bytes. Never
/// allocates more than `raw_len` bytes of output; output that would exceed
/// it is an error.
pub fn decompress_exact(comp: &[u8], raw_len: usize) -> Result<Vec<u8>, String> {
    let out = zstd::bulk::decompress(comp, raw_len).map_err(|e| e.to_string())?;
    if out.len() != raw_len {
        return Err(format!(
            "decompressed to {} bytes, expected {raw_len}",
            out.len()
        ));
    }
    Ok(out)
}

/// "kinds G, Stack" for a set of region kinds (in code order).
pub fn kinds_list(kinds: &BTreeSet<u8>) -> String {
    let names: Vec<String> = kinds
        .iter()
        .map(|&k| format!("{:?}", kind_from_code(k)))
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn flags_from_recorded_notes() {
        let ws = [
            "something else".to_string(),
            NON_BLOCKING_NOTE.to_string(),
            "unstable goroutine: g 0xc000123400 (goid 42): running (x)".to_string(),
            "unstable goroutine: g 0xzz (goid 1): bad address".to_string(),
        ];
        let f = flags_from_notes(false, &ws);
        assert!(f.non_blocking && !f.redacted);
        assert_eq!(
            f.unstable,
            vec![UnstableG {
                g: 0xc000123400,
                goid: 42,
                why: "running (x)".into()
            }]
        );
        assert_eq!(f.unstable[0].note(), ws[2]);
        // A stopped capture (a core) is never non-blocking.
        assert!(!flags_from_notes(true, &ws).non_blocking);
        assert!(flags_from_notes(true, &[REDACTED_NOTE]).redacted);
    }

    #[test]
    fn flags_round_trip_through_the_header() {
        let mut meta = CaptureMeta {
            stopped: false,
            warnings: vec!["first".into(), NON_BLOCKING_NOTE.into()],
            ..Default::default()
        };
        meta.flags = flags_from_notes(false, &meta.warnings);
        let back = decode_meta(&encode_meta(&meta).unwrap()).unwrap();
        assert_eq!(back, meta, "notes already present are not repeated");
        // A flag set without its note gets the note on the way out.
        meta.flags.redacted = true;
        let back = decode_meta(&encode_meta(&meta).unwrap()).unwrap();
        assert!(back.flags.redacted);
        assert_eq!(
            back.warnings.last().map(String::as_str),
            Some(REDACTED_NOTE)
        );
    }

    #[test]
    fn extension_records_round_trip_and_are_optional() {
        let plain = CaptureMeta::default();
        let bytes = encode_meta(&plain).unwrap();
        let (_, used): (MetaWire<'_>, usize) =
            bincode::serde::borrow_decode_from_slice(&bytes, bincode_config()).unwrap();
        assert_eq!(used, bytes.len(), "nothing to add, no records");
        let meta = CaptureMeta {
            arch: Arch::Aarch64,
            ns_pid: vec![4242, 1],
            ..Default::default()
        };
        let bytes = encode_meta(&meta).unwrap();
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
        // A record this reader does not know is skipped.
        let mut with_unknown = encode_meta(&plain).unwrap();
        with_unknown.extend_from_slice(EXT_MAGIC);
        let recs = vec![
            (99u32, vec![1u8, 2, 3]),
            (
                EXT_NS_PID,
                bincode::serde::encode_to_vec(vec![7i32, 1], bincode_config()).unwrap(),
            ),
        ];
        with_unknown.extend(bincode::serde::encode_to_vec(recs, bincode_config()).unwrap());
        assert_eq!(decode_meta(&with_unknown).unwrap().ns_pid, vec![7, 1]);
        // Truncated records are a clear error, not a panic.
        let cut = &bytes[..bytes.len() - 3];
        assert!(decode_meta(cut).is_err());
    }

    #[test]
    fn arm64_thread_registers_round_trip() {
        let mut words = [0u64; Aarch64Regs::WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = 0x1000 + i as u64;
        }
        let a64 = Regs {
            aarch64: Some(Aarch64Regs::from_words(&words)),
            ..Regs::default()
        };
        assert_eq!(a64.pc(), 0x1000 + 32);
        assert_eq!(a64.sp(), 0x1000 + 31);
        assert_eq!(a64.lr(), Some(0x1000 + 30));
        assert_eq!(a64.g(), Some(0x1000 + 28));
        let thread = |tid, regs| ThreadInfo {
            tid,
            name: "t".into(),
            state: 't',
            regs,
        };
        let meta = CaptureMeta {
            arch: Arch::Aarch64,
            threads: vec![thread(7, Some(a64)), thread(8, None)],
            ..Default::default()
        };
        assert_eq!(decode_meta(&encode_meta(&meta).unwrap()).unwrap(), meta);
        // x86-64 registers add no record: such files stay byte-identical.
        let x86 = CaptureMeta {
            threads: vec![thread(
                7,
                Some(Regs {
                    rip: 1,
                    rsp: 2,
                    ..Regs::default()
                }),
            )],
            ..Default::default()
        };
        let bytes = encode_meta(&x86).unwrap();
        let (_, used): (MetaWire<'_>, usize) =
            bincode::serde::borrow_decode_from_slice(&bytes, bincode_config()).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(decode_meta(&bytes).unwrap(), x86);
    }
}
