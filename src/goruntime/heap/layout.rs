//! Offsets of every runtime field the heap analysis reads, from the source
//! [`Layouts`] picks (DWARF or the per-version tables).

use crate::binary::Binary;
use crate::goruntime::version::choice::Layouts;
use crate::goruntime::version::source::{LayoutCtx, LayoutSource};
use anyhow::{anyhow, Result};

/// Where a field is and how wide it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) off: u64,
    pub(super) size: u64,
}

/// Offsets of every field the heap analysis reads, from DWARF or the
/// per-version tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapLayout {
    // memstats.heapStats.stats: [n_deltas]heapStatsDelta
    pub(super) heap_stats: u64,
    pub(super) n_deltas: u64,
    pub(super) delta_size: u64,
    pub(super) d_committed: u64,
    pub(super) d_released: u64,
    pub(super) d_in_heap: u64,
    pub(super) d_in_stacks: u64,
    pub(super) d_in_work_bufs: u64,
    pub(super) d_in_ptr_scalar_bits: Option<u64>,
    pub(super) d_tiny_alloc_count: u64,
    pub(super) d_large_alloc: u64,
    pub(super) d_large_alloc_count: u64,
    pub(super) d_small_alloc_count: u64,
    pub(super) d_large_free: u64,
    pub(super) d_large_free_count: u64,
    pub(super) d_small_free_count: u64,
    /// Length of smallAllocCount (= number of size classes).
    pub(super) n_classes: usize,
    // runtime.mstats
    pub(super) ms_size: u64,
    pub(super) ms_stacks_sys: u64,
    pub(super) ms_mspan_sys: u64,
    pub(super) ms_mcache_sys: u64,
    pub(super) ms_buckhash_sys: u64,
    pub(super) ms_gc_misc_sys: u64,
    pub(super) ms_other_sys: u64,
    pub(super) ms_last_gc_unix: u64,
    pub(super) ms_pause_total_ns: u64,
    pub(super) ms_pause_ns: u64,
    pub(super) ms_pause_end: u64,
    pub(super) n_pause: usize,
    pub(super) ms_numgc: u64,
    pub(super) ms_numforcedgc: u64,
    pub(super) ms_gc_cpu_fraction: u64,
    // runtime.gcControllerState
    pub(super) gc_size: u64,
    pub(super) gc_percent: u64,
    pub(super) gc_memory_limit: u64,
    pub(super) gc_percent_heap_goal: u64,
    pub(super) gc_sweep_dist_min_trigger: u64,
    pub(super) gc_triggered: u64,
    pub(super) gc_heap_marked: u64,
    pub(super) gc_heap_live: u64,
    pub(super) gc_heap_in_use: u64,
    pub(super) gc_heap_released: u64,
    pub(super) gc_heap_free: u64,
    pub(super) gc_total_alloc: u64,
    pub(super) gc_total_free: u64,
    pub(super) gc_mapped_ready: u64,
    // runtime.mheap
    pub(super) mh_allspans: u64,
    pub(super) mh_sweepgen: u64,
    pub(super) mh_spanalloc_inuse: u64,
    pub(super) mh_cachealloc_inuse: u64,
    /// `mheap_.arenas` and its width (8: one L1 entry, every 64-bit
    /// non-Windows platform).
    pub(super) mh_arenas: Loc,
    /// `heapArena.bitmap` (Go 1.19–1.21; bytes) and `heapArena.noMorePtrs`
    /// (Go 1.20–1.21): the heap pointer bitmaps (see `arenabits.rs`).
    pub(super) ha_bitmap: Option<Loc>,
    pub(super) ha_no_more_ptrs: Option<Loc>,
    // runtime.mcache
    pub(super) mc_size: u64,
    pub(super) mc_tiny_allocs: u64,
    pub(super) mc_alloc: u64,
    pub(super) n_span_classes: usize,
    // runtime.mspan
    pub(super) sp_size: u64,
    pub(super) sp_start_addr: u64,
    pub(super) sp_npages: u64,
    pub(super) sp_nelems: Loc,
    pub(super) sp_alloc_count: Loc,
    pub(super) sp_alloc_count_before_cache: Loc,
    pub(super) sp_spanclass: u64,
    pub(super) sp_state: u64,
    pub(super) sp_elemsize: u64,
    pub(super) sp_limit: u64,
    pub(super) sp_sweepgen: u64,
    pub(super) sp_large_type: Option<u64>,
    // runtime.workType (optional: only extra information)
    pub(super) w_cycles: Option<u64>,
    pub(super) w_heap0: Option<u64>,
    pub(super) w_heap1: Option<u64>,
    pub(super) w_heap2: Option<u64>,
}

/// [`Loc`]s of heap fields.
impl LayoutCtx<'_> {
    fn loc(&mut self, ty: &str, path: &str) -> Loc {
        let (off, size) = self.field(ty, path);
        Loc { off, size }
    }
    /// A field that may be absent, with its width.
    fn opt_loc(&self, ty: &str, path: &str) -> Option<Loc> {
        Some(Loc {
            off: self.d.offset_of(ty, path)?,
            size: self.d.field_size(ty, path)?,
        })
    }
}

impl HeapLayout {
    /// Layouts from the source [`Layouts`] picks for the binary.
    pub fn from_binary(bin: &Binary) -> Result<HeapLayout> {
        Self::from_source(bin, Layouts::for_binary(bin)?.source())
    }

    /// Layouts from one source (DWARF or tables), by field name.
    pub fn from_source(bin: &Binary, d: &dyn LayoutSource) -> Result<HeapLayout> {
        let mut c = LayoutCtx::new(d);
        const MS: &str = "runtime.mstats";
        const D: &str = "runtime.heapStatsDelta";
        const GC: &str = "runtime.gcControllerState";
        const MH: &str = "runtime.mheap";
        const MC: &str = "runtime.mcache";
        const SP: &str = "runtime.mspan";
        const W: &str = "runtime.workType";
        let delta_size = c.size(D);
        let (heap_stats, n_deltas) = c.array(MS, "heapStats.stats", delta_size);
        let (d_small_alloc_count, n_classes) = c.array(D, "smallAllocCount", 8);
        let (ms_pause_ns, n_pause) = c.array(MS, "pause_ns", 8);
        let (mc_alloc, n_span_classes) = c.array(MC, "alloc", 8);
        let l = HeapLayout {
            heap_stats,
            n_deltas: n_deltas as u64,
            delta_size,
            d_committed: c.off(D, "committed"),
            d_released: c.off(D, "released"),
            d_in_heap: c.off(D, "inHeap"),
            d_in_stacks: c.off(D, "inStacks"),
            d_in_work_bufs: c.off(D, "inWorkBufs"),
            d_in_ptr_scalar_bits: c.opt(D, "inPtrScalarBits"),
            d_tiny_alloc_count: c.off(D, "tinyAllocCount"),
            d_large_alloc: c.off(D, "largeAlloc"),
            d_large_alloc_count: c.off(D, "largeAllocCount"),
            d_small_alloc_count,
            d_large_free: c.off(D, "largeFree"),
            d_large_free_count: c.off(D, "largeFreeCount"),
            d_small_free_count: c.off(D, "smallFreeCount"),
            n_classes,
            ms_size: c.size(MS),
            ms_stacks_sys: c.off(MS, "stacks_sys"),
            ms_mspan_sys: c.off(MS, "mspan_sys"),
            ms_mcache_sys: c.off(MS, "mcache_sys"),
            ms_buckhash_sys: c.off(MS, "buckhash_sys"),
            ms_gc_misc_sys: c.off(MS, "gcMiscSys"),
            ms_other_sys: c.off(MS, "other_sys"),
            ms_last_gc_unix: c.off(MS, "last_gc_unix"),
            ms_pause_total_ns: c.off(MS, "pause_total_ns"),
            ms_pause_ns,
            ms_pause_end: c.off(MS, "pause_end"),
            n_pause,
            ms_numgc: c.off(MS, "numgc"),
            ms_numforcedgc: c.off(MS, "numforcedgc"),
            ms_gc_cpu_fraction: c.off(MS, "gc_cpu_fraction"),
            gc_size: c.size(GC),
            gc_percent: c.off(GC, "gcPercent"),
            gc_memory_limit: c.off(GC, "memoryLimit"),
            gc_percent_heap_goal: c.off(GC, "gcPercentHeapGoal"),
            gc_sweep_dist_min_trigger: c.off(GC, "sweepDistMinTrigger"),
            gc_triggered: c.off(GC, "triggered"),
            gc_heap_marked: c.off(GC, "heapMarked"),
            gc_heap_live: c.off(GC, "heapLive"),
            gc_heap_in_use: c.off(GC, "heapInUse"),
            gc_heap_released: c.off(GC, "heapReleased"),
            gc_heap_free: c.off(GC, "heapFree"),
            gc_total_alloc: c.off(GC, "totalAlloc"),
            gc_total_free: c.off(GC, "totalFree"),
            gc_mapped_ready: c.off(GC, "mappedReady"),
            mh_allspans: c.off(MH, "allspans"),
            mh_sweepgen: c.off(MH, "sweepgen"),
            mh_spanalloc_inuse: c.off(MH, "spanalloc.inuse"),
            mh_cachealloc_inuse: c.off(MH, "cachealloc.inuse"),
            mh_arenas: c.loc(MH, "arenas"),
            ha_bitmap: c.opt_loc("runtime.heapArena", "bitmap"),
            ha_no_more_ptrs: c.opt_loc("runtime.heapArena", "noMorePtrs"),
            mc_size: c.size(MC),
            mc_tiny_allocs: c.off(MC, "tinyAllocs"),
            mc_alloc,
            n_span_classes,
            sp_size: c.size(SP),
            sp_start_addr: c.off(SP, "startAddr"),
            sp_npages: c.off(SP, "npages"),
            sp_nelems: c.loc(SP, "nelems"),
            sp_alloc_count: c.loc(SP, "allocCount"),
            sp_alloc_count_before_cache: c.loc(SP, "allocCountBeforeCache"),
            sp_spanclass: c.off(SP, "spanclass"),
            sp_state: c.off(SP, "state"),
            sp_elemsize: c.off(SP, "elemsize"),
            sp_limit: c.off(SP, "limit"),
            sp_sweepgen: c.off(SP, "sweepgen"),
            sp_large_type: c.opt(SP, "largeType"),
            w_cycles: c.opt(W, "cycles"),
            w_heap0: c.opt(W, "heap0"),
            w_heap1: c.opt(W, "heap1"),
            w_heap2: c.opt(W, "heap2"),
        };
        if l.n_deltas == 0 || l.n_deltas > 16 || l.n_classes == 0 || l.n_classes > 1024 {
            c.missing.push(format!(
                "plausible heapStats ({} deltas, {} size classes)",
                l.n_deltas, l.n_classes
            ));
        }
        if l.n_span_classes == 0 || l.n_span_classes > 4096 || l.n_pause == 0 || l.n_pause > 4096 {
            c.missing
                .push("plausible mcache.alloc / mstats.pause_ns lengths".into());
        }
        for (what, loc) in [
            ("mspan.nelems", l.sp_nelems),
            ("mspan.allocCount", l.sp_alloc_count),
            ("mspan.allocCountBeforeCache", l.sp_alloc_count_before_cache),
        ] {
            if !matches!(loc.size, 1 | 2 | 4 | 8) {
                c.missing.push(format!("{what} width ({} bytes)", loc.size));
            }
        }
        if !c.missing.is_empty() {
            return Err(anyhow!(
                "heap layout not found in {} for {}: {}",
                d.describe(),
                bin.go_version,
                c.missing.join(", ")
            ));
        }
        Ok(l)
    }
}
