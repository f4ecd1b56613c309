//! Offsets of the runtime structures gospy reads, taken by field name from
//! the source [`super::choice::Layouts`] picked (DWARF or the tables).
//! Fields that exist only in some Go versions are `Option`s.

use super::source::{LayoutCtx, LayoutSource};
use crate::binary::Binary;
use anyhow::{anyhow, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GLayout {
    pub size: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub syscallbp: Option<u64>,
    pub atomicstatus: u64,
    pub goid: u64,
    pub waitsince: u64,
    pub waitreason: u64,
    pub lockedm: u64,
    pub gopc: u64,
    pub startpc: u64,
    pub labels: u64,
    pub parent_goid: Option<u64>,
    pub waiting: u64,
    pub running_cleanups: Option<u64>,
    /// `trackingSeq` (uint8, +1 each time the goroutine stops running) and
    /// `param`: with the fields above, what tells capture's pre-copy that a
    /// parked goroutine did not run in between (see `capture::GKey`).
    pub tracking_seq: Option<u64>,
    pub param: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MLayout {
    pub size: u64,
    pub g0: u64,
    pub gsignal: u64,
    pub procid: u64,
    pub curg: u64,
    pub p: u64,
    pub id: u64,
    pub spinning: u64,
    pub alllink: u64,
    pub lockedg: u64,
    pub vdso_sp: u64,
    pub vdso_pc: u64,
    pub isextra: Option<u64>,
    /// m.mstartfn (a func value): sysmon's M is the one that starts at runtime.sysmon.
    pub mstartfn: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PLayout {
    pub size: u64,
    pub id: u64,
    pub status: u64,
    pub schedtick: u64,
    pub syscalltick: u64,
    pub m: u64,
    pub mcache: u64,
    pub runqhead: u64,
    pub runqtail: u64,
    pub runnext: u64,
    /// p.gFree.n (≤1.24) or p.gFree.size (1.25+), an int32.
    pub gfree_n: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedLayout {
    pub size: u64,
    pub lastpoll: u64,
    pub nmidle: u64,
    pub nmidlelocked: u64,
    pub nmsys: u64,
    pub nmspinning: u64,
    pub npidle: u64,
    pub ngsys: u64,
    /// runqsize (≤1.24) or runq.size (1.25+), an int32.
    pub runqsize: u64,
    /// Offsets of the int32 counters whose sum is the number of free gs.
    pub gfree_counts: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub g: GLayout,
    pub m: MLayout,
    pub p: PLayout,
    pub sched: SchedLayout,
}

impl Layout {
    /// Layouts from one source (DWARF or tables), by field name.
    pub fn from_source(bin: &Binary, d: &dyn LayoutSource) -> Result<Layout> {
        let mut c = LayoutCtx::new(d);
        let g = GLayout {
            size: c.size("runtime.g"),
            stack_lo: c.off("runtime.g", "stack.lo"),
            stack_hi: c.off("runtime.g", "stack.hi"),
            m: c.off("runtime.g", "m"),
            sched_sp: c.off("runtime.g", "sched.sp"),
            sched_pc: c.off("runtime.g", "sched.pc"),
            sched_bp: c.off("runtime.g", "sched.bp"),
            syscallsp: c.off("runtime.g", "syscallsp"),
            syscallpc: c.off("runtime.g", "syscallpc"),
            syscallbp: c.opt("runtime.g", "syscallbp"),
            atomicstatus: c.off("runtime.g", "atomicstatus"),
            goid: c.off("runtime.g", "goid"),
            waitsince: c.off("runtime.g", "waitsince"),
            waitreason: c.off("runtime.g", "waitreason"),
            lockedm: c.off("runtime.g", "lockedm"),
            gopc: c.off("runtime.g", "gopc"),
            startpc: c.off("runtime.g", "startpc"),
            labels: c.off("runtime.g", "labels"),
            parent_goid: c.opt("runtime.g", "parentGoid"),
            waiting: c.off("runtime.g", "waiting"),
            running_cleanups: c.opt("runtime.g", "runningCleanups"),
            tracking_seq: c.opt("runtime.g", "trackingSeq"),
            param: c.opt("runtime.g", "param"),
        };
        let m = MLayout {
            size: c.size("runtime.m"),
            g0: c.off("runtime.m", "g0"),
            gsignal: c.off("runtime.m", "gsignal"),
            procid: c.off("runtime.m", "procid"),
            curg: c.off("runtime.m", "curg"),
            p: c.off("runtime.m", "p"),
            id: c.off("runtime.m", "id"),
            spinning: c.off("runtime.m", "spinning"),
            alllink: c.off("runtime.m", "alllink"),
            lockedg: c.off("runtime.m", "lockedg"),
            vdso_sp: c.off("runtime.m", "vdsoSP"),
            vdso_pc: c.off("runtime.m", "vdsoPC"),
            isextra: c.opt("runtime.m", "isextra"),
            mstartfn: c.opt("runtime.m", "mstartfn"),
        };
        let p = PLayout {
            size: c.size("runtime.p"),
            id: c.off("runtime.p", "id"),
            status: c.off("runtime.p", "status"),
            schedtick: c.off("runtime.p", "schedtick"),
            syscalltick: c.off("runtime.p", "syscalltick"),
            m: c.off("runtime.p", "m"),
            mcache: c.off("runtime.p", "mcache"),
            runqhead: c.off("runtime.p", "runqhead"),
            runqtail: c.off("runtime.p", "runqtail"),
            runnext: c.off("runtime.p", "runnext"),
            gfree_n: c.first("runtime.p", &["gFree.n", "gFree.size"]),
        };
        let mut gfree_counts = Vec::new();
        if let Some(o) = c.opt("runtime.schedt", "gFree.n") {
            gfree_counts.push(o);
        } else {
            gfree_counts.push(c.off("runtime.schedt", "gFree.stack.size"));
            gfree_counts.push(c.off("runtime.schedt", "gFree.noStack.size"));
        }
        let sched = SchedLayout {
            size: c.size("runtime.schedt"),
            lastpoll: c.off("runtime.schedt", "lastpoll"),
            nmidle: c.off("runtime.schedt", "nmidle"),
            nmidlelocked: c.off("runtime.schedt", "nmidlelocked"),
            nmsys: c.off("runtime.schedt", "nmsys"),
            nmspinning: c.off("runtime.schedt", "nmspinning"),
            npidle: c.off("runtime.schedt", "npidle"),
            ngsys: c.off("runtime.schedt", "ngsys"),
            runqsize: c.first("runtime.schedt", &["runqsize", "runq.size"]),
            gfree_counts,
        };
        if !c.missing.is_empty() {
            return Err(anyhow!(
                "runtime layout not found in {} for {}: {} (unsupported Go version {}?)",
                d.describe(),
                bin.go_version,
                c.missing.join(", "),
                bin.go_version
            ));
        }
        Ok(Layout { g, m, p, sched })
    }
}
