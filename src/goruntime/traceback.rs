//! Goroutine stack unwinding with the pclntab, and the runtime's own rules
//! for which frames and goroutines a traceback shows (runtime/traceback.go).

use super::arch;
use super::pcinfo::{
    PcInfo, ARG_INFO_MAX, FUNCDATA_ARG_INFO, FUNCDATA_ARG_LIVE_INFO, PCDATA_ARG_LIVE_INDEX,
};
use super::stackstart::StackState;
use super::{Target, G, G_RUNNING, M};
use crate::binary::pclntab::{FuncInfo, SpecialFunc};
use crate::memory::{MemResult, Memory};
use crate::model::Regs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What decides where `g`'s frames start ([`StackState`]): `m` is the M
/// running it and `regs` that M's thread registers, when known.
pub fn stack_state(g: &G, m: Option<&M>, regs: Option<&Regs>) -> StackState {
    StackState {
        lo: g.stack_lo,
        hi: g.stack_hi,
        sched_sp: g.sched_sp,
        sched_pc: g.sched_pc,
        syscallsp: g.syscallsp,
        syscallpc: g.syscallpc,
        running: g.status == G_RUNNING,
        regs: regs.map(|r| (r.pc(), r.sp())),
        vdso: m.map(|m| (m.vdso_pc, m.vdso_sp)),
    }
}

/// A goroutine's used stack held in place, in front of the memory it came
/// from (which serves everything else).
struct StackView<'a, M: Memory> {
    inner: &'a M,
    base: u64,
    bytes: &'a [u8],
}

impl<M: Memory> Memory for StackView<'_, M> {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> MemResult<()> {
        match self.bytes_at(addr, buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => self.inner.read_exact(addr, buf),
        }
    }
    fn bytes_at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        match self.bytes.get(off..off.checked_add(len)?) {
            Some(b) => Some(b),
            None => self.inner.bytes_at(addr, len),
        }
    }
}

/// `abi.FuncFlagTopFrame`, `abi.FuncFlagSPWrite` (stable 1.19–1.27).
const FLAG_TOPFRAME: u8 = 1;
const FLAG_SPWRITE: u8 = 2;
/// Physical frames walked at most per goroutine.
pub const MAX_FRAMES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    pub function: Arc<str>,
    pub file: Arc<str>,
    pub line: u32,
    pub inlined: bool,
    /// Runtime PC of the physical frame (a return address except innermost).
    #[serde(skip)]
    pub pc: u64,
    /// The `+0x..` the runtime prints: pc - function entry; None when inlined.
    pub offset: Option<u64>,
    /// Arguments as the runtime prints them (`0x1, {0xc000010000, 0x3}`);
    /// None for inlined frames (printed as `...`) or when unreadable.
    pub args: Option<String>,
    #[serde(skip)]
    pub sp: u64,
    /// Whether the runtime's default traceback (GOTRACEBACK=single) shows it.
    #[serde(skip)]
    pub shown: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// Shared: goroutines with the same frames may hold one copy (see
    /// `analyze::Model::build_with`).
    pub frames: Arc<[Frame]>,
    /// Why there is no stack at all (running on another thread, no regs...).
    pub unavailable: Option<String>,
    /// Why the walk stopped early (bad PC, sp outside stack...).
    pub error: Option<String>,
    /// The walk ended at a top frame (runtime.goexit, mstart...) rather
    /// than at a zero return address: for memory read while the target
    /// ran, a walk that did not is suspect.
    pub reached_top: bool,
}

/// Physical frames that unwinds may still walk, shared by all goroutines of
/// one analysis. In a consistent snapshot goroutine stacks are disjoint and a
/// frame takes 16 bytes or more (return address and frame pointer) but for
/// rare leaf frames, so the frames of all goroutines together stay far below
/// the captured bytes / 16 (which also count g structs and data); damaged or
/// crafted memory (many goroutines sharing one stack full of
/// self-referencing frames) could otherwise multiply the work without bound.
#[derive(Debug)]
pub struct FrameBudget(AtomicU64);

impl FrameBudget {
    pub fn new(frames: u64) -> FrameBudget {
        FrameBudget(AtomicU64::new(frames))
    }
    pub fn unlimited() -> FrameBudget {
        FrameBudget::new(u64::MAX)
    }
    /// The budget for memory of `captured_bytes`: one frame per 16 bytes,
    /// plus room for one full-depth stack.
    pub fn for_memory(captured_bytes: u64) -> FrameBudget {
        FrameBudget::new((captured_bytes / 16).saturating_add(MAX_FRAMES as u64))
    }
    /// Take one frame; false when none is left.
    pub fn take(&self) -> bool {
        self.take_n(1)
    }
    /// Return `n` units taken but not used.
    pub fn give_back(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    /// Take `n` units (the same type budgets label bytes); false, taking
    /// nothing, when fewer are left.
    pub fn take_n(&self, n: u64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(n))
            .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CreatedBy {
    pub function: Arc<str>,
    /// Creating goroutine (recorded from Go 1.21 on).
    pub goroutine: Option<u64>,
    pub file: Arc<str>,
    pub line: u32,
    pub offset: Option<u64>,
    /// Whether the runtime's default traceback (GOTRACEBACK=single) prints
    /// it: not for creators inside the runtime (`runtime.gcenable`), which
    /// only GOTRACEBACK=system (a SIGQUIT dump, `dump --all`) shows.
    #[serde(skip)]
    pub shown: bool,
}

/// `printFuncName`: `runtime.gopanic` prints as `panic`, generic shapes as `[...]`.
pub fn print_name(name: &str) -> String {
    if name == "runtime.gopanic" {
        return "panic".to_string();
    }
    if let (Some(i), Some(j)) = (name.find('['), name.rfind(']')) {
        if j > i {
            return format!("{}[...]{}", &name[..i], &name[j + 1..]);
        }
    }
    name.to_string()
}

/// `isExportedRuntime`: runtime.Foo or runtime.(*Foo).Bar style names.
pub(super) fn is_exported_runtime(name: &str) -> bool {
    let Some(mut rest) = name.strip_prefix("runtime.") else {
        return false;
    };
    let mut rcvr = "";
    if let Some(i) = rest.rfind('.') {
        rcvr = &rest[..i];
        rest = &rest[i + 1..];
        if rcvr.len() >= 3 && rcvr.starts_with("(*") && rcvr.ends_with(')') {
            rcvr = &rcvr[2..rcvr.len() - 1];
        }
    }
    let up = |s: &str| s.as_bytes().first().is_some_and(|c| c.is_ascii_uppercase());
    up(rest) && (rcvr.is_empty() || up(rcvr))
}

impl Target {
    /// `showfuncinfo` at GOTRACEBACK=single.
    fn show_frame(&self, name: &str, func_id: u8, first: bool, callee_id: u8) -> bool {
        let p = &self.bin.pcln;
        if func_id == p.wrapper_func_id()
            && !(p.func_id_is(callee_id, SpecialFunc::Gopanic)
                || p.func_id_is(callee_id, SpecialFunc::Sigpanic)
                || p.func_id_is(callee_id, SpecialFunc::Panicwrap))
        {
            return false;
        }
        if name == "runtime.runFinalizers" || name == "runtime.runCleanups" {
            return true;
        }
        if name == "runtime.gopanic" && !first {
            return true;
        }
        name.contains('.') && (!name.starts_with("runtime.") || is_exported_runtime(name))
    }

    /// The target's instruction set.
    pub fn arch(&self) -> crate::model::Arch {
        self.bin.elf.arch
    }

    pub fn find_func(&self, pc: u64) -> Option<FuncInfo> {
        self.bin.pcln.find_func(pc.wrapping_sub(self.bias))
    }

    pub fn func_name(&self, pc: u64) -> Option<&str> {
        let f = self.find_func(pc)?;
        Some(self.bin.pcln.func_name(&f))
    }

    /// `isSystemGoroutine(gp, false)`, decided from the start function.
    pub fn is_system_goroutine(&self, g: &G, fing_running_user: bool) -> bool {
        let Some(name) = self.func_name(g.startpc) else {
            return false;
        };
        match name {
            "runtime.main" | "runtime.corostart" | "runtime.handleAsyncEvent" => false,
            "runtime.runfinq" | "runtime.runFinalizers" => !fing_running_user,
            "runtime.runCleanups" => !g.running_cleanups,
            n => n.starts_with("runtime."),
        }
    }

    /// `printcreatedby`: None for goroutine 1; `shown` false for creators
    /// that only GOTRACEBACK=system prints (runtime-internal functions).
    pub fn created_by(&self, g: &G) -> Option<CreatedBy> {
        if g.goid == 1 || g.gopc == 0 {
            return None;
        }
        let p = &self.bin.pcln;
        let f = self.find_func(g.gopc)?;
        let name = p.func_name(&f).to_string();
        let shown = self.show_frame(&name, p.func_id(&f), false, 0);
        let entry = f.entry.wrapping_add(self.bias);
        let tracepc = if g.gopc > entry { g.gopc - 1 } else { g.gopc };
        let (file, line) = p
            .file_line(&f, tracepc.wrapping_sub(self.bias))
            .map(|(f, l)| (Arc::from(f), l))
            .unwrap_or_else(|| (Arc::from(""), 0));
        Some(CreatedBy {
            function: Arc::from(print_name(&name)),
            goroutine: (g.parent_goid != 0).then_some(g.parent_goid),
            file,
            line,
            offset: (g.gopc > entry).then(|| g.gopc - entry),
            shown,
        })
    }

    /// Where unwinding of `g` starts: (pc, sp, is_trap_context).
    fn start_point(
        &self,
        g: &G,
        m: Option<&M>,
        regs: Option<&Regs>,
    ) -> Result<(u64, u64, bool), String> {
        stack_state(g, m, regs).unwind_start(|pc| self.find_func(pc).is_some())
    }

    /// Symbolize `pc` (a return address unless `trap`), cached.
    pub fn pc_info(&self, pc: u64, trap: bool) -> Option<Arc<PcInfo>> {
        self.pc_cache.get_or((pc, trap), || {
            let p = &self.bin.pcln;
            let f = self.find_func(pc)?;
            let entry = f.entry.wrapping_add(self.bias);
            let sympc = if !trap && pc > entry { pc - 1 } else { pc };
            let src = p
                .frames(&f, sympc.wrapping_sub(self.bias))
                .into_iter()
                .map(|sf| {
                    (
                        Arc::from(print_name(&sf.function)),
                        Arc::from(sf.file),
                        sf.line,
                        sf.inlined,
                        sf.func_id,
                    )
                })
                .collect();
            let arg_info = p
                .funcdata_bytes(&f, FUNCDATA_ARG_INFO)
                .map(|b| b[..b.len().min(ARG_INFO_MAX)].to_vec());
            let arg_live = p.funcdata_bytes(&f, FUNCDATA_ARG_LIVE_INFO).map(|b| {
                let idx = p
                    .pcdata(&f, PCDATA_ARG_LIVE_INDEX, sympc.wrapping_sub(self.bias))
                    .unwrap_or(-1);
                (b[..b.len().min(4096)].to_vec(), idx)
            });
            Some(Arc::new(PcInfo {
                entry,
                name: Arc::from(p.func_name(&f)),
                flag: {
                    // The runtime's unwinder: "cgocallback does write SP to
                    // switch from the g0 to the curg stack, but it carefully
                    // arranges that during the transition BOTH stacks have
                    // cgocallback frame valid for unwinding through".
                    let flag = p.func_flag(&f);
                    if p.func_id_is(p.func_id(&f), SpecialFunc::Cgocallback) {
                        flag & !FLAG_SPWRITE
                    } else {
                        flag
                    }
                },
                spdelta: p.pcsp(&f, pc.wrapping_sub(self.bias)),
                src,
                arg_info,
                arg_live,
            }))
        })
    }

    /// Unwind one goroutine. `m` and `regs`: the M running it and that
    /// thread's registers, for running goroutines.
    pub fn unwind<Mem: Memory>(
        &self,
        mem: &Mem,
        g: &G,
        m: Option<&M>,
        regs: Option<&Regs>,
    ) -> Stack {
        self.unwind_budgeted(mem, g, m, regs, &FrameBudget::unlimited(), true)
    }

    /// [`Target::unwind`], taking every physical frame from `budget`: when it
    /// runs out the walk stops with an error. Analyses of untrusted memory
    /// share one budget among all goroutines (see [`FrameBudget::for_memory`]).
    pub fn unwind_budgeted<Mem: Memory>(
        &self,
        mem: &Mem,
        g: &G,
        m: Option<&M>,
        regs: Option<&Regs>,
        budget: &FrameBudget,
        with_args: bool,
    ) -> Stack {
        let mut st = Stack::default();
        let (mut pc, mut sp, mut trap) = match self.start_point(g, m, regs) {
            Ok(x) => x,
            Err(e) => {
                st.unavailable = Some(e);
                return st;
            }
        };
        let mut frames: Vec<Frame> = Vec::with_capacity(16);
        // The used stack in one piece when the memory holds it so: every
        // return address and argument word is then a slice read.
        let stack = (sp < g.stack_hi && g.stack_hi - sp <= super::MAX_STACK)
            .then(|| mem.bytes_at(sp, (g.stack_hi - sp) as usize))
            .flatten();
        let mem = &StackView {
            inner: mem,
            base: sp,
            bytes: stack.unwrap_or(&[]),
        };
        // The link register's value while it holds the current frame's
        // return address (arm64), else 0.
        let mut link = regs
            .filter(|r| r.pc() == pc && r.sp() == sp)
            .and_then(Regs::lr)
            .unwrap_or(0);
        let mut callee_id: u8 = 0;
        let mut shown_count = 0usize;
        // Frames are taken from the shared budget a batch at a time (one
        // atomic per batch, not per frame: it is shared by every thread)
        // and what is left of the batch is given back after the walk.
        const BATCH: u64 = 32;
        let mut reserved = 0u64;
        for depth in 0..MAX_FRAMES {
            let innermost = depth == 0;
            if reserved == 0 && budget.take_n(BATCH) {
                reserved = BATCH;
            }
            if reserved > 0 {
                reserved -= 1;
            } else if !budget.take() {
                st.error = Some(format!(
                    "frame budget of this analysis exhausted at depth {depth} \
                     (goroutine stacks overlap or repeat: damaged or crafted memory?)"
                ));
                break;
            }
            let Some(info) = self.pc_info(pc, trap) else {
                st.error = Some(format!("unknown pc {pc:#x} at depth {depth}"));
                break;
            };
            let entry = info.entry;
            // Where the arguments are (frame.argp), when computable.
            let fp = info.spdelta.map(|d| arch::args_at(self.arch(), sp, d));
            for (function, file, line, inlined, func_id) in &info.src {
                // showframe() looks at the unprinted name; print_name only
                // changes runtime.gopanic and generic shapes, which it checks
                // the same way.
                let raw: &str = if &**function == "panic" {
                    "runtime.gopanic"
                } else {
                    function
                };
                let shown = self.show_frame(raw, *func_id, shown_count == 0, callee_id);
                callee_id = *func_id;
                if shown {
                    shown_count += 1;
                }
                let args = if *inlined || !with_args {
                    None
                } else if info.arg_info.is_none() {
                    Some(String::new())
                } else {
                    fp.and_then(|fp| info.format_args(mem, fp))
                };
                frames.push(Frame {
                    args,
                    offset: if *inlined || pc <= entry {
                        None
                    } else {
                        Some(pc - entry)
                    },
                    function: function.clone(),
                    file: file.clone(),
                    line: *line,
                    inlined: *inlined,
                    pc,
                    sp,
                    shown,
                });
            }
            let name = &*info.name;
            if info.flag & FLAG_TOPFRAME != 0 {
                st.reached_top = true;
                break;
            }
            if info.flag & FLAG_SPWRITE != 0 && !innermost {
                // The runtime cannot unwind past a function that writes SP either.
                break;
            }
            let Some(delta) = info.spdelta else {
                st.error = Some(format!("no SP delta for {name} at pc {pc:#x}"));
                break;
            };
            let fp = arch::frame_end(self.arch(), sp, delta);
            if fp > g.stack_hi || !arch::frame_ok(self.arch(), sp, fp) {
                st.error = Some(format!(
                    "frame of {name} leaves the goroutine stack (fp {fp:#x})"
                ));
                break;
            }
            let ret = match arch::ret_addr(self.arch(), sp, fp, innermost, link) {
                arch::RetAddr::Reg(v) => Ok(v),
                arch::RetAddr::Mem(at) => mem.u64(at),
            };
            let ret = match ret {
                Ok(v) => v,
                Err(e) => {
                    st.error = Some(format!("reading return address of {name}: {e}"));
                    break;
                }
            };
            if ret == 0 {
                break;
            }
            // A call injected by a signal handler: the caller's pc is the
            // interrupted instruction. Go 1.19's gentraceback symbolizes it
            // so only below sigpanic (`waspanic`); from 1.21 the unwinder
            // does below every injected call.
            let injected = matches!(
                name,
                "runtime.sigpanic" | "runtime.asyncPreempt" | "runtime.debugCallV2"
            );
            trap = name == "runtime.sigpanic" || (injected && self.bin.go.at_least(1, 21));
            pc = ret;
            sp = fp;
            link = 0;
            if let Some((saved_at, below)) = injected
                .then(|| arch::injected_lr_slot(self.arch(), sp))
                .flatten()
            {
                // The signal handler saved the interrupted LR on the stack
                // before faking the call.
                let Ok(x) = mem.u64(saved_at) else {
                    st.error = Some(format!("reading the LR saved below {name}"));
                    break;
                };
                sp = below;
                match self.pc_info(pc, true) {
                    None => pc = x,
                    Some(i) if i.spdelta == Some(0) => link = x,
                    Some(_) => {}
                }
            }
        }
        budget.give_back(reserved);
        // traceback1: "If that means we print nothing at all, repeat
        // forcing all frames printed" (an unstarted `go f(x)` is only its
        // wrapper and runtime.goexit).
        if !frames.iter().any(|f| f.shown) {
            frames.iter_mut().for_each(|f| f.shown = true);
        }
        st.frames = frames.into();
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn exported_runtime() {
        assert!(is_exported_runtime("runtime.Gosched"));
        assert!(is_exported_runtime("runtime.(*Func).Name"));
        assert!(!is_exported_runtime("runtime.gopark"));
        assert!(!is_exported_runtime("runtime.(*mheap).alloc"));
        assert!(!is_exported_runtime("main.Foo"));
    }
    #[test]
    fn names() {
        assert_eq!(print_name("runtime.gopanic"), "panic");
        assert_eq!(print_name("main.F[go.shape.int]"), "main.F[...]");
        assert_eq!(
            print_name("main.F[go.shape.int].func1"),
            "main.F[...].func1"
        );
    }
}
