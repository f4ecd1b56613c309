//! `gospy top --pid N` on a real terminal: the interactive view, driven
//! through tmux (new-session, send-keys, capture-pane) against the goroutines
//! fixture (10 goroutines started with main.worker).

mod common;

use std::time::{Duration, Instant};

use common::tmux::*;
use common::*;

fn tracer_pid(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:").map(|v| v.trim().to_string()))
        .unwrap()
}

fn worker_row(screen: &str, suffix: &str) -> Option<(u64, String)> {
    screen.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let key_pos = f.iter().position(|w| *w == "main.worker")?;
        let count = f.first()?.parse().ok()?;
        let rest = f[key_pos + 1..].join(" ");
        rest.starts_with(suffix).then_some((count, rest))
    })
}

fn run(version: &str) {
    if !require_tmux() {
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::Builder::new()
        .prefix("gospy-tui-")
        .tempdir()
        .unwrap();
    let exit_file = work.path().join("exit");
    let name = format!("gospy-tui-{}-{}", std::process::id(), fx.pid);
    let cmd = format!(
        "{} top --pid {} --interval 0.5; echo $? > {}; sleep 600",
        gospy_bin().display(),
        fx.pid,
        exit_file.display()
    );
    let _guard = Session::start(&name, 160, 50, &cmd);

    // Grouped by start function: main.worker with its 10 goroutines.
    let s = wait_screen(&name, "main.worker grouped by start", |s| {
        s.contains("grouped by start") && worker_row(s, "").is_some()
    });
    let (count, rest) = worker_row(&s, "").unwrap();
    assert_eq!(count, 10, "main.worker count; screen:\n{s}");
    assert!(rest.is_empty(), "start key is the bare function: {rest:?}");
    assert!(s.contains("go1."), "header shows the Go version:\n{s}");
    assert!(
        s.contains("paused the target"),
        "header shows the pause:\n{s}"
    );
    assert!(s.contains("heap in use"), "header shows the heap:\n{s}");

    // g: grouped by the innermost user frame, `main.worker (./main.go:N)`.
    tmux(&["send-keys", "-t", &name, "g"]);
    let s = wait_screen(&name, "grouping by current", |s| {
        s.contains("grouped by current") && worker_row(s, "(").is_some()
    });
    assert_eq!(worker_row(&s, "(").unwrap().0, 10, "screen:\n{s}");

    // s: sorted by delta; / filter: only main.worker left.
    tmux(&["send-keys", "-t", &name, "s"]);
    wait_screen(&name, "sort by delta", |s| s.contains("sorted by delta"));
    tmux(&["send-keys", "-t", &name, "/", "worker", "Enter"]);
    // (tmux may show a frame half drawn: the header already filtered, rows
    // of the last frame below; the whole filtered frame must come.)
    wait_screen(&name, "filter", |s| {
        s.contains("filter /worker/") && !s.contains("main.busyLoop")
    });

    // p pauses refreshing, p again resumes.
    tmux(&["send-keys", "-t", &name, "p"]);
    wait_screen(&name, "paused", |s| s.contains("[PAUSED]"));
    tmux(&["send-keys", "-t", &name, "p"]);
    wait_screen(&name, "resumed", |s| !s.contains("[PAUSED]"));

    // Resize, then q.
    tmux(&["resize-window", "-t", &name, "-x", "100", "-y", "30"]);
    let s = wait_screen(&name, "redraw at 100x30", |s| {
        s.lines().count() <= 30 && s.contains("gospy top") && s.contains("q quit")
    });
    assert!(
        s.lines().all(|l| l.chars().count() <= 100),
        "lines wider than the window:\n{s}"
    );
    assert!(worker_row(&s, "(").is_some(), "rows after resize:\n{s}");
    tmux(&["send-keys", "-t", &name, "q"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gospy did not exit on q; screen:\n{}",
            screen(&name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(50));
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0", "gospy exit code");
    // The terminal is back to normal (alternate screen left).
    let s = screen(&name);
    assert!(!s.contains("COUNT"), "alternate screen not left:\n{s}");
    assert!(fx.is_running(), "the fixture must keep running");
    assert_eq!(tracer_pid(fx.pid), "0", "the fixture must not stay traced");
}

/// The target exits while the view runs: the view shows the error and keeps
/// going; Ctrl-C then quits with the terminal restored.
#[test]
fn top_tui_target_exits_then_ctrl_c() {
    if !require_tmux() {
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let exit_file = work.path().join("exit");
    let name = format!("gospy-tui-exit-{}-{}", std::process::id(), fx.pid);
    let cmd = format!(
        "{} top --pid {} --interval 0.3; echo $? > {}; sleep 600",
        gospy_bin().display(),
        fx.pid,
        exit_file.display()
    );
    let _guard = Session::start(&name, 120, 40, &cmd);
    wait_screen(&name, "first screen", |s| worker_row(s, "").is_some());
    fx.kill();
    wait_screen(&name, "error line", |s| s.contains("error:"));
    tmux(&["send-keys", "-t", &name, "C-c"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gospy did not exit on Ctrl-C; screen:\n{}",
            screen(&name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    assert!(
        !screen(&name).contains("COUNT"),
        "alternate screen not left"
    );
}

#[test]
fn top_tui_go1_22() {
    run("1.22");
}

#[test]
fn top_tui_go1_27() {
    run("1.27");
}

/// The terminal goes away (tmux session killed: its shell gets SIGHUP, the
/// view does not, and its tty reads fail from then on): the view ends
/// within seconds instead of spinning, and the target runs on, untraced.
#[test]
fn top_tui_terminal_hangup_ends_it() {
    if !require_tmux() {
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("pid");
    let name = format!("gospy-tui-hup-{}-{}", std::process::id(), fx.pid);
    // `exec`: the shell's pid becomes the view's.
    let cmd = format!(
        "echo $$ > {}; exec {} top --pid {} --interval 0.3",
        pid_file.display(),
        gospy_bin().display(),
        fx.pid
    );
    let session = Session::start(&name, 120, 40, &cmd);
    wait_screen(&name, "first screen", |s| worker_row(s, "").is_some());
    let view: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let is_view = || {
        std::fs::read(format!("/proc/{view}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("gospy"))
    };
    assert!(is_view(), "the view is not running");
    drop(session);
    let start = Instant::now();
    while is_view() {
        if start.elapsed() > Duration::from_secs(10) {
            // Ours: end it before failing.
            unsafe { libc::kill(view as i32, libc::SIGKILL) };
            panic!("the view kept running after its terminal went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(fx.is_running(), "the fixture must keep running");
    assert_eq!(tracer_pid(fx.pid), "0", "the fixture must not stay traced");
}
