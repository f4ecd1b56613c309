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

use super::{Target, G, G_WAITING};
use crate::memory::{MemResult, Memory};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

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
        let d = t.bin.dwarf()?;
        let off = |ty: &str, paths: &[&str]| paths.iter().find_map(|p| d.offset_of(ty, p));
        let sg = "runtime.sudog";
        let hc = "runtime.hchan";
        let semtable = (|| {
            let addr = t.bin.global_addr("runtime.semtable")?;
            let size = d
                .global("runtime.semtable")
                .and_then(|g| g.ty)
                .and_then(|ty| d.resolve(ty))
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

use super::{le32, le64};

/// A memory that records the ranges it could not serve (for capture: what to
/// read in the next round).
pub struct Recording<M: Memory> {
    pub inner: M,
    pub missed: Mutex<Vec<(u64, u64)>>,
}

impl<M: Memory> Memory for Recording<M> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        let r = self.inner.read_exact(addr, buf);
        if r.is_err() {
            if let Ok(mut m) = self.missed.lock() {
                m.push((addr, buf.len() as u64));
            }
        }
        r
    }
}

/// For capture: the ranges still missing from `mem` to decode what the
/// goroutines at `gaddrs` wait on (sudogs, hchans, the semaphore tree), and
/// the goroutines that still miss something (the only ones the next round
/// needs to look at again). Call repeatedly, reading what it returns, until
/// it returns no ranges.
pub fn missing_ranges<M: Memory>(
    t: &Target,
    l: &WaitLayout,
    mem: M,
    gaddrs: &[u64],
) -> (Vec<(u64, u64)>, Vec<u64>) {
    let rec = Recording {
        inner: mem,
        missed: Mutex::new(Vec::new()),
    };
    let w = Waits {
        t,
        l,
        mem: &rec,
        names: false,
    };
    let sema = w.sema_waiters();
    let rt = super::Runtime::new(t, &rec.inner);
    let mut again = Vec::new();
    let missed = |rec: &Recording<M>| rec.missed.lock().map(|m| m.len()).unwrap_or(0);
    for &a in gaddrs {
        let Ok(g) = rt.read_g(a) else { continue };
        if g.status != G_WAITING {
            continue;
        }
        let before = missed(&rec);
        let reason = t.wait_reason_string(g.waitreason);
        let _ = w.waiting_on(&g, Some(&reason), &sema);
        if missed(&rec) > before {
            again.push(a);
        }
    }
    let mut m = rec.missed.into_inner().unwrap_or_default();
    m.sort_unstable();
    m.dedup();
    (m, again)
}
