//! The read rounds, run while the target is stopped: each round decides
//! from what is already read which ranges come next. Reads only: every
//! layout, plan and buffer they use was prepared before the pause.

use super::buckets::read_counters;
use super::gread::{read_gs, GRound, GVerdict};
use super::options::CaptureOptions;
use super::plan::{Loaded, Prepared};
use super::rounds::{read_round, PausedMem};
use super::stacks::{StackCtx, StackPlan};
use super::stats::CaptureStats;
use super::stats::MemProfileStats;
use super::walk::{GlobalsReader, PauseReader, MAX_WAIT_ROUNDS};
use crate::goruntime::bulk::{drive, BulkWalk};
use crate::goruntime::heap::profile::BucketWalk;
use crate::goruntime::{Runtime, G, M};
use crate::memory::Layered;
use crate::memory::Memory;
use crate::model::{RegionKind, Regs, ThreadInfo};
use crate::process;
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::time::Instant;

/// Read rounds at most for the heap profile's bucket list.
const MAX_BUCKET_ROUNDS: usize = 4096;

/// A walk that counts its reads.
struct CountRounds<'w, W> {
    walk: &'w mut W,
    rounds: &'w mut usize,
}

impl<W: BulkWalk> BulkWalk for CountRounds<'_, W> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        let v = self.walk.step(mem);
        if !v.is_empty() {
            *self.rounds += 1;
        }
        v
    }
}

/// Goroutines whose blocked-on objects (sudogs, channels) are captured.
pub(super) const MAX_WAIT_GOROUTINES: usize = 10_000;

/// The pause's rounds and what they share.
pub(super) struct Rounds<'p, 'a> {
    pid: i32,
    ld: &'a Loaded,
    opts: &'a CaptureOptions,
    p: &'p mut Prepared<'a>,
    stats: &'p mut CaptureStats,
    threads: &'p [ThreadInfo],
    /// The next round's ranges.
    next: Vec<(u64, u64, RegionKind)>,
    lap: Instant,
    /// Goroutines (allgs indices) whose pre-copied stack the pause kept, and
    /// the pre-copied label sets they hold.
    pub(super) kept_idx: Vec<u32>,
    pub(super) kept_labels: Vec<u64>,
    /// The g structs and blocked-on objects read before the pause by a
    /// quiet target (threads verified at the stop; see `quiet`).
    pub(super) pre_gs: Option<super::quiet::PreGs>,
    /// The pre-read's blocked-on objects, once the g round kept it.
    pre_wait: Option<Vec<(u64, bytes::Bytes, RegionKind)>>,
    /// The g round kept the quiet pre-read (heap metadata included).
    pre_kept: bool,
    /// Its stacks plan of the kept g's, and the g's left to plan.
    pre_plan: Option<(StackPlan, Vec<u32>)>,
}

impl<'p, 'a> Rounds<'p, 'a> {
    pub(super) fn new(
        ld: &'a Loaded,
        opts: &'a CaptureOptions,
        p: &'p mut Prepared<'a>,
        stats: &'p mut CaptureStats,
        threads: &'p [ThreadInfo],
    ) -> Rounds<'p, 'a> {
        Rounds {
            pid: ld.pid,
            ld,
            opts,
            next: Vec::new(),
            p,
            stats,
            threads,
            lap: Instant::now(),
            kept_idx: Vec::new(),
            kept_labels: Vec::new(),
            pre_gs: None,
            pre_wait: None,
            pre_kept: false,
            pre_plan: None,
        }
    }

    /// Time since the last phase, under `name`.
    fn phase(&mut self, name: &str) {
        self.stats
            .phases
            .push((name.to_string(), self.lap.elapsed()));
        self.lap = Instant::now();
    }

    fn read(&mut self, reindex: bool) {
        read_round(
            self.pid,
            &mut self.next,
            &mut self.p.asm,
            self.stats,
            reindex,
        );
    }

    /// Every round in order; the number of live goroutines.
    pub(super) fn run(&mut self) -> Result<usize> {
        // Round 1: the data segments (runtime globals), their pages touched
        // by now (pagemap).
        let data = self.p.data.read(self.pid, self.stats, &mut self.p.warnings);
        self.p.asm.regions.extend(data);
        self.p.asm.rebuild();
        self.phase("data segments");
        let ms = self.allgs_ms_ps()?;
        self.read(true);
        self.phase("allgs, Ms, Ps");
        let (gaddrs, round) = self.gs()?;
        self.phase("g structs");
        let (live, label_ptrs, before) = self.plan_stacks(&ms, &gaddrs, &round.verdicts);
        self.phase("plan stacks and labels");
        self.read(false);
        self.phase("stacks");
        if self.opts.heap {
            self.heap_spans();
            self.phase("heap specials (finalizers, cleanups)");
        }
        // Labels: every object of every distinct label set, one bulk read
        // per level (label object, list or map and buckets, strings).
        if !label_ptrs.is_empty() {
            let mut walk =
                crate::goruntime::labels::LabelWalk::new(&self.ld.target, &label_ptrs, false);
            let mut reader =
                PauseReader::new(self.pid, &mut self.p.asm, &self.ld.image, self.stats);
            drive(
                &mut walk,
                &mut reader,
                MAX_WAIT_ROUNDS,
                crate::memory::MAX_READ as u64,
            );
            self.phase("labels");
        }
        if self.opts.non_blocking {
            self.validate(&before);
            self.phase("validate goroutines");
            if self.opts.heap {
                let p = &mut *self.p;
                self.stats.heap_validation = crate::capture::nonblocking::validate_heap(
                    self.pid,
                    p.heap_t.as_ref(),
                    &self.ld.target,
                    &mut p.asm,
                    &self.ld.image,
                    self.stats,
                    &mut p.warnings,
                );
                self.phase("validate heap spans");
            }
        }
        self.blocked_on(&gaddrs, &round.waiting);
        self.phase("blocked-on objects");
        let p = &mut *self.p;
        super::buckets::block_lists(
            self.pid,
            p.prof_t.as_ref(),
            p.pre_buckets.as_ref(),
            &p.readable,
            &mut p.asm,
            &self.ld.image,
            self.stats,
            &mut p.warnings,
        );
        self.phase("block and mutex profile buckets");
        self.mem_profile();
        self.phase("heap profile buckets");
        let kept = self.globals();
        self.phase(if kept {
            "globals (walked before the pause, unchanged)"
        } else {
            "globals"
        });
        Ok(live)
    }

    /// Round 2: the allgs array, Ms (read directly, few) and Ps planned, and
    /// the Ms' g0/gsignal structs (for running goroutines on system stacks).
    fn allgs_ms_ps(&mut self) -> Result<Vec<M>> {
        let target = &self.ld.target;
        let pm = PausedMem::new(self.pid, &self.p.asm, &self.ld.image);
        let rt = Runtime::new(target, &pm);
        let g = &target.globals;
        let allgs_ptr = rt.mem.ptr(g.allgs).context("reading runtime.allgs")?;
        let n = rt
            .mem
            .u64(g.allglen)
            .context("reading runtime.allglen")?
            .min(rt.mem.u64(g.allgs + 8)?);
        if n > crate::goruntime::MAX_GOROUTINES {
            return Err(anyhow!("runtime.allglen = {n} is implausible"));
        }
        self.next.push((allgs_ptr, n * 8, RegionKind::Allgs));
        let (ms, w) = rt.ms()?;
        self.p.warnings.extend(w);
        let mut ps_plan = Vec::new();
        if let Ok(paddrs) = rt.p_addrs() {
            for a in paddrs {
                ps_plan.push((a, rt.p_capture_len(), RegionKind::P));
            }
        }
        for mut r in pm.into_extra() {
            r.kind = RegionKind::M;
            self.p.asm.push(r);
        }
        self.next.extend(ps_plan);
        for m in &ms {
            for ga in [m.g0, m.gsignal] {
                if ga != 0 {
                    self.next.push((ga, target.layout.g.size, RegionKind::G));
                }
            }
        }
        Ok(ms)
    }

    /// Round 3: every g (judged as it is read, see `gread`), then each P's
    /// mcache and the allspans array.
    fn gs(&mut self) -> Result<(Vec<u64>, GRound)> {
        let target = &self.ld.target;
        if let Some(mut pg) = self.pre_gs.take() {
            let checked = {
                let pm = PausedMem::new(self.pid, &self.p.asm, &self.ld.image);
                pg.check(&Runtime::new(target, &pm))
            };
            match checked {
                Ok(gaddrs) => {
                    let kept = pg.keep(&mut self.p.asm, self.stats);
                    self.pre_wait = Some(kept.wait);
                    self.pre_plan = Some(kept.plan);
                    let round = kept.round;
                    self.pre_kept = true;
                    self.read(true);
                    return Ok((gaddrs, round));
                }
                Err(why) => {
                    if let Some(q) = self.stats.quiet.as_mut() {
                        q.why_not = Some(why);
                    }
                }
            }
        }
        let gaddrs = {
            let pm = PausedMem::new(self.pid, &self.p.asm, &self.ld.image);
            Runtime::new(target, &pm).allg_addrs()?
        };
        let round = read_gs(
            self.pid,
            &target.layout.g,
            &gaddrs,
            self.p.pre.as_ref(),
            &mut self.p.asm,
            self.stats,
        );
        self.next.extend(self.heap_plan(1));
        self.read(true);
        Ok((gaddrs, round))
    }

    /// The heap's ranges of `stage` (see `heap::capture_plan`).
    fn heap_plan(&self, stage: u8) -> Vec<(u64, u64, RegionKind)> {
        crate::goruntime::heap::capture_plan(
            self.p.heap_t.as_ref(),
            &self.ld.target,
            &Layered {
                first: &self.p.asm.sparse,
                second: &self.ld.image,
            },
            stage,
            self.p.max_spans,
        )
    }

    /// Round 4's plan: used stacks (or pre-copied ones kept), threads'
    /// system stacks, label sets, heap spans. Returns the live goroutines,
    /// the label sets to read and (non-blocking) each g's state.
    fn plan_stacks(
        &mut self,
        ms: &[M],
        gaddrs: &[u64],
        verdicts: &[GVerdict],
    ) -> (
        usize,
        Vec<u64>,
        Vec<(u64, crate::capture::nonblocking::GState)>,
    ) {
        let target = &self.ld.target;
        let tid_regs: HashMap<u64, &Regs> = self
            .threads
            .iter()
            .filter_map(|t| t.regs.as_ref().map(|r| (t.tid as u64, r)))
            .collect();
        let pm = PausedMem::new(self.pid, &self.p.asm, &self.ld.image);
        let ctx = StackCtx {
            target,
            pre: self.p.pre.as_ref(),
            pm: &pm,
            ms,
            tid_regs: &tid_regs,
            non_blocking: self.opts.non_blocking,
        };
        // The quiet pre-read planned its kept stacks before the stop.
        let planned = match self.pre_plan.take() {
            Some((kept, others)) => StackPlan::merge(kept, ctx.plan_only(gaddrs, &others)),
            None => ctx.plan(gaddrs, verdicts),
        };
        let mut label_ptrs = planned.labels;
        label_ptrs.sort_unstable();
        label_ptrs.dedup();
        self.next.extend(planned.plan);
        self.kept_idx = planned.kept_idx;
        self.kept_labels = planned.kept_labels;
        // System stacks of threads, from their sp to the g0 stack top.
        let rt = Runtime::new(target, &pm);
        for m in ms {
            let Some(r) = tid_regs.get(&m.procid) else {
                continue;
            };
            for ga in [m.g0, m.gsignal] {
                if let Ok(g0) = rt.read_g(ga) {
                    if r.rsp >= g0.stack_lo
                        && r.rsp < g0.stack_hi
                        && g0.stack_hi - r.rsp <= crate::goruntime::MAX_STACK
                    {
                        self.next
                            .push((r.rsp, g0.stack_hi - r.rsp, RegionKind::Stack));
                    }
                }
            }
        }
        pm.into_extra().into_iter().for_each(|r| self.p.asm.push(r));
        // Heap: the spans the mcaches cache, and the allspans span structs
        // (read already when the quiet pre-read was kept).
        if !self.pre_kept {
            let heap = self.heap_plan(2);
            self.next.extend(heap);
        }
        if let Some(p) = self.stats.precopy.as_mut() {
            p.kept = planned.kept;
            p.kept_bytes = planned.kept_bytes;
        }
        (planned.live, label_ptrs, planned.before)
    }

    /// `--heap`: every in-use span's memory and allocation bits (see
    /// `heapspans`), once the span structs are read (phase `heap spans`);
    /// then the specials lists and the finalizer queue (`specials`).
    fn heap_spans(&mut self) {
        self.p.asm.rebuild();
        let view = Layered {
            first: &self.p.asm.sparse,
            second: &self.ld.image,
        };
        let rounds = super::heapspans::plan(self.p.heap_t.as_ref(), &self.ld.target, &view);
        for plan in rounds {
            self.next.extend(plan);
            self.read(false);
        }
        self.p.asm.rebuild();
        // Go 1.19–1.21: the arena bitmaps (L2 entries first: the bitmaps'
        // addresses depend on them).
        for entries in [true, false] {
            let view = Layered {
                first: &self.p.asm.sparse,
                second: &self.ld.image,
            };
            let t = &self.ld.target;
            let rounds = super::heapspans::bitmap_plan(self.p.heap_t.as_ref(), t, &view, entries);
            if rounds.is_empty() {
                break;
            }
            for plan in rounds {
                self.next.extend(plan);
                self.read(false);
            }
            self.p.asm.rebuild();
        }
        self.phase("heap spans");
        let p = &mut *self.p;
        super::specials::read(
            self.pid,
            p.heap_t.as_ref(),
            p.specials.as_ref(),
            &mut p.asm,
            &self.ld.image,
            self.stats,
            &mut p.warnings,
        );
        self.p.asm.rebuild();
    }

    /// --non-blocking: read every g again, after its stack: unchanged ones
    /// are stable.
    fn validate(&mut self, before: &[(u64, crate::capture::nonblocking::GState)]) {
        let gl = &self.ld.target.layout.g;
        self.p
            .warnings
            .push(crate::capture::nonblocking::NON_BLOCKING_NOTE.to_string());
        let ranges: Vec<(u64, usize)> =
            before.iter().map(|&(a, _)| (a, gl.size as usize)).collect();
        let again = process::read_ranges(self.pid, &ranges);
        self.stats.read_calls += ranges.len().div_ceil(1024);
        for ((a, st), res) in before.iter().zip(again) {
            let after = res
                .ok()
                .map(|b| crate::capture::nonblocking::GState::of(&G::decode(gl, *a, &b)));
            if let Some(why) = crate::capture::nonblocking::instability(st, after.as_ref()) {
                let u = crate::model::UnstableG {
                    g: *a,
                    goid: st.goid(),
                    why,
                };
                self.p.warnings.push(u.note());
                self.p.unstable.push(u);
            }
        }
    }

    /// Rounds 5+: what waiting goroutines are blocked on (sudogs, hchans, the
    /// semaphore tree), one bulk read per level. Bounded: past
    /// [`MAX_WAIT_GOROUTINES`] the sudog reads would dominate the pause; the
    /// rest show no blocked-on object.
    /// `waiting`: each g's `g.waiting` (the g round's).
    fn blocked_on(&mut self, gaddrs: &[u64], waiting: &[u64]) {
        let sudogs = &waiting[..waiting.len().min(MAX_WAIT_GOROUTINES)];
        if gaddrs.len() > MAX_WAIT_GOROUTINES && self.p.wait_layout.is_some() {
            self.p.warnings.push(format!(
                "blocked-on objects captured for the first {MAX_WAIT_GOROUTINES} of {} goroutines only",
                gaddrs.len()
            ));
        }
        if let Some(wait) = self.pre_wait.take() {
            self.p.asm.regions.extend(wait);
            return;
        }
        if let Some(wl) = self.p.wait_layout.as_ref() {
            let view = Layered {
                first: &self.p.asm.sparse,
                second: &self.ld.image,
            };
            let mut walk = crate::goruntime::waiting::WaitWalk::from_sudogs(wl, view, sudogs);
            let mut reader =
                PauseReader::new(self.pid, &mut self.p.asm, &self.ld.image, self.stats);
            drive(&mut walk, &mut reader, MAX_WAIT_ROUNDS, 1 << 16);
        }
    }

    /// The memory-profile bucket list (heap profile): off-heap, so read
    /// explicitly, one window per round (see `heap::profile::BucketWalk`).
    fn mem_profile(&mut self) {
        let Some(pt) = self.p.prof_t.as_ref() else {
            return;
        };
        let pre = self.p.pre_buckets.as_ref();
        let mut walk = BucketWalk::new(pt, std::mem::take(&mut self.p.readable));
        if let Some(pre) = pre {
            // Only the buckets added since the walk before the pause.
            walk = walk.known(&pre.known.set);
        }
        let mut reader = PauseReader::new(self.pid, &mut self.p.asm, &self.ld.image, self.stats);
        let mut rounds = 0usize;
        drive(
            &mut CountRounds {
                walk: &mut walk,
                rounds: &mut rounds,
            },
            &mut reader,
            MAX_BUCKET_ROUNDS,
            crate::memory::MAX_READ as u64,
        );
        if let Some(why) = walk.stopped.take() {
            self.p
                .warnings
                .push(format!("heap profile: bucket list not read whole: {why}"));
        }
        let (mut buckets, mut bytes, mut known) = (walk.buckets, walk.bytes, 0);
        if let (Some(pre), Some(r)) = (pre, walk.reached) {
            // The known buckets' records, in one round.
            let from = pre.known.index(r).unwrap_or(0);
            let (pb, b) = read_counters(
                self.pid,
                pt,
                pre,
                from,
                self.pre_kept,
                &mut self.p.asm,
                self.stats,
            );
            known = pre.known.list.len() - from;
            buckets += known;
            bytes += b;
            rounds += 1;
            self.p.bucket_pause = Some(pb);
        }
        self.stats.mem_profile = Some(MemProfileStats {
            buckets,
            bytes,
            rounds,
            known,
            pre_bytes: pre.map_or(0, |p| p.bytes),
            pre_ns: pre.map_or(0, |p| p.elapsed_ns),
        });
    }

    /// Then what globals point to, one read per level of the walk; with
    /// `--full` every writable mapping instead.
    /// Whether the walk done before the pause was kept.
    fn globals(&mut self) -> bool {
        let mut kept = false;
        if let Some(pw) = self.p.prewalk.take() {
            if pw.still(self.pid, &self.p.asm, self.stats) {
                self.p.walker = Some(pw.walker);
                kept = true;
            }
        }
        if let Some(w) = self.p.walker.as_mut().filter(|_| !kept) {
            let mut reader =
                GlobalsReader::new(self.pid, &mut self.p.asm, &self.ld.image, self.stats);
            drive(w, &mut reader, usize::MAX, u64::MAX);
            w.stats.read_ns += reader.read_ns;
        }
        if !self.p.full_plan.is_empty() {
            self.next.extend(self.p.full_plan.iter().copied());
            self.read(false);
        }
        kept
    }
}
