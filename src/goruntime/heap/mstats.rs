//! MemStats as `runtime.ReadMemStats` would return it: the summed
//! heapStatsDelta, plus what a flush of every mcache would add, through the
//! arithmetic of `readmemstats_m`; and the GC state beside it.

use super::bytes::{le, le64};
use super::model::{
    BySize, CachedSpan, GcState, Heap, HeapOptions, Large, MemStats, PCache, Pause, SizeClass,
    MEMSTATS_BY_SIZE,
};
use super::pacer::{heap_goal, memory_limit_heap_goal};
use super::target::{mcache_addrs, HeapTarget};
use crate::goruntime::Target;
use crate::memory::Memory;
use anyhow::{Context, Result};

/// The summed heapStatsDelta.
#[derive(Debug, Clone, Default)]
struct Delta {
    committed: i64,
    released: i64,
    in_heap: i64,
    in_stacks: i64,
    in_work_bufs: i64,
    in_ptr_scalar_bits: i64,
    tiny_alloc_count: u64,
    large_alloc: u64,
    large_alloc_count: u64,
    small_alloc_count: Vec<u64>,
    large_free: u64,
    large_free_count: u64,
    small_free_count: Vec<u64>,
}

impl HeapTarget {
    fn read_delta_sum(&self, mem: &impl Memory) -> Result<Delta> {
        let l = &self.layout;
        let n = l.n_classes;
        let mut d = Delta {
            small_alloc_count: vec![0; n],
            small_free_count: vec![0; n],
            ..Default::default()
        };
        let base = self.memstats + l.heap_stats;
        let raw = mem
            .read_vec(base, (l.delta_size * l.n_deltas) as usize)
            .context("reading memstats.heapStats")?;
        for i in 0..l.n_deltas {
            let o = i * l.delta_size;
            let g = |f: u64| le64(&raw, o + f);
            d.committed = d.committed.wrapping_add(g(l.d_committed) as i64);
            d.released = d.released.wrapping_add(g(l.d_released) as i64);
            d.in_heap = d.in_heap.wrapping_add(g(l.d_in_heap) as i64);
            d.in_stacks = d.in_stacks.wrapping_add(g(l.d_in_stacks) as i64);
            d.in_work_bufs = d.in_work_bufs.wrapping_add(g(l.d_in_work_bufs) as i64);
            if let Some(f) = l.d_in_ptr_scalar_bits {
                d.in_ptr_scalar_bits = d.in_ptr_scalar_bits.wrapping_add(g(f) as i64);
            }
            d.tiny_alloc_count = d.tiny_alloc_count.wrapping_add(g(l.d_tiny_alloc_count));
            d.large_alloc = d.large_alloc.wrapping_add(g(l.d_large_alloc));
            d.large_alloc_count = d.large_alloc_count.wrapping_add(g(l.d_large_alloc_count));
            d.large_free = d.large_free.wrapping_add(g(l.d_large_free));
            d.large_free_count = d.large_free_count.wrapping_add(g(l.d_large_free_count));
            for c in 0..n as u64 {
                let a = &mut d.small_alloc_count[c as usize];
                *a = a.wrapping_add(g(l.d_small_alloc_count + c * 8));
                let f = &mut d.small_free_count[c as usize];
                *f = f.wrapping_add(g(l.d_small_free_count + c * 8));
            }
        }
        Ok(d)
    }

    /// Each P's mcache: cached spans and what was allocated from them since.
    fn read_mcaches(
        &self,
        t: &Target,
        mem: &impl Memory,
        warnings: &mut Vec<String>,
    ) -> Vec<PCache> {
        let l = &self.layout;
        let mut out = Vec::new();
        for (pid, mc) in mcache_addrs(t, mem) {
            let b = match mem.read_vec(mc, l.mc_size as usize) {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(format!("P{pid}: mcache at {mc:#x} not readable ({e}); its in-flight allocations are missing"));
                    continue;
                }
            };
            let mut pc = PCache {
                p: pid,
                mcache: mc,
                tiny_allocs: le64(&b, l.mc_tiny_allocs),
                ..Default::default()
            };
            for spc in 0..l.n_span_classes {
                let s = le64(&b, l.mc_alloc + spc as u64 * 8);
                if s == 0 || s == self.emptymspan {
                    continue;
                }
                let Some(sp) = self.read_span(mem, s) else {
                    warnings.push(format!(
                        "P{pid}: cached span {s:#x} (span class {spc}) not readable; its in-flight allocations are missing"
                    ));
                    continue;
                };
                let in_flight = sp.alloc_count as i64 - sp.alloc_count_before_cache as i64;
                if in_flight < 0 {
                    warnings.push(format!(
                        "P{pid}: cached span {s:#x} has allocCount {} < allocCountBeforeCache {}",
                        sp.alloc_count, sp.alloc_count_before_cache
                    ));
                }
                pc.in_flight_objects = pc.in_flight_objects.wrapping_add(in_flight);
                pc.in_flight_bytes = pc
                    .in_flight_bytes
                    .wrapping_add(in_flight.wrapping_mul(sp.elemsize as i64));
                pc.spans.push(CachedSpan {
                    span_class: spc as u8,
                    size_class: spc >> 1,
                    noscan: spc & 1 == 1,
                    span: s,
                    base: sp.start,
                    npages: sp.npages,
                    elem_size: sp.elemsize,
                    nelems: sp.nelems,
                    alloc_count: sp.alloc_count,
                    alloc_count_before_cache: sp.alloc_count_before_cache,
                    in_flight,
                });
            }
            out.push(pc);
        }
        out
    }
}

/// The pacer's goals, computed once for MemStats.NextGC and the GC state.
struct Goals {
    pct_goal: u64,
    mem_goal: u64,
    next_gc: u64,
}

impl HeapTarget {
    pub fn read<M: Memory>(
        &self,
        t: &Target,
        mem: &M,
        opts: &HeapOptions,
        capture_wall_ns: u64,
    ) -> Result<Heap> {
        let l = &self.layout;
        let mut warnings = Vec::new();
        let ms = mem
            .read_vec(self.memstats, l.ms_size as usize)
            .context("reading runtime.memstats")?;
        let gc = mem
            .read_vec(self.gc_controller, l.gc_size as usize)
            .context("reading runtime.gcController")?;
        let mut d = self.read_delta_sum(mem)?;

        // What a flush of every mcache would add (mcache.releaseAll).
        let per_p = self.read_mcaches(t, mem, &mut warnings);
        let mut in_flight_bytes: i64 = 0;
        for pc in &per_p {
            for s in &pc.spans {
                let c = &mut d.small_alloc_count[s.size_class.min(l.n_classes - 1)];
                *c = c.wrapping_add(s.in_flight as u64);
            }
            in_flight_bytes = in_flight_bytes.wrapping_add(pc.in_flight_bytes);
            d.tiny_alloc_count = d.tiny_alloc_count.wrapping_add(pc.tiny_allocs);
        }

        let mut size_classes = self.size_classes(&d);
        let goals = self.goals(&gc, in_flight_bytes);
        let memstats = self.memstats(mem, &d, &ms, &gc, &size_classes, goals.next_gc);
        let (gcs, phase) = self.gc_state(mem, &gc, &memstats, &goals, capture_wall_ns);
        if matches!(phase, Some(1) | Some(2)) {
            warnings.push(format!(
                "a GC cycle was in progress at the capture (phase {}): the numbers are those of that instant, unswept dead objects still count in HeapAlloc",
                gcs.phase
            ));
        }
        let stale = self.stale_cached_spans(mem, &per_p);
        if stale > 0 {
            warnings.push(format!(
                "{stale} cached spans predate the current sweep: ReadMemStats's flush would sweep them and may free objects a passive reader cannot see (Frees, HeapAlloc)"
            ));
        }

        // Large objects.
        let mut large = Large {
            count: d.large_alloc_count.saturating_sub(d.large_free_count),
            bytes: d.large_alloc.saturating_sub(d.large_free),
            allocs: d.large_alloc_count,
            frees: d.large_free_count,
            alloc_bytes: d.large_alloc,
            free_bytes: d.large_free,
            objects: None,
        };

        // Spans: per size class and the large-object list.
        let mut spans = None;
        if opts.walk_spans || opts.list_large {
            match self.walk_spans(t, mem, opts, &mut size_classes) {
                Ok((cov, objs)) => {
                    if cov.missing > 0 || cov.walked < cov.total {
                        warnings.push(format!(
                            "mheap_.allspans: {} spans, {} walked, {} not captured: span counts{} are partial (capture with a larger --max-spans)",
                            cov.total,
                            cov.walked,
                            cov.missing,
                            if opts.list_large { " and the large-object list" } else { "" }
                        ));
                    }
                    spans = Some(cov);
                    if opts.list_large {
                        large.objects = Some(objs);
                    }
                }
                Err(e) => warnings.push(format!("mheap_.allspans: {e}")),
            }
        }

        Ok(Heap {
            memstats,
            gc: gcs,
            size_classes,
            per_p,
            large,
            spans,
            warnings,
        })
    }

    /// Per size class, `readmemstats_m` style (in-flight allocations are
    /// already in `d`).
    fn size_classes(&self, d: &Delta) -> Vec<SizeClass> {
        self.class_sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let a = d.small_alloc_count[i];
                let f = d.small_free_count[i];
                let objects = a.saturating_sub(f);
                SizeClass {
                    class: i,
                    size,
                    mallocs: a,
                    frees: f,
                    objects,
                    bytes: objects.saturating_mul(size as u64),
                    spans: None,
                    span_bytes: None,
                }
            })
            .collect()
    }

    /// `gcController.heapGoal()`, with totalAlloc as it is after the flush.
    fn goals(&self, gc: &[u8], in_flight_bytes: i64) -> Goals {
        let l = &self.layout;
        let g64 = |o: u64| le64(gc, o);
        let memory_limit = g64(l.gc_memory_limit) as i64;
        let heap_marked = g64(l.gc_heap_marked);
        let gc_total_alloc = g64(l.gc_total_alloc).wrapping_add(in_flight_bytes as u64);
        let gc_total_free = g64(l.gc_total_free);
        let mem_goal = memory_limit_heap_goal(
            self.headroom,
            memory_limit as u64,
            g64(l.gc_heap_free),
            gc_total_alloc.wrapping_sub(gc_total_free),
            g64(l.gc_mapped_ready),
            heap_marked,
        );
        let pct_goal = g64(l.gc_percent_heap_goal);
        let next_gc = heap_goal(
            pct_goal,
            mem_goal,
            g64(l.gc_sweep_dist_min_trigger),
            g64(l.gc_triggered),
        );
        Goals {
            pct_goal,
            mem_goal,
            next_gc,
        }
    }

    /// `readmemstats_m`: the totals over the size classes and the large
    /// objects, and every other MemStats field.
    fn memstats<M: Memory>(
        &self,
        mem: &M,
        d: &Delta,
        ms: &[u8],
        gc: &[u8],
        size_classes: &[SizeClass],
        next_gc: u64,
    ) -> MemStats {
        let l = &self.layout;
        let mut total_alloc = d.large_alloc;
        let mut n_malloc = d.large_alloc_count;
        let mut total_free = d.large_free;
        let mut n_free = d.large_free_count;
        for c in size_classes {
            total_alloc = total_alloc.wrapping_add(c.mallocs.wrapping_mul(c.size as u64));
            n_malloc = n_malloc.wrapping_add(c.mallocs);
            total_free = total_free.wrapping_add(c.frees.wrapping_mul(c.size as u64));
            n_free = n_free.wrapping_add(c.frees);
        }
        n_free = n_free.wrapping_add(d.tiny_alloc_count);
        n_malloc = n_malloc.wrapping_add(d.tiny_alloc_count);

        let stack_in_use = d.in_stacks as u64;
        let work_bufs = d.in_work_bufs as u64;
        let ptr_bits = d.in_ptr_scalar_bits as u64;
        let g64 = |o: u64| le64(gc, o);
        let m64 = |o: u64| le64(ms, o);
        let heap_in_use = g64(l.gc_heap_in_use);
        let heap_free = g64(l.gc_heap_free);
        let heap_released = g64(l.gc_heap_released);
        let total_mapped = [
            heap_in_use,
            heap_free,
            heap_released,
            m64(l.ms_stacks_sys),
            m64(l.ms_mspan_sys),
            m64(l.ms_mcache_sys),
            m64(l.ms_buckhash_sys),
            m64(l.ms_gc_misc_sys),
            m64(l.ms_other_sys),
            stack_in_use,
            work_bufs,
            ptr_bits,
        ]
        .iter()
        .fold(0u64, |a, &b| a.wrapping_add(b));
        let mh = |o: u64| mem.u64(self.mheap + o).unwrap_or(0);
        MemStats {
            alloc: total_alloc.wrapping_sub(total_free),
            total_alloc,
            sys: total_mapped,
            lookups: 0,
            mallocs: n_malloc,
            frees: n_free,
            heap_alloc: total_alloc.wrapping_sub(total_free),
            heap_sys: heap_in_use
                .wrapping_add(heap_free)
                .wrapping_add(heap_released),
            heap_idle: heap_free.wrapping_add(heap_released),
            heap_inuse: heap_in_use,
            heap_released,
            heap_objects: n_malloc.wrapping_sub(n_free),
            stack_inuse: stack_in_use,
            stack_sys: stack_in_use.wrapping_add(m64(l.ms_stacks_sys)),
            mspan_inuse: mh(l.mh_spanalloc_inuse),
            mspan_sys: m64(l.ms_mspan_sys),
            mcache_inuse: mh(l.mh_cachealloc_inuse),
            mcache_sys: m64(l.ms_mcache_sys),
            buckhash_sys: m64(l.ms_buckhash_sys),
            gc_sys: m64(l.ms_gc_misc_sys)
                .wrapping_add(work_bufs)
                .wrapping_add(ptr_bits),
            other_sys: m64(l.ms_other_sys),
            next_gc,
            last_gc: m64(l.ms_last_gc_unix),
            pause_total_ns: m64(l.ms_pause_total_ns),
            pause_ns: (0..l.n_pause as u64)
                .map(|i| m64(l.ms_pause_ns + i * 8))
                .collect(),
            pause_end: (0..l.n_pause as u64)
                .map(|i| m64(l.ms_pause_end + i * 8))
                .collect(),
            num_gc: le(ms, l.ms_numgc, 4) as u32,
            num_forced_gc: le(ms, l.ms_numforcedgc, 4) as u32,
            gc_cpu_fraction: f64::from_bits(m64(l.ms_gc_cpu_fraction)),
            enable_gc: true,
            debug_gc: false,
            by_size: size_classes
                .iter()
                .take(MEMSTATS_BY_SIZE)
                .map(|c| BySize {
                    size: c.size,
                    mallocs: c.mallocs,
                    frees: c.frees,
                })
                .collect(),
        }
    }

    /// GC and pacer state beyond MemStats, and the raw `runtime.gcphase`.
    fn gc_state<M: Memory>(
        &self,
        mem: &M,
        gc: &[u8],
        ms: &MemStats,
        goals: &Goals,
        capture_wall_ns: u64,
    ) -> (GcState, Option<u32>) {
        let l = &self.layout;
        let numgc = ms.num_gc;
        let last_gc = ms.last_gc;
        let phase = self.gcphase.and_then(|a| mem.u32(a).ok());
        let work = |o: Option<u64>, w: u64| -> Option<u64> {
            let a = self.work?.checked_add(o?)?;
            match w {
                4 => mem.u32(a).ok().map(u64::from),
                _ => mem.u64(a).ok(),
            }
        };
        let n_recent = (numgc as usize).min(l.n_pause);
        let recent_pauses = (0..n_recent)
            .map(|i| {
                let j = (numgc as usize)
                    .wrapping_sub(1)
                    .wrapping_sub(i)
                    .checked_rem(l.n_pause)
                    .unwrap_or(0);
                Pause {
                    pause_ns: ms.pause_ns.get(j).copied().unwrap_or(0),
                    end_unix_ns: ms.pause_end.get(j).copied().unwrap_or(0),
                }
            })
            .collect();
        let last_cycle_heap = match (work(l.w_heap0, 8), work(l.w_heap1, 8), work(l.w_heap2, 8)) {
            (Some(a), Some(b), Some(c)) if numgc > 0 => Some([a, b, c]),
            _ => None,
        };
        let gcs = GcState {
            gc_percent: le(gc, l.gc_percent, 4) as u32 as i32,
            memory_limit: le64(gc, l.gc_memory_limit) as i64,
            phase: match phase {
                Some(0) => "off".into(),
                Some(1) => "mark".into(),
                Some(2) => "mark termination".into(),
                Some(v) => format!("phase {v}"),
                None => "?".into(),
            },
            cycles_started: work(l.w_cycles, 4).map(|v| v as u32),
            gc_percent_heap_goal: goals.pct_goal,
            memory_limit_heap_goal: goals.mem_goal,
            heap_live: le64(gc, l.gc_heap_live),
            heap_marked: le64(gc, l.gc_heap_marked),
            last_cycle_heap,
            last_gc_ago_ns: (last_gc > 0 && capture_wall_ns >= last_gc)
                .then(|| capture_wall_ns - last_gc),
            recent_pauses,
        };
        (gcs, phase)
    }
}
