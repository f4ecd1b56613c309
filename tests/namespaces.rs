//! Targets in containers, and targets gospy may not inspect.
//!
//! A fixture runs under `unshare --pid --mount --fork --mount-proc`: pid 1
//! of its own PID namespace (its oracle's meta.json says so: the fixture
//! writes `os.Getpid()`), in its own mount namespace. Its executable is a
//! copy deleted once it runs, or a file on a tmpfs mounted inside the
//! namespace only (so the path it runs from does not exist on the host).
//! gospy captures it from the host pid without --bin: the executable is read
//! through /proc/PID/exe, embedded because this machine cannot open it at its
//! path, and the snapshot analyzes from another directory with a dump equal
//! to the runtime's own traceback. NSpid is recorded and shown (capture,
//! summary, and the header of `top --pid`'s full-screen view).
//!
//! Then permission errors: root with CAP_SYS_PTRACE dropped, another uid,
//! a seccomp filter, and a target that made itself not dumpable, each fail
//! in one line naming what is missing, with exit 3. (Yama's ptrace_scope
//! needs a kernel with Yama; its lines are unit-tested in src/process.)
//!
//! Needs root (unshare, setpriv); skipped otherwise, and a missing tool fails
//! under CI=true.

mod common;

use common::dumpcmp::*;
use common::tmux::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GO_VERSIONS: &[&str] = &[
    "1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26", "1.27",
];

fn can_run(tools: &[&str]) -> bool {
    if unsafe { libc::geteuid() } != 0 {
        report("SKIP: namespace and permission tests need root (unshare, setpriv)");
        return false;
    }
    for t in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{t} is missing (util-linux); CI requires it"
            );
            report(&format!("SKIP: {t} is missing (util-linux)"));
            return false;
        }
    }
    true
}

/// How the contained fixture's executable is made unreachable from the host.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Hide {
    /// A copy, deleted once the process runs.
    Deleted,
    /// A copy on a tmpfs mounted inside the namespace only.
    PrivateMount,
}

/// A fixture in its own PID and mount namespaces. Dropping it kills the
/// target (by the host pid found as unshare's child) and then unshare.
struct Contained {
    unshare: Child,
    /// The target's pid in our namespace.
    pid: u32,
    oracle: tempfile::TempDir,
    _work: tempfile::TempDir,
}

impl Contained {
    fn start(built: &Path, hide: Hide) -> Contained {
        let work = tempfile::Builder::new()
            .prefix("gospy-ns-")
            .tempdir()
            .unwrap();
        let oracle = tempfile::Builder::new()
            .prefix("gospy-oracle-")
            .tempdir()
            .unwrap();
        let copy = work.path().join("app");
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--mount", "--fork", "--mount-proc"]);
        match hide {
            Hide::Deleted => {
                copy_exe(built, &copy);
                cmd.arg(&copy).arg(oracle.path());
            }
            Hide::PrivateMount => {
                // unshare makes the new mount namespace private: the tmpfs
                // (and the copy on it) exist inside only.
                cmd.args([
                    "sh",
                    "-c",
                    "mount -t tmpfs gospy-test \"$1\" && cp \"$2\" \"$1/app\" && exec \"$1/app\" \"$3\"",
                    "sh",
                ])
                .arg(work.path())
                .arg(built)
                .arg(oracle.path());
            }
        }
        let log = |n: &str| std::fs::File::create(oracle.path().join(n)).unwrap();
        for var in ["GODEBUG", "GOTRACEBACK", "GOGC", "GOMEMLIMIT"] {
            cmd.env_remove(var);
        }
        cmd.env("GOSPY_FIXTURE_PDEATHSIG", "1")
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"));
        let unshare = cmd.spawn().expect("starting unshare");
        let mut c = Contained {
            pid: 0,
            unshare,
            oracle,
            _work: work,
        };
        let start = Instant::now();
        while !c.oracle.path().join("ready").exists() {
            if let Ok(Some(st)) = c.unshare.try_wait() {
                panic!(
                    "unshare exited ({st}) before the fixture was ready: {}",
                    std::fs::read_to_string(c.oracle.path().join("stderr.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "contained fixture not ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c.pid = child_of(c.unshare.id()).expect("finding unshare's child");
        if hide == Hide::Deleted {
            std::fs::remove_file(&copy).unwrap();
        }
        c
    }

    fn oracle(&self) -> Oracle {
        Oracle::read(self.oracle.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        // Only our own target: the child of the unshare we started (pid 1 of
        // its namespace; killing it ends the namespace), then unshare.
        if self.pid != 0 && child_of(self.unshare.id()) == Some(self.pid) {
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// The one child of `parent` (from /proc/PID/task/PID/children, else a scan
/// of /proc for its PPid).
fn child_of(parent: u32) -> Option<u32> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")) {
        if let Some(p) = s.split_whitespace().next().and_then(|t| t.parse().ok()) {
            return Some(p);
        }
    }
    for ent in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(&parent.to_string()))
        {
            return Some(pid);
        }
    }
    None
}

/// Copy an executable with cp(1): a copy written by this process would hold
/// a writable descriptor that a concurrent test's fork can inherit, and
/// exec'ing the copy then fails with ETXTBSY.
fn copy_exe(from: &Path, to: &Path) {
    let st = Command::new("cp").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp {} {}", from.display(), to.display());
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    gospy(args)
}

/// Capture the contained target from the host; checks the capture's JSON
/// (NSpid, embedded because the path is not reachable) and returns it.
fn capture_contained(c: &Contained, snap: &Path, hide: Hide) -> Value {
    let pid = c.pid.to_string();
    let out = gospy_ok([
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ns: Vec<u64> = v["ns_pid"]
        .as_array()
        .unwrap_or_else(|| panic!("no ns_pid in {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(ns, vec![c.pid as u64, 1], "ns_pid: {v}");
    assert_eq!(v["embedded_binary"], true, "{v}");
    let why = v["embedded_because"].as_str().unwrap_or_default();
    let want = match hide {
        Hide::Deleted => "was deleted",
        Hide::PrivateMount => "does not exist here",
    };
    assert!(
        why.contains(want),
        "embedded_because {why:?}, want {want:?}"
    );
    v
}

fn contained_capture_analyzes_elsewhere(version: &str, hide: Hide) {
    let Some(built) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let c = Contained::start(&built, hide);
    let oracle = c.oracle();
    assert_eq!(oracle.meta.pid, 1, "the fixture is pid 1 in its namespace");
    let work = tempfile::tempdir().unwrap();
    // Two snapshots, as in dump_vs_runtime: the busy goroutine must be
    // caught running in one of them.
    let snaps = [work.path().join("a.gss"), work.path().join("b.gss")];
    for s in &snaps {
        capture_contained(&c, s, hide);
    }
    // The text line says where the pid is and why the binary is embedded.
    let pid = c.pid.to_string();
    let line_snap = work.path().join("line.gss");
    let out = run(&[
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        line_snap.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("(pid 1 in its PID namespace)"), "{err}");
    assert!(err.contains("binary embedded because "), "{err}");
    // A live command reads the executable through /proc/PID/exe too.
    let live = gospy_ok(["summary", "--pid", &pid]);
    assert!(
        live.lines()
            .next()
            .unwrap_or_default()
            .contains("(ns pid 1)"),
        "{live}"
    );
    // The full-screen view's header shows it too.
    if require_tmux() {
        let name = format!("gospy-ns-tui-{}-{pid}", std::process::id());
        let exit_file = work.path().join("tui-exit");
        let cmd = format!(
            "{} top --pid {pid}; echo $? > {}; sleep 600",
            gospy_bin().display(),
            exit_file.display()
        );
        let _tui = Session::start(&name, 120, 30, &cmd);
        wait_screen(&name, "the header with the ns pid", |s| {
            s.contains(&format!("gospy top  pid {pid} (ns pid 1)"))
        });
        tmux(&["send-keys", "-t", &name, "q"]);
        let start = Instant::now();
        while !exit_file.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "top did not exit on q"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // --no-embed-binary: a warning, and analysis then needs --bin.
    let bare = work.path().join("bare.gss");
    let out = run(&[
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        bare.as_os_str(),
        "--no-embed-binary".as_ref(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: binary not embedded"),
        "{}",
        text(&out.stderr)
    );
    // While the target runs, a snapshot without its executable finds it
    // through /proc/PID/exe (build ids checked).
    let info = gospy_ok(["info".as_ref(), bare.as_os_str()]);
    assert!(!info.contains("binary:      embedded"), "{info}");
    let live_exe = gospy_ok(["analyze".as_ref(), bare.as_os_str(), "summary".as_ref()]);
    assert!(live_exe.contains("main.busyLoop"), "{live_exe}");
    let host_pid = c.pid;
    drop(c);

    // Analysis happens elsewhere: the snapshots moved to another directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let moved: Vec<PathBuf> = snaps
        .iter()
        .map(|s| {
            let to = elsewhere.path().join(s.file_name().unwrap());
            std::fs::rename(s, &to).unwrap();
            to
        })
        .collect();
    let busy_id = oracle.meta.busy_goroutine_id;
    let mut chosen = None;
    for s in &moved {
        let d = dump(s, false);
        if d.iter().any(|g| g.id == busy_id && g.status == "running") || s == moved.last().unwrap()
        {
            chosen = Some((s.clone(), d));
            break;
        }
    }
    let (snap, got) = chosen.unwrap();
    let mut problems = Vec::new();
    compare(&oracle, &got, &mut problems);
    assert!(
        problems.is_empty(),
        "go {version} {hide:?}:\n{}",
        problems.join("\n")
    );

    let sum = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    assert!(
        sum.lines()
            .next()
            .unwrap_or_default()
            .contains(&format!("pid: {pid} (ns pid 1)")),
        "{sum}"
    );
    let sj: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "summary".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert_eq!(
        sj["ns_pid"],
        serde_json::json!([host_pid, 1]),
        "{}",
        sj["ns_pid"]
    );
    let info = gospy_ok(["info".as_ref(), snap.as_os_str()]);
    assert!(
        info.contains(&format!("pid {pid} (pid 1 in its PID namespace)")),
        "{info}"
    );
    assert!(info.contains("binary:      embedded"), "{info}");
    let ij: Value = serde_json::from_str(&gospy_ok([
        "info".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert_eq!(ij["ns_pid"], serde_json::json!([host_pid, 1]));
    assert_eq!(ij["embedded_binary"], true);

    // Without the embedded copy: one clear line, exit 4, then --bin works.
    let out = run(&["analyze".as_ref(), bare.as_os_str(), "summary".as_ref()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--bin"), "{err}");
    gospy_ok([
        "analyze".as_ref(),
        bare.as_os_str(),
        "--bin".as_ref(),
        built.as_os_str(),
        "summary".as_ref(),
    ]);
    report(&format!(
        "namespaces: go {version} {hide:?}: pid {pid} = ns pid 1, embedded, {} goroutines match the runtime",
        got.len()
    ));
}

#[test]
fn contained_deleted_executable() {
    if !can_run(&["unshare"]) {
        return;
    }
    for v in GO_VERSIONS {
        contained_capture_analyzes_elsewhere(v, Hide::Deleted);
    }
}

#[test]
fn contained_private_mount() {
    if !can_run(&["unshare"]) {
        return;
    }
    for v in ["1.19", "1.27"] {
        contained_capture_analyzes_elsewhere(v, Hide::PrivateMount);
    }
}

/// A non-contained target's capture records no NSpid and embeds nothing
/// unless asked.
#[test]
fn plain_target_has_no_ns_pid_and_no_embedding() {
    let Some(built) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start(&built);
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("p.gss");
    let pid = fx.pid.to_string();
    let v: Value = serde_json::from_str(&gospy_ok([
        "capture".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    // Inside a container that runs this test, the chain is still one long
    // for a process of our own namespace.
    assert_eq!(v["ns_pid"], serde_json::json!([]), "{v}");
    assert_eq!(v["embedded_binary"], false, "{v}");
    let sj: Value = serde_json::from_str(&gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "summary".as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert!(sj.get("ns_pid").is_none(), "{sj}");
}

/// gospy under a seccomp filter refusing ptrace and process_vm_readv
/// (tests/fixtures/seccomp, as a restrictive container profile): one line
/// naming seccomp, exit 3; --non-blocking, which needs no ptrace, works.
#[test]
fn seccomp_filter_one_line_names_it() {
    let Some(wrapper) = try_build_fixture("seccomp", "1.27", false, "") else {
        return;
    };
    let Some(built) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start(&built);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("s.gss");
    let pid = fx.pid.to_string();
    let run = |extra: &[&str]| {
        Command::new(&wrapper)
            .arg(gospy_bin())
            .args(["capture", "--pid", &pid, "-o", out.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let res = run(&[]);
    let err = text(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("a seccomp filter on gospy refuses ptrace"),
        "{err}"
    );
    assert!(!out.exists());
    let status = std::fs::read_to_string(format!("/proc/{}/status", fx.pid)).unwrap();
    assert!(status.lines().any(|l| l == "TracerPid:\t0"));
    let res = run(&["--non-blocking"]);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert!(out.is_file());
    report(&format!("namespaces: seccomp: {}", err.trim()));
}

/// Runs gospy (a copy anyone may execute) under `setpriv ARGS`, expects
/// exit 3 and one `gospy: error:` line, and returns it. The target keeps
/// running, untraced.
fn refused(fx: &Fixture, setpriv: &[&str], what: &str) -> Vec<String> {
    let work = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = work.path().join("gospy");
    copy_exe(&gospy_bin(), &exe);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = work.path().join("snap.gss");
    let pid = fx.pid.to_string();
    let mut lines = Vec::new();
    for args in [
        vec!["capture", "--pid", &pid, "-o", out.to_str().unwrap()],
        vec!["dump", "--pid", &pid],
    ] {
        let res = Command::new("setpriv")
            .args(setpriv)
            .arg("--")
            .arg(&exe)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = text(&res.stderr);
        assert_eq!(res.status.code(), Some(3), "{what} {args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{what} {args:?}: not one line: {err}"
        );
        assert!(err.starts_with("gospy: error: "), "{err}");
        assert!(res.stdout.is_empty());
        lines.push(err.trim().to_string());
    }
    assert!(!out.exists());
    let status = std::fs::read_to_string(format!("/proc/{}/status", fx.pid)).unwrap();
    assert!(
        status.lines().any(|l| l == "TracerPid:\t0"),
        "{what}: target traced after the refusal"
    );
    lines
}

#[test]
fn without_cap_sys_ptrace_one_line_names_it() {
    if !can_run(&["setpriv"]) {
        return;
    }
    let Some(built) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start(&built);
    for line in refused(
        &fx,
        &["--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"],
        "CAP_SYS_PTRACE dropped",
    ) {
        assert!(line.contains("permission denied"), "{line}");
        assert!(line.contains("gospy lacks CAP_SYS_PTRACE"), "{line}");
        assert!(line.contains("--cap-add SYS_PTRACE"), "{line}");
        report(&format!("namespaces: no CAP_SYS_PTRACE: {line}"));
    }
}

#[test]
fn other_uid_one_line_names_it() {
    if !can_run(&["setpriv"]) {
        return;
    }
    let Some(built) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start(&built);
    for line in refused(
        &fx,
        &["--reuid=65534", "--regid=65534", "--clear-groups"],
        "uid 65534",
    ) {
        assert!(
            line.contains("gospy runs as uid 65534 and the target as uid 0"),
            "{line}"
        );
        assert!(line.contains("run gospy as uid 0"), "{line}");
        report(&format!("namespaces: other uid: {line}"));
    }
}

/// A target that made itself not dumpable (prctl(PR_SET_DUMPABLE, 0), as
/// setuid programs are), run by the same unprivileged uid as gospy: only
/// CAP_SYS_PTRACE may inspect it, and the line says so.
#[test]
fn not_dumpable_one_line_names_it() {
    if !can_run(&["setpriv"]) {
        return;
    }
    let Some(built) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    // The fixture runs as uid 65534 too: its binary and oracle directory
    // must be open to it.
    let work = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = work.path().join("app");
    copy_exe(&built, &exe);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fx = Fixture::start_configured(&exe, &[], &[("GOSPY_FIXTURE_NOT_DUMPABLE", "1")], |cmd| {
        let dir = cmd.get_args().next().expect("ORACLE_DIR").to_owned();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", fx.pid)).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t65534")),
        "{status}"
    );
    for line in refused(
        &fx,
        &["--reuid=65534", "--regid=65534", "--clear-groups"],
        "not dumpable",
    ) {
        assert!(line.contains("the target is not dumpable"), "{line}");
        assert!(line.contains("CAP_SYS_PTRACE"), "{line}");
        report(&format!("namespaces: not dumpable: {line}"));
    }
}
