//! Did any thread of the target run? The kernel's scheduler accounting
//! answers it without stopping anything: `/proc/PID/task/TID/schedstat`'s
//! third field counts the times a thread was switched in to run.
//!
//! [`ThreadMarks::take`] records, for every thread, that count while the
//! thread sleeps. After the pause, a thread that did not run in between
//! was switched in exactly once, by the stop itself (`PTRACE_INTERRUPT`
//! wakes a sleeping thread, which then stops), and is stopped inside the
//! system call it slept in: its registers say so (x86-64: `orig_rax` is the
//! call, `rax` a restart code or -EINTR, see [`in_interrupted_syscall`]).
//! A thread that ran user code in between was switched in at least once
//! more, or is stopped outside a system call.
//!
//! One thread may be left out: Go's sysmon. It runs without a P, never runs
//! goroutine code, and what it changes in goroutines it changes through the
//! scheduler's queues (`injectglist`), which the caller compares itself.
//!
//! [`ThreadMarks::recheck`] reads the counts once more after the threads
//! are seized (which stops nothing) and right before the first interrupt:
//! what ran since the marks shows there. What the check cannot tell apart
//! is a thread woken in the microseconds between that re-read and its own
//! interrupt that ran, entered a system call and was interrupted in it
//! before it slept again: switched in once, stopped in a system call, like
//! a thread that slept throughout. The caller's comparison of the
//! scheduler's state catches most of what such a run changes.

use super::error::task_path;
use crate::model::ThreadInfo;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// One thread's mark: its schedstat file (kept open: a re-read is one
/// `pread`) and how many times it had been switched in.
#[derive(Debug)]
struct Mark {
    tid: i32,
    file: File,
    switched_in: u64,
}

/// Every thread's switch-in count, taken while the target runs.
#[derive(Debug)]
pub struct ThreadMarks {
    marks: Vec<Mark>,
    /// Left out of the check (sysmon's thread).
    excused: Option<i32>,
    /// What [`recheck`](Self::recheck) found (None: not run).
    rechecked: Option<Result<(), String>>,
}

/// The third field of a schedstat file: times switched in.
fn switched_in(f: &File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = f.read_at(&mut buf, 0).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    s.split_whitespace().nth(2)?.parse().ok()
}

/// The state letter of `/proc/PID/task/TID/stat`.
fn state(pid: i32, tid: i32) -> Option<char> {
    let s = std::fs::read_to_string(task_path(pid, tid, "stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// A stopped thread's registers show it inside a system call that the stop
/// interrupted: x86-64 `orig_rax` is the call and `rax` is what the
/// interrupted call returns (-EINTR, or a restart code the kernel turns
/// into a restart on resume). Not decided on other architectures.
pub fn in_interrupted_syscall(t: &ThreadInfo) -> bool {
    const EINTR: i64 = -4;
    const ERESTARTSYS: i64 = -512;
    const ERESTARTNOINTR: i64 = -513;
    const ERESTARTNOHAND: i64 = -514;
    const ERESTART_RESTARTBLOCK: i64 = -516;
    let Some(r) = t.regs.as_ref() else {
        return false;
    };
    if r.aarch64.is_some() {
        return false;
    }
    (r.orig_rax as i64) >= 0
        && matches!(
            r.rax as i64,
            EINTR | ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
        )
}

impl ThreadMarks {
    /// Mark every thread of `pid`. Err (why) when a thread is running or
    /// runnable now (other than `excused`): it will have run by the pause.
    pub fn take(pid: i32, excused: Option<i32>) -> Result<ThreadMarks, String> {
        let tids = super::handle::list_tasks(pid).map_err(|e| format!("listing threads: {e}"))?;
        let mut marks = Vec::with_capacity(tids.len());
        for tid in tids {
            let file = File::open(task_path(pid, tid, "schedstat"))
                .map_err(|e| format!("thread {tid}: schedstat: {e}"))?;
            if Some(tid) != excused {
                match state(pid, tid) {
                    Some('S' | 'D') => {}
                    Some(c) => return Err(format!("thread {tid} is running (state {c})")),
                    None => return Err(format!("thread {tid}: no state")),
                }
            }
            let n =
                switched_in(&file).ok_or_else(|| format!("thread {tid}: schedstat unreadable"))?;
            marks.push(Mark {
                tid,
                file,
                switched_in: n,
            });
        }
        Ok(ThreadMarks {
            marks,
            excused,
            rechecked: None,
        })
    }

    /// The threads marked.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Whether every thread (but the excused one) was switched in as often
    /// as when marked. Err: the first that ran.
    pub fn unchanged(&self) -> Result<(), String> {
        for m in self.marks.iter().filter(|m| Some(m.tid) != self.excused) {
            match switched_in(&m.file) {
                Some(n) if n == m.switched_in => {}
                Some(n) => {
                    return Err(format!(
                        "thread {} ran ({} switch-ins since the marks)",
                        m.tid,
                        n.saturating_sub(m.switched_in)
                    ))
                }
                None => return Err(format!("thread {}: schedstat unreadable", m.tid)),
            }
        }
        Ok(())
    }

    /// [`unchanged`](Self::unchanged), kept for [`verify`](Self::verify):
    /// run by the pause once the threads are seized, right before the
    /// first interrupt.
    pub fn recheck(&mut self) {
        self.rechecked = Some(self.unchanged());
    }

    /// With the target stopped (`threads`, with registers): Ok when no
    /// thread but the excused one ran since the marks: the same threads,
    /// each switched in once more (to stop) and stopped inside the system
    /// call it slept in. Err: why not.
    pub fn verify(&self, threads: &[ThreadInfo]) -> Result<(), String> {
        match &self.rechecked {
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("not re-checked before the stop".into()),
            Some(Ok(())) => {}
        }
        if threads.len() != self.marks.len() {
            return Err(format!(
                "{} threads when marked, {} at the pause",
                self.marks.len(),
                threads.len()
            ));
        }
        let by_tid: std::collections::HashMap<i32, &ThreadInfo> =
            threads.iter().map(|t| (t.tid, t)).collect();
        for m in &self.marks {
            let Some(&t) = by_tid.get(&m.tid) else {
                return Err(format!("thread {} is gone", m.tid));
            };
            if Some(m.tid) == self.excused {
                continue;
            }
            match switched_in(&m.file) {
                Some(n) if n == m.switched_in + 1 => {}
                Some(n) => {
                    return Err(format!(
                        "thread {} ran ({} switch-ins since the marks, the stop is 1)",
                        m.tid,
                        n.saturating_sub(m.switched_in)
                    ))
                }
                None => return Err(format!("thread {}: schedstat unreadable", m.tid)),
            }
            if !in_interrupted_syscall(t) {
                return Err(format!(
                    "thread {} was not stopped inside a system call",
                    m.tid
                ));
            }
        }
        Ok(())
    }
}
