//! Capture-time walk of what global variables point to.
//!
//! Starting from the globals in `.data`/`.bss` (already captured), typed by
//! DWARF, the walk follows pointers, strings, slices, maps (old hmap and
//! Swiss tables), channels, funcs and interfaces (dynamic type from the
//! runtime type descriptor) breadth-first. Each level's heap objects are read
//! in one batch: [`Walker`] is a [`super::bulk::BulkWalk`] that keeps the
//! bytes it is fed, driven by [`super::bulk::drive`].
//!
//! Order and budget: the globals named with `capture --var` first, with no
//! budget (a hard cap only); then the other packages' globals (main and
//! third-party first, then the standard library), within a byte budget.
//! Runtime internals (`runtime`, `internal/...`, `sync`, `reflect`...) are
//! not walked: they are huge (heap arenas, span tables) and not what `var`
//! is for.
//!
//! Everything that does not depend on memory (the root list, pointer layouts
//! of the roots' types) is computed by [`ReachPlan::new`] before the target
//! is stopped.

use super::gotypes::{FxHashMap, FxHashSet, MapImpl, MapLayout, TKind, Ty, Types};
use super::Target;
use crate::binary::dwarf::TypeRef;
use crate::memory::{Layered, MemError, MemResult, Memory, SparseMemory};
use anyhow::{anyhow, Result};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Default byte budget for what globals point to (`capture --var-budget`).
pub const DEFAULT_BUDGET: u64 = 16 << 20;
/// Hard cap on what `--var` globals may pull in.
pub const FULL_CAP: u64 = 4 << 30;
/// Most read rounds (levels of the breadth-first walk).
const MAX_ROUNDS: usize = 100_000;
/// Most nodes expanded in one capture.
const MAX_NODES: usize = 20_000_000;
/// Most elements of one array looked at for pointers.
const MAX_ARRAY_WALK: u64 = 1 << 20;
/// Most types whose layouts are computed before the target stops.
const PREWARM_TYPES: usize = 50_000;
/// Ranges closer than this are read as one.
const MERGE_GAP: u64 = 256;
/// Largest plausible element count.
const MAX_COUNT: u64 = 1 << 36;

/// A global variable the walk starts from.
#[derive(Debug, Clone)]
pub struct Root {
    pub name: String,
    /// Runtime address.
    pub addr: u64,
    pub ty: TypeRef,
}

/// Packages whose globals are not walked by default.
pub fn is_runtime_internal(pkg: &str) -> bool {
    const SKIP: &[&str] = &["runtime", "sync", "reflect", "unique", "weak", "iter"];
    SKIP.contains(&pkg)
        || pkg.starts_with("runtime/")
        || pkg.starts_with("internal/")
        || pkg.starts_with("vendor/")
        || pkg.starts_with("sync/")
}

/// The package path of a global's linker name (`net/http.DefaultClient` →
/// `net/http`).
pub fn package_of(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].find('.') {
        Some(i) => &name[..slash + i],
        None => name,
    }
}

/// Whether a package is from the standard library (no dot in its first path
/// element, and not `main`).
pub fn is_std(pkg: &str) -> bool {
    pkg != "main" && !pkg.split('/').next().unwrap_or("").contains('.')
}

/// The one-line error for `var NAME` / `--var NAME` on an executable without
/// DWARF: the type of a global cannot be recovered (the runtime's type
/// descriptors do not say which type a global has); with a symbol table the
/// message gives where the global is, without one not even that is known.
pub fn untyped_global_error(t: &Target, name: &str) -> anyhow::Error {
    let fix = "pass --bin with an unstripped build of the same source";
    if !t.bin.elf.has_symtab() {
        return anyhow!(
            "cannot show {name}: the executable has neither DWARF nor a symbol table \
             (built with -ldflags='-s -w'), so neither the address nor the type of a global \
             can be recovered; {fix}"
        );
    }
    match t.bin.elf.symbol(name) {
        Some((addr, size)) => anyhow!(
            "cannot show {name}: its type cannot be recovered (the executable has no DWARF: \
             built with -ldflags=-w; the symbol table only says it is at {:#x}, {size} bytes); \
             {fix}",
            t.rt(addr)
        ),
        None => anyhow!(
            "no global variable named {name:?} in the executable's symbol table (and no DWARF: \
             built with -ldflags=-w); {fix}"
        ),
    }
}

/// What to walk, decided before the target stops.
#[derive(Debug, Default)]
pub struct ReachPlan {
    /// `--var` globals (no budget), then user packages, then the standard
    /// library.
    pub groups: Vec<(Vec<Root>, bool)>,
    pub budget: u64,
    pub warnings: Vec<String>,
}

impl ReachPlan {
    /// `vars`: globals whose full value must be captured; `budget`: bytes for
    /// the others (0: walk only the `vars`).
    pub fn new(t: &Target, vars: &[String], budget: u64) -> Result<ReachPlan> {
        let Some(d) = t.bin.dwarf() else {
            if let Some(v) = vars.first() {
                return Err(untyped_global_error(t, v));
            }
            // Stripped: no globals' types, nothing to walk (`var` needs
            // DWARF anyway, from --bin at analysis time).
            return Ok(ReachPlan::default());
        };
        let root = |name: &str| -> Option<Root> {
            let g = d.global(name)?;
            Some(Root {
                name: name.to_string(),
                addr: t.rt(g.addr),
                ty: g.ty?,
            })
        };
        let mut full = Vec::new();
        for v in vars {
            full.push(root(v).ok_or_else(|| {
                anyhow!("--var {v}: no such global in the executable's DWARF (list them with `gospy analyze FILE vars`)")
            })?);
        }
        let mut user = Vec::new();
        let mut std = Vec::new();
        if budget > 0 {
            for name in d.globals() {
                let pkg = package_of(&name);
                if is_runtime_internal(pkg) || vars.contains(&name) {
                    continue;
                }
                let Some(r) = root(&name) else { continue };
                if is_std(pkg) {
                    std.push(r);
                } else {
                    user.push(r);
                }
            }
        }
        Ok(ReachPlan {
            groups: vec![(full, true), (user, false), (std, false)],
            budget,
            warnings: Vec::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|(g, _)| g.is_empty())
    }
}

/// Where pointers are inside a value of one type.
#[derive(Debug, Clone)]
enum Slot {
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

#[derive(Debug, Clone)]
enum Kind {
    /// One value of the type.
    Obj(Ty),
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

#[derive(Debug, Clone)]
struct Node {
    addr: u64,
    len: u64,
    kind: Kind,
    full: bool,
}

impl Node {
    /// Identity for the visited set: the address and a hash of the rest
    /// (a 16-byte key keeps the set small and fast).
    fn key(&self) -> (u64, u64) {
        use std::hash::{Hash, Hasher};
        let (len, tag, t) = self.key_parts();
        let mut h = super::gotypes::FxHasher::default();
        (len, tag, t).hash(&mut h);
        (self.addr, h.finish())
    }

    fn key_parts(&self) -> (u64, u8, Ty) {
        const NONE: Ty = Ty::Rt(0);
        let (tag, t) = match &self.kind {
            Kind::Obj(t) => (0, *t),
            Kind::Elems(t, _) => (1, *t),
            Kind::Bytes => (2, NONE),
            Kind::MapHdr(_) => (3, NONE),
            Kind::Buckets(..) => (4, NONE),
            Kind::SwissDir(..) => (5, NONE),
            Kind::SwissTable(_) => (6, NONE),
            Kind::SwissGroups(..) => (7, NONE),
            Kind::ChanHdr(_) => (8, NONE),
            Kind::ChanBuf(..) => (9, NONE),
        };
        (self.len, tag, t)
    }
}

/// Heap bytes read by the walk: a sorted array (binary search, no tree
/// walk per read) that takes each round's reads in one merge.
#[derive(Default)]
struct Heap {
    /// Sorted by address; no copy of the bytes while the target is stopped.
    ranges: Vec<(u64, Vec<u8>)>,
    /// `max_end[i]`: the highest end among `ranges[..=i]` (exact look-back).
    max_end: Vec<u64>,
    /// Added since the last [`settle`](Heap::settle): (rank, addr, bytes);
    /// rank 0 replaces a range at the same address, 2 yields to it.
    incoming: Vec<(u8, u64, Vec<u8>)>,
}

impl Heap {
    fn insert(&mut self, addr: u64, data: Vec<u8>, replace: bool) {
        self.incoming
            .push((if replace { 0 } else { 2 }, addr, data));
    }

    /// Merge what was added into the sorted ranges.
    fn settle(&mut self) {
        if self.incoming.is_empty() {
            return;
        }
        let mut all: Vec<(u8, u64, Vec<u8>)> = std::mem::take(&mut self.ranges)
            .into_iter()
            .map(|(a, d)| (1, a, d))
            .chain(self.incoming.drain(..))
            .collect();
        all.sort_unstable_by_key(|e| (e.1, e.0));
        all.dedup_by_key(|e| e.1);
        self.ranges = all.into_iter().map(|(_, a, d)| (a, d)).collect();
        let mut hi = 0u64;
        self.max_end = self
            .ranges
            .iter()
            .map(|(a, d)| {
                hi = hi.max(a.saturating_add(d.len() as u64));
                hi
            })
            .collect();
    }

    /// The range holding all of `[addr, end)`.
    fn find(&self, addr: u64, end: u64) -> Option<&(u64, Vec<u8>)> {
        let mut i = self.ranges.partition_point(|(a, _)| *a <= addr);
        while i > 0 {
            i -= 1;
            let r = &self.ranges[i];
            if end <= r.0.saturating_add(r.1.len() as u64) {
                return Some(r);
            }
            if self.max_end[i] < end {
                return None;
            }
        }
        None
    }
}

impl Memory for Heap {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        let end = addr.saturating_add(buf.len() as u64);
        if let Some((a, d)) = self.find(addr, end) {
            let o = (addr - a) as usize;
            buf.copy_from_slice(&d[o..o + buf.len()]);
            return Ok(());
        }
        Err(MemError {
            addr,
            len: buf.len(),
            why: "not read",
        })
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WalkStats {
    pub rounds: usize,
    pub nodes: usize,
    pub bytes: u64,
    /// Objects left out because the budget was exhausted.
    pub skipped: usize,
    pub skipped_bytes: u64,
    /// Time spent deciding what to read (expanding objects).
    pub expand_ns: u64,
    /// Time spent reading (set by the caller).
    pub read_ns: u64,
}

/// The breadth-first walk, one read round per [`Walker::step`].
pub struct Walker<'a> {
    types: Types<'a>,
    layouts: FxHashMap<Ty, Arc<Vec<Slot>>>,
    groups: VecDeque<(Vec<Root>, bool)>,
    /// Nodes whose bytes were requested by the last step.
    pending: Vec<Node>,
    visited: FxHashSet<(u64, u64)>,
    budget_left: u64,
    full_left: u64,
    /// Runtime address ranges already in memory without reading: the
    /// executable's segments (writable ones were captured first).
    static_ranges: Vec<(u64, u64)>,
    heap: Heap,
    pub stats: WalkStats,
}

impl<'a> Walker<'a> {
    pub fn new(t: &'a Target, plan: ReachPlan) -> Option<Walker<'a>> {
        let d = t.bin.dwarf()?;
        let static_ranges = t
            .bin
            .elf
            .segments
            .iter()
            .filter(|s| s.memsz > 0)
            .map(|s| {
                let len = if s.writable { s.memsz } else { s.filesz };
                (t.rt(s.vaddr), len)
            })
            .collect();
        let mut w = Walker {
            types: Types::new(t, d),
            layouts: FxHashMap::default(),
            groups: plan.groups.into_iter().collect(),
            pending: Vec::new(),
            visited: {
                let mut v = FxHashSet::default();
                v.reserve(1 << 16);
                v
            },
            budget_left: plan.budget,
            full_left: FULL_CAP,
            static_ranges,
            heap: Heap::default(),
            stats: WalkStats::default(),
        };
        // Pointer layouts of every DWARF type statically reachable from the
        // roots, before the target stops (DWARF types need no memory); only
        // dynamic types found in interfaces are decoded while paused.
        let mut queue: VecDeque<Ty> = w
            .groups
            .iter()
            .flat_map(|(g, _)| g.iter().map(|r| Ty::Dwarf(r.ty)))
            .collect();
        let none = SparseMemory::default();
        let mut seen = HashSet::new();
        w.types.chan_layout();
        while let Some(ty) = queue.pop_front() {
            if seen.len() >= PREWARM_TYPES || !seen.insert(ty) {
                continue;
            }
            for s in w.layout(&none, ty).iter() {
                match *s {
                    Slot::Ptr { elem, .. } | Slot::Slice { elem, .. } | Slot::Chan { elem, .. } => {
                        queue.push_back(elem)
                    }
                    Slot::Array { elem, .. } => queue.push_back(elem),
                    Slot::Map { ty, .. } => {
                        if let Some(ml) = w.types.map_layout(&none, ty) {
                            queue.push_back(ml.key);
                            queue.push_back(ml.elem);
                        }
                    }
                    Slot::Str { .. } | Slot::Iface { .. } | Slot::Func { .. } => {}
                }
            }
        }
        Some(w)
    }

    /// Everything read, for the snapshot.
    pub fn into_regions(mut self) -> Vec<(u64, Arc<[u8]>)> {
        self.heap.settle();
        self.heap
            .ranges
            .into_iter()
            .map(|(a, d)| (a, Arc::from(d)))
            .collect()
    }

    /// Expand what the previous round read and return the next ranges to
    /// read (merged, sorted). Empty: the walk is over. `mem` is the memory
    /// captured so far (data segments, executable image...).
    pub fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, usize)> {
        if self.stats.rounds >= MAX_ROUNDS {
            return Vec::new();
        }
        self.stats.rounds += 1;
        let t0 = std::time::Instant::now();
        let mut heap = std::mem::take(&mut self.heap);
        heap.settle();
        let lm = Layered {
            first: &heap,
            second: mem,
        };
        let mut to_read: Vec<(u64, u64)> = Vec::new();
        loop {
            let mut work: Vec<Node> = std::mem::take(&mut self.pending);
            if work.is_empty() {
                let Some((roots, full)) = self.groups.pop_front() else {
                    break;
                };
                for r in roots {
                    let len = self.types.size_of(&lm, Ty::Dwarf(r.ty)).unwrap_or(0);
                    work.push(Node {
                        addr: r.addr,
                        len,
                        kind: Kind::Obj(Ty::Dwarf(r.ty)),
                        full,
                    });
                }
            }
            let mut next = Vec::new();
            let mut children = Vec::new();
            while let Some(node) = work.pop() {
                if self.stats.nodes >= MAX_NODES {
                    break;
                }
                self.stats.nodes += 1;
                children.clear();
                self.expand(&lm, &node, &mut children);
                for c in children.drain(..) {
                    if c.len == 0 && !matches!(c.kind, Kind::Obj(_) | Kind::Elems(..)) {
                        continue;
                    }
                    if !self.visited.insert(c.key()) {
                        continue;
                    }
                    if c.len == 0 || self.available_in(&heap, c.addr, c.len) {
                        work.push(c);
                        continue;
                    }
                    let fits = if c.full {
                        c.len <= self.full_left
                    } else {
                        c.len <= self.budget_left
                    };
                    if !fits {
                        self.stats.skipped += 1;
                        self.stats.skipped_bytes += c.len;
                        continue;
                    }
                    if c.full {
                        self.full_left -= c.len;
                    } else {
                        self.budget_left -= c.len;
                    }
                    to_read.push((c.addr, c.len));
                    // Pointer-free objects need no expansion once read.
                    let leaf = match &c.kind {
                        Kind::Bytes => true,
                        Kind::Elems(t, _) => match self.layouts.get(t) {
                            Some(l) => l.is_empty(),
                            None => self.layout(&lm, *t).is_empty(),
                        },
                        _ => false,
                    };
                    if !leaf {
                        next.push(c);
                    }
                }
            }
            self.pending = next;
            if !to_read.is_empty() || self.stats.nodes >= MAX_NODES {
                break;
            }
        }
        self.heap = heap;
        let out = merge(to_read);
        self.stats.expand_ns += t0.elapsed().as_nanos() as u64;
        out
    }

    fn available_in(&self, heap: &Heap, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        if self
            .static_ranges
            .iter()
            .any(|&(a, l)| addr >= a && end <= a + l)
        {
            return true;
        }
        heap.find(addr, end).is_some()
    }

    /// Pointer slots of type `t`.
    fn layout(&mut self, mem: &dyn Memory, t: Ty) -> Arc<Vec<Slot>> {
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

    fn expand(&mut self, mem: &dyn Memory, n: &Node, out: &mut Vec<Node>) {
        match &n.kind {
            Kind::Obj(t) => {
                let l = self.layout(mem, *t);
                self.apply(mem, &l, n.addr, n.full, out);
            }
            Kind::Elems(t, count) => {
                let l = self.layout(mem, *t);
                if l.is_empty() {
                    return;
                }
                let stride = self.types.size_of(mem, *t).unwrap_or(0);
                for i in 0..*count {
                    self.apply(mem, &l, n.addr + i * stride, n.full, out);
                }
            }
            Kind::Bytes => {}
            Kind::MapHdr(l) => self.expand_map_header(mem, l, n, out),
            Kind::Buckets(l, count) => {
                let MapImpl::Hmap {
                    bucket_size,
                    tophash,
                    overflow,
                    ..
                } = l.imp
                else {
                    return;
                };
                for i in 0..*count {
                    let b = n.addr + i * bucket_size;
                    for s in 0..8 {
                        if mem.u8(b + tophash + s).unwrap_or(0) >= 5 {
                            self.slot(mem, l, b, s, n.full, out);
                        }
                    }
                    let ovf = mem.ptr(b + overflow).unwrap_or(0);
                    if ovf != 0 {
                        out.push(Node {
                            addr: ovf,
                            len: bucket_size,
                            kind: Kind::Buckets(l.clone(), 1),
                            full: n.full,
                        });
                    }
                }
            }
            Kind::SwissDir(l, count) => {
                let MapImpl::Swiss { table_size, .. } = l.imp else {
                    return;
                };
                let mut seen = HashSet::new();
                for j in 0..*count {
                    let tp = mem.ptr(n.addr + j * 8).unwrap_or(0);
                    if tp != 0 && seen.insert(tp) {
                        out.push(Node {
                            addr: tp,
                            len: table_size,
                            kind: Kind::SwissTable(l.clone()),
                            full: n.full,
                        });
                    }
                }
            }
            Kind::SwissTable(l) => {
                let MapImpl::Swiss {
                    groups_data,
                    length_mask,
                    group_size,
                    ..
                } = l.imp
                else {
                    return;
                };
                let data = mem.ptr(n.addr + groups_data).unwrap_or(0);
                let mask = mem.u64(n.addr + length_mask).unwrap_or(u64::MAX);
                if data != 0 && mask < 1 << 24 {
                    out.push(Node {
                        addr: data,
                        len: (mask + 1) * group_size,
                        kind: Kind::SwissGroups(l.clone(), mask + 1),
                        full: n.full,
                    });
                }
            }
            Kind::SwissGroups(l, count) => {
                let MapImpl::Swiss {
                    group_size, ctrl, ..
                } = l.imp
                else {
                    return;
                };
                for g in 0..*count {
                    let ga = n.addr + g * group_size;
                    let Ok(c) = mem.u64(ga + ctrl) else { continue };
                    for s in 0..8 {
                        if (c >> (8 * s)) & 0x80 == 0 {
                            self.slot(mem, l, ga, s, n.full, out);
                        }
                    }
                }
            }
            Kind::ChanHdr(elem) => {
                let Some(cl) = self.types.chan_layout() else {
                    return;
                };
                let qcount = mem.u64(n.addr + cl.qcount).unwrap_or(0);
                let size = mem.u64(n.addr + cl.dataqsiz).unwrap_or(0);
                let buf = mem.ptr(n.addr + cl.buf).unwrap_or(0);
                let recvx = mem.u64(n.addr + cl.recvx).unwrap_or(0);
                let esz = self.types.size_of(mem, *elem).unwrap_or(0);
                if buf != 0 && size > 0 && esz > 0 && qcount <= size && size < MAX_COUNT {
                    out.push(Node {
                        addr: buf,
                        len: size * esz,
                        kind: Kind::ChanBuf(*elem, size, recvx, qcount),
                        full: n.full,
                    });
                }
            }
            Kind::ChanBuf(elem, size, recvx, qcount) => {
                let l = self.layout(mem, *elem);
                if l.is_empty() {
                    return;
                }
                let esz = self.types.size_of(mem, *elem).unwrap_or(0);
                for k in 0..*qcount {
                    let idx = (recvx + k) % size;
                    self.apply(mem, &l, n.addr + idx * esz, n.full, out);
                }
            }
        }
    }

    fn expand_map_header(
        &mut self,
        mem: &dyn Memory,
        l: &Arc<MapLayout>,
        n: &Node,
        out: &mut Vec<Node>,
    ) {
        match l.imp {
            MapImpl::Hmap {
                flags,
                b,
                buckets,
                oldbuckets,
                bucket_size,
                ..
            } => {
                let bb = mem.u8(n.addr + b).unwrap_or(0);
                let fl = mem.u8(n.addr + flags).unwrap_or(0);
                if bb > 36 {
                    return;
                }
                let nb = 1u64 << bb;
                let old_nb = if fl & 8 != 0 { nb } else { nb / 2 };
                for (arr, count) in [
                    (mem.ptr(n.addr + buckets).unwrap_or(0), nb),
                    (mem.ptr(n.addr + oldbuckets).unwrap_or(0), old_nb),
                ] {
                    if arr != 0 && count > 0 {
                        out.push(Node {
                            addr: arr,
                            len: count * bucket_size,
                            kind: Kind::Buckets(l.clone(), count),
                            full: n.full,
                        });
                    }
                }
            }
            MapImpl::Swiss {
                dir_ptr,
                dir_len,
                group_size,
                ..
            } => {
                let dp = mem.ptr(n.addr + dir_ptr).unwrap_or(0);
                let dl = mem.u64(n.addr + dir_len).unwrap_or(0);
                if dp == 0 || dl > 1 << 24 {
                    return;
                }
                out.push(if dl == 0 {
                    Node {
                        addr: dp,
                        len: group_size,
                        kind: Kind::SwissGroups(l.clone(), 1),
                        full: n.full,
                    }
                } else {
                    Node {
                        addr: dp,
                        len: dl * 8,
                        kind: Kind::SwissDir(l.clone(), dl),
                        full: n.full,
                    }
                });
            }
        }
    }

    /// Key and elem of slot `s` of the bucket/group at `base`.
    fn slot(
        &mut self,
        mem: &dyn Memory,
        l: &MapLayout,
        base: u64,
        s: u64,
        full: bool,
        out: &mut Vec<Node>,
    ) {
        for (off, ty, size, indirect) in [
            (
                l.key_base + s * l.key_stride,
                l.key,
                l.key_size,
                l.key_indirect,
            ),
            (
                l.elem_base + s * l.elem_stride,
                l.elem,
                l.elem_size,
                l.elem_indirect,
            ),
        ] {
            if indirect {
                let p = mem.ptr(base + off).unwrap_or(0);
                if p >= 4096 {
                    out.push(Node {
                        addr: p,
                        len: size,
                        kind: Kind::Obj(ty),
                        full,
                    });
                }
            } else {
                let sl = self.layout(mem, ty);
                self.apply(mem, &sl, base + off, full, out);
            }
        }
    }

    /// Children of the pointer slots `l` of a value at `base`.
    fn apply(&mut self, mem: &dyn Memory, l: &[Slot], base: u64, full: bool, out: &mut Vec<Node>) {
        for s in l {
            match *s {
                Slot::Ptr { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        let len = self.types.size_of(mem, elem).unwrap_or(0);
                        if len > 0 {
                            out.push(Node {
                                addr: p,
                                len,
                                kind: Kind::Obj(elem),
                                full,
                            });
                        }
                    }
                }
                Slot::Str { off } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    let len = mem.u64(base + off + 8).unwrap_or(0);
                    if p >= 4096 && len > 0 && len < MAX_COUNT {
                        out.push(Node {
                            addr: p,
                            len,
                            kind: Kind::Bytes,
                            full,
                        });
                    }
                }
                Slot::Slice { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    let len = mem.u64(base + off + 8).unwrap_or(0);
                    let esz = self.types.size_of(mem, elem).unwrap_or(0);
                    if p >= 4096 && len > 0 && len < MAX_COUNT && esz > 0 {
                        out.push(Node {
                            addr: p,
                            len: len.saturating_mul(esz),
                            kind: Kind::Elems(elem, len),
                            full,
                        });
                    }
                }
                Slot::Map { off, ty } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        if let Some(ml) = self.types.map_layout(mem, ty) {
                            out.push(Node {
                                addr: p,
                                len: ml.header_size,
                                kind: Kind::MapHdr(ml),
                                full,
                            });
                        }
                    }
                }
                Slot::Chan { off, elem } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        if let Some(cl) = self.types.chan_layout() {
                            out.push(Node {
                                addr: p,
                                len: cl.size,
                                kind: Kind::ChanHdr(elem),
                                full,
                            });
                        }
                    }
                }
                Slot::Func { off } => {
                    let p = mem.ptr(base + off).unwrap_or(0);
                    if p >= 4096 {
                        out.push(Node {
                            addr: p,
                            len: 8,
                            kind: Kind::Bytes,
                            full,
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
                        match mem.ptr(tw + 8) {
                            Ok(x) => x,
                            Err(_) => continue,
                        }
                    };
                    let Ok((dyn_ty, direct)) = self.types.dynamic_type(mem, rtype) else {
                        continue;
                    };
                    if direct {
                        let dl = self.layout(mem, dyn_ty);
                        self.apply(mem, &dl, base + off + 8, full, out);
                    } else if data >= 4096 {
                        let len = self.types.size_of(mem, dyn_ty).unwrap_or(0);
                        out.push(Node {
                            addr: data,
                            len,
                            kind: Kind::Obj(dyn_ty),
                            full,
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
                        self.apply(mem, &el, base + off + i * stride, full, out);
                    }
                }
            }
        }
    }
}

/// The globals walk through the one bulk reader. It keeps what it reads
/// itself ([`Heap`]: each range's own bytes, merged into a sorted array once
/// per round) rather than in capture's pooled regions: its ranges are many
/// and small, read by address, and stored as read.
impl super::bulk::BulkWalk for Walker<'_> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        Walker::step(self, mem)
            .into_iter()
            .map(|(a, l)| (a, l as u64))
            .collect()
    }
    fn feed(&mut self, ranges: &[(u64, u64)], results: Vec<Result<Vec<u8>, MemError>>) {
        for (&(addr, _), r) in ranges.iter().zip(results) {
            if let Ok(data) = r {
                self.stats.bytes += data.len() as u64;
                self.heap.insert(addr, data, true);
            }
        }
    }
    fn feed_extra(&mut self, addr: u64, data: Vec<u8>) {
        self.heap.insert(addr, data, false);
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

/// Sort and merge ranges that overlap or are closer than [`MERGE_GAP`].
fn merge(mut r: Vec<(u64, u64)>) -> Vec<(u64, usize)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (a, l) in r {
        if let Some(last) = out.last_mut() {
            let end = last.0 + last.1;
            if a <= end.saturating_add(MERGE_GAP) {
                last.1 = (a + l).max(end) - last.0;
                continue;
            }
        }
        out.push((a, l));
    }
    out.into_iter().map(|(a, l)| (a, l as usize)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages() {
        assert_eq!(package_of("main.GInt"), "main");
        assert_eq!(package_of("net/http.DefaultClient"), "net/http");
        assert_eq!(package_of("gopkg.in/yaml.v3.x"), "gopkg.in/yaml");
        assert!(is_std("net/http"));
        assert!(!is_std("main"));
        assert!(!is_std("github.com/a/b"));
        assert!(is_runtime_internal("runtime"));
        assert!(is_runtime_internal("internal/poll"));
        assert!(!is_runtime_internal("main"));
    }

    #[test]
    fn merging() {
        assert_eq!(
            merge(vec![(1000, 10), (0, 8), (8, 8), (1100, 50), (5000, 1)]),
            vec![(0, 16), (1000, 150), (5000, 1)]
        );
    }
}
