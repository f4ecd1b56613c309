//! A live process: what `/proc` says about it, read before any stop.

use super::error::{io_error, proc_path, task_path, ProcessError, Result};
use super::mem::LiveMemory;
use super::procfs;
use crate::model::{MapEntry, ThreadInfo};
use std::collections::HashMap;
use std::io;

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

    /// The pid in each PID namespace the process belongs to, outermost
    /// (ours) first, from `/proc/PID/status` `NSpid`; empty when it is in
    /// ours only (or the kernel does not say), so that a target outside any
    /// container records nothing.
    pub fn ns_pids(&self) -> Vec<i32> {
        let status = self.read_string("status").unwrap_or_default();
        let v = parse_ns_pid(&status);
        if v.len() > 1 {
            v
        } else {
            Vec::new()
        }
    }

    /// The process's NSpid chain and, for a process in another PID
    /// namespace, each thread's id as that namespace numbers it (what Go's
    /// `m.procid` holds). Read before the pause.
    pub fn ns_ids(&self) -> NsIds {
        let pid = self.ns_pids();
        let mut tids = HashMap::new();
        if !pid.is_empty() {
            for tid in list_tasks(self.pid).unwrap_or_default() {
                if let Some(inner) = inner_tid(self.pid, tid) {
                    tids.insert(tid, inner);
                }
            }
        }
        NsIds {
            host_pid: self.pid,
            pid,
            tids,
        }
    }

    /// A reader of this process's memory.
    pub fn memory(&self) -> LiveMemory {
        LiveMemory::new(self.pid)
    }
}

/// A process's place in PID namespaces (see [`Process::ns_ids`]).
#[derive(Debug, Clone, Default)]
pub struct NsIds {
    host_pid: i32,
    /// NSpid chain, outermost first; empty in our own namespace.
    pub pid: Vec<i32>,
    /// Our thread id → the target namespace's.
    tids: HashMap<i32, i32>,
}

impl NsIds {
    /// Threads renumbered as the target's namespace numbers them, so that
    /// they match `m.procid`; unchanged for a target in our namespace.
    /// A thread started after [`Process::ns_ids`] is looked up now.
    /// Our thread id of the target namespace's thread `inner` (the same
    /// for a target in our namespace); None when not known.
    pub fn host_tid(&self, inner: i32) -> Option<i32> {
        if self.pid.is_empty() {
            return Some(inner);
        }
        self.tids.iter().find(|(_, &i)| i == inner).map(|(&h, _)| h)
    }

    pub fn translate(&self, mut threads: Vec<ThreadInfo>) -> Vec<ThreadInfo> {
        if self.pid.is_empty() {
            return threads;
        }
        for t in &mut threads {
            if let Some(inner) = self
                .tids
                .get(&t.tid)
                .copied()
                .or_else(|| inner_tid(self.host_pid, t.tid))
            {
                t.tid = inner;
            }
        }
        threads
    }
}

/// The innermost NSpid of thread `tid` of `pid`.
fn inner_tid(pid: i32, tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(task_path(pid, tid, "status")).ok()?;
    parse_ns_pid(&s).last().copied()
}

/// The `NSpid:` line of `/proc/PID/status`: tab-separated pids.
pub(super) fn parse_ns_pid(status: &str) -> Vec<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Thread ids in `/proc/PID/task`, sorted.
pub(super) fn list_tasks(pid: i32) -> io::Result<Vec<i32>> {
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

#[cfg(test)]
mod ns_tests {
    #[test]
    fn parses_nspid() {
        let s = "Name:\tapp\nTgid:\t4321\nNSpid:\t4321\t7\t1\nNSpgid:\t4321\t7\t1\n";
        assert_eq!(super::parse_ns_pid(s), vec![4321, 7, 1]);
        assert!(super::parse_ns_pid("Name:\tx\n").is_empty());
    }
}
