//! Target memory as the decoders see it: a paused live process, a `.gss`
//! snapshot or (later) a core file all implement [`Memory`].
//!
//! Every read is bounded and fallible: a bad pointer is an error value for the
//! caller to turn into a warning, never a panic.

use bytes::Bytes;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read {len} bytes at {addr:#x}: {why}")]
pub struct MemError {
    pub addr: u64,
    pub len: usize,
    pub why: &'static str,
}

pub type MemResult<T> = Result<T, MemError>;

/// Largest single read a decoder may ask for (guards absurd lengths).
pub const MAX_READ: usize = 1 << 30;

pub trait Memory: Send + Sync {
    /// Fill `buf` with the bytes at `addr`; error if any byte is unavailable.
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()>;

    fn read_vec(&self, addr: u64, len: usize) -> MemResult<Vec<u8>> {
        if len > MAX_READ {
            return Err(MemError {
                addr,
                len,
                why: "length too large",
            });
        }
        let mut v = vec![0u8; len];
        self.read_exact(addr, &mut v)?;
        Ok(v)
    }
    fn u8(&self, addr: u64) -> MemResult<u8> {
        let mut b = [0u8; 1];
        self.read_exact(addr, &mut b)?;
        Ok(b[0])
    }
    fn u16(&self, addr: u64) -> MemResult<u16> {
        let mut b = [0u8; 2];
        self.read_exact(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&self, addr: u64) -> MemResult<u32> {
        let mut b = [0u8; 4];
        self.read_exact(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&self, addr: u64) -> MemResult<u64> {
        let mut b = [0u8; 8];
        self.read_exact(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn ptr(&self, addr: u64) -> MemResult<u64> {
        self.u64(addr)
    }
    /// Bytes held, for memory that is a finite capture (snapshot, core):
    /// analyses of untrusted input bound their work by it. None: unknown.
    fn captured_bytes(&self) -> Option<u64> {
        None
    }
    /// The `len` bytes at `addr` in place, when this memory holds them in
    /// one piece (no copy, no allocation). None: use `read_exact`.
    fn bytes_at(&self, _addr: u64, _len: usize) -> Option<&[u8]> {
        None
    }
    /// A Go string header `{ptr, len}` at `addr`, bounded by `max` bytes.
    fn go_string(&self, addr: u64, max: usize) -> MemResult<String> {
        let p = self.ptr(addr)?;
        let n = self.u64(addr.checked_add(8).ok_or(MemError {
            addr,
            len: 16,
            why: "string header wraps around the address space",
        })?)? as usize;
        if n == 0 {
            return Ok(String::new());
        }
        let n = n.min(max);
        let v = self.read_vec(p, n)?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    }
}

impl<M: Memory + ?Sized> Memory for &M {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        (**self).read_exact(addr, buf)
    }
    fn captured_bytes(&self) -> Option<u64> {
        (**self).captured_bytes()
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        (**self).bytes_at(addr, len)
    }
}
impl<M: Memory + ?Sized> Memory for Arc<M> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        (**self).read_exact(addr, buf)
    }
    fn captured_bytes(&self) -> Option<u64> {
        (**self).captured_bytes()
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        (**self).bytes_at(addr, len)
    }
}
impl<M: Memory + ?Sized> Memory for Box<M> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        (**self).read_exact(addr, buf)
    }
    fn captured_bytes(&self) -> Option<u64> {
        (**self).captured_bytes()
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        (**self).bytes_at(addr, len)
    }
}

/// Memory made of disjoint byte ranges (what a snapshot holds), sorted by
/// address. Reads may span ranges that are exactly adjacent.
#[derive(Default, Clone)]
pub struct SparseMemory {
    /// Shared, cheaply sliced bytes: many ranges may point into one buffer
    /// (a capture round, a decompressed snapshot chunk) without copies.
    ranges: Vec<(u64, Bytes)>,
    /// `max_end[i]`: the highest end of `ranges[..=i]`, so that a lookup
    /// knows when no earlier (longer) range can hold an address, however
    /// many shorter ranges start inside one.
    max_end: Vec<u64>,
    /// Address ranges `[start, end)` lost with damaged snapshot chunks: a
    /// failed read there says so.
    damaged: Vec<(u64, u64)>,
}

impl SparseMemory {
    /// Build from ranges in any order. Overlapping ranges are allowed; the
    /// later-starting one wins for the overlapped bytes.
    pub fn new(ranges: Vec<(u64, Arc<[u8]>)>) -> Self {
        Self::from_bytes(
            ranges
                .into_iter()
                .map(|(a, d)| (a, Bytes::from_owner(d)))
                .collect(),
        )
    }
    /// Like [`new`](Self::new), from shared byte slices.
    pub fn from_bytes(mut ranges: Vec<(u64, Bytes)>) -> Self {
        ranges.retain(|(_, d)| !d.is_empty());
        ranges.sort_by_key(|(a, d)| (*a, d.len()));
        let mut hi = 0u64;
        let max_end = ranges
            .iter()
            .map(|(a, d)| {
                hi = hi.max(a.saturating_add(d.len() as u64));
                hi
            })
            .collect();
        SparseMemory {
            ranges,
            max_end,
            damaged: Vec::new(),
        }
    }
    /// Record address ranges `[start, end)` whose bytes were lost with a
    /// damaged chunk, so that errors name the cause.
    pub fn set_damaged(&mut self, ranges: Vec<(u64, u64)>) {
        self.damaged = ranges;
    }
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(a, d)| (*a, &d[..]))
    }
    pub fn total_bytes(&self) -> u64 {
        self.ranges.iter().map(|(_, d)| d.len() as u64).sum()
    }
    /// Index of the last range starting at or below `addr` that contains it.
    fn find(&self, addr: u64) -> Option<usize> {
        let mut i = self.ranges.partition_point(|(a, _)| *a <= addr);
        // Walk back while an earlier range may still reach addr (a long
        // range with shorter ones starting inside it).
        while i > 0 {
            i -= 1;
            let (a, d) = &self.ranges[i];
            if addr < a.saturating_add(d.len() as u64) {
                return Some(i);
            }
            if self.max_end[i] <= addr {
                return None;
            }
        }
        None
    }
    /// The `len` bytes at `addr` as a shared slice, when one range holds them.
    pub fn slice(&self, addr: u64, len: usize) -> Option<Bytes> {
        let (a, d) = &self.ranges[self.find(addr)?];
        let off = (addr - a) as usize;
        let end = off.checked_add(len)?;
        (end <= d.len()).then(|| d.slice(off..end))
    }
    pub fn contains(&self, addr: u64, len: usize) -> bool {
        let mut tmp = vec![0u8; len.min(1 << 20)];
        len <= tmp.len() && self.read_exact(addr, &mut tmp).is_ok()
    }
}

impl Memory for SparseMemory {
    fn captured_bytes(&self) -> Option<u64> {
        Some(self.total_bytes())
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let (a, d) = &self.ranges[self.find(addr)?];
        let off = (addr - a) as usize;
        d.get(off..off.checked_add(len)?)
    }
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = addr.wrapping_add(done as u64);
            let i = self.find(cur).ok_or(MemError {
                addr,
                len: buf.len(),
                why: if self.damaged.iter().any(|&(a, b)| cur >= a && cur < b) {
                    "lost with a damaged snapshot chunk"
                } else {
                    "not in snapshot"
                },
            })?;
            let (a, d) = &self.ranges[i];
            let off = (cur - a) as usize;
            let n = (d.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&d[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

/// Reads from `first`, falling back to `second` (e.g. snapshot, then the
/// binary's file-backed segments).
pub struct Layered<A, B> {
    pub first: A,
    pub second: B,
}

impl<A: Memory, B: Memory> Memory for Layered<A, B> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        match self.first.read_exact(addr, buf) {
            Ok(()) => Ok(()),
            // When neither has the bytes, the first layer (the snapshot) says
            // why: not captured, or lost with a damaged chunk.
            Err(e) => self.second.read_exact(addr, buf).map_err(|_| e),
        }
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.first
            .bytes_at(addr, len)
            .or_else(|| self.second.bytes_at(addr, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sparse_finds_a_long_range_behind_many_short_ones() {
        // A long range with more than a few short ranges starting inside it
        // (a merged read, then objects read on their own): every address of
        // the long range stays readable, the short ones win where they are.
        let mut ranges = vec![(0x1000, Arc::from(vec![7u8; 0x1000]))];
        for i in 0..32u64 {
            ranges.push((0x1010 + i * 16, Arc::from(vec![i as u8; 4])));
        }
        let m = SparseMemory::new(ranges);
        let mut b = [0u8; 4];
        m.read_exact(0x1010 + 31 * 16 + 8, &mut b).unwrap();
        assert_eq!(b, [7; 4]);
        m.read_exact(0x1010 + 5 * 16, &mut b).unwrap();
        assert_eq!(b, [5; 4]);
        m.read_exact(0x1ffc, &mut b).unwrap();
        assert_eq!(b, [7; 4]);
        assert!(m.read_exact(0x2000, &mut b).is_err());
        assert!(m.read_exact(0xff0, &mut b).is_err());
    }

    #[test]
    fn sparse_reads_span_adjacent_ranges() {
        let m = SparseMemory::new(vec![
            (0x1000, Arc::from(vec![1u8, 2, 3, 4])),
            (0x1004, Arc::from(vec![5u8, 6])),
            (0x2000, Arc::from(vec![9u8; 16])),
        ]);
        let mut b = [0u8; 6];
        m.read_exact(0x1000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        assert!(m.read_exact(0x1003, &mut [0u8; 4]).is_err());
        assert_eq!(m.u8(0x200f).unwrap(), 9);
        assert!(m.u8(0x2010).is_err());
        assert!(m.u8(0xfff).is_err());
    }
}
