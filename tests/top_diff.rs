//! Acceptance tests for `top`, `diff`, blocked-on objects (`waiting_on`) and
//! the pprof / folded exports, against real Go processes for every toolchain.
//!
//! Ground truth comes from the fixtures themselves: tests/fixtures/goroutines
//! writes runtime.Stack(all) and its pprof labels; tests/fixtures/grow writes
//! the ids of the goroutines it started before and after SIGUSR1; symbol
//! addresses come from `go tool nm`; the profile is read by `go tool pprof`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use common::*;

#[derive(Debug, Deserialize)]
struct Group {
    key: String,
    count: usize,
    statuses: BTreeMap<String, usize>,
    percent: f64,
}

fn top(snap: &Path, extra: &[&str]) -> Vec<Group> {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["analyze".as_ref(), snap.as_os_str(), "top".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.push("--json".as_ref());
    let out = gospy_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("top --json {extra:?}: {e}\n{out}"))
}

fn counts(groups: &[Group]) -> BTreeMap<String, usize> {
    groups.iter().map(|g| (g.key.clone(), g.count)).collect()
}

fn dump_json(snap: &Path) -> Vec<Value> {
    let out = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "dump".as_ref(),
        "--json".as_ref(),
    ]);
    serde_json::from_str(&out).unwrap()
}

/// Whether the oracle's stack of `g` was cut at its outer end, so that its
/// outermost frame is not its start: Go 1.19's runtime.Stack stops after
/// 100 frames, hidden runtime frames included, and says nothing about it.
fn truncated(g: &OracleGoroutine) -> bool {
    match &g.elided {
        Some(e) => e.count.is_none() || e.at == g.frames.len(),
        None => g.frames.len() >= 90,
    }
}

/// `go` binary of the toolchain that built a fixture, for `go tool ...`.
fn go_for(version: &str) -> PathBuf {
    toolchain(version).expect("toolchain")
}

/// `go tool nm -size` → name → (address, size).
fn nm(go: &Path, bin: &Path) -> BTreeMap<String, (u64, u64)> {
    let out = Command::new(go)
        .args(["tool", "nm", "-size"])
        .arg(bin)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", cache_dir().join("go-build"))
        .output()
        .expect("go tool nm");
    assert!(out.status.success(), "go tool nm failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            if p.len() < 4 {
                return None;
            }
            let addr = u64::from_str_radix(p[0], 16).ok()?;
            let size = p[1].parse().ok()?;
            Some((p[p.len() - 1].to_string(), (addr, size)))
        })
        .collect()
}

fn hex(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// The goroutine of `dump --json` whose frames include `function`.
fn in_function<'a>(dump: &'a [Value], function: &str) -> Vec<&'a Value> {
    dump.iter()
        .filter(|g| {
            g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["function"] == function)
        })
        .collect()
}

fn goroutines_fixture(version: &str) {
    let Some(bin) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-top-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("a.gss");
    let mut fx = Fixture::start(&bin);
    let oracle = fx.oracle();
    capture(fx.pid, &snap, &[]);

    // Live top, one report, while the fixture still runs.
    let live: Vec<Group> = serde_json::from_str(&gospy_ok([
        "top",
        "--pid",
        &fx.pid.to_string(),
        "--once",
        "--json",
    ]))
    .unwrap();
    let periodic = gospy_ok([
        "top",
        "--pid",
        &fx.pid.to_string(),
        "--count",
        "2",
        "--interval",
        "0.1",
    ]);
    assert!(fx.is_running(), "the fixture must survive live top");
    fx.kill();
    assert_eq!(
        periodic.matches("--- pid ").count(),
        2,
        "two periodic reports:\n{periodic}"
    );
    let mut problems = Vec::new();

    // --- top --by start: counts per outermost frame of the oracle.
    let dump = dump_json(&snap);
    let start_of: BTreeMap<u64, String> = dump
        .iter()
        .map(|g| {
            (
                g["id"].as_u64().unwrap(),
                g["start_function"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    let mut unjudged: BTreeMap<String, usize> = BTreeMap::new();
    for g in &oracle.goroutines {
        if truncated(g) {
            // The oracle does not show its start: count what gospy says.
            let k = start_of.get(&g.id).cloned().unwrap_or_default();
            *unjudged.entry(k).or_default() += 1;
            continue;
        }
        let outer = g.frames.last().map(|f| f.function.clone()).unwrap();
        *want.entry(outer).or_default() += 1;
    }
    let groups = top(&snap, &[]);
    let mut got = counts(&groups);
    // Goroutine 1 starts in runtime.main, which the traceback hides.
    if let Some(n) = got.remove("runtime.main") {
        *got.entry("main.main".into()).or_default() += n;
    }
    for (k, n) in &unjudged {
        let e = got.entry(k.clone()).or_default();
        *e = e.saturating_sub(*n);
        if *e == 0 {
            got.remove(k);
        }
    }
    if got != want {
        problems.push(format!(
            "top --by start: got {got:?}\nwant (from runtime.Stack) {want:?}"
        ));
    }
    let total: usize = groups.iter().map(|g| g.count).sum();
    if total != oracle.goroutines.len() {
        problems.push(format!(
            "top counts {total} goroutines, runtime.Stack shows {}",
            oracle.goroutines.len()
        ));
    }
    for g in &groups {
        if g.statuses.values().sum::<usize>() != g.count {
            problems.push(format!("group {}: statuses {:?}", g.key, g.statuses));
        }
    }
    let pct: f64 = groups.iter().map(|g| g.percent).sum();
    if (pct - 100.0).abs() > 0.1 * groups.len() as f64 {
        problems.push(format!("percentages sum to {pct}"));
    }
    if counts(&live) != counts(&groups) {
        problems.push(format!(
            "live top --once {:?} differs from the snapshot's {:?}",
            counts(&live),
            counts(&groups)
        ));
    }
    let worker = groups.iter().find(|g| g.key == "main.worker");
    if worker.map(|g| (g.count, g.statuses.get("waiting").copied())) != Some((10, Some(10))) {
        problems.push(format!("main.worker group: {worker:?}"));
    }

    // --- other keys: totals are preserved, the workers stay together.
    for by in [&["go"][..], &["current"], &["stack"], &["wait"]] {
        let mut args = vec!["--by"];
        args.extend_from_slice(by);
        let g = top(&snap, &args);
        let t: usize = g.iter().map(|g| g.count).sum();
        if t != total {
            problems.push(format!("top --by {by:?}: {t} goroutines, want {total}"));
        }
        if !g.iter().any(|g| g.count == 10) {
            problems.push(format!(
                "top --by {by:?}: no group of the 10 workers: {:?}",
                counts(&g)
            ));
        }
    }
    let go_keys = counts(&top(&snap, &["--by", "go"]));
    if !go_keys
        .iter()
        .any(|(k, &n)| n == 10 && k.contains("main.go:") && k.ends_with("main.startAll"))
    {
        problems.push(format!(
            "top --by go: no `main.go:N main.startAll` group of 10: {go_keys:?}"
        ));
    }
    let cur = counts(&top(&snap, &["--by", "current"]));
    if !cur.keys().any(|k| k.starts_with("main.blockMutex (")) {
        problems.push(format!(
            "top --by current: main.blockMutex missing: {cur:?}"
        ));
    }
    // --filter on a frame function.
    let f = counts(&top(&snap, &["--filter", "^main\\.recurse$"]));
    if f.values().sum::<usize>() != 2 {
        problems.push(format!("top --filter main.recurse: {f:?}"));
    }

    // --- labels: equal to what the fixture read back with pprof.ForLabels.
    for key in ["worker", "span"] {
        let mut want: BTreeMap<String, usize> = BTreeMap::new();
        for l in oracle.meta.labels.values() {
            if let Some(v) = l.get(key) {
                *want.entry(v.clone()).or_default() += 1;
            }
        }
        let labelled: usize = want.values().sum();
        want.insert(format!("(no label {key})"), total - labelled);
        let got = counts(&top(&snap, &["--by", "label", key]));
        if got != want {
            problems.push(format!("top --by label {key}: got {got:?}, want {want:?}"));
        }
    }

    // --- waiting_on in dump --json.
    let one = |f: &str| -> Option<&Value> {
        let v = in_function(&dump, f);
        if v.len() != 1 {
            None
        } else {
            Some(v[0])
        }
    };
    let chan_check = |problems: &mut Vec<String>, f: &str, elem: &str| match one(f) {
        Some(g) => {
            let w = &g["waiting_on"];
            if w["kind"] != "chan" || w["elem_type"] != elem || w["cap"] != 0 || w["len"] != 0 {
                problems.push(format!("{f}: waiting_on {w}, want chan {elem} cap 0"));
            }
        }
        None => problems.push(format!("{f}: not found once in the dump")),
    };
    for f in [
        "main.blockChanSend",
        "main.blockChanRecv",
        "main.inlinedChain",
        "main.spawnedChild",
        "main.(*server).serve",
    ] {
        chan_check(&mut problems, f, "int");
    }
    let workers = in_function(&dump, "main.worker");
    let addrs: BTreeSet<String> = workers
        .iter()
        .map(|g| g["waiting_on"]["addr"].to_string())
        .collect();
    if workers.len() != 10 || addrs.len() != 1 || workers[0]["waiting_on"]["elem_type"] != "int" {
        problems.push(format!("workers: {} waiting on {addrs:?}", workers.len()));
    }
    match one("main.blockSelect") {
        Some(g) => {
            let w = &g["waiting_on"];
            let types: BTreeSet<String> = w["chans"]
                .as_array()
                .map(|a| a.iter().map(|c| c["elem_type"].to_string()).collect())
                .unwrap_or_default();
            if w["kind"] != "select" || types != ["\"int\"", "\"string\""].map(String::from).into()
            {
                problems.push(format!("main.blockSelect: waiting_on {w}"));
            }
        }
        None => problems.push("main.blockSelect not found".into()),
    }
    for f in [
        "main.blockNilChanRecv",
        "main.blockNilChanSend",
        "main.blockSleep",
    ] {
        if let Some(g) = one(f) {
            if !g["waiting_on"].is_null() {
                problems.push(format!("{f}: waiting_on {} (want null)", g["waiting_on"]));
            }
        }
    }
    // Semaphores: the address lies inside the fixture's global.
    let go = go_for(version);
    let syms = nm(&go, &bin);
    for (f, var) in [
        ("main.blockMutex", "main.heldMu"),
        ("main.blockRLock", "main.heldRW"),
        ("main.blockWLock", "main.readRW"),
        ("main.blockWaitGroup", "main.neverWG"),
    ] {
        let Some(&(addr, size)) = syms.get(var) else {
            problems.push(format!("{var} not in go tool nm"));
            continue;
        };
        let w = one(f).map(|g| g["waiting_on"].clone()).unwrap_or_default();
        let ok = w["kind"] == "semaphore" && {
            let a = hex(&w["addr"]);
            a >= addr && a < addr + size.max(8)
        };
        if !ok {
            problems.push(format!(
                "{f}: waiting_on {w}, want a semaphore in {var} [{addr:#x}, +{size})"
            ));
        }
    }
    // sync.Cond: g.waiting names the notify list from Go 1.26.
    if go_minor(version).1 >= 26 {
        let w = one("main.blockCond")
            .map(|g| g["waiting_on"].clone())
            .unwrap_or_default();
        if w["kind"] != "cond" {
            problems.push(format!("main.blockCond: waiting_on {w}"));
        }
    }
    // dump --wait-info adds the line; plain dump stays in runtime format.
    let plain = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "dump".as_ref()]);
    let info = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "dump".as_ref(),
        "--wait-info".as_ref(),
    ]);
    if plain.contains("[waiting on") || !info.contains("\t[waiting on chan 0x") {
        problems.push("dump --wait-info / plain dump: waiting lines wrong".into());
    }
    let stripped: String = info
        .lines()
        .filter(|l| !l.starts_with("\t[waiting on "))
        .map(|l| format!("{l}\n"))
        .collect();
    if stripped != plain {
        problems.push("dump --wait-info minus its [waiting on] lines differs from dump".into());
    }

    // --- pprof: go tool pprof reads it; counts per fixture function.
    let prof = work.path().join("goroutines.pb.gz");
    gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "pprof".as_ref(),
        "-o".as_ref(),
        prof.as_os_str(),
    ]);
    let pp = |args: &[&str]| -> String {
        let out = Command::new(&go)
            .args(["tool", "pprof"])
            .args(args)
            .arg(&prof)
            .env("GOTOOLCHAIN", "local")
            .env("PPROF_TMPDIR", work.path())
            // Go 1.24+ builds `go tool pprof` on demand into the build cache.
            .env("GOCACHE", cache_dir().join("go-build"))
            .output()
            .expect("go tool pprof");
        assert!(
            out.status.success(),
            "go tool pprof {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let topout = pp(&[
        "-top",
        "-nodefraction=0",
        "-edgefraction=0",
        "-nodecount=100000",
    ]);
    let mut cum: BTreeMap<String, usize> = BTreeMap::new();
    for l in topout.lines() {
        let p: Vec<&str> = l.split_whitespace().collect();
        if p.len() >= 6 && p[3].parse::<usize>().is_ok() && p[1].ends_with('%') {
            cum.insert(p[5].to_string(), p[3].parse().unwrap());
        }
    }
    // Expected: goroutines of the oracle whose frames include F (the
    // oracle-writing goroutine ran other code then; truncated stacks lack
    // their outer frames).
    let mut want_cum: BTreeMap<String, usize> = BTreeMap::new();
    for g in &oracle.goroutines {
        if g.id == oracle.meta.oracle_goroutine_id || truncated(g) {
            continue;
        }
        let fs: BTreeSet<&str> = g.frames.iter().map(|f| f.function.as_str()).collect();
        for f in fs.into_iter().filter(|f| f.starts_with("main.")) {
            *want_cum.entry(f.to_string()).or_default() += 1;
        }
    }
    for (f, n) in &want_cum {
        let skip_recurse = f == "main.recurse"; // also in the truncated one
        let got = cum.get(f).copied().unwrap_or(0);
        if (!skip_recurse && got != *n) || (skip_recurse && got < *n) {
            problems.push(format!("pprof -top: {f} cum {got}, want {n}"));
        }
    }
    if cum.get("main.worker") != Some(&10) {
        problems.push(format!(
            "pprof -top: main.worker {:?}\n{topout}",
            cum.get("main.worker")
        ));
    }
    let traces = pp(&["-traces"]);
    if !traces.contains("state:") || !traces.contains("worker:") || !traces.contains("labelled") {
        problems.push(format!(
            "pprof -traces lacks state/worker labels:\n{traces}"
        ));
    }

    // --- folded.
    let folded = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "folded".as_ref()]);
    let mut fsum = 0;
    for l in folded.lines() {
        let (_, n) = l.rsplit_once(' ').expect("folded line");
        fsum += n.parse::<usize>().expect("count");
    }
    if fsum != total || !folded.lines().any(|l| l == "main.worker 10") {
        problems.push(format!(
            "folded: sum {fsum} (want {total}), no `main.worker 10`:\n{folded}"
        ));
    }

    assert!(
        problems.is_empty(),
        "go {version}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[derive(Debug, Deserialize)]
struct GrowMeta {
    num_goroutine: i64,
    parked_ids: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct GrowMeta2 {
    num_goroutine: i64,
    leaker_ids: Vec<u64>,
}

fn grow_fixture(version: &str) {
    let Some(bin) = try_build_fixture("grow", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-diff-")
        .tempdir()
        .unwrap();
    let (a, b) = (work.path().join("a.gss"), work.path().join("b.gss"));
    let mut fx = Fixture::start(&bin);
    capture(fx.pid, &a, &[]);
    // SAFETY: plain kill(2) on our own child, which is alive (not reaped).
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
    let ready2 = fx.dir.path().join("ready2");
    let t0 = Instant::now();
    while !ready2.exists() {
        assert!(fx.is_running(), "grow exited: {}", fx.stderr());
        assert!(
            t0.elapsed() < FIXTURE_READY_TIMEOUT,
            "no ready2: {}",
            fx.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    capture(fx.pid, &b, &[]);
    fx.kill();
    let read = |n: &str| std::fs::read_to_string(fx.dir.path().join(n)).unwrap();
    let m1: GrowMeta = serde_json::from_str(&read("meta.json")).unwrap();
    let m2: GrowMeta2 = serde_json::from_str(&read("meta2.json")).unwrap();
    assert_eq!(m2.leaker_ids.len(), 100);

    let d: Value = serde_json::from_str(&gospy_ok([
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let mut problems = Vec::new();
    let gs = &d["goroutines"];
    if gs["before"] != m1.num_goroutine || gs["after"] != m2.num_goroutine {
        problems.push(format!(
            "goroutines {gs}, runtime.NumGoroutine said {} then {}",
            m1.num_goroutine, m2.num_goroutine
        ));
    }
    let groups = d["groups"].as_array().unwrap();
    let g = |k: &str| groups.iter().find(|g| g["key"] == k).cloned();
    match g("main.leaker") {
        Some(l) if l["before"] == 0 && l["after"] == 100 && l["delta"] == 100 => {}
        other => problems.push(format!("main.leaker group: {other:?}")),
    }
    match g("main.parked") {
        Some(p) if p["before"] == 20 && p["after"] == 20 && p["delta"] == 0 => {}
        other => problems.push(format!("main.parked group: {other:?}")),
    }
    if groups[0]["key"] != "main.leaker" {
        problems.push(format!("groups not sorted by |delta|: {}", groups[0]));
    }
    // Heap changes: MemStats fields before/after (each consistent), and the
    // 100 new goroutines allocated (their g structs come from the heap).
    let hm = &d["heap"]["memstats"];
    for k in ["HeapAlloc", "HeapObjects", "Mallocs", "Frees", "NumGC"] {
        let f = &hm[k];
        match (
            f["before"].as_i64(),
            f["after"].as_i64(),
            f["delta"].as_i64(),
        ) {
            (Some(b), Some(a), Some(dl)) if a - b == dl => {}
            _ => problems.push(format!("heap.memstats.{k}: {f}")),
        }
    }
    if hm["Mallocs"]["delta"].as_i64().unwrap_or(0) < 100 {
        problems.push(format!(
            "heap: Mallocs grew by less than 100: {}",
            hm["Mallocs"]
        ));
    }
    let leaks: BTreeSet<u64> = d["leak_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    // The leak candidates are the group that grew and stayed blocked (the
    // 100 new leakers); the 20 parked goroutines waited through the whole
    // interval but their group did not grow: long-lived, never listed.
    let parked: BTreeSet<u64> = m1.parked_ids.iter().copied().collect();
    let leakers: BTreeSet<u64> = m2.leaker_ids.iter().copied().collect();
    if leaks != leakers {
        problems.push(format!(
            "leak candidates {} (want the {} leakers); parked among them: {:?}",
            leaks.len(),
            leakers.len(),
            leaks.intersection(&parked).collect::<Vec<_>>()
        ));
    }
    let lg = d["leak_groups"].as_array().unwrap();
    if lg.len() != 1
        || lg[0]["key"] != "main.leaker"
        || lg[0]["delta"] != 100
        || lg[0]["blocked_through"] != 0
    {
        problems.push(format!("leak groups: {lg:?}"));
    }
    for l in d["leak_candidates"].as_array().unwrap() {
        // The fixture ran a GC after the leakers blocked: waitsince is set.
        if l["wait_ns"].as_u64().unwrap_or(0) == 0 {
            problems.push(format!("leak candidate without wait duration: {l}"));
        }
    }
    // The new goroutines wait on the buffered chan string (cap 3, full).
    let dump = dump_json(&b);
    for g in in_function(&dump, "main.leaker") {
        let w = &g["waiting_on"];
        if w["kind"] != "chan" || w["elem_type"] != "string" || w["cap"] != 3 || w["len"] != 3 {
            problems.push(format!("leaker {}: waiting_on {w}", g["id"]));
            break;
        }
    }
    // Text output names the leaker group with +100.
    let text = gospy_ok([a.as_os_str(), b.as_os_str()].iter().fold(
        vec![std::ffi::OsStr::new("diff")],
        |mut v, p| {
            v.push(p);
            v
        },
    ));
    if !text
        .lines()
        .any(|l| l.contains("+100") && l.ends_with("main.leaker"))
    {
        problems.push(format!("diff text:\n{text}"));
    }
    assert!(
        problems.is_empty(),
        "go {version}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Snapshots of different executables: refused in one line unless --force.
#[test]
fn diff_refuses_different_binaries() {
    let (Some(g1), Some(g2)) = (
        try_build_fixture("grow", "1.27", false, ""),
        try_build_fixture("goroutines", "1.27", false, ""),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.gss"), work.path().join("b.gss"));
    {
        let fx = Fixture::start(&g1);
        capture(fx.pid, &a, &[]);
    }
    {
        let fx = Fixture::start(&g2);
        capture(fx.pid, &b, &[]);
    }
    let out = gospy(["diff".as_ref(), a.as_os_str(), b.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("different executables") && err.contains("--force"),
        "{err}"
    );
    let forced = gospy_ok([
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--force".as_ref(),
        "--json".as_ref(),
    ]);
    let d: Value = serde_json::from_str(&forced).unwrap();
    assert!(d["leak_candidates"].as_array().unwrap().is_empty());
    assert!(d["warnings"].to_string().contains("different executables"));
}

macro_rules! per_version {
    ($($name:ident => $v:expr),* $(,)?) => {
        mod top_goroutines {
            $(#[test] fn $name() { super::goroutines_fixture($v); })*
        }
        mod diff_grow {
            $(#[test] fn $name() { super::grow_fixture($v); })*
        }
    };
}

per_version! {
    go1_19 => "1.19",
    go1_21 => "1.21",
    go1_22 => "1.22",
    go1_23 => "1.23",
    go1_24 => "1.24",
    go1_25 => "1.25",
    go1_26 => "1.26",
    go1_27 => "1.27",
}
