//! Capture: pause a live Go process, read the byte ranges analysis needs in
//! bulk, resume it, and return a [`Capture`]. Compression and file writing
//! happen after the target is running again (see `snapshot`).
//!
//! [`capture`] runs named phases in sequence: load and plan before the pause
//! (`plan`, ending with the pre-copy of parked stacks, `precopy`), stop the
//! target, read rounds (`pause`, over `rounds` and the bulk readers of
//! `walk`), resume, assemble (`assemble`). With `--non-blocking` nothing is
//! stopped and the same rounds read the running target.
//!
//! The pause window holds reads only. Reads happen in rounds, each round
//! deciding from what is already read which ranges come next:
//! 1. writable data of the executable (runtime globals: allgs, allp, sched...);
//! 2. the allgs array, every M and P (few);
//! 3. every g struct;
//! 4. every live goroutine's used stack (sp .. stack.hi) and each thread's
//!    system-stack top, plus goroutine label objects (and heap spans);
//! 5. what waiting goroutines are blocked on, a few rounds deep;
//! 6. what global variables point to, breadth-first within a byte budget
//!    (`goruntime::reach`), or with `--full` every writable mapping.

mod assemble;
mod buckets;
mod data;
mod gread;
mod heapspans;
mod load;
pub mod nonblocking;
mod options;
mod pause;
mod plan;
mod precopy;
mod quiet;
pub mod redact;
mod rounds;
mod specials;
mod stacks;
mod stats;
mod walk;

pub use load::load_target_binary;
pub use options::CaptureOptions;
pub use stats::{CaptureStats, MemProfileStats, PreCopyStats};

use crate::binary::Binary;
use crate::model::{Capture, ThreadInfo};
use crate::process;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn capture(pid: i32, opts: &CaptureOptions) -> Result<(Capture, Arc<Binary>, CaptureStats)> {
    let mut stats = CaptureStats::default();
    let ld = plan::load(pid, opts, &mut stats)?;
    let mut p = plan::prepare(&ld, opts, &mut stats)?;
    // Start rayon's threads now, not inside the pause.
    let _ = rayon::current_num_threads();
    // Every g struct and the blocked-on objects, read now; the pause keeps
    // them when no thread ran since (see `quiet`).
    let skip = opts.non_blocking || opts.heap || opts.full || opts.no_pre_read;
    let mut pre_gs = if skip || p.pre.is_none() {
        None
    } else {
        quiet::pre_read_quiet(&ld, &p, pause::MAX_WAIT_GOROUTINES, &mut stats)
    };
    // The heap profile's records, read once last before the stop (after
    // the pre-read, whose megabytes would evict them from the cache).
    if let Some(pb) = &p.pre_buckets {
        pb.warm(ld.pid, &mut stats);
    }
    let t_pause = Instant::now();
    // --non-blocking: nothing is stopped, threads have no registers.
    let guard = match (opts.non_blocking, pre_gs.as_mut()) {
        (true, _) => None,
        (false, Some(pg)) => Some(ld.proc_.pause_marked(&mut pg.marks)?),
        (false, None) => Some(ld.proc_.pause()?),
    };
    // Did any thread run since the marks? (host thread ids: before
    // `translate`)
    if let (Some(g), Some(pg)) = (&guard, pre_gs.as_ref()) {
        if let Err(why) = pg.marks.verify(g.threads()) {
            if let Some(q) = stats.quiet.as_mut() {
                q.why_not = Some(why);
            }
            pre_gs = None;
        }
    }
    stats
        .phases
        .push(("stop threads".into(), t_pause.elapsed()));
    let mono_ns = process::read_monotonic_ns();
    let wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let threads: Vec<ThreadInfo> = match &guard {
        Some(g) => g.threads().to_vec(),
        None => crate::capture::nonblocking::threads_without_regs(&ld.proc_),
    };
    // m.procid is the tid in the target's PID namespace (a container's).
    let threads = ld.ns.translate(threads);
    let mut rounds = pause::Rounds::new(&ld, opts, &mut p, &mut stats, &threads);
    rounds.pre_gs = pre_gs;
    let result = rounds.run();
    let (kept_idx, kept_labels) = (
        std::mem::take(&mut rounds.kept_idx),
        std::mem::take(&mut rounds.kept_labels),
    );
    drop(rounds);
    let pause = guard.map(|g| g.resume()).unwrap_or_default();
    assemble::attach_kept(&mut p, &kept_idx, kept_labels);
    let live =
        result.with_context(|| format!("pid {pid}: capture failed (the target was resumed)"))?;
    stats.pause = pause;
    stats.goroutines = live;
    let facts = assemble::PauseFacts {
        pause,
        wall_ns,
        mono_ns,
        threads,
    };
    let cap = assemble::finish(&ld, p, opts, &mut stats, facts);
    Ok((cap, ld.bin.clone(), stats))
}
