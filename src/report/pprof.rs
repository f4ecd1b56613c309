//! Exports for the tools Go users already have: a pprof goroutine profile
//! (gzip-compressed profile.proto, what `go tool pprof` reads) and folded
//! stacks (`outer;...;inner count`) for flamegraph tools.
//!
//! The profile is written with a small protobuf encoder (profile.proto is a
//! handful of messages); field numbers are those of
//! github.com/google/pprof/proto/profile.proto.

use crate::analyze::{Goroutine, Model, Session};
use crate::goruntime::traceback::Frame;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// Minimal protobuf writer.
#[derive(Default)]
pub(super) struct Pb {
    pub(super) buf: Vec<u8>,
}

impl Pb {
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub(super) fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    /// A varint field (int64 / uint64 / bool); zero values are omitted as
    /// proto3 does.
    pub(super) fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }
    pub(super) fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }
    pub(super) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub(super) fn msg(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.buf);
    }
    pub(super) fn packed(&mut self, field: u32, vs: &[u64]) {
        if vs.is_empty() {
            return;
        }
        let mut p = Pb::default();
        vs.iter().for_each(|&v| p.varint(v));
        self.bytes(field, &p.buf);
    }
}

/// The string table: index 0 is "".
#[derive(Default)]
pub(super) struct Strings {
    pub(super) list: Vec<String>,
    idx: HashMap<String, i64>,
}

impl Strings {
    pub(super) fn new() -> Self {
        let mut s = Strings::default();
        s.id("");
        s
    }
    pub(super) fn id(&mut self, v: &str) -> i64 {
        if let Some(&i) = self.idx.get(v) {
            return i;
        }
        let i = self.list.len() as i64;
        self.list.push(v.to_string());
        self.idx.insert(v.to_string(), i);
        i
    }
}

/// Physical frames of a goroutine, innermost first; each holds its logical
/// frames innermost first (inlined calls share the physical frame's PC).
/// runtime.goexit is left out, as the runtime's own goroutine profile does.
fn physical_frames(g: &Goroutine) -> Vec<(u64, Vec<&Frame>)> {
    let mut out: Vec<(u64, Vec<&Frame>)> = Vec::new();
    // A physical frame is a run of inlined frames ended by its function's
    // own (not inlined) frame.
    let mut open = false;
    for f in g.stack.frames.iter() {
        if &*f.function == "runtime.goexit" {
            continue;
        }
        match out.last_mut() {
            Some(l) if open => l.1.push(f),
            _ => out.push((f.pc, vec![f])),
        }
        open = f.inlined;
    }
    out
}

/// A sample: location ids (innermost first) and labels.
type SampleKey = (Vec<u64>, Vec<(String, String)>);

/// Options shared by the exports.
pub struct ExportOptions {
    /// Include system goroutines.
    pub all: bool,
}

/// The uncompressed profile.proto bytes of a goroutine profile.
pub fn profile_proto(s: &Session, m: &Model, o: &ExportOptions) -> Vec<u8> {
    let mut st = Strings::new();
    let mut prof = Pb::default();

    // sample_type = [goroutine/count], period_type goroutine/count, period 1.
    let vt = |st: &mut Strings| {
        let mut v = Pb::default();
        v.int(1, st.id("goroutine"));
        v.int(2, st.id("count"));
        v
    };
    let sample_type = vt(&mut st);
    prof.msg(1, sample_type);

    // Locations keyed by (pc, function names) so that one pc always maps to
    // the same inline chain; functions keyed by (name, file).
    let mut locations: HashMap<(u64, Vec<(String, u32)>), u64> = HashMap::new();
    let mut loc_msgs: Vec<Pb> = Vec::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut fn_msgs: Vec<Pb> = Vec::new();

    // Samples: one per distinct (stack, labels, state).
    let mut samples: BTreeMap<SampleKey, i64> = BTreeMap::new();
    for g in m.goroutines.iter().filter(|g| o.all || !g.system) {
        let mut ids = Vec::new();
        for (pc, frames) in physical_frames(g) {
            let sig: Vec<(String, u32)> = frames
                .iter()
                .map(|f| (f.function.to_string(), f.line))
                .collect();
            let next_id = loc_msgs.len() as u64 + 1;
            let id = *locations.entry((pc, sig)).or_insert_with(|| {
                let mut l = Pb::default();
                l.uint(1, next_id);
                l.uint(2, 1); // mapping
                l.uint(3, pc);
                for f in &frames {
                    let key = (f.function.to_string(), f.file.to_string());
                    let fid = match functions.get(&key) {
                        Some(&id) => id,
                        None => {
                            let id = fn_msgs.len() as u64 + 1;
                            let mut fm = Pb::default();
                            fm.uint(1, id);
                            fm.int(2, st.id(&f.function));
                            fm.int(3, st.id(&f.function));
                            fm.int(4, st.id(&f.file));
                            fn_msgs.push(fm);
                            functions.insert(key, id);
                            id
                        }
                    };
                    let mut line = Pb::default();
                    line.uint(1, fid);
                    line.int(2, f.line as i64);
                    l.msg(4, line);
                }
                loc_msgs.push(l);
                next_id
            });
            ids.push(id);
        }
        let mut labels: Vec<(String, String)> = g
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.push(("state".into(), g.state.to_string()));
        *samples.entry((ids, labels)).or_insert(0) += 1;
    }
    for ((ids, labels), count) in &samples {
        let mut sm = Pb::default();
        sm.packed(1, ids);
        sm.packed(2, &[*count as u64]);
        for (k, v) in labels {
            let mut lm = Pb::default();
            lm.int(1, st.id(k));
            lm.int(2, st.id(v));
            sm.msg(3, lm);
        }
        prof.msg(2, sm);
    }

    // One mapping: the executable, with symbolized functions.
    let mut mp = Pb::default();
    mp.uint(1, 1);
    let (lo, hi) = text_range(s);
    mp.uint(2, lo);
    mp.uint(3, hi);
    mp.int(5, st.id(s.meta.exe_path.trim_end_matches(" (deleted)")));
    let build_id = s
        .meta
        .go_build_id
        .clone()
        .or_else(|| s.meta.gnu_build_id.clone())
        .unwrap_or_default();
    mp.int(6, st.id(&build_id));
    mp.uint(7, 1); // has_functions
    mp.uint(8, 1); // has_filenames
    mp.uint(9, 1); // has_line_numbers
    mp.uint(10, 1); // has_inline_frames
    prof.msg(3, mp);

    for l in loc_msgs {
        prof.msg(4, l);
    }
    for f in fn_msgs {
        prof.msg(5, f);
    }
    let period_type = vt(&mut st);
    for v in &st.list {
        prof.bytes(6, v.as_bytes());
    }
    prof.int(9, s.meta.wall_time_ns as i64);
    prof.msg(11, period_type);
    prof.int(12, 1);
    prof.buf
}

/// Runtime address range of the executable's text.
fn text_range(s: &Session) -> (u64, u64) {
    let md = &s.target.bin.moduledata;
    (s.target.rt(md.text), s.target.rt(md.etext))
}

/// The profile, gzip-compressed (what `go tool pprof` expects).
pub fn profile_gz(s: &Session, m: &Model, o: &ExportOptions) -> std::io::Result<Vec<u8>> {
    let raw = profile_proto(s, m, o);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw)?;
    enc.finish()
}

/// Folded stacks: `outer;...;inner count`, one line per distinct stack,
/// sorted. Frames are those a traceback shows (all frames with `all`).
pub fn folded(m: &Model, o: &ExportOptions) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in m.goroutines.iter().filter(|g| o.all || !g.system) {
        let names: Vec<&str> = g
            .stack
            .frames
            .iter()
            .rev()
            .filter(|f| o.all || f.shown)
            .map(|f| &*f.function)
            .collect();
        let line = if names.is_empty() {
            format!("[{}]", g.state)
        } else {
            names.join(";")
        };
        *counts.entry(line).or_insert(0) += 1;
    }
    let mut out = String::new();
    for (k, v) in counts {
        out.push_str(&k);
        out.push(' ');
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn varints() {
        let mut p = Pb::default();
        p.varint(300);
        assert_eq!(p.buf, [0xac, 0x02]);
        let mut p = Pb::default();
        p.uint(1, 0);
        assert!(p.buf.is_empty());
        p.int(2, -1);
        assert_eq!(p.buf.len(), 11);
    }
    #[test]
    fn strings_start_empty() {
        let mut s = Strings::new();
        assert_eq!(s.id(""), 0);
        assert_eq!(s.id("a"), 1);
        assert_eq!(s.id("a"), 1);
    }
}
