//! `retain`: what holds the memory (retained bytes and objects per root
//! and per type, with each root's largest retained chain), its pprof
//! profile, and `path`: the root path to one object.

use super::pprof::{Pb, Strings};
use crate::analyze::retain::{retention, Retention, Step};
use crate::analyze::Session;
use crate::goruntime::heap::roots::RootKind;
use crate::text::fmt_bytes;
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct RootRow {
    /// `main.cache`, `goroutine 18: main.holder`, `runtime: allgs`,
    /// `data+0x1f8` (no symbol table).
    pub root: String,
    pub kind: RootKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goroutine: Option<u64>,
    pub retained_bytes: u64,
    pub retained_objects: u64,
    /// From the root down its largest retained chain.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeRow {
    #[serde(rename = "type")]
    pub ty: String,
    pub retained_bytes: u64,
    pub retained_objects: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetainReport {
    pub total_objects: u64,
    pub total_bytes: u64,
    /// Bytes and objects no root found reaches (objects kept by finalizer
    /// specials, or garbage since the last GC).
    pub unreachable_bytes: u64,
    pub unreachable_objects: u64,
    /// Pointers found by conservative scanning (see `--help`).
    pub conservative: bool,
    pub edges: u64,
    /// Roots with retained bytes, largest first (`--top`).
    pub roots: Vec<RootRow>,
    pub roots_total: usize,
    pub types: Vec<TypeRow>,
    pub warnings: Vec<String>,
}

/// The report and the retention it came from (for the pprof profile).
pub fn build(s: &Session, top: Option<usize>) -> Result<(RetainReport, Retention)> {
    let r = retention(s)?;
    let all: Vec<RootRow> = r
        .roots()
        .into_iter()
        .filter(|x| x.retained_bytes > 0)
        .map(|x| RootRow {
            root: x.root,
            kind: x.kind,
            goroutine: x.goroutine,
            retained_bytes: x.retained_bytes,
            retained_objects: x.retained_objects,
            path: x.path,
        })
        .collect();
    let roots_total = all.len();
    let n = top.unwrap_or(usize::MAX);
    let (ub, uo) = r.unreachable();
    let rep = RetainReport {
        total_objects: r.census.total_objects,
        total_bytes: r.census.total_bytes,
        unreachable_bytes: ub,
        unreachable_objects: uo,
        conservative: r.graph.conservative,
        edges: (r.graph.out.edges() + r.graph.root_out.edges()) as u64,
        roots: all.into_iter().take(n).collect(),
        roots_total,
        types: r
            .types()
            .into_iter()
            .take(n)
            .map(|(ty, b, o)| TypeRow {
                ty,
                retained_bytes: b,
                retained_objects: o,
            })
            .collect(),
        warnings: r.warnings.clone(),
    };
    Ok((rep, r))
}

pub fn to_text(r: &RetainReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} objects, {} live; {} in {} objects reached by no root{}",
        r.total_objects,
        fmt_bytes(r.total_bytes),
        fmt_bytes(r.unreachable_bytes),
        r.unreachable_objects,
        if r.conservative {
            " (pointers found by conservative scanning)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "\nRETAINED BY ROOT ({} of {})",
        r.roots.len(),
        r.roots_total
    );
    let _ = writeln!(s, "{:>12} {:>9}  ROOT", "BYTES", "OBJECTS");
    for x in &r.roots {
        let _ = writeln!(
            s,
            "{:>12} {:>9}  {}",
            fmt_bytes(x.retained_bytes),
            x.retained_objects,
            x.root
        );
        if x.path.len() > 1 {
            let _ = writeln!(s, "{:>24}{}", "", x.path.join(" → "));
        }
    }
    let _ = writeln!(s, "\nRETAINED BY TYPE");
    let _ = writeln!(s, "{:>12} {:>9}  TYPE", "BYTES", "OBJECTS");
    for t in &r.types {
        let _ = writeln!(
            s,
            "{:>12} {:>9}  {}",
            fmt_bytes(t.retained_bytes),
            t.retained_objects,
            t.ty
        );
    }
    s
}

/// Retention as a pprof profile (gzip): each root's path a stack (the root
/// outermost), values retained objects and bytes.
pub fn profile_gz(r: &RetainReport) -> std::io::Result<Vec<u8>> {
    let mut st = Strings::new();
    let mut prof = Pb::default();
    for (t, u) in [("retained_objects", "count"), ("retained_space", "bytes")] {
        let mut v = Pb::default();
        v.int(1, st.id(t));
        v.int(2, st.id(u));
        prof.msg(1, v);
    }
    let mut funcs: HashMap<String, u64> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for x in &r.roots {
        let mut stack: Vec<String> = vec![x.root.clone()];
        stack.extend(x.path.iter().skip(1).cloned());
        let ids: Vec<u64> = stack
            .iter()
            .rev()
            .map(|n| {
                let k = funcs.len() as u64 + 1;
                *funcs.entry(n.clone()).or_insert_with(|| {
                    order.push(n.clone());
                    k
                })
            })
            .collect();
        let mut sm = Pb::default();
        sm.packed(1, &ids);
        sm.packed(2, &[x.retained_objects, x.retained_bytes]);
        prof.msg(2, sm);
    }
    for k in 0..order.len() {
        let id = k as u64 + 1;
        let mut line = Pb::default();
        line.uint(1, id);
        let mut loc = Pb::default();
        loc.uint(1, id);
        loc.msg(4, line);
        prof.msg(4, loc);
    }
    for (k, name) in order.iter().enumerate() {
        let mut f = Pb::default();
        f.uint(1, k as u64 + 1);
        f.int(2, st.id(name));
        f.int(3, st.id(name));
        prof.msg(5, f);
    }
    for v in &st.list {
        prof.bytes(6, v.as_bytes());
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&prof.buf)?;
    enc.finish()
}

#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectPath {
    pub addr: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// Root first; empty when no root reaches the object.
    pub path: Vec<PathStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    /// Objects matched (`--type`: all of the type), and those shown.
    pub matched: usize,
    pub objects: Vec<ObjectPath>,
    pub warnings: Vec<String>,
}

fn object_path(r: &Retention, i: usize, steps: Vec<Step>) -> ObjectPath {
    ObjectPath {
        addr: format!("{:#x}", r.census.objects.objects[i].addr),
        ty: r.type_name(i),
        path: steps
            .into_iter()
            .map(|s| PathStep {
                name: s.name,
                addr: s.addr.map(|a| format!("{a:#x}")),
            })
            .collect(),
    }
}

/// Root paths to the object at `addr`, or to up to `n` objects of type `ty`.
pub fn build_path(
    s: &Session,
    addr: Option<u64>,
    ty: Option<&str>,
    n: usize,
) -> Result<PathReport> {
    let r = retention(s)?;
    let mut objects = Vec::new();
    let matched;
    if let Some(a) = addr {
        let steps = r.path_to_addr(a)?;
        let i = crate::goruntime::heap::graph::find_object(&r.census.objects, a)
            .map_or(0, |i| i as usize);
        objects.push(object_path(&r, i, steps));
        matched = 1;
    } else if let Some(t) = ty {
        let all = r.objects_of_type(t);
        if all.is_empty() {
            bail!("no heap object of type {t:?} (see `analyze FILE objects` for the type names)");
        }
        matched = all.len();
        for &i in all.iter().take(n) {
            let steps = r.path_to_node(r.dom.object_node(i));
            objects.push(object_path(&r, i, steps));
        }
    } else {
        bail!("give an address or --type T");
    }
    Ok(PathReport {
        matched,
        objects,
        warnings: r.warnings.clone(),
    })
}

pub fn path_to_text(p: &PathReport) -> String {
    let mut s = String::new();
    if p.matched > p.objects.len() {
        let _ = writeln!(s, "{} of {} objects shown", p.objects.len(), p.matched);
    }
    for o in &p.objects {
        let _ = writeln!(s, "{} {}", o.addr, o.ty);
        if o.path.is_empty() {
            let _ = writeln!(s, "  reached by no root (garbage, or kept by a finalizer)");
        }
        for (k, st) in o.path.iter().enumerate() {
            let at = st
                .addr
                .as_deref()
                .map_or(String::new(), |a| format!(" @ {a}"));
            let _ = writeln!(s, "  {}{}{}", "  ".repeat(k.min(20)), st.name, at);
        }
    }
    s
}
