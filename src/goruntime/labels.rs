//! pprof goroutine labels (`g.labels`): a `*labelMap` that is a
//! `map[string]string` (old hmap) up to Go 1.23 and a struct holding a sorted
//! `[]struct{key, value string}` from Go 1.24.
//!
//! Memory may be hostile (a damaged or crafted snapshot): every address is
//! computed without overflow, bucket chains are cycle-checked and the total
//! work is bounded by [`MAX_LABELS`] entries and [`MAX_BUCKET_READS`] buckets.

use super::traceback::FrameBudget;
use super::Target;
use crate::memory::Memory;
use std::collections::{BTreeMap, HashSet};

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
    if t.bin.go_minor >= 24 {
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

/// Entries of an old-layout (pre-Swiss) `map[string]string`.
/// hmap: count@0 flags@8 B@9 buckets@16 oldbuckets@24; bucket:
/// tophash[8], keys[8]string, elems[8]string, overflow.
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

fn hmap_slots<M: Memory>(
    mem: &M,
    hmap: u64,
    ranges: &mut Vec<(u64, u64)>,
) -> Result<Vec<LabelSlots>, String> {
    let mut out = Vec::new();
    if hmap == 0 {
        return Ok(out);
    }
    ranges.push((hmap, 48));
    let count = mem.u64(hmap).map_err(|e| e.to_string())?;
    if count > MAX_LABELS {
        return Err(format!("label map with {count} entries is implausible"));
    }
    let b = mem.u8(add(hmap, 9)?).map_err(|e| e.to_string())?;
    // The runtime keeps at most 6.5 entries per bucket on average and label
    // maps are never shrunk by deletions, so 2^B beyond this is not a map.
    if b > 16 || (1u64 << b) > 2 * count + 8 {
        return Err(format!(
            "label map B={b} for {count} entries is implausible"
        ));
    }
    let buckets = mem.ptr(add(hmap, 16)?).map_err(|e| e.to_string())?;
    let oldbuckets = mem.ptr(add(hmap, 24)?).map_err(|e| e.to_string())?;
    const BUCKET: u64 = 8 + 8 * 16 + 8 * 16 + 8;
    let mut reads = 0u64;
    let mut seen = HashSet::new();
    let mut walk = |base: u64, nb: u64| -> Result<(), String> {
        for i in 0..nb {
            let mut bk = add(base, i * BUCKET)?;
            while bk != 0 {
                reads += 1;
                if reads > MAX_BUCKET_READS {
                    return Err("label map: too many buckets".into());
                }
                if !seen.insert(bk) {
                    return Err(format!("label map: bucket {bk:#x} is reached twice"));
                }
                let raw = mem
                    .read_vec(bk, BUCKET as usize)
                    .map_err(|e| e.to_string())?;
                ranges.push((bk, BUCKET));
                for slot in 0..8u64 {
                    if raw[slot as usize] < 5 {
                        continue; // empty or evacuated
                    }
                    out.push(LabelSlots {
                        key: add(bk, 8 + slot * 16)?,
                        value: add(bk, 8 + 128 + slot * 16)?,
                    });
                    if out.len() as u64 > count.max(8) {
                        return Err("label map holds more entries than its count".into());
                    }
                }
                let mut next = [0u8; 8];
                next.copy_from_slice(&raw[(BUCKET - 8) as usize..]);
                bk = u64::from_le_bytes(next);
            }
        }
        Ok(())
    };
    if buckets != 0 {
        walk(buckets, 1u64 << b)?;
    }
    if oldbuckets != 0 && b > 0 {
        walk(oldbuckets, 1u64 << (b - 1))?;
    }
    Ok(out)
}
