//! Acceptance test for `gospy analyze FILE objects` (issue 14, first
//! milestone): the owners fixture (tests/fixtures/owners) builds a heap with
//! known owners, collects it, goes quiet and writes its expectations
//! (counts per type, runtime.MemStats.HeapAlloc after its last GC). A
//! heap-complete capture (`capture --heap`) must give:
//! - a total of live bytes equal to HeapAlloc within 1% (objects within 1%
//!   of HeapObjects);
//! - with DWARF, the exact counts of the typed owners: main.Node (global
//!   linked list), main.Item and its []*main.Item array (global slice of
//!   pointers to structs holding []byte), and on Go 1.22+ main.Payload and
//!   []*main.Payload (held only by a parked goroutine's local, reached from
//!   the array's allocation header: gospy does not decode stack frames'
//!   locals yet); every []uint8 value at least;
//! - without DWARF (`-s -w`), on Go 1.22+, the header-typed arrays by
//!   name ([]*main.Item, []*main.Payload) and the rest by size class (the
//!   nodes as "unknown, 32 B, 1 pointer" from their exact pointer mask:
//!   the span's heap bits on Go 1.22+, the heap arena bitmap on 1.19–1.21);
//! - a snapshot without --heap: one line saying it lacks the heap, exit
//!   non-zero.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn objects_json(snap: &Path, extra: &[&str]) -> Value {
    let mut a: Vec<&std::ffi::OsStr> =
        vec!["analyze".as_ref(), snap.as_os_str(), "objects".as_ref()];
    a.push("--json".as_ref());
    a.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = gospy_ok(&a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("objects --json: {e}\n{out}"))
}

/// `capture --json` with extra arguments: its report.
fn capture_json(pid: u32, out: &Path, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut a: Vec<&std::ffi::OsStr> = vec!["capture".as_ref(), "--pid".as_ref(), pid.as_ref()];
    a.extend(["-o".as_ref(), out.as_os_str(), "--json".as_ref()]);
    a.extend(extra.iter().map(std::ffi::OsStr::new));
    let text = gospy_ok(&a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("capture --json: {e}\n{text}"))
}

fn counts(v: &Value) -> HashMap<String, (u64, u64)> {
    v["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_string(),
                (t["count"].as_u64().unwrap(), t["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

fn owners(version: &str, pie: bool, ldflags: &str) {
    let Some(bin) = try_build_fixture("owners", version, pie, ldflags) else {
        return;
    };
    let what = format!("go {version} pie={pie} ldflags={ldflags:?}");
    let work = tempfile::Builder::new()
        .prefix("gospy-objects-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("heap.gss");
    let plain = work.path().join("plain.gss");
    let mut fx = Fixture::start(&bin);
    let expect: Value = serde_json::from_slice(
        &std::fs::read(fx.dir.path().join("expect.json")).expect("expect.json"),
    )
    .expect("expect.json is JSON");
    let cap_json = capture_json(fx.pid, &snap, &["--heap"]);
    capture(fx.pid, &plain, &[]);
    fx.kill();
    let phase = |name: &str| {
        cap_json["pause_phases_ns"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p[0] == name))
            .and_then(|p| p[1].as_u64())
    };
    report(&format!(
        "go {version} pie={pie} ldflags={ldflags:?}: --heap pause {:.1} ms (heap spans round {:.1} ms), {} bytes read",
        cap_json["pause_ns"].as_u64().unwrap_or(0) as f64 / 1e6,
        phase("heap spans").expect("a heap spans phase") as f64 / 1e6,
        cap_json["bytes_read"]
    ));
    let e = |k: &str| {
        expect[k]
            .as_u64()
            .unwrap_or_else(|| panic!("expect.json: {k}"))
    };
    let minor = go_minor(expect["go_version"].as_str().unwrap()).1;

    let got = objects_json(&snap, &[]);
    let c = counts(&got);
    let total = got["total_bytes"].as_u64().unwrap();
    let objects = got["total_objects"].as_u64().unwrap();
    let heap_alloc = e("HeapAlloc");
    let diff = (total as f64 - heap_alloc as f64).abs() / heap_alloc as f64;
    report(&format!(
        "{what}: objects {objects} (HeapObjects {}), bytes {total} (HeapAlloc {heap_alloc}, {:.3}%)",
        e("HeapObjects"),
        diff * 100.0
    ));
    assert!(
        diff <= 0.01,
        "{what}: total bytes {total} vs HeapAlloc {heap_alloc}"
    );
    let od = (objects as f64 - e("HeapObjects") as f64).abs() / e("HeapObjects") as f64;
    assert!(
        od <= 0.01,
        "{what}: objects {objects} vs HeapObjects {}",
        e("HeapObjects")
    );
    assert_eq!(
        got["warnings"].as_array().map(Vec::len),
        Some(0),
        "{what}: warnings {}",
        got["warnings"]
    );
    let count = |t: &str| c.get(t).map_or(0, |x| x.0);
    let dwarf = !ldflags.contains("-w");
    let headers = minor >= 22;
    let mut want: Vec<(&str, u64)> = Vec::new();
    if dwarf {
        want.push(("main.Node", e("nodes")));
        want.push(("main.Item", e("items")));
        want.push(("[]*main.Item", 1));
        if headers {
            want.push(("main.Payload", e("payloads")));
        }
        let mut bytes_values = e("entries") + e("items");
        if headers {
            bytes_values += e("payloads");
        }
        assert!(
            count("[]uint8") >= bytes_values,
            "{what}: []uint8 {} < {bytes_values}",
            count("[]uint8")
        );
    }
    if headers {
        want.push(("[]*main.Payload", 1));
        want.push(("[]*main.Item", 1));
    }
    if !dwarf {
        // The linked list's nodes (32 B, one pointer word), by size class
        // and their pointer mask: the span's heap bits from Go 1.22, the
        // heap arena bitmap on Go 1.19–1.21.
        let node = "unknown, 32 B, 1 pointer";
        assert!(
            count(node) >= e("nodes"),
            "{what}: {node}: {} < {}; types: {c:?}",
            count(node),
            e("nodes")
        );
    }
    for (t, n) in want {
        assert_eq!(count(t), n, "{what}: count of {t}; types: {c:?}");
    }
    // The same objects by size class.
    let by_class = objects_json(&snap, &["--by", "size-class"]);
    assert_eq!(by_class["total_bytes"].as_u64(), Some(total), "{what}");
    assert_eq!(by_class["total_objects"].as_u64(), Some(objects), "{what}");
    // Without the heap: one clear line, non-zero exit.
    let out =
        gospy(["analyze".as_ref(), plain.as_os_str(), "objects".as_ref()] as [&std::ffi::OsStr; 3]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: objects on a snapshot without the heap succeeded"
    );
    assert!(
        err.contains("lacks the heap") && err.contains("--heap"),
        "{what}: {err}"
    );
}

macro_rules! objects_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            owners($version, $pie, $flags);
        }
    )*};
}

objects_tests! {
    objects_go1_19: "1.19", pie = false, "";
    objects_go1_21: "1.21", pie = false, "";
    objects_go1_22: "1.22", pie = false, "";
    objects_go1_23: "1.23", pie = false, "";
    objects_go1_24: "1.24", pie = false, "";
    objects_go1_25: "1.25", pie = false, "";
    objects_go1_26: "1.26", pie = false, "";
    objects_go1_27: "1.27", pie = false, "";
    objects_go1_19_pie: "1.19", pie = true, "";
    objects_go1_21_pie: "1.21", pie = true, "";
    objects_go1_22_pie: "1.22", pie = true, "";
    objects_go1_23_pie: "1.23", pie = true, "";
    objects_go1_24_pie: "1.24", pie = true, "";
    objects_go1_25_pie: "1.25", pie = true, "";
    objects_go1_26_pie: "1.26", pie = true, "";
    objects_go1_27_pie: "1.27", pie = true, "";
    objects_go1_19_stripped: "1.19", pie = false, "-s -w";
    objects_go1_21_stripped: "1.21", pie = false, "-s -w";
    objects_go1_22_stripped: "1.22", pie = false, "-s -w";
    objects_go1_23_stripped: "1.23", pie = false, "-s -w";
    objects_go1_24_stripped: "1.24", pie = false, "-s -w";
    objects_go1_25_stripped: "1.25", pie = false, "-s -w";
    objects_go1_26_stripped: "1.26", pie = false, "-s -w";
    objects_go1_27_stripped: "1.27", pie = false, "-s -w";
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

/// Heap-complete snapshots whose heap memory (span structs, span bodies and
/// allocation headers, allocation bits, the allspans array) is scribbled
/// over: `objects` never panics, never takes over 10 s, and counts what it
/// skipped in its warnings.
fn hostile_heap(version: &str) {
    use gospy::analyze::objects::GroupBy;
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
        .prefix("gospy-objects-hostile-")
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
    let heap_regions: Vec<usize> = base
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RegionKind::Heap && r.data.len() >= 8)
        .map(|(i, _)| i)
        .collect();
    assert!(!heap_regions.is_empty(), "go {version}: no heap regions");
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(0x00b1_ec75_u64 ^ version.len() as u64);
    let (mut failures, mut errors, mut warned) = (Vec::new(), 0, 0);
    let rounds = 80;
    for round in 0..rounds {
        let mut cap = base.clone();
        cap.binary = None;
        for _ in 0..1 + rng.below(40) {
            let r = &mut cap.regions[heap_regions[rng.below(heap_regions.len() as u64) as usize]];
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
            let a = gospy::report::objects::build(&s, GroupBy::Type, None);
            let b = gospy::report::objects::build(&s, GroupBy::SizeClass, Some(5));
            match (a, b) {
                (Ok(a), Ok(_)) => {
                    let _ = gospy::report::objects::to_text(&a);
                    Ok(a.warnings.len())
                }
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
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
        "go {version}: {rounds} mutated heap snapshots: {errors} errors, {warned} with warnings, {} failures",
        failures.len()
    ));
    assert!(failures.is_empty(), "go {version}: {failures:?}");
}

#[test]
fn hostile_heap_go1_19() {
    hostile_heap("1.19");
}

#[test]
fn hostile_heap_go1_21() {
    hostile_heap("1.21");
}

#[test]
fn hostile_heap_go1_27() {
    hostile_heap("1.27");
}

/// A gcore core of the quiet fixture gives the same objects as a `--heap`
/// capture of it (cores are heap-complete: every mapping is in them).
fn core_same_objects(version: &str) {
    if !have_gcore() {
        return;
    }
    let Some(c) = heap_capture("owners", version, false, "", true) else {
        return;
    };
    let (snap, core) = (c.snap.clone(), c.core.clone().expect("core"));
    let a = objects_json(&snap, &[]);
    let b = objects_json(&core, &[]);
    let _ = std::fs::remove_file(&core);
    for k in ["total_objects", "total_bytes", "typed_objects"] {
        assert_eq!(a[k], b[k], "go {version}: {k}: --heap capture vs core");
    }
    assert_eq!(
        counts(&a),
        counts(&b),
        "go {version}: types: --heap capture vs core"
    );
    report(&format!(
        "go {version}: core and --heap capture: {} objects, {} bytes, same types",
        b["total_objects"], b["total_bytes"]
    ));
}

macro_rules! core_tests {
    ($($name:ident: $version:literal;)*) => {$(
        #[test]
        fn $name() {
            core_same_objects($version);
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
