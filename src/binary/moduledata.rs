//! Locating and decoding `runtime.firstmoduledata` (and through it the
//! pclntab) in a Go ELF executable, linux/amd64, Go 1.19–1.27.
//!
//! Without a symbol table the moduledata is found the way the runtime's own
//! data points at it: its first word is the address of the pcHeader. So we
//! locate the pclntab (`.gopclntab`, `.data.rel.ro.gopclntab`, or by scanning
//! for the pcHeader magic when an external linker merged the section away),
//! then scan `.go.module` (1.26+), `.noptrdata`, `.data`, `.data.rel.ro` for
//! an aligned word equal to its address, and validate every candidate against
//! the pcHeader's table offsets.
//!
//! The file holds link-time pointer values (Go's internal linker and GNU ld
//! both write them, next to the `R_X86_64_RELATIVE` relocations of PIE
//! builds); when a relocation covers a word, its addend is used instead, so
//! linkers that leave the words zero (lld) work as well.

use std::collections::HashMap;
use std::sync::OnceLock;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

use super::pclntab::{PclnError, Pclntab, GO118_MAGIC, GO120_MAGIC};

/// The fields of `runtime.moduledata` gospy needs. All addresses are link-time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleData {
    /// Address of the moduledata itself.
    pub addr: u64,
    pub pcheader: u64,
    pub text: u64,
    pub etext: u64,
    pub minpc: u64,
    pub maxpc: u64,
    pub noptrdata: u64,
    pub enoptrdata: u64,
    pub data: u64,
    pub edata: u64,
    pub bss: u64,
    pub ebss: u64,
    pub noptrbss: u64,
    pub enoptrbss: u64,
    pub end: u64,
    pub types: u64,
    pub etypes: u64,
    pub rodata: u64,
    pub gofunc: u64,
    /// `typelinks` slice (pointer, length in int32 elements); None from Go 1.27.
    pub typelinks: Option<(u64, u64)>,
    /// `itablinks` slice (pointer, length in pointers); None from Go 1.27.
    pub itablinks: Option<(u64, u64)>,
    /// `typedesclen` (Go 1.27+, which dropped typelinks): length of the type
    /// descriptor area starting at `types`.
    pub typedesclen: Option<u64>,
    /// `epclntab` (Go 1.26+).
    pub epclntab: Option<u64>,
    /// End of the pclntab tables as described by the moduledata slices
    /// (funcnametab, cutab, filetab, pctab, pclntable, ftab).
    pub pclntab_end: u64,
}

/// Version-dependent offsets in runtime.moduledata
/// (/work/shared/reference/go-runtime-offsets.txt). Offsets up to
/// `enoptrbss` (248) are the same in every supported version.
struct Layout {
    end: usize,
    types: usize,
    typedesclen: Option<usize>,
    etypes: usize,
    rodata: usize,
    gofunc: usize,
    epclntab: Option<usize>,
    typelinks: Option<usize>,
    itablinks: Option<usize>,
    size: usize,
}

fn layout(go_minor: u32) -> Result<Layout, PclnError> {
    // 1.20 added covctrs/ecovctrs (before `end`), 1.21 inittasks (after
    // pkghashes), so for the fields read here 1.20 matches 1.21.
    let l = match go_minor {
        19 => Layout {
            end: 256,
            types: 280,
            typedesclen: None,
            etypes: 288,
            rodata: 296,
            gofunc: 304,
            epclntab: None,
            typelinks: Some(336),
            itablinks: Some(360),
            size: 552,
        },
        20..=25 => Layout {
            end: 272,
            types: 296,
            typedesclen: None,
            etypes: 304,
            rodata: 312,
            gofunc: 320,
            epclntab: None,
            typelinks: Some(352),
            itablinks: Some(376),
            size: 584,
        },
        26 => Layout {
            end: 272,
            types: 296,
            typedesclen: None,
            etypes: 304,
            rodata: 312,
            gofunc: 320,
            epclntab: Some(328),
            typelinks: Some(360),
            itablinks: Some(384),
            size: 592,
        },
        // Newer versions: assume the 1.27 layout (candidates are validated).
        27.. => Layout {
            end: 272,
            types: 296,
            typedesclen: Some(304),
            etypes: 312,
            rodata: 336,
            gofunc: 344,
            epclntab: Some(352),
            typelinks: None,
            itablinks: None,
            size: 568,
        },
        _ => {
            return Err(PclnError::Unsupported(format!(
                "Go 1.{go_minor} (supported: 1.19 and later)"
            )))
        }
    };
    Ok(l)
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    addr: u64,
    size: u64,
    /// None for SHT_NOBITS.
    offset: Option<u64>,
    sh_type: u32,
    flags: u64,
}

/// Minimal view of an ELF64 little-endian x86-64 file: loadable segments,
/// section headers and R_X86_64_RELATIVE relocations.
struct ElfImage<'a> {
    data: &'a [u8],
    segments: Vec<Segment>,
    sections: Vec<Section>,
    /// r_offset → addend of R_X86_64_RELATIVE relocations (built lazily).
    relative: OnceLock<HashMap<u64, u64>>,
    /// R_X86_64_RELATIVE or R_AARCH64_RELATIVE.
    relative_type: u32,
}

const R_X86_64_RELATIVE: u32 = 8;
const R_AARCH64_RELATIVE: u32 = 1027;

impl<'a> ElfImage<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, PclnError> {
        let e = |m: String| PclnError::Elf(m);
        let hdr = elf::FileHeader64::<Endianness>::parse(data).map_err(|x| e(x.to_string()))?;
        let endian = hdr.endian().map_err(|x| e(x.to_string()))?;
        let relative_type = match hdr.e_machine(endian) {
            elf::EM_X86_64 => R_X86_64_RELATIVE,
            elf::EM_AARCH64 => R_AARCH64_RELATIVE,
            _ => return Err(e("not a little-endian x86-64 or arm64 ELF file".into())),
        };
        if endian != Endianness::Little {
            return Err(e("not a little-endian x86-64 or arm64 ELF file".into()));
        }
        let mut segments = Vec::new();
        for ph in hdr
            .program_headers(endian, data)
            .map_err(|x| e(x.to_string()))?
        {
            if ph.p_type(endian) == elf::PT_LOAD {
                segments.push(Segment {
                    vaddr: ph.p_vaddr(endian),
                    offset: ph.p_offset(endian),
                    filesz: ph.p_filesz(endian),
                });
            }
        }
        let mut sections = Vec::new();
        // Section headers are optional for execution; tolerate their absence.
        if let Ok(table) = hdr.sections(endian, data) {
            for sh in table.iter() {
                let name = table
                    .section_name(endian, sh)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default();
                let sh_type = sh.sh_type(endian);
                sections.push(Section {
                    name,
                    addr: sh.sh_addr(endian),
                    size: sh.sh_size(endian),
                    offset: (sh_type != elf::SHT_NOBITS).then(|| sh.sh_offset(endian)),
                    sh_type,
                    flags: sh.sh_flags(endian),
                });
            }
        }
        Ok(ElfImage {
            data,
            segments,
            sections,
            relative: OnceLock::new(),
            relative_type,
        })
    }

    /// File bytes backing `[addr, addr+len)`, if entirely inside one segment's file image.
    fn read(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let end = addr.checked_add(len)?;
        self.segments.iter().find_map(|s| {
            if addr >= s.vaddr && end <= s.vaddr.checked_add(s.filesz)? {
                let off = usize::try_from(s.offset.checked_add(addr - s.vaddr)?).ok()?;
                self.data
                    .get(off..off.checked_add(usize::try_from(len).ok()?)?)
            } else {
                None
            }
        })
    }

    /// File bytes from `addr` to the end of its segment's file image.
    fn read_to_segment_end(&self, addr: u64) -> Option<&'a [u8]> {
        let s = self
            .segments
            .iter()
            .find(|s| addr >= s.vaddr && addr < s.vaddr.saturating_add(s.filesz))?;
        self.read(addr, s.vaddr.saturating_add(s.filesz) - addr)
    }

    /// The section containing `addr` (allocated, with file data).
    fn section_containing(&self, addr: u64) -> Option<&Section> {
        self.sections.iter().find(|s| {
            s.offset.is_some()
                && s.flags & u64::from(elf::SHF_ALLOC) != 0
                && addr >= s.addr
                && addr < s.addr.saturating_add(s.size)
        })
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    fn relative_relocs(&self) -> &HashMap<u64, u64> {
        self.relative.get_or_init(|| {
            let mut m = HashMap::new();
            for s in &self.sections {
                if s.sh_type != elf::SHT_RELA {
                    continue;
                }
                let Some(bytes) = s.offset.and_then(|o| {
                    let o = usize::try_from(o).ok()?;
                    self.data
                        .get(o..o.checked_add(usize::try_from(s.size).ok()?)?)
                }) else {
                    continue;
                };
                for r in bytes.chunks_exact(24) {
                    let off = u64::from_le_bytes(r[0..8].try_into().unwrap_or_default());
                    let info = u64::from_le_bytes(r[8..16].try_into().unwrap_or_default());
                    let add = u64::from_le_bytes(r[16..24].try_into().unwrap_or_default());
                    if info as u32 == self.relative_type {
                        m.insert(off, add);
                    }
                }
            }
            m
        })
    }

    /// A pointer-sized word at `addr`, with PIE relocations applied.
    fn word(&self, addr: u64) -> Option<u64> {
        if let Some(&v) = self.relative_relocs().get(&addr) {
            return Some(v);
        }
        let b = self.read(addr, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

/// The offsets of a pcHeader read from the file.
#[derive(Clone, Copy, Debug)]
struct PcHeader {
    nfunc: u64,
    /// funcnametab, cutab, filetab, pctab, pclntab offsets.
    offs: [u64; 5],
}

fn read_pcheader(img: &ElfImage<'_>, addr: u64) -> Option<PcHeader> {
    let b = img.read(addr, 72)?;
    let magic = u32::from_le_bytes(b[0..4].try_into().ok()?);
    if (magic != GO118_MAGIC && magic != GO120_MAGIC)
        || b[4] != 0
        || b[5] != 0
        || !matches!(b[6], 1 | 4) // pc quantum: amd64, arm64
        || b[7] != 8
    {
        return None;
    }
    let w = |i: usize| u64::from_le_bytes(b[8 + 8 * i..16 + 8 * i].try_into().unwrap_or_default());
    let offs = [w(3), w(4), w(5), w(6), w(7)];
    // Tables follow the 72-byte header; keep offsets within 4 GiB.
    if offs.iter().any(|&o| !(72..1 << 32).contains(&o)) || w(0) >= 1 << 32 {
        return None;
    }
    Some(PcHeader { nfunc: w(0), offs })
}

/// Candidate pcHeader addresses: named sections first, then a scan for the
/// header's first 8 bytes (needed when an external linker merged
/// `.data.rel.ro.gopclntab` into `.data.rel.ro`).
fn pclntab_candidates(img: &ElfImage<'_>) -> Vec<u64> {
    let mut out: Vec<u64> = [".gopclntab", ".data.rel.ro.gopclntab"]
        .iter()
        .filter_map(|n| img.section(n))
        .map(|s| s.addr)
        .filter(|&a| read_pcheader(img, a).is_some())
        .collect();
    if !out.is_empty() {
        return out;
    }
    for seg in &img.segments {
        let Some(bytes) = img.read(seg.vaddr, seg.filesz) else {
            continue;
        };
        // Sections are at least 8-aligned; align relative to the address.
        let skew = ((8 - seg.vaddr % 8) % 8) as usize;
        let mut i = skew;
        while i + 8 <= bytes.len() {
            let w = &bytes[i..i + 8];
            if w[1..8] == [0xff, 0xff, 0xff, 0, 0, 1, 8] && (w[0] == 0xf0 || w[0] == 0xf1) {
                let a = seg.vaddr + i as u64;
                if read_pcheader(img, a).is_some() {
                    out.push(a);
                    if out.len() >= 16 {
                        return out;
                    }
                }
            }
            i += 8;
        }
    }
    out
}

/// Decode the moduledata at `addr` and check it against the pcHeader it points to.
fn decode(img: &ElfImage<'_>, addr: u64, l: &Layout) -> Option<ModuleData> {
    // The whole struct must be in the file.
    img.read(addr, l.size as u64)?;
    let w = |off: usize| img.word(addr + off as u64);
    let pcheader = w(0)?;
    let h = read_pcheader(img, pcheader)?;
    // Slices: funcnametab@8, cutab@32, filetab@56, pctab@80, pclntable@104, ftab@128.
    let slice = |off: usize| Some((w(off)?, w(off + 8)?));
    let tabs = [slice(8)?, slice(32)?, slice(56)?, slice(80)?, slice(104)?];
    for (i, &(ptr, _)) in tabs.iter().enumerate() {
        if ptr != pcheader.wrapping_add(h.offs[i]) {
            return None;
        }
    }
    let ftab = slice(128)?;
    if ftab.0 != tabs[4].0 || ftab.1 != h.nfunc + 1 {
        return None;
    }
    let (minpc, maxpc, text, etext) = (w(160)?, w(168)?, w(176)?, w(184)?);
    if !(text <= minpc && minpc <= maxpc && text <= etext) {
        return None;
    }
    // Element sizes: bytes, u32, bytes, bytes, bytes; ftab entries are 8 bytes.
    let sizes = [1u64, 4, 1, 1, 1];
    let mut pclntab_end = ftab.0.saturating_add(ftab.1.saturating_mul(8));
    for (&(ptr, len), sz) in tabs.iter().zip(sizes) {
        pclntab_end = pclntab_end.max(ptr.saturating_add(len.saturating_mul(sz)));
    }
    let opt = |o: Option<usize>| o.and_then(w);
    let epclntab = opt(l.epclntab);
    Some(ModuleData {
        addr,
        pcheader,
        text,
        etext,
        minpc,
        maxpc,
        noptrdata: w(192)?,
        enoptrdata: w(200)?,
        data: w(208)?,
        edata: w(216)?,
        bss: w(224)?,
        ebss: w(232)?,
        noptrbss: w(240)?,
        enoptrbss: w(248)?,
        end: w(l.end)?,
        types: w(l.types)?,
        etypes: w(l.etypes)?,
        rodata: w(l.rodata)?,
        gofunc: w(l.gofunc)?,
        typelinks: l.typelinks.and_then(slice),
        itablinks: l.itablinks.and_then(slice),
        typedesclen: opt(l.typedesclen),
        epclntab,
        pclntab_end,
    })
}

/// Locate and decode runtime.firstmoduledata from the ELF file bytes.
///
/// `symbol_addr`: address of `runtime.firstmoduledata` if a symbol table gave
/// it; otherwise (or if it does not validate) the moduledata is found by
/// scanning `.go.module` / `.noptrdata` / `.data` / `.data.rel.ro` for a word
/// equal to the pclntab's address. `go_minor`: 19..=27, selects the layout of
/// the version-dependent fields.
pub fn find_moduledata(
    elf: &[u8],
    symbol_addr: Option<u64>,
    go_minor: u32,
) -> Result<ModuleData, PclnError> {
    let l = layout(go_minor)?;
    let img = ElfImage::parse(elf)?;
    if let Some(a) = symbol_addr {
        if let Some(md) = decode(&img, a, &l) {
            return Ok(md);
        }
    }
    let pclns = pclntab_candidates(&img);
    if pclns.is_empty() {
        return Err(PclnError::ModuleDataNotFound("no pclntab found".into()));
    }
    // Where the linker puts runtime.firstmoduledata: .go.module (1.26+),
    // .noptrdata (earlier); the rest is belt and braces.
    let preferred = [".go.module", ".noptrdata", ".data", ".data.rel.ro"];
    let mut regions: Vec<(u64, u64)> = preferred
        .iter()
        .filter_map(|n| img.section(n))
        .map(|s| (s.addr, s.size))
        .collect();
    let writable = u64::from(elf::SHF_ALLOC | elf::SHF_WRITE);
    for s in &img.sections {
        if s.offset.is_some()
            && s.flags & writable == writable
            && !preferred.contains(&s.name.as_str())
        {
            regions.push((s.addr, s.size));
        }
    }
    if img.sections.is_empty() {
        regions.extend(img.segments.iter().map(|s| (s.vaddr, s.filesz)));
    }
    for &pcln in &pclns {
        for &(start, size) in &regions {
            let Some(bytes) = img.read(start, size) else {
                continue;
            };
            let skew = ((8 - start % 8) % 8) as usize;
            let mut i = skew;
            while i + 8 <= bytes.len() {
                if bytes[i..i + 8] == pcln.to_le_bytes() {
                    if let Some(md) = decode(&img, start + i as u64, &l) {
                        return Ok(md);
                    }
                }
                i += 8;
            }
        }
        // Words left zero in the file but filled by a RELATIVE relocation.
        let mut cands: Vec<u64> = img
            .relative_relocs()
            .iter()
            .filter(|&(_, &add)| add == pcln)
            .map(|(&off, _)| off)
            .collect();
        cands.sort_unstable();
        for a in cands {
            if let Some(md) = decode(&img, a, &l) {
                return Ok(md);
            }
        }
    }
    Err(PclnError::ModuleDataNotFound(format!(
        "no word pointing at the pclntab ({}) validates as a Go 1.{go_minor} moduledata",
        pclns
            .iter()
            .map(|a| format!("{a:#x}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Locate the pclntab bytes (from `md.pcheader` to the end of its tables) and
/// the funcdata (`md.gofunc` to the end of its section), and parse them.
pub fn load_pclntab(elf: &[u8], md: &ModuleData) -> Result<Pclntab, PclnError> {
    let img = ElfImage::parse(elf)?;
    let mut end = md.pclntab_end.max(md.epclntab.unwrap_or(0));
    if end <= md.pcheader {
        // Unknown: take the containing section.
        end = img
            .section_containing(md.pcheader)
            .map(|s| s.addr.saturating_add(s.size))
            .ok_or_else(|| {
                PclnError::Elf(format!(
                    "no section holds the pclntab at {:#x}",
                    md.pcheader
                ))
            })?;
    }
    let pcln = img.read(md.pcheader, end - md.pcheader).ok_or_else(|| {
        PclnError::Elf(format!(
            "pclntab [{:#x}, {end:#x}) is not in the file",
            md.pcheader
        ))
    })?;
    let gofunc = match img.section_containing(md.gofunc) {
        Some(s) => img.read(md.gofunc, s.addr.saturating_add(s.size) - md.gofunc),
        None => img.read_to_segment_end(md.gofunc),
    }
    .unwrap_or(&[]);
    Pclntab::parse(pcln.to_vec(), Some(md.text), md.gofunc, gofunc.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::pclntab::testutil::{self, Variant};

    #[test]
    fn layouts() {
        assert!(layout(18).is_err());
        for m in 19..=30 {
            let l = layout(m).unwrap();
            assert!(l.gofunc < l.size && l.end >= 256);
        }
    }

    #[test]
    fn garbage_elf_is_an_error() {
        assert!(find_moduledata(&[], None, 21).is_err());
        assert!(find_moduledata(&[0x7f, b'E', b'L', b'F'], None, 21).is_err());
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(find_moduledata(&noise, Some(0x1000), 21).is_err());
    }

    /// Truncated and corrupted real binaries give errors or valid data, never panics.
    #[test]
    fn corrupted_elf_never_panics() {
        let Some(tc) = testutil::toolchains().into_iter().next() else {
            eprintln!("SKIP: no Go toolchain");
            return;
        };
        let Some(bin) = testutil::build(&tc, Variant::Stripped) else {
            return;
        };
        let elf = std::fs::read(bin).unwrap();
        for cut in (0..elf.len()).step_by(elf.len() / 50) {
            if let Ok(md) = find_moduledata(&elf[..cut], None, tc.minor) {
                let _ = load_pclntab(&elf[..cut], &md);
            }
        }
        // Corrupt the moduledata itself.
        let md = find_moduledata(&elf, None, tc.minor).unwrap();
        let img = ElfImage::parse(&elf).unwrap();
        let off = img.read(md.addr, 8).unwrap().as_ptr() as usize - elf.as_ptr() as usize;
        let mut x: u64 = 99;
        for round in 0..200 {
            let mut e = elf.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = off + 8 + (x as usize % 300);
                e[i] = (x >> 32) as u8;
            }
            let sym = (round % 2 == 0).then_some(md.addr);
            if let Ok(md) = find_moduledata(&e, sym, tc.minor) {
                if let Ok(t) = load_pclntab(&e, &md) {
                    let _ = t.find_func(md.text + 0x100);
                }
            }
        }
    }

    /// Every decoded field equals the linker's symbol for it, in every
    /// version; the symbol-less scan finds the same moduledata, also in
    /// stripped, PIE and externally linked builds.
    #[test]
    fn fields_match_symbols_all_versions() {
        let tcs = testutil::toolchains();
        if tcs.is_empty() {
            eprintln!("SKIP: no Go toolchain installed");
            return;
        }
        for tc in &tcs {
            let Some(bin) = testutil::build(tc, Variant::Exe) else {
                continue;
            };
            let what = format!("go{}", tc.version);
            let elf = std::fs::read(&bin).unwrap();
            let sym =
                |n: &str| testutil::elf_symbol(&elf, n).unwrap_or_else(|| panic!("{what}: no {n}"));
            let md = find_moduledata(&elf, Some(sym("runtime.firstmoduledata")), tc.minor).unwrap();
            assert_eq!(md.addr, sym("runtime.firstmoduledata"));
            assert_eq!(md.pcheader, sym("runtime.pclntab"), "{what}");
            for (v, n) in [
                (md.text, "runtime.text"),
                (md.etext, "runtime.etext"),
                (md.noptrdata, "runtime.noptrdata"),
                (md.enoptrdata, "runtime.enoptrdata"),
                (md.data, "runtime.data"),
                (md.edata, "runtime.edata"),
                (md.bss, "runtime.bss"),
                (md.ebss, "runtime.ebss"),
                (md.noptrbss, "runtime.noptrbss"),
                (md.enoptrbss, "runtime.enoptrbss"),
                (md.end, "runtime.end"),
                (md.types, "runtime.types"),
                (md.etypes, "runtime.etypes"),
                (md.rodata, "runtime.rodata"),
            ] {
                assert_eq!(v, sym(n), "{what}: {n}");
            }
            let gofunc = if tc.minor == 19 {
                "go.func.*"
            } else {
                "go:func.*"
            };
            assert_eq!(md.gofunc, sym(gofunc), "{what}: gofunc");
            if tc.minor >= 26 {
                assert_eq!(md.epclntab, Some(sym("runtime.epclntab")), "{what}");
            } else {
                assert_eq!(md.epclntab, None);
            }
            assert!(
                md.pclntab_end <= sym("runtime.epclntab"),
                "{what}: pclntab_end"
            );
            if tc.minor >= 27 {
                assert!(md.typelinks.is_none() && md.itablinks.is_none());
                let len = md.typedesclen.expect("typedesclen");
                assert!(
                    len > 0 && md.types + len <= md.etypes,
                    "{what}: typedesclen {len:#x}"
                );
            } else {
                let (p, n) = md.typelinks.unwrap();
                assert_eq!(p, sym("runtime.typelink"), "{what}: typelinks");
                assert!(n > 100, "{what}: {n} typelinks");
                assert_eq!(
                    md.itablinks.map(|x| x.0),
                    Some(sym("runtime.itablink")),
                    "{what}"
                );
                assert_eq!(md.typedesclen, None);
            }
            assert_eq!(
                find_moduledata(&elf, None, tc.minor).unwrap(),
                md,
                "{what}: scan"
            );

            // Same program without symbols: same layout, found by scanning.
            if let Some(sbin) = testutil::build(tc, Variant::Stripped) {
                let selem = std::fs::read(&sbin).unwrap();
                assert!(testutil::elf_symbol(&selem, "runtime.firstmoduledata").is_none());
                let smd = find_moduledata(&selem, None, tc.minor).unwrap();
                // The data layout shifts a little without .symtab: compare
                // with the section headers instead.
                let img = ElfImage::parse(&selem).unwrap();
                let sec = |n: &str| {
                    let s = img.section(n).unwrap_or_else(|| panic!("{what}: no {n}"));
                    (s.addr, s.addr + s.size)
                };
                assert_eq!(smd.text, sec(".text").0, "{what}: stripped text");
                assert_eq!(
                    smd.pcheader,
                    sec(".gopclntab").0,
                    "{what}: stripped pclntab"
                );
                assert_eq!(
                    (smd.noptrdata, smd.enoptrdata),
                    sec(".noptrdata"),
                    "{what}: stripped"
                );
                assert_eq!(smd.data, sec(".data").0, "{what}: stripped data");
                assert_eq!((smd.bss, smd.ebss), sec(".bss"), "{what}: stripped bss");
                assert_eq!(
                    (smd.noptrbss, smd.enoptrbss),
                    sec(".noptrbss"),
                    "{what}: stripped"
                );
                assert_eq!(smd.rodata, sec(".rodata").0, "{what}: stripped rodata");
                if let Some((p, _)) = smd.typelinks {
                    assert_eq!(p, sec(".typelink").0, "{what}: stripped typelinks");
                }
                if tc.minor >= 26 {
                    assert_eq!(smd.addr, sec(".go.module").0, "{what}: stripped .go.module");
                }
                assert_eq!(
                    (smd.minpc, smd.maxpc, smd.etext),
                    (md.minpc, md.maxpc, md.etext)
                );
            }
            // PIE (internal and external linking): the scan must find a
            // moduledata whose pointers are consistent with the file.
            for v in [Variant::Pie, Variant::PieExtStripped] {
                let Some(pbin) = testutil::build(tc, v) else {
                    continue;
                };
                let pelf = std::fs::read(&pbin).unwrap();
                let pmd = find_moduledata(&pelf, None, tc.minor)
                    .unwrap_or_else(|e| panic!("{what} {v:?}: {e}"));
                if let Some(a) = testutil::elf_symbol(&pelf, "runtime.firstmoduledata") {
                    assert_eq!(pmd.addr, a, "{what} {v:?}");
                }
                let t = load_pclntab(&pelf, &pmd).unwrap();
                let main = t.func_by_name("main.main").expect("main.main");
                assert!(main.entry >= pmd.text && main.entry < pmd.etext);
                assert!(
                    pmd.noptrdata < pmd.enoptrdata && pmd.bss <= pmd.ebss && pmd.types < pmd.etypes
                );
                assert!(t.funcdata_off(&main, 2).is_some() || t.funcdata_off(&main, 0).is_some());
            }
        }
    }

    /// lld leaves relocated words zero in the file (no --apply-dynamic-relocs):
    /// simulate that on an internally linked PIE; the RELATIVE relocations
    /// must still lead to the same moduledata.
    #[test]
    fn pie_with_zeroed_relocated_words() {
        let Some(tc) = testutil::toolchains().into_iter().last() else {
            eprintln!("SKIP: no Go toolchain");
            return;
        };
        let Some(bin) = testutil::build(&tc, Variant::Pie) else {
            return;
        };
        let mut elf = std::fs::read(bin).unwrap();
        let md = find_moduledata(&elf, None, tc.minor).unwrap();
        let img = ElfImage::parse(&elf).unwrap();
        let size = layout(tc.minor).unwrap().size as u64;
        let mut zeroed = Vec::new();
        for (&off, _) in img.relative_relocs().iter() {
            if off >= md.addr && off < md.addr + size {
                let at = img.read(off, 8).unwrap().as_ptr() as usize - elf.as_ptr() as usize;
                zeroed.push(at);
            }
        }
        drop(img);
        assert!(zeroed.len() > 10, "only {} relocated words", zeroed.len());
        for at in zeroed {
            elf[at..at + 8].fill(0);
        }
        assert_eq!(find_moduledata(&elf, None, tc.minor).unwrap(), md);
    }
}
