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
    #[error("pid {pid}: permission denied {what}: {hint}")]
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

/// CAP_SYS_PTRACE's bit in the capability masks of /proc/PID/status.
const CAP_SYS_PTRACE: u32 = 19;

/// What stands between gospy and `pid`, found the way the kernel decides
/// (uids, capabilities, dumpability, Yama, seccomp), as one sentence: the
/// cause first, then the fix. `attach` is true for ptrace and memory reads
/// (which Yama and seccomp filters may refuse), false for /proc files.
pub fn denied_hint(pid: i32, attach: bool) -> String {
    let me = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let them = std::fs::read_to_string(proc_path(pid, "status")).unwrap_or_default();
    let field = |t: &str, k: &str| -> Option<String> {
        t.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let ids = |t: &str, k: &str| -> Vec<u32> {
        field(t, k)
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let caps = |t: &str, k: &str| field(t, k).and_then(|v| u64::from_str_radix(&v, 16).ok());
    let has_cap = caps(&me, "CapEff").is_some_and(|c| c & (1 << CAP_SYS_PTRACE) != 0);
    let yama = yama_note();
    let fix_cap =
        "run gospy as root, or give it CAP_SYS_PTRACE (sudo setcap cap_sys_ptrace+ep gospy; \
                   docker run --cap-add SYS_PTRACE; kubectl debug --profile=general)";
    // The kernel compares our filesystem uid with the target's real,
    // effective and saved uids (same for gids).
    let (my_uid, their_uid) = (ids(&me, "Uid"), ids(&them, "Uid"));
    let (my_gid, their_gid) = (ids(&me, "Gid"), ids(&them, "Gid"));
    let other = |mine: &[u32], theirs: &[u32]| {
        mine.get(3)
            .is_some_and(|m| theirs.iter().take(3).any(|t| t != m))
    };
    if !has_cap && other(&my_uid, &their_uid) {
        let (m, t) = (my_uid[3], their_uid.first().copied().unwrap_or(0));
        return format!(
            "gospy runs as uid {m} and the target as uid {t}, and gospy lacks CAP_SYS_PTRACE: \
             run gospy as uid {t} (sudo -u '#{t}' gospy ...) or as root; {yama}"
        );
    }
    if !has_cap && other(&my_gid, &their_gid) {
        let (m, t) = (my_gid[3], their_gid.first().copied().unwrap_or(0));
        return format!(
            "gospy runs as gid {m} and the target as gid {t} (setgid?), and gospy lacks CAP_SYS_PTRACE: {fix_cap}; {yama}"
        );
    }
    if let (Some(theirs), Some(mine)) = (caps(&them, "CapPrm"), caps(&me, "CapPrm")) {
        if !has_cap && theirs & !mine != 0 {
            return format!(
                "gospy lacks CAP_SYS_PTRACE, which it needs because the target holds capabilities \
                 gospy does not (target CapPrm {theirs:016x}, gospy {mine:016x}): {fix_cap}; {yama}"
            );
        }
    }
    // A process that is not dumpable (setuid, PR_SET_DUMPABLE 0) has the
    // files of its /proc directory owned by root (the directory itself keeps
    // the process's uid).
    let not_dumpable = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(proc_path(pid, "status"))
            .is_ok_and(|m| m.uid() == 0 && their_uid.first().is_some_and(|&u| u != 0))
    };
    if !has_cap && not_dumpable {
        return format!(
            "the target is not dumpable (a setuid program, or prctl(PR_SET_DUMPABLE, 0)) and gospy lacks CAP_SYS_PTRACE: {fix_cap}; {yama}"
        );
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if attach {
        match scope {
            Some(3) => {
                return "kernel.yama.ptrace_scope is 3 (no attach): ptrace and memory reads are refused \
                        to everyone, root included, until reboot; only a kernel core dump can be analyzed"
                    .into()
            }
            Some(2) if !has_cap => {
                return "kernel.yama.ptrace_scope is 2 (admin-only) and gospy lacks CAP_SYS_PTRACE: \
                        run gospy as root or with CAP_SYS_PTRACE"
                    .into()
            }
            Some(1) if !has_cap => {
                return "kernel.yama.ptrace_scope is 1 (only a parent may trace its children) and gospy \
                        lacks CAP_SYS_PTRACE: run it with sudo or CAP_SYS_PTRACE, or \
                        sysctl kernel.yama.ptrace_scope=0"
                    .into()
            }
            _ => {}
        }
        if field(&me, "Seccomp").is_some_and(|v| v != "0") {
            return "a seccomp filter on gospy refuses ptrace or process_vm_readv (Seccomp in \
                    /proc/self/status is not 0): run it with a profile that allows them \
                    (docker --security-opt seccomp=unconfined, or Kubernetes seccompProfile: Unconfined), \
                    or capture with --non-blocking, which needs no ptrace"
                .into();
        }
    }
    format!(
        "no uid, capability, Yama or seccomp restriction explains it, so a security module \
         (AppArmor, SELinux) probably refused: check the kernel log (dmesg) for a denial of ptrace; {yama}"
    )
}

/// Yama's ptrace_scope, in words.
fn yama_note() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(s) => {
            let v = s.trim().to_string();
            let meaning = match v.as_str() {
                "0" => "classic",
                "1" => "restricted: only descendants, unless CAP_SYS_PTRACE",
                "2" => "admin-only: CAP_SYS_PTRACE required",
                "3" => "no attach until reboot",
                _ => "unknown value",
            };
            format!("kernel.yama.ptrace_scope is {v} ({meaning})")
        }
        Err(_) => "kernel.yama.ptrace_scope: no Yama".to_string(),
    }
}

/// Turn an I/O error on a `/proc/PID/...` file into the most useful error.
pub(super) fn io_error(pid: i32, what: &str, e: io::Error) -> ProcessError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => ProcessError::PermissionDenied {
            pid,
            what: what.to_string(),
            hint: denied_hint(pid, false),
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
