//! Capture's pre-copy: parked goroutines' stacks are read before the pause
//! and kept only when the goroutine provably did not run since (capture.rs,
//! `GKey`). Against tests/fixtures/flip (1000 goroutines flipping between
//! main.parkA, blocked on chA, and main.parkB, blocked on chB, same stack
//! pointer either way, tens of thousands of times per second, the GC
//! cycling constantly): in every capture each flipper's frames agree with
//! the channel its g, read in the pause, says it waits on, and carries its
//! own pprof label set (pre-copied with its stack, or read in the pause);
//! and over the captures, pre-copied stacks were both kept and thrown away.
//!
//! The oracle is the program's own channels (meta.json has their addresses
//! as `%p` prints them). A rule that kept stacks by stack pointer and status
//! alone fails this test within a few captures.

mod common;

use serde_json::Value;

use common::*;

const RUNS: usize = 12;

fn flip(version: &str) {
    let Some(bin) = try_build_fixture("flip", version, false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.dir.path().join("meta.json")).unwrap())
            .unwrap();
    let (cha, chb) = (meta["chA"].as_str().unwrap(), meta["chB"].as_str().unwrap());
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("flip.gss");
    let pid = fx.pid.to_string();
    let (mut kept, mut dropped, mut checked) = (0u64, 0u64, 0usize);
    let mut labelled = std::collections::HashSet::new();
    for run in 0..RUNS {
        let out = gospy_ok([
            "capture".as_ref(),
            "--pid".as_ref(),
            pid.as_ref(),
            "-o".as_ref(),
            snap.as_os_str(),
            "--json".as_ref(),
        ]);
        let c: Value = serde_json::from_str(&out).unwrap();
        let pre = &c["precopy"];
        assert!(pre.is_object(), "run {run}: no pre-copy: {c}");
        let (k, s) = (
            pre["kept"].as_u64().unwrap(),
            pre["stacks"].as_u64().unwrap(),
        );
        assert!(k <= s, "run {run}: kept more than pre-copied: {pre}");
        kept += k;
        dropped += s - k;
        let dump: Vec<Value> = serde_json::from_str(&gospy_ok([
            "analyze".as_ref(),
            snap.as_os_str(),
            "dump".as_ref(),
            "--json".as_ref(),
        ]))
        .unwrap();
        for g in &dump {
            let fs: Vec<&str> = g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["function"].as_str().unwrap())
                .collect();
            if fs.contains(&"main.flipper") {
                // Its own label set, whether pre-copied or read in the pause.
                let l = g["labels"]["flipper"].as_str().unwrap_or_else(|| {
                    panic!("run {run}: flipper {} without its labels: {g}", g["id"])
                });
                let n: usize = l.parse().unwrap();
                assert!(
                    n < 1000 && labelled.insert((run, n)),
                    "run {run}: label {l} twice or out of range"
                );
            }
            let want = if fs.contains(&"main.parkA") {
                cha
            } else if fs.contains(&"main.parkB") {
                chb
            } else {
                continue;
            };
            let w = &g["waiting_on"];
            if w["kind"] != "chan" {
                // Woken but not yet running: no channel to compare with.
                continue;
            }
            assert_eq!(
                w["addr"].as_str().unwrap(),
                want,
                "run {run}: goroutine {} shows frames {fs:?} but its g waits on {w} \
                 (chA {cha}, chB {chb}): a stale pre-copied stack was kept",
                g["id"]
            );
            checked += 1;
        }
    }
    eprintln!(
        "{version}: {RUNS} captures, {checked} flippers checked; pre-copied stacks kept {kept}, re-read in the pause {dropped}"
    );
    assert!(
        checked >= RUNS * 900,
        "most flippers are parked at any time"
    );
    assert!(kept > 0, "no pre-copied stack was ever kept");
    assert!(
        dropped > 0,
        "no pre-copied stack was ever found stale: the test did not exercise the check"
    );
    assert!(fx.is_running());
    fx.kill();
}

#[test]
fn flip_go1_19() {
    flip("1.19");
}

#[test]
fn flip_go1_23() {
    flip("1.23");
}

#[test]
fn flip_go1_27() {
    flip("1.27");
}
