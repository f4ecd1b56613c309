//! `capture --heap --non-blocking` (issue 14): the heap is copied while the
//! program runs, then every in-use span's header is read again; spans
//! swept, freed or reused during the copy are dropped and counted.
//! - On tests/fixtures/churn (goroutines started, allocating and ending
//!   thousands of times a second), repeated captures never crash, always
//!   report `heap_validation` in `capture --json`, and `objects` and
//!   `retain` on them either succeed, saying in a warning what changed
//!   during the copy whenever something did, or fail with one clear line.
//! - On a quiet fixture (tests/fixtures/specials: collected, GC off, every
//!   goroutine parked) nothing changes during the copy, and `objects` gives
//!   exactly what it gives on a blocking `--heap` capture, `retain` the
//!   same totals and program roots (globals, stacks, finalizers, queued
//!   finalizers).

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn gospy_json(args: &[&str]) -> Result<Value, String> {
    let out = gospy(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked") && out.status.code().is_some(),
        "gospy {args:?} crashed: {stderr}"
    );
    if !out.status.success() {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "gospy {args:?}: one error line: {stderr}");
        return Err(stderr);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{args:?}: {e}"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Captures of the churning fixture: no crash, counts reported, analyses
/// warn about what changed.
fn churn(version: &str) {
    let Some(bin) = try_build_fixture("churn", version, false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::Builder::new()
        .prefix("gospy-heap-nb-")
        .tempdir()
        .unwrap();
    let pid = fx.pid.to_string();
    let (mut changed, mut allocated, mut analyzed, mut refused) = (0u64, 0u64, 0, 0);
    let runs = 8;
    for i in 0..runs {
        let snap = work.path().join(format!("nb{i}.gss"));
        let c = gospy_json(&[
            "capture",
            "--pid",
            &pid,
            "--heap",
            "--non-blocking",
            "--json",
            "-o",
            path(&snap),
        ])
        .expect("capture --heap --non-blocking");
        let v = &c["heap_validation"];
        let checked = v["spans_checked"].as_u64().expect("heap_validation counts");
        assert!(checked > 0, "go {version}: no span checked: {c}");
        let (ch, al) = (
            v["spans_changed"].as_u64().unwrap(),
            v["spans_allocated"].as_u64().unwrap(),
        );
        changed += ch;
        allocated += al;
        for what in ["objects", "retain"] {
            match gospy_json(&["analyze", path(&snap), what, "--json"]) {
                Ok(r) => {
                    analyzed += 1;
                    let noted = r["warnings"].as_array().is_some_and(|w| {
                        w.iter().any(|w| {
                            w.as_str().is_some_and(|w| {
                                w.starts_with("non-blocking: ")
                                    && w.contains(&format!(
                                        "{ch} of {checked} heap spans changed during the copy"
                                    ))
                            })
                        })
                    });
                    assert_eq!(
                        noted,
                        ch + al > 0,
                        "go {version}: {what} warnings vs heap_validation {v}: {}",
                        r["warnings"]
                    );
                }
                Err(_) => refused += 1,
            }
        }
    }
    fx.kill();
    report(&format!(
        "go {version}: {runs} non-blocking heap captures of churn: {changed} spans changed, {allocated} allocated into; {analyzed} analyses, {refused} refused"
    ));
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

/// The quiet fixture: a non-blocking heap capture equals a blocking one.
fn quiet(version: &str) {
    let Some(bin) = try_build_fixture("specials", version, false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::Builder::new()
        .prefix("gospy-heap-nb-")
        .tempdir()
        .unwrap();
    let pid = fx.pid.to_string();
    let (b, n) = (work.path().join("b.gss"), work.path().join("n.gss"));
    gospy_json(&["capture", "--pid", &pid, "--heap", "--json", "-o", path(&b)]).unwrap();
    let c = gospy_json(&[
        "capture",
        "--pid",
        &pid,
        "--heap",
        "--non-blocking",
        "--json",
        "-o",
        path(&n),
    ])
    .unwrap();
    fx.kill();
    let v = &c["heap_validation"];
    assert_eq!(
        (v["spans_changed"].as_u64(), v["spans_allocated"].as_u64()),
        (Some(0), Some(0)),
        "go {version}: the quiet fixture changed during the copy: {v}"
    );
    let analyze = |snap: &Path, what: &str| {
        let mut args = vec!["analyze", path(snap), what, "--json"];
        if what == "retain" {
            args.extend(["--top", "1000"]);
        }
        gospy_json(&args).unwrap_or_else(|e| panic!("go {version}: {what}: {e}"))
    };
    let a = analyze(&b, "objects");
    let z = analyze(&n, "objects");
    assert_eq!(
        a, z,
        "go {version}: objects differs between the blocking and the non-blocking capture"
    );
    // Retention: the same totals and the same program roots (globals,
    // stacks, finalizers). Roots internal to the runtime (its M structs,
    // which sysmon's thread updates now and then) may differ between two
    // captures of even a quiet process.
    let a = analyze(&b, "retain");
    let z = analyze(&n, "retain");
    let program = |v: &Value| -> Vec<(String, u64)> {
        v["roots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["kind"] != "runtime"
                    || r["root"].as_str().is_some_and(|n| {
                        ["runtime: finalizer", "runtime: cleanup", "runtime: queued"]
                            .iter()
                            .any(|p| n.starts_with(p))
                    })
            })
            .map(|r| {
                (
                    r["root"].as_str().unwrap().to_string(),
                    r["retained_bytes"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    for k in ["total_objects", "total_bytes", "warnings"] {
        assert_eq!(a[k], z[k], "go {version}: retain {k} differs");
    }
    assert_eq!(
        program(&a),
        program(&z),
        "go {version}: retain's program roots differ between the blocking and the non-blocking capture"
    );
    report(&format!(
        "go {version}: quiet fixture, --heap --non-blocking: {} spans checked, none changed; objects and retain (program roots) equal the blocking capture's",
        v["spans_checked"]
    ));
}

#[test]
fn quiet_go1_19() {
    quiet("1.19");
}

#[test]
fn quiet_go1_22() {
    quiet("1.22");
}

#[test]
fn quiet_go1_27() {
    quiet("1.27");
}
