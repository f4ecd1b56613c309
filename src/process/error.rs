//! Errors from live process access, and the `/proc` paths they name.

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
pub(super) fn io_error(pid: i32, what: &str, e: io::Error) -> ProcessError {
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

pub(super) fn proc_path(pid: i32, file: &str) -> PathBuf {
    if file.is_empty() {
        PathBuf::from(format!("/proc/{pid}"))
    } else {
        PathBuf::from(format!("/proc/{pid}/{file}"))
    }
}

pub(super) fn task_path(pid: i32, tid: i32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task/{tid}/{file}"))
}
