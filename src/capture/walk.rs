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
