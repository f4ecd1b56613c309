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

/// What the captures of one run of the flip fixture saw.
#[derive(Default)]
struct Seen {
    /// Pre-copied stacks kept and re-read in the pause.
    kept: u64,
    dropped: u64,
    /// Flippers whose frames were checked against their channel.
    checked: usize,
    /// Captures whose pause kept the quiet pre-read (g structs and
    /// blocked-on objects read before the stop), and why the others did not.
    quiet_kept: usize,
    quiet_not: Vec<String>,
}

/// `RUNS` captures of the flip fixture (`burst_ms`: its FLIP_BURST_MS,
/// None for the busy default), each checked for consistency.
fn flip_runs(version: &str, burst_ms: Option<u32>) -> Option<Seen> {
    let bin = try_build_fixture("flip", version, false, "")?;
    let burst = burst_ms.map(|b| b.to_string()).unwrap_or_default();
    let env: Vec<(&str, &str)> = if burst_ms.is_some() {
        vec![("FLIP_BURST_MS", burst.as_str())]
    } else {
        Vec::new()
    };
    let mut fx = Fixture::start_with_env(&bin, &env);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.dir.path().join("meta.json")).unwrap())
            .unwrap();
    let (cha, chb) = (meta["chA"].as_str().unwrap(), meta["chB"].as_str().unwrap());
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("flip.gss");
    let pid = fx.pid.to_string();
    let mut seen = Seen::default();
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
        seen.kept += k;
        seen.dropped += s - k;
        match c["quiet"]["kept"].as_bool() {
            Some(true) => seen.quiet_kept += 1,
            _ => seen.quiet_not.push(
                c["quiet"]["why_not"]
                    .as_str()
                    .unwrap_or("not tried")
                    .to_string(),
            ),
        }
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
            seen.checked += 1;
        }
    }
    assert!(
        seen.checked >= RUNS * 900,
        "most flippers are parked at any time"
    );
    assert!(fx.is_running());
    fx.kill();
    Some(seen)
}

fn flip(version: &str) {
    let Some(seen) = flip_runs(version, None) else {
        return;
    };
    eprintln!(
        "{version}: {RUNS} captures, {} flippers checked; pre-copied stacks kept {}, re-read in the pause {}; quiet pre-read kept {} times, not: {:?}",
        seen.checked, seen.kept, seen.dropped, seen.quiet_kept, seen.quiet_not
    );
    assert!(seen.kept > 0, "no pre-copied stack was ever kept");
    assert!(
        seen.dropped > 0,
        "no pre-copied stack was ever found stale: the test did not exercise the check"
    );
}

/// The quiet pre-read (capture/quiet.rs): with flippers woken in bursts
/// every millisecond some thread runs during nearly every pre-read, and
/// the pause must notice (else the g's channel, read before the stop,
/// disagrees with the frames, read after it); with a burst every 250 ms
/// most captures find the process quiet and keep the pre-read, and are
/// just as consistent.
fn quiet(version: &str) {
    let Some(busy) = flip_runs(version, Some(1)) else {
        return;
    };
    let Some(idle) = flip_runs(version, Some(250)) else {
        return;
    };
    eprintln!(
        "{version}: bursts every 1 ms: quiet pre-read kept {}/{RUNS}, not: {:?}; every 250 ms: kept {}/{RUNS} (pre-copied stacks kept {}), not: {:?}",
        busy.quiet_kept, busy.quiet_not, idle.quiet_kept, idle.kept, idle.quiet_not
    );
    assert!(
        busy.quiet_not.len() >= RUNS / 2,
        "bursts every 1 ms, yet the pause kept the pre-read {} times of {RUNS}",
        busy.quiet_kept
    );
    assert!(
        idle.quiet_kept >= RUNS / 2,
        "a burst every 250 ms, yet the pause kept the pre-read only {} times of {RUNS}: {:?}",
        idle.quiet_kept,
        idle.quiet_not
    );
    assert!(idle.kept > 0, "no pre-copied stack kept in a quiet capture");
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

#[test]
fn quiet_go1_19() {
    quiet("1.19");
}

#[test]
fn quiet_go1_23() {
    quiet("1.23");
}

#[test]
fn quiet_go1_27() {
    quiet("1.27");
}
