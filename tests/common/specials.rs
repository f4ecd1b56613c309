//! The finalizer and cleanup roots of the specials/cleanups fixtures,
//! checked against the fixture's own expect.json (tests/specials.rs,
//! tests/arm64.rs).

use super::owners::{close, roots};
use serde_json::Value;

/// Checks each finalizer and cleanup of the fixture: its root, named, with
/// the fixture's retained bytes. Returns one line per special.
pub fn check_specials(what: &str, got: &Value, expect: &Value) -> Vec<String> {
    let rs = roots(got);
    let mut lines = Vec::new();
    // The queued cleanup: one root per function.
    if let Some(q) = expect["queued_cleanups"].as_array().and_then(|v| v.first()) {
        let want = q["retained"].as_u64().unwrap();
        let name = "runtime: queued cleanup (main.queueCleanup.func1)";
        match rs.iter().find(|(n, _)| n == name) {
            Some((_, bytes)) => {
                assert!(
                    close(*bytes, want),
                    "{what}: {name} retains {bytes} bytes, the fixture computed {want}"
                );
                lines.push(format!("{name} {bytes} (fixture {want})"));
            }
            None => panic!("{what}: no root {name:?} (want {want} bytes); roots: {rs:?}"),
        }
    }
    for (key, prefix, func) in [
        (
            "finalizers",
            "runtime: finalizer for *main.Res ",
            "main.setFinalizer.func1",
        ),
        ("cleanups", "runtime: cleanup for ", "main.addCleanup.func1"),
        (
            "queued",
            "runtime: queued finalizer for *main.Res ",
            "main.queueFinalizer.func1",
        ),
    ] {
        let Some(list) = expect[key].as_array() else {
            continue;
        };
        for s in list {
            let obj = s["object"].as_u64().unwrap();
            let want = s["retained"].as_u64().unwrap();
            let name = format!("{prefix}{obj:#x} ({func})");
            let Some((_, bytes)) = rs.iter().find(|(n, _)| *n == name) else {
                panic!("{what}: no root {name:?} (want {want} bytes); roots: {rs:?}");
            };
            assert!(
                close(*bytes, want),
                "{what}: {name} retains {bytes} bytes, the fixture computed {want}"
            );
            lines.push(format!("{name} {bytes} (fixture {want})"));
        }
    }
    lines
}
