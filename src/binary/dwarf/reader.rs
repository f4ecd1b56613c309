//! The DWARF sections, the unit directory, the per-unit name index and the
//! public lookups.

use super::die::{attr_string, attr_u64, index_class, root_name, IndexClass, Reader};
use super::types::{
    DwarfError, Field, Global, GoKind, GoType, TypeRef, DW_AT_GO_KIND, DW_AT_GO_RUNTIME_TYPE,
    MAX_TYPEDEF_CHAIN,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use gimli::{DebugAbbrevOffset, DebugInfoOffset, RunTimeEndian, UnitHeader};
use object::{Object, ObjectSection, ObjectSymbol};

/// Largest decompressed section accepted.
const MAX_SECTION_SIZE: u64 = 1 << 30;

/// Section bytes as found in the file, decompressed on demand.
struct RawSection {
    bytes: Vec<u8>,
    /// Compression format and claimed uncompressed size, if compressed.
    compression: Option<(object::CompressionFormat, u64)>,
}

impl RawSection {
    fn from_file(file: &object::File<'_>, name: &'static str) -> Result<Self, DwarfError> {
        let section = match file.section_by_name(name) {
            Some(s) => s,
            None => {
                return Ok(RawSection {
                    bytes: Vec::new(),
                    compression: None,
                })
            }
        };
        let cd = section.compressed_data().map_err(|e| DwarfError::Section {
            section: name,
            msg: e.to_string(),
        })?;
        let compression = match cd.format {
            object::CompressionFormat::None => None,
            f => Some((f, cd.uncompressed_size)),
        };
        Ok(RawSection {
            bytes: cd.data.to_vec(),
            compression,
        })
    }

    /// Decompressed bytes; None means "use `self.bytes` as is".
    fn decompress(&self, name: &'static str) -> Result<Option<Vec<u8>>, DwarfError> {
        let Some((format, size)) = self.compression else {
            return Ok(None);
        };
        let err = |msg: String| DwarfError::Section { section: name, msg };
        // zlib cannot expand more than ~1032:1; refuse absurd claimed sizes
        // rather than reserving them.
        let limit = (self.bytes.len() as u64)
            .saturating_mul(1100)
            .saturating_add(1 << 16)
            .min(MAX_SECTION_SIZE);
        if size > limit {
            return Err(err(format!(
                "claimed uncompressed size {size} is implausible"
            )));
        }
        let cd = object::CompressedData {
            format,
            data: &self.bytes,
            uncompressed_size: size,
        };
        let out = cd.decompress().map_err(|e| err(e.to_string()))?;
        Ok(Some(out.into_owned()))
    }
}

/// Decompressed sections plus the CU directory, built on first use.
pub(super) struct Data {
    info: Option<Vec<u8>>,
    abbrev: Option<Vec<u8>>,
    pub(super) units: Vec<Unit>,
    /// CU name (package path) → indexes into `units`.
    by_name: HashMap<String, Vec<usize>>,
    /// Units searched for types: the `runtime` CUs (all types live there), or
    /// every unit if there is none (not a Go binary as we know it).
    type_order: Vec<usize>,
    /// DWARF version of the first unit.
    version: u16,
}

pub(super) struct Unit {
    /// `.debug_info` offset of the unit header.
    pub(super) start: u64,
    /// One past the unit's last byte.
    end: u64,
    name: String,
    index: OnceLock<UnitIndex>,
}

#[derive(Default)]
struct UnitIndex {
    /// Type name → (DIE offset, preference). Definitions (or typedefs that
    /// carry `DW_AT_go_kind`, i.e. interfaces/maps/chans) beat plain typedefs.
    types: FastMap<Box<str>, (TypeRef, u8)>,
    vars: FastMap<Box<str>, u64>,
    consts: FastMap<Box<str>, u64>,
    /// `DW_AT_go_runtime_type` offset → type DIE.
    runtime_types: FastMap<u64, TypeRef>,
}

/// The unit index holds tens of thousands of names, built while a capture
/// opens the executable: a fast non-cryptographic hash (the input is the
/// executable's own DWARF, hashed once per open).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// DWARF of one Go executable. `Send + Sync`; all lookups are lazy and cached.
pub struct Dwarf {
    endian: RunTimeEndian,
    raw_info: RawSection,
    raw_abbrev: RawSection,
    pub(super) types_base: Option<u64>,
    /// `runtime.etypes`, when known.
    types_end: Option<u64>,
    data: OnceLock<Result<Data, String>>,
    abbrevs: Mutex<HashMap<u64, Arc<gimli::Abbreviations>>>,
    types: RwLock<HashMap<TypeRef, Option<Arc<GoType>>>>,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("info_bytes", &self.raw_info.bytes.len())
            .field("compressed", &self.raw_info.compression.is_some())
            .field("types_base", &self.types_base)
            .finish()
    }
}

/// Package-path prefixes of a qualified Go name, longest first:
/// `gopkg.in/yaml.v3.Node` → [`gopkg.in/yaml.v3`, `gopkg.in/yaml`].
pub(super) fn package_candidates(name: &str) -> Vec<&str> {
    let head_end = name.find('[').unwrap_or(name.len());
    let head = &name[..head_end];
    let last_elem = head.rfind('/').map_or(0, |i| i + 1);
    let mut out: Vec<&str> = head[last_elem..]
        .match_indices('.')
        .map(|(i, _)| &name[..last_elem + i])
        .collect();
    out.reverse();
    out
}

impl Dwarf {
    /// Open the DWARF of an ELF executable. `Ok(None)` when it has no DWARF
    /// (`-ldflags=-w` or `-s`). Cheap: decompression and indexing are deferred
    /// to the first lookup (see [`Dwarf::prepare`] to force them and see errors).
    pub fn load(elf: &[u8]) -> Result<Option<Dwarf>, DwarfError> {
        let file = object::File::parse(elf).map_err(|e| DwarfError::Elf(e.to_string()))?;
        let raw_info = RawSection::from_file(&file, ".debug_info")?;
        if raw_info.bytes.is_empty() {
            return Ok(None);
        }
        let raw_abbrev = RawSection::from_file(&file, ".debug_abbrev")?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let (types_base, types_end) = find_types_range(&file);
        Ok(Some(Dwarf {
            endian,
            raw_info,
            raw_abbrev,
            types_base,
            types_end,
            data: OnceLock::new(),
            abbrevs: Mutex::new(HashMap::new()),
            types: RwLock::new(HashMap::new()),
        }))
    }

    /// DWARF with no units, for code that takes a `&Dwarf` on an executable
    /// without one (`-s -w`): every lookup answers None.
    pub fn empty() -> Dwarf {
        let none = || RawSection {
            bytes: Vec::new(),
            compression: None,
        };
        Dwarf {
            endian: RunTimeEndian::Little,
            raw_info: none(),
            raw_abbrev: none(),
            types_base: None,
            types_end: None,
            data: OnceLock::new(),
            abbrevs: Mutex::new(HashMap::new()),
            types: RwLock::new(HashMap::new()),
        }
    }

    /// Decompress and build the unit directory now; reports what went wrong if
    /// that fails (afterwards every lookup answers None).
    pub fn prepare(&self) -> Result<(), DwarfError> {
        match self.data() {
            Some(_) => Ok(()),
            None => Err(DwarfError::Section {
                section: ".debug_info",
                msg: self.load_error().unwrap_or_default(),
            }),
        }
    }

    /// Why decompression or the unit directory failed, if they did.
    pub fn load_error(&self) -> Option<String> {
        match self.data.get() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Link-time address of `runtime.types` (base of `DW_AT_go_runtime_type`).
    pub fn types_base(&self) -> Option<u64> {
        self.types_base
    }

    /// DWARF version of the first compile unit (4 up to Go 1.24, 5 from 1.25).
    pub fn version(&self) -> Option<u16> {
        self.data().map(|d| d.version)
    }

    /// Names of all compile units (package paths), in section order.
    pub fn unit_names(&self) -> Vec<String> {
        self.data()
            .map(|d| d.units.iter().map(|u| u.name.clone()).collect())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- lookups

    /// The type DIE with this Go name: `runtime.g`, `[]*runtime.g`, `main.Config`.
    pub fn type_named(&self, name: &str) -> Option<TypeRef> {
        let data = self.data()?;
        let mut best: Option<(TypeRef, u8)> = None;
        for &u in &data.type_order {
            if let Some(&(t, prio)) = self.unit_index(data, u)?.types.get(name) {
                if best.map_or(true, |(_, p)| prio > p) {
                    best = Some((t, prio));
                }
                if prio >= 2 {
                    break;
                }
            }
        }
        best.map(|(t, _)| t)
    }

    /// The decoded type at `t` (parsed on first use, then cached).
    pub fn get(&self, t: TypeRef) -> Option<Arc<GoType>> {
        if let Ok(cache) = self.types.read() {
            if let Some(hit) = cache.get(&t) {
                return hit.clone();
            }
        }
        let parsed = self.parse_type(t).map(Arc::new);
        if let Ok(mut cache) = self.types.write() {
            cache.insert(t, parsed.clone());
        }
        parsed
    }

    /// Like [`Dwarf::get`], following typedefs to the underlying definition.
    pub fn resolve(&self, t: TypeRef) -> Option<Arc<GoType>> {
        let mut cur = t;
        for _ in 0..MAX_TYPEDEF_CHAIN {
            let ty = self.get(cur)?;
            match ty.kind {
                GoKind::Typedef { target } => cur = target,
                _ => return Some(ty),
            }
        }
        None
    }

    /// Offset of the typedef-resolved definition of `t`.
    pub fn resolve_ref(&self, t: TypeRef) -> Option<TypeRef> {
        let mut cur = t;
        for _ in 0..MAX_TYPEDEF_CHAIN {
            match self.get(cur)?.kind {
                GoKind::Typedef { target } => cur = target,
                _ => return Some(cur),
            }
        }
        None
    }

    /// Size in bytes of a named type.
    pub fn size_of(&self, type_name: &str) -> Option<u64> {
        Some(self.resolve(self.type_named(type_name)?)?.size)
    }

    /// Byte offset of a (possibly dotted, nested) field path inside a named
    /// struct: `offset_of("runtime.g", "sched.sp")`. Fields of embedded structs
    /// are found as Go promotes them.
    pub fn offset_of(&self, type_name: &str, path: &str) -> Option<u64> {
        self.field(type_name, path).map(|f| f.offset)
    }

    /// The field at `path` (dotted for nested fields) of a named struct, with
    /// `offset` relative to the start of the named struct.
    pub fn field(&self, type_name: &str, path: &str) -> Option<Field> {
        self.field_in(self.type_named(type_name)?, path)
    }

    /// Like [`Dwarf::field`], for a type given by reference.
    pub fn field_in(&self, t: TypeRef, path: &str) -> Option<Field> {
        let mut cur = t;
        let mut offset = 0u64;
        let mut last = None;
        for comp in path.split('.') {
            let f = self.find_member(cur, comp)?;
            offset = offset.checked_add(f.offset)?;
            cur = f.ty;
            last = Some(f);
        }
        last.map(|f| Field { offset, ..f })
    }

    /// The members of a struct-shaped type (structs, and the header structs of
    /// strings, slices and interfaces), following typedefs.
    pub fn fields(&self, t: TypeRef) -> Option<Vec<Field>> {
        let r = self.resolve_ref(t)?;
        let ty = self.get(r)?;
        match &ty.kind {
            GoKind::Struct { fields } => Some(fields.clone()),
            GoKind::Slice { .. } | GoKind::String => self.parse_members(r),
            // Interfaces are typedefs of runtime.eface / runtime.iface.
            GoKind::Interface { .. } => {
                let target = self.die_attrs(r)?.ty?;
                let tr = self.resolve_ref(target)?;
                if tr == r {
                    return None;
                }
                self.parse_members(tr)
            }
            _ => None,
        }
    }

    /// A global variable by its linker name (`runtime.allgs`, `main.cfg`).
    pub fn global(&self, name: &str) -> Option<Global> {
        let data = self.data()?;
        let die = self.lookup_in_package(data, name, |ix| ix.vars.get(name).copied())?;
        let a = self.die_attrs(die)?;
        let loc = a.location?;
        let addr = match loc.split_first() {
            // DW_OP_addr <address-size bytes>
            Some((&0x03, rest)) if rest.len() >= 8 => {
                let b: [u8; 8] = rest[..8].try_into().ok()?;
                match self.endian {
                    RunTimeEndian::Little => u64::from_le_bytes(b),
                    RunTimeEndian::Big => u64::from_be_bytes(b),
                }
            }
            Some((&0x03, rest)) if rest.len() >= 4 => {
                let b: [u8; 4] = rest[..4].try_into().ok()?;
                u64::from(match self.endian {
                    RunTimeEndian::Little => u32::from_le_bytes(b),
                    RunTimeEndian::Big => u32::from_be_bytes(b),
                })
            }
            _ => return None,
        };
        Some(Global {
            name: name.to_string(),
            addr,
            ty: a.ty,
        })
    }

    /// All global variable names (sorted). Indexes every compile unit.
    pub fn globals(&self) -> Vec<String> {
        let Some(data) = self.data() else {
            return Vec::new();
        };
        let mut out: Vec<String> = (0..data.units.len())
            .filter_map(|u| self.unit_index(data, u))
            .flat_map(|ix| ix.vars.keys().map(|k| k.to_string()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A Go constant (`DW_TAG_constant`): `runtime._Gwaiting`, `runtime.waitReasonChanReceive`.
    pub fn constant(&self, name: &str) -> Option<i64> {
        let data = self.data()?;
        let die = self.lookup_in_package(data, name, |ix| ix.consts.get(name).copied())?;
        self.die_attrs(die)?.const_value
    }

    /// All constants whose name starts with `prefix` (e.g. `runtime.waitReason`),
    /// sorted by name. The prefix must include the package (`runtime.`).
    pub fn constants_with_prefix(&self, prefix: &str) -> Vec<(String, i64)> {
        let Some(data) = self.data() else {
            return Vec::new();
        };
        let mut units: Vec<usize> = Vec::new();
        for pkg in package_candidates(prefix) {
            if let Some(us) = data.by_name.get(pkg) {
                units.extend(us);
            }
        }
        let mut out: Vec<(String, i64)> = units
            .iter()
            .filter_map(|&u| self.unit_index(data, u))
            .flat_map(|ix| ix.consts.iter())
            .filter(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, &die)| Some((k.to_string(), self.die_attrs(die)?.const_value?)))
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The type whose runtime type descriptor is at link-time address `addr`
    /// (e.g. an eface's type word minus the PIE load bias).
    pub fn type_by_runtime_addr(&self, addr: u64) -> Option<TypeRef> {
        self.type_by_runtime_off(addr.checked_sub(self.types_base?)?)
    }

    /// The type whose `DW_AT_go_runtime_type` is `off` (offset from `runtime.types`).
    pub fn type_by_runtime_off(&self, off: u64) -> Option<TypeRef> {
        if off == 0 {
            return None;
        }
        let data = self.data()?;
        for &u in &data.type_order {
            if let Some(&t) = self.unit_index(data, u)?.runtime_types.get(&off) {
                return Some(t);
            }
        }
        None
    }

    /// Name of the type at `t`.
    pub fn type_name(&self, t: TypeRef) -> Option<String> {
        self.get(t).map(|ty| ty.name.clone())
    }

    // ---------------------------------------------------------------- internals

    /// Turn a raw `DW_AT_go_runtime_type` into an offset from `runtime.types`.
    /// It is an offset (`R_ADDROFF`), except that linkers up to Go 1.2x wrote
    /// the builtin `uintptr` DIE's value as an absolute address.
    pub(super) fn runtime_type_offset(&self, raw: u64) -> Option<u64> {
        if raw == 0 {
            return None;
        }
        if let (Some(start), Some(end)) = (self.types_base, self.types_end) {
            let len = end - start;
            if raw >= len && raw >= start && raw < end {
                return Some(raw - start);
            }
        }
        Some(raw)
    }

    pub(super) fn data(&self) -> Option<&Data> {
        self.data
            .get_or_init(|| self.build_data().map_err(|e| e.to_string()))
            .as_ref()
            .ok()
    }

    fn info_bytes<'a>(&'a self, data: &'a Data) -> &'a [u8] {
        data.info.as_deref().unwrap_or(&self.raw_info.bytes)
    }

    fn abbrev_bytes<'a>(&'a self, data: &'a Data) -> &'a [u8] {
        data.abbrev.as_deref().unwrap_or(&self.raw_abbrev.bytes)
    }

    fn build_data(&self) -> Result<Data, DwarfError> {
        let info = self.raw_info.decompress(".debug_info")?;
        let abbrev = self.raw_abbrev.decompress(".debug_abbrev")?;
        let mut data = Data {
            info,
            abbrev,
            units: Vec::new(),
            by_name: HashMap::new(),
            type_order: Vec::new(),
            version: 0,
        };
        let debug_info = gimli::DebugInfo::new(self.info_bytes(&data), self.endian);
        let debug_abbrev = gimli::DebugAbbrev::new(self.abbrev_bytes(&data), self.endian);
        let mut units = Vec::new();
        let mut version = 0;
        let mut iter = debug_info.units();
        // A malformed header ends the directory; the units before it stay usable.
        while let Ok(Some(header)) = iter.next() {
            let Some(start) = header.offset().as_debug_info_offset() else {
                break;
            };
            let start = start.0 as u64;
            let end = start.saturating_add(header.length_including_self() as u64);
            if version == 0 {
                version = header.version();
            }
            let name = self
                .abbreviations(&header, &debug_abbrev)
                .and_then(|ab| root_name(&header, &ab))
                .unwrap_or_default();
            units.push(Unit {
                start,
                end,
                name,
                index: OnceLock::new(),
            });
        }
        if units.is_empty() {
            return Err(DwarfError::Section {
                section: ".debug_info",
                msg: "no compile units".into(),
            });
        }
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, u) in units.iter().enumerate() {
            by_name.entry(u.name.clone()).or_default().push(i);
        }
        // The linker appends all types to the last `runtime` CU it created,
        // which is usually (not always) the last one in the section: search
        // those backwards so the big CU of runtime functions is seldom scanned.
        let mut runtime_units = by_name.get("runtime").cloned().unwrap_or_default();
        runtime_units.reverse();
        data.type_order = if !runtime_units.is_empty() {
            runtime_units
        } else {
            (0..units.len()).collect()
        };
        data.units = units;
        data.by_name = by_name;
        data.version = version;
        Ok(data)
    }

    /// Abbreviations of a unit, parsed once per abbrev-table offset.
    fn abbreviations(
        &self,
        header: &UnitHeader<Reader<'_>>,
        debug_abbrev: &gimli::DebugAbbrev<Reader<'_>>,
    ) -> Option<Arc<gimli::Abbreviations>> {
        let off = header.debug_abbrev_offset().0 as u64;
        if let Ok(cache) = self.abbrevs.lock() {
            if let Some(a) = cache.get(&off) {
                return Some(a.clone());
            }
        }
        let parsed = Arc::new(
            debug_abbrev
                .abbreviations(DebugAbbrevOffset(header.debug_abbrev_offset().0))
                .ok()?,
        );
        if let Ok(mut cache) = self.abbrevs.lock() {
            cache.insert(off, parsed.clone());
        }
        Some(parsed)
    }

    /// Header and abbreviations of unit `u`.
    pub(super) fn unit_header<'a>(
        &'a self,
        data: &'a Data,
        u: usize,
    ) -> Option<(UnitHeader<Reader<'a>>, Arc<gimli::Abbreviations>)> {
        let unit = data.units.get(u)?;
        let debug_info = gimli::DebugInfo::new(self.info_bytes(data), self.endian);
        let debug_abbrev = gimli::DebugAbbrev::new(self.abbrev_bytes(data), self.endian);
        let header = debug_info
            .header_from_offset(DebugInfoOffset(usize::try_from(unit.start).ok()?))
            .ok()?;
        let abbrevs = self.abbreviations(&header, &debug_abbrev)?;
        Some((header, abbrevs))
    }

    /// The unit containing `.debug_info` offset `off`.
    pub(super) fn unit_of(&self, data: &Data, off: u64) -> Option<usize> {
        let i = data.units.partition_point(|u| u.start <= off);
        let u = i.checked_sub(1)?;
        (off < data.units[u].end).then_some(u)
    }

    fn unit_index<'a>(&self, data: &'a Data, u: usize) -> Option<&'a UnitIndex> {
        let unit = data.units.get(u)?;
        Some(unit.index.get_or_init(|| self.build_unit_index(data, u)))
    }

    /// Scan a unit's DIEs, recording the names of depth-1 types, variables and
    /// constants. Other DIEs (function bodies) are skipped attribute-wise. A
    /// parse error ends the scan, keeping what was indexed so far.
    fn build_unit_index(&self, data: &Data, u: usize) -> UnitIndex {
        let mut ix = UnitIndex::default();
        let Some((header, abbrevs)) = self.unit_header(data, u) else {
            return ix;
        };
        let unit_start = data.units[u].start;
        let Ok(mut raw) = header.entries_raw(&abbrevs, None) else {
            return ix;
        };
        let _ = (|| -> gimli::Result<()> {
            while !raw.is_empty() {
                let depth = raw.next_depth();
                let off = unit_start + raw.next_offset().0 as u64;
                let Some(abbrev) = raw.read_abbreviation()? else {
                    continue;
                };
                let class = if depth == 1 {
                    index_class(abbrev.tag())
                } else {
                    IndexClass::Skip
                };
                if class == IndexClass::Skip {
                    raw.skip_attributes(abbrev.attributes())?;
                    continue;
                }
                let mut name = None;
                let mut rt = None;
                let mut has_kind = false;
                for spec in abbrev.attributes() {
                    match spec.name() {
                        gimli::DW_AT_name => {
                            name = attr_string(&raw.read_attribute(*spec)?.raw_value());
                        }
                        DW_AT_GO_RUNTIME_TYPE => {
                            rt = attr_u64(&raw.read_attribute(*spec)?.raw_value());
                        }
                        n => {
                            has_kind |= n == DW_AT_GO_KIND;
                            raw.skip_attributes(std::slice::from_ref(spec))?;
                        }
                    }
                }
                let Some(name) = name else { continue };
                match class {
                    IndexClass::Type => {
                        let prio = if abbrev.tag() != gimli::DW_TAG_typedef || has_kind {
                            2
                        } else {
                            1
                        };
                        let slot = ix.types.entry(name.into_boxed_str()).or_insert((off, prio));
                        if prio > slot.1 {
                            *slot = (off, prio);
                        }
                        if let Some(rt) = rt.and_then(|r| self.runtime_type_offset(r)) {
                            ix.runtime_types.entry(rt).or_insert(off);
                        }
                    }
                    IndexClass::Var => {
                        ix.vars.entry(name.into_boxed_str()).or_insert(off);
                    }
                    IndexClass::Const => {
                        ix.consts.entry(name.into_boxed_str()).or_insert(off);
                    }
                    IndexClass::Skip => {}
                }
            }
            Ok(())
        })();
        ix
    }

    /// Find a variable/constant by name in the CU(s) of its package.
    fn lookup_in_package(
        &self,
        data: &Data,
        name: &str,
        f: impl Fn(&UnitIndex) -> Option<u64>,
    ) -> Option<u64> {
        for pkg in package_candidates(name) {
            if let Some(units) = data.by_name.get(pkg) {
                for &u in units {
                    if let Some(hit) = self.unit_index(data, u).and_then(&f) {
                        return Some(hit);
                    }
                }
            }
        }
        None
    }
}

/// Link-time range `[runtime.types, runtime.etypes)` of the type descriptors:
/// from the symbol table if there is one (they are local symbols, which come
/// first, so the scan stops early), else the `.go.type` (Go 1.26+) or
/// `.rodata` section.
fn find_types_range(file: &object::File<'_>) -> (Option<u64>, Option<u64>) {
    let (mut start, mut end) = (None, None);
    for sym in file.symbols() {
        match sym.name_bytes() {
            Ok(b"runtime.types") => start = Some(sym.address()),
            Ok(b"runtime.etypes") => end = Some(sym.address()),
            _ => continue,
        }
        if start.is_some() && end.is_some() {
            break;
        }
    }
    if start.is_none() {
        if let Some(s) = file
            .section_by_name(".go.type")
            .or_else(|| file.section_by_name(".rodata"))
        {
            start = Some(s.address());
            end = s.address().checked_add(s.size());
        }
    }
    (start, end.filter(|&e| start.is_some_and(|s| e > s)))
}
