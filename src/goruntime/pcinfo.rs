//! What unwinding knows about one PC (function, frames, argument tables),
//! and the per-thread cache that decodes each PC once. Kept apart from the
//! unwinder so that `Target` can own a cache without depending on it.

use crate::memory::Memory;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What unwinding needs to know about one PC, computed once per distinct PC
/// (goroutines are many, distinct PCs few).
#[derive(Debug)]
pub struct PcInfo {
    /// Runtime address of the function entry.
    pub entry: u64,
    pub name: Arc<str>,
    pub flag: u8,
    pub spdelta: Option<i64>,
    /// Source frames, innermost first.
    pub src: Vec<SrcLine>,
    /// `FUNCDATA_ArgInfo` program, for printing arguments.
    pub arg_info: Option<Vec<u8>>,
    /// `FUNCDATA_ArgLiveInfo` bytes and `PCDATA_ArgLiveIndex` at this PC.
    pub arg_live: Option<(Vec<u8>, i32)>,
}

/// `abi.TraceArgsMaxLen`: (maxDepth*3+2)*limit + 1.
pub(super) const ARG_INFO_MAX: usize = (5 * 3 + 2) * 10 + 1;
pub(super) const FUNCDATA_ARG_INFO: u32 = 5;
pub(super) const FUNCDATA_ARG_LIVE_INFO: u32 = 6;
pub(super) const PCDATA_ARG_LIVE_INDEX: u32 = 3;

impl PcInfo {
    /// The runtime's `printArgs`: argument words read at `argp` as the
    /// compiler's ArgInfo program describes them; `?` marks a spill slot
    /// that is not live at this PC.
    pub fn format_args<M: Memory>(&self, mem: &M, argp: u64) -> Option<String> {
        let p = self.arg_info.as_ref()?;
        let (live, live_idx) = match &self.arg_live {
            Some((b, i)) => (Some(b.as_slice()), *i),
            None => (None, 0),
        };
        let start_offset = live.and_then(|b| b.first().copied()).unwrap_or(0xff);
        let is_live = |off: u8, slot: u8| -> bool {
            let Some(b) = live else { return true };
            if live_idx <= 0 || off < start_offset {
                return true;
            }
            let i = live_idx as usize + (slot / 8) as usize;
            b.get(i)
                .map(|bits| bits & (1 << (slot % 8)) != 0)
                .unwrap_or(true)
        };
        let mut out = String::new();
        let mut start = true;
        let mut pi = 0usize;
        let mut slot = 0u8;
        while let Some(&o) = p.get(pi) {
            pi += 1;
            match o {
                0xff => break,
                0xfe => {
                    if !start {
                        out.push_str(", ");
                    }
                    out.push('{');
                    start = true;
                    continue;
                }
                0xfd => out.push('}'),
                0xfc => {
                    if !start {
                        out.push_str(", ");
                    }
                    out.push_str("...");
                }
                0xfb => {
                    if !start {
                        out.push_str(", ");
                    }
                    out.push('_');
                }
                _ => {
                    if !start {
                        out.push_str(", ");
                    }
                    let sz = *p.get(pi)?;
                    pi += 1;
                    let mut x = mem.u64(argp.wrapping_add(o as u64)).ok()?;
                    if sz < 8 {
                        let shift = 64 - (sz as u32) * 8;
                        x = (x << shift) >> shift;
                    }
                    crate::text::push_hex(&mut out, x);
                    if !is_live(o, slot) {
                        out.push('?');
                    }
                    if o >= start_offset {
                        slot = slot.wrapping_add(1);
                    }
                }
            }
            start = false;
        }
        Some(out)
    }
}

/// One source-level frame of a PC: (printed name, file, line, inlined, funcID).
pub type SrcLine = (Arc<str>, Arc<str>, u32, bool, u8);

pub(super) type PcMap = HashMap<(u64, bool), Option<Arc<PcInfo>>, foldhash::fast::RandomState>;

thread_local! {
    /// Each thread's own PC cache, for the [`PcCache`] of one id at a time.
    /// Per thread on purpose: with one shared cache, the reference counts
    /// of hot `PcInfo`s and their strings bounced between cores on every
    /// frame, and two threads unwound no faster than one.
    static LOCAL_PCS: std::cell::RefCell<(u64, PcMap)> = std::cell::RefCell::new((0, PcMap::default()));
}

/// A PC → [`PcInfo`] cache of one target. Entries live in per-thread maps
/// (see `LOCAL_PCS`): each thread decodes a PC once, with no locks and no
/// shared reference counts.
pub struct PcCache {
    id: u64,
}

impl Default for PcCache {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        PcCache {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl PcCache {
    pub(super) fn get_or(
        &self,
        key: (u64, bool),
        f: impl FnOnce() -> Option<Arc<PcInfo>>,
    ) -> Option<Arc<PcInfo>> {
        let hit = LOCAL_PCS.with(|l| {
            let mut l = l.borrow_mut();
            if l.0 != self.id {
                // Another target (a new analysis): start over.
                l.0 = self.id;
                l.1.clear();
            }
            l.1.get(&key).cloned()
        });
        if let Some(v) = hit {
            return v;
        }
        let v = f();
        LOCAL_PCS.with(|l| {
            let mut l = l.borrow_mut();
            if l.0 == self.id {
                l.1.insert(key, v.clone());
            }
        });
        v
    }
}

/// What compiler wrappers call, by wrapper entry (`goruntime::gowrap`),
/// per target.
#[derive(Default)]
pub struct WrappedCache(std::sync::Mutex<std::collections::HashMap<u64, Option<Arc<str>>>>);

impl WrappedCache {
    pub(super) fn get_or(
        &self,
        entry: u64,
        f: impl FnOnce() -> Option<Arc<str>>,
    ) -> Option<Arc<str>> {
        if let Some(v) = self.0.lock().ok().and_then(|c| c.get(&entry).cloned()) {
            return v;
        }
        let v = f();
        if let Ok(mut c) = self.0.lock() {
            c.insert(entry, v.clone());
        }
        v
    }
}
