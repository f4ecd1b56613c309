//! The heap's pointer graph: object index → the objects it points to, and
//! root → the objects it points to, as two compact CSR tables.
//!
//! Nodes are the objects of [`HeapObjects`] (sorted by address, indexed as
//! there) and the named roots of [`super::roots`]. An edge `a → b` means a
//! word of `a` holds an address inside `b` (interior pointers count, as the
//! GC's `findObject` does).
//!
//! Which words are pointers (`ptrmask`): objects of `noscan` spans have
//! none. Go 1.22+: small objects (<= 512 B) by the span's heap bits, objects
//! with an allocation header or a large span by their type's GCData mask,
//! repeated over the object (an array of the type), as the GC's
//! `typePointers` does. Go 1.19–1.21: every object by the heap arena
//! pointer bitmaps (`arenabits.rs`), as `scanobject` reads them. Where no
//! exact mask exists (bitmaps missing from an older snapshot, GC programs,
//! unreadable type descriptors) the object is scanned **conservatively**: every aligned word that points
//! into an allocated object is an edge (the allocation header skipped). A
//! scalar that happens to hold a heap address then adds a false edge, which
//! can only make retention less precise (an object looks shared), never drop
//! a live object. [`HeapGraph::conservative`] and the counts say so.
//!
//! Bounded: at most [`MAX_EDGES`] edges in all; objects whose memory is not
//! readable are counted in `unreadable`, never followed.
//!
//! For other analyses (issue 15, goroutine leaks): [`HeapGraph::mark`]
//! marks what a subset of the roots reaches; roots carry the goroutine
//! whose stack they come from ([`super::roots::Root::goroutine`]).

use super::objects::{HeapObject, HeapObjects, MIN_SIZE_FOR_HEADER};
use super::ptrmask::{HeapMasks, ObjectMask};
use super::roots::{Root, RootScan};
pub use super::words::find_object;
use super::words::scan_words;
use crate::goruntime::Target;
use crate::memory::Memory;

/// Most edges kept (objects and roots together).
pub const MAX_EDGES: usize = 1 << 31;
/// Largest object scanned whole (larger ones: their first bytes only).
const MAX_SCAN_OBJECT: u64 = 1 << 30;
/// Bytes of an allocation header (Go 1.22+).
const HEADER: u64 = 8;

/// Compressed sparse rows: the targets of node `i` are
/// `targets[off[i]..off[i + 1]]`.
#[derive(Debug, Clone, Default)]
pub struct Csr {
    pub off: Vec<u32>,
    pub targets: Vec<u32>,
}

impl Csr {
    fn new() -> Csr {
        Csr {
            off: vec![0],
            targets: Vec::new(),
        }
    }
    /// Closes the current row.
    fn end_row(&mut self) {
        self.off.push(self.targets.len() as u32);
    }
    pub fn rows(&self) -> usize {
        self.off.len() - 1
    }
    pub fn row(&self, i: usize) -> &[u32] {
        match (self.off.get(i), self.off.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.targets[a as usize..b as usize],
            _ => &[],
        }
    }
    pub fn edges(&self) -> usize {
        self.targets.len()
    }
}

/// The object graph of one heap-complete snapshot.
#[derive(Debug, Clone, Default)]
pub struct HeapGraph {
    /// Number of heap objects (same indices as [`HeapObjects::objects`]).
    pub objects: usize,
    /// Object → objects it points to.
    pub out: Csr,
    /// The roots, and root → objects it points to.
    pub roots: Vec<Root>,
    pub root_out: Csr,
    /// Some pointer words were found by conservative scanning rather than
    /// exact pointer masks (see the counts below).
    pub conservative: bool,
    /// Objects scanned with their exact mask, and conservatively.
    pub exact_objects: u64,
    pub conservative_objects: u64,
    /// Root sections and stack frames scanned conservatively.
    pub conservative_roots: u64,
    /// Objects whose memory could not be read (not followed).
    pub unreadable: u64,
    /// Edges dropped at [`MAX_EDGES`].
    pub dropped_edges: u64,
    pub warnings: Vec<String>,
}

/// The pointer words of `bytes`, an array of elements `elem` bytes long
/// whose pointer words are `bits`.
fn scan_repeated(objs: &HeapObjects, bytes: &[u8], elem: usize, bits: &[bool], row: &mut Vec<u32>) {
    if elem == 0 {
        return;
    }
    for e in bytes.chunks_exact(elem) {
        for (w, set) in bits.iter().enumerate() {
            if *set {
                if let Some(b) = e.get(w * 8..w * 8 + 8) {
                    scan_words(objs, b, row);
                }
            }
        }
    }
}

impl HeapGraph {
    /// The graph of `objs` (read from `mem`) and of the roots `scan` found.
    pub fn build<M: Memory>(t: &Target, mem: &M, objs: &HeapObjects, scan: RootScan) -> HeapGraph {
        let mut g = HeapGraph {
            objects: objs.objects.len(),
            out: Csr::new(),
            ..Default::default()
        };
        g.out.off.reserve(objs.objects.len());
        let mut buf: Vec<u8> = Vec::new();
        g.conservative_roots = scan.conservative_sections + scan.conservative_frames;
        let mut row: Vec<u32> = Vec::new();
        let mut masks = HeapMasks::new(t);
        for (i, o) in objs.objects.iter().enumerate() {
            row.clear();
            if !o.noscan() {
                match masks.object(mem, o) {
                    ObjectMask::Exact(offs) => {
                        g.exact_objects += 1;
                        for off in offs {
                            if let Ok(p) = mem.u64(o.addr + off) {
                                scan_words(objs, &p.to_le_bytes(), &mut row);
                            }
                        }
                        row.sort_unstable();
                        row.dedup();
                    }
                    ObjectMask::Repeated {
                        start,
                        elem,
                        count,
                        bits,
                    } => {
                        g.exact_objects += 1;
                        let n = count.min(MAX_SCAN_OBJECT / elem.max(1));
                        let span = (n * elem) as usize;
                        let at = o.addr + start;
                        let ok = match mem.bytes_at(at, span) {
                            Some(b) => {
                                scan_repeated(objs, b, elem as usize, &bits, &mut row);
                                true
                            }
                            None => {
                                buf.resize(span, 0);
                                let ok = mem.read_exact(at, &mut buf).is_ok();
                                if ok {
                                    scan_repeated(objs, &buf, elem as usize, &bits, &mut row);
                                }
                                ok
                            }
                        };
                        if !ok {
                            g.unreadable += 1;
                        }
                        row.sort_unstable();
                        row.dedup();
                    }
                    ObjectMask::Unknown => {
                        g.conservative_objects += 1;
                        if !g.scan_whole(mem, objs, o, &mut buf, &mut row) {
                            g.unreadable += 1;
                        }
                    }
                }
                row.retain(|&j| j as usize != i);
            }
            g.push_row(&row, false);
        }
        g.roots = scan.roots;
        g.root_out = Csr::new();
        // A finalizer root also points to what its object points to.
        let mut referents = scan.referents;
        referents.sort_unstable();
        for (r, t) in scan.targets.iter().enumerate() {
            let mut row = t.clone();
            let at = referents.partition_point(|x| x.0 < r);
            for &(_, j) in referents[at..].iter().take_while(|x| x.0 == r) {
                row.extend(g.out.row(j as usize).iter().filter(|&&k| k != j));
            }
            if row.len() > t.len() {
                row.sort_unstable();
                row.dedup();
            }
            g.push_row(&row, true);
        }
        g.warnings = scan.warnings;
        g.conservative = g.conservative_objects > 0 || g.conservative_roots > 0;
        if g.conservative_objects > 0 {
            g.warnings.push(format!(
                "{} heap objects scanned conservatively (no exact pointer mask{})",
                g.conservative_objects,
                masks.unknown_reason()
            ));
        }
        if g.unreadable > 0 {
            g.warnings.push(format!(
                "{} heap objects unreadable: their pointers are not followed",
                g.unreadable
            ));
        }
        if g.dropped_edges > 0 {
            g.warnings.push(format!(
                "{} pointers dropped past {MAX_EDGES} edges: retention is partial",
                g.dropped_edges
            ));
        }
        g
    }

    /// Every word of `o` (past its allocation header) that points into an
    /// object; false when its memory is unreadable.
    fn scan_whole<M: Memory>(
        &self,
        mem: &M,
        objs: &HeapObjects,
        o: &HeapObject,
        buf: &mut Vec<u8>,
        row: &mut Vec<u32>,
    ) -> bool {
        let skip = if objs.headers && o.size_class() != 0 && o.size > MIN_SIZE_FOR_HEADER {
            HEADER
        } else {
            0
        };
        let len = o.size.saturating_sub(skip).min(MAX_SCAN_OBJECT) as usize;
        let at = o.addr + skip;
        if let Some(b) = mem.bytes_at(at, len) {
            scan_words(objs, b, row);
            return true;
        }
        buf.resize(len, 0);
        if mem.read_exact(at, buf).is_err() {
            return false;
        }
        scan_words(objs, buf, row);
        true
    }

    fn push_row(&mut self, row: &[u32], root: bool) {
        let total = self.out.edges() + self.root_out.edges();
        let room = MAX_EDGES.saturating_sub(total);
        let take = row.len().min(room);
        self.dropped_edges += (row.len() - take) as u64;
        let csr = if root {
            &mut self.root_out
        } else {
            &mut self.out
        };
        csr.targets.extend_from_slice(&row[..take]);
        csr.end_row();
    }

    /// Objects reachable from the roots for which `keep(root index)` holds.
    pub fn mark(&self, keep: impl Fn(usize) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.objects];
        let mut stack: Vec<u32> = Vec::new();
        for r in 0..self.root_out.rows() {
            if !keep(r) {
                continue;
            }
            for &j in self.root_out.row(r) {
                if !seen[j as usize] {
                    seen[j as usize] = true;
                    stack.push(j);
                }
            }
        }
        while let Some(i) = stack.pop() {
            for &j in self.out.row(i as usize) {
                if !seen[j as usize] {
                    seen[j as usize] = true;
                    stack.push(j);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goruntime::heap::roots::RootKind;

    fn csr(rows: &[&[u32]]) -> Csr {
        let mut c = Csr::new();
        for r in rows {
            c.targets.extend_from_slice(r);
            c.end_row();
        }
        c
    }

    #[test]
    fn mark_from_a_subset_of_roots() {
        let root = |n: &str, g: Option<u64>| Root {
            name: n.into(),
            kind: if g.is_some() {
                RootKind::Stack
            } else {
                RootKind::Global
            },
            goroutine: g,
            function: None,
        };
        let g = HeapGraph {
            objects: 4,
            out: csr(&[&[1], &[], &[3], &[]]),
            roots: vec![root("main.a", None), root("goroutine 7: main.f", Some(7))],
            root_out: csr(&[&[0], &[2]]),
            ..Default::default()
        };
        let only_stacks = g.mark(|r| g.roots[r].goroutine.is_some());
        assert_eq!(only_stacks, vec![false, false, true, true]);
        assert_eq!(g.mark(|_| true), vec![true; 4]);
        assert_eq!(g.root_out.row(5), &[] as &[u32]);
    }
}
