//! Driving gospy's full-screen view through tmux (new-session, send-keys,
//! capture-pane), shared by the TUI tests.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("running tmux")
}

pub fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True when the test can go on; false (after saying why) when tmux is
/// missing outside CI. In CI a missing tmux fails the test.
pub fn require_tmux() -> bool {
    if have_tmux() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("tmux is required in CI (scripts/install-test-deps.sh)");
    }
    eprintln!("skipping: tmux not installed (apt-get install tmux)");
    false
}

/// The pane's visible text.
pub fn screen(session: &str) -> String {
    String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", session]).stdout).into_owned()
}

/// Polls the pane until `pred` holds (or panics with the last screen).
pub fn wait_screen(session: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let s = screen(session);
        if pred(&s) {
            return s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("timed out waiting for {what}; screen:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A detached session running `cmd` in a `cols`×`rows` window; dropping it
/// kills the session on every exit path of the test.
pub struct Session(pub String);

impl Session {
    pub fn start(name: &str, cols: u32, rows: u32, cmd: &str) -> Session {
        let s = Session(name.to_string());
        let (x, y) = (cols.to_string(), rows.to_string());
        let o = tmux(&["new-session", "-d", "-s", name, "-x", &x, "-y", &y, cmd]);
        assert!(o.status.success(), "tmux: {o:?}");
        s
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.0]);
    }
}
