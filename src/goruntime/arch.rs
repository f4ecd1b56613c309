//! What the runtime's unwinder (runtime/traceback.go, 1.19–1.27) does
//! differently per architecture: where a frame ends, where its return
//! address is (`usesLR`), and how a call injected by a signal handler
//! (sigpanic, asyncPreempt, debugCallV2) is stepped over.
//!
//! amd64: `CALL` pushes the return address just above the callee's frame:
//! `fp = sp + spdelta + 8` and the return address is at `fp - 8`.
//!
//! arm64: the caller's `BL` leaves the return address in LR (x30), which the
//! callee's prologue saves at `0(SP)` of its own frame (the frame pointer
//! x29 just below it): `fp = sp + spdelta`, the return address is at `sp`,
//! but in LR itself for the innermost frame before its prologue (or a
//! frameless leaf). A signal handler that injects a call saves LR at the new
//! `0(SP)` (`sigctxt.pushCall`/`preparePanic`) and moves SP down by
//! `alignUp(MinFrameSize, StackAlign)` = 16.

use crate::model::Arch;

/// Where a frame's return address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetAddr {
    /// In memory at this address.
    Mem(u64),
    /// In the link register (this value).
    Reg(u64),
}

/// The end of a frame (the caller's SP) from the frame's SP and its pcsp
/// delta at the frame's pc.
pub fn frame_end(arch: Arch, sp: u64, spdelta: i64) -> u64 {
    let fp = sp.wrapping_add(spdelta as u64);
    match arch {
        Arch::X86_64 => fp.wrapping_add(8),
        Arch::Aarch64 => fp,
    }
}

/// The address of a frame's arguments (`frame.argp`): `fp` on amd64,
/// `fp + MinFrameSize` on arm64 — `sp + spdelta + 8` on both.
pub fn args_at(arch: Arch, sp: u64, spdelta: i64) -> u64 {
    let fp = frame_end(arch, sp, spdelta);
    match arch {
        Arch::X86_64 => fp,
        Arch::Aarch64 => fp.wrapping_add(8),
    }
}

/// Whether a frame from `sp` to `fp` is well formed: amd64 frames hold at
/// least their return address; arm64 frames may be empty (a leaf before its
/// prologue, or one whose return address is known from a register).
pub fn frame_ok(arch: Arch, sp: u64, fp: u64) -> bool {
    match arch {
        Arch::X86_64 => fp > sp && fp >= 8,
        Arch::Aarch64 => fp >= sp,
    }
}

/// Where the return address of the frame `sp..fp` is. `lr`: the link
/// register's value when it still holds this frame's return address (the
/// innermost frame's thread register, or one restored by an injected call),
/// else 0. The runtime: `if innermost && frame.sp < frame.fp || frame.lr == 0
/// { frame.lr = *(*uintptr)(frame.sp) }`.
pub fn ret_addr(arch: Arch, sp: u64, fp: u64, innermost: bool, lr: u64) -> RetAddr {
    match arch {
        Arch::X86_64 => RetAddr::Mem(fp.wrapping_sub(8)),
        Arch::Aarch64 => {
            if (innermost && sp < fp) || lr == 0 {
                RetAddr::Mem(sp)
            } else {
                RetAddr::Reg(lr)
            }
        }
    }
}

/// After returning into the frame interrupted by an injected call, on a
/// link-register machine: the address of the LR the signal handler saved
/// (`x := *(*uintptr)(frame.sp)`) and the interrupted frame's SP. None on
/// amd64, where the injected call looks like an ordinary one.
pub fn injected_lr_slot(arch: Arch, sp: u64) -> Option<(u64, u64)> {
    match arch {
        Arch::X86_64 => None,
        Arch::Aarch64 => Some((sp, sp.wrapping_add(16))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_frames() {
        assert_eq!(frame_end(Arch::X86_64, 0x1000, 0x18), 0x1020);
        assert_eq!(args_at(Arch::X86_64, 0x1000, 0x18), 0x1020);
        assert_eq!(
            ret_addr(Arch::X86_64, 0x1000, 0x1020, true, 0),
            RetAddr::Mem(0x1018)
        );
        assert!(!frame_ok(Arch::X86_64, 0x1000, 0x1000));
        assert_eq!(injected_lr_slot(Arch::X86_64, 0x1000), None);
    }

    #[test]
    fn arm64_frames() {
        assert_eq!(frame_end(Arch::Aarch64, 0x1000, 0x20), 0x1020);
        assert_eq!(args_at(Arch::Aarch64, 0x1000, 0x20), 0x1028);
        // Saved LR at 0(SP) once the prologue ran.
        assert_eq!(
            ret_addr(Arch::Aarch64, 0x1000, 0x1020, true, 0x4000),
            RetAddr::Mem(0x1000)
        );
        // Innermost leaf / function entry: still in LR.
        assert_eq!(
            ret_addr(Arch::Aarch64, 0x1000, 0x1000, true, 0x4000),
            RetAddr::Reg(0x4000)
        );
        assert_eq!(
            ret_addr(Arch::Aarch64, 0x1000, 0x1000, false, 0),
            RetAddr::Mem(0x1000)
        );
        assert!(frame_ok(Arch::Aarch64, 0x1000, 0x1000));
        assert_eq!(
            injected_lr_slot(Arch::Aarch64, 0x1000),
            Some((0x1000, 0x1010))
        );
    }
}
