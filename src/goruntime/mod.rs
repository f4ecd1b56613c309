//! The Go runtime model decoded from `(binary, memory)`: goroutines, Ms, Ps,
//! the scheduler. Every decoder here runs the same on a paused live process
//! and on a snapshot.

pub mod arch;
pub mod bulk;
pub mod checks;
pub mod gomap;
pub mod gotypes;
pub mod gowrap;
pub mod heap;
pub mod labels;
pub mod pcinfo;
pub mod reach;
pub mod stackstart;
pub mod traceback;
pub mod values;
pub mod version;
pub mod waiting;
pub mod walk;

use crate::binary::Binary;
use crate::memory::{MemResult, Memory};
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use version::globals::{self as runtime_globals, global_addr};
pub use version::status::{
    G_DEAD, G_DEAD_EXTRA, G_IDLE, G_RUNNABLE, G_RUNNING, G_SCAN, G_SYSCALL, G_WAITING,
};
use version::{GLayout, Layout, Layouts};

/// Upper bounds that keep hostile or torn memory from causing huge work.
pub const MAX_GOROUTINES: u64 = 50_000_000;
pub const MAX_MS: usize = 100_000;
pub const MAX_PS: u64 = 100_000;
/// Largest goroutine stack gospy will capture or walk (the runtime's max is 1 GB).
pub const MAX_STACK: u64 = 1 << 30;

/// Runtime addresses (bias applied) of the globals gospy reads.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub allgs: u64,
    pub allglen: u64,
    pub allm: u64,
    pub allp: u64,
    pub gomaxprocs: u64,
    pub ncpu: Option<u64>,
    pub sched: u64,
    pub runtime_init_time: Option<u64>,
    pub fing_status: Option<u64>,
    pub fing_running: Option<u64>,
    /// `runtime.debug.tracebacklabels` (an atomic.Int32, Go 1.26+).
    pub traceback_labels: Option<u64>,
}

/// Everything analysis needs that comes from the binary alone; built once per
/// binary and shared across threads.
pub struct Target {
    pub bin: Arc<Binary>,
    pub layout: Layout,
    pub bias: u64,
    pub globals: Globals,
    /// `runtime.waitReasonStrings`, read from the executable.
    pub wait_reasons: Vec<String>,
    /// `runtime.gStatusStrings`, read from the executable.
    pub status_strings: Vec<String>,
    /// PC → symbolization cache for unwinding.
    pub pc_cache: pcinfo::PcCache,
    /// What `go` wrappers call (unstarted goroutines' start functions).
    pub wrapped: pcinfo::WrappedCache,
    /// For the user, once per target: why layouts may be approximate.
    pub warnings: Vec<String>,
}

impl Target {
    pub fn new(bin: Arc<Binary>, bias: u64) -> Result<Target> {
        let layouts = Layouts::for_binary(&bin)?;
        let layout = Layout::from_source(&bin, layouts.source())?;
        // A version outside the supported range first, then how the
        // layouts were found.
        let warnings = version::support_warning(bin.go, &bin.go_version)
            .into_iter()
            .chain(layouts.warning().map(str::to_string))
            .collect();
        let need = |name: &str| -> Result<u64> {
            global_addr(&bin, name)
                .map(|a| a.wrapping_add(bias))
                .ok_or_else(|| match missing_global(&bin, name) {
                    Some(why) => anyhow!(
                        "runtime global {name} not found: no symbol table or DWARF, and {why}; pass an unstripped build of the same source with --bin"
                    ),
                    None => anyhow!(
                        "runtime global {name} not found in the executable's symbols or DWARF"
                    ),
                })
        };
        let opt = |name: &str| global_addr(&bin, name).map(|a| a.wrapping_add(bias));
        let globals = Globals {
            allgs: need("runtime.allgs")?,
            allglen: need("runtime.allglen")?,
            allm: need("runtime.allm")?,
            allp: need("runtime.allp")?,
            gomaxprocs: need("runtime.gomaxprocs")?,
            ncpu: opt("runtime.ncpu").or_else(|| opt("runtime.numCPUStartup")),
            sched: need("runtime.sched")?,
            runtime_init_time: opt("runtime.runtimeInitTime"),
            fing_status: opt("runtime.fingStatus"),
            fing_running: opt("runtime.fingRunning"),
            traceback_labels: version::godebug::has_traceback_labels(bin.go)
                .then(|| {
                    version::godebug::dbgvar_atomic_addr(&bin, version::godebug::TRACEBACK_LABELS)
                })
                .flatten()
                .map(|a| a.wrapping_add(bias)),
        };
        let mut wait_reasons = read_string_array(&bin, "runtime.waitReasonStrings");
        if wait_reasons.is_empty() {
            // No symbol (stripped): the measured table of this Go version.
            wait_reasons = version::waitreason::measured(bin.go).unwrap_or_default();
        }
        let mut status_strings = read_string_array(&bin, "runtime.gStatusStrings");
        if status_strings.is_empty() {
            status_strings = version::status::STATUS_STRINGS
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        Ok(Target {
            bin,
            layout,
            bias,
            globals,
            wait_reasons,
            status_strings,
            pc_cache: Default::default(),
            wrapped: Default::default(),
            warnings,
        })
    }

    /// Link-time → runtime address.
    pub fn rt(&self, link: u64) -> u64 {
        link.wrapping_add(self.bias)
    }

    pub fn wait_reason_string(&self, r: u8) -> String {
        self.wait_reasons
            .get(r as usize)
            .cloned()
            .unwrap_or_else(|| format!("waitReason({r})"))
    }

    pub fn status_string(&self, s: u32) -> String {
        match self.status_strings.get(s as usize) {
            Some(x) if !x.is_empty() => x.clone(),
            _ => "???".to_string(),
        }
    }
}

/// Why a global could not be recovered from code (stripped binaries only).
fn missing_global(bin: &Binary, name: &str) -> Option<String> {
    if bin.elf.has_symtab() {
        return None;
    }
    let prefix = format!("{name}: ");
    runtime_globals::recovered(bin)
        .missing
        .iter()
        .find_map(|m| m.strip_prefix(&prefix).map(str::to_string))
        .or_else(|| Some("gospy does not recover it from code".to_string()))
}

/// Read an initialised `[N]string` global from the executable file itself.
fn read_string_array(bin: &Binary, name: &str) -> Vec<String> {
    let Some((addr, size)) = bin.elf.symbol(name).or_else(|| {
        // No symbol (size unknown): DWARF, or the address recovered from code.
        Some((global_addr(bin, name)?, 0))
    }) else {
        return Vec::new();
    };
    let n = if size > 0 {
        size / 16
    } else if name == "runtime.waitReasonStrings" {
        // Without a size, the measured length for this version.
        version::waitreason::measured(bin.go).map_or(64, |l| l.len() as u64)
    } else {
        16
    };
    let mut out = Vec::new();
    for i in 0..n.min(256) {
        let mut hdr = [0u8; 16];
        if !bin
            .elf
            .read_vaddr(addr.wrapping_add(i * 16), &mut hdr, true)
        {
            break;
        }
        let p = u64::from_le_bytes(hdr[..8].try_into().unwrap());
        let l = u64::from_le_bytes(hdr[8..].try_into().unwrap());
        if l > 256 {
            break;
        }
        let mut s = vec![0u8; l as usize];
        if l > 0 && !bin.elf.read_vaddr(p, &mut s, true) {
            break;
        }
        out.push(String::from_utf8_lossy(&s).into_owned());
    }
    out
}

/// A decoded `runtime.g`.
#[derive(Debug, Clone, Default)]
pub struct G {
    pub addr: u64,
    pub goid: u64,
    /// atomicstatus with the scan bit removed.
    pub status: u32,
    pub scan: bool,
    pub waitreason: u8,
    pub waitsince: i64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub m: u64,
    pub lockedm: u64,
    pub gopc: u64,
    pub startpc: u64,
    pub labels: u64,
    pub parent_goid: u64,
    pub waiting: u64,
    pub running_cleanups: bool,
}

/// Little-endian u64 at `off` in `b`; 0 when out of range.
pub(crate) fn le64(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o.saturating_add(8))
        .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
        .unwrap_or(0)
}
/// Little-endian u32 at `off` in `b`; 0 when out of range.
pub(crate) fn le32(b: &[u8], off: u64) -> u32 {
    let o = off as usize;
    b.get(o..o.saturating_add(4))
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .unwrap_or(0)
}
fn byte(b: &[u8], off: u64) -> u8 {
    b.get(off as usize).copied().unwrap_or(0)
}

impl G {
    pub fn decode(l: &GLayout, addr: u64, b: &[u8]) -> G {
        let raw = le32(b, l.atomicstatus);
        G {
            addr,
            goid: le64(b, l.goid),
            status: raw & !G_SCAN,
            scan: raw & G_SCAN != 0,
            waitreason: byte(b, l.waitreason),
            waitsince: le64(b, l.waitsince) as i64,
            stack_lo: le64(b, l.stack_lo),
            stack_hi: le64(b, l.stack_hi),
            sched_sp: le64(b, l.sched_sp),
            sched_pc: le64(b, l.sched_pc),
            sched_bp: le64(b, l.sched_bp),
            syscallsp: le64(b, l.syscallsp),
            syscallpc: le64(b, l.syscallpc),
            m: le64(b, l.m),
            lockedm: le64(b, l.lockedm),
            gopc: le64(b, l.gopc),
            startpc: le64(b, l.startpc),
            labels: le64(b, l.labels),
            parent_goid: l.parent_goid.map(|o| le64(b, o)).unwrap_or(0),
            waiting: le64(b, l.waiting),
            running_cleanups: l.running_cleanups.map(|o| byte(b, o) != 0).unwrap_or(false),
        }
    }
    pub fn is_dead(&self) -> bool {
        self.status == G_DEAD || self.status == G_DEAD_EXTRA || self.status == G_IDLE
    }
}

/// A decoded `runtime.m`.
#[derive(Debug, Clone, Default)]
pub struct M {
    pub addr: u64,
    pub id: i64,
    pub procid: u64,
    pub g0: u64,
    pub gsignal: u64,
    pub curg: u64,
    pub p: u64,
    pub spinning: bool,
    pub lockedg: u64,
    pub vdso_sp: u64,
    pub vdso_pc: u64,
    pub isextra: bool,
    /// The func value the M started with (0: none, or not in the layout).
    pub mstartfn: u64,
}

/// A decoded `runtime.p`.
#[derive(Debug, Clone, Default)]
pub struct P {
    pub addr: u64,
    pub id: i32,
    pub status: u32,
    pub schedtick: u32,
    pub syscalltick: u32,
    pub m: u64,
    pub mcache: u64,
    pub runqhead: u32,
    pub runqtail: u32,
    pub runnext: u64,
    pub gfree_n: i32,
}

impl P {
    pub fn runq_len(&self) -> u32 {
        self.runqtail.wrapping_sub(self.runqhead)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Sched {
    pub nmidle: i32,
    pub nmidlelocked: i32,
    pub nmsys: i32,
    pub nmspinning: i32,
    pub npidle: i32,
    pub ngsys: i32,
    pub runqsize: i32,
    pub gfree_n: i32,
    pub lastpoll: i64,
}

/// Decoders bound to one memory.
/// The g addresses of an allgs array's bytes, sorted, without zeros or
/// duplicates (the runtime never lists a g twice; a damaged or crafted
/// allgs might, and every duplicate would be decoded and unwound again).
pub fn allg_addrs_of(raw: &[u8]) -> Vec<u64> {
    let mut addrs: Vec<u64> = raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .filter(|&a| a != 0)
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

pub struct Runtime<'t, Mem: Memory> {
    pub t: &'t Target,
    pub mem: Mem,
}

impl<'t, Mem: Memory> Runtime<'t, Mem> {
    pub fn new(t: &'t Target, mem: Mem) -> Self {
        Runtime { t, mem }
    }

    /// Addresses of every g in allgs (dead ones included).
    pub fn allg_addrs(&self) -> Result<Vec<u64>> {
        Ok(allg_addrs_of(&self.allgs_array()?))
    }

    /// The allgs array's bytes (`allglen` pointers).
    pub fn allgs_array(&self) -> Result<Vec<u8>> {
        let g = &self.t.globals;
        let len = self.mem.u64(g.allglen).context("reading runtime.allglen")?;
        let ptr = self.mem.ptr(g.allgs).context("reading runtime.allgs")?;
        let slen = self
            .mem
            .u64(g.allgs.wrapping_add(8))
            .context("reading runtime.allgs")?;
        let n = len.min(slen);
        if n > MAX_GOROUTINES {
            return Err(anyhow!("runtime.allglen = {n} is implausible"));
        }
        self.mem
            .read_vec(ptr, (n * 8) as usize)
            .with_context(|| format!("reading allgs array at {ptr:#x} ({n} entries)"))
    }

    pub fn read_g(&self, addr: u64) -> MemResult<G> {
        if let Some(b) = self.mem.bytes_at(addr, self.t.layout.g.size as usize) {
            return Ok(G::decode(&self.t.layout.g, addr, b));
        }
        let b = self.mem.read_vec(addr, self.t.layout.g.size as usize)?;
        Ok(G::decode(&self.t.layout.g, addr, &b))
    }

    pub fn read_m(&self, addr: u64) -> MemResult<M> {
        let l = &self.t.layout.m;
        let b = self.mem.read_vec(addr, l.size as usize)?;
        Ok(M {
            addr,
            id: le64(&b, l.id) as i64,
            procid: le64(&b, l.procid),
            g0: le64(&b, l.g0),
            gsignal: le64(&b, l.gsignal),
            curg: le64(&b, l.curg),
            p: le64(&b, l.p),
            spinning: byte(&b, l.spinning) != 0,
            lockedg: le64(&b, l.lockedg),
            vdso_sp: le64(&b, l.vdso_sp),
            vdso_pc: le64(&b, l.vdso_pc),
            isextra: l.isextra.map(|o| byte(&b, o) != 0).unwrap_or(false),
            mstartfn: l.mstartfn.map(|o| le64(&b, o)).unwrap_or(0),
        })
    }

    /// Walk `allm` via `m.alllink`, bounded and cycle-safe.
    pub fn ms(&self) -> Result<(Vec<M>, Vec<String>)> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut cur = self
            .mem
            .ptr(self.t.globals.allm)
            .context("reading runtime.allm")?;
        while cur != 0 {
            if !seen.insert(cur) || out.len() >= MAX_MS {
                warnings.push(format!("allm list: cycle or too long at {cur:#x}; stopped"));
                break;
            }
            match self.read_m(cur) {
                Ok(m) => {
                    let next = self
                        .mem
                        .ptr(cur.wrapping_add(self.t.layout.m.alllink))
                        .unwrap_or(0);
                    out.push(m);
                    cur = next;
                }
                Err(e) => {
                    warnings.push(format!("m at {cur:#x}: {e}"));
                    break;
                }
            }
        }
        Ok((out, warnings))
    }

    pub fn p_addrs(&self) -> Result<Vec<u64>> {
        let g = &self.t.globals;
        let ptr = self.mem.ptr(g.allp).context("reading runtime.allp")?;
        let n = self
            .mem
            .u64(g.allp.wrapping_add(8))
            .context("reading runtime.allp")?;
        if n > MAX_PS {
            return Err(anyhow!("len(runtime.allp) = {n} is implausible"));
        }
        let raw = self
            .mem
            .read_vec(ptr, (n * 8) as usize)
            .context("reading allp array")?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .filter(|&a| a != 0)
            .collect())
    }

    pub fn read_p(&self, addr: u64) -> MemResult<P> {
        let l = &self.t.layout.p;
        // Only the head of p is needed (what capture stores of it).
        let need = self.p_capture_len();
        let b = self.mem.read_vec(addr, need as usize)?;
        Ok(P {
            addr,
            id: le32(&b, l.id) as i32,
            status: le32(&b, l.status),
            schedtick: le32(&b, l.schedtick),
            syscalltick: le32(&b, l.syscalltick),
            m: le64(&b, l.m),
            mcache: le64(&b, l.mcache),
            runqhead: le32(&b, l.runqhead),
            runqtail: le32(&b, l.runqtail),
            runnext: le64(&b, l.runnext),
            gfree_n: le32(&b, l.gfree_n) as i32,
        })
    }

    /// Bytes of `runtime.p` the analyses need (for capture).
    pub fn p_capture_len(&self) -> u64 {
        let l = &self.t.layout.p;
        [
            l.id,
            l.status,
            l.schedtick,
            l.syscalltick,
            l.m,
            l.mcache,
            l.runqhead,
            l.runqtail,
            l.runnext,
            l.gfree_n,
        ]
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .saturating_add(8)
    }

    pub fn ps(&self) -> Result<(Vec<P>, Vec<String>)> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for a in self.p_addrs()? {
            match self.read_p(a) {
                Ok(p) => out.push(p),
                Err(e) => warnings.push(format!("p at {a:#x}: {e}")),
            }
        }
        Ok((out, warnings))
    }

    pub fn sched(&self) -> Result<Sched> {
        let l = &self.t.layout.sched;
        let base = self.t.globals.sched;
        let i32at = |o: u64| -> Result<i32> {
            Ok(self
                .mem
                .u32(base.wrapping_add(o))
                .context("reading runtime.sched")? as i32)
        };
        let mut gfree = 0i32;
        for &o in &l.gfree_counts {
            gfree = gfree.wrapping_add(i32at(o)?);
        }
        Ok(Sched {
            nmidle: i32at(l.nmidle)?,
            nmidlelocked: i32at(l.nmidlelocked)?,
            nmsys: i32at(l.nmsys)?,
            nmspinning: i32at(l.nmspinning)?,
            npidle: i32at(l.npidle)?,
            ngsys: i32at(l.ngsys)?,
            runqsize: i32at(l.runqsize)?,
            gfree_n: gfree,
            lastpoll: self.mem.u64(base.wrapping_add(l.lastpoll)).unwrap_or(0) as i64,
        })
    }

    pub fn gomaxprocs(&self) -> Result<i32> {
        Ok(self
            .mem
            .u32(self.t.globals.gomaxprocs)
            .context("reading runtime.gomaxprocs")? as i32)
    }
    pub fn ncpu(&self) -> Option<i32> {
        self.t
            .globals
            .ncpu
            .and_then(|a| self.mem.u32(a).ok())
            .map(|v| v as i32)
    }
    pub fn runtime_init_time(&self) -> Option<i64> {
        self.t
            .globals
            .runtime_init_time
            .and_then(|a| self.mem.u64(a).ok())
            .map(|v| v as i64)
    }
    /// Whether goroutine headers carry pprof labels, as this runtime
    /// decides (`debug.tracebacklabels == 1`, Go 1.26+): the value in
    /// memory, else the binary's default (DefaultGODEBUG, the version's),
    /// which misses a GODEBUG from the environment.
    pub fn traceback_labels(&self) -> bool {
        let go = self.t.bin.go;
        if !version::godebug::has_traceback_labels(go) {
            return false;
        }
        match self.t.globals.traceback_labels.map(|a| self.mem.u32(a)) {
            Some(Ok(v)) => v == 1,
            _ => version::godebug::traceback_labels_default(&self.t.bin) == 1,
        }
    }
    /// Whether the finalizer goroutine is running a user finalizer.
    pub fn fing_running_user(&self) -> bool {
        if let Some(a) = self.t.globals.fing_status {
            // fingUninitialized=0, fingCreated=1, fingRunningFinalizer=2, fingWait=4, fingWake=8 (1.21+)
            return self.mem.u32(a).map(|v| v & 2 != 0).unwrap_or(false);
        }
        if let Some(a) = self.t.globals.fing_running {
            return self.mem.u8(a).map(|v| v != 0).unwrap_or(false);
        }
        false
    }
}

/// Name and size of the runtime type descriptor at `ty` (`abi.Type`,
/// 1.19–1.27: Size_ at 0, TFlag at 20, Str at 40, a nameOff from
/// moduledata.types; a name is a flag byte, a varint length and the bytes;
/// TFlagExtraStar (2) means a leading '*' to drop).
pub fn descriptor_name<M: Memory>(t: &Target, mem: &M, ty: u64) -> Option<(String, Option<u64>)> {
    let mut hdr = [0u8; 48];
    mem.read_exact(ty, &mut hdr).ok()?;
    let size = u64::from_le_bytes(hdr[..8].try_into().ok()?);
    let tflag = hdr[20];
    let off = i32::from_le_bytes(hdr[40..44].try_into().ok()?);
    let name = t
        .rt(t.bin.moduledata.types)
        .checked_add_signed(off.into())?;
    let mut nb = [0u8; 11];
    mem.read_exact(name, &mut nb).ok()?;
    let (mut len, mut shift, mut i) = (0usize, 0u32, 1usize);
    loop {
        let b = *nb.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    if len == 0 || len > 4096 {
        return None;
    }
    let mut buf = vec![0u8; len];
    mem.read_exact(name.wrapping_add(i as u64), &mut buf).ok()?;
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if tflag & 2 != 0 && s.starts_with('*') {
        s.remove(0);
    }
    Some((s, Some(size)))
}
