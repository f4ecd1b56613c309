//! Acceptance test: gospy's reconstruction of every goroutine from a snapshot
//! must match what the Go runtime itself printed (`runtime.Stack(buf, true)`,
//! written by the fixture just before the capture), for every toolchain.
//!
//! Each test builds tests/fixtures/goroutines with one toolchain, starts it,
//! captures it with `gospy capture`, kills it, and then compares
//! `gospy analyze SNAP dump --json` goroutine by goroutine with the oracle.

mod common;

use std::path::{Path, PathBuf};

use common::dumpcmp::*;
use common::*;

/// Runs the whole comparison for one toolchain. With `embed`, the fixture
/// runs from a private copy of its binary that is deleted before analysis,
/// so the snapshot's embedded copy (--embed-binary) must be used.
fn dump_matches_runtime(version: &str, pie: bool, embed: bool) {
    dump_matches(version, pie, embed, false);
}

/// The fixture idle (no busy goroutine): captured through the quiet
/// pre-read (its goroutines read before the stop, the pause proving that
/// no thread ran since), whose dump must equal the runtime's just the same.
fn dump_matches_runtime_quiet(version: &str, pie: bool) {
    dump_matches(version, pie, false, true);
}

fn dump_matches(version: &str, pie: bool, embed: bool, idle: bool) {
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
    let env: &[(&str, &str)] = if idle {
        &[("GOSPY_FIXTURE_NO_BUSY", "1")]
    } else {
        &[]
    };
    let mut fx = Fixture::start_with_env(&binary, env);
    let oracle = fx.oracle();

    // Two snapshots back to back: the busy goroutine is "running" except for
    // the few microseconds after each (10 ms) preemption; the second snapshot
    // is used only if the first caught it in between.
    let extra: &[&str] = if embed { &["--embed-binary"] } else { &[] };
    let snaps = [work.path().join("a.gss"), work.path().join("b.gss")];
    let mut quiet_kept = 0;
    let mut kept_snap = None;
    for s in &snaps {
        if idle {
            let out = gospy_ok([
                "capture".as_ref(),
                "--pid".as_ref(),
                fx.pid.to_string().as_ref(),
                "-o".as_ref(),
                s.as_os_str(),
                "--json".as_ref(),
            ]);
            let c: serde_json::Value = serde_json::from_str(&out).unwrap();
            if c["quiet"]["kept"] == serde_json::json!(true) {
                quiet_kept += 1;
                kept_snap = Some(s.clone());
            } else {
                eprintln!("note: quiet pre-read not kept: {}", c["quiet"]);
            }
        } else {
            capture(fx.pid, s, extra);
        }
    }
    // An idle process is quiet: at least one of the two captures (both,
    // unless a thread happened to wake) went through the pre-read.
    assert!(
        !idle || quiet_kept > 0,
        "go {version}: the idle fixture was never captured through the quiet pre-read"
    );
    fx.kill();
    if embed {
        std::fs::remove_file(&binary).unwrap();
    }

    let busy_id = oracle.meta.busy_goroutine_id;
    let mut chosen = None;
    // Idle: a capture that went through the quiet pre-read.
    let snaps: Vec<PathBuf> = match (idle, kept_snap) {
        (true, Some(k)) => vec![k],
        _ => snaps.to_vec(),
    };
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

macro_rules! quiet_dump_tests {
    ($($name:ident: $version:literal, pie = $pie:literal;)*) => {$(
        #[test]
        fn $name() {
            dump_matches_runtime_quiet($version, $pie);
        }
    )*};
}

quiet_dump_tests! {
    dump_matches_runtime_quiet_go1_21: "1.21", pie = false;
    dump_matches_runtime_quiet_go1_23: "1.23", pie = false;
    dump_matches_runtime_quiet_go1_25: "1.25", pie = true;
    dump_matches_runtime_quiet_go1_27: "1.27", pie = false;
}
