//! Linux-only access to a live process: `/proc` metadata, a ptrace pause that
//! stops every thread, and bulk memory reads.
//!
//! # Safety design: never harm the target
//!
//! The target is typically a production Go service, so this module follows a
//! few hard rules:
//!
//! * **Never write target memory.** Reads use `process_vm_readv(2)` and, as a
//!   fallback, `pread(2)` on `/proc/PID/mem` opened read-only. No
//!   `PTRACE_POKE*`, no register writes.
//! * **Never send a signal to the target.** Threads are stopped with
//!   `PTRACE_SEIZE` (which does not stop anything by itself) followed by
//!   `PTRACE_INTERRUPT`, which is a ptrace trap, not a signal: nothing is
//!   queued, no handler runs, `SIGSTOP`/`SIGCONT` are never used. The seize
//!   uses no ptrace options, so clone/exec/exit of the target are not
//!   traced and behave exactly as without gospy.
//! * **Never leave the target stopped.**
//!   - [`PauseGuard`] detaches (`PTRACE_DETACH`, which resumes) every seized
//!     thread in `Drop`, so every return path of the caller and every
//!     unwinding panic resumes the target. [`PauseGuard::resume`] does the
//!     same explicitly and reports how long the target was stopped.
//!   - If gospy dies without running destructors (SIGKILL, the default
//!     action of SIGINT/SIGTERM, `panic = "abort"`, OOM kill...), the kernel
//!     detaches all tracees of the dying tracer (`exit_ptrace`); because the
//!     threads were *seized* (not `PTRACE_ATTACH`ed with its `SIGSTOP`) no
//!     stop is left behind and they simply continue. A test
//!     (`tracer_death_resumes_target`) SIGKILLs/SIGTERMs a tracer process
//!     holding a pause and checks that the target runs again with
//!     `TracerPid: 0`. A signal handler is therefore not needed for safety.
//!   - A thread whose stop is not confirmed within
//!     [`PauseOptions::stop_timeout`] (e.g. one in uninterruptible sleep) is
//!     reported in [`PauseGuard::warnings`] without registers; on release,
//!     all stopped threads are detached *first* (so the straggler can make
//!     progress if it waits on them), then gospy waits for the straggler's
//!     pending stop and detaches it at once. A seized thread cannot be
//!     detached while it runs, so this wait may block gospy, never the
//!     target; killing gospy ends it safely (see above).
//! * **Signals are not lost.** A signal that arrives for a thread between
//!   the seize and the stop is reported to the tracer as a
//!   *signal-delivery-stop* (`waitpid` status with event 0 and `WSTOPSIG` =
//!   the signal). That stop is used as the pause point and the signal is
//!   re-injected as the `PTRACE_DETACH` data, so the target receives it with
//!   its original `siginfo`. Group-stops (the process was, or became,
//!   job-control stopped) and our own interrupt both arrive as
//!   `PTRACE_EVENT_STOP` and inject nothing; the kernel restores a
//!   pre-existing group stop on detach, so a `SIGSTOP`ped target stays
//!   stopped as it was.
//! * **Short pauses.** All `/proc` parsing (thread names and states, status)
//!   happens before the first thread is stopped. Inside the stop only
//!   `/proc/PID/task` is re-listed until the thread set is stable (threads
//!   created meanwhile are seized and stopped too; for those rare late
//!   threads `comm` and `stat` are read just before they are stopped), and
//!   registers are read with one `PTRACE_GETREGS` per thread.
//!
//! Side effects that cannot be avoided by any stopping debugger: a thread
//! blocked in a system call that the kernel does not restart after a stop
//! (e.g. `epoll_wait`) sees `EINTR`, exactly as after `SIGSTOP`/`SIGCONT`.
//! The Go runtime retries on `EINTR` everywhere.
//!
//! Ptrace requests must come from the thread that seized, so [`PauseGuard`]
//! is `!Send`: it is created, used and dropped on one thread. Memory reads
//! ([`LiveMemory`], [`read_ranges`]) have no such restriction and may run in
//! parallel while the target is paused.

mod mem;
mod pause;
mod procfs;
#[cfg(test)]
mod tests;

pub use mem::{read_ranges, LiveMemory, IOV_MAX};
pub use pause::{PauseGuard, PauseOptions};

use crate::model::{MapEntry, ThreadInfo};
use nix::errno::Errno;
use std::io;
use std::path::PathBuf;

/// Errors from live process access. Messages are complete sentences for the
/// user, with a hint where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("pid {pid}: invalid process id")]
    InvalidPid { pid: i32 },
    #[error("pid {pid}: no such process")]
    NoSuchProcess { pid: i32 },
    #[error("pid {pid}: thread {tid} does not exist (it may have exited)")]
    NoSuchThread { pid: i32, tid: i32 },
    #[error(
        "pid {pid}: the process is a zombie (it has exited and waits for its parent to reap it); \
         there is nothing left to inspect"
    )]
    Zombie { pid: i32 },
    #[error("pid {pid} is a thread of process {tgid}; use pid {tgid}")]
    NotAProcess { pid: i32, tgid: i32 },
    #[error("pid {pid}: refusing to inspect gospy's own process")]
    SelfProcess { pid: i32 },
    #[error("pid {pid}: not a user-space process (no executable; a kernel thread?)")]
    KernelThread { pid: i32 },
    #[error("pid {pid}: permission denied {what}; hint: {hint}")]
    PermissionDenied {
        pid: i32,
        what: String,
        hint: String,
    },
    #[error(
        "pid {pid}: already traced by pid {tracer_pid} ({tracer_name}); \
         detach that debugger first (only one tracer is possible at a time)"
    )]
    AlreadyTraced {
        pid: i32,
        tracer_pid: i32,
        tracer_name: String,
    },
    #[error("pid {pid}: the process exited while {what}")]
    Exited { pid: i32, what: &'static str },
    #[error("pid {pid}: {what}: {source}")]
    Io {
        pid: i32,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("pid {pid}: {what}: {errno}")]
    Sys {
        pid: i32,
        what: String,
        errno: Errno,
    },
    #[error("pid {pid}: cannot parse {what}")]
    Parse { pid: i32, what: String },
}

pub type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// The hint printed with permission errors: who may trace, and the Yama
/// setting that restricts it.
pub fn permission_hint() -> String {
    let yama = match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(s) => {
            let v = s.trim().to_string();
            let meaning = match v.as_str() {
                "0" => "classic: any process of the same user",
                "1" => "restricted: only descendants, unless CAP_SYS_PTRACE",
                "2" => "admin-only: CAP_SYS_PTRACE required",
                "3" => "no attach: ptrace disabled until reboot",
                _ => "unknown value",
            };
            format!("/proc/sys/kernel/yama/ptrace_scope is {v} ({meaning})")
        }
        Err(_) => "Yama ptrace_scope is not present".to_string(),
    };
    format!(
        "run gospy as the same user as the target or as root, or give it CAP_SYS_PTRACE \
         (setcap cap_sys_ptrace+ep, or --cap-add=SYS_PTRACE in a container); {yama}"
    )
}

/// Turn an I/O error on a `/proc/PID/...` file into the most useful error.
fn io_error(pid: i32, what: &str, e: io::Error) -> ProcessError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => ProcessError::PermissionDenied {
            pid,
            what: what.to_string(),
            hint: permission_hint(),
        },
        Some(libc::ENOENT) | Some(libc::ESRCH) if !proc_path(pid, "").exists() => {
            ProcessError::NoSuchProcess { pid }
        }
        _ => ProcessError::Io {
            pid,
            what: what.to_string(),
            source: e,
        },
    }
}

fn proc_path(pid: i32, file: &str) -> PathBuf {
    if file.is_empty() {
        PathBuf::from(format!("/proc/{pid}"))
    } else {
        PathBuf::from(format!("/proc/{pid}/{file}"))
    }
}

fn task_path(pid: i32, tid: i32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task/{tid}/{file}"))
}

/// A live process, identified by its pid (thread-group id).
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: i32,
}

impl Process {
    /// Checks that `pid` is an existing, non-zombie user process whose
    /// `/proc` entries we may read, and returns a handle. Touches nothing in
    /// the target.
    pub fn open(pid: i32) -> Result<Process> {
        if pid <= 0 {
            return Err(ProcessError::InvalidPid { pid });
        }
        if pid as u32 == std::process::id() {
            return Err(ProcessError::SelfProcess { pid });
        }
        let status = match std::fs::read_to_string(proc_path(pid, "status")) {
            Ok(s) => s,
            Err(e) => return Err(io_error(pid, &format!("reading /proc/{pid}/status"), e)),
        };
        let st = procfs::parse_status(&status);
        if let Some(tgid) = st.tgid {
            if tgid != pid {
                return Err(ProcessError::NotAProcess { pid, tgid });
            }
        }
        if matches!(st.state, Some('Z') | Some('X')) {
            return Err(ProcessError::Zombie { pid });
        }
        let p = Process { pid };
        // Reading the exe link needs the same ptrace-read permission as
        // everything else we do; it fails with EACCES for another user's
        // process and ENOENT for kernel threads and zombies.
        match std::fs::read_link(proc_path(pid, "exe")) {
            Ok(_) => Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !proc_path(pid, "").exists() {
                    Err(ProcessError::NoSuchProcess { pid })
                } else if matches!(p.state(), Ok('Z') | Ok('X')) {
                    Err(ProcessError::Zombie { pid })
                } else {
                    Err(ProcessError::KernelThread { pid })
                }
            }
            Err(e) => Err(io_error(pid, &format!("reading /proc/{pid}/exe"), e)),
        }
    }

    fn read(&self, file: &str) -> Result<Vec<u8>> {
        std::fs::read(proc_path(self.pid, file))
            .map_err(|e| io_error(self.pid, &format!("reading /proc/{}/{file}", self.pid), e))
    }

    fn read_string(&self, file: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(file)?).into_owned())
    }

    /// Target of `/proc/PID/exe`. Ends in `" (deleted)"` when the binary was
    /// removed or replaced after the process started.
    pub fn exe_path(&self) -> Result<String> {
        std::fs::read_link(proc_path(self.pid, "exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| io_error(self.pid, &format!("reading /proc/{}/exe", self.pid), e))
    }

    /// The executable's bytes, read through the `/proc/PID/exe` magic link:
    /// this works for deleted binaries and for processes in other mount
    /// namespaces (containers), where the path means nothing to us.
    pub fn exe_bytes(&self) -> Result<Vec<u8>> {
        self.read("exe")
    }

    /// The executable's bytes, shared (read once, never copied).
    pub fn exe_shared(&self) -> Result<bytes::Bytes> {
        crate::binary::map_running_exe(&proc_path(self.pid, "exe"))
            .map_err(|e| io_error(self.pid, "reading exe", e))
    }

    /// Parsed `/proc/PID/maps`.
    pub fn maps(&self) -> Result<Vec<MapEntry>> {
        let text = self.read_string("maps")?;
        procfs::parse_maps(&text).ok_or_else(|| ProcessError::Parse {
            pid: self.pid,
            what: format!("/proc/{}/maps", self.pid),
        })
    }

    /// The auxiliary vector as (type, value) pairs, without the final
    /// `AT_NULL`.
    pub fn auxv(&self) -> Result<Vec<(u64, u64)>> {
        Ok(procfs::parse_auxv(&self.read("auxv")?))
    }

    /// Command-line arguments (lossy UTF-8).
    pub fn cmdline(&self) -> Result<Vec<String>> {
        Ok(procfs::parse_cmdline(&self.read("cmdline")?))
    }

    /// Thread ids from `/proc/PID/task`, sorted.
    pub fn threads(&self) -> Result<Vec<i32>> {
        list_tasks(self.pid)
            .map_err(|e| io_error(self.pid, &format!("listing /proc/{}/task", self.pid), e))
    }

    /// Name and state of one thread, without registers.
    pub fn thread_info(&self, tid: i32) -> Result<ThreadInfo> {
        let gone = |e: io::Error| {
            if e.kind() == io::ErrorKind::NotFound {
                ProcessError::NoSuchThread { pid: self.pid, tid }
            } else {
                io_error(
                    self.pid,
                    &format!("reading /proc/{}/task/{tid}", self.pid),
                    e,
                )
            }
        };
        let stat = std::fs::read(task_path(self.pid, tid, "stat")).map_err(gone)?;
        let state = procfs::stat_state(&stat).ok_or_else(|| ProcessError::Parse {
            pid: self.pid,
            what: format!("/proc/{}/task/{tid}/stat", self.pid),
        })?;
        let comm = std::fs::read(task_path(self.pid, tid, "comm")).map_err(gone)?;
        Ok(ThreadInfo {
            tid,
            name: procfs::comm_name(&comm),
            state,
            regs: None,
        })
    }

    /// State letter of the process (its main thread) from `/proc/PID/stat`.
    pub fn state(&self) -> Result<char> {
        let stat = self.read("stat")?;
        procfs::stat_state(&stat).ok_or_else(|| ProcessError::Parse {
            pid: self.pid,
            what: format!("/proc/{}/stat", self.pid),
        })
    }

    /// `TracerPid` of the process (0 when not traced).
    pub fn tracer_pid(&self) -> Result<i32> {
        let st = procfs::parse_status(&self.read_string("status")?);
        Ok(st.tracer_pid.unwrap_or(0))
    }

    /// A reader of this process's memory.
    pub fn memory(&self) -> LiveMemory {
        LiveMemory::new(self.pid)
    }

    /// Stop every thread. See [`PauseOptions`] and the module docs.
    pub fn pause(&self) -> Result<PauseGuard> {
        self.pause_with(&PauseOptions::default())
    }

    /// [`Process::pause`] with explicit options.
    pub fn pause_with(&self, opts: &PauseOptions) -> Result<PauseGuard> {
        pause::pause(self, opts)
    }
}

/// Thread ids in `/proc/PID/task`, sorted.
fn list_tasks(pid: i32) -> io::Result<Vec<i32>> {
    let mut tids = Vec::with_capacity(64);
    for ent in std::fs::read_dir(proc_path(pid, "task"))? {
        let ent = ent?;
        if let Some(tid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock behind Go's `nanotime()`, so
/// it can be compared with timestamps found in runtime structures.
pub fn read_monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec() as u64),
        // CLOCK_MONOTONIC cannot fail on Linux; 0 marks "unknown".
        Err(_) => 0,
    }
}
