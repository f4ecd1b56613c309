//! Acceptance test (issue 13, heap at exact rate): gospy's heap and allocs
//! profiles (`analyze FILE pprof heap|allocs`), read from the runtime's
//! bucket list in a snapshot, must equal the profiles the process wrote
//! itself with `pprof.Lookup("heap"|"allocs").WriteTo(f, 0)`
//! (tests/fixtures/heapprof, with MemProfileRate = 1, quiet after a GC
//! with GC off). The two differ only by the default sample type, which
//! pprof -raw shows as `[dflt]` in the sample-type line: compared too.
//!
//! Both files are read by pprof (`pprof -raw`, the toolchains' own tool) and
//! compared as multisets of non-zero samples: the four values, the stack as
//! function and line of every line of every location (inlined frames as
//! extra lines of one location), and the `bytes` label. Zero samples are
//! left out: allocations made while the fixture wrote its oracle (and
//! later) sit in a future cycle, which both readers fold to zero, and the
//! oracle cannot contain the ones after it.

mod common;
#[path = "common/prof.rs"]
mod prof;

use common::*;
use prof::{differences, parse_raw, pprof_raw, Sample};
use std::collections::BTreeMap;
use std::ffi::OsStr;

/// `heap --sites` (views, issue 13): for every sample type, the total
/// equals the sum of the oracle's samples, and (with -n 0: every site) the
/// flat values add up to it. Differences, as text.
/// `heap` is the command up to its options (`analyze FILE heap`, or
/// `heap --pid N`).
fn sites_totals(heap: &[&OsStr], want: &BTreeMap<Sample, usize>) -> Vec<String> {
    let mut problems = Vec::new();
    let types = [
        "alloc_objects",
        "alloc_space",
        "inuse_objects",
        "inuse_space",
    ];
    for (i, sample) in types.into_iter().enumerate() {
        let mut args = heap.to_vec();
        for a in ["--sites", "--sample", sample, "-n", "0", "--json"] {
            args.push(a.as_ref());
        }
        let text = gospy_ok(&args);
        let v: serde_json::Value = serde_json::from_str(&text).expect("heap --sites --json");
        let oracle: i64 = want.iter().map(|(s, n)| s.0[i] * *n as i64).sum();
        let total = v["total"].as_i64().unwrap_or(-1);
        let flat: i64 = v["sites"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["flat"].as_i64()).sum())
            .unwrap_or(-1);
        if v["sample"] != sample || total != oracle || flat != oracle {
            problems.push(format!(
                "heap --sites --sample {sample}: total {total}, sum of flat {flat}, oracle {oracle}"
            ));
        }
    }
    problems
}

fn heap_profile_matches(version: &str, pie: bool, ldflags: &str) {
    let Some(binary) = try_build_fixture("heapprof", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heapprof-test-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let snap = work.path().join("heapprof.gss");
    let pid = fx.pid.to_string();
    let cap = gospy_ok([
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]);
    let cap: serde_json::Value = serde_json::from_str(&cap).expect("capture --json");
    let buckets = cap["mem_profile"]["buckets"].as_u64().unwrap_or(0);
    assert!(buckets > 10, "capture read {buckets} buckets: {cap}");
    // Idle, the fixture is usually captured from the quiet pre-read (its
    // bucket records read before the stop and kept); either way the
    // profile must equal the fixture's own.
    eprintln!(
        "go {version}: {buckets} buckets; quiet pre-read kept: {}",
        cap["quiet"]["kept"]
    );
    let mut raw = BTreeMap::new();
    for kind in ["heap", "allocs"] {
        let got_file = work.path().join(format!("{kind}.pb.gz"));
        gospy_ok([
            "analyze".as_ref(),
            snap.as_os_str(),
            "pprof".as_ref(),
            kind.as_ref(),
            "-o".as_ref(),
            got_file.as_os_str(),
        ]);
        let want = pprof_raw(&fx.dir.path().join(format!("{kind}.pb.gz")));
        raw.insert(kind, (want, pprof_raw(&got_file)));
    }
    drop(fx);
    let want = parse_raw(&raw["heap"].0, 4);
    let mut problems = sites_totals(
        &["analyze".as_ref(), snap.as_os_str(), "heap".as_ref()],
        &want,
    );
    let allocs_types = prof::header(&raw["allocs"].0).pop().unwrap_or_default();
    assert!(
        allocs_types.contains("alloc_space/bytes[dflt]"),
        "the oracle's allocs profile has alloc_space as its default: {allocs_types}"
    );

    // The fixture's sites are there (the comparison means something).
    let has = |f: &dyn Fn(&Sample) -> bool| want.keys().any(f);
    assert!(
        has(&|s| s.0 == [100, 4800, 100, 4800]
            && s.1
                .first()
                .is_some_and(|l| l[0].starts_with("main.allocSmall "))),
        "oracle lacks allocSmall's 100 × 48 bytes"
    );
    assert!(
        has(&|s| s.1.first().is_some_and(|l| l.len() == 3
            && l[0].starts_with("main.newNode ")
            && l[1].starts_with("main.makeNode ")
            && l[2].starts_with("main.buildList "))),
        "oracle lacks the inlined newNode ← makeNode ← buildList location"
    );
    assert!(
        has(&|s| s.0[0] == 50 && s.0[2] == 0),
        "oracle lacks allocFreed's 50 freed objects"
    );

    for (kind, (w, g)) in &raw {
        problems.extend(
            differences(w, g, 4)
                .into_iter()
                .map(|p| format!("{kind}: {p}")),
        );
    }
    report(&format!(
        "heap profile go {version} pie={pie} ldflags={ldflags:?}: {} non-zero samples, {buckets} buckets, {} differences",
        want.values().sum::<usize>(),
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} pie={pie} ldflags={ldflags:?}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `diff --heap-sites` (views, issue 13): between a capture after `ready`
/// and one after the fixture retained `GROW` more objects at main.grow
/// (GOSPY_HEAPPROF_GROW, SIGUSR1), main.grow grew by exactly GROW objects
/// of 64 bytes and no other site changed.
fn heap_sites_diff(version: &str) {
    const GROW: i64 = 1000;
    let Some(binary) = try_build_fixture("heapprof", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heapsites-test-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start_with_env(&binary, &[("GOSPY_HEAPPROF_GROW", &GROW.to_string())]);
    let (a, b) = (work.path().join("a.gss"), work.path().join("b.gss"));
    capture(fx.pid, &a, &[]);
    // SAFETY: signals the fixture this test started and still owns.
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
    let ready2 = fx.dir.path().join("ready2");
    let start = std::time::Instant::now();
    while !ready2.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "fixture did not write ready2; stderr:\n{}",
            fx.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    capture(fx.pid, &b, &[]);
    drop(fx);
    let text = gospy_ok([
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--heap-sites".as_ref(),
        "--json".as_ref(),
    ]);
    let d: serde_json::Value = serde_json::from_str(&text).expect("diff --heap-sites --json");
    let sites = d["sites"].as_array().expect("sites");
    let mut problems = Vec::new();
    let mut grow = 0;
    for s in sites {
        let (o, b) = (
            s["objects_growth"].as_i64().unwrap_or(-1),
            s["bytes_growth"].as_i64().unwrap_or(-1),
        );
        let name = format!("{} {}:{}", s["function"], s["file"], s["line"]);
        if s["function"] == "main.grow" {
            grow += 1;
            if (o, b) != (GROW, 64 * GROW) {
                problems.push(format!("{name}: +{o} objects, +{b} bytes"));
            }
        } else if (o, b) != (0, 0) {
            // The runtime's own objects (no program frame on the stack: a
            // new thread's g0, a timer) may come and go between captures.
            let runtime_only = s["function"]
                .as_str()
                .is_some_and(|f| f.starts_with("runtime.") || f.starts_with("internal/runtime/"));
            if runtime_only {
                report(&format!(
                    "  runtime's own: {name}: {o:+} objects, {b:+} bytes"
                ));
            } else {
                problems.push(format!("{name}: {o:+} objects, {b:+} bytes"));
            }
        }
    }
    if grow != 1 {
        problems.push(format!("{grow} sites at main.grow"));
    }
    report(&format!(
        "diff --heap-sites go {version}: {} sites, {} differences",
        sites.len(),
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version}: diff --heap-sites:\n{}",
        problems.join("\n")
    );
}

#[test]
fn heap_sites_diff_go1_19() {
    heap_sites_diff("1.19");
}

#[test]
fn heap_sites_diff_go1_23() {
    heap_sites_diff("1.23");
}

#[test]
fn heap_sites_diff_go1_27() {
    heap_sites_diff("1.27");
}

/// Live (`gospy pprof --pid N heap|allocs`, `gospy heap --pid N --sites`):
/// the same profiles as the fixture's own, and the same site totals.
fn live_profiles_match(version: &str) {
    let Some(binary) = try_build_fixture("heapprof", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heapprof-live-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let pid = fx.pid.to_string();
    let mut problems = Vec::new();
    for kind in ["heap", "allocs"] {
        let got_file = work.path().join(format!("{kind}.pb.gz"));
        gospy_ok([
            "pprof".as_ref(),
            "--pid".as_ref(),
            pid.as_ref(),
            kind.as_ref(),
            "-o".as_ref(),
            got_file.as_os_str(),
        ]);
        let want = pprof_raw(&fx.dir.path().join(format!("{kind}.pb.gz")));
        let got = pprof_raw(&got_file);
        problems.extend(
            differences(&want, &got, 4)
                .into_iter()
                .map(|p| format!("{kind}: {p}")),
        );
    }
    let want = parse_raw(&pprof_raw(&fx.dir.path().join("heap.pb.gz")), 4);
    problems.extend(sites_totals(
        &["heap".as_ref(), "--pid".as_ref(), pid.as_ref()],
        &want,
    ));
    drop(fx);
    report(&format!(
        "live pprof heap/allocs, heap --sites go {version}: {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} live:\n{}",
        problems.join("\n")
    );
}

#[test]
fn live_profiles_go1_21() {
    live_profiles_match("1.21");
}

#[test]
fn live_profiles_go1_27() {
    live_profiles_match("1.27");
}

macro_rules! heap_profile_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            heap_profile_matches($version, $pie, $flags);
        }
    )*};
}

heap_profile_tests! {
    heap_profile_go1_19: "1.19", pie = false, "";
    heap_profile_go1_21: "1.21", pie = false, "";
    heap_profile_go1_22: "1.22", pie = false, "";
    heap_profile_go1_23: "1.23", pie = false, "";
    heap_profile_go1_24: "1.24", pie = false, "";
    heap_profile_go1_25: "1.25", pie = false, "";
    heap_profile_go1_26: "1.26", pie = false, "";
    heap_profile_go1_27: "1.27", pie = false, "";
    heap_profile_go1_19_pie: "1.19", pie = true, "";
    heap_profile_go1_27_pie: "1.27", pie = true, "";
    heap_profile_no_dwarf_go1_19: "1.19", pie = false, "-w";
    heap_profile_no_dwarf_go1_27: "1.27", pie = false, "-w";
}

// Stripped (-s -w): mbuckets, MemProfileRate and mProfCycle recovered from
// code (goruntime/version/globals.rs).
#[test]
fn heap_profile_no_symbols_go1_27() {
    heap_profile_matches("1.27", false, "-s -w");
}

#[test]
fn heap_profile_no_symbols_go1_19() {
    heap_profile_matches("1.19", false, "-s -w");
}

#[test]
fn heap_profile_no_symbols_go1_22() {
    heap_profile_matches("1.22", false, "-s -w");
}
