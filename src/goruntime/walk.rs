//! The one Go value walker: where the pointers are in a value of a given
//! type (DWARF types, or runtime type descriptors for interfaces' dynamic
//! types), and what they point to.
//!
//! [`ValueWalker::edges`] reports each outgoing edge of an object (a value,
//! an array of values, a map part through [`gomap`], a channel buffer...)
//! to a visitor as an [`Edge`]: "`len` bytes at `addr` hold this [`Obj`]".
//! Nothing is allocated per value (pointer layouts are computed once per
//! type and cached; map layouts are shared `Arc`s), so the same walker
//! serves the capture-time reach walk of globals (breadth-first, in read
//! rounds) and, later, a heap object graph.
//!
//! Memory that cannot be read is a missing edge, never an error: the walk
//! is best effort over whatever memory the caller has.

use super::gomap::{self, At, Header, MapGeom};
use super::gotypes::{MapLayout, TKind, Ty, Types};
use crate::memory::Memory;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Most elements of one array looked at for pointers.
const MAX_ARRAY_WALK: u64 = 1 << 20;
/// Largest plausible element count.
const MAX_COUNT: u64 = 1 << 36;
/// Largest `B` of an old hmap whose buckets are followed.
const MAX_HMAP_B: u8 = 36;
/// Where an itab points to its dynamic type (`abi.ITab.Type`).
pub const ITAB_TYPE: u64 = 8;

/// Where pointers are inside a value of one type.
#[derive(Debug, Clone)]
pub enum Slot {
    Ptr {
        off: u64,
        elem: Ty,
    },
    Str {
        off: u64,
    },
    Slice {
        off: u64,
        elem: Ty,
    },
    Map {
        off: u64,
        ty: Ty,
    },
    Chan {
        off: u64,
        elem: Ty,
    },
    Iface {
        off: u64,
        empty: bool,
    },
    Func {
        off: u64,
    },
    Array {
        off: u64,
        elem: Ty,
        stride: u64,
        n: u64,
    },
}

/// What a range of memory holds, as far as pointers go.
#[derive(Debug, Clone)]
pub enum Obj {
    /// One value of the type.
    Value(Ty),
    /// An array of `n` values.
    Elems(Ty, u64),
    /// Bytes without pointers (string data, funcval).
    Bytes,
    MapHdr(Arc<MapLayout>),
    /// `n` consecutive buckets (plus their overflow chains).
    Buckets(Arc<MapLayout>, u64),
    SwissDir(Arc<MapLayout>, u64),
    SwissTable(Arc<MapLayout>),
    SwissGroups(Arc<MapLayout>, u64),
    ChanHdr(Ty),
    /// A channel ring buffer: element type, capacity, recvx, qcount.
    ChanBuf(Ty, u64, u64, u64),
}

impl Obj {
    /// A small tag and the type, for identity (the same bytes seen as two
    /// different things are two objects).
    pub fn tag(&self) -> (u8, Ty) {
        const NONE: Ty = Ty::Rt(0);
        match self {
            Obj::Value(t) => (0, *t),
            Obj::Elems(t, _) => (1, *t),
            Obj::Bytes => (2, NONE),
            Obj::MapHdr(_) => (3, NONE),
            Obj::Buckets(..) => (4, NONE),
            Obj::SwissDir(..) => (5, NONE),
            Obj::SwissTable(_) => (6, NONE),
            Obj::SwissGroups(..) => (7, NONE),
            Obj::ChanHdr(_) => (8, NONE),
            Obj::ChanBuf(..) => (9, NONE),
        }
    }
}

/// An outgoing edge: `len` bytes at `addr` hold `obj`.
#[derive(Debug, Clone)]
pub struct Edge {
    pub addr: u64,
    pub len: u64,
    pub obj: Obj,
}

/// Pointer layouts by type, and the walk over them.
pub struct ValueWalker<'a> {
    pub types: Types<'a>,
    layouts: super::gotypes::FxHashMap<Ty, Arc<Vec<Slot>>>,
}

impl<'a> ValueWalker<'a> {
    pub fn new(types: Types<'a>) -> ValueWalker<'a> {
        ValueWalker {
            types,
            layouts: Default::default(),
        }
    }

    /// Compute the pointer layouts of every type statically reachable from
    /// `roots` (at most `max_types`), with `mem` for runtime descriptors.
    /// DWARF types need no memory: done before a target stops, this leaves
    /// only interfaces' dynamic types to decode while it is paused.
    pub fn prewarm(&mut self, mem: &dyn Memory, roots: impl Iterator<Item = Ty>, max_types: usize) {
        let mut queue: VecDeque<Ty> = roots.collect();
        let mut seen = HashSet::new();
        self.types.chan_layout();
        while let Some(ty) = queue.pop_front() {
            if seen.len() >= max_types || !seen.insert(ty) {
                continue;
            }
            for s in self.layout(mem, ty).iter() {
                match *s {
                    Slot::Ptr { elem, .. } | Slot::Slice { elem, .. } | Slot::Chan { elem, .. } => {
                        queue.push_back(elem)
                    }
                    Slot::Array { elem, .. } => queue.push_back(elem),
                    Slot::Map { ty, .. } => {
                        if let Some(ml) = self.types.map_layout(mem, ty) {
                            queue.push_back(ml.key);
                            queue.push_back(ml.elem);
                        }
                    }
                    Slot::Str { .. } | Slot::Iface { .. } | Slot::Func { .. } => {}
                }
            }
        }
    }

    /// Pointer slots of type `t`.
    pub fn layout(&mut self, mem: &dyn Memory, t: Ty) -> Arc<Vec<Slot>> {
        self.layout_depth(mem, t, 0)
    }

    fn layout_depth(&mut self, mem: &dyn Memory, t: Ty, depth: usize) -> Arc<Vec<Slot>> {
        if let Some(l) = self.layouts.get(&t) {
            return l.clone();
        }
        let mut slots = Vec::new();
        if depth < 32 {
            if let Some(ty) = self.types.desc(mem, t) {
                match &ty.kind {
                    TKind::Pointer(Some(e)) => slots.push(Slot::Ptr { off: 0, elem: *e }),
                    TKind::String => slots.push(Slot::Str { off: 0 }),
                    TKind::Slice(elem) => slots.push(Slot::Slice {
                        off: 0,
                        elem: *elem,
                    }),
                    TKind::Map { .. } => slots.push(Slot::Map { off: 0, ty: t }),
                    TKind::Chan(elem) => slots.push(Slot::Chan {
                        off: 0,
                        elem: *elem,
                    }),
                    TKind::Interface { empty } => slots.push(Slot::Iface {
                        off: 0,
                        empty: *empty,
                    }),
                    TKind::Func => slots.push(Slot::Func { off: 0 }),
                    TKind::Array(elem, len) => {
                        let el = self.layout_depth(mem, *elem, depth + 1);
                        if !el.is_empty() && *len > 0 {
                            if *len == 1 {
                                slots.extend(el.iter().cloned());
                            } else {
                                slots.push(Slot::Array {
                                    off: 0,
                                    elem: *elem,
                                    stride: self.types.size_of(mem, *elem).unwrap_or(0),
                                    n: *len,
                                });
                            }
                        }
                    }
                    TKind::Struct(fields) => {
                        for f in fields {
                            let fl = self.layout_depth(mem, f.ty, depth + 1);
                            slots.extend(fl.iter().map(|s| shift(s, f.offset)));
                        }
                    }
                    _ => {}
                }
            }
        }
        let l = Arc::new(slots);
        self.layouts.insert(t, l.clone());
        l
    }

    /// Report to `visit` every edge out of the `obj` at `addr`, reading
    /// its bytes from `mem`.
    pub fn edges<F: FnMut(Edge)>(&mut self, mem: &dyn Memory, addr: u64, obj: &Obj, visit: &mut F) {
        match obj {
            Obj::Value(t) => {
                let l = self.layout(mem, *t);
                self.apply(mem, &l, addr, visit);
            }
            Obj::Elems(t, count) => {
                let l = self.layout(mem, *t);
                if l.is_empty() {
                    return;
                }
                let stride = self.types.size_of(mem, *t).unwrap_or(0);
                for i in 0..*count {
                    self.apply(mem, &l, addr + i * stride, visit);
                }
            }
            Obj::Bytes => {}
            Obj::MapHdr(l) => map_header(mem, l, addr, visit),
            Obj::Buckets(l, count) => {
                let g = geom(l);
                let bs = g.bucket_size();
                for i in 0..*count {
                    let b = addr + i * bs;
                    let live = g.live_slots(&At(mem, b));
                    for s in 0..gomap::SLOTS {
                        if live & (1 << s) != 0 {
                            self.slot(mem, l, &g, b, s, visit);
                        }
                    }
                    let ovf = g.overflow(&At(mem, b));
                    if ovf != 0 {
                        visit(Edge {
                            addr: ovf,
                            len: bs,
                            obj: Obj::Buckets(l.clone(), 1),
                        });
                    }
                }
            }
            Obj::SwissDir(l, count) => {
                let g = geom(l);
                for tp in gomap::dir_tables(&At(mem, addr), *count) {
                    visit(Edge {
                        addr: tp,
                        len: g.table_size(),
                        obj: Obj::SwissTable(l.clone()),
                    });
                }
            }
            Obj::SwissTable(l) => {
                let g = geom(l);
                if let Some((data, n)) = g.table_groups(&At(mem, addr)) {
                    visit(Edge {
                        addr: data,
                        len: n * g.bucket_size(),
                        obj: Obj::SwissGroups(l.clone(), n),
                    });
                }
            }
            Obj::SwissGroups(l, count) => {
                let g = geom(l);
                let gs = g.bucket_size();
                for gi in 0..*count {
                    let ga = addr + gi * gs;
                    let live = g.live_slots(&At(mem, ga));
                    for s in 0..gomap::SLOTS {
                        if live & (1 << s) != 0 {
                            self.slot(mem, l, &g, ga, s, visit);
                        }
                    }
                }
            }
            Obj::ChanHdr(elem) => {
                let Some(cl) = self.types.chan_layout() else {
                    return;
                };
                let qcount = mem.u64(addr + cl.qcount).unwrap_or(0);
                let size = mem.u64(addr + cl.dataqsiz).unwrap_or(0);
                let buf = mem.ptr(addr + cl.buf).unwrap_or(0);
                let recvx = mem.u64(addr + cl.recvx).unwrap_or(0);
                let esz = self.types.size_of(mem, *elem).unwrap_or(0);
                if buf != 0 && size > 0 && esz > 0 && qcount <= size && size < MAX_COUNT {
                    visit(Edge {
                        addr: buf,
                        len: size * esz,
                        obj: Obj::ChanBuf(*elem, size, recvx, qcount),
                    });
                }
            }
            Obj::ChanBuf(elem, size, recvx, qcount) => {
                let l = self.layout(mem, *elem);
                if l.is_empty() {
                    return;
                }
                let esz = self.types.size_of(mem, *elem).unwrap_or(0);
                for k in 0..*qcount {
                    let idx = (recvx + k) % size;
                    self.apply(mem, &l, addr + idx * esz, visit);
                }
            }
        }
    }

    /// Key and elem of slot `s` of the bucket/group at `base`.
    fn slot<F: FnMut(Edge)>(
        &mut self,
        mem: &dyn Memory,
        l: &MapLayout,
        g: &MapGeom,
        base: u64,
        s: u64,
        visit: &mut F,
    ) {
        for (off, ty, size, indirect) in [
            (g.key_off(s), l.key, l.key_size, l.key_indirect),
            (g.elem_off(s), l.elem, l.elem_size, l.elem_indirect),
        ] {
            if indirect {
                let p = mem.ptr(base + off).unwrap_or(0);
                if p >= 4096 {
                    visit(Edge {
                        addr: p,
                        len: size,
                        obj: Obj::Value(ty),
                    });
                }
            } else {
                let sl = self.layout(mem, ty);
                self.apply(mem, &sl, base + off, visit);
            }
        }
    }

    /// Children of the pointer slots `l` of a value at `base`.
    fn apply<F: FnMut(Edge)>(&mut self, mem: &dyn Memory, l: &[Slot], base: u64, visit: &mut F) {
        for s in l {
            match *s {
                Slot::Ptr { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        let len = self.types.size_of(mem, elem).unwrap_or(0);
                        if len > 0 {
                            visit(Edge {
                                addr: p,
                                len,
                                obj: Obj::Value(elem),
                            });
                        }
                    }
                }
                Slot::Str { off } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    let len = mem.u64(base + off + 8).unwrap_or(0);
                    if p >= 4096 && len > 0 && len < MAX_COUNT {
                        visit(Edge {
                            addr: p,
                            len,
                            obj: Obj::Bytes,
                        });
                    }
                }
                Slot::Slice { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    let len = mem.u64(base + off + 8).unwrap_or(0);
                    let esz = self.types.size_of(mem, elem).unwrap_or(0);
                    if p >= 4096 && len > 0 && len < MAX_COUNT && esz > 0 {
                        visit(Edge {
                            addr: p,
                            len: len.saturating_mul(esz),
                            obj: Obj::Elems(elem, len),
                        });
                    }
                }
                Slot::Map { off, ty } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        if let Some(ml) = self.types.map_layout(mem, ty) {
                            visit(Edge {
                                addr: p,
                                len: ml.header_size,
                                obj: Obj::MapHdr(ml),
                            });
                        }
                    }
                }
                Slot::Chan { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        if let Some(cl) = self.types.chan_layout() {
                            visit(Edge {
                                addr: p,
                                len: cl.size,
                                obj: Obj::ChanHdr(elem),
                            });
                        }
                    }
                }
                Slot::Func { off } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        visit(Edge {
                            addr: p,
                            len: 8,
                            obj: Obj::Bytes,
                        });
                    }
                }
                Slot::Iface { off, empty } => {
                    let tw = mem.ptr(base + off).unwrap_or(0);
                    let data = mem.ptr(base + off + 8).unwrap_or(0);
                    if tw == 0 {
                        continue;
                    }
                    let rtype = if empty {
                        tw
                    } else {
                        match mem.ptr(tw + ITAB_TYPE) {
                            Ok(x) => x,
                            Err(_) => continue,
                        }
                    };
                    let Ok((dyn_ty, direct)) = self.types.dynamic_type(mem, rtype) else {
                        continue;
                    };
                    if direct {
                        let dl = self.layout(mem, dyn_ty);
                        self.apply(mem, &dl, base + off + 8, visit);
                    } else if data >= 4096 {
                        let len = self.types.size_of(mem, dyn_ty).unwrap_or(0);
                        visit(Edge {
                            addr: data,
                            len,
                            obj: Obj::Value(dyn_ty),
                        });
                    }
                }
                Slot::Array {
                    off,
                    elem,
                    stride,
                    n,
                } => {
                    let el = self.layout(mem, elem);
                    for i in 0..n.min(MAX_ARRAY_WALK) {
                        self.apply(mem, &el, base + off + i * stride, visit);
                    }
                }
            }
        }
    }
}

/// The offsets of a map layout (its types aside), for [`gomap`].
pub fn geom(l: &MapLayout) -> MapGeom {
    MapGeom {
        header_size: l.header_size,
        key_base: l.key_base,
        key_stride: l.key_stride,
        elem_base: l.elem_base,
        elem_stride: l.elem_stride,
        imp: l.imp.clone(),
    }
}

/// The bucket arrays, directory or single group of the map header at
/// `addr`.
fn map_header<F: FnMut(Edge)>(mem: &dyn Memory, l: &Arc<MapLayout>, addr: u64, visit: &mut F) {
    let g = geom(l);
    let h = g.header(&At(mem, addr));
    match h {
        Header::Hmap { b, .. } => {
            if b > MAX_HMAP_B {
                return;
            }
            for (arr, count) in h.bucket_arrays() {
                visit(Edge {
                    addr: arr,
                    len: count * g.bucket_size(),
                    obj: Obj::Buckets(l.clone(), count),
                });
            }
        }
        Header::Swiss {
            dir_ptr, dir_len, ..
        } => {
            if dir_ptr == 0 || dir_len > gomap::MAX_SWISS {
                return;
            }
            visit(if dir_len == 0 {
                Edge {
                    addr: dir_ptr,
                    len: g.bucket_size(),
                    obj: Obj::SwissGroups(l.clone(), 1),
                }
            } else {
                Edge {
                    addr: dir_ptr,
                    len: dir_len * 8,
                    obj: Obj::SwissDir(l.clone(), dir_len),
                }
            });
        }
    }
}

fn shift(s: &Slot, by: u64) -> Slot {
    let mut s = s.clone();
    match &mut s {
        Slot::Ptr { off, .. }
        | Slot::Str { off }
        | Slot::Slice { off, .. }
        | Slot::Map { off, .. }
        | Slot::Chan { off, .. }
        | Slot::Iface { off, .. }
        | Slot::Func { off }
        | Slot::Array { off, .. } => *off += by,
    }
    s
}
