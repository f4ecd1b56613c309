//! What a capture records: plain data, shared by the live process reader, the
//! snapshot file format and the analyses. Encoding lives in `snapshot::format`.

use serde::{Deserialize, Serialize};

/// A thread's registers. The named fields are x86-64's general registers in
/// the kernel's `user_regs_struct` order; an arm64 thread has them zero and
/// its own registers in `aarch64`. Code that does not care which machine it
/// is reads them through [`Regs::pc`], [`Regs::sp`], [`Regs::fp`] and
/// [`Regs::lr`].
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
    /// An arm64 thread's registers (None on x86-64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aarch64: Option<Aarch64Regs>,
}

/// AArch64 `user_pt_regs`: x0–x30, sp, pc, pstate (NT_PRSTATUS order).
/// Go keeps g in x28; x29 is the frame pointer and x30 the link register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aarch64Regs {
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
}

impl Aarch64Regs {
    /// Number of 64-bit words of `user_pt_regs`.
    pub const WORDS: usize = 34;

    /// From the `user_pt_regs` words in the kernel's order.
    pub fn from_words(w: &[u64; Self::WORDS]) -> Aarch64Regs {
        let mut x = [0u64; 31];
        x.copy_from_slice(&w[..31]);
        Aarch64Regs {
            x,
            sp: w[31],
            pc: w[32],
            pstate: w[33],
        }
    }

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut w = [0u64; Self::WORDS];
        w[..31].copy_from_slice(&self.x);
        w[31] = self.sp;
        w[32] = self.pc;
        w[33] = self.pstate;
        w
    }
}

impl Regs {
    /// The instruction pointer (rip / pc).
    pub fn pc(&self) -> u64 {
        self.aarch64.map_or(self.rip, |a| a.pc)
    }
    /// The stack pointer (rsp / sp).
    pub fn sp(&self) -> u64 {
        self.aarch64.map_or(self.rsp, |a| a.sp)
    }
    /// The frame pointer (rbp / x29).
    pub fn fp(&self) -> u64 {
        self.aarch64.map_or(self.rbp, |a| a.x[29])
    }
    /// The link register (x30); None on x86-64, which has none.
    pub fn lr(&self) -> Option<u64> {
        self.aarch64.map(|a| a.x[30])
    }
    /// Go's g register (x28 on arm64); None on x86-64, where g is in TLS.
    pub fn g(&self) -> Option<u64> {
        self.aarch64.map(|a| a.x[28])
    }
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
    /// Free-form notes from the capture (threads that could not be stopped...),
    /// in the order they are shown; the notes of [`CaptureFlags`] among them.
    pub warnings: Vec<String>,
    /// How the capture was taken, typed. Not a field of the file: the
    /// snapshot records it as notes in `warnings` (see `snapshot-format.md`),
    /// from which the reader derives it.
    #[serde(default)]
    pub flags: CaptureFlags,
    /// The target's instruction set (an extension record of the file; absent
    /// in files written before it existed, which are all x86-64).
    #[serde(default)]
    pub arch: Arch,
    /// The target's pid in each PID namespace it belongs to, outermost (the
    /// capturing side's) first, as /proc/PID/status `NSpid` lists it. Empty
    /// when unknown (cores, older files) or when it has a single namespace.
    #[serde(default)]
    pub ns_pid: Vec<i32>,
}

/// Instruction set of a target, by its ELF `e_machine` number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[default]
    X86_64,
    Aarch64,
}

impl Arch {
    /// ELF `e_machine` of x86-64.
    pub const EM_X86_64: u16 = 62;
    /// ELF `e_machine` of AArch64.
    pub const EM_AARCH64: u16 = 183;

    pub fn from_e_machine(m: u16) -> Option<Arch> {
        match m {
            Self::EM_X86_64 => Some(Arch::X86_64),
            Self::EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    pub fn e_machine(self) -> u16 {
        match self {
            Arch::X86_64 => Self::EM_X86_64,
            Arch::Aarch64 => Self::EM_AARCH64,
        }
    }

    /// The name Go uses (GOARCH).
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }
}

/// How a capture was taken, for the code that must treat it differently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFlags {
    /// Taken with `--redact`: data words are zeroed, frame arguments gone.
    pub redacted: bool,
    /// Taken with `--non-blocking`: the target was never stopped.
    pub non_blocking: bool,
    /// Goroutines that changed while a `--non-blocking` capture read them,
    /// in the order they were found.
    pub unstable: Vec<UnstableG>,
}

/// A goroutine a `--non-blocking` capture cannot vouch for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnstableG {
    /// Address of its `g`.
    pub g: u64,
    pub goid: u64,
    /// What changed, for the user.
    pub why: String,
}

impl UnstableG {
    /// The note recorded (and shown) for it: `unstable goroutine: g 0x... (goid N): why`.
    pub fn note(&self) -> String {
        format!(
            "{UNSTABLE_PREFIX}{:x} (goid {}): {}",
            self.g, self.goid, self.why
        )
    }
}

/// What an unstable goroutine's stack is replaced with.
pub const UNSTABLE_STACK: &str =
    "unstable: the goroutine changed while it was read (--non-blocking); stack not shown";

/// Start of the note that marks a redacted capture.
pub const REDACTED_PREFIX: &str = "redacted:";

/// The note `--redact` records (label values are shown as `<redacted>`).
pub const REDACTED_NOTE: &str = "redacted: captured with --redact: stack words other than \
     return addresses and frame links, global data other than runtime variables, thread \
     general-purpose registers, pprof label values (shown as <redacted>), command-line \
     arguments and the hostname were removed";

/// Start of the note recorded for each unstable goroutine, followed by its
/// g address in hex.
pub const UNSTABLE_PREFIX: &str = "unstable goroutine: g 0x";

/// The note recorded in every `--non-blocking` capture (`stopped` is false
/// for core files too, so it cannot tell them apart).
pub const NON_BLOCKING_NOTE: &str =
    "captured with --non-blocking: the target was never stopped; goroutines that changed while read are marked unstable";

/// A complete capture in memory.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub meta: CaptureMeta,
    pub regions: Vec<Region>,
    /// The executable's bytes, when embedded (`--embed-binary`).
    pub binary: Option<Vec<u8>>,
}

/// The name of an ELF `e_machine` for messages (Go's GOARCH where there is one).
pub fn machine_name(m: u16) -> String {
    match m {
        3 => "386".into(),
        8 => "mips".into(),
        20 => "ppc".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        40 => "arm".into(),
        62 => "x86-64".into(),
        183 => "arm64".into(),
        243 => "riscv64".into(),
        258 => "loong64".into(),
        _ => format!("ELF machine {m}"),
    }
}
