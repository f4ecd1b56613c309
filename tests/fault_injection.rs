//! Fault injection: `gospy capture` of a target with many parked goroutines
//! is killed (SIGKILL, SIGINT, SIGTERM) at random moments; after every trial
//! the target must run on: no thread stopped (`t`/`T`), `TracerPid: 0` on every
//! thread, and its heartbeat (a counter it rewrites every 10 ms) advancing.
//!
//! gospy installs no signal handler: SIGINT and SIGTERM take their default
//! action (terminate), exactly like SIGKILL, and the kernel detaches the
//! tracees of a dying tracer (`exit_ptrace`). Threads were stopped with
//! `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, so no `SIGSTOP` is left behind. This
//! test checks both: a signalled gospy dies *by that signal* (no handler ran),
//! and the target is never left stopped or traced.
//!
//! Half of the kill moments are uniform over the whole capture (loading the
//! binary, the pause, compression, writing), half uniform over the pause
//! window itself (measured by watching the target's TracerPid during
//! calibration captures), where a kill matters most.
//!
//! Environment:
//! * `GOSPY_FAULT_TRIALS` (default 200): number of trials.
//! * `GOSPY_FAULT_GOROUTINES` (default 100000): goroutines in the target.
//! * `GOSPY_FAULT_BIG_TRIALS` (default: all of the trials): trials
//!   against the full-size target; the others use a tenth of the goroutines.
//! * `GOSPY_FAULT_SEED`: seed of the kill schedule (printed).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: a reproducible kill schedule.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi).
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros().max(1) as u64;
        lo + Duration::from_micros(self.next() % span)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// State letters and TracerPid of every thread of `pid`.
fn thread_states(pid: u32) -> Vec<(i32, char, i32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(tid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(ent.path().join("status")) else {
            continue; // exited meanwhile
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let state = field("State:").chars().next().unwrap_or('?');
        let tracer = field("TracerPid:").parse().unwrap_or(-1);
        out.push((tid, state, tracer));
    }
    out
}

/// Process state letter from /proc/PID/stat (after the command name).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

fn heartbeat(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("heartbeat"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the heartbeat advances within `timeout`.
fn heartbeat_advances(dir: &Path, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let first = loop {
        if let Some(v) = heartbeat(dir) {
            break v;
        }
        if start.elapsed() > timeout {
            return Err("heartbeat file unreadable".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    loop {
        if heartbeat(dir).is_some_and(|v| v > first) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("heartbeat stuck at {first} for {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every check of "the target runs normally"; Err describes what is wrong.
/// The states are re-read for up to 100 ms: the kernel wakes the former
/// tracees while the tracer exits, and /proc may lag a scheduler tick.
fn check_target(pid: u32, dir: &Path) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match check_states(pid) {
            Ok(()) => break,
            Err(e) if start.elapsed() > Duration::from_millis(100) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    heartbeat_advances(dir, Duration::from_secs(3))
}

/// Process and thread states: running or sleeping, untraced.
fn check_states(pid: u32) -> Result<(), String> {
    match proc_state(pid) {
        None => return Err("target is gone".into()),
        Some(c @ ('t' | 'T' | 'Z' | 'X')) => return Err(format!("target state {c}")),
        Some(_) => {}
    }
    for (tid, state, tracer) in thread_states(pid) {
        if matches!(state, 't' | 'T') {
            return Err(format!("thread {tid} is stopped (state {state})"));
        }
        if tracer != 0 {
            return Err(format!("thread {tid} is traced by {tracer}"));
        }
    }
    Ok(())
}

fn capture_cmd(pid: u32, out: &Path) -> Command {
    let mut c = Command::new(gospy_bin());
    c.args(["capture", "--pid", &pid.to_string(), "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// A full capture, timed; while it runs a watcher samples the target's
/// TracerPid to find when (after spawning gospy) the pause starts and ends.
fn calibrate(pid: u32, out: &Path) -> (Duration, Option<(Duration, Duration)>) {
    let start = Instant::now();
    let child = capture_cmd(pid, out).spawn().expect("spawning gospy");
    let mut first_traced = None;
    let mut last_traced = None;
    let status_path = format!("/proc/{pid}/status");
    let mut child = child;
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for gospy") {
            break st;
        }
        let traced = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("TracerPid:"))
                    .and_then(|v| v.trim().parse::<i32>().ok())
            })
            .is_some_and(|t| t != 0);
        if traced {
            let t = start.elapsed();
            first_traced.get_or_insert(t);
            last_traced = Some(t);
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let total = start.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "calibration capture failed: {status}\n{stderr}"
    );
    eprintln!("calibration: {}", stderr.trim());
    (total, first_traced.zip(last_traced))
}

/// Outcome of a series of trials against one target.
#[derive(Default)]
struct Tally {
    trials: usize,
    killed: usize,
    finished: usize,
    in_pause: usize,
    failures: Vec<String>,
}

/// `trials` kills of `gospy capture` against a fresh target with
/// `goroutines` parked goroutines.
fn run_trials(bin: &Path, goroutines: usize, trials: usize, rng: &mut Rng, tally: &mut Tally) {
    let g = goroutines.to_string();
    let fx = Fixture::start_with_args(bin, &[&g], &[]);
    let pid = fx.pid;
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");

    // Calibrate: the duration of a whole capture, and the pause window.
    let mut durations = Vec::new();
    let mut window = None;
    for _ in 0..2 {
        let (d, w) = calibrate(pid, &out);
        durations.push(d);
        window = window.or(w);
        check_target(pid, fx.dir.path()).expect("target after a normal capture");
    }
    let full = durations.iter().max().copied().unwrap();
    // The watcher samples every 200 µs: widen the window a little.
    let (pause_lo, pause_hi) = window
        .map(|(a, b)| {
            (
                a.saturating_sub(Duration::from_millis(2)),
                b + Duration::from_millis(2),
            )
        })
        .unwrap_or((Duration::ZERO, full));
    eprintln!(
        "fault injection: target pid {pid} with {goroutines} goroutines; a capture takes {full:?}, \
         the target is traced from {pause_lo:?} to {pause_hi:?} after spawning gospy"
    );

    let signals = [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
    ];
    for i in 0..trials {
        tally.trials += 1;
        let (sig, sig_name) = signals[i % 3];
        let delay = if i % 2 == 0 {
            rng.between(Duration::ZERO, full)
        } else {
            rng.between(pause_lo, pause_hi)
        };
        if delay >= pause_lo && delay <= pause_hi {
            tally.in_pause += 1;
        }
        let what = format!("{goroutines} goroutines, trial {i}: {sig_name} after {delay:?}");
        let _ = std::fs::remove_file(&out);
        let mut child = capture_cmd(pid, &out)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning gospy");
        std::thread::sleep(delay);
        // SAFETY: plain kill(2) of our own child; it is not reaped yet, so
        // its pid cannot have been reused.
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let status = child.wait().expect("waiting for gospy");
        match status.signal() {
            Some(s) if s == sig => tally.killed += 1,
            None if status.success() => tally.finished += 1,
            _ => tally.failures.push(format!(
                "{what}: gospy ended with {status}, neither by the signal (default action) \
                 nor successfully"
            )),
        }
        if let Err(e) = check_target(pid, fx.dir.path()) {
            tally.failures.push(format!("{what} (gospy {status}): {e}"));
            if proc_state(pid).is_none() {
                break;
            }
        }
        // Never a torn output: the snapshot is written to a temporary name
        // and renamed, so it is either absent or complete.
        if out.exists() {
            if let Err(e) = gospy::snapshot::SnapshotFile::open(&out) {
                tally
                    .failures
                    .push(format!("{what}: output exists but does not open: {e}"));
            }
        }
    }
    // Temporary files of killed writers may remain (never under the output
    // name); the directory is removed with `work`.
}

#[test]
fn gospy_killed_at_random_moments_never_harms_the_target() {
    let Some(bin) = try_build_fixture("many", "1.27", false, "") else {
        return;
    };
    let trials = env_usize("GOSPY_FAULT_TRIALS", 200);
    let goroutines = env_usize("GOSPY_FAULT_GOROUTINES", 100_000);
    let seed = std::env::var("GOSPY_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("fault injection: seed {seed} (GOSPY_FAULT_SEED to repeat)");
    let start = Instant::now();
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    // A capture of 100k goroutines takes about a second (most of it paused),
    // so a quarter of the trials run against the full-size target and the
    // rest against one with a tenth of the goroutines: the same code paths,
    // a shorter pause, and the whole test within a few minutes.
    let big = env_usize("GOSPY_FAULT_BIG_TRIALS", trials).min(trials);
    run_trials(&bin, goroutines, big, &mut rng, &mut tally);
    if trials > big {
        let small = (goroutines / 10).max(100);
        run_trials(&bin, small, trials - big, &mut rng, &mut tally);
    }
    report(&format!(
        "fault injection: {} trials, {} failures ({} killed by the signal, {} finished first; \
         {} kill moments inside the pause window; {big} trials with {goroutines} goroutines; {:.1?})",
        tally.trials,
        tally.failures.len(),
        tally.killed,
        tally.finished,
        tally.in_pause,
        start.elapsed()
    ));
    assert!(
        tally.failures.is_empty(),
        "failures:\n{}",
        tally.failures.join("\n")
    );
}

/// SIGINT and SIGTERM must take their default action in gospy: it installs
/// no handler that could delay the resumption of the target. Checked directly
/// in /proc: SigCgt of a running gospy process has neither bit set.
#[test]
fn gospy_catches_no_termination_signal() {
    let Some(bin) = try_build_fixture("many", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start_with_args(&bin, &["20000"], &[]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let mut child = capture_cmd(fx.pid, &out).spawn().unwrap();
    let mut checked = 0;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            if let Some(hex) = status.lines().find_map(|l| l.strip_prefix("SigCgt:")) {
                let caught = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
                for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    assert_eq!(
                        caught & (1 << (sig - 1)),
                        0,
                        "gospy catches signal {sig} (SigCgt {hex})"
                    );
                }
                checked += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = child.wait().unwrap();
    assert!(st.success(), "capture failed: {st}");
    assert!(checked > 0, "gospy exited before its signal mask was read");
    check_target(fx.pid, fx.dir.path()).unwrap();
}
