//! Acceptance test: `gospy analyze SNAP dump --all` equals the traceback the
//! runtime itself prints on SIGQUIT at GOTRACEBACK=system, system goroutines
//! (GC workers, bgsweep, bgscavenge, forcegchelper, the finalizer
//! goroutine...) and their `created by runtime.X` lines included.
//!
//! The goroutines fixture is started with GOTRACEBACK=system, captured, then
//! sent SIGQUIT: it is quiet in between (every goroutine parked but the busy
//! loop, the GC disabled), so each parked goroutine's block must be
//! byte-identical once the runtime's addresses are taken out (` gp=0x..
//! m=N mp=0x..` in headers, ` fp=0x.. sp=0x.. pc=0x..` after locations:
//! gospy does not print them). Running or runnable goroutines legitimately
//! differ (the busy loop is wherever the signal caught it); their `created
//! by` lines must still match.

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

/// The runtime's block without what only GOTRACEBACK=system adds and gospy
/// does not print: ` gp=0x.. m=N mp=0x..` / ` gp=0x.. m=nil` in the header,
/// ` fp=0x.. sp=0x.. pc=0x..` after each location.
fn strip_addresses(block: &str) -> String {
    let mut out = Vec::new();
    for (i, line) in block.lines().enumerate() {
        let mut l = line.to_string();
        if i == 0 {
            if let (Some(a), Some(b)) = (l.find(" gp=0x"), l.find(" [")) {
                if a < b {
                    l.replace_range(a..b, "");
                }
            }
        } else if l.starts_with('\t') {
            if let Some(p) = l.find(" fp=0x") {
                l.truncate(p);
            }
        }
        out.push(l);
    }
    out.join("\n")
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
        let w = strip_addresses(w);
        let busy = id == meta.busy_goroutine_id
            || matches!(state(&w), "running" | "runnable")
            || w.contains("stack unavailable");
        if busy {
            if created_by(&w) != created_by(g) {
                problems.push(format!(
                    "goroutine {id} (not parked): created by differs:\n  runtime: {:?}\n  gospy:   {:?}",
                    created_by(&w),
                    created_by(g)
                ));
            }
        } else if &w != g {
            problems.push(format!(
                "goroutine {id} differs:\n--- runtime (SIGQUIT, GOTRACEBACK=system)\n{w}\n+++ gospy dump --all\n{g}"
            ));
        } else {
            exact.push(w);
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
    eprintln!(
        "{}: {} of {} goroutines matched byte for byte",
        meta.go_version,
        exact.len(),
        want_ids.len()
    );
    if !problems.is_empty() {
        problems.push(format!(
            "(snapshot {}; {} goroutines matched exactly)",
            snap.display(),
            exact.len()
        ));
    }
    problems
}

fn sigquit_matches(version: &str) {
    let Some(binary) = try_build_fixture("goroutines", version, false, "") else {
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
        "note: go {version}: first run differed, trying a fresh fixture:\n{}",
        first.join("\n")
    );
    let second = run_once(&binary, work.path());
    assert!(
        second.is_empty(),
        "go {version}: gospy dump --all differs from the runtime's SIGQUIT traceback \
         (twice; second run):\n\n{}",
        second.join("\n\n")
    );
}

macro_rules! sigquit_tests {
    ($($name:ident: $version:literal;)*) => {$(
        #[test]
        fn $name() {
            sigquit_matches($version);
        }
    )*};
}

sigquit_tests! {
    sigquit_go1_19: "1.19";
    sigquit_go1_21: "1.21";
    sigquit_go1_22: "1.22";
    sigquit_go1_23: "1.23";
    sigquit_go1_24: "1.24";
    sigquit_go1_25: "1.25";
    sigquit_go1_26: "1.26";
    sigquit_go1_27: "1.27";
}
