//! Little-endian reads from byte buffers copied out of the target, bounded:
//! out of range reads 0.

pub(super) fn le64_chunk(c: &[u8]) -> u64 {
    u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
}

pub(super) fn le(b: &[u8], off: u64, size: u64) -> u64 {
    let o = off as usize;
    let n = size as usize;
    match b.get(o..o.saturating_add(n)) {
        Some(s) if n <= 8 => {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(s);
            u64::from_le_bytes(a)
        }
        _ => 0,
    }
}
pub(super) fn le64(b: &[u8], off: u64) -> u64 {
    le(b, off, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_reads_are_bounded() {
        let b = [1u8, 2, 3];
        assert_eq!(le(&b, 0, 2), 0x0201);
        assert_eq!(le(&b, 2, 8), 0);
        assert_eq!(le(&b, u64::MAX, 8), 0);
    }
}
