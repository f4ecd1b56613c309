//! `gospy capture --pid N -o DIR --interval D --count N`: a series of
//! snapshots DIR/PID-1.gss ... DIR/PID-N.gss (mode 0600), each analyzable and
//! ready for `gospy diff`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use serde_json::Value;

use common::*;

fn series(version: &str) {
    let Some(bin) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let fx = Fixture::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("series");
    let pid = fx.pid.to_string();
    let t0 = Instant::now();
    gospy_ok([
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        dir.as_os_str(),
        "--interval".as_ref(),
        "300ms".as_ref(),
        "--count".as_ref(),
        "3".as_ref(),
    ]);
    let took = t0.elapsed();
    assert!(took.as_millis() >= 600, "two intervals of 300ms: {took:?}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        (1..=3)
            .map(|n| format!("{pid}-{n}.gss"))
            .collect::<Vec<_>>()
    );
    let mut times = Vec::new();
    for n in &names {
        let p = dir.join(n);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{n}");
        let top: Vec<Value> = serde_json::from_str(&gospy_ok([
            "analyze".as_ref(),
            p.as_os_str(),
            "top".as_ref(),
            "--json".as_ref(),
        ]))
        .unwrap();
        let worker = top.iter().find(|g| g["key"] == "main.worker").unwrap();
        assert_eq!(worker["count"], 10, "{n}");
        let info: Value = serde_json::from_str(&gospy_ok([
            "info".as_ref(),
            p.as_os_str(),
            "--json".as_ref(),
        ]))
        .unwrap();
        times.push(info["capture_wall_time_ns"].as_u64().unwrap());
    }
    // Captures start 300ms apart; the pause itself comes after loading the
    // executable, which varies (more so on a loaded machine), so only a
    // spread of more than one interval is checked.
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!(times[2] - times[0] >= 300_000_000, "spread: {times:?}");
    // First and last compare with diff: the same executable, no growth.
    let d: Value = serde_json::from_str(&gospy_ok([
        "diff".as_ref(),
        dir.join(&names[0]).as_os_str(),
        dir.join(&names[2]).as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert!(d["leak_candidates"].as_array().unwrap().is_empty(), "{d}");

    // Bad values are usage errors, before touching the target.
    let out = gospy([
        "capture",
        "--pid",
        &pid,
        "-o",
        "/nonexistent",
        "--interval",
        "10x",
        "--count",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn capture_series_go1_22() {
    series("1.22");
}

#[test]
fn capture_series_go1_27() {
    series("1.27");
}
