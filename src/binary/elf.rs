//! ELF-level facts about a Go executable: build ids, Go version, symbols,
//! load segments (as a [`Memory`] for read-only data), entry point.

use crate::memory::{MemError, MemResult, Memory};
use crate::model::Arch;
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file: {0}")]
    NotElf(String),
    #[error("the executable is for {0}; gospy supports x86-64 and arm64")]
    WrongArch(String),
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub writable: bool,
    pub executable: bool,
}

#[derive(Debug, Clone)]
pub struct SectionInfo {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// File range, None for SHT_NOBITS or compressed sections.
    pub file_range: Option<(u64, u64)>,
}

/// An executable's bytes, from memory or a mapping.
pub struct FileBytes(pub bytes::Bytes);

impl From<Arc<[u8]>> for FileBytes {
    fn from(a: Arc<[u8]>) -> Self {
        FileBytes(bytes::Bytes::from_owner(a))
    }
}

impl From<bytes::Bytes> for FileBytes {
    fn from(b: bytes::Bytes) -> Self {
        FileBytes(b)
    }
}

/// The parsed ELF file. Cheap to clone (bytes are shared).
#[derive(Clone)]
pub struct ElfFile {
    /// The file's bytes: read into memory, or mapped (a running process's
    /// own executable, which the kernel keeps from being written).
    pub data: bytes::Bytes,
    /// The instruction set (ELF `e_machine`).
    pub arch: Arch,
    pub entry: u64,
    pub is_pie: bool,
    pub segments: Vec<Segment>,
    pub sections: Vec<SectionInfo>,
    pub go_build_id: Option<String>,
    pub gnu_build_id: Option<String>,
    pub go_version: Option<String>,
    /// Raw `.go.buildinfo` module/settings text (`go version -m` style).
    pub build_info: Option<String>,
    symbols: Arc<OnceLock<HashMap<String, (u64, u64)>>>,
}

impl std::fmt::Debug for ElfFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfFile")
            .field("entry", &self.entry)
            .field("go_version", &self.go_version)
            .field("go_build_id", &self.go_build_id)
            .finish()
    }
}

impl ElfFile {
    pub fn parse(data: impl Into<FileBytes>) -> Result<ElfFile, ElfError> {
        let data = data.into().0;
        let file = object::File::parse(&*data).map_err(|e| ElfError::NotElf(e.to_string()))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(ElfError::NotElf("not ELF".into()));
        }
        let machine = u16::from_le_bytes([data[18], data[19]]);
        let Some(arch) =
            Arch::from_e_machine(machine).filter(|_| file.is_64() && file.is_little_endian())
        else {
            return Err(ElfError::WrongArch(crate::model::machine_name(machine)));
        };
        let is_pie = matches!(file.kind(), object::ObjectKind::Dynamic);
        let mut segments = Vec::new();
        for seg in file.segments() {
            let (offset, filesz) = seg.file_range();
            let flags = seg.flags();
            let (writable, executable) = match flags {
                object::SegmentFlags::Elf { p_flags } => (p_flags & 2 != 0, p_flags & 1 != 0),
                _ => (false, false),
            };
            segments.push(Segment {
                vaddr: seg.address(),
                memsz: seg.size(),
                offset,
                filesz,
                writable,
                executable,
            });
        }
        let mut sections = Vec::new();
        for s in file.sections() {
            let name = s.name().unwrap_or("").to_string();
            let compressed = s
                .compressed_file_range()
                .map(|r| r.format != object::CompressionFormat::None)
                .unwrap_or(true);
            let file_range = if compressed { None } else { s.file_range() };
            sections.push(SectionInfo {
                name,
                addr: s.address(),
                size: s.size(),
                file_range,
            });
        }
        let gnu_build_id = file.build_id().ok().flatten().map(hex);
        let go_build_id = file
            .section_by_name(".note.go.buildid")
            .and_then(|s| s.data().ok())
            .and_then(parse_go_buildid_note);
        let (go_version, build_info) = match file
            .section_by_name(".go.buildinfo")
            .and_then(|s| s.data().ok())
        {
            Some(d) => parse_buildinfo(d, &segments, &data),
            None => (None, None),
        };
        Ok(ElfFile {
            arch,
            entry: file.entry(),
            is_pie,
            segments,
            sections,
            go_build_id,
            gnu_build_id,
            go_version,
            build_info,
            data,
            symbols: Arc::new(OnceLock::new()),
        })
    }

    pub fn section(&self, name: &str) -> Option<&SectionInfo> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Bytes of an uncompressed section.
    pub fn section_data(&self, name: &str) -> Option<&[u8]> {
        let s = self.section(name)?;
        let (off, len) = s.file_range?;
        self.data.get(off as usize..(off + len) as usize)
    }

    /// `.symtab` as name -> (address, size); empty when stripped.
    pub fn symbols(&self) -> &HashMap<String, (u64, u64)> {
        self.symbols.get_or_init(|| {
            let mut m = HashMap::new();
            if let Ok(file) = object::File::parse(&*self.data) {
                for s in file.symbols() {
                    if let Ok(n) = s.name() {
                        if !n.is_empty() {
                            m.insert(n.to_string(), (s.address(), s.size()));
                        }
                    }
                }
            }
            m
        })
    }

    pub fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        self.symbols().get(name).copied()
    }

    pub fn has_symtab(&self) -> bool {
        self.section(".symtab").is_some()
    }

    /// Read bytes at a link-time virtual address from the file image.
    pub fn read_vaddr(&self, addr: u64, buf: &mut [u8], include_writable: bool) -> bool {
        let len = buf.len() as u64;
        for seg in &self.segments {
            if seg.writable && !include_writable {
                continue;
            }
            if addr >= seg.vaddr && addr.saturating_add(len) <= seg.vaddr + seg.filesz {
                let off = (seg.offset + (addr - seg.vaddr)) as usize;
                if let Some(src) = self.data.get(off..off + buf.len()) {
                    buf.copy_from_slice(src);
                    return true;
                }
            }
        }
        false
    }

    /// Bytes from link-time `addr` to the end of its file-backed segment.
    pub fn vaddr_tail(&self, addr: u64) -> Option<&[u8]> {
        for seg in &self.segments {
            if addr >= seg.vaddr && addr < seg.vaddr + seg.filesz {
                let off = (seg.offset + (addr - seg.vaddr)) as usize;
                let end = (seg.offset + seg.filesz) as usize;
                return self.data.get(off..end);
            }
        }
        None
    }

    /// The text segment range (link-time), for validating return addresses.
    pub fn text_range(&self) -> (u64, u64) {
        self.segments
            .iter()
            .filter(|s| s.executable)
            .map(|s| (s.vaddr, s.vaddr + s.memsz))
            .fold((u64::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)))
    }

    /// Both build ids in one human string for error messages.
    pub fn build_id_string(&self) -> String {
        build_id_string(self.go_build_id.as_deref(), self.gnu_build_id.as_deref())
    }
}

pub fn build_id_string(go: Option<&str>, gnu: Option<&str>) -> String {
    match (go, gnu) {
        (Some(g), Some(n)) => format!("go:{g} gnu:{n}"),
        (Some(g), None) => format!("go:{g}"),
        (None, Some(n)) => format!("gnu:{n}"),
        (None, None) => "none".to_string(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `.note.go.buildid`: namesz=4, descsz, type=4, "Go\0\0", desc.
fn parse_go_buildid_note(d: &[u8]) -> Option<String> {
    if d.len() < 16 {
        return None;
    }
    let namesz = u32::from_le_bytes(d[0..4].try_into().ok()?) as usize;
    let descsz = u32::from_le_bytes(d[4..8].try_into().ok()?) as usize;
    let typ = u32::from_le_bytes(d[8..12].try_into().ok()?);
    if namesz != 4 || typ != 4 || d.get(12..16)? != b"Go\0\0" {
        return None;
    }
    let desc = d.get(16..16usize.checked_add(descsz)?)?;
    Some(
        String::from_utf8_lossy(desc)
            .trim_end_matches('\0')
            .to_string(),
    )
}

fn read_uvarint(d: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &b) in d.iter().enumerate().take(10) {
        x |= ((b & 0x7f) as u64) << (7 * i);
        if b < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// `.go.buildinfo`: 14-byte magic "\xff Go buildinf:", ptrsize, flags; with
/// flags&2 (Go 1.18+) the version and module info follow at offset 32 as
/// varint-prefixed strings; older binaries hold two pointers to Go strings.
fn parse_buildinfo(d: &[u8], segs: &[Segment], file: &[u8]) -> (Option<String>, Option<String>) {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    if d.len() < 32 || &d[..14] != MAGIC {
        return (None, None);
    }
    let flags = d[15];
    if flags & 2 != 0 {
        let mut rest = &d[32..];
        let mut strs = Vec::new();
        for _ in 0..2 {
            match read_uvarint(rest) {
                Some((n, k)) if k + (n as usize) <= rest.len() => {
                    strs.push(String::from_utf8_lossy(&rest[k..k + n as usize]).into_owned());
                    rest = &rest[k + n as usize..];
                }
                _ => break,
            }
        }
        let version = strs.first().cloned().filter(|s| !s.is_empty());
        // modinfo is wrapped in 16-byte sentinels.
        let info = strs.get(1).map(|s| {
            if s.len() >= 33 {
                s[16..s.len() - 16].to_string()
            } else {
                s.clone()
            }
        });
        return (version, info);
    }
    // Pre-1.18 pointer format: ptrsize at d[14], pointers at 16 and 16+ptrsize.
    let read_ptr = |a: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        for s in segs {
            if a >= s.vaddr && a + 8 <= s.vaddr + s.filesz {
                let o = (s.offset + a - s.vaddr) as usize;
                b.copy_from_slice(file.get(o..o + 8)?);
                return Some(u64::from_le_bytes(b));
            }
        }
        None
    };
    let sp = u64::from_le_bytes(d[16..24].try_into().unwrap_or([0; 8]));
    let version = (|| {
        let p = read_ptr(sp)?;
        let n = read_ptr(sp + 8)? as usize;
        for s in segs {
            if p >= s.vaddr && p + n as u64 <= s.vaddr + s.filesz {
                let o = (s.offset + p - s.vaddr) as usize;
                return Some(String::from_utf8_lossy(file.get(o..o + n)?).into_owned());
            }
        }
        None
    })();
    (version, None)
}

/// Parse "go1.22.10" / "go1.27rc1" / "devel go1.23-abc" into (major, minor).
pub fn parse_go_version(v: &str) -> Option<(u32, u32)> {
    let i = v.find("go1.")?;
    let rest = &v[i + 2..];
    let mut it = rest.split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Read-only view of the executable's file-backed, non-writable segments at
/// runtime addresses (link-time + bias). Writable segments are left to the
/// snapshot: their file contents are only initial values.
#[derive(Clone)]
pub struct ImageMemory {
    pub elf: ElfFile,
    pub bias: u64,
}

impl Memory for ImageMemory {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        if self
            .elf
            .read_vaddr(addr.wrapping_sub(self.bias), buf, false)
        {
            Ok(())
        } else {
            Err(MemError {
                addr,
                len: buf.len(),
                why: "not in the executable's read-only segments",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn go_versions() {
        assert_eq!(parse_go_version("go1.22.10"), Some((1, 22)));
        assert_eq!(parse_go_version("go1.27rc1"), Some((1, 27)));
        assert_eq!(parse_go_version("devel go1.23-abc"), Some((1, 23)));
        assert_eq!(parse_go_version("go1.19"), Some((1, 19)));
        assert_eq!(parse_go_version("x"), None);
    }
    #[test]
    fn buildid_note() {
        let mut d = vec![4, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0];
        d.extend_from_slice(b"Go\0\0abcde\0\0\0");
        assert_eq!(parse_go_buildid_note(&d).as_deref(), Some("abcde"));
        assert_eq!(parse_go_buildid_note(&d[..10]), None);
    }
}
