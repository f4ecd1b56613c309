//! Shell completions, `--help` examples, and colour only on a terminal
//! (never with NO_COLOR), checked through tmux against a real snapshot.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn completions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = gospy(["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["capture", "analyze", "top", "non-blocking", "completions"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script parses.
    let out = gospy(["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gospy.bash");
    std::fs::write(&f, &out.stdout).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success());
    assert_eq!(gospy(["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn help_has_examples() {
    for cmd in [
        "capture",
        "analyze",
        "summary",
        "dump",
        "heap",
        "info",
        "top",
        "diff",
        "convert",
        "completions",
    ] {
        let help = gospy_ok([cmd, "--help"]);
        assert!(
            help.contains("Examples:") && help.contains(&format!("gospy {cmd}")),
            "{cmd} --help has no examples:\n{help}"
        );
    }
    assert!(gospy_ok(["--help"]).contains("Examples:"));
}

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd` in a fresh tmux pane (a real terminal) and returns the pane's
/// contents with escape sequences (`capture-pane -e`).
fn in_terminal(cmd: &str) -> String {
    let name = format!("gospy-color-{}-{}", std::process::id(), fastrand());
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let full = format!("{cmd}; touch {}; sleep 60", done.display());
    let st = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "60",
            &full,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    while !done.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("tmux")
        .args(["capture-pane", "-p", "-e", "-t", &name])
        .output()
        .unwrap();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &name])
        .status();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fastrand() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[test]
fn colour_only_on_a_terminal() {
    if !have_tmux() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("tmux is required in CI (scripts/install-test-deps.sh)");
        }
        eprintln!("skipping: tmux not installed");
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", "1.22", false, "") else {
        return;
    };
    let fx = Fixture::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("a.gss");
    capture(fx.pid, &snap, &[]);
    drop(fx);
    let g = gospy_bin();
    let base = format!("{} analyze {} top", g.display(), snap.display());
    // Piped: never colour.
    let piped = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "top".as_ref()]);
    assert!(!piped.contains('\x1b'), "colour in a pipe:\n{piped}");
    let coloured = in_terminal(&base);
    assert!(
        coloured.contains("\x1b[33mwaiting") || coloured.contains("\x1b[33m"),
        "no colour on a terminal:\n{coloured}"
    );
    assert!(coloured.contains("main.worker"), "{coloured}");
    let plain = in_terminal(&format!("NO_COLOR=1 {base}"));
    assert!(plain.contains("main.worker"), "{plain}");
    assert!(
        !plain.contains("\x1b[33m"),
        "colour despite NO_COLOR:\n{plain}"
    );
}

/// A file that is not there: one line, exit 4 (bad input), the system's
/// reason said once.
#[test]
fn missing_file_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("absent.gss");
    for cmd in ["summary", "dump", "info"] {
        let out = if cmd == "info" {
            gospy([cmd.as_ref(), f.as_os_str()])
        } else {
            gospy(["analyze".as_ref(), f.as_os_str(), cmd.as_ref()])
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{cmd}: {out:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{cmd}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{cmd}: {err}"
        );
    }
}
