//! Finding the heap object a word points into, and scanning words for such
//! pointers (shared by the heap graph and the root scan).

use super::objects::HeapObjects;

/// Index of the object holding `addr`, in objects sorted by address.
pub fn find_object(objs: &HeapObjects, addr: u64) -> Option<u32> {
    let v = &objs.objects;
    if v.is_empty() || addr < v[0].addr {
        return None;
    }
    let i = v.partition_point(|o| o.addr <= addr);
    let o = v.get(i.checked_sub(1)?)?;
    (addr < o.addr.saturating_add(o.size)).then_some((i - 1) as u32)
}

/// Appends to `row` the objects that the little-endian words of `bytes`
/// point into (deduplicated within the row, order kept).
pub fn scan_words(objs: &HeapObjects, bytes: &[u8], row: &mut Vec<u32>) {
    let start = row.len();
    for w in bytes.chunks_exact(8) {
        let p = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        if p < 4096 {
            continue;
        }
        if let Some(j) = find_object(objs, p) {
            if !row[start..].contains(&j) || row.len() - start > 64 {
                row.push(j);
            }
        }
    }
    // Large rows: deduplicate once (the `contains` above stops at 64).
    if row.len() - start > 64 {
        let mut tail: Vec<u32> = row.drain(start..).collect();
        tail.sort_unstable();
        tail.dedup();
        row.extend(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goruntime::heap::objects::HeapObject;

    fn objs(v: &[(u64, u64)]) -> HeapObjects {
        HeapObjects {
            objects: v
                .iter()
                .map(|&(addr, size)| HeapObject {
                    addr,
                    size,
                    spanclass: 2,
                    rtype: 0,
                    ptrs: 0,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn find_interior() {
        let o = objs(&[(0x1000, 16), (0x1010, 16), (0x2000, 32)]);
        assert_eq!(find_object(&o, 0x1000), Some(0));
        assert_eq!(find_object(&o, 0x101f), Some(1));
        assert_eq!(find_object(&o, 0x1020), None);
        assert_eq!(find_object(&o, 0xfff), None);
        assert_eq!(find_object(&o, 0x201f), Some(2));
    }

    #[test]
    fn scan_dedups() {
        let o = objs(&[(0x1000, 16), (0x2000, 16)]);
        let mut b = Vec::new();
        for p in [0x1000u64, 0x1008, 7, 0x2000, 0x3000] {
            b.extend_from_slice(&p.to_le_bytes());
        }
        let mut row = Vec::new();
        scan_words(&o, &b, &mut row);
        assert_eq!(row, vec![0, 1]);
    }
}
