//! `gospy diff A B`: goroutine growth between two snapshots of one process,
//! or (`--heap-sites`) in-use heap growth per allocation site.

use super::analyze_cmd::{analysis_memory_mode, heap_samples, open_input};
use super::args::DiffArgs;
use super::output::{json_out, out};
use crate::analyze::Model;
use crate::report;
use anyhow::{Context, Result};

pub(super) fn cmd_diff(a: &DiffArgs) -> Result<()> {
    analysis_memory_mode();
    let by = report::top::GroupBy::from_args(&a.by)?;
    let sa = open_input(&a.a, a.bin.as_deref()).with_context(|| a.a.display().to_string())?;
    // --bin names A's executable; B gets it too when they are the same build.
    let peek = crate::sources::snapshot::SnapshotFile::open(&a.b)
        .with_context(|| a.b.display().to_string())?;
    let same = peek.meta.go_build_id == sa.meta.go_build_id
        && peek.meta.gnu_build_id == sa.meta.gnu_build_id;
    drop(peek);
    let bin_b = if same { a.bin.as_deref() } else { None };
    let sb = open_input(&a.b, bin_b).with_context(|| a.b.display().to_string())?;
    let mut warnings = Vec::new();
    if let Some(w) = report::diff::check_same_binary(&sa, &sb, a.force)? {
        warnings.push(w);
    }
    for (name, s) in [(&a.a, &sa), (&a.b, &sb)] {
        for w in &s.warnings {
            eprintln!("warning: {}: {w}", name.display());
        }
    }
    if a.objects {
        let d = report::diff::objects(&sa, &sb, warnings)?;
        for w in &d.warnings {
            eprintln!("warning: {w}");
        }
        return if a.json {
            json_out(&d)
        } else {
            out(&report::diff::objects_text(&d, 30))
        };
    }
    if a.heap_sites {
        let ha = heap_samples(&sa).with_context(|| a.a.display().to_string())?;
        let hb = heap_samples(&sb).with_context(|| a.b.display().to_string())?;
        let d = report::sites::diff(&ha, &hb, warnings);
        return if a.json {
            json_out(&d)
        } else {
            out(&report::sites::diff_text(&d))
        };
    }
    let ma = Model::build_lean(&sa)?;
    let mb = Model::build_lean(&sb)?;
    let d = report::diff::build(&sa, &ma, &sb, &mb, &by, a.all, warnings);
    if a.json {
        json_out(&d)
    } else {
        out(&report::diff::to_text(&d))
    }
}
