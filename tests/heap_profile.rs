//! Acceptance test (issue 13, heap at exact rate): gospy's heap profile
//! (`analyze FILE pprof heap`), read from the runtime's bucket list in a
//! snapshot, must equal the profile the process wrote itself with
//! `pprof.Lookup("heap").WriteTo(f, 0)` (tests/fixtures/heapprof, with
//! MemProfileRate = 1, quiet after a GC with GC off).
//!
//! Both files are read by pprof (`pprof -raw`, the toolchains' own tool) and
//! compared as multisets of non-zero samples: the four values, the stack as
//! function and line of every line of every location (inlined frames as
//! extra lines of one location), and the `bytes` label. Zero samples are
//! left out: allocations made while the fixture wrote its oracle (and
//! later) sit in a future cycle, which both readers fold to zero, and the
//! oracle cannot contain the ones after it.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A sample as pprof -raw prints it: values, stack (location lines, inner
/// first), labels.
type Sample = ([i64; 4], Vec<Vec<String>>, String);

/// A `pprof` binary: the first toolchain that ships one in pkg/tool (from
/// Go 1.25 `go tool pprof` builds it on demand), else `go tool pprof`.
fn pprof_cmd() -> Command {
    for (_, go) in toolchains().iter().rev() {
        let root = go.parent().and_then(Path::parent).map(PathBuf::from);
        if let Some(p) = root.map(|r| r.join("pkg/tool/linux_amd64/pprof")) {
            if p.is_file() {
                return Command::new(p);
            }
        }
    }
    let (_, go) = toolchains().last().expect("a Go toolchain").clone();
    let mut c = Command::new(go);
    c.args(["tool", "pprof"]).env("GOTOOLCHAIN", "local");
    c
}

fn pprof_raw(file: &Path) -> String {
    let out = pprof_cmd()
        .args(["-raw", "-symbolize=none"])
        .arg(file)
        .output()
        .expect("running pprof");
    assert!(
        out.status.success(),
        "pprof -raw {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pprof output is UTF-8")
}

/// "main.f ./main.go:12:0 s=10" → "main.f main.go:12" (the file without
/// its directory, which differs between -trimpath builds only by prefix).
fn line_key(l: &str) -> String {
    let mut it = l.split_whitespace();
    let f = it.next().unwrap_or("");
    let pos = it.next().unwrap_or("");
    let pos = pos.rsplit('/').next().unwrap_or(pos);
    let pos = pos.strip_suffix(":0").unwrap_or(pos);
    format!("{f} {pos}")
}

/// The non-zero samples of a `pprof -raw` listing, counted.
fn parse_raw(text: &str) -> BTreeMap<Sample, usize> {
    let mut samples: Vec<([i64; 4], Vec<String>, String)> = Vec::new();
    let mut locs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = "";
    let mut cur = String::new();
    for l in text.lines() {
        match l {
            "Samples:" => section = "s",
            "Locations" => section = "l",
            "Mappings" => section = "m",
            _ if section == "s" => {
                if let Some((vals, ids)) = l.split_once(':').filter(|_| !l.contains("bytes:")) {
                    let v: Vec<i64> = vals
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if v.len() == 4 {
                        let ids = ids.split_whitespace().map(str::to_string).collect();
                        samples.push(([v[0], v[1], v[2], v[3]], ids, String::new()));
                    }
                } else if let Some(s) = samples.last_mut() {
                    s.2.push_str(l.trim());
                }
            }
            _ if section == "l" => {
                let t = l.trim_start();
                if let Some((id, rest)) = t
                    .split_once(": 0x")
                    .filter(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                {
                    cur = id.to_string();
                    // "ADDR M=1 func file:line:col s=N"
                    let rest = rest.split_once(' ').map(|x| x.1).unwrap_or("");
                    let rest = rest
                        .strip_prefix("M=")
                        .map_or(rest, |r| r.split_once(' ').map(|x| x.1).unwrap_or(""));
                    let e = locs.entry(cur.clone()).or_default();
                    if !rest.trim().is_empty() {
                        e.push(line_key(rest));
                    }
                } else if !t.is_empty() {
                    locs.entry(cur.clone()).or_default().push(line_key(t));
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (v, ids, label) in samples {
        if v == [0; 4] {
            continue;
        }
        let stack = ids
            .iter()
            .map(|i| locs.get(i).cloned().unwrap_or_default())
            .collect();
        *out.entry((v, stack, label)).or_insert(0) += 1;
    }
    out
}

fn render(s: &Sample) -> String {
    let stack: Vec<String> = s.1.iter().map(|l| l.join(" | ")).collect();
    format!("{:?} {} <- {}", s.0, s.2, stack.join(" <- "))
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
    let got_file = work.path().join("heap.pb.gz");
    gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "pprof".as_ref(),
        "heap".as_ref(),
        "-o".as_ref(),
        got_file.as_os_str(),
    ]);
    let want = parse_raw(&pprof_raw(&fx.dir.path().join("heap.pb.gz")));
    let got = parse_raw(&pprof_raw(&got_file));
    drop(fx);

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

    let mut problems = Vec::new();
    for (s, n) in &want {
        let g = got.get(s).copied().unwrap_or(0);
        if g != *n {
            problems.push(format!("oracle ×{n}, gospy ×{g}: {}", render(s)));
        }
    }
    for (s, n) in &got {
        if !want.contains_key(s) {
            problems.push(format!("oracle ×0, gospy ×{n}: {}", render(s)));
        }
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
