//! `--non-blocking` captures: the target is never stopped (no ptrace at all),
//! so each goroutine is validated instead. Its `g` is read once before its
//! stack and once after (status, goid, sched, syscall sp/pc, stack bounds);
//! a goroutine whose fields changed, that was running (no registers without a
//! stop), being scanned or copied, or whose sp lies outside its stack is
//! *unstable*: it is recorded in the capture's flags (and a note in its warnings),
//! and analysis shows it flagged and without frames, never with wrong ones.

use crate::goruntime::{G, G_RUNNABLE, G_SYSCALL, G_WAITING};
use crate::model::ThreadInfo;

/// The capture notes, defined with the typed flags they stand for.
pub use crate::model::NON_BLOCKING_NOTE;

/// The fields compared between the two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GState {
    status: u32,
    scan: bool,
    goid: u64,
    sched_sp: u64,
    sched_pc: u64,
    syscallsp: u64,
    syscallpc: u64,
    stack_lo: u64,
    stack_hi: u64,
}

impl GState {
    pub fn goid(&self) -> u64 {
        self.goid
    }

    pub fn of(g: &G) -> GState {
        GState {
            status: g.status,
            scan: g.scan,
            goid: g.goid,
            sched_sp: g.sched_sp,
            sched_pc: g.sched_pc,
            syscallsp: g.syscallsp,
            syscallpc: g.syscallpc,
            stack_lo: g.stack_lo,
            stack_hi: g.stack_hi,
        }
    }
}

/// Why a goroutine cannot be trusted, comparing the read before its stack
/// (`before`) with the read after (`after`, None when unreadable).
pub fn instability(before: &GState, after: Option<&GState>) -> Option<String> {
    let Some(after) = after else {
        return Some("its g could not be read again".into());
    };
    if before.goid != after.goid {
        return Some(format!(
            "goid changed from {} to {} (the g was reused)",
            before.goid, after.goid
        ));
    }
    if before.status != after.status || before.scan != after.scan {
        return Some(format!(
            "status changed from {} to {}",
            before.status, after.status
        ));
    }
    if before != after {
        return Some("its saved registers or stack bounds changed".into());
    }
    if before.scan {
        return Some("its stack was being scanned by the GC".into());
    }
    match before.status {
        G_RUNNABLE | G_WAITING => {}
        G_SYSCALL => {
            let sp = if before.syscallsp != 0 {
                before.syscallsp
            } else {
                before.sched_sp
            };
            if !(before.stack_lo..before.stack_hi).contains(&sp) {
                return Some(format!("syscall sp {sp:#x} outside its stack"));
            }
            return None;
        }
        2 => return Some("running (its registers need a stopped target)".into()),
        s => return Some(format!("in transition (status {s})")),
    }
    if !(before.stack_lo..before.stack_hi).contains(&before.sched_sp) {
        return Some(format!(
            "sp {:#x} outside its stack [{:#x}, {:#x})",
            before.sched_sp, before.stack_lo, before.stack_hi
        ));
    }
    None
}

/// Threads without registers (nothing is stopped, so none can be read).
pub fn threads_without_regs(proc_: &crate::process::Process) -> Vec<ThreadInfo> {
    proc_
        .threads()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|tid| proc_.thread_info(tid).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: u32) -> GState {
        GState {
            status,
            scan: false,
            goid: 7,
            sched_sp: 0x1800,
            sched_pc: 0x401000,
            syscallsp: 0,
            syscallpc: 0,
            stack_lo: 0x1000,
            stack_hi: 0x2000,
        }
    }

    #[test]
    fn stable_and_unstable() {
        let w = st(G_WAITING);
        assert_eq!(instability(&w, Some(&w)), None);
        assert!(instability(&w, None).is_some());
        let mut moved = w;
        moved.sched_sp = 0x1700;
        assert!(instability(&w, Some(&moved)).is_some());
        let mut other = w;
        other.goid = 8;
        assert!(instability(&w, Some(&other)).unwrap().contains("goid"));
        let r = st(2);
        assert!(instability(&r, Some(&r)).unwrap().contains("running"));
        let mut out = w;
        out.sched_sp = 0x3000;
        assert!(instability(&out, Some(&out)).unwrap().contains("outside"));
    }
}
