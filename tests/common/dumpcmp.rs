//! The comparison of `gospy ... dump --json` with a fixture's own
//! `runtime.Stack(buf, true)` oracle, shared by tests/dump_vs_runtime.rs and
//! tests/cgo.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::*;

/// One goroutine of `gospy analyze SNAP dump --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DumpGoroutine {
    pub id: u64,
    pub status: String,
    pub wait_reason: Option<String>,
    pub state: String,
    pub wait_minutes: u64,
    pub locked_to_thread: bool,
    pub system: bool,
    pub frames: Vec<DumpFrame>,
    pub created_by: Option<DumpCreatedBy>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DumpFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub inlined: bool,
    pub offset: Option<u64>,
    /// The argument list as the runtime prints it (null for inlined frames).
    #[serde(default)]
    pub args: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DumpCreatedBy {
    pub function: String,
    pub goroutine: Option<u64>,
    pub file: String,
    pub line: u32,
}

/// `gospy analyze SNAP summary --json` (the fields this test needs).
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub go_version: String,
    pub gomaxprocs: usize,
    pub goroutine_count: usize,
}

impl DumpGoroutine {
    fn labels(&self) -> BTreeMap<String, String> {
        self.labels.clone().unwrap_or_default()
    }
}

pub fn dump(snapshot: &Path, all: bool) -> Vec<DumpGoroutine> {
    let mut args = vec![
        "analyze".as_ref(),
        snapshot.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ];
    if all {
        args.push("--all".as_ref());
    }
    let out = gospy_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "gospy analyze {} dump --json (all={all}): bad JSON: {e}\n{out}",
            snapshot.display()
        )
    })
}

pub fn summary(snapshot: &Path) -> Summary {
    let out = gospy_ok([
        "analyze".as_ref(),
        snapshot.as_os_str(),
        "summary".as_ref(),
        "--json".as_ref(),
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "gospy analyze {} summary --json: {e}\n{out}",
            snapshot.display()
        )
    })
}

/// Compares gospy's default dump with the oracle; appends readable problems.
pub fn compare(oracle: &Oracle, got: &[DumpGoroutine], problems: &mut Vec<String>) {
    let meta = &oracle.meta;
    let by_id: BTreeMap<u64, &DumpGoroutine> = got.iter().map(|g| (g.id, g)).collect();

    // Same goroutines: nothing started or exited after the oracle.
    let want_ids: BTreeSet<u64> = oracle.goroutines.iter().map(|g| g.id).collect();
    let got_ids: BTreeSet<u64> = by_id.keys().copied().collect();
    if got.len() != by_id.len() {
        problems.push(format!(
            "duplicate goroutine ids in gospy's dump ({} entries)",
            got.len()
        ));
    }
    if want_ids != got_ids {
        problems.push(format!(
            "goroutine ids differ: only in the runtime's dump {:?}, only in gospy's {:?}",
            want_ids.difference(&got_ids).collect::<Vec<_>>(),
            got_ids.difference(&want_ids).collect::<Vec<_>>()
        ));
    }
    if got.len() != meta.num_goroutine {
        problems.push(format!(
            "gospy's dump has {} goroutines, runtime.NumGoroutine() said {}",
            got.len(),
            meta.num_goroutine
        ));
    }
    for g in got.iter().filter(|g| g.system) {
        problems.push(format!(
            "goroutine {} is marked system but shown without --all",
            g.id
        ));
    }

    for want in &oracle.goroutines {
        let Some(g) = by_id.get(&want.id) else {
            continue; // reported above
        };
        if want.id == meta.busy_goroutine_id {
            check_busy(want, g, problems);
        } else if want.id == meta.oracle_goroutine_id {
            check_writer(g, problems);
        } else if want.unavailable || want.state == "running" || want.state == "runnable" {
            // Not parked when the oracle was taken: nothing stable to compare.
        } else {
            let diffs = compare_blocked(want, g, oracle.meta.go_minor());
            if !diffs.is_empty() {
                problems.push(render_diff(oracle, want, g, &diffs));
            }
        }
    }

    // Labels: exactly the goroutines the fixture labelled, with its labels.
    let got_labels: BTreeMap<u64, BTreeMap<String, String>> = got
        .iter()
        .filter(|g| !g.labels().is_empty())
        .map(|g| (g.id, g.labels()))
        .collect();
    if got_labels != meta.labels {
        problems.push(format!(
            "labels differ:\n  runtime (meta.json): {:?}\n  gospy:               {got_labels:?}",
            meta.labels
        ));
    }
}

/// Differences between a goroutine parked in the oracle and gospy's view.
pub fn compare_blocked(want: &OracleGoroutine, g: &DumpGoroutine, go: (u32, u32)) -> Vec<String> {
    let mut d = Vec::new();
    if g.state != want.state {
        d.push(format!("state {:?}, want {:?}", g.state, want.state));
    }
    let (status, reason) = if want.state == "syscall" {
        ("syscall", None)
    } else {
        ("waiting", Some(want.state.as_str()))
    };
    if g.status != status || g.wait_reason.as_deref() != reason {
        d.push(format!(
            "status {:?} / wait_reason {:?}, want {status:?} / {reason:?}",
            g.status, g.wait_reason
        ));
    }
    if g.locked_to_thread != want.locked_to_thread {
        d.push(format!(
            "locked_to_thread {}, want {}",
            g.locked_to_thread, want.locked_to_thread
        ));
    }
    if g.wait_minutes < want.wait_minutes {
        d.push(format!(
            "wait_minutes {}, want at least {}",
            g.wait_minutes, want.wait_minutes
        ));
    }
    if g.system {
        d.push("marked system".into());
    }
    compare_frames(want, &g.frames, go, &mut d);
    let want_cb = want.created_by.as_ref().map(|c| DumpCreatedBy {
        function: c.function.clone(),
        goroutine: c.goroutine,
        file: c.file.clone(),
        line: c.line,
    });
    if g.created_by != want_cb {
        d.push(format!("created_by {:?}, want {want_cb:?}", g.created_by));
    }
    d
}

pub fn as_dump_frame(f: &OracleFrame) -> DumpFrame {
    DumpFrame {
        function: f.function.clone(),
        file: f.file.clone(),
        line: f.line,
        inlined: f.inlined,
        offset: f.offset,
        args: if f.inlined {
            None
        } else {
            Some(f.args.clone())
        },
    }
}

/// Frames must be equal (function, file, line, inlined, offset), except where
/// the runtime left frames out: then gospy may show them all, and must agree
/// on the ones the runtime printed.
pub fn compare_frames(
    want: &OracleGoroutine,
    got: &[DumpFrame],
    go: (u32, u32),
    d: &mut Vec<String>,
) {
    let want_frames: Vec<DumpFrame> = want.frames.iter().map(as_dump_frame).collect();
    let mut pairs: Vec<(usize, usize)> = Vec::new(); // (index in want, index in got)
                                                     // Go 1.19/1.20 stop after 100 physical frames and print no marker when
                                                     // hidden runtime frames were among them.
    let physical = want.frames.iter().filter(|f| !f.inlined).count();
    let silently_truncated = want.elided.is_none() && go < (1, 21) && physical >= 90;
    match &want.elided {
        _ if got.len() == want_frames.len() => pairs.extend((0..got.len()).map(|i| (i, i))),
        None if silently_truncated && got.len() > want_frames.len() => {
            pairs.extend((0..want_frames.len()).map(|i| (i, i)));
        }
        Some(e) if got.len() > want_frames.len() => {
            if let Some(count) = e.count {
                if got.len() != want_frames.len() + count {
                    d.push(format!(
                        "{} frames, want {} ({} shown + {count} elided by the runtime)",
                        got.len(),
                        want_frames.len() + count,
                        want_frames.len()
                    ));
                }
            }
            pairs.extend((0..e.at).map(|i| (i, i)));
            let outer = want_frames.len() - e.at;
            let base = got.len() - outer;
            pairs.extend((0..outer).map(|i| (e.at + i, base + i)));
        }
        _ => {
            d.push(format!("{} frames, want {}", got.len(), want_frames.len()));
            let n = got.len().min(want_frames.len());
            pairs.extend((0..n).map(|i| (i, i)));
        }
    }
    for (wi, gi) in pairs {
        let (w, g) = (&want_frames[wi], &got[gi]);
        if w != g {
            let mut fields = Vec::new();
            if w.function != g.function {
                fields.push("function");
            }
            if w.file != g.file {
                fields.push("file");
            }
            if w.line != g.line {
                fields.push("line");
            }
            if w.inlined != g.inlined {
                fields.push("inlined");
            }
            if w.offset != g.offset {
                fields.push("offset");
            }
            if w.args != g.args {
                fields.push("args");
            }
            d.push(format!(
                "frame #{gi}: {} differ\n      want {}\n      got  {}",
                fields.join(", "),
                frame_line(w),
                frame_line(g)
            ));
        }
    }
}

pub fn frame_line(f: &DumpFrame) -> String {
    format!("({}) ", f.args.as_deref().unwrap_or("..."))
        + &render_frame(&f.function, f.inlined, &f.file, f.line, f.offset)
            .trim_end()
            .replace('\n', " ")
}

/// The busy goroutine spins in main.busyLoop: gospy sees it running (its
/// frames come from the thread's registers).
pub fn check_busy(want: &OracleGoroutine, g: &DumpGoroutine, problems: &mut Vec<String>) {
    if g.status != "running" || g.state != "running" {
        problems.push(format!(
            "busy goroutine {}: status {:?} state {:?}, want running",
            g.id, g.status, g.state
        ));
    }
    if !g
        .frames
        .iter()
        .take(4)
        .any(|f| f.function == "main.busyLoop")
    {
        problems.push(format!(
            "busy goroutine {}: main.busyLoop not among the top frames: {:?}",
            g.id,
            g.frames.iter().map(|f| &f.function).collect::<Vec<_>>()
        ));
    }
    let want_cb = want
        .created_by
        .as_ref()
        .map(|c| (c.function.as_str(), c.goroutine));
    let got_cb = g
        .created_by
        .as_ref()
        .map(|c| (c.function.as_str(), c.goroutine));
    if got_cb != want_cb {
        problems.push(format!(
            "busy goroutine {}: created_by {got_cb:?}, want {want_cb:?}",
            g.id
        ));
    }
}

/// The goroutine that wrote the oracle (main) then parked in `<-forever`.
pub fn check_writer(g: &DumpGoroutine, problems: &mut Vec<String>) {
    let top = g.frames.first().map(|f| f.function.as_str());
    if g.state != "chan receive" || top != Some("main.main") || g.created_by.is_some() {
        problems.push(format!(
            "main goroutine {}: state {:?}, top frame {top:?}, created_by {:?}; want \"chan receive\" in main.main, no creator",
            g.id, g.state, g.created_by
        ));
    }
}

/// --all adds system goroutines (and only those).
pub fn check_all(default: &[DumpGoroutine], all: &[DumpGoroutine], problems: &mut Vec<String>) {
    let shown: BTreeSet<u64> = default.iter().map(|g| g.id).collect();
    let mut system = 0;
    for g in all {
        if g.system {
            system += 1;
        }
        if !shown.contains(&g.id) && !g.system {
            problems.push(format!(
                "--all shows goroutine {} that is neither system nor in the default dump",
                g.id
            ));
        }
    }
    let all_ids: BTreeSet<u64> = all.iter().map(|g| g.id).collect();
    if !shown.is_subset(&all_ids) {
        problems.push(format!(
            "--all lacks goroutines {:?} of the default dump",
            shown.difference(&all_ids).collect::<Vec<_>>()
        ));
    }
    if system == 0 {
        problems
            .push("--all shows no system goroutine (forcegc, bgsweep, ... always exist)".into());
    }
}

/// Expected (runtime) vs got (gospy) for one goroutine.
pub fn render_diff(
    oracle: &Oracle,
    want: &OracleGoroutine,
    g: &DumpGoroutine,
    diffs: &[String],
) -> String {
    let mut s = format!("goroutine {}:\n", want.id);
    for d in diffs {
        let _ = writeln!(s, "  - {d}");
    }
    let expected = oracle
        .block(want.id)
        .map(str::to_string)
        .unwrap_or_else(|| render_oracle_goroutine(want));
    let _ = writeln!(s, "  --- expected (runtime.Stack)");
    quote_lines(&mut s, &expected);
    let _ = writeln!(s, "  +++ got (gospy)");
    quote_lines(&mut s, &render_dump_goroutine(g));
    s
}

/// Appends `text` indented, eliding the middle of very long stacks.
pub fn quote_lines(out: &mut String, text: &str) {
    const HEAD: usize = 40;
    const TAIL: usize = 12;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if lines.len() > HEAD + TAIL + 1 && i == HEAD {
            let _ = writeln!(out, "  | [... {} lines ...]", lines.len() - HEAD - TAIL);
        }
        if lines.len() <= HEAD + TAIL + 1 || i < HEAD || i >= lines.len() - TAIL {
            let _ = writeln!(out, "  | {l}");
        }
    }
}

pub fn render_dump_goroutine(g: &DumpGoroutine) -> String {
    let mut s = format!("goroutine {} [{}", g.id, g.state);
    if g.wait_minutes > 0 {
        let _ = write!(s, ", {} minutes", g.wait_minutes);
    }
    if g.locked_to_thread {
        s += ", locked to thread";
    }
    let _ = writeln!(
        s,
        "]: (status {}, wait_reason {:?})",
        g.status, g.wait_reason
    );
    for f in &g.frames {
        s += &render_frame(&f.function, f.inlined, &f.file, f.line, f.offset);
    }
    if let Some(c) = &g.created_by {
        s += &render_created_by(&c.function, c.goroutine, &c.file, c.line);
    }
    s
}

// ---------------------------------------------------------------------------
// Two runs of the same fixture source (e.g. unstripped vs stripped)
// ---------------------------------------------------------------------------

/// Goroutines minus what legitimately differs between two runs: running or
/// runnable goroutines (the busy loop; where a preemption caught it), wait
/// times, M ids, and goroutine ids (goroutines started concurrently by other
/// goroutines get ids from per-P caches, in either order). Sorted.
pub fn normalize_goroutines(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for g in v.as_array().expect("goroutine list") {
        let mut g = g.clone();
        let status = g["status"].as_str().unwrap_or("").to_string();
        let o = g.as_object_mut().unwrap();
        for k in ["wait_ns", "wait_minutes", "m", "id"] {
            o.remove(k);
        }
        if let Some(Value::Object(cb)) = o.get_mut("created_by") {
            cb.remove("goroutine");
        }
        // Argument values and blocked-on addresses hold heap addresses that
        // differ between two runs of the fixture.
        o.remove("waiting_on");
        if let Some(Value::Array(frames)) = o.get_mut("frames") {
            for f in frames {
                if let Some(f) = f.as_object_mut() {
                    f.remove("args");
                }
            }
        }
        if status == "running" || status == "runnable" || status == "preempted" {
            // Busy goroutines stop wherever they were: keep identity only.
            // Not even the start function: it is read from the frames when
            // the goroutine's stack was walked (from a thread's registers)
            // and from g.startpc otherwise (a wrapper such as
            // main.startAll.func1 for `go f(x)` before Go 1.21).
            o.retain(|k, _| k == "created_by");
        }
        out.push(g);
    }
    out.sort_by_key(|g| g.to_string());
    out
}

pub fn summary_facts(s: &Value) -> Value {
    serde_json::json!({
        "go_version": s["go_version"],
        "gomaxprocs": s["gomaxprocs"],
        "ncpu": s["ncpu"],
        "goroutine_count": s["goroutine_count"],
        "goroutines_listed": s["goroutines_listed"],
        "ps": s["ps"].as_array().map(|ps| ps.len()),
        "has_scheduler": !s["scheduler"].is_null(),
        "has_uptime": !s["uptime_ns"].is_null(),
        "system_goroutines": s["scheduler"]["system_goroutines"],
        "warnings": s["warnings"],
        "goroutine_lines": s["goroutines"].as_array().map(|gs| {
            let mut l: Vec<String> = gs.iter().map(|g| {
                let running = matches!(g["status"].as_str(), Some("running" | "runnable"));
                if running {
                    serde_json::json!([g["start_function"]])
                } else {
                    serde_json::json!([g["state"], g["start_function"], g["function"], g["file"], g["line"]])
                }.to_string()
            }).collect();
            l.sort();
            l
        }),
    })
}

pub fn first_diff(a: &[Value], b: &[Value]) -> String {
    let ids = |l: &[Value]| -> Vec<String> {
        l.iter()
            .map(|g| g["start_function"].as_str().unwrap_or("").to_string())
            .collect()
    };
    if ids(a) != ids(b) {
        return format!(
            "goroutines differ:\n  unstripped: {:?}\n  stripped:   {:?}",
            ids(a),
            ids(b)
        );
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return format!(
                "unstripped:\n{}\nstripped:\n{}",
                serde_json::to_string_pretty(x).unwrap(),
                serde_json::to_string_pretty(y).unwrap()
            );
        }
    }
    format!("lengths {} vs {}", a.len(), b.len())
}

/// Differences between the unstripped (0) and stripped (1) analyses: dump
/// --json, dump --json --all and summary --json (shared with tests/stripped.rs).
pub fn differences(
    what: &str,
    (d0, a0, s0): (&Value, &Value, &Value),
    (d1, a1, s1): (&Value, &Value, &Value),
) -> Option<String> {
    let (n0, n1) = (normalize_goroutines(d0), normalize_goroutines(d1));
    if n0 != n1 {
        return Some(format!("{what}: dump differs: {}", first_diff(&n0, &n1)));
    }
    let (n0, n1) = (normalize_goroutines(a0), normalize_goroutines(a1));
    if n0 != n1 {
        return Some(format!(
            "{what}: dump --all differs: {}",
            first_diff(&n0, &n1)
        ));
    }
    let (f0, f1) = (summary_facts(s0), summary_facts(s1));
    if f0 != f1 {
        return Some(format!(
            "{what}: summary differs:\nunstripped: {f0:#}\nstripped:   {f1:#}"
        ));
    }
    None
}
