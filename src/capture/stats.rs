//! What a capture did: sizes, read calls and the pause's phases (`capture --json`).

use std::time::Duration;

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
    pub redacted: Option<crate::capture::redact::RedactStats>,
    /// Time spent in each phase while the target was stopped (stop, rounds).
    pub phases: Vec<(String, Duration)>,
    /// Opening the executable and decoding the runtime's layout from it
    /// (before the pause; DWARF is read lazily, only what is needed).
    pub binary_load: Duration,
    /// The stacks read before the pause, and how many the pause kept.
    pub precopy: Option<PreCopyStats>,
    /// About the executable and its runtime layouts (a Go version outside
    /// the supported range, unreadable DWARF, approximate layouts): for the
    /// caller to show before anything else.
    pub load_warnings: Vec<String>,
    /// The memory-profile buckets read (heap profile), if the walk ran.
    pub mem_profile: Option<MemProfileStats>,
    /// The block and mutex profiles' bucket lists read in the pause (with
    /// the heap profile's).
    pub block_profiles: Option<BlockProfilesStats>,
    /// `--heap --non-blocking`: the heap spans' headers read again after
    /// the copy (see `nonblocking::validate_heap`).
    pub heap_validation: Option<crate::goruntime::heap::validate::HeapValidation>,
    /// The g structs and blocked-on objects read before the pause, and
    /// whether the pause kept them (see `quiet`).
    pub quiet: Option<QuietStats>,
}

/// What the pause read of the block and mutex profiles' bucket lists.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BlockProfilesStats {
    pub block: BucketListStats,
    pub mutex: BucketListStats,
}

/// One bucket list: buckets walked, bytes asked for (windows included),
/// read rounds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BucketListStats {
    pub buckets: usize,
    pub bytes: u64,
    pub rounds: usize,
}

/// What the walk of the memory-profile bucket list read in the pause.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemProfileStats {
    pub buckets: usize,
    /// Bytes asked for in the pause (windows around the buckets, and the
    /// headers between merged records, included).
    pub bytes: u64,
    pub rounds: usize,
    /// Buckets walked before the pause (the pause read only their
    /// records), the bytes that walk read, and its time.
    pub known: usize,
    pub pre_bytes: u64,
    pub pre_ns: u64,
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

/// How the quiet pre-read went, for `capture --json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QuietStats {
    /// The pause kept the pre-read (it read no g struct itself).
    pub kept: bool,
    /// Why not (the first check that failed), or why none was tried.
    pub why_not: Option<String>,
    /// Pre-reads tried before the stop (another when a thread ran during
    /// one, see `quiet::TRIES`).
    pub tries: usize,
    /// Threads marked; sysmon's thread, when found (left out).
    pub threads: usize,
    pub sysmon_tid: Option<i32>,
    /// Bytes the pre-read read, and its time (before the pause).
    pub bytes: u64,
    pub elapsed_ns: u64,
}
