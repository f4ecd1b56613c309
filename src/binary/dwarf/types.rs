//! The Go-level view the reader returns: types, fields, globals, errors.

/// A type, named by the `.debug_info` offset of its DIE.
pub type TypeRef = u64;

/// Go-specific DWARF attributes (cmd/internal/dwarf).
pub const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
pub const DW_AT_GO_KEY: gimli::DwAt = gimli::DwAt(0x2901);
pub const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
pub const DW_AT_GO_EMBEDDED_FIELD: gimli::DwAt = gimli::DwAt(0x2903);
pub const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);
pub const DW_AT_GO_PACKAGE_NAME: gimli::DwAt = gimli::DwAt(0x2905);

/// Longest typedef chain `resolve` follows.
pub(super) const MAX_TYPEDEF_CHAIN: usize = 32;

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
