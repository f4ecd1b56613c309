//! Span specials that are GC roots: finalizers (`runtime.SetFinalizer`),
//! cleanups (`runtime.AddCleanup`, Go 1.24+) and weak handles (`weak.Make`,
//! Go 1.23+).
//!
//! Each in-use span has a sorted linked list of `special` records
//! (`mspan.specials`, chained by `special.next`), allocated off-heap by
//! fixalloc. `markrootSpans` (mgcmark.go, every version 1.19–1.27) treats
//! them as roots:
//! - a finalizer: everything the object reaches is marked (`scanobject`
//!   on the object, which is itself *not* marked, unless its span is
//!   `noscan`), and `specialfinalizer.fn` (the finalizer's closure) is a
//!   root word;
//! - a cleanup: `specialCleanup.fn` (1.24–1.25) or the three words of
//!   `specialCleanup.cleanup` (`cleanupFn{call, fn, arg}`, 1.26+);
//! - a weak handle: `specialWeakHandle.handle`.
//!
//! Layouts from DWARF or the per-version tables (`version::Layouts`), the
//! kind numbers from `version::specials`. Bounded: at most
//! [`MAX_SPECIALS`] records and [`MAX_LIST`] per span; a record that is
//! unreadable, out of its span or in a cycle ends its list, counted.

use super::bytes::{le, le64};
use super::layout::Loc;
use super::target::HeapTarget;
use crate::binary::Binary;
use crate::goruntime::bulk::BulkWalk;
use crate::goruntime::version::choice::Layouts;
use crate::goruntime::version::source::{LayoutCtx, LayoutSource};
use crate::goruntime::version::specials::SpecialKinds;
use crate::memory::Memory;
use anyhow::{anyhow, Result};
use std::collections::HashSet;

/// Most special records read in all.
pub const MAX_SPECIALS: usize = 1 << 20;
/// Most records followed on one span's list.
pub const MAX_LIST: usize = 1 << 16;

/// Offsets of the special records' fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialsLayout {
    /// `mspan.specials`.
    sp_specials: u64,
    next: u64,
    offset: Loc,
    kind: u64,
    /// Bytes read per record: the largest record of a root kind.
    pub record_size: u64,
    fin_fn: u64,
    fin_ot: u64,
    /// Root words of a cleanup: offset and length in bytes.
    cleanup: Option<(u64, u64)>,
    weak_handle: Option<u64>,
    pub kinds: SpecialKinds,
}

impl SpecialsLayout {
    /// From the source [`Layouts`] picks (DWARF or the per-version tables).
    pub fn from_binary(bin: &Binary) -> Result<SpecialsLayout> {
        Self::from_source(bin, Layouts::for_binary(bin)?.source())
    }

    /// From one layout source, by field name.
    pub fn from_source(bin: &Binary, d: &dyn LayoutSource) -> Result<SpecialsLayout> {
        let mut c = LayoutCtx::new(d);
        const SP: &str = "runtime.special";
        const F: &str = "runtime.specialfinalizer";
        const C: &str = "runtime.specialCleanup";
        const W: &str = "runtime.specialWeakHandle";
        let (off, size) = c.field(SP, "offset");
        let fin_size = c.size(F);
        let cleanup = match (c.opt(C, "cleanup"), c.opt(C, "fn")) {
            (Some(o), _) => Some((o, d.field_size(C, "cleanup").unwrap_or(24).min(64))),
            (None, Some(o)) => Some((o, 8)),
            _ => None,
        };
        let kinds = SpecialKinds::for_binary(bin);
        let l = SpecialsLayout {
            sp_specials: c.off("runtime.mspan", "specials"),
            next: c.off(SP, "next"),
            offset: Loc { off, size },
            kind: c.off(SP, "kind"),
            record_size: fin_size
                .max(d.size_of(C).unwrap_or(0))
                .max(d.size_of(W).unwrap_or(0)),
            fin_fn: c.off(F, "fn"),
            fin_ot: c.off(F, "ot"),
            cleanup: cleanup.filter(|_| kinds.cleanup.is_some()),
            weak_handle: c.opt(W, "handle").filter(|_| kinds.weak_handle.is_some()),
            kinds,
        };
        if !matches!(l.offset.size, 1 | 2 | 4 | 8) {
            c.missing
                .push(format!("special.offset width ({} bytes)", l.offset.size));
        }
        if l.record_size == 0 || l.record_size > 256 {
            c.missing.push("a plausible specialfinalizer size".into());
        }
        if !c.missing.is_empty() {
            return Err(anyhow!(
                "span specials layout not found in {} for {}: {}",
                d.describe(),
                bin.go_version,
                c.missing.join(", ")
            ));
        }
        Ok(l)
    }
}

/// What a root special is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    Finalizer,
    Cleanup,
    WeakHandle,
}

/// One root special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Special {
    pub kind: SpecialKind,
    /// The span struct whose list holds it.
    pub span: u64,
    /// The record's address (off-heap).
    pub record: u64,
    /// Start of the object it is attached to (`base + offset/elemsize*elemsize`).
    pub object: u64,
    /// Whether the object's span is `noscan` (its referents are none).
    pub noscan: bool,
    /// The words the GC scans as roots (`fn`, `cleanupFn`, `handle`).
    pub words: Vec<u64>,
    /// Finalizers: the object's pointer type (`specialfinalizer.ot`).
    pub ptrtype: u64,
}

/// The root specials of a heap and what could not be read.
#[derive(Debug, Clone, Default)]
pub struct SpecialScan {
    pub specials: Vec<Special>,
    /// Spans with a specials list.
    pub spans: u64,
    /// Lists cut short: an unreadable or implausible record, a cycle, a bound.
    pub broken: u64,
    pub warnings: Vec<String>,
}

/// An in-use span with a specials list.
#[derive(Debug, Clone, Copy)]
struct SpanHead {
    span: u64,
    start: u64,
    bytes: u64,
    elemsize: u64,
    noscan: bool,
    head: u64,
}

/// In-use spans whose `specials` list is not empty (bounded by the
/// allspans walk's own caps).
fn span_heads(ht: &HeapTarget, l: &SpecialsLayout, mem: &impl Memory) -> Vec<SpanHead> {
    let Ok((ptr, len)) = ht.allspans(mem) else {
        return Vec::new();
    };
    let n = len.min(super::model::MAX_SPANS_LIMIT as u64);
    let mut out = Vec::new();
    // The array in chunks (one lookup each), then each span's head.
    const CHUNK: u64 = 4096;
    let mut spans = Vec::with_capacity(n.min(1 << 20) as usize);
    let mut i = 0;
    while i < n {
        let k = CHUNK.min(n - i);
        match mem.read_vec(ptr.wrapping_add(i * 8), (k * 8) as usize) {
            Ok(b) => spans.extend(b.chunks_exact(8).map(|w| le64(w, 0))),
            Err(_) => {
                // A partly captured chunk: entry by entry, up to the gap.
                let got = (i..i + k)
                    .map_while(|j| mem.ptr(ptr.wrapping_add(j * 8)).ok())
                    .inspect(|&s| spans.push(s))
                    .count() as u64;
                if got < k {
                    break;
                }
            }
        }
        i += k;
    }
    for s in spans {
        if s == 0 {
            continue;
        }
        let Ok(head) = mem.ptr(s.wrapping_add(l.sp_specials)) else {
            continue;
        };
        if head == 0 {
            continue;
        }
        let Some(sp) = ht.read_span(mem, s) else {
            continue;
        };
        if sp.state != ht.span_in_use {
            continue;
        }
        out.push(SpanHead {
            span: s,
            start: sp.start,
            bytes: sp.npages.saturating_mul(ht.page_size),
            elemsize: sp.elemsize,
            noscan: sp.spanclass & 1 == 1,
            head,
        });
    }
    out
}

impl SpecialsLayout {
    /// Offset of `mspan.specials` (the list's head).
    pub fn span_specials_offset(&self) -> u64 {
        self.sp_specials
    }

    /// Every root special of the heap in `mem`.
    pub fn scan(&self, ht: &HeapTarget, mem: &impl Memory) -> SpecialScan {
        let mut out = SpecialScan::default();
        let heads = span_heads(ht, self, mem);
        out.spans = heads.len() as u64;
        let mut total = 0usize;
        'spans: for s in heads {
            let mut seen = HashSet::new();
            let mut rec = s.head;
            while rec != 0 {
                if total >= MAX_SPECIALS || seen.len() >= MAX_LIST || !seen.insert(rec) {
                    out.broken += 1;
                    if total >= MAX_SPECIALS {
                        out.warnings
                            .push(format!("span specials: stopped at {MAX_SPECIALS} records"));
                        break 'spans;
                    }
                    break;
                }
                total += 1;
                let Ok(b) = mem.read_vec(rec, self.record_size as usize) else {
                    out.broken += 1;
                    break;
                };
                let offset = le(&b, self.offset.off, self.offset.size);
                if offset >= s.bytes || s.elemsize == 0 {
                    out.broken += 1;
                    break;
                }
                let object = s.start + offset / s.elemsize * s.elemsize;
                if let Some(sp) = self.decode(&b, (s.span, rec), object, s.noscan) {
                    out.specials.push(sp);
                }
                rec = le64(&b, self.next);
            }
        }
        if out.broken > 0 {
            out.warnings.push(format!(
                "{} span specials lists unreadable or implausible: their finalizers and cleanups after that point are not roots",
                out.broken
            ));
        }
        out
    }

    /// The root special in record bytes `b`, None for other kinds.
    fn decode(
        &self,
        b: &[u8],
        (span, record): (u64, u64),
        object: u64,
        noscan: bool,
    ) -> Option<Special> {
        let kind = le(b, self.kind, 1) as u8;
        let k = &self.kinds;
        let (kind, words, ptrtype) = if kind == k.finalizer {
            (
                SpecialKind::Finalizer,
                vec![le64(b, self.fin_fn)],
                le64(b, self.fin_ot),
            )
        } else if Some(kind) == k.cleanup {
            let (off, len) = self.cleanup?;
            let words = (0..len / 8).map(|i| le64(b, off + i * 8)).collect();
            (SpecialKind::Cleanup, words, 0)
        } else if Some(kind) == k.weak_handle {
            (SpecialKind::WeakHandle, vec![le64(b, self.weak_handle?)], 0)
        } else {
            return None;
        };
        Some(Special {
            kind,
            span,
            record,
            object,
            noscan,
            words,
            ptrtype,
        })
    }
}

/// For capture: reads the specials lists level by level (one bulk read per
/// list position), after the span structs are in memory.
pub struct SpecialsWalk<'a> {
    ht: &'a HeapTarget,
    l: &'a SpecialsLayout,
    started: bool,
    frontier: Vec<u64>,
    seen: HashSet<u64>,
    /// Records read (or already in memory).
    pub records: usize,
    /// Lists cut short (unreadable record, cycle, bound).
    pub broken: usize,
}

impl<'a> SpecialsWalk<'a> {
    pub fn new(ht: &'a HeapTarget, l: &'a SpecialsLayout) -> SpecialsWalk<'a> {
        SpecialsWalk {
            ht,
            l,
            started: false,
            frontier: Vec::new(),
            seen: HashSet::new(),
            records: 0,
            broken: 0,
        }
    }
}

impl BulkWalk for SpecialsWalk<'_> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        let size = self.l.record_size;
        let asked: HashSet<u64> = self.frontier.drain(..).collect();
        let mut next: Vec<u64> = if self.started {
            asked.iter().copied().collect()
        } else {
            self.started = true;
            span_heads(self.ht, self.l, mem)
                .into_iter()
                .map(|s| s.head)
                .collect()
        };
        // Records already in memory are followed at once; the others are
        // asked for, and followed at the next step.
        let mut want = Vec::new();
        while let Some(rec) = next.pop() {
            if rec == 0 {
                continue;
            }
            if self.records >= MAX_SPECIALS || self.seen.contains(&rec) {
                self.broken += 1;
                continue;
            }
            match mem.ptr(rec.wrapping_add(self.l.next)) {
                Ok(n) if mem.read_vec(rec, size as usize).is_ok() => {
                    self.seen.insert(rec);
                    self.records += 1;
                    next.push(n);
                }
                // Asked for and still unreadable: the list ends here.
                _ if asked.contains(&rec) => self.broken += 1,
                _ => {
                    self.frontier.push(rec);
                    want.push((rec, size));
                }
            }
        }
        want
    }
}

/// Most finalizer-queue blocks followed (4 KiB each, 101 records).
pub const MAX_FIN_BLOCKS: usize = 1 << 16;

/// One finalizer queued to run (its object was found unreachable; the
/// queue keeps it and its closure alive until the finalizer goroutine runs
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedFinalizer {
    pub block: u64,
    /// The object (`finalizer.arg`).
    pub object: u64,
    /// The root words: `fn`, `arg`, `fint`, `ot`.
    pub words: [u64; 4],
    /// `finalizer.ot`: the object's pointer type.
    pub ptrtype: u64,
}

/// `runtime.allfin`'s address (bias applied): from the symbol table or
/// DWARF, else recovered from the runtime's code.
pub fn allfin_addr(t: &crate::goruntime::Target) -> Option<u64> {
    link_allfin(&t.bin).map(|a| t.rt(a))
}

/// `runtime.allfin`'s link-time address: named, or (no symbol table)
/// recovered from `runtime.queuefinalizer`'s code.
fn link_allfin(bin: &Binary) -> Option<u64> {
    crate::goruntime::version::globals::global_addr(bin, "runtime.allfin").or_else(|| {
        (!bin.elf.has_symtab())
            .then(|| crate::goruntime::version::specials::recover_allfin(bin))
            .flatten()
    })
}

/// Every queued finalizer of the blocks chained from `*allfin`; the blocks
/// that could not be read whole (counted).
pub fn queued_finalizers(mem: &impl Memory, allfin: u64) -> (Vec<QueuedFinalizer>, u64) {
    let l = crate::goruntime::version::specials::FIN_BLOCK;
    let (mut out, mut broken) = (Vec::new(), 0u64);
    let mut seen = HashSet::new();
    let mut fb = mem.ptr(allfin).unwrap_or(0);
    while fb != 0 {
        if seen.len() >= MAX_FIN_BLOCKS || !seen.insert(fb) {
            broken += 1;
            break;
        }
        let Ok(b) = mem.read_vec(fb, l.size() as usize) else {
            broken += 1;
            break;
        };
        let cnt = le(&b, l.cnt, 4).min(l.capacity());
        for i in 0..cnt {
            let e = l.fin + i * l.entry_size;
            let w = |o: u64| le64(&b, e + o);
            out.push(QueuedFinalizer {
                block: fb,
                object: w(l.arg),
                words: [w(l.fn_), w(l.arg), w(l.fint), w(l.ot)],
                ptrtype: w(l.ot),
            });
        }
        fb = le64(&b, l.alllink);
    }
    (out, broken)
}

/// `runtime.gcCleanups.all`'s address (bias applied) and the layout, Go
/// 1.25+: the global from the symbol table or DWARF, else recovered from
/// the runtime's code.
pub fn cleanup_queue(
    t: &crate::goruntime::Target,
) -> Option<(u64, crate::goruntime::version::specials::CleanupQueueLayout)> {
    use crate::goruntime::version::{globals, specials};
    let l = specials::CleanupQueueLayout::for_version(t.bin.go, t.bin.elf.arch)?;
    let bin = &t.bin;
    let q = globals::global_addr(bin, "runtime.gcCleanups").or_else(|| {
        (!bin.elf.has_symtab())
            .then(|| specials::recover_gc_cleanups(bin, link_allfin(bin)?))
            .flatten()
    })?;
    Some((t.rt(q) + l.all, l))
}

/// Every queued cleanup (its pointer words) of the blocks chained from
/// `*all`; the chains that could not be read whole (counted).
pub fn queued_cleanups(
    mem: &impl Memory,
    all: u64,
    l: &crate::goruntime::version::specials::CleanupQueueLayout,
) -> (Vec<Vec<u64>>, u64) {
    let (mut out, mut broken) = (Vec::new(), 0u64);
    let mut seen = HashSet::new();
    let mut cb = mem.ptr(all).unwrap_or(0);
    while cb != 0 {
        if seen.len() >= MAX_FIN_BLOCKS || !seen.insert(cb) {
            broken += 1;
            break;
        }
        let Ok(b) = mem.read_vec(cb, l.size() as usize) else {
            broken += 1;
            break;
        };
        let n = le(&b, l.n, 4).min(l.capacity());
        for i in 0..n {
            let e = l.cleanups + i * l.entry_size;
            out.push((0..l.entry_size / 8).map(|k| le64(&b, e + k * 8)).collect());
        }
        cb = le64(&b, l.alllink);
    }
    (out, broken)
}

/// For capture: a chain of off-heap blocks (the finalizer queue's
/// `alllink` chain, the cleanup queue's), one bulk read per block.
pub struct ChainWalk {
    /// Where the pointer to the first block is.
    head_at: u64,
    next_off: u64,
    size: u64,
    started: bool,
    next: u64,
    asked: Option<u64>,
    seen: HashSet<u64>,
    /// The chain ended early (unreadable block, cycle, bound).
    pub broken: bool,
}

impl ChainWalk {
    /// The finalizer queue's blocks, from `runtime.allfin` at `allfin`.
    pub fn finalizers(allfin: u64) -> ChainWalk {
        let l = crate::goruntime::version::specials::FIN_BLOCK;
        Self::new(allfin, l.alllink, l.size())
    }

    /// The cleanup queue's blocks, from `gcCleanups.all` at `all`.
    pub fn cleanups(
        all: u64,
        l: &crate::goruntime::version::specials::CleanupQueueLayout,
    ) -> ChainWalk {
        Self::new(all, l.alllink, l.size())
    }

    fn new(head_at: u64, next_off: u64, size: u64) -> ChainWalk {
        ChainWalk {
            head_at,
            next_off,
            size,
            started: false,
            next: 0,
            asked: None,
            seen: HashSet::new(),
            broken: false,
        }
    }
}

impl BulkWalk for ChainWalk {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        if !self.started {
            self.started = true;
            self.next = mem.ptr(self.head_at).unwrap_or(0);
        }
        while self.next != 0 {
            let b = self.next;
            if self.seen.len() >= MAX_FIN_BLOCKS || self.seen.contains(&b) {
                self.broken = true;
                return Vec::new();
            }
            match mem.ptr(b.wrapping_add(self.next_off)) {
                Ok(n) if mem.read_vec(b, self.size as usize).is_ok() => {
                    self.seen.insert(b);
                    self.next = n;
                }
                _ if self.asked == Some(b) => {
                    self.broken = true;
                    return Vec::new();
                }
                _ => {
                    self.asked = Some(b);
                    return vec![(b, self.size)];
                }
            }
        }
        Vec::new()
    }
}
