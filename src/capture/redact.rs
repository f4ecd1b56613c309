//! `gospy capture --redact`: drop data contents from a capture, keeping what
//! goroutine, scheduler and heap analysis need, so that a snapshot can go
//! into a public bug report.
//!
//! Runs on the finished [`Capture`], after the target was resumed: the pause
//! does not grow. What is kept and what goes:
//!
//! | captured                     | kept                                                     | dropped (zeroed)            |
//! |------------------------------|----------------------------------------------------------|-----------------------------|
//! | goroutine / thread stacks    | return addresses and frame links (saved frame pointers)  | every other word (locals, arguments, spills) |
//! | writable data of the binary  | the runtime's own variables (`runtime.*`, `internal/runtime/*`) | every other global        |
//! | `g`, `m`, `p`, allgs, heap metadata | everything (runtime structures)                   | —                           |
//! | pprof labels                 | keys and the structures holding them                     | values (replaced by `<redacted>`) |
//! | blocked-on objects (sudogs, channels, semaphore tree) | everything read to name them      | —                           |
//! | anything else read by decoders | —                                                      | everything                  |
//! | thread registers             | rip, rsp, rbp, segment and flag registers, orig_rax     | general-purpose registers   |
//! | command line, hostname       | argv\[0\]                                                | arguments, hostname         |
//!
//! Return addresses are those the unwinder itself reads: each goroutine is
//! unwound on the captured memory and exactly those words are kept, so a
//! redacted snapshot unwinds to the same frames as the original. Function
//! arguments (stack words) are gone: analysis prints them as `(...)`.
//!
//! A redacted capture has `CaptureMeta::flags.redacted` set and a note in
//! its warnings starting with [`NOTE_PREFIX`] (the snapshot file records the
//! flag as that note); `analyze` and `info` print it.

use crate::goruntime::{labels, Runtime, Target, G};
use crate::memory::{Memory, SparseMemory};
use crate::model::{Capture, Region, RegionKind};
use std::collections::HashMap;
use std::sync::Arc;

/// Start of the `CaptureMeta::warnings` entry that marks a redacted capture.
pub use crate::model::REDACTED_PREFIX as NOTE_PREFIX;
/// What label values are replaced with.
pub const REDACTED_VALUE: &str = "<redacted>";
/// Address of the replacement label value in a redacted snapshot. Below
/// Linux's `mmap_min_addr` (64 KiB): no mapping of the target can be there.
pub const REDACTED_VALUE_ADDR: u64 = 0x1000;

/// Package prefixes whose globals are runtime state (kept in data regions).
const RUNTIME_PREFIXES: [&str; 3] = ["runtime.", "runtime/", "internal/runtime/"];

/// What [`redact`] did, for the capture report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedactStats {
    pub goroutines_unwound: usize,
    pub stack_words_kept: u64,
    pub stack_bytes_zeroed: u64,
    pub data_bytes_kept: u64,
    pub data_bytes_zeroed: u64,
    pub other_bytes_zeroed: u64,
    pub label_values: u64,
    pub threads: usize,
}

/// The note recorded in a redacted capture's warnings.
pub fn note() -> String {
    crate::model::REDACTED_NOTE.to_string()
}

/// Half-open address ranges, sorted and merged, with fast intersection.
#[derive(Default)]
struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    fn from(mut v: Vec<(u64, u64)>) -> Ranges {
        v.retain(|&(a, b)| b > a);
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Ranges(out)
    }

    /// The parts of `[lo, hi)` covered by these ranges.
    fn within(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let start = self.0.partition_point(|&(_, b)| b <= lo);
        self.0[start..]
            .iter()
            .take_while(move |&&(a, _)| a < hi)
            .map(move |&(a, b)| (a.max(lo), b.min(hi)))
    }
}

/// Keep only the bytes of `data` (at `addr`) inside `keep`; returns the
/// number of bytes kept.
fn keep_only(addr: u64, data: &mut [u8], keep: &Ranges) -> u64 {
    let end = addr.saturating_add(data.len() as u64);
    let mut out = vec![0u8; data.len()];
    let mut kept = 0;
    for (a, b) in keep.within(addr, end) {
        let (s, e) = ((a - addr) as usize, (b - addr) as usize);
        out[s..e].copy_from_slice(&data[s..e]);
        kept += (e - s) as u64;
    }
    data.copy_from_slice(&out);
    kept
}

/// Byte ranges of the runtime's global variables (runtime addresses).
pub(super) fn runtime_globals(t: &Target) -> Vec<(u64, u64)> {
    let is_runtime = |n: &str| RUNTIME_PREFIXES.iter().any(|p| n.starts_with(p));
    let mut out: Vec<(u64, u64)> = t
        .bin
        .elf
        .symbols()
        .iter()
        .filter(|(n, &(_, size))| size > 0 && is_runtime(n))
        .map(|(_, &(a, size))| {
            let a = t.rt(a);
            (a, a.saturating_add(size))
        })
        .collect();
    if out.is_empty() {
        // No symbol table: sizes from DWARF types.
        if let Some(d) = t.bin.dwarf() {
            for name in d.globals().into_iter().filter(|n| is_runtime(n)) {
                let Some(g) = d.global(&name) else { continue };
                let size = g.ty.and_then(|ty| d.resolve(ty)).map_or(0, |ty| ty.size);
                if size > 0 {
                    let a = t.rt(g.addr);
                    out.push((a, a.saturating_add(size)));
                }
            }
        }
    }
    out
}

/// A memory that logs the ranges it served.
struct ReadLog<'a, M: Memory> {
    inner: &'a M,
    log: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl<M: Memory> Memory for ReadLog<'_, M> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> crate::memory::MemResult<()> {
        self.inner.read_exact(addr, buf)?;
        if let Ok(mut l) = self.log.lock() {
            l.push((addr, addr.saturating_add(buf.len() as u64)));
        }
        Ok(())
    }
}

/// Ranges read to name what waiting goroutines are blocked on (sudogs,
/// channels, the semaphore tree: runtime structures).
fn blocked_on_ranges<M: Memory>(t: &Target, mem: &M, gs: &[G]) -> Vec<(u64, u64)> {
    use crate::goruntime::waiting::{WaitLayout, Waits};
    let Some(l) = WaitLayout::new(t) else {
        return Vec::new();
    };
    let log = ReadLog {
        inner: mem,
        log: Default::default(),
    };
    let w = Waits {
        t,
        l: &l,
        mem: &log,
        names: true,
    };
    let sema = w.sema_waiters();
    for g in gs {
        let reason = t.wait_reason_string(g.waitreason);
        let _ = w.waiting_on(g, Some(&reason), &sema);
    }
    log.log.into_inner().unwrap_or_default()
}

/// Words of `g`'s stack the unwinder reads: the return address of every
/// physical frame, and the saved frame pointer below it when it points into
/// the stack.
fn frame_words<M: Memory>(
    t: &Target,
    mem: &M,
    g: &G,
    stack: &crate::goruntime::traceback::Stack,
    out: &mut Vec<(u64, u64)>,
) {
    let mut last_sp = None;
    for f in stack.frames.iter().filter(|f| !f.inlined) {
        if last_sp == Some(f.sp) {
            continue;
        }
        last_sp = Some(f.sp);
        let Some(fi) = t.find_func(f.pc) else {
            continue;
        };
        let Some(delta) = t.bin.pcln.pcsp(&fi, f.pc.wrapping_sub(t.bias)) else {
            continue;
        };
        let fp = f.sp.wrapping_add(delta as u64).wrapping_add(8);
        if fp <= f.sp || fp > g.stack_hi || fp < 16 {
            continue;
        }
        out.push((fp - 8, fp));
        if let Ok(bp) = mem.u64(fp - 16) {
            if bp >= g.stack_lo && bp < g.stack_hi && fp - 16 >= f.sp {
                out.push((fp - 16, fp - 8));
            }
        }
    }
}

/// Redact `cap` in place (see the module docs). `t` must describe the
/// captured executable.
pub fn redact(cap: &mut Capture, t: &Target) -> RedactStats {
    let mut stats = RedactStats::default();
    // A view of the capture for the decoders.
    let mem = crate::sources::over_image(
        SparseMemory::new(
            cap.regions
                .iter()
                .map(|r| (r.addr, Arc::<[u8]>::from(r.data.as_slice())))
                .collect(),
        ),
        &t.bin.elf,
        t.bias,
    );
    let rt = Runtime::new(t, &mem);
    let gaddrs = rt.allg_addrs().unwrap_or_default();
    let (ms, _) = rt.ms().unwrap_or_default();
    let regs: HashMap<u64, crate::model::Regs> = cap
        .meta
        .threads
        .iter()
        .filter_map(|th| th.regs.map(|r| (th.tid as u64, r)))
        .collect();

    let mut stack_keep = Vec::new();
    let mut other_keep = Vec::new();
    // (header address, key or value, ptr, len) of every label string.
    let mut strings: Vec<(u64, bool, u64, u64)> = Vec::new();
    let mut live = Vec::new();
    for &a in &gaddrs {
        let Ok(g) = rt.read_g(a) else { continue };
        if g.is_dead() {
            continue;
        }
        live.push(g.clone());
        let m = ms.iter().find(|m| m.curg == a);
        let r = m.and_then(|m| regs.get(&m.procid));
        let stack = t.unwind(&mem, &g, m, r);
        stats.goroutines_unwound += 1;
        frame_words(t, &mem, &g, &stack, &mut stack_keep);
        if g.labels != 0 {
            let mut structure = Vec::new();
            let slots = labels::label_structure(t, &mem, g.labels, &mut structure);
            // (addr, len) -> [addr, end)
            other_keep.extend(structure.into_iter().map(|(a, n)| (a, a.saturating_add(n))));
            if let Ok(slots) = slots {
                for s in slots {
                    for (hdr, is_key) in [(s.key, true), (s.value, false)] {
                        let p = mem.u64(hdr).unwrap_or(0);
                        let n = mem.u64(hdr.wrapping_add(8)).unwrap_or(0);
                        strings.push((hdr, is_key, p, n));
                    }
                }
            }
        }
    }
    for &(_, is_key, p, n) in &strings {
        if is_key {
            other_keep.push((p, p.saturating_add(n)));
        }
    }
    other_keep.extend(blocked_on_ranges(t, &mem, &live));
    let stack_keep = Ranges::from(stack_keep);
    let data_keep = Ranges::from(runtime_globals(t));
    let other_keep = Ranges::from(other_keep);
    stats.stack_words_kept = stack_keep.0.iter().map(|&(a, b)| (b - a) / 8).sum();

    for r in &mut cap.regions {
        let len = r.data.len() as u64;
        match r.kind {
            RegionKind::Stack => {
                let kept = keep_only(r.addr, &mut r.data, &stack_keep);
                stats.stack_bytes_zeroed += len - kept;
            }
            RegionKind::Data => {
                let kept = keep_only(r.addr, &mut r.data, &data_keep);
                stats.data_bytes_kept += kept;
                stats.data_bytes_zeroed += len - kept;
            }
            RegionKind::Other => {
                let kept = keep_only(r.addr, &mut r.data, &other_keep);
                stats.other_bytes_zeroed += len - kept;
            }
            RegionKind::G
            | RegionKind::M
            | RegionKind::P
            | RegionKind::Allgs
            | RegionKind::Heap => {}
        }
    }

    // Label values now read "<redacted>": every value header points at one
    // small added region.
    for &(h, is_key, _, _) in &strings {
        if is_key {
            continue;
        }
        stats.label_values += 1;
        // The two words of the header may have been read (and stored) apart.
        for (addr, v) in [
            (h, REDACTED_VALUE_ADDR),
            (h.wrapping_add(8), REDACTED_VALUE.len() as u64),
        ] {
            for r in &mut cap.regions {
                let end = r.addr.saturating_add(r.data.len() as u64);
                if addr >= r.addr && addr.saturating_add(8) <= end {
                    let o = (addr - r.addr) as usize;
                    r.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    if stats.label_values > 0 {
        cap.regions.push(Region {
            addr: REDACTED_VALUE_ADDR,
            kind: RegionKind::Other,
            data: REDACTED_VALUE.as_bytes().to_vec(),
        });
    }

    // Registers: the unwinder needs rip and rsp (rbp is the frame link).
    for th in &mut cap.meta.threads {
        if let Some(r) = &mut th.regs {
            for v in [
                &mut r.rax, &mut r.rbx, &mut r.rcx, &mut r.rdx, &mut r.rsi, &mut r.rdi, &mut r.r8,
                &mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14, &mut r.r15,
            ] {
                *v = 0;
            }
            stats.threads += 1;
        }
    }
    for a in cap.meta.cmdline.iter_mut().skip(1) {
        *a = REDACTED_VALUE.to_string();
    }
    cap.meta.hostname = REDACTED_VALUE.to_string();
    if !cap.meta.flags.redacted {
        cap.meta.flags.redacted = true;
        cap.meta.warnings.push(note());
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_text_unchanged() {
        assert_eq!(
            note(),
            format!(
                "{NOTE_PREFIX} captured with --redact: stack words other than return addresses and frame \
                 links, global data other than runtime variables, thread general-purpose registers, \
                 pprof label values (shown as {REDACTED_VALUE}), command-line arguments and the hostname \
                 were removed"
            )
        );
    }

    #[test]
    fn ranges_merge_and_clip() {
        let r = Ranges::from(vec![(10, 20), (15, 30), (40, 50), (5, 5)]);
        assert_eq!(r.0, vec![(10, 30), (40, 50)]);
        assert_eq!(
            r.within(0, 100).collect::<Vec<_>>(),
            vec![(10, 30), (40, 50)]
        );
        assert_eq!(
            r.within(25, 45).collect::<Vec<_>>(),
            vec![(25, 30), (40, 45)]
        );
        assert_eq!(r.within(30, 40).count(), 0);
        let mut d = vec![0xffu8; 20];
        assert_eq!(keep_only(20, &mut d, &r), 10);
        assert_eq!(&d[..10], &[0xff; 10]);
        assert_eq!(&d[10..], &[0; 10]);
    }
}
