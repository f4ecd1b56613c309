//! Acceptance test: `gospy analyze SNAP dump --all` equals the traceback the
//! runtime itself prints on SIGQUIT at GOTRACEBACK=system, system goroutines
//! (GC workers, bgsweep, bgscavenge, forcegchelper, the finalizer
//! goroutine...) and their `created by runtime.X` lines included.
//!
//! The goroutines fixture is started with GOTRACEBACK=system, captured, then
//! sent SIGQUIT: it is quiet in between (every goroutine parked but the busy
//! loop, the GC disabled), so each parked goroutine's block must be
//! byte-identical, addresses included (` gp=0x.. m=N mp=0x..` in headers
//! from Go 1.22, ` fp=0x.. sp=0x.. pc=0x..` after each physical frame).
//! Running or runnable goroutines legitimately differ (the busy loop is
//! wherever the signal caught it); their `created by` lines must still
//! match. The runtime's goroutine 0 (the g0 of the thread the signal landed
//! on) and its register dump are not goroutines gospy lists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;

/// Goroutine blocks of a traceback ("goroutine N ...:" up to the blank
/// line), by id.
fn blocks(text: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for b in text.split("\n\n") {
        let b = b.trim_matches('\n');
        let Some(rest) = b.strip_prefix("goroutine ") else {
            continue;
        };
        let id: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(id) = id.parse() {
            out.insert(id, b.to_string());
        }
    }
    out
}

/// The header's state: "chan receive" in "goroutine 7 [chan receive, 2 minutes]:".
fn state(block: &str) -> &str {
    let h = block.lines().next().unwrap_or("");
    let s = h.find(" [").map(|i| &h[i + 2..]).unwrap_or("");
    s.split([',', ']']).next().unwrap_or("")
}

/// The `created by` line and its location (the block's last two lines).
fn created_by(block: &str) -> Option<String> {
    let lines: Vec<&str> = block.lines().collect();
    let n = lines.len();
    (n >= 2 && lines[n - 2].starts_with("created by ")).then(|| {
        let loc = lines[n - 1];
        let loc = loc.find(" fp=0x").map_or(loc, |p| &loc[..p]);
        format!("{}\n{loc}", lines[n - 2])
    })
}

/// One run: start, capture, SIGQUIT, compare. Problems found.
fn run_once(binary: &Path, work: &Path) -> Vec<String> {
    let mut fx = Fixture::start_with_env(binary, &[("GOTRACEBACK", "system")]);
    let meta = fx.oracle().meta;
    let snap = work.join("snap.gss");
    let _ = std::fs::remove_file(&snap);
    capture(fx.pid, &snap, &[]);
    // SAFETY: our own child, still running (not reaped: Fixture owns it).
    let rc = unsafe { libc::kill(fx.pid as i32, libc::SIGQUIT) };
    assert_eq!(rc, 0, "kill -QUIT {}", fx.pid);
    let status = fx.wait_exit(Duration::from_secs(20));
    let stderr = fx.stderr();
    fx.kill();
    assert!(
        status.is_some(),
        "the fixture did not exit on SIGQUIT; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("SIGQUIT: quit"),
        "no SIGQUIT traceback on stderr:\n{stderr}"
    );
    // The register dump after the goroutines is not a goroutine block.
    let traceback = stderr.split("\nrax ").next().unwrap_or(&stderr).to_string();
    let want = blocks(&traceback);
    let text = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "dump".as_ref(),
        "--all".as_ref(),
    ]);
    let got = blocks(&text);

    let mut problems = Vec::new();
    // Goroutine 0 is the g0 of the thread the signal landed on.
    let want_ids: BTreeSet<u64> = want.keys().copied().filter(|&id| id != 0).collect();
    let got_ids: BTreeSet<u64> = got.keys().copied().collect();
    if want_ids != got_ids {
        problems.push(format!(
            "goroutine ids differ: only in the runtime's {:?}, only in gospy's {:?}",
            want_ids.difference(&got_ids).collect::<Vec<_>>(),
            got_ids.difference(&want_ids).collect::<Vec<_>>()
        ));
    }
    let mut exact = Vec::new();
    for (&id, w) in want.iter().filter(|(&id, _)| id != 0) {
        let Some(g) = got.get(&id) else { continue };
        let busy = id == meta.busy_goroutine_id
            || matches!(state(w), "running" | "runnable")
            || w.contains("stack unavailable");
        if busy {
            if created_by(w) != created_by(g) {
                problems.push(format!(
                    "goroutine {id} (not parked): created by differs:\n  runtime: {:?}\n  gospy:   {:?}",
                    created_by(w),
                    created_by(g)
                ));
            }
        } else if w != g {
            problems.push(format!(
                "goroutine {id} differs:\n--- runtime (SIGQUIT, GOTRACEBACK=system)\n{w}\n+++ gospy dump --all\n{g}"
            ));
        } else {
            exact.push(w.clone());
        }
    }
    // The system goroutines every program has must be among the exact ones,
    // with their runtime-internal creators.
    for (frame, creator) in [
        ("runtime.forcegchelper()", "created by runtime.init."),
        ("runtime.bgsweep(", "created by runtime.gcenable"),
        ("runtime.bgscavenge(", "created by runtime.gcenable"),
        (
            "runtime.gcBgMarkWorker(",
            "created by runtime.gcBgMarkStartWorkers",
        ),
    ] {
        if !exact
            .iter()
            .any(|b| b.contains(&format!("\n{frame}")) && b.contains(&format!("\n{creator}")))
        {
            problems.push(format!(
                "no system goroutine in {frame} created by {creator}... matched exactly"
            ));
        }
    }
    report(&format!(
        "sigquit {}: {} of {} goroutines matched byte for byte",
        meta.go_version,
        exact.len(),
        want_ids.len()
    ));
    if !problems.is_empty() {
        problems.push(format!(
            "(snapshot {}; {} goroutines matched exactly)",
            snap.display(),
            exact.len()
        ));
    }
    problems
}

fn sigquit_matches(version: &str, pie: bool, ldflags: &str) {
    let Some(binary) = try_build_fixture("goroutines", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-sigquit-")
        .tempdir()
        .unwrap();
    let first = run_once(&binary, work.path());
    if first.is_empty() {
        return;
    }
    // Decoding is deterministic (a gospy bug fails twice); a runtime
    // goroutine that woke up between the capture and the signal does not.
    eprintln!(
        "note: go {version} (pie={pie}, ldflags={ldflags:?}): first run differed, trying a fresh fixture:\n{}",
        first.join("\n")
    );
    let second = run_once(&binary, work.path());
    assert!(
        second.is_empty(),
        "go {version} (pie={pie}, ldflags={ldflags:?}): gospy dump --all differs from the runtime's SIGQUIT traceback \
         (twice; second run):\n\n{}",
        second.join("\n\n")
    );
}

macro_rules! sigquit_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, ldflags = $ldflags:literal;)*) => {$(
        #[test]
        fn $name() {
            sigquit_matches($version, $pie, $ldflags);
        }
    )*};
}

sigquit_tests! {
    sigquit_go1_19: "1.19", pie = false, ldflags = "";
    sigquit_go1_21: "1.21", pie = false, ldflags = "";
    sigquit_go1_22: "1.22", pie = false, ldflags = "";
    sigquit_go1_23: "1.23", pie = false, ldflags = "";
    sigquit_go1_24: "1.24", pie = false, ldflags = "";
    sigquit_go1_25: "1.25", pie = false, ldflags = "";
    sigquit_go1_26: "1.26", pie = false, ldflags = "";
    sigquit_go1_27: "1.27", pie = false, ldflags = "";
    sigquit_go1_19_pie: "1.19", pie = true, ldflags = "";
    sigquit_go1_27_pie: "1.27", pie = true, ldflags = "";
    // No symbols, no DWARF: runtime globals recovered from code.
    sigquit_go1_27_stripped: "1.27", pie = false, ldflags = "-s -w";
    sigquit_go1_22_stripped: "1.22", pie = false, ldflags = "-s -w";
}
