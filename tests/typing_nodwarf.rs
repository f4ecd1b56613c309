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
//! Go 1.19 and 1.21–1.27, non-PIE; PIE on 1.22 and 1.27; 1.24 and 1.25
//! with `GOEXPERIMENT=noswissmap` (old hmaps).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

struct Run {
    expect: BTreeMap<String, u64>,
    counts: BTreeMap<String, u64>,
    json: Value,
}

fn run(version: &str, pie: bool, ldflags: &str, env: &[(&str, &str)]) -> Option<Run> {
    let bin = try_build_fixture_env("ifaces", version, pie, ldflags, env)?;
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
    check_env(version, pie, &[]);
}

fn check_env(version: &str, pie: bool, env: &[(&str, &str)]) {
    let Some(stripped) = run(version, pie, "-s -w", env) else {
        return;
    };
    let plain = run(version, pie, "", env).expect("DWARF build");
    let what = format!("go {version} pie={pie} {env:?}");
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

// ---------------------------------------------------------------------------
// Hostile memory: the descriptor typing's decoders on scribbled heaps
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `objects` of a capture in-process: Err on a panic.
fn objects_in_process(
    cap: gospy::model::Capture,
    bin: std::sync::Arc<gospy::binary::Binary>,
) -> Result<(std::time::Duration, usize, usize), String> {
    let start = std::time::Instant::now();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = gospy::analyze::Session::open(gospy::sources::from_capture(cap, bin), None)
            .expect("session");
        match gospy::report::objects::build(&s, gospy::analyze::objects::GroupBy::Type, None) {
            Ok(r) => (r.types.len(), r.warnings.len()),
            Err(e) => (0, e.to_string().len()),
        }
    }));
    match res {
        Ok((n, w)) => Ok((start.elapsed(), n, w)),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())),
    }
}

/// A stripped heap-complete capture of the ifaces fixture whose memory is
/// scribbled with what the descriptor typing looks for: type descriptor
/// and itab-like words (real descriptors' addresses, addresses inside
/// them, self-pointers) before pointers to heap objects, channel headers
/// with absurd counts and element types, random words. `objects` must not
/// panic, and finish each case within 60 s (a hang guard).
fn hostile(version: &str) {
    let Some(bin_path) = try_build_fixture("ifaces", version, false, "-s -w") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-typing-hostile-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("heap.gss");
    let mut fx = Fixture::start(&bin_path);
    capture(fx.pid, &snap, &["--heap"]);
    fx.kill();
    let file = gospy::snapshot::SnapshotFile::from_bytes(std::fs::read(&snap).unwrap()).unwrap();
    let base = file.capture().unwrap();
    let bin = std::sync::Arc::new(gospy::binary::Binary::from_path(&bin_path).unwrap());
    let bias = base.meta.load_bias;
    let md = &bin.moduledata;
    let (types, etypes) = (md.types + bias, md.etypes + bias);
    // The clean heap's objects: (start, end), sorted.
    let objects: Vec<(u64, u64)> = {
        let s = gospy::analyze::Session::open(
            gospy::sources::from_capture(base.clone(), bin.clone()),
            None,
        )
        .unwrap();
        let c = gospy::analyze::objects::census(&s).expect("census");
        c.objects
            .objects
            .iter()
            .map(|o| (o.addr, o.addr + o.size))
            .collect()
    };
    let clean = objects_in_process(base.clone(), bin.clone()).expect("clean capture");
    for seed in 1..=16u64 {
        let mut cap = base.clone();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let heap_ptrs: Vec<u64> = cap
            .regions
            .iter()
            .flat_map(|r| r.data.chunks_exact(8))
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .filter(|&w| {
                let i = objects.partition_point(|o| o.1 <= w);
                objects.get(i).is_some_and(|o| o.0 <= w)
            })
            .take(4096)
            .collect();
        let pick = |rng: &mut Rng, v: &[u64]| {
            v.get((rng.next() % v.len().max(1) as u64) as usize)
                .copied()
                .unwrap_or(0)
        };
        for r in cap.regions.iter_mut() {
            let end = r.addr + r.data.len() as u64;
            // Heap objects and stacks only: the span structures stay
            // intact, so the object walk reaches the typing.
            let spans: Vec<(u64, u64)> = if r.kind == gospy::model::RegionKind::Stack {
                vec![(r.addr, end)]
            } else {
                let i = objects.partition_point(|o| o.1 <= r.addr);
                objects[i..]
                    .iter()
                    .take_while(|o| o.0 < end)
                    .map(|o| (o.0.max(r.addr), o.1.min(end)))
                    .collect()
            };
            for (lo, hi) in spans {
                let mut a = lo.next_multiple_of(8);
                while a + 16 <= hi {
                    let k = (a - r.addr) as usize;
                    a += 8;
                    if rng.next() % 8 != 0 {
                        continue;
                    }
                    let ty = (types + rng.next() % (etypes - types).max(1)) & !7;
                    let (w0, w1) = match if seed > 12 { 4 } else { seed % 4 } {
                        // A slice header: a pointer into the middle of a
                        // heap object, a length of 2^30 (walked, it must be
                        // cut to the object: an uncut one hung the walk).
                        4 => (
                            pick(&mut rng, &heap_ptrs) + 8,
                            (1 << 30) + rng.next() % 1024,
                        ),
                        // A descriptor (or a word inside one) before a heap pointer.
                        0 => (ty, pick(&mut rng, &heap_ptrs)),
                        // A heap pointer before a descriptor (a spilled pair).
                        1 => (pick(&mut rng, &heap_ptrs), ty),
                        // Channel-like: absurd counts, elemsize, element type.
                        2 => (rng.next() >> (rng.next() % 64), ty),
                        // Self-pointers and random words.
                        _ => (a - 8, rng.next()),
                    };
                    r.data[k..k + 8].copy_from_slice(&w0.to_le_bytes());
                    r.data[k + 8..k + 16].copy_from_slice(&w1.to_le_bytes());
                }
            }
        }
        // A hang would otherwise hold the suite until CI's deadline.
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let v = version.to_string();
        std::thread::spawn(move || {
            if wait.recv_timeout(std::time::Duration::from_secs(300))
                == Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            {
                eprintln!("go {v} hostile seed {seed}: the object walk hangs (300 s)");
                std::process::abort();
            }
        });
        let res = objects_in_process(cap, bin.clone());
        let _ = done.send(());
        match res {
            Ok((d, n, w)) => {
                // A hang guard, not a speed target (about 1 s at most on an
                // idle machine, debug build; the suite's parallel tests can
                // slow it tenfold and more).
                assert!(
                    d < std::time::Duration::from_secs(60),
                    "go {version} seed {seed}: {d:?}"
                );
                report(&format!(
                    "go {version} hostile seed {seed}: {n} groups, {w} warnings, {d:?} \
                     (clean: {} groups)",
                    clean.1
                ));
                assert!(n > 0, "go {version} seed {seed}: the object walk failed");
            }
            Err(p) => panic!("go {version} seed {seed}: panic: {p}"),
        }
    }
}

/// Go 1.24 and 1.25 with the old maps (`GOEXPERIMENT=noswissmap`): hmap
/// buckets laid out by the `OldMapType`'s bucket descriptor.
#[test]
fn go1_24_noswissmap() {
    check_env("1.24", false, &[("GOEXPERIMENT", "noswissmap")]);
}

#[test]
fn go1_25_noswissmap() {
    check_env("1.25", false, &[("GOEXPERIMENT", "noswissmap")]);
}

#[test]
fn hostile_memory_go1_21() {
    hostile("1.21");
}

#[test]
fn hostile_memory_go1_27() {
    hostile("1.27");
}
