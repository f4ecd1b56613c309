//! The one live path: capture the target into memory, then analyze that
//! capture as a [`Session`] like any snapshot. Every live command and the
//! TUI come through here; a [`Preset`] says what the capture must hold, so
//! the pause reads no more than the report needs.

use super::progress::Progress;
use crate::analyze::Session;
use crate::capture::{capture, CaptureOptions};
use crate::goruntime::heap::{DEFAULT_MAX_SPANS, MAX_SPANS_LIMIT};
use anyhow::Result;
use std::path::PathBuf;

/// The process to capture and how (from `--pid`, `--bin`, `--non-blocking`).
#[derive(Clone, Debug)]
pub struct Target {
    pub pid: i32,
    pub bin: Option<PathBuf>,
    pub non_blocking: bool,
}

impl<T: clap::Args> From<&super::args::LiveArgs<T>> for Target {
    fn from(a: &super::args::LiveArgs<T>) -> Target {
        Target {
            pid: a.pid,
            bin: a.bin.clone(),
            non_blocking: a.non_blocking,
        }
    }
}

/// What a live report needs from the capture.
#[derive(Clone, Debug)]
pub enum Preset {
    /// Goroutines and the scheduler (summary, dump, top and its TUI): no
    /// global values, which keeps the pause minimal.
    Goroutines,
    /// Heap statistics; `large`: every span, for the large-object list;
    /// `sites`: the heap profile's bucket list, for the allocation sites.
    Heap { large: bool, sites: bool },
    /// One global's full value and nothing else reachable from globals.
    Var(String),
    /// A pprof profile: goroutines, and the heap profile's bucket list
    /// when `mem` (heap and allocs).
    Profile { mem: bool },
    /// Every in-use heap span (`capture --heap`), for the leak analysis.
    HeapComplete,
}

impl Preset {
    fn options(&self, t: &Target) -> CaptureOptions {
        let mut o = CaptureOptions {
            embed_binary: false,
            bin: t.bin.clone(),
            // No report here shows global values except `var`'s own.
            var_budget: Some(0),
            non_blocking: t.non_blocking,
            // Reports analyze the runtime's globals (and `var` its own),
            // nothing else of data/BSS.
            runtime_data_only: true,
            ..Default::default()
        };
        match self {
            Preset::Goroutines => {}
            Preset::Heap { large, sites } => {
                o.max_spans = Some(if *large {
                    MAX_SPANS_LIMIT
                } else {
                    DEFAULT_MAX_SPANS
                });
                o.mem_profile = *sites;
            }
            Preset::Profile { mem } => {
                o.mem_profile = *mem;
                if *mem {
                    // The heap profile needs the bucket list, not the spans.
                    o.max_spans = Some(0);
                }
            }
            Preset::HeapComplete => o.heap = true,
            Preset::Var(name) => {
                o.vars = vec![name.clone()];
                // Kept as it always was: live `var` stops the target even
                // with --non-blocking.
                o.non_blocking = false;
            }
        }
        o
    }

    /// Only reports that list goroutines say which ones were unstable.
    fn reports_unstable(&self) -> bool {
        matches!(self, Preset::Goroutines | Preset::Profile { mem: false })
    }
}

/// Captures the target into memory and opens it as a session. Warnings
/// about the executable, then unstable goroutines (`--non-blocking`), go to
/// `warn` as soon as the capture is done, before the session is built;
/// nothing is printed here (the TUI calls it with the terminal in raw mode).
pub fn session(t: &Target, preset: &Preset, mut warn: impl FnMut(&str)) -> Result<Session> {
    let (cap, bin, stats) = capture(t.pid, &preset.options(t))?;
    stats.load_warnings.iter().for_each(|w| warn(w));
    if preset.reports_unstable() {
        for u in &cap.meta.flags.unstable {
            warn(&u.note());
        }
    }
    // The session's own load warnings are the capture's: shown once.
    Session::open(crate::sources::from_capture(cap, bin), None)
}

/// A one-shot live command: a spinner while capturing (on a terminal, after
/// a second), unstable goroutines as warnings on stderr, then the report.
pub fn run(t: &Target, preset: &Preset, report: impl FnOnce(&Session) -> Result<()>) -> Result<()> {
    let progress = Progress::start(format!("capturing pid {}", t.pid));
    let s = session(t, preset, |w| eprintln!("warning: {w}"))?;
    drop(progress);
    report(&s)
}
