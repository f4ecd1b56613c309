//! The heap profile's bucket list in two parts: walked whole before the
//! pause (headers and stacks never change once a bucket is linked, see
//! [`KnownBuckets`]), then in the pause only the known buckets' records, in
//! one round of merged ranges, and the buckets added since (a walk from the
//! new head to the first known bucket, usually none).

use super::rounds::read_parallel;
use super::stats::{BlockProfilesStats, BucketListStats, CaptureStats};
use super::walk::{PauseReader, PrecopyReader};
use crate::binary::elf::ImageMemory;
use crate::goruntime::bulk::{drive, BulkWalk};
use crate::goruntime::heap::blockprof::BlockKind;
use crate::goruntime::heap::profile::{BucketWalk, KnownBuckets, ProfTarget};
use crate::goruntime::version::mprof::BLOCK_RECORD_SIZE;
use crate::memory::{Memory, SparseMemory};
use crate::model::RegionKind;
use bytes::Bytes;
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
}

impl PreBuckets {
    /// Bytes the pause reads at most for the known buckets' records.
    pub(super) fn pause_bytes(&self, pt: &ProfTarget) -> u64 {
        self.known
            .counter_ranges(pt, 0, COUNTER_GAP)
            .iter()
            .map(|r| r.1)
            .sum()
    }
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
    Some(PreBuckets {
        known: KnownBuckets::new(std::mem::take(&mut walk.found)),
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
pub(super) fn read_counters(
    pid: i32,
    pt: &ProfTarget,
    pre: &PreBuckets,
    from: usize,
    asm: &mut super::rounds::Assembled,
    stats: &mut CaptureStats,
) -> (PauseBuckets, u64) {
    let ranges: Vec<(u64, usize)> = pre
        .known
        .counter_ranges(pt, from, COUNTER_GAP)
        .into_iter()
        .filter(|r| r.1 > 0 && r.1 as usize <= crate::memory::MAX_READ)
        .map(|(a, l)| (a, l as usize))
        .collect();
    let total: usize = ranges.iter().map(|r| r.1).sum();
    let first = asm.regions.len();
    stats.read_calls += ranges.len().div_ceil(1024);
    // Into the pre-touched pool, on one thread at 10k buckets (a second
    // thread measured no faster on a loaded 2-core machine: 1.8 ms against
    // 1.6, medians of 7).
    let mut buf = asm.pool.take(total);
    let results = read_parallel(pid, &ranges, &mut buf);
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
    let bytes = total as u64;
    (
        PauseBuckets {
            from,
            regions: first..asm.regions.len(),
        },
        bytes,
    )
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
pub(super) fn block_lists(
    pid: i32,
    pt: Option<&ProfTarget>,
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
    for kind in [BlockKind::Block, BlockKind::Mutex] {
        let Some(head) = kind.head(pt) else {
            continue;
        };
        let mut walk = BucketWalk::new(pt, readable.to_vec()).list(head, BLOCK_RECORD_SIZE);
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
        let rounds = counted.rounds;
        if let Some(why) = walk.stopped.take() {
            warnings.push(format!(
                "{} profile: bucket list not read whole: {why}",
                kind.name()
            ));
        }
        let s = BucketListStats {
            buckets: walk.buckets,
            bytes: walk.bytes,
            rounds,
        };
        match kind {
            BlockKind::Block => out.block = s,
            BlockKind::Mutex => out.mutex = s,
        }
    }
    stats.block_profiles = Some(out);
}
