//! The block and mutex profiles `pprof.Lookup("block"|"mutex").WriteTo(w, 0)`
//! would have written at the moment of capture, from the runtime's bucket
//! lists (`goruntime::heap::blockprof`): runtime/pprof's
//! `writeProfileInternal` and `printCountCycleProfile`, reproduced.
//!
//! - Records sorted by cycles, largest first.
//! - Sample types contentions/count and delay/nanoseconds, period type
//!   contentions/count, period 1.
//! - Values: `count` and `int64(float64(cycles) / cpuGHz)` with `cpuGHz =
//!   float64(ticks per second) / 1e9`, the target's own `ticks.val`. Go 1.19
//!   scales in the writer (`scaleMutexProfile`: both values × the mutex
//!   profile fraction; `scaleBlockProfile` does nothing); from 1.21 the
//!   runtime scales when it records (`saveblockevent`) and the writer
//!   does not.
//! - Stacks: from Go 1.23 the writer first expands them with
//!   `expandInlinedFrames` (`runtime.CallersFrames`, one return PC per
//!   logical frame, the 1.23-1.26 sentinel and other non-Go PCs dropped),
//!   since the runtime records frame-pointer stacks only partly expanded;
//!   before, the stored PCs go straight to `appendLocsForStack`. No frame
//!   is hidden.

use super::heapprof::{builder, Sym};
use super::pprof::{Pb, Strings};
use crate::analyze::Session;
use crate::goruntime::heap::blockprof::{read_block_profile, BlockKind, BlockProfile, BlockRecord};
use crate::goruntime::heap::profile::ProfTarget;
use crate::goruntime::version::mprof::ticks_val_offset;
use crate::goruntime::version::Layouts;
use anyhow::{anyhow, Result};
use std::io::Write;

/// The session's block or mutex profile; an error when there is nothing to
/// read.
pub fn block_profile(s: &Session, kind: BlockKind) -> Result<BlockProfile> {
    let pt = ProfTarget::new(&s.target)?;
    let ticks_val = ticks_val_offset(
        Layouts::for_binary(&s.target.bin)?.source(),
        s.target.bin.go,
    );
    let p = read_block_profile(&pt, &s.mem, kind, ticks_val)?;
    if p.buckets == 0 && !p.warnings.is_empty() {
        return Err(anyhow!(
            "no {} profile in this input: {} (snapshots taken with --redact, or by a gospy without block and mutex profiles, hold no bucket memory)",
            kind.name(),
            p.warnings.join("; ")
        ));
    }
    if p.records.is_empty() {
        let (what, call) = match kind {
            BlockKind::Block => ("blocking events", "runtime.SetBlockProfileRate"),
            BlockKind::Mutex => ("mutex contention", "runtime.SetMutexProfileFraction"),
        };
        return Err(anyhow!(
            "no {} profile: the program recorded no {what} (it never turned the profile on with {call}, or nothing was recorded since)",
            kind.name()
        ));
    }
    Ok(p)
}

/// `expandInlinedFrames`: `runtime.CallersFrames(stk)`, each frame's PC + 1.
fn expand_inlined(sym: &Sym, stk: &[u64]) -> Vec<u64> {
    let pcln = sym.pcln;
    let mut out = Vec::with_capacity(stk.len());
    let mut callers = stk.iter().copied().peekable();
    let mut next_pc: Option<u64> = None;
    while let Some(pc) = next_pc.take().or_else(|| callers.next()) {
        let link = pc.wrapping_sub(sym.bias);
        let Some(f) = pcln.find_func(link) else {
            continue;
        };
        let at = if link > f.entry { link - 1 } else { link };
        out.push(at.wrapping_add(sym.bias).wrapping_add(1));
        let chain = pcln.inline_pcs(&f, at);
        if chain.len() < 2 {
            continue;
        }
        // An inlined PC: the enclosing frame's virtual PC comes next,
        // unless the stack already holds it.
        let callee = chain[0].1;
        let elide = !pcln.func_id_is(callee, crate::binary::pclntab::SpecialFunc::Gopanic)
            && !pcln.func_id_is(callee, crate::binary::pclntab::SpecialFunc::Sigpanic)
            && !pcln.func_id_is(callee, crate::binary::pclntab::SpecialFunc::Panicwrap);
        for &(upc, id) in &chain[1..] {
            let virt = upc.wrapping_add(sym.bias).wrapping_add(1);
            match callers.peek() {
                Some(&c) if c != virt => {}
                _ => break,
            }
            if id == pcln.wrapper_func_id() && elide {
                continue;
            }
            next_pc = Some(virt);
            break;
        }
    }
    out
}

/// The two values of a record, as the writer computes them.
fn values(s: &Session, p: &BlockProfile, r: &BlockRecord, ticks: i64) -> [i64; 2] {
    let cpu_ghz = ticks as f64 / 1e9;
    let ns = r.cycles as f64 / cpu_ghz;
    if !s.target.bin.go.at_least(1, 20) && p.kind == BlockKind::Mutex {
        // scaleMutexProfile (Go 1.19).
        let period = p.mutex_rate.unwrap_or(1);
        return [r.count.wrapping_mul(period), (ns * period as f64) as i64];
    }
    [r.count, ns as i64]
}

/// Cputicks per second measured here, for a target that never computed
/// its own (`ticks.val` still 0): `cputicks` is the TSC on amd64, the same
/// clock for every process of the machine; elsewhere it is `nanotime`.
fn local_ticks_per_second() -> i64 {
    #[cfg(target_arch = "x86_64")]
    {
        let t0 = std::time::Instant::now();
        // SAFETY: RDTSC reads a counter; it has no memory effects.
        let c0 = unsafe { core::arch::x86_64::_rdtsc() };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let c1 = unsafe { core::arch::x86_64::_rdtsc() };
        let ns = t0.elapsed().as_nanos().max(1) as i64;
        ((c1.wrapping_sub(c0) as i64).saturating_mul(1_000_000_000) / ns).max(1)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        1_000_000_000
    }
}

/// The cputicks per second used for delays, with a warning when the
/// target's own value was not there.
pub fn ticks_per_second(p: &BlockProfile, warnings: &mut Vec<String>) -> i64 {
    if p.ticks_per_second > 0 {
        return p.ticks_per_second;
    }
    warnings.push(format!(
        "{} profile: the target never computed its cputicks rate (runtime.ticks); delays use a rate measured on this machine",
        p.kind.name()
    ));
    local_ticks_per_second()
}

/// The uncompressed profile.proto bytes of the block or mutex profile.
pub fn block_proto(s: &Session, p: &BlockProfile, ticks: i64) -> Vec<u8> {
    let mut b = builder(s);
    let vt = |st: &mut Strings, t: &str, u: &str| {
        let mut v = Pb::default();
        v.int(1, st.id(t));
        v.int(2, st.id(u));
        v
    };
    let mut prof = Pb::default();
    let period_type = vt(&mut b.st, "contentions", "count");
    let types = [
        vt(&mut b.st, "contentions", "count"),
        vt(&mut b.st, "delay", "nanoseconds"),
    ];
    for t in types {
        prof.msg(1, t);
    }
    let expand = s.target.bin.go.at_least(1, 23);
    let mut records: Vec<&BlockRecord> = p.records.iter().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.cycles));
    for r in records {
        let stk = if expand {
            expand_inlined(&b.sym, &r.stack)
        } else {
            r.stack.clone()
        };
        let locs = b.locs_for_stack(&stk);
        let v = values(s, p, r, ticks);
        let mut sm = Pb::default();
        sm.packed(1, &locs);
        sm.packed(2, &v.map(|x| x as u64));
        prof.msg(2, sm);
    }
    b.write_tables(s, &mut prof);
    prof.int(9, s.meta.wall_time_ns as i64);
    prof.msg(11, period_type);
    prof.int(12, 1);
    prof.buf
}

/// The block or mutex profile, gzip-compressed.
pub fn block_gz(s: &Session, p: &BlockProfile, ticks: i64) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&block_proto(s, p, ticks))?;
    enc.finish()
}
