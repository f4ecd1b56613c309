//! `gospy analyze FILE REPORT`: open a snapshot or core, print one report.
//! The report printers are shared with the live commands.

use super::args::{
    Analysis, AnalyzeArgs, DumpArgs, HeapArgs, PprofArgs, PprofKind, SummaryArgs, VarArgs, VarsArgs,
};
use super::output::{exit_soon, json_out, out};
use super::progress::Progress;
use super::top::print_top;
use crate::analyze::{Model, Session};
use crate::goruntime::heap::blockprof::BlockKind;
use crate::report::{self, dump::DumpOptions};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// The one way the CLI opens an input file (snapshot or ELF core); warnings
/// about the executable are shown at once.
pub(super) fn open_input(path: &Path, bin: Option<&Path>) -> Result<Session> {
    let s = Session::open_file(path, bin)?;
    for w in &s.load_warnings {
        eprintln!("warning: {w}");
    }
    Ok(s)
}

extern "C" {
    // From the mimalloc library (the binary's global allocator).
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
}
/// `mi_option_purge_delay` (same position in mimalloc v2 and v3).
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

/// Offline analysis holds the whole snapshot in memory and its peak RSS is
/// a target of its own (at most twice the snapshot's uncompressed size):
/// - no transparent huge pages (the allocator's 2 MiB-aligned arenas would
///   be backed by huge pages touched a few bytes at a time: a third more);
/// - freed memory goes back to the system at once.
///
/// Not for capture: inside the pause, fresh pages would have to be faulted
/// in again, and its pre-touched read buffer copies faster with huge pages.
pub(super) fn analysis_memory_mode() {
    // SAFETY: prctl with integer arguments only changes this process's
    // flag; mi_option_set sets an allocator option (plain integers).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

pub(super) fn cmd_analyze(a: &AnalyzeArgs) -> Result<()> {
    analysis_memory_mode();
    let progress = Progress::start(format!("loading {}", a.file.display()));
    let s = open_input(&a.file, a.bin.as_deref())?;
    drop(progress);
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    let r = match &a.what {
        Analysis::Summary(x) => print_summary(&s, x),
        Analysis::Dump(x) => print_dump(&s, x),
        Analysis::Var(x) => print_var(&s, x),
        Analysis::Vars(x) => print_vars(&s, x),
        Analysis::Heap(x) => print_heap(&s, x),
        Analysis::Objects(x) => super::objects_cmd::print_objects(&s, x),
        Analysis::Retain(x) => super::retain_cmd::print_retain(&s, x),
        Analysis::Path(x) => super::retain_cmd::print_path(&s, x),
        Analysis::Leaks(x) => super::leaks_cmd::print_leaks(&s, x),
        Analysis::Top(x) => print_top(&s, x),
        Analysis::Pprof(x) => write_pprof(&s, x),
        Analysis::Folded(x) => {
            let m = Model::build_lean(&s)?;
            out(&report::pprof::folded(
                &m,
                &report::pprof::ExportOptions { all: x.all },
            ))
        }
    };
    exit_soon(s);
    r
}

pub(super) fn print_var(s: &Session, a: &VarArgs) -> Result<()> {
    let o = report::vars::VarOptions {
        json: a.json,
        depth: a.depth,
        max_elems: a.max_elems,
    };
    let r = report::vars::var(s, &a.name, &o)?;
    out(&r.output)?;
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}

pub(super) fn print_vars(s: &Session, a: &VarsArgs) -> Result<()> {
    let gs = report::vars::globals(s, a.regex.as_deref())?;
    if a.json {
        json_out(&gs)
    } else {
        out(&report::vars::globals_text(&gs))
    }
}

pub(super) fn write_pprof(s: &Session, a: &PprofArgs) -> Result<()> {
    let data = match a.kind {
        PprofKind::Goroutine => {
            let m = Model::build_lean(s)?;
            report::pprof::profile_gz(s, &m, &report::pprof::ExportOptions { all: a.all })?
        }
        PprofKind::Heap | PprofKind::Allocs => {
            let p = report::heapprof::mem_profile(s)?;
            for w in &p.warnings {
                eprintln!("warning: {w}");
            }
            let kind = if a.kind == PprofKind::Allocs {
                report::heapprof::MemKind::Allocs
            } else {
                report::heapprof::MemKind::Heap
            };
            report::heapprof::heap_gz(s, &p, kind)?
        }
        PprofKind::Block | PprofKind::Mutex => {
            let kind = if a.kind == PprofKind::Block {
                BlockKind::Block
            } else {
                BlockKind::Mutex
            };
            let p = report::blockprof::block_profile(s, kind)?;
            let mut warnings = p.warnings.clone();
            let ticks = report::blockprof::ticks_per_second(&p, &mut warnings);
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            report::blockprof::block_gz(s, &p, ticks)?
        }
    };
    std::fs::write(&a.output, data).with_context(|| format!("writing {}", a.output.display()))?;
    Ok(())
}

pub(super) fn print_heap(s: &Session, a: &HeapArgs) -> Result<()> {
    if a.sites {
        return print_heap_sites(s, a);
    }
    let h = report::heap::build(s, a.large)?;
    if a.json {
        json_out(&h)
    } else {
        out(&report::heap::to_text(&h))
    }
}

/// The heap profile's samples, its warnings printed.
pub(super) fn heap_samples(s: &Session) -> Result<report::heapprof::HeapSamples> {
    let p = report::heapprof::mem_profile(s)?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    Ok(report::heapprof::heap_samples(s, &p))
}

fn print_heap_sites(s: &Session, a: &HeapArgs) -> Result<()> {
    let hs = heap_samples(s)?;
    let index = report::sites::sample_index(a.sample.name()).unwrap_or(3);
    let sites = report::sites::top(&hs, index, a.lines, a.n);
    if a.json {
        json_out(&sites)
    } else {
        out(&report::sites::top_text(&sites))
    }
}

pub(super) fn print_summary(s: &Session, a: &SummaryArgs) -> Result<()> {
    let m = Model::build_lean(s)?;
    let sm = report::summary::build(s, &m, a.all);
    exit_soon(m);
    if a.json {
        json_out(&sm)
    } else {
        out(&report::summary::to_text(&sm))
    }
}

pub(super) fn print_dump(s: &Session, a: &DumpArgs) -> Result<()> {
    // Text is rendered a batch at a time, arguments included then: the
    // model itself need not hold them.
    let m = if a.json {
        Model::build(s)?
    } else {
        Model::build_lean(s)?
    };
    let opts = DumpOptions {
        all: a.all,
        wait_info: a.wait_info,
        labels: a.labels,
    };
    let r = if a.json {
        json_out(&report::dump::to_json(s, &m, &opts))
    } else {
        let mut o = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        report::dump::write_text(s, &m, &opts, &mut o)
            .and_then(|()| o.flush())
            .map_err(anyhow::Error::from)
    };
    exit_soon(m);
    r
}
