//! `--heap`: a heap-complete capture. After the span structs of
//! `mheap_.allspans` are read (every one of them: `--heap` lifts the
//! `--max-spans` cap, see `plan.rs`), one more read round copies each
//! in-use span's memory and its allocation bits (`allocBits`, off-heap), so
//! that every allocated object can be listed and typed offline
//! (`goruntime::heap::objects`). The roots (data and BSS, stacks, runtime
//! structures) are what every capture reads anyway.
//!
//! Go 1.19–1.21 keep each object's pointer bits in the heap arenas'
//! metadata (`heapArena.bitmap`, off-heap; see
//! `goruntime::heap::arenabits`): two more rounds copy, for the arenas of
//! the scannable in-use spans, their `mheap_.arenas` L2 entries, then the
//! bitmap bytes describing those spans only (1/32 of their bytes on 1.19,
//! 1/64 plus `noMorePtrs` on 1.21), so that offline scans are exact.
//!
//! The pause grows with the heap at memory-copy speed: the rounds are
//! reported as their own phase ("heap spans") in `pause_phases_ns`.

use crate::goruntime::heap::HeapTarget;
use crate::goruntime::Target;
use crate::memory::Memory;
use crate::model::RegionKind;

/// Bytes per read round of the heap (each round's buffer is one
/// allocation; rounds keep them bounded).
pub(super) const ROUND_BYTES: u64 = 256 << 20;

/// The ranges of the heap rounds: span memory and allocation bits, sorted,
/// cut into rounds of at most [`ROUND_BYTES`].
pub(super) fn plan(
    ht: Option<&HeapTarget>,
    t: &Target,
    mem: &impl Memory,
) -> Vec<Vec<(u64, u64, RegionKind)>> {
    let Some(ht) = ht else {
        return Vec::new();
    };
    rounds(ht.heap_span_ranges(t, mem))
}

/// Go 1.19–1.21 (empty otherwise): the rounds of the arena bitmaps of the
/// scannable in-use spans: with `entries` their arenas' L2 entries, which
/// must be read before the bitmap bytes (`entries == false`) can be found.
pub(super) fn bitmap_plan(
    ht: Option<&HeapTarget>,
    t: &Target,
    mem: &impl Memory,
    entries: bool,
) -> Vec<Vec<(u64, u64, RegionKind)>> {
    let Some(ht) = ht else {
        return Vec::new();
    };
    rounds(ht.heap_bitmap_ranges(t, mem, entries))
}

/// Ranges sorted and cut into rounds of at most [`ROUND_BYTES`].
fn rounds(mut r: Vec<(u64, u64)>) -> Vec<Vec<(u64, u64, RegionKind)>> {
    r.retain(|&(a, l)| a != 0 && l > 0);
    r.sort_unstable();
    // Not merged here: the rounds' reader merges, within its size cap
    // (contiguous spans merged into one range past `memory::MAX_READ` would
    // be dropped whole).
    let out = r.into_iter().map(|(a, l)| (a, l, RegionKind::Heap));
    let mut rounds: Vec<Vec<(u64, u64, RegionKind)>> = Vec::new();
    let mut bytes = u64::MAX;
    for r in out {
        if bytes.saturating_add(r.1) > ROUND_BYTES {
            rounds.push(Vec::new());
            bytes = 0;
        }
        bytes += r.1;
        if let Some(last) = rounds.last_mut() {
            last.push(r);
        }
    }
    rounds
}

/// Bytes the heap round will read, estimated while the target runs (the
/// span structs read live), so that the pause's destination buffer is
/// allocated and touched before the pause: about 1/8 more than the spans'
/// memory now, plus slack; capped at 64 GiB.
pub(super) fn estimate(
    pid: i32,
    ht: Option<&HeapTarget>,
    t: &Target,
    image: &crate::binary::elf::ImageMemory,
) -> usize {
    let Some(ht) = ht else {
        return 0;
    };
    let mem = crate::memory::Layered {
        first: crate::process::LiveMemory::new(pid),
        second: image,
    };
    let bytes: u64 = ht
        .heap_span_ranges(t, &mem)
        .into_iter()
        .chain(ht.heap_bitmap_ranges(t, &mem, true))
        .chain(ht.heap_bitmap_ranges(t, &mem, false))
        .map(|r| r.1)
        .sum();
    (bytes + bytes / 8 + (8 << 20)).min(64 << 30) as usize
}
