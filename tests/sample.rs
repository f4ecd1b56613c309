//! The shipped sample (samples/goroutines-go1.27.gss, binary embedded) must
//! analyze with no Go toolchain and no root, and its dump must match the
//! runtime's own traceback written by the fixture at capture time
//! (samples/goroutines-go1.27.stack.txt).

mod common;

use common::*;
use std::path::PathBuf;

fn sample(name: &str) -> PathBuf {
    crate_root().join("samples").join(name)
}

#[test]
fn sample_summary_counts_match_runtime() {
    let out = gospy_ok([
        "analyze",
        sample("goroutines-go1.27.gss").to_str().unwrap(),
        "summary",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let meta: Meta = serde_json::from_str(
        &std::fs::read_to_string(sample("goroutines-go1.27.meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["go_version"], "go1.27.3");
    assert_eq!(v["gomaxprocs"].as_u64(), Some(meta.gomaxprocs as u64));
    assert_eq!(
        v["goroutine_count"].as_u64(),
        Some(meta.num_goroutine as u64)
    );
    // The text form works too.
    let text = gospy_ok([
        "analyze",
        sample("goroutines-go1.27.gss").to_str().unwrap(),
        "summary",
    ]);
    assert!(text.contains("main.busyLoop"), "{text}");
}

#[test]
fn sample_dump_matches_runtime_traceback() {
    let oracle =
        parse_oracle(&std::fs::read_to_string(sample("goroutines-go1.27.stack.txt")).unwrap())
            .unwrap();
    let meta: Meta = serde_json::from_str(
        &std::fs::read_to_string(sample("goroutines-go1.27.meta.json")).unwrap(),
    )
    .unwrap();
    let out = gospy_ok([
        "analyze",
        sample("goroutines-go1.27.gss").to_str().unwrap(),
        "dump",
        "--json",
    ]);
    let got: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut compared = 0;
    for og in &oracle {
        if og.unavailable || og.id == meta.oracle_goroutine_id || og.id == meta.busy_goroutine_id {
            continue;
        }
        let g = got
            .iter()
            .find(|g| g["id"].as_u64() == Some(og.id))
            .unwrap_or_else(|| panic!("goroutine {} missing", og.id));
        assert_eq!(
            g["state"].as_str(),
            Some(og.state.as_str()),
            "goroutine {}",
            og.id
        );
        let frames: Vec<(String, String, u64, bool)> = g["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["function"].as_str().unwrap().to_string(),
                    f["file"].as_str().unwrap().to_string(),
                    f["line"].as_u64().unwrap(),
                    f["inlined"].as_bool().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, u64, bool)> = og
            .frames
            .iter()
            .map(|f| (f.function.clone(), f.file.clone(), f.line as u64, f.inlined))
            .collect();
        if og.elided.is_none() {
            assert_eq!(frames, want, "goroutine {}", og.id);
        }
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} goroutines compared");
    println!("sample: {compared} goroutines match the runtime's traceback");
    // The busy goroutine was running in main.busyLoop.
    let busy = got
        .iter()
        .find(|g| g["id"].as_u64() == Some(meta.busy_goroutine_id))
        .unwrap();
    assert_eq!(busy["status"], "running");
}

#[test]
fn sample_text_dump_is_runtime_format() {
    let out = gospy_ok([
        "analyze",
        sample("goroutines-go1.27.gss").to_str().unwrap(),
        "dump",
    ]);
    assert!(out.starts_with("goroutine "), "{out}");
    assert!(out.contains("\n\t./main.go:"), "{out}");
    assert!(
        out.contains("created by main.startAll in goroutine 1\n"),
        "{out}"
    );
}
