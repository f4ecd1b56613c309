//! Heap and GC statistics decoded passively from `(binary, memory)`: a
//! `runtime.MemStats` equivalent, per size class, per P, and large objects.
//!
//! `runtime.ReadMemStats` stops the world, flushes every P's mcache
//! (`flushallmcaches` → `mcache.releaseAll`) and then sums the three
//! `heapStatsDelta` entries of `memstats.heapStats` (`readmemstats_m` in
//! mstats.go). A passive reader cannot flush, but everything a flush would
//! move is visible: for each cached span `s = p.mcache.alloc[spc]` that is not
//! `&runtime.emptymspan`, `s.allocCount - s.allocCountBeforeCache` objects
//! were allocated and not yet counted (they go to size class `spc >> 1`, and
//! `slots * s.elemsize` bytes to `gcController.totalAlloc`), plus the
//! mcache's `tinyAllocs`. With those added, the arithmetic of
//! `readmemstats_m` and `gcControllerState.heapGoal` (mgcpacer.go) is
//! reproduced exactly. What a passive reader cannot reproduce: a flush also
//! sweeps spans cached before the current sweep phase started (only possible
//! while a GC cycle is in progress or its sweep has not finished), which can
//! free objects; see `Heap::warnings`.
//!
//! Layouts come from DWARF by field name; size classes from the binary
//! (`runtime.class_to_size`, `internal/runtime/gc.SizeClassToSize` from Go
//! 1.25). `span.nelems` is always read, never derived, and no assumption is
//! made about where the heap lives (randomised from Go 1.26).

use super::version::choice::Layouts;
use super::version::source::{LayoutCtx, LayoutSource};
use super::{Runtime, Target};
use crate::binary::dwarf::GoKind;
use crate::binary::Binary;
use crate::memory::Memory;
use anyhow::{anyhow, Context, Result};
use serde::Serialize;

/// Spans of `mheap_.allspans` a capture reads by default (about 2.5 MiB).
pub const DEFAULT_MAX_SPANS: usize = 16384;
/// Upper bound on spans read or walked, whatever the options say.
pub const MAX_SPANS_LIMIT: usize = 4_000_000;
/// Upper bound on P's (mcaches) considered.
const MAX_MCACHES: usize = 100_000;

/// Where a field is and how wide it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Loc {
    off: u64,
    size: u64,
}

/// How `memoryLimitHeapGoal` leaves headroom below the limit.
#[derive(Debug, Clone, Copy)]
enum Headroom {
    /// Go 1.19 (and 1.20): a fixed number of bytes.
    Fixed(u64),
    /// Go 1.21+: a percentage of the goal with a minimum.
    Percent { percent: u64, min: u64 },
}

/// Offsets of every field the heap analysis reads, from DWARF or the
/// per-version tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapLayout {
    // memstats.heapStats.stats: [n_deltas]heapStatsDelta
    heap_stats: u64,
    n_deltas: u64,
    delta_size: u64,
    d_committed: u64,
    d_released: u64,
    d_in_heap: u64,
    d_in_stacks: u64,
    d_in_work_bufs: u64,
    d_in_ptr_scalar_bits: Option<u64>,
    d_tiny_alloc_count: u64,
    d_large_alloc: u64,
    d_large_alloc_count: u64,
    d_small_alloc_count: u64,
    d_large_free: u64,
    d_large_free_count: u64,
    d_small_free_count: u64,
    /// Length of smallAllocCount (= number of size classes).
    n_classes: usize,
    // runtime.mstats
    ms_size: u64,
    ms_stacks_sys: u64,
    ms_mspan_sys: u64,
    ms_mcache_sys: u64,
    ms_buckhash_sys: u64,
    ms_gc_misc_sys: u64,
    ms_other_sys: u64,
    ms_last_gc_unix: u64,
    ms_pause_total_ns: u64,
    ms_pause_ns: u64,
    ms_pause_end: u64,
    n_pause: usize,
    ms_numgc: u64,
    ms_numforcedgc: u64,
    ms_gc_cpu_fraction: u64,
    // runtime.gcControllerState
    gc_size: u64,
    gc_percent: u64,
    gc_memory_limit: u64,
    gc_percent_heap_goal: u64,
    gc_sweep_dist_min_trigger: u64,
    gc_triggered: u64,
    gc_heap_marked: u64,
    gc_heap_live: u64,
    gc_heap_in_use: u64,
    gc_heap_released: u64,
    gc_heap_free: u64,
    gc_total_alloc: u64,
    gc_total_free: u64,
    gc_mapped_ready: u64,
    // runtime.mheap
    mh_allspans: u64,
    mh_sweepgen: u64,
    mh_spanalloc_inuse: u64,
    mh_cachealloc_inuse: u64,
    // runtime.mcache
    mc_size: u64,
    mc_tiny_allocs: u64,
    mc_alloc: u64,
    n_span_classes: usize,
    // runtime.mspan
    sp_size: u64,
    sp_start_addr: u64,
    sp_npages: u64,
    sp_nelems: Loc,
    sp_alloc_count: Loc,
    sp_alloc_count_before_cache: Loc,
    sp_spanclass: u64,
    sp_state: u64,
    sp_elemsize: u64,
    sp_limit: u64,
    sp_sweepgen: u64,
    sp_large_type: Option<u64>,
    // runtime.workType (optional: only extra information)
    w_cycles: Option<u64>,
    w_heap0: Option<u64>,
    w_heap1: Option<u64>,
    w_heap2: Option<u64>,
}

/// [`Loc`]s of heap fields.
impl LayoutCtx<'_> {
    fn loc(&mut self, ty: &str, path: &str) -> Loc {
        let (off, size) = self.field(ty, path);
        Loc { off, size }
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

/// Everything the heap analysis needs from the binary: layouts, runtime
/// addresses (bias applied), size classes and pacer constants.
pub struct HeapTarget {
    pub layout: HeapLayout,
    memstats: u64,
    gc_controller: u64,
    mheap: u64,
    emptymspan: u64,
    work: Option<u64>,
    gcphase: Option<u64>,
    /// Object size of each size class (class 0 = large objects, size 0).
    pub class_sizes: Vec<u32>,
    page_size: u64,
    span_in_use: u8,
    headroom: Headroom,
}

impl HeapTarget {
    pub fn new(t: &Target) -> Result<HeapTarget> {
        let bin = &t.bin;
        let layout = HeapLayout::from_binary(bin)?;
        let need = |name: &str| -> Result<u64> {
            bin.global_addr(name)
                .map(|a| t.rt(a))
                .ok_or_else(|| anyhow!("runtime global {name} not found in the executable"))
        };
        let opt = |name: &str| bin.global_addr(name).map(|a| t.rt(a));
        let d = bin.dwarf();
        let constant = |names: &[&str]| -> Option<i64> {
            let d = d?;
            names.iter().find_map(|n| d.constant(n))
        };
        let class_sizes = read_class_sizes(bin, layout.n_classes)?;
        if class_sizes.len() != layout.n_classes {
            return Err(anyhow!(
                "size class table has {} entries but heapStatsDelta.smallAllocCount has {}",
                class_sizes.len(),
                layout.n_classes
            ));
        }
        let page_shift = constant(&[
            "internal/runtime/gc.PageShift",
            "runtime._PageShift",
            "runtime.pageShift",
        ])
        .filter(|v| (12..=20).contains(v))
        .unwrap_or(13);
        let headroom = match (
            constant(&["runtime.memoryLimitHeapGoalHeadroomPercent"]),
            constant(&["runtime.memoryLimitMinHeapGoalHeadroom"]),
            constant(&["runtime.memoryLimitHeapGoalHeadroom"]),
        ) {
            (Some(p), Some(m), _) if p >= 0 && m >= 0 => Headroom::Percent {
                percent: p as u64,
                min: m as u64,
            },
            (_, _, Some(f)) if f >= 0 => Headroom::Fixed(f as u64),
            // Constants missing from DWARF: the values of the Go sources.
            _ if bin.go.at_least(1, 21) => Headroom::Percent {
                percent: 3,
                min: 1 << 20,
            },
            _ => Headroom::Fixed(1 << 20),
        };
        Ok(HeapTarget {
            layout,
            memstats: need("runtime.memstats")?,
            gc_controller: need("runtime.gcController")?,
            mheap: need("runtime.mheap_")?,
            emptymspan: need("runtime.emptymspan")?,
            work: opt("runtime.work"),
            gcphase: opt("runtime.gcphase"),
            class_sizes,
            page_size: 1 << page_shift,
            span_in_use: constant(&["runtime.mSpanInUse"])
                .filter(|v| (0..=255).contains(v))
                .unwrap_or(1) as u8,
            headroom,
        })
    }

    /// `(pointer, len)` of `mheap_.allspans`.
    fn allspans(&self, mem: &impl Memory) -> Result<(u64, u64)> {
        let a = self.mheap + self.layout.mh_allspans;
        let ptr = mem.ptr(a).context("reading mheap_.allspans")?;
        let len = mem.u64(a + 8).context("reading mheap_.allspans")?;
        Ok((ptr, len))
    }

    /// Byte ranges a capture must add once the Ps are readable: each P's
    /// mcache, and the first `max_spans` entries of the allspans array.
    pub fn capture_ranges_1(
        &self,
        t: &Target,
        mem: &impl Memory,
        max_spans: usize,
    ) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for mc in mcache_addrs(t, mem).into_iter().map(|(_, a)| a) {
            out.push((mc, self.layout.mc_size));
        }
        if max_spans > 0 {
            if let Ok((ptr, len)) = self.allspans(mem) {
                let n = len.min(max_spans.min(MAX_SPANS_LIMIT) as u64);
                if ptr != 0 && n > 0 {
                    out.push((ptr, n * 8));
                }
            }
        }
        out
    }

    /// Byte ranges a capture must add once the mcaches and the allspans
    /// array are readable: the spans each mcache caches, and the span structs
    /// of the first `max_spans` allspans entries.
    pub fn capture_ranges_2(
        &self,
        t: &Target,
        mem: &impl Memory,
        max_spans: usize,
    ) -> Vec<(u64, u64)> {
        let l = &self.layout;
        let mut out = Vec::new();
        for (_, mc) in mcache_addrs(t, mem) {
            let Ok(b) = mem.read_vec(mc.wrapping_add(l.mc_alloc), l.n_span_classes * 8) else {
                continue;
            };
            for s in b.chunks_exact(8).map(le64_chunk) {
                if s != 0 && s != self.emptymspan {
                    out.push((s, l.sp_size));
                }
            }
        }
        if max_spans > 0 {
            if let Ok((ptr, len)) = self.allspans(mem) {
                let n = len.min(max_spans.min(MAX_SPANS_LIMIT) as u64);
                if let Ok(b) = mem.read_vec(ptr, (n * 8) as usize) {
                    out.extend(
                        b.chunks_exact(8)
                            .map(le64_chunk)
                            .filter(|&s| s != 0)
                            .map(|s| (s, l.sp_size)),
                    );
                }
            }
        }
        out
    }
}

/// For capture: the heap ranges of a stage (1: mcaches and the allspans
/// array, once the Ps are readable; 2: cached spans and span structs, once
/// stage 1 is readable), tagged for the snapshot. Empty without a heap target.
pub fn capture_plan(
    ht: Option<&HeapTarget>,
    t: &Target,
    mem: &impl Memory,
    stage: u8,
    max_spans: usize,
) -> Vec<(u64, u64, crate::model::RegionKind)> {
    let Some(ht) = ht else {
        return Vec::new();
    };
    let ranges = match stage {
        1 => ht.capture_ranges_1(t, mem, max_spans),
        _ => ht.capture_ranges_2(t, mem, max_spans),
    };
    ranges
        .into_iter()
        .filter(|&(a, l)| a != 0 && l > 0)
        .map(|(a, l)| (a, l, crate::model::RegionKind::Heap))
        .collect()
}

fn le64_chunk(c: &[u8]) -> u64 {
    u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
}

fn le(b: &[u8], off: u64, size: u64) -> u64 {
    let o = off as usize;
    let n = size as usize;
    match b.get(o..o.saturating_add(n)) {
        Some(s) if n <= 8 => {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(s);
            u64::from_le_bytes(a)
        }
        _ => 0,
    }
}
fn le64(b: &[u8], off: u64) -> u64 {
    le(b, off, 8)
}

/// (P id, mcache address) of every P that has an mcache.
fn mcache_addrs(t: &Target, mem: &impl Memory) -> Vec<(i32, u64)> {
    let rt = Runtime::new(t, mem);
    let Ok(addrs) = rt.p_addrs() else {
        return Vec::new();
    };
    addrs
        .into_iter()
        .take(MAX_MCACHES)
        .filter_map(|a| rt.read_p(a).ok())
        .filter(|p| p.mcache != 0)
        .map(|p| (p.id, p.mcache))
        .collect()
}

/// The object size of every size class, from the binary itself.
fn read_class_sizes(bin: &Binary, n_classes: usize) -> Result<Vec<u32>> {
    const NAMES: [&str; 2] = [
        "internal/runtime/gc.SizeClassToSize",
        "runtime.class_to_size",
    ];
    let d = bin.dwarf();
    for name in NAMES {
        // Address and byte size: symbol table, else DWARF.
        let (addr, mut size) = match bin.elf.symbol(name) {
            Some(s) => s,
            None => match d.and_then(|d| d.global(name)) {
                Some(g) => (g.addr, 0),
                None => continue,
            },
        };
        // Element width and count from the DWARF type when present.
        let mut elem = 2u64;
        if let Some((len, esize)) = d.and_then(|d| {
            let ty = d.global(name)?.ty?;
            match d.resolve(ty)?.kind.clone() {
                GoKind::Array { elem, len } => Some((len, d.resolve(elem)?.size)),
                _ => None,
            }
        }) {
            if matches!(esize, 1 | 2 | 4 | 8) {
                elem = esize;
                size = len * esize;
            }
        }
        if size == 0 || size > 4096 * elem {
            continue;
        }
        let mut buf = vec![0u8; size as usize];
        if !bin.elf.read_vaddr(addr, &mut buf, true) {
            continue;
        }
        return Ok(buf
            .chunks_exact(elem as usize)
            .map(|c| le(c, 0, elem) as u32)
            .collect());
    }
    // No symbol and no DWARF (`-ldflags='-s -w'`): the table is an
    // initialised variable, found by its contents in the writable segments.
    if d.is_none() {
        if let Some(v) = scan_class_sizes(bin, n_classes) {
            return Ok(v);
        }
    }
    Err(anyhow!(
        "size class table (runtime.class_to_size / internal/runtime/gc.SizeClassToSize) not found in the executable"
    ))
}

/// `class_to_size` located by its contents: `n_classes` little-endian
/// uint16s starting 0, 8, 16, 24, 32, 48 (the classes of every Go version
/// since 1.12, sizeclasses.go), strictly increasing multiples of 8 that end
/// at the largest small object size, 32768.
fn scan_class_sizes(bin: &Binary, n_classes: usize) -> Option<Vec<u32>> {
    const HEAD: [u16; 6] = [0, 8, 16, 24, 32, 48];
    const MAX_SMALL: u32 = 32768;
    if !(HEAD.len()..=1024).contains(&n_classes) {
        return None;
    }
    let head: Vec<u8> = HEAD.iter().flat_map(|v| v.to_le_bytes()).collect();
    for seg in bin
        .elf
        .segments
        .iter()
        .filter(|s| s.writable && s.filesz > 0)
    {
        let Some(data) = bin.elf.vaddr_tail(seg.vaddr) else {
            continue;
        };
        let need = n_classes * 2;
        let mut at = 0;
        while at + need <= data.len() {
            if data[at..at + head.len()] == head[..] {
                let v: Vec<u32> = data[at..at + need]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                    .collect();
                let ok = v.windows(2).all(|w| w[0] < w[1])
                    && v.iter().all(|&x| x % 8 == 0)
                    && v.last() == Some(&MAX_SMALL);
                if ok {
                    return Some(v);
                }
            }
            at += 2;
        }
    }
    None
}

// ---------------------------------------------------------------- the model

/// `runtime.MemStats`, field for field (JSON names are Go's).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemStats {
    #[serde(rename = "Alloc")]
    pub alloc: u64,
    #[serde(rename = "TotalAlloc")]
    pub total_alloc: u64,
    #[serde(rename = "Sys")]
    pub sys: u64,
    #[serde(rename = "Lookups")]
    pub lookups: u64,
    #[serde(rename = "Mallocs")]
    pub mallocs: u64,
    #[serde(rename = "Frees")]
    pub frees: u64,
    #[serde(rename = "HeapAlloc")]
    pub heap_alloc: u64,
    #[serde(rename = "HeapSys")]
    pub heap_sys: u64,
    #[serde(rename = "HeapIdle")]
    pub heap_idle: u64,
    #[serde(rename = "HeapInuse")]
    pub heap_inuse: u64,
    #[serde(rename = "HeapReleased")]
    pub heap_released: u64,
    #[serde(rename = "HeapObjects")]
    pub heap_objects: u64,
    #[serde(rename = "StackInuse")]
    pub stack_inuse: u64,
    #[serde(rename = "StackSys")]
    pub stack_sys: u64,
    #[serde(rename = "MSpanInuse")]
    pub mspan_inuse: u64,
    #[serde(rename = "MSpanSys")]
    pub mspan_sys: u64,
    #[serde(rename = "MCacheInuse")]
    pub mcache_inuse: u64,
    #[serde(rename = "MCacheSys")]
    pub mcache_sys: u64,
    #[serde(rename = "BuckHashSys")]
    pub buckhash_sys: u64,
    #[serde(rename = "GCSys")]
    pub gc_sys: u64,
    #[serde(rename = "OtherSys")]
    pub other_sys: u64,
    #[serde(rename = "NextGC")]
    pub next_gc: u64,
    #[serde(rename = "LastGC")]
    pub last_gc: u64,
    #[serde(rename = "PauseTotalNs")]
    pub pause_total_ns: u64,
    #[serde(rename = "PauseNs")]
    pub pause_ns: Vec<u64>,
    #[serde(rename = "PauseEnd")]
    pub pause_end: Vec<u64>,
    #[serde(rename = "NumGC")]
    pub num_gc: u32,
    #[serde(rename = "NumForcedGC")]
    pub num_forced_gc: u32,
    #[serde(rename = "GCCPUFraction")]
    pub gc_cpu_fraction: f64,
    #[serde(rename = "EnableGC")]
    pub enable_gc: bool,
    #[serde(rename = "DebugGC")]
    pub debug_gc: bool,
    /// The first 61 size classes, like MemStats.BySize.
    #[serde(rename = "BySize")]
    pub by_size: Vec<BySize>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BySize {
    #[serde(rename = "Size")]
    pub size: u32,
    #[serde(rename = "Mallocs")]
    pub mallocs: u64,
    #[serde(rename = "Frees")]
    pub frees: u64,
}

/// Number of entries of MemStats.BySize (fixed by the Go API).
pub const MEMSTATS_BY_SIZE: usize = 61;

/// GC and pacer state beyond MemStats.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcState {
    /// GOGC (`gcController.gcPercent`); negative means off.
    pub gc_percent: i32,
    /// GOMEMLIMIT (`gcController.memoryLimit`); i64::MAX means no limit.
    pub memory_limit: i64,
    /// "off", "mark" or "mark termination" (`runtime.gcphase`).
    pub phase: String,
    /// GC cycles started (`work.cycles`); more than NumGC while one runs.
    pub cycles_started: Option<u32>,
    /// Heap goal from GOGC alone (`gcController.gcPercentHeapGoal`).
    pub gc_percent_heap_goal: u64,
    /// Heap goal from the memory limit (`memoryLimitHeapGoal`).
    pub memory_limit_heap_goal: u64,
    /// `gcController.heapLive` (bytes the pacer considers live, includes
    /// whole cached spans) and `heapMarked` (marked by the last cycle).
    pub heap_live: u64,
    pub heap_marked: u64,
    /// The last cycle's heap at start, end of mark, and marked
    /// (`work.heap0/heap1/heap2`, the numbers of GODEBUG=gctrace=1).
    pub last_cycle_heap: Option<[u64; 3]>,
    /// Nanoseconds between the last GC and the capture (wall clock).
    pub last_gc_ago_ns: Option<u64>,
    /// Most recent first, at most 256 (the runtime's ring).
    pub recent_pauses: Vec<Pause>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Pause {
    pub pause_ns: u64,
    /// Unix nanoseconds when the pause ended.
    pub end_unix_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SizeClass {
    pub class: usize,
    /// Object size in bytes.
    pub size: u32,
    /// Cumulative allocations and frees, MemStats.BySize style (in-flight
    /// mcache allocations included).
    pub mallocs: u64,
    pub frees: u64,
    /// Live objects (mallocs - frees) and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// In-use spans of this class, and their bytes, from `mheap_.allspans`
    /// (None when the spans were not captured).
    pub spans: Option<u64>,
    pub span_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CachedSpan {
    pub span_class: u8,
    pub size_class: usize,
    pub noscan: bool,
    pub span: u64,
    pub base: u64,
    pub npages: u64,
    pub elem_size: u64,
    pub nelems: u64,
    pub alloc_count: u64,
    pub alloc_count_before_cache: u64,
    /// Allocated since the span was cached: not yet in heapStats.
    pub in_flight: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PCache {
    pub p: i32,
    pub mcache: u64,
    pub tiny_allocs: u64,
    pub in_flight_objects: i64,
    pub in_flight_bytes: i64,
    pub spans: Vec<CachedSpan>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LargeObject {
    pub addr: u64,
    /// Bytes the object occupies (span pages).
    pub span_bytes: u64,
    /// Requested size where the runtime records it (`span.limit - base`).
    pub size: u64,
    pub noscan: bool,
    /// Go type (Go 1.22+ `span.largeType`, mapped through DWARF).
    pub type_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Large {
    /// Live large objects and bytes (heapStats: largeAlloc* - largeFree*).
    pub count: u64,
    pub bytes: u64,
    pub allocs: u64,
    pub frees: u64,
    pub alloc_bytes: u64,
    pub free_bytes: u64,
    /// With `--large`: in-use large-object spans from `mheap_.allspans`,
    /// biggest first.
    pub objects: Option<Vec<LargeObject>>,
}

/// How much of `mheap_.allspans` could be walked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpanCoverage {
    /// len(mheap_.allspans).
    pub total: u64,
    /// Entries walked (capped at capture or by the walk limit).
    pub walked: u64,
    /// Entries whose span struct was not in memory.
    pub missing: u64,
    /// Spans in state mSpanInUse among those walked.
    pub in_use: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Heap {
    pub memstats: MemStats,
    pub gc: GcState,
    pub size_classes: Vec<SizeClass>,
    pub per_p: Vec<PCache>,
    pub large: Large,
    pub spans: Option<SpanCoverage>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HeapOptions {
    /// Walk `mheap_.allspans` (spans per size class).
    pub walk_spans: bool,
    /// List large objects (implies walking).
    pub list_large: bool,
    /// At most this many allspans entries are walked.
    pub max_spans: usize,
}

impl Default for HeapOptions {
    fn default() -> Self {
        HeapOptions {
            walk_spans: true,
            list_large: false,
            max_spans: MAX_SPANS_LIMIT,
        }
    }
}

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

/// A decoded span (the fields the heap analysis uses).
#[derive(Debug, Clone, Default)]
struct Span {
    start: u64,
    npages: u64,
    nelems: u64,
    alloc_count: u64,
    alloc_count_before_cache: u64,
    spanclass: u8,
    state: u8,
    elemsize: u64,
    limit: u64,
    large_type: u64,
}

impl HeapTarget {
    fn read_span(&self, mem: &impl Memory, addr: u64) -> Option<Span> {
        let l = &self.layout;
        let b = mem.read_vec(addr, l.sp_size as usize).ok()?;
        Some(Span {
            start: le64(&b, l.sp_start_addr),
            npages: le64(&b, l.sp_npages),
            nelems: le(&b, l.sp_nelems.off, l.sp_nelems.size),
            alloc_count: le(&b, l.sp_alloc_count.off, l.sp_alloc_count.size),
            alloc_count_before_cache: le(
                &b,
                l.sp_alloc_count_before_cache.off,
                l.sp_alloc_count_before_cache.size,
            ),
            spanclass: le(&b, l.sp_spanclass, 1) as u8,
            state: le(&b, l.sp_state, 1) as u8,
            elemsize: le64(&b, l.sp_elemsize),
            limit: le64(&b, l.sp_limit),
            large_type: l.sp_large_type.map(|o| le64(&b, o)).unwrap_or(0),
        })
    }

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

/// Decode the heap: MemStats as `runtime.ReadMemStats` would return it at
/// the moment of the capture, plus per size class, per P and large objects.
/// `capture_wall_ns` (Unix ns) gives "last GC N ago".
pub fn read_heap<M: Memory>(
    t: &Target,
    mem: &M,
    opts: &HeapOptions,
    capture_wall_ns: u64,
) -> Result<Heap> {
    let ht = HeapTarget::new(t)?;
    ht.read(t, mem, opts, capture_wall_ns)
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

        // readmemstats_m.
        let sizes = &self.class_sizes;
        let mut total_alloc = d.large_alloc;
        let mut n_malloc = d.large_alloc_count;
        let mut total_free = d.large_free;
        let mut n_free = d.large_free_count;
        let mut size_classes = Vec::with_capacity(l.n_classes);
        for (i, &size) in sizes.iter().enumerate() {
            let a = d.small_alloc_count[i];
            let f = d.small_free_count[i];
            total_alloc = total_alloc.wrapping_add(a.wrapping_mul(size as u64));
            n_malloc = n_malloc.wrapping_add(a);
            total_free = total_free.wrapping_add(f.wrapping_mul(size as u64));
            n_free = n_free.wrapping_add(f);
            let objects = a.saturating_sub(f);
            size_classes.push(SizeClass {
                class: i,
                size,
                mallocs: a,
                frees: f,
                objects,
                bytes: objects.saturating_mul(size as u64),
                spans: None,
                span_bytes: None,
            });
        }
        n_free = n_free.wrapping_add(d.tiny_alloc_count);
        n_malloc = n_malloc.wrapping_add(d.tiny_alloc_count);

        let stack_in_use = d.in_stacks as u64;
        let work_bufs = d.in_work_bufs as u64;
        let ptr_bits = d.in_ptr_scalar_bits as u64;
        let g64 = |o: u64| le64(&gc, o);
        let m64 = |o: u64| le64(&ms, o);
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

        // gcController.heapGoal(), with totalAlloc as it is after the flush.
        let gc_percent = le(&gc, l.gc_percent, 4) as u32 as i32;
        let memory_limit = g64(l.gc_memory_limit) as i64;
        let heap_marked = g64(l.gc_heap_marked);
        let gc_total_alloc = g64(l.gc_total_alloc).wrapping_add(in_flight_bytes as u64);
        let gc_total_free = g64(l.gc_total_free);
        let mapped_ready = g64(l.gc_mapped_ready);
        let mem_goal = memory_limit_heap_goal(
            self.headroom,
            memory_limit as u64,
            heap_free,
            gc_total_alloc.wrapping_sub(gc_total_free),
            mapped_ready,
            heap_marked,
        );
        let pct_goal = g64(l.gc_percent_heap_goal);
        let next_gc = heap_goal(
            pct_goal,
            mem_goal,
            g64(l.gc_sweep_dist_min_trigger),
            g64(l.gc_triggered),
        );

        let mh = |o: u64| mem.u64(self.mheap + o).unwrap_or(0);
        let numgc = le(&ms, l.ms_numgc, 4) as u32;
        let pause_ns: Vec<u64> = (0..l.n_pause as u64)
            .map(|i| m64(l.ms_pause_ns + i * 8))
            .collect();
        let pause_end: Vec<u64> = (0..l.n_pause as u64)
            .map(|i| m64(l.ms_pause_end + i * 8))
            .collect();
        let last_gc = m64(l.ms_last_gc_unix);
        let memstats = MemStats {
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
            last_gc,
            pause_total_ns: m64(l.ms_pause_total_ns),
            pause_ns: pause_ns.clone(),
            pause_end: pause_end.clone(),
            num_gc: numgc,
            num_forced_gc: le(&ms, l.ms_numforcedgc, 4) as u32,
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
        };

        // GC state.
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
                    pause_ns: pause_ns.get(j).copied().unwrap_or(0),
                    end_unix_ns: pause_end.get(j).copied().unwrap_or(0),
                }
            })
            .collect();
        let last_cycle_heap = match (work(l.w_heap0, 8), work(l.w_heap1, 8), work(l.w_heap2, 8)) {
            (Some(a), Some(b), Some(c)) if numgc > 0 => Some([a, b, c]),
            _ => None,
        };
        let gcs = GcState {
            gc_percent,
            memory_limit,
            phase: match phase {
                Some(0) => "off".into(),
                Some(1) => "mark".into(),
                Some(2) => "mark termination".into(),
                Some(v) => format!("phase {v}"),
                None => "?".into(),
            },
            cycles_started: work(l.w_cycles, 4).map(|v| v as u32),
            gc_percent_heap_goal: pct_goal,
            memory_limit_heap_goal: mem_goal,
            heap_live: g64(l.gc_heap_live),
            heap_marked,
            last_cycle_heap,
            last_gc_ago_ns: (last_gc > 0 && capture_wall_ns >= last_gc)
                .then(|| capture_wall_ns - last_gc),
            recent_pauses,
        };
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

    /// Cached spans whose sweepgen is `mheap_.sweepgen + 1`: cached before
    /// the current sweep began, so uncaching them sweeps them (mcentral.go).
    fn stale_cached_spans(&self, mem: &impl Memory, per_p: &[PCache]) -> usize {
        let l = &self.layout;
        let Ok(sweepgen) = mem.u32(self.mheap + l.mh_sweepgen) else {
            return 0;
        };
        per_p
            .iter()
            .flat_map(|pc| &pc.spans)
            .filter(|s| {
                mem.u32(s.span.wrapping_add(l.sp_sweepgen))
                    .is_ok_and(|sg| sg == sweepgen.wrapping_add(1))
            })
            .count()
    }

    /// Walk `mheap_.allspans`: spans per size class, large-object spans.
    fn walk_spans<M: Memory>(
        &self,
        t: &Target,
        mem: &M,
        opts: &HeapOptions,
        classes: &mut [SizeClass],
    ) -> Result<(SpanCoverage, Vec<LargeObject>)> {
        let (ptr, len) = self.allspans(mem)?;
        let limit = opts.max_spans.min(MAX_SPANS_LIMIT) as u64;
        let mut cov = SpanCoverage {
            total: len,
            ..Default::default()
        };
        let mut counts = vec![(0u64, 0u64); classes.len()];
        let mut large = Vec::new();
        // Read the array in chunks: what was captured may be a prefix.
        const CHUNK: u64 = 4096;
        let mut i = 0u64;
        'outer: while i < len.min(limit) {
            let n = CHUNK.min(len.min(limit) - i);
            let Ok(raw) = mem.read_vec(ptr.wrapping_add(i * 8), (n * 8) as usize) else {
                // Fall back to single entries for a partially captured chunk.
                for k in i..i + n {
                    match mem.ptr(ptr.wrapping_add(k * 8)) {
                        Ok(s) => self.visit_span(t, mem, s, &mut cov, &mut counts, &mut large),
                        Err(_) => break 'outer,
                    }
                }
                i += n;
                continue;
            };
            for s in raw.chunks_exact(8).map(le64_chunk) {
                self.visit_span(t, mem, s, &mut cov, &mut counts, &mut large);
            }
            i += n;
        }
        let unreadable = cov.missing;
        cov.missing += cov.total.min(limit).saturating_sub(cov.walked);
        // No span readable (spans not captured): leave the columns unknown.
        if cov.walked > unreadable {
            for (c, (n, bytes)) in classes.iter_mut().zip(counts) {
                c.spans = Some(n);
                c.span_bytes = Some(bytes);
            }
        }
        large.sort_by(|a, b| b.span_bytes.cmp(&a.span_bytes).then(a.addr.cmp(&b.addr)));
        Ok((cov, large))
    }

    fn visit_span<M: Memory>(
        &self,
        t: &Target,
        mem: &M,
        s: u64,
        cov: &mut SpanCoverage,
        counts: &mut [(u64, u64)],
        large: &mut Vec<LargeObject>,
    ) {
        cov.walked += 1;
        if s == 0 {
            return;
        }
        let Some(sp) = self.read_span(mem, s) else {
            cov.missing += 1;
            return;
        };
        if sp.state != self.span_in_use {
            return;
        }
        cov.in_use += 1;
        let class = (sp.spanclass >> 1) as usize;
        let bytes = sp.npages.saturating_mul(self.page_size);
        if let Some(c) = counts.get_mut(class) {
            c.0 += 1;
            c.1 = c.1.saturating_add(bytes);
        }
        if class == 0 {
            let size = if sp.limit > sp.start && sp.limit - sp.start <= bytes {
                sp.limit - sp.start
            } else {
                bytes
            };
            large.push(LargeObject {
                addr: sp.start,
                span_bytes: bytes,
                size,
                noscan: sp.spanclass & 1 == 1,
                type_name: self.type_name(t, mem, sp.large_type, size),
            });
        }
    }

    /// Name of the Go type whose runtime descriptor is at `addr`; an object
    /// of `size` bytes holding several of them (a slice's backing array) is
    /// shown as `[N]T`, as the runtime records the element type. DWARF
    /// first, else the descriptor's own name and size (stripped builds).
    fn type_name<M: Memory>(&self, t: &Target, mem: &M, addr: u64, size: u64) -> Option<String> {
        if addr == 0 {
            return None;
        }
        let from_dwarf = t.bin.dwarf().and_then(|d| {
            let r = d.type_by_runtime_addr(addr.wrapping_sub(t.bias))?;
            let name = d.type_name(r).filter(|n| !n.is_empty())?;
            Some((name, d.resolve(r).map(|ty| ty.size)))
        });
        let (name, es) = match from_dwarf {
            Some(x) => x,
            None => super::descriptor_name(t, mem, addr)?,
        };
        match es {
            Some(es) if es > 0 && size >= 2 * es => Some(format!("[{}]{name}", size / es)),
            _ => Some(name),
        }
    }
}

/// `gcControllerState.memoryLimitHeapGoal` (mgcpacer.go).
fn memory_limit_heap_goal(
    headroom: Headroom,
    memory_limit: u64,
    heap_free: u64,
    heap_alloc: u64,
    mapped_ready: u64,
    heap_marked: u64,
) -> u64 {
    let non_heap = mapped_ready
        .wrapping_sub(heap_free)
        .wrapping_sub(heap_alloc);
    let overage = mapped_ready.saturating_sub(memory_limit);
    let reserved = non_heap.wrapping_add(overage);
    if reserved >= memory_limit {
        return heap_marked;
    }
    let mut goal = memory_limit - reserved;
    let headroom = match headroom {
        Headroom::Fixed(h) => h,
        Headroom::Percent { percent, min } => (goal / 100).saturating_mul(percent).max(min),
    };
    if goal < headroom || goal - headroom < headroom {
        goal = headroom;
    } else {
        goal -= headroom;
    }
    goal.max(heap_marked)
}

/// `gcControllerState.heapGoalInternal` (identical from Go 1.19 to 1.27).
fn heap_goal(gc_percent_goal: u64, mem_goal: u64, sweep_dist_trigger: u64, triggered: u64) -> u64 {
    let mut goal = gc_percent_goal;
    if mem_goal < goal {
        return mem_goal;
    }
    if sweep_dist_trigger > goal {
        goal = sweep_dist_trigger;
    }
    const MIN_RUNWAY: u64 = 64 << 10;
    if triggered != u64::MAX && goal < triggered.wrapping_add(MIN_RUNWAY) {
        goal = triggered.wrapping_add(MIN_RUNWAY);
    }
    goal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_goal_branches() {
        // Memory limit wins.
        assert_eq!(heap_goal(100, 50, 0, u64::MAX), 50);
        // Sweep distance pushes the goal up.
        assert_eq!(heap_goal(100, 1000, 200, u64::MAX), 200);
        // Minimum runway above the trigger point.
        assert_eq!(heap_goal(100, 1 << 40, 0, 90), 90 + (64 << 10));
    }

    #[test]
    fn memory_limit_goal() {
        let pct = Headroom::Percent {
            percent: 3,
            min: 1 << 20,
        };
        // No limit (GOMEMLIMIT unset): 3% below the limit minus non-heap memory.
        assert_eq!(
            memory_limit_heap_goal(pct, i64::MAX as u64, 100, 500, 1000, 0),
            8946670875749132145
        );
        // Go 1.19: a fixed 1 MiB of headroom.
        assert_eq!(
            memory_limit_heap_goal(Headroom::Fixed(1 << 20), 1 << 30, 100, 500, 1000, 0),
            (1 << 30) - 400 - (1 << 20)
        );
        // Non-heap memory above the limit: the goal is the marked heap.
        assert_eq!(memory_limit_heap_goal(pct, 300, 100, 500, 1000, 77), 77);
        // Tiny limits: the goal is the headroom itself, never below heapMarked.
        assert_eq!(
            memory_limit_heap_goal(pct, 4096, 100, 500, 1000, 0),
            1 << 20
        );
        assert_eq!(
            memory_limit_heap_goal(pct, 4096, 100, 500, 1000, 5 << 20),
            5 << 20
        );
    }

    #[test]
    fn le_reads_are_bounded() {
        let b = [1u8, 2, 3];
        assert_eq!(le(&b, 0, 2), 0x0201);
        assert_eq!(le(&b, 2, 8), 0);
        assert_eq!(le(&b, u64::MAX, 8), 0);
    }
}
