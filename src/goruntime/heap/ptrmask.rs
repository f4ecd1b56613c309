//! The GC's exact pointer masks for roots: the module's data/bss masks
//! (GC programs at `moduledata.gcdata`/`gcbss`, expanded as
//! `progToPointerMask` does, symtab.go) and the stack maps of a frame
//! (`stkframe.getStackMap`, stkframe.go; `scanframeworker`, mgcmark.go).
//!
//! Frame geometry (traceback.go, every version 1.19–1.27): on amd64
//! `fp = sp + pcsp(pc) + 8` (the caller's SP, past the return address),
//! `varp = fp - 8`, `argp = fp`; on arm64 (`usesLR`) `fp = sp + pcsp(pc)`,
//! `varp = fp`, `argp = fp + 8` (MinFrameSize); on both, `varp -= 8` for
//! the saved frame pointer when `varp > sp`. Locals: `stackmapdata(LocalsPointerMaps,
//! idx)`, `nbit` words ending at `varp`; arguments: `ArgsPointerMaps`
//! from `argp`; `idx = pcdata(StackMapIndex, pc - 1)` (`-1` read as 0).
//! A stackmap is `{n int32, nbit int32, bytedata [n][(nbit+7)/8]byte}`.
//! Stack objects (`FUNCDATA_StackObjects`: a count, then 16-byte records
//! `{off int32, size int32, ptrdata int32, gcdataoff uint32}`, `off` from
//! `varp` when negative, else from `argp`) are address-taken locals the GC
//! scans only when reached (the caller follows the stack's pointers into
//! them, as `scanstack` does), by their type's pointer mask (`ptrdata/8` bits at `moduledata.rodata +
//! gcdataoff`, or the GC program there when `ptrdata < 0`, Go 1.19–1.23),
//! whole when that mask is unreadable.

use super::arenabits::ArenaBits;
use super::slot::{HeapObject, MIN_SIZE_FOR_HEADER, PTRS_UNKNOWN};
use super::target::HeapTarget;
use crate::binary::pclntab::{
    FUNCDATA_ARGS_POINTER_MAPS, FUNCDATA_LOCALS_POINTER_MAPS, FUNCDATA_STACK_OBJECTS,
    PCDATA_STACK_MAP_INDEX,
};
use crate::goruntime::Target;
use crate::memory::Memory;

/// Most stack objects read per frame.
const MAX_STACK_OBJECTS: u64 = 4096;

/// Expands a GC program into `nbits` pointer bits (one per word). None if
/// the program is malformed, overruns `nbits` or does not end.
pub fn gc_program(prog: &[u8], nbits: usize) -> Option<Vec<bool>> {
    let mut bits: Vec<bool> = Vec::with_capacity(nbits);
    let mut p = 0usize;
    let varint = |p: &mut usize| -> Option<usize> {
        let mut v: usize = 0;
        for shift in (0..63).step_by(7) {
            let b = *prog.get(*p)?;
            *p += 1;
            v |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    loop {
        let op = *prog.get(p)?;
        p += 1;
        let mut n = (op & 0x7f) as usize;
        if op & 0x80 == 0 {
            if n == 0 {
                break;
            }
            if bits.len() + n > nbits {
                return None;
            }
            for k in 0..n {
                let byte = *prog.get(p + k / 8)?;
                bits.push(byte >> (k % 8) & 1 == 1);
            }
            p += n.div_ceil(8);
            continue;
        }
        if n == 0 {
            n = varint(&mut p)?;
        }
        let c = varint(&mut p)?;
        if n == 0 || n > bits.len() || c.checked_mul(n)? > nbits.saturating_sub(bits.len()) {
            return None;
        }
        let from = bits.len() - n;
        for _ in 0..c {
            for k in 0..n {
                bits.push(bits[from + k]);
            }
        }
    }
    bits.resize(nbits, false);
    Some(bits)
}

/// The pointer mask of `.data` (`bss == false`) or `.bss`: one bit per
/// word from the section start; None when the program cannot be read.
pub fn section_mask<M: Memory>(t: &Target, mem: &M, bss: bool) -> Option<Vec<bool>> {
    let md = &t.bin.moduledata;
    let base = if t.bin.go.at_least(1, 20) { 280 } else { 264 };
    let off = base + if bss { 8 } else { 0 };
    let (lo, hi) = if bss {
        (md.bss, md.ebss)
    } else {
        (md.data, md.edata)
    };
    let nbits = (hi.checked_sub(lo)? / 8) as usize;
    let p = mem
        .u64(md.addr.wrapping_add(t.bias).wrapping_add(off))
        .ok()?;
    // The field holds a runtime address once relocated, a link-time one in
    // the file image: try both.
    for at in [p, p.wrapping_add(t.bias)] {
        let len = (nbits / 4 + 64).min(64 << 20);
        let Some(prog) = read_prefix(mem, at, len) else {
            continue;
        };
        if let Some(m) = gc_program(&prog, nbits) {
            return Some(m);
        }
    }
    None
}

/// Up to `len` bytes at `at` (fewer when the readable range ends sooner).
fn read_prefix<M: Memory>(mem: &M, at: u64, len: usize) -> Option<Vec<u8>> {
    let mut n = len;
    while n >= 16 {
        if let Ok(v) = mem.read_vec(at, n) {
            return Some(v);
        }
        n /= 2;
    }
    None
}

/// What the GC scans in one frame: its live pointer slots, and its stack
/// objects (scanned only when a pointer from the stack reaches them).
#[derive(Debug, Default)]
pub struct FrameSlots {
    pub pointers: Vec<u64>,
    pub objects: Vec<StackObject>,
}

/// An address-taken local (`FUNCDATA_StackObjects`): `scanstack` scans it
/// only when a live pointer slot, or a stack object already reached, points
/// into it (mgcstack.go).
#[derive(Debug, Clone)]
pub struct StackObject {
    pub addr: u64,
    pub size: u64,
    /// Addresses of its pointer words; None when its mask is unreadable
    /// (the caller then scans it whole).
    pub pointers: Option<Vec<u64>>,
}

fn stackmap_bits(b: &[u8], idx: i32) -> Option<Vec<bool>> {
    let n = i32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
    let nbit = i32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    if nbit <= 0 {
        return Some(Vec::new());
    }
    if idx < 0 || idx >= n || nbit > 1 << 24 {
        return None;
    }
    let row = (nbit as usize).div_ceil(8);
    let start = 8 + idx as usize * row;
    let bytes = b.get(start..start + row)?;
    Some(
        (0..nbit as usize)
            .map(|k| bytes[k / 8] >> (k % 8) & 1 == 1)
            .collect(),
    )
}

/// The exact slots of the frame at `(pc, sp)` (runtime addresses); None
/// when the function or its maps are unknown (the caller then scans the
/// frame conservatively).
pub fn frame_slots<M: Memory>(t: &Target, mem: &M, pc: u64, sp: u64) -> Option<FrameSlots> {
    let p = &t.bin.pcln;
    let f = t.find_func(pc)?;
    let link = pc.wrapping_sub(t.bias);
    let delta = p.pcsp(&f, link)?;
    if !(0..1 << 30).contains(&delta) {
        return None;
    }
    let arch = t.arch();
    let fp = crate::goruntime::arch::frame_end(arch, sp, delta);
    let argp = crate::goruntime::arch::args_at(arch, sp, delta);
    // The return address pushed by CALL (amd64 only), then the saved frame
    // pointer (both architectures: arm64 stores it below its frame too).
    let mut varp = match arch {
        crate::model::Arch::X86_64 => fp - 8,
        crate::model::Arch::Aarch64 => fp,
    };
    if varp > sp {
        varp -= 8;
    }
    let target = if link != f.entry { link - 1 } else { link };
    let idx = match p.pcdata(&f, PCDATA_STACK_MAP_INDEX, target) {
        None | Some(-1) => 0,
        Some(i) => i,
    };
    let mut out = FrameSlots::default();
    if varp > sp {
        if let Some(b) = p.funcdata_bytes(&f, FUNCDATA_LOCALS_POINTER_MAPS) {
            let bits = stackmap_bits(b, idx)?;
            let base = varp.checked_sub(bits.len() as u64 * 8)?;
            for (k, set) in bits.iter().enumerate() {
                if *set {
                    out.pointers.push(base + k as u64 * 8);
                }
            }
        }
    }
    if let Some(b) = p.funcdata_bytes(&f, FUNCDATA_ARGS_POINTER_MAPS) {
        let bits = stackmap_bits(b, idx)?;
        for (k, set) in bits.iter().enumerate() {
            if *set {
                out.pointers.push(argp + k as u64 * 8);
            }
        }
    }
    if let Some(b) = p.funcdata_bytes(&f, FUNCDATA_STACK_OBJECTS) {
        let n = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        if n > MAX_STACK_OBJECTS {
            return None;
        }
        for k in 0..n as usize {
            let r = b.get(8 + 16 * k..8 + 16 * (k + 1))?;
            let off = i32::from_le_bytes(r[0..4].try_into().ok()?);
            let size = i32::from_le_bytes(r[4..8].try_into().ok()?);
            let ptrdata = i32::from_le_bytes(r[8..12].try_into().ok()?);
            let gcdataoff = u32::from_le_bytes(r[12..16].try_into().ok()?);
            if size <= 0 || ptrdata == 0 {
                continue;
            }
            let at = if off < 0 {
                varp.wrapping_add(off as i64 as u64)
            } else {
                argp + off as u64
            };
            // The object's pointer mask: ptrdata/8 bits at rodata + gcdataoff,
            // or (ptrdata < 0, Go 1.19–1.23) a GC program of -ptrdata/8 bits
            // after a 4-byte length there (`materializeGCProg`).
            let words = (ptrdata.unsigned_abs() as u64 / 8).min(size as u64 / 8);
            let m = t.bin.moduledata.rodata + gcdataoff as u64 + t.bias;
            let mask: Option<Vec<bool>> = if ptrdata > 0 {
                mem.read_vec(m, words.div_ceil(8) as usize).ok().map(|b| {
                    (0..words)
                        .map(|w| b[(w / 8) as usize] >> (w % 8) & 1 == 1)
                        .collect()
                })
            } else {
                length_prefixed_program(mem, m, words)
            };
            let pointers = mask.map(|bits| {
                bits.iter()
                    .enumerate()
                    .filter(|(_, set)| **set)
                    .map(|(w, _)| at + w as u64 * 8)
                    .collect()
            });
            out.objects.push(StackObject {
                addr: at,
                size: size as u64,
                pointers,
            });
        }
    }
    Some(out)
}

/// Longest stack-object GC program read (bytes).
const MAX_STACK_PROGRAM: u32 = 1 << 20;

/// A GC program as types and stack objects carry it (`materializeGCProg`:
/// a 4-byte length, then the program) run into `words` pointer bits.
fn length_prefixed_program<M: Memory>(mem: &M, at: u64, words: u64) -> Option<Vec<bool>> {
    if words > MAX_TYPE_WORDS {
        return None;
    }
    let len = u32::from_le_bytes(mem.read_vec(at, 4).ok()?.try_into().ok()?);
    if len == 0 || len > MAX_STACK_PROGRAM {
        return None;
    }
    let prog = mem.read_vec(at + 4, len as usize).ok()?;
    gc_program(&prog, words as usize)
}

/// Bytes of Green Tea's `spanInlineMarkBits` (Go 1.26+ default: scans
/// [63]uint8, owned uint8, marks [63]uint8, class uint8) at the end of
/// small-object spans of 16..=512-byte objects.
const INLINE_MARK_BITS: u64 = 128;
/// `abi.TFlagGCMaskOnDemand` (Go 1.24+) and `KindGCProg` (before 1.24).
const TFLAG_GC_MASK_ON_DEMAND: u8 = 1 << 4;
const KIND_GC_PROG: u8 = 1 << 6;
/// Largest type pointer mask read (bits).
const MAX_TYPE_WORDS: u64 = 1 << 27;

/// A type's size and pointer bit per word of its ptrdata.
type TypeMask = (u64, std::sync::Arc<[bool]>);

/// Pointer words of one heap object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectMask {
    /// Offsets (bytes from the object's address) of its pointer words.
    Exact(Vec<u64>),
    /// `count` elements of a type from byte `start`, `elem` bytes apart,
    /// whose pointer words are `bits` (one per word from the element start).
    Repeated {
        start: u64,
        elem: u64,
        count: u64,
        bits: std::sync::Arc<[bool]>,
    },
    /// No exact mask here (arena bitmaps missing from the snapshot, GC
    /// programs, unreadable bits or type descriptors): scan every word.
    Unknown,
}

/// Largest object prefix whose pointer words are listed (larger objects:
/// their first bytes only; the graph scans no further).
pub const MAX_MASK_BYTES: u64 = 1 << 30;

/// Per-object pointer masks of one heap, with the type masks read once.
pub struct HeapMasks {
    /// Go 1.22+: heap bits in spans, types in headers and largeType.
    pub exact: bool,
    /// Go 1.19–1.21: the heap arena bitmaps (None on 1.22+, or when the
    /// layout is unknown).
    arena: Option<ArenaBits>,
    /// Pointer offsets being collected (reused).
    scratch: Vec<u64>,
    green_tea: bool,
    /// Go 1.24+: `TFlagGCMaskOnDemand` (bit 4 of tflag; no GC programs).
    on_demand: bool,
    page: u64,
    bias: u64,
    types: std::collections::HashMap<u64, Option<TypeMask>>,
}

impl HeapMasks {
    pub fn new(t: &Target) -> HeapMasks {
        let ht = HeapTarget::new(t).ok();
        HeapMasks::with_target(t, ht.as_ref())
    }

    /// Masks for `t`, whose heap target (layouts, `mheap_`) is `ht`.
    pub fn with_target(t: &Target, ht: Option<&HeapTarget>) -> HeapMasks {
        let exact = t.bin.go.at_least(1, 22);
        HeapMasks {
            exact,
            arena: ht.filter(|_| !exact).and_then(|ht| ArenaBits::new(t, ht)),
            scratch: Vec::new(),
            green_tea: t.bin.go.at_least(1, 26),
            on_demand: t.bin.go.at_least(1, 24),
            page: 8192,
            bias: t.bias,
            types: Default::default(),
        }
    }

    /// (size, pointer bit per word of ptrdata) of the type at `rtype`.
    fn type_mask<M: Memory>(&mut self, mem: &M, rtype: u64) -> Option<TypeMask> {
        if let Some(v) = self.types.get(&rtype) {
            return v.clone();
        }
        let v = (|| {
            let b = mem.read_vec(rtype, 40).ok()?;
            let size = u64::from_le_bytes(b[0..8].try_into().ok()?);
            let ptrdata = u64::from_le_bytes(b[8..16].try_into().ok()?);
            let (tflag, kind) = (b[20], b[23]);
            let gcdata = u64::from_le_bytes(b[32..40].try_into().ok()?);
            if ptrdata > size || size == 0 || ptrdata / 8 > MAX_TYPE_WORDS {
                return None;
            }
            let words = ptrdata / 8;
            // Before Go 1.24 a type whose mask would be large has a GC
            // program instead (a 4-byte length, then the program).
            if kind & KIND_GC_PROG != 0 && !self.on_demand {
                let bits = length_prefixed_program(mem, gcdata, words)?;
                return Some((size, bits.into()));
            }
            // Go 1.24+: the mask of a large type is built on demand from
            // its fields (`buildGCMask`, type.go); so here.
            if self.on_demand && tflag & TFLAG_GC_MASK_ON_DEMAND != 0 {
                let mut bits = vec![false; words as usize];
                let mut budget = 1u64 << 24;
                self.build_mask(mem, rtype, &mut bits, 0, 0, &mut budget)?;
                return Some((size, bits.into()));
            }
            let m = mem.read_vec(gcdata, words.div_ceil(8) as usize).ok()?;
            Some((
                size,
                (0..words as usize)
                    .map(|w| m[w / 8] >> (w % 8) & 1 == 1)
                    .collect::<std::sync::Arc<[bool]>>(),
            ))
        })();
        self.types.insert(rtype, v.clone());
        v
    }

    /// A type descriptor pointer read from memory: relocated in the target,
    /// link-time when read from the executable's image (PIE).
    fn tptr<M: Memory>(&self, mem: &M, v: u64) -> u64 {
        if self.bias != 0 && v < self.bias && mem.u64(v).is_err() {
            v.wrapping_add(self.bias)
        } else {
            v
        }
    }

    /// `buildGCMask`: sets the pointer bits of type `rtype` at word `at`
    /// of `bits`. Bounded by depth and `budget` (words visited).
    fn build_mask<M: Memory>(
        &self,
        mem: &M,
        rtype: u64,
        bits: &mut [bool],
        at: usize,
        depth: u32,
        budget: &mut u64,
    ) -> Option<()> {
        if depth > 64 || *budget == 0 {
            return None;
        }
        *budget -= 1;
        let b = mem.read_vec(rtype, 72).ok()?;
        let u = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let (size, ptrdata, tflag, kind, gcdata) = (u(0), u(8), b[20], b[23] & 0x1f, u(32));
        if ptrdata == 0 {
            return Some(());
        }
        let words = (ptrdata / 8) as usize;
        if at.checked_add(words)? > bits.len() || size == 0 {
            return None;
        }
        if tflag & TFLAG_GC_MASK_ON_DEMAND == 0 {
            let m = mem
                .read_vec(self.tptr(mem, gcdata), words.div_ceil(8))
                .ok()?;
            for w in 0..words {
                if m[w / 8] >> (w % 8) & 1 == 1 {
                    bits[at + w] = true;
                }
            }
            return Some(());
        }
        match kind {
            // Array: the element's mask, len times.
            17 => {
                let elem = self.tptr(mem, u(48));
                let len = u(64);
                let esize = mem.u64(elem).ok()?;
                if esize == 0 || esize.checked_mul(len)? > size {
                    return None;
                }
                for i in 0..len {
                    *budget = budget.checked_sub(1)?;
                    let w = at + (i * esize / 8) as usize;
                    self.build_mask(mem, elem, bits, w, depth + 1, budget)?;
                }
            }
            // Struct: each field with pointers at its offset.
            25 => {
                let (fields, n) = (self.tptr(mem, u(56)), u(64));
                if n > 1 << 16 {
                    return None;
                }
                let f = mem.read_vec(fields, (n * 24) as usize).ok()?;
                for k in 0..n as usize {
                    let ft = u64::from_le_bytes(f[k * 24 + 8..k * 24 + 16].try_into().ok()?);
                    let off = u64::from_le_bytes(f[k * 24 + 16..k * 24 + 24].try_into().ok()?);
                    let ft = self.tptr(mem, ft);
                    let w = at + (off / 8) as usize;
                    self.build_mask(mem, ft, bits, w, depth + 1, budget)?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// Why objects get [`ObjectMask::Unknown`] in bulk, for the warning
    /// that counts them ("" when only some masks were unreadable).
    pub fn unknown_reason(&self) -> &'static str {
        match (self.exact, &self.arena) {
            (true, _) => "",
            (false, Some(_)) => {
                ": heap arena bitmaps not in the snapshot (captured by an older gospy? \
                 capture again with --heap)"
            }
            (false, None) => ": the heap arena bitmap layout is unknown for this Go version",
        }
    }

    /// Pointer words of object `o` of a small-object span: exact when its
    /// mask is readable, 0 for noscan objects, [`PTRS_UNKNOWN`] for large
    /// objects (counts past u16) and unreadable masks. The census's count
    /// ("unknown, 48 B, 2 pointers") comes from here, as the graph's edges.
    pub fn pointer_count<M: Memory>(&mut self, mem: &M, o: &HeapObject) -> u16 {
        if o.noscan() {
            return 0;
        }
        if o.size_class() == 0 {
            return PTRS_UNKNOWN;
        }
        if self.arena.is_some() || (self.exact && o.size <= MIN_SIZE_FOR_HEADER) {
            // Bit-per-word masks: counted without building a mask.
            let mut v = std::mem::take(&mut self.scratch);
            v.clear();
            let ok = self.listed_words(mem, o, &mut v);
            let n = v.len() as u64;
            self.scratch = v;
            return match ok {
                Some(()) => n.min(u64::from(PTRS_UNKNOWN - 1)) as u16,
                None => PTRS_UNKNOWN,
            };
        }
        let n = match self.object(mem, o) {
            ObjectMask::Exact(v) => v.len() as u64,
            ObjectMask::Repeated { count, bits, .. } => {
                count.saturating_mul(bits.iter().filter(|b| **b).count() as u64)
            }
            ObjectMask::Unknown => return PTRS_UNKNOWN,
        };
        n.min(u64::from(PTRS_UNKNOWN - 1)) as u16
    }

    /// The pointer words of object `o` (not noscan).
    pub fn object<M: Memory>(&mut self, mem: &M, o: &HeapObject) -> ObjectMask {
        let small = o.size_class() != 0 && o.size <= MIN_SIZE_FOR_HEADER;
        if self.arena.is_some() || (self.exact && small) {
            let mut v = Vec::new();
            return match self.listed_words(mem, o, &mut v) {
                Some(()) => ObjectMask::Exact(v),
                None => ObjectMask::Unknown,
            };
        }
        if !self.exact {
            return ObjectMask::Unknown;
        }
        // Allocation header or span.largeType: nil means no pointers.
        let (start, len) = if o.size_class() != 0 {
            (8, o.size - 8)
        } else {
            (0, o.size)
        };
        if o.rtype == 0 {
            return ObjectMask::Exact(Vec::new());
        }
        let Some((size, bits)) = self.type_mask(mem, o.rtype) else {
            return ObjectMask::Unknown;
        };
        ObjectMask::Repeated {
            start,
            elem: size,
            count: len / size,
            bits,
        }
    }

    /// Appends to `out` the offsets of `o`'s pointer words from a bit-per-word
    /// mask: the heap arena bitmap (Go 1.19–1.21) or the span's heap bits
    /// (Go 1.22+, objects of at most 512 bytes). None when unreadable.
    fn listed_words<M: Memory>(
        &mut self,
        mem: &M,
        o: &HeapObject,
        out: &mut Vec<u64>,
    ) -> Option<()> {
        match self.arena.as_mut() {
            Some(ab) => ab.pointers(mem, o.addr, o.size.min(MAX_MASK_BYTES), out),
            None => self.span_bits(mem, o, out),
        }
    }

    /// Heap bits of a small object: one bit per word of its one-page span,
    /// at the span's end (before Green Tea's inline mark bits).
    fn span_bits<M: Memory>(&self, mem: &M, o: &HeapObject, out: &mut Vec<u64>) -> Option<()> {
        let base = o.addr & !(self.page - 1);
        let mut bits_at = base + self.page - self.page / 64;
        if self.green_tea && o.size >= 16 {
            // The inline mark bits end with the span class: a check that
            // this span really has them.
            let class = mem.u8(base + self.page - 1).ok()?;
            if class == o.spanclass {
                bits_at -= INLINE_MARK_BITS;
            }
        }
        let w0 = (o.addr - base) / 8;
        let n = o.size / 8;
        let first = (w0 / 8) as usize;
        let last = ((w0 + n).div_ceil(8)) as usize;
        let owned;
        let b = match mem.bytes_at(bits_at + first as u64, last - first) {
            Some(b) => b,
            None => {
                owned = mem.read_vec(bits_at + first as u64, last - first).ok()?;
                &owned[..]
            }
        };
        for w in 0..n {
            let k = w0 + w;
            if b[(k / 8) as usize - first] >> (k % 8) & 1 == 1 {
                out.push(w * 8);
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_repeat() {
        // 3 literal bits 101, then repeat the last 3 bits twice, end.
        let prog = [0x03, 0b101, 0x83, 0x02, 0x00];
        let m = gc_program(&prog, 12).unwrap();
        let want = [1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0].map(|b| b == 1);
        assert_eq!(m, want);
    }

    #[test]
    fn malformed() {
        assert!(gc_program(&[0x83, 0x02, 0x00], 8).is_none()); // repeat of nothing
        assert!(gc_program(&[0x05, 0xff], 8).is_none()); // no end
        assert!(gc_program(&[0x10, 0xff, 0xff, 0x00], 8).is_none()); // overrun
    }

    #[test]
    fn stackmap_rows() {
        let mut b = vec![];
        b.extend_from_slice(&2i32.to_le_bytes());
        b.extend_from_slice(&3i32.to_le_bytes());
        b.extend_from_slice(&[0b011, 0b100]);
        assert_eq!(stackmap_bits(&b, 1).unwrap(), vec![false, false, true]);
        assert!(stackmap_bits(&b, 2).is_none());
    }
}
