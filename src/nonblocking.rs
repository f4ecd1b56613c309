//! `--non-blocking` captures: the target is never stopped (no ptrace at all),
//! so each goroutine is validated instead. Its `g` is read once before its
//! stack and once after (status, goid, sched, syscall sp/pc, stack bounds);
//! a goroutine whose fields changed, that was running (no registers without a
//! stop), being scanned or copied, or whose sp lies outside its stack is
//! *unstable*: it is recorded in the capture's warnings with a fixed prefix,
//! and analysis shows it flagged and without frames, never with wrong ones.

use crate::goruntime::{G, G_RUNNABLE, G_SYSCALL, G_WAITING};
use crate::model::{CaptureMeta, ThreadInfo};
use std::collections::HashSet;

/// Prefix of the warning recorded for each unstable goroutine, followed by
/// its g address in hex: `unstable goroutine: g 0x... (goid N): reason`.
pub const UNSTABLE_PREFIX: &str = "unstable goroutine: g 0x";

/// Recorded in the warnings of every `--non-blocking` capture (`stopped` is
/// false for core files too, so it cannot tell them apart).
pub const NON_BLOCKING_NOTE: &str =
    "captured with --non-blocking: the target was never stopped; goroutines that changed while read are marked unstable";

/// Whether a capture was taken with `--non-blocking`.
pub fn is_non_blocking(meta: &CaptureMeta) -> bool {
    !meta.stopped && meta.warnings.iter().any(|w| w == NON_BLOCKING_NOTE)
}

/// What a stack is replaced with for an unstable goroutine.
pub const UNSTABLE_STACK: &str =
    "unstable: the goroutine changed while it was read (--non-blocking); stack not shown";

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

/// The warning recorded for an unstable goroutine.
pub fn unstable_warning(gaddr: u64, goid: u64, why: &str) -> String {
    format!("{UNSTABLE_PREFIX}{gaddr:x} (goid {goid}): {why}")
}

/// g addresses recorded as unstable in a capture's warnings.
pub fn unstable_set(meta: &CaptureMeta) -> HashSet<u64> {
    meta.warnings
        .iter()
        .filter_map(|w| {
            let rest = w.strip_prefix(UNSTABLE_PREFIX)?;
            let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .collect()
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

    #[test]
    fn warnings_round_trip() {
        let meta = CaptureMeta {
            warnings: vec![
                "something else".into(),
                unstable_warning(0xc000123400, 42, "running"),
            ],
            ..Default::default()
        };
        let s = unstable_set(&meta);
        assert_eq!(s.len(), 1);
        assert!(s.contains(&0xc000123400));
    }
}
