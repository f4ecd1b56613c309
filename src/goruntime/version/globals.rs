//! Addresses of runtime globals in binaries without a symbol table or DWARF
//! (`-ldflags='-s -w'`), recovered from the code of runtime functions
//! located through pclntab: their RIP-relative operands point at the globals,
//! and which operand is which follows from the runtime's source, e.g.
//!
//! ```text
//! func allgadd(gp *g) {             // proc.go, every version 1.19-1.27
//!     lock(&allglock)               // LEAQ allglock
//!     allgs = append(allgs, gp)     // MOVQ allgs, allgs+8, allgs+16
//!     if &allgs[0] != allgptr {     // CMPQ allgptr, reg
//!         atomicstorep(unsafe.Pointer(&allgptr), ...)
//!     }
//!     atomic.Storeuintptr(&allglen, uintptr(len(allgs)))  // LEAQ allglen; XCHGQ
//! ```
//!
//! Every rule is checked against the symbol table of real binaries of every
//! supported Go version (tests/stripped.rs); string arrays are additionally
//! recognised by their contents, and struct globals (sched, mheap_, memstats,
//! gcController) by how well the referenced addresses fit the struct's field
//! offsets from the layout tables.

use super::fallback::Tables;
use super::source::LayoutSource;
use crate::binary::arm64;
use crate::binary::x86::{self, Insn, Kind};
use crate::binary::{Binary, Recovered};
use std::collections::{BTreeSet, HashMap};

/// Largest function gospy decodes (runtime functions are far smaller).
const MAX_FUNC: u64 = 256 << 10;

struct Ctx<'a> {
    bin: &'a Binary,
    /// Writable segments (link-time): where globals live.
    data: Vec<(u64, u64)>,
    cache: HashMap<&'static str, Option<Vec<Insn>>>,
}

impl Ctx<'_> {
    /// Decoded instructions of a runtime function; None when absent.
    fn insns(&mut self, name: &'static str) -> Option<&[Insn]> {
        if !self.cache.contains_key(name) {
            let v = (|| {
                let pcln = &self.bin.pcln;
                let f = pcln.func_by_name(name)?;
                let end = pcln.func_end(&f);
                let len = end.checked_sub(f.entry)?.min(MAX_FUNC);
                let code = self.bin.elf.vaddr_tail(f.entry)?;
                let code = code.get(..len as usize).unwrap_or(code);
                Some(match self.bin.elf.arch {
                    crate::model::Arch::X86_64 => x86::decode(code, f.entry),
                    crate::model::Arch::Aarch64 => arm64::decode(code, f.entry),
                })
            })();
            self.cache.insert(name, v);
        }
        self.cache.get(name).and_then(|v| v.as_deref())
    }

    /// RIP-relative data operands of a function, in order.
    fn refs(&mut self, name: &'static str) -> Vec<(Kind, u8, u64)> {
        let data = self.data.clone();
        let in_data = |a: u64| data.iter().any(|&(lo, hi)| a >= lo && a < hi);
        self.insns(name)
            .map(|v| {
                x86::rip_refs(v)
                    .filter(|(_, t)| in_data(*t))
                    .map(|(i, t)| (i.kind, i.size, t))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A Go string header in the executable's initialised data.
    fn file_string(&self, addr: u64, max: u64) -> Option<String> {
        let mut h = [0u8; 16];
        if !self.bin.elf.read_vaddr(addr, &mut h, true) {
            return None;
        }
        let p = u64::from_le_bytes(h[..8].try_into().ok()?);
        let n = u64::from_le_bytes(h[8..].try_into().ok()?);
        if n > max {
            return None;
        }
        let mut s = vec![0u8; n as usize];
        if n > 0 && !self.bin.elf.read_vaddr(p, &mut s, true) {
            return None;
        }
        String::from_utf8(s).ok()
    }
}

/// Bases of slice headers {ptr, len, cap} referenced as X, X+8 and X+16, with
/// how many references each got.
fn slice_triplets(refs: &[(Kind, u8, u64)]) -> Vec<(u64, usize)> {
    let set: BTreeSet<u64> = refs.iter().map(|r| r.2).collect();
    let mut out: Vec<(u64, usize)> = set
        .iter()
        .filter(|&&a| set.contains(&(a + 8)) && set.contains(&(a + 16)))
        .map(|&a| {
            let n = refs.iter().filter(|r| r.2 >= a && r.2 <= a + 16).count();
            (a, n)
        })
        .collect();
    out.sort_by_key(|&(a, n)| (std::cmp::Reverse(n), a));
    out
}

/// Base address that makes the most referenced addresses land exactly on
/// field offsets of a struct. Dense fields make a base and its neighbours
/// score alike; ties go to a base that is itself taken with LEA (method calls
/// on the global pass `&global`). With `only`, the base must be one of
/// those addresses. None unless one base clearly wins.
fn fit_struct(
    targets: &BTreeSet<u64>,
    leas: &BTreeSet<u64>,
    fields: &[u64],
    min_score: usize,
    only: Option<&BTreeSet<u64>>,
) -> Option<u64> {
    let offs: BTreeSet<u64> = fields.iter().copied().collect();
    let mut cands: BTreeSet<u64> = BTreeSet::new();
    for &t in targets {
        for &f in &offs {
            if let Some(b) = t.checked_sub(f) {
                if only.map_or(true, |o| o.contains(&b)) {
                    cands.insert(b);
                }
            }
        }
    }
    let mut v: Vec<(usize, bool, u64)> = cands
        .into_iter()
        .map(|b| {
            let s = targets
                .iter()
                .filter(|&&t| t >= b && offs.contains(&(t - b)))
                .count();
            (s, leas.contains(&b), b)
        })
        .collect();
    v.sort_by_key(|&(s, l, b)| (std::cmp::Reverse(s), !l, b));
    let &(s0, l0, best) = v.first()?;
    let unique = v.get(1).map_or(true, |&(s1, l1, _)| (s0, l0) != (s1, l1));
    (s0 >= min_score && unique).then_some(best)
}

/// Link-time address of a runtime global: symbol table first, then DWARF,
/// then (no symbol table) what the runtime's code references.
pub fn global_addr(bin: &Binary, name: &str) -> Option<u64> {
    if let Some(a) = bin.declared_global_addr(name) {
        return Some(a);
    }
    if bin.elf.has_symtab() {
        return None;
    }
    recovered(bin).addrs.get(name).copied()
}

/// Runtime globals recovered from code, computed once per binary.
pub fn recovered(bin: &Binary) -> &Recovered {
    bin.recovered_globals(recover)
}

/// Recover the runtime globals gospy reads. Link-time addresses.
pub fn recover(bin: &Binary) -> Recovered {
    let data = bin
        .elf
        .segments
        .iter()
        .filter(|s| s.writable && s.memsz > 0)
        .map(|s| (s.vaddr, s.vaddr + s.memsz))
        .collect();
    let mut c = Ctx {
        bin,
        data,
        cache: HashMap::new(),
    };
    let tables = Tables::for_target(bin.go, bin.elf.arch);
    let mut r = Recovered::default();
    scheduler_globals(&mut c, tables.as_ref(), &mut r);
    string_globals(&mut c, &mut r);
    profile_globals(&mut c, &mut r);
    match &tables {
        Some(t) => struct_globals(&mut c, t, &mut r),
        None => r.missing.push(format!(
            "struct globals: no layout tables for {}",
            bin.go_version
        )),
    }
    r
}

/// Record a global's address, or why it was not found.
fn found(r: &mut Recovered, name: &str, a: Option<u64>, why: &str) {
    match a {
        Some(a) => {
            r.addrs.insert(name.to_string(), a);
        }
        None => r.missing.push(format!("{name}: {why}")),
    }
}

/// allgs, allglen, allgptr, sched, allm, allp, gomaxprocs, ncpu,
/// runtimeInitTime and fingRunning/fingStatus: fixed operands of the
/// functions that set them.
fn scheduler_globals(c: &mut Ctx, tables: Option<&Tables>, rec: &mut Recovered) {
    let go = c.bin.go;
    // allgs, allglen, allgptr: runtime.allgadd.
    let refs = c.refs("runtime.allgadd");
    let allgs = slice_triplets(&refs).first().map(|t| t.0);
    let allgptr = refs
        .iter()
        .find(|r| r.0 == Kind::CmpReg && r.1 == 8)
        .map(|r| r.2);
    let first_lea = refs.iter().find(|r| r.0 == Kind::Lea).map(|r| r.2);
    let allglen = refs
        .iter()
        .rev()
        .filter(|r| r.0 == Kind::Lea)
        .map(|r| r.2)
        .find(|&t| {
            Some(t) != first_lea
                && Some(t) != allgptr
                && !matches!(allgs, Some(a) if t >= a && t <= a + 16)
        });
    let why = "not recognised in runtime.allgadd";
    found(rec, "runtime.allgs", allgs, why);
    found(rec, "runtime.allglen", allglen, why);
    found(rec, "runtime.allgptr", allgptr, why);

    // allm and sched: runtime.mcommoninit locks sched.lock (LEAQ) and
    // publishes mp on allm (MOVQ allm, then LEAQ allm for the atomic store).
    let refs = c.refs("runtime.mcommoninit");
    let lock_off = tables.and_then(|t| t.offset_of("runtime.schedt", "lock"));
    let sched_lock = refs.iter().find(|r| r.0 == Kind::Lea).map(|r| r.2);
    let sched = sched_lock.zip(lock_off).map(|(a, o)| a - o);
    let allm = refs
        .iter()
        .filter(|r| r.0 == Kind::Load && r.1 == 8)
        .map(|r| r.2)
        .find(|&t| Some(t) != sched_lock && refs.iter().any(|x| x.0 == Kind::Lea && x.2 == t));
    found(
        rec,
        "runtime.sched",
        sched,
        "not recognised in runtime.mcommoninit",
    );
    found(
        rec,
        "runtime.allm",
        allm,
        "not recognised in runtime.mcommoninit",
    );

    // allp and gomaxprocs: runtime.procresize starts with `old := gomaxprocs`
    // and resizes allp (the most used slice header).
    let refs = c.refs("runtime.procresize");
    let gomaxprocs = refs
        .iter()
        .find(|r| r.0 == Kind::Load && r.1 == 4)
        .map(|r| r.2);
    let allp = slice_triplets(&refs).first().map(|t| t.0);
    found(
        rec,
        "runtime.allp",
        allp,
        "not recognised in runtime.procresize",
    );
    found(
        rec,
        "runtime.gomaxprocs",
        gomaxprocs,
        "not recognised in runtime.procresize",
    );

    // ncpu (numCPUStartup from 1.25): `ncpu = getproccount()` in runtime.osinit.
    let refs = c.refs("runtime.osinit");
    let ncpu = refs
        .iter()
        .find(|r| r.0 == Kind::Store && r.1 == 4)
        .map(|r| r.2);
    let ncpu_name = if go.at_least(1, 25) {
        "runtime.numCPUStartup"
    } else {
        "runtime.ncpu"
    };
    found(rec, ncpu_name, ncpu, "not recognised in runtime.osinit");

    // runtimeInitTime: `runtimeInitTime = nanotime()` in runtime.main, its
    // first 8-byte register store.
    let refs = c.refs("runtime.main");
    let init_time = refs
        .iter()
        .find(|r| r.0 == Kind::Store && r.1 == 8)
        .map(|r| r.2);
    found(
        rec,
        "runtime.runtimeInitTime",
        init_time,
        "not recognised in runtime.main",
    );

    // fingRunning (1.19, a bool) / fingStatus (1.21+, a uint32): the first
    // global isSystemGoroutine reads.
    let refs = c.refs("runtime.isSystemGoroutine");
    let fing = refs
        .iter()
        .find(|r| matches!(r.0, Kind::Load | Kind::CmpImm));
    let fing_name = match fing {
        Some(f) if f.1 == 1 => "runtime.fingRunning",
        Some(_) => "runtime.fingStatus",
        None if go.at_least(1, 21) => "runtime.fingStatus",
        None => "runtime.fingRunning",
    };
    let fing = fing.map(|r| r.2);
    found(
        rec,
        fing_name,
        fing,
        "not recognised in runtime.isSystemGoroutine",
    );
}

/// The heap profile's globals (mbuckets, MemProfileRate, mProfCycle), from
/// functions every program links (malloc and the GC call them), 1.19-1.27:
///
/// ```text
/// func mProf_FlushLocked(index uint32) {   // its only data reference
///     head := (*bucket)(mbuckets.Load())   // MOVQ mbuckets
/// func profilealloc(mp *m, x unsafe.Pointer, size uintptr) {
///     c := getMCache(mp)                   // MOVQ mcache0
///     c.nextSample = nextSample()          // MOVQ MemProfileRate (inlined; twice from 1.24)
/// func mProf_Malloc(mp *m, p unsafe.Pointer, size uintptr) {
///     nstk := callers(...)                 // 1.23+: MOVL/MOVSXD debug.profstackdepth
///     index := (mProfCycle.read() + 2) % uint32(len(memRecord{}.future))  // MOVL mProfCycle
///     b := stkbucket(memProfile, size, stk[:nstk], true)
///     lock(&profMemFutureLock[index])      // LEAQ profMemFutureLock
/// ```
fn profile_globals(c: &mut Ctx, rec: &mut Recovered) {
    let refs = c.refs("runtime.mProf_FlushLocked");
    let mbuckets = refs
        .iter()
        .find(|r| r.0 == Kind::Load && r.1 == 8)
        .map(|r| r.2);
    found(
        rec,
        "runtime.mbuckets",
        mbuckets,
        "not recognised in runtime.mProf_FlushLocked",
    );
    let refs = c.refs("runtime.profilealloc");
    let rate = refs
        .iter()
        .rev()
        .find(|r| r.0 == Kind::Load && r.1 == 8)
        .map(|r| r.2)
        .filter(|_| {
            refs.iter()
                .filter(|r| r.0 == Kind::Load && r.1 == 8)
                .count()
                >= 2
        });
    found(
        rec,
        "runtime.MemProfileRate",
        rate,
        "not recognised in runtime.profilealloc",
    );
    // The last 4-byte load before the first LEA (the future-cycle lock).
    let refs = c.refs("runtime.mProf_Malloc");
    let first_lea = refs
        .iter()
        .position(|r| r.0 == Kind::Lea)
        .unwrap_or(refs.len());
    let cycle = refs[..first_lea]
        .iter()
        .rev()
        .find(|r| r.0 == Kind::Load && r.1 == 4)
        .map(|r| r.2);
    found(
        rec,
        "runtime.mProfCycle",
        cycle,
        "not recognised in runtime.mProf_Malloc",
    );
    contention_globals(c, rec, mbuckets);
}

/// The block and mutex profiles' globals, 1.19-1.27:
///
/// ```text
/// func stkbucket(typ bucketType, size uintptr, stk []uintptr, alloc bool) *bucket {
///     if typ == memProfile { allnext = &mbuckets        // LEAQ mbuckets
///     } else if typ == mutexProfile { allnext = &xbuckets  // LEAQ xbuckets, next
///     } else { allnext = &bbuckets }                   // LEAQ bbuckets, next
/// func semacquire1(...) {
///     if profile&semaMutexProfile != 0 && mutexprofilerate > 0 {  // CMPQ mutexprofilerate, $0 (the last);
///                                           // arm64: MOVD mutexprofilerate, R3; CBZ R3 (the last 8-byte load)
/// func ticksPerSecond() int64 {    // tickspersecond before 1.22
///     r := ticks.val.Load()        // MOVQ ticks+off(val)
///     lock(&ticks.lock)            // LEAQ ticks: the most frequent LEA (lock, unlock)
/// ```
///
/// ticks is only linked with what reads it (runtime/pprof, tracing), and
/// its `(*ticksType).init` from 1.22: absent, the profile writer uses a
/// measured rate.
fn contention_globals(c: &mut Ctx, rec: &mut Recovered, mbuckets: Option<u64>) {
    let leas: Vec<u64> = c
        .refs("runtime.stkbucket")
        .iter()
        .filter(|r| r.0 == Kind::Lea)
        .map(|r| r.2)
        .collect();
    let after_m = mbuckets
        .and_then(|m| leas.iter().position(|&a| a == m))
        .map(|i| &leas[i + 1..]);
    let (x, b) = match after_m {
        Some([x, b, ..]) if x % 8 == 0 && b % 8 == 0 && x != b => (Some(*x), Some(*b)),
        _ => (None, None),
    };
    let why = "not recognised in runtime.stkbucket";
    found(rec, "runtime.xbuckets", x, why);
    found(rec, "runtime.bbuckets", b, why);
    // amd64 compares the rate with memory (`CMPQ mutexprofilerate, $0`);
    // arm64 loads it and branches on zero (`MOVD mutexprofilerate, R3;
    // CBZ R3`): there the function's only 8-byte loads of globals are the
    // block and the mutex rates, in that order (1.19-1.27).
    let cmp = match c.bin.elf.arch {
        crate::model::Arch::X86_64 => Kind::CmpImm,
        crate::model::Arch::Aarch64 => Kind::Load,
    };
    let cmps: Vec<u64> = c
        .refs("runtime.semacquire1")
        .iter()
        .filter(|r| r.0 == cmp && r.1 == 8)
        .map(|r| r.2)
        .collect();
    // The last: 1.19 compares blockprofilerate first the same way (later
    // versions load it atomically on amd64).
    let rate = match cmps[..] {
        [.., a] if cmps.len() <= 2 => Some(a),
        _ => None,
    };
    found(
        rec,
        "runtime.mutexprofilerate",
        rate,
        "not recognised in runtime.semacquire1",
    );
    let mut ticks = None;
    for f in [
        "runtime.ticksPerSecond",
        "runtime.tickspersecond",
        "runtime.(*ticksType).init",
    ] {
        let mut n: HashMap<u64, usize> = HashMap::new();
        for r in c.refs(f).iter().filter(|r| r.0 == Kind::Lea) {
            *n.entry(r.2).or_default() += 1;
        }
        let mut v: Vec<(usize, u64)> = n.into_iter().map(|(a, k)| (k, a)).collect();
        v.sort_unstable_by_key(|&(k, a)| (std::cmp::Reverse(k), a));
        if let Some(&(k, a)) = v.first() {
            if k >= 2 && v.get(1).map_or(true, |o| o.0 < k) {
                ticks = Some(a);
                break;
            }
        }
    }
    if let Some(t) = ticks {
        rec.addrs.insert("runtime.ticks".to_string(), t);
    }
}

/// The status and wait-reason string arrays (recognised by their contents)
/// and buildVersion.
fn string_globals(c: &mut Ctx, rec: &mut Recovered) {
    // String arrays, recognised by their contents.
    let mut leas: Vec<u64> = Vec::new();
    for f in [
        "runtime.goroutineheader",
        "runtime.waitReason.String",
        "runtime.(*waitReason).String",
    ] {
        leas.extend(c.refs(f).iter().filter(|r| r.0 == Kind::Lea).map(|r| r.2));
    }
    let first_str = |c: &Ctx, a: u64, i: u64| c.file_string(a + 16 * i, 64);
    let gstatus = leas
        .iter()
        .copied()
        .find(|&a| first_str(c, a, 0).as_deref() == Some("idle"));
    let wreasons = leas.iter().copied().find(|&a| {
        first_str(c, a, 0).as_deref() == Some("")
            && first_str(c, a, 1).as_deref() == Some("GC assist marking")
    });
    found(
        rec,
        "runtime.gStatusStrings",
        gstatus,
        "not recognised in runtime.goroutineheader",
    );
    found(
        rec,
        "runtime.waitReasonStrings",
        wreasons,
        "not recognised in runtime.goroutineheader",
    );

    // buildVersion: a string referenced as X and X+8 by runtime.schedinit
    // (`if buildVersion == "" {...}`) whose value is the Go version.
    let refs = c.refs("runtime.schedinit");
    let bv = refs.iter().map(|r| r.2).find(|&a| {
        refs.iter().any(|x| x.2 == a + 8)
            && c.file_string(a, 128)
                .is_some_and(|s| s.starts_with("go1.") || s.starts_with("devel"))
    });
    found(
        rec,
        "runtime.buildVersion",
        bv,
        "not recognised in runtime.schedinit",
    );
}

/// Struct globals (mheap_, memstats, gcController): the base that best fits
/// the field offsets; then emptymspan, found next to mheap_.
fn struct_globals(c: &mut Ctx, t: &Tables, rec: &mut Recovered) {
    // (global, type, functions referencing it, function whose LEA
    // targets must include the base)
    let structs: [(&str, &str, &[&'static str], Option<&'static str>); 3] = [
        (
            "runtime.mheap_",
            "runtime.mheap",
            &[
                "runtime.gcSweep",
                "runtime.mallocinit",
                "runtime.(*mcentral).grow",
                "runtime.gcStart",
                "runtime.(*mcache).refill",
                "runtime.(*mheap).allocSpan",
            ],
            None,
        ),
        (
            "runtime.memstats",
            "runtime.mstats",
            &[
                "runtime.gcMarkTermination",
                "runtime.(*mheap).init",
                "runtime.gcTrigger.test",
            ],
            None,
        ),
        (
            "runtime.gcController",
            "runtime.gcControllerState",
            &[
                "runtime.gcMarkTermination",
                "runtime.gcControllerCommit",
                "runtime.findRunnable",
                "runtime.gcAssistAlloc",
            ],
            // gcControllerCommit calls methods on &gcController.
            Some("runtime.gcControllerCommit"),
        ),
    ];
    for (name, ty, funcs, lea_in) in structs {
        let only: Option<BTreeSet<u64>> = lea_in.map(|f| {
            c.refs(f)
                .iter()
                .filter(|r| r.0 == Kind::Lea)
                .map(|r| r.2)
                .collect()
        });
        let mut targets = BTreeSet::new();
        let mut leas = BTreeSet::new();
        for f in funcs.iter() {
            for r in c.refs(f) {
                targets.insert(r.2);
                if r.0 == Kind::Lea {
                    leas.insert(r.2);
                }
            }
        }
        let fields: Vec<u64> = t.fields(ty).iter().map(|f| f.1).collect();
        let a = fit_struct(&targets, &leas, &fields, 3, only.as_ref());
        found(rec, name, a, "the referenced addresses fit no single base");
    }
    // emptymspan: `c.alloc[i] = &emptymspan` in runtime.allocmcache and
    // (*mcache).releaseAll, the LEA target of both outside mheap_ (whose
    // lock and fields they also take the address of).
    let mheap = rec.addrs.get("runtime.mheap_").copied();
    let mheap_end = mheap.zip(t.size_of("runtime.mheap")).map(|(a, n)| a + n);
    let mut lea_outside_mheap = |f: &'static str| -> BTreeSet<u64> {
        c.refs(f)
            .iter()
            .filter(|r| r.0 == Kind::Lea)
            .map(|r| r.2)
            .filter(|&a| match (mheap, mheap_end) {
                (Some(lo), Some(hi)) => a < lo || a >= hi,
                _ => false,
            })
            .collect()
    };
    let a = lea_outside_mheap("runtime.allocmcache");
    let b = lea_outside_mheap("runtime.(*mcache).releaseAll");
    let both: BTreeSet<u64> = a.intersection(&b).copied().collect();
    let empty = [&both, &a]
        .into_iter()
        .find(|s| s.len() == 1)
        .and_then(|s| s.first().copied());
    found(
        rec,
        "runtime.emptymspan",
        empty,
        "not recognised in runtime.allocmcache / (*mcache).releaseAll",
    );
}
