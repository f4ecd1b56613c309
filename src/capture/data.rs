//! The executable's data and BSS: which of it a capture holds, and which
//! of that the pause actually reads.
//!
//! A capture holds *wanted* ranges: every writable segment (`capture`), or
//! only the pages of the runtime's globals (live reports, which analyze
//! nothing else; plus the `--var` globals). The pause reads, of those, only
//! the pages the target ever touched (`/proc/PID/pagemap`, read inside the
//! pause: the set of touched pages only grows, so a page touched just
//! before the stop is still read). An untouched page holds what the
//! executable file holds there (the file-backed part of the segment), or
//! zeros (BSS): after the resume each wanted range becomes one region, its
//! untouched pages filled from the file or with zeros, so analysis reads
//! the same bytes as if every page had been read (`process::PageMap`
//! explains why this is exact).

use super::stats::CaptureStats;
use crate::binary::elf::ElfFile;
use crate::goruntime::Target;
use crate::model::RegionKind;
use crate::process::PageMap;
use bytes::Bytes;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Touched runs closer than this many pages are read as one (the pages
/// between are read too, live: still exact).
const MERGE_PAGES: u64 = 1;

/// One wanted range and the bytes the capture will hold for it.
struct Part {
    start: u64,
    /// The file's bytes and zeros, the touched pages read over them.
    buf: Vec<u8>,
    /// Touched runs (addresses) to read in the pause.
    read: Vec<(u64, u64)>,
    failed: bool,
}

/// The pagemap read again once the target is stopped, on a thread of its
/// own started before the pause: the pages untouched before the pause may
/// have been touched since, and this finds them while the pause reads.
/// Whichever comes first does it: the thread once woken, or the pause
/// itself when the thread has not started by then (a loaded machine).
struct Recheck {
    go: mpsc::Sender<()>,
    shared: Arc<RecheckState>,
}

/// Pages found touched since the plan, or why the pagemap failed.
type Touched = std::io::Result<Vec<(u64, u64)>>;

#[derive(Default)]
struct RecheckState {
    /// [`IDLE`], [`CLAIMED`] or [`DONE`].
    state: AtomicU8,
    result: Mutex<Option<Touched>>,
}

const IDLE: u8 = 0;
const CLAIMED: u8 = 1;
const DONE: u8 = 2;

impl RecheckState {
    fn claim(&self) -> bool {
        self.state
            .compare_exchange(IDLE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// What of data/BSS to capture and how (see the module doc).
pub(super) struct DataPlan {
    parts: Vec<Part>,
    pagemap: Option<Arc<PageMap>>,
    /// The wanted pages not read (untouched before the pause).
    skipped: Vec<(u64, u64)>,
    recheck: Option<Recheck>,
    pub(super) warnings: Vec<String>,
}

impl DataPlan {
    /// `only`: when Some, the byte ranges wanted (runtime addresses; rounded
    /// out to whole pages and clipped to the segments); None: every
    /// writable segment whole. `elf` is the running executable.
    pub(super) fn new(
        pid: i32,
        elf: &ElfFile,
        bias: u64,
        only: Option<Vec<(u64, u64)>>,
        recheck: bool,
    ) -> DataPlan {
        let segs: Vec<(u64, u64, u64, u64)> = elf
            .segments
            .iter()
            .filter(|s| s.writable && s.memsz > 0)
            .map(|s| {
                let a = s.vaddr + bias;
                (a, a + s.filesz.min(s.memsz), a + s.memsz, s.offset)
            })
            .collect();
        let whole: Vec<(u64, u64)> = segs.iter().map(|s| (s.0, s.2)).collect();
        let page = crate::process::page_size();
        let wanted = match only {
            Some(r) => clip(&round_to_pages(r, page), &whole),
            None => whole,
        };
        let mut warnings = Vec::new();
        let pagemap = match PageMap::open(pid) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                warnings.push(format!(
                    "/proc/{pid}/pagemap: {e}: reading all of data and BSS, touched or not"
                ));
                None
            }
        };
        let touched = match pagemap.as_ref().map(|p| p.touched(&wanted)) {
            // Merged runs stay inside their wanted range.
            Some(Ok(t)) => clip(&merge_runs(t, MERGE_PAGES * page), &wanted),
            Some(Err(e)) => {
                warnings.push(format!(
                    "/proc/{pid}/pagemap: {e}: reading all of data and BSS, touched or not"
                ));
                wanted.clone()
            }
            None => wanted.clone(),
        };
        let skipped = if pagemap.is_some() {
            minus(&wanted, &touched)
        } else {
            Vec::new()
        };
        let mut parts: Vec<Part> = wanted
            .iter()
            .map(|&(start, end)| {
                // Lazily zeroed: untouched BSS costs no memory here.
                let mut buf = vec![0u8; (end - start) as usize];
                if let Some(s) = segs.iter().find(|s| start >= s.0 && start < s.2) {
                    let fe = s.1.min(end);
                    if fe > start {
                        let off = (s.3 + (start - s.0)) as usize;
                        if let Some(src) = elf.data.get(off..off + (fe - start) as usize) {
                            buf[..src.len()].copy_from_slice(src);
                        }
                    }
                }
                Part {
                    start,
                    buf,
                    read: Vec::new(),
                    failed: false,
                }
            })
            .collect();
        for &(a, b) in &touched {
            if let Some(p) = part_of(&mut parts, a) {
                // Fault the destination in now, not in the pause.
                for o in ((a - p.start)..(b - p.start)).step_by(page as usize) {
                    // SAFETY: in bounds (the run lies in the part).
                    unsafe { std::ptr::write_volatile(p.buf.as_mut_ptr().add(o as usize), 0) };
                }
                p.read.push((a, b));
            }
        }
        let recheck = match (&pagemap, recheck && !skipped.is_empty()) {
            (Some(pm), true) => spawn_recheck(pm.clone(), skipped.clone()),
            _ => None,
        };
        DataPlan {
            parts,
            pagemap,
            skipped,
            recheck,
            warnings,
        }
    }

    /// In the pause: read the touched pages, and those touched since the
    /// plan (the pagemap again, on the recheck thread while this reads);
    /// then every wanted range as one region. Without a recheck thread (it
    /// could not start), the pagemap is read here.
    pub(super) fn read(
        &mut self,
        pid: i32,
        stats: &mut CaptureStats,
        warnings: &mut Vec<String>,
    ) -> Vec<(u64, Bytes, RegionKind)> {
        if let Some(r) = &self.recheck {
            let _ = r.go.send(());
        }
        let live = crate::process::LiveMemory::new(pid);
        self.read_runs(&live, stats, |p| std::mem::take(&mut p.read));
        let late = match (self.recheck.take(), &self.pagemap) {
            (Some(r), Some(pm)) => {
                if r.shared.claim() {
                    // The thread has not started: do it here.
                    pm.touched(&self.skipped)
                } else {
                    // It runs (a pagemap read takes well under a
                    // millisecond): wait without sleeping.
                    let mut spins = 0u32;
                    while r.shared.state.load(Ordering::Acquire) != DONE {
                        spins += 1;
                        if spins % 64 == 0 {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    r.shared
                        .result
                        .lock()
                        .ok()
                        .and_then(|mut g| g.take())
                        .unwrap_or_else(|| Err(std::io::Error::other("pagemap recheck failed")))
                }
            }
            (None, Some(pm)) if !self.skipped.is_empty() => pm.touched(&self.skipped),
            _ => Ok(Vec::new()),
        };
        let late = match late {
            Ok(l) => l,
            Err(e) => {
                warnings.push(format!(
                    "pagemap: {e}: data and BSS pages untouched before the pause read again"
                ));
                std::mem::take(&mut self.skipped)
            }
        };
        if !late.is_empty() {
            let wanted: Vec<(u64, u64)> = self
                .parts
                .iter()
                .map(|p| (p.start, p.start + p.buf.len() as u64))
                .collect();
            let late = clip(&merge_runs(late, 0), &wanted);
            for &(a, b) in &late {
                if let Some(p) = part_of(&mut self.parts, a) {
                    p.read.push((a, b));
                }
            }
            self.read_runs(&live, stats, |p| std::mem::take(&mut p.read));
        }
        let failed = self.parts.iter().filter(|p| p.failed).count();
        if failed > 0 {
            warnings.push(format!(
                "{failed} data/BSS ranges could not be read whole and are not in the capture"
            ));
        }
        std::mem::take(&mut self.parts)
            .into_iter()
            .filter(|p| !p.failed)
            .map(|p| (p.start, Bytes::from(p.buf), RegionKind::Data))
            .collect()
    }

    /// One scattered read of each part's runs, straight into its buffer.
    fn read_runs(
        &mut self,
        live: &crate::process::LiveMemory,
        stats: &mut CaptureStats,
        take: impl Fn(&mut Part) -> Vec<(u64, u64)>,
    ) {
        let mut reads: Vec<(u64, &mut [u8])> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (i, p) in self.parts.iter_mut().enumerate() {
            let runs = take(p);
            let mut rest: &mut [u8] = &mut p.buf;
            let mut at = p.start;
            for (a, b) in runs {
                let Some(skip) = a.checked_sub(at) else {
                    continue;
                };
                if b <= a || skip + (b - a) > rest.len() as u64 {
                    continue;
                }
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(skip as usize);
                let (run, tail) = tail.split_at_mut((b - a) as usize);
                rest = tail;
                at = b;
                stats.bytes_read += b - a;
                reads.push((a, run));
                owner.push(i);
            }
        }
        if reads.is_empty() {
            return;
        }
        stats.read_calls += reads.len().div_ceil(crate::process::IOV_MAX);
        let res = live.read_scatter(reads);
        for (r, i) in res.into_iter().zip(owner) {
            if r.is_err() {
                stats.failed_ranges += 1;
                self.parts[i].failed = true;
            }
        }
    }
}

fn part_of(parts: &mut [Part], a: u64) -> Option<&mut Part> {
    parts
        .iter_mut()
        .find(|p| a >= p.start && a < p.start + p.buf.len() as u64)
}

fn spawn_recheck(pm: Arc<PageMap>, skipped: Vec<(u64, u64)>) -> Option<Recheck> {
    let (go, go_rx) = mpsc::channel::<()>();
    let shared = Arc::new(RecheckState::default());
    let st = shared.clone();
    std::thread::Builder::new()
        .name("gospy-pagemap".into())
        .spawn(move || {
            // Dropped without a signal (the capture failed), or the pause
            // did it first: nothing to do.
            if go_rx.recv().is_ok() && st.claim() {
                let r = pm.touched(&skipped);
                if let Ok(mut g) = st.result.lock() {
                    *g = Some(r);
                }
                st.state.store(DONE, Ordering::Release);
            }
        })
        .ok()?;
    Some(Recheck { go, shared })
}

/// Sorted runs merged when at most `gap` bytes apart.
fn merge_runs(mut r: Vec<(u64, u64)>, gap: u64) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(gap) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `whole` (sorted, disjoint) minus `cut` (sorted, disjoint).
fn minus(whole: &[(u64, u64)], cut: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s, e) in whole {
        let mut at = s;
        for &(a, b) in cut {
            if b <= at || a >= e {
                continue;
            }
            if a > at {
                out.push((at, a));
            }
            at = at.max(b);
        }
        if at < e {
            out.push((at, e));
        }
    }
    out
}

/// The ranges of the runtime's globals (and of `vars`): what live reports
/// read of data/BSS. None when the executable names no globals (stripped
/// of both symbols and DWARF): then everything.
pub(super) fn runtime_ranges(t: &Target, vars: &[String]) -> Option<Vec<(u64, u64)>> {
    let mut r = super::redact::runtime_globals(t);
    if r.is_empty() {
        return None;
    }
    let syms = t.bin.elf.symbols();
    for v in vars {
        let sized = syms
            .get(v)
            .filter(|s| s.1 > 0)
            .map(|&(a, n)| (t.rt(a), n))
            .or_else(|| {
                let d = t.bin.dwarf()?;
                let g = d.global(v)?;
                let n = g.ty.and_then(|ty| d.resolve(ty)).map_or(0, |ty| ty.size);
                (n > 0).then(|| (t.rt(g.addr), n))
            });
        if let Some((a, n)) = sized {
            r.push((a, a.saturating_add(n)));
        }
    }
    Some(r)
}

/// Ranges rounded out to whole pages, sorted and merged.
fn round_to_pages(mut r: Vec<(u64, u64)>, page: u64) -> Vec<(u64, u64)> {
    for x in r.iter_mut() {
        x.0 -= x.0 % page;
        x.1 = x.1.saturating_add(page - 1) / page * page;
    }
    r.retain(|x| x.1 > x.0);
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `r` (sorted, disjoint) intersected with `within` (sorted, disjoint).
fn clip(r: &[(u64, u64)], within: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(a, b) in r {
        for &(s, e) in within {
            let (lo, hi) = (a.max(s), b.min(e));
            if lo < hi {
                out.push((lo, hi));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_rounded_merged_and_clipped() {
        let r = round_to_pages(
            vec![(0x1010, 0x1020), (0x3ff0, 0x4001), (0x1100, 0x1200)],
            0x1000,
        );
        assert_eq!(r, vec![(0x1000, 0x2000), (0x3000, 0x5000)]);
        assert_eq!(
            clip(&r, &[(0x1800, 0x3800), (0x4800, 0x9000)]),
            vec![(0x1800, 0x2000), (0x3000, 0x3800), (0x4800, 0x5000)]
        );
    }

    #[test]
    fn runs_merged_and_subtracted() {
        let r = merge_runs(
            vec![(0x6000, 0x7000), (0x1000, 0x2000), (0x3000, 0x4000)],
            0x1000,
        );
        assert_eq!(r, vec![(0x1000, 0x4000), (0x6000, 0x7000)]);
        assert_eq!(
            minus(&[(0x0, 0x8000), (0x9000, 0xa000)], &r),
            vec![
                (0x0, 0x1000),
                (0x4000, 0x6000),
                (0x7000, 0x8000),
                (0x9000, 0xa000)
            ]
        );
    }
}
