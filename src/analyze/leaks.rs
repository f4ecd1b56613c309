//! Goroutine leaks from a heap-complete snapshot, by the runtime's own
//! definition (Go 1.26+ `GOEXPERIMENT=goroutineleakprofile`, mgc.go
//! `isMaybeRunnable`, `findMaybeRunnableGoroutines`, `findGoroutineLeaks`),
//! for every supported Go version, without touching the target.
//!
//! A **candidate** is a goroutine waiting on a channel operation or select
//! (`chan receive`, `chan send`, `select`), on a nil channel or an empty
//! select (never runnable), or on a sync.Mutex / RWMutex / WaitGroup / Cond
//! (their wait reasons, or `semacquire` on Go versions that did not name
//! them). Its **blocking objects** are the `c` of the sudogs along
//! `g.waiting` (channels), or the sudog's `elem` (sync: the semaphore
//! address inside the Mutex/WaitGroup; Go < 1.26 does not set `g.waiting`
//! for semaphores, so the semaphore tree `runtime.semtable` gives it).
//!
//! Marking starts from the globals and runtime internals and from the stacks
//! of the goroutines that may run (not candidates); a candidate one of whose
//! blocking objects is marked (or not in the heap) may run too, and its
//! stack is marked next; until nothing changes. The candidates left over are
//! leaked. As in the runtime, the sudogs' `c` (channel waits) and `elem`
//! (sync waits) do not count as pointers during the analysis (the runtime
//! makes them untraceable), and the main goroutine blocked in `select {}` is
//! not reported.

use super::goroutines::{Goroutine, Model};
use super::session::Session;
use crate::goruntime::heap::graph::{find_object, HeapGraph};
use crate::goruntime::heap::objects::{heap_objects, lacks_heap_error, HeapObjects};
use crate::goruntime::heap::roots::scan_roots;
use crate::goruntime::version::status::{G_LEAKED, G_WAITING};
use crate::goruntime::version::Layouts;
use crate::goruntime::waiting::WaitLayout;
use crate::goruntime::{le64, Target};
use crate::memory::Memory;
use anyhow::Result;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Sudogs followed at most along one `g.waiting` list.
const MAX_WAITING: usize = 65_536;
/// Sudogs visited at most in the semaphore tree.
const MAX_SEMA_NODES: usize = 1_000_000;
/// `runtime.semTabSize`.
const SEM_TAB_SIZE: u64 = 251;

/// Byte offsets of `runtime.sudog` (DWARF, or gospy's tables for stripped
/// executables) and the semaphore table when known.
struct SudogLayout {
    size: u64,
    g: u64,
    next: u64,
    prev: u64,
    elem: u64,
    waitlink: u64,
    c: u64,
    /// Runtime address, element stride and offset of `treap` (needs DWARF).
    semtable: Option<(u64, u64, u64)>,
}

impl SudogLayout {
    fn new(t: &Target) -> Option<SudogLayout> {
        let layouts = Layouts::for_binary(&t.bin).ok()?;
        let d = layouts.source();
        let sg = "runtime.sudog";
        let off = |paths: &[&str]| paths.iter().find_map(|p| d.offset_of(sg, p));
        Some(SudogLayout {
            size: d.size_of(sg)?,
            g: off(&["g"])?,
            next: off(&["next"])?,
            prev: off(&["prev"])?,
            elem: off(&["elem.vu", "elem"])?,
            waitlink: off(&["waitlink"])?,
            c: off(&["c.vu", "c.maybeTraceablePtr.vu", "c"])?,
            semtable: WaitLayout::new(t).and_then(|w| w.semtable),
        })
    }
}

/// How a goroutine is blocked, for the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    /// Not a leak candidate: its stack is a root.
    Runnable,
    /// A nil channel or `select {}`: never runnable.
    Never,
    /// Runnable once one of these heap objects is reached.
    On(Vec<u32>),
}

/// One leaked goroutine.
#[derive(Debug, Clone, Serialize)]
pub struct LeakedGoroutine {
    pub id: u64,
    pub wait_reason: String,
    /// The function whose `go` statement created it (wrappers resolved).
    pub created_by: Option<String>,
    /// `file:line` of that `go` statement.
    pub created_at: Option<String>,
    /// Where it blocks: the innermost frame outside the runtime and sync
    /// (`main.leakRecv.func1 /src/main.go:61`).
    pub blocking_site: String,
    /// Innermost first: `function file:line`.
    pub frames: Vec<String>,
}

/// Leaked goroutines with one creation site and one blocking site.
#[derive(Debug, Clone, Serialize)]
pub struct LeakGroup {
    pub count: usize,
    pub created_by: Option<String>,
    pub blocking_site: String,
    pub wait_reason: String,
    pub ids: Vec<u64>,
}

/// The result of the analysis.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Leaks {
    pub leaked: Vec<LeakedGoroutine>,
    pub groups: Vec<LeakGroup>,
    /// Goroutines blocked the way a leak is (before marking).
    pub candidates: usize,
    /// Rounds of marking until nothing changed.
    pub rounds: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn is_chan_wait(r: &str) -> bool {
    matches!(r, "chan receive" | "chan send" | "select")
}

fn is_never(r: &str) -> bool {
    matches!(
        r,
        "select (no cases)" | "chan send (nil chan)" | "chan receive (nil chan)"
    )
}

fn is_sync_wait(r: &str) -> bool {
    matches!(
        r,
        "sync.Cond.Wait"
            | "sync.Mutex.Lock"
            | "sync.RWMutex.RLock"
            | "sync.RWMutex.Lock"
            | "sync.WaitGroup.Wait"
            | "semacquire"
    )
}

/// The wait reason the runtime recorded, without the ` (leaked)` the
/// traceback adds for _Gleaked goroutines.
fn reason_of(g: &Goroutine) -> &str {
    g.wait_reason.as_deref().unwrap_or("")
}

/// `(sudog, c, elem)` along `g.waiting`.
fn waiting_list<M: Memory>(l: &SudogLayout, mem: &M, mut cur: u64) -> Vec<(u64, u64, u64)> {
    let mut v = Vec::new();
    let mut seen = HashSet::new();
    while cur != 0 && v.len() < MAX_WAITING && seen.insert(cur) {
        let Ok(b) = mem.read_vec(cur, l.size as usize) else {
            break;
        };
        v.push((cur, le64(&b, l.c), le64(&b, l.elem)));
        cur = le64(&b, l.waitlink);
    }
    v
}

/// The semaphore tree: g address → (sudog, elem).
fn sema_tree<M: Memory>(l: &SudogLayout, mem: &M) -> HashMap<u64, (u64, u64)> {
    let mut out = HashMap::new();
    let Some((base, stride, treap)) = l.semtable else {
        return out;
    };
    let mut todo: Vec<u64> = (0..SEM_TAB_SIZE)
        .filter_map(|i| {
            mem.ptr(
                base.wrapping_add(i.wrapping_mul(stride))
                    .wrapping_add(treap),
            )
            .ok()
        })
        .filter(|&p| p != 0)
        .collect();
    let mut seen = HashSet::new();
    while let Some(s) = todo.pop() {
        if seen.len() >= MAX_SEMA_NODES || !seen.insert(s) {
            continue;
        }
        let Ok(b) = mem.read_vec(s, l.size as usize) else {
            continue;
        };
        let (g, elem) = (le64(&b, l.g), le64(&b, l.elem));
        if g != 0 && elem != 0 {
            out.insert(g, (s, elem));
        }
        for o in [l.prev, l.next, l.waitlink] {
            let p = le64(&b, o);
            if p != 0 {
                todo.push(p);
            }
        }
    }
    out
}

/// Without the semaphore table (no DWARF): the sudogs of the heap that
/// name a goroutine and an `elem`, found among the objects of a sudog's
/// size class (a freed sudog has no g: `releaseSudog`). g address →
/// (sudog, elem); used for the goroutines in a semaphore wait only.
fn sudogs_by_scan<M: Memory>(
    l: &SudogLayout,
    mem: &M,
    objs: &HeapObjects,
    gs: &HashSet<u64>,
) -> HashMap<u64, (u64, u64)> {
    let mut out = HashMap::new();
    for o in &objs.objects {
        if o.size < l.size || o.size >= l.size + 24 {
            continue;
        }
        let Ok(b) = mem.read_vec(o.addr, l.size as usize) else {
            continue;
        };
        let (g, elem) = (le64(&b, l.g), le64(&b, l.elem));
        if elem != 0 && gs.contains(&g) {
            out.insert(g, (o.addr, elem));
        }
    }
    out
}

/// How `g` blocks, and the sudog → blocking object edges the analysis
/// ignores (added to `cut`).
fn classify<M: Memory>(
    l: &SudogLayout,
    mem: &M,
    objs: &HeapObjects,
    g: &Goroutine,
    sema: &HashMap<u64, (u64, u64)>,
    cut: &mut HashMap<u32, Vec<u32>>,
) -> Block {
    let st = g.g.status;
    if st != G_WAITING && st != G_LEAKED {
        return Block::Runnable;
    }
    let r = reason_of(g);
    if is_never(r) {
        return Block::Never;
    }
    let mut cut_edge = |sudog: u64, target: u32| {
        if let Some(s) = find_object(objs, sudog) {
            cut.entry(s).or_default().push(target);
        }
    };
    if is_chan_wait(r) {
        let list = waiting_list(l, mem, g.g.waiting);
        let mut on = Vec::new();
        for &(sg, c, _) in &list {
            match find_object(objs, c) {
                Some(o) => {
                    cut_edge(sg, o);
                    on.push(o);
                }
                // A channel outside the heap (or none): may run.
                None => return Block::Runnable,
            }
        }
        return if on.is_empty() {
            Block::Runnable
        } else {
            Block::On(on)
        };
    }
    if is_sync_wait(r) {
        let list = waiting_list(l, mem, g.g.waiting);
        let (sg, elem) = match list.first() {
            Some(&(sg, _, elem)) if elem != 0 => (sg, elem),
            _ => match sema.get(&g.g.addr) {
                Some(&(sg, elem)) => (sg, elem),
                // sync.Cond before Go 1.26, or unreadable: may run.
                None => return Block::Runnable,
            },
        };
        return match find_object(objs, elem) {
            Some(o) => {
                cut_edge(sg, o);
                Block::On(vec![o])
            }
            None => Block::Runnable,
        };
    }
    Block::Runnable
}

/// The graph's edges as the analysis sees them: `cut` sudog → blocking
/// object edges dropped, `rows` replacing some objects' rows.
struct Edges<'a> {
    graph: &'a HeapGraph,
    cut: HashMap<u32, Vec<u32>>,
    rows: HashMap<u32, Vec<u32>>,
}

/// Marks from `start` along the edges.
fn mark_from(e: &Edges<'_>, seen: &mut [bool], start: impl IntoIterator<Item = u32>) {
    let (graph, cut) = (e.graph, &e.cut);
    let mut stack: Vec<u32> = Vec::new();
    for j in start {
        if !seen[j as usize] {
            seen[j as usize] = true;
            stack.push(j);
        }
    }
    while let Some(i) = stack.pop() {
        let skip = cut.get(&i);
        let row = match e.rows.get(&i) {
            Some(r) => &r[..],
            None => graph.out.row(i as usize),
        };
        for &j in row {
            if seen[j as usize] || skip.is_some_and(|v| v.contains(&j)) {
                continue;
            }
            seen[j as usize] = true;
            stack.push(j);
        }
    }
}

/// Rows for the runtime's `p` and `g` structs when objects are scanned
/// conservatively (Go 1.19–1.21 snapshots without the heap arena
/// bitmaps): their words that hold addresses without being
/// pointers are left out, as the GC's exact mask does. A `g`'s `stack.hi`
/// is the address just past its stack span, often the first object of the
/// next span (a leaked channel); a `p`'s page cache base and stale write
/// barrier buffer entries point anywhere in the heap.
fn runtime_rows<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    model: &Model,
    gaddrs: &[u64],
) -> HashMap<u32, Vec<u32>> {
    let mut out = HashMap::new();
    let Ok(layouts) = Layouts::for_binary(&t.bin) else {
        return out;
    };
    let d = layouts.source();
    let p_skip: Vec<(u64, u64)> = [
        ("pcache", "raceprocctx"),
        ("runq", "gFree"),
        ("wbBuf", "runSafePointFn"),
    ]
    .iter()
    .filter_map(|(a, b)| Some((d.offset_of("runtime.p", a)?, d.offset_of("runtime.p", b)?)))
    .filter(|(a, b)| a < b)
    .collect();
    let g_words = [
        "stack.lo",
        "stack.hi",
        "stackguard0",
        "stackguard1",
        "sched.sp",
        "sched.pc",
        "sched.g",
        "sched.ret",
        "sched.lr",
        "sched.bp",
        "syscallsp",
        "syscallpc",
        "stktopsp",
        "gopc",
        "startpc",
        "sigpc",
        "sigcode0",
        "sigcode1",
    ];
    let g_skip: Vec<(u64, u64)> = g_words
        .iter()
        .filter_map(|f| d.offset_of("runtime.g", f))
        .map(|o| (o, o + 8))
        .collect();
    let ps = model.ps.iter().map(|p| (p.addr, &p_skip));
    // Every g struct: allgs, and each M's g0 and gsignal (not in allgs).
    let ms = model.ms.iter().flat_map(|m| [m.g0, m.gsignal]);
    let gs = gaddrs
        .iter()
        .copied()
        .chain(ms)
        .filter(|&a| a != 0)
        .map(|a| (a, &g_skip));
    for (addr, skip) in ps.chain(gs) {
        if let Some((i, row)) = masked_row(mem, objs, addr, skip) {
            out.insert(i, row);
        }
    }
    out
}

/// The objects the words of the object at `addr` point to, except the words
/// at the `skip` offsets (relative to `addr`).
fn masked_row<M: Memory>(
    mem: &M,
    objs: &HeapObjects,
    addr: u64,
    skip: &[(u64, u64)],
) -> Option<(u32, Vec<u32>)> {
    let i = find_object(objs, addr)?;
    let o = &objs.objects[i as usize];
    let b = mem.read_vec(o.addr, o.size.min(1 << 20) as usize).ok()?;
    let base = addr - o.addr;
    let mut row = Vec::new();
    for (k, w) in b.chunks_exact(8).enumerate() {
        let at = (k as u64 * 8).wrapping_sub(base);
        if skip.iter().any(|&(a, e)| at >= a && at < e) {
            continue;
        }
        let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        if let Some(j) = find_object(objs, v).filter(|&j| j != i) {
            row.push(j);
        }
    }
    row.sort_unstable();
    row.dedup();
    Some((i, row))
}

/// Every object of `s` and its pointer graph; an error naming how to
/// capture one when the snapshot is not heap-complete.
fn graph(s: &Session) -> Result<(HeapObjects, HeapGraph)> {
    let objs = heap_objects(&s.target, &s.mem)?;
    if objs.spans_in_use == 0 || objs.spans_missing * 2 > objs.spans_in_use {
        return Err(lacks_heap_error(&objs));
    }
    let scan = scan_roots(&s.target, &s.mem, &objs);
    let g = HeapGraph::build(&s.target, &s.mem, &objs, scan);
    Ok((objs, g))
}

/// Whether `s` holds the heap (for reports that add leaks when it does):
/// the memory of most in-use spans is in it. Cheap: span structs only, no
/// object walk.
pub fn heap_complete(s: &Session) -> bool {
    let Ok(ht) = crate::goruntime::heap::HeapTarget::new(&s.target) else {
        return false;
    };
    let ranges = ht.heap_span_ranges(&s.target, &s.mem);
    let present = ranges
        .iter()
        .filter(|&&(a, l)| {
            l > 0
                && s.mem.read_vec(a, 1).is_ok()
                && s.mem.read_vec(a.wrapping_add(l - 1), 1).is_ok()
        })
        .count();
    !ranges.is_empty() && present * 2 > ranges.len()
}

/// The number of leaked goroutines when `s` is heap-complete.
pub fn leaked_count(s: &Session, model: &Model) -> Option<usize> {
    if !heap_complete(s) {
        return None;
    }
    find_leaks(s, model).ok().map(|l| l.leaked.len())
}

/// The leaked goroutines of `s` (goroutines from `model`).
pub fn find_leaks(s: &Session, model: &Model) -> Result<Leaks> {
    let (objs, graph) = graph(s)?;
    let t: &Target = &s.target;
    let l = SudogLayout::new(t).ok_or_else(|| {
        anyhow::anyhow!("runtime.sudog layout unknown: cannot tell what goroutines wait on")
    })?;
    let mut sema = sema_tree(&l, &s.mem);
    // Semaphore waiters the tree did not give (no DWARF for it).
    let unknown: HashSet<u64> = model
        .goroutines
        .iter()
        .filter(|g| is_sync_wait(reason_of(g)) && g.g.waiting == 0 && !sema.contains_key(&g.g.addr))
        .map(|g| g.g.addr)
        .collect();
    if !unknown.is_empty() {
        sema.extend(sudogs_by_scan(&l, &s.mem, &objs, &unknown));
    }
    let mut cut: HashMap<u32, Vec<u32>> = HashMap::new();
    let rows = if graph.conservative_objects > 0 {
        let gaddrs = s.runtime().allg_addrs().unwrap_or_default();
        runtime_rows(t, &s.mem, &objs, model, &gaddrs)
    } else {
        HashMap::new()
    };
    let blocks: Vec<Block> = model
        .goroutines
        .iter()
        .map(|g| classify(&l, &s.mem, &objs, g, &sema, &mut cut))
        .collect();
    let mut roots_of: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut seen = vec![false; graph.objects];
    let mut start: Vec<u32> = Vec::new();
    for (r, root) in graph.roots.iter().enumerate() {
        match root.goroutine {
            Some(id) => roots_of.entry(id).or_default().push(r),
            None => start.extend_from_slice(graph.root_out.row(r)),
        }
    }
    let stack_of = |id: u64| -> Vec<u32> {
        roots_of
            .get(&id)
            .into_iter()
            .flatten()
            .flat_map(|&r| graph.root_out.row(r).iter().copied())
            .collect()
    };
    let mut pending: Vec<usize> = Vec::new();
    for (k, b) in blocks.iter().enumerate() {
        match b {
            Block::Runnable => start.extend(stack_of(model.goroutines[k].g.goid)),
            _ => pending.push(k),
        }
    }
    let candidates = pending.len();
    let goids: HashSet<u64> = model.goroutines.iter().map(|g| g.g.goid).collect();
    // Stacks of goroutines the model did not list: may run.
    for (id, rs) in &roots_of {
        if !goids.contains(id) {
            for &r in rs {
                start.extend_from_slice(graph.root_out.row(r));
            }
        }
    }
    let edges = Edges {
        graph: &graph,
        cut,
        rows,
    };
    mark_from(&edges, &mut seen, start);
    let mut rounds = 1;
    loop {
        let (woken, rest): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&k| match &blocks[k] {
                Block::On(v) => v.iter().any(|&o| seen[o as usize]),
                _ => false,
            });
        if woken.is_empty() {
            break;
        }
        pending = rest;
        rounds += 1;
        let start: Vec<u32> = woken
            .iter()
            .flat_map(|&k| stack_of(model.goroutines[k].g.goid))
            .collect();
        mark_from(&edges, &mut seen, start);
    }
    let mut leaked: Vec<LeakedGoroutine> = pending
        .iter()
        .map(|&k| &model.goroutines[k])
        .filter(|g| !(g.g.goid == 1 && reason_of(g) == "select (no cases)"))
        .map(describe)
        .collect();
    leaked.sort_by_key(|g| g.id);
    let mut warnings = graph.warnings.clone();
    warnings.retain(|w| !w.contains("scanned conservatively"));
    if graph.conservative {
        warnings.push(
            "some pointers found by conservative scanning: a stale word can keep a leaked \
             goroutine's channel reachable (a leak missed, never one invented)"
                .to_string(),
        );
    }
    Ok(Leaks {
        groups: group(&leaked),
        leaked,
        candidates,
        rounds,
        warnings,
    })
}

fn frame_text(f: &crate::goruntime::traceback::Frame) -> String {
    format!("{} {}:{}", f.function, f.file, f.line)
}

fn describe(g: &Goroutine) -> LeakedGoroutine {
    let frames: Vec<String> = g.stack.frames.iter().map(frame_text).collect();
    let site = g
        .stack
        .frames
        .iter()
        .find(|f| {
            !f.function.starts_with("runtime.")
                && !f.function.starts_with("sync.")
                && !f.function.starts_with("internal/sync.")
        })
        .or_else(|| g.stack.frames.first())
        .map(frame_text)
        .unwrap_or_else(|| "?".to_string());
    LeakedGoroutine {
        id: g.g.goid,
        wait_reason: reason_of(g).to_string(),
        created_by: g.created_by.as_ref().map(|c| c.function.to_string()),
        created_at: g
            .created_by
            .as_ref()
            .map(|c| format!("{}:{}", c.file, c.line)),
        blocking_site: site,
        frames,
    }
}

/// Leaked goroutines by creation site and blocking site, largest first.
pub fn group(leaked: &[LeakedGoroutine]) -> Vec<LeakGroup> {
    let mut m: HashMap<(Option<String>, String), LeakGroup> = HashMap::new();
    for g in leaked {
        let e = m
            .entry((g.created_by.clone(), g.blocking_site.clone()))
            .or_insert_with(|| LeakGroup {
                count: 0,
                created_by: g.created_by.clone(),
                blocking_site: g.blocking_site.clone(),
                wait_reason: g.wait_reason.clone(),
                ids: Vec::new(),
            });
        e.count += 1;
        e.ids.push(g.id);
    }
    let mut v: Vec<LeakGroup> = m.into_values().collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.blocking_site.cmp(&b.blocking_site))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert!(is_chan_wait("select"));
        assert!(!is_chan_wait("select (no cases)"));
        assert!(is_never("chan receive (nil chan)"));
        assert!(is_sync_wait("sync.WaitGroup.Wait"));
        assert!(!is_sync_wait("sleep"));
    }

    #[test]
    fn groups_by_sites() {
        let g = |id, site: &str| LeakedGoroutine {
            id,
            wait_reason: "chan receive".into(),
            created_by: Some("main.f".into()),
            created_at: None,
            blocking_site: site.into(),
            frames: Vec::new(),
        };
        let v = group(&[g(3, "a"), g(4, "b"), g(5, "b")]);
        assert_eq!(v[0].count, 2);
        assert_eq!(v[0].ids, vec![4, 5]);
        assert_eq!(v[1].blocking_site, "a");
    }
}
