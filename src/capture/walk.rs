//! Capture's readers for the one breadth-first bulk reader
//! ([`crate::goruntime::bulk`]): where each walk's rounds are read and
//! kept. Blocked-on objects and label sets in the pause go into the pause's
//! assembled memory ([`PauseReader`]), label sets before the pause into
//! their own memory ([`PrecopyReader`]), and the globals walk keeps its own
//! bytes ([`GlobalsReader`]).

use super::rounds::{read_parallel, read_round, Assembled, PausedMem};
use super::stats::CaptureStats;
use crate::binary::elf::ImageMemory;
use crate::goruntime::bulk::{BulkWalk, RoundReader};
use crate::memory::{Layered, MemResult, SparseMemory};
use crate::model::RegionKind;
use crate::process;
use bytes::{Bytes, BytesMut};
use std::time::Instant;

/// Read rounds at most for blocked-on objects and label sets (each select
/// case or semaphore tree level costs one).
pub(super) const MAX_WAIT_ROUNDS: usize = 16;

/// Reads rounds into the pause's assembled memory (merged, from the
/// pre-touched pool). The walk sees the index built by the last re-indexed
/// round (data, gs), the executable's image and the regions it read itself
/// (re-indexed alone each round: the big index is not rebuilt in between).
pub(super) struct PauseReader<'a> {
    pid: i32,
    asm: &'a mut Assembled,
    image: &'a ImageMemory,
    stats: &'a mut CaptureStats,
    first: usize,
    small: SparseMemory,
    plan: Vec<(u64, u64, RegionKind)>,
}

impl<'a> PauseReader<'a> {
    pub(super) fn new(
        pid: i32,
        asm: &'a mut Assembled,
        image: &'a ImageMemory,
        stats: &'a mut CaptureStats,
    ) -> PauseReader<'a> {
        PauseReader {
            pid,
            first: asm.regions.len(),
            asm,
            image,
            stats,
            small: SparseMemory::default(),
            plan: Vec::new(),
        }
    }
}

impl RoundReader for PauseReader<'_> {
    fn step<W: BulkWalk>(&mut self, walk: &mut W) -> Vec<(u64, u64)> {
        walk.step(&Layered {
            first: &self.asm.sparse,
            second: Layered {
                first: &self.small,
                second: self.image,
            },
        })
    }

    fn read(&mut self, ranges: &[(u64, u64)]) -> Option<Vec<MemResult<Vec<u8>>>> {
        self.plan
            .extend(ranges.iter().map(|&(a, l)| (a, l, RegionKind::Other)));
        read_round(self.pid, &mut self.plan, self.asm, self.stats, false);
        self.small = SparseMemory::from_bytes(
            self.asm.regions[self.first..]
                .iter()
                .map(|(a, d, _)| (*a, d.clone()))
                .collect(),
        );
        None
    }
}

/// Reads rounds before the pause (label sets of pre-copied goroutines) into
/// a memory of their own, over the executable's image.
pub(super) struct PrecopyReader<'a> {
    pid: i32,
    image: &'a ImageMemory,
    stats: &'a mut CaptureStats,
    regions: Vec<(u64, Bytes)>,
    mem: SparseMemory,
}

impl<'a> PrecopyReader<'a> {
    pub(super) fn new(
        pid: i32,
        image: &'a ImageMemory,
        stats: &'a mut CaptureStats,
    ) -> PrecopyReader<'a> {
        PrecopyReader {
            pid,
            image,
            stats,
            regions: Vec::new(),
            mem: SparseMemory::default(),
        }
    }

    /// Everything read.
    pub(super) fn into_memory(self) -> SparseMemory {
        self.mem
    }
}

impl RoundReader for PrecopyReader<'_> {
    fn step<W: BulkWalk>(&mut self, walk: &mut W) -> Vec<(u64, u64)> {
        walk.step(&Layered {
            first: &self.mem,
            second: self.image,
        })
    }

    fn read(&mut self, ranges: &[(u64, u64)]) -> Option<Vec<MemResult<Vec<u8>>>> {
        let want: Vec<(u64, usize)> = ranges.iter().map(|&(a, l)| (a, l as usize)).collect();
        let total: usize = want.iter().map(|r| r.1).sum();
        let mut buf = BytesMut::zeroed(total);
        let res = read_parallel(self.pid, &want, &mut buf);
        self.stats.read_calls += want.len().div_ceil(1024);
        let buf = buf.freeze();
        let mut off = 0usize;
        for (&(a, l), r) in want.iter().zip(res) {
            if r.is_ok() {
                self.stats.bytes_read += l as u64;
                self.regions.push((a, buf.slice(off..off + l)));
            }
            off += l;
        }
        self.mem = SparseMemory::from_bytes(self.regions.clone());
        None
    }
}

/// Reads the globals walk's rounds range by range, handing the bytes to
/// the walk (which keeps them); what the walk's memory had to read directly
/// (itabs, types) goes both to the walk and into the pause's memory.
pub(super) struct GlobalsReader<'a> {
    pid: i32,
    asm: &'a mut Assembled,
    image: &'a ImageMemory,
    stats: &'a mut CaptureStats,
    /// Time spent reading.
    pub(super) read_ns: u64,
}

impl<'a> GlobalsReader<'a> {
    pub(super) fn new(
        pid: i32,
        asm: &'a mut Assembled,
        image: &'a ImageMemory,
        stats: &'a mut CaptureStats,
    ) -> GlobalsReader<'a> {
        GlobalsReader {
            pid,
            asm,
            image,
            stats,
            read_ns: 0,
        }
    }
}

impl RoundReader for GlobalsReader<'_> {
    fn step<W: BulkWalk>(&mut self, walk: &mut W) -> Vec<(u64, u64)> {
        let pm = PausedMem::new(self.pid, self.asm, self.image);
        let ranges = walk.step(&pm);
        for r in pm.into_extra() {
            walk.feed_extra(r.addr, r.data.clone());
            self.asm.push(r);
        }
        ranges
    }

    fn read(&mut self, ranges: &[(u64, u64)]) -> Option<Vec<MemResult<Vec<u8>>>> {
        self.stats.read_calls += ranges.len().div_ceil(1024);
        let t0 = Instant::now();
        let want: Vec<(u64, usize)> = ranges.iter().map(|&(a, l)| (a, l as usize)).collect();
        let res = process::read_ranges(self.pid, &want);
        self.read_ns += t0.elapsed().as_nanos() as u64;
        Some(res)
    }
}

/// Every byte of the target a walk saw before the pause: `(addr, bytes)`,
/// or `(addr, len)` with no bytes where the read failed.
type SeenLog = Vec<(u64, usize, Option<Vec<u8>>)>;

/// Live memory behind the executable's read-only image, logging what it
/// serves from the target (the image never changes).
struct LoggedLive<'a> {
    live: process::LiveMemory,
    image: &'a ImageMemory,
    log: std::sync::Mutex<SeenLog>,
}

impl crate::memory::Memory for LoggedLive<'_> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        if self.image.read_exact(addr, buf).is_ok() {
            return Ok(());
        }
        let r = self.live.read_exact(addr, buf);
        if let Ok(mut l) = self.log.lock() {
            l.push((addr, buf.len(), r.is_ok().then(|| buf.to_vec())));
        }
        r
    }
}

/// Reads the pre-walk's rounds live, logging them.
struct PrewalkReader<'a> {
    pid: i32,
    mem: LoggedLive<'a>,
}

impl RoundReader for PrewalkReader<'_> {
    fn step<W: BulkWalk>(&mut self, walk: &mut W) -> Vec<(u64, u64)> {
        walk.step(&self.mem)
    }

    fn read(&mut self, ranges: &[(u64, u64)]) -> Option<Vec<MemResult<Vec<u8>>>> {
        let want: Vec<(u64, usize)> = ranges.iter().map(|&(a, l)| (a, l as usize)).collect();
        let res = process::read_ranges(self.pid, &want);
        if let Ok(mut l) = self.mem.log.lock() {
            for (&(a, n), r) in want.iter().zip(&res) {
                l.push((a, n, r.as_ref().ok().cloned()));
            }
        }
        Some(res)
    }
}

/// The globals walk done before the pause, over the running target, and
/// every byte it saw. A walk is a function of the bytes it reads: when the
/// pause finds all of them unchanged ([`PreWalk::still`]), walking again
/// would give the same objects with the same bytes, so the pre-walk's
/// result is the pause's, for one bulk read and a comparison.
pub(super) struct PreWalk<'a> {
    pub(super) walker: crate::goruntime::reach::Walker<'a>,
    /// Sorted by address, deduplicated.
    seen: SeenLog,
}

/// Walk `walker` to its end over the running target.
pub(super) fn prewalk<'a>(
    pid: i32,
    mut walker: crate::goruntime::reach::Walker<'a>,
    image: &ImageMemory,
) -> PreWalk<'a> {
    let mut reader = PrewalkReader {
        pid,
        mem: LoggedLive {
            live: process::LiveMemory::new(pid),
            image,
            log: std::sync::Mutex::new(Vec::new()),
        },
    };
    crate::goruntime::bulk::drive(&mut walker, &mut reader, usize::MAX, u64::MAX);
    let mut seen = reader.mem.log.into_inner().unwrap_or_default();
    seen.sort_by_key(|a| (a.0, a.1));
    seen.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    PreWalk { walker, seen }
}

/// Reads closer than this are one range when the pause checks a pre-walk
/// (a range costs far more than the bytes between two).
const CHECK_GAP: u64 = 1024;

impl PreWalk<'_> {
    /// In the pause: whether every byte the pre-walk saw is still the same
    /// (bytes of data/BSS from `asm`, the rest read again in one call).
    pub(super) fn still(&self, pid: i32, asm: &Assembled, stats: &mut CaptureStats) -> bool {
        use crate::memory::Memory;
        let mut reread: Vec<(u64, u64)> = Vec::new();
        let mut pending: Vec<usize> = Vec::new();
        let mut tmp = Vec::new();
        for (i, (a, n, d)) in self.seen.iter().enumerate() {
            tmp.resize(*n, 0);
            match (d, asm.sparse.read_exact(*a, &mut tmp)) {
                (Some(d), Ok(())) if tmp == *d => {}
                (_, Ok(())) => return false,
                _ => {
                    pending.push(i);
                    match reread.last_mut() {
                        Some(l) if *a <= l.1 + CHECK_GAP => l.1 = l.1.max(a + *n as u64),
                        _ => reread.push((*a, a + *n as u64)),
                    }
                }
            }
        }
        if reread.is_empty() {
            return true;
        }
        let ranges: Vec<(u64, usize)> =
            reread.iter().map(|&(a, b)| (a, (b - a) as usize)).collect();
        let total: usize = ranges.iter().map(|r| r.1).sum();
        let mut buf = vec![0u8; total];
        let res = process::LiveMemory::new(pid).read_ranges_into(&ranges, &mut buf);
        stats.read_calls += ranges.len().div_ceil(process::IOV_MAX);
        stats.bytes_read += total as u64;
        // Where each merged range starts in `buf`, and whether it was read.
        let mut at = Vec::with_capacity(ranges.len());
        let mut off = 0usize;
        for (r, ok) in ranges.iter().zip(&res) {
            at.push((r.0, off, ok.is_ok()));
            off += r.1;
        }
        pending.into_iter().all(|i| {
            let (a, n, d) = &self.seen[i];
            let k = at.partition_point(|x| x.0 <= *a);
            let Some(&(start, off, ok)) = k.checked_sub(1).and_then(|k| at.get(k)) else {
                return false;
            };
            let o = off + (*a - start) as usize;
            // Unreadable then, or a failed read now: not proven.
            match (d, ok.then(|| buf.get(o..o + *n)).flatten()) {
                (Some(d), Some(now)) => now == &d[..],
                _ => false,
            }
        })
    }
}
