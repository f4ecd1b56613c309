//! The one reader of a Go map's memory: the old `hmap` (Go ≤ 1.23 and
//! `GOEXPERIMENT=noswissmap` builds: buckets, overflow chains, old buckets
//! while growing) and Swiss tables (Go 1.24+: a directory of tables of
//! groups, or a single group for small maps).
//!
//! Two layers, so that every consumer shares what a map looks like:
//! - part decoders ([`MapGeom::header`], [`MapGeom::live_slots`],
//!   [`MapGeom::overflow`], [`MapGeom::table_groups`], [`dir_tables`]) read
//!   one part through [`Part`] (a buffer already read, or [`At`] memory).
//!   Walks that read in rounds (capture's reach walk and label walk) use
//!   them directly: each part they queue is one of these, so they keep
//!   asking for memory part by part, breadth-first.
//! - [`walk`]: the synchronous iterator over every live slot (`var`,
//!   labels), through a caller's [`Visit`] that reads (with its own budget)
//!   and decides what a failed read means.
//!
//! Every walk is bounded: entry and bucket caps ([`Limits`]), table and
//! directory sizes checked, address arithmetic checked; bad pointers give a
//! [`Fault`], never a panic or a hang.

use crate::memory::Memory;
use std::collections::HashSet;
use std::ops::ControlFlow;

/// Old hmap: tophash values below this mark empty or evacuated slots.
pub const MIN_TOP_HASH: u8 = 5;
/// Old hmap flag: the map is growing to a table of the same size.
pub const SAME_SIZE_GROW: u8 = 8;
/// Slots per bucket (hmap) or group (Swiss).
pub const SLOTS: u64 = 8;
/// Largest Swiss directory or table (groups) gospy follows.
pub const MAX_SWISS: u64 = 1 << 24;

/// Where a map's header fields, buckets/groups and slots are: offsets only,
/// no types (a `gotypes::MapLayout` without its key and elem types).
#[derive(Debug, Clone)]
pub struct MapGeom {
    pub header_size: u64,
    pub key_base: u64,
    pub key_stride: u64,
    pub elem_base: u64,
    pub elem_stride: u64,
    pub imp: MapImpl,
}

/// Where a map implementation keeps its header fields and buckets/groups
/// (offsets from DWARF by field name, see `gotypes::Types::map_layout`).
#[derive(Debug, Clone)]
pub enum MapImpl {
    /// `runtime.hmap`; buckets `{tophash [8]uint8; keys; elems; overflow}`.
    Hmap {
        count: u64,
        flags: u64,
        b: u64,
        buckets: u64,
        oldbuckets: u64,
        bucket_size: u64,
        tophash: u64,
        overflow: u64,
    },
    /// `internal/runtime/maps.Map`: a directory of tables of groups.
    Swiss {
        used: u64,
        dir_ptr: u64,
        dir_len: u64,
        table_size: u64,
        /// `table.groups.data` / `table.groups.lengthMask`.
        groups_data: u64,
        length_mask: u64,
        group_size: u64,
        ctrl: u64,
    },
}

/// `map[string]string` as an old hmap. Fixed rather than looked up: pprof
/// label maps are decoded on stripped executables too (no DWARF, and the
/// per-version layout tables describe no map types), and they are hmaps only
/// up to Go 1.23, whose hmap (`count@0 flags@8 B@9 buckets@16
/// oldbuckets@24`, 48 bytes) and 16-byte string slots never changed on
/// amd64. Bucket: `tophash [8]uint8, keys [8]string, elems [8]string,
/// overflow`.
pub const STRING_STRING_HMAP: MapGeom = MapGeom {
    header_size: 48,
    key_base: 8,
    key_stride: 16,
    elem_base: 8 + 8 * 16,
    elem_stride: 16,
    imp: MapImpl::Hmap {
        count: 0,
        flags: 8,
        b: 9,
        buckets: 16,
        oldbuckets: 24,
        bucket_size: 8 + 8 * 16 + 8 * 16 + 8,
        tophash: 0,
        overflow: 8 + 8 * 16 + 8 * 16,
    },
};

/// The bytes of one map part, read field by field; a field that cannot be
/// read is `None`.
pub trait Part {
    fn u8_at(&self, off: u64) -> Option<u8>;
    fn u64_at(&self, off: u64) -> Option<u64>;
}

impl Part for [u8] {
    fn u8_at(&self, off: u64) -> Option<u8> {
        self.get(usize::try_from(off).ok()?).copied()
    }
    fn u64_at(&self, off: u64) -> Option<u64> {
        let o = usize::try_from(off).ok()?;
        let s = self.get(o..o.checked_add(8)?)?;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }
}

/// A part in memory at an address.
pub struct At<'m, M: ?Sized>(pub &'m M, pub u64);

impl<M: Memory + ?Sized> Part for At<'_, M> {
    fn u8_at(&self, off: u64) -> Option<u8> {
        self.0.u8(self.1.checked_add(off)?).ok()
    }
    fn u64_at(&self, off: u64) -> Option<u64> {
        self.0.u64(self.1.checked_add(off)?).ok()
    }
}

/// A map header's fields (unreadable fields are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// `count`, log2 of the bucket count, `flags`, the bucket arrays.
    Hmap {
        count: u64,
        b: u8,
        flags: u8,
        buckets: u64,
        oldbuckets: u64,
    },
    /// `used`, `dirPtr` (a group when `dir_len` is 0), `dirLen`.
    Swiss {
        used: u64,
        dir_ptr: u64,
        dir_len: u64,
    },
}

impl Header {
    /// Entries the map says it holds.
    pub fn count(&self) -> u64 {
        match *self {
            Header::Hmap { count, .. } => count,
            Header::Swiss { used, .. } => used,
        }
    }

    /// Old hmap: how many buckets the current and the old array have (an
    /// old array is half the size unless growing to the same size).
    pub fn bucket_counts(&self) -> (u64, u64) {
        let Header::Hmap { b, flags, .. } = *self else {
            return (0, 0);
        };
        let nb = 1u64.checked_shl(b.into()).unwrap_or(0);
        let old_nb = if flags & SAME_SIZE_GROW != 0 {
            nb
        } else {
            nb / 2
        };
        (nb, old_nb)
    }

    /// Old hmap: `(array, buckets)` of the current and the old bucket
    /// array, leaving out arrays at address 0.
    pub fn bucket_arrays(&self) -> Vec<(u64, u64)> {
        let Header::Hmap {
            buckets,
            oldbuckets,
            ..
        } = *self
        else {
            return Vec::new();
        };
        let (nb, old_nb) = self.bucket_counts();
        [(buckets, nb), (oldbuckets, old_nb)]
            .into_iter()
            .filter(|&(a, n)| a != 0 && n > 0)
            .collect()
    }
}

impl MapGeom {
    /// Size of one bucket (hmap) or group (Swiss).
    pub fn bucket_size(&self) -> u64 {
        match self.imp {
            MapImpl::Hmap { bucket_size, .. } => bucket_size,
            MapImpl::Swiss { group_size, .. } => group_size,
        }
    }

    /// Offset of slot `i`'s key in its bucket/group.
    pub fn key_off(&self, i: u64) -> u64 {
        self.key_base + i * self.key_stride
    }

    /// Offset of slot `i`'s elem in its bucket/group.
    pub fn elem_off(&self, i: u64) -> u64 {
        self.elem_base + i * self.elem_stride
    }

    pub fn header(&self, h: &(impl Part + ?Sized)) -> Header {
        match self.imp {
            MapImpl::Hmap {
                count,
                flags,
                b,
                buckets,
                oldbuckets,
                ..
            } => Header::Hmap {
                count: h.u64_at(count).unwrap_or(0),
                b: h.u8_at(b).unwrap_or(0),
                flags: h.u8_at(flags).unwrap_or(0),
                buckets: h.u64_at(buckets).unwrap_or(0),
                oldbuckets: h.u64_at(oldbuckets).unwrap_or(0),
            },
            MapImpl::Swiss {
                used,
                dir_ptr,
                dir_len,
                ..
            } => Header::Swiss {
                used: h.u64_at(used).unwrap_or(0),
                dir_ptr: h.u64_at(dir_ptr).unwrap_or(0),
                dir_len: h.u64_at(dir_len).unwrap_or(0),
            },
        }
    }

    /// The slots of a bucket/group that hold an entry, as a bit mask (bit
    /// `i`: slot `i`). Hmap: tophash at least [`MIN_TOP_HASH`] (an
    /// unreadable tophash counts as empty); Swiss: control byte with the
    /// high bit clear (an unreadable control word: no slot).
    pub fn live_slots(&self, b: &(impl Part + ?Sized)) -> u8 {
        let mut live = 0u8;
        match self.imp {
            MapImpl::Hmap { tophash, .. } => {
                for s in 0..SLOTS {
                    if b.u8_at(tophash + s).unwrap_or(0) >= MIN_TOP_HASH {
                        live |= 1 << s;
                    }
                }
            }
            MapImpl::Swiss { ctrl, .. } => {
                if let Some(c) = b.u64_at(ctrl) {
                    for s in 0..SLOTS {
                        if (c >> (8 * s)) & 0x80 == 0 {
                            live |= 1 << s;
                        }
                    }
                }
            }
        }
        live
    }

    /// Old hmap: the next bucket of the chain (0: none).
    pub fn overflow(&self, b: &(impl Part + ?Sized)) -> u64 {
        match self.imp {
            MapImpl::Hmap { overflow, .. } => b.u64_at(overflow).unwrap_or(0),
            MapImpl::Swiss { .. } => 0,
        }
    }

    /// Swiss table: its groups array and number of groups, when plausible.
    pub fn table_groups(&self, t: &(impl Part + ?Sized)) -> Option<(u64, u64)> {
        let MapImpl::Swiss {
            groups_data,
            length_mask,
            ..
        } = self.imp
        else {
            return None;
        };
        let data = t.u64_at(groups_data).unwrap_or(0);
        let mask = t.u64_at(length_mask).unwrap_or(u64::MAX);
        (data != 0 && mask < MAX_SWISS).then(|| (data, mask + 1))
    }

    /// Swiss: size of one table.
    pub fn table_size(&self) -> u64 {
        match self.imp {
            MapImpl::Swiss { table_size, .. } => table_size,
            MapImpl::Hmap { .. } => 0,
        }
    }
}

/// The distinct non-nil table pointers of a Swiss directory of `n` entries
/// (entries repeat when a table's local depth is below the global depth).
pub fn dir_tables(dir: &(impl Part + ?Sized), n: u64) -> Vec<u64> {
    let mut seen = HashSet::new();
    (0..n)
        .map(|j| dir.u64_at(j * 8).unwrap_or(0))
        .filter(|&tp| tp != 0 && seen.insert(tp))
        .collect()
}

/// Bounds of one [`walk`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries visited at most.
    pub max_entries: u64,
    /// Old hmap: buckets (overflow buckets included) read at most.
    pub max_buckets: u64,
    /// Old hmap: stop at a bucket reached twice.
    pub detect_cycles: bool,
}

/// Which part a [`Fault`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Bucket,
    Dir,
    Table,
    Group,
}

/// A part [`walk`] could not read.
#[derive(Debug)]
pub enum Fault<E> {
    /// The caller's read failed.
    Read(PartKind, E),
    /// `base + offset` overflows the address space.
    Overflow(u64, u64),
}

/// Why [`walk`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every bucket/group was visited.
    Done,
    /// `max_entries` reached.
    Entries,
    /// `max_buckets` exceeded.
    Buckets,
    /// A bucket reached twice (with `detect_cycles`).
    Cycle(u64),
    /// [`Visit::fault`] broke off the walk.
    Stopped,
}

/// What [`walk`] asks of its caller.
pub trait Visit {
    type Err;
    /// The `len` bytes at `addr` (the caller's budget applies).
    fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Self::Err>;
    /// A part could not be read: `Continue` skips it (a bucket's whole
    /// overflow chain), `Break` ends the walk.
    fn fault(&mut self, f: Fault<Self::Err>) -> ControlFlow<()>;
    /// Slot `slot` of the bucket/group at `base` (whose bytes are `b`)
    /// holds an entry.
    fn entry(&mut self, b: &[u8], base: u64, slot: u64);
}

/// Visit every live slot of the map whose header is `h`, in the runtime's
/// memory order: hmap buckets (each with its overflow chain) then old
/// buckets; Swiss directory tables (all read first) then their groups.
pub fn walk<V: Visit>(g: &MapGeom, h: &Header, lim: &Limits, v: &mut V) -> End {
    let mut n = 0u64;
    match *h {
        Header::Hmap { .. } => walk_hmap(g, h, lim, v, &mut n),
        Header::Swiss {
            dir_ptr, dir_len, ..
        } => walk_swiss(g, dir_ptr, dir_len, lim, v, &mut n),
    }
}

fn add<E>(a: u64, b: u64) -> Result<u64, Fault<E>> {
    a.checked_add(b).ok_or(Fault::Overflow(a, b))
}

/// Slots of one bucket/group; true when `max_entries` is reached.
fn entries<V: Visit>(
    g: &MapGeom,
    b: &[u8],
    base: u64,
    lim: &Limits,
    v: &mut V,
    n: &mut u64,
) -> bool {
    let live = g.live_slots(b);
    for s in 0..SLOTS {
        if live & (1 << s) == 0 {
            continue;
        }
        v.entry(b, base, s);
        *n += 1;
        if *n >= lim.max_entries {
            return true;
        }
    }
    false
}

fn walk_hmap<V: Visit>(g: &MapGeom, h: &Header, lim: &Limits, v: &mut V, n: &mut u64) -> End {
    let bs = g.bucket_size();
    let mut visits = 0u64;
    let mut seen = HashSet::new();
    for (arr, count) in h.bucket_arrays() {
        for i in 0..count {
            let mut bk = match add(arr, i.saturating_mul(bs)) {
                Ok(a) => a,
                Err(f) => {
                    // Counted as a visit: a bad array must not spin.
                    visits += 1;
                    if visits > lim.max_buckets {
                        return End::Buckets;
                    }
                    match v.fault(f) {
                        ControlFlow::Continue(()) => continue,
                        ControlFlow::Break(()) => return End::Stopped,
                    }
                }
            };
            while bk != 0 {
                visits += 1;
                if visits > lim.max_buckets {
                    return End::Buckets;
                }
                if *n >= lim.max_entries {
                    return End::Entries;
                }
                if lim.detect_cycles && !seen.insert(bk) {
                    return End::Cycle(bk);
                }
                let b = match v.read(bk, bs) {
                    Ok(b) => b,
                    Err(e) => match v.fault(Fault::Read(PartKind::Bucket, e)) {
                        ControlFlow::Continue(()) => break,
                        ControlFlow::Break(()) => return End::Stopped,
                    },
                };
                if entries(g, &b, bk, lim, v, n) {
                    return End::Entries;
                }
                bk = g.overflow(&b[..]);
            }
        }
    }
    End::Done
}

fn walk_swiss<V: Visit>(
    g: &MapGeom,
    dir_ptr: u64,
    dir_len: u64,
    lim: &Limits,
    v: &mut V,
    n: &mut u64,
) -> End {
    // (groups array, number of groups); a small map (dirLen 0) is a single
    // group.
    let mut arrays: Vec<(u64, u64)> = Vec::new();
    if dir_len == 0 {
        if dir_ptr != 0 {
            arrays.push((dir_ptr, 1));
        }
    } else {
        match v.read(dir_ptr, dir_len.saturating_mul(8)) {
            Ok(dir) => {
                for tp in dir_tables(&dir[..], dir_len) {
                    match v.read(tp, g.table_size()) {
                        Ok(tb) => arrays.extend(g.table_groups(&tb[..])),
                        Err(e) => {
                            if v.fault(Fault::Read(PartKind::Table, e)).is_break() {
                                return End::Stopped;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                if v.fault(Fault::Read(PartKind::Dir, e)).is_break() {
                    return End::Stopped;
                }
            }
        }
    }
    let gs = g.bucket_size();
    for (data, count) in arrays {
        for gi in 0..count {
            if *n >= lim.max_entries {
                return End::Entries;
            }
            let r = add(data, gi * gs).and_then(|ga| {
                v.read(ga, gs)
                    .map(|b| (ga, b))
                    .map_err(|e| Fault::Read(PartKind::Group, e))
            });
            match r {
                Ok((ga, b)) => {
                    if entries(g, &b, ga, lim, v, n) {
                        return End::Entries;
                    }
                }
                Err(f) => {
                    if v.fault(f).is_break() {
                        return End::Stopped;
                    }
                }
            }
        }
    }
    End::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SparseMemory;
    use std::sync::Arc;

    struct Collect<'m> {
        mem: &'m SparseMemory,
        got: Vec<(u64, u64)>,
        faults: usize,
    }

    impl Visit for Collect<'_> {
        type Err = ();
        fn read(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, ()> {
            self.mem.read_vec(addr, len as usize).map_err(|_| ())
        }
        fn fault(&mut self, _: Fault<()>) -> ControlFlow<()> {
            self.faults += 1;
            ControlFlow::Continue(())
        }
        fn entry(&mut self, b: &[u8], base: u64, slot: u64) {
            let g = &STRING_STRING_HMAP;
            self.got
                .push((base + g.key_off(slot), b.u64_at(g.key_off(slot)).unwrap()));
        }
    }

    /// A two-bucket string map whose first bucket chains to an overflow
    /// bucket that chains back to itself.
    fn sample(cyclic: bool) -> (SparseMemory, Header) {
        let g = &STRING_STRING_HMAP;
        let bs = g.bucket_size() as usize;
        let (arr, ovf) = (0x10000u64, 0x20000u64);
        let mut buckets = vec![0u8; 2 * bs];
        buckets[0] = 9; // slot 0 of bucket 0
        buckets[8..16].copy_from_slice(&1u64.to_le_bytes());
        buckets[bs + 3] = 7; // slot 3 of bucket 1
        buckets[bs + 8 + 3 * 16..bs + 8 + 3 * 16 + 8].copy_from_slice(&2u64.to_le_bytes());
        buckets[bs - 8..bs].copy_from_slice(&ovf.to_le_bytes());
        let mut o = vec![0u8; bs];
        o[1] = 6;
        o[8 + 16..8 + 24].copy_from_slice(&3u64.to_le_bytes());
        if cyclic {
            o[bs - 8..].copy_from_slice(&ovf.to_le_bytes());
        }
        let mem = SparseMemory::new(vec![(arr, Arc::from(buckets)), (ovf, Arc::from(o))]);
        let h = Header::Hmap {
            count: 3,
            b: 1,
            flags: 0,
            buckets: arr,
            oldbuckets: 0,
        };
        (mem, h)
    }

    #[test]
    fn hmap_order_and_caps() {
        let (mem, h) = sample(false);
        let lim = Limits {
            max_entries: 100,
            max_buckets: 100,
            detect_cycles: true,
        };
        let mut c = Collect {
            mem: &mem,
            got: Vec::new(),
            faults: 0,
        };
        assert_eq!(walk(&STRING_STRING_HMAP, &h, &lim, &mut c), End::Done);
        let keys: Vec<u64> = c.got.iter().map(|e| e.1).collect();
        assert_eq!(keys, vec![1, 3, 2]);
        let mut c = Collect {
            mem: &mem,
            got: Vec::new(),
            faults: 0,
        };
        let two = Limits {
            max_entries: 2,
            ..lim
        };
        assert_eq!(walk(&STRING_STRING_HMAP, &h, &two, &mut c), End::Entries);
        assert_eq!(c.got.len(), 2);
    }

    #[test]
    fn hmap_cycles_and_bad_pointers_end() {
        let (mem, h) = sample(true);
        let lim = Limits {
            max_entries: 1000,
            max_buckets: 1000,
            detect_cycles: true,
        };
        let mut c = Collect {
            mem: &mem,
            got: Vec::new(),
            faults: 0,
        };
        assert_eq!(
            walk(&STRING_STRING_HMAP, &h, &lim, &mut c),
            End::Cycle(0x20000)
        );
        let no_detect = Limits {
            max_entries: u64::MAX,
            detect_cycles: false,
            ..lim
        };
        assert_eq!(
            walk(&STRING_STRING_HMAP, &h, &no_detect, &mut c),
            End::Buckets
        );
        let bad = Header::Hmap {
            count: 1,
            b: 63,
            flags: 0,
            buckets: u64::MAX - 8,
            oldbuckets: 0,
        };
        let small = Limits {
            max_buckets: 10,
            ..lim
        };
        let mut c = Collect {
            mem: &mem,
            got: Vec::new(),
            faults: 0,
        };
        assert_eq!(
            walk(&STRING_STRING_HMAP, &bad, &small, &mut c),
            End::Buckets
        );
        assert!(c.faults > 0);
    }
}
