//! Capture-time walk of what global variables point to.
//!
//! Starting from the globals in `.data`/`.bss` (already captured), typed by
//! DWARF, the walk follows pointers, strings, slices, maps (old hmap and
//! Swiss tables), channels, funcs and interfaces (dynamic type from the
//! runtime type descriptor) breadth-first: what points where is
//! [`ValueWalker`]'s (`walk.rs`) job, this file decides what to read when
//! and within which budget. Each level's heap objects are read in one
//! batch: [`Walker`] is a [`super::bulk::BulkWalk`] that keeps the bytes it
//! is fed, driven by [`super::bulk::drive`].
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

use super::gotypes::{FxHashSet, Ty, Types};
use super::walk::{Edge, Obj, ValueWalker};
use super::Target;
use crate::binary::dwarf::TypeRef;
use crate::memory::{Layered, MemError, MemResult, Memory, SparseMemory};
use anyhow::{anyhow, Result};
use std::collections::VecDeque;
use std::sync::Arc;

/// Default byte budget for what globals point to (`capture --var-budget`).
pub const DEFAULT_BUDGET: u64 = 16 << 20;
/// Hard cap on what `--var` globals may pull in.
pub const FULL_CAP: u64 = 4 << 30;
/// Most read rounds (levels of the breadth-first walk). Every level of a
/// linked list is a round: a global list of 700k nodes took minutes of walk
/// (and of pause, when the walk ran in it). Deeper values are left out,
/// counted in [`WalkStats::depth_skipped`].
pub const MAX_ROUNDS: usize = 1024;
/// Most nodes expanded in one capture.
const MAX_NODES: usize = 20_000_000;
/// Most types whose layouts are computed before the target stops.
const PREWARM_TYPES: usize = 50_000;
/// Ranges closer than this are read as one.
const MERGE_GAP: u64 = 256;

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

#[derive(Debug, Clone)]
struct Node {
    addr: u64,
    len: u64,
    kind: Obj,
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
        let (tag, t) = self.kind.tag();
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
        // Sort only what is new, then one linear merge with the sorted
        // ranges (a round of a deep walk adds a few ranges to many).
        let mut new = std::mem::take(&mut self.incoming);
        new.sort_unstable_by_key(|e| (e.1, e.0));
        let old = std::mem::take(&mut self.ranges);
        let mut all: Vec<(u8, u64, Vec<u8>)> = Vec::with_capacity(old.len() + new.len());
        let mut old = old.into_iter().map(|(a, d)| (1u8, a, d)).peekable();
        let mut new = new.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some(o), Some(n)) => (o.1, o.0) <= (n.1, n.0),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let e = if take_old { old.next() } else { new.next() };
            let e = e.expect("peeked");
            // Equal addresses: the lower rank came first and stays.
            if all.last().map_or(true, |l| l.1 != e.1) {
                all.push(e);
            }
        }
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
    /// Objects left out because the walk reached [`MAX_ROUNDS`] levels.
    pub depth_skipped: usize,
    /// Time spent deciding what to read (expanding objects).
    pub expand_ns: u64,
    /// Time spent reading (set by the caller).
    pub read_ns: u64,
}

/// The breadth-first walk, one read round per [`Walker::step`].
pub struct Walker<'a> {
    w: ValueWalker<'a>,
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
            w: ValueWalker::new(Types::new(t, d)),
            groups: plan.groups.into_iter().collect(),
            pending: Vec::new(),
            visited: {
                let mut v = FxHashSet::default();
                v.reserve(1 << 16);
                // Fault the table's pages in now, while the target runs:
                // the pause's inserts would otherwise each fault in a
                // fresh page (or zero a huge one), hundreds of µs in all.
                for i in 0..(1u64 << 13) {
                    v.insert((i, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
                }
                v.clear();
                v
            },
            budget_left: plan.budget,
            full_left: FULL_CAP,
            static_ranges,
            heap: Heap::default(),
            stats: WalkStats::default(),
        };
        // Pointer layouts of every DWARF type statically reachable from the
        // roots, before the target stops; only dynamic types found in
        // interfaces are decoded while paused.
        let roots: Vec<Ty> = w
            .groups
            .iter()
            .flat_map(|(g, _)| g.iter().map(|r| Ty::Dwarf(r.ty)))
            .collect();
        w.w.prewarm(&SparseMemory::default(), roots.into_iter(), PREWARM_TYPES);
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
            self.stats.depth_skipped += self.pending.len();
            self.pending.clear();
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
                    let len = self.w.types.size_of(&lm, Ty::Dwarf(r.ty)).unwrap_or(0);
                    work.push(Node {
                        addr: r.addr,
                        len,
                        kind: Obj::Value(Ty::Dwarf(r.ty)),
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
                let full = node.full;
                self.w.edges(&lm, node.addr, &node.kind, &mut |e: Edge| {
                    children.push(Node {
                        addr: e.addr,
                        len: e.len,
                        kind: e.obj,
                        full,
                    })
                });
                for c in children.drain(..) {
                    if c.len == 0 && !matches!(c.kind, Obj::Value(_) | Obj::Elems(..)) {
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
                        Obj::Bytes => true,
                        Obj::Elems(t, _) => self.w.layout(&lm, *t).is_empty(),
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

    #[test]
    fn heap_settles_rounds_by_rank_and_address() {
        let mut h = Heap::default();
        h.insert(0x200, vec![1; 8], false);
        h.insert(0x100, vec![2; 8], false);
        h.settle();
        // A later round: a replacement, a yielding duplicate, a new range.
        h.insert(0x200, vec![3; 8], true);
        h.insert(0x100, vec![4; 8], false);
        h.insert(0x180, vec![5; 8], false);
        h.settle();
        let got: Vec<(u64, u8)> = h.ranges.iter().map(|(a, d)| (*a, d[0])).collect();
        assert_eq!(got, vec![(0x100, 2), (0x180, 5), (0x200, 3)]);
        let mut b = [0u8; 4];
        h.read_exact(0x184, &mut b).unwrap();
        assert_eq!(b, [5; 4]);
        assert!(h.read_exact(0x1fe, &mut b).is_err());
    }
}
