//! A decoded Go value: the tree `var` prints, and why parts of it are
//! missing.

use crate::goruntime::gotypes::Ty;

/// Bounds for one decode.
#[derive(Debug, Clone)]
pub struct ValueOptions {
    /// Indirections followed (pointers, interfaces, slices, maps, channels).
    pub max_depth: u32,
    /// Elements shown per array, slice, map or channel.
    pub max_elems: usize,
    /// Bytes shown per string or `[]byte`.
    pub max_string: usize,
    /// Total bytes read from memory for the whole value.
    pub max_bytes: u64,
}

impl ValueOptions {
    /// For people: short strings and containers.
    pub fn text() -> ValueOptions {
        ValueOptions {
            max_depth: 32,
            max_elems: 100,
            max_string: 1024,
            max_bytes: 256 << 20,
        }
    }
    /// For `--json`: complete values (as `encoding/json` would write them)
    /// unless they are huge.
    pub fn json() -> ValueOptions {
        ValueOptions {
            max_depth: 64,
            max_elems: 1 << 22,
            max_string: 64 << 20,
            max_bytes: 1 << 30,
        }
    }
}

/// A decoded value and its static type.
#[derive(Debug, Clone)]
pub struct Value {
    pub ty: Option<Ty>,
    /// Go type name (`main.Config`, `[]int`, `map[string]int`...).
    pub type_name: String,
    pub v: V,
}

#[derive(Debug, Clone)]
pub enum V {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Uintptr(u64),
    /// `bits`: 32 or 64.
    Float {
        v: f64,
        bits: u8,
    },
    /// `bits`: 32 (complex64) or 64 (complex128), per part.
    Complex {
        re: f64,
        im: f64,
        bits: u8,
    },
    /// `data` holds at most `max_string` bytes of the `len`.
    Str {
        data: Vec<u8>,
        len: u64,
    },
    /// A non-nil `[]byte` (or other slice of a 1-byte unsigned type).
    Bytes {
        data: Vec<u8>,
        len: u64,
        cap: u64,
    },
    /// nil pointer, slice, map, interface, chan or func.
    Nil,
    Ptr {
        addr: u64,
        target: Box<Value>,
    },
    UnsafePtr(u64),
    Func {
        pc: u64,
        name: Option<String>,
    },
    Slice {
        addr: u64,
        len: u64,
        cap: u64,
        elems: Vec<Value>,
    },
    Array {
        len: u64,
        elems: Vec<Value>,
    },
    /// Every member in declaration order (unexported and embedded included).
    Struct {
        fields: Vec<Field>,
    },
    Map {
        addr: u64,
        len: u64,
        entries: Vec<(Value, Value)>,
        /// Parts of the map that could not be read.
        missing: Vec<Missing>,
    },
    /// A non-nil interface; `target` has the dynamic type.
    Iface {
        target: Box<Value>,
    },
    Chan {
        addr: u64,
        len: u64,
        cap: u64,
        closed: bool,
        elem_type: String,
        values: Vec<Value>,
    },
    Missing(Missing),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub embedded: bool,
    pub value: Value,
}

/// Why (part of) a value is not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The bytes are not in the snapshot (or unreadable in the target).
    NotCaptured { addr: u64, len: u64 },
    /// A pointer back to a value being printed.
    Cycle { addr: u64 },
    /// `max_depth` indirections reached.
    DepthLimit { addr: u64 },
    /// `max_bytes` exhausted.
    Budget,
    /// Something gospy cannot decode (unknown dynamic type, bad header...).
    Unknown(String),
}

impl Missing {
    pub fn describe(&self) -> String {
        match self {
            Missing::NotCaptured { addr, len } => {
                format!("not captured: {len} bytes at {addr:#x}")
            }
            Missing::Cycle { addr } => format!("cycle: points back to {addr:#x}"),
            Missing::DepthLimit { addr } => {
                format!("depth limit: {addr:#x} not followed (use --depth)")
            }
            Missing::Budget => "read budget exhausted".to_string(),
            Missing::Unknown(why) => why.clone(),
        }
    }
}

impl Value {
    pub(crate) fn new(ty: Option<Ty>, type_name: impl Into<String>, v: V) -> Value {
        Value {
            ty,
            type_name: type_name.into(),
            v,
        }
    }
    pub(crate) fn missing(ty: Option<Ty>, type_name: &str, m: Missing) -> Value {
        Value::new(ty, type_name, V::Missing(m))
    }
}

/// Every `Missing` marker in a value tree (for summaries).
pub fn collect_missing<'v>(v: &'v Value, out: &mut Vec<&'v Missing>) {
    match &v.v {
        V::Missing(m) => out.push(m),
        V::Ptr { target, .. } | V::Iface { target } => collect_missing(target, out),
        V::Slice { elems, .. } | V::Array { elems, .. } => {
            elems.iter().for_each(|e| collect_missing(e, out))
        }
        V::Chan { values, .. } => values.iter().for_each(|e| collect_missing(e, out)),
        V::Struct { fields } => fields.iter().for_each(|f| collect_missing(&f.value, out)),
        V::Map {
            entries, missing, ..
        } => {
            out.extend(missing.iter());
            for (k, val) in entries {
                collect_missing(k, out);
                collect_missing(val, out);
            }
        }
        _ => {}
    }
}
