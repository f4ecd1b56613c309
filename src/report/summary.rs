//! `summary`: process, scheduler, Ps, threads, goroutine states, then one
//! line per goroutine (like the original gospy's summary).

use crate::analyze::{Model, Session};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub binary: String,
    pub pid: i32,
    /// The pid in each PID namespace, outermost first (/proc/PID/status
    /// NSpid); only for a target in a container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ns_pid: Vec<i32>,
    pub go_version: String,
    pub gomaxprocs: Option<i32>,
    pub ncpu: Option<i32>,
    pub uptime_ns: Option<u64>,
    /// What runtime.NumGoroutine() would return.
    pub goroutine_count: Option<i64>,
    /// Goroutines listed below (user goroutines, plus system ones with --all).
    pub goroutines_listed: usize,
    pub capture_wall_time_ns: u64,
    pub pause_ns: u64,
    pub scheduler: Option<Scheduler>,
    pub ps: Vec<PSummary>,
    pub threads: Threads,
    pub goroutines_by_status: BTreeMap<std::sync::Arc<str>, usize>,
    pub goroutines: Vec<GLine>,
    /// Heap and GC one-liner (MemStats field names), if decodable.
    pub heap: Option<super::heap::HeapLine>,
    /// Goroutines the leak analysis finds leaked (heap-complete snapshots
    /// only; `analyze FILE leaks` lists them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaks_found: Option<usize>,
    /// Why summary did not run the leak analysis of a heap-complete
    /// snapshot (a heap too big for a one-line answer; `analyze FILE leaks`
    /// runs it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaks_not_run: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Scheduler {
    pub idle_ms: i32,
    pub idle_locked_ms: i32,
    pub spinning_ms: i32,
    pub idle_ps: i32,
    pub system_goroutines: i32,
    pub global_runq: i32,
    pub ms_total: usize,
}

#[derive(Debug, Serialize)]
pub struct PSummary {
    pub id: i32,
    pub status: String,
    pub schedtick: u32,
    pub syscalltick: u32,
    pub m: Option<i64>,
    pub runq: u32,
    pub runnext: bool,
}

#[derive(Debug, Serialize)]
pub struct Threads {
    pub total: usize,
    pub by_state: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct GLine {
    pub id: u64,
    pub m: Option<i64>,
    pub status: std::sync::Arc<str>,
    pub state: std::sync::Arc<str>,
    pub wait_ns: Option<u64>,
    pub system: bool,
    pub start_function: std::sync::Arc<str>,
    pub function: Option<std::sync::Arc<str>>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// What it is blocked on (channel, semaphore, Cond), when known.
    pub waiting_on: Option<String>,
}

fn p_status(s: u32) -> &'static str {
    match s {
        0 => "idle",
        1 => "running",
        2 => "syscall",
        3 => "gcstop",
        4 => "dead",
        _ => "?",
    }
}

fn thread_state(c: char) -> &'static str {
    match c {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-sleep",
        'T' | 't' => "stopped",
        'Z' => "zombie",
        _ => "other",
    }
}

pub fn build(s: &Session, m: &Model, all: bool) -> Summary {
    let m_ids: HashMap<u64, i64> = m.ms.iter().map(|x| (x.addr, x.id)).collect();
    let mut by_status = BTreeMap::new();
    for g in &m.goroutines {
        if all || !g.system {
            *by_status.entry(g.status.clone()).or_insert(0) += 1;
        }
    }
    let mut threads = BTreeMap::new();
    for t in &s.meta.threads {
        *threads
            .entry(thread_state(t.state).to_string())
            .or_insert(0) += 1;
    }
    // Start functions by start PC (except go-statement wrappers, whose
    // answer depends on the frames).
    // In parallel, each worker with its own cache.
    use rayon::prelude::*;
    let goroutines: Vec<GLine> = m
        .goroutines
        .par_iter()
        .filter(|g| all || !g.system)
        .map_init(HashMap::<u64, std::sync::Arc<str>>::new, |starts, g| {
            let loc = super::current_location(g);
            let start_function = match starts.get(&g.g.startpc) {
                Some(s) => s.clone(),
                None => {
                    let name: std::sync::Arc<str> = super::start_function(s, g).into();
                    if !super::start_is_wrapper(s, g) {
                        starts.insert(g.g.startpc, name.clone());
                    }
                    name
                }
            };
            GLine {
                id: g.g.goid,
                m: g.m_id,
                status: g.status.clone(),
                state: g.state.clone(),
                wait_ns: g.wait_ns,
                system: g.system,
                start_function,
                function: loc.map(|f| f.function.clone()),
                file: loc.map(|f| f.file.to_string()),
                line: loc.map(|f| f.line),
                waiting_on: g.waiting_on.as_ref().map(|w| w.describe()),
            }
        })
        .collect();
    let heap = super::heap::summary_line(s);
    let (leaks_found, leaks_not_run) = summary_leaks(s, m, heap.as_ref());
    Summary {
        binary: s.meta.exe_path.clone(),
        pid: s.meta.pid,
        ns_pid: s.meta.ns_pid.clone(),
        go_version: s.target.bin.go_version.clone(),
        gomaxprocs: m.gomaxprocs,
        ncpu: m.ncpu,
        uptime_ns: m.uptime_ns,
        goroutine_count: m.num_goroutine,
        goroutines_listed: goroutines.len(),
        capture_wall_time_ns: s.meta.wall_time_ns,
        pause_ns: s.meta.pause_ns,
        scheduler: m.sched.as_ref().map(|sc| Scheduler {
            idle_ms: sc.nmidle,
            idle_locked_ms: sc.nmidlelocked,
            spinning_ms: sc.nmspinning,
            idle_ps: sc.npidle,
            system_goroutines: sc.ngsys,
            global_runq: sc.runqsize,
            ms_total: m.ms.len(),
        }),
        ps: m
            .ps
            .iter()
            .map(|p| PSummary {
                id: p.id,
                status: p_status(p.status).to_string(),
                schedtick: p.schedtick,
                syscalltick: p.syscalltick,
                m: m_ids.get(&p.m).copied(),
                runq: p.runq_len(),
                runnext: p.runnext != 0,
            })
            .collect(),
        threads: Threads {
            total: s.meta.threads.len(),
            by_state: threads,
        },
        goroutines_by_status: by_status,
        goroutines,
        leaks_found,
        leaks_not_run,
        heap,
        warnings: m.warnings.clone(),
    }
}

/// Heap objects up to which summary runs the leak analysis of a
/// heap-complete snapshot for its one line: the analysis builds the whole
/// object graph (about 0.3 s and 170 MB per million objects; 7 s and 3.3 GB
/// for 20M objects in 2 GiB), work a summary should not hide.
pub const SUMMARY_LEAKS_MAX_OBJECTS: u64 = 1_000_000;

/// The summary's leak line: the count, or why it was not computed.
fn summary_leaks(
    s: &Session,
    m: &Model,
    heap: Option<&super::heap::HeapLine>,
) -> (Option<usize>, Option<String>) {
    use crate::analyze::leaks;
    match heap.map(|h| h.heap_objects) {
        Some(n) if n > SUMMARY_LEAKS_MAX_OBJECTS && leaks::heap_complete(s) => (
            None,
            Some(format!(
                "not run by summary on a heap of {n} objects (more than {SUMMARY_LEAKS_MAX_OBJECTS}: seconds of work)"
            )),
        ),
        _ => (leaks::leaked_count(s, m), None),
    }
}

pub fn to_text(sm: &Summary) -> String {
    let mut o = String::new();
    let opt = |v: Option<i32>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
    let _ = writeln!(
        o,
        "bin: {}, pid: {}{}, go: {}, gomaxprocs: {}, ncpu: {}, uptime: {}",
        sm.binary,
        sm.pid,
        match sm.ns_pid.last() {
            Some(inner) if sm.ns_pid.len() > 1 => format!(" (ns pid {inner})"),
            _ => String::new(),
        },
        sm.go_version,
        opt(sm.gomaxprocs),
        opt(sm.ncpu),
        sm.uptime_ns
            .map(super::fmt_duration_ns)
            .unwrap_or_else(|| "?".into())
    );
    if let Some(sc) = &sm.scheduler {
        let _ = writeln!(
            o,
            "Sched: Ms {} (idle {}, idle locked {}, spinning {}), idle Ps {}, system goroutines {}, global runq {}",
            sc.ms_total, sc.idle_ms, sc.idle_locked_ms, sc.spinning_ms, sc.idle_ps, sc.system_goroutines, sc.global_runq
        );
    }
    for p in &sm.ps {
        let _ = writeln!(
            o,
            "P{:<3} {:<8} schedtick: {:<8} syscalltick: {:<8} M: {:<5} runq: {}{}",
            p.id,
            p.status,
            p.schedtick,
            p.syscalltick,
            p.m.map(|x| x.to_string()).unwrap_or_else(|| "nil".into()),
            p.runq,
            if p.runnext { " (+runnext)" } else { "" }
        );
    }
    let ts: Vec<String> = sm
        .threads
        .by_state
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let _ = writeln!(o, "Threads: {} total: {}", sm.threads.total, ts.join(", "));
    let gs: Vec<String> = sm
        .goroutines_by_status
        .iter()
        .map(|(k, v)| format!("{v} {}", super::color::state(k)))
        .collect();
    let _ = writeln!(
        o,
        "Goroutines: {} (NumGoroutine {}): {}",
        sm.goroutines_listed,
        sm.goroutine_count
            .map(|x| x.to_string())
            .unwrap_or_else(|| "?".into()),
        gs.join(", ")
    );
    if let Some(h) = &sm.heap {
        o.push_str(&super::heap::summary_text(h));
    }
    if let Some(why) = &sm.leaks_not_run {
        let _ = writeln!(
            o,
            "Leak analysis: {why}; `gospy analyze FILE leaks` runs it"
        );
    }
    if let Some(n) = sm.leaks_found {
        let _ = writeln!(
            o,
            "Leak analysis: {n} goroutines can never run again{}",
            if n > 0 {
                " (`gospy analyze FILE leaks`)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(o, "Capture pause: {}", super::fmt_duration_ns(sm.pause_ns));
    o.push('\n');
    // 100k lines: written piece by piece (the formatting machinery and its
    // temporary strings were a fifth of a summary), wait times formatted
    // once per distinct value.
    let mut waits: HashMap<u64, String> = HashMap::new();
    for g in &sm.goroutines {
        super::push_decimal(&mut o, g.id);
        if let Some(x) = g.m {
            let _ = write!(o, "(M{x})");
        }
        o.push_str(" - ");
        o.push_str(&g.state);
        if let Some(ns) = g.wait_ns.filter(|&ns| ns >= 1_000_000_000) {
            o.push(' ');
            // Printed to the second at most from a minute on.
            let key = if ns >= 60_000_000_000 {
                ns / 1_000_000_000 * 1_000_000_000
            } else {
                ns
            };
            o.push_str(
                waits
                    .entry(key)
                    .or_insert_with(|| super::fmt_duration_ns(key)),
            );
        }
        o.push_str(": ");
        match (&g.function, &g.file, g.line) {
            (Some(f), Some(file), Some(l)) => {
                o.push_str(f);
                o.push_str(" (");
                o.push_str(file);
                o.push(':');
                super::push_decimal(&mut o, u64::from(l));
                o.push(')');
            }
            _ => o.push('?'),
        }
        o.push_str(" [start ");
        o.push_str(&g.start_function);
        o.push(']');
        if let Some(w) = &g.waiting_on {
            o.push_str(" [on ");
            o.push_str(w);
            o.push(']');
        }
        o.push('\n');
    }
    for w in &sm.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}
