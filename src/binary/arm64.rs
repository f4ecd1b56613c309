//! Just enough of an AArch64 decoder to find which data addresses a Go
//! function references, in the terms of [`super::x86`] (so that the rules
//! that recover runtime globals from code read both): Go reaches a global
//! with `ADRP Rt, sym` then `ADD $lo12, Rt, Rd` (its address: [`Kind::Lea`])
//! or `MOVD lo12(Rt), Rd` / `MOVD Rd, lo12(Rt)` (a load or store), and a
//! field of a struct global through the register holding its address. The
//! decoder tracks the registers whose value is such a known address (set by
//! ADRP, ADR and ADD-immediate from a known register; forgotten when any
//! other instruction may write them, and at calls), and reports:
//! - LDR/STR (unsigned offset), LDP/STP: `Load`/`Store` of the address;
//! - LDAR: `Load`; STLR: `Xchg` (Go's atomic store); exclusive and LSE
//!   atomics: `Rmw`;
//! - `CMP Rn, Rm` of a register just loaded from a known address: that load
//!   becomes `CmpReg` (x86 compares with memory directly);
//! - BL: `Call` with its target;
//! - a store of ZR or of a register holding a constant: `StoreImm`;
//! - an ADD whose address the next instruction loads or updates through is
//!   no `Lea` (x86 reads and updates memory operands directly).

use super::x86::{Insn, Kind};

/// Sign-extend the low `bits` bits of `v`.
fn sext(v: u64, bits: u32) -> i64 {
    let s = 64 - bits;
    ((v << s) as i64) >> s
}

/// Decode `code` (located at `addr`) into instructions; every 4 bytes is one.
pub fn decode(code: &[u8], addr: u64) -> Vec<Insn> {
    let mut out: Vec<Insn> = Vec::with_capacity(code.len() / 4);
    // Known addresses held by x0..x30 (31: sp / zr, never tracked).
    let mut regs: [Option<u64>; 32] = [None; 32];
    // Index in `out` of the last load into each register from a known address.
    let mut loaded: [Option<usize>; 32] = [None; 32];
    // Registers holding a constant (MOVZ/MOVN/MOVK, ORR #imm from ZR).
    let mut consts = [false; 32];
    // The last instruction's ADD-immediate address: (index in `out`, register).
    let mut last_lea: Option<(usize, usize)> = None;
    for (i, w) in code.chunks_exact(4).enumerate() {
        let pc = addr + 4 * i as u64;
        let op = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let rd = (op & 31) as usize;
        let rn = ((op >> 5) & 31) as usize;
        let mut insn = Insn {
            addr: pc,
            len: 4,
            kind: Kind::Other,
            target: None,
            size: 8,
        };
        let mut writes_rd = true;
        let mut value: Option<u64> = None;
        let mut constant = false;
        let prev_lea = last_lea.take();
        if op & 0x1f00_0000 == 0x1000_0000 {
            // ADR / ADRP.
            let imm = (((op >> 5) & 0x7_ffff) << 2 | ((op >> 29) & 3)) as u64;
            value = Some(if op & 0x8000_0000 != 0 {
                (pc & !0xfff).wrapping_add((sext(imm, 21) << 12) as u64)
            } else {
                pc.wrapping_add(sext(imm, 21) as u64)
            });
        } else if op & 0xff80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm{, LSL #12}.
            let imm = u64::from((op >> 10) & 0xfff) << (12 * ((op >> 22) & 1));
            if let Some(base) = regs[rn] {
                let t = base.wrapping_add(imm);
                value = Some(t);
                insn.kind = Kind::Lea;
                insn.target = Some(t);
            }
        } else if op & 0x3b00_0000 == 0x3900_0000 {
            // LDR/STR (unsigned offset), integer or SIMD&FP.
            let size = (op >> 30) & 3;
            let opc = (op >> 22) & 3;
            let simd = op & (1 << 26) != 0;
            let scale = if simd && opc >= 2 { 4 } else { size };
            if let Some(base) = regs[rn] {
                insn.target = Some(base.wrapping_add(u64::from((op >> 10) & 0xfff) << scale));
                insn.size = 1 << scale.min(3);
                insn.kind = match opc {
                    0 if rd == 31 || consts[rd] => Kind::StoreImm,
                    0 => Kind::Store,
                    _ => Kind::Load,
                };
            }
            writes_rd = opc != 0;
        } else if op & 0x3a00_0000 == 0x2800_0000 {
            // LDP/STP (and LDNP/STNP), offset or pre/post-index.
            let scale = if op & 0x8000_0000 != 0 { 8 } else { 4 };
            let load = op & (1 << 22) != 0;
            let imm = sext(u64::from((op >> 15) & 0x7f), 7) * scale;
            if let Some(base) = regs[rn] {
                let t = base.wrapping_add(imm as u64);
                insn.target = Some(t);
                insn.size = scale as u8;
                insn.kind = if load { Kind::Load } else { Kind::Store };
                // The second register's word, as x86 would reach it.
                let mut second = insn;
                second.target = Some(t.wrapping_add(scale as u64));
                out.push(insn);
                insn = second;
            }
            if load {
                let rt2 = ((op >> 10) & 31) as usize;
                regs[rt2] = None;
                loaded[rt2] = None;
            } else {
                writes_rd = false;
            }
            if op & (1 << 23) != 0 || op & (1 << 24) == 0 {
                // Writeback: the base changes.
                regs[rn] = None;
            }
        } else if op & 0x3f00_0000 == 0x0800_0000 {
            // Load/store exclusive, load-acquire / store-release.
            let load = op & (1 << 22) != 0;
            let exclusive = op & (1 << 23) == 0;
            if let Some(base) = regs[rn] {
                insn.target = Some(base);
                insn.size = 1 << ((op >> 30) & 3);
                insn.kind = match (exclusive, load) {
                    (true, _) => Kind::Rmw,
                    (false, true) => Kind::Load,
                    (false, false) => Kind::Xchg,
                };
            }
            if !load {
                // STLR writes nothing; STLXR writes its status register Rs.
                writes_rd = false;
                let rs = ((op >> 16) & 31) as usize;
                if exclusive {
                    regs[rs] = None;
                    loaded[rs] = None;
                }
            }
        } else if op & 0x3f20_0c00 == 0x3820_0000 {
            // LSE atomics (LDADD, SWP, ...): Rt receives the old value.
            if let Some(base) = regs[rn] {
                insn.target = Some(base);
                insn.size = 1 << ((op >> 30) & 3);
                insn.kind = Kind::Rmw;
            }
        } else if op & 0x7f20_001f == 0x6b00_001f {
            // CMP Rn, Rm (SUBS ZR, Rn, Rm, shifted register) of two values
            // loaded from memory: x86 compares the second with memory.
            let rm = ((op >> 16) & 31) as usize;
            if let (Some(_), Some(j)) = (loaded[rn], loaded[rm]) {
                out[j].kind = Kind::CmpReg;
            }
            writes_rd = false;
        } else if op & 0x1f80_0000 == 0x1280_0000 || (op & 0x1f80_0000 == 0x1200_0000 && rn == 31) {
            // MOVN/MOVZ/MOVK, or ORR Rd, ZR, #imm: a constant.
            constant = true;
        } else if op & 0xfc00_0000 == 0x9400_0000 {
            // BL: a call. Registers are kept: Go's compiler reads one after
            // a call when the callee preserves it (gcWriteBarrier, 1.19).
            // A result register used as a base right after a call could
            // give a spurious reference; the rules that read these are
            // checked against the symbol tables of every version
            // (tests/arm64.rs).
            insn.kind = Kind::Call;
            insn.target = Some(pc.wrapping_add((sext(u64::from(op & 0x3ff_ffff), 26) * 4) as u64));
            writes_rd = false;
        }
        // x86 loads and updates memory directly (`MOVL x(SB), AX`, `LOCK
        // XADDL AX, x(SB)`) where arm64 first takes the address: that ADD is
        // no LEA. Atomic stores take the address on x86 too (LEAQ; XCHGQ).
        if let Some((j, r)) = prev_lea {
            if r == rn && matches!(insn.kind, Kind::Load | Kind::Rmw) {
                out[j].kind = Kind::Other;
                out[j].target = None;
            }
        }
        if insn.kind == Kind::Lea {
            last_lea = Some((out.len(), rd));
        }
        if writes_rd && rd != 31 {
            regs[rd] = value;
            consts[rd] = constant;
            loaded[rd] = (insn.kind == Kind::Load && insn.target.is_some()).then_some(out.len());
        }
        out.push(insn);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Go 1.27's runtime.allgadd (arm64), at 0x5afc0:
    /// ADRP; ADD $3568 (allgs); LDP; ADRP; MOVD 3584(R27), R2 (allgs+16).
    #[test]
    fn adrp_add_ldr() {
        let words: [u32; 5] = [0x9000155b, 0x9137c37b, 0xa9400760, 0x9000155b, 0xf9470362];
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let v = decode(&code, 0x5afc0);
        let refs: Vec<(Kind, u64)> = v
            .iter()
            .filter_map(|i| i.target.map(|t| (i.kind, t)))
            .collect();
        assert_eq!(
            refs,
            vec![
                (Kind::Load, 0x302df0),
                (Kind::Load, 0x302df8),
                (Kind::Load, 0x302e00),
            ]
        );
    }
}
