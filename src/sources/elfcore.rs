//! ELF core files (gdb's gcore, the kernel, systemd-coredump's zstd-compressed
//! cores) as analysis input: memory from the PT_LOAD segments, threads and
//! registers from NT_PRSTATUS notes, the auxiliary vector and mapped files
//! from NT_AUXV / NT_FILE. The executable's read-only image sits under the
//! core's memory exactly as under a snapshot's.

use super::source::{ExeHint, Source, SourceMemory};
use crate::memory::{MemError, MemResult, Memory};
use crate::model::{Aarch64Regs, Arch, CaptureMeta, MapEntry, Regs, ThreadInfo};
use anyhow::{anyhow, Context, Result};
use std::path::Path;

const ET_CORE: u16 = 4;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_FILE: u32 = 0x4649_4c45;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Largest zero-filled tail (memsz beyond filesz) gospy materialises.
const MAX_ZERO_TAIL: u64 = 1 << 30;
/// Bounds on note contents.
const MAX_THREADS: usize = 1 << 20;
const MAX_FILES: u64 = 1 << 20;

/// The core's bytes: mapped from disk, or decompressed.
enum Backing {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
}

/// Memory of a core file: each PT_LOAD's file bytes, zero-filled up to its
/// memsz. Segments with no file bytes at all (the kernel's way of leaving out
/// file-backed text) are absent, so reads fall through to the executable.
pub struct CoreMemory {
    data: Backing,
    segs: Vec<Seg>,
}

impl CoreMemory {
    fn seg_at(&self, addr: u64) -> Option<&Seg> {
        let i = self.segs.partition_point(|s| s.vaddr <= addr);
        let s = self.segs.get(i.checked_sub(1)?)?;
        (addr < s.vaddr.saturating_add(s.memsz)).then_some(s)
    }

    /// Address ranges present in the core.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.segs.iter().map(|s| (s.vaddr, s.memsz))
    }
}

impl Memory for CoreMemory {
    fn captured_bytes(&self) -> Option<u64> {
        // File-backed bytes: zero-filled tails hold no frames.
        Some(self.segs.iter().map(|s| s.filesz.min(s.memsz)).sum())
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let s = self.seg_at(addr)?;
        let off = addr - s.vaddr;
        if off.checked_add(len as u64)? > s.filesz.min(s.memsz) {
            return None;
        }
        let start = s.offset.checked_add(off)? as usize;
        self.data.bytes().get(start..start.checked_add(len)?)
    }
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        let len = buf.len();
        let err = |why| MemError { addr, len, why };
        let bytes = self.data.bytes();
        let mut done = 0usize;
        while done < buf.len() {
            let cur = addr
                .checked_add(done as u64)
                .ok_or(err("address overflow"))?;
            let s = self.seg_at(cur).ok_or(err("not in core file"))?;
            let off = cur - s.vaddr;
            let n = ((s.memsz - off) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            if off >= s.filesz {
                dst.fill(0);
            } else {
                let from_file = ((s.filesz - off) as usize).min(n);
                let start = s.offset.checked_add(off).ok_or(err("bad core segment"))? as usize;
                let src = bytes
                    .get(start..start.saturating_add(from_file))
                    .ok_or(err("core file truncated"))?;
                dst[..from_file].copy_from_slice(src);
                dst[from_file..].fill(0);
            }
            done += n;
        }
        Ok(())
    }
}

/// A mapped file listed in NT_FILE.
#[derive(Debug, Clone)]
pub struct MappedFile {
    pub start: u64,
    pub end: u64,
    /// File offset in bytes.
    pub offset: u64,
    pub path: String,
}

/// Everything read from a core file.
pub struct Core {
    /// The machine the core is for (ELF `e_machine`).
    pub arch: Arch,
    pub memory: CoreMemory,
    pub threads: Vec<ThreadInfo>,
    pub auxv: Vec<(u64, u64)>,
    pub files: Vec<MappedFile>,
    pub pid: i32,
    /// Command name (NT_PRPSINFO pr_fname).
    pub comm: String,
    /// Command line (NT_PRPSINFO pr_psargs, truncated by the kernel to 80 bytes).
    pub args: String,
    /// The signal that made the core (NT_PRSTATUS pr_cursig of the first
    /// thread that has one; 0 when none, e.g. gcore's cores).
    pub signal: i32,
    pub warnings: Vec<String>,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Whether a file starting with `head` is an ELF core (possibly
/// zstd-compressed: decided after decompression).
pub fn claims(head: &[u8]) -> bool {
    if head.len() < 18 {
        return false;
    }
    head[..4] == ZSTD_MAGIC
        || (head[..4] == *b"\x7fELF" && u16::from_le_bytes([head[16], head[17]]) == ET_CORE)
}

/// Whether the file at `path` is an ELF core (possibly zstd-compressed).
pub fn is_core_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 18];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    f.read_exact(&mut head).is_ok() && claims(&head)
}

fn nul_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Core {
    pub fn open(path: &Path) -> Result<Core> {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the mapping is read-only and private; a core file changing
        // underneath would at worst give wrong bytes, which every decoder
        // already tolerates.
        let map = unsafe { memmap2::Mmap::map(&f) }
            .with_context(|| format!("mapping {}", path.display()))?;
        let data = if map.len() >= 4 && map[..4] == ZSTD_MAGIC {
            let v = zstd::stream::decode_all(&map[..])
                .with_context(|| format!("decompressing {} (zstd)", path.display()))?;
            Backing::Owned(v)
        } else {
            Backing::Map(map)
        };
        Core::parse(data)
    }

    /// Parse a core from memory (used by tests and for decompressed cores).
    pub fn from_bytes(data: Vec<u8>) -> Result<Core> {
        Core::parse(Backing::Owned(data))
    }

    fn parse(data: Backing) -> Result<Core> {
        let b = data.bytes();
        if b.len() < 64 || b[..4] != *b"\x7fELF" {
            return Err(anyhow!("not an ELF file"));
        }
        if b[4] != 2 || b[5] != 1 {
            return Err(anyhow!("not a 64-bit little-endian ELF core"));
        }
        if u16_at(b, 16) != Some(ET_CORE) {
            return Err(anyhow!("not an ELF core file (e_type is not ET_CORE)"));
        }
        let machine = u16_at(b, 18).unwrap_or(0);
        let Some(arch) = Arch::from_e_machine(machine) else {
            return Err(anyhow!(
                "core file is for {}; gospy supports x86-64 and arm64",
                crate::model::machine_name(machine)
            ));
        };
        let phoff = u64_at(b, 32).unwrap_or(0) as usize;
        let phentsize = u16_at(b, 54).unwrap_or(0) as usize;
        let phnum = u16_at(b, 56).unwrap_or(0) as usize;
        if phentsize < 56 {
            return Err(anyhow!("core file has a bad program header size"));
        }
        let mut segs = Vec::new();
        let mut notes: Vec<(usize, usize)> = Vec::new();
        let mut warnings = Vec::new();
        for i in 0..phnum {
            let o = phoff + i * phentsize;
            let (Some(ty), Some(off), Some(vaddr), Some(filesz), Some(memsz)) = (
                u32_at(b, o),
                u64_at(b, o + 8),
                u64_at(b, o + 16),
                u64_at(b, o + 32),
                u64_at(b, o + 40),
            ) else {
                return Err(anyhow!("core file truncated in its program headers"));
            };
            match ty {
                PT_LOAD if filesz > 0 => {
                    let mut filesz = filesz;
                    if off.saturating_add(filesz) > b.len() as u64 {
                        warnings.push(format!(
                            "core segment at {vaddr:#x} is truncated in the file"
                        ));
                        filesz = (b.len() as u64).saturating_sub(off);
                    }
                    let memsz = if memsz.saturating_sub(filesz) > MAX_ZERO_TAIL {
                        filesz
                    } else {
                        memsz.max(filesz)
                    };
                    segs.push(Seg {
                        vaddr,
                        memsz,
                        offset: off,
                        filesz,
                    });
                }
                PT_NOTE => notes.push((off as usize, filesz as usize)),
                _ => {}
            }
        }
        segs.sort_by_key(|s| s.vaddr);

        let mut threads = Vec::new();
        let mut auxv = Vec::new();
        let mut files = Vec::new();
        let (mut pid, mut comm, mut args) = (0i32, String::new(), String::new());
        let mut signal = 0i32;
        for (off, len) in notes {
            let Some(n) = b.get(off..off.saturating_add(len)) else {
                warnings.push("core note segment truncated".into());
                continue;
            };
            let mut p = 0usize;
            while p + 12 <= n.len() {
                let namesz = u32_at(n, p).unwrap_or(0) as usize;
                let descsz = u32_at(n, p + 4).unwrap_or(0) as usize;
                let ty = u32_at(n, p + 8).unwrap_or(0);
                let name_at = p + 12;
                let desc_at = name_at + namesz.div_ceil(4) * 4;
                let Some(desc) = n.get(desc_at..desc_at.saturating_add(descsz)) else {
                    warnings.push("core note truncated".into());
                    break;
                };
                let name = n
                    .get(name_at..name_at + namesz)
                    .map(nul_str)
                    .unwrap_or_default();
                p = desc_at + descsz.div_ceil(4) * 4;
                if name != "CORE" {
                    continue;
                }
                match ty {
                    NT_PRSTATUS
                        if desc.len() >= 112 + regs_words(arch) * 8
                            && threads.len() < MAX_THREADS =>
                    {
                        let tid = u32_at(desc, 32).unwrap_or(0) as i32;
                        if signal == 0 {
                            signal = i32::from(u16_at(desc, 12).unwrap_or(0));
                        }
                        let r: Vec<u64> = (0..regs_words(arch))
                            .map(|i| u64_at(desc, 112 + i * 8).unwrap_or(0))
                            .collect();
                        threads.push(ThreadInfo {
                            tid,
                            name: String::new(),
                            // Every thread of a core is stopped.
                            state: 't',
                            regs: Some(match arch {
                                Arch::X86_64 => regs_from(&r),
                                Arch::Aarch64 => aarch64_regs_from(&r),
                            }),
                        });
                    }
                    NT_PRPSINFO if desc.len() >= 136 => {
                        pid = u32_at(desc, 24).unwrap_or(0) as i32;
                        comm = nul_str(&desc[40..56]);
                        args = nul_str(&desc[56..136]).trim_end().to_string();
                    }
                    NT_AUXV => {
                        for c in desc.chunks_exact(16) {
                            let (t, v) = (u64_at(c, 0).unwrap_or(0), u64_at(c, 8).unwrap_or(0));
                            if t == 0 {
                                break;
                            }
                            auxv.push((t, v));
                        }
                    }
                    NT_FILE => match parse_nt_file(desc) {
                        Some(f) => files = f,
                        None => warnings.push("unreadable NT_FILE note".into()),
                    },
                    _ => {}
                }
            }
        }
        for t in &mut threads {
            t.name = comm.clone();
        }
        if threads.is_empty() {
            warnings.push("the core file has no thread (NT_PRSTATUS) notes".into());
        }
        Ok(Core {
            arch,
            memory: CoreMemory { data, segs },
            threads,
            auxv,
            files,
            pid,
            comm,
            args,
            signal,
            warnings,
        })
    }
}

/// Words of NT_PRSTATUS `pr_reg` (x86-64 `user_regs_struct`, AArch64
/// `user_pt_regs`).
fn regs_words(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => 27,
        Arch::Aarch64 => Aarch64Regs::WORDS,
    }
}

fn aarch64_regs_from(r: &[u64]) -> Regs {
    let mut w = [0u64; Aarch64Regs::WORDS];
    w.copy_from_slice(&r[..Aarch64Regs::WORDS]);
    Regs {
        aarch64: Some(Aarch64Regs::from_words(&w)),
        ..Regs::default()
    }
}

fn regs_from(r: &[u64]) -> Regs {
    Regs {
        r15: r[0],
        r14: r[1],
        r13: r[2],
        r12: r[3],
        rbp: r[4],
        rbx: r[5],
        r11: r[6],
        r10: r[7],
        r9: r[8],
        r8: r[9],
        rax: r[10],
        rcx: r[11],
        rdx: r[12],
        rsi: r[13],
        rdi: r[14],
        orig_rax: r[15],
        rip: r[16],
        cs: r[17],
        eflags: r[18],
        rsp: r[19],
        ss: r[20],
        fs_base: r[21],
        gs_base: r[22],
        ds: r[23],
        es: r[24],
        fs: r[25],
        gs: r[26],
        aarch64: None,
    }
}

/// NT_FILE: count, page size, count × {start, end, page offset}, then count
/// NUL-terminated paths.
fn parse_nt_file(d: &[u8]) -> Option<Vec<MappedFile>> {
    let count = u64_at(d, 0)?;
    let page = u64_at(d, 8)?;
    if count > MAX_FILES {
        return None;
    }
    let mut names = d.get(16 + count as usize * 24..)?.split(|&c| c == 0);
    let mut out = Vec::new();
    for i in 0..count as usize {
        let o = 16 + i * 24;
        let path = String::from_utf8_lossy(names.next()?).into_owned();
        out.push(MappedFile {
            start: u64_at(d, o)?,
            end: u64_at(d, o + 8)?,
            offset: u64_at(d, o + 16)?.checked_mul(page)?,
            path,
        });
    }
    Some(out)
}

const AT_ENTRY: u64 = 9;

impl Core {
    /// AT_ENTRY, from the auxiliary vector.
    fn entry(&self) -> Option<u64> {
        self.auxv.iter().find(|a| a.0 == AT_ENTRY).map(|a| a.1)
    }

    /// The executable according to NT_FILE: the mapping of AT_ENTRY, else
    /// the first mapping of file offset 0.
    pub fn exe_path(&self) -> Option<String> {
        self.entry()
            .and_then(|e| self.files.iter().find(|f| e >= f.start && e < f.end))
            .or_else(|| self.files.iter().find(|f| f.offset == 0))
            .map(|f| f.path.clone())
    }
}

/// Open an ELF core file for analysis. The executable is found later
/// (`exe::find`): `--bin`, else the file mapped at the entry point, checked
/// against the core's copy of its build-id notes when the core has them.
pub fn open(path: &Path) -> Result<Source> {
    let core = Core::open(path).with_context(|| format!("{}", path.display()))?;
    let exe_file = core.exe_path();
    let lowest_map = core
        .files
        .iter()
        .filter(|f| Some(&f.path) == exe_file.as_ref())
        .map(|f| f.start)
        .min();
    let maps = core
        .files
        .iter()
        .map(|f| MapEntry {
            start: f.start,
            end: f.end,
            perms: String::new(),
            offset: f.offset,
            path: f.path.clone(),
        })
        .collect();
    // Build ids, Go version, load bias and (without NT_FILE) the path come
    // from the executable once it is found.
    let meta = CaptureMeta {
        gospy_version: env!("CARGO_PKG_VERSION").to_string(),
        pid: core.pid,
        exe_path: String::new(),
        cmdline: core.args.split_whitespace().map(str::to_string).collect(),
        hostname: String::new(),
        wall_time_ns: core_wall_time_ns(path, core.pid),
        // The monotonic clock of the dump is unknown: wait times are omitted.
        mono_time_ns: 0,
        pause_ns: 0,
        stopped: true,
        maps,
        auxv: core.auxv.clone(),
        threads: core.threads.clone(),
        arch: core.arch,
        ..Default::default()
    };
    Ok(Source {
        exe: ExeHint::Mapped {
            has_entry: core.entry().is_some(),
            path: exe_file,
            lowest_map,
        },
        meta,
        warnings: core.warnings,
        memory: SourceMemory::Ready(Box::new(core.memory)),
    })
}

/// The crash time: from a systemd-coredump file name, else the file's
/// modification time (a kernel core holds no wall-clock time); 0 if unknown.
fn core_wall_time_ns(path: &Path, pid: i32) -> u64 {
    coredump_name_time_ns(path, pid).unwrap_or_else(|| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// The crash time systemd-coredump puts in its file names,
/// `core.COMM.UID.BOOT_ID.PID.USEC[.zst|.xz|.lz4]` (microseconds since the
/// epoch), in nanoseconds; None unless the name has that shape and its PID is
/// the core's.
pub fn coredump_name_time_ns(path: &Path, pid: i32) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let name = [".zst", ".xz", ".lz4"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    let rest = name.strip_prefix("core.")?;
    let mut parts = rest.rsplitn(3, '.');
    let usec = parts.next()?;
    let file_pid = parts.next()?;
    parts.next()?; // COMM.UID.BOOT_ID
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(usec) || !all_digits(file_pid) || file_pid.parse::<i32>().ok()? != pid {
        return None;
    }
    usec.parse::<u64>().ok()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::coredump_name_time_ns;
    use std::path::Path;

    /// An ELF core header for `machine` with one PT_NOTE holding one
    /// NT_PRSTATUS of `desc_len` bytes, registers numbered from 1.
    fn core_with_prstatus(machine: u16, desc_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&super::ET_CORE.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let mut note = Vec::new();
        note.extend_from_slice(&5u32.to_le_bytes());
        note.extend_from_slice(&(desc_len as u32).to_le_bytes());
        note.extend_from_slice(&super::NT_PRSTATUS.to_le_bytes());
        note.extend_from_slice(b"CORE\0\0\0\0");
        let mut desc = vec![0u8; desc_len];
        desc[32..36].copy_from_slice(&77u32.to_le_bytes()); // pr_pid
        for i in 0..(desc_len - 112) / 8 {
            desc[112 + 8 * i..120 + 8 * i].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        }
        note.extend_from_slice(&desc);
        let ph = 64;
        b[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        b[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        b.extend_from_slice(&note);
        b
    }

    #[test]
    fn aarch64_prstatus_registers() {
        let core = super::Core::from_bytes(core_with_prstatus(183, 392)).unwrap();
        assert_eq!(core.arch, crate::model::Arch::Aarch64);
        assert_eq!(core.threads.len(), 1);
        assert_eq!(core.threads[0].tid, 77);
        let r = core.threads[0].regs.unwrap();
        // x0 = 1 ... x30 = 31, sp = 32, pc = 33, pstate = 34.
        assert_eq!((r.g(), r.fp(), r.lr()), (Some(29), 30, Some(31)));
        assert_eq!((r.sp(), r.pc()), (32, 33));
        assert_eq!(r.aarch64.unwrap().pstate, 34);
        assert_eq!(r.rip, 0);
        let x86 = super::Core::from_bytes(core_with_prstatus(62, 336)).unwrap();
        let r = x86.threads[0].regs.unwrap();
        assert_eq!((r.rip, r.rsp, r.aarch64), (17, 20, None));
    }

    #[test]
    fn other_machines_are_named() {
        let err = |m| {
            super::Core::from_bytes(core_with_prstatus(m, 392))
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            err(243),
            "core file is for riscv64; gospy supports x86-64 and arm64"
        );
        assert_eq!(
            err(9999),
            "core file is for ELF machine 9999; gospy supports x86-64 and arm64"
        );
    }

    #[test]
    fn systemd_coredump_names() {
        let t = |n: &str, pid| coredump_name_time_ns(Path::new(n), pid);
        let boot = "0123456789abcdef0123456789abcdef";
        let name =
            format!("/var/lib/systemd/coredump/core.my.app.1000.{boot}.4242.1700000000123456.zst");
        assert_eq!(t(&name, 4242), Some(1_700_000_000_123_456_000));
        assert_eq!(t(&name, 4243), None, "another pid");
        let plain = format!("core.app.0.{boot}.7.1700000000123456");
        assert_eq!(t(&plain, 7), Some(1_700_000_000_123_456_000));
        for bad in [
            "core",
            "core.4242",
            "core.x.4242.abc.zst",
            "snap.gss",
            "core...",
        ] {
            assert_eq!(t(bad, 4242), None, "{bad}");
        }
        assert_eq!(t("core.a.b.4242.99999999999999999999999", 4242), None);
    }
}

/// What `gospy info CORE` shows.
#[derive(Debug, serde::Serialize)]
pub struct CoreInfo {
    pub file: String,
    pub file_size: u64,
    /// zstd-compressed (systemd-coredump).
    pub compressed: bool,
    /// The machine (GOARCH name: amd64, arm64).
    pub arch: String,
    /// NT_PRPSINFO.
    pub pid: i32,
    pub comm: String,
    pub cmdline: String,
    /// The signal that made the core (0: none recorded, e.g. gcore).
    pub signal: i32,
    /// NT_PRSTATUS notes, one per thread.
    pub threads: usize,
    pub thread_ids: Vec<i32>,
    /// PT_LOAD segments with bytes in the file, and their size.
    pub memory_segments: usize,
    pub memory_bytes: u64,
    /// NT_FILE entries.
    pub mapped_files: usize,
    /// The executable according to NT_FILE (the mapping of AT_ENTRY).
    pub exe_path: Option<String>,
    /// Where the executable used for the Go details came from (--bin or
    /// exe_path), when it was found and matches the core.
    pub binary: Option<String>,
    /// Why there are no Go details.
    pub binary_error: Option<String>,
    pub go_version: Option<String>,
    pub go_build_id: Option<String>,
    pub gnu_build_id: Option<String>,
    /// The crash time (systemd-coredump file name, else the file's mtime).
    pub capture_wall_time_ns: u64,
    pub warnings: Vec<String>,
}

/// Reads what `gospy info` reports from a core file's own notes; the Go
/// details (`binary`, `go_version`, build ids) are left for the caller,
/// which loads the executable as an analysis would.
pub fn core_info(path: &Path) -> Result<CoreInfo> {
    let file_size = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    let compressed = {
        use std::io::Read;
        let mut head = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && head == ZSTD_MAGIC
    };
    let core = Core::open(path).with_context(|| format!("{}", path.display()))?;
    Ok(CoreInfo {
        file: path.display().to_string(),
        file_size,
        compressed,
        arch: core.arch.goarch().to_string(),
        pid: core.pid,
        comm: core.comm.clone(),
        cmdline: core.args.clone(),
        signal: core.signal,
        threads: core.threads.len(),
        thread_ids: core.threads.iter().map(|t| t.tid).collect(),
        memory_segments: core.memory.segs.len(),
        memory_bytes: core.memory.segs.iter().map(|s| s.filesz).sum(),
        mapped_files: core.files.len(),
        exe_path: core.exe_path(),
        binary: None,
        binary_error: None,
        go_version: None,
        go_build_id: None,
        gnu_build_id: None,
        capture_wall_time_ns: core_wall_time_ns(path, core.pid),
        warnings: core.warnings,
    })
}
