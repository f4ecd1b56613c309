//! Tests against real child processes: a small multithreaded Go program
//! (built once per run with whatever Go toolchain is installed; the Go tests
//! are skipped with a message if there is none) and `sleep`.
//!
//! Every process a test starts is owned by a [`Kid`], which SIGKILLs and
//! reaps exactly that pid on drop; the Go fixture also exits by itself when
//! its stdin (a pipe held by the test) closes, so nothing outlives the test
//! binary.

use super::error::{proc_path, task_path};
use super::handle::list_tasks;
use super::*;
use crate::memory::Memory;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const FIXTURE_GO: &str = r#"
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

var buf [1 << 16]byte
var counter uint64
var sigs uint64

// churn keeps creating and destroying OS threads: a goroutine that exits
// while locked to its thread takes the thread with it.
func churn(n int) {
	for {
		done := make(chan bool, n)
		for i := 0; i < n; i++ {
			go func(i int) {
				runtime.LockOSThread()
				atomic.AddUint64(&counter, 1)
				time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
				done <- true
			}(i)
		}
		for i := 0; i < n; i++ {
			<-done
		}
	}
}

func main() {
	for i := range buf {
		buf[i] = byte(i*7 + 3)
	}
	mode := os.Args[1]
	n := 4
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	// Exit when stdin closes: the test is over (or died).
	go func() {
		r := bufio.NewReader(os.Stdin)
		for {
			if _, err := r.ReadByte(); err != nil {
				os.Exit(0)
			}
		}
	}()
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for range ch {
			fmt.Printf("USR1 %d\n", atomic.AddUint64(&sigs, 1))
		}
	}()
	switch mode {
	case "busy":
		for i := 0; i < n; i++ {
			go func() {
				runtime.LockOSThread()
				for {
					atomic.AddUint64(&counter, 1)
				}
			}()
			go func() {
				runtime.LockOSThread()
				for {
					time.Sleep(time.Millisecond)
				}
			}()
		}
	case "churn":
		go churn(n)
	case "exit":
		go churn(4)
		time.AfterFunc(time.Duration(n)*time.Millisecond, func() { os.Exit(0) })
	}
	fmt.Printf("READY %d %d %d %d\n", uintptr(unsafe.Pointer(&buf[0])), len(buf),
		uintptr(unsafe.Pointer(&counter)), uintptr(unsafe.Pointer(&sigs)))
	select {}
}
"#;

/// Path of the built fixture, or None (with a message) without Go.
fn fixture() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(build_fixture).as_deref()
}

fn find_go() -> Option<PathBuf> {
    if let Ok(go) = std::env::var("GOSPY_TEST_GO") {
        return Some(PathBuf::from(go));
    }
    let mut candidates = vec![PathBuf::from("/usr/lib/go-1.19/bin/go")];
    if let Ok(home) = std::env::var("HOME") {
        let cache = Path::new(&home).join(".cache/gospy/toolchains");
        if let Ok(dirs) = std::fs::read_dir(cache) {
            let mut dirs: Vec<PathBuf> =
                dirs.flatten().map(|d| d.path().join("go/bin/go")).collect();
            dirs.sort();
            candidates.extend(dirs);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("go")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn build_fixture() -> Option<PathBuf> {
    let Some(go) = find_go() else {
        eprintln!("no Go toolchain found (set GOSPY_TEST_GO): skipping Go-process tests");
        return None;
    };
    let hash = crc32fast::hash(FIXTURE_GO.as_bytes());
    let dir = std::env::temp_dir().join(format!("gospy-process-tests-{}-{hash:08x}", uid()));
    let bin = dir.join("fixture");
    if bin.is_file() {
        return Some(bin);
    }
    std::fs::create_dir_all(&dir).ok()?;
    let work = dir.join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&work).ok()?;
    std::fs::write(work.join("main.go"), FIXTURE_GO).ok()?;
    let out = Command::new(&go)
        .args(["build", "-o", "fixture", "main.go"])
        .current_dir(&work)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "building the Go fixture with {} failed: {}",
        go.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(work.join("fixture"), &bin).ok()?;
    let _ = std::fs::remove_dir_all(&work);
    Some(bin)
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// A child process this test started; killed (by pid) and reaped on drop.
struct Kid {
    child: Child,
    lines: Receiver<String>,
}

impl Kid {
    fn spawn(mut cmd: Command) -> Kid {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid { child, lines: rx }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Next line containing `prefix`, from `prefix` on, within `timeout`
    /// (the test harness may print other text before it on the same line).
    fn line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(i) = l.find(prefix) {
                        return Some(l[i..].to_string());
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A started Go fixture and the addresses it printed.
struct GoKid {
    kid: Kid,
    buf: u64,
    buf_len: usize,
    counter: u64,
}

fn go_kid(mode: &str, n: u32) -> Option<GoKid> {
    let bin = fixture()?;
    let mut cmd = Command::new(bin);
    cmd.args([mode, &n.to_string()]);
    let kid = Kid::spawn(cmd);
    let ready = kid
        .line("READY", Duration::from_secs(20))
        .expect("fixture READY line");
    let f: Vec<u64> = ready
        .split_whitespace()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    Some(GoKid {
        kid,
        buf: f[0],
        buf_len: f[1] as usize,
        counter: f[2],
    })
}

fn pattern(off: usize) -> u8 {
    (off as u64 * 7 + 3) as u8
}

fn thread_state(pid: i32, tid: i32) -> Option<char> {
    std::fs::read(task_path(pid, tid, "stat"))
        .ok()
        .and_then(|s| procfs::stat_state(&s))
}

fn thread_tracer(pid: i32, tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(task_path(pid, tid, "status")).ok()?;
    procfs::parse_status(&s).tracer_pid
}

/// Poll `f` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every thread runs again: none in tracing stop, no tracer.
fn assert_running(pid: i32) {
    let ok = eventually(Duration::from_secs(5), || {
        let tids = list_tasks(pid).unwrap_or_default();
        !tids.is_empty()
            && tids.iter().all(|&t| {
                thread_state(pid, t) != Some('t') && thread_tracer(pid, t).unwrap_or(0) == 0
            })
    });
    let detail: Vec<_> = list_tasks(pid)
        .unwrap_or_default()
        .iter()
        .map(|&t| (t, thread_state(pid, t), thread_tracer(pid, t)))
        .collect();
    assert!(ok, "target {pid} not running untraced: {detail:?}");
}

fn counter(mem: &LiveMemory, addr: u64) -> u64 {
    mem.u64(addr).expect("read counter")
}

#[test]
fn open_errors() {
    assert!(matches!(
        Process::open(0),
        Err(ProcessError::InvalidPid { .. })
    ));
    assert!(matches!(
        Process::open(-5),
        Err(ProcessError::InvalidPid { .. })
    ));
    assert!(matches!(
        Process::open(i32::MAX),
        Err(ProcessError::NoSuchProcess { .. })
    ));
    let me = std::process::id() as i32;
    assert!(matches!(
        Process::open(me),
        Err(ProcessError::SelfProcess { .. })
    ));
    // A thread id of another process is not a process.
    let sleeper = Kid::spawn({
        let mut c = Command::new("sleep");
        c.arg("30");
        c
    });
    assert!(Process::open(sleeper.pid()).is_ok());
    // A zombie: a child that exited and is not reaped yet.
    let zombie = Kid::spawn(Command::new("true"));
    let zp = zombie.pid();
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read(proc_path(zp, "stat"))
            .ok()
            .and_then(|s| procfs::stat_state(&s))
            == Some('Z')
    }));
    let err = Process::open(zp).unwrap_err();
    assert!(matches!(err, ProcessError::Zombie { .. }), "{err}");
    assert!(err.to_string().contains("zombie"));
    // The hint names Yama when present.
    assert!(permission_hint().contains("CAP_SYS_PTRACE"));
}

#[test]
fn proc_metadata() {
    let Some(g) = go_kid("busy", 2) else { return };
    let p = Process::open(g.kid.pid()).unwrap();
    let exe = p.exe_path().unwrap();
    assert_eq!(Path::new(&exe), fixture().unwrap());
    assert_eq!(
        p.exe_bytes().unwrap(),
        std::fs::read(fixture().unwrap()).unwrap()
    );
    let maps = p.maps().unwrap();
    assert!(maps.iter().any(|m| m.path == exe && m.perms.contains('x')));
    assert!(maps
        .iter()
        .any(|m| m.start <= g.buf && g.buf < m.end && m.perms.starts_with("rw")));
    let auxv = p.auxv().unwrap();
    assert!(auxv.contains(&(libc::AT_PAGESZ, 4096)));
    assert!(auxv.iter().any(|&(k, v)| k == libc::AT_ENTRY && v != 0));
    assert_eq!(
        p.cmdline().unwrap(),
        vec![exe.clone(), "busy".into(), "2".into()]
    );
    let tids = p.threads().unwrap();
    assert!(tids.len() >= 5, "{tids:?}");
    assert_eq!(tids[0], p.pid);
    // A thread id is not a process id.
    assert!(
        matches!(Process::open(tids[1]), Err(ProcessError::NotAProcess { tgid, .. }) if tgid == p.pid)
    );
    let ti = p.thread_info(p.pid).unwrap();
    assert_eq!(ti.name, "fixture");
    assert!(ti.regs.is_none());
    assert!(matches!(
        p.thread_info(i32::MAX),
        Err(ProcessError::NoSuchThread { .. })
    ));
    assert_eq!(p.tracer_pid().unwrap(), 0);
    let now = read_monotonic_ns();
    assert!(now > 0 && read_monotonic_ns() >= now);
}

#[test]
fn deleted_executable() {
    let Some(bin) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("deleted-fixture");
    std::fs::copy(bin, &copy).unwrap();
    let kid = Kid::spawn({
        let mut c = Command::new(&copy);
        c.arg("idle");
        c
    });
    kid.line("READY", Duration::from_secs(20)).unwrap();
    std::fs::remove_file(&copy).unwrap();
    let p = Process::open(kid.pid()).unwrap();
    assert!(p.exe_path().unwrap().ends_with(" (deleted)"));
    assert_eq!(p.exe_bytes().unwrap(), std::fs::read(bin).unwrap());
}

#[test]
fn pause_and_resume_go_process() {
    let Some(g) = go_kid("busy", 3) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    let mem = p.memory();
    // The spinning threads run.
    let c0 = counter(&mem, g.counter);
    assert!(eventually(Duration::from_secs(5), || counter(
        &mem, g.counter
    ) > c0));

    for _ in 0..5 {
        let guard = p.pause().unwrap();
        assert!(guard.all_stopped(), "{:?}", guard.warnings());
        let tids = list_tasks(pid).unwrap();
        let seen: Vec<i32> = guard.threads().iter().map(|t| t.tid).collect();
        assert_eq!(seen, tids, "every thread is in the guard");
        for t in guard.threads() {
            assert_eq!(
                thread_state(pid, t.tid),
                Some('t'),
                "thread {} stopped",
                t.tid
            );
            let r = t.regs.expect("regs");
            assert_ne!(r.rip, 0);
            assert_ne!(r.rsp, 0);
            assert_ne!(r.fs_base, 0, "Go threads have TLS");
            assert!("RSDt".contains(t.state), "pre-stop state {}", t.state);
            assert_eq!(
                thread_tracer(pid, t.tid),
                Some(nix::unistd::gettid().as_raw())
            );
        }
        // Nothing moves while paused.
        let c1 = counter(&mem, g.counter);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(counter(&mem, g.counter), c1);
        assert!(guard.paused_mono_ns() > 0);
        assert!(guard.paused_at() <= Instant::now());
        let d = guard.resume();
        assert!(
            d >= Duration::from_millis(30) && d < Duration::from_secs(5),
            "{d:?}"
        );
        assert_running(pid);
        assert!(eventually(Duration::from_secs(5), || counter(
            &mem, g.counter
        ) > c1));
    }
}

#[test]
fn pause_sleep_and_job_control_stop() {
    let kid = Kid::spawn({
        let mut c = Command::new("sleep");
        c.arg("30");
        c
    });
    let pid = kid.pid();
    let p = Process::open(pid).unwrap();
    assert!(eventually(Duration::from_secs(5), || p.state().ok() == Some('S')));
    let guard = p.pause().unwrap();
    assert_eq!(guard.threads().len(), 1);
    assert_eq!(guard.threads()[0].state, 'S');
    assert_eq!(p.state().unwrap(), 't');
    drop(guard);
    assert_running(pid);
    assert!(eventually(Duration::from_secs(5), || p.state().ok() == Some('S')));

    // A job-control-stopped target stays stopped after the pause.
    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGSTOP).unwrap();
    assert!(eventually(Duration::from_secs(5), || p.state().ok() == Some('T')));
    let guard = p.pause().unwrap();
    assert_eq!(guard.threads()[0].state, 'T');
    assert!(guard.threads()[0].regs.is_some());
    assert!(guard.warnings().iter().any(|w| w.contains("job control")));
    guard.resume();
    assert!(eventually(Duration::from_secs(5), || p.state().ok()
        == Some('T')
        && p.tracer_pid().ok() == Some(0)));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(p.state().unwrap(), 'T');
    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(eventually(Duration::from_secs(5), || p.state().ok() == Some('S')));
}

use nix::unistd::Pid;

#[test]
fn pause_with_threads_churning() {
    let Some(g) = go_kid("churn", 6) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    let mem = p.memory();
    let mut max_threads = 0;
    for _ in 0..30 {
        let guard = p.pause().unwrap();
        assert!(guard.all_stopped(), "{:?}", guard.warnings());
        // With everything stopped the thread set cannot change: every
        // thread is ours and in tracing stop.
        let tids = list_tasks(pid).unwrap();
        let seen: Vec<i32> = guard.threads().iter().map(|t| t.tid).collect();
        assert_eq!(seen, tids);
        for &t in &tids {
            assert_eq!(thread_state(pid, t), Some('t'));
        }
        for t in guard.threads() {
            assert_ne!(t.regs.unwrap().rip, 0);
        }
        max_threads = max_threads.max(tids.len());
        let c = counter(&mem, g.counter);
        drop(guard);
        assert_running(pid);
        assert!(eventually(Duration::from_secs(5), || counter(
            &mem, g.counter
        ) > c));
    }
    assert!(max_threads >= 4, "{max_threads}");
}

#[test]
fn pause_process_that_exits() {
    for ms in [5u32, 20, 50, 100] {
        let Some(g) = go_kid("exit", ms) else { return };
        let pid = g.kid.pid();
        let Ok(p) = Process::open(pid) else { continue };
        let start = Instant::now();
        let mut paused = 0;
        loop {
            match p.pause() {
                Ok(guard) => {
                    paused += 1;
                    drop(guard);
                }
                Err(
                    ProcessError::Exited { .. }
                    | ProcessError::Zombie { .. }
                    | ProcessError::NoSuchProcess { .. },
                ) => break,
                Err(e) => panic!("unexpected error: {e}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "target never exited"
            );
        }
        // Our pauses must not keep the exit from its parent (us).
        let mut kid = g.kid;
        let t = Instant::now();
        let _ = kid.child.wait();
        assert!(t.elapsed() < Duration::from_secs(5));
        eprintln!("exit after {ms} ms: {paused} pauses");
    }
}

#[test]
fn target_killed_while_paused() {
    let Some(g) = go_kid("churn", 4) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    let guard = p.pause().unwrap();
    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let t = Instant::now();
    let d = guard.resume();
    assert!(t.elapsed() < Duration::from_secs(5), "{d:?}");
    let mut kid = g.kid;
    // Our wait may already have reaped it (we are tracer and parent).
    let _ = kid.child.wait();
    assert!(eventually(Duration::from_secs(5), || !proc_path(pid, "").exists()));
}

/// Sends SIGUSR1 to the target after the seize and before the interrupt, so
/// a thread takes the signal in a signal-delivery-stop.
fn send_usr1(pid: i32) {
    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn signal_arriving_during_pause_is_delivered() {
    let Some(g) = go_kid("idle", 0) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    pause::BEFORE_INTERRUPT.with(|h| h.set(Some(send_usr1)));
    let guard = p.pause();
    pause::BEFORE_INTERRUPT.with(|h| h.set(None));
    let guard = guard.unwrap();
    assert!(
        guard
            .signal_stops()
            .iter()
            .any(|&(_, s)| s == libc::SIGUSR1),
        "expected a signal-delivery-stop: {:?}",
        guard.signal_stops()
    );
    assert!(guard.all_stopped());
    // Not delivered while paused...
    assert!(g.kid.line("USR1", Duration::from_millis(100)).is_none());
    guard.resume();
    // ...but right after.
    assert_eq!(
        g.kid.line("USR1", Duration::from_secs(5)).as_deref(),
        Some("USR1 1")
    );
    assert_running(pid);
}

#[test]
fn signals_during_many_pauses_are_not_lost() {
    // Signals sent while threads are being stopped race with the stop; each
    // must arrive exactly once (SIGUSR1 is not queued, so wait for each).
    let Some(g) = go_kid("busy", 2) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    let mut delivery_stops = 0;
    for i in 1..=20 {
        nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1).unwrap();
        let guard = p.pause().unwrap();
        delivery_stops += guard.signal_stops().len();
        drop(guard);
        let want = format!("USR1 {i}");
        assert_eq!(g.kid.line("USR1", Duration::from_secs(5)), Some(want));
    }
    eprintln!("signal-delivery-stops seen: {delivery_stops}");
    assert_running(pid);
}

#[test]
fn read_ranges_known_buffer() {
    let Some(g) = go_kid("idle", 0) else { return };
    let pid = g.kid.pid();
    let (b, n) = (g.buf, g.buf_len);
    let mut ranges = vec![
        (b, 100),
        (0x10, 8), // unmapped
        (b + 1000, 5000),
        (b + n as u64 - 10, 10),
        (b, 0),                     // empty
        (u64::MAX - 4, 16),         // overflows
        (b, 1 << 40),               // too large
        (0xffff_8000_0000_0000, 8), // kernel space
    ];
    // More than IOV_MAX ranges, with bad ones sprinkled in.
    for i in 0..3000u64 {
        if i % 97 == 0 {
            ranges.push((0x1000 + i * 8, 8));
        } else {
            ranges.push((b + (i * 13) % (n as u64 - 64), 1 + (i as usize % 64)));
        }
    }
    let check = |res: &[Result<Vec<u8>, crate::memory::MemError>]| {
        assert_eq!(res.len(), ranges.len());
        for (&(addr, len), r) in ranges.iter().zip(res) {
            let inside = addr >= b
                && addr
                    .checked_add(len as u64)
                    .is_some_and(|e| e <= b + n as u64);
            match r {
                Ok(v) => {
                    assert!(inside, "{addr:#x}+{len} should have failed");
                    assert_eq!(v.len(), len);
                    let off = (addr - b) as usize;
                    assert!(
                        v.iter().enumerate().all(|(i, &x)| x == pattern(off + i)),
                        "{addr:#x}+{len}"
                    );
                }
                Err(e) => {
                    assert!(!inside, "{addr:#x}+{len}: {e}");
                    assert_eq!((e.addr, e.len), (addr, len));
                }
            }
        }
    };
    check(&read_ranges(pid, &ranges));
    // The /proc/PID/mem path gives the same answers.
    let mem = LiveMemory::new(pid);
    mem.force_proc_mem();
    check(&mem.read_ranges(&ranges));
    // Ranges into one buffer.
    let ok: Vec<(u64, usize)> = vec![(b, 16), (0x10, 8), (b + 100, 4)];
    let mut out = vec![0u8; 28];
    let res = LiveMemory::new(pid).read_ranges_into(&ok, &mut out);
    assert!(res[0].is_ok() && res[1].is_err() && res[2].is_ok());
    assert!((0..16).all(|i| out[i] == pattern(i)));
    assert!((0..4).all(|i| out[24 + i] == pattern(100 + i)));
    let res = LiveMemory::new(pid).read_ranges_into(&ok, &mut out[..20]);
    assert!(res[2].is_err());
}

#[test]
fn read_range_straddling_mapping_end() {
    let Some(g) = go_kid("idle", 0) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    let maps = p.maps().unwrap();
    // A readable mapping whose end is not followed by another mapping.
    let m = maps
        .iter()
        .find(|m| m.perms.starts_with('r') && !maps.iter().any(|o| o.start == m.end))
        .expect("an isolated mapping end");
    let mem = p.memory();
    let last = m.end - 8;
    assert!(mem.u64(last).is_ok());
    let res = read_ranges(pid, &[(last, 8), (last, 16), (m.end, 8), (last, 8)]);
    assert!(res[0].is_ok() && res[1].is_err() && res[2].is_err() && res[3].is_ok());
    assert!(mem.read_vec(last, 16).is_err());
}

#[test]
fn live_memory_reads() {
    let Some(g) = go_kid("idle", 0) else { return };
    let mem = LiveMemory::new(g.kid.pid());
    let mut b = [0u8; 32];
    mem.read_exact(g.buf + 5, &mut b).unwrap();
    assert!(b.iter().enumerate().all(|(i, &x)| x == pattern(5 + i)));
    assert_eq!(mem.u8(g.buf + 1).unwrap(), pattern(1));
    assert!(mem.u64(0).is_err());
    assert!(mem.read_exact(u64::MAX - 2, &mut b).is_err());
    let v = mem.read_vec(g.buf, g.buf_len).unwrap();
    assert!(v.iter().enumerate().all(|(i, &x)| x == pattern(i)));
    mem.force_proc_mem();
    assert_eq!(mem.u8(g.buf + 2).unwrap(), pattern(2));
    assert!(mem.u64(0).is_err());
    // Reads of an exited process fail cleanly.
    let pid = g.kid.pid();
    drop(g);
    let e = LiveMemory::new(pid).u64(0x400000).unwrap_err();
    assert!(!e.why.is_empty());
}

// ---- tests with a second tracer process ----

const HELPER_ENV: &str = "GOSPY_PROCESS_TEST_HELPER_TARGET";
const HELPER_MODE: &str = "GOSPY_PROCESS_TEST_HELPER_MODE";

/// Not a test: the body of the helper process the tests below start (this
/// test binary, re-executed to run only this function). It pauses the target
/// named in the environment, says so, and waits to be killed (30 s at most).
#[test]
#[ignore = "helper process for other tests"]
fn helper_pause_and_wait() {
    let Ok(pid) = std::env::var(HELPER_ENV) else {
        return;
    };
    let pid: i32 = pid.parse().unwrap();
    let mut out = std::io::stdout();
    if std::env::var(HELPER_MODE).as_deref() == Ok("noperm") {
        // Running as another user: everything must fail with a clear error.
        let open = Process::open(pid).unwrap_err();
        let pause = Process { pid }.pause().unwrap_err();
        let mem = LiveMemory::new(pid).u64(0x400000).unwrap_err();
        writeln!(out, "GOSPY_HELPER_ERRORS {open} | {pause} | {mem}").unwrap();
        return;
    }
    let guard = Process::open(pid).unwrap().pause().unwrap();
    writeln!(out, "GOSPY_HELPER_PAUSED {}", nix::unistd::gettid()).unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
    drop(guard);
}

/// Start the helper on `target`; returns it and its tracer thread id.
fn spawn_tracer(target: i32) -> (Kid, i32) {
    let name = format!(
        "{}::helper_pause_and_wait",
        module_path!().split_once("::").unwrap().1
    );
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        &name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(HELPER_ENV, target.to_string());
    let helper = Kid::spawn(cmd);
    let line = helper
        .line("GOSPY_HELPER_PAUSED", Duration::from_secs(30))
        .expect("helper paused the target");
    let tid = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    (helper, tid)
}

#[test]
fn pause_already_traced_process() {
    let Some(g) = go_kid("busy", 1) else { return };
    let pid = g.kid.pid();
    let (helper, _tracer) = spawn_tracer(pid);
    let err = Process::open(pid).unwrap().pause().unwrap_err();
    match &err {
        ProcessError::AlreadyTraced { tracer_pid, .. } => assert_eq!(*tracer_pid, helper.pid()),
        e => panic!("unexpected {e}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("already traced by pid {} (gospy-", helper.pid())),
        "{err}"
    );
    drop(helper);
    assert_running(pid);

    // A second pause from this very process is refused too, and the first
    // one still works afterwards.
    let p = Process::open(pid).unwrap();
    let guard = p.pause().unwrap();
    let err = p.pause().unwrap_err();
    assert!(err.to_string().contains("this gospy process"), "{err}");
    assert!(guard.all_stopped());
    drop(guard);
    assert_running(pid);
}

#[test]
fn tracer_death_resumes_target() {
    use nix::sys::signal::{kill, Signal};
    for sig in [Signal::SIGKILL, Signal::SIGTERM, Signal::SIGINT] {
        let Some(g) = go_kid("busy", 2) else { return };
        let pid = g.kid.pid();
        let mem = LiveMemory::new(pid);
        let (mut helper, tracer) = spawn_tracer(pid);
        // Paused by the helper: every thread in tracing stop, traced by it.
        for t in list_tasks(pid).unwrap() {
            assert_eq!(thread_state(pid, t), Some('t'));
            let tp = thread_tracer(pid, t).unwrap();
            assert!(Path::new(&format!("/proc/{}/task/{tp}", helper.pid())).exists());
            assert_eq!(tp, tracer);
        }
        let c = counter(&mem, g.counter);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(counter(&mem, g.counter), c);

        kill(Pid::from_raw(helper.pid()), sig).unwrap();
        let status = helper.child.wait().unwrap();
        assert!(!status.success());
        assert_running(pid);
        assert!(eventually(Duration::from_secs(5), || counter(
            &mem, g.counter
        ) > c));
        assert!(matches!(Process::open(pid).unwrap().state(), Ok('R' | 'S')));
    }
}

#[test]
fn permission_denied_for_other_user() {
    // Needs root (to start a helper as `nobody`) and setpriv.
    if uid() != 0 || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("not root or no setpriv: skipping");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let target = Kid::spawn({
        let mut c = Command::new("sleep");
        c.arg("30");
        c
    });
    let name = format!(
        "{}::helper_pause_and_wait",
        module_path!().split_once("::").unwrap().1
    );
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([
            &name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, target.pid().to_string())
        .env(HELPER_MODE, "noperm");
    let helper = Kid::spawn(cmd);
    let Some(line) = helper.line("GOSPY_HELPER_ERRORS", Duration::from_secs(30)) else {
        eprintln!("helper could not run as nobody (test binary not accessible?): skipping");
        return;
    };
    let parts: Vec<&str> = line.split_once(' ').unwrap().1.split(" | ").collect();
    for p in &parts[..2] {
        assert!(
            p.contains("permission denied") && p.contains("CAP_SYS_PTRACE"),
            "{p}"
        );
    }
    assert!(parts[2].contains("permission denied"), "{}", parts[2]);
    assert_running(target.pid());
}

#[test]
fn pause_is_short() {
    let Some(g) = go_kid("busy", 8) else { return };
    let p = Process::open(g.kid.pid()).unwrap();
    let mut ds = Vec::new();
    let mut n = 0;
    for _ in 0..20 {
        let guard = p.pause().unwrap();
        n = guard.threads().len();
        ds.push(guard.resume());
        std::thread::sleep(Duration::from_millis(5));
    }
    ds.sort();
    eprintln!(
        "pause+resume of {n} threads: min {:?} median {:?} max {:?}",
        ds[0], ds[10], ds[19]
    );
    assert!(ds[10] < Duration::from_millis(500));
    assert_running(p.pid);
}

#[test]
fn stragglers_are_detached_on_release() {
    // With a zero stop timeout some threads may not be confirmed stopped
    // yet: they are reported, and still detached on release.
    let Some(g) = go_kid("busy", 4) else { return };
    let p = Process::open(g.kid.pid()).unwrap();
    let opts = PauseOptions {
        stop_timeout: Duration::ZERO,
        ..PauseOptions::default()
    };
    let mut incomplete = 0;
    for _ in 0..20 {
        let guard = p.pause_with(&opts).unwrap();
        if !guard.all_stopped() {
            incomplete += 1;
            assert!(guard.warnings().iter().any(|w| w.contains("did not stop")));
            assert!(guard.threads().iter().any(|t| t.regs.is_none()));
        }
        drop(guard);
        assert_running(p.pid);
    }
    eprintln!("{incomplete}/20 pauses had stragglers");
}

const VFORK_C: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void *loop(void *a) { for (;;) usleep(1000); return a; }
int main(int argc, char **argv) {
    pthread_t t;
    pthread_create(&t, 0, loop, 0);
    printf("READY\n");
    fflush(stdout);
    int ms = atoi(argv[1]);
    /* The vfork parent waits in uninterruptible (D) sleep until the child
       exits: a thread PTRACE_INTERRUPT cannot stop meanwhile. */
    pid_t child = vfork();
    if (child == 0) {
        usleep(ms * 1000);
        _exit(0);
    }
    waitpid(child, 0, 0);
    printf("VFORK_DONE\n");
    fflush(stdout);
    char b;
    while (read(0, &b, 1) > 0) {}
    return 0;
}
"#;

#[test]
fn thread_in_uninterruptible_sleep() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vfork.c"), VFORK_C).unwrap();
    let bin = dir.path().join("vfork");
    let built = Command::new("cc")
        .arg("-O1")
        .arg("-pthread")
        .arg("-o")
        .arg(&bin)
        .arg(dir.path().join("vfork.c"))
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("no C compiler: skipping");
        return;
    }
    let kid = Kid::spawn({
        let mut c = Command::new(&bin);
        c.arg("1500");
        c
    });
    let pid = kid.pid();
    kid.line("READY", Duration::from_secs(10)).unwrap();
    assert!(eventually(Duration::from_secs(5), || thread_state(
        pid, pid
    ) == Some('D')));
    let p = Process::open(pid).unwrap();
    let opts = PauseOptions {
        stop_timeout: Duration::from_millis(200),
        ..PauseOptions::default()
    };
    let t0 = Instant::now();
    let guard = p.pause_with(&opts).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(!guard.all_stopped());
    assert!(
        guard
            .warnings()
            .iter()
            .any(|w| w.contains(&format!("thread {pid} (state D) did not stop"))),
        "{:?}",
        guard.warnings()
    );
    let main = guard.threads().iter().find(|t| t.tid == pid).unwrap();
    assert!(main.regs.is_none());
    let other = guard.threads().iter().find(|t| t.tid != pid).unwrap();
    assert!(other.regs.is_some());
    let other_tid = other.tid;
    // The stopped thread is resumed at once on release, the straggler as
    // soon as it leaves the D state and reaches its stop.
    let d = guard.resume();
    assert!(d >= Duration::from_millis(900), "{d:?}");
    assert_eq!(thread_tracer(pid, other_tid), Some(0));
    assert_eq!(
        kid.line("VFORK_DONE", Duration::from_secs(5)).as_deref(),
        Some("VFORK_DONE")
    );
    assert_running(pid);
}

fn panic_hook(_pid: i32) {
    panic!("injected panic between seize and interrupt");
}

#[test]
fn panics_resume_the_target() {
    let Some(g) = go_kid("busy", 2) else { return };
    let pid = g.kid.pid();
    let p = Process::open(pid).unwrap();
    // A panic inside pause(), after seizing (threads running, seized, not
    // interrupted): unwinding must detach them.
    pause::BEFORE_INTERRUPT.with(|h| h.set(Some(panic_hook)));
    let r = std::panic::catch_unwind(|| p.pause().map(|g| g.threads().len()));
    pause::BEFORE_INTERRUPT.with(|h| h.set(None));
    assert!(r.is_err());
    assert_running(pid);
    // A panic while holding the guard.
    let r = std::panic::catch_unwind(|| {
        let _guard = p.pause().unwrap();
        assert_eq!(p.state().unwrap(), 't');
        panic!("boom");
    });
    assert!(r.is_err());
    assert_running(pid);
    assert!(p.pause().unwrap().all_stopped());
}

/// The kernel facts `ThreadMarks` relies on, on a sleeping process: marked,
/// seized and interrupted, it was switched in exactly once more (by the
/// stop) and is stopped inside its interrupted system call.
#[test]
fn marks_of_a_sleeping_process_verify() {
    let kid = Kid::spawn({
        let mut c = Command::new("sleep");
        c.arg("30");
        c
    });
    let pid = kid.pid();
    let p = Process::open(pid).unwrap();
    assert!(eventually(Duration::from_secs(5), || p.state().ok() == Some('S')));
    let mut marks = ThreadMarks::take(pid, None).unwrap();
    assert_eq!(marks.len(), 1);
    std::thread::sleep(Duration::from_millis(20));
    let guard = p.pause_marked(&mut marks).unwrap();
    let t = &guard.threads()[0];
    assert!(in_interrupted_syscall(t), "sleep's thread: {:?}", t.regs);
    assert_eq!(marks.verify(guard.threads()), Ok(()));
    drop(guard);
    assert_running(pid);
    // Stopped and resumed since: marks taken before no longer verify.
    let guard = p.pause_marked(&mut marks).unwrap();
    let why = marks.verify(guard.threads()).unwrap_err();
    assert!(why.contains("ran"), "{why}");
}

/// A process that runs: its marks are refused (running now), or do not
/// verify at the pause.
#[test]
fn marks_of_a_running_process_do_not_verify() {
    let kid = Kid::spawn({
        let mut c = Command::new("sh");
        c.args(["-c", "while :; do :; done"]);
        c
    });
    let pid = kid.pid();
    let p = Process::open(pid).unwrap();
    for _ in 0..5 {
        match ThreadMarks::take(pid, None) {
            Err(why) => assert!(why.contains("running"), "{why}"),
            Ok(mut marks) => {
                std::thread::sleep(Duration::from_millis(20));
                let guard = p.pause_marked(&mut marks).unwrap();
                assert!(marks.verify(guard.threads()).is_err());
            }
        }
    }
    assert_running(pid);
}
