//! `objects`: heap objects by type (or size class), with totals, like
//! viewcore's histogram.

use crate::analyze::objects::{census, GroupBy};
use crate::analyze::Session;
use crate::text::fmt_bytes;
use anyhow::Result;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct TypeRow {
    /// The type as the runtime spells it (`main.Node`, `[]uint8`), or
    /// `unknown, SIZE B`; with `--by size-class`, the size class.
    #[serde(rename = "type")]
    pub ty: String,
    pub count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectsReport {
    pub total_objects: u64,
    pub total_bytes: u64,
    /// "type" or "size-class".
    pub by: String,
    /// Objects whose type is known (runtime records or DWARF), and how.
    pub typed_objects: u64,
    pub typed_by_runtime: u64,
    pub typed_by_dwarf: u64,
    /// Without DWARF: typed from runtime type descriptors found through
    /// interfaces, maps and channels.
    pub typed_by_descriptors: u64,
    pub spans_in_use: u64,
    /// Groups, most bytes first; `types_shown` of `types_total` (`-n`).
    pub types: Vec<TypeRow>,
    pub types_total: usize,
    pub warnings: Vec<String>,
}

/// `n`: groups kept (None: all).
pub fn build(s: &Session, by: GroupBy, n: Option<usize>) -> Result<ObjectsReport> {
    let c = census(s)?;
    let groups = c.groups(by);
    let total = groups.len();
    let types = groups
        .into_iter()
        .take(n.unwrap_or(usize::MAX))
        .map(|g| TypeRow {
            ty: g.name,
            count: g.count,
            bytes: g.bytes,
        })
        .collect();
    Ok(ObjectsReport {
        total_objects: c.total_objects,
        total_bytes: c.total_bytes,
        by: match by {
            GroupBy::Type => "type",
            GroupBy::SizeClass => "size-class",
        }
        .into(),
        typed_objects: c.typed_objects,
        typed_by_runtime: c.types.from_runtime,
        typed_by_dwarf: c.types.from_dwarf,
        typed_by_descriptors: c.types.from_descriptors,
        spans_in_use: c.objects.spans_in_use,
        types,
        types_total: total,
        warnings: c.warnings,
    })
}

pub fn to_text(r: &ObjectsReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} objects, {} in {} spans; typed {} ({} by runtime type records, {} through DWARF{})",
        r.total_objects,
        fmt_bytes(r.total_bytes),
        r.spans_in_use,
        r.typed_objects,
        r.typed_by_runtime,
        r.typed_by_dwarf,
        match r.typed_by_descriptors {
            0 => String::new(),
            n => format!(", {n} through interfaces, maps and channels"),
        }
    );
    let _ = writeln!(
        s,
        "{:>10} {:>12} {:>6}  {}",
        "COUNT",
        "BYTES",
        "%",
        r.by.to_uppercase()
    );
    for t in &r.types {
        let pct = if r.total_bytes > 0 {
            t.bytes as f64 * 100.0 / r.total_bytes as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "{:>10} {:>12} {:>5.1}%  {}",
            t.count,
            fmt_bytes(t.bytes),
            pct,
            t.ty
        );
    }
    if r.types.len() < r.types_total {
        let _ = writeln!(
            s,
            "... {} more (-n 0 shows all)",
            r.types_total - r.types.len()
        );
    }
    s
}
