//! `gospy analyze FILE leaks` and live `gospy leaks --pid N`: goroutines
//! that can never run again.

use super::args::LeaksArgs;
use super::output::{json_out, out};
use super::progress::Progress;
use crate::analyze::{leaks, Model, Session};
use crate::report;
use anyhow::Result;

pub(super) fn print_leaks(s: &Session, a: &LeaksArgs) -> Result<()> {
    let progress = Progress::start("heap graph and leak analysis".to_string());
    let model = Model::build_lean(s)?;
    let r = leaks::find_leaks(s, &model)?;
    drop(progress);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        json_out(&r)
    } else {
        out(&report::leaks::to_text(&r))
    }
}
