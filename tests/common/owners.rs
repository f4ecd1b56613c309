//! The owners fixture's (tests/fixtures/owners) expectations against
//! `retain --json`: each owner's root and retained bytes within 1%.
#![allow(dead_code)]

use serde_json::Value;

/// Retained bytes per root name.
pub fn roots(v: &Value) -> Vec<(String, u64)> {
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

/// Within 1%, on every version: Go 1.19–1.21 heap objects are scanned
/// with the heap arena pointer bitmaps, Go 1.22+ with span heap bits and
/// allocation headers, both exact.
pub fn close(a: u64, b: u64) -> bool {
    (a as f64 - b as f64).abs() <= 0.01 * b as f64
}

/// Checks every owner against the fixture's expectations; returns
/// (owner, root found, bytes) for the report.
pub fn check_owners(what: &str, got: &Value, expect: &Value, named: bool) -> Vec<String> {
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
