//! Before the pause: load the executable and decide everything the pause
//! will need (round 1's ranges, the globals walk's plan, heap and wait
//! layouts, the pre-copy, the pre-touched buffer), so that the pause only
//! reads.

use super::buckets::{prewalk, PauseBuckets, PreBuckets};
use super::data::{runtime_ranges, DataPlan};
use super::load::load_target_binary;
use super::options::CaptureOptions;
use super::precopy::{estimate_pause_bytes, precopy, PreCopy};
use super::rounds::{Assembled, Pool};
use super::stats::CaptureStats;
use crate::binary::elf::{ElfFile, ImageMemory};
use crate::binary::Binary;
use crate::goruntime::heap::profile::ProfTarget;
use crate::goruntime::heap::HeapTarget;
use crate::goruntime::reach::{ReachPlan, Walker};
use crate::goruntime::waiting::WaitLayout;
use crate::goruntime::Target;
use crate::memory::SparseMemory;
use crate::model::{MapEntry, Region, RegionKind};
use crate::process::Process;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Instant;

/// The target as known before anything is read from its memory.
pub(super) struct Loaded {
    pub(super) pid: i32,
    pub(super) proc_: Process,
    pub(super) bin: Arc<Binary>,
    /// The running executable, when `--bin` names another file.
    pub(super) running_exe: Option<ElfFile>,
    pub(super) bias: u64,
    pub(super) target: Target,
    pub(super) image: ImageMemory,
    pub(super) maps: Vec<MapEntry>,
    pub(super) auxv: Vec<(u64, u64)>,
    pub(super) exe_path: String,
    pub(super) cmdline: Vec<String>,
    /// NSpid chain and thread ids in the target's PID namespace.
    pub(super) ns: crate::process::NsIds,
}

impl Loaded {
    /// The executable the process runs (its file bytes back untouched
    /// data pages).
    pub(super) fn running_elf(&self) -> &ElfFile {
        self.running_exe.as_ref().unwrap_or(&self.bin.elf)
    }
}

/// Open the process and load its executable and runtime layout.
pub(super) fn load(pid: i32, opts: &CaptureOptions, stats: &mut CaptureStats) -> Result<Loaded> {
    let proc_ = Process::open(pid)?;
    let t_bin = Instant::now();
    let (bin, running_exe) = load_target_binary(&proc_, opts.bin.as_deref())?;
    let maps = proc_.maps().unwrap_or_default();
    let auxv = proc_.auxv().unwrap_or_default();
    let bias = bin.load_bias(&auxv);
    let target = Target::new(bin.clone(), bias)
        .with_context(|| format!("pid {pid}: decoding the Go runtime layout"))?;
    stats.load_warnings = bin.warnings.clone();
    stats.load_warnings.extend(target.warnings.iter().cloned());
    stats.binary_load = t_bin.elapsed();
    let image = ImageMemory {
        elf: bin.elf.clone(),
        bias,
    };
    Ok(Loaded {
        pid,
        exe_path: proc_.exe_path().unwrap_or_default(),
        cmdline: proc_.cmdline().unwrap_or_default(),
        ns: proc_.ns_ids(),
        proc_,
        bin,
        running_exe,
        bias,
        target,
        image,
        maps,
        auxv,
    })
}

/// Everything decided before the pause.
pub(super) struct Prepared<'a> {
    /// Round 1: the executable's data and BSS (their touched pages).
    pub(super) data: DataPlan,
    /// What globals point to (None with `--full`, `--heap` or nothing to walk).
    pub(super) walker: Option<Walker<'a>>,
    /// The same walk done before the pause.
    pub(super) prewalk: Option<super::walk::PreWalk<'a>>,
    /// `--full`: every writable mapping.
    pub(super) full_plan: Vec<(u64, u64, RegionKind)>,
    pub(super) heap_t: Option<HeapTarget>,
    /// `--heap`: what reading the span specials needs (see `specials`).
    pub(super) specials: Option<super::specials::SpecialsPlan>,
    /// The heap profile's bucket list (None: not found in the executable).
    pub(super) prof_t: Option<ProfTarget>,
    /// Readable mappings, to clip the bucket walk's windows.
    pub(super) readable: Vec<(u64, u64)>,
    /// The bucket list walked before the pause, and what the pause read of
    /// it (see `buckets`).
    pub(super) pre_buckets: Option<PreBuckets>,
    pub(super) bucket_pause: Option<PauseBuckets>,
    pub(super) max_spans: usize,
    pub(super) wait_layout: Option<WaitLayout>,
    pub(super) pre: Option<PreCopy>,
    /// The pause's memory, with its pre-touched buffer.
    pub(super) asm: Assembled,
    pub(super) warnings: Vec<String>,
    /// Goroutines a --non-blocking capture could not read consistently.
    pub(super) unstable: Vec<crate::model::UnstableG>,
}

/// Plan the pause; the pre-copy runs last, so that few goroutines run
/// between it and the pause.
pub(super) fn prepare<'a>(
    ld: &'a Loaded,
    opts: &CaptureOptions,
    stats: &mut CaptureStats,
) -> Result<Prepared<'a>> {
    let (target, bias) = (&ld.target, ld.bias);
    // The globals walk's plan (globals and their types).
    let reach_plan = if opts.full || opts.heap {
        None
    } else {
        let budget = opts
            .var_budget
            .unwrap_or(crate::goruntime::reach::DEFAULT_BUDGET);
        Some(ReachPlan::new(target, &opts.vars, budget)?)
    };
    let mut warnings: Vec<String> = Vec::new();
    // A second walk of the same plan, done before the pause (see PreWalk).
    let spare = reach_plan.as_ref().map(|p| ReachPlan {
        groups: p.groups.clone(),
        budget: p.budget,
        warnings: Vec::new(),
    });
    let walker = reach_plan.and_then(|p| {
        warnings.extend(p.warnings.iter().cloned());
        (!p.is_empty()).then(|| Walker::new(target, p)).flatten()
    });
    let full_plan: Vec<(u64, u64, RegionKind)> = if opts.full {
        ld.maps
            .iter()
            .filter(|m| m.perms.starts_with("rw") && m.end > m.start)
            .map(|m| (m.start, m.end - m.start, RegionKind::Other))
            .collect()
    } else {
        Vec::new()
    };
    // Data pages are read into their own buffers, not the pool.
    let data_bytes: u64 = 0;
    // Heap analysis layouts (mcaches, spans).
    let heap_t = match HeapTarget::new(target) {
        Ok(h) => Some(h),
        Err(e) => {
            warnings.push(format!("heap statistics will be unavailable: {e}"));
            None
        }
    };
    // --heap: every span struct (see heapspans).
    let max_spans = match opts.heap {
        true => crate::goruntime::heap::MAX_SPANS_LIMIT,
        false => opts
            .max_spans
            .unwrap_or(crate::goruntime::heap::DEFAULT_MAX_SPANS),
    };
    // --heap: the heap round's buffer, sized while the target runs.
    let heap_bytes = match opts.heap {
        true => super::heapspans::estimate(ld.pid, heap_t.as_ref(), target, &ld.image),
        false => 0,
    };
    // The heap profile's buckets: a missing global only means no profile.
    let prof_t = if opts.mem_profile {
        ProfTarget::new(target).ok()
    } else {
        None
    };
    let readable: Vec<(u64, u64)> = ld
        .maps
        .iter()
        .filter(|m| m.perms.starts_with('r') && m.end > m.start)
        .map(|m| (m.start, m.end))
        .collect();
    // The bucket list, walked while the target runs: the pause reads only
    // the records (the counters) and the buckets added since.
    let pre_buckets = match &prof_t {
        Some(pt) if !opts.non_blocking => prewalk(ld.pid, pt, &readable, &ld.image, stats),
        _ => None,
    };
    let bucket_bytes = match (&prof_t, &pre_buckets) {
        (Some(pt), Some(pb)) => pb.pause_bytes(pt),
        _ => 0,
    };
    // DWARF lookups are lazy: decoded now, not in the pause.
    let wait_layout = WaitLayout::new(target);
    // No transparent huge pages for gospy's memory from here on (after the
    // executable is loaded, which they speed up): a fresh allocation inside
    // the pause would otherwise fault in, and zero, 2 MiB at a time.
    // SAFETY: prctl with integer arguments only changes this process's flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // Data/BSS: which pages were touched; their buffers.
    let only = if opts.runtime_data_only {
        runtime_ranges(target, &opts.vars)
    } else {
        None
    };
    let data = DataPlan::new(ld.pid, ld.running_elf(), bias, only, !opts.non_blocking);
    warnings.extend(data.warnings.iter().cloned());
    // What globals point to, walked while the target runs; the pause keeps
    // it when every byte it saw is unchanged.
    let prewalk = match (&walker, spare, opts.non_blocking) {
        (Some(_), Some(plan), false) => {
            Walker::new(target, plan).map(|w| super::walk::prewalk(ld.pid, w, &ld.image))
        }
        _ => None,
    };
    // Last before the pause, so that few goroutines run in between.
    // Parked goroutines' stacks, read now while the target runs; the pause
    // keeps those whose goroutine did not run since (see GKey).
    let pre = if opts.non_blocking || opts.full {
        None
    } else {
        precopy(ld.pid, target, &ld.image, stats)
    };
    let pool_bytes = match (&pre, opts.non_blocking) {
        (_, true) => 0,
        (Some(pre), false) => {
            // The pause reads the data segments and every g; stacks only of
            // goroutines that were running or ran since (guessed).
            const SLACK: u64 = 8 << 20;
            let est = data_bytes
                + bucket_bytes
                + pre.stacks.len() as u64 * target.layout.g.size
                + pre.others as u64 * 4096
                + pre.stack_bytes / 8
                + SLACK;
            est.min(1 << 30) as usize
        }
        (None, false) => {
            estimate_pause_bytes(ld.pid, target, &ld.image, data_bytes + bucket_bytes, stats)
        }
    };
    let mut asm = Assembled {
        regions: Vec::new(),
        sparse: SparseMemory::default(),
        pool: Pool::new(pool_bytes + heap_bytes),
    };
    add_twin_image(ld, &mut asm);
    let specials = super::specials::plan(opts.heap, heap_t.as_ref(), target, &mut warnings);
    Ok(Prepared {
        specials,
        data,
        walker,
        prewalk,
        full_plan,
        heap_t,
        prof_t,
        readable,
        pre_buckets,
        bucket_pause: None,
        max_spans,
        wait_layout,
        pre,
        asm,
        warnings,
        unstable: Vec::new(),
    })
}

/// A --bin twin (same build without -s -w): its read-only image is shifted
/// in places, so the running executable's own read-only segments are
/// captured over it (they are what the process has mapped).
fn add_twin_image(ld: &Loaded, asm: &mut Assembled) {
    let bin = &ld.bin;
    if bin.elf.go_build_id.is_none() {
        return;
    }
    let Some(running) = &ld.running_exe else {
        return;
    };
    if running.go_build_id == bin.elf.go_build_id {
        return;
    }
    for s in running
        .segments
        .iter()
        .filter(|s| !s.writable && s.filesz > 0)
    {
        if let Some(d) = running
            .data
            .get(s.offset as usize..(s.offset + s.filesz) as usize)
        {
            asm.push(Region {
                addr: s.vaddr + ld.bias,
                kind: RegionKind::Other,
                data: d.to_vec(),
            });
        }
    }
    asm.rebuild();
}
