//! Capture: pause a live Go process, read the byte ranges analysis needs in
//! bulk, resume it, and return a [`Capture`]. Compression and file writing
//! happen after the target is running again (see `snapshot`).
//!
//! The pause window holds reads only. Reads happen in rounds, each round
//! deciding from what is already read which ranges come next:
//! 1. writable data of the executable (runtime globals: allgs, allp, sched...);
//! 2. the allgs array, every M and P (few);
//! 3. every g struct;
//! 4. every live goroutine's used stack (sp .. stack.hi) and each thread's
//!    system-stack top, plus goroutine label objects (and heap spans);
//! 5. what waiting goroutines are blocked on, a few rounds deep;
//! 6. what global variables point to, breadth-first within a byte budget
//!    (`goruntime::reach`), or with `--full` every writable mapping.

use crate::binary::Binary;
use crate::goruntime::{Runtime, Target, G, G_DEAD, G_RUNNING, MAX_STACK};
use crate::memory::{MemError, MemResult, Memory, SparseMemory};
use crate::model::{Capture, CaptureMeta, Region, RegionKind, ThreadInfo};
use crate::process::{self, Process};
use anyhow::{anyhow, Context, Result};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Ranges closer than this are read (and stored) as one.
const MERGE_GAP: u64 = 256;
/// Goroutines whose blocked-on objects (sudogs, channels) are captured.
const MAX_WAIT_GOROUTINES: usize = 10_000;

/// Read rounds at most for blocked-on objects (each select case or
/// semaphore tree level costs one).
const MAX_WAIT_ROUNDS: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// Store the executable in the snapshot.
    pub embed_binary: bool,
    /// An unstripped build of the target's executable.
    pub bin: Option<std::path::PathBuf>,
    /// Globals whose full value must be captured (`--var`, no budget).
    pub vars: Vec<String>,
    /// Bytes of heap objects reachable from globals to capture (`--var-budget`;
    /// None: [`crate::goruntime::reach::DEFAULT_BUDGET`]).
    pub var_budget: Option<u64>,
    /// Store every writable mapping of the process (`--full`).
    pub full: bool,
    /// Drop data contents after the capture (see [`crate::redact`]).
    pub redact: bool,
    /// Spans of `mheap_.allspans` to read (for `heap --large` and spans per
    /// size class); None: `heap::DEFAULT_MAX_SPANS`, 0: none.
    pub max_spans: Option<usize>,
    /// Never stop the target (`--non-blocking`): read it while it runs and
    /// validate each goroutine.
    pub non_blocking: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    pub goroutines: usize,
    pub bytes_read: u64,
    pub regions: usize,
    pub read_calls: usize,
    pub pause: Duration,
    pub failed_ranges: usize,
    /// The walk of what globals point to (round 5), if it ran.
    pub var_walk: Option<crate::goruntime::reach::WalkStats>,
    /// What `--redact` removed, when asked.
    pub redacted: Option<crate::redact::RedactStats>,
    /// Time spent in each phase while the target was stopped (stop, rounds).
    pub phases: Vec<(String, Duration)>,
    /// Opening the executable and decoding the runtime's layout from it
    /// (before the pause; DWARF is read lazily, only what is needed).
    pub binary_load: Duration,
    /// The stacks read before the pause, and how many the pause kept.
    pub precopy: Option<PreCopyStats>,
}

/// What the pre-copy read (before the pause) and what of it the pause kept.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PreCopyStats {
    /// gs whose key fields were read.
    pub goroutines: usize,
    /// Stacks read, and their bytes.
    pub stacks: usize,
    pub stack_bytes: u64,
    /// Stacks kept by the pause (their goroutine had not run since).
    pub kept: usize,
    pub kept_bytes: u64,
    #[serde(serialize_with = "ser_ns")]
    pub elapsed: Duration,
}

fn ser_ns<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_nanos() as u64)
}

/// Memory being assembled during the pause: what was read so far, in
/// regions, with the executable's read-only image behind it.
/// Region data is shared ([`Bytes`] slices of each round's one buffer), so
/// rebuilding the lookup index between rounds never copies bytes while the
/// target is stopped.
struct Assembled {
    regions: Vec<(u64, Bytes, RegionKind)>,
    sparse: SparseMemory,
    pool: Pool,
}

impl Assembled {
    fn rebuild(&mut self) {
        self.sparse = SparseMemory::from_bytes(
            self.regions
                .iter()
                .map(|(a, d, _)| (*a, d.clone()))
                .collect(),
        );
    }
    fn push(&mut self, r: Region) {
        self.regions.push((r.addr, Bytes::from(r.data), r.kind));
    }
}

/// Destination memory for the pause's reads, allocated and touched before
/// the target is stopped: fresh pages would otherwise be faulted in (and
/// zeroed by the kernel) one by one inside `process_vm_readv`, which at
/// 100k goroutines cost more than the copies themselves.
struct Pool {
    buf: BytesMut,
}

impl Pool {
    fn new(bytes: usize) -> Pool {
        let mut buf = BytesMut::zeroed(bytes);
        // Touch every page (the allocation is lazily zeroed).
        for i in (0..buf.len()).step_by(4096) {
            buf[i] = 0xff;
        }
        Pool { buf }
    }
    /// A buffer of `len` bytes: carved from the pool while it lasts.
    fn take(&mut self, len: usize) -> BytesMut {
        if len <= self.buf.len() {
            self.buf.split_to(len)
        } else {
            BytesMut::zeroed(len)
        }
    }
}

/// Read `ranges` back to back into `out`, split over a few threads when
/// there is enough work: with the destination pages already faulted in,
/// the cost of a remote range is the kernel's page-table walk and page
/// pinning per range plus the copy per page, which overlap well across
/// cores while the target is stopped. Large ranges (the g structs' spans)
/// are cut into pieces so that both kinds of work divide evenly.
fn read_parallel(pid: i32, ranges: &[(u64, usize)], out: &mut [u8]) -> Vec<MemResult<()>> {
    /// Below this much work (in range-equivalents) one thread does it.
    const MIN_COST_PER_THREAD: usize = 4096;
    /// Pieces of large ranges, so that threads can share them.
    const PIECE: usize = 256 << 10;
    // A page costs about what a small range costs.
    let cost = |len: usize| 1 + len / 4096;
    let total_cost: usize = ranges.iter().map(|r| cost(r.1)).sum();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
        .min(total_cost / MIN_COST_PER_THREAD)
        .max(1);
    let live = process::LiveMemory::new(pid);
    if threads == 1 {
        return live.read_ranges_into(ranges, out);
    }
    // Pieces: (range index, address, length), laid out back to back in `out`
    // in the same order as the ranges.
    let mut pieces: Vec<(usize, u64, usize)> = Vec::with_capacity(ranges.len());
    for (i, &(a, len)) in ranges.iter().enumerate() {
        let mut off = 0usize;
        loop {
            let n = (len - off).min(PIECE);
            pieces.push((i, a + off as u64, n));
            off += n;
            if off >= len {
                break;
            }
        }
    }
    // Cut into `threads` parts of about equal cost, and cut `out` at the
    // same places.
    let per = total_cost.div_ceil(threads);
    type Part<'a> = (Vec<(u64, usize)>, Vec<usize>, &'a mut [u8]);
    let mut parts: Vec<Part<'_>> = Vec::with_capacity(threads);
    let mut rest = out;
    let mut i = 0;
    while i < pieces.len() {
        let (mut rs, mut idx, mut c, mut bytes) = (Vec::new(), Vec::new(), 0usize, 0usize);
        while i < pieces.len() && (c < per || parts.len() + 1 == threads) {
            let (ri, a, n) = pieces[i];
            rs.push((a, n));
            idx.push(ri);
            c += cost(n);
            bytes += n;
            i += 1;
        }
        let take = bytes.min(rest.len());
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
        parts.push((rs, idx, head));
        rest = tail;
    }
    let piece_results: Vec<(Vec<usize>, Vec<MemResult<()>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(rs, idx, buf)| {
                let live = &live;
                s.spawn(move || {
                    let r = live.read_ranges_into(&rs, buf);
                    (idx, r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), Vec::new())))
            .collect()
    });
    // A range is read when all of its pieces are.
    let mut results: Vec<MemResult<()>> = vec![
        Err(MemError {
            addr: 0,
            len: 0,
            why: "reader thread failed",
        });
        ranges.len()
    ];
    let mut ok = vec![0usize; ranges.len()];
    let mut failed = vec![false; ranges.len()];
    for (idx, res) in piece_results {
        for (ri, r) in idx.into_iter().zip(res) {
            match r {
                Ok(()) => ok[ri] += 1,
                Err(e) => {
                    if !failed[ri] {
                        results[ri] = Err(e);
                    }
                    failed[ri] = true;
                }
            }
        }
    }
    let mut want = vec![0usize; ranges.len()];
    for p in &pieces {
        want[p.0] += 1;
    }
    for ri in 0..ranges.len() {
        if !failed[ri] && ok[ri] == want[ri] {
            results[ri] = Ok(());
        }
    }
    results
}

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
struct GKey {
    lo: u64,
    hi: u64,
    m: u64,
    labels: u64,
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
struct KeyLayout {
    seq: u64,
    param: u64,
    /// Bytes of a g up to the last key field.
    prefix: usize,
    /// The parts of that prefix holding key fields, `[start, end)`: the
    /// pre-copy reads only these (it counts toward bytes read).
    windows: Vec<(usize, usize)>,
}

impl KeyLayout {
    fn new(l: &crate::goruntime::layout::GLayout) -> Option<KeyLayout> {
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
    fn of(l: &crate::goruntime::layout::GLayout, k: &KeyLayout, b: &[u8]) -> GKey {
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
    fn still(&self, now: &GKey) -> bool {
        self == now
    }
    /// Start of the used stack (as the pause plans it for such a g).
    fn stack_start(&self) -> u64 {
        if self.syscallsp >= self.lo && self.syscallsp < self.hi {
            self.sp.min(self.syscallsp)
        } else {
            self.sp
        }
    }
}

/// What the pause's stack planning decided, per part of allgs.
#[derive(Default)]
struct StackPlan {
    live: usize,
    kept: usize,
    kept_bytes: u64,
    /// Indices (in allgs) of the goroutines whose pre-copied stack is kept:
    /// their regions are added after the resume (cloning 100k shared
    /// buffers' handles is atomic traffic the pause need not wait for).
    kept_idx: Vec<u32>,
    /// Label sets of kept goroutines that were pre-copied whole.
    kept_labels: Vec<u64>,
    plan: Vec<(u64, u64, RegionKind)>,
    labels: Vec<u64>,
    before: Vec<(u64, crate::nonblocking::GState)>,
}

impl StackPlan {
    fn merge(mut a: StackPlan, mut b: StackPlan) -> StackPlan {
        a.live += b.live;
        a.kept += b.kept;
        a.kept_bytes += b.kept_bytes;
        a.kept_idx.append(&mut b.kept_idx);
        a.kept_labels.append(&mut b.kept_labels);
        a.plan.append(&mut b.plan);
        a.labels.append(&mut b.labels);
        a.before.append(&mut b.before);
        a
    }
}

/// A stack read before the pause.
struct PreStack {
    g: u64,
    key: GKey,
    sp: u64,
    data: Bytes,
}

/// Pre-copy: every parked goroutine's used stack, read while the target
/// runs, with the g fields that show later whether it is still valid.
struct PreCopy {
    key: KeyLayout,
    /// In allgs order (allgs only grows, so the pause's list starts the same).
    stacks: Vec<Option<PreStack>>,
    stack_bytes: u64,
    /// Live goroutines whose stack was not pre-copied (running, in a
    /// system call...): the pause reads theirs.
    others: usize,
    /// The objects of the pre-copied goroutines' label sets, and for each
    /// set read whole, the extents of its objects. A set whose goroutine is
    /// kept by the pause was referenced by it throughout (label sets are
    /// immutable), so its objects stand too.
    label_mem: SparseMemory,
    label_sets: HashMap<u64, Vec<(u64, u64)>>,
}

/// Read every g's key prefix, then the used stack of every parked one,
/// while the target runs. None when the layout lacks the key's fields.
fn precopy(
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
    for (i, k) in keys.into_iter().enumerate() {
        let Some(k) = k else {
            stacks.push(None);
            continue;
        };
        let sp = k.stack_start();
        let len = (k.hi - sp) as usize;
        let ok = matches!(sres.next(), Some(Ok(())));
        stacks.push(ok.then(|| PreStack {
            g: gaddrs[i],
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
        let mut regions: Vec<(u64, Bytes)> = Vec::new();
        for _ in 0..MAX_WAIT_ROUNDS {
            let want: Vec<(u64, usize)> = walk
                .step(crate::memory::Layered {
                    first: &label_mem,
                    second: image,
                })
                .into_iter()
                .filter(|r| r.1 as usize <= crate::memory::MAX_READ)
                .map(|(a, l)| (a, l as usize))
                .collect();
            if want.is_empty() {
                break;
            }
            let total: usize = want.iter().map(|r| r.1).sum();
            let mut buf = BytesMut::zeroed(total);
            let res = read_parallel(pid, &want, &mut buf);
            stats.read_calls += want.len().div_ceil(1024);
            let buf = buf.freeze();
            let mut off = 0usize;
            for (&(a, l), r) in want.iter().zip(res) {
                if r.is_ok() {
                    stats.bytes_read += l as u64;
                    regions.push((a, buf.slice(off..off + l)));
                }
                off += l;
            }
            label_mem = SparseMemory::from_bytes(regions.clone());
        }
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
fn estimate_pause_bytes(
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

/// Reads a plan of ranges (merged when close) in bulk, into one buffer,
/// and adds them.
fn read_round(
    pid: i32,
    plan: &mut Vec<(u64, u64, RegionKind)>,
    into: &mut Assembled,
    stats: &mut CaptureStats,
    reindex: bool,
) {
    plan.retain(|&(_, len, _)| len > 0 && len as usize <= crate::memory::MAX_READ);
    // 100k stacks: sorting is a few ms of the pause, split over the cores.
    {
        use rayon::slice::ParallelSliceMut;
        plan.par_sort_unstable_by_key(|&(a, _, _)| a);
    }
    let mut merged: Vec<(u64, u64, RegionKind)> = Vec::with_capacity(plan.len());
    for &(a, len, kind) in plan.iter() {
        if let Some(last) = merged.last_mut() {
            let end = last.0 + last.1;
            if a <= end.saturating_add(MERGE_GAP) {
                let new_end = (a + len).max(end);
                last.1 = new_end - last.0;
                continue;
            }
        }
        merged.push((a, len, kind));
    }
    let ranges: Vec<(u64, usize)> = merged.iter().map(|&(a, l, _)| (a, l as usize)).collect();
    let total: usize = ranges.iter().map(|r| r.1).sum();
    stats.read_calls += ranges.len().div_ceil(1024);
    let mut buf = into.pool.take(total);
    let results = read_parallel(pid, &ranges, &mut buf);
    let buf = buf.freeze();
    into.regions.reserve(merged.len());
    let mut off = 0usize;
    for ((addr, len, kind), res) in merged.into_iter().zip(results) {
        let len = len as usize;
        match res {
            Ok(()) => {
                stats.bytes_read += len as u64;
                into.regions.push((addr, buf.slice(off..off + len), kind));
            }
            Err(_) => stats.failed_ranges += 1,
        }
        off += len;
    }
    plan.clear();
    if reindex {
        into.rebuild();
    }
}

/// With `--full`, the earlier rounds' regions (g's, stacks...) lie inside
/// the whole mappings read last: drop them, so that lookups (which only look
/// back a few overlapping ranges) find the mapping and no byte is stored twice.
fn drop_covered(regions: &mut Vec<(u64, Bytes, RegionKind)>, full: &[(u64, u64, RegionKind)]) {
    let mut whole: Vec<(u64, u64)> = regions
        .iter()
        .filter(|(a, d, _)| {
            full.iter()
                .any(|&(fa, fl, _)| *a == fa && d.len() as u64 >= fl)
        })
        .map(|(a, d, _)| (*a, *a + d.len() as u64))
        .collect();
    whole.sort_unstable();
    regions.retain(|(a, d, _)| {
        let end = *a + d.len() as u64;
        let i = whole.partition_point(|&(s, _)| s <= *a);
        // Keep the mappings themselves and anything not inside one.
        !(i > 0 && end <= whole[i - 1].1 && !(whole[i - 1].0 == *a && whole[i - 1].1 == end))
    });
}

/// Memory view used while paused: assembled regions, then the binary image,
/// then (rarely, for small objects) a direct read that is recorded.
struct PausedMem<'a> {
    pid: i32,
    asm: &'a Assembled,
    image: &'a crate::binary::elf::ImageMemory,
    extra: Mutex<Vec<Region>>,
}

impl Memory for PausedMem<'_> {
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.asm.sparse.bytes_at(addr, len)
    }
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        if self.asm.sparse.read_exact(addr, buf).is_ok() || self.image.read_exact(addr, buf).is_ok()
        {
            return Ok(());
        }
        if let Ok(extra) = self.extra.lock() {
            for r in extra.iter() {
                if addr >= r.addr && addr + buf.len() as u64 <= r.addr + r.data.len() as u64 {
                    let o = (addr - r.addr) as usize;
                    buf.copy_from_slice(&r.data[o..o + buf.len()]);
                    return Ok(());
                }
            }
        }
        let mut res = process::read_ranges(self.pid, &[(addr, buf.len())]);
        match res.pop() {
            Some(Ok(d)) if d.len() == buf.len() => {
                buf.copy_from_slice(&d);
                if let Ok(mut extra) = self.extra.lock() {
                    extra.push(Region {
                        addr,
                        kind: RegionKind::Other,
                        data: d,
                    });
                }
                Ok(())
            }
            _ => Err(MemError {
                addr,
                len: buf.len(),
                why: "unreadable in target",
            }),
        }
    }
}

/// A walk over objects that capture reads level by level (what blocked
/// goroutines wait on, label sets): each step expands what memory holds and
/// returns the ranges to read before the next.
pub(crate) trait BulkWalk {
    fn step<M: Memory>(&mut self, mem: M) -> Vec<(u64, u64)>;
}

impl BulkWalk for crate::goruntime::waiting::WaitWalk<'_> {
    fn step<M: Memory>(&mut self, mem: M) -> Vec<(u64, u64)> {
        crate::goruntime::waiting::WaitWalk::step(self, mem)
    }
}

impl BulkWalk for crate::goruntime::labels::LabelWalk {
    fn step<M: Memory>(&mut self, mem: M) -> Vec<(u64, u64)> {
        crate::goruntime::labels::LabelWalk::step(self, mem)
    }
}

/// Run `walk` to its end (or [`MAX_WAIT_ROUNDS`] reads): one bulk read per
/// level, ranges longer than `max_len` skipped. It sees the index built by
/// the last re-indexed round (data, gs), the executable's image and the
/// regions it read itself (re-indexed alone each round).
fn walk_rounds<W: BulkWalk>(
    pid: i32,
    walk: &mut W,
    asm: &mut Assembled,
    image: &crate::binary::elf::ImageMemory,
    stats: &mut CaptureStats,
    max_len: usize,
) {
    let first = asm.regions.len();
    let mut small = SparseMemory::default();
    let mut plan = Vec::new();
    for _ in 0..MAX_WAIT_ROUNDS {
        let want = walk.step(crate::memory::Layered {
            first: &asm.sparse,
            second: crate::memory::Layered {
                first: &small,
                second: image,
            },
        });
        plan.extend(
            want.into_iter()
                .filter(|r| r.1 as usize <= max_len)
                .map(|(a, l)| (a, l, RegionKind::Other)),
        );
        if plan.is_empty() {
            break;
        }
        read_round(pid, &mut plan, asm, stats, false);
        small = SparseMemory::from_bytes(
            asm.regions[first..]
                .iter()
                .map(|(a, d, _)| (*a, d.clone()))
                .collect(),
        );
    }
}

/// Load the executable for a live process: its own bytes through
/// /proc/PID/exe, or `--bin` checked against them by build id.
pub fn load_target_binary(
    proc_: &Process,
    bin: Option<&std::path::Path>,
) -> Result<(Arc<Binary>, Option<crate::binary::elf::ElfFile>)> {
    let exe = proc_.exe_shared().with_context(|| {
        format!(
            "pid {}: reading the executable via /proc/{}/exe",
            proc_.pid, proc_.pid
        )
    })?;
    let running = crate::binary::elf::ElfFile::parse(exe)
        .with_context(|| format!("pid {}: the executable is not an ELF file", proc_.pid))?;
    if running.go_version.is_none() {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", proc_.pid)).unwrap_or_default();
        let exe = proc_.exe_path().unwrap_or_default();
        return Err(anyhow!(
            "pid {} ({}, {exe}) is not a Go program: its executable has no Go build info",
            proc_.pid,
            comm.trim()
        ));
    }
    let bin = match bin {
        None => {
            return Ok((
                Arc::new(
                    Binary::from_elf(running)
                        .with_context(|| format!("pid {}: loading the executable", proc_.pid))?,
                ),
                None,
            ))
        }
        Some(p) => {
            let b = Binary::from_path(p)?;
            crate::sources::exe::check_live_bin(&running, &b.elf, proc_.pid)?;
            b
        }
    };
    Ok((Arc::new(bin), Some(running)))
}

pub fn capture(pid: i32, opts: &CaptureOptions) -> Result<(Capture, Arc<Binary>, CaptureStats)> {
    let proc_ = Process::open(pid)?;
    let t_bin = Instant::now();
    let (bin, running_exe) = load_target_binary(&proc_, opts.bin.as_deref())?;
    let maps = proc_.maps().unwrap_or_default();
    let auxv = proc_.auxv().unwrap_or_default();
    let bias = bin.load_bias(&auxv);
    let target = Target::new(bin.clone(), bias)
        .with_context(|| format!("pid {pid}: decoding the Go runtime layout"))?;
    let binary_load = t_bin.elapsed();
    let image = crate::binary::elf::ImageMemory {
        elf: bin.elf.clone(),
        bias,
    };
    let exe_path = proc_.exe_path().unwrap_or_default();
    let cmdline = proc_.cmdline().unwrap_or_default();

    // Plan round 1 before stopping anything.
    let mut plan: Vec<(u64, u64, RegionKind)> = bin
        .elf
        .segments
        .iter()
        .filter(|s| s.writable && s.memsz > 0)
        .map(|s| (s.vaddr + bias, s.memsz, RegionKind::Data))
        .collect();

    // The globals walk's plan (globals and their types) is decided before
    // pausing too.
    let reach_plan = if opts.full {
        None
    } else {
        let budget = opts
            .var_budget
            .unwrap_or(crate::goruntime::reach::DEFAULT_BUDGET);
        Some(crate::goruntime::reach::ReachPlan::new(
            &target, &opts.vars, budget,
        )?)
    };
    let mut warnings: Vec<String> = Vec::new();
    let mut unstable: Vec<crate::model::UnstableG> = Vec::new();
    let mut walker = reach_plan.and_then(|p| {
        warnings.extend(p.warnings.iter().cloned());
        (!p.is_empty())
            .then(|| crate::goruntime::reach::Walker::new(&target, p))
            .flatten()
    });
    let full_plan: Vec<(u64, u64, RegionKind)> = if opts.full {
        maps.iter()
            .filter(|m| m.perms.starts_with("rw") && m.end > m.start)
            .map(|m| (m.start, m.end - m.start, RegionKind::Other))
            .collect()
    } else {
        Vec::new()
    };

    let mut stats = CaptureStats {
        binary_load,
        ..Default::default()
    };
    let data_bytes: u64 = plan.iter().map(|p| p.1).sum();
    // Heap analysis layouts (mcaches, spans), decided before the pause.
    let heap_t = match crate::goruntime::heap::HeapTarget::new(&target) {
        Ok(h) => Some(h),
        Err(e) => {
            warnings.push(format!("heap statistics will be unavailable: {e}"));
            None
        }
    };
    let max_spans = opts
        .max_spans
        .unwrap_or(crate::goruntime::heap::DEFAULT_MAX_SPANS);

    // Decoded before the pause: DWARF lookups are lazy.
    let wait_layout = crate::goruntime::waiting::WaitLayout::new(&target);
    // No transparent huge pages for gospy's memory from here on (after the
    // executable is loaded, which they speed up): a fresh allocation inside
    // the pause would otherwise fault in, and zero, 2 MiB at a time.
    // SAFETY: prctl with integer arguments only changes this process's flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // Last before the pause, so that few goroutines run in between.
    // Parked goroutines' stacks, read now while the target runs; the pause
    // keeps those whose goroutine did not run since (see GKey).
    let pre = if opts.non_blocking || opts.full {
        None
    } else {
        precopy(pid, &target, &image, &mut stats)
    };
    let pool_bytes = match (&pre, opts.non_blocking) {
        (_, true) => 0,
        (Some(pre), false) => {
            // The pause reads the data segments and every g; stacks only of
            // goroutines that were running or ran since (guessed).
            const SLACK: u64 = 8 << 20;
            let est = data_bytes
                + pre.stacks.len() as u64 * target.layout.g.size
                + pre.others as u64 * 4096
                + pre.stack_bytes / 8
                + SLACK;
            est.min(1 << 30) as usize
        }
        (None, false) => estimate_pause_bytes(pid, &target, &image, data_bytes, &mut stats),
    };
    let mut asm = Assembled {
        regions: Vec::new(),
        sparse: SparseMemory::default(),
        pool: Pool::new(pool_bytes),
    };
    // A --bin twin (same build without -s -w): its read-only image is
    // shifted in places, so the running executable's own read-only segments
    // are captured over it (they are what the process has mapped).
    if bin.elf.go_build_id.is_some() {
        if let Some(running) = &running_exe {
            if running.go_build_id != bin.elf.go_build_id {
                for s in running
                    .segments
                    .iter()
                    .filter(|s| !s.writable && s.filesz > 0)
                {
                    if let Some(d) = running
                        .data
                        .get(s.offset as usize..(s.offset + s.filesz) as usize)
                    {
                        asm.push(Region {
                            addr: s.vaddr + bias,
                            kind: RegionKind::Other,
                            data: d.to_vec(),
                        });
                    }
                }
                asm.rebuild();
            }
        }
    }
    // Start rayon's threads now, not inside the pause.
    let _ = rayon::current_num_threads();
    let t_pause = Instant::now();
    // --non-blocking: nothing is stopped, threads have no registers.
    let guard = if opts.non_blocking {
        None
    } else {
        Some(proc_.pause()?)
    };
    stats
        .phases
        .push(("stop threads".into(), t_pause.elapsed()));
    let mono = process::read_monotonic_ns();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let threads: Vec<ThreadInfo> = match &guard {
        Some(g) => g.threads().to_vec(),
        None => crate::nonblocking::threads_without_regs(&proc_),
    };
    // Goroutines (allgs indices) whose pre-copied stack the pause kept, and
    // the pre-copied label sets they hold.
    let mut kept_idx: Vec<u32> = Vec::new();
    let mut kept_labels: Vec<u64> = Vec::new();
    // --non-blocking: each goroutine's g as read before its stack.
    let mut before: Vec<(u64, crate::nonblocking::GState)> = Vec::new();

    let mut lap = Instant::now();
    let mut phase = |stats: &mut CaptureStats, name: &str| {
        stats.phases.push((name.to_string(), lap.elapsed()));
        lap = Instant::now();
    };
    let result = (|| -> Result<usize> {
        read_round(pid, &mut plan, &mut asm, &mut stats, true);
        phase(&mut stats, "data segments");
        // Round 2: allgs array, Ms, Ps.
        let (ms, ps_plan) = {
            let pm = PausedMem {
                pid,
                asm: &asm,
                image: &image,
                extra: Mutex::new(Vec::new()),
            };
            let rt = Runtime::new(&target, &pm);
            let g = &target.globals;
            let allgs_ptr = rt.mem.ptr(g.allgs).context("reading runtime.allgs")?;
            let n = rt
                .mem
                .u64(g.allglen)
                .context("reading runtime.allglen")?
                .min(rt.mem.u64(g.allgs + 8)?);
            if n > crate::goruntime::MAX_GOROUTINES {
                return Err(anyhow!("runtime.allglen = {n} is implausible"));
            }
            plan.push((allgs_ptr, n * 8, RegionKind::Allgs));
            let (ms, w) = rt.ms()?;
            warnings.extend(w);
            let mut ps_plan = Vec::new();
            if let Ok(paddrs) = rt.p_addrs() {
                for a in paddrs {
                    ps_plan.push((a, rt.p_capture_len(), RegionKind::P));
                }
            }
            let mut extra = pm.extra.into_inner().unwrap_or_default();
            for mut r in extra.drain(..) {
                r.kind = RegionKind::M;
                asm.push(r);
            }
            (ms, ps_plan)
        };
        plan.extend(ps_plan);
        // Ms' g0/gsignal structs (for running goroutines on system stacks).
        for m in &ms {
            for ga in [m.g0, m.gsignal] {
                if ga != 0 {
                    plan.push((ga, target.layout.g.size, RegionKind::G));
                }
            }
        }
        read_round(pid, &mut plan, &mut asm, &mut stats, true);
        phase(&mut stats, "allgs, Ms, Ps");
        // Round 3: every g.
        let gaddrs = {
            let pm = PausedMem {
                pid,
                asm: &asm,
                image: &image,
                extra: Mutex::new(Vec::new()),
            };
            Runtime::new(&target, &pm).allg_addrs()?
        };
        for &a in &gaddrs {
            plan.push((a, target.layout.g.size, RegionKind::G));
        }
        // Heap: each P's mcache and the allspans array.
        plan.extend(crate::goruntime::heap::capture_plan(
            heap_t.as_ref(),
            &target,
            &crate::memory::Layered {
                first: &asm.sparse,
                second: &image,
            },
            1,
            max_spans,
        ));
        read_round(pid, &mut plan, &mut asm, &mut stats, true);
        phase(&mut stats, "g structs");
        // Round 4: stacks and labels.
        let tid_regs: HashMap<u64, &crate::model::Regs> = threads
            .iter()
            .filter_map(|t| t.regs.as_ref().map(|r| (t.tid as u64, r)))
            .collect();
        let pm = PausedMem {
            pid,
            asm: &asm,
            image: &image,
            extra: Mutex::new(Vec::new()),
        };
        let rt = Runtime::new(&target, &pm);
        // Each g: its pre-copied stack kept, or its used stack planned. In
        // parallel: at 100k goroutines this touches 45 MB of g structs.
        let plan_one = |mut o: StackPlan, (i, &a): (usize, &u64)| -> StackPlan {
            let gsize = target.layout.g.size as usize;
            if let (Some(pre), Some(b)) = (pre.as_ref(), pm.bytes_at(a, gsize)) {
                // Keep the pre-copied stack when the goroutine did not run.
                if let Some(ps) = pre.stacks.get(i).and_then(|p| p.as_ref()) {
                    let now = GKey::of(&target.layout.g, &pre.key, b);
                    if ps.g == a && ps.key.still(&now) && now.stack_start() == ps.sp {
                        o.kept += 1;
                        o.kept_bytes += ps.data.len() as u64;
                        o.live += 1;
                        o.kept_idx.push(i as u32);
                        if now.labels != 0 {
                            if pre.label_sets.contains_key(&now.labels) {
                                o.kept_labels.push(now.labels);
                            } else {
                                o.labels.push(now.labels);
                            }
                        }
                        return o;
                    }
                }
            }
            let Ok(g) = rt.read_g(a) else { return o };
            if g.status == G_DEAD || g.is_dead() {
                return o;
            }
            o.live += 1;
            if opts.non_blocking {
                o.before.push((a, crate::nonblocking::GState::of(&g)));
            }
            if g.stack_hi <= g.stack_lo || g.stack_hi - g.stack_lo > MAX_STACK {
                return o;
            }
            let mut sp = u64::MAX;
            for cand in [g.sched_sp, g.syscallsp] {
                if cand >= g.stack_lo && cand < g.stack_hi {
                    sp = sp.min(cand);
                }
            }
            if g.status == G_RUNNING {
                if let Some(m) = ms.iter().find(|m| m.curg == a) {
                    if let Some(r) = tid_regs.get(&m.procid) {
                        if r.rsp >= g.stack_lo && r.rsp < g.stack_hi {
                            sp = sp.min(r.rsp);
                        }
                    }
                    if m.vdso_sp >= g.stack_lo && m.vdso_sp < g.stack_hi {
                        sp = sp.min(m.vdso_sp);
                    }
                }
            }
            if sp != u64::MAX {
                o.plan.push((sp, g.stack_hi - sp, RegionKind::Stack));
            }
            if g.labels != 0 {
                o.labels.push(g.labels);
            }
            o
        };
        let planned = {
            use rayon::prelude::*;
            gaddrs
                .par_iter()
                .enumerate()
                .with_min_len(8192)
                .fold(StackPlan::default, plan_one)
                .reduce(StackPlan::default, StackPlan::merge)
        };
        let live = planned.live;
        let mut label_ptrs = planned.labels;
        label_ptrs.sort_unstable();
        label_ptrs.dedup();
        before = planned.before;
        plan.extend(planned.plan);
        kept_idx = planned.kept_idx;
        kept_labels = planned.kept_labels;
        let (kept, kept_bytes) = (planned.kept, planned.kept_bytes);
        // System stacks of threads, from their sp to the g0 stack top.
        for m in &ms {
            let Some(r) = tid_regs.get(&m.procid) else {
                continue;
            };
            for ga in [m.g0, m.gsignal] {
                if let Ok(g0) = rt.read_g(ga) {
                    if r.rsp >= g0.stack_lo
                        && r.rsp < g0.stack_hi
                        && g0.stack_hi - r.rsp <= MAX_STACK
                    {
                        plan.push((r.rsp, g0.stack_hi - r.rsp, RegionKind::Stack));
                    }
                }
            }
        }
        let extra = pm.extra.into_inner().unwrap_or_default();
        extra.into_iter().for_each(|r| asm.push(r));
        // Heap: the spans the mcaches cache, and the allspans span structs.
        plan.extend(crate::goruntime::heap::capture_plan(
            heap_t.as_ref(),
            &target,
            &crate::memory::Layered {
                first: &asm.sparse,
                second: &image,
            },
            2,
            max_spans,
        ));
        if let Some(p) = stats.precopy.as_mut() {
            p.kept = kept;
            p.kept_bytes = kept_bytes;
        }
        phase(&mut stats, "plan stacks and labels");
        read_round(pid, &mut plan, &mut asm, &mut stats, false);
        phase(&mut stats, "stacks");
        // Labels: every object of every distinct label set, one bulk read
        // per level (label object, list or map and buckets, strings).
        if !label_ptrs.is_empty() {
            let mut walk = crate::goruntime::labels::LabelWalk::new(&target, &label_ptrs, false);
            walk_rounds(
                pid,
                &mut walk,
                &mut asm,
                &image,
                &mut stats,
                crate::memory::MAX_READ,
            );
            phase(&mut stats, "labels");
        }
        if opts.non_blocking {
            warnings.push(crate::nonblocking::NON_BLOCKING_NOTE.to_string());
            // Read every g again, after its stack: unchanged ones are stable.
            let ranges: Vec<(u64, usize)> = before
                .iter()
                .map(|&(a, _)| (a, target.layout.g.size as usize))
                .collect();
            let again = process::read_ranges(pid, &ranges);
            stats.read_calls += ranges.len().div_ceil(1024);
            for ((a, st), res) in before.iter().zip(again) {
                let after = res
                    .ok()
                    .map(|b| crate::nonblocking::GState::of(&G::decode(&target.layout.g, *a, &b)));
                if let Some(why) = crate::nonblocking::instability(st, after.as_ref()) {
                    let u = crate::model::UnstableG {
                        g: *a,
                        goid: st.goid(),
                        why,
                    };
                    warnings.push(u.note());
                    unstable.push(u);
                }
            }
            phase(&mut stats, "validate goroutines");
        }
        // Rounds 5+: what waiting goroutines are blocked on (sudogs, hchans,
        // the semaphore tree), one bulk read per level.
        // Bounded: past MAX_WAIT_GOROUTINES the sudog reads would dominate
        // the pause; the rest show no blocked-on object.
        let wait_gs = &gaddrs[..gaddrs.len().min(MAX_WAIT_GOROUTINES)];
        if gaddrs.len() > MAX_WAIT_GOROUTINES && wait_layout.is_some() {
            warnings.push(format!(
                "blocked-on objects captured for the first {MAX_WAIT_GOROUTINES} of {} goroutines only",
                gaddrs.len()
            ));
        }
        if let Some(wl) = wait_layout.as_ref() {
            let view = crate::memory::Layered {
                first: &asm.sparse,
                second: &image,
            };
            let mut walk = crate::goruntime::waiting::WaitWalk::new(&target, wl, view, wait_gs);
            walk_rounds(pid, &mut walk, &mut asm, &image, &mut stats, 1 << 16);
        }
        phase(&mut stats, "blocked-on objects");
        // Then what globals point to, one read per level of the walk.
        if let Some(w) = walker.as_mut() {
            loop {
                let pm = PausedMem {
                    pid,
                    asm: &asm,
                    image: &image,
                    extra: Mutex::new(Vec::new()),
                };
                let ranges = w.step(&pm);
                for r in pm.extra.into_inner().unwrap_or_default() {
                    w.feed_extra(r.addr, r.data.clone());
                    asm.push(r);
                }
                if ranges.is_empty() {
                    break;
                }
                stats.read_calls += ranges.len().div_ceil(1024);
                let t0 = Instant::now();
                let res = process::read_ranges(pid, &ranges);
                w.feed(&ranges, res);
                w.stats.read_ns += t0.elapsed().as_nanos() as u64;
            }
        }
        if !full_plan.is_empty() {
            plan.extend(full_plan.iter().copied());
            read_round(pid, &mut plan, &mut asm, &mut stats, false);
        }
        phase(&mut stats, "globals");
        Ok(live)
    })();
    let pause = guard.map(|g| g.resume()).unwrap_or_default();
    if let Some(pre) = pre.as_ref() {
        for &i in &kept_idx {
            if let Some(ps) = pre.stacks.get(i as usize).and_then(|p| p.as_ref()) {
                asm.regions
                    .push((ps.sp, ps.data.clone(), RegionKind::Stack));
            }
        }
        kept_labels.sort_unstable();
        kept_labels.dedup();
        let mut done = std::collections::HashSet::new();
        for set in &kept_labels {
            for &(a, l) in pre.label_sets.get(set).map(|v| &v[..]).unwrap_or(&[]) {
                if done.insert(a) {
                    if let Some(d) = pre.label_mem.slice(a, l as usize) {
                        asm.regions.push((a, d, RegionKind::Other));
                    }
                }
            }
        }
    }
    let live =
        result.with_context(|| format!("pid {pid}: capture failed (the target was resumed)"))?;
    stats.pause = pause;
    stats.goroutines = live;
    if let Some(w) = walker {
        if w.stats.skipped > 0 {
            warnings.push(format!(
                "globals: {} objects ({}) reachable from globals were not captured (--var-budget); capture with --var NAME for one global's full value",
                w.stats.skipped,
                crate::report::fmt_bytes(w.stats.skipped_bytes)
            ));
        }
        stats.bytes_read += w.stats.bytes;
        stats.var_walk = Some(w.stats.clone());
        for (addr, d) in w.into_regions() {
            asm.regions
                .push((addr, Bytes::from_owner(d), RegionKind::Other));
        }
    }
    if !full_plan.is_empty() {
        drop_covered(&mut asm.regions, &full_plan);
    }
    stats.regions = asm.regions.len();
    if stats.failed_ranges > 0 {
        warnings.push(format!(
            "{} memory ranges could not be read",
            stats.failed_ranges
        ));
    }

    let meta = CaptureMeta {
        gospy_version: env!("CARGO_PKG_VERSION").to_string(),
        pid,
        exe_path,
        cmdline,
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        go_build_id: bin.elf.go_build_id.clone(),
        gnu_build_id: bin.elf.gnu_build_id.clone(),
        go_version: bin.go_version.clone(),
        load_bias: bias,
        wall_time_ns: wall,
        mono_time_ns: mono,
        pause_ns: pause.as_nanos() as u64,
        stopped: !opts.non_blocking,
        maps,
        auxv,
        threads,
        warnings,
        flags: crate::model::CaptureFlags {
            redacted: false,
            non_blocking: opts.non_blocking,
            unstable,
        },
    };
    // Embed what analysis needs: the --bin build when given, else the executable.
    let regions = asm
        .regions
        .into_iter()
        .map(|(addr, d, kind)| Region {
            addr,
            kind,
            data: d.to_vec(),
        })
        .collect();
    let mut cap = Capture {
        meta,
        regions,
        binary: opts.embed_binary.then(|| bin.elf.data.to_vec()),
    };
    if opts.redact {
        // After the resume: redaction never lengthens the pause.
        stats.redacted = Some(crate::redact::redact(&mut cap, &target));
    }
    Ok((cap, bin, stats))
}
