//! `gospy capture --redact`: a redacted capture of the goroutines fixture
//! gives the same dump as a normal one (label values aside, which it shows
//! as `<redacted>`, and function arguments, which it does not show), and the
//! same blocked-on objects; a secret the fixture keeps in a global and on a
//! goroutine stack is in the normal snapshot but in no byte of the redacted
//! one. Run for Go 1.22 (labels in a map) and 1.27 (labels in a list).

mod common;

use common::*;
use gospy::model::RegionKind;
use gospy::snapshot::SnapshotFile;
use serde_json::Value;
use std::path::Path;

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Region kinds of the snapshot holding `needle`, and whether the metadata
/// does.
fn where_is(path: &Path, needle: &[u8]) -> (Vec<RegionKind>, bool) {
    let snap = SnapshotFile::open(path).unwrap();
    let cap = snap.capture().unwrap();
    let mut kinds: Vec<RegionKind> = cap
        .regions
        .iter()
        .filter(|r| find(&r.data, needle))
        .map(|r| r.kind)
        .collect();
    kinds.dedup();
    let meta = format!("{:?}", cap.meta);
    (
        kinds,
        meta.contains(&String::from_utf8_lossy(needle).into_owned()),
    )
}

/// Paths where two JSON values differ, ignoring what changes with the
/// moment of the capture.
fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    const TIMES: [&str; 2] = ["capture_wall_time_ns", "last_gc_ago_ns"];
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if TIMES.contains(&k.as_str()) {
                    continue;
                }
                json_diff(
                    &format!("{path}.{k}"),
                    va,
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

fn dump_json(path: &Path) -> Vec<Value> {
    serde_json::from_str(&gospy_ok([
        "analyze",
        path.to_str().unwrap(),
        "dump",
        "--json",
        "--all",
    ]))
    .unwrap()
}

fn check_version(version: &str) {
    let Some(bin) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let secret = format!(
        "gospy-secret-{:016x}",
        (std::process::id() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let fx = Fixture::start_with_env(&bin, &[("GOSPY_FIXTURE_SECRET", &secret)]);
    let oracle = fx.oracle();
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("plain.gss");
    let redacted = work.path().join("redacted.gss");
    capture(fx.pid, &plain, &[]);
    capture(fx.pid, &redacted, &["--redact"]);

    // The secret is where the fixture put it, in the normal snapshot...
    let (kinds, _) = where_is(&plain, secret.as_bytes());
    assert!(
        kinds.contains(&RegionKind::Data) && kinds.contains(&RegionKind::Stack),
        "go {version}: the normal snapshot should hold the secret in data and on a stack, \
         found in {kinds:?}"
    );
    // ...and nowhere in the redacted one, nor in any of its metadata.
    let (kinds, in_meta) = where_is(&redacted, secret.as_bytes());
    assert!(
        kinds.is_empty() && !in_meta,
        "go {version}: the redacted snapshot still holds the secret in {kinds:?} (meta: {in_meta})"
    );
    // Nor in the file at all, compressed or not (zstd may store it raw).
    let raw = std::fs::read(&redacted).unwrap();
    assert!(!find(&raw, secret.as_bytes()));

    // Same dump, goroutine by goroutine; label values redacted.
    let a = dump_json(&plain);
    let b = dump_json(&redacted);
    assert_eq!(a.len(), b.len(), "go {version}: goroutine counts differ");
    let busy = oracle.meta.busy_goroutine_id;
    let mut labelled = 0;
    for (ga, gb) in a.iter().zip(&b) {
        assert_eq!(ga["id"], gb["id"]);
        let id = ga["id"].as_u64().unwrap();
        if id == busy {
            // Running between the two captures: only its function is stable.
            assert_eq!(ga["start_function"], gb["start_function"]);
            continue;
        }
        // Same frames; arguments (stack words) are not shown when redacted.
        let strip = |g: &Value| -> Vec<Value> {
            g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    f.as_object_mut().unwrap().remove("args");
                    f
                })
                .collect()
        };
        assert_eq!(
            strip(ga),
            strip(gb),
            "go {version}: goroutine {id}: frames differ"
        );
        for f in gb["frames"].as_array().unwrap() {
            assert!(
                f.get("args").map_or(true, |a| a.is_null()),
                "go {version}: goroutine {id}: arguments shown from a redacted snapshot: {f}"
            );
        }
        for key in [
            "status",
            "state",
            "wait_reason",
            "waiting_on",
            "created_by",
            "start_function",
            "system",
            "locked_to_thread",
            "stack_error",
            "stack_unavailable",
        ] {
            assert_eq!(
                ga[key], gb[key],
                "go {version}: goroutine {id}: {key} differs"
            );
        }
        let la = ga["labels"].as_object().unwrap();
        let lb = gb["labels"].as_object().unwrap();
        assert_eq!(
            la.keys().collect::<Vec<_>>(),
            lb.keys().collect::<Vec<_>>(),
            "go {version}: goroutine {id}: label keys differ"
        );
        if !la.is_empty() {
            labelled += 1;
        }
        for v in lb.values() {
            assert_eq!(
                v, "<redacted>",
                "go {version}: goroutine {id}: label value kept"
            );
        }
    }
    assert!(
        labelled >= 2,
        "go {version}: the labelled goroutines lost their labels"
    );

    // Heap analysis reads only runtime state: the same report.
    let heap = |p: &Path| -> Value {
        serde_json::from_str(&gospy_ok([
            "analyze",
            p.to_str().unwrap(),
            "heap",
            "--json",
        ]))
        .unwrap()
    };
    let mut diffs = Vec::new();
    json_diff("", &heap(&plain), &heap(&redacted), &mut diffs);
    assert!(
        diffs.is_empty(),
        "go {version}: heap reports differ:\n{}",
        diffs.join("\n")
    );

    // The summary reads the same, and analyze says the snapshot is redacted.
    let out = gospy(["analyze", redacted.to_str().unwrap(), "summary"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("redacted:"),
        "analyze does not say it: {stderr}"
    );
    let info = gospy_ok(["info", redacted.to_str().unwrap()]);
    assert!(info.contains("redacted:"), "{info}");
    report(&format!(
        "redact go {version}: {} goroutines, same dump, secret gone",
        a.len()
    ));
}

#[test]
fn redacted_capture_same_dump_no_secret_go127() {
    check_version("1.27");
}

#[test]
fn redacted_capture_same_dump_no_secret_go122() {
    check_version("1.22");
}
