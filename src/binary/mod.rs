//! The target executable: ELF facts, pclntab, moduledata and (lazily) DWARF.

pub mod arm64;
pub mod dwarf;
pub mod elf;
pub mod goversion;
pub mod moduledata;
pub mod pclntab;
pub mod twin;
pub mod x86;

use anyhow::{anyhow, Context, Result};
use elf::ElfFile;
use goversion::GoVersion;
use moduledata::ModuleData;
use pclntab::Pclntab;
use std::sync::{Arc, OnceLock};

pub struct Binary {
    pub elf: ElfFile,
    /// Go version (what every version check compares).
    pub go: GoVersion,
    /// The version as the executable spells it ("go1.22.10"), for display.
    pub go_version: String,
    pub moduledata: ModuleData,
    pub pcln: Pclntab,
    dwarf: Option<dwarf::Dwarf>,
    /// Globals recovered from code when there is no symbol table (by
    /// `goruntime::version::globals`, which knows the runtime's code).
    recovered: OnceLock<Recovered>,
    /// For the user, from loading: a Go version outside the supported
    /// range, unreadable DWARF (the caller prints them).
    pub warnings: Vec<String>,
}

/// Runtime globals recovered from code: link-time addresses by symbol name,
/// and one line per global that could not be found.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    pub addrs: std::collections::BTreeMap<String, u64>,
    pub missing: Vec<String>,
}

impl Binary {
    pub fn from_bytes(data: Arc<[u8]>) -> Result<Binary> {
        Self::from_elf(ElfFile::parse(data)?)
    }

    /// From an already parsed executable.
    pub fn from_elf(elf: ElfFile) -> Result<Binary> {
        let go_version = elf.go_version.clone().ok_or_else(|| {
            anyhow!("not a Go program: no .go.buildinfo version (is it built with Go?)")
        })?;
        let go = GoVersion::parse(&go_version)
            .ok_or_else(|| anyhow!("cannot parse Go version {go_version:?}"))?;
        let mut warnings: Vec<String> = Vec::new();
        // DWARF (decompressing .debug_info and indexing the unit that holds
        // the runtime's types: most of the time to open a large executable)
        // is prepared on another thread while the pclntab is read here.
        let data = elf.data.clone();
        let (dwarf, md) = std::thread::scope(|s| {
            let dwarf = s.spawn(move || {
                let d = dwarf::Dwarf::load(&data);
                if let Ok(Some(d)) = &d {
                    // The first layout lookup: indexes the types' unit.
                    let _ = d.type_named("runtime.g");
                }
                d
            });
            let md = (|| -> Result<(ModuleData, Pclntab)> {
                let md_sym = elf.symbol("runtime.firstmoduledata").map(|s| s.0);
                let moduledata = moduledata::find_moduledata(&elf.data, md_sym, go.minor())
                    .context("locating runtime.firstmoduledata")?;
                let pcln = moduledata::load_pclntab(&elf.data, &moduledata)
                    .context("reading .gopclntab")?;
                Ok((moduledata, pcln))
            })();
            (dwarf.join(), md)
        });
        let (moduledata, pcln) = md?;
        let dwarf = match dwarf {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                warnings.push(format!("ignoring unreadable DWARF: {e}"));
                None
            }
            // A panic while reading DWARF: treated as none.
            Err(_) => {
                warnings.push("ignoring unreadable DWARF".to_string());
                None
            }
        };
        Ok(Binary {
            elf,
            go,
            go_version,
            moduledata,
            pcln,
            dwarf,
            recovered: OnceLock::new(),
            warnings,
        })
    }

    pub fn from_path(path: &std::path::Path) -> Result<Binary> {
        let data = read_shared(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(data).with_context(|| format!("loading {}", path.display()))
    }

    /// DWARF (loaded with the binary); None when stripped or unreadable.
    pub fn dwarf(&self) -> Option<&dwarf::Dwarf> {
        self.dwarf.as_ref()
    }

    /// Link-time address of a global from the symbol table, then DWARF
    /// (`goruntime::version::globals::global_addr` also recovers runtime
    /// globals from code).
    pub fn declared_global_addr(&self, name: &str) -> Option<u64> {
        if let Some((a, _)) = self.elf.symbol(name) {
            return Some(a);
        }
        self.dwarf().and_then(|d| d.global(name)).map(|g| g.addr)
    }

    /// Runtime globals recovered from code by `recover`, computed once.
    pub fn recovered_globals(&self, recover: fn(&Binary) -> Recovered) -> &Recovered {
        self.recovered.get_or_init(|| recover(self))
    }

    /// Load bias for a process whose auxv gives AT_ENTRY.
    pub fn load_bias(&self, auxv: &[(u64, u64)]) -> u64 {
        const AT_ENTRY: u64 = 9;
        auxv.iter()
            .find(|(t, _)| *t == AT_ENTRY)
            .map(|(_, v)| v.wrapping_sub(self.elf.entry))
            .unwrap_or(0)
    }
}

/// A whole file as shared bytes (parsed structures and memory views
/// share it). Read straight into its final allocation: executables are tens
/// of MB, and `Arc::from(Vec)` would copy them once more.
/// Map a running process's executable (`/proc/PID/exe`): no copy, and only
/// the pages analysis touches (pclntab, the runtime's DWARF) are read. The
/// kernel refuses writes to an executable that a process runs (ETXTBSY), so
/// the mapping cannot be truncated under gospy. Falls back to reading.
pub fn map_running_exe(path: &std::path::Path) -> std::io::Result<bytes::Bytes> {
    let f = std::fs::File::open(path)?;
    // SAFETY: the file is the executable of a running process, which the
    // kernel keeps from being written or truncated (see above); the map is
    // read-only.
    match unsafe { memmap2::Mmap::map(&f) } {
        Ok(m) if !m.is_empty() => Ok(bytes::Bytes::from_owner(m)),
        _ => Ok(bytes::Bytes::from_owner(read_shared(path)?)),
    }
}

pub fn read_shared(path: &std::path::Path) -> std::io::Result<Arc<[u8]>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = usize::try_from(f.metadata()?.len())
        .map_err(|_| std::io::Error::other("file too large"))?;
    // A trusted-length iterator: one allocation of exactly `len` bytes.
    let mut data: Arc<[u8]> = std::iter::repeat(0u8).take(len).collect();
    match Arc::get_mut(&mut data) {
        Some(buf) => f.read_exact(buf)?,
        None => return Ok(Arc::from(std::fs::read(path)?)),
    }
    // A file that grew while read is read again, whole.
    let mut probe = [0u8; 1];
    if f.read(&mut probe)? != 0 {
        return Ok(Arc::from(std::fs::read(path)?));
    }
    Ok(data)
}
