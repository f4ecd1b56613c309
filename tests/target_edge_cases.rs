//! `gospy capture` against awkward targets: one that exits or execs during
//! the capture, one whose threads come and go, one already traced, a pid that
//! is not a Go program, a target we may not trace, a zombie, no process at
//! all. Each must end with the documented exit code (3: target problem) and
//! one clear line, never a panic (exit code 101), and leave the target as it
//! was (running, untraced).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TARGET: i32 = 3;

fn run_capture(pid: u32, out: &Path) -> Output {
    gospy([
        "capture",
        "--pid",
        &pid.to_string(),
        "-o",
        out.to_str().unwrap(),
    ])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// No panic, and a failure is one `gospy: error:` line with exit code 3.
fn assert_clean(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(101),
        "{what}: gospy panicked:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{what}: gospy panicked:\n{stderr}"
    );
    assert!(
        out.status.signal().is_none(),
        "{what}: gospy died: {}",
        out.status
    );
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(TARGET), "{what}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("gospy: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{what}: want one error line:\n{stderr}");
    }
}

/// The error line of a failed capture (asserting it failed cleanly).
fn expect_failure(out: &Output, what: &str) -> String {
    assert_clean(out, what);
    assert!(
        !out.status.success(),
        "{what}: capture unexpectedly succeeded"
    );
    text(&out.stderr)
        .lines()
        .find(|l| l.starts_with("gospy: error:"))
        .unwrap()
        .to_string()
}

fn proc_status_field(pid: u32, tid: &str, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// Every thread of `pid` runs (not t/T) and is untraced.
fn assert_running_untraced(pid: u32, what: &str) {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("{what}: target {pid} is gone: {e}"));
    for ent in dir.flatten() {
        let tid = ent.file_name().to_string_lossy().into_owned();
        let Some(state) = proc_status_field(pid, &tid, "State:") else {
            continue;
        };
        // Gone since its state was read (threads come and go here).
        let Some(tracer) = proc_status_field(pid, &tid, "TracerPid:") else {
            continue;
        };
        assert!(
            !state.starts_with('t') && !state.starts_with('T'),
            "{what}: thread {tid} is stopped: {state}"
        );
        assert_eq!(tracer, "0", "{what}: thread {tid} is traced by {tracer}");
    }
}

fn heartbeat(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("heartbeat"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn assert_heartbeat_advances(dir: &Path, what: &str) {
    let start = Instant::now();
    let first = heartbeat(dir);
    while start.elapsed() < Duration::from_secs(3) {
        if heartbeat(dir) > first {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("{what}: heartbeat stuck at {first:?}");
}

fn many() -> Option<std::path::PathBuf> {
    try_build_fixture("many", "1.27", false, "")
}

/// The target dies (SIGKILL, or exits by itself) at moments spread over the
/// capture: gospy either captured it first or says it exited.
#[test]
fn target_exits_during_capture() {
    let Some(bin) = many() else { return };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let mut outcomes = (0, 0);
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80, 150].into_iter().enumerate() {
        let mut fx = Fixture::start_with_args(&bin, &["30000"], &[]);
        let pid = fx.pid;
        let child = Command::new(gospy_bin())
            .args(["capture", "--pid", &pid.to_string(), "-o"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        fx.kill();
        let res = child.wait_with_output().unwrap();
        assert_clean(&res, &format!("kill after {delay_ms}ms (trial {i})"));
        if res.status.success() {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
    }
    // The target exits on its own (os.Exit) shortly after becoming ready.
    for delay in ["1", "5", "20"] {
        let fx = Fixture::start_with_args(&bin, &["30000"], &[("MANY_EXIT_AFTER_MS", delay)]);
        let res = run_capture(fx.pid, &out);
        assert_clean(&res, &format!("exit after {delay}ms"));
        if res.status.success() {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
    }
    report(&format!(
        "target exits during capture: {} captured before the exit, {} failed cleanly",
        outcomes.0, outcomes.1
    ));
}

/// The target execs /bin/sleep during the capture: gospy captured the Go
/// program first, or fails cleanly; the new program runs untraced.
#[test]
fn target_execs_during_capture() {
    let Some(bin) = many() else { return };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    for delay in ["0", "3", "10", "30"] {
        let fx = Fixture::start_with_args(&bin, &["30000"], &[("MANY_EXEC_AFTER_MS", delay)]);
        let res = run_capture(fx.pid, &out);
        assert_clean(&res, &format!("exec after {delay}ms"));
        // Whatever the process is now (the Go program or sleep), it runs.
        std::thread::sleep(Duration::from_millis(60));
        assert_running_untraced(fx.pid, &format!("exec after {delay}ms"));
        let exe = std::fs::read_link(format!("/proc/{}/exe", fx.pid)).unwrap();
        eprintln!(
            "exec after {delay}ms: gospy {}, target now {}",
            res.status,
            exe.display()
        );
    }
}

/// Threads start and end continuously during captures (goroutines that exit
/// while locked to their thread), and one goroutine is running: every
/// capture succeeds, analyzes, and the target runs on.
#[test]
fn threads_come_and_go_during_capture() {
    let Some(bin) = many() else { return };
    let fx = Fixture::start_with_args(
        &bin,
        &["2000"],
        &[("MANY_THREAD_CHURN", "1"), ("MANY_SPIN", "1")],
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let mut threads_seen = std::collections::BTreeSet::new();
    for i in 0..15 {
        let res = run_capture(fx.pid, &out);
        assert_clean(&res, &format!("capture {i}"));
        assert!(res.status.success(), "capture {i}: {}", text(&res.stderr));
        let snap = gospy::snapshot::SnapshotFile::open(&out).unwrap();
        for t in &snap.meta.threads {
            threads_seen.insert(t.tid);
        }
        assert_running_untraced(fx.pid, &format!("capture {i}"));
        let summary = gospy_ok(["analyze", out.to_str().unwrap(), "summary"]);
        assert!(summary.contains("main.parked"), "capture {i}:\n{summary}");
    }
    assert_heartbeat_advances(fx.dir.path(), "after the captures");
    report(&format!(
        "threads come and go: 15 captures, {} distinct threads seen",
        threads_seen.len()
    ));
}

/// Another tracer (strace, or this test process when strace is missing)
/// holds the target: gospy says who, exits 3, and the target is untouched.
#[test]
fn target_already_traced() {
    let Some(bin) = many() else { return };
    let fx = Fixture::start_with_args(&bin, &["100"], &[]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let strace = Command::new("strace")
        .args([
            "-qq",
            "-e",
            "trace=none",
            "-p",
            &fx.pid.to_string(),
            "-o",
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match strace {
        Ok(mut strace) => {
            // Wait until strace has attached.
            let start = Instant::now();
            while proc_status_field(fx.pid, &fx.pid.to_string(), "TracerPid:").as_deref()
                == Some("0")
            {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "strace did not attach"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let res = run_capture(fx.pid, &out);
            let line = expect_failure(&res, "traced by strace");
            assert!(
                line.contains("already traced") && line.contains("strace"),
                "{line}"
            );
            // strace detaches on SIGTERM.
            unsafe { libc::kill(strace.id() as i32, libc::SIGTERM) };
            let _ = strace.wait();
        }
        Err(_) => {
            // This thread traces the target.
            let tid = nix::unistd::Pid::from_raw(fx.pid as i32);
            nix::sys::ptrace::seize(tid, nix::sys::ptrace::Options::empty()).unwrap();
            let res = run_capture(fx.pid, &out);
            let line = expect_failure(&res, "traced by the test");
            assert!(line.contains("already traced"), "{line}");
            nix::sys::ptrace::interrupt(tid).unwrap();
            let _ = nix::sys::wait::waitpid(tid, Some(nix::sys::wait::WaitPidFlag::__WALL));
            nix::sys::ptrace::detach(tid, None).unwrap();
        }
    }
    assert!(!out.exists(), "no snapshot may be written");
    std::thread::sleep(Duration::from_millis(50));
    assert_running_untraced(fx.pid, "after the other tracer left");
    assert_heartbeat_advances(fx.dir.path(), "after the other tracer left");
}

/// A process that is not a Go program: one line naming it.
#[test]
fn not_a_go_program() {
    let mut sleep = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let res = run_capture(sleep.id(), &out);
    let line = expect_failure(&res, "sleep");
    assert!(
        line.contains("not a Go program") && line.contains("sleep"),
        "{line}"
    );
    assert!(!out.exists());
    // sleep is untouched.
    assert_running_untraced(sleep.id(), "sleep");
    let _ = sleep.kill();
    let _ = sleep.wait();
}

/// An unprivileged gospy against a root-owned target: permission denied,
/// with the CAP_SYS_PTRACE / ptrace_scope hint. Needs root (to own the
/// target and switch users) and setpriv or runuser.
#[test]
fn permission_denied_has_a_hint() {
    if unsafe { libc::geteuid() } != 0 {
        report("SKIP: permission test needs root (to run a root-owned target)");
        return;
    }
    let Some(bin) = many() else { return };
    let fx = Fixture::start_with_args(&bin, &["100"], &[]);
    // A copy of gospy that user 65534 may execute, in a directory it may
    // enter, writing into a directory it may write.
    let work = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = work.path().join("gospy");
    std::fs::copy(gospy_bin(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = work.path().join("snap.gss");
    let pid = fx.pid.to_string();
    let args = ["capture", "--pid", &pid, "-o", out.to_str().unwrap()];
    let mut cmd = if Path::new("/usr/bin/setpriv").exists() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(&exe);
        c
    } else {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]);
        c.arg(&exe);
        c
    };
    let res = cmd.args(args).stdin(Stdio::null()).output().unwrap();
    let line = expect_failure(&res, "unprivileged");
    assert!(line.to_lowercase().contains("permission denied"), "{line}");
    assert!(line.contains("CAP_SYS_PTRACE"), "{line}");
    assert!(line.contains("ptrace_scope"), "{line}");
    assert!(!out.exists());
    assert_running_untraced(fx.pid, "after the refused capture");
    assert_heartbeat_advances(fx.dir.path(), "after the refused capture");
}

/// A zombie (exited, not reaped): nothing to capture, said clearly.
#[test]
fn zombie_target() {
    let mut child = Command::new("sh")
        .args(["-c", "exit 0"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        if stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z')
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    let res = run_capture(pid, &out);
    let line = expect_failure(&res, "zombie");
    assert!(line.contains("zombie"), "{line}");
    let _ = child.wait();
}

/// No such process, and a kernel thread (pid 2, kthreadd, when visible).
#[test]
fn no_process_and_kernel_thread() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("snap.gss");
    // A pid above pid_max cannot exist.
    let res = run_capture(4_194_304 + 7, &out);
    let line = expect_failure(&res, "no such pid");
    assert!(line.contains("no such process"), "{line}");
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() == "kthreadd" {
        let res = run_capture(2, &out);
        let line = expect_failure(&res, "kernel thread");
        assert!(line.contains("kernel thread"), "{line}");
    }
}

/// The safety rules in the source: no write to target memory, no signal of
/// gospy's own to the target, no SIGSTOP.
#[test]
fn source_never_writes_target_memory_nor_signals_it() {
    let src = crate_root().join("src");
    let mut offenders = Vec::new();
    let forbidden = [
        "PTRACE_POKE",
        "ptrace::write",
        "process_vm_writev",
        "PTRACE_SETREGS",
        "ptrace::setregs",
        "libc::kill(",
        "libc::tgkill(",
        "signal::kill(",
        "libc::SIGSTOP",
        "Signal::SIGSTOP",
        "libc::SIGCONT",
        "Signal::SIGCONT",
        "libc::PTRACE_ATTACH",
        "ptrace::attach(",
    ];
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for ent in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            // Unit tests may signal their own helper processes.
            if p.file_name().and_then(|n| n.to_str()) == Some("tests.rs") {
                continue;
            }
            let body = std::fs::read_to_string(&p).unwrap();
            let code = body.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                let l = line.trim_start();
                if l.starts_with("//") {
                    continue;
                }
                for f in forbidden {
                    if l.contains(f) {
                        offenders.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "forbidden calls:\n{}",
        offenders.join("\n")
    );
}
