//! The heap arena pointer bitmaps of Go 1.19–1.21: which words of a heap
//! object hold pointers, exactly as the garbage collector's `scanobject`
//! reads them (before Go 1.22's allocation headers and span heap bits).
//!
//! Each 64 MiB heap arena has a `heapArena` metadata struct, found through
//! `mheap_.arenas[l1][l2]` (`arenaIndex(p) = (p - arenaBaseOffset) /
//! heapArenaBytes`; one L1 entry on 64-bit non-Windows platforms, so
//! `l2 = arenaIndex(p)`), whose `bitmap` field describes every word of the
//! arena:
//!
//! - **Go 1.19** (mbitmap.go, `heapBitsForAddr`, `heapBits.bits/next`): 2
//!   bits per word, 4 words per byte: `bitmap[(p/32) % len(bitmap)]`, word
//!   `(p/8) & 3`; its pointer bit is bit `k`, its scan bit bit `4 + k`.
//!   `scanobject` walks the words from the object's start and stops at the
//!   first word whose scan bit is 0 ("no more pointers in this object").
//! - **Go 1.20–1.21** (`heapBitsForAddr(addr, size)`, `heapBits.next`): 1
//!   bit per word in `bitmap [heapArenaBitmapWords]uintptr` (word `w` of the
//!   arena is bit `w % 64` of `bitmap[w / 64]`), and `noMorePtrs`: when bit
//!   `i % 8` of `noMorePtrs[i / 8]` is set, the object holding the last word
//!   described by `bitmap[i]` has no pointers past it.
//!
//! Offsets and array lengths come from the layout source (DWARF or the
//! per-version tables, `runtime.heapArena`); `heapArenaBytes` is derived
//! from the bitmap's length (words per bitmap byte × 8), and checked to be
//! a power of two. `arenaBaseOffset` (malloc.go) is `0xffff800000000000`
//! on amd64 and 0 on arm64; `heapAddrBits` is 48 on both.
//!
//! Everything read is bounded and checked: a missing arena, bitmap byte or
//! L2 entry makes the mask unknown (the caller scans conservatively and
//! counts it), never a panic.

use super::layout::Loc;
use super::target::HeapTarget;
use crate::goruntime::Target;
use crate::memory::Memory;
use crate::model::Arch;
use std::collections::HashMap;

/// `heapAddrBits` on linux/amd64 and linux/arm64 (malloc.go).
const HEAP_ADDR_BITS: u32 = 48;

/// Which bitmap encoding the target's runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Go 1.19: 2 bits per word (pointer, scan), 4 words per byte.
    TwoBit,
    /// Go 1.20–1.21: 1 bit per word in uintptr words, plus `noMorePtrs`.
    OneBit { no_more: Loc },
}

/// The arena bitmaps of one target (None from [`ArenaBits::new`] when its
/// runtime has none: Go 1.22+).
#[derive(Debug, Clone)]
pub struct ArenaBits {
    format: Format,
    /// Runtime address of `mheap_.arenas[0]` (the L2 array's pointer).
    arenas: u64,
    arena_bytes: u64,
    l2_len: u64,
    base_offset: u64,
    bitmap: Loc,
    /// `heapArena` address per arena index (None: not readable).
    cache: HashMap<u64, Option<u64>>,
}

impl ArenaBits {
    /// The bitmaps' geometry, when the runtime keeps heap arena bitmaps and
    /// the layout is plausible.
    pub fn new(t: &Target, ht: &HeapTarget) -> Option<ArenaBits> {
        let l = &ht.layout;
        let bitmap = l.ha_bitmap?;
        // Go 1.20 has 1.21's bitmap; without DWARF its layouts come from
        // the 1.19 column (see fallback.rs): not trusted here.
        if t.bin.go.minor() == 20 && t.bin.dwarf().is_none() {
            return None;
        }
        let (format, per_byte) = match l.ha_no_more_ptrs {
            Some(no_more) => (Format::OneBit { no_more }, 8),
            None => (Format::TwoBit, 4),
        };
        let arena_bytes = bitmap.size.checked_mul(per_byte * 8)?;
        if !arena_bytes.is_power_of_two() || !(1 << 20..=1 << 40).contains(&arena_bytes) {
            return None;
        }
        if let Format::OneBit { no_more } = format {
            // One noMorePtrs bit per bitmap word.
            if no_more.size * 8 * 8 != bitmap.size {
                return None;
            }
        }
        // One L1 entry (a single pointer): every 64-bit non-Windows target.
        if l.mh_arenas.size != 8 {
            return None;
        }
        let l2_bits = HEAP_ADDR_BITS.checked_sub(arena_bytes.trailing_zeros())?;
        Some(ArenaBits {
            format,
            arenas: ht.mheap + l.mh_arenas.off,
            arena_bytes,
            l2_len: 1 << l2_bits,
            base_offset: match t.bin.elf.arch {
                Arch::X86_64 => 0xffff_8000_0000_0000,
                _ => 0,
            },
            bitmap,
            cache: HashMap::new(),
        })
    }

    /// `arenaIndex(p)`, when inside the L2 array.
    fn arena_index(&self, p: u64) -> Option<u64> {
        let i = p.wrapping_sub(self.base_offset) / self.arena_bytes;
        (i < self.l2_len).then_some(i)
    }

    /// Address of the L2 entry (`*heapArena`) of the arena holding `p`.
    fn l2_entry<M: Memory>(&self, mem: &M, p: u64) -> Option<u64> {
        let i = self.arena_index(p)?;
        let l2 = mem.ptr(self.arenas).ok().filter(|&a| a != 0)?;
        l2.checked_add(i * 8)
    }

    /// The `heapArena` of the arena holding `p` (cached per arena).
    fn arena<M: Memory>(&mut self, mem: &M, p: u64) -> Option<u64> {
        let i = self.arena_index(p)?;
        if let Some(v) = self.cache.get(&i) {
            return *v;
        }
        let v = self
            .l2_entry(mem, p)
            .and_then(|e| mem.ptr(e).ok())
            .filter(|&a| a != 0);
        self.cache.insert(i, v);
        v
    }

    /// Start of the arena holding `p`.
    fn arena_start(&self, p: u64) -> u64 {
        p - p.wrapping_sub(self.base_offset) % self.arena_bytes
    }

    /// Byte ranges a capture needs so that the objects in `[start, start +
    /// len)` can be decoded offline: with `entries`, the L2 entries of its
    /// arenas (read first: the bitmaps' addresses depend on them); without,
    /// the bitmap bytes (and `noMorePtrs` bytes) that describe the range.
    pub fn capture_ranges<M: Memory>(
        &mut self,
        mem: &M,
        start: u64,
        len: u64,
        entries: bool,
        out: &mut Vec<(u64, u64)>,
    ) {
        let Some(end) = start.checked_add(len) else {
            return;
        };
        let mut a = start;
        // At most a few arenas per span; bounded by the span's length.
        while a < end {
            let arena_end = self.arena_start(a).saturating_add(self.arena_bytes);
            let seg_end = end.min(arena_end);
            if entries {
                if let Some(e) = self.l2_entry(mem, a) {
                    out.push((e, 8));
                }
            } else if let Some(ha) = self.arena(mem, a) {
                let (lo, hi) = (a - self.arena_start(a), seg_end - self.arena_start(a));
                match self.format {
                    Format::TwoBit => {
                        let (b0, b1) = (lo / 32, hi.div_ceil(32));
                        out.push((ha + self.bitmap.off + b0, b1 - b0));
                    }
                    Format::OneBit { no_more } => {
                        let (w0, w1) = (lo / 512, hi.div_ceil(512));
                        out.push((ha + self.bitmap.off + w0 * 8, (w1 - w0) * 8));
                        let (n0, n1) = (w0 / 8, w1.div_ceil(8));
                        out.push((ha + no_more.off + n0, n1 - n0));
                    }
                }
            }
            if seg_end <= a {
                break;
            }
            a = seg_end;
        }
    }

    /// Offsets of the pointer words among the first `size` bytes of the
    /// object at `addr`, as `scanobject` finds them; None when a bitmap
    /// byte is unreadable.
    pub fn pointers<M: Memory>(
        &mut self,
        mem: &M,
        addr: u64,
        size: u64,
        out: &mut Vec<u64>,
    ) -> Option<()> {
        if addr % 8 != 0 {
            return None;
        }
        match self.format {
            Format::TwoBit => self.two_bit(mem, addr, size, out),
            Format::OneBit { no_more } => self.one_bit(mem, no_more, addr, size, out),
        }
    }

    /// Go 1.19: words until the first whose scan bit is clear.
    fn two_bit<M: Memory>(
        &mut self,
        mem: &M,
        addr: u64,
        size: u64,
        out: &mut Vec<u64>,
    ) -> Option<()> {
        let end = addr.checked_add(size / 8 * 8)?;
        let mut a = addr;
        let mut buf = Vec::new();
        while a < end {
            let ha = self.arena(mem, a)?;
            let base = self.arena_start(a);
            let seg_end = end.min(base + self.arena_bytes);
            let (b0, b1) = ((a - base) / 32, (seg_end - base).div_ceil(32));
            let at = ha.checked_add(self.bitmap.off + b0)?;
            let bytes = match mem.bytes_at(at, (b1 - b0) as usize) {
                Some(b) => b,
                None => {
                    buf.resize((b1 - b0) as usize, 0);
                    mem.read_exact(at, &mut buf).ok()?;
                    &buf[..]
                }
            };
            while a < seg_end {
                let k = (a - base) / 8;
                let byte = bytes[(k / 4 - b0) as usize];
                let bits = byte >> (k % 4);
                if bits & 0x10 == 0 {
                    return Some(());
                }
                if bits & 1 != 0 {
                    out.push(a - addr);
                }
                a += 8;
            }
        }
        Some(())
    }

    /// Go 1.20–1.21: `heapBitsForAddr` / `next`, 64 words at a time.
    fn one_bit<M: Memory>(
        &mut self,
        mem: &M,
        no_more: Loc,
        addr: u64,
        size: u64,
        out: &mut Vec<u64>,
    ) -> Option<()> {
        let (mut a, mut size) = (addr, size / 8 * 8);
        while size > 0 {
            let ha = self.arena(mem, a)?;
            let word = (a - self.arena_start(a)) / 8;
            let (idx, off) = (word / 64, word % 64);
            let mut mask = mem.u64(ha.checked_add(self.bitmap.off + idx * 8)?).ok()? >> off;
            let mut valid = 64 - off;
            let nptr = size / 8;
            if nptr < valid {
                mask &= (1u64 << nptr) - 1;
                valid = nptr;
            } else if nptr > valid {
                let b = mem.u8(ha.checked_add(no_more.off + idx / 8)?).ok()?;
                if b >> (idx % 8) & 1 != 0 {
                    size = valid * 8;
                }
            }
            while mask != 0 {
                let i = u64::from(mask.trailing_zeros());
                mask &= mask - 1;
                out.push(a + i * 8 - addr);
            }
            a += valid * 8;
            size -= valid * 8;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SparseMemory;
    use std::sync::Arc;

    const ARENA: u64 = 64 << 20;
    const HA: u64 = 0x7000_0000;
    const L2: u64 = 0x6000_0000;
    const MHEAP: u64 = 0x5000_0000;

    fn bits(format: Format, bitmap_len: u64) -> ArenaBits {
        ArenaBits {
            format,
            arenas: MHEAP,
            arena_bytes: ARENA,
            l2_len: 1 << 22,
            base_offset: 0xffff_8000_0000_0000,
            bitmap: Loc {
                off: 0,
                size: bitmap_len,
            },
            cache: HashMap::new(),
        }
    }

    /// Memory with the L2 array pointer, the entry of the arena of `heap`
    /// and the given bitmap bytes at HA + off.
    fn mem(ab: &ArenaBits, heap: u64, at: Vec<(u64, Vec<u8>)>) -> SparseMemory {
        let idx = ab.arena_index(heap).unwrap();
        let mut r: Vec<(u64, Arc<[u8]>)> = vec![
            (MHEAP, Arc::from(L2.to_le_bytes().to_vec())),
            (L2 + idx * 8, Arc::from(HA.to_le_bytes().to_vec())),
        ];
        for (off, b) in at {
            r.push((HA + off, Arc::from(b)));
        }
        SparseMemory::new(r)
    }

    #[test]
    fn two_bit_stops_at_dead_word() {
        let mut ab = bits(Format::TwoBit, 2 << 20);
        let heap = 0x00c0_0000_0000_u64;
        let obj = heap + 64; // words 8.. of the arena: bitmap byte 2
                             // Words 8..11: ptr+scan, scan only, ptr+scan, dead; 12: ptr+scan.
        let m = mem(&ab, heap, vec![(2, vec![0b0111_0101, 0b0001_0001])]);
        let mut out = Vec::new();
        ab.pointers(&m, obj, 48, &mut out).unwrap();
        assert_eq!(out, vec![0, 16]);
    }

    #[test]
    fn one_bit_masks_and_no_more_ptrs() {
        let no_more = Loc {
            off: 1 << 20,
            size: 16384,
        };
        let mut ab = bits(Format::OneBit { no_more }, 1 << 20);
        let heap = 0x00c0_0000_0000_u64;
        // An object of 140 words from word 60: bits 60 and 63 of bitmap
        // word 0; bits 1 and 40 of word 1, whose noMorePtrs bit is set.
        let w0 = (1u64 << 60) | (1 << 63);
        let w1 = (1u64 << 1) | (1 << 40);
        let w2 = 1u64;
        let mut bm = Vec::new();
        for w in [w0, w1, w2] {
            bm.extend_from_slice(&w.to_le_bytes());
        }
        let m = mem(&ab, heap, vec![(0, bm), (1 << 20, vec![0b10])]);
        let mut out = Vec::new();
        ab.pointers(&m, heap + 60 * 8, 140 * 8, &mut out).unwrap();
        // Words 60, 63, 65, 104; word 128's bit is past noMorePtrs.
        assert_eq!(out, vec![0, 24, 40, 352]);
    }
}
