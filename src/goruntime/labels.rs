//! pprof goroutine labels (`g.labels`): a `*labelMap` that is a
//! `map[string]string` (old hmap) up to Go 1.23 and a struct holding a sorted
//! `[]struct{key, value string}` from Go 1.24.

use super::Target;
use crate::memory::Memory;
use std::collections::BTreeMap;

const MAX_LABELS: u64 = 4096;
const MAX_LABEL_LEN: usize = 64 << 10;

pub fn read_labels<M: Memory>(
    t: &Target,
    mem: &M,
    ptr: u64,
) -> Result<BTreeMap<String, String>, String> {
    if ptr == 0 {
        return Ok(BTreeMap::new());
    }
    if t.bin.go_minor >= 24 {
        read_label_list(mem, ptr)
    } else {
        let hmap = mem.ptr(ptr).map_err(|e| e.to_string())?;
        read_string_hmap(mem, hmap)
    }
}

fn read_label_list<M: Memory>(mem: &M, ptr: u64) -> Result<BTreeMap<String, String>, String> {
    let arr = mem.ptr(ptr).map_err(|e| e.to_string())?;
    let n = mem.u64(ptr + 8).map_err(|e| e.to_string())?;
    if n > MAX_LABELS {
        return Err(format!("{n} labels is implausible"));
    }
    let mut out = BTreeMap::new();
    for i in 0..n {
        let e = arr + i * 32;
        let k = mem.go_string(e, MAX_LABEL_LEN).map_err(|e| e.to_string())?;
        let v = mem
            .go_string(e + 16, MAX_LABEL_LEN)
            .map_err(|e| e.to_string())?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Entries of an old-layout (pre-Swiss) `map[string]string`.
/// hmap: count@0 flags@8 B@9 buckets@16 oldbuckets@24; bucket:
/// tophash[8], keys[8]string, elems[8]string, overflow.
pub fn read_string_hmap<M: Memory>(mem: &M, hmap: u64) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    if hmap == 0 {
        return Ok(out);
    }
    let count = mem.u64(hmap).map_err(|e| e.to_string())?;
    if count > MAX_LABELS {
        return Err(format!("label map with {count} entries is implausible"));
    }
    let b = mem.u8(hmap + 9).map_err(|e| e.to_string())?;
    if b > 16 {
        return Err(format!("label map B={b} is implausible"));
    }
    let buckets = mem.ptr(hmap + 16).map_err(|e| e.to_string())?;
    let oldbuckets = mem.ptr(hmap + 24).map_err(|e| e.to_string())?;
    const BUCKET: u64 = 8 + 8 * 16 + 8 * 16 + 8;
    let mut walk = |base: u64, nb: u64| -> Result<(), String> {
        for i in 0..nb {
            let mut bk = base + i * BUCKET;
            let mut chain = 0;
            while bk != 0 && chain < 1024 {
                chain += 1;
                let raw = mem
                    .read_vec(bk, BUCKET as usize)
                    .map_err(|e| e.to_string())?;
                for slot in 0..8u64 {
                    if raw[slot as usize] < 5 {
                        continue; // empty or evacuated
                    }
                    let k = mem
                        .go_string(bk + 8 + slot * 16, MAX_LABEL_LEN)
                        .map_err(|e| e.to_string())?;
                    let v = mem
                        .go_string(bk + 8 + 128 + slot * 16, MAX_LABEL_LEN)
                        .map_err(|e| e.to_string())?;
                    out.insert(k, v);
                    if out.len() as u64 > MAX_LABELS {
                        return Err("too many labels".into());
                    }
                }
                bk = u64::from_le_bytes(raw[(BUCKET - 8) as usize..].try_into().unwrap());
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
