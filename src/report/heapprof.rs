//! The heap profile `pprof.Lookup("heap").WriteTo(w, 0)` would have written
//! at the moment of capture, from the runtime's own bucket list
//! (`goruntime::heap::profile`): the writer of runtime/pprof's protomem.go
//! and proto.go, reproduced. Stacks lose their leading runtime frames,
//! each PC is symbolized as `runtime.CallersFrames([pc])` would, and
//! consecutive PCs of one physical frame (the runtime's logical frames of
//! inlined calls) become one location with several lines (`pcDeck`).

use super::pprof::{Pb, Strings};
use crate::analyze::Session;
use crate::binary::pclntab::Pclntab;
use crate::goruntime::heap::profile::{read_mem_profile, MemProfile, MemRecord, ProfTarget};
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::io::Write;

/// What `runtime.CallersFrames([pc])` yields first for one PC.
#[derive(Clone, Debug)]
struct PcFrame {
    /// `Frame.PC`: the pc looked up (a return pc less one).
    pc: u64,
    function: String,
    file: String,
    line: u32,
    /// Inlined at this pc (`Frame.Func == nil`).
    inlined: bool,
    /// Entry of the physical function; 0 when unknown.
    entry: u64,
    start_line: u32,
}

/// Symbolization of one target's PCs, cached.
pub(super) struct Sym<'a> {
    pub(super) pcln: &'a Pclntab,
    pub(super) bias: u64,
    frames: HashMap<u64, Option<PcFrame>>,
}

impl<'a> Sym<'a> {
    /// `allFrames(pc)`: None for runtime.goexit (no location).
    fn frame(&mut self, pc: u64) -> Option<PcFrame> {
        if let Some(f) = self.frames.get(&pc) {
            return f.clone();
        }
        let f = self.lookup(pc);
        self.frames.insert(pc, f.clone());
        f
    }

    fn lookup(&self, pc: u64) -> Option<PcFrame> {
        let link = pc.wrapping_sub(self.bias);
        let Some(f) = self.pcln.find_func(link) else {
            // Not Go code: a location with the pc and no lines.
            return Some(PcFrame {
                pc,
                function: String::new(),
                file: String::new(),
                line: 0,
                inlined: false,
                entry: 0,
                start_line: 0,
            });
        };
        let sym = if link > f.entry { link - 1 } else { link };
        let src = self.pcln.frames(&f, sym);
        let first = src.first()?;
        if first.function == "runtime.goexit" {
            return None;
        }
        let start_line = if first.inlined {
            0
        } else {
            self.pcln.start_line(&f).unwrap_or(0)
        };
        Some(PcFrame {
            pc: sym.wrapping_add(self.bias),
            function: first.function.clone(),
            file: first.file.clone(),
            line: first.line,
            inlined: first.inlined,
            entry: f.entry.wrapping_add(self.bias),
            start_line,
        })
    }

    /// `runtime.FuncForPC(pc).Name()`: the innermost function at `pc`
    /// itself (not pc-1).
    fn func_name(&self, pc: u64) -> Option<String> {
        let link = pc.wrapping_sub(self.bias);
        let f = self.pcln.find_func(link)?;
        self.pcln
            .frames(&f, link)
            .into_iter()
            .next()
            .map(|s| s.function)
    }
}

/// A location already written: its id, the PCs it covers and the frames
/// of its first PC.
struct LocInfo {
    id: u64,
    pcs: usize,
    first_frames: Vec<PcFrame>,
}

/// `pcDeck`: PCs of one physical frame being gathered.
#[derive(Default)]
struct Deck {
    pcs: Vec<u64>,
    frames: Vec<PcFrame>,
    first_frames: usize,
}

impl Deck {
    fn try_add(&mut self, pc: u64, frames: &[PcFrame]) -> bool {
        if let (Some(last), Some(new)) = (self.frames.last(), frames.first()) {
            if !last.inlined
                || last.entry == 0
                || new.entry == 0
                || last.entry != new.entry
                || last.function == new.function
            {
                return false;
            }
        }
        self.pcs.push(pc);
        self.frames.extend_from_slice(frames);
        if self.pcs.len() == 1 {
            self.first_frames = self.frames.len();
        }
        true
    }
}

/// runtime/pprof's `profileBuilder`, for what a heap profile needs.
pub(super) struct Builder<'a> {
    pub(super) sym: Sym<'a>,
    pub(super) st: Strings,
    locs: HashMap<u64, LocInfo>,
    loc_msgs: Vec<Pb>,
    funcs: HashMap<String, u64>,
    fn_msgs: Vec<Pb>,
    deck: Deck,
    text: (u64, u64),
    /// The lines of every location written (index: id - 1), innermost
    /// first: what the text views aggregate.
    loc_lines: Vec<Vec<SiteLine>>,
}

/// One line of a location: a function at a file and line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteLine {
    pub function: String,
    pub file: String,
    pub line: u32,
}

impl Builder<'_> {
    fn emit_location(&mut self) -> Option<u64> {
        if self.deck.pcs.is_empty() {
            return None;
        }
        let deck = std::mem::take(&mut self.deck);
        let addr = deck.pcs[0];
        let id = self.loc_msgs.len() as u64 + 1;
        self.locs.insert(
            addr,
            LocInfo {
                id,
                pcs: deck.pcs.len(),
                first_frames: deck.frames[..deck.first_frames].to_vec(),
            },
        );
        let mut l = Pb::default();
        l.uint(1, id);
        if addr >= self.text.0 && addr < self.text.1 {
            l.uint(2, 1);
        }
        l.uint(3, deck.frames[0].pc);
        self.loc_lines.push(
            deck.frames
                .iter()
                .map(|fr| SiteLine {
                    function: fr.function.clone(),
                    file: fr.file.clone(),
                    line: fr.line,
                })
                .collect(),
        );
        for fr in &deck.frames {
            let fid = match self.funcs.get(&fr.function) {
                Some(&id) => id,
                None => {
                    let id = self.fn_msgs.len() as u64 + 1;
                    let mut fm = Pb::default();
                    fm.uint(1, id);
                    fm.int(2, self.st.id(&fr.function));
                    fm.int(3, self.st.id(&fr.function));
                    fm.int(4, self.st.id(&fr.file));
                    fm.int(5, fr.start_line as i64);
                    self.fn_msgs.push(fm);
                    self.funcs.insert(fr.function.clone(), id);
                    id
                }
            };
            let mut line = Pb::default();
            line.uint(1, fid);
            line.int(2, fr.line as i64);
            l.msg(4, line);
        }
        self.loc_msgs.push(l);
        Some(id)
    }

    /// `appendLocsForStack`.
    pub(super) fn locs_for_stack(&mut self, mut stk: &[u64]) -> Vec<u64> {
        let mut locs = Vec::new();
        self.deck = Deck::default();
        while let Some(&addr) = stk.first() {
            if let Some(l) = self.locs.get(&addr) {
                let (id, n, first) = (l.id, l.pcs, l.first_frames.clone());
                if !self.deck.pcs.is_empty() && self.deck.try_add(addr, &first) {
                    stk = &stk[1..];
                    continue;
                }
                locs.extend(self.emit_location());
                locs.push(id);
                stk = &stk[n.min(stk.len())..];
                continue;
            }
            let Some(frame) = self.sym.frame(addr) else {
                // runtime.goexit
                locs.extend(self.emit_location());
                stk = &stk[1..];
                continue;
            };
            let frames = [frame];
            if self.deck.try_add(addr, &frames) {
                stk = &stk[1..];
                continue;
            }
            locs.extend(self.emit_location());
            if let Some(l) = self.locs.get(&addr) {
                locs.push(l.id);
                stk = &stk[l.pcs.min(stk.len())..];
            } else {
                self.deck.try_add(addr, &frames);
                stk = &stk[1..];
            }
        }
        locs.extend(self.emit_location());
        locs
    }

    /// The stack without its leading runtime frames, as the heap writer
    /// hides them; all frames when that leaves nothing.
    fn sample_locs(&mut self, r: &MemRecord, hide: &[&str]) -> Vec<u64> {
        let mut stk: &[u64] = &r.stack;
        for (i, &pc) in r.stack.iter().enumerate() {
            if let Some(n) = self.sym.func_name(pc) {
                if hide.iter().any(|p| n.starts_with(p)) {
                    continue;
                }
            }
            stk = &r.stack[i..];
            break;
        }
        let locs = self.locs_for_stack(stk);
        if locs.is_empty() {
            return self.locs_for_stack(&r.stack);
        }
        locs
    }
}

impl Builder<'_> {
    /// The mapping (the executable, with its build id), the locations,
    /// functions and the string table: what every profile ends with
    /// before its time and period.
    pub(super) fn write_tables(&mut self, s: &Session, prof: &mut Pb) {
        let mut mp = Pb::default();
        mp.uint(1, 1);
        mp.uint(2, self.text.0);
        mp.uint(3, self.text.1);
        mp.int(
            5,
            self.st.id(s.meta.exe_path.trim_end_matches(" (deleted)")),
        );
        let build_id = s
            .meta
            .go_build_id
            .clone()
            .or_else(|| s.meta.gnu_build_id.clone())
            .unwrap_or_default();
        mp.int(6, self.st.id(&build_id));
        for f in 7..=10 {
            mp.uint(f, 1);
        }
        prof.msg(3, mp);
        for l in std::mem::take(&mut self.loc_msgs) {
            prof.msg(4, l);
        }
        for f in std::mem::take(&mut self.fn_msgs) {
            prof.msg(5, f);
        }
        for v in &self.st.list {
            prof.bytes(6, v.as_bytes());
        }
    }
}

/// `scaleHeapSample` of Go ≤ 1.26 (count, bytes).
fn scale(count: i64, size: i64, rate: i64) -> (i64, i64) {
    if count == 0 || size == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count, size);
    }
    let avg = size as f64 / count as f64;
    let s = 1.0 / (1.0 - (-avg / rate as f64).exp());
    ((count as f64 * s) as i64, (size as f64 * s) as i64)
}

/// `scaleHeapSample` of Go 1.27 (count, object size).
fn scale_by_size(count: i64, size: i64, rate: i64) -> (i64, i64) {
    if count == 0 || size == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count, count.wrapping_mul(size));
    }
    let s = 1.0 / (1.0 - (-(size as f64) / rate as f64).exp());
    (
        (count as f64 * s) as i64,
        (count.wrapping_mul(size) as f64 * s) as i64,
    )
}

/// The session's heap profile records; an error when there is nothing to
/// read (profiling off, or no bucket memory in the input).
pub fn mem_profile(s: &Session) -> Result<MemProfile> {
    let pt = ProfTarget::new(&s.target)?;
    let p = read_mem_profile(&pt, &s.mem)?;
    if p.rate == 0 {
        return Err(anyhow!(
            "no heap profile: runtime.MemProfileRate is 0 (the program turned memory profiling off, or never links the runtime's profile readers)"
        ));
    }
    if p.buckets == 0 && !p.warnings.is_empty() {
        return Err(anyhow!(
            "no heap profile in this input: {} (a snapshot taken by a gospy without heap profiles holds no bucket memory)",
            p.warnings.join("; ")
        ));
    }
    Ok(p)
}

/// Which of runtime/pprof's two memory profiles: the same records, told
/// apart only by the default sample type (`writeAlloc` passes
/// "alloc_space"; `writeHeap` none, so pprof shows the last, inuse_space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    Heap,
    Allocs,
}

/// The four sample types, in the writer's order.
pub const SAMPLE_TYPES: [(&str, &str); 4] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

pub(super) fn builder(s: &Session) -> Builder<'_> {
    let md = &s.target.bin.moduledata;
    Builder {
        sym: Sym {
            pcln: &s.target.bin.pcln,
            bias: s.target.bias,
            frames: HashMap::new(),
        },
        st: Strings::new(),
        locs: HashMap::new(),
        loc_msgs: Vec::new(),
        funcs: HashMap::new(),
        fn_msgs: Vec::new(),
        deck: Deck::default(),
        text: (s.target.rt(md.text), s.target.rt(md.etext)),
        loc_lines: Vec::new(),
    }
}

/// The leading frames the heap writer hides.
fn hidden_prefixes(s: &Session) -> &'static [&'static str] {
    if s.target.bin.go.at_least(1, 24) {
        &["runtime.", "internal/runtime/"]
    } else {
        &["runtime."]
    }
}

/// A record's four values (scaled as the writer scales them) and its
/// `bytes` label.
fn sample_values(p: &MemProfile, r: &MemRecord) -> ([i64; 4], Option<i64>) {
    if p.object_size_writer {
        let size = r.object_size as i64;
        let (a0, a1) = scale_by_size(r.alloc_objects, size, p.rate);
        let (i0, i1) = scale_by_size(r.alloc_objects - r.free_objects, size, p.rate);
        ([a0, a1, i0, i1], Some(size))
    } else {
        let (a0, a1) = scale(r.alloc_objects, r.alloc_bytes, p.rate);
        let (i0, i1) = scale(
            r.alloc_objects - r.free_objects,
            r.alloc_bytes - r.free_bytes,
            p.rate,
        );
        let block = if r.alloc_objects > 0 {
            r.alloc_bytes / r.alloc_objects
        } else {
            0
        };
        ([a0, a1, i0, i1], (block != 0).then_some(block))
    }
}

/// The profile's samples as the text views read them: each sample's
/// values and stack as lines, innermost first (the lines of its locations,
/// in order), exactly as `heap_proto` writes them.
#[derive(Debug, Clone, Default)]
pub struct HeapSamples {
    /// (values in [`SAMPLE_TYPES`] order, location indexes into `locs`).
    pub samples: Vec<([i64; 4], Vec<usize>)>,
    /// Each location's lines, innermost first.
    pub locs: Vec<Vec<SiteLine>>,
}

/// The samples of the heap profile, symbolized as in the written profile.
pub fn heap_samples(s: &Session, p: &MemProfile) -> HeapSamples {
    let mut b = builder(s);
    let hide = hidden_prefixes(s);
    let samples = p
        .records
        .iter()
        .map(|r| {
            let locs = b.sample_locs(r, hide);
            let ids = locs.iter().map(|&id| id as usize - 1).collect();
            (sample_values(p, r).0, ids)
        })
        .collect();
    HeapSamples {
        samples,
        locs: b.loc_lines,
    }
}

/// The uncompressed profile.proto bytes of the heap (or allocs) profile.
pub fn heap_proto(s: &Session, p: &MemProfile, kind: MemKind) -> Vec<u8> {
    let mut b = builder(s);
    let hide = hidden_prefixes(s);
    let mut prof = Pb::default();
    let vt = |st: &mut Strings, t: &str, u: &str| {
        let mut v = Pb::default();
        v.int(1, st.id(t));
        v.int(2, st.id(u));
        v
    };
    let period_type = vt(&mut b.st, "space", "bytes");
    for (t, u) in SAMPLE_TYPES {
        let m = vt(&mut b.st, t, u);
        prof.msg(1, m);
    }
    if kind == MemKind::Allocs {
        prof.int(14, b.st.id("alloc_space"));
    }
    for r in &p.records {
        let locs = b.sample_locs(r, hide);
        let (values, label) = sample_values(p, r);
        let mut sm = Pb::default();
        sm.packed(1, &locs);
        sm.packed(2, &values.map(|v| v as u64));
        if let Some(n) = label {
            let mut lm = Pb::default();
            lm.int(1, b.st.id("bytes"));
            lm.int(3, n);
            sm.msg(3, lm);
        }
        prof.msg(2, sm);
    }
    b.write_tables(s, &mut prof);
    prof.int(9, s.meta.wall_time_ns as i64);
    prof.msg(11, period_type);
    prof.int(12, p.rate);
    prof.buf
}

/// The heap (or allocs) profile, gzip-compressed.
pub fn heap_gz(s: &Session, p: &MemProfile, kind: MemKind) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&heap_proto(s, p, kind))?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn scaling_matches_the_runtime_at_rate_one() {
        assert_eq!(scale(3, 48, 1), (3, 48));
        assert_eq!(scale(0, 48, 512 * 1024), (0, 0));
        assert_eq!(scale_by_size(3, 16, 1), (3, 48));
        // (size, count) → scaled (count, bytes) at the default rate, as
        // Go 1.27's math.Exp computes them on amd64.
        let want: &[(i64, i64, i64, i64)] = &[
            (16, 1, 32768, 524296),
            (16, 3, 98305, 1572888),
            (16, 7, 229379, 3670072),
            (16, 100, 3276850, 52429600),
            (16, 12345, 404527132, 6472434120),
            (48, 1, 10923, 524312),
            (48, 3, 32769, 1572936),
            (48, 7, 76462, 3670184),
            (48, 100, 1092316, 52431200),
            (48, 12345, 134846492, 6472631644),
            (200, 1, 2621, 524388),
            (200, 3, 7865, 1573164),
            (200, 7, 18353, 3670716),
            (200, 100, 262194, 52438800),
            (200, 12345, 32367849, 6473569938),
            (1000, 1, 524, 524788),
            (1000, 3, 1574, 1574364),
            (1000, 7, 3673, 3673517),
            (1000, 100, 52478, 52478815),
            (1000, 12345, 6478509, 6478509822),
            (4096, 1, 128, 526338),
            (4096, 3, 385, 1579015),
            (4096, 7, 899, 3684370),
            (4096, 100, 12850, 52633866),
            (4096, 12345, 1586340, 6497650839),
            (100000, 1, 5, 575876),
            (100000, 3, 17, 1727629),
            (100000, 7, 40, 4031135),
            (100000, 100, 575, 57587649),
            (100000, 12345, 71091, 7109195322),
            (300000, 1, 2, 688515),
            (300000, 3, 6, 2065546),
            (300000, 7, 16, 4819609),
            (300000, 100, 229, 68851565),
            (300000, 12345, 28332, 8499725770),
            (1048576, 1, 1, 1212696),
            (1048576, 3, 3, 3638089),
            (1048576, 7, 8, 8488876),
            (1048576, 100, 115, 121269664),
            (1048576, 12345, 14277, 14970740067),
            (3145733, 1, 1, 3153549),
            (3145733, 3, 3, 9460649),
            (3145733, 7, 7, 22074848),
            (3145733, 100, 100, 315354979),
            (3145733, 12345, 12375, 38930572205),
        ];
        for &(size, count, c, b) in want {
            assert_eq!(
                scale(count, size * count, 512 * 1024),
                (c, b),
                "{size} × {count}"
            );
            assert_eq!(
                scale_by_size(count, size, 512 * 1024),
                (c, b),
                "{size} × {count}"
            );
        }
    }
}
