//! Acceptance test (issue 13, block and mutex): gospy's block and mutex
//! profiles (`analyze FILE pprof block|mutex`, and live `pprof --pid N
//! block|mutex`), read from the runtime's bucket lists (runtime.bbuckets,
//! runtime.xbuckets) in a snapshot, must equal the profiles the process
//! wrote itself with `pprof.Lookup("block"|"mutex").WriteTo(f, 0)`
//! (tests/fixtures/contend: SetBlockProfileRate(1),
//! SetMutexProfileFraction(1), contention from known sites, then quiet).
//!
//! Both files are read by pprof (`pprof -raw`, the toolchains' own tool)
//! and compared as multisets of samples: both values (contentions, and the
//! delay in nanoseconds the writer computes from cycles with the target's
//! own cputicks rate), the stack as function and line of every line of
//! every location (inlined frames as extra lines of one location); and
//! the period and sample types.

mod common;
#[path = "common/prof.rs"]
mod prof;

use common::*;
use prof::{differences, parse_raw, pprof_raw, runtime_lock_sample};
use std::collections::BTreeMap;

fn has_frame(want: &BTreeMap<prof::Sample, usize>, f: &dyn Fn(&prof::Sample) -> bool) -> bool {
    want.keys().any(f)
}

/// The oracle holds the fixture's sites (the comparison means something).
fn check_oracle(kind: &str, want: &BTreeMap<prof::Sample, usize>) {
    let first_line_is = |s: &prof::Sample, i: usize, f: &str| {
        s.1.get(i)
            .is_some_and(|l| l.iter().any(|x| x.starts_with(&format!("{f} "))))
    };
    if kind == "block" {
        assert!(
            has_frame(want, &|s| first_line_is(s, 1, "main.recvOne")
                && s.1[1].iter().any(|x| x.starts_with("main.chanWaiter "))),
            "block oracle lacks recvOne inlined into chanWaiter"
        );
        assert!(
            has_frame(want, &|s| s
                .1
                .iter()
                .flatten()
                .any(|x| x.starts_with("main.selectWaiter "))),
            "block oracle lacks selectWaiter"
        );
    } else {
        assert!(
            has_frame(want, &|s| s
                .1
                .iter()
                .flatten()
                .any(|x| x.starts_with("main.holdMutex "))),
            "mutex oracle lacks holdMutex"
        );
    }
}

/// Differences between the oracle and gospy's listing. From Go 1.22 the
/// mutex profile also records contention on the runtime's own locks
/// (`runtime_lock_sample`), which the runtime's own threads can add to
/// after the oracle was written (seen: sysmon and the scheduler, even with
/// one P and GC off). Those
/// differences are reported, not failures: the program's samples must
/// match exactly.
fn program_differences(kind: &str, want: &str, got: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in differences(want, got, 2) {
        if kind == "mutex" && runtime_lock_sample(&p) {
            report(&format!(
                "  runtime's own lock contention since the oracle: {p}"
            ));
        } else {
            out.push(format!("{kind}: {p}"));
        }
    }
    out
}

fn block_profiles_match(version: &str, pie: bool, ldflags: &str) {
    let Some(binary) = try_build_fixture("contend", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-contend-test-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let snap = work.path().join("contend.gss");
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
    let counts: Vec<u64> = ["block", "mutex"]
        .iter()
        .map(|k| cap["block_profiles"][k]["buckets"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        counts[0] >= 4 && counts[1] >= 1,
        "capture read {counts:?} block/mutex buckets: {cap}"
    );
    let mut problems = Vec::new();
    let mut samples = 0;
    for kind in ["block", "mutex"] {
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
        let got = pprof_raw(&got_file);
        let w = parse_raw(&want, 2);
        check_oracle(kind, &w);
        samples += w.values().sum::<usize>();
        problems.extend(program_differences(kind, &want, &got));
    }
    drop(fx);
    report(&format!(
        "block/mutex profiles go {version} pie={pie} ldflags={ldflags:?}: {samples} samples, buckets {counts:?}, {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} pie={pie} ldflags={ldflags:?}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Live: `gospy pprof --pid N block|mutex`.
fn live_block_profiles_match(version: &str) {
    let Some(binary) = try_build_fixture("contend", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-contend-live-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let pid = fx.pid.to_string();
    let mut problems = Vec::new();
    for kind in ["block", "mutex"] {
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
        problems.extend(program_differences(kind, &want, &pprof_raw(&got_file)));
    }
    drop(fx);
    report(&format!(
        "live pprof block/mutex go {version}: {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} live:\n{}",
        problems.join("\n")
    );
}

#[test]
fn live_block_profiles_go1_22() {
    live_block_profiles_match("1.22");
}

#[test]
fn live_block_profiles_go1_27() {
    live_block_profiles_match("1.27");
}

macro_rules! block_profile_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            block_profiles_match($version, $pie, $flags);
        }
    )*};
}

block_profile_tests! {
    block_profile_go1_19: "1.19", pie = false, "";
    block_profile_go1_21: "1.21", pie = false, "";
    block_profile_go1_22: "1.22", pie = false, "";
    block_profile_go1_23: "1.23", pie = false, "";
    block_profile_go1_24: "1.24", pie = false, "";
    block_profile_go1_25: "1.25", pie = false, "";
    block_profile_go1_26: "1.26", pie = false, "";
    block_profile_go1_27: "1.27", pie = false, "";
    block_profile_go1_19_pie: "1.19", pie = true, "";
    block_profile_go1_23_pie: "1.23", pie = true, "";
    block_profile_go1_27_pie: "1.27", pie = true, "";
    block_profile_no_symbols_go1_19: "1.19", pie = false, "-s -w";
    block_profile_no_symbols_go1_22: "1.22", pie = false, "-s -w";
    block_profile_no_symbols_go1_24: "1.24", pie = false, "-s -w";
    block_profile_no_symbols_go1_27: "1.27", pie = false, "-s -w";
    block_profile_go1_21_pie: "1.21", pie = true, "";
    block_profile_no_symbols_go1_21: "1.21", pie = false, "-s -w";
    block_profile_go1_22_pie: "1.22", pie = true, "";
    block_profile_no_symbols_go1_23: "1.23", pie = false, "-s -w";
    block_profile_go1_24_pie: "1.24", pie = true, "";
    block_profile_go1_25_pie: "1.25", pie = true, "";
    block_profile_no_symbols_go1_25: "1.25", pie = false, "-s -w";
    block_profile_go1_26_pie: "1.26", pie = true, "";
    block_profile_no_symbols_go1_26: "1.26", pie = false, "-s -w";
}

/// The contention profiles' globals recovered from code (as for a binary
/// without symbols) are where the symbol table says: bbuckets, xbuckets
/// and mutexprofilerate in every program; ticks where the code that reads
/// it is linked (the contend fixture links runtime/pprof).
fn contention_globals_match_symtab(version: &str, pie: bool) {
    let mut problems = Vec::new();
    for fixture in ["contend", "goroutines"] {
        let Some(path) = try_build_fixture(fixture, version, pie, "") else {
            return;
        };
        let bin = gospy::binary::Binary::from_path(&path).unwrap();
        let rec = gospy::goruntime::version::globals::recover(&bin);
        let mut names = vec![
            "runtime.bbuckets",
            "runtime.xbuckets",
            "runtime.mutexprofilerate",
        ];
        if fixture == "contend" || rec.addrs.contains_key("runtime.ticks") {
            names.push("runtime.ticks");
        }
        for name in names {
            let sym = bin.elf.symbol(name).map(|s| s.0);
            let got = rec.addrs.get(name).copied();
            if got != sym || got.is_none() {
                problems.push(format!(
                    "{fixture} {name}: recovered {:?}, symbol table {:?}",
                    got.map(|a| format!("{a:#x}")),
                    sym.map(|a| format!("{a:#x}"))
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "go {version} pie={pie}: {}",
        problems.join("\n")
    );
}

#[test]
fn contention_globals_from_code() {
    for (v, _) in toolchains() {
        let v = format!("1.{}", v.split('.').nth(1).unwrap_or("0"));
        contention_globals_match_symtab(&v, false);
        contention_globals_match_symtab(&v, true);
    }
}

/// A gcore core of the fixture gives its block and mutex profiles too.
fn gcore_block_profiles_match(version: &str, pie: bool, ldflags: &str) {
    if !have_gcore() {
        return;
    }
    let Some(binary) = try_build_fixture("contend", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-contend-core-")
        .tempdir()
        .unwrap();
    let mut fx = Fixture::start(&binary);
    let core = gcore(fx.pid, work.path());
    fx.kill();
    let mut problems = Vec::new();
    for kind in ["block", "mutex"] {
        let got_file = work.path().join(format!("{kind}.pb.gz"));
        gospy_ok([
            "analyze".as_ref(),
            core.as_os_str(),
            "pprof".as_ref(),
            kind.as_ref(),
            "-o".as_ref(),
            got_file.as_os_str(),
        ]);
        let want = pprof_raw(&fx.dir.path().join(format!("{kind}.pb.gz")));
        problems.extend(program_differences(kind, &want, &pprof_raw(&got_file)));
    }
    report(&format!(
        "block/mutex profiles from a gcore core, go {version} pie={pie} ldflags={ldflags:?}: {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} gcore core:\n{}",
        problems.join("\n")
    );
}

#[test]
fn gcore_block_profiles_go1_19() {
    gcore_block_profiles_match("1.19", false, "");
}

#[test]
fn gcore_block_profiles_go1_27_pie_stripped() {
    gcore_block_profiles_match("1.27", true, "-s -w");
}

#[test]
fn gcore_block_profiles_go1_21_pie() {
    gcore_block_profiles_match("1.21", true, "");
}

#[test]
fn gcore_block_profiles_go1_22_stripped() {
    gcore_block_profiles_match("1.22", false, "-s -w");
}

#[test]
fn gcore_block_profiles_go1_23() {
    gcore_block_profiles_match("1.23", false, "");
}

#[test]
fn gcore_block_profiles_go1_24_pie() {
    gcore_block_profiles_match("1.24", true, "");
}

#[test]
fn gcore_block_profiles_go1_25_stripped() {
    gcore_block_profiles_match("1.25", false, "-s -w");
}

#[test]
fn gcore_block_profiles_go1_26() {
    gcore_block_profiles_match("1.26", false, "");
}
