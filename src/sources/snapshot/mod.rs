//! The `.gss` snapshot file: writer and reader.
//!
//! A snapshot holds a [`Capture`]: the capture metadata, every captured
//! memory region (packed into independently zstd-compressed chunks) and
//! optionally the executable. The byte layout is specified in
//! `snapshot-format.md` and implemented in [`format`]; this module adds the
//! file handling, parallel (rayon) compression and decompression, and damage
//! reporting:
//!
//! * [`write_file`] / [`encode`] / [`write_to`] produce a snapshot;
//! * [`SnapshotFile`] opens one (`open`, `from_bytes`), validating the
//!   preamble, metadata and indexes up front, and then loads the memory
//!   ([`SnapshotFile::memory`]) with per-chunk damage isolation: a damaged
//!   chunk costs only the regions (or parts of regions) it holds.

mod error;
pub mod format;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

pub use self::error::SnapshotError;
use crate::memory::SparseMemory;
use crate::model::{Capture, CaptureMeta, Region, RegionKind};
use bytes::Bytes;
pub use format::{ChunkEntry, RegionEntry, FORMAT_VERSION};
use format::{Preamble, CHUNK_ENTRY_LEN, PREAMBLE_LEN, REGION_ENTRY_LEN};

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> SnapshotError {
    let context = context.into();
    move |source| SnapshotError::Io { context, source }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Regions and bytes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindStats {
    pub kind: RegionKind,
    pub regions: u64,
    pub bytes: u64,
}

/// Sizes of a snapshot, as written or as read back (same numbers either way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotStats {
    pub format_version: u32,
    pub file_size: u64,
    /// Encoded capture metadata.
    pub header_bytes: u64,
    pub regions: u64,
    pub chunks: u64,
    /// Captured memory, uncompressed (sum of the chunks' uncompressed sizes).
    pub uncompressed_bytes: u64,
    /// Captured memory, compressed (sum of the chunks' frame sizes).
    pub compressed_bytes: u64,
    pub has_binary: bool,
    pub binary_uncompressed_bytes: u64,
    pub binary_compressed_bytes: u64,
    /// One entry per kind, in on-disk code order (all kinds, zeros included).
    pub per_kind: Vec<KindStats>,
}

/// What [`write_file`] reports.
pub type WriteStats = SnapshotStats;

impl SnapshotStats {
    /// Bytes captured for one kind.
    pub fn bytes_of(&self, kind: RegionKind) -> u64 {
        self.per_kind
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.bytes)
    }

    fn compute(p: &Preamble, chunks: &[ChunkEntry], regions: &[RegionEntry]) -> SnapshotStats {
        let mut per_kind: Vec<KindStats> = format::ALL_KINDS
            .iter()
            .map(|&kind| KindStats {
                kind,
                regions: 0,
                bytes: 0,
            })
            .collect();
        for r in regions {
            let k = &mut per_kind[usize::from(format::kind_code(r.kind))];
            k.regions += 1;
            k.bytes += r.len;
        }
        SnapshotStats {
            format_version: p.version,
            file_size: p.file_len,
            header_bytes: p.header_len,
            regions: regions.len() as u64,
            chunks: chunks.len() as u64,
            uncompressed_bytes: chunks.iter().map(|c| u64::from(c.raw_len)).sum(),
            compressed_bytes: chunks.iter().map(|c| u64::from(c.comp_len)).sum(),
            has_binary: p.has_binary(),
            binary_uncompressed_bytes: if p.has_binary() { p.binary_raw_len } else { 0 },
            binary_compressed_bytes: if p.has_binary() { p.binary_comp_len } else { 0 },
            per_kind,
        }
    }
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// How to write a snapshot.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// zstd level for chunks and the embedded binary (1..=22; 3 is fast and
    /// compresses Go memory well).
    pub level: i32,
    /// Target uncompressed chunk size, clamped to 64 KiB..=16 MiB. Regions
    /// smaller than this never straddle two chunks; larger ones span several.
    pub chunk_size: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            level: format::DEFAULT_LEVEL,
            chunk_size: format::DEFAULT_CHUNK_SIZE,
        }
    }
}

/// A fully encoded snapshot, ready to be written out in order.
struct Encoded {
    preamble: [u8; PREAMBLE_LEN],
    header: Vec<u8>,
    chunk_table: Vec<u8>,
    region_index: Vec<u8>,
    frames: Vec<Vec<u8>>,
    binary: Option<Vec<u8>>,
    stats: SnapshotStats,
}

impl Encoded {
    fn write_all<W: Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&self.preamble)?;
        w.write_all(&self.header)?;
        w.write_all(&self.chunk_table)?;
        w.write_all(&self.region_index)?;
        for f in &self.frames {
            w.write_all(f)?;
        }
        if let Some(b) = &self.binary {
            w.write_all(b)?;
        }
        Ok(())
    }
}

/// The slice `[start, start+len)` of region `region` goes into a chunk.
struct Piece {
    region: usize,
    start: usize,
    len: usize,
}

/// Assign every region a place in the data stream. `order` lists region
/// indices in the order they are stored. Small regions are packed whole into
/// the current chunk (a new chunk starts when one would not fit); a region
/// larger than a chunk fills the current one and continues in the next.
fn plan_chunks(
    regions: &[Region],
    order: &[usize],
    chunk_size: usize,
) -> (Vec<Vec<Piece>>, Vec<RegionEntry>) {
    let mut chunks: Vec<Vec<Piece>> = Vec::new();
    let mut cur: Vec<Piece> = Vec::new();
    let mut cur_len = 0usize;
    let mut entries = Vec::with_capacity(order.len());
    for &i in order {
        let r = &regions[i];
        let len = r.data.len();
        let mut entry = RegionEntry {
            addr: r.addr,
            len: len as u64,
            kind: r.kind,
            chunk: 0,
            offset: 0,
        };
        if len == 0 {
            entries.push(entry);
            continue;
        }
        let doesnt_fit = cur_len + len > chunk_size && len <= chunk_size;
        if cur_len == chunk_size || (cur_len > 0 && doesnt_fit) {
            chunks.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        // chunk_size <= 16 MiB, so both fit in u32 (chunk count is checked
        // against MAX_CHUNKS by the caller).
        entry.chunk = chunks.len() as u32;
        entry.offset = cur_len as u32;
        let mut done = 0;
        while done < len {
            if cur_len == chunk_size {
                chunks.push(std::mem::take(&mut cur));
                cur_len = 0;
            }
            let n = (len - done).min(chunk_size - cur_len);
            cur.push(Piece {
                region: i,
                start: done,
                len: n,
            });
            cur_len += n;
            done += n;
        }
        entries.push(entry);
    }
    if cur_len > 0 {
        chunks.push(cur);
    }
    (chunks, entries)
}

fn encode_capture(cap: &Capture, opts: &WriteOptions) -> Result<Encoded, SnapshotError> {
    let chunk_size = opts
        .chunk_size
        .clamp(format::MIN_CHUNK_SIZE, format::MAX_CHUNK_SIZE);
    let levels = zstd::compression_level_range();
    let level = opts.level.clamp(*levels.start(), *levels.end());

    // Refuse what a reader would reject.
    if cap.regions.len() as u64 > format::MAX_REGIONS {
        return Err(SnapshotError::InvalidCapture(format!(
            "{} regions, the format allows at most {}",
            cap.regions.len(),
            format::MAX_REGIONS
        )));
    }
    for r in &cap.regions {
        if r.addr.checked_add(r.data.len() as u64).is_none() {
            return Err(SnapshotError::InvalidCapture(format!(
                "region at {:#x} of {} bytes wraps around the address space",
                r.addr,
                r.data.len()
            )));
        }
    }
    if let Some(b) = &cap.binary {
        if b.len() as u64 > format::MAX_BINARY_RAW {
            return Err(SnapshotError::InvalidCapture(format!(
                "executable is {} bytes, the format allows at most {}",
                b.len(),
                format::MAX_BINARY_RAW
            )));
        }
    }
    let header = format::encode_meta(&cap.meta)?;
    if header.len() as u64 > format::MAX_HEADER_LEN {
        return Err(SnapshotError::InvalidCapture(format!(
            "capture metadata encodes to {} bytes, the format allows at most {}",
            header.len(),
            format::MAX_HEADER_LEN
        )));
    }

    // Store regions by address: readers get a sorted index, and neighbouring
    // structures compress together. The sort is stable, so regions at the
    // same address keep their relative order.
    let mut order: Vec<usize> = (0..cap.regions.len()).collect();
    order.sort_by_key(|&i| cap.regions[i].addr);
    let (plans, entries) = plan_chunks(&cap.regions, &order, chunk_size);
    if plans.len() as u64 > format::MAX_CHUNKS {
        return Err(SnapshotError::InvalidCapture(format!(
            "{} chunks needed, the format allows at most {}",
            plans.len(),
            format::MAX_CHUNKS
        )));
    }

    // Compress chunks (in parallel) and the binary (alongside).
    let compress_chunk = |plan: &Vec<Piece>| -> Result<(Vec<u8>, u32, u32, u32), SnapshotError> {
        let mut raw = Vec::with_capacity(plan.iter().map(|p| p.len).sum());
        for p in plan {
            raw.extend_from_slice(&cap.regions[p.region].data[p.start..p.start + p.len]);
        }
        let frame = format::compress(&raw, level)?;
        let comp_crc = format::crc32(&frame);
        Ok((frame, comp_crc, raw.len() as u32, format::crc32(&raw)))
    };
    let (frames, binary) = rayon::join(
        || {
            plans
                .par_iter()
                .map(compress_chunk)
                .collect::<Result<Vec<_>, _>>()
        },
        || {
            cap.binary
                .as_ref()
                .map(|b| format::compress(b, level).map(|f| (f, b.len() as u64, format::crc32(b))))
                .transpose()
        },
    );
    let frames = frames?;
    let binary = binary?;

    // Lay the file out: preamble, metadata, chunk table, region index,
    // chunk frames, binary.
    let mut p = Preamble {
        version: FORMAT_VERSION,
        preamble_len: PREAMBLE_LEN as u32,
        header_off: PREAMBLE_LEN as u64,
        header_len: header.len() as u64,
        header_crc: format::crc32(&header),
        chunk_count: frames.len() as u64,
        region_count: entries.len() as u64,
        ..Preamble::default()
    };
    p.chunk_table_off = p.header_off + p.header_len;
    p.region_index_off = p.chunk_table_off + p.chunk_count * CHUNK_ENTRY_LEN as u64;
    let mut pos = p.region_index_off + p.region_count * REGION_ENTRY_LEN as u64;

    let mut chunk_entries = Vec::with_capacity(frames.len());
    for (frame, comp_crc, raw_len, raw_crc) in &frames {
        if frame.len() > u32::MAX as usize {
            // Cannot happen: zstd's bound for a 16 MiB input is far below.
            return Err(SnapshotError::Encode("compressed chunk too large".into()));
        }
        chunk_entries.push(ChunkEntry {
            file_offset: pos,
            comp_len: frame.len() as u32,
            raw_len: *raw_len,
            comp_crc: *comp_crc,
            raw_crc: *raw_crc,
        });
        pos += frame.len() as u64;
    }
    if let Some((frame, raw_len, raw_crc)) = &binary {
        p.optional_flags |= format::FLAG_HAS_BINARY;
        p.binary_off = pos;
        p.binary_comp_len = frame.len() as u64;
        p.binary_raw_len = *raw_len;
        p.binary_comp_crc = format::crc32(frame);
        p.binary_raw_crc = *raw_crc;
        pos += frame.len() as u64;
    }
    p.file_len = pos;

    let mut chunk_table = Vec::with_capacity(chunk_entries.len() * CHUNK_ENTRY_LEN);
    for c in &chunk_entries {
        c.encode(&mut chunk_table);
    }
    let mut region_index = Vec::with_capacity(entries.len() * REGION_ENTRY_LEN);
    for r in &entries {
        r.encode(&mut region_index);
    }
    p.chunk_table_crc = format::crc32(&chunk_table);
    p.region_index_crc = format::crc32(&region_index);

    let raw_total: u64 = chunk_entries.iter().map(|c| u64::from(c.raw_len)).sum();
    let declared = raw_total + p.binary_raw_len;
    if declared > format::raw_budget(p.file_len) {
        return Err(SnapshotError::InvalidCapture(format!(
            "{declared} bytes compress to a {} byte file, beyond the ratio readers accept",
            p.file_len
        )));
    }

    let stats = SnapshotStats::compute(&p, &chunk_entries, &entries);
    Ok(Encoded {
        preamble: p.encode(),
        header,
        chunk_table,
        region_index,
        frames: frames.into_iter().map(|(f, ..)| f).collect(),
        binary: binary.map(|(f, ..)| f),
        stats,
    })
}

/// Encode a capture into an in-memory snapshot.
pub fn encode(cap: &Capture, opts: &WriteOptions) -> Result<Vec<u8>, SnapshotError> {
    let enc = encode_capture(cap, opts)?;
    let mut out = Vec::with_capacity(enc.stats.file_size as usize);
    enc.write_all(&mut out)
        .map_err(io_err("writing snapshot to memory"))?;
    Ok(out)
}

/// Encode a capture and write it to any writer (all compression happens
/// before the first byte is written).
pub fn write_to<W: Write>(
    w: &mut W,
    cap: &Capture,
    opts: &WriteOptions,
) -> Result<SnapshotStats, SnapshotError> {
    let enc = encode_capture(cap, opts)?;
    enc.write_all(w).map_err(io_err("writing snapshot"))?;
    Ok(enc.stats)
}

/// Removes a temporary file unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Write a snapshot to `path`, atomically: the data goes to a new file
/// (mode 0600) in the same directory which then replaces `path`. If `path`
/// already exists with stricter permissions, the new file gets those: its
/// mode is never looser than 0600 nor than the file it replaces.
pub fn write_file(
    path: &Path,
    cap: &Capture,
    opts: &WriteOptions,
) -> Result<WriteStats, SnapshotError> {
    let shown = path.display().to_string();
    let file_name = path.file_name().ok_or_else(|| SnapshotError::Io {
        context: format!("cannot write {shown}"),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let existing_mode = match fs::metadata(path) {
        Ok(m) => Some(m.permissions().mode() & 0o777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(format!("cannot write {shown}"))(e)),
    };

    // All the expensive work happens before the file system is touched.
    let enc = encode_capture(cap, opts)?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (tmp_path, file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.{n}.tmp", std::process::id()));
        let candidate = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1_000_000 => continue,
            Err(e) => {
                return Err(io_err(format!(
                    "cannot create temporary file {}",
                    candidate.display()
                ))(e))
            }
        }
    };
    let mut guard = TempFile(Some(tmp_path.clone()));
    let werr = io_err(format!("cannot write {}", tmp_path.display()));
    let res = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        enc.write_all(&mut w)?;
        w.flush()?;
        drop(w);
        if let Some(m) = existing_mode {
            let want = 0o600 & m;
            if want != 0o600 {
                file.set_permissions(fs::Permissions::from_mode(want))?;
            }
        }
        file.sync_all()
    })();
    res.map_err(werr)?;
    drop(file);
    fs::rename(&tmp_path, path).map_err(io_err(format!("cannot replace {shown}")))?;
    guard.0 = None;
    // Make the rename durable; failure here loses nothing already written.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(enc.stats)
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

enum Source {
    Bytes(Vec<u8>),
    File { file: File, path: PathBuf },
}

impl Source {
    /// `len` bytes at `off`; the caller has checked they lie inside the file.
    fn read(&self, off: u64, len: u64) -> Result<Cow<'_, [u8]>, SnapshotError> {
        match self {
            Source::Bytes(b) => {
                let r = usize::try_from(off)
                    .ok()
                    .zip(usize::try_from(len).ok())
                    .and_then(|(o, l)| b.get(o..o.checked_add(l)?));
                r.map(Cow::Borrowed).ok_or_else(|| {
                    SnapshotError::Corrupt(format!(
                        "{len} bytes at offset {off} lie outside the file"
                    ))
                })
            }
            Source::File { file, path } => {
                let len = usize::try_from(len)
                    .map_err(|_| SnapshotError::Limit(format!("{len} byte read")))?;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, off)
                    .map_err(io_err(format!("cannot read {}", path.display())))?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

/// An opened snapshot. Opening reads and checks the preamble, the metadata
/// and both indexes; memory and the binary are read on demand.
pub struct SnapshotFile {
    pub meta: CaptureMeta,
    preamble: Preamble,
    chunks: Vec<ChunkEntry>,
    /// Start of each chunk in the data stream, plus the stream length.
    chunk_starts: Vec<u64>,
    regions: Vec<RegionEntry>,
    source: Source,
}

/// Memory loaded from a snapshot.
pub struct LoadedMemory {
    pub memory: SparseMemory,
    /// One line per damaged chunk, e.g. "checksum mismatch in chunk 3
    /// (12 regions 0xc000000000-0xc000012000, kinds G, Stack)".
    pub warnings: Vec<String>,
    pub damaged: Vec<DamagedChunk>,
}

/// A chunk that could not be loaded, and what was lost with it.
#[derive(Debug)]
pub struct DamagedChunk {
    pub chunk: u32,
    /// A [`SnapshotError::DamagedChunk`] (or an I/O error) saying why.
    pub error: SnapshotError,
    /// Indices into [`SnapshotFile::regions`] of the regions that lost bytes.
    pub regions: Vec<usize>,
    pub lost_bytes: u64,
}

/// Pieces of region bytes: (address or offset, bytes).
type Pieces = Vec<(u64, Bytes)>;

/// The bytes of one region after loading.
enum RegionBytes {
    Empty,
    Whole(Bytes),
    /// A region split over several chunks: its pieces by address (only those
    /// that survived when some chunks were damaged).
    Parts(Pieces),
}

/// Where region bytes sit inside one chunk.
struct Slot {
    region: usize,
    /// Offset in the chunk's uncompressed data.
    chunk_off: usize,
    /// Offset in the region.
    region_off: u64,
    len: usize,
}

impl SnapshotFile {
    /// Open a snapshot file. Reads only the preamble, metadata and indexes.
    pub fn open(path: &Path) -> Result<SnapshotFile, SnapshotError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(io_err(format!("cannot open {shown}")))?;
        let len = file
            .metadata()
            .map_err(io_err(format!("cannot open {shown}")))?
            .len();
        let mut prefix = vec![0u8; Preamble::prefix_len(len)];
        file.read_exact_at(&mut prefix, 0)
            .map_err(io_err(format!("cannot read {shown}")))?;
        let preamble = Preamble::decode(&prefix, len)?;
        Self::finish_open(
            preamble,
            Source::File {
                file,
                path: path.to_owned(),
            },
        )
    }

    /// Open a snapshot held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SnapshotFile, SnapshotError> {
        let len = bytes.len() as u64;
        let preamble = Preamble::decode(&bytes[..Preamble::prefix_len(len)], len)?;
        Self::finish_open(preamble, Source::Bytes(bytes))
    }

    fn finish_open(p: Preamble, source: Source) -> Result<SnapshotFile, SnapshotError> {
        let checked = |what: &str, off: u64, len: u64, crc: u32| {
            let b = source.read(off, len)?;
            if format::crc32(&b) != crc {
                return Err(SnapshotError::Checksum { what: what.into() });
            }
            Ok(b)
        };
        let header = checked("capture metadata", p.header_off, p.header_len, p.header_crc)?;
        let meta = format::decode_meta(&header)?;
        drop(header);
        let table = checked(
            "chunk table",
            p.chunk_table_off,
            p.chunk_count * CHUNK_ENTRY_LEN as u64,
            p.chunk_table_crc,
        )?;
        let (chunks, chunk_starts) = format::decode_chunk_table(&table, &p)?;
        drop(table);
        let index = checked(
            "region index",
            p.region_index_off,
            p.region_count * REGION_ENTRY_LEN as u64,
            p.region_index_crc,
        )?;
        let regions = format::decode_region_index(&index, &chunks, &chunk_starts)?;
        drop(index);
        Ok(SnapshotFile {
            meta,
            preamble: p,
            chunks,
            chunk_starts,
            regions,
            source,
        })
    }

    /// The format version of the file (1 for everything this code writes).
    pub fn format_version(&self) -> u32 {
        self.preamble.version
    }

    /// The region index, in file order (sorted by address for files written
    /// by gospy). No memory is decompressed.
    pub fn regions(&self) -> &[RegionEntry] {
        &self.regions
    }

    /// The chunk table.
    pub fn chunks(&self) -> &[ChunkEntry] {
        &self.chunks
    }

    pub fn has_binary(&self) -> bool {
        self.preamble.has_binary()
    }

    pub fn stats(&self) -> SnapshotStats {
        SnapshotStats::compute(&self.preamble, &self.chunks, &self.regions)
    }

    /// The embedded executable, checked against both its checksums.
    pub fn binary(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let p = &self.preamble;
        if !p.has_binary() {
            return Ok(None);
        }
        let comp = self.source.read(p.binary_off, p.binary_comp_len)?;
        if format::crc32(&comp) != p.binary_comp_crc {
            return Err(SnapshotError::Checksum {
                what: "embedded binary".into(),
            });
        }
        // binary_raw_len <= MAX_BINARY_RAW (4 GiB), checked at open.
        let raw = format::decompress_exact(&comp, p.binary_raw_len as usize)
            .map_err(SnapshotError::DamagedBinary)?;
        if format::crc32(&raw) != p.binary_raw_crc {
            return Err(SnapshotError::Checksum {
                what: "embedded binary (after decompression)".into(),
            });
        }
        Ok(Some(raw))
    }

    /// Decompress every chunk (in parallel) into a [`SparseMemory`]. Damaged
    /// chunks are reported in `warnings`/`damaged`; their regions (or the
    /// parts of regions they hold) are missing, everything else loads.
    pub fn memory(&self) -> Result<LoadedMemory, SnapshotError> {
        let (bytes, damaged) = self.load();
        let mut ranges = Vec::with_capacity(bytes.len());
        for (i, b) in bytes.into_iter().enumerate() {
            match b {
                RegionBytes::Empty => {}
                RegionBytes::Whole(d) => ranges.push((self.regions[i].addr, d)),
                RegionBytes::Parts(parts) => ranges.extend(parts),
            }
        }
        let mut memory = SparseMemory::from_bytes(ranges);
        memory.set_damaged(
            damaged
                .iter()
                .flat_map(|d| d.regions.iter())
                .map(|&i| (self.regions[i].addr, self.regions[i].end()))
                .collect(),
        );
        Ok(LoadedMemory {
            memory,
            warnings: damaged.iter().map(|d| d.error.to_string()).collect(),
            damaged,
        })
    }

    /// Read the whole snapshot back as a [`Capture`] (regions in file
    /// order). Unlike [`SnapshotFile::memory`] this fails on any damage.
    pub fn capture(&self) -> Result<Capture, SnapshotError> {
        let (bytes, mut damaged) = self.load();
        if !damaged.is_empty() {
            return Err(damaged.swap_remove(0).error);
        }
        let regions = bytes
            .into_iter()
            .zip(&self.regions)
            .map(|(b, e)| Region {
                addr: e.addr,
                kind: e.kind,
                data: match b {
                    RegionBytes::Whole(d) => d.to_vec(),
                    // Undamaged (checked above): every piece is there.
                    RegionBytes::Parts(parts) => {
                        let mut all = Vec::with_capacity(e.len as usize);
                        for (_, d) in &parts {
                            all.extend_from_slice(d);
                        }
                        all
                    }
                    RegionBytes::Empty => Vec::new(),
                },
            })
            .collect();
        Ok(Capture {
            meta: self.meta.clone(),
            regions,
            binary: self.binary()?,
        })
    }

    /// Which region bytes each chunk holds.
    fn slots(&self) -> Vec<Vec<Slot>> {
        let mut slots: Vec<Vec<Slot>> = self.chunks.iter().map(|_| Vec::new()).collect();
        for (i, r) in self.regions.iter().enumerate() {
            if r.len == 0 {
                continue;
            }
            // Validated at open: the region lies inside the stream.
            let mut pos = self.chunk_starts[r.chunk as usize] + u64::from(r.offset);
            let mut done = 0u64;
            let mut c = r.chunk as usize;
            while done < r.len && c < self.chunks.len() {
                let chunk_end = self.chunk_starts[c + 1];
                if pos < chunk_end {
                    let n = (r.len - done).min(chunk_end - pos);
                    slots[c].push(Slot {
                        region: i,
                        chunk_off: (pos - self.chunk_starts[c]) as usize,
                        region_off: done,
                        len: n as usize,
                    });
                    done += n;
                    pos += n;
                }
                c += 1;
            }
        }
        slots
    }

    /// Read, check and decompress one chunk.
    fn load_chunk(&self, i: usize) -> Result<Vec<u8>, String> {
        let c = &self.chunks[i];
        let comp = self
            .source
            .read(c.file_offset, u64::from(c.comp_len))
            .map_err(|e| format!("read error ({e})"))?;
        if format::crc32(&comp) != c.comp_crc {
            return Err("checksum mismatch".into());
        }
        let raw = format::decompress_exact(&comp, c.raw_len as usize)
            .map_err(|e| format!("decompression error ({e})"))?;
        if format::crc32(&raw) != c.raw_crc {
            return Err("checksum mismatch after decompression".into());
        }
        Ok(raw)
    }

    /// "5 regions 0x1000-0x9000, kinds G, Stack" for the slots of a chunk.
    fn describe(&self, slots: &[Slot]) -> String {
        if slots.is_empty() {
            return "no regions".into();
        }
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        let mut kinds = BTreeSet::new();
        let mut regions = BTreeSet::new();
        for s in slots {
            let r = &self.regions[s.region];
            lo = lo.min(r.addr + s.region_off);
            hi = hi.max(r.addr + s.region_off + s.len as u64);
            kinds.insert(format::kind_code(r.kind));
            regions.insert(s.region);
        }
        let n = regions.len();
        format!(
            "{n} region{} {lo:#x}-{hi:#x}, kind{} {}",
            if n == 1 { "" } else { "s" },
            if kinds.len() == 1 { "" } else { "s" },
            format::kinds_list(&kinds)
        )
    }

    /// Decompress all chunks in parallel and cut them into region bytes.
    fn load(&self) -> (Vec<RegionBytes>, Vec<DamagedChunk>) {
        let slots = self.slots();
        let mut pieces_needed = vec![0u32; self.regions.len()];
        for s in slots.iter().flatten() {
            pieces_needed[s.region] += 1;
        }

        type ChunkOut = Result<Vec<(usize, u64, Bytes)>, DamagedChunk>;
        let outs: Vec<ChunkOut> = slots
            .par_iter()
            .enumerate()
            .map(|(i, ss)| match self.load_chunk(i).map(Bytes::from) {
                // Regions are slices of their decompressed chunk: no copy.
                Ok(raw) => Ok(ss
                    .iter()
                    .map(|s| {
                        let d = raw.slice(s.chunk_off..s.chunk_off + s.len);
                        (s.region, s.region_off, d)
                    })
                    .collect()),
                Err(problem) => Err(DamagedChunk {
                    chunk: i as u32,
                    error: SnapshotError::DamagedChunk {
                        chunk: i as u32,
                        problem,
                        regions: self.describe(ss),
                    },
                    regions: ss
                        .iter()
                        .map(|s| s.region)
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    lost_bytes: ss.iter().map(|s| s.len as u64).sum(),
                }),
            })
            .collect();

        let mut bytes: Vec<RegionBytes> = self.regions.iter().map(|_| RegionBytes::Empty).collect();
        // Regions split over several chunks: pieces by region.
        let mut split: HashMap<usize, Pieces> = HashMap::new();
        let mut damaged = Vec::new();
        for out in outs {
            match out {
                Ok(pieces) => {
                    for (region, off, d) in pieces {
                        if pieces_needed[region] == 1 {
                            bytes[region] = RegionBytes::Whole(d);
                        } else {
                            split.entry(region).or_default().push((off, d));
                        }
                    }
                }
                Err(d) => damaged.push(d),
            }
        }
        // Regions split over chunks stay in pieces (adjacent ranges read as
        // one): joining them here would hold a large region twice (pieces and
        // copy) at once. `capture` joins them when it needs whole regions.
        for (region, mut parts) in split {
            parts.sort_by_key(|(off, _)| *off);
            let r = &self.regions[region];
            bytes[region] = RegionBytes::Parts(
                parts
                    .into_iter()
                    .map(|(off, d)| (r.addr + off, d))
                    .collect(),
            );
        }
        (bytes, damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::format::*;
    use super::*;
    use crate::memory::Memory;
    use crate::model::{MapEntry, Regs, ThreadInfo};
    use std::time::Instant;

    // ----- helpers --------------------------------------------------------

    /// xorshift64*: deterministic test data without dependencies.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// Memory-like bytes: runs of zeros, small integers, pointers, noise.
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            let mut v = Vec::with_capacity(len + 8);
            while v.len() < len {
                let w = match self.below(4) {
                    0 => 0,
                    1 => self.below(256),
                    2 => 0x00c0_0000_0000 + self.below(1 << 20) * 8,
                    _ => self.next(),
                };
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.truncate(len);
            v
        }
    }

    fn meta(threads: usize, rng: &mut Rng) -> CaptureMeta {
        CaptureMeta {
            gospy_version: "0.1.0".into(),
            pid: 4242,
            exe_path: "/srv/bin/api-server".into(),
            cmdline: vec![
                "/srv/bin/api-server".into(),
                "--listen=:8080".into(),
                "--name=ünïcødé ✓".into(),
                String::new(),
            ],
            hostname: "build-host-7".into(),
            go_build_id: Some("Xa1/Yb2/Zc3/Wd4".into()),
            gnu_build_id: None,
            go_version: "go1.22.10".into(),
            load_bias: 0x5555_5555_4000,
            wall_time_ns: 1_732_000_000_123_456_789,
            mono_time_ns: 987_654_321_000,
            pause_ns: 1_234_567,
            stopped: true,
            maps: (0..40u64)
                .map(|i| MapEntry {
                    start: 0x40_0000 + i * 0x10_0000,
                    end: 0x40_0000 + i * 0x10_0000 + 0x8000,
                    perms: ["r-xp", "rw-p", "r--p", "---p"][i as usize % 4].into(),
                    offset: i * 0x1000,
                    path: if i % 3 == 0 {
                        String::new()
                    } else {
                        format!("/srv/bin/lib{i}.so")
                    },
                })
                .collect(),
            auxv: (0..20u64).map(|i| (i, rng.next())).collect(),
            threads: (0..threads)
                .map(|i| ThreadInfo {
                    tid: 4242 + i as i32,
                    name: if i == 3 {
                        "wörker✓".into()
                    } else {
                        format!("api-server-{i}")
                    },
                    state: ['S', 'R', 't', 'Z', 'D'][i % 5],
                    regs: if i % 4 == 2 {
                        None
                    } else {
                        Some(Regs {
                            rip: 0x45_0000 + i as u64,
                            rsp: 0x00c0_0001_0000 + i as u64 * 0x100,
                            rbp: rng.next(),
                            fs_base: rng.next(),
                            gs: 7,
                            orig_rax: u64::MAX,
                            ..Regs::default()
                        })
                    },
                })
                .collect(),
            warnings: vec!["thread 4250 could not be stopped".into()],
            flags: Default::default(),
            arch: Default::default(),
            ns_pid: Vec::new(),
        }
    }

    /// A capture shaped like a real one: a few thousand adjacent g's, stacks
    /// of varied sizes, data segment, P/M structs, a multi-MiB heap region,
    /// an empty region and an embedded binary.
    fn realistic_capture() -> Capture {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut regions = Vec::new();
        regions.push(Region {
            addr: 0x5555_5600_0000,
            kind: RegionKind::Data,
            data: rng.bytes(300_000),
        });
        regions.push(Region {
            addr: 0x00c0_0008_0000,
            kind: RegionKind::Allgs,
            data: rng.bytes(3000 * 8),
        });
        // Adjacent g structs (they live in the same span).
        for i in 0..3000u64 {
            regions.push(Region {
                addr: 0x00c0_0020_0000 + i * 448,
                kind: RegionKind::G,
                data: rng.bytes(448),
            });
        }
        // Used parts of stacks: the top `len` bytes of 8 KiB stacks.
        for i in 0..1500u64 {
            let len = 200 + rng.below(7800);
            regions.push(Region {
                addr: 0x00c0_0040_0000 + i * 0x2000 + (0x2000 - len),
                kind: RegionKind::Stack,
                data: rng.bytes(len as usize),
            });
        }
        for i in 0..8u64 {
            regions.push(Region {
                addr: 0x00c0_0003_0000 + i * 0x3000,
                kind: RegionKind::P,
                data: rng.bytes(10_000),
            });
            regions.push(Region {
                addr: 0x00c0_0005_0000 + i * 0x600,
                kind: RegionKind::M,
                data: rng.bytes(1_400),
            });
        }
        regions.push(Region {
            addr: 0x00c0_0100_0000,
            kind: RegionKind::Heap,
            data: rng.bytes(6 << 20),
        });
        regions.push(Region {
            addr: 0x00c0_0009_0000,
            kind: RegionKind::Other,
            data: Vec::new(),
        });
        regions.push(Region {
            addr: 0x00c0_000a_0000,
            kind: RegionKind::Other,
            data: rng.bytes(77),
        });
        // Shuffle: the writer must not depend on input order.
        for i in (1..regions.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            regions.swap(i, j);
        }
        let mut binary = b"\x7fELF\x02\x01\x01".to_vec();
        binary.extend(rng.bytes(1_500_000));
        Capture {
            meta: meta(12, &mut rng),
            regions,
            binary: Some(binary),
        }
    }

    /// A small capture for the exhaustive corruption tests: a few chunks of
    /// 64 KiB and a small binary.
    fn small_capture() -> Capture {
        let mut rng = Rng(42);
        let mut regions = Vec::new();
        for i in 0..40u64 {
            let len = 500 + rng.below(2500) as usize;
            regions.push(Region {
                addr: 0x00c0_0000_0000 + i * 4096,
                kind: format::ALL_KINDS[i as usize % 8],
                data: rng.bytes(len),
            });
        }
        regions.push(Region {
            addr: 0x00c1_0000_0000,
            kind: RegionKind::Heap,
            data: rng.bytes(100_000),
        });
        Capture {
            meta: meta(3, &mut rng),
            regions,
            binary: Some(rng.bytes(10_000)),
        }
    }

    fn small_opts() -> WriteOptions {
        WriteOptions {
            chunk_size: 64 << 10,
            ..WriteOptions::default()
        }
    }

    /// Regions in the order the writer stores them.
    fn sorted(regions: &[Region]) -> Vec<Region> {
        let mut v = regions.to_vec();
        v.sort_by_key(|r| r.addr);
        v
    }

    fn assert_same_capture(got: &Capture, want: &Capture) {
        assert_eq!(got.meta, want.meta);
        assert_eq!(got.regions.len(), want.regions.len());
        assert!(got.regions == sorted(&want.regions), "regions differ");
        assert!(got.binary == want.binary, "binary differs");
    }

    fn assert_memory_matches(m: &SparseMemory, regions: &[Region]) {
        for r in regions {
            let mut buf = vec![0u8; r.data.len()];
            m.read_exact(r.addr, &mut buf).unwrap();
            assert!(buf == r.data, "region {:#x} differs", r.addr);
        }
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "gospy-snapshot-test-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Build a file from its parts, computing the layout and every CRC, so
    /// tests can craft well-sealed but hostile files. Chunk `file_offset`s
    /// in `chunks` are relative to the start of `data`.
    fn assemble(
        header: &[u8],
        chunks: &[ChunkEntry],
        regions: &[RegionEntry],
        data: &[u8],
        tweak: impl FnOnce(&mut Preamble),
    ) -> Vec<u8> {
        let mut p = Preamble {
            header_off: PREAMBLE_LEN as u64,
            header_len: header.len() as u64,
            chunk_count: chunks.len() as u64,
            region_count: regions.len() as u64,
            ..Preamble::default()
        };
        p.chunk_table_off = p.header_off + p.header_len;
        p.region_index_off = p.chunk_table_off + (chunks.len() * CHUNK_ENTRY_LEN) as u64;
        let data_off = p.region_index_off + (regions.len() * REGION_ENTRY_LEN) as u64;
        let mut table = Vec::new();
        for c in chunks {
            ChunkEntry {
                file_offset: c.file_offset + data_off,
                ..*c
            }
            .encode(&mut table);
        }
        let mut index = Vec::new();
        for r in regions {
            r.encode(&mut index);
        }
        p.header_crc = crc32(header);
        p.chunk_table_crc = crc32(&table);
        p.region_index_crc = crc32(&index);
        p.file_len = data_off + data.len() as u64;
        tweak(&mut p);
        let mut out = p.encode().to_vec();
        out.extend_from_slice(header);
        out.extend_from_slice(&table);
        out.extend_from_slice(&index);
        out.extend_from_slice(data);
        out
    }

    fn one_chunk(raw: &[u8]) -> (ChunkEntry, Vec<u8>) {
        let frame = compress(raw, 3).unwrap();
        let c = ChunkEntry {
            file_offset: 0,
            comp_len: frame.len() as u32,
            raw_len: raw.len() as u32,
            comp_crc: crc32(&frame),
            raw_crc: crc32(raw),
        };
        (c, frame)
    }

    fn err_of(bytes: Vec<u8>) -> String {
        match SnapshotFile::from_bytes(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    // ----- round trips ----------------------------------------------------

    #[test]
    fn realistic_round_trip_in_memory() {
        let cap = realistic_capture();
        let t = Instant::now();
        let bytes = encode(&cap, &WriteOptions::default()).unwrap();
        let t_enc = t.elapsed();
        let t = Instant::now();
        let snap = SnapshotFile::from_bytes(bytes.clone()).unwrap();
        let loaded = snap.memory().unwrap();
        let t_dec = t.elapsed();
        eprintln!(
            "realistic: {} regions, {} raw bytes -> {} byte file; encode {:?}, open+memory {:?} (debug build)",
            cap.regions.len(),
            cap.regions.iter().map(|r| r.data.len()).sum::<usize>(),
            bytes.len(),
            t_enc,
            t_dec
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_memory_matches(&loaded.memory, &cap.regions);
        assert_eq!(snap.meta, cap.meta);
        assert_eq!(snap.format_version(), 1);
        assert!(snap.has_binary());
        assert_same_capture(&snap.capture().unwrap(), &cap);

        // The index alone describes every region, in address order.
        let want = sorted(&cap.regions);
        assert_eq!(snap.regions().len(), want.len());
        for (e, r) in snap.regions().iter().zip(&want) {
            assert_eq!(
                (e.addr, e.len, e.kind),
                (r.addr, r.data.len() as u64, r.kind)
            );
        }
        // The 6 MiB region spans several 2 MiB chunks.
        assert!(snap.chunks().len() >= 5);
        assert!(snap.chunks().iter().all(|c| c.raw_len <= 2 << 20));

        let st = snap.stats();
        let raw: u64 = cap.regions.iter().map(|r| r.data.len() as u64).sum();
        assert_eq!(st.uncompressed_bytes, raw);
        assert_eq!(st.file_size, bytes.len() as u64);
        assert_eq!(st.regions, cap.regions.len() as u64);
        assert_eq!(st.bytes_of(RegionKind::G), 3000 * 448);
        assert_eq!(st.bytes_of(RegionKind::Heap), 6 << 20);
        assert_eq!(
            st.per_kind.iter().map(|k| k.bytes).sum::<u64>(),
            raw,
            "per-kind bytes add up"
        );
        assert_eq!(st.binary_uncompressed_bytes, 1_500_007);
        assert!(st.compressed_bytes < st.uncompressed_bytes);

        // Deterministic output, and write_to agrees with encode.
        let mut again = Vec::new();
        let st2 = write_to(&mut again, &cap, &WriteOptions::default()).unwrap();
        assert!(again == bytes);
        assert_eq!(st2, st);
    }

    #[test]
    fn small_regions_never_straddle_chunks() {
        let cap = realistic_capture();
        let opts = WriteOptions {
            chunk_size: 64 << 10,
            ..WriteOptions::default()
        };
        let snap = SnapshotFile::from_bytes(encode(&cap, &opts).unwrap()).unwrap();
        for r in snap.regions() {
            if r.len > 0 && r.len <= 64 << 10 {
                let c = &snap.chunks()[r.chunk as usize];
                assert!(u64::from(r.offset) + r.len <= u64::from(c.raw_len));
            }
        }
        // Chunks hold many small regions each.
        assert!(snap.chunks().len() < snap.regions().len() / 20);
        assert_same_capture(&snap.capture().unwrap(), &cap);
    }

    #[test]
    fn empty_capture_round_trips() {
        let cap = Capture::default();
        let bytes = encode(&cap, &WriteOptions::default()).unwrap();
        let snap = SnapshotFile::from_bytes(bytes).unwrap();
        assert_eq!(snap.meta, cap.meta);
        assert!(snap.regions().is_empty() && snap.chunks().is_empty());
        assert!(!snap.has_binary());
        assert_eq!(snap.binary().unwrap(), None);
        let m = snap.memory().unwrap();
        assert_eq!(m.memory.total_bytes(), 0);
        assert_same_capture(&snap.capture().unwrap(), &cap);
    }

    #[test]
    fn writer_rejects_wrapping_region() {
        let cap = Capture {
            regions: vec![Region {
                addr: u64::MAX - 3,
                kind: RegionKind::Other,
                data: vec![0; 8],
            }],
            ..Capture::default()
        };
        let e = encode(&cap, &WriteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("wraps around"), "{e}");
    }

    // ----- files ----------------------------------------------------------

    #[test]
    fn write_file_is_0600_atomic_and_readable() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("cap.gss");
        let cap = small_capture();
        let st = write_file(&path, &cap, &small_opts()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), st.file_size);
        let snap = SnapshotFile::open(&path).unwrap();
        assert_eq!(snap.stats(), st);
        assert_same_capture(&snap.capture().unwrap(), &cap);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cap.gss")]);

        // Overwriting a looser file tightens it to 0600...
        let loose = dir.0.join("loose.gss");
        fs::write(&loose, b"old").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&loose, &cap, &small_opts()).unwrap();
        assert_eq!(mode(&loose), 0o600);
        // ...and never loosens a stricter one.
        let strict = dir.0.join("strict.gss");
        fs::write(&strict, b"old").unwrap();
        fs::set_permissions(&strict, fs::Permissions::from_mode(0o400)).unwrap();
        write_file(&strict, &cap, &small_opts()).unwrap();
        assert_eq!(mode(&strict), 0o400);
        assert!(SnapshotFile::open(&strict).is_ok());

        // A path without a file name is refused before anything is written.
        let e = write_file(Path::new("/"), &cap, &small_opts()).unwrap_err();
        assert!(e.to_string().starts_with("cannot write /"), "{e}");
    }

    #[test]
    fn open_reports_io_errors_with_path() {
        let e = SnapshotFile::open(Path::new("/nonexistent/x.gss"))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("cannot open /nonexistent/x.gss: "),
            "{e}"
        );
    }

    #[test]
    fn open_truncated_file() {
        let dir = TempDir::new("trunc");
        let path = dir.0.join("t.gss");
        write_file(&path, &small_capture(), &small_opts()).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 100).unwrap();
        let e = SnapshotFile::open(&path).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "truncated snapshot: header says {len} bytes, file has {}",
                len - 100
            )
        );
    }

    // ----- damage ---------------------------------------------------------

    #[test]
    fn truncation_anywhere_is_a_clean_error() {
        let bytes = encode(&small_capture(), &small_opts()).unwrap();
        let t = Instant::now();
        let mut cuts: Vec<usize> = (0..400).collect();
        cuts.extend((400..bytes.len()).step_by(61));
        for &cut in &cuts {
            match SnapshotFile::from_bytes(bytes[..cut].to_vec()) {
                Ok(_) => panic!("truncation at {cut} accepted"),
                Err(SnapshotError::Truncated { expected, actual }) => {
                    assert_eq!(actual, cut as u64);
                    assert!(expected > actual);
                }
                Err(SnapshotError::BadMagic) => assert_eq!(cut, 0),
                Err(e) => panic!("truncation at {cut}: unexpected error {e}"),
            }
        }
        eprintln!("{} truncations checked in {:?}", cuts.len(), t.elapsed());
    }

    #[test]
    fn single_bit_flips_are_caught() {
        let cap = small_capture();
        let bytes = encode(&cap, &small_opts()).unwrap();
        let clean = SnapshotFile::from_bytes(bytes.clone()).unwrap();
        let data_start = clean.chunks()[0].file_offset as usize;
        let bin_start = clean.preamble.binary_off as usize;
        assert!(clean.chunks().len() >= 3);

        // Every bit of the preamble, then ~2000 spread over the rest (an odd
        // step, so every bit position within a byte gets its turn).
        let mut bits: Vec<usize> = (0..PREAMBLE_LEN * 8).collect();
        let step = (bytes.len() * 8 / 2000) | 1;
        bits.extend((PREAMBLE_LEN * 8..bytes.len() * 8).step_by(step));
        let t = Instant::now();
        let (mut open_errs, mut chunk_hits, mut bin_hits) = (0, 0, 0);
        for &bit in &bits {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let pos = bit / 8;
            let snap = match SnapshotFile::from_bytes(b) {
                Err(_) => {
                    assert!(pos < data_start, "flip at byte {pos} (in data) broke open");
                    open_errs += 1;
                    continue;
                }
                Ok(s) => s,
            };
            assert!(
                pos >= data_start,
                "flip at byte {pos} (before data) not detected"
            );
            let m = snap.memory().unwrap();
            let bin = snap.binary();
            if pos < bin_start {
                assert_eq!(m.damaged.len(), 1, "flip at {pos}");
                assert!(m.warnings[0].contains("in chunk"), "{}", m.warnings[0]);
                assert!(bin.is_ok());
                chunk_hits += 1;
            } else {
                assert!(m.damaged.is_empty());
                assert!(bin.is_err(), "flip at {pos} in binary not detected");
                bin_hits += 1;
            }
        }
        eprintln!(
            "{} bit flips ({open_errs} rejected at open, {chunk_hits} damaged a chunk, {bin_hits} the binary) in {:?}",
            bits.len(),
            t.elapsed()
        );
        assert!(chunk_hits > 0 && bin_hits > 0);
    }

    #[test]
    fn damaged_chunk_leaves_the_rest_readable() {
        let cap = realistic_capture();
        let opts = WriteOptions {
            chunk_size: 256 << 10,
            ..WriteOptions::default()
        };
        let mut bytes = encode(&cap, &opts).unwrap();
        let clean = SnapshotFile::from_bytes(bytes.clone()).unwrap();
        // Damage a chunk of small regions and one in the middle of the 6 MiB
        // heap region.
        let heap = clean
            .regions()
            .iter()
            .find(|r| r.kind == RegionKind::Heap)
            .copied()
            .unwrap();
        let small_chunk = 2usize;
        let heap_chunk = heap.chunk as usize + 5;
        for c in [small_chunk, heap_chunk] {
            let e = clean.chunks()[c];
            bytes[e.file_offset as usize + e.comp_len as usize / 2] ^= 0x40;
        }
        let snap = SnapshotFile::from_bytes(bytes).unwrap();
        let m = snap.memory().unwrap();
        assert_eq!(m.damaged.len(), 2, "{:?}", m.warnings);
        let mut hit = BTreeSet::new();
        for d in &m.damaged {
            assert!(d.lost_bytes > 0 && !d.regions.is_empty());
            hit.extend(d.regions.iter().copied());
        }
        eprintln!("warnings: {:#?}", m.warnings);
        assert!(m.warnings[0].starts_with(&format!("checksum mismatch in chunk {small_chunk} (")));
        assert!(m.warnings[1].starts_with(&format!(
            "checksum mismatch in chunk {heap_chunk} (1 region 0x"
        )));
        assert!(m.warnings[1].ends_with(", kind Heap)"), "{}", m.warnings[1]);

        // Every region not in a damaged chunk reads back exactly.
        let want = sorted(&cap.regions);
        let mut ok = 0;
        for (i, r) in want.iter().enumerate() {
            if !hit.contains(&i) {
                assert_memory_matches(&m.memory, std::slice::from_ref(r));
                ok += 1;
            } else {
                assert!(!m.memory.contains(r.addr, r.data.len()));
            }
        }
        assert_eq!(ok, want.len() - hit.len());
        assert!(ok > 3500);
        // The heap region lost exactly the damaged chunk's part.
        let heap_data = &want
            .iter()
            .find(|r| r.kind == RegionKind::Heap)
            .unwrap()
            .data;
        let cstart = clean.chunk_starts[heap_chunk];
        let hstart = clean.chunk_starts[heap.chunk as usize] + u64::from(heap.offset);
        let lost_from = (cstart - hstart) as usize;
        let lost_len = clean.chunks()[heap_chunk].raw_len as usize;
        let before = m.memory.read_vec(heap.addr, lost_from).unwrap();
        assert!(before == heap_data[..lost_from]);
        let after_at = lost_from + lost_len;
        let after = m
            .memory
            .read_vec(heap.addr + after_at as u64, heap_data.len() - after_at)
            .unwrap();
        assert!(after == heap_data[after_at..]);
        assert!(m.memory.u8(heap.addr + lost_from as u64).is_err());
        // capture() insists on a whole snapshot.
        assert!(snap.capture().unwrap_err().to_string().contains("in chunk"));
    }

    #[test]
    fn hostile_chunks_are_bounded_warnings() {
        let header = encode_meta(&CaptureMeta::default()).unwrap();
        let region = |addr, len, chunk| RegionEntry {
            addr,
            len,
            kind: RegionKind::Stack,
            chunk,
            offset: 0,
        };
        let good = vec![7u8; 1000];
        let (c0, f0) = one_chunk(&good);

        // 1. A zstd bomb: 32 MiB of zeros declared as 1000 bytes.
        let bomb = compress(&vec![0u8; 32 << 20], 3).unwrap();
        let c1 = ChunkEntry {
            file_offset: f0.len() as u64,
            comp_len: bomb.len() as u32,
            raw_len: 1000,
            comp_crc: crc32(&bomb),
            raw_crc: 0,
        };
        // 2. Same length, different content: caught by the raw CRC.
        let (mut c2, f2) = one_chunk(&[8u8; 1000]);
        c2.file_offset = (f0.len() + bomb.len()) as u64;
        c2.raw_crc = crc32(&good);
        // 3. Not zstd at all.
        let junk = b"this is not a zstd frame".to_vec();
        let c3 = ChunkEntry {
            file_offset: (f0.len() + bomb.len() + f2.len()) as u64,
            comp_len: junk.len() as u32,
            raw_len: 1000,
            comp_crc: crc32(&junk),
            raw_crc: 0,
        };
        let data = [f0, bomb, f2, junk].concat();
        let file = assemble(
            &header,
            &[c0, c1, c2, c3],
            &[
                region(0x1000, 1000, 0),
                region(0x2000, 1000, 1),
                region(0x3000, 1000, 2),
                region(0x4000, 1000, 3),
            ],
            &data,
            |_| {},
        );
        let t = Instant::now();
        let m = SnapshotFile::from_bytes(file).unwrap().memory().unwrap();
        assert!(t.elapsed().as_secs() < 60);
        assert_eq!(m.memory.read_vec(0x1000, 1000).unwrap(), good);
        assert_eq!(m.damaged.len(), 3);
        assert!(
            m.warnings[0].starts_with("decompression error ("),
            "{}",
            m.warnings[0]
        );
        assert!(m.warnings[0].ends_with(" in chunk 1 (1 region 0x2000-0x23e8, kind Stack)"));
        assert_eq!(
            m.warnings[1],
            "checksum mismatch after decompression in chunk 2 (1 region 0x3000-0x33e8, kind Stack)"
        );
        assert!(m.warnings[2].starts_with("decompression error ("));
    }

    // ----- preamble, header and index validation --------------------------

    #[test]
    fn preamble_errors_have_clear_messages() {
        let bytes = encode(&small_capture(), &small_opts()).unwrap();
        assert_eq!(
            err_of(b"\x7fELF\x02\x01\x01\0\0\0".to_vec()),
            "not a gospy snapshot (bad magic)"
        );
        assert_eq!(err_of(Vec::new()), "not a gospy snapshot (bad magic)");
        assert_eq!(
            err_of(b"GOSPY".to_vec()),
            "truncated snapshot: header says 128 bytes, file has 5"
        );

        // A version-7 file (whatever its layout) is refused as newer.
        let mut v7 = bytes.clone();
        v7[8..12].copy_from_slice(&7u32.to_le_bytes());
        let crc = crc32(&v7[..124]);
        v7[124..128].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            err_of(v7),
            "snapshot format version 7 is newer than this gospy supports (1)"
        );
        // A flipped version field without a matching CRC is damage, not news.
        let mut flipped = bytes.clone();
        flipped[8] ^= 4;
        assert_eq!(err_of(flipped), "checksum mismatch in preamble");

        let mut feat = bytes.clone();
        feat[16] = 0x10;
        let crc = crc32(&feat[..124]);
        feat[124..128].copy_from_slice(&crc.to_le_bytes());
        assert!(err_of(feat).contains("required flags 0x10"));

        let mut long = bytes.clone();
        long.extend_from_slice(b"junk");
        assert!(err_of(long).starts_with("snapshot is longer than its header says"));
    }

    #[test]
    fn absurd_counts_are_rejected_up_front() {
        let header = encode_meta(&CaptureMeta::default()).unwrap();
        let e = err_of(assemble(&header, &[], &[], &[], |p| {
            p.region_count = 1 << 40
        }));
        assert_eq!(
            e,
            "snapshot exceeds this reader's limits: 1099511627776 regions declared, the limit is 67108864"
        );
        let e = err_of(assemble(&header, &[], &[], &[], |p| p.region_count = 1000));
        assert!(
            e.starts_with("corrupt snapshot: region index (32000 bytes at offset"),
            "{e}"
        );
        let e = err_of(assemble(&header, &[], &[], &[], |p| {
            p.header_len = u64::MAX
        }));
        assert!(
            e.contains("capture metadata is 18446744073709551615 bytes"),
            "{e}"
        );
        let e = err_of(assemble(&header, &[], &[], &[], |p| {
            p.optional_flags = FLAG_HAS_BINARY;
            p.binary_off = 128;
            p.binary_comp_len = 10;
            p.binary_raw_len = 1 << 50;
        }));
        assert!(
            e.contains("embedded binary is 1125899906842624 bytes"),
            "{e}"
        );

        // A chunk declaring more than 64 MiB.
        let (mut c, f) = one_chunk(b"abc");
        c.raw_len = 100 << 20;
        let e = err_of(assemble(&header, &[c], &[], &f, |_| {}));
        assert!(
            e.contains("chunk 0 declares 104857600 uncompressed bytes"),
            "{e}"
        );
        // Many chunks whose declared total exceeds what the file size allows.
        let (mut c, f) = one_chunk(b"abc");
        c.raw_len = 64 << 20;
        let e = err_of(assemble(&header, &vec![c; 100], &[], &f, |_| {}));
        assert!(
            e.contains("declares 6710886400 uncompressed bytes in a"),
            "{e}"
        );
        // Chunk outside the file.
        let (mut c, f) = one_chunk(b"abc");
        c.file_offset = 1 << 40;
        let e = err_of(assemble(&header, &[c], &[], &f, |_| {}));
        assert!(e.contains("chunk 0 ("), "{e}");

        // Regions pointing outside the data stream.
        let (c, f) = one_chunk(&[1u8; 100]);
        let r = |addr: u64, len: u64, chunk: u32, offset: u32| RegionEntry {
            addr,
            len,
            kind: RegionKind::G,
            chunk,
            offset,
        };
        for (bad, msg) in [
            (r(0x1000, 10, 1, 0), "refers to chunk 1 of 1"),
            (r(0x1000, 10, 0, 100), "starts at offset 100 of chunk 0"),
            (r(0x1000, 101, 0, 0), "runs past the end of the data"),
            (r(u64::MAX, 2, 0, 0), "wraps around the address space"),
        ] {
            let e = err_of(assemble(&header, &[c], &[bad], &f, |_| {}));
            assert!(e.contains(msg), "{e}");
        }
        // A well-formed one for contrast.
        let ok =
            SnapshotFile::from_bytes(assemble(&header, &[c], &[r(0x1000, 100, 0, 0)], &f, |_| {}))
                .unwrap();
        assert_eq!(ok.memory().unwrap().memory.u8(0x1063).unwrap(), 1);
    }

    #[test]
    fn hostile_header_does_not_allocate() {
        // A string length of 2^63 with a valid CRC must fail cleanly.
        let mut header = encode_meta(&CaptureMeta::default()).unwrap();
        header[0..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
        let e = err_of(assemble(&header, &[], &[], &[], |_| {}));
        assert!(
            e.starts_with("corrupt snapshot: capture metadata cannot be decoded"),
            "{e}"
        );
        // Same for a huge sequence count (cmdline, after gospy_version,
        // pid and exe_path).
        let mut header = encode_meta(&CaptureMeta::default()).unwrap();
        header[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = err_of(assemble(&header, &[], &[], &[], |_| {}));
        assert!(
            e.starts_with("corrupt snapshot: capture metadata cannot be decoded"),
            "{e}"
        );
        // A header checksum mismatch is reported as such.
        let mut bytes = encode(&small_capture(), &small_opts()).unwrap();
        bytes[PREAMBLE_LEN + 3] ^= 1;
        assert_eq!(err_of(bytes), "checksum mismatch in capture metadata");
    }

    #[test]
    fn unknown_kinds_read_as_other_and_header_trailer_is_ignored() {
        let mut header = encode_meta(&meta(2, &mut Rng(5))).unwrap();
        header.extend_from_slice(b"future fields");
        let (c, f) = one_chunk(&[3u8; 16]);
        let r = RegionEntry {
            addr: 0x1000,
            len: 16,
            kind: RegionKind::G,
            chunk: 0,
            offset: 0,
        };
        let mut file = assemble(&header, &[c], &[r], &f, |_| {});
        // Patch the kind byte to 200 and re-seal the index CRC.
        let p = Preamble::decode(&file[..128], file.len() as u64).unwrap();
        let at = p.region_index_off as usize;
        file[at + 24] = 200;
        let crc = crc32(&file[at..at + 32]);
        let mut p2 = p.clone();
        p2.region_index_crc = crc;
        file[..128].copy_from_slice(&p2.encode());
        let snap = SnapshotFile::from_bytes(file).unwrap();
        assert_eq!(snap.regions()[0].kind, RegionKind::Other);
        assert_eq!(snap.meta, meta(2, &mut Rng(5)));
    }

    #[test]
    fn extended_preamble_and_unknown_optional_flags_are_accepted() {
        // What a later revision of version 1 may write: 8 more preamble bytes
        // (a new section's fields), a new optional flag, CRC at the new end.
        let cap = small_capture();
        let old = encode(&cap, &small_opts()).unwrap();
        let p = Preamble::decode(&old[..128], old.len() as u64).unwrap();
        let shift = |v: u64| v + 8;
        let mut p2 = Preamble {
            file_len: shift(p.file_len),
            header_off: shift(p.header_off),
            chunk_table_off: shift(p.chunk_table_off),
            region_index_off: shift(p.region_index_off),
            binary_off: shift(p.binary_off),
            optional_flags: p.optional_flags | 0x8000_0000,
            ..p.clone()
        };
        // Chunk frames move too: rewrite the chunk table.
        let clean = SnapshotFile::from_bytes(old.clone()).unwrap();
        let mut table = Vec::new();
        for c in clean.chunks() {
            ChunkEntry {
                file_offset: shift(c.file_offset),
                ..*c
            }
            .encode(&mut table);
        }
        p2.chunk_table_crc = crc32(&table);
        let mut new = p2.encode()[..124].to_vec();
        new[12..16].copy_from_slice(&136u32.to_le_bytes());
        new.extend_from_slice(b"newfield");
        let crc = crc32(&new);
        new.extend_from_slice(&crc.to_le_bytes());
        let t0 = p.chunk_table_off as usize;
        new.extend_from_slice(&old[128..t0]);
        new.extend_from_slice(&table);
        new.extend_from_slice(&old[t0 + table.len()..]);
        let snap = SnapshotFile::from_bytes(new).unwrap();
        assert_eq!(snap.format_version(), 1);
        assert_same_capture(&snap.capture().unwrap(), &cap);
    }

    #[test]
    fn reader_is_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SnapshotFile>();
        send_sync::<LoadedMemory>();
    }

    // ----- the specification ----------------------------------------------

    /// A reader written only from snapshot-format.md (no bincode, no format
    /// module), to check that the document describes the bytes exactly.
    mod independent {
        use crate::model::*;

        pub struct Cur<'a> {
            pub b: &'a [u8],
            pub pos: usize,
        }
        impl<'a> Cur<'a> {
            fn take(&mut self, n: usize) -> &'a [u8] {
                let s = &self.b[self.pos..self.pos + n];
                self.pos += n;
                s
            }
            pub fn u8(&mut self) -> u8 {
                self.take(1)[0]
            }
            pub fn u32(&mut self) -> u32 {
                u32::from_le_bytes(self.take(4).try_into().unwrap())
            }
            pub fn i32(&mut self) -> i32 {
                i32::from_le_bytes(self.take(4).try_into().unwrap())
            }
            pub fn u64(&mut self) -> u64 {
                u64::from_le_bytes(self.take(8).try_into().unwrap())
            }
            fn bool(&mut self) -> bool {
                match self.u8() {
                    0 => false,
                    1 => true,
                    _ => panic!("bad bool"),
                }
            }
            fn string(&mut self) -> String {
                let n = self.u64() as usize;
                String::from_utf8(self.take(n).to_vec()).unwrap()
            }
            fn opt_string(&mut self) -> Option<String> {
                match self.u8() {
                    0 => None,
                    1 => Some(self.string()),
                    _ => panic!("bad option"),
                }
            }
            fn vec<T>(&mut self, f: impl Fn(&mut Self) -> T) -> Vec<T> {
                let n = self.u64();
                (0..n).map(|_| f(self)).collect()
            }
        }

        pub fn meta(c: &mut Cur) -> CaptureMeta {
            CaptureMeta {
                gospy_version: c.string(),
                pid: c.i32(),
                exe_path: c.string(),
                cmdline: c.vec(|c| c.string()),
                hostname: c.string(),
                go_build_id: c.opt_string(),
                gnu_build_id: c.opt_string(),
                go_version: c.string(),
                load_bias: c.u64(),
                wall_time_ns: c.u64(),
                mono_time_ns: c.u64(),
                pause_ns: c.u64(),
                stopped: c.bool(),
                maps: c.vec(|c| MapEntry {
                    start: c.u64(),
                    end: c.u64(),
                    perms: c.string(),
                    offset: c.u64(),
                    path: c.string(),
                }),
                auxv: c.vec(|c| (c.u64(), c.u64())),
                threads: c.vec(|c| ThreadInfo {
                    tid: c.i32(),
                    name: c.string(),
                    state: char::from_u32(c.u32()).unwrap(),
                    regs: match c.u8() {
                        0 => None,
                        1 => {
                            let mut r = [0u64; 27];
                            for v in &mut r {
                                *v = c.u64();
                            }
                            let [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs] = r;
                            Some(Regs {
                                r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx,
                                rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base,
                                ds, es, fs, gs, aarch64: None,
                            })
                        }
                        _ => panic!("bad option"),
                    },
                }),
                warnings: c.vec(|c| c.string()),
                flags: Default::default(),
                arch: Default::default(),
                ns_pid: Vec::new(),
            }
        }

        /// Decode a whole file: (meta, regions (addr, kind code, bytes), binary).
        #[allow(clippy::type_complexity)]
        pub fn read(file: &[u8]) -> (CaptureMeta, Vec<(u64, u8, Vec<u8>)>, Option<Vec<u8>>) {
            let mut p = Cur { b: file, pos: 0 };
            assert_eq!(p.take(8), b"GOSPYSS\0");
            assert_eq!(p.u32(), 1);
            let plen = p.u32() as usize;
            let crc = u32::from_le_bytes(file[plen - 4..plen].try_into().unwrap());
            assert_eq!(crc32fast::hash(&file[..plen - 4]), crc);
            let _required = p.u32();
            let optional = p.u32();
            assert_eq!(p.u64(), file.len() as u64);
            let (hoff, hlen) = (p.u64() as usize, p.u64() as usize);
            let (toff, tcount) = (p.u64() as usize, p.u64() as usize);
            let (ioff, icount) = (p.u64() as usize, p.u64() as usize);
            let (boff, bclen, brlen) = (p.u64() as usize, p.u64() as usize, p.u64() as usize);
            let (hcrc, tcrc, icrc, bccrc, brcrc) = (p.u32(), p.u32(), p.u32(), p.u32(), p.u32());
            let header = &file[hoff..hoff + hlen];
            assert_eq!(crc32fast::hash(header), hcrc);
            let meta = meta(&mut Cur { b: header, pos: 0 });
            let table = &file[toff..toff + tcount * 24];
            assert_eq!(crc32fast::hash(table), tcrc);
            let mut stream = Vec::new();
            let mut starts = Vec::new();
            let mut t = Cur { b: table, pos: 0 };
            for _ in 0..tcount {
                let (off, clen, rlen, ccrc, rcrc) = (
                    t.u64() as usize,
                    t.u32() as usize,
                    t.u32() as usize,
                    t.u32(),
                    t.u32(),
                );
                let frame = &file[off..off + clen];
                assert_eq!(crc32fast::hash(frame), ccrc);
                let raw = zstd::bulk::decompress(frame, rlen).unwrap();
                assert_eq!(raw.len(), rlen);
                assert_eq!(crc32fast::hash(&raw), rcrc);
                starts.push(stream.len());
                stream.extend(raw);
            }
            let index = &file[ioff..ioff + icount * 32];
            assert_eq!(crc32fast::hash(index), icrc);
            let mut x = Cur { b: index, pos: 0 };
            let mut regions = Vec::new();
            for _ in 0..icount {
                let (addr, len, chunk, off) = (
                    x.u64(),
                    x.u64() as usize,
                    x.u32() as usize,
                    x.u32() as usize,
                );
                let kind = x.u8();
                x.take(7);
                let data = if len == 0 {
                    Vec::new()
                } else {
                    let s = starts[chunk] + off;
                    stream[s..s + len].to_vec()
                };
                regions.push((addr, kind, data));
            }
            let binary = (optional & 1 != 0).then(|| {
                let frame = &file[boff..boff + bclen];
                assert_eq!(crc32fast::hash(frame), bccrc);
                let raw = zstd::bulk::decompress(frame, brlen).unwrap();
                assert_eq!(crc32fast::hash(&raw), brcrc);
                raw
            });
            (meta, regions, binary)
        }
    }

    #[test]
    fn independent_reader_agrees() {
        let cap = realistic_capture();
        let bytes = encode(&cap, &WriteOptions::default()).unwrap();
        let (m, regions, binary) = independent::read(&bytes);
        assert_eq!(m, cap.meta);
        let want = sorted(&cap.regions);
        assert_eq!(regions.len(), want.len());
        for ((addr, kind, data), r) in regions.iter().zip(&want) {
            assert_eq!(*addr, r.addr);
            assert_eq!(*kind, kind_code(r.kind));
            assert!(*data == r.data);
        }
        assert_eq!(binary, cap.binary);
    }

    /// The capture behind the worked example in snapshot-format.md.
    fn example_capture() -> Capture {
        Capture {
            meta: CaptureMeta {
                gospy_version: "0.1.0".into(),
                pid: 1234,
                exe_path: "/bin/hello".into(),
                cmdline: vec!["hello".into()],
                hostname: "h".into(),
                go_build_id: Some("abc".into()),
                gnu_build_id: None,
                go_version: "go1.22.1".into(),
                load_bias: 0,
                wall_time_ns: 1_700_000_000_000_000_000,
                mono_time_ns: 5_000_000_000,
                pause_ns: 250_000,
                stopped: true,
                maps: vec![MapEntry {
                    start: 0x400000,
                    end: 0x401000,
                    perms: "r-xp".into(),
                    offset: 0,
                    path: "/bin/hello".into(),
                }],
                auxv: vec![(6, 4096)],
                threads: vec![ThreadInfo {
                    tid: 1234,
                    name: "hello".into(),
                    state: 'S',
                    regs: None,
                }],
                warnings: vec![],
                flags: Default::default(),
                arch: Default::default(),
                ns_pid: Vec::new(),
            },
            regions: vec![
                Region {
                    addr: 0xc000000000,
                    kind: RegionKind::G,
                    data: b"goroutine-1-data".to_vec(),
                },
                Region {
                    addr: 0xc000000010,
                    kind: RegionKind::Stack,
                    data: b"stk:0x42".to_vec(),
                },
            ],
            binary: Some(b"\x7fELF".to_vec()),
        }
    }

    /// `hexdump -C` style, for pasting into the document.
    fn hexdump(b: &[u8]) -> String {
        let mut s = String::new();
        for (i, row) in b.chunks(16).enumerate() {
            let hex: Vec<String> = row.iter().map(|x| format!("{x:02x}")).collect();
            let (a, z) = hex.split_at(hex.len().min(8));
            let ascii: String = row
                .iter()
                .map(|&c| {
                    if (0x20..0x7f).contains(&c) {
                        c as char
                    } else {
                        '.'
                    }
                })
                .collect();
            s += &format!(
                "{:08x}  {:<23}  {:<23}  |{ascii}|\n",
                i * 16,
                a.join(" "),
                z.join(" ")
            );
        }
        s
    }

    /// Prints the worked example: `cargo test print_worked_example -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_worked_example() {
        let bytes = encode(&example_capture(), &WriteOptions::default()).unwrap();
        println!("{}", hexdump(&bytes));
        let p = Preamble::decode(&bytes[..128], bytes.len() as u64).unwrap();
        println!("{p:#?}");
        let snap = SnapshotFile::from_bytes(bytes).unwrap();
        println!("{:#?}\n{:#?}", snap.chunks(), snap.regions());
    }

    /// The hexdump printed in snapshot-format.md is a valid snapshot of
    /// `example_capture()`.
    #[test]
    fn worked_example_in_the_document_decodes() {
        let doc = include_str!("../../../snapshot-format.md");
        let start = doc.find("<!-- example-hexdump -->").expect("marker");
        let mut bytes = Vec::new();
        for line in doc[start..].lines().skip(2) {
            if line.starts_with("```") {
                break;
            }
            let hex = line
                .get(10..58)
                .unwrap_or("")
                .split('|')
                .next()
                .unwrap_or("");
            for h in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(h, 16).unwrap());
            }
        }
        let snap = SnapshotFile::from_bytes(bytes.clone()).unwrap();
        let want = example_capture();
        assert_same_capture(&snap.capture().unwrap(), &want);
        let (m, regions, binary) = independent::read(&bytes);
        assert_eq!(m, want.meta);
        assert_eq!(regions.len(), 2);
        assert_eq!(binary, want.binary);
        // Not required by the format, but worth knowing when the example
        // goes stale: this build's encoder still produces the same bytes.
        let now = encode(&want, &WriteOptions::default()).unwrap();
        if now != bytes {
            eprintln!("note: the document's example differs from the current encoder output");
        }
    }
}
