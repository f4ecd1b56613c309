//! `--non-blocking`: the target is never stopped. Against tests/fixtures/churn
//! (thousands of goroutines started and ended per second), 100 consecutive
//! `gospy dump --pid N --non-blocking --json` runs never crash, never show a
//! function the program cannot be in, and flag unstable goroutines (without
//! frames, with a warning line each).

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;

use common::*;

const RUNS: usize = 100;

/// Functions of package main the fixture can be in, from its meta.json.
fn expected_functions(fx: &Fixture) -> BTreeSet<String> {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.dir.path().join("meta.json")).unwrap())
            .unwrap();
    meta["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A function of the Go runtime or standard library (the fixture imports
/// nothing else): its package path's first element has no dot and it is not
/// package main.
fn is_std(function: &str) -> bool {
    let first = function.split('/').next().unwrap_or("");
    let pkg = first.split('.').next().unwrap_or("");
    !function.starts_with("main.") && !pkg.is_empty() && !first[pkg.len()..].is_empty()
}

/// A compiler-generated wrapper of a `go f(x)` statement inside one of the
/// program's functions (`main.spawner.gowrap1` from Go 1.21, `main.main.func1`
/// before): the start function of a goroutine created but not yet started,
/// whose stack holds only the wrapper's frame.
fn is_go_wrapper_of(function: &str, expected: &BTreeSet<String>) -> bool {
    let Some((outer, last)) = function.rsplit_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let generated = last.strip_prefix("gowrap").is_some_and(digits)
        || last.strip_prefix("func").is_some_and(digits);
    generated && expected.contains(outer)
}

fn tracer_pid(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:").map(|v| v.trim().to_string()))
        .unwrap()
}

fn churn(version: &str) {
    let Some(bin) = try_build_fixture("churn", version, false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let expected = expected_functions(&fx);
    let pid = fx.pid.to_string();
    let (mut goroutines, mut unstable, mut frames, mut warned) = (0usize, 0usize, 0usize, 0usize);
    let t0 = Instant::now();
    for run in 0..RUNS {
        let out = gospy(["dump", "--pid", &pid, "--non-blocking", "--json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(101),
            "run {run}: gospy panicked:\n{err}"
        );
        assert!(out.status.success(), "run {run}: {:?}\n{err}", out.status);
        assert_eq!(tracer_pid(fx.pid), "0", "run {run}: the target was traced");
        let dump: Vec<Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("run {run}: bad JSON: {e}"));
        let warnings = err
            .lines()
            .filter(|l| l.starts_with("warning: unstable goroutine: g 0x"))
            .count();
        warned += warnings;
        let mut run_unstable = 0;
        let mut walk_unstable = 0;
        for g in &dump {
            goroutines += 1;
            let fs = g["frames"].as_array().unwrap();
            if g["unstable"] == Value::Bool(true) {
                run_unstable += 1;
                // Unstable found at analysis (the walk met a PC outside the
                // text): its reason follows in parentheses, no warning line.
                if g["stack_unavailable"].as_str().unwrap().ends_with(')') {
                    walk_unstable += 1;
                }
                assert!(
                    fs.is_empty(),
                    "run {run}: unstable goroutine with frames: {g}"
                );
                assert!(g["stack_unavailable"]
                    .as_str()
                    .unwrap()
                    .contains("unstable"));
                continue;
            }
            let mut names: Vec<&str> = fs.iter().map(|f| f["function"].as_str().unwrap()).collect();
            if let Some(c) = g["created_by"]["function"].as_str() {
                names.push(c);
            }
            if let Some(s) = g["start_function"].as_str() {
                names.push(s);
            }
            for n in names {
                assert!(
                    expected.contains(n) || is_std(n) || is_go_wrapper_of(n, &expected),
                    "run {run}: goroutine {} shows function {n:?}, not in the program: {g}",
                    g["id"]
                );
            }
            frames += fs.len();
        }
        // Each unstable goroutine listed has its warning line (system ones
        // are warned about too, but not listed without --all).
        assert!(
            warnings + walk_unstable >= run_unstable,
            "run {run}: {run_unstable} unstable goroutines but {warnings} warnings:\n{err}"
        );
        unstable += run_unstable;
    }
    // The other live commands too (no crash, valid JSON).
    for _ in 0..10 {
        for args in [
            &["summary", "--json", "--all"][..],
            &["heap", "--json"][..],
            &["top", "--once", "--json", "--by", "current"][..],
        ] {
            let mut a = vec![args[0], "--pid", &pid, "--non-blocking"];
            a.extend(&args[1..]);
            let out = gospy(&a);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{a:?}: {:?}\n{err}", out.status);
            let _: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{a:?}: bad JSON: {e}"));
        }
    }
    assert!(fx.is_running(), "the fixture must survive");
    let rate = std::fs::read_to_string(fx.dir.path().join("rate")).unwrap_or_default();
    eprintln!(
        "{version}: {RUNS} runs in {:.1}s: {goroutines} goroutines listed, {unstable} unstable \
         ({warned} warning lines), {frames} frames checked; fixture started {} goroutines in its last second",
        t0.elapsed().as_secs_f64(),
        rate.trim()
    );
    assert!(
        goroutines > RUNS * 12,
        "the parked, echo and spawner goroutines at least"
    );

    // A non-blocking snapshot records that the target was not stopped.
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("nb.gss");
    gospy_ok([
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "--non-blocking".as_ref(),
        "-o".as_ref(),
        snap.as_os_str(),
    ]);
    let info: Value = serde_json::from_str(&gospy_ok([
        "info".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert_eq!(info["stopped"], Value::Bool(false));
    assert_eq!(info["pause_ns"], 0);
    fx.kill();
}

#[test]
fn churn_go1_19() {
    churn("1.19");
}

#[test]
fn churn_go1_22() {
    churn("1.22");
}

#[test]
fn churn_go1_27() {
    churn("1.27");
}
