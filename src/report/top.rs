//! `top`: goroutines aggregated by a key (start function, go statement,
//! innermost user frame, full stack, a pprof label, the object waited on),
//! sorted by count, with the status mix of each group.

use crate::analyze::{Goroutine, Model, Session};
use anyhow::{anyhow, Result};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// What goroutines are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// The function the goroutine was started with (`go` wrappers resolved).
    Start,
    /// The `go` statement that created it: file:line and function.
    Go,
    /// The innermost frame outside the runtime and low-level std packages.
    Current,
    /// The whole (shown) stack: functions and lines.
    Stack,
    /// The value of one pprof label.
    Label(String),
    /// The channel / semaphore / Cond it is blocked on.
    Wait,
    /// Leaked (by the leak analysis of a heap-complete snapshot) and where
    /// it blocks, or not leaked.
    Leak,
}

impl GroupBy {
    /// From `--by KIND [KEY]` values.
    pub fn from_args(v: &[String]) -> Result<GroupBy> {
        let kind = v.first().map(String::as_str).unwrap_or("start");
        let arg = v.get(1);
        let by = match kind {
            "start" => GroupBy::Start,
            "go" => GroupBy::Go,
            "current" => GroupBy::Current,
            "stack" => GroupBy::Stack,
            "wait" => GroupBy::Wait,
            "leak" => GroupBy::Leak,
            "label" => {
                return match arg {
                    Some(k) => Ok(GroupBy::Label(k.clone())),
                    None => Err(anyhow!("--by label needs a label key: --by label KEY")),
                }
            }
            k => {
                if let Some(key) = k
                    .strip_prefix("label=")
                    .or_else(|| k.strip_prefix("label:"))
                {
                    GroupBy::Label(key.to_string())
                } else {
                    return Err(anyhow!(
                        "unknown grouping {k:?}: use start, go, current, stack, wait, leak or label KEY"
                    ));
                }
            }
        };
        if let Some(a) = arg {
            return Err(anyhow!("--by {kind} takes no value (got {a:?})"));
        }
        Ok(by)
    }

    pub fn name(&self) -> String {
        match self {
            GroupBy::Start => "start".into(),
            GroupBy::Go => "go".into(),
            GroupBy::Current => "current".into(),
            GroupBy::Stack => "stack".into(),
            GroupBy::Label(k) => format!("label {k}"),
            GroupBy::Wait => "wait".into(),
            GroupBy::Leak => "leak".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            GroupBy::Start => "start function".into(),
            GroupBy::Go => "go statement".into(),
            GroupBy::Current => "innermost user frame".into(),
            GroupBy::Stack => "stack".into(),
            GroupBy::Label(k) => format!("label {k:?}"),
            GroupBy::Wait => "object waited on".into(),
            GroupBy::Leak => "leaked (heap analysis) and blocking site".into(),
        }
    }
}

/// Packages whose frames are not "user" frames for `--by current`.
fn is_low_level_package(function: &str) -> bool {
    let pkg = package_of(function);
    pkg == "runtime"
        || pkg.starts_with("runtime/")
        || pkg.starts_with("internal/")
        || pkg == "sync"
        || pkg == "sync/atomic"
        || pkg == "syscall"
        || pkg == "time"
        || pkg == "unique"
        || pkg == "weak"
}

/// `net/http.(*conn).serve` → `net/http`; `main.main.func1` → `main`.
pub fn package_of(function: &str) -> &str {
    let slash = function.rfind('/').map(|i| i + 1).unwrap_or(0);
    match function[slash..].find('.') {
        Some(d) => &function[..slash + d],
        None => function,
    }
}

/// The stack signature: shown frames (all with `all`), innermost first, as
/// `function file:line`, joined by "; ".
pub fn stack_signature(g: &Goroutine, all: bool) -> String {
    let v: Vec<String> = g
        .stack
        .frames
        .iter()
        .filter(|f| all || f.shown)
        .map(|f| format!("{} {}:{}", f.function, f.file, f.line))
        .collect();
    if v.is_empty() {
        return match &g.stack.unavailable {
            Some(_) => "(stack unavailable)".into(),
            None => "(no frames)".into(),
        };
    }
    v.join("; ")
}

/// The group key of one goroutine.
pub fn key_of(s: &Session, g: &Goroutine, by: &GroupBy) -> String {
    match by {
        GroupBy::Start => super::start_function(s, g),
        GroupBy::Go => match g.created_by.as_ref().filter(|c| c.shown) {
            Some(c) => format!("{}:{} {}", c.file, c.line, c.function),
            None if g.g.goid == 1 => "(main goroutine)".into(),
            None => "(created by the runtime)".into(),
        },
        GroupBy::Current => {
            let f = g
                .stack
                .frames
                .iter()
                .find(|f| f.shown && !is_low_level_package(&f.function))
                .or_else(|| super::current_location(g));
            match f {
                Some(f) => format!("{} ({}:{})", f.function, f.file, f.line),
                None => "(stack unavailable)".into(),
            }
        }
        GroupBy::Stack => stack_signature(g, false),
        GroupBy::Label(k) => match g.labels.get(k) {
            Some(v) => v.clone(),
            None => format!("(no label {k})"),
        },
        GroupBy::Wait => match &g.waiting_on {
            Some(w) => w.describe(),
            None => format!("[{}]", g.state),
        },
        // Keyed in `keyed` from one analysis of the whole snapshot.
        GroupBy::Leak => NOT_LEAKED.into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub key: String,
    pub count: usize,
    /// Status ("waiting", "running"...) → goroutines.
    pub statuses: BTreeMap<std::sync::Arc<str>, usize>,
    /// Share of the goroutines listed, in percent.
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Top {
    pub by: String,
    /// Goroutines counted (after --all / --filter).
    pub total: usize,
    /// What runtime.NumGoroutine() would return.
    pub num_goroutine: Option<i64>,
    pub groups: Vec<Group>,
}

pub struct TopOptions {
    pub by: GroupBy,
    pub filter: Option<Regex>,
    /// Include system goroutines.
    pub all: bool,
}

/// The `--by leak` key of goroutines the analysis did not find leaked.
pub const NOT_LEAKED: &str = "(not leaked)";

/// `--by leak` keys: goroutine id → `leaked: REASON at SITE`.
fn leak_keys(s: &Session, m: &Model) -> HashMap<u64, String> {
    match crate::analyze::leaks::find_leaks(s, m) {
        Ok(l) => l
            .leaked
            .into_iter()
            .map(|g| {
                (
                    g.id,
                    format!("leaked: [{}] {}", g.wait_reason, g.blocking_site),
                )
            })
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// `--by leak` on a snapshot without the heap: the error to show.
pub fn check_by(s: &Session, by: &GroupBy) -> Result<()> {
    if *by == GroupBy::Leak && !crate::analyze::leaks::heap_complete(s) {
        return Err(anyhow!(
            "--by leak needs a heap-complete snapshot: capture it with `gospy capture --pid N --heap -o snap.gss`"
        ));
    }
    Ok(())
}

/// Goroutines that pass `--all` and `--filter`, with their keys.
pub fn keyed<'a>(s: &Session, m: &'a Model, o: &TopOptions) -> Vec<(&'a Goroutine, String)> {
    let leaks = (o.by == GroupBy::Leak).then(|| leak_keys(s, m));
    m.goroutines
        .iter()
        .filter(|g| o.all || !g.system)
        .filter_map(|g| {
            let key = match &leaks {
                Some(l) => l
                    .get(&g.g.goid)
                    .cloned()
                    .unwrap_or_else(|| NOT_LEAKED.to_string()),
                None => key_of(s, g, &o.by),
            };
            let keep = match &o.filter {
                None => true,
                Some(re) => {
                    re.is_match(&key) || g.stack.frames.iter().any(|f| re.is_match(&f.function))
                }
            };
            keep.then_some((g, key))
        })
        .collect()
}

pub fn build(s: &Session, m: &Model, o: &TopOptions) -> Top {
    let gs = keyed(s, m, o);
    let total = gs.len();
    let mut groups: HashMap<String, Group> = HashMap::new();
    for (g, key) in gs {
        let e = groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            count: 0,
            statuses: BTreeMap::new(),
            percent: 0.0,
        });
        e.count += 1;
        *e.statuses.entry(g.status.clone()).or_insert(0) += 1;
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    for g in &mut groups {
        g.percent = if total > 0 {
            (g.count as f64 * 1000.0 / total as f64).round() / 10.0
        } else {
            0.0
        };
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    Top {
        by: o.by.name(),
        total,
        num_goroutine: m.num_goroutine,
        groups,
    }
}

/// "waiting 40, running 1": statuses by count, largest first.
pub fn status_mix(st: &BTreeMap<std::sync::Arc<str>, usize>) -> String {
    let mut v: Vec<(&std::sync::Arc<str>, &usize)> = st.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn to_text(t: &Top, by: &GroupBy) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} goroutines (NumGoroutine {}) in {} groups by {}",
        t.total,
        t.num_goroutine
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        t.groups.len(),
        by.describe()
    );
    let mixes: Vec<String> = t.groups.iter().map(|g| status_mix(&g.statuses)).collect();
    let w = mixes.iter().map(|m| m.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(o, "{:>7} {:>6}  {:<w$}  KEY", "COUNT", "%", "STATUS");
    let color = super::color::enabled();
    for (g, mix) in t.groups.iter().zip(&mixes) {
        // Colour after padding: escape codes take no columns.
        let shown = if color {
            let mut v: Vec<(&std::sync::Arc<str>, &usize)> = g.statuses.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            v.iter()
                .map(|(k, n)| format!("{} {n}", super::color::paint(k, true)))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            mix.clone()
        };
        let pad = w.saturating_sub(mix.len());
        let _ = writeln!(
            o,
            "{:>7} {:>5.1}%  {shown}{:pad$}  {}",
            g.count, g.percent, "", g.key
        );
    }
    o
}
