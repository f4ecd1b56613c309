//! The roots of the heap graph, named: global variables (the module's
//! `.data` and `.bss`, which the linker keeps apart from pointer-free
//! `.noptrdata`/`.noptrbss`), runtime globals (named `runtime: NAME`), and
//! every goroutine's stack, frame by frame (`goroutine N: FUNCTION`).
//!
//! Which words are pointers: `.data`/`.bss` by the module's GC programs
//! (`gcdata`/`gcbss`), goroutine frames by their stack maps (see
//! `ptrmask`), as the GC does. Sections whose program cannot be read,
//! frames without a safe point (running goroutines) or without maps are
//! scanned **conservatively** (every word pointing into an allocated object)
//! and counted.
//!
//! Span specials (`specials`), as `markrootSpans` does: a finalizer is a
//! root named `runtime: finalizer for TYPE ADDR (FUNC)` whose edges are its
//! closure (`fn`) and everything its object points to (the object itself
//! is not marked: it stays collectable, its finalizer runs); a cleanup
//! (`runtime: cleanup for ADDR (FUNC)`) is its closure (and, Go 1.26+, the
//! cleanup's argument); a weak handle (`runtime: weak handle for ADDR`) its
//! handle. Finalizers queued to run (`runtime.allfin` blocks) are roots
//! `runtime: queued finalizer for TYPE ADDR (FUNC)` (Go 1.24's queued
//! cleanups, there too, `runtime: queued cleanup (FUNC)`), and cleanups
//! queued to run (Go 1.25+, `runtime.gcCleanups`), `runtime: queued
//! cleanup (FUNC)`.
//!
//! A global word is named by the ELF symbol that contains it; without a
//! symbol table (`-s`), by `data+0xOFF` / `bss+0xOFF`. A stack word is
//! attributed to the physical frame whose `[sp, caller's sp)` holds it.

use super::objects::HeapObjects;
use super::words::scan_words;
use crate::goruntime::{Runtime, Target};
use crate::memory::Memory;
use std::collections::HashMap;

/// Largest goroutine stack scanned (the runtime's maxstacksize is 1 GB).
const MAX_STACK: u64 = 1 << 30;
/// Largest data or bss section scanned.
const MAX_SECTION: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A package-level variable (`main.cache`), or `data+0xOFF`.
    Global,
    /// A variable of package runtime (`runtime: allgs`).
    Runtime,
    /// A goroutine's stack frame (`goroutine N: FUNCTION`).
    Stack,
}

/// One named root: every word it covers is an edge source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub kind: RootKind,
    /// The goroutine whose stack holds it (Stack roots).
    pub goroutine: Option<u64>,
    /// The frame's function (Stack roots).
    pub function: Option<String>,
}

/// The roots found and, for each, the objects it points to.
#[derive(Debug, Clone, Default)]
pub struct RootScan {
    pub roots: Vec<Root>,
    pub targets: Vec<Vec<u32>>,
    pub warnings: Vec<String>,
    /// Sections and frames scanned conservatively (no exact mask).
    pub conservative_sections: u64,
    pub conservative_frames: u64,
    pub exact_frames: u64,
    /// (root, object): the root also points to everything the object
    /// points to (a finalizer's object; see `graph`).
    pub referents: Vec<(usize, u32)>,
    /// Root specials found (finalizers, cleanups, weak handles).
    pub specials: u64,
}

impl RootScan {
    fn root(&mut self, ids: &mut HashMap<String, usize>, r: Root) -> usize {
        if let Some(&i) = ids.get(&r.name) {
            return i;
        }
        let i = self.roots.len();
        ids.insert(r.name.clone(), i);
        self.roots.push(r);
        self.targets.push(Vec::new());
        i
    }
}

/// Symbols of `[lo, hi)` (link-time), sorted: (start, end, name).
fn symbols_in(t: &Target, lo: u64, hi: u64) -> Vec<(u64, u64, String)> {
    let mut v: Vec<(u64, u64, String)> = t
        .bin
        .elf
        .symbols()
        .iter()
        .filter(|(_, &(a, size))| a >= lo && a < hi && size > 0)
        .map(|(n, &(a, size))| (a, a + size, n.clone()))
        .collect();
    v.sort();
    v
}

fn global_root(name: &str) -> Root {
    let (name, kind) = match name.strip_prefix("runtime.") {
        Some(rest) => (format!("runtime: {rest}"), RootKind::Runtime),
        None => (name.to_string(), RootKind::Global),
    };
    Root {
        name,
        kind,
        goroutine: None,
        function: None,
    }
}

/// Every root of the target, scanned conservatively against `objs`.
pub fn scan_roots<M: Memory>(t: &Target, mem: &M, objs: &HeapObjects) -> RootScan {
    let mut out = RootScan::default();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let md = &t.bin.moduledata;
    for (sect, lo, hi) in [("data", md.data, md.edata), ("bss", md.bss, md.ebss)] {
        scan_section(t, mem, objs, (sect, lo, hi), &mut out, &mut ids);
    }
    scan_stacks(t, mem, objs, &mut out, &mut ids);
    scan_specials(t, mem, objs, &mut out, &mut ids);
    for r in &mut out.targets {
        r.sort_unstable();
        r.dedup();
    }
    out
}

fn scan_section<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    (sect, lo, hi): (&str, u64, u64),
    out: &mut RootScan,
    ids: &mut HashMap<String, usize>,
) {
    if hi <= lo || hi - lo > MAX_SECTION {
        out.warnings
            .push(format!("module .{sect} bounds implausible: not scanned"));
        return;
    }
    let syms = symbols_in(t, lo, hi);
    let Ok(bytes) = mem.read_vec(lo.wrapping_add(t.bias), (hi - lo) as usize) else {
        out.warnings.push(format!(
            "module .{sect} is not in the snapshot: its globals are not roots"
        ));
        return;
    };
    let mask = super::ptrmask::section_mask(t, mem, sect == "bss");
    if mask.is_none() {
        out.conservative_sections += 1;
        out.warnings.push(format!(
            "module .{sect} pointer mask (GC program) unreadable: scanned conservatively"
        ));
    }
    let mut row = Vec::new();
    for (k, w) in bytes.chunks_exact(8).enumerate() {
        if mask
            .as_ref()
            .is_some_and(|m| !m.get(k).copied().unwrap_or(false))
        {
            continue;
        }
        row.clear();
        scan_words(objs, w, &mut row);
        let Some(&j) = row.first() else { continue };
        let link = lo + k as u64 * 8;
        let i = syms.partition_point(|s| s.0 <= link);
        let name = match i.checked_sub(1).map(|i| &syms[i]) {
            Some((_, end, n)) if link < *end => n.clone(),
            _ => format!("{sect}+{:#x}", link - lo),
        };
        let r = out.root(ids, global_root(&name));
        out.targets[r].push(j);
    }
}

/// The stack objects (frame index, object index) that `scanstack` would
/// scan: those a pointer from the stack reaches — from a live slot of an
/// exact frame, any word of a frame scanned whole, or a reached stack
/// object — pointing into `[base, hi)`.
fn reached_stack_objects<'a>(
    slots: &[Option<super::ptrmask::FrameSlots>],
    frames: &[(u64, u64, String)],
    ends: &[u64],
    base: u64,
    hi: u64,
    word: &impl Fn(u64) -> Option<&'a [u8]>,
) -> std::collections::HashSet<(usize, usize)> {
    let mut reached = std::collections::HashSet::new();
    // Every stack object, by address.
    let mut all: Vec<(u64, u64, usize, usize)> = Vec::new();
    for (k, fs) in slots.iter().enumerate() {
        if let Some(fs) = fs {
            for (j, so) in fs.objects.iter().enumerate() {
                all.push((so.addr, so.size, k, j));
            }
        }
    }
    if all.is_empty() {
        return reached;
    }
    all.sort_unstable();
    let value = |a: u64| -> Option<u64> {
        let v = u64::from_le_bytes(word(a)?.try_into().ok()?);
        (v >= base && v < hi).then_some(v)
    };
    let mut todo: Vec<u64> = Vec::new();
    for (k, fs) in slots.iter().enumerate() {
        match fs {
            Some(fs) => todo.extend(fs.pointers.iter().filter_map(|&a| value(a))),
            None => {
                let (sp, end) = (frames[k].0 & !7, ends[k]);
                todo.extend((0..end.saturating_sub(sp) / 8).filter_map(|w| value(sp + w * 8)));
            }
        }
    }
    while let Some(v) = todo.pop() {
        let i = all.partition_point(|o| o.0 <= v);
        let Some(&(addr, size, k, j)) = i.checked_sub(1).map(|i| &all[i]) else {
            continue;
        };
        if v >= addr.saturating_add(size) || !reached.insert((k, j)) {
            continue;
        }
        let so = &slots[k].as_ref().expect("a frame with objects").objects[j];
        match &so.pointers {
            Some(ps) => todo.extend(ps.iter().filter_map(|&a| value(a))),
            None => todo.extend((0..size / 8).filter_map(|w| value(addr + w * 8))),
        }
    }
    reached
}

/// Physical frames of one goroutine: (sp, pc, function), innermost first,
/// and whether the walk reached the top of the stack.
fn frames_of<M: Memory>(
    t: &Target,
    mem: &M,
    g: &crate::goruntime::G,
) -> (Vec<(u64, u64, String)>, bool) {
    let st = t.unwind(mem, g, None, None);
    let mut v: Vec<(u64, u64, String)> = Vec::new();
    for f in st.frames.iter() {
        if f.inlined {
            continue;
        }
        if v.last().is_some_and(|l| l.0 == f.sp) {
            continue;
        }
        v.push((f.sp, f.pc, f.function.to_string()));
    }
    (v, st.reached_top && st.error.is_none())
}

fn scan_stacks<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    out: &mut RootScan,
    ids: &mut HashMap<String, usize>,
) {
    let rt = Runtime::new(t, mem);
    let gaddrs = match rt.allg_addrs() {
        Ok(v) => v,
        Err(e) => {
            out.warnings
                .push(format!("goroutines unreadable ({e}): stacks are not roots"));
            return;
        }
    };
    let (mut skipped, mut row) = (0u64, Vec::new());
    for a in gaddrs {
        let Ok(g) = rt.read_g(a) else {
            skipped += 1;
            continue;
        };
        if g.is_dead() {
            continue;
        }
        let (frames, whole) = frames_of(t, mem, &g);
        let lo = frames.first().map_or(g.sched_sp, |f| f.0);
        let hi = g.stack_hi;
        if lo == 0 || lo >= hi || hi - lo > MAX_STACK || lo < g.stack_lo {
            skipped += 1;
            continue;
        }
        let base = lo & !7;
        let Ok(bytes) = mem.read_vec(base, ((hi - base) & !7) as usize) else {
            skipped += 1;
            continue;
        };
        let word = |a: u64| -> Option<&[u8]> {
            let o = a.checked_sub(base)? as usize;
            bytes.get(o..o.checked_add(8)?)
        };
        // A goroutine that is running or in a system call has no safe
        // point in its innermost frame: every frame is scanned whole.
        let exact_ok = whole && g.status != 2 && g.status != 3;
        let mut slots: Vec<Option<super::ptrmask::FrameSlots>> = frames
            .iter()
            .map(|(sp, pc, _)| {
                exact_ok
                    .then(|| super::ptrmask::frame_slots(t, mem, *pc, *sp))
                    .flatten()
            })
            .collect();
        let ends: Vec<u64> = (0..frames.len())
            .map(|k| frames.get(k + 1).map_or(hi, |f| f.0))
            .collect();
        let reached = reached_stack_objects(&slots, &frames, &ends, base, hi, &word);
        for (k, (sp, _pc, function)) in frames.iter().enumerate() {
            let end = ends[k];
            let r = out.root(
                ids,
                Root {
                    name: format!("goroutine {}: {function}", g.goid),
                    kind: RootKind::Stack,
                    goroutine: Some(g.goid),
                    function: Some(function.clone()),
                },
            );
            row.clear();
            match slots[k].take() {
                Some(fs) => {
                    out.exact_frames += 1;
                    for &a in &fs.pointers {
                        if let Some(w) = word(a) {
                            scan_words(objs, w, &mut row);
                        }
                    }
                    for (j, so) in fs.objects.iter().enumerate() {
                        if !reached.contains(&(k, j)) {
                            continue;
                        }
                        match &so.pointers {
                            Some(ps) => {
                                for &a in ps {
                                    if let Some(w) = word(a) {
                                        scan_words(objs, w, &mut row);
                                    }
                                }
                            }
                            None => {
                                let o = so.addr.wrapping_sub(base) as usize;
                                if let Some(b) = bytes.get(o..o.saturating_add(so.size as usize)) {
                                    scan_words(objs, b, &mut row);
                                }
                            }
                        }
                    }
                }
                None => {
                    out.conservative_frames += 1;
                    let o = sp.saturating_sub(base) as usize;
                    let e = end.saturating_sub(base) as usize;
                    if let Some(b) = bytes.get(o..e.max(o)) {
                        scan_words(objs, b, &mut row);
                    }
                }
            }
            out.targets[r].extend_from_slice(&row);
        }
        if frames.is_empty() {
            out.conservative_frames += 1;
            row.clear();
            scan_words(objs, &bytes, &mut row);
            let name = format!("goroutine {}", g.goid);
            let r = out.root(
                ids,
                Root {
                    name,
                    kind: RootKind::Stack,
                    goroutine: Some(g.goid),
                    function: None,
                },
            );
            out.targets[r].extend_from_slice(&row);
        }
    }
    if out.conservative_frames > 0 {
        out.warnings.push(format!(
            "{} stack frames scanned conservatively (no safe point or stack map)",
            out.conservative_frames
        ));
    }
    if skipped > 0 {
        out.warnings.push(format!(
            "{skipped} goroutine stacks unreadable or implausible: not scanned"
        ));
    }
}

/// `DWARF or descriptor` name of the type descriptor at `ty`.
fn type_name<M: Memory>(t: &Target, mem: &M, ty: u64) -> Option<String> {
    if ty == 0 {
        return None;
    }
    let dwarf = t.bin.dwarf().and_then(|d| {
        let r = d.type_by_runtime_addr(ty.wrapping_sub(t.bias))?;
        d.type_name(r).filter(|n| !n.is_empty())
    });
    dwarf.or_else(|| crate::goruntime::descriptor_name(t, mem, ty).map(|(n, _)| n))
}

/// The function of the closure (funcval) at `fv`: its first word is its
/// code. Go 1.24–1.25 wrap a cleanup in a closure of `runtime.AddCleanup`
/// that captures the user's function: that one is named instead, looked
/// for in the wrapper's first captured words (by value or boxed).
fn closure_name<M: Memory>(t: &Target, mem: &M, fv: u64) -> Option<String> {
    let name = |fv: u64| mem.u64(fv).ok().and_then(|pc| t.func_name(pc));
    let outer = name(fv)?;
    if !outer.starts_with("runtime.AddCleanup[") {
        return Some(outer.to_string());
    }
    let inner = (1..4u64).find_map(|k| {
        let x = mem.u64(fv.wrapping_add(8 * k)).ok().filter(|&x| x != 0)?;
        name(x).or_else(|| mem.u64(x).ok().and_then(name))
    });
    Some(inner.unwrap_or(outer).to_string())
}

/// Finalizer, cleanup and weak-handle specials as roots (`markrootSpans`).
fn scan_specials<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    out: &mut RootScan,
    ids: &mut HashMap<String, usize>,
) {
    use super::specials::{SpecialKind, SpecialsLayout};
    let (ht, l) = match (
        super::HeapTarget::new(t),
        SpecialsLayout::from_binary(&t.bin),
    ) {
        (Ok(ht), Ok(l)) => (ht, l),
        (Err(e), _) | (_, Err(e)) => {
            out.warnings
                .push(format!("finalizers and cleanups are not roots: {e}"));
            return;
        }
    };
    let scan = l.scan(&ht, mem);
    out.warnings.extend(scan.warnings);
    out.specials = scan.specials.len() as u64;
    let mut row = Vec::new();
    for sp in scan.specials {
        let func = sp
            .words
            .iter()
            .rev()
            .filter(|&&w| w != 0)
            .find_map(|&w| closure_name(t, mem, w))
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        let name = match sp.kind {
            SpecialKind::Finalizer => {
                let ty = type_name(t, mem, sp.ptrtype).unwrap_or_else(|| "object".into());
                format!("runtime: finalizer for {ty} {:#x}{func}", sp.object)
            }
            SpecialKind::Cleanup => format!("runtime: cleanup for {:#x}{func}", sp.object),
            SpecialKind::WeakHandle => format!("runtime: weak handle for {:#x}", sp.object),
        };
        let r = out.root(
            ids,
            Root {
                name,
                kind: RootKind::Runtime,
                goroutine: None,
                function: None,
            },
        );
        if sp.kind == SpecialKind::Finalizer && !sp.noscan {
            if let Some(j) = super::words::find_object(objs, sp.object) {
                out.referents.push((r, j));
            }
        }
        row.clear();
        for w in &sp.words {
            scan_words(objs, &w.to_le_bytes(), &mut row);
        }
        out.targets[r].extend_from_slice(&row);
    }
    scan_finalizer_queue(t, mem, objs, out, ids);
}

/// Finalizers queued to run (`runtime.allfin` blocks, `markroot`'s
/// `fixedRootFinalizers`): each keeps its object and closure alive, as
/// `runtime: queued finalizer for TYPE ADDR (FUNC)`. A finalizer goroutine
/// stuck in a finalizer makes this queue grow.
fn scan_finalizer_queue<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    out: &mut RootScan,
    ids: &mut HashMap<String, usize>,
) {
    let Some(allfin) = super::specials::allfin_addr(t) else {
        return;
    };
    let (queued, broken) = super::specials::queued_finalizers(mem, allfin);
    if broken > 0 {
        out.warnings.push(
            "finalizer queue (runtime.allfin) not read whole: some queued finalizers are not roots"
                .into(),
        );
    }
    let mut row = Vec::new();
    for q in queued {
        let func = closure_name(t, mem, q.words[0])
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        // Go 1.24 queues cleanups there too, without an object: one root
        // per cleanup function.
        let name = if q.object == 0 && q.ptrtype == 0 {
            format!("runtime: queued cleanup{func}")
        } else {
            let ty = type_name(t, mem, q.ptrtype).unwrap_or_else(|| "object".into());
            format!("runtime: queued finalizer for {ty} {:#x}{func}", q.object)
        };
        let r = out.root(
            ids,
            Root {
                name,
                kind: RootKind::Runtime,
                goroutine: None,
                function: None,
            },
        );
        row.clear();
        for w in &q.words {
            scan_words(objs, &w.to_le_bytes(), &mut row);
        }
        out.targets[r].extend_from_slice(&row);
        out.specials += 1;
    }
    scan_cleanup_queue(t, mem, objs, out, ids);
}

/// Cleanups queued to run (Go 1.25+, `runtime.gcCleanups` blocks,
/// `fixedRootCleanups`): one root per cleanup function, `runtime: queued
/// cleanup (FUNC)`.
fn scan_cleanup_queue<M: Memory>(
    t: &Target,
    mem: &M,
    objs: &HeapObjects,
    out: &mut RootScan,
    ids: &mut HashMap<String, usize>,
) {
    let Some((all, l)) = super::specials::cleanup_queue(t) else {
        return;
    };
    let (queued, broken) = super::specials::queued_cleanups(mem, all, &l);
    if broken > 0 {
        out.warnings.push(
            "cleanup queue (runtime.gcCleanups) not read whole: some queued cleanups are not roots"
                .into(),
        );
    }
    let mut row = Vec::new();
    for words in queued {
        let func = words
            .iter()
            .rev()
            .filter(|&&w| w != 0)
            .find_map(|&w| closure_name(t, mem, w))
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        let r = out.root(
            ids,
            Root {
                name: format!("runtime: queued cleanup{func}"),
                kind: RootKind::Runtime,
                goroutine: None,
                function: None,
            },
        );
        row.clear();
        for w in &words {
            scan_words(objs, &w.to_le_bytes(), &mut row);
        }
        out.targets[r].extend_from_slice(&row);
        out.specials += 1;
    }
}
