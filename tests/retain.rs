//! Acceptance test for `gospy analyze FILE retain` and `path` (issue 14,
//! second milestone) on the owners fixture (tests/fixtures/owners), which
//! computes its own retained bytes per owner (HeapAlloc after a GC right
//! after building the owner minus HeapAlloc after a GC right before) and
//! writes the address of its list's head. A heap-complete capture must give:
//! - `retain --json`: each owner named (`main.list`, `main.cache`,
//!   `main.items`; the parked goroutine as `goroutine N: main.holder`) with
//!   retained bytes within 1% of the fixture's computation, and
//!   `conservative: false` (every heap object by its exact pointer mask: Go
//!   1.19–1.21's heap arena bitmaps, 1.22+'s heap bits and allocation
//!   headers), on every version for plain, PIE and `-s -w` builds. Without a symbol
//!   table (`-s -w`) globals cannot be named by the binary: their roots are
//!   `data+0xOFF`/`bss+0xOFF`, and the test checks that some root retains
//!   each owner's bytes within 1% (the goroutine is still named: pclntab);
//! - `path ADDR` to the list's head starts at `main.list` (a bss root
//!   without symbols);
//! - `retain -o FILE`: a pprof profile `go tool pprof -top` opens;
//! - a gcore core of the fixture gives the same retained bytes (every
//!   version);
//! - mutated heap-complete snapshots (span bodies, heap bits and arena
//!   bitmaps, headers, stacks, data) never panic or hang (1.19, 1.21, 1.27).

mod common;

use common::owners::*;
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

fn capture_owners(version: &str, pie: bool, ldflags: &str, core: bool) -> Option<HeapCapture> {
    heap_capture("owners", version, pie, ldflags, core)
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
    // Every object scanned with its exact pointer mask (no word taken as a
    // pointer for merely looking like one).
    assert_eq!(
        got["conservative"], false,
        "{what}: conservative scanning; warnings: {}",
        got["warnings"]
    );
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
            // The shared build cache: pprof is compiled once per toolchain,
            // not once per test.
            .env("GOCACHE", cache_dir().join("go-build"))
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
    retain_go1_19_pie: "1.19", pie = true, "";
    retain_go1_21_pie: "1.21", pie = true, "";
    retain_go1_22_pie: "1.22", pie = true, "";
    retain_go1_23_pie: "1.23", pie = true, "";
    retain_go1_24_pie: "1.24", pie = true, "";
    retain_go1_25_pie: "1.25", pie = true, "";
    retain_go1_26_pie: "1.26", pie = true, "";
    retain_go1_27_pie: "1.27", pie = true, "";
    retain_go1_19_stripped: "1.19", pie = false, "-s -w";
    retain_go1_21_stripped: "1.21", pie = false, "-s -w";
    retain_go1_22_stripped: "1.22", pie = false, "-s -w";
    retain_go1_23_stripped: "1.23", pie = false, "-s -w";
    retain_go1_24_stripped: "1.24", pie = false, "-s -w";
    retain_go1_25_stripped: "1.25", pie = false, "-s -w";
    retain_go1_26_stripped: "1.26", pie = false, "-s -w";
    retain_go1_27_stripped: "1.27", pie = false, "-s -w";
    retain_go1_27_pie_stripped: "1.27", pie = true, "-s -w";
}

/// A gcore core of the quiet fixture gives the same retention as a `--heap`
/// capture of it.
fn core_same(version: &str) {
    if !have_gcore() {
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

macro_rules! core_tests {
    ($($name:ident: $version:literal;)*) => {$(
        #[test]
        fn $name() {
            core_same($version);
        }
    )*};
}

core_tests! {
    core_go1_19: "1.19";
    core_go1_21: "1.21";
    core_go1_22: "1.22";
    core_go1_23: "1.23";
    core_go1_24: "1.24";
    core_go1_25: "1.25";
    core_go1_26: "1.26";
    core_go1_27: "1.27";
}

/// xorshift64*: deterministic mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Heap-complete snapshots whose heap and stack memory (span bodies, heap
/// bits, allocation headers, type pointers, stack slots, data/bss) is
/// scribbled over: `retain` and `path` never panic, never take over 10 s,
/// and say what they skipped in warnings.
fn hostile_retain(version: &str) {
    use gospy::analyze::Session;
    use gospy::binary::Binary;
    use gospy::model::RegionKind;
    use gospy::snapshot::SnapshotFile;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let Some(bin_path) = try_build_fixture("owners", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-retain-hostile-")
        .tempdir()
        .unwrap();
    let snap_path = work.path().join("heap.gss");
    let mut fx = Fixture::start(&bin_path);
    capture(fx.pid, &snap_path, &["--heap"]);
    fx.kill();
    let bin = Arc::new(Binary::from_bytes(Arc::from(std::fs::read(&bin_path).unwrap())).unwrap());
    let base = SnapshotFile::from_bytes(std::fs::read(&snap_path).unwrap())
        .unwrap()
        .capture()
        .unwrap();
    let targets: Vec<usize> = base
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(
                r.kind,
                RegionKind::Heap | RegionKind::Stack | RegionKind::Data
            ) && r.data.len() >= 8
        })
        .map(|(i, _)| i)
        .collect();
    assert!(!targets.is_empty(), "go {version}: no regions to mutate");
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(0x5e7a_1e55_u64 ^ version.len() as u64);
    let (mut failures, mut errors, mut warned) = (Vec::new(), 0, 0);
    let rounds = 60;
    for round in 0..rounds {
        let mut cap = base.clone();
        cap.binary = None;
        for _ in 0..1 + rng.below(60) {
            let r = &mut cap.regions[targets[rng.below(targets.len() as u64) as usize]];
            let at = (rng.below(r.data.len() as u64 / 8) * 8) as usize;
            let v = match rng.below(5) {
                0 => 0,
                1 => u64::MAX,
                2 => rng.next(),
                3 => r.addr + rng.below(r.data.len() as u64),
                _ => {
                    u64::from_le_bytes(r.data[at..at + 8].try_into().unwrap())
                        ^ (1 << rng.below(64))
                }
            };
            r.data[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        let start = Instant::now();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let s = Session::open(gospy::sources::from_capture(cap, bin.clone()), None).unwrap();
            match gospy::report::retain::build(&s, Some(10)) {
                Ok((r, ret)) => {
                    let _ = gospy::report::retain::to_text(&r);
                    let _ = gospy::report::retain::profile_gz(&r);
                    if let Some(o) = ret.census.objects.objects.get(7) {
                        let _ = ret.path_to_addr(o.addr);
                    }
                    Ok(r.warnings.len())
                }
                Err(e) => Err(e.to_string()),
            }
        }));
        let took = start.elapsed();
        match res {
            Ok(Ok(w)) => warned += usize::from(w > 0),
            Ok(Err(_)) => errors += 1,
            Err(_) => failures.push(format!("round {round}: panicked")),
        }
        if took > Duration::from_secs(10) {
            failures.push(format!("round {round}: took {took:?}"));
        }
    }
    std::panic::set_hook(hook);
    report(&format!(
        "go {version}: {rounds} mutated heap snapshots: retain {errors} errors, {warned} with warnings, {} failures",
        failures.len()
    ));
    assert!(failures.is_empty(), "go {version}: {failures:?}");
}

#[test]
fn hostile_retain_go1_19() {
    hostile_retain("1.19");
}

#[test]
fn hostile_retain_go1_21() {
    hostile_retain("1.21");
}

#[test]
fn hostile_retain_go1_27() {
    hostile_retain("1.27");
}

/// Removes `[at, at + len)` from the regions (splitting those it cuts).
fn cut(regions: &mut Vec<gospy::model::Region>, at: u64, len: u64) {
    let end = at + len;
    let mut out = Vec::with_capacity(regions.len() + 1);
    for r in regions.drain(..) {
        let r_end = r.addr + r.data.len() as u64;
        if r_end <= at || r.addr >= end {
            out.push(r);
            continue;
        }
        if r.addr < at {
            let mut head = r.clone();
            head.data.truncate((at - r.addr) as usize);
            out.push(head);
        }
        if r_end > end {
            let mut tail = r.clone();
            tail.data = r.data[(end - r.addr) as usize..].to_vec();
            tail.addr = end;
            out.push(tail);
        }
    }
    *regions = out;
}

/// A Go 1.19/1.21 heap snapshot taken before `capture --heap` stored the
/// heap arena bitmaps (simulated: the bitmap bytes cut out of a capture)
/// still works: the objects are scanned conservatively, the report says
/// so, and the owners are still named.
fn without_bitmaps(version: &str) {
    use gospy::analyze::Session;
    use gospy::binary::Binary;
    use gospy::goruntime::heap::HeapTarget;
    use gospy::snapshot::SnapshotFile;
    use std::sync::Arc;

    let Some(bin_path) = try_build_fixture("owners", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-retain-old-")
        .tempdir()
        .unwrap();
    let snap_path = work.path().join("heap.gss");
    let mut fx = Fixture::start(&bin_path);
    capture(fx.pid, &snap_path, &["--heap"]);
    fx.kill();
    let bin = Arc::new(Binary::from_bytes(Arc::from(std::fs::read(&bin_path).unwrap())).unwrap());
    let mut cap = SnapshotFile::from_bytes(std::fs::read(&snap_path).unwrap())
        .unwrap()
        .capture()
        .unwrap();
    let open = |cap: gospy::model::Capture| {
        Session::open(gospy::sources::from_capture(cap, bin.clone()), None).unwrap()
    };
    let s = open(cap.clone());
    let (exact, _) = gospy::report::retain::build(&s, Some(10)).unwrap();
    assert!(!exact.conservative, "go {version}: {:?}", exact.warnings);
    let ht = HeapTarget::new(&s.target).unwrap();
    let ranges = ht.heap_bitmap_ranges(&s.target, &s.mem, false);
    assert!(!ranges.is_empty(), "go {version}: no bitmap ranges");
    let bytes: u64 = ranges.iter().map(|r| r.1).sum();
    for (a, l) in ranges {
        cut(&mut cap.regions, a, l);
    }
    let (r, _) = gospy::report::retain::build(&open(cap), Some(10)).unwrap();
    assert!(r.conservative, "go {version}: bitmaps cut, still exact");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("scanned conservatively")
                && w.contains("bitmaps not in the snapshot")),
        "go {version}: {:?}",
        r.warnings
    );
    for owner in ["main.list", "main.cache", "main.items"] {
        assert!(
            r.roots
                .iter()
                .any(|x| x.root == owner && x.retained_bytes > 0),
            "go {version}: {owner} not named without bitmaps: {:?}",
            r.roots.iter().map(|x| &x.root).collect::<Vec<_>>()
        );
    }
    report(&format!(
        "go {version}: without its {bytes} bitmap bytes the snapshot is scanned conservatively ({} roots, warned)",
        r.roots.len()
    ));
}

#[test]
fn without_bitmaps_go1_19() {
    without_bitmaps("1.19");
}

#[test]
fn without_bitmaps_go1_21() {
    without_bitmaps("1.21");
}

/// `diff a.gss b.gss --objects` on the grow fixture, captured with --heap
/// before and after it starts 100 more goroutines: at least 100 more
/// runtime.g objects; a snapshot without the heap is refused in one line.
fn diff_objects(version: &str) {
    use std::time::{Duration, Instant};
    let Some(bin) = try_build_fixture("grow", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-diff-objects-")
        .tempdir()
        .unwrap();
    let (a, b, plain) = (
        work.path().join("a.gss"),
        work.path().join("b.gss"),
        work.path().join("plain.gss"),
    );
    let mut fx = Fixture::start(&bin);
    capture(fx.pid, &a, &["--heap"]);
    capture(fx.pid, &plain, &[]);
    // SAFETY: plain kill(2) on our own child, which is alive (not reaped).
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
    let ready2 = fx.dir.path().join("ready2");
    let t0 = Instant::now();
    while !ready2.exists() {
        assert!(fx.is_running(), "grow exited: {}", fx.stderr());
        assert!(t0.elapsed() < Duration::from_secs(60), "no ready2");
        std::thread::sleep(Duration::from_millis(20));
    }
    capture(fx.pid, &b, &["--heap"]);
    fx.kill();
    let d = json(&[
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--objects".as_ref(),
        "--json".as_ref(),
    ]);
    let g = d["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "runtime.g")
        .unwrap_or_else(|| panic!("go {version}: no runtime.g growth: {d}"));
    let grown = g["count_growth"].as_i64().unwrap();
    assert!(grown >= 100, "go {version}: runtime.g grew by {grown}: {d}");
    report(&format!(
        "go {version}: diff --objects: runtime.g +{grown}, bytes {:+}",
        d["bytes_growth"]
    ));
    let out = gospy([
        "diff".as_ref(),
        plain.as_os_str(),
        b.as_os_str(),
        "--objects".as_ref(),
    ] as [&OsStr; 4]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("lacks the heap"),
        "go {version}: {err}"
    );
}

#[test]
fn diff_objects_go1_22() {
    diff_objects("1.22");
}

#[test]
fn diff_objects_go1_27() {
    diff_objects("1.27");
}
