//! `diff A.gss B.gss`: what changed between two snapshots of one process:
//! goroutine counts, groups (the keys of `top`) and leak candidates.
//!
//! Leak candidates are goroutines present in both snapshots (same goid: ids
//! are never reused) that waited through the whole interval on the same
//! stack. `g.waitsince` is set by the garbage collector for goroutines
//! blocked when a cycle starts and cleared whenever the goroutine runs
//! (runtime/mgcmark.go, proc.go), so `waitsince != 0 && waitsince <= A's
//! capture time` in B proves the goroutine has not run since before A.

use super::top::{stack_signature, GroupBy, TopOptions};
use crate::analyze::{Model, Session};
use crate::goruntime::G_WAITING;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Counts {
    /// runtime.NumGoroutine() at A (falls back to goroutines listed).
    pub before: i64,
    pub after: i64,
}

#[derive(Debug, Serialize)]
pub struct DiffGroup {
    pub key: String,
    pub before: usize,
    pub after: usize,
    pub delta: i64,
}

#[derive(Debug, Serialize)]
pub struct LeakCandidate {
    pub id: u64,
    pub key: String,
    pub state: String,
    /// How long it has been waiting at B's capture (lower bound: since the
    /// GC cycle that first saw it blocked).
    pub wait_ns: u64,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub waiting_on: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub by: String,
    pub goroutines: Counts,
    pub interval_ns: i64,
    pub groups: Vec<DiffGroup>,
    pub leak_candidates: Vec<LeakCandidate>,
    /// Heap changes: null until a heap report exists to diff.
    pub heap: Option<serde_json::Value>,
    pub warnings: Vec<String>,
}

/// Refuse snapshots of different executables unless `force`.
pub fn check_same_binary(a: &Session, b: &Session, force: bool) -> Result<Option<String>> {
    let ia = crate::binary::elf::build_id_string(
        a.meta.go_build_id.as_deref(),
        a.meta.gnu_build_id.as_deref(),
    );
    let ib = crate::binary::elf::build_id_string(
        b.meta.go_build_id.as_deref(),
        b.meta.gnu_build_id.as_deref(),
    );
    if ia == ib {
        return Ok(None);
    }
    let msg = format!(
        "the snapshots are of different executables (build id {ia} vs {ib}); pass --force to compare them anyway"
    );
    if force {
        Ok(Some(
            msg.replace("; pass --force to compare them anyway", ""),
        ))
    } else {
        Err(anyhow!(msg))
    }
}

pub fn build(
    sa: &Session,
    ma: &Model,
    sb: &Session,
    mb: &Model,
    by: &GroupBy,
    all: bool,
    warnings: Vec<String>,
) -> Diff {
    let mut warnings = warnings;
    let opts = TopOptions {
        by: by.clone(),
        filter: None,
        all,
    };
    let ka = super::top::keyed(sa, ma, &opts);
    let kb = super::top::keyed(sb, mb, &opts);
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (_, k) in &ka {
        groups.entry(k.clone()).or_default().0 += 1;
    }
    for (_, k) in &kb {
        groups.entry(k.clone()).or_default().1 += 1;
    }
    let mut groups: Vec<DiffGroup> = groups
        .into_iter()
        .map(|(key, (before, after))| DiffGroup {
            key,
            before,
            after,
            delta: after as i64 - before as i64,
        })
        .filter(|g| g.delta != 0 || g.before > 0)
        .collect();
    groups.sort_by(|a, b| {
        b.delta
            .abs()
            .cmp(&a.delta.abs())
            .then_with(|| b.after.cmp(&a.after))
            .then_with(|| a.key.cmp(&b.key))
    });

    let a_time = sa.meta.mono_time_ns as i64;
    let b_time = sb.meta.mono_time_ns as i64;
    let mut leak_candidates = Vec::new();
    if sa.meta.pid != sb.meta.pid {
        warnings.push(format!(
            "different processes (pid {} vs {}): no leak candidates",
            sa.meta.pid, sb.meta.pid
        ));
    } else if b_time <= a_time {
        warnings.push(
            "B was captured before A (or at the same time): no leak candidates; pass the older snapshot first".into(),
        );
    } else {
        let before: HashMap<u64, &crate::analyze::Goroutine> =
            ka.iter().map(|(g, _)| (g.g.goid, *g)).collect();
        for (g, key) in &kb {
            let Some(old) = before.get(&g.g.goid) else {
                continue;
            };
            let ws = g.g.waitsince;
            if g.g.status != G_WAITING || old.g.status != G_WAITING || ws == 0 || ws > a_time {
                continue;
            }
            if stack_signature(g, true) != stack_signature(old, true) {
                continue;
            }
            let loc = super::current_location(g);
            leak_candidates.push(LeakCandidate {
                id: g.g.goid,
                key: key.clone(),
                state: g.state.to_string(),
                wait_ns: (b_time - ws).max(0) as u64,
                function: loc.map(|f| f.function.to_string()),
                file: loc.map(|f| f.file.to_string()),
                line: loc.map(|f| f.line),
                waiting_on: g.waiting_on.as_ref().map(|w| w.describe()),
            });
        }
        leak_candidates.sort_by(|a, b| b.wait_ns.cmp(&a.wait_ns).then(a.id.cmp(&b.id)));
    }
    let count = |m: &Model, n: usize| m.num_goroutine.unwrap_or(n as i64);
    Diff {
        by: by.name(),
        goroutines: Counts {
            before: count(ma, ka.len()),
            after: count(mb, kb.len()),
        },
        interval_ns: b_time - a_time,
        groups,
        leak_candidates,
        heap: heap_diff(sa, sb),
        warnings,
    }
}

/// MemStats fields and live objects per size class, before and after.
/// None when either snapshot's heap cannot be decoded.
fn heap_diff(sa: &Session, sb: &Session) -> Option<serde_json::Value> {
    use serde_json::{json, Map, Value};
    let ha = super::heap::build(sa, false).ok()?;
    let hb = super::heap::build(sb, false).ok()?;
    let ma = serde_json::to_value(&ha.heap.memstats).ok()?;
    let mb = serde_json::to_value(&hb.heap.memstats).ok()?;
    let mut fields = Map::new();
    if let (Value::Object(a), Value::Object(b)) = (&ma, &mb) {
        for (k, va) in a {
            if let (Some(x), Some(y)) = (va.as_i64(), b.get(k).and_then(Value::as_i64)) {
                fields.insert(k.clone(), json!({"before": x, "after": y, "delta": y - x}));
            }
        }
    }
    let mut classes = Vec::new();
    for ca in &ha.heap.size_classes {
        if let Some(cb) = hb.heap.size_classes.iter().find(|c| c.class == ca.class) {
            if ca.objects != cb.objects || ca.bytes != cb.bytes {
                classes.push(json!({
                    "class": ca.class,
                    "size": ca.size,
                    "objects_before": ca.objects,
                    "objects_after": cb.objects,
                    "objects_delta": cb.objects as i64 - ca.objects as i64,
                    "bytes_delta": cb.bytes as i64 - ca.bytes as i64,
                }));
            }
        }
    }
    classes.sort_by_key(|c| -c["bytes_delta"].as_i64().unwrap_or(0).abs());
    Some(json!({"memstats": fields, "size_classes": classes}))
}

pub fn to_text(d: &Diff) -> String {
    let mut o = String::new();
    let delta = d.goroutines.after - d.goroutines.before;
    let _ = writeln!(
        o,
        "goroutines: {} -> {} ({:+}) over {}",
        d.goroutines.before,
        d.goroutines.after,
        delta,
        super::fmt_duration_ns(d.interval_ns.max(0) as u64)
    );
    let changed: Vec<&DiffGroup> = d.groups.iter().filter(|g| g.delta != 0).collect();
    if changed.is_empty() {
        let _ = writeln!(o, "\nno group changed (by {})", d.by);
    } else {
        let _ = writeln!(o, "\nchanged groups (by {}):", d.by);
        let _ = writeln!(o, "{:>7} {:>7} {:>7}  KEY", "BEFORE", "AFTER", "DELTA");
        for g in changed {
            let _ = writeln!(
                o,
                "{:>7} {:>7} {:>+7}  {}",
                g.before, g.after, g.delta, g.key
            );
        }
    }
    if d.leak_candidates.is_empty() {
        let _ = writeln!(
            o,
            "\nno leak candidates (goroutines blocked on the same stack through the whole interval)"
        );
    } else {
        let _ = writeln!(
            o,
            "\n{} leak candidates (blocked on the same stack through the whole interval):",
            d.leak_candidates.len()
        );
        for l in &d.leak_candidates {
            let loc = match (&l.function, &l.file, l.line) {
                (Some(f), Some(file), Some(n)) => format!("{f} ({file}:{n})"),
                _ => "?".into(),
            };
            let on = l
                .waiting_on
                .as_ref()
                .map(|w| format!(" [on {w}]"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  goroutine {} [{}, {}]: {} [{}: {}]{}",
                l.id,
                l.state,
                super::fmt_duration_ns(l.wait_ns),
                loc,
                d.by,
                l.key,
                on
            );
        }
    }
    for w in &d.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    if let Some(h) = &d.heap {
        let _ = writeln!(o, "\nheap:");
        for k in [
            "HeapAlloc",
            "HeapInuse",
            "HeapObjects",
            "Mallocs",
            "Frees",
            "TotalAlloc",
            "StackInuse",
            "NumGC",
        ] {
            if let Some(f) = h["memstats"].get(k) {
                let _ = writeln!(
                    o,
                    "  {:<12} {:>14} -> {:>14} ({:+})",
                    k,
                    f["before"],
                    f["after"],
                    f["delta"].as_i64().unwrap_or(0)
                );
            }
        }
        if let Some(cs) = h["size_classes"].as_array() {
            for c in cs.iter().take(10) {
                let _ = writeln!(
                    o,
                    "  size class {:>2} ({:>5} B): objects {:+}, bytes {:+}",
                    c["class"],
                    c["size"],
                    c["objects_delta"].as_i64().unwrap_or(0),
                    c["bytes_delta"].as_i64().unwrap_or(0)
                );
            }
        }
    }
    o
}

/// One type's growth between two heap-complete snapshots (`diff --objects`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TypeGrowth {
    #[serde(rename = "type")]
    pub ty: String,
    pub count_a: u64,
    pub count_b: u64,
    pub count_growth: i64,
    pub bytes_a: u64,
    pub bytes_b: u64,
    pub bytes_growth: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectsDiff {
    pub total_objects_a: u64,
    pub total_objects_b: u64,
    pub total_bytes_a: u64,
    pub total_bytes_b: u64,
    pub objects_growth: i64,
    pub bytes_growth: i64,
    /// Types whose count or bytes changed, largest byte growth first.
    pub types: Vec<TypeGrowth>,
    pub warnings: Vec<String>,
}

/// Growth of heap objects by type from `a` to `b` (both heap-complete).
pub fn objects(a: &Session, b: &Session, mut warnings: Vec<String>) -> anyhow::Result<ObjectsDiff> {
    use crate::analyze::objects::{census, GroupBy};
    let ca = census(a).map_err(|e| anyhow::anyhow!("first snapshot: {e}"))?;
    let cb = census(b).map_err(|e| anyhow::anyhow!("second snapshot: {e}"))?;
    warnings.extend(ca.warnings.iter().map(|w| format!("first snapshot: {w}")));
    warnings.extend(cb.warnings.iter().map(|w| format!("second snapshot: {w}")));
    let mut m: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
    for g in ca.groups(GroupBy::Type) {
        let e = m.entry(g.name).or_default();
        e[0] = g.count;
        e[2] = g.bytes;
    }
    for g in cb.groups(GroupBy::Type) {
        let e = m.entry(g.name).or_default();
        e[1] = g.count;
        e[3] = g.bytes;
    }
    let mut types: Vec<TypeGrowth> = m
        .into_iter()
        .filter(|(_, v)| v[0] != v[1] || v[2] != v[3])
        .map(|(ty, v)| TypeGrowth {
            ty,
            count_a: v[0],
            count_b: v[1],
            count_growth: v[1] as i64 - v[0] as i64,
            bytes_a: v[2],
            bytes_b: v[3],
            bytes_growth: v[3] as i64 - v[2] as i64,
        })
        .collect();
    types.sort_by(|x, y| {
        y.bytes_growth
            .cmp(&x.bytes_growth)
            .then(y.count_growth.cmp(&x.count_growth))
            .then(x.ty.cmp(&y.ty))
    });
    Ok(ObjectsDiff {
        total_objects_a: ca.total_objects,
        total_objects_b: cb.total_objects,
        total_bytes_a: ca.total_bytes,
        total_bytes_b: cb.total_bytes,
        objects_growth: cb.total_objects as i64 - ca.total_objects as i64,
        bytes_growth: cb.total_bytes as i64 - ca.total_bytes as i64,
        types,
        warnings,
    })
}

pub fn objects_text(d: &ObjectsDiff, n: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "heap objects: {} -> {} ({:+}), bytes {} -> {} ({:+})",
        d.total_objects_a,
        d.total_objects_b,
        d.objects_growth,
        crate::text::fmt_bytes(d.total_bytes_a),
        crate::text::fmt_bytes(d.total_bytes_b),
        d.bytes_growth
    );
    let _ = writeln!(s, "{:>14} {:>10}  TYPE", "BYTES +/-", "COUNT +/-");
    for t in d.types.iter().take(n) {
        let _ = writeln!(
            s,
            "{:>+14} {:>+10}  {}",
            t.bytes_growth, t.count_growth, t.ty
        );
    }
    if d.types.len() > n {
        let _ = writeln!(
            s,
            "({} more types changed; --json for all)",
            d.types.len() - n
        );
    }
    s
}
