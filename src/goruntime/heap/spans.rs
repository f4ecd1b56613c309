//! `mheap_.allspans`: span structs, spans per size class, large objects.

use super::bytes::{le, le64, le64_chunk};
use super::model::{HeapOptions, LargeObject, PCache, SizeClass, SpanCoverage, MAX_SPANS_LIMIT};
use super::target::HeapTarget;
use crate::goruntime::Target;
use crate::memory::Memory;
use anyhow::Result;

/// A decoded span (the fields the heap analysis uses).
#[derive(Debug, Clone, Default)]
pub(super) struct Span {
    pub(super) start: u64,
    pub(super) npages: u64,
    pub(super) nelems: u64,
    pub(super) alloc_count: u64,
    pub(super) alloc_count_before_cache: u64,
    pub(super) spanclass: u8,
    pub(super) state: u8,
    pub(super) elemsize: u64,
    pub(super) limit: u64,
    pub(super) large_type: u64,
}

impl HeapTarget {
    pub(super) fn read_span(&self, mem: &impl Memory, addr: u64) -> Option<Span> {
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

    /// Cached spans whose sweepgen is `mheap_.sweepgen + 1`: cached before
    /// the current sweep began, so uncaching them sweeps them (mcentral.go).
    pub(super) fn stale_cached_spans(&self, mem: &impl Memory, per_p: &[PCache]) -> usize {
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
    pub(super) fn walk_spans<M: Memory>(
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
            None => crate::goruntime::descriptor_name(t, mem, addr)?,
        };
        match es {
            Some(es) if es > 0 && size >= 2 * es => Some(format!("[{}]{name}", size / es)),
            _ => Some(name),
        }
    }
}
