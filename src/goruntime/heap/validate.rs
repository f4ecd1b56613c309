//! `capture --heap --non-blocking`: the heap is copied while the program
//! runs, so each in-use span's header is read again after its memory was
//! copied and compared with the header the snapshot holds (read before the
//! copy). A span whose identity or sweep state moved (`startAddr`,
//! `npages`, `nelems`, `spanclass`, `state`, `sweepgen`, `allocBits`,
//! `largeType`) was swept, freed or reused during the copy: its memory
//! cannot be trusted and capture drops it (the object walk then counts it
//! missing). A span that was only allocated into (`freeindex`,
//! `allocCount`) is kept: the snapshot's header lists the objects as they
//! were before the copy, and objects allocated since are not listed.
//!
//! The counts are a capture note ([`HeapValidation::note`]) that the
//! object census repeats (`notes`), so `objects` and `retain` say it.

use super::bytes::le;
use super::layout::Loc;
use super::target::HeapTarget;
use crate::binary::Binary;
use crate::goruntime::version::choice::Layouts;
use crate::goruntime::version::source::LayoutCtx;
use crate::memory::Memory;
use anyhow::{anyhow, Result};

/// How every note of the validation starts (what analyses look for).
pub const NOTE_PREFIX: &str = "non-blocking: ";

/// Offsets of the span header fields compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanCheck {
    pub size: u64,
    start: u64,
    npages: u64,
    nelems: Loc,
    freeindex: Loc,
    alloc_count: Loc,
    alloc_bits: u64,
    sweepgen: u64,
    spanclass: u64,
    state: u64,
    large_type: Option<u64>,
}

/// The compared fields of one span header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanState {
    pub start: u64,
    pub npages: u64,
    nelems: u64,
    freeindex: u64,
    alloc_count: u64,
    alloc_bits: u64,
    sweepgen: u64,
    spanclass: u8,
    pub state: u8,
    large_type: u64,
}

/// What happened to a span between the two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    /// Only `freeindex`/`allocCount` moved: objects were allocated.
    Allocated,
    /// Swept, freed or reused, or unreadable the second time.
    Changed,
}

impl SpanCheck {
    pub fn from_binary(bin: &Binary) -> Result<SpanCheck> {
        let layouts = Layouts::for_binary(bin)?;
        let d = layouts.source();
        let mut c = LayoutCtx::new(d);
        const SP: &str = "runtime.mspan";
        let loc = |c: &mut LayoutCtx, f: &str| {
            let (off, size) = c.field(SP, f);
            Loc { off, size }
        };
        let l = SpanCheck {
            size: c.size(SP),
            start: c.off(SP, "startAddr"),
            npages: c.off(SP, "npages"),
            nelems: loc(&mut c, "nelems"),
            freeindex: loc(&mut c, "freeindex"),
            alloc_count: loc(&mut c, "allocCount"),
            alloc_bits: c.off(SP, "allocBits"),
            sweepgen: c.off(SP, "sweepgen"),
            spanclass: c.off(SP, "spanclass"),
            state: c.off(SP, "state"),
            large_type: c.opt(SP, "largeType"),
        };
        for (what, loc) in [
            ("nelems", l.nelems),
            ("freeindex", l.freeindex),
            ("allocCount", l.alloc_count),
        ] {
            if !matches!(loc.size, 1 | 2 | 4 | 8) {
                c.missing
                    .push(format!("mspan.{what} width ({} bytes)", loc.size));
            }
        }
        if l.size == 0 || l.size > 4096 {
            c.missing.push("a plausible sizeof(mspan)".into());
        }
        if !c.missing.is_empty() {
            return Err(anyhow!(
                "span layout not found in {}: {}",
                d.describe(),
                c.missing.join(", ")
            ));
        }
        Ok(l)
    }

    /// The compared fields of a span header's bytes (short bytes read as 0).
    pub fn decode(&self, b: &[u8]) -> SpanState {
        let get = |off: u64, size: u64| {
            if (off + size) as usize <= b.len() {
                le(b, off, size)
            } else {
                0
            }
        };
        SpanState {
            start: get(self.start, 8),
            npages: get(self.npages, 8),
            nelems: get(self.nelems.off, self.nelems.size),
            freeindex: get(self.freeindex.off, self.freeindex.size),
            alloc_count: get(self.alloc_count.off, self.alloc_count.size),
            alloc_bits: get(self.alloc_bits, 8),
            sweepgen: get(self.sweepgen, 4),
            spanclass: get(self.spanclass, 1) as u8,
            state: get(self.state, 1) as u8,
            large_type: self.large_type.map_or(0, |o| get(o, 8)),
        }
    }

    /// Addresses of the in-use spans of `mheap_.allspans` in `mem`, and their
    /// headers there.
    pub fn in_use(&self, ht: &HeapTarget, mem: &impl Memory) -> Vec<(u64, SpanState)> {
        let Ok((ptr, len)) = ht.allspans(mem) else {
            return Vec::new();
        };
        let n = len.min(super::model::MAX_SPANS_LIMIT as u64);
        let mut out = Vec::new();
        for i in 0..n {
            let Ok(s) = mem.ptr(ptr.wrapping_add(i * 8)) else {
                break;
            };
            if s == 0 {
                continue;
            }
            let Ok(b) = mem.read_vec(s, self.size as usize) else {
                continue;
            };
            let st = self.decode(&b);
            if st.state == ht.span_in_use {
                out.push((s, st));
            }
        }
        out
    }
}

impl SpanState {
    /// Bytes of the span's memory (`npages` pages), bounded.
    pub fn bytes(&self, ht: &HeapTarget) -> u64 {
        self.npages.min(1 << 23).saturating_mul(ht.page_size)
    }
}

/// Compares a span header read before the copy with the one read after.
pub fn compare(before: &SpanState, after: Option<&SpanState>) -> Change {
    let Some(after) = after else {
        return Change::Changed;
    };
    if before == after {
        return Change::Same;
    }
    let mut a = *after;
    a.freeindex = before.freeindex;
    a.alloc_count = before.alloc_count;
    if a == *before {
        Change::Allocated
    } else {
        Change::Changed
    }
}

/// What the validation of a non-blocking heap copy found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeapValidation {
    /// In-use spans whose header was read again.
    pub spans_checked: u64,
    /// Swept, freed or reused during the copy: dropped from the snapshot.
    pub spans_changed: u64,
    pub bytes_dropped: u64,
    /// Allocated into during the copy: kept (as they were before).
    pub spans_allocated: u64,
}

impl HeapValidation {
    /// The capture note, when something changed.
    pub fn note(&self) -> Option<String> {
        (self.spans_changed > 0 || self.spans_allocated > 0).then(|| {
            format!(
                "{NOTE_PREFIX}{} of {} heap spans changed during the copy (swept, freed or reused: dropped, {} bytes, their objects not listed); {} were allocated into (objects allocated during the copy not listed)",
                self.spans_changed, self.spans_checked, self.bytes_dropped, self.spans_allocated
            )
        })
    }
}

/// The validation notes among a snapshot's capture warnings.
pub fn notes(warnings: &[String]) -> impl Iterator<Item = &String> {
    warnings
        .iter()
        .filter(|w| w.starts_with(NOTE_PREFIX) && w.contains("heap spans changed during the copy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let s = SpanState {
            start: 0xc000000000,
            npages: 1,
            nelems: 256,
            freeindex: 10,
            alloc_count: 10,
            alloc_bits: 0x7000,
            sweepgen: 4,
            spanclass: 6,
            state: 1,
            large_type: 0,
        };
        assert_eq!(compare(&s, Some(&s)), Change::Same);
        let mut a = s;
        a.freeindex = 12;
        a.alloc_count = 12;
        assert_eq!(compare(&s, Some(&a)), Change::Allocated);
        a.sweepgen = 6;
        assert_eq!(compare(&s, Some(&a)), Change::Changed);
        let mut b = s;
        b.alloc_bits = 0x7100;
        assert_eq!(compare(&s, Some(&b)), Change::Changed);
        assert_eq!(compare(&s, None), Change::Changed);
        let v = HeapValidation {
            spans_checked: 10,
            spans_changed: 2,
            bytes_dropped: 16384,
            spans_allocated: 1,
        };
        let n = v.note().unwrap();
        assert_eq!(notes(std::slice::from_ref(&n)).count(), 1);
        assert!(HeapValidation::default().note().is_none());
    }
}
