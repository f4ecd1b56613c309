//! The type of each heap object, as far as it can be known.
//!
//! 1. The runtime's own record (Go 1.22+): an allocation header or
//!    `span.largeType` gives a `*_type`; its name comes from DWARF, else
//!    from the descriptor itself (stripped builds). An object holding
//!    several values of it (a slice's backing array) is `[]T`.
//! 2. With DWARF: propagation from typed roots (every global, and every
//!    header-typed object) through typed pointers, with the one value
//!    walker ([`crate::goruntime::walk`]): an edge that lands exactly on an
//!    untyped object's start gives it the edge's type.
//!
//! 3. Without DWARF (`-s -w`): the same propagation, through the runtime
//!    type descriptors only, from the runtime-typed objects, then from the
//!    interface values and channels [`super::rtyping`] recognises (their
//!    descriptors), first in globals and stacks, then in heap objects
//!    still untyped. Maps reached this way are laid out by their map type
//!    descriptor.
//!
//! Objects left untyped are grouped by the caller by size class.
//! Bounded: the propagation visits at most a fixed multiple of the objects.

use super::objects::{HeapObjects, MIN_SIZE_FOR_HEADER};
use crate::goruntime::gotypes::{FxHashMap, FxHashSet, MapImpl, MapLayout, Ty, Types};
use crate::goruntime::walk::{Obj, ValueWalker};
use crate::goruntime::Target;
use crate::memory::Memory;
use std::collections::VecDeque;

/// No type known.
pub const UNKNOWN: u32 = u32::MAX;
/// Bytes of an allocation header.
const HEADER: u64 = 8;

/// The type of every object of a [`HeapObjects`], by index.
#[derive(Debug, Clone, Default)]
pub struct ObjectTypes {
    /// Distinct type names.
    pub names: Vec<String>,
    /// `of[i]`: index into `names` of object `i`'s type, or [`UNKNOWN`].
    pub of: Vec<u32>,
    /// Objects typed by the runtime's record, and by propagation.
    pub from_runtime: u64,
    pub from_dwarf: u64,
    /// Objects typed without DWARF by propagation from runtime type
    /// descriptors (interfaces, channels, typed objects' fields).
    pub from_descriptors: u64,
    /// Allocation headers / largeType values that are not type descriptors.
    pub bad_headers: u64,
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct Interner {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        if let Some(&i) = self.ids.get(&s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.clone());
        self.ids.insert(s, i);
        i
    }
}

/// Where an object's data starts (after its allocation header, if any).
pub fn data_start(objs: &HeapObjects, i: usize) -> u64 {
    let o = &objs.objects[i];
    if has_header(objs, i) {
        o.addr + HEADER
    } else {
        o.addr
    }
}

fn has_header(objs: &HeapObjects, i: usize) -> bool {
    let o = &objs.objects[i];
    objs.headers && !o.noscan() && o.size_class() != 0 && o.size > MIN_SIZE_FOR_HEADER
}

/// Index of the object holding `addr`.
pub fn find(objs: &HeapObjects, addr: u64) -> Option<usize> {
    let i = objs.objects.partition_point(|o| o.addr <= addr);
    let o = objs.objects.get(i.checked_sub(1)?)?;
    (addr < o.addr.saturating_add(o.size)).then(|| i - 1)
}

/// Name and size of the runtime type descriptor at `rtype`: the
/// descriptor's own name (the runtime's spelling, the same with or without
/// DWARF: `map.group[K]V` where DWARF says `noalg.map.group[K]V`), else
/// DWARF's.
fn rt_name<M: Memory>(t: &Target, mem: &M, rtype: u64) -> Option<(String, Option<u64>)> {
    if let Some(x) = crate::goruntime::descriptor_name(t, mem, rtype) {
        return Some(x);
    }
    if let Some(d) = t.bin.dwarf() {
        if let Some(r) = d.type_by_runtime_addr(rtype.wrapping_sub(t.bias)) {
            if let Some(name) = d.type_name(r).filter(|n| !n.is_empty()) {
                return Some((name, d.resolve(r).map(|ty| ty.size)));
            }
        }
    }
    None
}

/// Types of every object: the runtime's records, then DWARF propagation.
pub fn object_types<M: Memory>(t: &Target, mem: &M, objs: &HeapObjects) -> ObjectTypes {
    let mut names = Interner::default();
    let mut out = ObjectTypes {
        of: vec![UNKNOWN; objs.objects.len()],
        ..Default::default()
    };
    // The runtime's records, one descriptor lookup per distinct type.
    let mut cache: FxHashMap<u64, Option<(String, Option<u64>)>> = FxHashMap::default();
    // Without DWARF, a recorded type is walked by its descriptor alone:
    // it must look like one.
    let check = t
        .bin
        .dwarf()
        .is_none()
        .then(|| super::rtyping::Finder::new(t, objs));
    for (i, o) in objs.objects.iter().enumerate() {
        if o.rtype == 0 {
            continue;
        }
        let hit = cache
            .entry(o.rtype)
            .or_insert_with(|| {
                if check.as_ref().is_some_and(|f| !f.descriptor(mem, o.rtype)) {
                    return None;
                }
                rt_name(t, mem, o.rtype)
            })
            .clone();
        let Some((name, size)) = hit else {
            out.bad_headers += 1;
            continue;
        };
        let payload = o.size - (data_start(objs, i) - o.addr);
        let name = match size {
            Some(s) if s > 0 && payload >= 2 * s => format!("[]{name}"),
            _ => name,
        };
        out.of[i] = names.id(name);
        out.from_runtime += 1;
    }
    if out.bad_headers > 0 {
        out.warnings.push(format!(
            "{} objects' recorded types (allocation header or span.largeType) are not type \
             descriptors: left untyped",
            out.bad_headers
        ));
    }
    if let Some(d) = t.bin.dwarf() {
        let mut p = Propagation::new(Types::new(t, d), objs);
        p.roots(t, d, mem, &out);
        p.run(mem, &mut out, &mut names);
    } else {
        let empty = crate::binary::dwarf::Dwarf::empty();
        let mut p = Propagation::new(Types::new(t, &empty), objs);
        p.stripped = true;
        p.stripped_run(t, mem, &mut out, &mut names);
    }
    out.names = names.names;
    out
}

/// The DWARF propagation's state.
struct Propagation<'a, 'o> {
    w: ValueWalker<'a>,
    objs: &'o HeapObjects,
    queue: VecDeque<(u64, Obj)>,
    /// Values walked that do not start a heap object.
    visited: FxHashSet<(u64, u8, Ty)>,
    /// The first type each heap object was walked as, from its start (the
    /// one it is named by).
    walked: Vec<Option<(u8, Ty)>>,
    /// Name id of each edge kind (tag, type, map layout).
    name_ids: FxHashMap<(u8, Ty, usize), Option<u32>>,
    /// No DWARF: objects named by propagation count as `from_descriptors`.
    stripped: bool,
}

impl<'a, 'o> Propagation<'a, 'o> {
    fn new(types: Types<'a>, objs: &'o HeapObjects) -> Propagation<'a, 'o> {
        Propagation {
            w: ValueWalker::new(types),
            objs,
            queue: VecDeque::new(),
            visited: FxHashSet::default(),
            walked: vec![None; objs.objects.len()],
            name_ids: FxHashMap::default(),
            stripped: false,
        }
    }

    /// `obj` at `addr` inside heap object `i` (its start, or an interior
    /// pointer), its element counts cut to what the object holds from
    /// there (counts come from the target's memory: a torn or
    /// hostile slice length, bucket shift or channel count must not make
    /// the walk read past the object); None for a single value larger than
    /// the object (a hostile or unsafe-cast pointer: not this object's
    /// type).
    fn clamp<M: Memory>(&mut self, mem: &M, i: usize, addr: u64, obj: Obj) -> Option<Obj> {
        let o = &self.objs.objects[i];
        let payload = (o.addr + o.size).saturating_sub(addr);
        let fit = |n: u64, each: u64| n.min(payload.checked_div(each).unwrap_or(0));
        Some(match obj {
            Obj::Value(t) => {
                if self.w.types.size_of(mem, t).is_some_and(|s| s > payload) {
                    return None;
                }
                Obj::Value(t)
            }
            Obj::Elems(t, n) => {
                let each = self.w.types.size_of(mem, t).unwrap_or(0);
                Obj::Elems(t, fit(n, each))
            }
            Obj::Buckets(l, n) => {
                let each = crate::goruntime::walk::geom(&l).bucket_size();
                Obj::Buckets(l, fit(n, each))
            }
            Obj::SwissGroups(l, n) => {
                let each = crate::goruntime::walk::geom(&l).bucket_size();
                Obj::SwissGroups(l, fit(n, each))
            }
            Obj::SwissDir(l, n) => Obj::SwissDir(l, fit(n, 8)),
            Obj::ChanBuf(t, size, recvx, q) => {
                let each = self.w.types.size_of(mem, t).unwrap_or(0);
                let size = fit(size, each);
                Obj::ChanBuf(t, size, recvx, q.min(size))
            }
            other => other,
        })
    }

    /// Without DWARF: from the runtime-typed objects, then from interface
    /// values in globals and stacks, then from interfaces and channels in
    /// heap objects still untyped.
    fn stripped_run<M: Memory>(
        &mut self,
        t: &Target,
        mem: &M,
        out: &mut ObjectTypes,
        names: &mut Interner,
    ) {
        self.typed_objects(mem, out);
        self.run(mem, out, names);
        let mut f = super::rtyping::Finder::new(t, self.objs);
        let mut seeds = Vec::new();
        f.globals(t, &mut self.w.types, mem, &mut seeds);
        f.stacks(t, &mut self.w.types, mem, &mut seeds);
        self.seed(mem, &mut seeds, out, names);
        let untyped = |out: &ObjectTypes| out.of.iter().map(|&x| x == UNKNOWN).collect::<Vec<_>>();
        f.heap(&mut self.w.types, mem, &untyped(out), &mut seeds);
        self.seed(mem, &mut seeds, out, names);
        f.channels(t, &mut self.w.types, mem, &untyped(out), &mut seeds);
        self.seed(mem, &mut seeds, out, names);
    }

    /// Walk from `seeds` (drained) as from edges.
    fn seed<M: Memory>(
        &mut self,
        mem: &M,
        seeds: &mut Vec<(u64, Obj)>,
        out: &mut ObjectTypes,
        names: &mut Interner,
    ) {
        for (addr, obj) in seeds.drain(..) {
            if find(self.objs, addr).is_none() {
                // A global or stack slot holding the value.
                self.push(addr, obj);
            } else {
                self.arrive(mem, addr, obj, out, names);
            }
        }
        self.run(mem, out, names);
    }
    fn push(&mut self, addr: u64, obj: Obj) {
        let (tag, ty) = obj.tag();
        if self.visited.insert((addr, tag, ty)) {
            self.queue.push_back((addr, obj));
        }
    }

    /// Walk a heap object from its start, once.
    /// Another type reaching an object walked already (an outer struct and
    /// its first field) is walked too, deduplicated by the visited set.
    fn push_object(&mut self, i: usize, addr: u64, obj: Obj) {
        let key = obj.tag();
        match self.walked[i] {
            None => {
                self.walked[i] = Some(key);
                self.queue.push_back((addr, obj));
            }
            Some(k) if k == key => {}
            Some(_) => self.push(addr, obj),
        }
    }

    /// The name id of what `obj` is, computed once per kind of edge.
    fn name_id<M: Memory>(&mut self, mem: &M, obj: &Obj, names: &mut Interner) -> Option<u32> {
        let (tag, mut ty) = obj.tag();
        if let Obj::ChanBuf(elem, ..) = obj {
            // Buffers of different element types have different names.
            ty = *elem;
        }
        let layout = match obj {
            Obj::MapHdr(l)
            | Obj::Buckets(l, _)
            | Obj::SwissDir(l, _)
            | Obj::SwissTable(l)
            | Obj::SwissGroups(l, _) => std::sync::Arc::as_ptr(l) as usize,
            _ => 0,
        };
        if let Some(&id) = self.name_ids.get(&(tag, ty, layout)) {
            return id;
        }
        let id = self.name_of(mem, obj).map(|n| names.id(n));
        self.name_ids.insert((tag, ty, layout), id);
        id
    }

    /// Every global with a type, and every object the runtime typed.
    fn roots<M: Memory>(
        &mut self,
        t: &Target,
        d: &crate::binary::dwarf::Dwarf,
        mem: &M,
        types: &ObjectTypes,
    ) {
        for name in d.globals() {
            if let Some(g) = d.global(&name) {
                if let Some(ty) = g.ty {
                    self.push(t.rt(g.addr), Obj::Value(Ty::Dwarf(ty)));
                }
            }
        }
        self.typed_objects(mem, types);
    }

    /// Every object the runtime typed.
    fn typed_objects<M: Memory>(&mut self, mem: &M, types: &ObjectTypes) {
        let objs = self.objs;
        for (i, o) in objs.objects.iter().enumerate() {
            if o.rtype == 0 || types.of[i] == UNKNOWN {
                continue;
            }
            let ty = self.w.types.from_runtime(o.rtype);
            let start = data_start(objs, i);
            let payload = o.size - (start - o.addr);
            let obj = match self.w.types.size_of(mem, ty) {
                Some(s) if s > 0 && payload >= 2 * s => Obj::Elems(ty, payload / s),
                _ => Obj::Value(ty),
            };
            self.push_object(i, start, obj);
        }
    }

    fn run<M: Memory>(&mut self, mem: &M, out: &mut ObjectTypes, names: &mut Interner) {
        let max_visits = self.objs.objects.len().saturating_mul(4) + (1 << 20);
        let mut visits = 0usize;
        let mut edges = Vec::new();
        while let Some((addr, obj)) = self.queue.pop_front() {
            visits += 1;
            if visits > max_visits {
                out.warnings.push(format!(
                    "type propagation stopped after {max_visits} values; some objects stay untyped"
                ));
                break;
            }
            edges.clear();
            self.w.edges(mem, addr, &obj, &mut |e| edges.push(e));
            for e in edges.drain(..) {
                self.arrive(mem, e.addr, e.obj, out, names);
            }
        }
    }

    /// An edge to `obj` at `addr`: names the heap object it starts, if
    /// untyped, and queues its walk.
    fn arrive<M: Memory>(
        &mut self,
        mem: &M,
        addr: u64,
        obj: Obj,
        out: &mut ObjectTypes,
        names: &mut Interner,
    ) {
        let Some(i) = find(self.objs, addr) else {
            return;
        };
        // What the edge says is there is cut to what fits in the object
        // from `addr` (hostile or stale counts: a slice length of 2^40).
        let Some(obj) = self.clamp(mem, i, addr, obj) else {
            return;
        };
        if addr != data_start(self.objs, i) {
            self.push(addr, obj);
            return;
        }
        if out.of[i] == UNKNOWN {
            if let Some(id) = self.name_id(mem, &obj, names) {
                out.of[i] = id;
                if self.stripped {
                    out.from_descriptors += 1;
                } else {
                    out.from_dwarf += 1;
                }
            }
        }
        self.push_object(i, addr, obj);
    }

    /// The runtime's spelling of what an edge points to.
    fn name_of<M: Memory>(&mut self, mem: &M, obj: &Obj) -> Option<String> {
        let types = &mut self.w.types;
        let kv = |types: &mut Types, l: &MapLayout| {
            format!("[{}]{}", types.name(mem, l.key), types.name(mem, l.elem))
        };
        let name = match obj {
            Obj::Value(ty) => types.name(mem, *ty),
            Obj::Elems(ty, _) | Obj::ChanBuf(ty, ..) => format!("[]{}", types.name(mem, *ty)),
            Obj::Bytes => "string".to_string(),
            Obj::MapHdr(l) => match l.imp {
                MapImpl::Hmap { .. } => format!("map.hdr{}", kv(types, l)),
                _ => "internal/runtime/maps.Map".to_string(),
            },
            Obj::Buckets(l, _) => format!("map.bucket{}", kv(types, l)),
            Obj::SwissDir(..) => "[]*internal/runtime/maps.table".to_string(),
            Obj::SwissTable(_) => "internal/runtime/maps.table".to_string(),
            Obj::SwissGroups(l, _) => format!("map.group{}", kv(types, l)),
            Obj::ChanHdr(_) => "runtime.hchan".to_string(),
        };
        (!name.is_empty() && !name.starts_with("[]") || name.len() > 2).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goruntime::heap::objects::HeapObject;

    fn objs(headers: bool) -> HeapObjects {
        let o = |addr, size, spanclass| HeapObject {
            addr,
            size,
            spanclass,
            rtype: 0,
            ptrs: 0,
        };
        HeapObjects {
            // 32 B scan, 640 B scan (header from 1.22), 640 B noscan, large.
            objects: vec![
                o(0x1000, 32, 4 << 1),
                o(0x2000, 640, 40 << 1),
                o(0x3000, 640, (40 << 1) | 1),
                o(0x10000, 40960, 0),
            ],
            headers,
            ..Default::default()
        }
    }

    #[test]
    fn find_is_bounded_by_object_ends() {
        let h = objs(true);
        assert_eq!(find(&h, 0xfff), None);
        assert_eq!(find(&h, 0x1000), Some(0));
        assert_eq!(find(&h, 0x101f), Some(0));
        assert_eq!(find(&h, 0x1020), None);
        assert_eq!(find(&h, 0x2000 + 639), Some(1));
        assert_eq!(find(&h, 0x10000 + 40959), Some(3));
        assert_eq!(find(&h, 0x10000 + 40960), None);
        assert_eq!(find(&h, u64::MAX), None);
        assert_eq!(find(&HeapObjects::default(), 0x1000), None);
    }

    #[test]
    fn data_starts_after_an_allocation_header_only_where_one_exists() {
        let h = objs(true);
        assert_eq!(data_start(&h, 0), 0x1000);
        assert_eq!(data_start(&h, 1), 0x2008);
        assert_eq!(data_start(&h, 2), 0x3000, "noscan: no header");
        assert_eq!(data_start(&h, 3), 0x10000, "large: span.largeType");
        let old = objs(false);
        assert_eq!(data_start(&old, 1), 0x2000, "before Go 1.22: no headers");
    }
}
