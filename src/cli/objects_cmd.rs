//! `gospy analyze FILE objects`: heap objects by type or size class.

use super::args::{ObjectsArgs, ObjectsBy};
use super::output::{json_out, out};
use super::progress::Progress;
use crate::analyze::objects::GroupBy;
use crate::analyze::Session;
use crate::report;
use anyhow::Result;

pub(super) fn print_objects(s: &Session, a: &ObjectsArgs) -> Result<()> {
    let by = match a.by {
        ObjectsBy::Type => GroupBy::Type,
        ObjectsBy::SizeClass => GroupBy::SizeClass,
    };
    let n = match (a.n, a.json) {
        (Some(0), _) | (None, true) => None,
        (Some(n), _) => Some(n),
        (None, false) => Some(30),
    };
    let progress = Progress::start("walking heap objects".to_string());
    let r = report::objects::build(s, by, n)?;
    drop(progress);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        json_out(&r)
    } else {
        out(&report::objects::to_text(&r))
    }
}
