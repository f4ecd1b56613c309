//! Heap and GC statistics decoded passively from `(binary, memory)`: a
//! `runtime.MemStats` equivalent, per size class, per P, and large objects.
//!
//! `runtime.ReadMemStats` stops the world, flushes every P's mcache
//! (`flushallmcaches` → `mcache.releaseAll`) and then sums the three
//! `heapStatsDelta` entries of `memstats.heapStats` (`readmemstats_m` in
//! mstats.go). A passive reader cannot flush, but everything a flush would
//! move is visible: for each cached span `s = p.mcache.alloc[spc]` that is not
//! `&runtime.emptymspan`, `s.allocCount - s.allocCountBeforeCache` objects
//! were allocated and not yet counted (they go to size class `spc >> 1`, and
//! `slots * s.elemsize` bytes to `gcController.totalAlloc`), plus the
//! mcache's `tinyAllocs`. With those added, the arithmetic of
//! `readmemstats_m` and `gcControllerState.heapGoal` (mgcpacer.go) is
//! reproduced exactly. What a passive reader cannot reproduce: a flush also
//! sweeps spans cached before the current sweep phase started (only possible
//! while a GC cycle is in progress or its sweep has not finished), which can
//! free objects; see `Heap::warnings`.
//!
//! Layouts come from DWARF by field name; size classes from the binary
//! (`runtime.class_to_size`, `internal/runtime/gc.SizeClassToSize` from Go
//! 1.25). `span.nelems` is always read, never derived, and no assumption is
//! made about where the heap lives (randomised from Go 1.26).
//!
//! `target` holds what comes from the binary, `mstats` the MemStats
//! arithmetic, `spans` the allspans walk, `model` the returned data.

pub mod arenabits;
pub mod blockprof;
mod bytes;
pub mod dominators;
pub mod graph;
pub mod layout;
pub mod model;
mod mstats;
pub mod objects;
mod pacer;
pub mod profile;
pub mod ptrmask;
pub mod roots;
pub mod rtyping;
mod sizeclass;
pub mod slot;
mod spans;
pub mod specials;
pub mod target;
pub mod typing;
pub mod validate;
pub mod words;

pub use layout::HeapLayout;
pub use model::{
    BySize, CachedSpan, GcState, Heap, HeapOptions, Large, LargeObject, MemStats, PCache, Pause,
    SizeClass, SpanCoverage, DEFAULT_MAX_SPANS, MAX_SPANS_LIMIT, MEMSTATS_BY_SIZE,
};
pub use target::{capture_plan, read_heap, HeapTarget};
