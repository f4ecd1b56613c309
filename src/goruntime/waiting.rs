//! What a blocked goroutine waits on: the channel(s) of a channel operation
//! or select, the semaphore of a sync.Mutex / RWMutex / WaitGroup wait, the
//! notify list of a sync.Cond.
//!
//! Sources (runtime/chan.go, select.go, sema.go):
//! - chan send/receive and select park with `g.waiting` = a list of sudogs
//!   linked by `waitlink`, each with `c` = the hchan;
//! - semacquire parks a sudog in `semtable` (a treap of sudogs keyed by
//!   `elem` = the semaphore address, same-address waiters chained by
//!   `waitlink`); from Go 1.26 it also sets `g.waiting` to that sudog;
//! - notifyListWait (sync.Cond) sets `g.waiting` with `elem` = the notify list
//!   from Go 1.26; before that the sudog is reachable only from the Cond.
//!
//! From Go 1.26 `sudog.elem` and `sudog.c` are `maybeTraceablePtr`s whose
//! `vu` word is the address. All layouts come from DWARF by field name.

use super::version::status::{G_SCAN, G_WAITING};
use super::{Target, G};
use crate::memory::{MemResult, Memory};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Sudogs followed at most through one `g.waiting` list (select cases).
const MAX_SELECT_CASES: usize = 65_536;
/// Sudogs visited at most in the semaphore tree.
const MAX_SEMA_NODES: usize = 1_000_000;
/// `runtime.semTabSize`, stable since Go 1.0.
const SEM_TAB_SIZE: u64 = 251;

/// Byte offsets of `runtime.sudog`, `runtime.hchan` and the semaphore table.
#[derive(Debug, Clone)]
pub struct WaitLayout {
    pub sudog_size: u64,
    pub sg_g: u64,
    pub sg_next: u64,
    pub sg_prev: u64,
    pub sg_elem: u64,
    pub sg_waitlink: u64,
    pub sg_c: u64,
    pub sg_is_select: Option<u64>,
    pub hchan_size: u64,
    pub qcount: u64,
    pub dataqsiz: u64,
    pub elemtype: u64,
    pub closed: Option<u64>,
    /// Runtime address, element stride and offset of `treap` in an element.
    pub semtable: Option<(u64, u64, u64)>,
    /// Offset of `notify` in sync.Cond (to name the Cond from its list).
    pub cond_notify: Option<u64>,
}

impl WaitLayout {
    pub fn new(t: &Target) -> Option<WaitLayout> {
        let layouts = super::version::Layouts::for_binary(&t.bin).ok()?;
        let d = layouts.source();
        let off = |ty: &str, paths: &[&str]| paths.iter().find_map(|p| d.offset_of(ty, p));
        let sg = "runtime.sudog";
        let hc = "runtime.hchan";
        let semtable = (|| {
            let addr = super::version::globals::global_addr(&t.bin, "runtime.semtable")?;
            let dw = layouts.dwarf();
            let size = dw
                .and_then(|dw| dw.global("runtime.semtable"))
                .and_then(|g| g.ty)
                .and_then(|ty| dw?.resolve(ty))
                .map(|ty| ty.size)
                .filter(|&s| s >= SEM_TAB_SIZE && s % SEM_TAB_SIZE == 0)
                .unwrap_or(SEM_TAB_SIZE * 64);
            let treap = d.offset_of("runtime.semaRoot", "treap")?;
            Some((t.rt(addr), size / SEM_TAB_SIZE, treap))
        })();
        Some(WaitLayout {
            sudog_size: d.size_of(sg)?,
            sg_g: off(sg, &["g"])?,
            sg_next: off(sg, &["next"])?,
            sg_prev: off(sg, &["prev"])?,
            sg_elem: off(sg, &["elem.vu", "elem"])?,
            sg_waitlink: off(sg, &["waitlink"])?,
            sg_c: off(sg, &["c.vu", "c.maybeTraceablePtr.vu", "c"])?,
            sg_is_select: off(sg, &["isSelect"]),
            hchan_size: d.size_of(hc)?,
            qcount: off(hc, &["qcount"])?,
            dataqsiz: off(hc, &["dataqsiz"])?,
            elemtype: off(hc, &["elemtype"])?,
            closed: off(hc, &["closed"]),
            semtable,
            cond_notify: d.offset_of("sync.Cond", "notify"),
        })
    }
}

/// A channel as seen from a waiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChanInfo {
    /// Address of the `hchan`, hex.
    pub addr: String,
    /// Element type, e.g. `int`, `*main.T` (None when unknown).
    pub elem_type: Option<String>,
    pub len: u64,
    pub cap: u64,
    pub closed: bool,
}

/// The object a waiting goroutine is blocked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitingOn {
    /// A channel send or receive.
    Chan(ChanInfo),
    /// A select over these channels (one per case with a channel).
    Select { chans: Vec<ChanInfo> },
    /// A runtime semaphore (sync.Mutex, RWMutex, WaitGroup...): its address.
    Semaphore { addr: String },
    /// A sync.Cond: the address of its notify list, and of the Cond itself
    /// when the layout of sync.Cond is known.
    Cond {
        notify_list: String,
        cond: Option<String>,
    },
}

impl ChanInfo {
    fn describe(&self) -> String {
        format!(
            "chan {} (chan {}, len {}, cap {}{})",
            self.addr,
            self.elem_type.as_deref().unwrap_or("?"),
            self.len,
            self.cap,
            if self.closed { ", closed" } else { "" }
        )
    }
}

impl WaitingOn {
    /// One-line description: `chan 0xc000123000 (chan int, len 0, cap 0)`.
    pub fn describe(&self) -> String {
        match self {
            WaitingOn::Chan(c) => c.describe(),
            WaitingOn::Select { chans } => {
                let v: Vec<String> = chans.iter().map(|c| c.describe()).collect();
                format!("select on {}", v.join(", "))
            }
            WaitingOn::Semaphore { addr } => format!("semaphore {addr}"),
            WaitingOn::Cond { notify_list, cond } => match cond {
                Some(c) => format!("sync.Cond {c} (notify list {notify_list})"),
                None => format!("sync.Cond notify list {notify_list}"),
            },
        }
    }
}

fn hex(a: u64) -> String {
    format!("{a:#x}")
}

fn is_sema_reason(r: &str) -> bool {
    matches!(
        r,
        "semacquire"
            | "sync.Mutex.Lock"
            | "sync.RWMutex.RLock"
            | "sync.RWMutex.Lock"
            | "sync.WaitGroup.Wait"
    )
}

fn is_chan_reason(r: &str) -> bool {
    r.starts_with("chan send") || r.starts_with("chan receive") || r.starts_with("select")
}

/// Decoder bound to a memory.
pub struct Waits<'a, M: Memory> {
    pub t: &'a Target,
    pub l: &'a WaitLayout,
    pub mem: M,
    /// Resolve element type names (off during capture: only memory matters).
    pub names: bool,
}

impl<M: Memory> Waits<'_, M> {
    /// Semaphore waiters: g address → semaphore address, from `semtable`.
    /// Errors are skipped (a damaged subtree is simply not followed).
    pub fn sema_waiters(&self) -> HashMap<u64, u64> {
        let mut out = HashMap::new();
        let Some((base, stride, treap)) = self.l.semtable else {
            return out;
        };
        let mut seen = HashSet::new();
        let mut todo = Vec::new();
        for i in 0..SEM_TAB_SIZE {
            if let Ok(p) = self.mem.ptr(
                base.wrapping_add(i.wrapping_mul(stride))
                    .wrapping_add(treap),
            ) {
                if p != 0 {
                    todo.push(p);
                }
            }
        }
        while let Some(s) = todo.pop() {
            if seen.len() >= MAX_SEMA_NODES || !seen.insert(s) {
                continue;
            }
            let Ok(b) = self.mem.read_vec(s, self.l.sudog_size as usize) else {
                continue;
            };
            let g = le64(&b, self.l.sg_g);
            let elem = le64(&b, self.l.sg_elem);
            if g != 0 && elem != 0 {
                out.insert(g, elem);
            }
            for o in [self.l.sg_prev, self.l.sg_next, self.l.sg_waitlink] {
                let p = le64(&b, o);
                if p != 0 {
                    todo.push(p);
                }
            }
        }
        out
    }

    fn chan(&self, c: u64) -> MemResult<ChanInfo> {
        let b = self.mem.read_vec(c, self.l.hchan_size as usize)?;
        let et = le64(&b, self.l.elemtype);
        Ok(ChanInfo {
            addr: hex(c),
            elem_type: if self.names { self.type_name(et) } else { None },
            len: le64(&b, self.l.qcount),
            cap: le64(&b, self.l.dataqsiz),
            closed: self.l.closed.map(|o| le32(&b, o) != 0).unwrap_or(false),
        })
    }

    /// Name of the runtime type descriptor at runtime address `ty`: DWARF
    /// first, then the descriptor's own name string.
    pub fn type_name(&self, ty: u64) -> Option<String> {
        if ty == 0 {
            return None;
        }
        let link = ty.wrapping_sub(self.t.bias);
        if let Some(d) = self.t.bin.dwarf() {
            if let Some(n) = d.type_by_runtime_addr(link).and_then(|r| d.type_name(r)) {
                if !n.is_empty() {
                    return Some(n);
                }
            }
        }
        self.descriptor_name(ty)
    }

    /// The name in the runtime type descriptor at `ty`.
    fn descriptor_name(&self, ty: u64) -> Option<String> {
        super::descriptor_name(self.t, &self.mem, ty).map(|(name, _)| name)
    }

    /// What `g` waits on, if it is waiting on an object gospy can name.
    /// `sema`: the result of [`Waits::sema_waiters`].
    pub fn waiting_on(
        &self,
        g: &G,
        reason: Option<&str>,
        sema: &HashMap<u64, u64>,
    ) -> Option<WaitingOn> {
        if g.status != G_WAITING {
            return None;
        }
        let reason = reason.unwrap_or("");
        if g.waiting != 0 {
            // The g.waiting list: sudogs linked by waitlink.
            let mut sudogs = Vec::new();
            let mut seen = HashSet::new();
            let mut cur = g.waiting;
            while cur != 0 && sudogs.len() < MAX_SELECT_CASES && seen.insert(cur) {
                let Ok(b) = self.mem.read_vec(cur, self.l.sudog_size as usize) else {
                    break;
                };
                sudogs.push(b);
                cur = le64(sudogs.last()?, self.l.sg_waitlink);
            }
            let first = sudogs.first()?;
            if is_chan_reason(reason) || le64(first, self.l.sg_c) != 0 {
                let chans: Vec<ChanInfo> = sudogs
                    .iter()
                    .filter_map(|b| {
                        let c = le64(b, self.l.sg_c);
                        (c != 0).then(|| self.chan(c).ok()).flatten()
                    })
                    .collect();
                let is_select = reason.starts_with("select")
                    || self
                        .l
                        .sg_is_select
                        .is_some_and(|o| first.get(o as usize) == Some(&1));
                if is_select {
                    return (!chans.is_empty()).then_some(WaitingOn::Select { chans });
                }
                return chans.into_iter().next().map(WaitingOn::Chan);
            }
            let elem = le64(first, self.l.sg_elem);
            if elem != 0 {
                if reason == "sync.Cond.Wait" {
                    return Some(self.cond(elem));
                }
                if is_sema_reason(reason) {
                    return Some(WaitingOn::Semaphore { addr: hex(elem) });
                }
            }
        }
        if is_sema_reason(reason) {
            if let Some(&a) = sema.get(&g.addr) {
                return Some(WaitingOn::Semaphore { addr: hex(a) });
            }
        }
        None
    }

    fn cond(&self, notify_list: u64) -> WaitingOn {
        WaitingOn::Cond {
            notify_list: hex(notify_list),
            cond: self.l.cond_notify.map(|o| hex(notify_list.wrapping_sub(o))),
        }
    }
}

use super::gotypes::FxHashSet;
use super::{le32, le64};

/// One object a capture must read to decode what goroutines wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitObj {
    /// A sudog of a `g.waiting` list (follow `waitlink`, read `c`).
    Listed(u64),
    /// A sudog of the semaphore tree (follow `prev`, `next`, `waitlink`).
    Tree(u64),
    /// An hchan (nothing further).
    Chan(u64),
}

/// For capture: a breadth-first walk over what the goroutines wait on
/// (sudogs, hchans, the semaphore tree), each object decoded once. Each
/// [`step`](WaitWalk::step) expands what memory already holds and returns
/// the ranges to read before the next; it returns none when done. This is
/// the set of objects [`Waits::waiting_on`] and [`Waits::sema_waiters`]
/// read, so analysis finds them all in the snapshot.
pub struct WaitWalk<'a> {
    l: &'a WaitLayout,
    pending: Vec<WaitObj>,
    seen: FxHashSet<u64>,
    /// Ranges already asked for: asked again, they are unreadable.
    asked: FxHashSet<u64>,
    listed: usize,
    tree: usize,
    buf: Vec<u8>,
}

impl<'a> WaitWalk<'a> {
    /// Start from the waiting goroutines among `gaddrs` and the semaphore
    /// table's roots, read from `mem` (which holds the g structs and the
    /// data segment).
    pub fn new<M: Memory>(t: &Target, l: &'a WaitLayout, mem: M, gaddrs: &[u64]) -> WaitWalk<'a> {
        let gl = &t.layout.g;
        let mut sudogs = Vec::new();
        let mut gb = vec![0u8; gl.size as usize];
        for &a in gaddrs {
            let b = match mem.bytes_at(a, gb.len()) {
                Some(b) => b,
                None => {
                    if mem.read_exact(a, &mut gb).is_err() {
                        continue;
                    }
                    &gb[..]
                }
            };
            if le32(b, gl.atomicstatus) & !G_SCAN != G_WAITING {
                continue;
            }
            sudogs.push(le64(b, gl.waiting));
        }
        WaitWalk::from_sudogs(l, mem, &sudogs)
    }

    /// Start from `sudogs`, the `g.waiting` of waiting goroutines (0:
    /// none), and the semaphore table's roots, read from `mem` (which holds
    /// the data segment).
    pub fn from_sudogs<M: Memory>(l: &'a WaitLayout, mem: M, sudogs: &[u64]) -> WaitWalk<'a> {
        let mut w = WaitWalk {
            l,
            pending: Vec::with_capacity(sudogs.len()),
            seen: FxHashSet::with_capacity_and_hasher(2 * sudogs.len(), Default::default()),
            asked: FxHashSet::with_capacity_and_hasher(2 * sudogs.len(), Default::default()),
            listed: 0,
            tree: 0,
            buf: Vec::new(),
        };
        for &s in sudogs {
            if s != 0 && w.seen.insert(s) {
                w.pending.push(WaitObj::Listed(s));
            }
        }
        if let Some((base, stride, treap)) = l.semtable {
            for i in 0..SEM_TAB_SIZE {
                if let Ok(p) = mem.ptr(
                    base.wrapping_add(i.wrapping_mul(stride))
                        .wrapping_add(treap),
                ) {
                    if p != 0 && w.seen.insert(p) {
                        w.pending.push(WaitObj::Tree(p));
                    }
                }
            }
        }
        w
    }

    /// Expand every pending object `mem` holds; return the ranges still
    /// missing (sorted, each asked once). Empty: the walk is complete.
    pub fn step<M: Memory>(&mut self, mem: M) -> Vec<(u64, u64)> {
        let mut want = Vec::new();
        let mut waiting = Vec::new();
        // Objects expanded here may be in memory already: go on until all
        // that is left is missing.
        while !self.pending.is_empty() {
            self.expand(&mem, &mut want, &mut waiting);
        }
        self.pending = waiting;
        want.sort_unstable();
        want
    }

    /// One pass over `pending`: missing objects go to `want` (once) and
    /// `waiting`; what they point to becomes the new `pending`.
    fn expand<M: Memory>(
        &mut self,
        mem: &M,
        want: &mut Vec<(u64, u64)>,
        waiting: &mut Vec<WaitObj>,
    ) {
        let l = self.l;
        let mut next = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        for obj in pending {
            let (addr, size) = match obj {
                WaitObj::Listed(a) | WaitObj::Tree(a) => (a, l.sudog_size),
                WaitObj::Chan(a) => (a, l.hchan_size),
            };
            self.buf.resize(size as usize, 0);
            if mem.read_exact(addr, &mut self.buf).is_err() {
                if self.asked.insert(addr) {
                    want.push((addr, size));
                    waiting.push(obj);
                }
                continue;
            }
            let b = &self.buf;
            match obj {
                WaitObj::Listed(_) => {
                    let c = le64(b, l.sg_c);
                    if c != 0 && self.seen.insert(c) {
                        next.push(WaitObj::Chan(c));
                    }
                    let w = le64(b, l.sg_waitlink);
                    if w != 0 && self.listed < MAX_SELECT_CASES * 4 && self.seen.insert(w) {
                        self.listed += 1;
                        next.push(WaitObj::Listed(w));
                    }
                }
                WaitObj::Tree(_) => {
                    for o in [l.sg_prev, l.sg_next, l.sg_waitlink] {
                        let p = le64(b, o);
                        if p != 0 && self.tree < MAX_SEMA_NODES && self.seen.insert(p) {
                            self.tree += 1;
                            next.push(WaitObj::Tree(p));
                        }
                    }
                }
                WaitObj::Chan(_) => {}
            }
        }
        self.pending = next;
    }
}

impl super::bulk::BulkWalk for WaitWalk<'_> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        WaitWalk::step(self, mem)
    }
}
