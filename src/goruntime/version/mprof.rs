//! Layouts of the runtime's profile records (mprof.go): the `bucket` header,
//! the `nstk` return PCs after it, then the bucket's record. Every supported
//! version has the same 48-byte header; `memRecordCycle` lost its byte
//! counters in Go 1.27 (bytes = count × the bucket's size).

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
