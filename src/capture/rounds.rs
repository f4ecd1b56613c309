//! The pause's reads: pre-touched destination memory, ranges read in
//! parallel, a round of ranges merged and read in bulk, and the memory view
//! that rounds build up.

use super::stats::CaptureStats;
use crate::memory::{MemError, MemResult, Memory, SparseMemory};
use crate::model::{Region, RegionKind};
use crate::process;
use bytes::{Bytes, BytesMut};
use std::sync::Mutex;

/// Ranges closer than this are read (and stored) as one.
const MERGE_GAP: u64 = 256;
/// Largest merged range (contiguous heap spans of `--heap` would otherwise
/// merge past `memory::MAX_READ` and fail as one).
const MAX_MERGED: u64 = 64 << 20;

/// Memory being assembled during the pause: what was read so far, in
/// regions, with the executable's read-only image behind it.
/// Region data is shared ([`Bytes`] slices of each round's one buffer), so
/// rebuilding the lookup index between rounds never copies bytes while the
/// target is stopped.
pub(super) struct Assembled {
    pub(super) regions: Vec<(u64, Bytes, RegionKind)>,
    pub(super) sparse: SparseMemory,
    pub(super) pool: Pool,
}

impl Assembled {
    pub(super) fn rebuild(&mut self) {
        self.sparse = SparseMemory::from_bytes(
            self.regions
                .iter()
                .map(|(a, d, _)| (*a, d.clone()))
                .collect(),
        );
    }
    pub(super) fn push(&mut self, r: Region) {
        self.regions.push((r.addr, Bytes::from(r.data), r.kind));
    }
}

/// Destination memory for the pause's reads, allocated and touched before
/// the target is stopped: fresh pages would otherwise be faulted in (and
/// zeroed by the kernel) one by one inside `process_vm_readv`, which at
/// 100k goroutines cost more than the copies themselves.
pub(super) struct Pool {
    buf: BytesMut,
}

impl Pool {
    pub(super) fn new(bytes: usize) -> Pool {
        let mut buf = BytesMut::zeroed(bytes);
        // Touch every page (the allocation is lazily zeroed).
        for i in (0..buf.len()).step_by(4096) {
            buf[i] = 0xff;
        }
        Pool { buf }
    }
    /// A buffer of `len` bytes: carved from the pool while it lasts.
    pub(super) fn take(&mut self, len: usize) -> BytesMut {
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
pub(super) fn read_parallel(
    pid: i32,
    ranges: &[(u64, usize)],
    out: &mut [u8],
) -> Vec<MemResult<()>> {
    /// Below this much work (in range-equivalents) one thread does it.
    const MIN_COST_PER_THREAD: usize = 4096;
    /// Pieces of large ranges, so that threads can share them.
    const PIECE: usize = 256 << 10;
    // A page costs about what a small range costs.
    let cost = |len: usize| 1 + len / 4096;
    let total_cost: usize = ranges.iter().map(|r| cost(r.1)).sum();
    // Asked once per process: the answer reads cgroup files (25–70 µs),
    // and this runs inside the pause.
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let threads = cpus.min(4).min(total_cost / MIN_COST_PER_THREAD).max(1);
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
    // On rayon's threads, started before the pause: a thread spawned here
    // would cost its start and, at its exit, the allocator's purge of its
    // heap (madvise, TLB shootdowns) inside the pause.
    let piece_results: Vec<(Vec<usize>, Vec<MemResult<()>>)> = {
        use rayon::prelude::*;
        parts
            .into_par_iter()
            .with_max_len(1)
            .map(|(rs, idx, buf)| {
                let r = live.read_ranges_into(&rs, buf);
                (idx, r)
            })
            .collect()
    };
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

/// Ranges sorted by address, merged when they overlap or are close (the
/// kind of a merged range is its first range's).
pub(super) fn merge_sorted(plan: &[(u64, u64, RegionKind)]) -> Vec<(u64, u64, RegionKind)> {
    let mut merged: Vec<(u64, u64, RegionKind)> = Vec::with_capacity(plan.len());
    for &(a, len, kind) in plan {
        if let Some(last) = merged.last_mut() {
            let end = last.0 + last.1;
            let new_end = (a + len).max(end);
            // Overlapping ranges always merge; touching or close ones while
            // the result stays under MAX_MERGED.
            if a < end || (a <= end.saturating_add(MERGE_GAP) && new_end - last.0 <= MAX_MERGED) {
                last.1 = new_end - last.0;
                continue;
            }
        }
        merged.push((a, len, kind));
    }
    merged
}

/// Reads a plan of ranges (merged when close) in bulk, into one buffer,
/// and adds them.
pub(super) fn read_round(
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
    let merged = merge_sorted(plan);
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
pub(super) fn drop_covered(
    regions: &mut Vec<(u64, Bytes, RegionKind)>,
    full: &[(u64, u64, RegionKind)],
) {
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
pub(super) struct PausedMem<'a> {
    pid: i32,
    asm: &'a Assembled,
    image: &'a crate::binary::elf::ImageMemory,
    extra: Mutex<Vec<Region>>,
}

impl<'a> PausedMem<'a> {
    pub(super) fn new(
        pid: i32,
        asm: &'a Assembled,
        image: &'a crate::binary::elf::ImageMemory,
    ) -> PausedMem<'a> {
        PausedMem {
            pid,
            asm,
            image,
            extra: Mutex::new(Vec::new()),
        }
    }
    /// What was read directly, to keep.
    pub(super) fn into_extra(self) -> Vec<Region> {
        self.extra.into_inner().unwrap_or_default()
    }
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
