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

mod error;
mod handle;
mod mem;
mod pagemap;
mod pause;
mod procfs;
mod quiet;
#[cfg(test)]
mod tests;

pub use error::{permission_hint, ProcessError, Result};
pub use handle::{read_monotonic_ns, NsIds, Process};
pub use mem::{read_ranges, LiveMemory, IOV_MAX};
pub use pagemap::{page_size, touched_runs, PageMap};
pub use pause::{PauseGuard, PauseOptions};
pub use quiet::{in_interrupted_syscall, ThreadMarks};
