//! The heap profile's bucket list in two parts: walked whole before the
//! pause (headers and stacks never change once a bucket is linked, see
//! [`KnownBuckets`]), then in the pause only the known buckets' records, in
//! one round of merged ranges, and the buckets added since (a walk from the
//! new head to the first known bucket, usually none).

use super::stats::{BlockProfilesStats, BucketListStats, CaptureStats};
use super::walk::{PauseReader, PrecopyReader};
use crate::binary::elf::ImageMemory;
use crate::goruntime::bulk::{drive, BulkWalk};
use crate::goruntime::heap::blockprof::BlockKind;
use crate::goruntime::heap::profile::{BucketWalk, KnownBuckets, ProfTarget};
use crate::goruntime::version::mprof::BLOCK_RECORD_SIZE;
use crate::memory::{Memory, SparseMemory};
use crate::model::RegionKind;
use bytes::{Bytes, BytesMut};
use std::sync::Mutex;
use std::time::Instant;

/// Read rounds at most for each block or mutex bucket list in the pause.
const MAX_BLOCK_ROUNDS: usize = 4096;

/// Read rounds at most for the bucket walk before the pause.
const MAX_PRE_ROUNDS: usize = 4096;

/// Records closer than this are read as one range (the headers and stacks
/// between them along): buckets are carved back to back, and a remote range
/// costs far more than copying the few hundred bytes of header and stack
/// between two records. Measured at 10k buckets (Go 1.26, 128-byte
/// records, ~330-byte buckets): 10,100 ranges of 1.3 MB took 5-10 ms, 34
/// merged ranges of 3.4 MB 1-2 ms (one read, fresh destination pages).
pub(super) const COUNTER_GAP: u64 = 1024;

/// The bucket list as read before the pause.
pub(super) struct PreBuckets {
    pub(super) known: KnownBuckets,
    /// The buckets' bytes (windows around them included).
    pub(super) mem: SparseMemory,
    /// Bytes read, and how long the walk took.
    pub(super) bytes: u64,
    pub(super) elapsed_ns: u64,
    /// The block and mutex lists ([`BLOCK_KINDS`] order) as walked before
    /// the pause; None: not walked to the end (the pause walks it all).
    pub(super) block: [Option<KnownBuckets>; 2],
    /// The known buckets' records as the pause reads them when no bucket
    /// is missing (list index 0 on): sorted and merged before the pause.
    counters: Vec<(u64, usize)>,
    /// Their destination, filled by [`warm`](Self::warm) last before the
    /// stop and taken by the pause (see there).
    /// (The bool: every range was read.)
    dest: Mutex<Option<(BytesMut, bool)>>,
}

/// The block and mutex lists, in [`PreBuckets::block`]'s order.
const BLOCK_KINDS: [BlockKind; 2] = [BlockKind::Block, BlockKind::Mutex];

impl PreBuckets {
    /// Bytes the pause takes from its pool for the bucket lists: the known
    /// block and mutex buckets, read whole (the heap profile's records go
    /// into their own buffer, see [`warm`](Self::warm)).
    pub(super) fn pause_bytes(&self, _pt: &ProfTarget) -> u64 {
        self.block
            .iter()
            .flatten()
            .flat_map(|k| whole_ranges(k, 0))
            .map(|r| r.1)
            .sum()
    }

    /// Read the records' ranges once, last before the stop, into the
    /// buffer the pause will read them into again. At 10k buckets (3.4 MB)
    /// the pause's read then costs about half: the target's pages are
    /// resident and cached, the destination's lines cached and owned
    /// (measured on Go 1.26, 2-core VM: 0.34 ms against 0.8 ms with both
    /// cold). The bytes read here are not kept.
    pub(super) fn warm(&self, pid: i32, stats: &mut CaptureStats) {
        let total: usize = self.counters.iter().map(|r| r.1).sum();
        if total == 0 {
            return;
        }
        let mut buf = BytesMut::zeroed(total);
        // Last range first: the pause reads them first to last, so what
        // this read touched last (the most likely still cached) comes
        // first (the same order measured 0.1-0.15 ms slower).
        let live = crate::process::LiveMemory::new(pid);
        let mut end = total;
        let mut all = true;
        for &r in self.counters.iter().rev() {
            if let [Ok(())] = live.read_ranges_into(&[r], &mut buf[end - r.1..end])[..] {
                stats.bytes_read += r.1 as u64;
            } else {
                all = false;
            }
            end -= r.1;
        }
        stats.read_calls += self.counters.len();
        if let Ok(mut d) = self.dest.lock() {
            *d = Some((buf, all));
        }
    }
}

/// The buckets of `k` from list index `from` on, whole (header, stack and
/// record), sorted; neighbours closer than [`COUNTER_GAP`] merged.
fn whole_ranges(k: &KnownBuckets, from: usize) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = k.list[from.min(k.list.len())..].to_vec();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, len) in v {
        match out.last_mut() {
            Some(l)
                if a <= l.0 + l.1 + COUNTER_GAP
                    && a + len - l.0 <= crate::memory::MAX_READ as u64 =>
            {
                l.1 = (a + len).max(l.0 + l.1) - l.0
            }
            _ => out.push((a, len)),
        }
    }
    out
}

/// The block and mutex lists walked while the target runs (their headers
/// and stacks never change either; their records do, and are read in the
/// pause with the rest of each bucket).
fn prewalk_block_lists(
    pid: i32,
    pt: &ProfTarget,
    readable: &[(u64, u64)],
    image: &ImageMemory,
    stats: &mut CaptureStats,
) -> [Option<KnownBuckets>; 2] {
    BLOCK_KINDS.map(|kind| {
        let head_global = kind.head(pt)?;
        let head = crate::process::LiveMemory::new(pid).ptr(head_global).ok()?;
        stats.read_calls += 1;
        let mut walk = BucketWalk::new(pt, readable.to_vec())
            .list(head_global, BLOCK_RECORD_SIZE)
            .from_head(head);
        let mut reader = PrecopyReader::new(pid, image, stats);
        drive(
            &mut walk,
            &mut reader,
            MAX_PRE_ROUNDS,
            crate::memory::MAX_READ as u64,
        );
        walk.complete()
            .then(|| KnownBuckets::new(std::mem::take(&mut walk.found)))
    })
}

/// Walk the whole list while the target runs. None when the walk did not
/// reach the end of the list (the pause then walks it all).
pub(super) fn prewalk(
    pid: i32,
    pt: &ProfTarget,
    readable: &[(u64, u64)],
    image: &ImageMemory,
    stats: &mut CaptureStats,
) -> Option<PreBuckets> {
    let t0 = Instant::now();
    // The head, live (the reader's memory behind the rounds is the
    // executable's image).
    let head = crate::process::LiveMemory::new(pid).ptr(pt.mbuckets).ok()?;
    stats.read_calls += 1;
    let mut walk = BucketWalk::new(pt, readable.to_vec()).from_head(head);
    let mut reader = PrecopyReader::new(pid, image, stats);
    drive(
        &mut walk,
        &mut reader,
        MAX_PRE_ROUNDS,
        crate::memory::MAX_READ as u64,
    );
    if !walk.complete() {
        return None;
    }
    let mem = reader.into_memory();
    let block = prewalk_block_lists(pid, pt, readable, image, stats);
    let known = KnownBuckets::new(std::mem::take(&mut walk.found));
    let counters = pause_ranges(&known.counter_ranges(pt, 0, COUNTER_GAP));
    Some(PreBuckets {
        block,
        known,
        counters,
        dest: Mutex::new(None),
        mem,
        bytes: walk.bytes,
        elapsed_ns: t0.elapsed().as_nanos() as u64,
    })
}

/// What the pause read of a pre-walked list, for [`attach`].
pub(super) struct PauseBuckets {
    /// Index in the known list of the first bucket still in the list.
    pub(super) from: usize,
    /// The regions (in the assembled memory) holding the records read.
    pub(super) regions: std::ops::Range<usize>,
}

/// In the pause: one round of the known buckets' records from list index
/// `from` on.
///
/// `quiet`: no thread of the target ran since before the warming read (the
/// quiet pre-read was kept), so what it read is what the pause would read.
pub(super) fn read_counters(
    pid: i32,
    pt: &ProfTarget,
    pre: &PreBuckets,
    from: usize,
    quiet: bool,
    asm: &mut super::rounds::Assembled,
    stats: &mut CaptureStats,
) -> (PauseBuckets, u64) {
    // Usually every known bucket is still in the list (new ones are only
    // ever linked at the head): the ranges were computed before the pause
    // and the buffer warmed.
    let warm = if from == 0 {
        pre.dest.lock().ok().and_then(|mut d| d.take())
    } else {
        None
    };
    let (regions, bytes) = match warm {
        Some((buf, true)) if quiet => keep_warm(&pre.counters, buf, asm),
        Some((buf, _)) => read_ranges_into(pid, &pre.counters, buf, asm, stats),
        None => {
            let ranges = pause_ranges(&pre.known.counter_ranges(pt, from, COUNTER_GAP));
            read_ranges(pid, &ranges, asm, stats)
        }
    };
    (PauseBuckets { from, regions }, bytes)
}

/// `ranges` as the reader takes them (empty and oversized ones left out).
fn pause_ranges(ranges: &[(u64, u64)]) -> Vec<(u64, usize)> {
    ranges
        .iter()
        .filter(|r| r.1 > 0 && r.1 as usize <= crate::memory::MAX_READ)
        .map(|&(a, l)| (a, l as usize))
        .collect()
}

/// One round of `ranges` into the pause's pool; the regions they became,
/// and the bytes asked for.
fn read_ranges(
    pid: i32,
    ranges: &[(u64, usize)],
    asm: &mut super::rounds::Assembled,
    stats: &mut CaptureStats,
) -> (std::ops::Range<usize>, u64) {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    let buf = asm.pool.take(total);
    read_ranges_into(pid, ranges, buf, asm, stats)
}

/// The same into `buf` (at least as long as the ranges together).
fn read_ranges_into(
    pid: i32,
    ranges: &[(u64, usize)],
    mut buf: BytesMut,
    asm: &mut super::rounds::Assembled,
    stats: &mut CaptureStats,
) -> (std::ops::Range<usize>, u64) {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    let first = asm.regions.len();
    stats.read_calls += ranges.len().div_ceil(1024);
    // On this thread: a second one measured no faster on a loaded 2-core
    // machine at 10k buckets (1.8 ms against 1.6, medians of 7), and
    // `read_parallel` asks the system for its CPU count first (cgroup
    // files: 25-70 µs).
    let live = crate::process::LiveMemory::new(pid);
    let results = live.read_ranges_into(ranges, &mut buf[..total]);
    let buf = buf.freeze();
    let mut off = 0usize;
    for (&(a, len), res) in ranges.iter().zip(results) {
        match res {
            Ok(()) => {
                stats.bytes_read += len as u64;
                asm.regions
                    .push((a, buf.slice(off..off + len), RegionKind::Other));
            }
            Err(_) => stats.failed_ranges += 1,
        }
        off += len;
    }
    (first..asm.regions.len(), total as u64)
}

/// The warming read's buffer as the pause's regions, unread again.
fn keep_warm(
    ranges: &[(u64, usize)],
    buf: BytesMut,
    asm: &mut super::rounds::Assembled,
) -> (std::ops::Range<usize>, u64) {
    let first = asm.regions.len();
    let buf = buf.freeze();
    let mut off = 0usize;
    for &(a, len) in ranges {
        asm.regions
            .push((a, buf.slice(off..off + len), RegionKind::Other));
        off += len;
    }
    (first..asm.regions.len(), off as u64)
}

/// After the resume: the headers and stacks of the known buckets still in
/// the list, from the walk before the pause, where the pause's ranges did
/// not cover them (their bytes are the same: they never change).
pub(super) fn attach(
    pt: &ProfTarget,
    pre: &PreBuckets,
    pb: &PauseBuckets,
    regions: &mut Vec<(u64, Bytes, RegionKind)>,
) {
    let rs = pt.layout.mem_record_size;
    let mut read: Vec<(u64, u64)> = regions[pb.regions.clone()]
        .iter()
        .map(|(a, d, _)| (*a, *a + d.len() as u64))
        .collect();
    read.sort_unstable();
    let covered = |a: u64, end: u64| {
        let i = read.partition_point(|&(s, _)| s <= a);
        i > 0 && end <= read[i - 1].1
    };
    for &(a, len) in &pre.known.list[pb.from.min(pre.known.list.len())..] {
        let head = len - rs;
        if covered(a, a + head) {
            continue;
        }
        let d = pre
            .mem
            .slice(a, head as usize)
            .or_else(|| pre.mem.read_vec(a, head as usize).ok().map(Bytes::from));
        if let Some(d) = d {
            regions.push((a, d, RegionKind::Other));
        }
    }
}

/// A walk that counts its read rounds.
struct Counted<'w, W> {
    walk: &'w mut W,
    rounds: usize,
}

impl<W: BulkWalk> BulkWalk for Counted<'_, W> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        let v = self.walk.step(mem);
        self.rounds += usize::from(!v.is_empty());
        v
    }
}

/// In the pause: the block and mutex profiles' bucket lists
/// (`runtime.bbuckets`, `runtime.xbuckets`), walked whole. They are short
/// (one bucket per distinct contention stack, none until the program turns
/// the profiles on) and their records change in place with every event, so
/// nothing of them is read before the pause. The heads were read with the
/// data segments.
#[allow(clippy::too_many_arguments)]
pub(super) fn block_lists(
    pid: i32,
    pt: Option<&ProfTarget>,
    pre: Option<&PreBuckets>,
    readable: &[(u64, u64)],
    asm: &mut super::rounds::Assembled,
    image: &ImageMemory,
    stats: &mut CaptureStats,
    warnings: &mut Vec<String>,
) {
    let Some(pt) = pt else {
        return;
    };
    let mut out = BlockProfilesStats::default();
    for (i, kind) in BLOCK_KINDS.into_iter().enumerate() {
        let Some(head) = kind.head(pt) else {
            continue;
        };
        let known = pre.and_then(|p| p.block[i].as_ref());
        let mut walk = BucketWalk::new(pt, readable.to_vec()).list(head, BLOCK_RECORD_SIZE);
        if let Some(k) = known {
            // Only the buckets added since the walk before the pause.
            walk = walk.known(&k.set);
        }
        let mut counted = Counted {
            walk: &mut walk,
            rounds: 0,
        };
        let mut reader = PauseReader::new(pid, asm, image, stats);
        drive(
            &mut counted,
            &mut reader,
            MAX_BLOCK_ROUNDS,
            crate::memory::MAX_READ as u64,
        );
        let mut rounds = counted.rounds;
        let (mut buckets, mut bytes) = (walk.buckets, walk.bytes);
        if let (Some(k), Some(r)) = (known, walk.reached) {
            // The known buckets still in the list, whole, in one round.
            let from = k.index(r).unwrap_or(0);
            let ranges = pause_ranges(&whole_ranges(k, from));
            let (_, b) = read_ranges(pid, &ranges, asm, stats);
            buckets += k.list.len() - from;
            bytes += b;
            rounds += 1;
        }
        if let Some(why) = walk.stopped.take() {
            warnings.push(format!(
                "{} profile: bucket list not read whole: {why}",
                kind.name()
            ));
        }
        let s = BucketListStats {
            buckets,
            bytes,
            rounds,
        };
        match kind {
            BlockKind::Block => out.block = s,
            BlockKind::Mutex => out.mutex = s,
        }
    }
    stats.block_profiles = Some(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_ranges_merge_neighbours_from_an_index() {
        // List order (newest first): c, far, b, a; b and a back to back.
        let k = KnownBuckets::new(vec![
            (0x3000, 100),
            (0x90000, 80),
            (0x1070, 80),
            (0x1000, 112),
        ]);
        assert_eq!(
            whole_ranges(&k, 0),
            vec![(0x1000, 0xc0), (0x3000, 100), (0x90000, 80)]
        );
        // From index 2: only b and a.
        assert_eq!(whole_ranges(&k, 2), vec![(0x1000, 0xc0)]);
        assert!(whole_ranges(&k, 9).is_empty());
    }
}
