//! Layouts of the runtime's profile records (mprof.go): the `bucket` header,
//! the `nstk` return PCs after it, then the bucket's record. Every supported
//! version has the same 48-byte header; `memRecordCycle` lost its byte
//! counters in Go 1.27 (bytes = count × the bucket's size).

use super::go::GoVersion;
use super::source::{LayoutCtx, LayoutSource};
use anyhow::{anyhow, Result};

/// Offsets of `runtime.bucket`, `runtime.memRecord` and
/// `runtime.memRecordCycle`, from DWARF or the per-version tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfLayout {
    /// `sizeof(bucket)`: where the stack starts.
    pub bucket_size: u64,
    pub allnext: u64,
    pub typ: u64,
    pub size: u64,
    pub nstk: u64,
    /// `sizeof(memRecord)`.
    pub mem_record_size: u64,
    pub active: u64,
    pub future: u64,
    /// `sizeof(memRecordCycle)`.
    pub cycle_size: u64,
    pub allocs: u64,
    pub frees: u64,
    /// None from Go 1.27 (bytes = count × bucket size).
    pub alloc_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

/// `memProfile` in `bucketType` (every supported version).
pub const MEM_PROFILE: u64 = 1;

impl ProfLayout {
    /// Layouts from one source (DWARF or tables), by field name.
    pub fn from_source(d: &dyn LayoutSource) -> Result<ProfLayout> {
        let mut c = LayoutCtx::new(d);
        let l = ProfLayout {
            bucket_size: c.size("runtime.bucket"),
            allnext: c.off("runtime.bucket", "allnext"),
            typ: c.off("runtime.bucket", "typ"),
            size: c.off("runtime.bucket", "size"),
            nstk: c.off("runtime.bucket", "nstk"),
            mem_record_size: c.size("runtime.memRecord"),
            active: c.off("runtime.memRecord", "active"),
            future: c.off("runtime.memRecord", "future"),
            cycle_size: c.size("runtime.memRecordCycle"),
            allocs: c.off("runtime.memRecordCycle", "allocs"),
            frees: c.off("runtime.memRecordCycle", "frees"),
            alloc_bytes: c.opt("runtime.memRecordCycle", "alloc_bytes"),
            free_bytes: c.opt("runtime.memRecordCycle", "free_bytes"),
        };
        if !c.missing.is_empty() {
            return Err(anyhow!(
                "profile record layout not found in {}: {}",
                d.describe(),
                c.missing.join(", ")
            ));
        }
        if l.bucket_size == 0
            || l.cycle_size == 0
            || l.future + 3 * l.cycle_size > l.mem_record_size
        {
            return Err(anyhow!(
                "implausible profile record layout in {}",
                d.describe()
            ));
        }
        Ok(l)
    }
}

/// `blockProfile` and `mutexProfile` in `bucketType` (every supported
/// version).
pub const BLOCK_PROFILE: u64 = 2;
pub const MUTEX_PROFILE: u64 = 3;

/// `runtime.blockRecord` after a block or mutex bucket's stack, the same
/// in every version 1.19-1.27: `count float64` (fractional from 1.21,
/// where sampled events are scaled up by their probability) at 0, then
/// `cycles int64` at 8.
pub const BLOCK_RECORD_SIZE: u64 = 16;
pub const BLOCK_RECORD_COUNT: u64 = 0;
pub const BLOCK_RECORD_CYCLES: u64 = 8;

/// Offset of `val` (the cached `cputicks` per second that
/// `runtime_cyclesPerSecond` returns) in `runtime.ticks`, by version:
/// 1.19 `{lock mutex; pad uint32; val uint64}`, 1.20-1.21 `{lock mutex;
/// val atomic.Int64}`, 1.22+ `{lock mutex; startTicks, startTime int64;
/// val atomic.Int64}` (runtime.go; mutex is one word without static lock
/// ranking). DWARF's offset is preferred when present.
pub fn ticks_val_offset(d: &dyn LayoutSource, go: GoVersion) -> u64 {
    if let Some(o) = d.offset_of("runtime.ticksType", "val") {
        return o;
    }
    if go.at_least(1, 22) {
        24
    } else if go.at_least(1, 20) {
        8
    } else {
        16
    }
}
