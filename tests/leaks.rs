//! Goroutine leaks (issue 15). The `leaks` fixture leaks goroutines in every
//! way the runtime knows (dropped channels, select, nil channel, `select {}`,
//! dropped WaitGroup and Mutex) next to blocked goroutines that are not
//! leaked, and records which are which.
//!
//! Here: goroutines the runtime itself has found leaked (Go 1.27, and 1.26
//! built with GOEXPERIMENT=goroutineleakprofile) are in status _Gleaked; the
//! fixture runs its own `pprof.Lookup("goroutineleak")` and then writes
//! runtime.Stack. gospy's dump of a capture taken afterwards must print
//! those goroutines exactly as the runtime did (`[chan receive (leaked)]`),
//! the JSON `state` must carry the same text, and summary must count them.

mod common;

use common::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
struct LeakMeta {
    go_version: String,
    leaked_ids: Vec<u64>,
    leaked_by_kind: BTreeMap<String, u64>,
    not_leaked_ids: Vec<u64>,
    leak_profile: bool,
}

/// The runtime's text block of goroutine `id` in a runtime.Stack dump.
fn block(text: &str, id: u64) -> Option<String> {
    let header = format!("goroutine {id} [");
    text.split("\n\n")
        .find(|b| b.trim_start().starts_with(&header))
        .map(|b| b.trim().to_string())
}

fn wait_for(fx: &mut Fixture, name: &str) {
    let path = fx.dir.path().join(name);
    let t0 = Instant::now();
    while !path.exists() {
        assert!(fx.is_running(), "leaks exited: {}", fx.stderr());
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no {name}: {}",
            fx.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn marked_by_runtime(version: &str, env: &[(&str, &str)]) {
    marked_by_runtime_built(version, env, false, "");
}

fn marked_by_runtime_built(version: &str, env: &[(&str, &str)], pie: bool, ldflags: &str) {
    let Some(bin) = try_build_fixture_env("leaks", version, pie, ldflags, env) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("b.gss");
    let mut fx = Fixture::start(&bin);
    let read = |fx: &Fixture, n: &str| std::fs::read_to_string(fx.dir.path().join(n)).unwrap();
    let meta: LeakMeta = serde_json::from_str(&read(&fx, "meta.json")).unwrap();
    assert!(
        meta.leak_profile,
        "{}: no goroutineleak profile",
        meta.go_version
    );
    assert_eq!(meta.leaked_by_kind.len(), 7, "{meta:?}");
    // SAFETY: plain kill(2) on our own child, which is alive (not reaped).
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
    wait_for(&mut fx, "ready2");
    capture(fx.pid, &snap, &[]);
    fx.kill();
    let prof = read(&fx, "leakprof.txt");
    let stack2 = read(&fx, "stack2.txt");
    let mut problems = Vec::new();
    // The runtime found exactly the fixture's leaks.
    for id in &meta.leaked_ids {
        match block(&prof, *id) {
            Some(b) if b.lines().next().unwrap_or("").contains(" (leaked)]") => {}
            other => problems.push(format!("runtime did not mark {id} leaked: {other:?}")),
        }
    }
    for id in &meta.not_leaked_ids {
        if block(&prof, *id).is_some_and(|b| b.contains("(leaked)")) {
            problems.push(format!("runtime marked {id} leaked"));
        }
    }
    // gospy prints them as the runtime's traceback does.
    let dump = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "dump".as_ref()]);
    for id in meta.leaked_ids.iter().chain(&meta.not_leaked_ids) {
        let (want, got) = (block(&stack2, *id), block(&dump, *id));
        if want != got {
            problems.push(format!(
                "goroutine {id}:\n--- runtime\n{}\n--- gospy\n{}",
                want.unwrap_or_default(),
                got.unwrap_or_default()
            ));
        }
    }
    let js: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let gs = js.as_array().expect("dump --json is an array");
    for id in &meta.leaked_ids {
        let g = gs.iter().find(|g| g["id"] == *id);
        let header = block(&stack2, *id).unwrap_or_default();
        let want = header
            .lines()
            .next()
            .and_then(|h| {
                h.split_once(" [")
                    .map(|(_, r)| r.trim_end_matches("]:").to_string())
            })
            .unwrap_or_default();
        match g {
            Some(g) if g["state"] == want.as_str() => {}
            _ => problems.push(format!("json state of {id}: {g:?}, runtime: {want}")),
        }
    }
    let summary = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    let want = format!("{} leaked", meta.leaked_ids.len());
    if !summary
        .lines()
        .any(|l| l.starts_with("Goroutines:") && l.contains(&want))
    {
        problems.push(format!("summary does not count {want}:\n{summary}"));
    }
    assert!(
        problems.is_empty(),
        "go {version} {env:?}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn leaked_status_go1_27() {
    marked_by_runtime("1.27", &[]);
}

#[test]
fn leaked_status_go1_27_pie() {
    marked_by_runtime_built("1.27", &[], true, "");
}

#[test]
fn leaked_status_go1_27_stripped() {
    marked_by_runtime_built("1.27", &[], false, "-s -w");
}

#[test]
fn leaked_status_go1_26_experiment_pie_stripped() {
    marked_by_runtime_built(
        "1.26",
        &[("GOEXPERIMENT", "goroutineleakprofile")],
        true,
        "-s -w",
    );
}

#[test]
fn leaked_status_go1_26_experiment() {
    marked_by_runtime("1.26", &[("GOEXPERIMENT", "goroutineleakprofile")]);
}

// ---- issue 15: gospy's own offline leak analysis (`leaks`) ----

fn wait_ready(fx: &mut Fixture) -> LeakMeta {
    wait_for(fx, "ready");
    let text = std::fs::read_to_string(fx.dir.path().join("meta.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A heap-complete capture once main is parked on its signal channels: a
/// goroutine caught running or in a system call has its stack scanned
/// conservatively, and a stale word there can hide a leak (never add one).
fn capture_quiet(fx: &Fixture, snap: &std::path::Path) {
    for _ in 0..50 {
        capture(fx.pid, snap, &["--heap"]);
        let js: Value = serde_json::from_str(&gospy_ok([
            "analyze".as_ref(),
            snap.as_os_str(),
            "dump".as_ref(),
            "--json".as_ref(),
        ]))
        .unwrap();
        let main = js
            .as_array()
            .and_then(|v| v.iter().find(|g| g["id"] == 1))
            .map(|g| g["state"].as_str().unwrap_or("").to_string());
        if main.as_deref() == Some("select") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("main never parked on its signal channel");
}

/// The ids `leaks --json` lists, and its whole JSON.
fn leaked_ids(snap: &std::path::Path) -> (Vec<u64>, Value) {
    let js: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "leaks".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let mut ids: Vec<u64> = js["leaked"]
        .as_array()
        .expect("leaked is an array")
        .iter()
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    (ids, js)
}

/// `leaks --json` on a heap-complete capture lists exactly the fixture's
/// leaked goroutines; where the runtime has a leak profile, the same set as
/// the runtime's, taken after the capture.
fn offline(version: &str, pie: bool, ldflags: &str, env: &[(&str, &str)]) {
    let Some(bin) = try_build_fixture_env("leaks", version, pie, ldflags, env) else {
        return;
    };
    let what = format!("go {version} pie={pie} ldflags={ldflags:?} env={env:?}");
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("h.gss");
    let mut fx = Fixture::start(&bin);
    let meta = wait_ready(&mut fx);
    capture_quiet(&fx, &snap);
    let runtime_set = if meta.leak_profile {
        // SAFETY: plain kill(2) on our own child, which is alive (not reaped).
        assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
        wait_for(&mut fx, "ready2");
        let prof = std::fs::read_to_string(fx.dir.path().join("leakprof.txt")).unwrap();
        let mut v: Vec<u64> = prof
            .split("\n\n")
            .filter_map(|b| {
                let h = b.trim_start().strip_prefix("goroutine ")?;
                let (id, rest) = h.split_once(' ')?;
                rest.contains("(leaked)]").then(|| id.parse().ok())?
            })
            .collect();
        v.sort_unstable();
        Some(v)
    } else {
        None
    };
    fx.kill();
    let (ids, js) = leaked_ids(&snap);
    let mut want = meta.leaked_ids.clone();
    want.sort_unstable();
    assert_eq!(ids, want, "{what}: leaks --json vs the fixture's:\n{js:#}");
    if let Some(r) = runtime_set {
        assert_eq!(
            ids, r,
            "{what}: leaks --json vs the runtime's goroutineleak profile"
        );
    }
    let groups = js["groups"].as_array().expect("groups");
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(
        total as usize,
        ids.len(),
        "{what}: groups count every goroutine"
    );
    for g in js["leaked"].as_array().unwrap() {
        assert!(
            g["wait_reason"].as_str().is_some_and(|r| !r.is_empty())
                && g["frames"].as_array().is_some_and(|f| !f.is_empty())
                && g["created_by"].is_string(),
            "{what}: {g}"
        );
    }
    let text = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "leaks".as_ref()]);
    assert!(
        text.contains(&format!("{} leaked goroutines", want.len())),
        "{what}:\n{text}"
    );
    let summary = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    let line = format!(
        "Leak analysis: {} goroutines can never run again",
        want.len()
    );
    assert!(summary.contains(&line), "{what}: no {line:?}:\n{summary}");
    let top: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "top".as_ref(),
        "--by".as_ref(),
        "leak".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let leaked: u64 = top
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["key"].as_str().unwrap_or("").starts_with("leaked: "))
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(leaked as usize, want.len(), "{what}: top --by leak: {top}");
}

macro_rules! offline_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            offline($version, $pie, $flags, &[]);
        }
    )*};
}

offline_tests! {
    leaks_go1_19: "1.19", pie = false, "";
    leaks_go1_21: "1.21", pie = false, "";
    leaks_go1_22: "1.22", pie = false, "";
    leaks_go1_23: "1.23", pie = false, "";
    leaks_go1_24: "1.24", pie = false, "";
    leaks_go1_25: "1.25", pie = false, "";
    leaks_go1_26: "1.26", pie = false, "";
    leaks_go1_27: "1.27", pie = false, "";
    leaks_go1_19_pie: "1.19", pie = true, "";
    leaks_go1_21_pie: "1.21", pie = true, "";
    leaks_go1_22_pie: "1.22", pie = true, "";
    leaks_go1_23_pie: "1.23", pie = true, "";
    leaks_go1_24_pie: "1.24", pie = true, "";
    leaks_go1_25_pie: "1.25", pie = true, "";
    leaks_go1_26_pie: "1.26", pie = true, "";
    leaks_go1_27_pie: "1.27", pie = true, "";
    leaks_go1_19_stripped: "1.19", pie = false, "-s -w";
    leaks_go1_21_stripped: "1.21", pie = false, "-s -w";
    leaks_go1_22_stripped: "1.22", pie = false, "-s -w";
    leaks_go1_23_stripped: "1.23", pie = false, "-s -w";
    leaks_go1_24_stripped: "1.24", pie = false, "-s -w";
    leaks_go1_25_stripped: "1.25", pie = false, "-s -w";
    leaks_go1_26_stripped: "1.26", pie = false, "-s -w";
    leaks_go1_27_stripped: "1.27", pie = false, "-s -w";
}

#[test]
fn leaks_go1_26_experiment() {
    offline(
        "1.26",
        false,
        "",
        &[("GOEXPERIMENT", "goroutineleakprofile")],
    );
}

/// A snapshot without the heap: one line saying how to capture one, non-zero exit.
#[test]
fn leaks_needs_heap() {
    let Some(bin) = try_build_fixture("leaks", "1.27", false, "") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("n.gss");
    let mut fx = Fixture::start(&bin);
    wait_ready(&mut fx);
    capture(fx.pid, &snap, &[]);
    fx.kill();
    let o = gospy(["analyze".as_ref(), snap.as_os_str(), "leaks".as_ref()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "leaks without the heap succeeded");
    assert!(err.contains("--heap") && err.lines().count() == 1, "{err}");
    let o = gospy([
        "analyze".as_ref(),
        snap.as_os_str(),
        "top".as_ref(),
        "--by".as_ref(),
        "leak".as_ref(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--heap"), "{err}");
    let summary = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    assert!(!summary.contains("Leak analysis"), "{summary}");
}

/// Blocking functions of the `goroutines` fixture that are real leaks:
/// `server.serve`/`run` wait on the channel of a `server` only their own
/// stacks hold (startAll's local), the others on a nil channel or `select {}`.
const GOROUTINES_LEAKS: [&str; 5] = [
    "main.(*server).serve",
    "main.(*server).run",
    "main.blockNilChanRecv",
    "main.blockNilChanSend",
    "main.blockSelectNoCases",
];

/// The functions of `leaks --json`'s goroutines' blocking sites.
fn leaked_sites(fixture: &str, version: &str, pie: bool, ldflags: &str) -> Option<Vec<String>> {
    let bin = try_build_fixture(fixture, version, pie, ldflags)?;
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("h.gss");
    let fx = Fixture::start(&bin);
    capture(fx.pid, &snap, &["--heap"]);
    drop(fx);
    let (_, js) = leaked_ids(&snap);
    let mut v: Vec<String> = js["leaked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let site = g["blocking_site"].as_str().unwrap_or("");
            site.split(' ').next().unwrap_or("").to_string()
        })
        .collect();
    v.sort();
    Some(v)
}

/// No false positives on the other fixtures' blocked goroutines: worker
/// pools, goroutines parked on globals, mutex and sync.Cond waiters, main in
/// `select {}` (not reported, as the runtime does not).
fn no_false_positives(version: &str) {
    no_false_positives_built(version, false, "");
}

fn no_false_positives_built(version: &str, pie: bool, ldflags: &str) {
    if let Some(v) = leaked_sites("goroutines", version, pie, ldflags) {
        for f in &v {
            assert!(
                GOROUTINES_LEAKS.contains(&f.as_str()),
                "go {version} pie={pie} {ldflags:?} goroutines: {f} reported leaked: {v:?}"
            );
        }
        // Never runnable, whatever the marking finds.
        for f in &GOROUTINES_LEAKS[2..] {
            assert!(
                v.contains(&f.to_string()),
                "go {version} pie={pie} {ldflags:?} goroutines: {f} missing: {v:?}"
            );
        }
    }
    for fixture in ["grow", "flip", "churn", "contend"] {
        if let Some(v) = leaked_sites(fixture, version, pie, ldflags) {
            assert!(
                v.is_empty(),
                "go {version} pie={pie} {ldflags:?} {fixture}: reported leaked: {v:?}"
            );
        }
    }
}

#[test]
fn no_false_positives_go1_19() {
    no_false_positives("1.19");
}

#[test]
fn no_false_positives_go1_21() {
    no_false_positives("1.21");
}

#[test]
fn no_false_positives_go1_22() {
    no_false_positives("1.22");
}

#[test]
fn no_false_positives_go1_23() {
    no_false_positives("1.23");
}

#[test]
fn no_false_positives_go1_24() {
    no_false_positives("1.24");
}

#[test]
fn no_false_positives_go1_25() {
    no_false_positives("1.25");
}

#[test]
fn no_false_positives_go1_26() {
    no_false_positives("1.26");
}

#[test]
fn no_false_positives_go1_27() {
    no_false_positives("1.27");
}

#[test]
fn no_false_positives_go1_19_pie() {
    no_false_positives_built("1.19", true, "");
}

#[test]
fn no_false_positives_go1_19_stripped() {
    no_false_positives_built("1.19", false, "-s -w");
}

#[test]
fn no_false_positives_go1_21_pie() {
    no_false_positives_built("1.21", true, "");
}

#[test]
fn no_false_positives_go1_21_stripped() {
    no_false_positives_built("1.21", false, "-s -w");
}

#[test]
fn no_false_positives_go1_22_pie() {
    no_false_positives_built("1.22", true, "");
}

#[test]
fn no_false_positives_go1_22_stripped() {
    no_false_positives_built("1.22", false, "-s -w");
}

#[test]
fn no_false_positives_go1_23_pie() {
    no_false_positives_built("1.23", true, "");
}

#[test]
fn no_false_positives_go1_23_stripped() {
    no_false_positives_built("1.23", false, "-s -w");
}

#[test]
fn no_false_positives_go1_24_pie() {
    no_false_positives_built("1.24", true, "");
}

#[test]
fn no_false_positives_go1_24_stripped() {
    no_false_positives_built("1.24", false, "-s -w");
}

#[test]
fn no_false_positives_go1_25_pie() {
    no_false_positives_built("1.25", true, "");
}

#[test]
fn no_false_positives_go1_25_stripped() {
    no_false_positives_built("1.25", false, "-s -w");
}

#[test]
fn no_false_positives_go1_26_pie() {
    no_false_positives_built("1.26", true, "");
}

#[test]
fn no_false_positives_go1_26_stripped() {
    no_false_positives_built("1.26", false, "-s -w");
}

#[test]
fn no_false_positives_go1_27_pie() {
    no_false_positives_built("1.27", true, "");
}

#[test]
fn no_false_positives_go1_27_stripped() {
    no_false_positives_built("1.27", false, "-s -w");
}

/// `diff` of two heap-complete snapshots: the leak analysis replaces the
/// growth heuristic, and the new leaks are exactly those started between.
fn diff_new_leaks(version: &str) {
    let Some(bin) = try_build_fixture("leaks", version, false, "") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.gss"), work.path().join("b.gss"));
    let mut fx = Fixture::start(&bin);
    let meta = wait_ready(&mut fx);
    capture_quiet(&fx, &a);
    // SAFETY: plain kill(2) on our own child, which is alive (not reaped).
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR2) }, 0);
    wait_for(&mut fx, "ready3");
    capture_quiet(&fx, &b);
    fx.kill();
    let m3: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.dir.path().join("meta3.json")).unwrap())
            .unwrap();
    let mut more: Vec<u64> = m3["more_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    more.sort_unstable();
    let d: Value = serde_json::from_str(&gospy_ok([
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let l = &d["leak_analysis"];
    assert_eq!(
        l["leaked_before"],
        meta.leaked_ids.len(),
        "go {version}: {l:#}"
    );
    assert_eq!(
        l["leaked_after"],
        meta.leaked_ids.len() + more.len(),
        "go {version}: {l:#}"
    );
    let mut new: Vec<u64> = l["new_leaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    new.sort_unstable();
    assert_eq!(new, more, "go {version}: new leaks");
    assert_eq!(d["leak_groups"].as_array().map(|v| v.len()), Some(0));
    let text = gospy_ok(["diff".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert!(
        text.contains(&format!("{} new", more.len())) && text.contains("main.leakMore.func1"),
        "go {version}:\n{text}"
    );
}

#[test]
fn diff_new_leaks_go1_19() {
    diff_new_leaks("1.19");
}

#[test]
fn diff_new_leaks_go1_22() {
    diff_new_leaks("1.22");
}

#[test]
fn diff_new_leaks_go1_27() {
    diff_new_leaks("1.27");
}

/// Live `leaks --pid N`: a heap-complete capture in memory, same answer.
#[test]
fn live_leaks_go1_27() {
    let Some(bin) = try_build_fixture("leaks", "1.27", false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let meta = wait_ready(&mut fx);
    let pid = fx.pid.to_string();
    let mut want = meta.leaked_ids.clone();
    want.sort_unstable();
    let mut last = Vec::new();
    // Retried while main is caught running (its stack then scanned conservatively).
    for _ in 0..20 {
        let js: Value =
            serde_json::from_str(&gospy_ok(["leaks", "--pid", pid.as_str(), "--json"])).unwrap();
        last = js["leaked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_u64().unwrap())
            .collect();
        last.sort_unstable();
        if last == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    fx.kill();
    assert_eq!(last, want);
}

/// summary on a heap-complete snapshot of a heap with more objects than it
/// analyses for its one line (the leaks fixture plus a 1.2M-object global
/// list): the line says the analysis was not run and how to run it, the
/// JSON says why, and `leaks` still finds exactly the fixture's leaks.
fn summary_leaves_big_heaps_to_leaks(version: &str) {
    let Some(bin) = try_build_fixture("leaks", version, false, "") else {
        return;
    };
    const BALLAST: u64 = 1_200_000;
    let what = format!("go {version}, {BALLAST} ballast objects");
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("h.gss");
    let mut fx = Fixture::start_with_env(&bin, &[("GOSPY_LEAKS_BALLAST", "1200000")]);
    let meta = wait_ready(&mut fx);
    let text = std::fs::read_to_string(fx.dir.path().join("meta.json")).unwrap();
    let heap_objects = serde_json::from_str::<Value>(&text).unwrap()["heap_objects"]
        .as_u64()
        .expect("meta.json heap_objects");
    assert!(
        heap_objects > BALLAST,
        "{what}: the fixture's HeapObjects {heap_objects}"
    );
    capture_quiet(&fx, &snap);
    fx.kill();
    let summary = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    let line = summary
        .lines()
        .find(|l| l.starts_with("Leak analysis: "))
        .unwrap_or_else(|| panic!("{what}: no leak line:\n{summary}"));
    let n: u64 = line
        .strip_prefix("Leak analysis: not run by summary on a heap of ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: {line:?}"));
    // gospy's count is the runtime's own (MemStats) at the capture; the
    // fixture's ReadMemStats came just before it (a few allocations apart).
    assert!(
        n > BALLAST && n.abs_diff(heap_objects) < 10_000,
        "{what}: {n} objects in {line:?}, the fixture's HeapObjects {heap_objects}"
    );
    assert!(
        line.ends_with("`gospy analyze FILE leaks` runs it"),
        "{what}: {line:?}"
    );
    let js: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "summary".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert!(
        js["leaks_not_run"].is_string(),
        "{what}: {}",
        js["leaks_not_run"]
    );
    assert!(
        js.get("leaks_found").is_none(),
        "{what}: {}",
        js["leaks_found"]
    );
    let (ids, js) = leaked_ids(&snap);
    let mut want = meta.leaked_ids.clone();
    want.sort_unstable();
    assert_eq!(ids, want, "{what}: leaks --json vs the fixture's:\n{js:#}");
    report(&format!(
        "{what}: summary defers to leaks ({n} objects); leaks found the fixture's {} leaked",
        want.len()
    ));
}

#[test]
fn summary_leaves_big_heaps_to_leaks_go1_19() {
    summary_leaves_big_heaps_to_leaks("1.19");
}

#[test]
fn summary_leaves_big_heaps_to_leaks_go1_27() {
    summary_leaves_big_heaps_to_leaks("1.27");
}
