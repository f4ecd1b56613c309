//! Where a goroutine's frames start: the one rule shared by the unwinder
//! (which frame to start from) and capture (from which address to store the
//! used stack), so that capture stores every byte the unwinder reads.
//!
//! Imports nothing: it decides from plain numbers, read by whoever holds a
//! g (a decoded [`super::G`], or capture's key fields of one).

/// The fields of a g, and of the thread running it, that decide where its
/// frames start.
#[derive(Debug, Clone, Copy, Default)]
pub struct StackState {
    pub lo: u64,
    pub hi: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    /// `_Grunning` (scan bit cleared).
    pub running: bool,
    /// A running goroutine's thread registers `(rip, rsp)`, when captured.
    pub regs: Option<(u64, u64)>,
    /// A running goroutine's m `(vdsoPC, vdsoSP)`, when its m is known.
    pub vdso: Option<(u64, u64)>,
}

impl StackState {
    /// `sp` lies in the goroutine's stack (its top included: an empty stack).
    fn holds(&self, sp: u64) -> bool {
        sp >= self.lo && sp <= self.hi
    }

    /// The unwinder's first frame `(pc, sp, trap)` (`trap`: the pc is the
    /// faulting instruction, not a return address), or why there is none.
    /// `in_go` tells whether a pc is in a Go function.
    pub fn unwind_start(&self, in_go: impl Fn(u64) -> bool) -> Result<(u64, u64, bool), String> {
        if self.running && self.syscallsp == 0 {
            let Some((rip, rsp)) = self.regs else {
                return Err(
                    "running on a thread whose registers were not captured; stack unavailable"
                        .into(),
                );
            };
            if self.holds(rsp) {
                if in_go(rip) {
                    return Ok((rip, rsp, true));
                }
                if let Some((vdso_pc, vdso_sp)) = self.vdso {
                    if vdso_sp != 0 && self.holds(vdso_sp) {
                        return Ok((vdso_pc, vdso_sp, false));
                    }
                }
                return Err(format!(
                    "running outside Go code (pc {rip:#x}); stack unavailable"
                ));
            }
            // The thread is on its g0 or signal stack (scheduler, systemstack,
            // signal handler): the goroutine's own frames start at g.sched
            // when systemstack saved it there.
            if self.sched_sp != 0 && self.holds(self.sched_sp) && self.sched_pc != 0 {
                return Ok((self.sched_pc, self.sched_sp, false));
            }
            return Err(
                "goroutine running on other thread (on its system stack); stack unavailable".into(),
            );
        }
        if self.syscallsp != 0 {
            return Ok((self.syscallpc, self.syscallsp, false));
        }
        if self.sched_sp == 0 || self.sched_pc == 0 {
            return Err("no saved context (g.sched is empty)".into());
        }
        Ok((self.sched_pc, self.sched_sp, false))
    }

    /// Where capture starts storing the used stack (up to `hi`): the lowest
    /// of every sp [`unwind_start`](Self::unwind_start) may start from that
    /// lies in the stack, so whichever it picks at analysis time, its bytes
    /// are there. None: no candidate lies in the stack.
    pub fn capture_start(&self) -> Option<u64> {
        let mut cands = [self.sched_sp, self.syscallsp, 0, 0];
        if self.running {
            if let Some((_, rsp)) = self.regs {
                cands[2] = rsp;
            }
            if let Some((_, vdso_sp)) = self.vdso {
                cands[3] = vdso_sp;
            }
        }
        cands
            .into_iter()
            .filter(|&sp| sp != 0 && self.holds(sp))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked() -> StackState {
        StackState {
            lo: 0x1000,
            hi: 0x3000,
            sched_sp: 0x2800,
            sched_pc: 0x401000,
            ..Default::default()
        }
    }

    /// Capture's start is never above the unwinder's, on every path.
    #[test]
    fn capture_covers_unwind_start() {
        let mut cases = vec![parked()];
        let mut s = parked();
        s.syscallsp = 0x2000;
        s.syscallpc = 0x402000;
        cases.push(s);
        let mut s = parked();
        s.running = true;
        s.sched_sp = 0;
        s.regs = Some((0x403000, 0x1800));
        cases.push(s);
        let mut s = parked();
        s.running = true;
        s.regs = Some((0x7fff_0000, 0x1900));
        s.vdso = Some((0x404000, 0x1c00));
        cases.push(s);
        let mut s = parked();
        s.running = true;
        s.regs = Some((0x403000, 0x7fff_0000));
        cases.push(s);
        for (i, s) in cases.iter().enumerate() {
            let (_, sp, _) = s.unwind_start(|pc| pc < 0x500000).unwrap();
            let start = s.capture_start().unwrap();
            assert!(
                start <= sp,
                "case {i}: capture from {start:#x}, unwind from {sp:#x}"
            );
        }
    }

    #[test]
    fn no_start_outside_the_stack() {
        let mut s = parked();
        s.sched_sp = 0x8000;
        assert_eq!(s.capture_start(), None);
        s.sched_sp = 0;
        assert!(s.unwind_start(|_| true).is_err());
    }
}
