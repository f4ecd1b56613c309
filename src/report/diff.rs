//! `diff A.gss B.gss`: what changed between two snapshots of one process:
//! goroutine counts, groups (the keys of `top`) and leak candidates.
//!
//! Leak candidates come in groups (the keys of `--by`): a group is a
//! candidate when it grew between the snapshots and stayed blocked: every one
//! of its goroutines in B is blocked, and every one already present in A
//! (same goid: ids are never reused) waited through the whole interval on the
//! same stack. Long-lived daemons (signal handlers, accept loops, tickers,
//! `select {}` in main) do not grow, so they are never listed, however long
//! they have waited. Groups are ranked by growth.
//!
//! `g.waitsince` is set by the garbage collector for goroutines blocked when
//! a cycle starts and cleared whenever the goroutine runs (runtime/mgcmark.go,
//! proc.go), so `waitsince != 0 && waitsince <= A's capture time` in B proves
//! the goroutine has not run since before A.

use super::top::{stack_signature, GroupBy, TopOptions};
use crate::analyze::{Model, Session};
use crate::goruntime::version::status::G_LEAKED;
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

/// A group that grew between the snapshots and stayed blocked.
#[derive(Debug, Serialize)]
pub struct LeakGroup {
    pub key: String,
    pub before: usize,
    pub after: usize,
    pub delta: i64,
    /// Of `before`, how many are still there, blocked on the same stack
    /// without having run.
    pub blocked_through: usize,
    /// The longest wait in B, when a GC has recorded one.
    pub longest_wait_ns: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LeakCandidate {
    pub id: u64,
    pub key: String,
    pub state: String,
    /// How long it has been waiting at B's capture (lower bound: since the
    /// GC cycle that first saw it blocked); null when no GC has seen it blocked.
    pub wait_ns: Option<u64>,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub waiting_on: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LeakAnalysisDiff {
    pub leaked_before: usize,
    pub leaked_after: usize,
    /// Leaked in B, not leaked (or not there) in A.
    pub new_leaks: Vec<crate::analyze::leaks::LeakedGoroutine>,
    /// `new_leaks` by creation site and blocking site.
    pub new_groups: Vec<crate::analyze::leaks::LeakGroup>,
}

/// The leak analysis of both snapshots when both are heap-complete.
fn leak_analysis(sa: &Session, ma: &Model, sb: &Session, mb: &Model) -> Option<LeakAnalysisDiff> {
    use crate::analyze::leaks::{find_leaks, group, heap_complete};
    if !heap_complete(sa) || !heap_complete(sb) {
        return None;
    }
    let la = find_leaks(sa, ma).ok()?;
    let lb = find_leaks(sb, mb).ok()?;
    let before: std::collections::HashSet<u64> = la.leaked.iter().map(|g| g.id).collect();
    let new_leaks: Vec<_> = lb
        .leaked
        .iter()
        .filter(|g| !before.contains(&g.id))
        .cloned()
        .collect();
    Some(LeakAnalysisDiff {
        leaked_before: la.leaked.len(),
        leaked_after: lb.leaked.len(),
        new_groups: group(&new_leaks),
        new_leaks,
    })
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub by: String,
    pub goroutines: Counts,
    pub interval_ns: i64,
    pub groups: Vec<DiffGroup>,
    /// Groups that grew and stayed blocked, most growth first.
    pub leak_groups: Vec<LeakGroup>,
    /// The goroutines of `leak_groups` in B, in that order.
    pub leak_candidates: Vec<LeakCandidate>,
    /// Both snapshots heap-complete: the leak analysis of each, and the
    /// goroutines leaked in B that were not in A (replaces the growth
    /// heuristic: `leak_groups` and `leak_candidates` are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_analysis: Option<LeakAnalysisDiff>,
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
    let (mut leak_groups, mut leak_candidates) = (Vec::new(), Vec::new());
    if sa.meta.pid != sb.meta.pid {
        warnings.push(format!(
            "different processes (pid {} vs {}): no leak candidates",
            sa.meta.pid, sb.meta.pid
        ));
    } else if b_time <= a_time {
        warnings.push(
            "B was captured before A (or at the same time): no leak candidates; pass the older snapshot first".into(),
        );
    }
    let leak_analysis = if sa.meta.pid == sb.meta.pid && b_time > a_time {
        leak_analysis(sa, ma, sb, mb)
    } else {
        None
    };
    if leak_analysis.is_none() && sa.meta.pid == sb.meta.pid && b_time > a_time {
        (leak_groups, leak_candidates) = leaks(&ka, &kb, &groups, (a_time, b_time));
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
        leak_groups,
        leak_candidates,
        leak_analysis,
        heap: heap_diff(sa, sb),
        warnings,
    }
}

type Keyed<'a> = [(&'a crate::analyze::Goroutine, String)];

fn blocked(g: &crate::analyze::Goroutine) -> bool {
    g.g.status == G_WAITING || g.g.status == G_LEAKED
}

/// The groups that grew and stayed blocked, and their goroutines in B.
fn leaks(
    ka: &Keyed<'_>,
    kb: &Keyed<'_>,
    groups: &[DiffGroup],
    (a_time, b_time): (i64, i64),
) -> (Vec<LeakGroup>, Vec<LeakCandidate>) {
    let before: HashMap<u64, &crate::analyze::Goroutine> =
        ka.iter().map(|(g, _)| (g.g.goid, *g)).collect();
    let mut members: HashMap<&str, Vec<&crate::analyze::Goroutine>> = HashMap::new();
    for (g, key) in kb {
        members.entry(key.as_str()).or_default().push(g);
    }
    let wait = |g: &crate::analyze::Goroutine| {
        (g.g.waitsince != 0).then(|| (b_time - g.g.waitsince).max(0) as u64)
    };
    let mut out = Vec::new();
    for grp in groups.iter().filter(|g| g.delta > 0) {
        let gs = members.remove(grp.key.as_str()).unwrap_or_default();
        let mut through = 0;
        let stayed = gs.iter().all(|g| {
            if !blocked(g) {
                return false;
            }
            let Some(old) = before.get(&g.g.goid) else {
                return true;
            };
            let ws = g.g.waitsince;
            let same = blocked(old)
                && ws != 0
                && ws <= a_time
                && stack_signature(g, true) == stack_signature(old, true);
            through += usize::from(same);
            same
        });
        if stayed && !gs.is_empty() {
            out.push((grp, through, gs));
        }
    }
    out.sort_by(|a, b| {
        b.0.delta
            .cmp(&a.0.delta)
            .then_with(|| a.0.key.cmp(&b.0.key))
    });
    let mut lgroups = Vec::new();
    let mut cands = Vec::new();
    for (grp, through, mut gs) in out {
        gs.sort_by(|a, b| wait(b).cmp(&wait(a)).then(a.g.goid.cmp(&b.g.goid)));
        lgroups.push(LeakGroup {
            key: grp.key.clone(),
            before: grp.before,
            after: grp.after,
            delta: grp.delta,
            blocked_through: through,
            longest_wait_ns: gs.iter().filter_map(|g| wait(g)).max(),
        });
        for g in gs {
            let loc = super::current_location(g);
            cands.push(LeakCandidate {
                id: g.g.goid,
                key: grp.key.clone(),
                state: g.state.to_string(),
                wait_ns: wait(g),
                function: loc.map(|f| f.function.to_string()),
                file: loc.map(|f| f.file.to_string()),
                line: loc.map(|f| f.line),
                waiting_on: g.waiting_on.as_ref().map(|w| w.describe()),
            });
        }
    }
    (lgroups, cands)
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

/// One goroutine of a leak group: where it waits, for how long, on what.
fn candidate_line(l: &LeakCandidate) -> String {
    let loc = match (&l.function, &l.file, l.line) {
        (Some(f), Some(file), Some(n)) => format!("{f} ({file}:{n})"),
        _ => "?".into(),
    };
    let on = l
        .waiting_on
        .as_ref()
        .map(|w| format!(" [on {w}]"))
        .unwrap_or_default();
    let state = match l.wait_ns {
        Some(w) => format!("{}, {}", l.state, super::fmt_duration_ns(w)),
        None => l.state.clone(),
    };
    format!("goroutine {} [{state}]: {loc}{on}", l.id)
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
    if let Some(l) = &d.leak_analysis {
        let _ = writeln!(
            o,
            "\nleaked goroutines (heap analysis): {} -> {}, {} new",
            l.leaked_before,
            l.leaked_after,
            l.new_leaks.len()
        );
        for g in &l.new_groups {
            let _ = writeln!(
                o,
                "{:>7}  [{}] {}  created by {}",
                g.count,
                g.wait_reason,
                g.blocking_site,
                g.created_by.as_deref().unwrap_or("?")
            );
        }
    } else if d.leak_groups.is_empty() {
        let _ = writeln!(o, "\nno leak candidates (no group grew and stayed blocked)");
    } else {
        let _ = writeln!(
            o,
            "\nleak candidates: {} goroutines in {} groups that grew and stayed blocked (by {}):",
            d.leak_candidates.len(),
            d.leak_groups.len(),
            d.by
        );
        let _ = writeln!(
            o,
            "{:>7} {:>7} {:>7} {:>8} {:>9}  KEY",
            "BEFORE", "AFTER", "DELTA", "THROUGH", "LONGEST"
        );
        for g in &d.leak_groups {
            let longest = g
                .longest_wait_ns
                .map(super::fmt_duration_ns)
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "{:>7} {:>7} {:>+7} {:>8} {:>9}  {}",
                g.before, g.after, g.delta, g.blocked_through, longest, g.key
            );
            for l in d.leak_candidates.iter().filter(|l| l.key == g.key).take(3) {
                let _ = writeln!(o, "    {}", candidate_line(l));
            }
            if g.after > 3 {
                let _ = writeln!(o, "    ... {} more", g.after - 3);
            }
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
