//! A small x86-64 instruction length decoder for Go-compiled code, with just
//! enough semantics to find the globals a function references: for each
//! instruction, its length, whether it has a RIP-relative memory operand
//! (ModRM mod=00 rm=101 disp32) and where that points, the operand size and a
//! coarse kind (load, store, lea, cmp, xchg...).
//!
//! It covers the one-byte and 0F-map opcodes the Go compiler emits for amd64
//! (GOAMD64=v1..v3 scalar and SSE code). Anything else (VEX/EVEX, x87, far
//! jumps...) stops decoding of that function: callers get the instructions
//! decoded so far, never a guess about boundaries.

/// What an instruction does with its memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `MOV r, m` (and zero/sign-extending loads).
    Load,
    /// `MOV m, r`.
    Store,
    /// `MOV m, imm`.
    StoreImm,
    /// `LEA r, m`.
    Lea,
    /// `CMP m, r` / `CMP r, m`.
    CmpReg,
    /// `CMP m, imm` / `TEST m, imm`.
    CmpImm,
    /// `XCHG m, r` (Go's atomic stores).
    Xchg,
    /// `LOCK XADD` / `LOCK CMPXCHG` / `INC` / `DEC` / ALU read-modify-write.
    Rmw,
    /// `CALL rel32`; `target` is the callee.
    Call,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub addr: u64,
    pub len: u8,
    pub kind: Kind,
    /// Absolute target of a RIP-relative operand (or of a direct call).
    pub target: Option<u64>,
    /// Operand size in bytes (1, 2, 4, 8).
    pub size: u8,
}

/// Decode `code` (located at `addr`) into instructions until the end or the
/// first opcode this decoder does not know.
pub fn decode(code: &[u8], addr: u64) -> Vec<Insn> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < code.len() {
        match decode_one(&code[off..], addr + off as u64) {
            Some(i) => {
                off += i.len as usize;
                out.push(i);
            }
            None => break,
        }
    }
    out
}

/// ModRM operand shape: immediate bytes follow.
#[derive(Clone, Copy)]
enum Imm {
    None,
    B1,
    B2,
    /// 4 bytes (2 with an operand-size prefix).
    Z,
    /// 8 bytes with REX.W, else Z (MOV r, imm).
    V,
}

/// Decode one instruction; None for unknown opcodes or truncated input.
pub fn decode_one(b: &[u8], addr: u64) -> Option<Insn> {
    let mut p = 0usize;
    let mut opsize16 = false;
    let mut rep = false;
    // Legacy prefixes.
    loop {
        match *b.get(p)? {
            0x66 => opsize16 = true,
            0xF2 | 0xF3 => rep = true,
            0xF0 | 0x2E | 0x3E | 0x26 | 0x36 | 0x64 | 0x65 | 0x67 => {}
            _ => break,
        }
        p += 1;
        if p > 14 {
            return None;
        }
    }
    let mut rex_w = false;
    if let 0x40..=0x4F = *b.get(p)? {
        rex_w = b[p] & 8 != 0;
        p += 1;
    }
    let op = *b.get(p)?;
    p += 1;
    let opnd = if rex_w {
        8
    } else if opsize16 {
        2
    } else {
        4
    };
    let _ = rep;
    // (has modrm, immediate, kind, size)
    let (modrm, imm, kind, size): (bool, Imm, Kind, u8) = match op {
        0x0F => return decode_0f(b, p, addr, opnd, rex_w),
        // ALU r/m forms: op&7 = 0..3 modrm, 4 = AL,imm8, 5 = eAX,immZ.
        0x00..=0x3F if op & 7 < 4 && !matches!(op, 0x26 | 0x2E | 0x36 | 0x3E) => {
            let byte = op & 1 == 0;
            let is_cmp = (0x38..=0x3B).contains(&op);
            let to_reg = op & 2 != 0;
            let kind = if is_cmp {
                Kind::CmpReg
            } else if to_reg {
                Kind::Load
            } else {
                Kind::Rmw
            };
            (true, Imm::None, kind, if byte { 1 } else { opnd })
        }
        0x00..=0x3F if op & 7 == 4 => (false, Imm::B1, Kind::Other, 1),
        0x00..=0x3F if op & 7 == 5 => (false, Imm::Z, Kind::Other, opnd),
        0x50..=0x5F => (false, Imm::None, Kind::Other, 8),
        0x63 => (true, Imm::None, Kind::Load, 4),
        0x68 => (false, Imm::Z, Kind::Other, 8),
        0x69 => (true, Imm::Z, Kind::Other, opnd),
        0x6A => (false, Imm::B1, Kind::Other, 8),
        0x6B => (true, Imm::B1, Kind::Other, opnd),
        0x70..=0x7F | 0xEB => (false, Imm::B1, Kind::Other, 1),
        0x80 | 0x81 | 0x83 => {
            // Group 1: /7 is CMP, the others modify the operand.
            let kind = if (b.get(p)? >> 3) & 7 == 7 {
                Kind::CmpImm
            } else {
                Kind::Rmw
            };
            match op {
                0x80 => (true, Imm::B1, kind, 1),
                0x81 => (true, Imm::Z, kind, opnd),
                _ => (true, Imm::B1, kind, opnd),
            }
        }
        0x84 => (true, Imm::None, Kind::CmpReg, 1),
        0x85 => (true, Imm::None, Kind::CmpReg, opnd),
        0x86 => (true, Imm::None, Kind::Xchg, 1),
        0x87 => (true, Imm::None, Kind::Xchg, opnd),
        0x88 => (true, Imm::None, Kind::Store, 1),
        0x89 => (true, Imm::None, Kind::Store, opnd),
        0x8A => (true, Imm::None, Kind::Load, 1),
        0x8B => (true, Imm::None, Kind::Load, opnd),
        0x8D => (true, Imm::None, Kind::Lea, opnd),
        0x8F => (true, Imm::None, Kind::Other, 8),
        0x90..=0x99 | 0x9C | 0x9D | 0x9E | 0x9F => (false, Imm::None, Kind::Other, opnd),
        0xA4..=0xA7 | 0xAA..=0xAF => (false, Imm::None, Kind::Other, opnd),
        0xA8 => (false, Imm::B1, Kind::Other, 1),
        0xA9 => (false, Imm::Z, Kind::Other, opnd),
        0xB0..=0xB7 => (false, Imm::B1, Kind::Other, 1),
        0xB8..=0xBF => (false, Imm::V, Kind::Other, opnd),
        0xC0 => (true, Imm::B1, Kind::Rmw, 1),
        0xC1 => (true, Imm::B1, Kind::Rmw, opnd),
        0xC2 => (false, Imm::B2, Kind::Other, 8),
        0xC3 | 0xC9 | 0xCC | 0xF4 | 0xF5 | 0xF8..=0xFD => (false, Imm::None, Kind::Other, 1),
        0xC6 => (true, Imm::B1, Kind::StoreImm, 1),
        0xC7 => (true, Imm::Z, Kind::StoreImm, opnd),
        0xCD => (false, Imm::B1, Kind::Other, 1),
        0xD0 | 0xD2 => (true, Imm::None, Kind::Rmw, 1),
        0xD1 | 0xD3 => (true, Imm::None, Kind::Rmw, opnd),
        0xE8 => {
            let rel = i32::from_le_bytes(b.get(p..p + 4)?.try_into().ok()?);
            let len = p + 4;
            return Some(Insn {
                addr,
                len: len as u8,
                kind: Kind::Call,
                target: Some((addr + len as u64).wrapping_add(rel as i64 as u64)),
                size: 8,
            });
        }
        0xE9 => (false, Imm::Z, Kind::Other, 4),
        0xF6 | 0xF7 => {
            // TEST r/m, imm for /0 and /1; the others (NOT, NEG, MUL, DIV) have none.
            let reg = (b.get(p)? >> 3) & 7;
            let sz = if op == 0xF6 { 1 } else { opnd };
            let imm = match (reg, op) {
                (0 | 1, 0xF6) => Imm::B1,
                (0 | 1, _) => Imm::Z,
                _ => Imm::None,
            };
            let kind = if reg <= 1 { Kind::CmpImm } else { Kind::Rmw };
            (true, imm, kind, sz)
        }
        0xFE => (true, Imm::None, Kind::Rmw, 1),
        0xFF => {
            let reg = (b.get(p)? >> 3) & 7;
            let kind = match reg {
                0 | 1 => Kind::Rmw,
                7 => return None,
                _ => Kind::Other,
            };
            (true, Imm::None, kind, opnd)
        }
        _ => return None,
    };
    finish(b, p, addr, modrm, imm, kind, size, opsize16, rex_w)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    b: &[u8],
    mut p: usize,
    addr: u64,
    modrm: bool,
    imm: Imm,
    mut kind: Kind,
    size: u8,
    opsize16: bool,
    rex_w: bool,
) -> Option<Insn> {
    let mut rip_disp: Option<i32> = None;
    if modrm {
        let m = *b.get(p)?;
        p += 1;
        let md = m >> 6;
        let rm = m & 7;
        if md != 3 {
            if rm == 4 {
                let sib = *b.get(p)?;
                p += 1;
                if md == 0 && sib & 7 == 5 {
                    p += 4;
                }
            }
            match md {
                0 if rm == 5 => {
                    rip_disp = Some(i32::from_le_bytes(b.get(p..p + 4)?.try_into().ok()?));
                    p += 4;
                }
                1 => p += 1,
                2 => p += 4,
                _ => {}
            }
        } else if matches!(
            kind,
            Kind::Load | Kind::Store | Kind::Lea | Kind::Xchg | Kind::StoreImm
        ) {
            // Register-to-register form: no memory operand.
            kind = Kind::Other;
        }
        // CmpImm/Rmw on a register: keep the kind; there is no target anyway.
    }
    p += match imm {
        Imm::None => 0,
        Imm::B1 => 1,
        Imm::B2 => 2,
        Imm::Z => {
            if opsize16 {
                2
            } else {
                4
            }
        }
        Imm::V => {
            if rex_w {
                8
            } else if opsize16 {
                2
            } else {
                4
            }
        }
    };
    if p > b.len() || p > 15 {
        return None;
    }
    let end = addr + p as u64;
    let target = rip_disp.map(|d| end.wrapping_add(d as i64 as u64));
    Some(Insn {
        addr,
        len: p as u8,
        kind,
        target,
        size,
    })
}

fn decode_0f(b: &[u8], mut p: usize, addr: u64, opnd: u8, rex_w: bool) -> Option<Insn> {
    let op = *b.get(p)?;
    p += 1;
    let opsize16 = opnd == 2;
    let (modrm, imm, kind, size) = match op {
        0x05 | 0x0B | 0x31 | 0xA2 | 0x77 => (false, Imm::None, Kind::Other, 4),
        0x01 | 0x0D | 0x18..=0x1F => (true, Imm::None, Kind::Other, opnd),
        0x10..=0x17 | 0x28..=0x2F | 0x50..=0x6F | 0x74..=0x76 | 0x7E | 0x7F => {
            // SSE moves and arithmetic: treat stores (11, 13, 17, 29, 2B, 7E,
            // 7F) and loads alike as Other; only integer globals matter here.
            (true, Imm::None, Kind::Other, 16)
        }
        0x38 => {
            p += 1; // three-byte map 0F 38 xx
            (true, Imm::None, Kind::Other, 16)
        }
        0x3A => {
            p += 1; // three-byte map 0F 3A xx ib
            (true, Imm::B1, Kind::Other, 16)
        }
        0x40..=0x4F => (true, Imm::None, Kind::Load, opnd),
        0x70..=0x73 | 0xC2 | 0xC4..=0xC6 => (true, Imm::B1, Kind::Other, 16),
        0x80..=0x8F => (false, Imm::Z, Kind::Other, 4),
        0x90..=0x9F => (true, Imm::None, Kind::Store, 1),
        0xA3 | 0xAB | 0xB3 | 0xBB | 0xA5 | 0xAD | 0xAF | 0xBC | 0xBD | 0xB8 => {
            (true, Imm::None, Kind::Other, opnd)
        }
        0xA4 | 0xAC | 0xBA => (true, Imm::B1, Kind::Other, opnd),
        0xAE => (true, Imm::None, Kind::Other, 4),
        0xB0 => (true, Imm::None, Kind::Rmw, 1),
        0xB1 => (true, Imm::None, Kind::Rmw, opnd),
        0xB6 | 0xBE => (true, Imm::None, Kind::Load, 1),
        0xB7 | 0xBF => (true, Imm::None, Kind::Load, 2),
        0xC0 => (true, Imm::None, Kind::Rmw, 1),
        0xC1 => (true, Imm::None, Kind::Rmw, opnd),
        0xC7 => (true, Imm::None, Kind::Rmw, 8),
        0xC8..=0xCF => (false, Imm::None, Kind::Other, opnd),
        0xD0..=0xFE => (true, Imm::None, Kind::Other, 16),
        _ => return None,
    };
    // CMOVcc is a load into a register only if the condition holds; Go uses
    // it on registers. Keep Load: the operand is still read.
    finish(b, p, addr, modrm, imm, kind, size, opsize16, rex_w)
}

/// RIP-relative operands of the instructions, as (instruction, target).
pub fn rip_refs(insns: &[Insn]) -> impl Iterator<Item = (&Insn, u64)> {
    insns
        .iter()
        .filter(|i| i.kind != Kind::Call)
        .filter_map(|i| i.target.map(|t| (i, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_targets() {
        // LEAQ 0x2eb362(IP), AX at 0x44f28f (from Go 1.27's runtime.allgadd).
        let i = decode_one(&[0x48, 0x8d, 0x05, 0x62, 0xb3, 0x2e, 0x00], 0x44f28f).unwrap();
        assert_eq!((i.len, i.kind, i.size), (7, Kind::Lea, 8));
        assert_eq!(i.target, Some(0x44f296 + 0x2eb362));
        // CMPL $0x0, runtime.writeBarrier(SB): 83 3d disp32 imm8.
        let i = decode_one(&[0x83, 0x3d, 0x19, 0xb5, 0x2e, 0x00, 0x00], 0x44f2d0).unwrap();
        assert_eq!((i.len, i.kind, i.size), (7, Kind::CmpImm, 4));
        assert_eq!(i.target, Some(0x44f2d7 + 0x2eb519));
        // XCHGQ CX, 0(DX)
        let i = decode_one(&[0x48, 0x87, 0x0a], 0).unwrap();
        assert_eq!((i.len, i.kind, i.target), (3, Kind::Xchg, None));
        // NOPL 0(AX)(AX*1)
        assert_eq!(
            decode_one(&[0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0], 0)
                .unwrap()
                .len,
            8
        );
        // MOVQ -0x8(AX)(BX*8), CX
        assert_eq!(
            decode_one(&[0x48, 0x8b, 0x4c, 0xd8, 0xf8], 0).unwrap().len,
            5
        );
        // MOVL $0x1, DI
        assert_eq!(decode_one(&[0xbf, 1, 0, 0, 0], 0).unwrap().len, 5);
        // MOVQ $imm64, AX
        assert_eq!(
            decode_one(&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 0)
                .unwrap()
                .len,
            10
        );
        // MOVW $1, 0x10(AX): 66 c7 40 10 01 00
        assert_eq!(
            decode_one(&[0x66, 0xc7, 0x40, 0x10, 1, 0], 0).unwrap().len,
            6
        );
        // CALL rel32
        let i = decode_one(&[0xe8, 0x10, 0, 0, 0], 0x1000).unwrap();
        assert_eq!((i.kind, i.target), (Kind::Call, Some(0x1015)));
        // Truncated input and unknown opcodes decode to None.
        assert!(decode_one(&[0x48, 0x8d, 0x05, 0x62], 0).is_none());
        assert!(decode_one(&[0xc5, 0xf8, 0x77], 0).is_none());
        assert!(decode_one(&[], 0).is_none());
    }
}
