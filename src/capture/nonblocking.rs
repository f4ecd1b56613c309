//! `--non-blocking` captures: the target is never stopped (no ptrace at all),
//! so each goroutine is validated instead. Its `g` is read once before its
//! stack and once after (status, goid, sched, syscall sp/pc, stack bounds);
//! a goroutine whose fields changed, that was running (no registers without a
//! stop), being scanned or copied, or whose sp lies outside its stack is
//! *unstable*: it is recorded in the capture's flags (and a note in its warnings),
//! and analysis shows it flagged and without frames, never with wrong ones.
//!
//! With `--heap`, the heap spans are copied while the program runs: after
//! the copy each in-use span's header is read again (`validate_heap`, see
//! `goruntime::heap::validate`); spans swept, freed or reused meanwhile are
//! dropped from the snapshot, and the counts go to `capture --json`
//! (`heap_validation`) and to a note that `objects` and `retain` repeat.

use super::rounds::Assembled;
use super::stats::CaptureStats;
use crate::binary::elf::ImageMemory;
use crate::goruntime::heap::validate::{compare, Change, HeapValidation, SpanCheck};
use crate::goruntime::heap::HeapTarget;
use crate::goruntime::{Target, G, G_RUNNABLE, G_SYSCALL, G_WAITING};
use crate::memory::Layered;
use crate::model::{RegionKind, ThreadInfo};
use bytes::Bytes;

/// The capture notes, defined with the typed flags they stand for.
pub use crate::model::NON_BLOCKING_NOTE;

/// The fields compared between the two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GState {
    status: u32,
    scan: bool,
    goid: u64,
    sched_sp: u64,
    sched_pc: u64,
    syscallsp: u64,
    syscallpc: u64,
    stack_lo: u64,
    stack_hi: u64,
}

impl GState {
    pub fn goid(&self) -> u64 {
        self.goid
    }

    pub fn of(g: &G) -> GState {
        GState {
            status: g.status,
            scan: g.scan,
            goid: g.goid,
            sched_sp: g.sched_sp,
            sched_pc: g.sched_pc,
            syscallsp: g.syscallsp,
            syscallpc: g.syscallpc,
            stack_lo: g.stack_lo,
            stack_hi: g.stack_hi,
        }
    }
}

/// Why a goroutine cannot be trusted, comparing the read before its stack
/// (`before`) with the read after (`after`, None when unreadable).
pub fn instability(before: &GState, after: Option<&GState>) -> Option<String> {
    let Some(after) = after else {
        return Some("its g could not be read again".into());
    };
    if before.goid != after.goid {
        return Some(format!(
            "goid changed from {} to {} (the g was reused)",
            before.goid, after.goid
        ));
    }
    if before.status != after.status || before.scan != after.scan {
        return Some(format!(
            "status changed from {} to {}",
            before.status, after.status
        ));
    }
    if before != after {
        return Some("its saved registers or stack bounds changed".into());
    }
    if before.scan {
        return Some("its stack was being scanned by the GC".into());
    }
    match before.status {
        G_RUNNABLE | G_WAITING => {}
        G_SYSCALL => {
            let sp = if before.syscallsp != 0 {
                before.syscallsp
            } else {
                before.sched_sp
            };
            if !(before.stack_lo..before.stack_hi).contains(&sp) {
                return Some(format!("syscall sp {sp:#x} outside its stack"));
            }
            return None;
        }
        2 => return Some("running (its registers need a stopped target)".into()),
        s => return Some(format!("in transition (status {s})")),
    }
    if !(before.stack_lo..before.stack_hi).contains(&before.sched_sp) {
        return Some(format!(
            "sp {:#x} outside its stack [{:#x}, {:#x})",
            before.sched_sp, before.stack_lo, before.stack_hi
        ));
    }
    None
}

/// Threads without registers (nothing is stopped, so none can be read).
pub fn threads_without_regs(proc_: &crate::process::Process) -> Vec<ThreadInfo> {
    proc_
        .threads()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|tid| proc_.thread_info(tid).ok())
        .collect()
}

/// `--heap --non-blocking`: reads every in-use span's header again, after
/// the heap copy, and drops from `asm` the memory of the spans that were
/// swept, freed or reused meanwhile. None without a heap target or layout
/// (a warning then says the copy is unvalidated).
pub(super) fn validate_heap(
    pid: i32,
    ht: Option<&HeapTarget>,
    t: &Target,
    asm: &mut Assembled,
    image: &ImageMemory,
    stats: &mut CaptureStats,
    warnings: &mut Vec<String>,
) -> Option<HeapValidation> {
    let ht = ht?;
    let check = match SpanCheck::from_binary(&t.bin) {
        Ok(c) => c,
        Err(e) => {
            warnings.push(format!(
                "non-blocking: the heap copy could not be validated ({e})"
            ));
            return None;
        }
    };
    let spans = check.in_use(
        ht,
        &Layered {
            first: &asm.sparse,
            second: image,
        },
    );
    let ranges: Vec<(u64, usize)> = spans
        .iter()
        .map(|&(a, _)| (a, check.size as usize))
        .collect();
    let again = crate::process::read_ranges(pid, &ranges);
    stats.read_calls += ranges.len().div_ceil(1024);
    let mut v = HeapValidation {
        spans_checked: spans.len() as u64,
        ..Default::default()
    };
    let mut cuts = Vec::new();
    for ((_, before), res) in spans.iter().zip(again) {
        let after = res.ok().map(|b| check.decode(&b));
        match compare(before, after.as_ref()) {
            Change::Same => {}
            Change::Allocated => v.spans_allocated += 1,
            Change::Changed => {
                v.spans_changed += 1;
                cuts.push((before.start, before.bytes(ht)));
            }
        }
    }
    let (regions, dropped) = cut(std::mem::take(&mut asm.regions), &mut cuts);
    asm.regions = regions;
    asm.rebuild();
    v.bytes_dropped = dropped;
    warnings.extend(v.note());
    Some(v)
}

/// `regions` without the heap bytes of `cuts` (`(addr, len)`, sorted here);
/// the bytes dropped.
fn cut(
    regions: Vec<(u64, Bytes, RegionKind)>,
    cuts: &mut [(u64, u64)],
) -> (Vec<(u64, Bytes, RegionKind)>, u64) {
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(regions.len());
    let mut dropped = 0u64;
    for (addr, data, kind) in regions {
        let end = addr.saturating_add(data.len() as u64);
        if kind != RegionKind::Heap || cuts.is_empty() {
            out.push((addr, data, kind));
            continue;
        }
        // Cuts that may overlap [addr, end): from the last one starting
        // at or before addr.
        let first = cuts.partition_point(|c| c.0 <= addr).saturating_sub(1);
        let mut at = addr;
        for &(ca, cl) in &cuts[first..] {
            let ce = ca.saturating_add(cl);
            if ca >= end {
                break;
            }
            if ce <= at {
                continue;
            }
            if ca > at {
                let (lo, hi) = ((at - addr) as usize, (ca - addr) as usize);
                out.push((at, data.slice(lo..hi), kind));
            }
            let stop = ce.min(end);
            dropped += stop - ca.max(at);
            at = stop;
        }
        if at < end {
            out.push((at, data.slice((at - addr) as usize..), kind));
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_drops_only_the_spans() {
        let r = |a: u64, n: usize, k| (a, Bytes::from(vec![7u8; n]), k);
        let regions = vec![
            r(0x1000, 0x3000, RegionKind::Heap),
            r(0x8000, 0x100, RegionKind::Stack),
            r(0x9000, 0x1000, RegionKind::Heap),
        ];
        let mut cuts = vec![(0x2000, 0x1000), (0x8000, 0x100), (0x9800, 0x2000)];
        let (out, dropped) = cut(regions, &mut cuts);
        let spans: Vec<(u64, usize)> = out.iter().map(|(a, d, _)| (*a, d.len())).collect();
        assert_eq!(
            spans,
            vec![
                (0x1000, 0x1000),
                (0x3000, 0x1000),
                (0x8000, 0x100),
                (0x9000, 0x800)
            ]
        );
        assert_eq!(dropped, 0x1000 + 0x800);
        let (same, d) = cut(out.clone(), &mut []);
        assert_eq!((same.len(), d), (4, 0));
    }

    fn st(status: u32) -> GState {
        GState {
            status,
            scan: false,
            goid: 7,
            sched_sp: 0x1800,
            sched_pc: 0x401000,
            syscallsp: 0,
            syscallpc: 0,
            stack_lo: 0x1000,
            stack_hi: 0x2000,
        }
    }

    #[test]
    fn stable_and_unstable() {
        let w = st(G_WAITING);
        assert_eq!(instability(&w, Some(&w)), None);
        assert!(instability(&w, None).is_some());
        let mut moved = w;
        moved.sched_sp = 0x1700;
        assert!(instability(&w, Some(&moved)).is_some());
        let mut other = w;
        other.goid = 8;
        assert!(instability(&w, Some(&other)).unwrap().contains("goid"));
        let r = st(2);
        assert!(instability(&r, Some(&r)).unwrap().contains("running"));
        let mut out = w;
        out.sched_sp = 0x3000;
        assert!(instability(&out, Some(&out)).unwrap().contains("outside"));
    }
}
