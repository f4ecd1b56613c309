//! Pre-copy: parked goroutines' stacks read before the pause, and the g
//! fields that prove at the pause that a stack did not change.

use super::rounds::read_parallel;
use super::stats::{CaptureStats, PreCopyStats};
use super::walk::MAX_WAIT_ROUNDS;
use crate::goruntime::stackstart::StackState;
use crate::goruntime::{Runtime, Target, G, G_DEAD, MAX_STACK};
use crate::memory::SparseMemory;
use crate::process;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::time::Instant;

/// The part of a g that says whether its goroutine ran: if all of it is
/// the same at the pause as when the goroutine's stack was pre-copied (read
/// while the target ran), the goroutine did not run in between and its
/// stack is unchanged, so the pause need not read it again.
///
/// Why that holds (runtime/proc.go, mgcmark.go, chan.go, stack.go, Go 1.19
/// to 1.27): a goroutine's stack changes only while it runs, when the GC
/// moves it (new `stack` bounds and `sched.sp`), or when a channel
/// operation writes a value into a parked receiver's frame and readies it
/// (its status changes before it can run). `execute` and `exitsyscall`, the
/// only ways back to running for a parked or queued goroutine, zero
/// `waitsince`; only the GC sets it again, to its cycle's start time, once
/// per cycle. So a goroutine whose `waitsince` was non-zero at pre-copy
/// time and is the same at the pause has not run since: the key is exact.
/// Goroutines with a zero `waitsince` (they ran after the last GC cycle)
/// and coroutines (`coroswitch` runs them without `execute`) are read in
/// the pause. `trackingSeq` (+1 each time the goroutine stops running) and
/// the rest of the key are checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GKey {
    lo: u64,
    hi: u64,
    m: u64,
    pub(super) labels: u64,
    sp: u64,
    pc: u64,
    bp: u64,
    syscallsp: u64,
    syscallpc: u64,
    status: u32,
    goid: u64,
    waitreason: u8,
    seq: u8,
    param: u64,
    waitsince: u64,
}

/// Field offsets of [`GKey`] and the g prefix that holds them all.
#[derive(Debug, Clone)]
pub(super) struct KeyLayout {
    seq: u64,
    param: u64,
    /// Bytes of a g up to the last key field.
    prefix: usize,
    /// The parts of that prefix holding key fields, `[start, end)`: the
    /// pre-copy reads only these (it counts toward bytes read).
    windows: Vec<(usize, usize)>,
}

impl KeyLayout {
    fn new(l: &crate::goruntime::version::GLayout) -> Option<KeyLayout> {
        /// Fields closer than this are read as one window.
        const GAP: u64 = 24;
        let seq = l.tracking_seq?;
        let param = l.param?;
        let mut fields = vec![
            (l.stack_lo, 8),
            (l.stack_hi, 8),
            (l.m, 8),
            (l.sched_sp, 8),
            (l.sched_pc, 8),
            (l.sched_bp, 8),
            (l.syscallsp, 8),
            (l.syscallpc, 8),
            (l.atomicstatus, 4),
            (l.goid, 8),
            (l.waitsince, 8),
            (l.waitreason, 1),
            (seq, 1),
            (param, 8),
            (l.labels, 8),
        ];
        fields.sort_unstable();
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for (o, n) in fields {
            let (s, e) = (o as usize, (o + n) as usize);
            match windows.last_mut() {
                Some(w) if s < w.1 + GAP as usize => w.1 = w.1.max(e),
                _ => windows.push((s, e)),
            }
        }
        let prefix = windows.last()?.1;
        (prefix as u64 <= l.size).then_some(KeyLayout {
            seq,
            param,
            prefix,
            windows,
        })
    }
    fn window_bytes(&self) -> usize {
        self.windows.iter().map(|w| w.1 - w.0).sum()
    }
}

impl GKey {
    /// From the first `k.prefix` bytes (or more) of a g.
    pub(super) fn of(l: &crate::goruntime::version::GLayout, k: &KeyLayout, b: &[u8]) -> GKey {
        use crate::goruntime::{le32, le64};
        GKey {
            lo: le64(b, l.stack_lo),
            hi: le64(b, l.stack_hi),
            m: le64(b, l.m),
            labels: le64(b, l.labels),
            sp: le64(b, l.sched_sp),
            pc: le64(b, l.sched_pc),
            bp: le64(b, l.sched_bp),
            syscallsp: le64(b, l.syscallsp),
            syscallpc: le64(b, l.syscallpc),
            status: le32(b, l.atomicstatus) & !crate::goruntime::G_SCAN,
            goid: le64(b, l.goid),
            waitreason: b.get(l.waitreason as usize).copied().unwrap_or(0),
            seq: b.get(k.seq as usize).copied().unwrap_or(0),
            param: le64(b, k.param),
            waitsince: le64(b, l.waitsince),
        }
    }
    /// Parked or queued since before the last GC cycle (see above), not a
    /// coroutine, on no M (a running goroutine marks itself waiting while
    /// it works on the system stack: its `m` stays set), with a plausible
    /// stack: the goroutines whose stack only changes through a change of
    /// this key.
    fn precopyable(&self, coroutine: Option<u8>) -> bool {
        matches!(
            self.status,
            crate::goruntime::G_WAITING | crate::goruntime::G_RUNNABLE
        ) && self.waitsince != 0
            && self.m == 0
            && Some(self.waitreason) != coroutine
            && self.hi > self.lo
            && self.hi - self.lo <= MAX_STACK
            && self.sp >= self.lo
            && self.sp < self.hi
    }
    /// The goroutine did not run between the pre-copy (`self`, which is
    /// [`precopyable`](Self::precopyable)) and `now`.
    pub(super) fn still(&self, now: &GKey) -> bool {
        self == now
    }
    /// Start of the used stack: the one rule ([`StackState`]), so the
    /// pre-copy and the pause's check store what the unwinder reads.
    pub(super) fn stack_start(&self) -> u64 {
        StackState {
            lo: self.lo,
            hi: self.hi,
            sched_sp: self.sp,
            sched_pc: self.pc,
            syscallsp: self.syscallsp,
            syscallpc: self.syscallpc,
            running: self.status == crate::goruntime::G_RUNNING,
            regs: None,
            vdso: None,
        }
        .capture_start()
        .unwrap_or(self.sp)
    }
}

/// A stack read before the pause.
pub(super) struct PreStack {
    pub(super) key: GKey,
    pub(super) sp: u64,
    pub(super) data: Bytes,
}

/// Pre-copy: every parked goroutine's used stack, read while the target
/// runs, with the g fields that show later whether it is still valid.
pub(super) struct PreCopy {
    pub(super) key: KeyLayout,
    /// Every g, sorted by address (as `Runtime::allg_addrs` lists them).
    pub(super) gaddrs: Vec<u64>,
    /// One per entry of `gaddrs`.
    pub(super) stacks: Vec<Option<PreStack>>,
    pub(super) stack_bytes: u64,
    /// Live goroutines whose stack was not pre-copied (running, in a
    /// system call...): the pause reads theirs.
    pub(super) others: usize,
    /// The objects of the pre-copied goroutines' label sets, and for each
    /// set read whole, the extents of its objects. A set whose goroutine is
    /// kept by the pause was referenced by it throughout (label sets are
    /// immutable), so its objects stand too.
    pub(super) label_mem: SparseMemory,
    pub(super) label_sets: HashMap<u64, Vec<(u64, u64)>>,
}

/// Read every g's key prefix, then the used stack of every parked one,
/// while the target runs. None when the layout lacks the key's fields.
pub(super) fn precopy(
    pid: i32,
    target: &Target,
    image: &crate::binary::elf::ImageMemory,
    stats: &mut CaptureStats,
) -> Option<PreCopy> {
    let t0 = Instant::now();
    let l = &target.layout.g;
    let key = KeyLayout::new(l)?;
    let coroutine = (0..=255u8).find(|&r| target.wait_reason_string(r) == "coroutine");
    let live = process::LiveMemory::new(pid);
    let mem = crate::memory::Layered {
        first: &live,
        second: image,
    };
    let gaddrs = Runtime::new(target, &mem).allg_addrs().ok()?;
    stats.read_calls += 1;
    // Only the key's windows of each g, back to back.
    let wb = key.window_bytes();
    let nw = key.windows.len();
    let ranges: Vec<(u64, usize)> = gaddrs
        .iter()
        .flat_map(|&a| key.windows.iter().map(move |w| (a + w.0 as u64, w.1 - w.0)))
        .collect();
    let mut packed = vec![0u8; gaddrs.len() * wb];
    let res = read_parallel(pid, &ranges, &mut packed);
    stats.read_calls += ranges.len().div_ceil(1024);
    let mut keys: Vec<Option<GKey>> = Vec::with_capacity(gaddrs.len());
    let mut others = 0usize;
    let mut buf = vec![0u8; key.prefix];
    for i in 0..gaddrs.len() {
        if res[i * nw..(i + 1) * nw].iter().any(|r| r.is_err()) {
            keys.push(None);
            continue;
        }
        stats.bytes_read += wb as u64;
        // Lay the windows out at their offsets in the g.
        let mut off = i * wb;
        for w in &key.windows {
            let n = w.1 - w.0;
            buf[w.0..w.1].copy_from_slice(&packed[off..off + n]);
            off += n;
        }
        let k = GKey::of(l, &key, &buf);
        if k.precopyable(coroutine) {
            keys.push(Some(k));
        } else {
            if !matches!(k.status, G_DEAD | crate::goruntime::G_IDLE) {
                others += 1;
            }
            keys.push(None);
        }
    }
    drop(packed);
    let mut sranges: Vec<(u64, usize)> = Vec::with_capacity(keys.len());
    for k in keys.iter().flatten() {
        let sp = k.stack_start();
        sranges.push((sp, (k.hi - sp) as usize));
    }
    let total: usize = sranges.iter().map(|r| r.1).sum();
    let mut sbuf = BytesMut::zeroed(total);
    let sres = read_parallel(pid, &sranges, &mut sbuf);
    stats.read_calls += sranges.len().div_ceil(1024);
    let sbuf = sbuf.freeze();
    let mut stacks = Vec::with_capacity(keys.len());
    let mut off = 0usize;
    let mut sres = sres.into_iter();
    let mut stack_bytes = 0u64;
    for k in keys {
        let Some(k) = k else {
            stacks.push(None);
            continue;
        };
        let sp = k.stack_start();
        let len = (k.hi - sp) as usize;
        let ok = matches!(sres.next(), Some(Ok(())));
        stacks.push(ok.then(|| PreStack {
            key: k,
            sp,
            data: sbuf.slice(off..off + len),
        }));
        if ok {
            stack_bytes += len as u64;
        }
        off += len;
    }
    stats.bytes_read += stack_bytes;
    // The label sets of those goroutines, one bulk read per level.
    let roots: Vec<u64> = stacks
        .iter()
        .flatten()
        .map(|p| p.key.labels)
        .filter(|&l| l != 0)
        .collect();
    let mut label_mem = SparseMemory::default();
    let mut label_sets = HashMap::new();
    if !roots.is_empty() {
        let mut walk = crate::goruntime::labels::LabelWalk::new(target, &roots, true);
        let mut reader = super::walk::PrecopyReader::new(pid, image, stats);
        crate::goruntime::bulk::drive(
            &mut walk,
            &mut reader,
            MAX_WAIT_ROUNDS,
            crate::memory::MAX_READ as u64,
        );
        label_mem = reader.into_memory();
        label_sets = walk
            .root_extents()
            .into_iter()
            .map(|(r, e)| (r, e.to_vec()))
            .collect();
    }
    stats.precopy = Some(PreCopyStats {
        goroutines: gaddrs.len(),
        stacks: stacks.iter().filter(|s| s.is_some()).count(),
        stack_bytes,
        elapsed: t0.elapsed(),
        ..Default::default()
    });
    Some(PreCopy {
        key,
        gaddrs,
        stacks,
        stack_bytes,
        others,
        label_mem,
        label_sets,
    })
}

/// How many bytes the pause will read, estimated while the target still
/// runs: the data segments, every g, and the used part of every stack (from
/// a live read of the g structs), plus slack for Ms, Ps, heap metadata and
/// blocked-on objects. Sizes the pre-touched [`Pool`]; a wrong guess only
/// costs page faults (too small) or memory (too big).
pub(super) fn estimate_pause_bytes(
    pid: i32,
    target: &Target,
    image: &crate::binary::elf::ImageMemory,
    data_bytes: u64,
    stats: &mut CaptureStats,
) -> usize {
    const SLACK: u64 = 8 << 20;
    let live = process::LiveMemory::new(pid);
    let mem = crate::memory::Layered {
        first: &live,
        second: image,
    };
    let gaddrs = Runtime::new(target, &mem).allg_addrs().unwrap_or_default();
    let gsize = target.layout.g.size;
    let ranges: Vec<(u64, usize)> = gaddrs.iter().map(|&a| (a, gsize as usize)).collect();
    let mut buf = vec![0u8; ranges.len() * gsize as usize];
    let res = live.read_ranges_into(&ranges, &mut buf);
    stats.read_calls += ranges.len().div_ceil(1024);
    stats.bytes_read += res.iter().filter(|r| r.is_ok()).count() as u64 * gsize;
    let mut stacks = 0u64;
    for (i, (&a, r)) in gaddrs.iter().zip(res).enumerate() {
        if r.is_err() {
            continue;
        }
        let b = &buf[i * gsize as usize..(i + 1) * gsize as usize];
        let g = G::decode(&target.layout.g, a, b);
        if g.status == G_DEAD || g.stack_hi <= g.stack_lo || g.stack_hi - g.stack_lo > MAX_STACK {
            continue;
        }
        if g.sched_sp >= g.stack_lo && g.sched_sp < g.stack_hi {
            stacks += g.stack_hi - g.sched_sp;
        } else {
            // Running or in a system call: assume a few KiB.
            stacks += 4096;
        }
    }
    let est = data_bytes + gaddrs.len() as u64 * gsize + stacks + stacks / 8 + SLACK;
    est.min(1 << 30) as usize
}
