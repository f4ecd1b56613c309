//! Consistency checks of runtime globals against memory, for globals that
//! were recovered from code rather than read from a symbol table: if an
//! address were wrong, these invariants of the runtime would not hold.

use super::Runtime;
use crate::memory::Memory;

impl<Mem: Memory> Runtime<'_, Mem> {
    /// Warnings for recovered globals whose values contradict each other
    /// (empty when the binary has a symbol table or everything agrees).
    pub fn check_recovered_globals(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.t.bin.elf.has_symtab() {
            return w;
        }
        let g = &self.t.globals;
        // allglen is stored right after allgs grows: equal while stopped.
        if let (Ok(len), Ok(slen)) = (self.mem.u64(g.allglen), self.mem.u64(g.allgs + 8)) {
            if len != slen {
                w.push(format!(
                    "recovered globals disagree: runtime.allglen = {len} but len(runtime.allgs) = {slen}"
                ));
            }
        }
        // procresize keeps len(allp) == gomaxprocs outside a stop-the-world.
        if let (Ok(n), Ok(gmp)) = (self.mem.u64(g.allp + 8), self.mem.u32(g.gomaxprocs)) {
            if n != gmp as u64 {
                w.push(format!(
                    "recovered globals disagree: len(runtime.allp) = {n} but runtime.gomaxprocs = {gmp}"
                ));
            }
        }
        w
    }
}
