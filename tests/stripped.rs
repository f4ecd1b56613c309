//! Stripped executables: the goroutines fixture built with `-ldflags=-w` (no
//! DWARF) and `-ldflags='-s -w'` (no DWARF, no symbol table) must give, with
//! no --bin, the same `dump --json` and `summary --json` as its unstripped
//! build, for every toolchain.
//!
//! Each side runs its own fixture process (same source, so the same
//! goroutines with the same ids, frames and offsets; only wait times, M ids
//! and the busy goroutine's exact position may differ), captured with
//! `gospy capture` and analyzed from the snapshot.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// Capture a fixture built with `ldflags` and return (dump --json, dump
/// --json --all, summary --json, stderr of the analyses).
fn analyze(version: &str, pie: bool, ldflags: &str) -> Option<(Value, Value, Value, String)> {
    let bin = try_build_fixture("goroutines", version, pie, ldflags)?;
    let work = tempfile::Builder::new()
        .prefix("gospy-stripped-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("snap.gss");
    let mut fx = Fixture::start(&bin);
    capture(fx.pid, &snap, &[]);
    fx.kill();
    let mut stderr = String::new();
    let mut run = |args: &[&str]| -> Value {
        let mut a: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), snap.as_os_str()];
        a.extend(args.iter().map(|s| std::ffi::OsStr::new(*s)));
        let out = gospy(&a);
        assert!(
            out.status.success(),
            "go {version} ldflags {ldflags:?}: gospy analyze {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stderr += &String::from_utf8_lossy(&out.stderr);
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let dump = run(&["dump", "--json"]);
    let all = run(&["dump", "--json", "--all"]);
    let summary = run(&["summary", "--json"]);
    Some((dump, all, summary, stderr))
}

/// Goroutines minus what legitimately differs between two runs: running or
/// runnable goroutines (the busy loop; where a preemption caught it), wait
/// times, M ids, and goroutine ids (goroutines started concurrently by other
/// goroutines get ids from per-P caches, in either order). Sorted.
fn normalize_goroutines(v: &Value) -> Vec<Value> {
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
        if status == "running" || status == "runnable" {
            // Keep identity only.
            o.retain(|k, _| k == "start_function" || k == "created_by");
        }
        out.push(g);
    }
    out.sort_by_key(|g| g.to_string());
    out
}

fn summary_facts(s: &Value) -> Value {
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

fn first_diff(a: &[Value], b: &[Value]) -> String {
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

/// Differences between the unstripped (0) and stripped (1) analyses.
fn differences(
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

fn same_as_unstripped(version: &str, pie: bool, ldflags: &str) {
    let Some((d0, a0, s0, _)) = analyze(version, pie, "") else {
        return;
    };
    let what = format!("go {version} pie={pie} ldflags={ldflags:?}");
    // A goroutine caught between two states (a preemption, a GC worker
    // waking up on a loaded machine) makes one run differ: capture the
    // stripped side again once before failing.
    let mut last = None;
    for attempt in 0..2 {
        let (d1, a1, s1, err1) = analyze(version, pie, ldflags).unwrap();
        match differences(&what, (&d0, &a0, &s0), (&d1, &a1, &s1)) {
            None => {
                let n = normalize_goroutines(&a1).len();
                assert!(n > 20, "{what}: too few goroutines ({n})");
                eprintln!(
                    "{what}: {n} goroutines identical; gospy said: {}",
                    err1.trim()
                );
                return;
            }
            Some(d) => {
                eprintln!("note: attempt {attempt}: {d}");
                last = Some(d);
            }
        }
    }
    panic!("{}", last.unwrap());
}

/// The fixture's stripped builds really are stripped.
fn assert_stripped(version: &str, ldflags: &str) {
    let Some(bin) = try_build_fixture("goroutines", version, false, ldflags) else {
        return;
    };
    let b = gospy::binary::Binary::from_path(Path::new(&bin)).unwrap();
    assert!(b.dwarf().is_none(), "{ldflags}: DWARF present");
    assert_eq!(
        b.elf.has_symtab(),
        !ldflags.contains("-s"),
        "{ldflags}: symtab presence"
    );
}

macro_rules! stripped_tests {
    ($($name:ident: $v:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            assert_stripped($v, $flags);
            same_as_unstripped($v, $pie, $flags);
        }
    )*};
}

stripped_tests! {
    no_dwarf_go1_19: "1.19", pie = false, "-w";
    no_dwarf_go1_21: "1.21", pie = false, "-w";
    no_dwarf_go1_22: "1.22", pie = false, "-w";
    no_dwarf_go1_23: "1.23", pie = false, "-w";
    no_dwarf_go1_24: "1.24", pie = false, "-w";
    no_dwarf_go1_25: "1.25", pie = false, "-w";
    no_dwarf_go1_26: "1.26", pie = false, "-w";
    no_dwarf_go1_27: "1.27", pie = false, "-w";
}

/// The globals recovered from code (as for a binary without symbols) are
/// exactly where the symbol table says, PIE and not.
fn globals_match_symtab(version: &str, pie: bool) {
    let Some(path) = try_build_fixture("goroutines", version, pie, "") else {
        return;
    };
    let bin = gospy::binary::Binary::from_path(&path).unwrap();
    let rec = gospy::binary::globals::recover(&bin);
    let mut problems: Vec<String> = rec.missing.iter().map(|m| format!("missing {m}")).collect();
    let minor = bin.go_minor;
    let mut want = vec![
        "runtime.allgs",
        "runtime.allglen",
        "runtime.allgptr",
        "runtime.allm",
        "runtime.allp",
        "runtime.gomaxprocs",
        "runtime.sched",
        "runtime.runtimeInitTime",
        "runtime.waitReasonStrings",
        "runtime.gStatusStrings",
        "runtime.buildVersion",
        "runtime.mheap_",
        "runtime.memstats",
        "runtime.gcController",
    ];
    want.push(if minor >= 25 {
        "runtime.numCPUStartup"
    } else {
        "runtime.ncpu"
    });
    want.push(if minor >= 21 {
        "runtime.fingStatus"
    } else {
        "runtime.fingRunning"
    });
    for name in &want {
        let sym = bin.elf.symbol(name).map(|s| s.0);
        let got = rec.addrs.get(*name).copied();
        if got != sym {
            problems.push(format!(
                "{name}: recovered {:?}, symbol table {:?}",
                got.map(|a| format!("{a:#x}")),
                sym.map(|a| format!("{a:#x}"))
            ));
        }
    }
    for name in rec.addrs.keys() {
        if !want.contains(&name.as_str()) {
            problems.push(format!("unexpected recovered global {name}"));
        }
    }
    assert!(
        problems.is_empty(),
        "go {version} pie={pie}: {}",
        problems.join("\n")
    );
}

macro_rules! globals_tests {
    ($($name:ident: $v:literal;)*) => {$(
        #[test]
        fn $name() {
            globals_match_symtab($v, false);
            globals_match_symtab($v, true);
        }
    )*};
}

globals_tests! {
    globals_from_code_go1_19: "1.19";
    globals_from_code_go1_21: "1.21";
    globals_from_code_go1_22: "1.22";
    globals_from_code_go1_23: "1.23";
    globals_from_code_go1_24: "1.24";
    globals_from_code_go1_25: "1.25";
    globals_from_code_go1_26: "1.26";
    globals_from_code_go1_27: "1.27";
}

stripped_tests! {
    no_symbols_go1_19: "1.19", pie = false, "-s -w";
    no_symbols_go1_21: "1.21", pie = false, "-s -w";
    no_symbols_go1_22: "1.22", pie = false, "-s -w";
    no_symbols_go1_23: "1.23", pie = false, "-s -w";
    no_symbols_go1_24: "1.24", pie = false, "-s -w";
    no_symbols_go1_25: "1.25", pie = false, "-s -w";
    no_symbols_go1_26: "1.26", pie = false, "-s -w";
    no_symbols_go1_27: "1.27", pie = false, "-s -w";
    no_symbols_go1_19_pie: "1.19", pie = true, "-s -w";
    no_symbols_go1_27_pie: "1.27", pie = true, "-s -w";
}
