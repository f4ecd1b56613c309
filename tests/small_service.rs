//! A pause that scales with what the target uses (issue 16), against
//! tests/fixtures/smallsvc: a 32 MiB zero-initialised global array written
//! at a few indices, about twenty parked goroutines and a few ordinary
//! globals. The fixture writes what it holds (expected.json).
//!
//! - `capture` reads at most 4 MiB (only the data/BSS pages the program
//!   touched), and the snapshot still holds every byte of data/BSS: `var`
//!   of the whole array is right element by element (touched and untouched
//!   ones), and so are the ordinary globals (initialised data on pages
//!   never written, a counter set at run time, a pointer, a zero struct).
//! - After a `--full` capture has read every page (which maps the kernel's
//!   zero page over the untouched BSS), a capture still reads at most 4 MiB
//!   when page frame numbers are visible (CAP_SYS_ADMIN), as root here.
//! - Live `var`, `summary`, `dump` and `top` give the same answers.
//!
//! - What globals point to is walked before the pause and kept when the
//!   pause finds every byte it saw unchanged; with a global's object
//!   changing all the time (SMALLSVC_BUSY=1) the pause walks again, and
//!   `var` is still right.
//!
//! The pause itself is timed by `scripts/bench.py --only small-service`,
//! not here.

mod common;

use common::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Bytes a capture of the fixture may read.
const MAX_READ: u64 = 4 << 20;

#[derive(Deserialize)]
struct Expected {
    arena_len: usize,
    touched: BTreeMap<String, u64>,
    untouched: Vec<usize>,
    globals: BTreeMap<String, Value>,
    goroutines: u64,
}

#[derive(Deserialize)]
struct ArenaVar {
    value: Vec<u64>,
}

/// Whether this process sees page frame numbers in its pagemap (the zero
/// page can then be told from a page of data).
fn pfns_visible() -> bool {
    use std::os::unix::fs::FileExt;
    // SAFETY: an anonymous mapping of our own, read once, unmapped below.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let _ = std::ptr::read_volatile(p as *const u8);
        let mut e = [0u8; 8];
        let ok = std::fs::File::open("/proc/self/pagemap")
            .and_then(|f| f.read_exact_at(&mut e, p as u64 / 4096 * 8))
            .is_ok();
        libc::munmap(p, 4096);
        ok && u64::from_le_bytes(e) & ((1 << 55) - 1) != 0
    }
}

fn capture_json(pid: u32, out: &std::path::Path, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut args = vec![
        "capture",
        "--pid",
        &pid,
        "-o",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&gospy_ok(&args)).unwrap()
}

/// `var NAME --json` (from a snapshot or live, per `src`).
fn var_json(src: &[&str], name: &str) -> String {
    let mut args: Vec<&str> = src.to_vec();
    args.extend_from_slice(&["var", name, "--json"]);
    if src[0] == "--pid" {
        // Live: `gospy var NAME --pid N`.
        args = vec!["var", name, "--json", src[0], src[1]];
    }
    gospy_ok(&args)
}

fn check_vars(what: &str, src: &[&str], exp: &Expected) {
    let arena: ArenaVar = serde_json::from_str(&var_json(src, "main.Arena")).unwrap();
    assert_eq!(
        arena.value.len(),
        exp.arena_len,
        "{what}: main.Arena length"
    );
    let touched: BTreeMap<usize, u64> = exp
        .touched
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), *v))
        .collect();
    for (i, &v) in arena.value.iter().enumerate() {
        let want = touched.get(&i).copied().unwrap_or(0);
        assert_eq!(v, want, "{what}: main.Arena[{i}]");
    }
    for &i in &exp.untouched {
        assert_eq!(arena.value[i], 0, "{what}: untouched main.Arena[{i}]");
    }
    for (name, want) in &exp.globals {
        let got: Value = serde_json::from_str(&var_json(src, name)).unwrap();
        assert_eq!(&got["value"], want, "{what}: {name}: {got}");
    }
}

fn small_service(version: &str, pie: bool) {
    let Some(bin) = try_build_fixture("smallsvc", version, pie, "") else {
        return;
    };
    let what = format!("go {version}{}", if pie { " pie" } else { "" });
    let fx = Fixture::start(&bin);
    let exp: Expected = serde_json::from_str(
        &std::fs::read_to_string(fx.dir.path().join("expected.json")).unwrap(),
    )
    .unwrap();
    let work = tempfile::Builder::new()
        .prefix("gospy-smallsvc-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("s.gss");
    let c = capture_json(fx.pid, &snap, &[]);
    let read = c["bytes_read"].as_u64().unwrap();
    assert!(
        read <= MAX_READ,
        "{what}: capture read {read} bytes (at most {MAX_READ}): {c}"
    );
    let snap_s = snap.to_str().unwrap();
    check_vars(&format!("{what}: snapshot"), &["analyze", snap_s], &exp);

    // Live reports.
    let pid = fx.pid.to_string();
    check_vars(&format!("{what}: live"), &["--pid", &pid], &exp);
    let s: Value = serde_json::from_str(&gospy_ok(["summary", "--pid", &pid, "--json"])).unwrap();
    assert_eq!(
        s["goroutine_count"].as_u64(),
        Some(exp.goroutines),
        "{what}: live summary: {s}"
    );
    let dump = gospy_ok(["dump", "--pid", &pid]);
    assert_eq!(
        dump.matches("main.locker()").count(),
        4,
        "{what}: live dump:\n{dump}"
    );
    let top = gospy_ok(["top", "--pid", &pid, "--count", "1"]);
    assert!(top.contains("main.sleeper"), "{what}: live top:\n{top}");

    // Every page read once (zero page mapped over the untouched BSS): the
    // zero page is recognised when frame numbers are visible.
    let full = work.path().join("full.gss");
    capture_json(fx.pid, &full, &["--full"]);
    let c = capture_json(fx.pid, &snap, &[]);
    let again = c["bytes_read"].as_u64().unwrap();
    if pfns_visible() {
        assert!(
            again <= MAX_READ,
            "{what}: after --full, capture read {again} bytes (at most {MAX_READ}): {c}"
        );
    }
    check_vars(
        &format!("{what}: snapshot after --full"),
        &["analyze", snap_s],
        &exp,
    );
    report(&format!(
        "{what}: smallsvc capture read {read} bytes ({again} after --full), vars right"
    ));
}

/// The phase names of a `capture --json`.
fn phases(c: &Value) -> Vec<String> {
    c["pause_phases_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn small_service_globals_walk_before_the_pause() {
    let Some(bin) = try_build_fixture("smallsvc", "1.27", false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-smallsvc-walk-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("s.gss");
    let config = |snap: &std::path::Path| -> Value {
        let v: Value = serde_json::from_str(&gospy_ok([
            "analyze",
            snap.to_str().unwrap(),
            "var",
            "main.Config",
            "--json",
        ]))
        .unwrap();
        v["value"].clone()
    };
    let want = serde_json::json!({"Port": 8080, "Tags": ["small", "svc"]});
    // Quiet: the walk done before the pause is kept.
    let fx = Fixture::start(&bin);
    let c = capture_json(fx.pid, &snap, &[]);
    assert!(
        phases(&c)
            .iter()
            .any(|p| p.contains("walked before the pause")),
        "quiet target: pre-walk not kept: {c}"
    );
    assert_eq!(config(&snap), want);
    drop(fx);
    // Busy: main.Busy.N changes all the time; a capture whose pause finds
    // it changed walks again (all of them, nearly always).
    let fx = Fixture::start_with_env(&bin, &[("SMALLSVC_BUSY", "1")]);
    let mut walked = 0;
    for _ in 0..5 {
        let c = capture_json(fx.pid, &snap, &[]);
        if phases(&c).iter().any(|p| p == "globals") {
            walked += 1;
        }
        assert_eq!(config(&snap), want);
        let busy: Value = serde_json::from_str(&gospy_ok([
            "analyze",
            snap.to_str().unwrap(),
            "var",
            "main.Busy",
            "--json",
        ]))
        .unwrap();
        assert_eq!(busy["value"]["Name"], "busy", "{busy}");
    }
    assert!(walked > 0, "busy target: the pause never walked again");
    report(&format!(
        "smallsvc: pre-walk kept on a quiet target; busy target walked again in {walked}/5 pauses"
    ));
}

macro_rules! small_service_tests {
    ($($name:ident: $version:expr, $pie:expr;)*) => {$(
        #[test]
        fn $name() {
            small_service($version, $pie);
        }
    )*};
}

small_service_tests! {
    small_service_go1_19: "1.19", false;
    small_service_go1_21: "1.21", false;
    small_service_go1_22: "1.22", false;
    small_service_go1_23: "1.23", false;
    small_service_go1_24: "1.24", false;
    small_service_go1_25: "1.25", false;
    small_service_go1_26: "1.26", false;
    small_service_go1_27: "1.27", false;
    small_service_go1_27_pie: "1.27", true;
}
