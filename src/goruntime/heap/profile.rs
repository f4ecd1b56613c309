//! The runtime's own heap profile: the memory-profile buckets at
//! `runtime.mbuckets`, decoded into the records `runtime.MemProfile` would
//! return at the moment of capture.
//!
//! Buckets are allocated off-heap (`persistentalloc`), so a capture reads
//! them explicitly ([`BucketWalk`], one bulk read per round). The list is
//! linked through `allnext`; buckets are carved upward from 256 KiB chunks,
//! newest first in the list, so the next bucket usually lies just below the
//! current one: each round reads a window below the first bucket not yet
//! read, and the window doubles while that keeps paying off.
//!
//! [`read_mem_profile`] reproduces `memProfileInternal` (mprof.go) without
//! writing anything: the current cycle's future record is folded into the
//! active one (`mProf_FlushLocked(cycle % 3)`), and when every active record
//! is still empty (no GC has run yet) every cycle is summed.

use crate::goruntime::bulk::BulkWalk;
use crate::goruntime::version::globals::global_addr;
use crate::goruntime::version::mprof::{ProfLayout, MEM_PROFILE};
use crate::goruntime::version::Layouts;
use crate::goruntime::Target;
use crate::memory::Memory;
use anyhow::{anyhow, Context, Result};

/// Buckets read at most (a program has one per distinct allocation stack).
pub const MAX_BUCKETS: usize = 1 << 20;
/// `maxProfStackDepth` of Go 1.23+ (32 before): deeper is corruption.
const MAX_NSTK: u64 = 1024;
/// First window read below a bucket, and the largest.
const WINDOW_START: u64 = 64 << 10;
const WINDOW_MAX: u64 = 256 << 10;

/// What reading the heap profile needs from the binary.
#[derive(Debug, Clone)]
pub struct ProfTarget {
    pub layout: ProfLayout,
    /// Runtime addresses (bias applied).
    pub mbuckets: u64,
    pub mem_profile_rate: u64,
    pub mprof_cycle: u64,
    /// `runtime.bbuckets` and `runtime.xbuckets` (block and mutex
    /// profiles), when found.
    pub bbuckets: Option<u64>,
    pub xbuckets: Option<u64>,
    /// `runtime.ticks`, whose `val` is the cputicks per second the profile
    /// writers divide cycles by (see `mprof::ticks_val_offset`), when found.
    pub ticks: Option<u64>,
    /// `runtime.mutexprofilerate` (Go 1.19's writer scales by it).
    pub mutex_rate: Option<u64>,
}

impl ProfTarget {
    pub fn new(t: &Target) -> Result<ProfTarget> {
        let bin = &t.bin;
        let layouts = Layouts::for_binary(bin)?;
        let layout = ProfLayout::from_source(layouts.source())?;
        let opt = |name: &str| global_addr(bin, name).map(|a| t.rt(a));
        let need = |name: &str| -> Result<u64> {
            global_addr(bin, name)
                .map(|a| t.rt(a))
                .ok_or_else(|| anyhow!("runtime global {name} not found in the executable"))
        };
        Ok(ProfTarget {
            layout,
            mbuckets: need("runtime.mbuckets")?,
            mem_profile_rate: need("runtime.MemProfileRate")?,
            mprof_cycle: need("runtime.mProfCycle")?,
            bbuckets: opt("runtime.bbuckets"),
            xbuckets: opt("runtime.xbuckets"),
            ticks: opt("runtime.ticks"),
            mutex_rate: opt("runtime.mutexprofilerate"),
        })
    }

    /// Bytes of the bucket at `addr` (header, stack, record), from its
    /// header; None when the header is unreadable or implausible.
    fn bucket_len<M: Memory>(&self, mem: &M, addr: u64) -> Option<u64> {
        self.bucket_len_rec(mem, addr, self.layout.mem_record_size)
    }

    /// The same for a bucket whose record is `record` bytes long.
    pub(super) fn bucket_len_rec<M: Memory>(&self, mem: &M, addr: u64, record: u64) -> Option<u64> {
        let l = &self.layout;
        let nstk = mem.u64(addr + l.nstk).ok()?;
        (nstk <= MAX_NSTK).then(|| l.bucket_size + 8 * nstk + record)
    }
}

/// One memory-profile bucket's counters (`memRecordCycle`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cycle {
    pub allocs: u64,
    pub frees: u64,
    pub alloc_bytes: u64,
    pub free_bytes: u64,
}

impl Cycle {
    fn add(&mut self, o: &Cycle) {
        self.allocs = self.allocs.wrapping_add(o.allocs);
        self.frees = self.frees.wrapping_add(o.frees);
        self.alloc_bytes = self.alloc_bytes.wrapping_add(o.alloc_bytes);
        self.free_bytes = self.free_bytes.wrapping_add(o.free_bytes);
    }
    fn is_zero(&self) -> bool {
        self.allocs == 0 && self.frees == 0
    }
}

/// One record, as `runtime.MemProfile` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemRecord {
    /// Return PCs, innermost first (runtime addresses).
    pub stack: Vec<u64>,
    /// The bucket's object size (`bucket.size`).
    pub object_size: u64,
    pub alloc_objects: i64,
    pub free_objects: i64,
    pub alloc_bytes: i64,
    pub free_bytes: i64,
}

/// The heap profile as the runtime would report it.
#[derive(Debug, Clone, Default)]
pub struct MemProfile {
    /// `runtime.MemProfileRate` (0: profiling off).
    pub rate: i64,
    /// Go 1.27's writer: values from count × object size, and a `bytes`
    /// label on every sample (before: from the byte counters, and the label
    /// only when it is not 0).
    pub object_size_writer: bool,
    /// Every bucket (`MemProfile(p, inuseZero=true)`), in list order.
    pub records: Vec<MemRecord>,
    /// Buckets seen, and whether the list ended early (unreadable or bound).
    pub buckets: usize,
    pub warnings: Vec<String>,
}

/// A bucket as stored, with its four cycles (active, future[0..3]).
struct RawBucket {
    allnext: u64,
    object_size: u64,
    stack: Vec<u64>,
    active: Cycle,
    future: [Cycle; 3],
}

fn read_bucket<M: Memory>(pt: &ProfTarget, mem: &M, addr: u64) -> Result<RawBucket> {
    let l = &pt.layout;
    let len = pt
        .bucket_len(mem, addr)
        .ok_or_else(|| anyhow!("bucket {addr:#x}: header unreadable or implausible"))?;
    let b = mem
        .read_vec(addr, len as usize)
        .map_err(|e| anyhow!("bucket {addr:#x}: {} bytes unreadable ({})", len, e.why))?;
    let u = |o: u64| -> u64 {
        let o = o as usize;
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default())
    };
    if u(l.typ) != MEM_PROFILE {
        return Err(anyhow!("bucket {addr:#x}: not a memory-profile bucket"));
    }
    let nstk = u(l.nstk);
    let object_size = u(l.size);
    let stack: Vec<u64> = (0..nstk).map(|i| u(l.bucket_size + 8 * i)).collect();
    let rec = l.bucket_size + 8 * nstk;
    let cycle = |at: u64| -> Cycle {
        let allocs = u(at + l.allocs);
        let frees = u(at + l.frees);
        let (alloc_bytes, free_bytes) = match (l.alloc_bytes, l.free_bytes) {
            (Some(a), Some(f)) => (u(at + a), u(at + f)),
            _ => (
                allocs.wrapping_mul(object_size),
                frees.wrapping_mul(object_size),
            ),
        };
        Cycle {
            allocs,
            frees,
            alloc_bytes,
            free_bytes,
        }
    };
    let fut = rec + l.future;
    Ok(RawBucket {
        allnext: u(l.allnext),
        object_size,
        stack,
        active: cycle(rec + l.active),
        future: [
            cycle(fut),
            cycle(fut + l.cycle_size),
            cycle(fut + 2 * l.cycle_size),
        ],
    })
}

/// The heap profile `runtime.MemProfile(p, true)` would return now, from
/// the bytes in `mem` (nothing is written anywhere).
pub fn read_mem_profile<M: Memory>(pt: &ProfTarget, mem: &M) -> Result<MemProfile> {
    let rate = mem
        .u64(pt.mem_profile_rate)
        .context("reading runtime.MemProfileRate")? as i64;
    let cycle = mem
        .u32(pt.mprof_cycle)
        .context("reading runtime.mProfCycle")?
        >> 1;
    let head = mem.ptr(pt.mbuckets).context("reading runtime.mbuckets")?;
    let mut warnings = Vec::new();
    let mut raw = Vec::new();
    let mut at = head;
    while at != 0 {
        if raw.len() >= MAX_BUCKETS {
            warnings.push(format!(
                "heap profile: more than {MAX_BUCKETS} buckets, the rest left out"
            ));
            break;
        }
        match read_bucket(pt, mem, at) {
            Ok(b) => {
                at = b.allnext;
                raw.push(b);
            }
            Err(e) => {
                warnings.push(format!(
                    "heap profile: the bucket list ends early after {} buckets: {e}",
                    raw.len()
                ));
                break;
            }
        }
    }
    // mProf_FlushLocked(cycle % 3), computed.
    let index = (cycle % 3) as usize;
    for b in raw.iter_mut() {
        let f = b.future[index];
        b.active.add(&f);
        b.future[index] = Cycle::default();
    }
    // No data at all: no GC has run yet; accumulate every cycle.
    if raw.iter().all(|b| b.active.is_zero()) {
        for b in raw.iter_mut() {
            for c in 0..3 {
                let f = b.future[c];
                b.active.add(&f);
                b.future[c] = Cycle::default();
            }
        }
    }
    let records = raw
        .iter()
        .map(|b| MemRecord {
            stack: b.stack.clone(),
            object_size: b.object_size,
            alloc_objects: b.active.allocs as i64,
            free_objects: b.active.frees as i64,
            alloc_bytes: b.active.alloc_bytes as i64,
            free_bytes: b.active.free_bytes as i64,
        })
        .collect();
    Ok(MemProfile {
        rate,
        object_size_writer: pt.layout.alloc_bytes.is_none(),
        buckets: raw.len(),
        records,
        warnings,
    })
}

/// Capture's walk of the bucket list: one bulk read per round, of a window
/// below the first bucket not yet readable (clipped to the mapping that
/// holds it). A window that fails to read is retried as the bucket alone.
///
/// With [`known`](Self::known) buckets (walked before the pause), the walk
/// stops at the first of them: only the buckets added since are read.
pub struct BucketWalk<'a> {
    pt: &'a ProfTarget,
    /// The global holding the list's head, and the record's size.
    head: u64,
    record: u64,
    /// Buckets already read (their headers and stacks): the walk stops at
    /// the first one it reaches ([`reached`](Self::reached)).
    known: Option<&'a std::collections::HashSet<u64>>,
    /// Every bucket walked, `(address, length)`, in list order.
    pub found: Vec<(u64, u64)>,
    /// The known bucket the walk stopped at.
    pub reached: Option<u64>,
    /// Readable mappings `[start, end)`, sorted (empty: no clipping).
    readable: Vec<(u64, u64)>,
    /// The next bucket to reach; None before the head is read.
    at: Option<u64>,
    window: u64,
    /// The bucket the last request was for, and how many requests it had.
    asked: (u64, u8),
    /// Buckets walked, and bytes asked for.
    pub buckets: usize,
    pub bytes: u64,
    /// Why the walk stopped early, if it did.
    pub stopped: Option<String>,
}

impl<'a> BucketWalk<'a> {
    pub fn new(pt: &'a ProfTarget, mut readable: Vec<(u64, u64)>) -> BucketWalk<'a> {
        readable.sort_unstable();
        BucketWalk {
            pt,
            head: pt.mbuckets,
            record: pt.layout.mem_record_size,
            known: None,
            found: Vec::new(),
            reached: None,
            readable,
            at: None,
            window: WINDOW_START,
            asked: (0, 0),
            buckets: 0,
            bytes: 0,
            stopped: None,
        }
    }

    /// Walk another list: the one whose head is at `head_global`, with
    /// records of `record` bytes (block and mutex profiles).
    pub fn list(mut self, head_global: u64, record: u64) -> BucketWalk<'a> {
        self.head = head_global;
        self.record = record;
        self
    }

    /// Stop at the first bucket of `known` (see [`KnownBuckets`]).
    pub fn known(mut self, known: &'a std::collections::HashSet<u64>) -> BucketWalk<'a> {
        self.known = Some(known);
        self
    }

    /// Start at the bucket `head` rather than at `runtime.mbuckets`'s.
    pub fn from_head(mut self, head: u64) -> BucketWalk<'a> {
        self.at = Some(head);
        self
    }

    /// Whether the walk reached the end of the list (or a known bucket).
    pub fn complete(&self) -> bool {
        self.stopped.is_none() && (self.at == Some(0) || self.reached.is_some())
    }

    /// The mapping holding `addr`, if mappings are known.
    fn mapping(&self, addr: u64) -> Option<(u64, u64)> {
        let i = self.readable.partition_point(|&(s, _)| s <= addr);
        let m = *self.readable.get(i.checked_sub(1)?)?;
        (addr < m.1).then_some(m)
    }

    fn ask(&mut self, addr: u64, len: u64) -> Vec<(u64, u64)> {
        self.bytes += len;
        vec![(addr, len)]
    }

    /// The range to read for the bucket at `addr`, which `mem` cannot
    /// show whole yet; None: give up on it.
    fn request<M: Memory>(&mut self, mem: &M, addr: u64) -> Option<(u64, u64)> {
        let l = &self.pt.layout;
        let tries = if self.asked.0 == addr {
            self.asked.1
        } else {
            0
        };
        self.asked = (addr, tries + 1);
        let whole = self.pt.bucket_len_rec(mem, addr, self.record);
        match tries {
            0 => {
                // A window below (older buckets) and the bucket itself.
                let end = addr + whole.unwrap_or(l.bucket_size + 8 * 32 + self.record);
                let (lo, hi) = match self.mapping(addr) {
                    Some((s, e)) => (s, e),
                    None if self.readable.is_empty() => (0, u64::MAX),
                    None => return None,
                };
                let start = addr.saturating_sub(self.window).max(lo);
                let end = end.min(hi);
                self.window = (self.window * 2).min(WINDOW_MAX);
                Some((start, end - start))
            }
            1 | 2 => {
                // The window failed: the header, then the whole bucket.
                self.window = WINDOW_START;
                Some((addr, whole.unwrap_or(l.bucket_size)))
            }
            _ => None,
        }
    }
}

impl BulkWalk for BucketWalk<'_> {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        if self.stopped.is_some() {
            return Vec::new();
        }
        let mut at = match self.at {
            Some(a) => a,
            None => match mem.ptr(self.head) {
                Ok(a) => a,
                Err(_) => {
                    self.stopped = Some("the list's head unreadable".into());
                    return Vec::new();
                }
            },
        };
        loop {
            self.at = Some(at);
            if at == 0 {
                return Vec::new();
            }
            if self.known.is_some_and(|k| k.contains(&at)) {
                self.reached = Some(at);
                return Vec::new();
            }
            if self.buckets >= MAX_BUCKETS {
                self.stopped = Some(format!("more than {MAX_BUCKETS} buckets"));
                return Vec::new();
            }
            let next = self
                .pt
                .bucket_len_rec(mem, at, self.record)
                .filter(|&len| mem.read_vec(at, len as usize).is_ok())
                .and_then(|len| Some((len, mem.ptr(at + self.pt.layout.allnext).ok()?)));
            if let Some((len, next)) = next {
                self.buckets += 1;
                self.found.push((at, len));
                at = next;
                continue;
            }
            return match self.request(mem, at) {
                Some((a, len)) => self.ask(a, len),
                None => {
                    self.stopped = Some(format!("bucket {at:#x} unreadable"));
                    Vec::new()
                }
            };
        }
    }
}

/// The bucket list as walked before the pause, for a pause that reads only
/// what can have changed since.
///
/// Why that is exact (runtime/mprof.go, Go 1.19 to 1.27): `stkbucket`
/// creates a bucket with `newBucket` (persistentalloc: off-heap, never
/// freed or moved), fills its header (`typ`, `hash`, `size`, `nstk`) and
/// stack before publishing it, and links it only at the head of the list
/// (`mbuckets`/`bbuckets`/`xbuckets`, `b.allnext = head`, then the head is
/// stored; the hash chain `next` is separate). Nothing ever writes a
/// bucket's `allnext`, header or stack again, and no bucket is unlinked.
/// Only the record after the stack changes: `memRecord`'s active and
/// future cycles (`mProf_Malloc`, `mProf_Free`, `mProf_Flush*`). So a
/// bucket's header and stack read while the target runs are the bytes it
/// holds at the pause, the list at the pause is the buckets added since
/// (a walk from the new head to the first known bucket) followed by the
/// known list, unchanged, and the pause need only read the known buckets'
/// records ([`counter_ranges`](Self::counter_ranges)).
#[derive(Debug, Default)]
pub struct KnownBuckets {
    /// `(address, length)` of every bucket, in list order (newest first).
    pub list: Vec<(u64, u64)>,
    pub set: std::collections::HashSet<u64>,
}

impl KnownBuckets {
    /// From a walk that reached the end of the list.
    pub fn new(list: Vec<(u64, u64)>) -> KnownBuckets {
        let set = list.iter().map(|b| b.0).collect();
        KnownBuckets { list, set }
    }

    /// Index in [`list`](Self::list) of the bucket at `addr`.
    pub fn index(&self, addr: u64) -> Option<usize> {
        self.list.iter().position(|b| b.0 == addr)
    }

    /// The records (the only bytes that change) of the buckets from list
    /// index `from` on, sorted by address; ranges closer than `gap` bytes
    /// merged (one large range costs less than many small ones).
    pub fn counter_ranges(&self, pt: &ProfTarget, from: usize, gap: u64) -> Vec<(u64, u64)> {
        let rs = pt.layout.mem_record_size;
        let mut v: Vec<(u64, u64)> = self.list[from.min(self.list.len())..]
            .iter()
            .map(|&(a, len)| (a + len - rs, rs))
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (a, len) in v {
            match out.last_mut() {
                Some(l) if a <= l.0 + l.1 + gap && a + len - l.0 <= WINDOW_MAX => {
                    l.1 = (a + len).max(l.0 + l.1) - l.0
                }
                _ => out.push((a, len)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SparseMemory;
    use std::sync::Arc;

    fn layout(go127: bool) -> ProfLayout {
        let c = if go127 { 16 } else { 32 };
        ProfLayout {
            bucket_size: 48,
            allnext: 8,
            typ: 16,
            size: 32,
            nstk: 40,
            mem_record_size: 4 * c,
            active: 0,
            future: c,
            cycle_size: c,
            allocs: 0,
            frees: 8,
            alloc_bytes: (!go127).then_some(16),
            free_bytes: (!go127).then_some(24),
        }
    }

    /// A bucket at `addr` with one PC, object size 16, and
    /// (allocs, frees) for active, future[0..3].
    fn bucket(l: &ProfLayout, allnext: u64, cycles: [(u64, u64); 4]) -> Vec<u8> {
        let mut b = vec![0u8; (l.bucket_size + 8 + l.mem_record_size) as usize];
        let mut put =
            |o: u64, v: u64| b[o as usize..o as usize + 8].copy_from_slice(&v.to_le_bytes());
        put(l.allnext, allnext);
        put(l.typ, MEM_PROFILE);
        put(l.size, 16);
        put(l.nstk, 1);
        put(l.bucket_size, 0x401000);
        for (i, (a, f)) in cycles.iter().enumerate() {
            let at = l.bucket_size + 8 + i as u64 * l.cycle_size;
            put(at + l.allocs, *a);
            put(at + l.frees, *f);
            if let (Some(ab), Some(fb)) = (l.alloc_bytes, l.free_bytes) {
                put(at + ab, a * 16);
                put(at + fb, f * 16);
            }
        }
        b
    }

    fn target(l: ProfLayout) -> ProfTarget {
        ProfTarget {
            layout: l,
            mbuckets: 0x1000,
            mem_profile_rate: 0x1008,
            mprof_cycle: 0x1010,
            bbuckets: None,
            xbuckets: None,
            ticks: None,
            mutex_rate: None,
        }
    }

    fn mem(globals: [u64; 3], buckets: Vec<(u64, Vec<u8>)>) -> SparseMemory {
        let mut g = Vec::new();
        for v in globals {
            g.extend_from_slice(&v.to_le_bytes());
        }
        let mut r: Vec<(u64, Arc<[u8]>)> = vec![(0x1000, g.into())];
        r.extend(buckets.into_iter().map(|(a, b)| (a, b.into())));
        SparseMemory::new(r)
    }

    #[test]
    fn folds_the_current_cycle_and_keeps_list_order() {
        for go127 in [false, true] {
            let l = layout(go127);
            let pt = target(l.clone());
            // cycle 4 (stored as 8): index 1 is folded, 2 is not.
            let m = mem(
                [0x20000, 1, 8],
                vec![
                    (
                        0x20000,
                        bucket(&l, 0x10000, [(5, 2), (0, 0), (3, 1), (7, 0)]),
                    ),
                    (0x10000, bucket(&l, 0, [(1, 0), (0, 0), (0, 0), (0, 0)])),
                ],
            );
            let p = read_mem_profile(&pt, &m).unwrap();
            assert_eq!(p.buckets, 2);
            assert_eq!(p.object_size_writer, go127);
            assert_eq!(p.records[0].alloc_objects, 8);
            assert_eq!(p.records[0].free_objects, 3);
            assert_eq!(p.records[0].alloc_bytes, 128);
            assert_eq!(p.records[1].alloc_objects, 1);
            assert_eq!(p.records[0].stack, vec![0x401000]);
        }
    }

    #[test]
    fn sums_every_cycle_before_the_first_gc() {
        let l = layout(false);
        let pt = target(l.clone());
        let m = mem(
            [0x20000, 512 * 1024, 0],
            vec![(0x20000, bucket(&l, 0, [(0, 0), (0, 0), (2, 0), (3, 1)]))],
        );
        let p = read_mem_profile(&pt, &m).unwrap();
        assert_eq!(p.rate, 512 * 1024);
        assert_eq!(
            (p.records[0].alloc_objects, p.records[0].free_objects),
            (5, 1)
        );
    }

    #[test]
    fn walk_reads_windows_and_stops_at_the_end() {
        let l = layout(false);
        let pt = target(l.clone());
        let full = mem(
            [0x20000, 1, 0],
            vec![
                (0x20000, bucket(&l, 0x1f000, [(1, 0); 4])),
                (0x1f000, bucket(&l, 0, [(1, 0); 4])),
            ],
        );
        let mut w = BucketWalk::new(&pt, vec![(0x1000, 0x2000), (0x18000, 0x30000)]);
        // Only the globals are known: one window, clipped to the mapping.
        let globals = mem([0x20000, 1, 0], vec![]);
        let want = w.step(&globals);
        assert_eq!(want.len(), 1);
        assert_eq!(want[0].0, 0x18000);
        assert!(want[0].0 + want[0].1 > 0x20000);
        // With everything readable the walk ends.
        assert!(w.step(&full).is_empty());
        assert_eq!(w.buckets, 2);
        assert!(w.stopped.is_none());
    }

    #[test]
    fn walk_stops_at_known_buckets_and_counters_merge() {
        let l = layout(false);
        let pt = target(l.clone());
        let len = l.bucket_size + 8 + l.mem_record_size;
        // Three buckets back to back, newest (lowest list index) highest.
        let (a, b, c) = (0x20000 + 2 * len, 0x20000 + len, 0x20000);
        let m = mem(
            [a, 1, 0],
            vec![
                (a, bucket(&l, b, [(1, 0); 4])),
                (b, bucket(&l, c, [(1, 0); 4])),
                (c, bucket(&l, 0, [(1, 0); 4])),
            ],
        );
        // Before the pause: the whole list, from a head read elsewhere.
        let mut w = BucketWalk::new(&pt, Vec::new()).from_head(b);
        assert!(w.step(&m).is_empty());
        assert!(w.complete());
        assert_eq!(w.found, vec![(b, len), (c, len)]);
        let known = KnownBuckets::new(w.found.clone());
        // In the pause: only the bucket added since.
        let mut w = BucketWalk::new(&pt, Vec::new()).known(&known.set);
        assert!(w.step(&m).is_empty());
        assert_eq!((w.buckets, w.reached), (1, Some(b)));
        // The known records: one range from c's record to b's end, or two.
        let rs = l.mem_record_size;
        assert_eq!(
            known.counter_ranges(&pt, 0, 1024),
            vec![(c + len - rs, len + rs)]
        );
        assert_eq!(
            known.counter_ranges(&pt, 0, 0),
            vec![(c + len - rs, rs), (b + len - rs, rs)]
        );
        assert_eq!(known.counter_ranges(&pt, 1, 0), vec![(c + len - rs, rs)]);
    }
}
