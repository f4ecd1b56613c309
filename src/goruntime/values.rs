//! Go values decoded from memory, typed by the executable's DWARF: the `var`
//! analysis.
//!
//! [`Decoder`] turns `(address, DWARF type)` into a [`Value`] tree: scalars,
//! strings, pointers (followed, with a depth limit and cycle detection),
//! arrays, slices, structs, maps (the old `hmap` of Go ≤ 1.23 and of
//! `GOEXPERIMENT=noswissmap` builds, Swiss tables from Go 1.24, both told
//! apart by the DWARF header struct the linker synthesizes: `hash<K,V>` vs
//! `map<K,V>`; read with [`gomap`]), interfaces (dynamic type from the runtime type descriptor,
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

mod format;
mod json;
mod model;
mod text;

pub use format::{base64, go_complex, go_float, go_lossy, go_quote};
pub use json::NOT_CAPTURED_HINT;
pub use model::{collect_missing, Field, Missing, Value, ValueOptions, V};
pub use text::to_text;

use super::gomap::{self, Fault, Header, Limits, PartKind};
use super::gotypes::{MapLayout, TKind, Ty, TypeDesc, Types};
use super::walk::{self, ITAB_TYPE};
use super::Target;
use crate::binary::dwarf::TypeRef;
use crate::memory::Memory;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Largest single object (struct, array) read in one piece.
const MAX_OBJECT: u64 = 256 << 20;
/// Deepest recursion of inline (struct/array) decoding, indirections included.
const MAX_NESTING: u32 = 256;
/// Largest plausible length of a string, slice, map or channel.
const MAX_LEN: u64 = 1 << 40;

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
            match self.read(tw + ITAB_TYPE, 8) {
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
        let geom = walk::geom(l);
        let h = geom.header(&hdr[..]);
        let len = h.count();
        let max_buckets = match h {
            Header::Hmap { b, .. } => {
                if len > MAX_LEN || b > 40 {
                    return V::Missing(Missing::Unknown(format!(
                        "implausible map header: count {len}, B {b}"
                    )));
                }
                let (nb, old_nb) = h.bucket_counts();
                nb + old_nb + len + 16
            }
            Header::Swiss { dir_len, .. } => {
                if len > MAX_LEN || dir_len > gomap::MAX_SWISS {
                    return V::Missing(Missing::Unknown(format!(
                        "implausible map header: used {len}, dirLen {dir_len}"
                    )));
                }
                u64::MAX
            }
        };
        let lim = Limits {
            max_entries: len.min(self.opts.max_elems as u64),
            max_buckets,
            detect_cycles: false,
        };
        let mut v = MapVisit {
            dec: self,
            l,
            depth,
            entries: Vec::new(),
            missing: Vec::new(),
        };
        gomap::walk(&geom, &h, &lim, &mut v);
        let MapVisit {
            entries,
            mut missing,
            ..
        } = v;
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

    /// What `encoding/json` would write for `v` (see the module docs for
    /// the differences).
    pub fn to_json(&mut self, v: &Value) -> serde_json::Value {
        json::Json {
            types: &mut self.types,
            mem: self.mem,
        }
        .render(v)
    }
}

/// [`Decoder::map_entries`]' side of [`gomap::walk`]: budgeted reads, every
/// unreadable part a [`Missing`], each live slot decoded.
struct MapVisit<'d, 'a, M: Memory> {
    dec: &'d mut Decoder<'a, M>,
    l: &'d MapLayout,
    depth: u32,
    entries: Vec<(Value, Value)>,
    missing: Vec<Missing>,
}

impl<M: Memory> gomap::Visit for MapVisit<'_, '_, M> {
    type Err = Missing;

    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Missing> {
        self.dec.read(addr, len)
    }

    fn fault(&mut self, f: Fault<Missing>) -> ControlFlow<()> {
        match f {
            Fault::Read(part, m) => {
                self.missing.push(m);
                // An exhausted budget ends the walk at buckets and groups;
                // the directory and tables are small and read regardless.
                if self.dec.budget_exhausted && matches!(part, PartKind::Bucket | PartKind::Group) {
                    return ControlFlow::Break(());
                }
            }
            Fault::Overflow(a, b) => self.missing.push(Missing::Unknown(format!(
                "map part at {a:#x} + {b:#x} is outside the address space"
            ))),
        }
        ControlFlow::Continue(())
    }

    fn entry(&mut self, b: &[u8], base: u64, slot: u64) {
        let (l, depth) = (self.l, self.depth);
        self.dec
            .take_slot(l, b, base, slot, depth, &mut self.entries);
    }
}
