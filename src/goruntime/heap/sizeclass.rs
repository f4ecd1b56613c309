//! The object size of every size class, read from the executable.

use super::bytes::le;
use crate::binary::dwarf::GoKind;
use crate::binary::Binary;
use anyhow::{anyhow, Result};

/// The object size of every size class, from the binary itself.
pub(super) fn read_class_sizes(bin: &Binary, n_classes: usize) -> Result<Vec<u32>> {
    const NAMES: [&str; 2] = [
        "internal/runtime/gc.SizeClassToSize",
        "runtime.class_to_size",
    ];
    let d = bin.dwarf();
    for name in NAMES {
        // Address and byte size: symbol table, else DWARF.
        let (addr, mut size) = match bin.elf.symbol(name) {
            Some(s) => s,
            None => match d.and_then(|d| d.global(name)) {
                Some(g) => (g.addr, 0),
                None => continue,
            },
        };
        // Element width and count from the DWARF type when present.
        let mut elem = 2u64;
        if let Some((len, esize)) = d.and_then(|d| {
            let ty = d.global(name)?.ty?;
            match d.resolve(ty)?.kind.clone() {
                GoKind::Array { elem, len } => Some((len, d.resolve(elem)?.size)),
                _ => None,
            }
        }) {
            if matches!(esize, 1 | 2 | 4 | 8) {
                elem = esize;
                size = len * esize;
            }
        }
        if size == 0 || size > 4096 * elem {
            continue;
        }
        let mut buf = vec![0u8; size as usize];
        if !bin.elf.read_vaddr(addr, &mut buf, true) {
            continue;
        }
        return Ok(buf
            .chunks_exact(elem as usize)
            .map(|c| le(c, 0, elem) as u32)
            .collect());
    }
    // No symbol and no DWARF (`-ldflags='-s -w'`): the table is an
    // initialised variable, found by its contents in the writable segments.
    if d.is_none() {
        if let Some(v) = scan_class_sizes(bin, n_classes) {
            return Ok(v);
        }
    }
    Err(anyhow!(
        "size class table (runtime.class_to_size / internal/runtime/gc.SizeClassToSize) not found in the executable"
    ))
}

/// `class_to_size` located by its contents: `n_classes` little-endian
/// uint16s starting 0, 8, 16, 24, 32, 48 (the classes of every Go version
/// since 1.12, sizeclasses.go), strictly increasing multiples of 8 that end
/// at the largest small object size, 32768.
fn scan_class_sizes(bin: &Binary, n_classes: usize) -> Option<Vec<u32>> {
    const HEAD: [u16; 6] = [0, 8, 16, 24, 32, 48];
    const MAX_SMALL: u32 = 32768;
    if !(HEAD.len()..=1024).contains(&n_classes) {
        return None;
    }
    let head: Vec<u8> = HEAD.iter().flat_map(|v| v.to_le_bytes()).collect();
    for seg in bin
        .elf
        .segments
        .iter()
        .filter(|s| s.writable && s.filesz > 0)
    {
        let Some(data) = bin.elf.vaddr_tail(seg.vaddr) else {
            continue;
        };
        let need = n_classes * 2;
        let mut at = 0;
        while at + need <= data.len() {
            if data[at..at + head.len()] == head[..] {
                let v: Vec<u32> = data[at..at + need]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                    .collect();
                let ok = v.windows(2).all(|w| w[0] < w[1])
                    && v.iter().all(|&x| x % 8 == 0)
                    && v.last() == Some(&MAX_SMALL);
                if ok {
                    return Some(v);
                }
            }
            at += 2;
        }
    }
    None
}
