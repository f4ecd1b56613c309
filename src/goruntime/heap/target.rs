//! Everything the heap analysis needs from the binary ([`HeapTarget`]) and
//! what a capture must copy for it.

use super::bytes::le64_chunk;
use super::layout::HeapLayout;
use super::model::{Heap, HeapOptions, MAX_SPANS_LIMIT};
use super::pacer::Headroom;
use super::sizeclass::read_class_sizes;
use crate::goruntime::version::globals::global_addr;
use crate::goruntime::{Runtime, Target};
use crate::memory::Memory;
use anyhow::{anyhow, Context, Result};

/// Upper bound on P's (mcaches) considered.
pub(super) const MAX_MCACHES: usize = 100_000;

/// Everything the heap analysis needs from the binary: layouts, runtime
/// addresses (bias applied), size classes and pacer constants.
pub struct HeapTarget {
    pub layout: HeapLayout,
    pub(super) memstats: u64,
    pub(super) gc_controller: u64,
    pub(super) mheap: u64,
    pub(super) emptymspan: u64,
    pub(super) work: Option<u64>,
    pub(super) gcphase: Option<u64>,
    /// Object size of each size class (class 0 = large objects, size 0).
    pub class_sizes: Vec<u32>,
    pub(super) page_size: u64,
    pub(super) span_in_use: u8,
    pub(super) headroom: Headroom,
}

impl HeapTarget {
    pub fn new(t: &Target) -> Result<HeapTarget> {
        let bin = &t.bin;
        let layout = HeapLayout::from_binary(bin)?;
        let need = |name: &str| -> Result<u64> {
            global_addr(bin, name)
                .map(|a| t.rt(a))
                .ok_or_else(|| anyhow!("runtime global {name} not found in the executable"))
        };
        let opt = |name: &str| global_addr(bin, name).map(|a| t.rt(a));
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
    pub(super) fn allspans(&self, mem: &impl Memory) -> Result<(u64, u64)> {
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

/// (P id, mcache address) of every P that has an mcache.
pub(super) fn mcache_addrs(t: &Target, mem: &impl Memory) -> Vec<(i32, u64)> {
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
