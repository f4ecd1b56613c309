//! The goroutine model: every goroutine of a session decoded (status,
//! stack, labels, what it waits on), with the scheduler's Ms and Ps.

use super::session::Session;
use crate::goruntime::traceback::{CreatedBy, Frame, Stack};
use crate::goruntime::version::status::G_LEAKED;
use crate::goruntime::{labels, Sched, Target, G, G_SYSCALL, G_WAITING, M, P};
use crate::memory::Memory;
use crate::model::Regs;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Decoded label sets by `g.labels` pointer, shared by the goroutines of a model.
type LabelCache = std::sync::Mutex<HashMap<u64, Result<BTreeMap<String, String>, String>>>;

/// One goroutine, fully decoded.
#[derive(Debug, Clone)]
pub struct Goroutine {
    pub g: G,
    /// Text the runtime prints inside `[...]` (status or wait reason).
    pub state: Arc<str>,
    pub status: Arc<str>,
    pub wait_reason: Option<Arc<str>>,
    pub wait_minutes: u64,
    pub wait_ns: Option<u64>,
    pub locked_to_thread: bool,
    pub system: bool,
    pub stack: Stack,
    pub created_by: Option<CreatedBy>,
    pub labels: BTreeMap<String, String>,
    /// Id of the M running it, if any.
    pub m_id: Option<i64>,
    pub warnings: Vec<String>,
    /// The channel, semaphore or Cond it is blocked on, when known.
    pub waiting_on: Option<crate::goruntime::waiting::WaitingOn>,
    /// Changed while a `--non-blocking` capture read it: no frames shown.
    pub unstable: bool,
}

/// Everything the reports need.
pub struct Model {
    pub goroutines: Vec<Goroutine>,
    pub ms: Vec<M>,
    pub ps: Vec<P>,
    pub sched: Option<Sched>,
    pub gomaxprocs: Option<i32>,
    pub ncpu: Option<i32>,
    /// Like runtime.NumGoroutine(): allglen - free gs - system gs.
    pub num_goroutine: Option<i64>,
    pub allglen: u64,
    pub uptime_ns: Option<u64>,
    pub warnings: Vec<String>,
    /// Built with frame arguments ([`BuildOptions::args`]).
    pub has_args: bool,
    /// Whether the runtime prints pprof labels in goroutine headers (its
    /// `tracebacklabels` setting, read from memory; Go 1.26+).
    pub traceback_labels: bool,
}

/// Per-worker caches of [`Model::build_with`] (rayon `map_init`: no locks,
/// at worst one copy per worker job of what they hold).
#[derive(Default)]
struct LocalCaches {
    /// (PC, line) of each frame → shared frames: goroutines parked in the
    /// same place have the same frames, and without arguments (the only
    /// per-goroutine part besides SP) one copy serves them all, which at
    /// 100k goroutines saves most of the model's memory. Shared frames
    /// carry `sp` 0.
    stacks: HashMap<Vec<(u64, u32)>, Arc<[Frame]>, foldhash::fast::RandomState>,
    /// `created by` by creating PC: goroutines started by the same `go`
    /// statement share everything but the parent's id.
    creators: HashMap<u64, Option<CreatedBy>, foldhash::fast::RandomState>,
    /// Status and wait-reason strings by (status, wait reason).
    states: HashMap<(u32, u8), StateStrings, foldhash::fast::RandomState>,
}

type StateStrings = (Arc<str>, Option<Arc<str>>, Arc<str>);

impl LocalCaches {
    fn intern(&mut self, frames: &Arc<[Frame]>) -> Arc<[Frame]> {
        let key: Vec<(u64, u32)> = frames.iter().map(|f| (f.pc, f.line)).collect();
        // Frames from one PC share their strings: pointer equality first.
        let same_str = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        let same = |a: &Frame, b: &Frame| {
            same_str(&a.function, &b.function)
                && same_str(&a.file, &b.file)
                && a.line == b.line
                && a.inlined == b.inlined
                && a.pc == b.pc
                && a.offset == b.offset
                && a.args == b.args
                && a.shown == b.shown
        };
        if let Some(e) = self.stacks.get(&key) {
            if e.len() == frames.len() && e.iter().zip(frames.iter()).all(|(a, b)| same(a, b)) {
                return e.clone();
            }
            return frames.clone();
        }
        let shared: Arc<[Frame]> = frames
            .iter()
            .map(|f| Frame { sp: 0, ..f.clone() })
            .collect();
        self.stacks.insert(key, shared.clone());
        shared
    }

    /// (status, wait reason, state) strings, shared by goroutines alike.
    fn states(&mut self, t: &Target, g: &G) -> (Arc<str>, Option<Arc<str>>, Arc<str>) {
        self.states
            .entry((g.status, g.waitreason))
            .or_insert_with(|| {
                let status: Arc<str> = Arc::from(t.status_string(g.status));
                // A goroutine the runtime found leaked (Go 1.26+) keeps its
                // wait reason; the traceback header adds " (leaked)".
                let leaked = g.status == G_LEAKED;
                let wait_reason: Option<Arc<str>> = ((g.status == G_WAITING || leaked)
                    && g.waitreason != 0)
                    .then(|| Arc::from(t.wait_reason_string(g.waitreason)));
                let mut state = wait_reason.clone().unwrap_or_else(|| status.clone());
                if leaked {
                    state = Arc::from(format!("{state} (leaked)"));
                }
                (status, wait_reason, state)
            })
            .clone()
    }

    fn created_by(&mut self, t: &Target, g: &G) -> Option<CreatedBy> {
        if g.goid == 1 {
            return None;
        }
        let c = self
            .creators
            .entry(g.gopc)
            .or_insert_with(|| t.created_by(g))
            .clone();
        c.map(|mut c| {
            c.goroutine = (g.parent_goid != 0).then_some(g.parent_goid);
            c
        })
    }
}

/// What [`Model::build_with`] decodes beyond the essentials.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Function argument words of every frame (only `dump` prints them;
    /// formatting them is a fifth of the work at 100k goroutines).
    pub args: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { args: true }
    }
}

impl Model {
    /// Without frame arguments: for reports that never print them.
    pub fn build_lean(s: &Session) -> Result<Model> {
        Self::build_with(s, BuildOptions { args: false })
    }

    /// Everything, frame arguments included.
    pub fn build(s: &Session) -> Result<Model> {
        Self::build_with(s, BuildOptions::default())
    }

    pub fn build_with(s: &Session, opts: BuildOptions) -> Result<Model> {
        let rt = s.runtime();
        let t = &s.target;
        let mut warnings = s.warnings.clone();
        warnings.extend(rt.check_recovered_globals());
        let gaddrs = rt.allg_addrs()?;
        let (ms, w) = rt.ms().unwrap_or_default();
        warnings.extend(w);
        let (ps, w) = rt
            .ps()
            .unwrap_or_else(|e| (Vec::new(), vec![e.to_string()]));
        warnings.extend(w);
        let sched = rt.sched().map_err(|e| warnings.push(e.to_string())).ok();
        let gomaxprocs = rt.gomaxprocs().ok();
        let fing_user = rt.fing_running_user();
        let regs_by_tid: HashMap<u64, Regs> = s
            .meta
            .threads
            .iter()
            .filter_map(|th| th.regs.map(|r| (th.tid as u64, r)))
            .collect();
        let m_by_curg: HashMap<u64, &M> = ms
            .iter()
            .filter(|m| m.curg != 0)
            .map(|m| (m.curg, m))
            .collect();
        let m_by_addr: HashMap<u64, &M> = ms.iter().map(|m| (m.addr, m)).collect();
        let now = s.meta.mono_time_ns as i64;
        // Shared work budgets (hostile input): frames walked, label bytes.
        let captured = s.mem.first.captured_bytes().unwrap_or(u64::MAX / 2);
        let budget = crate::goruntime::traceback::FrameBudget::for_memory(captured);
        // Goroutines share label sets (a child inherits its parent's
        // pointer), decoded once each; all of them together cannot
        // legitimately hold more than was captured.
        let label_bytes =
            crate::goruntime::traceback::FrameBudget::new(captured.saturating_add(16 << 20));
        let label_cache: LabelCache = Default::default();
        let redacted = s.meta.flags.redacted;
        let wait_layout = crate::goruntime::waiting::WaitLayout::new(t);
        let waits = wait_layout
            .as_ref()
            .map(|l| crate::goruntime::waiting::Waits {
                t,
                l,
                mem: &rt.mem,
                names: true,
            });
        let sema = waits.as_ref().map(|w| w.sema_waiters()).unwrap_or_default();
        let unstable: HashSet<u64> = s.meta.flags.unstable.iter().map(|u| u.g).collect();
        let non_blocking = s.meta.flags.non_blocking;

        // Indexed `map` (not `filter_map`): rayon writes each result straight
        // into one allocation, and dropping the dead ones below reuses it in
        // place; `filter_map` would grow and copy ~50 MB at 100k goroutines.
        let goroutines: Vec<Option<Goroutine>> = gaddrs
            .par_iter()
            .map_init(LocalCaches::default, |caches, &a| {
                let g = match rt.read_g(a) {
                    Ok(g) => g,
                    Err(_) => return None,
                };
                if g.is_dead() {
                    return None;
                }
                let m = m_by_curg.get(&a).copied().filter(|m| m.curg == a);
                let regs = m.and_then(|m| regs_by_tid.get(&m.procid));
                let mut is_unstable = unstable.contains(&a);
                let mut stack = if is_unstable {
                    crate::goruntime::traceback::Stack {
                        frames: Arc::from([]),
                        unavailable: Some(crate::model::UNSTABLE_STACK.into()),
                        error: None,
                        reached_top: false,
                    }
                } else {
                    t.unwind_budgeted(&rt.mem, &g, m, regs, &budget, opts.args)
                };
                // Read while running (--non-blocking): a walk that hit a PC
                // outside the text or an sp outside the stack is not shown.
                if non_blocking && !is_unstable {
                    // A walk that ended at a zero return address short of
                    // runtime.goexit read a stack being written.
                    if stack.error.is_none()
                        && !stack.reached_top
                        && stack.unavailable.is_none()
                        && !stack.frames.is_empty()
                    {
                        stack.error = Some("the walk ended before runtime.goexit".into());
                    }
                    if let Some(e) = stack.error.take() {
                        is_unstable = true;
                        stack.frames = Arc::from([]);
                        stack.unavailable = Some(format!("{} ({e})", crate::model::UNSTABLE_STACK));
                    }
                }
                if redacted && stack.frames.iter().any(|f| f.args.is_some()) {
                    // Argument words were dropped: print `(...)`, not zeros.
                    let mut frames = stack.frames.to_vec();
                    frames.iter_mut().for_each(|f| f.args = None);
                    stack.frames = frames.into();
                }
                if !opts.args {
                    stack.frames = caches.intern(&stack.frames);
                }
                let (status, wait_reason, state) = caches.states(t, &g);
                let waiting = (g.status == G_WAITING || g.status == G_SYSCALL) && g.waitsince != 0;
                let wait_ns =
                    (waiting && now > g.waitsince).then(|| now.wrapping_sub(g.waitsince) as u64);
                let mut gw = Vec::new();
                let cached = if g.labels == 0 {
                    Some(Ok(BTreeMap::new()))
                } else {
                    label_cache
                        .lock()
                        .ok()
                        .and_then(|c| c.get(&g.labels).cloned())
                };
                let read = cached.unwrap_or_else(|| {
                    let r = labels::read_labels_budgeted(t, &rt.mem, g.labels, &label_bytes);
                    if let Ok(mut c) = label_cache.lock() {
                        c.insert(g.labels, r.clone());
                    }
                    r
                });
                let labels = match read {
                    Ok(l) => l,
                    Err(e) => {
                        gw.push(format!("labels: {e}"));
                        BTreeMap::new()
                    }
                };
                let m_id = if g.m != 0 {
                    m_by_addr.get(&g.m).map(|m| m.id)
                } else {
                    None
                };
                let waiting_on = waits
                    .as_ref()
                    .and_then(|w| w.waiting_on(&g, wait_reason.as_deref(), &sema));
                Some(Goroutine {
                    unstable: is_unstable,
                    waiting_on,
                    state,
                    status,
                    wait_reason,
                    wait_minutes: wait_ns.map(|n| n / 60_000_000_000).unwrap_or(0),
                    wait_ns,
                    locked_to_thread: g.lockedm != 0,
                    system: t.is_system_goroutine(&g, fing_user),
                    created_by: caches.created_by(t, &g),
                    stack,
                    labels,
                    m_id,
                    warnings: gw,
                    g,
                })
            })
            .collect();
        // filter_map, not flatten: only the former collects in place.
        #[allow(clippy::filter_map_identity)]
        let goroutines: Vec<Goroutine> = goroutines.into_iter().filter_map(|g| g).collect();
        let allglen = rt.mem.u64(t.globals.allglen).unwrap_or(0);
        let num_goroutine = sched.as_ref().map(|sc| {
            let pfree: i64 = ps.iter().map(|p| p.gfree_n as i64).sum();
            (allglen as i64)
                .saturating_sub(sc.gfree_n as i64)
                .saturating_sub(sc.ngsys as i64)
                .saturating_sub(pfree)
                .max(1)
        });
        let uptime_ns = rt
            .runtime_init_time()
            .filter(|&v| v > 0 && v < now)
            .map(|v| (now - v) as u64);
        let mut goroutines = goroutines;
        goroutines.sort_by_key(|g| g.g.goid);
        Ok(Model {
            goroutines,
            ncpu: rt.ncpu(),
            ms,
            ps,
            sched,
            gomaxprocs,
            num_goroutine,
            allglen,
            uptime_ns,
            warnings,
            has_args: opts.args,
            traceback_labels: rt.traceback_labels(),
        })
    }

    /// `g`'s frames with their argument words. In a model built without
    /// them ([`BuildOptions::args`] false) the goroutine is walked again,
    /// bounded by its first walk: `dump` renders a batch of goroutines at a
    /// time this way instead of holding every argument string at once.
    pub fn frames_with_args(&self, s: &Session, g: &Goroutine) -> Arc<[Frame]> {
        if self.has_args || g.stack.frames.is_empty() || g.unstable || s.meta.flags.redacted {
            return g.stack.frames.clone();
        }
        let m = self.ms.iter().find(|m| m.curg == g.g.addr);
        let regs = m.and_then(|m| {
            s.meta
                .threads
                .iter()
                .find(|t| t.tid as u64 == m.procid)
                .and_then(|t| t.regs.as_ref())
        });
        let budget = crate::goruntime::traceback::FrameBudget::new(g.stack.frames.len() as u64 + 1);
        let st = s
            .target
            .unwind_budgeted(&s.mem, &g.g, m, regs, &budget, true);
        if st.frames.len() == g.stack.frames.len() {
            st.frames
        } else {
            g.stack.frames.clone()
        }
    }
}
