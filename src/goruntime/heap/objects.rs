//! Every allocated heap object: the slots of every in-use span of
//! `mheap_.allspans`, as the garbage collector sees them.
//!
//! A slot `i` of a small-object span is allocated when `i < freeindex`
//! (the allocator hands slots out in order from there) or its bit in
//! `allocBits` is set (`mspan.isFree`, mbitmap.go, every version 1.19–1.27).
//! A large-object span (size class 0) is one object of `npages` pages.
//!
//! The runtime's own type of an object, where it records one (Go 1.22+,
//! allocation headers, mbitmap.go): objects over 512 bytes with pointers in
//! small-object spans start with an 8-byte header holding their `*_type`;
//! a large object with pointers has it in `span.largeType`. The header is
//! part of the slot (`elemsize`), as HeapAlloc counts it.
//!
//! Each object's pointer count comes from its exact pointer mask
//! (`ptrmask::HeapMasks`, the one decoder the heap graph uses too).
//!
//! Green Tea GC (1.26+) keeps mark bits inline at the end of small spans;
//! `nelems` is read, never derived, so the slots stop before them.
//!
//! Bounded: spans, slots and objects are capped; a span whose fields are
//! implausible or whose memory was not captured is counted, never followed.

use super::bytes::le;
use super::layout::Loc;
use super::ptrmask::HeapMasks;
use super::spans::Span;
use super::target::HeapTarget;
use crate::goruntime::version::choice::Layouts;
use crate::goruntime::version::source::LayoutCtx;
use crate::goruntime::Target;
use crate::memory::Memory;
use anyhow::{anyhow, Result};

/// Upper bound on objects listed (about 32 bytes each).
pub const MAX_OBJECTS: usize = 100_000_000;
/// Largest span (pages) taken as plausible: 64 GiB of 8 KiB pages.
const MAX_SPAN_PAGES: u64 = 1 << 23;
pub use super::slot::{HeapObject, MIN_SIZE_FOR_HEADER, PTRS_UNKNOWN};

/// Every allocated object, sorted by address, and what could not be walked.
#[derive(Debug, Clone, Default)]
pub struct HeapObjects {
    pub objects: Vec<HeapObject>,
    /// len(mheap_.allspans), and the in-use spans among them.
    pub spans_total: u64,
    pub spans_in_use: u64,
    /// In-use spans whose memory (or allocBits) is not in the snapshot.
    pub spans_missing: u64,
    /// Spans skipped for implausible fields; allocBits counts that differ
    /// from `allocCount`.
    pub bad_spans: u64,
    pub count_mismatch: u64,
    /// Whether the target records types in headers (Go 1.22+).
    pub headers: bool,
    pub warnings: Vec<String>,
}

/// The span fields the object walk adds to [`Span`].
#[derive(Debug, Clone)]
pub(super) struct SlotLayout {
    freeindex: Loc,
    alloc_bits: u64,
}

impl SlotLayout {
    pub(super) fn new(t: &Target) -> Result<SlotLayout> {
        let l = Layouts::for_binary(&t.bin)?;
        let mut c = LayoutCtx::new(l.source());
        let (off, size) = c.field("runtime.mspan", "freeindex");
        let alloc_bits = c.off("runtime.mspan", "allocBits");
        if !c.missing.is_empty() || !matches!(size, 2 | 4 | 8) {
            return Err(anyhow!(
                "span layout incomplete for the object walk: {}",
                c.missing.join(", ")
            ));
        }
        Ok(SlotLayout {
            freeindex: Loc { off, size },
            alloc_bits,
        })
    }
}

/// A span's slot geometry, checked.
struct Geometry {
    bytes: u64,
    nelems: u64,
    elemsize: u64,
}

impl HeapTarget {
    /// Plausible geometry of an in-use span, or None.
    fn geometry(&self, sp: &Span) -> Option<Geometry> {
        if sp.start == 0 || sp.npages == 0 || sp.npages > MAX_SPAN_PAGES {
            return None;
        }
        let bytes = sp.npages.checked_mul(self.page_size)?;
        sp.start.checked_add(bytes)?;
        let class = (sp.spanclass >> 1) as usize;
        if class == 0 {
            return Some(Geometry {
                bytes,
                nelems: 1,
                elemsize: bytes,
            });
        }
        let size = *self.class_sizes.get(class)? as u64;
        if size == 0 || sp.elemsize != size || sp.nelems == 0 {
            return None;
        }
        if sp.nelems.checked_mul(size)? > bytes {
            return None;
        }
        Some(Geometry {
            bytes,
            nelems: sp.nelems,
            elemsize: size,
        })
    }

    /// In-use span structs of allspans: (address, decoded span).
    fn in_use_spans<M: Memory>(&self, mem: &M, out: &mut HeapObjects) -> Result<Vec<(u64, Span)>> {
        let (ptr, len) = self.allspans(mem)?;
        out.spans_total = len;
        let n = len.min(super::model::MAX_SPANS_LIMIT as u64);
        if n < len {
            out.warnings.push(format!(
                "only the first {n} of {len} spans of mheap_.allspans were walked"
            ));
        }
        let mut spans = Vec::new();
        let mut unreadable = 0u64;
        for i in 0..n {
            let Ok(s) = mem.ptr(ptr.wrapping_add(i * 8)) else {
                unreadable += n - i;
                break;
            };
            if s == 0 {
                continue;
            }
            match self.read_span(mem, s) {
                Some(sp) if sp.state == self.span_in_use => spans.push((s, sp)),
                Some(_) => {}
                None => unreadable += 1,
            }
        }
        if unreadable > 0 {
            out.spans_missing += unreadable;
        }
        out.spans_in_use = spans.len() as u64;
        Ok(spans)
    }

    /// Byte ranges that make a capture heap-complete, once every span
    /// struct is readable: each in-use span's memory and its allocBits.
    pub fn heap_span_ranges(&self, t: &Target, mem: &impl Memory) -> Vec<(u64, u64)> {
        let Ok(sl) = SlotLayout::new(t) else {
            return Vec::new();
        };
        let mut scratch = HeapObjects::default();
        let Ok(spans) = self.in_use_spans(mem, &mut scratch) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(spans.len() * 2);
        for (s, sp) in spans {
            let Some(g) = self.geometry(&sp) else {
                continue;
            };
            out.push((sp.start, g.bytes));
            if sp.spanclass >> 1 != 0 {
                if let Ok(bits) = mem.ptr(s.wrapping_add(sl.alloc_bits)) {
                    if bits != 0 {
                        out.push((bits, g.nelems.div_ceil(8)));
                    }
                }
            }
        }
        out
    }

    /// Go 1.19–1.21: what makes the pointer bitmaps of the in-use scannable
    /// spans readable offline (`arenabits.rs`). With `entries`, the L2
    /// entries (`mheap_.arenas[0][i]`) of their arenas; without, the bitmap
    /// (and `noMorePtrs`) bytes describing the spans, which can only be
    /// located once those entries are in `mem`. Empty on Go 1.22+.
    pub fn heap_bitmap_ranges(
        &self,
        t: &Target,
        mem: &impl Memory,
        entries: bool,
    ) -> Vec<(u64, u64)> {
        let Some(mut ab) = super::arenabits::ArenaBits::new(t, self) else {
            return Vec::new();
        };
        let mut scratch = HeapObjects::default();
        let Ok(spans) = self.in_use_spans(mem, &mut scratch) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (_, sp) in spans {
            if sp.spanclass & 1 == 1 {
                continue;
            }
            if let Some(g) = self.geometry(&sp) {
                ab.capture_ranges(mem, sp.start, g.bytes, entries, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every allocated object of every in-use span.
    pub fn heap_objects<M: Memory>(&self, t: &Target, mem: &M) -> Result<HeapObjects> {
        let sl = SlotLayout::new(t)?;
        let mut out = HeapObjects {
            headers: self.layout.sp_large_type.is_some(),
            ..Default::default()
        };
        let spans = self.in_use_spans(mem, &mut out)?;
        let mut masks = HeapMasks::with_target(t, Some(self));
        for (s, sp) in &spans {
            if out.objects.len() >= MAX_OBJECTS {
                out.warnings.push(format!(
                    "object walk stopped at {MAX_OBJECTS} objects; the rest of the heap is not counted"
                ));
                break;
            }
            self.span_objects(mem, &sl, *s, sp, &mut masks, &mut out);
        }
        out.objects.sort_unstable_by_key(|o| o.addr);
        let before = out.objects.len();
        out.objects.dedup_by_key(|o| o.addr);
        if out.objects.len() != before {
            out.bad_spans += 1;
            out.warnings
                .push("overlapping spans: duplicate objects dropped".into());
        }
        if out.spans_missing > 0 {
            out.warnings.push(format!(
                "{} of {} in-use spans are not in the snapshot: their objects are not counted",
                out.spans_missing, out.spans_in_use
            ));
        }
        if out.bad_spans > 0 {
            out.warnings.push(format!(
                "{} spans skipped: implausible fields (torn or corrupted memory)",
                out.bad_spans
            ));
        }
        if out.count_mismatch > 0 {
            out.warnings.push(format!(
                "{} spans: allocated slots differ from span.allocCount (memory changed while read?)",
                out.count_mismatch
            ));
        }
        Ok(out)
    }

    /// The allocated objects of one span.
    fn span_objects<M: Memory>(
        &self,
        mem: &M,
        sl: &SlotLayout,
        s: u64,
        sp: &Span,
        masks: &mut HeapMasks,
        out: &mut HeapObjects,
    ) {
        let Some(g) = self.geometry(sp) else {
            out.bad_spans += 1;
            return;
        };
        // The span's memory must be in the snapshot (both ends checked).
        let mut b = [0u8; 1];
        if mem.read_exact(sp.start, &mut b).is_err()
            || mem.read_exact(sp.start + g.bytes - 1, &mut b).is_err()
        {
            out.spans_missing += 1;
            return;
        }
        let noscan = sp.spanclass & 1 == 1;
        if sp.spanclass >> 1 == 0 {
            out.objects.push(HeapObject {
                addr: sp.start,
                size: g.bytes,
                spanclass: sp.spanclass,
                rtype: if noscan { 0 } else { sp.large_type },
                ptrs: if noscan { 0 } else { PTRS_UNKNOWN },
            });
            return;
        }
        let fi = mem
            .read_vec(s.wrapping_add(sl.freeindex.off), sl.freeindex.size as usize)
            .map(|v| le(&v, 0, sl.freeindex.size))
            .unwrap_or(u64::MAX);
        let bits = mem
            .ptr(s.wrapping_add(sl.alloc_bits))
            .ok()
            .and_then(|p| mem.read_vec(p, g.nelems.div_ceil(8) as usize).ok());
        let (Some(bits), true) = (bits, fi <= g.nelems) else {
            out.spans_missing += 1;
            return;
        };
        let header = out.headers && !noscan && g.elemsize > MIN_SIZE_FOR_HEADER;
        let mut n = 0u64;
        for i in 0..g.nelems {
            let set = bits[(i / 8) as usize] & (1 << (i % 8)) != 0;
            if i >= fi && !set {
                continue;
            }
            n += 1;
            let addr = sp.start + i * g.elemsize;
            let rtype = if header {
                mem.u64(addr).unwrap_or(0)
            } else {
                0
            };
            let mut o = HeapObject {
                addr,
                size: g.elemsize,
                spanclass: sp.spanclass,
                rtype,
                ptrs: 0,
            };
            o.ptrs = masks.pointer_count(mem, &o);
            out.objects.push(o);
        }
        if n != sp.alloc_count {
            out.count_mismatch += 1;
        }
    }
}

/// Every allocated heap object of the memory `mem` of target `t`.
pub fn heap_objects<M: Memory>(t: &Target, mem: &M) -> Result<HeapObjects> {
    HeapTarget::new(t)?.heap_objects(t, mem)
}

/// The one line for a snapshot without the heap's memory.
pub fn lacks_heap_error(o: &HeapObjects) -> anyhow::Error {
    anyhow!(
        "this snapshot lacks the heap ({} of {} in-use spans not captured): capture it with \
         `gospy capture --pid N --heap -o snap.gss` (or --full, or use a core of the process)",
        o.spans_missing,
        o.spans_in_use
    )
}
