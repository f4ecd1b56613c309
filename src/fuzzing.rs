//! Fuzz entry points: each takes arbitrary bytes and runs one decoder (and the
//! lookups that follow it) on them. They must never panic, hang or allocate
//! without bound; any panic is a bug.
//!
//! Used by the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer) and by the
//! stable mutation loop in `tests/fuzz_stable.rs` (`scripts/fuzz.sh` runs
//! both for a bounded time). Not part of gospy's API.

use crate::analyze::{Model, Session};
use crate::binary::dwarf::Dwarf;
use crate::binary::pclntab::Pclntab;
use crate::binary::Binary;
use crate::goruntime::labels;
use crate::memory::{Memory, SparseMemory};
use crate::model::Capture;
use crate::sources::snapshot::SnapshotFile;
use std::sync::Arc;

/// The snapshot reader: open, stats, memory (with damage isolation), the
/// full capture and the embedded binary.
pub fn snapshot_reader(data: &[u8]) {
    let Ok(snap) = SnapshotFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = snap.stats();
    if let Ok(m) = snap.memory() {
        // Touch the memory like a decoder would.
        for (a, d) in m.memory.ranges().take(64) {
            let mut b = [0u8; 8];
            let _ = m
                .memory
                .read_exact(a.wrapping_add(d.len() as u64 / 2), &mut b);
        }
    }
    let _ = snap.capture();
    let _ = snap.binary();
}

/// The pclntab parser and every lookup analysis makes, with `text_start`
/// fixed (the fuzzer controls the table). The same bytes also serve as the
/// funcdata area (inline trees).
pub fn pclntab(data: &[u8]) {
    const TEXT: u64 = 0x401000;
    for gofunc in [Vec::new(), data.to_vec()] {
        let Ok(p) = Pclntab::parse(data.to_vec(), Some(TEXT), TEXT + 0x100000, gofunc) else {
            continue;
        };
        let n = p.nfunc().min(256);
        for i in 0..n {
            let Some(f) = p.func_at(i) else { continue };
            let _ = p.func_name(&f);
            let _ = p.func_id(&f);
            let _ = p.func_flag(&f);
            let _ = p.start_line(&f);
            let end = p.func_end(&f);
            let span = end.saturating_sub(f.entry).min(64);
            for pc in [
                f.entry,
                f.entry + span / 2,
                f.entry + span.saturating_sub(1),
            ] {
                let _ = p.pcsp(&f, pc);
                let _ = p.file_line(&f, pc);
                let _ = p.frames(&f, pc);
            }
            let _ = p.is_wrapper(&f);
        }
        for k in 0..64u64 {
            let _ = p.find_func(TEXT.wrapping_add(k.wrapping_mul(0x1237)));
        }
        let _ = p.func_by_name("main.main");
        let _ = p.func_by_name("runtime.goexit");
    }
}

/// The DWARF layout loader on an ELF image: what `Layout::from_binary`,
/// globals and constants look up.
pub fn dwarf(elf: &[u8]) {
    let Ok(Some(d)) = Dwarf::load(elf) else {
        return;
    };
    let _ = d.prepare();
    for (ty, field) in [
        ("runtime.g", "sched.sp"),
        ("runtime.g", "stack.hi"),
        ("runtime.m", "alllink"),
        ("runtime.p", "runqtail"),
        ("runtime.schedt", "gFree.n"),
    ] {
        let _ = d.offset_of(ty, field);
        let _ = d.size_of(ty);
        if let Some(t) = d.type_named(ty) {
            let _ = d.fields(t);
            let _ = d.resolve(t);
            let _ = d.type_name(t);
        }
    }
    let _ = d.global("runtime.allgs");
    let _ = d.constant("runtime._Gwaiting");
    let _ = d.constants_with_prefix("runtime.waitReason");
    for name in d.globals().into_iter().take(64) {
        if let Some(g) = d.global(&name) {
            if let Some(t) = g.ty {
                let _ = d.resolve(t);
            }
        }
    }
}

/// The executable loader (ELF, build info, moduledata, pclntab) and the
/// runtime description built from it, as for an embedded binary.
pub fn binary(elf: &[u8]) {
    let Ok(b) = Binary::from_bytes(Arc::from(elf)) else {
        return;
    };
    let _ = b.elf.text_range();
    let mut buf = [0u8; 64];
    for s in b.elf.segments.clone() {
        let _ = b
            .elf
            .read_vaddr(s.vaddr.wrapping_add(s.filesz / 2), &mut buf, true);
        let _ = b.elf.vaddr_tail(s.vaddr);
    }
    let b = Arc::new(b);
    let _ = crate::goruntime::Target::new(b, 0);
}

/// Label decoders (both layouts) on memory made of the bytes, mapped at
/// 0x10000: the first word of the data is the label pointer.
pub fn labels(data: &[u8]) {
    const BASE: u64 = 0x10000;
    let mem = SparseMemory::new(vec![(BASE, Arc::from(data))]);
    let ptr = mem.u64(BASE).unwrap_or(BASE);
    let _ = labels::read_string_hmap(&mem, ptr);
    let _ = labels::read_string_hmap(&mem, BASE);
    let _ = labels::label_list_slots(&mem, ptr);
    if let Ok(slots) = labels::label_list_slots(&mem, BASE) {
        for s in slots.iter().take(64) {
            let _ = mem.go_string(s.key, 1 << 16);
            let _ = mem.go_string(s.value, 1 << 16);
        }
    }
}

/// A capture and the binary that memory decoders run against.
pub struct MemoryBase {
    pub cap: Capture,
    pub bin: Arc<Binary>,
}

impl MemoryBase {
    /// From a snapshot that embeds its binary (the shipped sample).
    pub fn from_snapshot(bytes: Vec<u8>) -> Option<MemoryBase> {
        let snap = SnapshotFile::from_bytes(bytes).ok()?;
        let mut cap = snap.capture().ok()?;
        let exe = cap.binary.take()?;
        let bin = Arc::new(Binary::from_bytes(Arc::from(exe)).ok()?);
        Some(MemoryBase { cap, bin })
    }
}

/// Every memory decoder (allgs, Ms, Ps, sched, gs, unwinding, labels, the
/// reports) on the base capture with the data applied as patches: each 14
/// bytes are (region index u16, byte offset u32, value u64), little endian.
pub fn memory_decoders(base: &MemoryBase, data: &[u8]) {
    let mut cap = base.cap.clone();
    if cap.regions.is_empty() {
        return;
    }
    for p in data.chunks_exact(14) {
        let ri = usize::from(u16::from_le_bytes([p[0], p[1]])) % cap.regions.len();
        let r = &mut cap.regions[ri];
        if r.data.len() < 8 {
            continue;
        }
        let off = u32::from_le_bytes([p[2], p[3], p[4], p[5]]) as usize % (r.data.len() - 7);
        r.data[off..off + 8].copy_from_slice(&p[6..14]);
    }
    let Ok(s) = Session::open(crate::sources::from_capture(cap, base.bin.clone()), None) else {
        return;
    };
    if let Ok(m) = Model::build(&s) {
        let sm = crate::report::summary::build(&s, &m, true);
        let _ = crate::report::summary::to_text(&sm);
        let opts = crate::report::dump::DumpOptions {
            all: true,
            wait_info: true,
            labels: true,
        };
        let _ = crate::report::dump::to_text(&s, &m, &opts);
        let _ = crate::report::dump::to_json(&s, &m, &opts);
        other_reports(&s, &m);
    }
}

/// The reports beyond summary and dump (top, pprof, folded, heap) on a model.
pub fn other_reports(s: &Session, m: &Model) {
    use crate::report::{pprof, top};
    for by in [
        top::GroupBy::Start,
        top::GroupBy::Go,
        top::GroupBy::Current,
        top::GroupBy::Stack,
        top::GroupBy::Label("worker".into()),
    ] {
        let o = top::TopOptions {
            by: by.clone(),
            filter: None,
            all: true,
        };
        let t = top::build(s, m, &o);
        let _ = top::to_text(&t, &by);
    }
    let o = pprof::ExportOptions { all: true };
    let _ = pprof::profile_proto(s, m, &o);
    let _ = pprof::folded(m, &o);
    if let Ok(h) = crate::report::heap::build(s, true) {
        let _ = crate::report::heap::to_text(&h);
    }
    let _ = crate::report::heap::summary_line(s);
    let by = crate::analyze::objects::GroupBy::Type;
    if let Ok(r) = crate::report::objects::build(s, by, None) {
        let _ = crate::report::objects::to_text(&r);
    }
    // The heap graph, roots (GC programs, stack maps), pointer masks and
    // dominators.
    if let Ok((r, ret)) = crate::report::retain::build(s, Some(10)) {
        let _ = crate::report::retain::to_text(&r);
        let _ = crate::report::retain::profile_gz(&r);
        if let Some(o) = ret.census.objects.objects.first() {
            let _ = ret.path_to_addr(o.addr);
        }
    }
    // The goroutine leak analysis (sudogs, the semaphore tree, marking).
    if let Ok(l) = crate::analyze::leaks::find_leaks(s, m) {
        let _ = crate::report::leaks::to_text(&l);
    }
}
