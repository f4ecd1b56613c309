//! Stopping every thread of a process with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`,
//! and the guard that resumes them. See the module docs of `process` for the
//! safety rules this implements.

use super::error::{io_error, proc_path, task_path, ProcessError, Result};
use super::handle::{list_tasks, read_monotonic_ns, Process};
use super::procfs;
use crate::model::{Regs, ThreadInfo};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// How [`Process::pause_with`] behaves.
#[derive(Debug, Clone)]
pub struct PauseOptions {
    /// How long to wait, per round, for interrupted threads to report their
    /// stop. A thread in uninterruptible sleep (state D) stops only when its
    /// system call finishes; after this timeout it is reported in
    /// [`PauseGuard::warnings`] and captured without registers.
    pub stop_timeout: Duration,
    /// Cap on "re-list `/proc/PID/task` and seize new threads" rounds, for a
    /// target that creates threads faster than we can stop them.
    pub max_rounds: usize,
}

impl Default for PauseOptions {
    fn default() -> Self {
        PauseOptions {
            stop_timeout: Duration::from_millis(500),
            max_rounds: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TState {
    /// Seized, not yet interrupted: still running.
    Seized,
    /// Interrupt sent, stop not yet seen.
    Interrupted,
    /// In a ptrace stop.
    Stopped,
    /// Detached again (running).
    Detached,
    /// Exited and reaped, or no longer ours: nothing to do.
    Gone,
    /// Dead or dying but not reaped yet (we are its tracer, so we reap it).
    Dying,
}

#[derive(Debug)]
struct Tracee {
    tid: i32,
    state: TState,
    /// Signal of a signal-delivery-stop, to re-inject on detach; 0 if the
    /// stop was our interrupt, a group-stop or another event.
    inject: i32,
    info: ThreadInfo,
}

/// Every thread of a process, stopped. Dropping the guard (or
/// [`PauseGuard::resume`]) detaches every seized thread, which resumes it.
///
/// `!Send`: ptrace requests are only accepted from the thread that seized,
/// so the guard must be dropped on the thread that created it.
pub struct PauseGuard {
    pid: i32,
    tracees: Vec<Tracee>,
    /// Threads we could not seize because they are zombies.
    zombies: Vec<ThreadInfo>,
    threads: Vec<ThreadInfo>,
    warnings: Vec<String>,
    /// Some thread was not stopped (straggler, thread set never stable).
    incomplete: bool,
    signal_stops: Vec<(i32, i32)>,
    first_stop: Option<Instant>,
    paused_at: Instant,
    paused_mono_ns: u64,
    released: Option<Duration>,
    /// `MutexGuard` is `!Send` but `Sync`: the guard may be shared by
    /// reference with reader threads, but never moved to another thread.
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl std::fmt::Debug for PauseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PauseGuard")
            .field("pid", &self.pid)
            .field("threads", &self.threads.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Process {
    /// Stop every thread. See [`PauseOptions`] and the module docs.
    pub fn pause(&self) -> Result<PauseGuard> {
        self.pause_with(&PauseOptions::default())
    }

    /// [`Process::pause`] with explicit options.
    pub fn pause_with(&self, opts: &PauseOptions) -> Result<PauseGuard> {
        pause(self, opts, None)
    }

    /// [`Process::pause`], re-checking `marks` (see
    /// [`ThreadMarks::recheck`](super::quiet::ThreadMarks::recheck)) last before
    /// the first thread is seized.
    pub fn pause_marked(&self, marks: &mut super::quiet::ThreadMarks) -> Result<PauseGuard> {
        pause(self, &PauseOptions::default(), Some(marks))
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook run after seizing and before interrupting a round's threads.
    pub(super) static BEFORE_INTERRUPT: std::cell::Cell<Option<fn(i32)>> =
        const { std::cell::Cell::new(None) };
}

pub(super) fn pause(
    p: &Process,
    opts: &PauseOptions,
    marks: Option<&mut super::quiet::ThreadMarks>,
) -> Result<PauseGuard> {
    let pid = p.pid;
    // Everything that parses /proc happens here, before the first stop.
    let status = std::fs::read_to_string(proc_path(pid, "status"))
        .map_err(|e| io_error(pid, &format!("reading /proc/{pid}/status"), e))?;
    let st = procfs::parse_status(&status);
    if matches!(st.state, Some('Z') | Some('X')) {
        return Err(ProcessError::Zombie { pid });
    }
    if let Some(tracer) = st.tracer_pid.filter(|&t| t != 0) {
        return Err(already_traced(pid, tracer));
    }
    let tids = p.threads()?;
    let mut pre: HashMap<i32, ThreadInfo> = tids
        .iter()
        .filter_map(|&t| p.thread_info(t).ok().map(|i| (t, i)))
        .collect();

    let mut g = PauseGuard {
        pid,
        tracees: Vec::with_capacity(tids.len() * 2),
        zombies: Vec::new(),
        threads: Vec::new(),
        warnings: Vec::new(),
        incomplete: false,
        signal_stops: Vec::new(),
        first_stop: None,
        paused_at: Instant::now(),
        paused_mono_ns: 0,
        released: None,
        _not_send: PhantomData,
    };
    let mut known: HashSet<i32> = HashSet::with_capacity(tids.len() * 2);
    let mut new_tids = tids;
    let mut round = 0;
    let mut marks = marks;
    while !new_tids.is_empty() {
        round += 1;
        // Seize the round's threads (nothing stops yet)...
        let first_new = g.tracees.len();
        for &tid in &new_tids {
            known.insert(tid);
            let info = if let Some(info) = pre.remove(&tid) {
                info
            } else {
                // A thread created during the pause (rare): its name and
                // state are read now, while it still runs.
                match p.thread_info(tid) {
                    Ok(info) => info,
                    Err(_) => continue, // already gone
                }
            };
            match ptrace::seize(Pid::from_raw(tid), ptrace::Options::empty()) {
                Ok(()) => g.tracees.push(Tracee {
                    tid,
                    state: TState::Seized,
                    inject: 0,
                    info,
                }),
                Err(Errno::ESRCH) => {} // exited meanwhile
                Err(Errno::EPERM) => seize_eperm(pid, tid, info, &mut g)?,
                Err(errno) => {
                    return Err(ProcessError::Sys {
                        pid,
                        what: format!("PTRACE_SEIZE of thread {tid}"),
                        errno,
                    })
                }
            }
        }
        #[cfg(test)]
        if let Some(hook) = BEFORE_INTERRUPT.with(|h| h.get()) {
            hook(pid);
        }
        // (Seizing stops nothing: the marks are re-checked last before the
        // first interrupt.)
        if let Some(m) = marks.take() {
            m.recheck();
        }
        // ...then interrupt them all at once, so they stop close together.
        for t in &mut g.tracees[first_new..] {
            if g.first_stop.is_none() {
                g.first_stop = Some(Instant::now());
            }
            t.state = match ptrace::interrupt(Pid::from_raw(t.tid)) {
                Ok(()) => TState::Interrupted,
                Err(_) => TState::Dying,
            };
        }
        g.wait_for_stops(Instant::now() + opts.stop_timeout);

        // Threads created before their creator stopped are not traced: re-list
        // until a listing taken with everything stopped shows nothing new.
        let listing = match list_tasks(pid) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProcessError::Exited {
                    pid,
                    what: "being paused",
                })
            }
            Err(e) => return Err(io_error(pid, &format!("listing /proc/{pid}/task"), e)),
        };
        new_tids = listing.into_iter().filter(|t| !known.contains(t)).collect();
        if !new_tids.is_empty() && round >= opts.max_rounds {
            g.incomplete = true;
            g.warnings.push(format!(
                "thread set still changing after {round} rounds; {} new thread(s) not stopped",
                new_tids.len()
            ));
            break;
        }
    }

    if !g
        .tracees
        .iter()
        .any(|t| matches!(t.state, TState::Stopped | TState::Interrupted))
    {
        return Err(ProcessError::Exited {
            pid,
            what: "being paused",
        });
    }

    // Registers, then the thread list (gone threads dropped, sorted by tid).
    let mut group_stops = 0;
    for t in &mut g.tracees {
        match t.state {
            TState::Stopped => match ptrace::getregs(Pid::from_raw(t.tid)) {
                Ok(r) => t.info.regs = Some(regs_from(&r)),
                Err(e) => g
                    .warnings
                    .push(format!("thread {}: cannot read registers: {e}", t.tid)),
            },
            TState::Interrupted => {
                g.incomplete = true;
                g.warnings.push(format!(
                    "thread {} (state {}) did not stop within {:?}; captured without registers",
                    t.tid, t.info.state, opts.stop_timeout
                ))
            }
            _ => {}
        }
        if t.state == TState::Stopped && t.inject == 0 && t.info.state == 'T' {
            group_stops += 1;
        }
    }
    if group_stops > 0 {
        g.warnings.push(
            "the process was stopped by job control (SIGSTOP/SIGTSTP); it stays stopped after gospy detaches"
                .to_string(),
        );
    }
    let mut threads: Vec<ThreadInfo> = g
        .tracees
        .iter()
        .filter(|t| matches!(t.state, TState::Stopped | TState::Interrupted))
        .map(|t| t.info.clone())
        .chain(g.zombies.iter().cloned())
        .collect();
    threads.sort_by_key(|t| t.tid);
    g.threads = threads;
    g.paused_at = Instant::now();
    g.paused_mono_ns = read_monotonic_ns();
    Ok(g)
}

/// PTRACE_SEIZE failed with EPERM: a zombie thread (skip it), another
/// tracer, or missing privileges.
fn seize_eperm(pid: i32, tid: i32, mut info: ThreadInfo, g: &mut PauseGuard) -> Result<()> {
    let st = std::fs::read_to_string(task_path(pid, tid, "status"))
        .map(|s| procfs::parse_status(&s))
        .unwrap_or_default();
    match (st.state, st.tracer_pid) {
        (Some(s @ ('Z' | 'X')), _) => {
            info.state = s;
            g.zombies.push(info);
            Ok(())
        }
        (None, _) => Ok(()), // the thread is gone
        (_, Some(tracer)) if tracer != 0 => Err(already_traced(pid, tracer)),
        _ => Err(ProcessError::PermissionDenied {
            pid,
            what: format!("stopping thread {tid} (PTRACE_SEIZE)"),
            hint: super::error::denied_hint(pid, true),
        }),
    }
}

/// `tracer` is the `TracerPid` of a thread: the tracing *thread*; name the
/// process it belongs to.
fn already_traced(pid: i32, tracer: i32) -> ProcessError {
    let tgid = std::fs::read_to_string(format!("/proc/{tracer}/status"))
        .ok()
        .and_then(|s| procfs::parse_status(&s).tgid)
        .unwrap_or(tracer);
    let mut name = std::fs::read(format!("/proc/{tgid}/comm"))
        .map(|c| procfs::comm_name(&c))
        .unwrap_or_else(|_| "unknown".to_string());
    if std::path::Path::new(&format!("/proc/self/task/{tracer}")).exists() {
        name.push_str(", this gospy process: it is already paused");
    }
    ProcessError::AlreadyTraced {
        pid,
        tracer_pid: tgid,
        tracer_name: name,
    }
}

/// What `waitpid` said about one tracee.
enum Waited {
    /// Nothing to report yet (WNOHANG).
    Running,
    Stopped {
        inject: i32,
    },
    Gone,
}

/// `waitpid(tid, __WALL [| WNOHANG])`, decoded by hand rather than with
/// `nix::sys::wait`, which rejects real-time stop signals.
fn wait_tid(tid: i32) -> Waited {
    let flags = libc::__WALL | libc::WNOHANG;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid only writes the status integer we pass.
        let r = unsafe { libc::waitpid(tid, &mut status, flags) };
        if r == 0 {
            return Waited::Running;
        }
        if r < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            // ECHILD: not (or no longer) our tracee.
            return Waited::Gone;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Waited::Gone;
        }
        if libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            let event = status >> 16;
            // Event 0 is a signal-delivery-stop: the signal must be
            // re-injected. PTRACE_EVENT_STOP (our interrupt, or a group-stop
            // with SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU) and other events carry
            // no signal to deliver; SIGTRAP|0x80 is a syscall-stop, which
            // cannot happen without PTRACE_O_TRACESYSGOOD.
            let inject = if event == 0 && sig != (libc::SIGTRAP | 0x80) {
                sig
            } else {
                0
            };
            return Waited::Stopped { inject };
        }
        // WIFCONTINUED is not requested.
        return Waited::Running;
    }
}

/// `PTRACE_DETACH` with a raw signal number (nix only takes `Signal`, which
/// cannot express real-time signals).
fn detach(tid: i32, sig: i32) -> std::result::Result<(), Errno> {
    // SAFETY: PTRACE_DETACH reads no memory of ours; addr is ignored and
    // data is the signal number passed by value.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            sig as libc::c_long as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Poll sleeps: yield a few times (stops usually land within microseconds),
/// then sleep with exponential backoff up to `max`.
fn backoff(iter: &mut u32, max: Duration) {
    *iter += 1;
    if *iter <= 8 {
        std::thread::yield_now();
    } else {
        let us = 10u64 << (*iter - 8).min(16);
        std::thread::sleep(Duration::from_micros(us).min(max));
    }
}

impl PauseGuard {
    /// Collect pending stops (and deaths) until none is pending or `deadline`.
    fn wait_for_stops(&mut self, deadline: Instant) {
        let mut iter = 0;
        loop {
            let mut pending = 0;
            for t in &mut self.tracees {
                if !matches!(t.state, TState::Interrupted | TState::Dying) {
                    continue;
                }
                match wait_tid(t.tid) {
                    // A dying thread is reaped on release; don't wait for it.
                    Waited::Running if t.state == TState::Dying => {}
                    Waited::Running => pending += 1,
                    Waited::Gone => t.state = TState::Gone,
                    Waited::Stopped { inject } => {
                        t.inject = inject;
                        if inject != 0 {
                            self.signal_stops.push((t.tid, inject));
                        }
                        if t.state == TState::Dying {
                            // Not expected (its interrupt failed); never keep
                            // such a thread stopped.
                            t.state = match detach(t.tid, inject) {
                                Ok(()) => TState::Detached,
                                Err(_) => TState::Dying,
                            };
                            continue;
                        }
                        t.state = TState::Stopped;
                    }
                }
            }
            if pending == 0 || Instant::now() >= deadline {
                return;
            }
            backoff(&mut iter, Duration::from_millis(1));
        }
    }

    /// Detach everything; idempotent. Returns the stop duration.
    fn release(&mut self) -> Duration {
        if let Some(d) = self.released {
            return d;
        }
        // 1. Resume every stopped thread first, re-injecting signals whose
        //    delivery our stop interrupted.
        for t in &mut self.tracees {
            if t.state == TState::Stopped {
                t.state = match detach(t.tid, t.inject) {
                    Ok(()) => TState::Detached,
                    // Killed while stopped (SIGKILL wakes tracees): reap below.
                    Err(_) => TState::Dying,
                };
            }
        }
        // 2. A seized thread cannot be detached while it runs: interrupt the
        //    ones an error path left uninterrupted, then wait for their stop.
        for t in &mut self.tracees {
            if t.state == TState::Seized {
                t.state = match ptrace::interrupt(Pid::from_raw(t.tid)) {
                    Ok(()) => TState::Interrupted,
                    Err(_) => TState::Dying,
                };
            }
        }
        // 3. Stragglers: detach each as soon as it stops, however long that
        //    takes (never leave one stopped). Dead threads are reaped so the
        //    target's parent can see its exit; give up on those after a while
        //    (the kernel reaps them when we exit).
        let reap_deadline = Instant::now() + Duration::from_secs(2);
        let mut iter = 0;
        loop {
            let mut stragglers = 0;
            let mut dying = 0;
            for t in &mut self.tracees {
                match t.state {
                    TState::Interrupted => match wait_tid(t.tid) {
                        Waited::Running => stragglers += 1,
                        Waited::Gone => t.state = TState::Gone,
                        Waited::Stopped { inject } => {
                            t.inject = inject;
                            t.state = match detach(t.tid, inject) {
                                Ok(()) => TState::Detached,
                                Err(_) => {
                                    dying += 1;
                                    TState::Dying
                                }
                            }
                        }
                    },
                    TState::Dying => match wait_tid(t.tid) {
                        Waited::Gone => t.state = TState::Gone,
                        Waited::Stopped { inject } => {
                            t.inject = inject;
                            t.state = match detach(t.tid, inject) {
                                Ok(()) => TState::Detached,
                                Err(_) => TState::Dying,
                            };
                        }
                        // No news: if it is in fact still stopped (a detach
                        // that failed for an unexpected reason), retry.
                        Waited::Running => match detach(t.tid, t.inject) {
                            Ok(()) => t.state = TState::Detached,
                            Err(_) => dying += 1,
                        },
                    },
                    _ => {}
                }
            }
            if stragglers == 0 && (dying == 0 || Instant::now() >= reap_deadline) {
                break;
            }
            backoff(&mut iter, Duration::from_millis(10));
        }
        let d = self.first_stop.map(|s| s.elapsed()).unwrap_or_default();
        self.released = Some(d);
        d
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Every thread of the paused process, sorted by tid: registers for the
    /// stopped ones (`None` for stragglers and zombie threads) and the state
    /// letter read *before* the pause.
    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    /// When the whole thread set was confirmed stopped.
    pub fn paused_at(&self) -> Instant {
        self.paused_at
    }

    /// `CLOCK_MONOTONIC` (Go's `nanotime()` clock) at [`Self::paused_at`].
    pub fn paused_mono_ns(&self) -> u64 {
        self.paused_mono_ns
    }

    /// Threads that could not be stopped, a pre-existing job-control stop...
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// `(tid, signal)` of threads caught in a signal-delivery-stop; those
    /// signals are re-injected when the thread is detached.
    pub fn signal_stops(&self) -> &[(i32, i32)] {
        &self.signal_stops
    }

    /// True if every thread was stopped (no stragglers, no missed threads).
    pub fn all_stopped(&self) -> bool {
        !self.incomplete
    }

    /// Detach every thread (resuming the target) and return how long the
    /// target was stopped: from the first interrupt to the last detach.
    pub fn resume(mut self) -> Duration {
        self.release()
    }
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        self.release();
    }
}

fn regs_from(r: &libc::user_regs_struct) -> Regs {
    Regs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
        aarch64: None,
    }
}
