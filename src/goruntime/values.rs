//! Go values decoded from memory, typed by the executable's DWARF: the `var`
//! analysis.
//!
//! [`Decoder`] turns `(address, DWARF type)` into a [`Value`] tree: scalars,
//! strings, pointers (followed, with a depth limit and cycle detection),
//! arrays, slices, structs, maps (the old `hmap` of Go ≤ 1.23 and of
//! `GOEXPERIMENT=noswissmap` builds, Swiss tables from Go 1.24, both told
//! apart by the DWARF header struct the linker synthesizes: `hash<K,V>` vs
//! `map<K,V>`), interfaces (dynamic type from the runtime type descriptor,
//! mapped back to DWARF), channels (buffered values from `hchan`), funcs
//! (name from pclntab) and `unsafe.Pointer`.
//!
//! Every read is bounded: element caps, string caps, a depth cap and a total
//! bytes budget ([`ValueOptions`]). Memory that is not available (not in the
//! snapshot) becomes a [`Missing::NotCaptured`] marker in the tree instead of
//! an error, so the rest of the value still prints.
//!
//! Two renderings: [`to_text`] (Go-like, `main.Config{Name: "x", Ports:
//! []int{80, 443}}`) and [`Decoder::to_json`], which produces what
//! `encoding/json` would for the same value, with these limits:
//! - DWARF has no struct tags: fields are keyed by their Go name and the
//!   exported-field, embedding and dominant-field rules are applied as for
//!   untagged fields only (`json:"name"`, `omitempty`, `-` and `string` are
//!   not known);
//! - `MarshalJSON`/`MarshalText` methods are not run (e.g. `time.Time`,
//!   `net.IP` print as their fields);
//! - values `encoding/json` rejects get a gospy rendering instead of an
//!   error: complex numbers as fmt's `(1+2i)` string, channels as
//!   `{"len", "cap", "closed", "elem", "values"}`, funcs as their name,
//!   `unsafe.Pointer` as a hex string, pointer cycles and other markers as
//!   `{"$gospy": "cycle" | "not captured" | ..., ...}`; map keys other than
//!   strings and integers use their text rendering.

use super::gotypes::{MapImpl, MapLayout, TKind, Ty, TypeDesc, Types};
use super::Target;
use crate::binary::dwarf::TypeRef;
use crate::memory::Memory;
use std::collections::HashSet;
use std::sync::Arc;

/// Largest single object (struct, array) read in one piece.
const MAX_OBJECT: u64 = 256 << 20;
/// Deepest recursion of inline (struct/array) decoding, indirections included.
const MAX_NESTING: u32 = 256;
/// Largest plausible length of a string, slice, map or channel.
const MAX_LEN: u64 = 1 << 40;
/// Old hmap: tophash values below this mark empty or evacuated slots.
const MIN_TOP_HASH: u8 = 5;
/// Old hmap flag: the map is growing to a table of the same size.
const SAME_SIZE_GROW: u8 = 8;

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
    fn new(ty: Option<Ty>, type_name: impl Into<String>, v: V) -> Value {
        Value {
            ty,
            type_name: type_name.into(),
            v,
        }
    }
    fn missing(ty: Option<Ty>, type_name: &str, m: Missing) -> Value {
        Value::new(ty, type_name, V::Missing(m))
    }
}

// ---------------------------------------------------------------- decoder

fn le64(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o.saturating_add(8))
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

fn le_n(b: &[u8], n: usize) -> Option<u64> {
    let s = b.get(..n)?;
    let mut x = [0u8; 8];
    x[..n].copy_from_slice(s);
    Some(u64::from_le_bytes(x))
}

/// Decodes values from one memory. Not thread-safe; cheap to create.
pub struct Decoder<'a, M: Memory> {
    pub t: &'a Target,
    pub types: Types<'a>,
    mem: &'a M,
    pub opts: ValueOptions,
    bytes_left: u64,
    /// (address, type) of the pointers being followed, for cycle detection.
    stack: Vec<(u64, Ty)>,
    /// Current recursion depth of `inline`.
    nesting: u32,
    /// Reads that failed: how many, and the first few.
    pub not_captured: usize,
    pub first_missing: Vec<(u64, u64)>,
    pub budget_exhausted: bool,
}

impl<'a, M: Memory> Decoder<'a, M> {
    /// None when the executable has no DWARF.
    pub fn new(t: &'a Target, mem: &'a M, opts: ValueOptions) -> Option<Self> {
        let d = t.bin.dwarf()?;
        Some(Decoder {
            t,
            types: Types::new(t, d),
            mem,
            bytes_left: opts.max_bytes,
            opts,
            stack: Vec::new(),
            nesting: 0,
            not_captured: 0,
            first_missing: Vec::new(),
            budget_exhausted: false,
        })
    }

    fn desc(&mut self, ty: Ty) -> Option<Arc<TypeDesc>> {
        self.types.desc(self.mem, ty)
    }

    fn name_of(&mut self, ty: Ty) -> String {
        self.types.name(self.mem, ty)
    }

    fn size_of(&mut self, ty: Ty) -> u64 {
        self.types.size_of(self.mem, ty).unwrap_or(0)
    }

    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Missing> {
        if len > self.bytes_left || len > MAX_OBJECT {
            self.budget_exhausted = true;
            return Err(Missing::Budget);
        }
        self.bytes_left -= len;
        self.mem.read_vec(addr, len as usize).map_err(|_| {
            self.not_captured += 1;
            if self.first_missing.len() < 8 {
                self.first_missing.push((addr, len));
            }
            Missing::NotCaptured { addr, len }
        })
    }

    /// The value of the global (or any object) of DWARF type `ty` at `addr`.
    pub fn decode_global(&mut self, addr: u64, ty: TypeRef) -> Value {
        self.decode(addr, Ty::Dwarf(ty), 0)
    }

    /// The value of type `ty` stored at `addr`.
    pub fn decode(&mut self, addr: u64, ty: Ty, depth: u32) -> Value {
        let Some(desc) = self.desc(ty) else {
            return Value::missing(Some(ty), "", Missing::Unknown("unknown type".into()));
        };
        let mut size = desc.size;
        if let TKind::Array(elem, len) = desc.kind {
            if len > self.opts.max_elems as u64 {
                size = self
                    .size_of(elem)
                    .saturating_mul(self.opts.max_elems as u64);
            }
        }
        match self.read(addr, size) {
            Ok(b) => self.inline(&b, addr, ty, depth),
            Err(m) => Value::missing(Some(ty), &desc.name, m),
        }
    }

    /// The value of type `ty` whose bytes (from `addr`) are `b`.
    fn inline(&mut self, b: &[u8], addr: u64, ty: Ty, depth: u32) -> Value {
        // Nested inline types (structs in structs...) are finite in valid
        // DWARF; a bound keeps malformed type data from recursing forever.
        if self.nesting >= MAX_NESTING {
            return Value::missing(
                Some(ty),
                "",
                Missing::Unknown("types nested too deeply".into()),
            );
        }
        self.nesting += 1;
        let v = self.inline_inner(b, addr, ty, depth);
        self.nesting -= 1;
        v
    }

    fn inline_inner(&mut self, b: &[u8], addr: u64, ty: Ty, depth: u32) -> Value {
        let Some(desc) = self.desc(ty) else {
            return Value::missing(Some(ty), "", Missing::Unknown("unknown type".into()));
        };
        let name = desc.name.clone();
        let size = desc.size as usize;
        let short = || {
            Value::missing(
                Some(ty),
                &name,
                Missing::Unknown(format!(
                    "short read: {} bytes for a {size}-byte type",
                    b.len()
                )),
            )
        };
        let word = |o: u64| le64(b, o);
        let v = match &desc.kind {
            TKind::Bool => match b.first() {
                Some(&x) => V::Bool(x != 0),
                None => return short(),
            },
            TKind::Int => match le_n(b, size.clamp(1, 8)) {
                Some(x) => {
                    let shift = 64 - 8 * size.clamp(1, 8) as u32;
                    V::Int(((x << shift) as i64) >> shift)
                }
                None => return short(),
            },
            TKind::Uint => match le_n(b, size.clamp(1, 8)) {
                Some(x) => V::Uint(x),
                None => return short(),
            },
            TKind::Uintptr => match le_n(b, 8) {
                Some(x) => V::Uintptr(x),
                None => return short(),
            },
            TKind::Float => match (size, le_n(b, size.clamp(1, 8))) {
                (4, Some(x)) => V::Float {
                    v: f32::from_bits(x as u32) as f64,
                    bits: 32,
                },
                (8, Some(x)) => V::Float {
                    v: f64::from_bits(x),
                    bits: 64,
                },
                _ => return short(),
            },
            TKind::Complex => {
                let half = size / 2;
                match (
                    le_n(b, half.clamp(1, 8)),
                    b.get(half..).and_then(|r| le_n(r, half.clamp(1, 8))),
                    half,
                ) {
                    (Some(r), Some(i), 4) => V::Complex {
                        re: f32::from_bits(r as u32) as f64,
                        im: f32::from_bits(i as u32) as f64,
                        bits: 32,
                    },
                    (Some(r), Some(i), 8) => V::Complex {
                        re: f64::from_bits(r),
                        im: f64::from_bits(i),
                        bits: 64,
                    },
                    _ => return short(),
                }
            }
            TKind::String => {
                if b.len() < 16 {
                    return short();
                }
                return self.string(ty, name, word(0), word(8));
            }
            TKind::UnsafePointer => V::UnsafePtr(word(0)),
            TKind::Func => {
                let p = word(0);
                if p == 0 {
                    V::Nil
                } else {
                    // A func value points to a funcval whose first word is the PC.
                    match self.read(p, 8) {
                        Ok(fv) => {
                            let pc = le64(&fv, 0);
                            V::Func {
                                pc,
                                name: self.t.func_name(pc).map(|s| s.to_string()),
                            }
                        }
                        Err(m) => V::Missing(m),
                    }
                }
            }
            TKind::Pointer(elem) => {
                let p = word(0);
                match elem {
                    _ if p == 0 => V::Nil,
                    None => V::UnsafePtr(p),
                    Some(e) => self.follow(p, *e, depth),
                }
            }
            TKind::Slice(elem) => {
                if b.len() < 24 {
                    return short();
                }
                let (p, len, cap) = (word(0), word(8), word(16));
                if p == 0 {
                    V::Nil
                } else {
                    self.slice(p, len, cap, *elem, depth)
                }
            }
            TKind::Array(elem, len) => {
                let esz = self.size_of(*elem);
                let n = (*len).min(self.opts.max_elems as u64);
                let mut elems = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let o = (i * esz) as usize;
                    let Some(eb) = b.get(o..o + esz as usize) else {
                        break;
                    };
                    elems.push(self.inline(eb, addr + i * esz, *elem, depth));
                }
                V::Array { len: *len, elems }
            }
            TKind::Struct(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    let fsz = self.size_of(f.ty) as usize;
                    let o = f.offset as usize;
                    let value = match b.get(o..o.saturating_add(fsz)) {
                        Some(fb) => self.inline(fb, addr + f.offset, f.ty, depth),
                        None => {
                            let n = self.name_of(f.ty);
                            Value::missing(
                                Some(f.ty),
                                &n,
                                Missing::Unknown("field outside its struct".into()),
                            )
                        }
                    };
                    out.push(Field {
                        name: f.name.clone(),
                        embedded: f.embedded,
                        value,
                    });
                }
                V::Struct { fields: out }
            }
            TKind::Interface { empty } => {
                if b.len() < 16 {
                    return short();
                }
                self.iface(b, addr, *empty, depth)
            }
            TKind::Map { .. } => {
                let p = word(0);
                if p == 0 {
                    V::Nil
                } else {
                    self.map(p, ty, depth)
                }
            }
            TKind::Chan(elem) => {
                let p = word(0);
                if p == 0 {
                    V::Nil
                } else {
                    self.chan(p, *elem, depth)
                }
            }
            TKind::Unknown(why) => V::Missing(Missing::Unknown(why.clone())),
        };
        Value::new(Some(ty), name, v)
    }

    fn string(&mut self, ty: Ty, name: String, p: u64, len: u64) -> Value {
        if len == 0 {
            return Value::new(Some(ty), name, V::Str { data: vec![], len });
        }
        if len > MAX_LEN {
            return Value::missing(
                Some(ty),
                &name,
                Missing::Unknown(format!("implausible string length {len}")),
            );
        }
        let n = len.min(self.opts.max_string as u64);
        match self.read(p, n) {
            Ok(data) => Value::new(Some(ty), name, V::Str { data, len }),
            Err(m) => Value::missing(Some(ty), &name, m),
        }
    }

    /// Follow a non-nil pointer to a value of type `elem`.
    fn follow(&mut self, p: u64, elem: Ty, depth: u32) -> V {
        if depth >= self.opts.max_depth {
            return V::Missing(Missing::DepthLimit { addr: p });
        }
        if self.stack.contains(&(p, elem)) {
            return V::Missing(Missing::Cycle { addr: p });
        }
        self.stack.push((p, elem));
        let target = self.decode(p, elem, depth + 1);
        self.stack.pop();
        V::Ptr {
            addr: p,
            target: Box::new(target),
        }
    }

    fn slice(&mut self, p: u64, len: u64, cap: u64, elem: Ty, depth: u32) -> V {
        if len > cap || len > MAX_LEN {
            return V::Missing(Missing::Unknown(format!(
                "implausible slice header: len {len}, cap {cap}"
            )));
        }
        let esz = self.size_of(elem);
        let byte_elem =
            esz == 1 && matches!(self.desc(elem).map(|d| d.kind.clone()), Some(TKind::Uint));
        if byte_elem {
            let n = len.min(self.opts.max_string as u64);
            return match self.read(p, n) {
                Ok(data) => V::Bytes { data, len, cap },
                Err(m) => V::Missing(m),
            };
        }
        if depth >= self.opts.max_depth {
            return V::Missing(Missing::DepthLimit { addr: p });
        }
        let n = len.min(self.opts.max_elems as u64);
        let buf = match self.read(p, n.saturating_mul(esz)) {
            Ok(b) => b,
            Err(m) => return V::Missing(m),
        };
        let mut elems = Vec::with_capacity(n as usize);
        for i in 0..n {
            let o = (i * esz) as usize;
            let eb = buf.get(o..o + esz as usize).unwrap_or(&[]);
            elems.push(self.inline(eb, p + i * esz, elem, depth + 1));
        }
        V::Slice {
            addr: p,
            len,
            cap,
            elems,
        }
    }

    fn iface(&mut self, b: &[u8], addr: u64, empty: bool, depth: u32) -> V {
        let (tw, data) = (le64(b, 0), le64(b, 8));
        if tw == 0 {
            return V::Nil;
        }
        let rtype = if empty {
            tw
        } else {
            // itab: inter@0, _type@8 (abi.ITab.Type from Go 1.22).
            match self.read(tw + 8, 8) {
                Ok(x) => le64(&x, 0),
                Err(m) => return V::Missing(m),
            }
        };
        let (dyn_ty, direct) = match self.types.dynamic_type(self.mem, rtype) {
            Ok(x) => x,
            Err(e) => return V::Missing(Missing::Unknown(e)),
        };
        if depth >= self.opts.max_depth {
            return V::Missing(Missing::DepthLimit { addr: data });
        }
        let target = if direct {
            // The interface's data word is the value itself.
            self.inline(&b[8..16], addr + 8, dyn_ty, depth + 1)
        } else if data == 0 {
            let n = self.name_of(dyn_ty);
            Value::missing(
                Some(dyn_ty),
                &n,
                Missing::Unknown("nil data word for an indirect interface value".into()),
            )
        } else if self.stack.contains(&(data, dyn_ty)) {
            let n = self.name_of(dyn_ty);
            Value::missing(Some(dyn_ty), &n, Missing::Cycle { addr: data })
        } else {
            self.stack.push((data, dyn_ty));
            let v = self.decode(data, dyn_ty, depth + 1);
            self.stack.pop();
            v
        };
        V::Iface {
            target: Box::new(target),
        }
    }

    fn map(&mut self, p: u64, ty: Ty, depth: u32) -> V {
        let Some(l) = self.types.map_layout(self.mem, ty) else {
            return V::Missing(Missing::Unknown(
                "map layout not found (DWARF or type descriptors)".to_string(),
            ));
        };
        if depth >= self.opts.max_depth {
            return V::Missing(Missing::DepthLimit { addr: p });
        }
        if self.stack.contains(&(p, ty)) {
            return V::Missing(Missing::Cycle { addr: p });
        }
        self.stack.push((p, ty));
        let v = self.map_entries(p, &l, depth + 1);
        self.stack.pop();
        v
    }

    /// Decode the key or elem of one slot. `b`: the bucket/group bytes.
    #[allow(clippy::too_many_arguments)]
    fn slot(
        &mut self,
        b: &[u8],
        base: u64,
        off: u64,
        ty: Ty,
        size: u64,
        indirect: bool,
        depth: u32,
    ) -> Value {
        if indirect {
            let p = le64(b, off);
            if p == 0 {
                let n = self.name_of(ty);
                return Value::missing(
                    Some(ty),
                    &n,
                    Missing::Unknown("nil indirect map slot".into()),
                );
            }
            return self.decode(p, ty, depth);
        }
        let o = off as usize;
        match b.get(o..o + size as usize) {
            Some(s) => self.inline(s, base + off, ty, depth),
            None => {
                let n = self.name_of(ty);
                Value::missing(
                    Some(ty),
                    &n,
                    Missing::Unknown("map slot outside its bucket".into()),
                )
            }
        }
    }

    fn take_slot(
        &mut self,
        l: &MapLayout,
        b: &[u8],
        base: u64,
        i: u64,
        depth: u32,
        entries: &mut Vec<(Value, Value)>,
    ) {
        let k = self.slot(
            b,
            base,
            l.key_base + i * l.key_stride,
            l.key,
            l.key_size,
            l.key_indirect,
            depth,
        );
        let v = self.slot(
            b,
            base,
            l.elem_base + i * l.elem_stride,
            l.elem,
            l.elem_size,
            l.elem_indirect,
            depth,
        );
        entries.push((k, v));
    }

    fn map_entries(&mut self, p: u64, l: &MapLayout, depth: u32) -> V {
        let hdr = match self.read(p, l.header_size) {
            Ok(h) => h,
            Err(m) => return V::Missing(m),
        };
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        let cap_entries = self.opts.max_elems as u64;
        let len;
        match &l.imp {
            MapImpl::Hmap {
                count,
                flags,
                b,
                buckets,
                oldbuckets,
                bucket_size,
                tophash,
                overflow,
            } => {
                len = le64(&hdr, *count);
                let bb = hdr.get(*b as usize).copied().unwrap_or(0);
                let fl = hdr.get(*flags as usize).copied().unwrap_or(0);
                if len > MAX_LEN || bb > 40 {
                    return V::Missing(Missing::Unknown(format!(
                        "implausible map header: count {len}, B {bb}"
                    )));
                }
                let nb = 1u64 << bb;
                let old_nb = if fl & SAME_SIZE_GROW != 0 { nb } else { nb / 2 };
                let want = len.min(cap_entries) as usize;
                // Every bucket (and overflow chain) of both arrays; slots
                // of evacuated old buckets are marked below MIN_TOP_HASH.
                let mut visits = 0u64;
                let max_visits = nb + old_nb + len + 16;
                let arrays = [
                    (le64(&hdr, *buckets), nb),
                    (le64(&hdr, *oldbuckets), old_nb),
                ];
                'outer: for (arr, n) in arrays {
                    if arr == 0 {
                        continue;
                    }
                    for i in 0..n {
                        let mut bk = arr + i * bucket_size;
                        while bk != 0 {
                            visits += 1;
                            if visits > max_visits || entries.len() >= want {
                                break 'outer;
                            }
                            let b = match self.read(bk, *bucket_size) {
                                Ok(b) => b,
                                Err(m) => {
                                    missing.push(m);
                                    if self.budget_exhausted {
                                        break 'outer;
                                    }
                                    break;
                                }
                            };
                            for s in 0..8u64 {
                                let th = b.get((*tophash + s) as usize).copied().unwrap_or(0);
                                if th < MIN_TOP_HASH {
                                    continue;
                                }
                                self.take_slot(l, &b, bk, s, depth, &mut entries);
                                if entries.len() >= want {
                                    break 'outer;
                                }
                            }
                            bk = le64(&b, *overflow);
                        }
                    }
                }
            }
            MapImpl::Swiss {
                used,
                dir_ptr,
                dir_len,
                table_size,
                groups_data,
                length_mask,
                group_size,
                ctrl,
            } => {
                len = le64(&hdr, *used);
                let dp = le64(&hdr, *dir_ptr);
                let dl = le64(&hdr, *dir_len);
                if len > MAX_LEN || dl > 1 << 24 {
                    return V::Missing(Missing::Unknown(format!(
                        "implausible map header: used {len}, dirLen {dl}"
                    )));
                }
                let want = len.min(cap_entries) as usize;
                // (groups array, number of groups); a small map (dirLen 0)
                // is a single group.
                let mut group_arrays: Vec<(u64, u64)> = Vec::new();
                if dl == 0 {
                    if dp != 0 {
                        group_arrays.push((dp, 1));
                    }
                } else {
                    match self.read(dp, dl * 8) {
                        Ok(dir) => {
                            // Directory entries repeat when a table's local
                            // depth is below the global depth.
                            let mut seen = HashSet::new();
                            for j in 0..dl {
                                let tp = le64(&dir, j * 8);
                                if tp == 0 || !seen.insert(tp) {
                                    continue;
                                }
                                match self.read(tp, *table_size) {
                                    Ok(tb) => {
                                        let data = le64(&tb, *groups_data);
                                        let mask = le64(&tb, *length_mask);
                                        if data != 0 && mask < 1 << 24 {
                                            group_arrays.push((data, mask + 1));
                                        }
                                    }
                                    Err(m) => missing.push(m),
                                }
                            }
                        }
                        Err(m) => missing.push(m),
                    }
                }
                'groups: for (data, n) in group_arrays {
                    for gi in 0..n {
                        if entries.len() >= want {
                            break 'groups;
                        }
                        let ga = data + gi * group_size;
                        let g = match self.read(ga, *group_size) {
                            Ok(g) => g,
                            Err(m) => {
                                missing.push(m);
                                if self.budget_exhausted {
                                    break 'groups;
                                }
                                continue;
                            }
                        };
                        let c = le64(&g, *ctrl);
                        for s in 0..8u64 {
                            if (c >> (8 * s)) & 0x80 != 0 {
                                continue; // empty or deleted
                            }
                            self.take_slot(l, &g, ga, s, depth, &mut entries);
                            if entries.len() >= want {
                                break 'groups;
                            }
                        }
                    }
                }
            }
        }
        missing.dedup();
        V::Map {
            addr: p,
            len,
            entries,
            missing,
        }
    }

    fn chan(&mut self, p: u64, elem: Ty, depth: u32) -> V {
        let Some(l) = self.types.chan_layout() else {
            return V::Missing(Missing::Unknown("runtime.hchan not in DWARF".into()));
        };
        let h = match self.read(p, l.size) {
            Ok(h) => h,
            Err(m) => return V::Missing(m),
        };
        let qcount = le64(&h, l.qcount);
        let size = le64(&h, l.dataqsiz);
        let buf = le64(&h, l.buf);
        let closed = le_n(h.get(l.closed as usize..).unwrap_or(&[]), 4).unwrap_or(0) != 0;
        let recvx = le64(&h, l.recvx);
        let elem_type = self.name_of(elem);
        if qcount > size || size > MAX_LEN || (size > 0 && recvx >= size) {
            return V::Missing(Missing::Unknown(format!(
                "implausible channel: qcount {qcount}, dataqsiz {size}, recvx {recvx}"
            )));
        }
        let mut values = Vec::new();
        if depth < self.opts.max_depth {
            let esz = self.size_of(elem);
            for k in 0..qcount.min(self.opts.max_elems as u64) {
                let idx = (recvx + k) % size;
                values.push(self.decode(buf + idx * esz, elem, depth + 1));
            }
        } else if qcount > 0 {
            values.push(Value::missing(
                Some(elem),
                &elem_type,
                Missing::DepthLimit { addr: buf },
            ));
        }
        V::Chan {
            addr: p,
            len: qcount,
            cap: size,
            closed,
            elem_type,
            values,
        }
    }

    // ------------------------------------------------------------ JSON

    /// What `encoding/json` would write for `v` (see the module docs for
    /// the differences).
    pub fn to_json(&mut self, v: &Value) -> serde_json::Value {
        use serde_json::Value as J;
        match &v.v {
            V::Bool(b) => J::Bool(*b),
            V::Int(i) => J::from(*i),
            V::Uint(u) | V::Uintptr(u) => J::from(*u),
            V::Float { v, bits } => json_float(*v, *bits),
            V::Complex { re, im, bits } => J::String(go_complex(*re, *im, *bits)),
            V::Str { data, len } => {
                let mut s = go_lossy(data);
                if (data.len() as u64) < *len {
                    s.push_str(&format!("…(+{} bytes)", len - data.len() as u64));
                }
                J::String(s)
            }
            V::Bytes { data, len, .. } => {
                if (data.len() as u64) < *len {
                    marker(
                        "truncated",
                        &format!("{len} bytes, first {} shown: {}", data.len(), base64(data)),
                    )
                } else {
                    J::String(base64(data))
                }
            }
            V::Nil => J::Null,
            V::Ptr { target, .. } => self.to_json(target),
            V::UnsafePtr(p) => {
                if *p == 0 {
                    J::Null
                } else {
                    J::String(format!("{p:#x}"))
                }
            }
            V::Func { pc, name } => J::String(name.clone().unwrap_or_else(|| format!("{pc:#x}"))),
            V::Slice { elems, len, .. } | V::Array { elems, len } => {
                let mut out: Vec<J> = elems.iter().map(|e| self.to_json(e)).collect();
                if (elems.len() as u64) < *len {
                    out.push(marker(
                        "truncated",
                        &format!("{} more elements", len - elems.len() as u64),
                    ));
                }
                J::Array(out)
            }
            V::Struct { .. } => self.struct_json(v),
            V::Map {
                entries,
                len,
                missing,
                ..
            } => {
                let mut m = serde_json::Map::new();
                for (k, val) in entries {
                    m.insert(json_key(k), self.to_json(val));
                }
                if !missing.is_empty() || (entries.len() as u64) < *len {
                    let why = missing
                        .first()
                        .map(|x| x.describe())
                        .unwrap_or_else(|| "element cap".into());
                    m.insert(
                        "$gospy".into(),
                        marker(
                            "incomplete",
                            &format!("{} of {len} entries shown; {why}", entries.len()),
                        ),
                    );
                }
                J::Object(m)
            }
            V::Iface { target } => self.to_json(target),
            V::Chan {
                len,
                cap,
                closed,
                elem_type,
                values,
                ..
            } => {
                let vals: Vec<J> = values.iter().map(|e| self.to_json(e)).collect();
                serde_json::json!({
                    "len": len, "cap": cap, "closed": closed,
                    "elem": elem_type, "values": vals,
                })
            }
            V::Missing(m) => missing_json(m),
        }
    }

    fn struct_json(&mut self, v: &Value) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        let plan = match v.ty {
            Some(t) => self.types.json_fields(self.mem, t),
            None => Arc::new(Vec::new()),
        };
        'fields: for jf in plan.iter() {
            let mut cur = v;
            for (k, &idx) in jf.path.iter().enumerate() {
                let V::Struct { fields } = &cur.v else {
                    continue 'fields;
                };
                let Some(f) = fields.get(idx) else {
                    continue 'fields;
                };
                if k + 1 == jf.path.len() {
                    let j = self.to_json(&f.value);
                    out.insert(jf.name.clone(), j);
                } else {
                    // Through an embedded struct or non-nil embedded pointer.
                    cur = match &f.value.v {
                        V::Ptr { target, .. } => target,
                        V::Nil => continue 'fields,
                        V::Missing(m) => {
                            out.insert(jf.name.clone(), missing_json(m));
                            continue 'fields;
                        }
                        _ => &f.value,
                    };
                }
            }
        }
        serde_json::Value::Object(out)
    }
}

fn marker(what: &str, detail: &str) -> serde_json::Value {
    serde_json::json!({ "$gospy": what, "detail": detail })
}

fn missing_json(m: &Missing) -> serde_json::Value {
    match m {
        Missing::NotCaptured { addr, len } => serde_json::json!({
            "$gospy": "not captured",
            "addr": format!("{addr:#x}"),
            "len": len,
            "hint": NOT_CAPTURED_HINT,
        }),
        Missing::Cycle { addr } => {
            serde_json::json!({"$gospy": "cycle", "addr": format!("{addr:#x}")})
        }
        Missing::DepthLimit { addr } => {
            serde_json::json!({"$gospy": "depth limit", "addr": format!("{addr:#x}")})
        }
        Missing::Budget => serde_json::json!({"$gospy": "read budget exhausted"}),
        Missing::Unknown(why) => serde_json::json!({"$gospy": "unknown", "detail": why}),
    }
}

/// How to get a value that was not captured.
pub const NOT_CAPTURED_HINT: &str = "capture again with `gospy capture --var NAME` (guarantees that global's full value), a larger --var-budget, or --full (all writable memory)";

/// A map key as `encoding/json` writes it: strings as is, integers in
/// decimal; other kinds (which encoding/json rejects) by their text.
fn json_key(k: &Value) -> String {
    match &k.v {
        V::Str { data, .. } => go_lossy(data),
        V::Int(i) => i.to_string(),
        V::Uint(u) | V::Uintptr(u) => u.to_string(),
        V::Iface { target } => json_key(target),
        _ => to_text(k),
    }
}

/// A float as the JSON number `encoding/json` writes, parsed back: integral
/// values it prints without exponent become integers.
fn json_float(v: f64, bits: u8) -> serde_json::Value {
    if !v.is_finite() {
        return marker("unsupported float", &go_float(v, bits));
    }
    // encoding/json writes the shortest decimal for the float's own size.
    let v = if bits == 32 {
        format!("{}", v as f32).parse::<f64>().unwrap_or(v)
    } else {
        v
    };
    let abs = v.abs();
    let exp_form = abs != 0.0 && !(1e-6..1e21).contains(&abs);
    if !exp_form && v.fract() == 0.0 {
        if (0.0..18446744073709551616.0).contains(&v) {
            return serde_json::Value::from(v as u64);
        }
        if (-9223372036854775808.0..0.0).contains(&v) {
            return serde_json::Value::from(v as i64);
        }
    }
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

// ---------------------------------------------------------------- Go formatting

/// Bytes as a JSON string the way encoding/json does: each byte of invalid
/// UTF-8 becomes U+FFFD.
pub fn go_lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &bad[1..];
            }
        }
    }
}

/// `strconv.Quote`-like quoting of raw bytes.
pub fn go_quote(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    let mut rest = b;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(ok).unwrap_or_default(), bad)
            }
        };
        for c in valid.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if !go_printable(c) => {
                    if (c as u32) < 0x10000 {
                        out.push_str(&format!("\\u{:04x}", c as u32))
                    } else {
                        out.push_str(&format!("\\U{:08x}", c as u32))
                    }
                }
                c => out.push(c),
            }
        }
        if let Some((&x, tail)) = bad.split_first() {
            out.push_str(&format!("\\x{x:02x}"));
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out.push('"');
    out
}

/// Approximates `strconv.IsPrint` for non-ASCII characters.
fn go_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'))
}

/// A float as fmt's `%v` prints it: strconv 'g' with the shortest digits,
/// exponent form when the decimal exponent is below -4 or at least 6.
pub fn go_float(v: f64, bits: u8) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest digits and decimal exponent, e.g. "1.2345e8".
    let e = if bits == 32 {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    // strconv 'g' with shortest precision: %e when exp < -4 || exp >= 6.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if nd <= exp + 1 {
        out.push_str(&digits);
        for _ in 0..(exp + 1 - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..(exp + 1) as usize]);
        out.push('.');
        out.push_str(&digits[(exp + 1) as usize..]);
    }
    out
}

/// fmt's `%v` of a complex number: `(1+2i)`.
pub fn go_complex(re: f64, im: f64, bits: u8) -> String {
    let r = go_float(re, bits);
    let mut i = go_float(im, bits);
    if !i.starts_with('-') {
        i.insert(0, '+');
    }
    format!("({r}{i}i)")
}

/// Standard base64 with padding (encoding/json's []byte encoding).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

// ---------------------------------------------------------------- text

/// Lines longer than this are broken, one element per line.
const TEXT_WIDTH: usize = 100;

/// Go-like text, broken over indented lines when long.
pub fn to_text(v: &Value) -> String {
    let mut out = String::new();
    pretty(v, 0, &mut out);
    out
}

fn is_scalar(v: &V) -> bool {
    matches!(
        v,
        V::Bool(_)
            | V::Int(_)
            | V::Uint(_)
            | V::Uintptr(_)
            | V::Float { .. }
            | V::Complex { .. }
            | V::Str { .. }
            | V::Bytes { .. }
            | V::UnsafePtr(_)
            | V::Func { .. }
            | V::Nil
            | V::Missing(_)
    )
}

fn missing_text(m: &Missing) -> String {
    match m {
        Missing::NotCaptured { .. } => {
            format!("<{}; capture with --var NAME or --full>", m.describe())
        }
        _ => format!("<{}>", m.describe()),
    }
}

fn scalar_text(v: &Value) -> String {
    match &v.v {
        V::Bool(b) => b.to_string(),
        V::Int(i) => i.to_string(),
        V::Uint(u) => u.to_string(),
        V::Uintptr(u) => format!("{u:#x}"),
        V::Float { v, bits } => go_float(*v, *bits),
        V::Complex { re, im, bits } => go_complex(*re, *im, *bits),
        V::Str { data, len } => {
            let mut s = go_quote(data);
            if (data.len() as u64) < *len {
                s.push_str(&format!("...(+{} bytes)", len - data.len() as u64));
            }
            s
        }
        V::Bytes { data, len, .. } => {
            let mut s = format!("[]byte({})", go_quote(data));
            if (data.len() as u64) < *len {
                s.push_str(&format!("...(+{} bytes)", len - data.len() as u64));
            }
            s
        }
        V::UnsafePtr(0) => "unsafe.Pointer(nil)".into(),
        V::UnsafePtr(p) => format!("unsafe.Pointer({p:#x})"),
        V::Func { pc, name } => name.clone().unwrap_or_else(|| format!("func@{pc:#x}")),
        V::Nil => "nil".into(),
        V::Missing(m) => missing_text(m),
        _ => String::new(),
    }
}

/// A composite's text: opening, (key, item) pairs, closing, and what was
/// left out.
type Parts<'v> = (
    String,
    Vec<(Option<String>, &'v Value)>,
    String,
    Option<String>,
);

fn parts(v: &Value) -> Parts<'_> {
    match &v.v {
        V::Struct { fields } => (
            format!("{}{{", v.type_name),
            fields
                .iter()
                .map(|f| (Some(f.name.clone()), &f.value))
                .collect(),
            "}".into(),
            None,
        ),
        V::Slice { elems, len, .. } | V::Array { elems, len } => (
            format!("{}{{", v.type_name),
            elems.iter().map(|e| (None, e)).collect(),
            "}".into(),
            ((elems.len() as u64) < *len)
                .then(|| format!("... +{} more", len - elems.len() as u64)),
        ),
        V::Map {
            entries,
            len,
            missing,
            ..
        } => {
            let mut items: Vec<(Option<String>, &Value)> = entries
                .iter()
                .map(|(k, val)| (Some(compact(k)), val))
                .collect();
            items.sort_by(|a, b| key_order(a.0.as_deref(), b.0.as_deref()));
            let more = (entries.len() as u64) < *len || !missing.is_empty();
            (
                format!("{}{{", v.type_name),
                items,
                "}".into(),
                more.then(|| {
                    let why = missing.first().map(missing_text).unwrap_or_default();
                    format!(
                        "... +{} more {why}",
                        len.saturating_sub(entries.len() as u64)
                    )
                    .trim_end()
                    .to_string()
                }),
            )
        }
        V::Chan {
            addr,
            len,
            cap,
            closed,
            values,
            ..
        } => (
            format!(
                "{}({addr:#x}){{len: {len}, cap: {cap}{}, buffered: [",
                v.type_name,
                if *closed { ", closed" } else { "" }
            ),
            values.iter().map(|e| (None, e)).collect(),
            "]}".into(),
            ((values.len() as u64) < *len)
                .then(|| format!("... +{} more", len - values.len() as u64)),
        ),
        _ => (String::new(), Vec::new(), String::new(), None),
    }
}

/// Map keys sorted like fmt: numbers numerically, others as text.
fn key_order(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// One-line text.
fn compact(v: &Value) -> String {
    match &v.v {
        V::Ptr { target, .. } => format!("&{}", compact(target)),
        V::Iface { target } => {
            if is_scalar(&target.v) {
                format!("{}({})", target.type_name, compact(target))
            } else {
                compact(target)
            }
        }
        x if is_scalar(x) => scalar_text(v),
        _ => {
            let (open, items, close, more) = parts(v);
            let mut s = open;
            let mut first = true;
            for (k, item) in items {
                if !first {
                    s.push_str(", ");
                }
                first = false;
                if let Some(k) = k {
                    s.push_str(&k);
                    s.push_str(": ");
                }
                s.push_str(&compact(item));
            }
            if let Some(m) = more {
                if !first {
                    s.push_str(", ");
                }
                s.push_str(&m);
            }
            s.push_str(&close);
            s
        }
    }
}

fn pretty(v: &Value, indent: usize, out: &mut String) {
    let c = compact(v);
    if c.len() + indent * 4 <= TEXT_WIDTH {
        out.push_str(&c);
        return;
    }
    match &v.v {
        V::Ptr { target, .. } => {
            out.push('&');
            pretty(target, indent, out);
        }
        V::Iface { target } => {
            if is_scalar(&target.v) {
                out.push_str(&c);
            } else {
                pretty(target, indent, out);
            }
        }
        x if is_scalar(x) => out.push_str(&c),
        _ => {
            let (open, items, close, more) = parts(v);
            out.push_str(&open);
            out.push('\n');
            let pad = "    ".repeat(indent + 1);
            for (k, item) in items {
                out.push_str(&pad);
                if let Some(k) = k {
                    out.push_str(&k);
                    out.push_str(": ");
                }
                pretty(item, indent + 1, out);
                out.push_str(",\n");
            }
            if let Some(m) = more {
                out.push_str(&pad);
                out.push_str(&m);
                out.push('\n');
            }
            out.push_str(&"    ".repeat(indent));
            out.push_str(&close);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_fmt() {
        assert_eq!(go_float(1e20, 64), "1e+20");
        assert_eq!(go_float(123456789.0, 64), "1.23456789e+08");
        assert_eq!(go_float(100000.0, 64), "100000");
        assert_eq!(go_float(1000000.0, 64), "1e+06");
        assert_eq!(go_float(0.0001, 64), "0.0001");
        assert_eq!(go_float(0.00001, 64), "1e-05");
        assert_eq!(go_float(0.1f32 as f64, 32), "0.1");
        assert_eq!(go_float(3.0, 64), "3");
        assert_eq!(go_float(-2.5e-9, 64), "-2.5e-09");
        assert_eq!(go_complex(1.5, -2.0, 64), "(1.5-2i)");
        assert_eq!(go_complex(0.1f32 as f64, 1e7, 32), "(0.1+1e+07i)");
    }

    #[test]
    fn quoting_and_base64() {
        assert_eq!(
            go_quote(b"a\xffb\x00\x7f\xc2\xa0\xe2\x80\x8b\xf0\x9f\x98\x80\xc3\xa9"),
            "\"a\\xffb\\x00\\x7f\\u00a0\\u200b😀é\""
        );
        assert_eq!(go_lossy(b"a\xffb\xe2\x82c"), "a\u{fffd}b\u{fffd}\u{fffd}c");
        assert_eq!(base64(b"binary\x00\x01\xff data"), "YmluYXJ5AAH/IGRhdGE=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn json_floats() {
        assert_eq!(json_float(80.0, 64), serde_json::json!(80));
        assert_eq!(json_float(0.1f32 as f64, 32), serde_json::json!(0.1));
        assert_eq!(json_float(-1.0, 64), serde_json::json!(-1));
        assert_eq!(json_float(1e21, 64), serde_json::json!(1e21));
        assert_eq!(
            json_float(u64::MAX as f64, 64),
            serde_json::from_str::<serde_json::Value>("18446744073709551616").unwrap()
        );
    }
}
