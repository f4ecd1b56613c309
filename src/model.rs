//! What a capture records: plain data, shared by the live process reader, the
//! snapshot file format and the analyses. Encoding lives in `snapshot::format`.

use serde::{Deserialize, Serialize};

/// x86-64 general registers in the kernel's `user_regs_struct` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// Linux thread id (equals Go's `m.procid`).
    pub tid: i32,
    /// `/proc/PID/task/TID/comm`.
    pub name: String,
    /// State letter from `/proc/PID/task/TID/stat` read before the pause
    /// (R running, S sleeping, D disk sleep, t traced, Z zombie...).
    pub state: char,
    /// Registers at the moment of the pause; None if they could not be read.
    pub regs: Option<Regs>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    /// e.g. "r-xp"
    pub perms: String,
    pub offset: u64,
    pub path: String,
}

/// Why a region was captured. Purely informative (reports, `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegionKind {
    /// Writable PT_LOAD segment of the executable (.data, .bss, .noptrdata...).
    Data,
    /// The `allgs` backing array.
    Allgs,
    /// A `runtime.g` struct.
    G,
    /// Used part of a goroutine stack (sp .. stack.hi).
    Stack,
    /// A `runtime.p` struct.
    P,
    /// A `runtime.m` struct.
    M,
    /// An mcache or span the heap analysis needs.
    Heap,
    /// Anything else a decoder asked for (labels, pointed-to objects...).
    Other,
}

/// One captured byte range of target memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub addr: u64,
    pub kind: RegionKind,
    pub data: Vec<u8>,
}

/// Everything recorded about the capture besides the memory itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureMeta {
    pub gospy_version: String,
    pub pid: i32,
    /// Target of /proc/PID/exe at capture time.
    pub exe_path: String,
    pub cmdline: Vec<String>,
    pub hostname: String,
    /// `.note.go.buildid` text, if present.
    pub go_build_id: Option<String>,
    /// `.note.gnu.build-id` as lowercase hex, if present.
    pub gnu_build_id: Option<String>,
    /// e.g. "go1.22.10"
    pub go_version: String,
    /// Runtime address minus link-time address (0 for non-PIE).
    pub load_bias: u64,
    /// Wall-clock time of the capture, nanoseconds since the Unix epoch.
    pub wall_time_ns: u64,
    /// CLOCK_MONOTONIC at the capture (same clock as Go's nanotime()).
    pub mono_time_ns: u64,
    /// How long every thread was stopped, nanoseconds.
    pub pause_ns: u64,
    /// Whether the target was stopped at all (false for --non-blocking).
    pub stopped: bool,
    pub maps: Vec<MapEntry>,
    /// Auxiliary vector (type, value) pairs.
    pub auxv: Vec<(u64, u64)>,
    pub threads: Vec<ThreadInfo>,
    /// Free-form notes from the capture (threads that could not be stopped...).
    pub warnings: Vec<String>,
}

/// A complete capture in memory.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub meta: CaptureMeta,
    pub regions: Vec<Region>,
    /// The executable's bytes, when embedded (`--embed-binary`).
    pub binary: Option<Vec<u8>>,
}
