//! Acceptance test: gospy's reconstruction of every goroutine from a snapshot
//! must match what the Go runtime itself printed (`runtime.Stack(buf, true)`,
//! written by the fixture just before the capture), for every toolchain.
//!
//! Each test builds tests/fixtures/goroutines with one toolchain, starts it,
//! captures it with `gospy capture`, kills it, and then compares
//! `gospy analyze SNAP dump --json` goroutine by goroutine with the oracle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use common::*;

/// One goroutine of `gospy analyze SNAP dump --json`.
#[derive(Debug, Clone, Deserialize)]
struct DumpGoroutine {
    id: u64,
    status: String,
    wait_reason: Option<String>,
    state: String,
    wait_minutes: u64,
    locked_to_thread: bool,
    system: bool,
    frames: Vec<DumpFrame>,
    created_by: Option<DumpCreatedBy>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct DumpFrame {
    function: String,
    file: String,
    line: u32,
    inlined: bool,
    offset: Option<u64>,
    /// The argument list as the runtime prints it (null for inlined frames).
    #[serde(default)]
    args: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct DumpCreatedBy {
    function: String,
    goroutine: Option<u64>,
    file: String,
    line: u32,
}

/// `gospy analyze SNAP summary --json` (the fields this test needs).
#[derive(Debug, Deserialize)]
struct Summary {
    go_version: String,
    gomaxprocs: usize,
    goroutine_count: usize,
}

impl DumpGoroutine {
    fn labels(&self) -> BTreeMap<String, String> {
        self.labels.clone().unwrap_or_default()
    }
}

fn dump(snapshot: &Path, all: bool) -> Vec<DumpGoroutine> {
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

fn summary(snapshot: &Path) -> Summary {
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

/// Runs the whole comparison for one toolchain. With `embed`, the fixture
/// runs from a private copy of its binary that is deleted before analysis,
/// so the snapshot's embedded copy (--embed-binary) must be used.
fn dump_matches_runtime(version: &str, pie: bool, embed: bool) {
    let Some(built) = try_build_fixture("goroutines", version, pie, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-dump-test-")
        .tempdir()
        .unwrap();
    let binary: PathBuf = if embed {
        let copy = work.path().join("goroutines");
        std::fs::copy(&built, &copy).unwrap();
        copy
    } else {
        built
    };
    let mut fx = Fixture::start(&binary);
    let oracle = fx.oracle();

    // Two snapshots back to back: the busy goroutine is "running" except for
    // the few microseconds after each (10 ms) preemption; the second snapshot
    // is used only if the first caught it in between.
    let extra: &[&str] = if embed { &["--embed-binary"] } else { &[] };
    let snaps = [work.path().join("a.gss"), work.path().join("b.gss")];
    for s in &snaps {
        capture(fx.pid, s, extra);
    }
    fx.kill();
    if embed {
        std::fs::remove_file(&binary).unwrap();
    }

    let busy_id = oracle.meta.busy_goroutine_id;
    let mut chosen = None;
    for s in &snaps {
        let d = dump(s, false);
        let busy_running = d.iter().any(|g| g.id == busy_id && g.status == "running");
        if busy_running || s == snaps.last().unwrap() {
            chosen = Some((s.clone(), d));
            break;
        }
        eprintln!(
            "note: busy goroutine not running in {}; using the next snapshot",
            s.display()
        );
    }
    let (snap, got) = chosen.unwrap();

    let mut problems = Vec::new();
    compare(&oracle, &got, &mut problems);
    check_all(&got, &dump(&snap, true), &mut problems);

    let s = summary(&snap);
    let meta = &oracle.meta;
    if s.go_version.trim_start_matches("go") != meta.go_version.trim_start_matches("go") {
        problems.push(format!(
            "summary go_version {:?}, runtime says {:?}",
            s.go_version, meta.go_version
        ));
    }
    if s.gomaxprocs != meta.gomaxprocs {
        problems.push(format!(
            "summary gomaxprocs {}, runtime says {}",
            s.gomaxprocs, meta.gomaxprocs
        ));
    }
    // The fixture starts and ends no goroutine after runtime.NumGoroutine()
    // (taken right after the oracle), so the counts must agree.
    if s.goroutine_count != meta.num_goroutine {
        problems.push(format!(
            "summary goroutine_count {}, runtime.NumGoroutine() said {}",
            s.goroutine_count, meta.num_goroutine
        ));
    }

    if !problems.is_empty() {
        panic!(
            "go {version} (pie={pie}, embed={embed}): gospy's dump differs from the runtime's \
             ({} problems, snapshot {}):\n\n{}",
            problems.len(),
            snap.display(),
            problems.join("\n")
        );
    }
}

/// Compares gospy's default dump with the oracle; appends readable problems.
fn compare(oracle: &Oracle, got: &[DumpGoroutine], problems: &mut Vec<String>) {
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
fn compare_blocked(want: &OracleGoroutine, g: &DumpGoroutine, go: (u32, u32)) -> Vec<String> {
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

fn as_dump_frame(f: &OracleFrame) -> DumpFrame {
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
fn compare_frames(want: &OracleGoroutine, got: &[DumpFrame], go: (u32, u32), d: &mut Vec<String>) {
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

fn frame_line(f: &DumpFrame) -> String {
    format!("({}) ", f.args.as_deref().unwrap_or("..."))
        + &render_frame(&f.function, f.inlined, &f.file, f.line, f.offset)
            .trim_end()
            .replace('\n', " ")
}

/// The busy goroutine spins in main.busyLoop: gospy sees it running (its
/// frames come from the thread's registers).
fn check_busy(want: &OracleGoroutine, g: &DumpGoroutine, problems: &mut Vec<String>) {
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
fn check_writer(g: &DumpGoroutine, problems: &mut Vec<String>) {
    let top = g.frames.first().map(|f| f.function.as_str());
    if g.state != "chan receive" || top != Some("main.main") || g.created_by.is_some() {
        problems.push(format!(
            "main goroutine {}: state {:?}, top frame {top:?}, created_by {:?}; want \"chan receive\" in main.main, no creator",
            g.id, g.state, g.created_by
        ));
    }
}

/// --all adds system goroutines (and only those).
fn check_all(default: &[DumpGoroutine], all: &[DumpGoroutine], problems: &mut Vec<String>) {
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
fn render_diff(
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
fn quote_lines(out: &mut String, text: &str) {
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

fn render_dump_goroutine(g: &DumpGoroutine) -> String {
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

macro_rules! dump_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, embed = $embed:literal;)*) => {$(
        #[test]
        fn $name() {
            dump_matches_runtime($version, $pie, $embed);
        }
    )*};
}

dump_tests! {
    dump_matches_runtime_go1_19: "1.19", pie = false, embed = false;
    dump_matches_runtime_go1_21: "1.21", pie = false, embed = false;
    dump_matches_runtime_go1_22: "1.22", pie = false, embed = true;
    dump_matches_runtime_go1_23: "1.23", pie = false, embed = false;
    dump_matches_runtime_go1_24: "1.24", pie = false, embed = false;
    dump_matches_runtime_go1_25: "1.25", pie = false, embed = false;
    dump_matches_runtime_go1_26: "1.26", pie = false, embed = false;
    dump_matches_runtime_go1_27: "1.27", pie = false, embed = false;
    dump_matches_runtime_go1_19_pie: "1.19", pie = true, embed = true;
    dump_matches_runtime_go1_27_pie: "1.27", pie = true, embed = true;
    dump_matches_runtime_go1_21_pie: "1.21", pie = true, embed = false;
    dump_matches_runtime_go1_22_pie: "1.22", pie = true, embed = false;
    dump_matches_runtime_go1_23_pie: "1.23", pie = true, embed = false;
    dump_matches_runtime_go1_24_pie: "1.24", pie = true, embed = false;
    dump_matches_runtime_go1_25_pie: "1.25", pie = true, embed = false;
    dump_matches_runtime_go1_26_pie: "1.26", pie = true, embed = false;
}

/// Checks that `gospy analyze` fails cleanly: non-zero exit, no panic, no
/// output on stdout, and a short error (one line, plus at most a hint).
fn assert_clean_failure(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !out.status.success()
            && out.status.code() != Some(101)
            && !stderr.contains("panicked")
            && out.stdout.is_empty()
            && !lines.is_empty()
            && lines.len() <= 2,
        "{what}: want a non-zero exit and a one-line error; got {}\nstdout:\n{}\nstderr:\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A snapshot taken without --embed-binary, whose executable is gone, cannot
/// be analyzed; neither with a binary of another build (other build id).
#[test]
fn analyze_without_matching_binary_fails() {
    let Some(built) = try_build_fixture("goroutines", "1.22", false, "") else {
        return;
    };
    let other = build_fixture("goroutines", "1.22", false, "-X main.buildTag=other");
    let work = tempfile::Builder::new()
        .prefix("gospy-nobin-test-")
        .tempdir()
        .unwrap();
    let binary = work.path().join("goroutines");
    std::fs::copy(&built, &binary).unwrap();
    let snap = work.path().join("snap.gss");
    {
        let mut fx = Fixture::start(&binary);
        capture(fx.pid, &snap, &[]);
        fx.kill();
    }
    std::fs::remove_file(&binary).unwrap();

    let out = gospy([
        "analyze".as_ref(),
        snap.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ]);
    assert_clean_failure(&out, "analyze with the binary deleted");

    let out = gospy([
        "analyze".as_ref(),
        snap.as_os_str(),
        "--bin".as_ref(),
        other.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ]);
    assert_clean_failure(&out, "analyze --bin <a build with another build id>");

    // The right binary, given explicitly, works.
    let dumped = dump_with_bin(&snap, &built);
    assert!(!dumped.is_empty());
}

fn dump_with_bin(snap: &Path, bin: &Path) -> Vec<DumpGoroutine> {
    let out = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "--bin".as_ref(),
        bin.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON: {e}\n{out}"))
}
