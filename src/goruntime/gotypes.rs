//! One model of Go types for the value decoder and the capture walk, from
//! two sources:
//! - DWARF (`binary::dwarf`), the first choice: every type a global, a
//!   function parameter or a local variable uses;
//! - the runtime type descriptors (`abi.Type` and its kind-specific
//!   extensions) in the target's memory, for types DWARF lacks. The Go
//!   linker only writes DWARF for types something refers to, so a type that
//!   only ever lives inside an interface (`var s Shape = Rect{...}`) has a
//!   descriptor but no DWARF.
//!
//! Descriptor layout (linux/amd64, Go 1.19–1.27): `abi.Type` is 48 bytes —
//! `Size_`@0, `TFlag`@20, `Kind_`@23 (low 5 bits), `Str` (nameOff from
//! `moduledata.types`)@40; then `Elem`@48 (pointer, slice, array, chan),
//! array `Len`@64, map `Key`@48/`Elem`@56/`Bucket`|`Group`@64, struct
//! `Fields []StructField`@56 (`{Name *byte, Typ *Type, Offset uintptr}`),
//! interface `Methods []Imethod`@56. Names are a flag byte (embedded:
//! 1<<3), a uvarint length, the bytes.
//!
//! Map layouts: the header offsets come from DWARF (`runtime.hmap` for the
//! old maps, `internal/runtime/maps.Map` and `.table` for Swiss tables, or
//! the per-map `hash<K,V>` / `map<K,V>` structs the linker synthesizes);
//! the bucket/group layout from the bucket/group struct type, whichever
//! source describes it. A group with a `ctrl` field is a Swiss group, one
//! with `tophash`/`topbits` an old bucket.

use super::Target;
use crate::binary::dwarf::{Dwarf, GoKind, TypeRef};
use crate::memory::Memory;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A fast non-cryptographic hasher (FxHash) for the caches and visited
/// sets, keyed by addresses and type ids: hashing dominates the capture
/// walk's time while the target is stopped.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub type FxHashSet<K> = HashSet<K, FxBuild>;

/// Keys and elems larger than this are stored indirectly in map slots (both
/// map implementations).
pub const MAP_MAX_INLINE: u64 = 128;

/// A type: a DWARF DIE, or a runtime type descriptor (runtime address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Dwarf(TypeRef),
    Rt(u64),
}

#[derive(Debug, Clone)]
pub struct TypeDesc {
    /// Go type name (`main.Config`, `[]int`, `map[string]int`).
    pub name: String,
    pub size: u64,
    pub kind: TKind,
}

#[derive(Debug, Clone)]
pub enum TKind {
    Bool,
    Int,
    Uint,
    Uintptr,
    Float,
    Complex,
    String,
    UnsafePointer,
    Func,
    Pointer(Option<Ty>),
    Slice(Ty),
    Array(Ty, u64),
    Struct(Vec<TField>),
    Interface {
        empty: bool,
    },
    /// `group`: the bucket (old maps) or group (Swiss) struct type;
    /// `header`: the linker's `hash<K,V>`/`map<K,V>` struct, if any.
    Map {
        key: Ty,
        elem: Ty,
        group: Option<Ty>,
        header: Option<TypeRef>,
    },
    Chan(Ty),
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct TField {
    pub name: String,
    pub offset: u64,
    pub ty: Ty,
    pub embedded: bool,
}

/// Where keys and elems live in a map of one type.
#[derive(Debug, Clone)]
pub struct MapLayout {
    pub key: Ty,
    pub elem: Ty,
    pub key_size: u64,
    pub elem_size: u64,
    /// Stored as a pointer in the slot (size over 128 bytes).
    pub key_indirect: bool,
    pub elem_indirect: bool,
    pub header_size: u64,
    /// Slot `i` key at `key_base + i * key_stride` in a bucket/group.
    pub key_base: u64,
    pub key_stride: u64,
    pub elem_base: u64,
    pub elem_stride: u64,
    pub imp: MapImpl,
}

/// Defined with the map iterator, which reads maps by it.
pub use super::gomap::MapImpl;

/// `runtime.hchan` field offsets.
#[derive(Debug, Clone)]
pub struct ChanLayout {
    pub size: u64,
    pub qcount: u64,
    pub dataqsiz: u64,
    pub buf: u64,
    pub closed: u64,
    pub recvx: u64,
}

/// A field `encoding/json` writes: its key and the member indexes leading
/// to it (through embedded structs).
#[derive(Debug, Clone)]
pub struct JsonField {
    pub name: String,
    pub path: Vec<usize>,
}

/// Caches of type descriptions and layouts for one target.
pub struct Types<'a> {
    pub t: &'a Target,
    pub d: &'a Dwarf,
    descs: FxHashMap<Ty, Option<Arc<TypeDesc>>>,
    maps: FxHashMap<Ty, Option<Arc<MapLayout>>>,
    chan: Option<Option<Arc<ChanLayout>>>,
    json: FxHashMap<Ty, Arc<Vec<JsonField>>>,
}

fn le64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

impl<'a> Types<'a> {
    pub fn new(t: &'a Target, d: &'a Dwarf) -> Types<'a> {
        Types {
            t,
            d,
            descs: FxHashMap::default(),
            maps: FxHashMap::default(),
            chan: None,
            json: FxHashMap::default(),
        }
    }

    /// The type of the runtime descriptor at `rtype`: its DWARF type when
    /// there is one, else the descriptor itself.
    pub fn from_runtime(&self, rtype: u64) -> Ty {
        match self.d.type_by_runtime_addr(rtype.wrapping_sub(self.t.bias)) {
            Some(t) => Ty::Dwarf(t),
            None => Ty::Rt(rtype),
        }
    }

    pub fn desc(&mut self, mem: &dyn Memory, ty: Ty) -> Option<Arc<TypeDesc>> {
        if let Some(hit) = self.descs.get(&ty) {
            return hit.clone();
        }
        let d = match ty {
            Ty::Dwarf(t) => self.dwarf_desc(t),
            Ty::Rt(a) => self.rt_desc(mem, a),
        }
        .map(Arc::new);
        self.descs.insert(ty, d.clone());
        d
    }

    pub fn name(&mut self, mem: &dyn Memory, ty: Ty) -> String {
        self.desc(mem, ty)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }

    pub fn size_of(&mut self, mem: &dyn Memory, ty: Ty) -> Option<u64> {
        self.desc(mem, ty).map(|d| d.size)
    }

    fn dwarf_desc(&self, t: TypeRef) -> Option<TypeDesc> {
        let d = self.d;
        let name = d.get(t)?.name.clone();
        let r = d.resolve(t)?;
        let kind = match &r.kind {
            GoKind::Bool => TKind::Bool,
            GoKind::Int => TKind::Int,
            GoKind::Uint => TKind::Uint,
            GoKind::Uintptr => TKind::Uintptr,
            GoKind::Float => TKind::Float,
            GoKind::Complex => TKind::Complex,
            GoKind::String => TKind::String,
            GoKind::UnsafePointer => TKind::UnsafePointer,
            GoKind::Func => TKind::Func,
            GoKind::Pointer { elem } => TKind::Pointer(elem.map(Ty::Dwarf)),
            GoKind::Slice { elem } => TKind::Slice(Ty::Dwarf(*elem)),
            GoKind::Array { elem, len } => TKind::Array(Ty::Dwarf(*elem), *len),
            GoKind::Struct { fields } => TKind::Struct(
                fields
                    .iter()
                    .map(|f| TField {
                        name: f.name.clone(),
                        offset: f.offset,
                        ty: Ty::Dwarf(f.ty),
                        embedded: f.embedded,
                    })
                    .collect(),
            ),
            GoKind::Interface { empty } => TKind::Interface { empty: *empty },
            GoKind::Map { key, elem, header } => TKind::Map {
                key: Ty::Dwarf(*key),
                elem: Ty::Dwarf(*elem),
                group: header.and_then(|h| self.dwarf_map_group(h)).map(Ty::Dwarf),
                header: *header,
            },
            GoKind::Chan { elem, .. } => TKind::Chan(Ty::Dwarf(*elem)),
            GoKind::Typedef { .. } | GoKind::Unknown => {
                TKind::Unknown(format!("cannot decode type {name:?}"))
            }
        };
        Some(TypeDesc {
            name: if name.is_empty() {
                r.name.clone()
            } else {
                name
            },
            size: r.size,
            kind,
        })
    }

    /// The pointed-to DWARF type of a DWARF pointer type.
    fn dwarf_ptr_elem(&self, t: TypeRef) -> Option<TypeRef> {
        match self.d.resolve(t)?.kind {
            GoKind::Pointer { elem } => elem,
            _ => None,
        }
    }

    /// Bucket (`hash<K,V>.buckets`) or group (`map<K,V>.dirPtr` → table →
    /// `groups.data`) struct of a linker-synthesized map header.
    fn dwarf_map_group(&self, header: TypeRef) -> Option<TypeRef> {
        let d = self.d;
        if let Some(b) = d.field_in(header, "buckets") {
            return self.dwarf_ptr_elem(b.ty);
        }
        let dir = d.field_in(header, "dirPtr")?;
        let table = self.dwarf_ptr_elem(self.dwarf_ptr_elem(dir.ty)?)?;
        let data = d.field_in(table, "groups.data")?;
        self.dwarf_ptr_elem(data.ty)
    }

    /// A name at `addr`: flag byte, uvarint length, bytes. Returns the name
    /// and whether the embedded flag is set.
    fn rt_name(&self, mem: &dyn Memory, addr: u64) -> Option<(String, bool)> {
        let head = mem.read_vec(addr, 1).ok()?;
        let mut len = 0u64;
        let mut shift = 0;
        let mut i = 1u64;
        loop {
            let b = mem.u8(addr + i).ok()?;
            i += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return None;
            }
        }
        if len > 1 << 16 {
            return None;
        }
        let s = mem.read_vec(addr + i, len as usize).ok()?;
        Some((
            String::from_utf8_lossy(&s).into_owned(),
            head[0] & (1 << 3) != 0,
        ))
    }

    fn rt_desc(&self, mem: &dyn Memory, a: u64) -> Option<TypeDesc> {
        let b = mem.read_vec(a, 80).ok()?;
        let size = le64(&b, 0);
        let tflag = b[20];
        let kind = b[23] & 0x1f;
        let str_off = i32::from_le_bytes(b[40..44].try_into().ok()?);
        let types = self.t.rt(self.t.bin.moduledata.types);
        let mut name = self
            .rt_name(mem, types.wrapping_add(str_off as i64 as u64))
            .map(|(n, _)| n)
            .unwrap_or_default();
        if tflag & 2 != 0 {
            if let Some(n) = name.strip_prefix('*') {
                name = n.to_string();
            }
        }
        let child = |off: usize| {
            let p = le64(&b, off);
            (p != 0).then(|| self.from_runtime(p))
        };
        let kind = match kind {
            1 => TKind::Bool,
            2..=6 => TKind::Int,
            7..=11 => TKind::Uint,
            12 => TKind::Uintptr,
            13 | 14 => TKind::Float,
            15 | 16 => TKind::Complex,
            17 => TKind::Array(child(48)?, le64(&b, 64)),
            18 => TKind::Chan(child(48)?),
            19 => TKind::Func,
            20 => TKind::Interface {
                empty: le64(&b, 64) == 0,
            },
            21 => TKind::Map {
                key: child(48)?,
                elem: child(56)?,
                group: child(64),
                header: None,
            },
            22 => TKind::Pointer(child(48)),
            23 => TKind::Slice(child(48)?),
            24 => TKind::String,
            25 => {
                let (fp, n) = (le64(&b, 56), le64(&b, 64));
                if n > 1 << 16 {
                    return None;
                }
                let raw = mem.read_vec(fp, (n * 24) as usize).ok()?;
                let mut fields = Vec::with_capacity(n as usize);
                for i in 0..n as usize {
                    let (fname, embedded) =
                        self.rt_name(mem, le64(&raw, i * 24)).unwrap_or_default();
                    let ft = le64(&raw, i * 24 + 8);
                    if ft == 0 {
                        return None;
                    }
                    fields.push(TField {
                        name: fname,
                        offset: le64(&raw, i * 24 + 16),
                        ty: self.from_runtime(ft),
                        embedded,
                    });
                }
                TKind::Struct(fields)
            }
            26 => TKind::UnsafePointer,
            k => TKind::Unknown(format!("unknown type kind {k} in descriptor at {a:#x}")),
        };
        Some(TypeDesc { name, size, kind })
    }

    pub fn map_layout(&mut self, mem: &dyn Memory, map: Ty) -> Option<Arc<MapLayout>> {
        if let Some(hit) = self.maps.get(&map) {
            return hit.clone();
        }
        let l = self
            .compute_map_layout(mem, map)
            .or_else(|| self.stripped_map_layout(mem, map))
            .map(Arc::new);
        self.maps.insert(map, l.clone());
        l
    }

    /// Offset of a field in a struct description.
    fn field(&mut self, mem: &dyn Memory, st: Ty, names: &[&str]) -> Option<TField> {
        let d = self.desc(mem, st)?;
        let TKind::Struct(fields) = &d.kind else {
            return None;
        };
        fields
            .iter()
            .find(|f| names.contains(&f.name.as_str()))
            .cloned()
    }

    /// Element size of an array type.
    fn array_stride(&mut self, mem: &dyn Memory, arr: Ty) -> Option<u64> {
        let d = self.desc(mem, arr)?;
        match d.kind {
            TKind::Array(e, _) => self.size_of(mem, e),
            _ => None,
        }
    }

    fn compute_map_layout(&mut self, mem: &dyn Memory, map: Ty) -> Option<MapLayout> {
        let desc = self.desc(mem, map)?;
        let TKind::Map {
            key,
            elem,
            group,
            header,
        } = desc.kind.clone()
        else {
            return None;
        };
        let group = group?;
        let key_size = self.size_of(mem, key)?;
        let elem_size = self.size_of(mem, elem)?;
        let group_size = self.size_of(mem, group)?;
        let d = self.d;
        let hoff = |h: TypeRef, f: &str| d.field_in(h, f).map(|x| x.offset);
        if let Some(th) = self.field(mem, group, &["tophash", "topbits"]) {
            let h = header.or_else(|| d.type_named("runtime.hmap"))?;
            let keys = self.field(mem, group, &["keys"])?;
            let vals = self.field(mem, group, &["values", "elems"])?;
            let ovf = self.field(mem, group, &["overflow"])?;
            Some(MapLayout {
                key,
                elem,
                key_size,
                elem_size,
                key_indirect: key_size > MAP_MAX_INLINE,
                elem_indirect: elem_size > MAP_MAX_INLINE,
                header_size: d.resolve(h)?.size,
                key_base: keys.offset,
                key_stride: self.array_stride(mem, keys.ty)?,
                elem_base: vals.offset,
                elem_stride: self.array_stride(mem, vals.ty)?,
                imp: MapImpl::Hmap {
                    count: hoff(h, "count")?,
                    flags: hoff(h, "flags")?,
                    b: hoff(h, "B")?,
                    buckets: hoff(h, "buckets")?,
                    oldbuckets: hoff(h, "oldbuckets")?,
                    bucket_size: group_size,
                    tophash: th.offset,
                    overflow: ovf.offset,
                },
            })
        } else {
            let ctrl = self.field(mem, group, &["ctrl"])?;
            let h = header.or_else(|| d.type_named("internal/runtime/maps.Map"))?;
            let table = d.type_named("internal/runtime/maps.table").or_else(|| {
                let dir = d.field_in(h, "dirPtr")?;
                self.dwarf_ptr_elem(self.dwarf_ptr_elem(dir.ty)?)
            })?;
            let (key_base, key_stride, elem_base, elem_stride) =
                if let Some(slots) = self.field(mem, group, &["slots"]) {
                    let sd = self.desc(mem, slots.ty)?;
                    let TKind::Array(slot, _) = sd.kind else {
                        return None;
                    };
                    let slot_size = self.size_of(mem, slot)?;
                    let k = self.field(mem, slot, &["key"])?;
                    let e = self.field(mem, slot, &["elem"])?;
                    (
                        slots.offset + k.offset,
                        slot_size,
                        slots.offset + e.offset,
                        slot_size,
                    )
                } else {
                    let keys = self.field(mem, group, &["keys"])?;
                    let elems = self.field(mem, group, &["elems"])?;
                    (
                        keys.offset,
                        self.array_stride(mem, keys.ty)?,
                        elems.offset,
                        self.array_stride(mem, elems.ty)?,
                    )
                };
            Some(MapLayout {
                key,
                elem,
                key_size,
                elem_size,
                key_indirect: key_size > MAP_MAX_INLINE,
                elem_indirect: elem_size > MAP_MAX_INLINE,
                header_size: d.resolve(h)?.size,
                key_base,
                key_stride,
                elem_base,
                elem_stride,
                imp: MapImpl::Swiss {
                    used: hoff(h, "used")?,
                    dir_ptr: hoff(h, "dirPtr")?,
                    dir_len: hoff(h, "dirLen")?,
                    table_size: d.resolve(table)?.size,
                    groups_data: hoff(table, "groups.data")?,
                    length_mask: hoff(table, "groups.lengthMask")?,
                    group_size,
                    ctrl: ctrl.offset,
                },
            })
        }
    }

    pub fn chan_layout(&mut self) -> Option<Arc<ChanLayout>> {
        if let Some(hit) = &self.chan {
            return hit.clone();
        }
        let d = self.d;
        let l = (|| {
            let h = d.type_named("runtime.hchan")?;
            let off = |f: &str| d.field_in(h, f).map(|x| x.offset);
            Some(Arc::new(ChanLayout {
                size: d.resolve(h)?.size,
                qcount: off("qcount")?,
                dataqsiz: off("dataqsiz")?,
                buf: off("buf")?,
                closed: off("closed")?,
                recvx: off("recvx")?,
            }))
        })()
        .or_else(|| self.stripped_chan_layout());
        self.chan = Some(l.clone());
        l
    }

    /// Map layout of an executable without DWARF: the header offsets the
    /// runtime has used on linux/amd64 (fixed, see
    /// [`super::gomap::STRING_STRING_HMAP`]; `internal/runtime/maps.Map`
    /// and `.table` as in the measured tables of Go 1.24–1.27), the
    /// bucket/group layout from the map type descriptor's bucket/group
    /// struct type (`abi.OldMapType.Bucket` / `abi.SwissMapType.Group`).
    /// Old buckets (`topbits`) are hmaps: Go ≤ 1.23 and 1.24–1.25 built
    /// with `GOEXPERIMENT=noswissmap`.
    fn stripped_map_layout(&mut self, mem: &dyn Memory, map: Ty) -> Option<MapLayout> {
        if self.t.bin.dwarf().is_some() {
            return None;
        }
        let desc = self.desc(mem, map)?;
        let TKind::Map {
            key, elem, group, ..
        } = desc.kind.clone()
        else {
            return None;
        };
        let group = group?;
        let key_size = self.size_of(mem, key)?;
        let elem_size = self.size_of(mem, elem)?;
        let group_size = self.size_of(mem, group)?;
        let (key_base, key_stride, elem_base, elem_stride, imp);
        if let Some(th) = self.field(mem, group, &["tophash", "topbits"]) {
            let keys = self.field(mem, group, &["keys"])?;
            let vals = self.field(mem, group, &["values", "elems"])?;
            let ovf = self.field(mem, group, &["overflow"])?;
            (key_base, key_stride) = (keys.offset, self.array_stride(mem, keys.ty)?);
            (elem_base, elem_stride) = (vals.offset, self.array_stride(mem, vals.ty)?);
            imp = MapImpl::Hmap {
                count: 0,
                flags: 8,
                b: 9,
                buckets: 16,
                oldbuckets: 24,
                bucket_size: group_size,
                tophash: th.offset,
                overflow: ovf.offset,
            };
        } else {
            let ctrl = self.field(mem, group, &["ctrl"])?;
            if let Some(slots) = self.field(mem, group, &["slots"]) {
                let TKind::Array(slot, _) = self.desc(mem, slots.ty)?.kind else {
                    return None;
                };
                let slot_size = self.size_of(mem, slot)?;
                let k = self.field(mem, slot, &["key"])?;
                let e = self.field(mem, slot, &["elem"])?;
                (key_base, key_stride) = (slots.offset + k.offset, slot_size);
                (elem_base, elem_stride) = (slots.offset + e.offset, slot_size);
            } else {
                let keys = self.field(mem, group, &["keys"])?;
                let elems = self.field(mem, group, &["elems"])?;
                (key_base, key_stride) = (keys.offset, self.array_stride(mem, keys.ty)?);
                (elem_base, elem_stride) = (elems.offset, self.array_stride(mem, elems.ty)?);
            }
            imp = MapImpl::Swiss {
                used: 0,
                dir_ptr: 16,
                dir_len: 24,
                table_size: 32,
                groups_data: 16,
                length_mask: 24,
                group_size,
                ctrl: ctrl.offset,
            };
        }
        Some(MapLayout {
            key,
            elem,
            key_size,
            elem_size,
            key_indirect: key_size > MAP_MAX_INLINE,
            elem_indirect: elem_size > MAP_MAX_INLINE,
            header_size: 48,
            key_base,
            key_stride,
            elem_base,
            elem_stride,
            imp,
        })
    }

    /// `runtime.hchan` of an executable without DWARF (chan.go, linux/amd64):
    /// `qcount@0 dataqsiz@8 buf@16 elemsize@24 closed@28`, then `elemtype
    /// sendx recvx` from 32 (Go ≤ 1.22) or, after `timer`, from 40 (1.23+);
    /// 96 bytes, 104 from 1.23, 112 with 1.25's `bubble`.
    fn stripped_chan_layout(&self) -> Option<Arc<ChanLayout>> {
        if self.t.bin.dwarf().is_some() {
            return None;
        }
        let go = self.t.bin.go;
        let timer = go.at_least(1, 23);
        Some(Arc::new(ChanLayout {
            size: if go.at_least(1, 25) {
                112
            } else if timer {
                104
            } else {
                96
            },
            qcount: 0,
            dataqsiz: 8,
            buf: 16,
            closed: 28,
            recvx: if timer { 56 } else { 48 },
        }))
    }

    /// The struct type behind `t` (following one pointer level).
    fn struct_behind(&mut self, mem: &dyn Memory, t: Ty) -> Option<Ty> {
        let d = self.desc(mem, t)?;
        match d.kind {
            TKind::Struct(_) => Some(t),
            TKind::Pointer(Some(e)) => {
                let ed = self.desc(mem, e)?;
                matches!(ed.kind, TKind::Struct(_)).then_some(e)
            }
            _ => None,
        }
    }

    /// The fields `encoding/json` writes for struct type `t`, in order
    /// (`typeFields` in encoding/json/encode.go, for untagged fields).
    pub fn json_fields(&mut self, mem: &dyn Memory, t: Ty) -> Arc<Vec<JsonField>> {
        if let Some(hit) = self.json.get(&t) {
            return hit.clone();
        }
        let plan = Arc::new(self.compute_json_fields(mem, t));
        self.json.insert(t, plan.clone());
        plan
    }

    fn compute_json_fields(&mut self, mem: &dyn Memory, t: Ty) -> Vec<JsonField> {
        struct F {
            name: String,
            path: Vec<usize>,
        }
        let exported = |n: &str| n.chars().next().is_some_and(|c| c.is_uppercase());
        let mut fields: Vec<F> = Vec::new();
        let mut next: Vec<(Ty, Vec<usize>)> = vec![(t, Vec::new())];
        let mut next_count: HashMap<Ty, usize> = HashMap::new();
        let mut visited: HashSet<Ty> = HashSet::new();
        let mut levels = 0;
        while !next.is_empty() && levels < 16 {
            levels += 1;
            let current = std::mem::take(&mut next);
            let count = std::mem::take(&mut next_count);
            for (st, path) in current {
                if !visited.insert(st) {
                    continue;
                }
                let Some(sd) = self.desc(mem, st) else {
                    continue;
                };
                let TKind::Struct(members) = &sd.kind else {
                    continue;
                };
                for (i, sf) in members.iter().enumerate() {
                    let sub = self.struct_behind(mem, sf.ty);
                    if sf.embedded {
                        if !exported(&sf.name) && sub.is_none() {
                            continue;
                        }
                    } else if !exported(&sf.name) {
                        continue;
                    }
                    let mut p = path.clone();
                    p.push(i);
                    match sub.filter(|_| sf.embedded) {
                        None => {
                            fields.push(F {
                                name: sf.name.clone(),
                                path: p.clone(),
                            });
                            if count.get(&st).copied().unwrap_or(0) > 1 {
                                // Same struct reached twice at this depth:
                                // a duplicate makes the field ambiguous.
                                fields.push(F {
                                    name: sf.name.clone(),
                                    path: p,
                                });
                            }
                        }
                        Some(s) => {
                            let c = next_count.entry(s).or_insert(0);
                            *c += 1;
                            if *c == 1 {
                                next.push((s, p));
                            }
                        }
                    }
                }
            }
        }
        fields.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.path.len().cmp(&b.path.len()))
                .then(a.path.cmp(&b.path))
        });
        let mut out: Vec<JsonField> = Vec::new();
        let mut i = 0;
        while i < fields.len() {
            let mut j = i + 1;
            while j < fields.len() && fields[j].name == fields[i].name {
                j += 1;
            }
            // Dominant field: the only one at the shallowest depth.
            if j - i == 1 || fields[i + 1].path.len() > fields[i].path.len() {
                out.push(JsonField {
                    name: fields[i].name.clone(),
                    path: fields[i].path.clone(),
                });
            }
            i = j;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// The type of the runtime descriptor `rtype` (as found in an
    /// interface), and whether its values are stored directly in the
    /// interface's data word.
    pub fn dynamic_type(&mut self, mem: &dyn Memory, rtype: u64) -> Result<(Ty, bool), String> {
        let ty = self.from_runtime(rtype);
        if self.desc(mem, ty).is_none() {
            return Err(format!("unreadable dynamic type descriptor at {rtype:#x}"));
        }
        // Direct-interface values: Kind_&0x20 (@23) up to Go 1.25,
        // TFlag&0x20 (@20) from Go 1.26.
        let direct = if self.t.bin.go.at_least(1, 26) {
            mem.u8(rtype + 20).map(|f| f & 0x20 != 0)
        } else {
            mem.u8(rtype + 23).map(|k| k & 0x20 != 0)
        };
        let direct = match direct {
            Ok(x) => x,
            Err(_) => self.pointer_shaped(mem, ty, 0),
        };
        Ok((ty, direct))
    }

    /// Whether a type is one pointer word (the fallback for direct-iface).
    fn pointer_shaped(&mut self, mem: &dyn Memory, t: Ty, depth: u32) -> bool {
        let Some(d) = self.desc(mem, t) else {
            return false;
        };
        if depth > 8 {
            return false;
        }
        match &d.kind {
            TKind::Pointer(_)
            | TKind::UnsafePointer
            | TKind::Map { .. }
            | TKind::Chan(_)
            | TKind::Func => true,
            TKind::Struct(fields) => {
                fields.len() == 1 && self.pointer_shaped(mem, fields[0].ty, depth + 1)
            }
            TKind::Array(e, 1) => self.pointer_shaped(mem, *e, depth + 1),
            _ => false,
        }
    }
}
