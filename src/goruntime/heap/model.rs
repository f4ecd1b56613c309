//! What the heap analysis returns (plain data, serialised as is).

use serde::Serialize;

/// Spans of `mheap_.allspans` a capture reads by default (about 2.5 MiB).
pub const DEFAULT_MAX_SPANS: usize = 16384;
/// Upper bound on spans read or walked, whatever the options say.
pub const MAX_SPANS_LIMIT: usize = 4_000_000;

/// `runtime.MemStats`, field for field (JSON names are Go's).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemStats {
    #[serde(rename = "Alloc")]
    pub alloc: u64,
    #[serde(rename = "TotalAlloc")]
    pub total_alloc: u64,
    #[serde(rename = "Sys")]
    pub sys: u64,
    #[serde(rename = "Lookups")]
    pub lookups: u64,
    #[serde(rename = "Mallocs")]
    pub mallocs: u64,
    #[serde(rename = "Frees")]
    pub frees: u64,
    #[serde(rename = "HeapAlloc")]
    pub heap_alloc: u64,
    #[serde(rename = "HeapSys")]
    pub heap_sys: u64,
    #[serde(rename = "HeapIdle")]
    pub heap_idle: u64,
    #[serde(rename = "HeapInuse")]
    pub heap_inuse: u64,
    #[serde(rename = "HeapReleased")]
    pub heap_released: u64,
    #[serde(rename = "HeapObjects")]
    pub heap_objects: u64,
    #[serde(rename = "StackInuse")]
    pub stack_inuse: u64,
    #[serde(rename = "StackSys")]
    pub stack_sys: u64,
    #[serde(rename = "MSpanInuse")]
    pub mspan_inuse: u64,
    #[serde(rename = "MSpanSys")]
    pub mspan_sys: u64,
    #[serde(rename = "MCacheInuse")]
    pub mcache_inuse: u64,
    #[serde(rename = "MCacheSys")]
    pub mcache_sys: u64,
    #[serde(rename = "BuckHashSys")]
    pub buckhash_sys: u64,
    #[serde(rename = "GCSys")]
    pub gc_sys: u64,
    #[serde(rename = "OtherSys")]
    pub other_sys: u64,
    #[serde(rename = "NextGC")]
    pub next_gc: u64,
    #[serde(rename = "LastGC")]
    pub last_gc: u64,
    #[serde(rename = "PauseTotalNs")]
    pub pause_total_ns: u64,
    #[serde(rename = "PauseNs")]
    pub pause_ns: Vec<u64>,
    #[serde(rename = "PauseEnd")]
    pub pause_end: Vec<u64>,
    #[serde(rename = "NumGC")]
    pub num_gc: u32,
    #[serde(rename = "NumForcedGC")]
    pub num_forced_gc: u32,
    #[serde(rename = "GCCPUFraction")]
    pub gc_cpu_fraction: f64,
    #[serde(rename = "EnableGC")]
    pub enable_gc: bool,
    #[serde(rename = "DebugGC")]
    pub debug_gc: bool,
    /// The first 61 size classes, like MemStats.BySize.
    #[serde(rename = "BySize")]
    pub by_size: Vec<BySize>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BySize {
    #[serde(rename = "Size")]
    pub size: u32,
    #[serde(rename = "Mallocs")]
    pub mallocs: u64,
    #[serde(rename = "Frees")]
    pub frees: u64,
}

/// Number of entries of MemStats.BySize (fixed by the Go API).
pub const MEMSTATS_BY_SIZE: usize = 61;

/// GC and pacer state beyond MemStats.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcState {
    /// GOGC (`gcController.gcPercent`); negative means off.
    pub gc_percent: i32,
    /// GOMEMLIMIT (`gcController.memoryLimit`); i64::MAX means no limit.
    pub memory_limit: i64,
    /// "off", "mark" or "mark termination" (`runtime.gcphase`).
    pub phase: String,
    /// GC cycles started (`work.cycles`); more than NumGC while one runs.
    pub cycles_started: Option<u32>,
    /// Heap goal from GOGC alone (`gcController.gcPercentHeapGoal`).
    pub gc_percent_heap_goal: u64,
    /// Heap goal from the memory limit (`memoryLimitHeapGoal`).
    pub memory_limit_heap_goal: u64,
    /// `gcController.heapLive` (bytes the pacer considers live, includes
    /// whole cached spans) and `heapMarked` (marked by the last cycle).
    pub heap_live: u64,
    pub heap_marked: u64,
    /// The last cycle's heap at start, end of mark, and marked
    /// (`work.heap0/heap1/heap2`, the numbers of GODEBUG=gctrace=1).
    pub last_cycle_heap: Option<[u64; 3]>,
    /// Nanoseconds between the last GC and the capture (wall clock).
    pub last_gc_ago_ns: Option<u64>,
    /// Most recent first, at most 256 (the runtime's ring).
    pub recent_pauses: Vec<Pause>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Pause {
    pub pause_ns: u64,
    /// Unix nanoseconds when the pause ended.
    pub end_unix_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SizeClass {
    pub class: usize,
    /// Object size in bytes.
    pub size: u32,
    /// Cumulative allocations and frees, MemStats.BySize style (in-flight
    /// mcache allocations included).
    pub mallocs: u64,
    pub frees: u64,
    /// Live objects (mallocs - frees) and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// In-use spans of this class, and their bytes, from `mheap_.allspans`
    /// (None when the spans were not captured).
    pub spans: Option<u64>,
    pub span_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CachedSpan {
    pub span_class: u8,
    pub size_class: usize,
    pub noscan: bool,
    pub span: u64,
    pub base: u64,
    pub npages: u64,
    pub elem_size: u64,
    pub nelems: u64,
    pub alloc_count: u64,
    pub alloc_count_before_cache: u64,
    /// Allocated since the span was cached: not yet in heapStats.
    pub in_flight: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PCache {
    pub p: i32,
    pub mcache: u64,
    pub tiny_allocs: u64,
    pub in_flight_objects: i64,
    pub in_flight_bytes: i64,
    pub spans: Vec<CachedSpan>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LargeObject {
    pub addr: u64,
    /// Bytes the object occupies (span pages).
    pub span_bytes: u64,
    /// Requested size where the runtime records it (`span.limit - base`).
    pub size: u64,
    pub noscan: bool,
    /// Go type (Go 1.22+ `span.largeType`, mapped through DWARF).
    pub type_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Large {
    /// Live large objects and bytes (heapStats: largeAlloc* - largeFree*).
    pub count: u64,
    pub bytes: u64,
    pub allocs: u64,
    pub frees: u64,
    pub alloc_bytes: u64,
    pub free_bytes: u64,
    /// With `--large`: in-use large-object spans from `mheap_.allspans`,
    /// biggest first.
    pub objects: Option<Vec<LargeObject>>,
}

/// How much of `mheap_.allspans` could be walked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpanCoverage {
    /// len(mheap_.allspans).
    pub total: u64,
    /// Entries walked (capped at capture or by the walk limit).
    pub walked: u64,
    /// Entries whose span struct was not in memory.
    pub missing: u64,
    /// Spans in state mSpanInUse among those walked.
    pub in_use: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Heap {
    pub memstats: MemStats,
    pub gc: GcState,
    pub size_classes: Vec<SizeClass>,
    pub per_p: Vec<PCache>,
    pub large: Large,
    pub spans: Option<SpanCoverage>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HeapOptions {
    /// Walk `mheap_.allspans` (spans per size class).
    pub walk_spans: bool,
    /// List large objects (implies walking).
    pub list_large: bool,
    /// At most this many allspans entries are walked.
    pub max_spans: usize,
}

impl Default for HeapOptions {
    fn default() -> Self {
        HeapOptions {
            walk_spans: true,
            list_large: false,
            max_spans: MAX_SPANS_LIMIT,
        }
    }
}
