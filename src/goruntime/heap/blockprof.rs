//! The runtime's block and mutex profiles: the buckets at `runtime.bbuckets`
//! and `runtime.xbuckets`, decoded into the records
//! `blockProfileInternal` / `mutexProfileInternal` (mprof.go) return.
//!
//! A block or mutex bucket is the same 48-byte header and `nstk` PCs as a
//! memory-profile bucket, followed by a `blockRecord {count float64;
//! cycles int64}` (every version 1.19-1.27). The runtime's reader returns
//! `Count: int64(bp.count)` (and, for the block profile only, 1 when that
//! is 0) and `Cycles: bp.cycles`, in list order (newest first); the stack
//! as stored. Nothing else is folded: unlike the heap profile there are no
//! cycles to publish, every event is counted when it is recorded.
//!
//! The writer (runtime/pprof `printCountCycleProfile`) turns cycles into
//! nanoseconds with `runtime_cyclesPerSecond`, i.e. `ticks.val` once it is
//! computed; the address of that value is read here too.

use super::profile::ProfTarget;
use crate::goruntime::version::mprof::{
    BLOCK_PROFILE, BLOCK_RECORD_COUNT, BLOCK_RECORD_CYCLES, BLOCK_RECORD_SIZE, MUTEX_PROFILE,
};
use crate::memory::Memory;
use anyhow::{anyhow, Context, Result};

/// Buckets read at most per list (one per distinct contention stack).
const MAX_BLOCK_BUCKETS: usize = 1 << 20;

/// Which contention profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `pprof.Lookup("block")`: `runtime.bbuckets`.
    Block,
    /// `pprof.Lookup("mutex")`: `runtime.xbuckets`.
    Mutex,
}

impl BlockKind {
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Block => "block",
            BlockKind::Mutex => "mutex",
        }
    }
    fn typ(self) -> u64 {
        match self {
            BlockKind::Block => BLOCK_PROFILE,
            BlockKind::Mutex => MUTEX_PROFILE,
        }
    }
    /// The global holding the list's head, when found in the executable.
    pub fn head(self, pt: &ProfTarget) -> Option<u64> {
        match self {
            BlockKind::Block => pt.bbuckets,
            BlockKind::Mutex => pt.xbuckets,
        }
    }
    fn global(self) -> &'static str {
        match self {
            BlockKind::Block => "runtime.bbuckets",
            BlockKind::Mutex => "runtime.xbuckets",
        }
    }
}

/// One record as the runtime's reader returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    /// As stored (return PCs; from Go 1.23 partly "partially expanded"
    /// frame-pointer PCs, and in 1.23-1.26 the runtime's own lock
    /// contention starts with the sentinel `^0`).
    pub stack: Vec<u64>,
    /// `int64(bp.count)`, 1 for a block record whose count is 0.
    pub count: i64,
    /// `bp.count` as stored.
    pub raw_count: f64,
    pub cycles: i64,
}

/// A block or mutex profile as the runtime would report it.
#[derive(Debug, Clone)]
pub struct BlockProfile {
    pub kind: BlockKind,
    /// In list order (newest first).
    pub records: Vec<BlockRecord>,
    /// `ticks.val` in the target (0: not computed yet, or not found).
    pub ticks_per_second: i64,
    /// `runtime.mutexprofilerate`, when found.
    pub mutex_rate: Option<i64>,
    pub buckets: usize,
    pub warnings: Vec<String>,
}

/// One bucket of a block or mutex list; its `allnext` with it.
fn read_bucket<M: Memory>(
    pt: &ProfTarget,
    mem: &M,
    addr: u64,
    kind: BlockKind,
) -> Result<(BlockRecord, u64)> {
    let l = &pt.layout;
    let len = pt
        .bucket_len_rec(mem, addr, BLOCK_RECORD_SIZE)
        .ok_or_else(|| anyhow!("bucket {addr:#x}: header unreadable or implausible"))?;
    let b = mem
        .read_vec(addr, len as usize)
        .map_err(|e| anyhow!("bucket {addr:#x}: {len} bytes unreadable ({})", e.why))?;
    let u = |o: u64| -> u64 {
        let o = o as usize;
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default())
    };
    if u(l.typ) != kind.typ() {
        return Err(anyhow!(
            "bucket {addr:#x}: not a {} profile bucket (type {})",
            kind.name(),
            u(l.typ)
        ));
    }
    let nstk = u(l.nstk);
    let stack: Vec<u64> = (0..nstk).map(|i| u(l.bucket_size + 8 * i)).collect();
    let rec = l.bucket_size + 8 * nstk;
    let raw_count = f64::from_bits(u(rec + BLOCK_RECORD_COUNT));
    let mut count = raw_count as i64;
    if count == 0 && kind == BlockKind::Block {
        count = 1;
    }
    let record = BlockRecord {
        stack,
        count,
        raw_count,
        cycles: u(rec + BLOCK_RECORD_CYCLES) as i64,
    };
    Ok((record, u(l.allnext)))
}

/// The block or mutex profile the runtime's reader would return now, from
/// the bytes in `mem` (nothing is written anywhere).
///
/// `ticks_val` is the offset of `val` in `runtime.ticks`
/// (`mprof::ticks_val_offset`).
pub fn read_block_profile<M: Memory>(
    pt: &ProfTarget,
    mem: &M,
    kind: BlockKind,
    ticks_val: u64,
) -> Result<BlockProfile> {
    let head_global = kind.head(pt).ok_or_else(|| {
        anyhow!(
            "no {} profile: {} not found in the executable",
            kind.name(),
            kind.global()
        )
    })?;
    let head = mem
        .ptr(head_global)
        .with_context(|| format!("reading {}", kind.global()))?;
    let ticks_per_second = pt
        .ticks
        .and_then(|a| mem.u64(a + ticks_val).ok())
        .map_or(0, |v| v as i64);
    let mutex_rate = pt
        .mutex_rate
        .and_then(|a| mem.u64(a).ok())
        .map(|v| v as i64);
    let mut warnings = Vec::new();
    let mut records = Vec::new();
    let mut at = head;
    while at != 0 {
        if records.len() >= MAX_BLOCK_BUCKETS {
            warnings.push(format!(
                "{} profile: more than {MAX_BLOCK_BUCKETS} buckets, the rest left out",
                kind.name()
            ));
            break;
        }
        match read_bucket(pt, mem, at, kind) {
            Ok((r, next)) => {
                records.push(r);
                at = next;
            }
            Err(e) => {
                warnings.push(format!(
                    "{} profile: the bucket list ends early after {} buckets: {e}",
                    kind.name(),
                    records.len()
                ));
                break;
            }
        }
    }
    Ok(BlockProfile {
        kind,
        buckets: records.len(),
        records,
        ticks_per_second,
        mutex_rate,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goruntime::version::mprof::ProfLayout;
    use crate::memory::SparseMemory;
    use std::sync::Arc;

    fn target() -> ProfTarget {
        ProfTarget {
            layout: ProfLayout {
                bucket_size: 48,
                allnext: 8,
                typ: 16,
                size: 32,
                nstk: 40,
                mem_record_size: 128,
                active: 0,
                future: 32,
                cycle_size: 32,
                allocs: 0,
                frees: 8,
                alloc_bytes: Some(16),
                free_bytes: Some(24),
            },
            mbuckets: 0x1000,
            mem_profile_rate: 0x1008,
            mprof_cycle: 0x1010,
            bbuckets: Some(0x1018),
            xbuckets: Some(0x1020),
            ticks: Some(0x1020),
            mutex_rate: Some(0x1030),
        }
    }

    fn bucket(typ: u64, allnext: u64, pcs: &[u64], count: f64, cycles: i64) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [0, allnext, typ, 0, 0, pcs.len() as u64] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for pc in pcs {
            b.extend_from_slice(&pc.to_le_bytes());
        }
        b.extend_from_slice(&count.to_bits().to_le_bytes());
        b.extend_from_slice(&cycles.to_le_bytes());
        b
    }

    #[test]
    fn reads_block_and_mutex_lists() {
        let mut g = Vec::new();
        for v in [0u64, 1, 0, 0x20000, 0x30000, 2_000_000_000, 1] {
            g.extend_from_slice(&v.to_le_bytes());
        }
        let m = SparseMemory::new(vec![
            (0x1000, Arc::from(g)),
            (
                0x20000,
                Arc::from(bucket(
                    BLOCK_PROFILE,
                    0x21000,
                    &[0x401000, 0x402000],
                    2.75,
                    900,
                )),
            ),
            (
                0x21000,
                Arc::from(bucket(BLOCK_PROFILE, 0, &[0x403000], 0.0, 5)),
            ),
            (
                0x30000,
                Arc::from(bucket(MUTEX_PROFILE, 0, &[u64::MAX, 0x404000], 0.0, 7)),
            ),
        ]);
        let pt = target();
        let b = read_block_profile(&pt, &m, BlockKind::Block, 8).unwrap();
        assert_eq!(b.buckets, 2);
        assert_eq!(b.ticks_per_second, 2_000_000_000);
        assert_eq!(b.records[0].stack, vec![0x401000, 0x402000]);
        assert_eq!((b.records[0].count, b.records[0].cycles), (2, 900));
        // Block counts of 0 read as 1, mutex counts do not.
        assert_eq!(b.records[1].count, 1);
        let x = read_block_profile(&pt, &m, BlockKind::Mutex, 8).unwrap();
        assert_eq!(x.records[0].count, 0);
        assert_eq!(x.records[0].stack[0], u64::MAX);
        assert_eq!(x.mutex_rate, Some(1));
        // A bucket of the wrong type ends the list with a warning.
        let mut pt2 = pt.clone();
        pt2.bbuckets = pt.xbuckets;
        let w = read_block_profile(&pt2, &m, BlockKind::Block, 8).unwrap();
        assert_eq!(w.buckets, 0);
        assert_eq!(w.warnings.len(), 1);
    }
}
