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

use common::dumpcmp::{differences, normalize_goroutines};
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
        // The Heap line: present on both sides with the same fields (values
        // differ between two processes; tests/heap_vs_memstats.rs checks the
        // stripped builds' values against ReadMemStats).
        let keys = |s: &Value| -> Option<Vec<String>> {
            s["heap"].as_object().map(|o| o.keys().cloned().collect())
        };
        assert!(
            keys(&s0).is_some(),
            "{what}: unstripped summary has no heap"
        );
        assert_eq!(keys(&s0), keys(&s1), "{what}: summary heap fields differ");
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
    let rec = gospy::goruntime::version::globals::recover(&bin);
    let mut problems: Vec<String> = rec.missing.iter().map(|m| format!("missing {m}")).collect();
    let minor = bin.go.minor();
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
        "runtime.emptymspan",
        "runtime.mbuckets",
        "runtime.MemProfileRate",
        "runtime.mProfCycle",
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
    // The block and mutex profiles' (issue 13); ticks only where the code
    // reading it is linked (tests/block_profile.rs checks it where it is).
    want.extend([
        "runtime.bbuckets",
        "runtime.xbuckets",
        "runtime.mutexprofilerate",
    ]);
    if rec.addrs.contains_key("runtime.ticks") {
        want.push("runtime.ticks");
    }
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
