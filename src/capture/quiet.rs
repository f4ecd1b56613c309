//! The quiet pre-read: the pause's biggest reads, every g struct and what
//! waiting goroutines are blocked on, done while the target still runs and
//! kept by the pause when nothing could have changed them since.
//!
//! "Nothing could have changed them" is proven, not guessed:
//! - by the kernel, that no thread of the target ran between the marks
//!   (taken before these reads) and the stop, except sysmon's
//!   ([`ThreadMarks`]: switch-in counts and the stopped threads' registers);
//! - by the runtime, that sysmon made no goroutine runnable meanwhile (it
//!   runs no goroutine code; what it does to goroutines, `injectglist`,
//!   goes through the run queues): every P's run queue, `runnext`, tick
//!   counters and status, and the global run queue's length, the same at
//!   the pause as at the marks ([`SchedFacts`]); and the same allgs.
//!
//! Goroutine memory is written only by threads of the process, so the g
//! structs, sudogs and channels read after the marks are what the pause
//! would read. When any check fails the pause reads them itself, as
//! without the pre-read: a busy target pays the pre-read's time (before the
//! pause), never a wrong capture.

use super::gread::{read_gs, GRound};
use super::plan::{Loaded, Prepared};
use super::rounds::{Assembled, Pool};
use super::stacks::StackPlan;
use super::stats::{CaptureStats, QuietStats};
use super::walk::{PauseReader, MAX_WAIT_ROUNDS};
use crate::goruntime::bulk::drive;
use crate::goruntime::Runtime;
use crate::memory::{Layered, Memory};
use crate::model::RegionKind;
use crate::process::{LiveMemory, ThreadMarks};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// What sysmon changes when it makes goroutines runnable (netpoll, the
/// forced GC, the scavenger): each P's run queue (head, tail, runnext),
/// tick counters and status; the global run queue's length.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SchedFacts {
    runqsize: i32,
    ps: Vec<(u64, u32, u32, u32, u32, u32, u64)>,
}

/// The scheduler facts as `rt`'s memory has them.
pub(super) fn sched_facts<M: Memory>(rt: &Runtime<'_, M>) -> Option<SchedFacts> {
    let runqsize = rt.sched().ok()?.runqsize;
    let mut ps = Vec::new();
    for a in rt.p_addrs().ok()? {
        let p = rt.read_p(a).ok()?;
        ps.push((
            a,
            p.status,
            p.schedtick,
            p.syscalltick,
            p.runqhead,
            p.runqtail,
            p.runnext,
        ));
    }
    Some(SchedFacts { runqsize, ps })
}

/// What the pre-read found (kept by the pause when still true).
pub(super) struct PreGs {
    pub(super) marks: ThreadMarks,
    facts: SchedFacts,
    /// The allgs array as read, and its g's (sorted).
    allgs: Vec<u8>,
    gaddrs: Vec<u64>,
    /// The g structs, as the g round stores them, and its verdicts.
    regions: Vec<(u64, Bytes, RegionKind)>,
    round: GRound,
    /// Blocked-on objects (sudogs, channels, semaphore tree).
    wait: Vec<(u64, Bytes, RegionKind)>,
    /// The heap metadata of both heap stages (`heap::capture_plan`).
    heap: Vec<(u64, Bytes, RegionKind)>,
    /// The stacks plan of the kept g's, and the indices of the g's left to
    /// plan in the pause (`stacks::plan_kept`).
    plan: (StackPlan, Vec<u32>),
    bytes: u64,
    read_calls: usize,
    elapsed: Duration,
}

/// Tries of [`pre_read`] before the stop, while a try fails because a
/// thread ran (a mostly idle service is quiet most of the time) and the
/// tries so far took less than [`RETRY_WITHIN`].
const TRIES: usize = 3;
const RETRY_WITHIN: Duration = Duration::from_millis(50);

/// [`pre_read`], retried (see [`TRIES`]) until one is still valid when it
/// ends (no thread ran meanwhile). None: the pause reads everything.
pub(super) fn pre_read_quiet(
    ld: &Loaded,
    p: &Prepared<'_>,
    max_wait: usize,
    stats: &mut CaptureStats,
) -> Option<PreGs> {
    let t0 = Instant::now();
    for attempt in 1..=TRIES {
        if let Ok(pg) = pre_read(ld, p, max_wait, stats) {
            match pg.marks.unchanged() {
                Ok(()) => {
                    if let Some(q) = stats.quiet.as_mut() {
                        q.tries = attempt;
                    }
                    return Some(pg);
                }
                Err(why) => {
                    if let Some(q) = stats.quiet.as_mut() {
                        q.why_not = Some(why);
                    }
                }
            }
        }
        if let Some(q) = stats.quiet.as_mut() {
            q.tries = attempt;
        }
        if t0.elapsed() >= RETRY_WITHIN {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// Marks the threads, then reads every g and the blocked-on objects of the
/// first `max_wait` waiting ones, while the target runs. Err: why not (a
/// thread runs now, so the pause would not keep it).
pub(super) fn pre_read(
    ld: &Loaded,
    p: &Prepared<'_>,
    max_wait: usize,
    stats: &mut CaptureStats,
) -> Result<PreGs, String> {
    let t0 = Instant::now();
    let target = &ld.target;
    let live = LiveMemory::new(ld.pid);
    let mem = Layered {
        first: &live,
        second: &ld.image,
    };
    let rt = Runtime::new(target, &mem);
    // sysmon's thread: the M that started at runtime.sysmon.
    let sysmon = (|| {
        let entry = target.bin.pcln.func_by_name("runtime.sysmon")?.entry + target.bias;
        let (ms, _) = rt.ms().ok()?;
        let m = ms
            .iter()
            .find(|m| m.mstartfn != 0 && rt.mem.u64(m.mstartfn).ok() == Some(entry))?;
        ld.ns.host_tid(i32::try_from(m.procid).ok()?)
    })();
    let mut q = QuietStats {
        sysmon_tid: sysmon,
        ..Default::default()
    };
    let marks = match ThreadMarks::take(ld.pid, sysmon) {
        Ok(m) => m,
        Err(why) => {
            q.why_not = Some(why.clone());
            stats.quiet = Some(q);
            return Err(why);
        }
    };
    let fail = |why: &str, stats: &mut CaptureStats| {
        stats.quiet = Some(QuietStats {
            why_not: Some(why.to_string()),
            sysmon_tid: sysmon,
            ..Default::default()
        });
        why.to_string()
    };
    let Some(facts) = sched_facts(&rt) else {
        return Err(fail("scheduler state unreadable", stats));
    };
    let Ok(allgs) = rt.allgs_array() else {
        return Err(fail("allgs unreadable", stats));
    };
    let gaddrs = crate::goruntime::allg_addrs_of(&allgs);
    let mut asm = Assembled {
        regions: Vec::new(),
        sparse: Default::default(),
        pool: Pool::new(0),
    };
    let mut st = CaptureStats::default();
    let round = read_gs(
        ld.pid,
        &target.layout.g,
        &gaddrs,
        p.pre.as_ref(),
        &mut asm,
        &mut st,
    );
    // The heap's metadata the pause reads (mcaches, the allspans array,
    // cached spans and the first span structs), planned on live memory.
    let mut heap = Vec::new();
    for stage in [1u8, 2] {
        let mut plan = crate::goruntime::heap::capture_plan(
            p.heap_t.as_ref(),
            target,
            &mem,
            stage,
            p.max_spans,
        );
        let n = asm.regions.len();
        super::rounds::read_round(ld.pid, &mut plan, &mut asm, &mut st, false);
        heap.extend(asm.regions.drain(n..));
    }
    // The kept goroutines' stacks planned now (the pause plans the rest).
    let plan = super::stacks::plan_kept(p.pre.as_ref(), &round.verdicts);
    let n = asm.regions.len();
    let mut wait = Vec::new();
    if let Some(wl) = p.wait_layout.as_ref() {
        asm.rebuild();
        let sudogs = &round.waiting[..round.waiting.len().min(max_wait)];
        let view = Layered {
            first: &live,
            second: &ld.image,
        };
        let mut walk = crate::goruntime::waiting::WaitWalk::from_sudogs(wl, view, sudogs);
        let mut reader = PauseReader::new(ld.pid, &mut asm, &ld.image, &mut st);
        drive(&mut walk, &mut reader, MAX_WAIT_ROUNDS, 1 << 16);
        wait = asm.regions.split_off(n);
    }
    q.threads = marks.len();
    q.bytes = st.bytes_read;
    q.elapsed_ns = t0.elapsed().as_nanos() as u64;
    stats.quiet = Some(q);
    Ok(PreGs {
        marks,
        facts,
        allgs,
        gaddrs,
        regions: asm.regions,
        round,
        wait,
        heap,
        plan,
        bytes: st.bytes_read,
        read_calls: st.read_calls,
        elapsed: t0.elapsed(),
    })
}

impl PreGs {
    /// In the pause, after the allgs/Ms/Ps round (`rt` over the paused
    /// memory): the g list (sorted), when allgs and the scheduler are as at
    /// the marks (the threads were verified at the stop). Err: why not.
    pub(super) fn check<M: Memory>(&mut self, rt: &Runtime<'_, M>) -> Result<Vec<u64>, String> {
        match rt.allgs_array() {
            Ok(a) if a == self.allgs => {}
            Ok(_) => return Err("allgs changed".into()),
            Err(e) => return Err(format!("allgs unreadable at the pause: {e}")),
        }
        match sched_facts(rt) {
            Some(f) if f == self.facts => Ok(std::mem::take(&mut self.gaddrs)),
            Some(_) => Err("the scheduler's run queues or ticks changed".into()),
            None => Err("scheduler state unreadable at the pause".into()),
        }
    }

    /// The pre-read into the pause's memory: the g structs and heap
    /// metadata; returns the rest for the pause's later phases.
    pub(super) fn keep(self, asm: &mut Assembled, stats: &mut CaptureStats) -> Kept {
        asm.regions.extend(self.regions);
        asm.regions.extend(self.heap);
        stats.bytes_read += self.bytes;
        stats.read_calls += self.read_calls;
        if let Some(q) = stats.quiet.as_mut() {
            q.kept = true;
            q.elapsed_ns = self.elapsed.as_nanos() as u64;
        }
        Kept {
            round: self.round,
            wait: self.wait,
            plan: self.plan,
        }
    }
}

/// A kept pre-read, for the pause's phases after the g round.
pub(super) struct Kept {
    pub(super) round: GRound,
    /// The blocked-on objects (for `blocked_on`).
    pub(super) wait: Vec<(u64, Bytes, RegionKind)>,
    /// The kept g's stacks plan, and the g's left to plan.
    pub(super) plan: (StackPlan, Vec<u32>),
}
