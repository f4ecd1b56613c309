//! The kinds of span specials (`_KindSpecial*` in mheap.go) the heap graph
//! treats as roots, per Go version: DWARF constants when present, else the
//! values of each version's sources (the numbering moved in 1.23, when weak
//! handles came, and in 1.25, when tiny-block specials were put first).

use super::go::GoVersion;
use crate::binary::Binary;

/// Kind numbers of the specials that are GC roots (`markrootSpans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialKinds {
    /// `_KindSpecialFinalizer`: the object's referents and `fn` are roots.
    pub finalizer: u8,
    /// `_KindSpecialWeakHandle` (Go 1.23+): `handle` is a root.
    pub weak_handle: Option<u8>,
    /// `_KindSpecialCleanup` (Go 1.24+): `fn` (1.24–1.25) or the
    /// `cleanupFn` (`call`, `fn`, `arg`; 1.26+) is a root.
    pub cleanup: Option<u8>,
}

impl SpecialKinds {
    /// The values of the Go sources of `go` (1.19–1.27 measured).
    pub fn for_version(go: GoVersion) -> SpecialKinds {
        if go.at_least(1, 25) {
            SpecialKinds {
                finalizer: 2,
                weak_handle: Some(3),
                cleanup: Some(7),
            }
        } else if go.at_least(1, 23) {
            SpecialKinds {
                finalizer: 1,
                weak_handle: Some(2),
                cleanup: go.at_least(1, 24).then_some(6),
            }
        } else {
            SpecialKinds {
                finalizer: 1,
                weak_handle: None,
                cleanup: None,
            }
        }
    }

    /// DWARF constants (`runtime._KindSpecialFinalizer`...) where the
    /// binary has them, each else the version's value.
    pub fn for_binary(bin: &Binary) -> SpecialKinds {
        let v = Self::for_version(bin.go);
        let Some(d) = bin.dwarf() else {
            return v;
        };
        let c = |name: &str| {
            d.constant(name)
                .filter(|k| (1..=255).contains(k))
                .map(|k| k as u8)
        };
        SpecialKinds {
            finalizer: c("runtime._KindSpecialFinalizer").unwrap_or(v.finalizer),
            weak_handle: c("runtime._KindSpecialWeakHandle").or(v.weak_handle),
            cleanup: c("runtime._KindSpecialCleanup").or(v.cleanup),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_per_version() {
        let k = |m| SpecialKinds::for_version(GoVersion::new(1, m));
        assert_eq!(k(19).finalizer, 1);
        assert_eq!(k(22).weak_handle, None);
        assert_eq!(k(23).weak_handle, Some(2));
        assert_eq!(k(23).cleanup, None);
        assert_eq!(k(24).cleanup, Some(6));
        assert_eq!(k(25).finalizer, 2);
        assert_eq!(k(27).cleanup, Some(7));
    }
}

/// The finalizer queue's blocks (`runtime.allfin`, chained by `alllink`;
/// `finblock` up to 1.26, `finBlock` from 1.27, same layout): `cnt` queued
/// `finalizer{fn, arg, nret, fint, ot}` records at `fin`, scanned by
/// `markroot`'s `fixedRootFinalizers` with `finptrmask` (fn, arg, fint, ot).
/// Unchanged 1.19–1.27 (checked against DWARF by tests/specials.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinBlockLayout {
    /// `_FinBlockSize` / `finBlockSize`: what a block is allocated with.
    pub alloc_size: u64,
    pub alllink: u64,
    pub cnt: u64,
    pub fin: u64,
    /// `sizeof(finalizer)`, and its pointer fields.
    pub entry_size: u64,
    pub fn_: u64,
    pub arg: u64,
    pub fint: u64,
    pub ot: u64,
}

/// [`FinBlockLayout`] of every supported version (`_FinBlockSize` /
/// `finBlockSize` = 4 KiB).
pub const FIN_BLOCK: FinBlockLayout = FinBlockLayout {
    alloc_size: 4096,
    alllink: 0,
    cnt: 16,
    fin: 24,
    entry_size: 40,
    fn_: 0,
    arg: 8,
    fint: 24,
    ot: 32,
};

impl FinBlockLayout {
    /// Records a block holds (`len(fin)`).
    pub fn capacity(&self) -> u64 {
        (self.alloc_size - self.fin - 8) / self.entry_size
    }
    /// `sizeof(finblock)`: what is read of a block.
    pub fn size(&self) -> u64 {
        self.fin + self.capacity() * self.entry_size
    }
}

/// The writable globals a runtime function refers to, in code order:
/// (load or store, bytes, address). x86-64 and arm64 code alike.
fn global_refs(bin: &Binary, func: &str) -> Option<Vec<(crate::binary::x86::Kind, u8, u64)>> {
    use crate::binary::x86;
    let pcln = &bin.pcln;
    let f = pcln.func_by_name(func)?;
    let len = pcln.func_end(&f).checked_sub(f.entry)?.min(256 << 10);
    let code = bin.elf.vaddr_tail(f.entry)?;
    let code = code.get(..len as usize).unwrap_or(code);
    let insns = match bin.elf.arch {
        crate::model::Arch::X86_64 => x86::decode(code, f.entry),
        crate::model::Arch::Aarch64 => crate::binary::arm64::decode(code, f.entry),
    };
    let writable = |a: u64| {
        bin.elf
            .segments
            .iter()
            .any(|s| s.writable && a >= s.vaddr && a < s.vaddr + s.memsz)
    };
    Some(
        x86::rip_refs(&insns)
            .filter(|(_, t)| writable(*t))
            .map(|(i, t)| (i.kind, i.size, t))
            .collect(),
    )
}

/// `runtime.gcCleanups` (link-time, Go 1.25+) from the code of
/// `runtime.markroot`, for executables without a symbol table. Its
/// `fixedRootFinalizers` case walks the finalizer blocks, then its
/// `fixedRootCleanups` case the cleanup blocks (1.25–1.27):
///
/// ```text
/// for fb := allfin; fb != nil; fb = fb.alllink {            // MOVQ allfin, reg
/// ...
/// for cb := (*cleanupBlock)(gcCleanups.all.Load()); ...     // MOVQ gcCleanups+all, reg
/// ```
///
/// so `gcCleanups.all` is the next global loaded (x86-64: `MOVQ`) or
/// addressed (arm64: `ADRP`+`ADD`, then `LDAR`) after the load of `allfin`
/// (tests/specials.rs checks it against the symbol table, amd64 and arm64).
pub fn recover_gc_cleanups(bin: &Binary, allfin: u64) -> Option<u64> {
    use crate::binary::x86::Kind;
    let l = CleanupQueueLayout::for_version(bin.go, bin.elf.arch)?;
    let refs = global_refs(bin, "runtime.markroot")?;
    let i = refs
        .iter()
        .position(|r| r.0 == Kind::Load && r.1 == 8 && r.2 == allfin)?;
    let all = refs[i + 1..]
        .iter()
        .find(|r| (r.0 == Kind::Load && r.1 == 8 || r.0 == Kind::Lea) && r.2 != allfin)?
        .2;
    all.checked_sub(l.all)
}

/// `runtime.allfin` (link-time) from the code of `runtime.queuefinalizer`,
/// for executables without a symbol table. Every version 1.19–1.27:
///
/// ```text
/// if finc == nil {
///     finc = (*finBlock)(persistentalloc(...))  // MOVQ reg, finc (its first 8-byte store)
///     finc.alllink = allfin                     // MOVQ allfin, reg
///     allfin = finc                             // MOVQ reg, allfin
/// ```
///
/// so `allfin` is the first other global loaded after the first store, and
/// stored right after (tests/specials.rs checks it against the symbol table).
pub fn recover_allfin(bin: &Binary) -> Option<u64> {
    use crate::binary::x86::Kind;
    let refs = global_refs(bin, "runtime.queuefinalizer")?;
    // arm64: the store of persistentalloc's result can decode as StoreImm
    // (its register held a constant before the call).
    let first_store = refs
        .iter()
        .position(|r| matches!(r.0, Kind::Store | Kind::StoreImm) && r.1 == 8)?;
    let finc = refs[first_store].2;
    let rest = &refs[first_store + 1..];
    let k = rest
        .iter()
        .position(|r| r.0 == Kind::Load && r.1 == 8 && r.2 != finc)?;
    let allfin = rest[k].2;
    rest[k + 1..]
        .iter()
        .take(3)
        .any(|r| r.0 == Kind::Store && r.1 == 8 && r.2 == allfin)
        .then_some(allfin)
}

/// The cleanup queue of Go 1.25+ (`runtime.gcCleanups`, a `cleanupQueue`):
/// `all` chains every `cleanupBlock` by `alllink`; a block holds `n` queued
/// cleanups at `cleanups` (`*funcval` in 1.25, `cleanupFn{call, fn, arg}`
/// from 1.26), scanned by `markroot`'s `fixedRootCleanups`. Checked
/// against DWARF by tests/specials.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupQueueLayout {
    /// `cleanupQueue.all` (after two cache-line-padded stacks: 128 on
    /// amd64, 256 on arm64).
    pub all: u64,
    /// `cleanupBlockSize`.
    pub block_size: u64,
    pub alllink: u64,
    pub n: u64,
    pub cleanups: u64,
    /// Bytes per queued cleanup (all pointer words).
    pub entry_size: u64,
}

impl CleanupQueueLayout {
    /// The layout of `go`; None before 1.25 (cleanups then wait in the
    /// finalizer queue).
    pub fn for_version(go: GoVersion, arch: crate::model::Arch) -> Option<CleanupQueueLayout> {
        // `all` follows two stacks each padded to cpu.CacheLinePadSize: 64
        // bytes on amd64, 128 on arm64.
        let pad = match arch {
            crate::model::Arch::X86_64 => 64,
            crate::model::Arch::Aarch64 => 128,
        };
        go.at_least(1, 25).then(|| CleanupQueueLayout {
            all: 2 * pad,
            block_size: 512,
            alllink: 16,
            n: 24,
            cleanups: 32,
            entry_size: if go.at_least(1, 26) { 24 } else { 8 },
        })
    }
    /// Queued cleanups a block holds.
    pub fn capacity(&self) -> u64 {
        (self.block_size - self.cleanups) / self.entry_size
    }
    /// `sizeof(cleanupBlock)`.
    pub fn size(&self) -> u64 {
        self.cleanups + self.capacity() * self.entry_size
    }
}
