//! What a capture is asked to do.

#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// Store the executable in the snapshot.
    pub embed_binary: bool,
    /// An unstripped build of the target's executable.
    pub bin: Option<std::path::PathBuf>,
    /// Globals whose full value must be captured (`--var`, no budget).
    pub vars: Vec<String>,
    /// Bytes of heap objects reachable from globals to capture (`--var-budget`;
    /// None: [`crate::goruntime::reach::DEFAULT_BUDGET`]).
    pub var_budget: Option<u64>,
    /// Store every writable mapping of the process (`--full`).
    pub full: bool,
    /// Drop data contents after the capture (see [`super::redact`]).
    pub redact: bool,
    /// Spans of `mheap_.allspans` to read (for `heap --large` and spans per
    /// size class); None: `heap::DEFAULT_MAX_SPANS`, 0: none.
    pub max_spans: Option<usize>,
    /// Never stop the target (`--non-blocking`): read it while it runs and
    /// validate each goroutine.
    pub non_blocking: bool,
    /// Never keep goroutines read before the stop (`--no-pre-read`; see
    /// `quiet`): the pause reads them all itself.
    pub no_pre_read: bool,
    /// Read the heap profile's bucket list (`runtime.mbuckets`, off-heap;
    /// a few ms of pause per 10k buckets). Snapshots want it; live
    /// goroutine and heap reports do not, and skip it.
    pub mem_profile: bool,
    /// Capture of the executable's data and BSS only the runtime's globals
    /// (and the `vars`): live reports analyze nothing else. Default: all of
    /// it (either way only pages the target touched are read, see `data`).
    pub runtime_data_only: bool,
    /// Heap-complete capture (`--heap`): every in-use heap span's memory and
    /// allocation bits, for `analyze FILE objects` (see [`super::heapspans`]).
    pub heap: bool,
}
