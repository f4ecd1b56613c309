//! One breadth-first bulk reader: a walk over target objects (what blocked
//! goroutines wait on, label sets, what globals point to) says which
//! addresses it still needs, a reader fetches them all in one bulk read, and
//! [`drive`] repeats that until the walk needs nothing more. One read per
//! level of the object graph instead of one per object keeps capture's
//! pause short.
//!
//! Walks live beside what they decode (waiting.rs, labels.rs, reach.rs);
//! readers live with whoever owns the memory being filled (capture).

use crate::memory::{MemResult, Memory};

/// A walk read level by level.
pub trait BulkWalk {
    /// Expand everything `mem` (and what was fed) already holds; return the
    /// `(addr, len)` ranges still needed. Empty: the walk is complete.
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)>;

    /// The bytes of the ranges the last step asked for, when the reader
    /// hands them over rather than keeping them (a walk that keeps what it
    /// reads; others find the bytes in the memory of their next step).
    fn feed(&mut self, _ranges: &[(u64, u64)], _results: Vec<MemResult<Vec<u8>>>) {}

    /// Bytes the step's memory read directly, outside the rounds (a walk
    /// that keeps its bytes keeps these too).
    fn feed_extra(&mut self, _addr: u64, _data: Vec<u8>) {}
}

/// Where a walk's rounds are read: it reads a round of ranges and shows
/// what it read (with what was there before) to the walk's next step.
pub trait RoundReader {
    /// Run one [`BulkWalk::step`] of `walk` over the reader's memory.
    fn step<W: BulkWalk>(&mut self, walk: &mut W) -> Vec<(u64, u64)>;

    /// Read `ranges`: keep them (None), or hand them to the walk to keep.
    fn read(&mut self, ranges: &[(u64, u64)]) -> Option<Vec<MemResult<Vec<u8>>>>;
}

/// Run `walk` to its end, or for `max_rounds` reads: one bulk read per
/// step, ranges longer than `max_len` left out.
pub fn drive<W: BulkWalk, R: RoundReader>(
    walk: &mut W,
    reader: &mut R,
    max_rounds: usize,
    max_len: u64,
) {
    for _ in 0..max_rounds {
        let mut want = reader.step(walk);
        want.retain(|r| r.1 <= max_len);
        if want.is_empty() {
            break;
        }
        if let Some(res) = reader.read(&want) {
            walk.feed(&want, res);
        }
    }
}
