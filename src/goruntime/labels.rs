//! pprof goroutine labels (`g.labels`): a `*labelMap` that is a
//! `map[string]string` (old hmap) up to Go 1.23 and a struct holding a sorted
//! `[]struct{key, value string}` from Go 1.24.
//!
//! Memory may be hostile (a damaged or crafted snapshot): every address is
//! computed without overflow, bucket chains are cycle-checked and the total
//! work is bounded by [`MAX_LABELS`] entries and [`MAX_BUCKET_READS`] buckets.

use super::gomap::{self, End, Fault, Header, Limits, MapImpl};
use super::traceback::FrameBudget;
use super::Target;
use crate::memory::Memory;
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

const MAX_LABELS: u64 = 4096;
const MAX_LABEL_LEN: usize = 64 << 10;
/// Buckets (including overflow buckets) read per map at most.
const MAX_BUCKET_READS: u64 = 4096;

/// Where one label's key and value string headers (`{ptr, len}`) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSlots {
    pub key: u64,
    pub value: u64,
}

/// Label bytes (keys and values) of one goroutine at most.
const MAX_LABEL_SET_BYTES: u64 = 1 << 20;

pub fn read_labels<M: Memory>(
    t: &Target,
    mem: &M,
    ptr: u64,
) -> Result<BTreeMap<String, String>, String> {
    read_labels_budgeted(t, mem, ptr, &FrameBudget::unlimited())
}

/// [`read_labels`], taking the bytes of every key and value from `bytes`
/// (shared by all goroutines of an analysis: many label sets pointing at one
/// large string would otherwise multiply memory use).
pub fn read_labels_budgeted<M: Memory>(
    t: &Target,
    mem: &M,
    ptr: u64,
    bytes: &FrameBudget,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for s in label_slots(t, mem, ptr)? {
        for hdr in [s.key, s.value] {
            let len = mem
                .u64(
                    hdr.checked_add(8)
                        .ok_or("label string header wraps around")?,
                )
                .map_err(|e| e.to_string())?;
            let len = len.min(MAX_LABEL_LEN as u64);
            total += len;
            if total > MAX_LABEL_SET_BYTES {
                return Err(format!("labels larger than {MAX_LABEL_SET_BYTES} bytes"));
            }
            if !bytes.take_n(len) {
                return Err("label budget of this analysis exhausted".into());
            }
        }
        let k = mem
            .go_string(s.key, MAX_LABEL_LEN)
            .map_err(|e| e.to_string())?;
        let v = mem
            .go_string(s.value, MAX_LABEL_LEN)
            .map_err(|e| e.to_string())?;
        out.insert(k, v);
    }
    Ok(out)
}

/// The string headers of every label of `g.labels` = `ptr` (empty for 0).
pub fn label_slots<M: Memory>(t: &Target, mem: &M, ptr: u64) -> Result<Vec<LabelSlots>, String> {
    label_structure(t, mem, ptr, &mut Vec::new())
}

/// [`label_slots`], also pushing onto `ranges` the `(addr, len)` of every
/// structure read on the way (the label object, list or map header and
/// buckets), string contents excluded. `capture --redact` keeps these.
pub fn label_structure<M: Memory>(
    t: &Target,
    mem: &M,
    ptr: u64,
    ranges: &mut Vec<(u64, u64)>,
) -> Result<Vec<LabelSlots>, String> {
    if ptr == 0 {
        return Ok(Vec::new());
    }
    if t.bin.go.at_least(1, 24) {
        ranges.push((ptr, 16));
        let slots = label_list_slots(mem, ptr)?;
        ranges.extend(slots.iter().map(|s| (s.key, 32)));
        Ok(slots)
    } else {
        ranges.push((ptr, 8));
        let hmap = mem.ptr(ptr).map_err(|e| e.to_string())?;
        hmap_slots(mem, hmap, ranges)
    }
}

fn add(a: u64, b: u64) -> Result<u64, String> {
    a.checked_add(b)
        .ok_or_else(|| format!("address {a:#x} + {b:#x} overflows"))
}

pub fn label_list_slots<M: Memory>(mem: &M, ptr: u64) -> Result<Vec<LabelSlots>, String> {
    let arr = mem.ptr(ptr).map_err(|e| e.to_string())?;
    let n = mem.u64(add(ptr, 8)?).map_err(|e| e.to_string())?;
    if n > MAX_LABELS {
        return Err(format!("{n} labels is implausible"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let e = add(arr, i * 32)?;
        out.push(LabelSlots {
            key: e,
            value: add(e, 16)?,
        });
    }
    Ok(out)
}

/// Entries of an old-layout (pre-Swiss) `map[string]string`
/// ([`gomap::STRING_STRING_HMAP`]).
pub fn read_string_hmap<M: Memory>(mem: &M, hmap: u64) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for s in string_hmap_slots(mem, hmap)? {
        let k = mem
            .go_string(s.key, MAX_LABEL_LEN)
            .map_err(|e| e.to_string())?;
        let v = mem
            .go_string(s.value, MAX_LABEL_LEN)
            .map_err(|e| e.to_string())?;
        out.insert(k, v);
    }
    Ok(out)
}

/// String headers of the live entries of an old-layout `map[string]string`.
pub fn string_hmap_slots<M: Memory>(mem: &M, hmap: u64) -> Result<Vec<LabelSlots>, String> {
    hmap_slots(mem, hmap, &mut Vec::new())
}

/// Whether a label map's header is plausible. The runtime keeps at most 6.5
/// entries per bucket on average and label maps are never shrunk by
/// deletions, so 2^B beyond this is not a map.
fn check_label_map(count: u64, b: u8) -> Result<(), String> {
    if count > MAX_LABELS {
        return Err(format!("label map with {count} entries is implausible"));
    }
    if b > 16 || (1u64 << b) > 2 * count + 8 {
        return Err(format!(
            "label map B={b} for {count} entries is implausible"
        ));
    }
    Ok(())
}

fn hmap_slots<M: Memory>(
    mem: &M,
    hmap: u64,
    ranges: &mut Vec<(u64, u64)>,
) -> Result<Vec<LabelSlots>, String> {
    let g = &gomap::STRING_STRING_HMAP;
    let MapImpl::Hmap {
        count: count_off,
        flags: flags_off,
        b: b_off,
        buckets: buckets_off,
        oldbuckets: old_off,
        ..
    } = g.imp
    else {
        unreachable!("STRING_STRING_HMAP is an hmap")
    };
    if hmap == 0 {
        return Ok(Vec::new());
    }
    ranges.push((hmap, g.header_size));
    let err = |e: crate::memory::MemError| e.to_string();
    let count = mem.u64(add(hmap, count_off)?).map_err(err)?;
    let b = mem.u8(add(hmap, b_off)?).map_err(err)?;
    check_label_map(count, b)?;
    let h = Header::Hmap {
        count,
        b,
        flags: mem.u8(add(hmap, flags_off)?).unwrap_or(0),
        buckets: mem.ptr(add(hmap, buckets_off)?).map_err(err)?,
        oldbuckets: mem.ptr(add(hmap, old_off)?).map_err(err)?,
    };
    let lim = Limits {
        max_entries: count.max(8) + 1,
        max_buckets: MAX_BUCKET_READS,
        detect_cycles: true,
    };
    let mut v = SlotVisit {
        mem,
        ranges,
        out: Vec::new(),
        err: None,
    };
    match gomap::walk(g, &h, &lim, &mut v) {
        End::Done => {}
        End::Entries => {
            if v.out.len() as u64 > count.max(8) {
                return Err("label map holds more entries than its count".into());
            }
        }
        End::Buckets => return Err("label map: too many buckets".into()),
        End::Cycle(bk) => return Err(format!("label map: bucket {bk:#x} is reached twice")),
        End::Stopped => return Err(v.err.unwrap_or_default()),
    }
    Ok(v.out)
}

/// [`hmap_slots`]' side of [`gomap::walk`]: the first failure ends the walk.
struct SlotVisit<'m, 'r, M> {
    mem: &'m M,
    ranges: &'r mut Vec<(u64, u64)>,
    out: Vec<LabelSlots>,
    err: Option<String>,
}

impl<M: Memory> gomap::Visit for SlotVisit<'_, '_, M> {
    type Err = String;

    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, String> {
        let raw = self
            .mem
            .read_vec(addr, len as usize)
            .map_err(|e| e.to_string())?;
        self.ranges.push((addr, len));
        Ok(raw)
    }

    fn fault(&mut self, f: Fault<String>) -> ControlFlow<()> {
        self.err = Some(match f {
            Fault::Read(_, e) => e,
            Fault::Overflow(a, b) => format!("address {a:#x} + {b:#x} overflows"),
        });
        ControlFlow::Break(())
    }

    fn entry(&mut self, _: &[u8], base: u64, slot: u64) {
        // The bucket at `base` was read whole: its slots do not wrap.
        let g = &gomap::STRING_STRING_HMAP;
        self.out.push(LabelSlots {
            key: base + g.key_off(slot),
            value: base + g.elem_off(slot),
        });
    }
}

/// One object a capture must read to decode label sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelObj {
    /// `g.labels`: the label object (Go 1.24+: `{list ptr, len}`; before:
    /// a pointer to the map header).
    Set(u64),
    /// Go 1.24+: `n` entries of `{key, value string}`.
    List(u64, u64),
    /// Before Go 1.24: the `map[string]string` header.
    Hmap(u64),
    /// A map bucket (8 entries and the overflow pointer).
    Bucket(u64),
    /// String bytes.
    Str(u64, u64),
}

/// Objects visited at most by one walk.
const MAX_WALK_OBJECTS: usize = 4_000_000;

/// For capture: a breadth-first walk over every object the label sets at
/// `ptrs` are made of, each decoded once, so that a program with tens of
/// thousands of distinct label sets costs a few bulk reads (one per level)
/// and little CPU while the target is stopped. It reads a superset of what
/// [`read_labels`] reads, with the same bounds.
/// What one label set is made of: its objects' `(addr, len)`, and whether
/// all of them could be read.
type RootExtents = (Vec<(u64, u64)>, bool);

pub struct LabelWalk {
    modern: bool,
    /// The distinct label sets walked.
    roots: Vec<u64>,
    /// Objects to expand, with the root (index) they were reached from
    /// (always 0 unless tracking).
    pending: Vec<(u32, LabelObj)>,
    seen: HashSet<(u32, u64)>,
    /// Address → the step it was asked for in.
    asked: std::collections::HashMap<u64, u32>,
    steps: u32,
    /// When tracking: per root, the extents of every object it is made of
    /// and whether all of them could be read.
    extents: Option<Vec<RootExtents>>,
    buf: Vec<u8>,
}

impl LabelWalk {
    /// A walk over the label sets at `ptrs` (zeros and repeats ignored).
    /// With `track`, objects are followed per root and
    /// [`root_extents`](Self::root_extents) tells what each set is made of
    /// (shared objects then count for every set that reaches them).
    pub fn new(t: &Target, ptrs: &[u64], track: bool) -> LabelWalk {
        let mut uniq = HashSet::new();
        let roots: Vec<u64> = ptrs
            .iter()
            .copied()
            .filter(|&p| p != 0 && uniq.insert(p))
            .collect();
        let root_of = |i: usize| if track { i as u32 } else { 0 };
        let pending: Vec<(u32, LabelObj)> = roots
            .iter()
            .enumerate()
            .map(|(i, &p)| (root_of(i), LabelObj::Set(p)))
            .collect();
        let seen = pending.iter().map(|&(r, o)| (r, obj_addr(o))).collect();
        LabelWalk {
            modern: t.bin.go.at_least(1, 24),
            extents: track.then(|| vec![(Vec::new(), true); roots.len()]),
            roots,
            pending,
            seen,
            asked: std::collections::HashMap::new(),
            steps: 0,
            buf: Vec::new(),
        }
    }

    /// With tracking: each label set whose objects could all be read, and
    /// the `(addr, len)` of those objects.
    pub fn root_extents(&self) -> Vec<(u64, &[(u64, u64)])> {
        let Some(ext) = &self.extents else {
            return Vec::new();
        };
        self.roots
            .iter()
            .zip(ext)
            .filter(|(_, (_, complete))| *complete)
            .map(|(&r, (e, _))| (r, &e[..]))
            .collect()
    }

    /// Expand every pending object `mem` holds; return the ranges still
    /// missing (sorted, each asked once). Empty: the walk is complete.
    pub fn step<M: Memory>(&mut self, mem: M) -> Vec<(u64, u64)> {
        self.steps += 1;
        let mut want = Vec::new();
        let mut waiting = Vec::new();
        while !self.pending.is_empty() {
            let mut next = Vec::new();
            for (root, obj) in std::mem::take(&mut self.pending) {
                let (addr, len) = self.extent(obj);
                if len == 0 {
                    continue;
                }
                self.buf.resize(len as usize, 0);
                if mem.read_exact(addr, &mut self.buf).is_err() {
                    match self.asked.get(&addr) {
                        None => {
                            self.asked.insert(addr, self.steps);
                            want.push((addr, len));
                            waiting.push((root, obj));
                        }
                        // Asked in this step by another root: read next.
                        Some(&s) if s == self.steps => waiting.push((root, obj)),
                        // Asked before and still missing: unreadable.
                        Some(_) => {
                            if let Some(e) = self.extents.as_mut() {
                                e[root as usize].1 = false;
                            }
                        }
                    }
                    continue;
                }
                if let Some(e) = self.extents.as_mut() {
                    e[root as usize].0.push((addr, len));
                }
                self.expand(root, obj, &mut next);
            }
            self.pending = next;
        }
        self.pending = waiting;
        want.sort_unstable();
        want
    }

    fn extent(&self, obj: LabelObj) -> (u64, u64) {
        match obj {
            LabelObj::Set(p) => (p, if self.modern { 16 } else { 8 }),
            LabelObj::List(a, n) => (a, n * 32),
            LabelObj::Hmap(h) => (h, gomap::STRING_STRING_HMAP.header_size),
            LabelObj::Bucket(b) => (b, gomap::STRING_STRING_HMAP.bucket_size()),
            LabelObj::Str(p, n) => (p, n),
        }
    }

    fn push(&mut self, next: &mut Vec<(u32, LabelObj)>, root: u32, obj: LabelObj) {
        let addr = obj_addr(obj);
        if addr != 0 && self.seen.len() < MAX_WALK_OBJECTS && self.seen.insert((root, addr)) {
            next.push((root, obj));
        }
    }

    /// Queue the string whose header is at `off` in the buffer.
    fn string_at(&mut self, next: &mut Vec<(u32, LabelObj)>, root: u32, off: usize) {
        let p = super::le64(&self.buf, off as u64);
        let n = super::le64(&self.buf, off as u64 + 8).min(MAX_LABEL_LEN as u64);
        if n > 0 {
            self.push(next, root, LabelObj::Str(p, n));
        }
    }

    fn expand(&mut self, root: u32, obj: LabelObj, next: &mut Vec<(u32, LabelObj)>) {
        let le64 = |b: &[u8], o: u64| super::le64(b, o);
        match obj {
            LabelObj::Set(_) if self.modern => {
                let (arr, n) = (le64(&self.buf, 0), le64(&self.buf, 8));
                if n > 0 && n <= MAX_LABELS {
                    self.push(next, root, LabelObj::List(arr, n));
                }
            }
            LabelObj::Set(_) => {
                let h = le64(&self.buf, 0);
                self.push(next, root, LabelObj::Hmap(h));
            }
            LabelObj::List(_, n) => {
                for i in 0..n as usize {
                    self.string_at(next, root, i * 32);
                    self.string_at(next, root, i * 32 + 16);
                }
            }
            LabelObj::Hmap(_) => {
                let g = &gomap::STRING_STRING_HMAP;
                let h = g.header(&self.buf[..]);
                let Header::Hmap { count, b, .. } = h else {
                    return;
                };
                if check_label_map(count, b).is_err() {
                    return;
                }
                let bs = g.bucket_size();
                let mut bks = Vec::new();
                for (arr, n) in h.bucket_arrays() {
                    bks.extend((0..n).map(|i| arr.wrapping_add(i * bs)));
                }
                for bk in bks {
                    self.push(next, root, LabelObj::Bucket(bk));
                }
            }
            LabelObj::Bucket(_) => {
                let g = &gomap::STRING_STRING_HMAP;
                let live = g.live_slots(&self.buf[..]);
                for slot in 0..gomap::SLOTS {
                    if live & (1 << slot) != 0 {
                        self.string_at(next, root, g.key_off(slot) as usize);
                        self.string_at(next, root, g.elem_off(slot) as usize);
                    }
                }
                let overflow = g.overflow(&self.buf[..]);
                self.push(next, root, LabelObj::Bucket(overflow));
            }
            LabelObj::Str(..) => {}
        }
    }
}

impl super::bulk::BulkWalk for LabelWalk {
    fn step<M: Memory>(&mut self, mem: &M) -> Vec<(u64, u64)> {
        LabelWalk::step(self, mem)
    }
}

fn obj_addr(obj: LabelObj) -> u64 {
    match obj {
        LabelObj::Set(a)
        | LabelObj::List(a, _)
        | LabelObj::Hmap(a)
        | LabelObj::Bucket(a)
        | LabelObj::Str(a, _) => a,
    }
}
