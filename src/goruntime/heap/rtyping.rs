//! Typing without DWARF (`-s -w` builds): where the runtime's own type
//! descriptors can be found next to the values they describe.
//!
//! - **Interfaces.** An `eface` is `{*_type, data}`, an `iface` `{*itab,
//!   data}` with the dynamic type at `itab._type` (`abi.ITab.Type`, @8 in
//!   every version). A word pair whose first word is a type descriptor of
//!   the module (in `[moduledata.types, etypes)`), or an itab (its
//!   interface type and dynamic type both descriptors, and its `hash` equal
//!   to the dynamic type's `Hash`), is an interface value. Its data word is
//!   the value itself when the type is direct-iface (pointer-shaped: a
//!   pointer, map, chan, func, one-pointer struct or array), else it points
//!   to the value's heap object. Searched in `.data`/`.bss` (where their
//!   GC programs say the data word is a pointer), in every goroutine's used
//!   stack, and in heap objects no other path typed.
//! - **Channels.** An untyped heap object laid out as a `runtime.hchan`
//!   (its `elemtype` a descriptor whose size is its `elemsize`, its `buf`
//!   where `makechan` puts it for that element type, `qcount <= dataqsiz`,
//!   `closed` 0 or 1) is one; its buffer gets the element type.
//!
//! A candidate is accepted only when the object it names agrees with the
//! descriptor: the data word is the object's start, the type's size fits the
//! object's size class, and the type has pointers exactly when the object's
//! span is scanned. Maps reached through a typed value (an interface whose
//! dynamic type is a map, a struct field) are laid out by the map type's
//! bucket/group descriptor (`Types::map_layout`). Everything found here is
//! handed to the same propagation as the DWARF path
//! ([`super::typing`]), which names objects by the same rules.

use super::objects::{HeapObjects, MIN_SIZE_FOR_HEADER};
use crate::goruntime::gotypes::{FxHashMap, TKind, Ty, Types};
use crate::goruntime::walk::{Obj, ITAB_TYPE};
use crate::goruntime::{Runtime, Target};
use crate::memory::Memory;

/// Largest goroutine stack searched.
const MAX_STACK: u64 = 1 << 30;
/// Largest module section searched.
const MAX_SECTION: u64 = 1 << 32;
/// Largest heap object searched for interfaces.
const MAX_OBJECT: u64 = 64 << 20;
/// Most bytes of untyped heap objects searched in all.
const MAX_HEAP_BYTES: u64 = 16 << 30;
/// Most distinct words outside the module image checked as itabs (each a
/// memory read; runtime-built itabs are few).
const MAX_ITAB_CANDIDATES: usize = 1 << 20;
/// `abi.Type` field offsets (every version, linux/amd64).
const T_PTRBYTES: u64 = 8;
const T_HASH: u64 = 16;
const T_KIND: u64 = 23;
const KIND_INTERFACE: u8 = 20;
/// `abi.ITab.Hash`.
const ITAB_HASH: u64 = 16;

/// A value found: `obj` at `addr`.
pub type Seed = (u64, Obj);

/// Index of the object holding `addr`.
fn find(objs: &HeapObjects, addr: u64) -> Option<usize> {
    super::words::find_object(objs, addr).map(|i| i as usize)
}

/// Where object `i`'s data starts: after its allocation header, if it has
/// one (as `typing::data_start`, which this file cannot import).
fn data_start(objs: &HeapObjects, i: usize) -> u64 {
    let o = &objs.objects[i];
    let header = objs.headers && !o.noscan() && o.size_class() != 0 && o.size > MIN_SIZE_FOR_HEADER;
    o.addr + if header { 8 } else { 0 }
}

/// Where interface values and channels are recognised, with caches.
pub struct Finder<'o> {
    objs: &'o HeapObjects,
    /// Runtime addresses of the module's type descriptors.
    types_lo: u64,
    types_hi: u64,
    /// The module image (itabs the linker wrote live there).
    image_lo: u64,
    image_hi: u64,
    /// Bounds of the heap objects: a word in them is no itab.
    heap_lo: u64,
    heap_hi: u64,
    /// Type word → dynamic type, for itab candidates and descriptors.
    dyn_cache: FxHashMap<u64, Option<u64>>,
    /// Accepted candidates, and those rejected by their object.
    pub found: u64,
    pub rejected: u64,
}

impl<'o> Finder<'o> {
    pub fn new(t: &Target, objs: &'o HeapObjects) -> Finder<'o> {
        let md = &t.bin.moduledata;
        Finder {
            objs,
            types_lo: t.rt(md.types),
            types_hi: t.rt(md.etypes),
            image_lo: t.rt(md.text.min(md.types).min(md.noptrdata)),
            image_hi: t.rt(md.end),
            heap_lo: objs.objects.first().map_or(0, |o| o.addr),
            heap_hi: objs
                .objects
                .last()
                .map_or(0, |o| o.addr.saturating_add(o.size)),
            dyn_cache: FxHashMap::default(),
            found: 0,
            rejected: 0,
        }
    }

    fn is_type(&self, w: u64) -> bool {
        w >= self.types_lo && w < self.types_hi && w % 8 == 0
    }

    /// The dynamic type of the interface whose type word is `w`.
    fn dynamic<M: Memory>(&mut self, mem: &M, w: u64) -> Option<u64> {
        if w < 4096 || w % 8 != 0 {
            return None;
        }
        // An itab: in the module image (the linker may place it among the
        // type descriptors), or runtime-built (persistentalloc, never in the
        // heap). A descriptor starts with its size, never a descriptor's
        // address.
        let in_image = w >= self.image_lo && w < self.image_hi;
        if !in_image && w >= self.heap_lo && w < self.heap_hi {
            return None;
        }
        if let Some(&hit) = self.dyn_cache.get(&w) {
            return hit;
        }
        if !in_image && self.dyn_cache.len() >= MAX_ITAB_CANDIDATES {
            return None;
        }
        let r = (|| {
            let w0 = mem.u64(w).ok()?;
            if self.is_type(w) && !self.is_type(w0) {
                return self.descriptor(mem, w).then_some(w);
            }
            let (inter, typ) = (w0, mem.u64(w + ITAB_TYPE).ok()?);
            if !self.descriptor(mem, inter) || !self.descriptor(mem, typ) {
                return None;
            }
            if mem.u8(inter + T_KIND).ok()? & 0x1f != KIND_INTERFACE {
                return None;
            }
            let h = mem.u32(w + ITAB_HASH).ok()?;
            (h == mem.u32(typ + T_HASH).ok()?).then_some(typ)
        })();
        self.dyn_cache.insert(w, r);
        r
    }

    /// Whether `w` is plausibly the start of a type descriptor of the
    /// module: in its types range, a known kind, alignments of 1 to 8,
    /// pointer bytes within the size, its name in the types range.
    pub fn descriptor<M: Memory>(&self, mem: &M, w: u64) -> bool {
        let mut b = [0u8; 48];
        if !self.is_type(w) || mem.read_exact(w, &mut b).is_err() {
            return false;
        }
        let size = super::bytes::le64(&b, 0);
        let ptrs = super::bytes::le64(&b, T_PTRBYTES);
        let (align, field_align, kind) = (b[21], b[22], b[T_KIND as usize] & 0x1f);
        let name_off = i32::from_le_bytes([b[40], b[41], b[42], b[43]]);
        let name = self.types_lo.wrapping_add(name_off as i64 as u64);
        let fixed = match kind {
            18 | 19 | 21 | 22 | 26 => size == 8,
            20 | 24 => size == 16,
            23 => size == 24,
            // An array's size is its length times its element's.
            17 => {
                let (elem, len) = (super::bytes::le64(&b, 48), mem.u64(w + 64).unwrap_or(0));
                self.is_type(elem)
                    && mem
                        .u64(elem)
                        .is_ok_and(|es| es.checked_mul(len) == Some(size))
            }
            // A struct's fields: a plausible count, inside the types range.
            25 => {
                let (fields, n) = (mem.u64(w + 56).unwrap_or(0), mem.u64(w + 64).unwrap_or(0));
                n <= 1 << 12 && (n == 0 || self.is_type(fields))
            }
            _ => true,
        };
        (1..=26).contains(&kind)
            && fixed
            && [1, 2, 4, 8].contains(&align)
            && [1, 2, 4, 8].contains(&field_align)
            && size < 1 << 40
            && ptrs <= size
            && ptrs % 8 == 0
            && name_off > 0
            && self.is_type(name & !7)
    }

    /// The interface value whose type word is `w0` and whose data word,
    /// at `data_at`, is `w1`, if it is one whose value can be walked.
    fn interface<M: Memory>(
        &mut self,
        types: &mut Types,
        mem: &M,
        data_at: u64,
        w0: u64,
        w1: u64,
    ) -> Option<Seed> {
        if w1 < 4096 {
            return None;
        }
        let rtype = self.dynamic(mem, w0)?;
        let (ty, direct) = types.dynamic_type(mem, rtype).ok()?;
        let desc = types.desc(mem, ty)?;
        if matches!(desc.kind, TKind::Unknown(_)) {
            return None;
        }
        let i = find(self.objs, w1)?;
        let start = data_start(self.objs, i);
        if direct {
            // The data word is the value: a pointer into the heap. A pointer
            // to an object's start must fit the pointed-to type.
            if let TKind::Pointer(Some(elem)) = desc.kind {
                if w1 == start {
                    let size = types.size_of(mem, elem)?;
                    let elem_ptrs = match elem {
                        Ty::Rt(a) => mem.u64(a + T_PTRBYTES).ok(),
                        Ty::Dwarf(_) => None,
                    };
                    if !self.fits(i, size, elem_ptrs) {
                        self.rejected += 1;
                        return None;
                    }
                }
            }
            self.found += 1;
            return Some((data_at, Obj::Value(ty)));
        }
        let ptrs = mem.u64(rtype + T_PTRBYTES).ok()?;
        if w1 != start || !self.fits(i, desc.size, Some(ptrs)) {
            self.rejected += 1;
            return None;
        }
        self.found += 1;
        Some((w1, Obj::Value(ty)))
    }

    /// Whether heap object `i` can hold one value of `size` bytes (with
    /// `ptrs` pointer bytes, when known): the smallest size class for it,
    /// scanned exactly when the type has pointers.
    fn fits(&self, i: usize, size: u64, ptrs: Option<u64>) -> bool {
        let o = &self.objs.objects[i];
        let payload = o.size - (data_start(self.objs, i) - o.addr);
        size > 0
            && size <= payload
            && (o.size_class() == 0 || payload <= size + size / 4 + 16)
            && ptrs.map_or(true, |p| (p == 0) == o.noscan())
    }

    /// Interface values in `bytes` (read at `base`); `mask(k)` says whether
    /// word `k` may hold a pointer (the GC's masks mark an interface's data
    /// word only: its type word points to static data).
    ///
    /// `spilled`: a stack, where the compiler spills an interface's two
    /// words to slots of its choosing (register ABI): the data word may
    /// also be the word before the type word.
    #[allow(clippy::too_many_arguments)]
    fn scan<M: Memory>(
        &mut self,
        types: &mut Types,
        mem: &M,
        base: u64,
        bytes: &[u8],
        mask: impl Fn(usize) -> bool,
        spilled: bool,
        out: &mut Vec<Seed>,
    ) {
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let at = |k: usize| base + 8 * k as u64;
        for k in 0..words.len() {
            let w0 = words[k];
            if w0 < 4096 || w0 % 8 != 0 {
                continue;
            }
            let mut hit = None;
            if k + 1 < words.len() && mask(k + 1) {
                hit = self.interface(types, mem, at(k + 1), w0, words[k + 1]);
            }
            if hit.is_none() && spilled && k > 0 {
                hit = self.interface(types, mem, at(k - 1), w0, words[k - 1]);
            }
            out.extend(hit);
        }
    }

    /// Interface values in the module's `.data` and `.bss` (data word a
    /// pointer by the section's GC program, when readable).
    pub fn globals<M: Memory>(
        &mut self,
        t: &Target,
        types: &mut Types,
        mem: &M,
        out: &mut Vec<Seed>,
    ) {
        let md = &t.bin.moduledata;
        for (bss, lo, hi) in [(false, md.data, md.edata), (true, md.bss, md.ebss)] {
            if hi <= lo || hi - lo > MAX_SECTION {
                continue;
            }
            let Ok(bytes) = mem.read_vec(t.rt(lo), (hi - lo) as usize) else {
                continue;
            };
            let mask = super::ptrmask::section_mask(t, mem, bss);
            let m = |k: usize| {
                mask.as_ref()
                    .map_or(true, |m| m.get(k).copied().unwrap_or(false))
            };
            self.scan(types, mem, t.rt(lo), &bytes, m, false, out);
        }
    }

    /// Interface values in every live goroutine's used stack.
    pub fn stacks<M: Memory>(
        &mut self,
        t: &Target,
        types: &mut Types,
        mem: &M,
        out: &mut Vec<Seed>,
    ) {
        let rt = Runtime::new(t, mem);
        let Ok(gaddrs) = rt.allg_addrs() else {
            return;
        };
        for a in gaddrs {
            let Ok(g) = rt.read_g(a) else { continue };
            if g.is_dead() {
                continue;
            }
            let (lo, hi) = (g.sched_sp & !7, g.stack_hi);
            if lo < g.stack_lo || lo >= hi || hi - lo > MAX_STACK {
                continue;
            }
            let Ok(bytes) = mem.read_vec(lo, ((hi - lo) & !7) as usize) else {
                continue;
            };
            self.scan(types, mem, lo, &bytes, |_| true, true, out);
        }
    }

    /// Interface values in heap objects still untyped (`untyped[i]`) that
    /// have pointers.
    pub fn heap<M: Memory>(
        &mut self,
        types: &mut Types,
        mem: &M,
        untyped: &[bool],
        out: &mut Vec<Seed>,
    ) {
        let mut budget = MAX_HEAP_BYTES;
        let objs = self.objs;
        for (i, o) in objs.objects.iter().enumerate() {
            if !untyped[i] || o.noscan() || o.ptrs == 0 || o.size > MAX_OBJECT {
                continue;
            }
            let Some(b) = budget.checked_sub(o.size) else {
                break;
            };
            budget = b;
            let start = data_start(objs, i);
            let Ok(bytes) = mem.read_vec(start, (o.size - (start - o.addr)) as usize) else {
                continue;
            };
            self.scan(types, mem, start, &bytes, |_| true, false, out);
        }
    }

    /// Untyped heap objects laid out as a `runtime.hchan`: their index
    /// and the channel header value.
    pub fn channels<M: Memory>(
        &mut self,
        t: &Target,
        types: &mut Types,
        mem: &M,
        untyped: &[bool],
        out: &mut Vec<Seed>,
    ) {
        let Some(cl) = types.chan_layout() else {
            return;
        };
        let elemtype = if t.bin.go.at_least(1, 23) { 40 } else { 32 };
        let hsize = cl.size;
        let objs = self.objs;
        for (i, o) in objs.objects.iter().enumerate() {
            if !untyped[i] || o.size < hsize || data_start(objs, i) != o.addr {
                continue;
            }
            // `buf` first: the hchan itself (no buffer), right after it
            // (pointer-free elements), or another heap object.
            let Ok(buf) = mem.u64(o.addr + cl.buf) else {
                continue;
            };
            let separate = !o.noscan() && o.size < 2 * hsize;
            if buf != o.addr + cl.buf && buf != o.addr + hsize && !separate {
                continue;
            }
            let Ok(b) = mem.read_vec(o.addr, hsize as usize) else {
                continue;
            };
            let w = |off: u64| super::bytes::le64(&b, off);
            let (qcount, size, buf, et) = (w(0), w(8), w(16), w(elemtype));
            let esize = w(24) & 0xffff;
            let closed = (w(24) >> 32) & 0xffff_ffff;
            if !self.descriptor(mem, et) || closed > 1 || qcount > size || size > 1 << 40 {
                continue;
            }
            let Some(d) = types.desc(mem, Ty::Rt(et)) else {
                continue;
            };
            if d.size != esize || matches!(d.kind, TKind::Unknown(_)) {
                continue;
            }
            let Ok(ptrs) = mem.u64(et + T_PTRBYTES) else {
                continue;
            };
            let bytes = size * esize;
            let ok = if bytes == 0 {
                buf == o.addr + cl.buf && o.size < 2 * hsize
            } else if ptrs == 0 {
                buf == o.addr + hsize && o.noscan() && o.size >= hsize + bytes
            } else {
                !o.noscan()
                    && o.size < 2 * hsize
                    && find(objs, buf).is_some_and(|j| {
                        let bo = &objs.objects[j];
                        data_start(objs, j) == buf && bo.size >= bytes && !bo.noscan()
                    })
            };
            if ok {
                self.found += 1;
                out.push((o.addr, Obj::ChanHdr(types.from_runtime(et))));
            }
        }
    }
}
