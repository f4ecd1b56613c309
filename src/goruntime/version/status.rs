//! Goroutine status values (`g.atomicstatus`, runtime2.go), by the
//! runtime's names, so no decoder compares against a bare number.

/// `_Gidle`: just allocated, not yet initialised.
pub const G_IDLE: u32 = 0;
/// `_Grunnable`: on a run queue.
pub const G_RUNNABLE: u32 = 1;
/// `_Grunning`: executing user code on an M and a P.
pub const G_RUNNING: u32 = 2;
/// `_Gsyscall`: in a system call.
pub const G_SYSCALL: u32 = 3;
/// `_Gwaiting`: blocked in the runtime (see `g.waitreason`).
pub const G_WAITING: u32 = 4;
/// `_Gmoribund_unused`.
pub const G_MORIBUND_UNUSED: u32 = 5;
/// `_Gdead`: unused, on a free list or exited.
pub const G_DEAD: u32 = 6;
/// `_Genqueue_unused`.
pub const G_ENQUEUE_UNUSED: u32 = 7;
/// `_Gcopystack`: its stack is being moved.
pub const G_COPYSTACK: u32 = 8;
/// `_Gpreempted`: stopped itself for a suspendG preemption.
pub const G_PREEMPTED: u32 = 9;
/// `_Gleaked` (Go 1.26+): a leaked goroutine caught by the GC.
pub const G_LEAKED: u32 = 10;
/// `_Gdeadextra` (Go 1.26+): a `_Gdead` goroutine attached to an extra M.
pub const G_DEAD_EXTRA: u32 = 11;
/// `_Gscan`: bit set on the others while the GC scans the stack.
pub const G_SCAN: u32 = 0x1000;

/// `runtime.gStatusStrings` for executables where it cannot be read
/// (the runtime's list through `_Gpreempted`).
pub const STATUS_STRINGS: [&str; 10] = [
    "idle",
    "runnable",
    "running",
    "syscall",
    "waiting",
    "moribund_unused",
    "dead",
    "enqueue_unused",
    "copystack",
    "preempted",
];
