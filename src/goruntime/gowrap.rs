//! What a compiler wrapper calls. `go f(x)` starts its goroutine in a
//! wrapper (`main.main.gowrap1`, Go 1.21+; method value wrappers before):
//! a started goroutine shows `f` as the frame the wrapper called, but one
//! that never ran has only the wrapper on its stack. Its `f` is then read
//! from the wrapper's code: the first function inlined into it or called
//! directly (runtime helpers such as `runtime.morestack_noctxt` aside), in
//! address order.

use super::traceback::print_name;
use super::Target;
use crate::binary::x86::{self, Kind};
use std::sync::Arc;

/// Wrappers are a few dozen instructions; nothing longer is read.
const MAX_WRAPPER_BYTES: u64 = 4096;

impl Target {
    /// The function the wrapper starting at runtime PC `pc` calls, as the
    /// runtime prints its name; None when it calls through a register or
    /// its code cannot be read.
    pub fn wrapped_function(&self, pc: u64) -> Option<Arc<str>> {
        let f = self.find_func(pc)?;
        let entry = f.entry;
        self.wrapped.get_or(entry, || {
            self.resolve_wrapped(&f).map(|n| Arc::from(print_name(&n)))
        })
    }

    fn resolve_wrapped(&self, f: &crate::binary::pclntab::FuncInfo) -> Option<String> {
        let p = &self.bin.pcln;
        let (entry, end) = (f.entry, p.func_end(f));
        let len = end.checked_sub(entry)?.min(MAX_WRAPPER_BYTES);
        let mut code = vec![0u8; len as usize];
        if !self.bin.elf.read_vaddr(entry, &mut code, false) {
            return None;
        }
        let wrapper_in_runtime = p.func_name(f).starts_with("runtime.");
        for insn in x86::decode(&code, entry) {
            // Inlined into the wrapper: the outermost inlined frame.
            let frames = p.frames(f, insn.addr);
            if frames.len() >= 2 {
                return Some(frames[frames.len() - 2].function.clone());
            }
            if insn.kind != Kind::Call {
                continue;
            }
            let Some(target) = insn.target else { continue };
            let Some(callee) = p.find_func(target) else {
                continue;
            };
            let name = p.func_name(&callee);
            // A wrapper in the runtime may call into the runtime
            // (`runtime.gcenable.gowrap1` → `runtime.bgsweep`); a user
            // wrapper's unexported runtime callees are helpers.
            let helper = name.starts_with("runtime.morestack")
                || (name.starts_with("runtime.")
                    && !wrapper_in_runtime
                    && !super::traceback::is_exported_runtime(name));
            if !helper {
                return Some(name.to_string());
            }
        }
        None
    }
}
