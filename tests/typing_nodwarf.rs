//! Issue 14, "Types" without DWARF: runtime type descriptors reached
//! through interfaces, maps and channels name heap objects on `-s -w`
//! builds.
//!
//! The ifaces fixture (tests/fixtures/ifaces) holds small pointerful
//! objects (no allocation header: the runtime's own records do not name
//! them) only through interface values (`[]any` of values, `[]Shape` of
//! pointers, a stack-only interface of a parked goroutine), a map reached
//! through an interface, and two channels; it writes their counts. The
//! same source is built twice, with DWARF and `-s -w`, and captured with
//! `--heap`. `objects --json` of the stripped build must name each type
//! with the fixture's count, and name it exactly as the DWARF build does,
//! with the DWARF build's count (the stack-only interface aside: the DWARF
//! path does not type frames' locals, so its objects are unknown there);
//! the map's buckets/groups and the channel buffers get the DWARF build's
//! names and counts too. The unknown groups of the stripped build lose at
//! least those objects (`typed_by_descriptors`).
//!
//! Go 1.19 and 1.21–1.27, non-PIE; PIE on 1.22 and 1.27.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

struct Run {
    expect: BTreeMap<String, u64>,
    counts: BTreeMap<String, u64>,
    json: Value,
}

fn run(version: &str, pie: bool, ldflags: &str) -> Option<Run> {
    let bin = try_build_fixture("ifaces", version, pie, ldflags)?;
    let work = tempfile::Builder::new()
        .prefix("gospy-typing-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("heap.gss");
    let mut fx = Fixture::start(&bin);
    let expect: Value = serde_json::from_slice(
        &std::fs::read(fx.dir.path().join("expect.json")).expect("expect.json"),
    )
    .expect("expect.json is JSON");
    capture(fx.pid, &snap, &["--heap"]);
    fx.kill();
    let out = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "objects".as_ref(),
        "--json".as_ref(),
    ]);
    let json: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("objects --json: {e}\n{out}"));
    let counts = json["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = expect["types"]
        .as_object()
        .expect("expect.json types")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    Some(Run {
        expect,
        counts,
        json,
    })
}

fn unknown(r: &Run) -> u64 {
    r.counts
        .iter()
        .filter(|(k, _)| k.starts_with("unknown"))
        .map(|(_, n)| n)
        .sum()
}

/// The DWARF build's groups that hold the fixture's map and channels.
fn containers(r: &Run) -> Vec<(String, u64)> {
    r.counts
        .iter()
        .filter(|(k, _)| {
            (k.contains("map.bucket[int]*main.Entry") || k.contains("map.group[int]*main.Entry"))
                || k.as_str() == "map.hdr[int]*main.Entry"
                || k.as_str() == "[]*main.Msg"
                || k.as_str() == "[]main.Job"
        })
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

fn check(version: &str, pie: bool) {
    let Some(stripped) = run(version, pie, "-s -w") else {
        return;
    };
    let plain = run(version, pie, "").expect("DWARF build");
    let what = format!("go {version} pie={pie}");
    let get = |r: &Run, t: &str| r.counts.get(t).copied().unwrap_or(0);
    report(&format!(
        "{what}: -s -w: {} objects, {} typed by descriptors, {} unknown; DWARF build: {} unknown",
        stripped.json["total_objects"],
        stripped.json["typed_by_descriptors"],
        unknown(&stripped),
        unknown(&plain)
    ));
    assert!(
        stripped.json["warnings"]
            .as_array()
            .is_some_and(|w| w.is_empty()),
        "{what}: warnings {}",
        stripped.json["warnings"]
    );
    let mut fixture_objects = 0;
    for (t, &n) in &stripped.expect {
        fixture_objects += n;
        assert_eq!(
            get(&stripped, t),
            n,
            "{what}: -s -w build: {t} (fixture count {n}); DWARF build {}; -s -w groups: {:?}",
            get(&plain, t),
            stripped.counts
        );
        if t != "main.Tri" {
            assert_eq!(get(&plain, t), n, "{what}: DWARF build: {t}");
        }
    }
    let boxes = containers(&plain);
    assert!(
        boxes.iter().any(|(k, _)| k.contains("main.Entry")),
        "{what}: DWARF build names no bucket/group of the map: {:?}",
        plain.counts
    );
    for (k, n) in &boxes {
        assert_eq!(get(&stripped, k), *n, "{what}: -s -w build: {k}");
    }
    let by_desc = stripped.json["typed_by_descriptors"].as_u64().unwrap();
    assert!(
        by_desc >= fixture_objects,
        "{what}: {by_desc} objects typed by descriptors, fixture holds {fixture_objects}"
    );
    let total = stripped.json["total_objects"].as_u64().unwrap();
    let typed = stripped.json["typed_objects"].as_u64().unwrap();
    assert_eq!(unknown(&stripped), total - typed, "{what}");
}

macro_rules! typing_tests {
    ($($name:ident: $version:expr, $pie:expr;)*) => {$(
        #[test]
        fn $name() {
            check($version, $pie);
        }
    )*};
}

typing_tests! {
    go1_19: "1.19", false;
    go1_21: "1.21", false;
    go1_22: "1.22", false;
    go1_22_pie: "1.22", true;
    go1_23: "1.23", false;
    go1_24: "1.24", false;
    go1_25: "1.25", false;
    go1_26: "1.26", false;
    go1_27: "1.27", false;
    go1_27_pie: "1.27", true;
}
