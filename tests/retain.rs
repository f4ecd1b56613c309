//! Acceptance test for `gospy analyze FILE retain` and `path` (issue 14,
//! second milestone) on the owners fixture (tests/fixtures/owners), which
//! computes its own retained bytes per owner (HeapAlloc after a GC right
//! after building the owner minus HeapAlloc after a GC right before) and
//! writes the address of its list's head. A heap-complete capture must give:
//! - `retain --json`: each owner named (`main.list`, `main.cache`,
//!   `main.items`; the parked goroutine as `goroutine N: main.holder`) with
//!   retained bytes within 1% of the fixture's computation. Without a symbol
//!   table (`-s -w`) globals cannot be named by the binary: their roots are
//!   `data+0xOFF`/`bss+0xOFF`, and the test checks that some root retains
//!   each owner's bytes within 1% (the goroutine is still named: pclntab);
//! - `path ADDR` to the list's head starts at `main.list` (a bss root
//!   without symbols);
//! - `retain -o FILE`: a pprof profile `go tool pprof -top` opens;
//! - a gcore core of the fixture gives the same retained bytes.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;

fn json(args: &[&OsStr]) -> Value {
    let out = gospy_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn retain_json(snap: &Path) -> Value {
    json(&[
        "analyze".as_ref(),
        snap.as_os_str(),
        "retain".as_ref(),
        "--json".as_ref(),
    ])
}

/// Retained bytes per root name.
fn roots(v: &Value) -> Vec<(String, u64)> {
    v["roots"]
        .as_array()
        .expect("roots")
        .iter()
        .map(|r| {
            (
                r["root"].as_str().unwrap().to_string(),
                r["retained_bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn close(a: u64, b: u64) -> bool {
    (a as f64 - b as f64).abs() <= 0.01 * b as f64
}

/// Checks every owner against the fixture's expectations; returns
/// (owner, root found, bytes) for the report.
fn check_owners(what: &str, got: &Value, expect: &Value, named: bool) -> Vec<String> {
    let rs = roots(got);
    let mut lines = Vec::new();
    for (owner, want) in expect["retained"].as_object().expect("retained") {
        let want = want.as_u64().unwrap();
        let hit = if owner == "main.holder" {
            rs.iter()
                .find(|(n, _)| n.starts_with("goroutine ") && n.ends_with(": main.holder"))
        } else if named {
            rs.iter().find(|(n, _)| n == owner)
        } else {
            rs.iter()
                .find(|(n, b)| close(*b, want) && (n.starts_with("data+") || n.starts_with("bss+")))
        };
        let Some((name, bytes)) = hit else {
            panic!("{what}: no root for {owner} (want {want} bytes); roots: {rs:?}");
        };
        assert!(
            close(*bytes, want),
            "{what}: {name} retains {bytes} bytes, the fixture computed {want}"
        );
        lines.push(format!("{name} {bytes} (fixture {want})"));
    }
    lines
}

struct Captured {
    _work: tempfile::TempDir,
    snap: std::path::PathBuf,
    expect: Value,
    core: Option<std::path::PathBuf>,
}

fn capture_owners(version: &str, pie: bool, ldflags: &str, core: bool) -> Option<Captured> {
    let bin = try_build_fixture("owners", version, pie, ldflags)?;
    let work = tempfile::Builder::new()
        .prefix("gospy-retain-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("heap.gss");
    let mut fx = Fixture::start(&bin);
    let expect: Value = serde_json::from_slice(
        &std::fs::read(fx.dir.path().join("expect.json")).expect("expect.json"),
    )
    .expect("expect.json is JSON");
    capture(fx.pid, &snap, &["--heap"]);
    let core = core.then(|| {
        let out = std::process::Command::new("gcore")
            .arg("-o")
            .arg(work.path().join("core"))
            .arg(fx.pid.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running gcore");
        let core = work.path().join(format!("core.{}", fx.pid));
        assert!(
            core.is_file(),
            "gcore wrote no core: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        core
    });
    fx.kill();
    Some(Captured {
        _work: work,
        snap,
        expect,
        core,
    })
}

fn go_tool(version: &str) -> Option<std::path::PathBuf> {
    toolchain(version).or_else(|| toolchains().first().map(|t| t.1.clone()))
}

fn owners(version: &str, pie: bool, ldflags: &str) {
    let Some(c) = capture_owners(version, pie, ldflags, false) else {
        return;
    };
    let what = format!("go {version} pie={pie} ldflags={ldflags:?}");
    let named = !ldflags.contains("-s");
    let got = retain_json(&c.snap);
    let lines = check_owners(&what, &got, &c.expect, named);
    report(&format!(
        "{what}: {}; conservative={}",
        lines.join(", "),
        got["conservative"]
    ));
    // The path to the list's head starts at the global.
    let head = c.expect["list_head"].as_u64().expect("list_head");
    let p = json(&[
        "analyze".as_ref(),
        c.snap.as_os_str(),
        "path".as_ref(),
        format!("{head:#x}").as_ref(),
        "--json".as_ref(),
    ]);
    let first = p["objects"][0]["path"][0]["name"].as_str().unwrap_or("");
    if named {
        assert_eq!(first, "main.list", "{what}: path to the list head: {p}");
    } else {
        assert!(
            first.starts_with("bss+") || first.starts_with("data+"),
            "{what}: path to the list head: {p}"
        );
    }
    let text = gospy_ok([
        "analyze".as_ref(),
        c.snap.as_os_str(),
        "path".as_ref(),
        format!("{head:#x}").as_ref(),
    ] as [&OsStr; 4]);
    assert!(text.contains(first), "{what}: {text}");
    // The pprof retention profile opens in `go tool pprof -top`.
    let prof = c.snap.with_file_name("retain.pb.gz");
    gospy_ok([
        "analyze".as_ref(),
        c.snap.as_os_str(),
        "retain".as_ref(),
        "-o".as_ref(),
        prof.as_os_str(),
    ] as [&OsStr; 5]);
    if let Some(go) = go_tool(version) {
        let out = std::process::Command::new(go)
            .args(["tool", "pprof", "-top"])
            .arg(&prof)
            .env("HOME", c.snap.parent().unwrap())
            .output()
            .expect("go tool pprof");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what}: go tool pprof -top: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("main.holder") && (!named || text.contains("main.cache")),
            "{what}: pprof -top:\n{text}"
        );
    }
}

macro_rules! retain_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            owners($version, $pie, $flags);
        }
    )*};
}

retain_tests! {
    retain_go1_19: "1.19", pie = false, "";
    retain_go1_21: "1.21", pie = false, "";
    retain_go1_22: "1.22", pie = false, "";
    retain_go1_23: "1.23", pie = false, "";
    retain_go1_24: "1.24", pie = false, "";
    retain_go1_25: "1.25", pie = false, "";
    retain_go1_26: "1.26", pie = false, "";
    retain_go1_27: "1.27", pie = false, "";
    retain_go1_22_pie: "1.22", pie = true, "";
    retain_go1_27_pie: "1.27", pie = true, "";
    retain_go1_21_stripped: "1.21", pie = false, "-s -w";
    retain_go1_22_stripped: "1.22", pie = false, "-s -w";
    retain_go1_27_stripped: "1.27", pie = true, "-s -w";
}

/// A gcore core of the quiet fixture gives the same retention as a `--heap`
/// capture of it.
fn core_same(version: &str) {
    let gcore_ok = std::process::Command::new("gcore")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !gcore_ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "gcore (gdb) is not installed"
        );
        println!("SKIP: gcore (gdb) not installed");
        return;
    }
    let Some(c) = capture_owners(version, false, "", true) else {
        return;
    };
    let what = format!("go {version} core");
    let core = c.core.clone().unwrap();
    let a = retain_json(&c.snap);
    let b = retain_json(&core);
    let _ = std::fs::remove_file(&core);
    let la = check_owners(&what, &a, &c.expect, true);
    let lb = check_owners(&what, &b, &c.expect, true);
    assert_eq!(la, lb, "{what}: --heap capture vs core");
    report(&format!(
        "{what}: same owners as the --heap capture: {}",
        lb.join(", ")
    ));
}

#[test]
fn core_go1_21() {
    core_same("1.21");
}

#[test]
fn core_go1_27() {
    core_same("1.27");
}
