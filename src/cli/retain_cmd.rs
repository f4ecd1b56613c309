//! `gospy analyze FILE retain` and `path`: what holds the memory.

use super::args::{PathArgs, RetainArgs};
use super::output::{json_out, out};
use super::progress::Progress;
use crate::analyze::Session;
use crate::report;
use anyhow::{anyhow, Context, Result};

pub(super) fn print_retain(s: &Session, a: &RetainArgs) -> Result<()> {
    let top = match (a.top, a.json) {
        (Some(0), _) | (None, true) => None,
        (Some(n), _) => Some(n),
        (None, false) => Some(20),
    };
    let progress = Progress::start("heap graph and dominators".to_string());
    // The profile holds every root; the report shows the top ones.
    let (mut r, _) = report::retain::build(s, if a.output.is_some() { None } else { top })?;
    drop(progress);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &a.output {
        let gz = report::retain::profile_gz(&r)?;
        write_private(path, &gz).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} roots; `go tool pprof -top {}`)",
            path.display(),
            r.roots.len(),
            path.display()
        );
    }
    if let Some(n) = top {
        r.roots.truncate(n);
        r.types.truncate(n);
    }
    if a.json {
        json_out(&r)
    } else {
        out(&report::retain::to_text(&r))
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

pub(super) fn print_path(s: &Session, a: &PathArgs) -> Result<()> {
    let addr = match &a.addr {
        Some(x) => {
            let h = x.trim_start_matches("0x").trim_start_matches("0X");
            Some(u64::from_str_radix(h, 16).map_err(|_| anyhow!("{x:?} is not a hex address"))?)
        }
        None => None,
    };
    let progress = Progress::start("heap graph".to_string());
    let r = report::retain::build_path(s, addr, a.ty.as_deref(), a.n)?;
    drop(progress);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        json_out(&r)
    } else {
        out(&report::retain::path_to_text(&r))
    }
}
