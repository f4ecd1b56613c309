//! `heap`: heap and GC statistics computed passively from a capture — the
//! `runtime.MemStats` the process would have returned at that instant — then
//! size classes, per-P caches and large objects.

use crate::analyze::Session;
use crate::goruntime::heap::{self, Heap, HeapOptions, MemStats};
use anyhow::Result;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct HeapReport {
    pub pid: i32,
    pub go_version: String,
    pub capture_wall_time_ns: u64,
    #[serde(flatten)]
    pub heap: Heap,
}

pub fn build(s: &Session, large: bool) -> Result<HeapReport> {
    let opts = HeapOptions {
        walk_spans: true,
        list_large: large,
        max_spans: heap::MAX_SPANS_LIMIT,
    };
    let h = heap::read_heap(&s.target, &s.mem, &opts, s.meta.wall_time_ns)?;
    Ok(HeapReport {
        pid: s.meta.pid,
        go_version: s.target.bin.go_version.clone(),
        capture_wall_time_ns: s.meta.wall_time_ns,
        heap: h,
    })
}

/// The one-line summary for `summary` (text and JSON `heap` object); the
/// MemStats fields keep their Go names.
#[derive(Debug, Clone, Serialize)]
pub struct HeapLine {
    #[serde(rename = "HeapInuse")]
    pub heap_inuse: u64,
    #[serde(rename = "HeapAlloc")]
    pub heap_alloc: u64,
    #[serde(rename = "HeapSys")]
    pub heap_sys: u64,
    #[serde(rename = "HeapObjects")]
    pub heap_objects: u64,
    #[serde(rename = "Mallocs")]
    pub mallocs: u64,
    #[serde(rename = "Frees")]
    pub frees: u64,
    #[serde(rename = "NextGC")]
    pub next_gc: u64,
    #[serde(rename = "NumGC")]
    pub num_gc: u32,
    #[serde(rename = "NumForcedGC")]
    pub num_forced_gc: u32,
    #[serde(rename = "PauseTotalNs")]
    pub pause_total_ns: u64,
    #[serde(rename = "LastGC")]
    pub last_gc: u64,
    #[serde(rename = "GCCPUFraction")]
    pub gc_cpu_fraction: f64,
    /// Duration of the most recent GC pause.
    pub last_pause_ns: Option<u64>,
    pub last_gc_ago_ns: Option<u64>,
    pub gc_percent: i32,
}

/// Heap summary for `summary`; None when the heap cannot be decoded.
pub fn summary_line(s: &Session) -> Option<HeapLine> {
    let opts = HeapOptions {
        walk_spans: false,
        list_large: false,
        max_spans: 0,
    };
    let h = heap::read_heap(&s.target, &s.mem, &opts, s.meta.wall_time_ns).ok()?;
    let m = &h.memstats;
    Some(HeapLine {
        heap_inuse: m.heap_inuse,
        heap_alloc: m.heap_alloc,
        heap_sys: m.heap_sys,
        heap_objects: m.heap_objects,
        mallocs: m.mallocs,
        frees: m.frees,
        next_gc: m.next_gc,
        num_gc: m.num_gc,
        num_forced_gc: m.num_forced_gc,
        pause_total_ns: m.pause_total_ns,
        last_gc: m.last_gc,
        gc_cpu_fraction: m.gc_cpu_fraction,
        last_pause_ns: h.gc.recent_pauses.first().map(|p| p.pause_ns),
        last_gc_ago_ns: h.gc.last_gc_ago_ns,
        gc_percent: h.gc.gc_percent,
    })
}

/// "Heap: ..." and "GC: ..." lines, like the original gospy summary.
pub fn summary_text(l: &HeapLine) -> String {
    let b = super::fmt_bytes;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Heap: HeapInuse {}, HeapAlloc {}, HeapSys {}, HeapObjects {}, Mallocs {}, Frees {}, NextGC {}",
        b(l.heap_inuse),
        b(l.heap_alloc),
        b(l.heap_sys),
        l.heap_objects,
        l.mallocs,
        l.frees,
        next_gc_text(l.next_gc)
    );
    let _ = writeln!(
        o,
        "GC: NumGC {} (forced {}), last pause {}, PauseTotal {}, GCCPUFraction {:.6}, LastGC {}, GOGC {}",
        l.num_gc,
        l.num_forced_gc,
        l.last_pause_ns
            .map(super::fmt_duration_ns)
            .unwrap_or_else(|| "-".into()),
        super::fmt_duration_ns(l.pause_total_ns),
        l.gc_cpu_fraction,
        ago(l.last_gc_ago_ns, l.num_gc),
        gogc_text(l.gc_percent)
    );
    o
}

fn ago(ns: Option<u64>, num_gc: u32) -> String {
    match ns {
        Some(ns) => format!("{} ago", super::fmt_duration_ns(ns)),
        None if num_gc == 0 => "never".into(),
        None => "?".into(),
    }
}

fn gogc_text(p: i32) -> String {
    if p < 0 {
        "off".into()
    } else {
        p.to_string()
    }
}

fn next_gc_text(v: u64) -> String {
    // With GOGC=off and no memory limit the goal is ~2^63: no GC will come.
    if v >= 1 << 62 {
        "none: GOGC=off, no memory limit".to_string()
    } else {
        super::fmt_bytes(v)
    }
}

fn memstats_lines(o: &mut String, m: &MemStats, h: &Heap) {
    let bytes = |o: &mut String, name: &str, v: u64| {
        let _ = writeln!(o, "{name:<14}= {v} ({})", super::fmt_bytes(v));
    };
    let plain = |o: &mut String, name: &str, v: String| {
        let _ = writeln!(o, "{name:<14}= {v}");
    };
    bytes(o, "Alloc", m.alloc);
    bytes(o, "TotalAlloc", m.total_alloc);
    bytes(o, "Sys", m.sys);
    plain(o, "Lookups", m.lookups.to_string());
    plain(o, "Mallocs", m.mallocs.to_string());
    plain(o, "Frees", m.frees.to_string());
    bytes(o, "HeapAlloc", m.heap_alloc);
    bytes(o, "HeapSys", m.heap_sys);
    bytes(o, "HeapIdle", m.heap_idle);
    bytes(o, "HeapInuse", m.heap_inuse);
    bytes(o, "HeapReleased", m.heap_released);
    plain(o, "HeapObjects", m.heap_objects.to_string());
    bytes(o, "StackInuse", m.stack_inuse);
    bytes(o, "StackSys", m.stack_sys);
    bytes(o, "MSpanInuse", m.mspan_inuse);
    bytes(o, "MSpanSys", m.mspan_sys);
    bytes(o, "MCacheInuse", m.mcache_inuse);
    bytes(o, "MCacheSys", m.mcache_sys);
    bytes(o, "BuckHashSys", m.buckhash_sys);
    bytes(o, "GCSys", m.gc_sys);
    bytes(o, "OtherSys", m.other_sys);
    plain(
        o,
        "NextGC",
        format!("{} ({})", m.next_gc, next_gc_text(m.next_gc)),
    );
    plain(
        o,
        "LastGC",
        format!("{} ({})", m.last_gc, ago(h.gc.last_gc_ago_ns, m.num_gc)),
    );
    plain(
        o,
        "PauseTotalNs",
        format!(
            "{} ({})",
            m.pause_total_ns,
            super::fmt_duration_ns(m.pause_total_ns)
        ),
    );
    plain(o, "NumGC", m.num_gc.to_string());
    plain(o, "NumForcedGC", m.num_forced_gc.to_string());
    plain(o, "GCCPUFraction", format!("{}", m.gc_cpu_fraction));
}

pub fn to_text(r: &HeapReport) -> String {
    let h = &r.heap;
    let m = &h.memstats;
    let g = &h.gc;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "pid {}, {}: runtime.MemStats as ReadMemStats would have returned it at the capture\n",
        r.pid, r.go_version
    );
    memstats_lines(&mut o, m, h);

    // GC and pacer.
    let limit = if g.memory_limit == i64::MAX {
        "none".to_string()
    } else {
        super::fmt_bytes(g.memory_limit.max(0) as u64)
    };
    let _ = writeln!(
        o,
        "\nGC: GOGC {}, memory limit {}, phase {}{}",
        gogc_text(g.gc_percent),
        limit,
        g.phase,
        g.cycles_started
            .map(|c| format!(", cycles started {c}"))
            .unwrap_or_default()
    );
    let _ = write!(
        o,
        "    heap live {}, marked {}",
        super::fmt_bytes(g.heap_live),
        super::fmt_bytes(g.heap_marked)
    );
    if let Some([a, b, c]) = g.last_cycle_heap {
        let mb = |v: u64| v >> 20;
        let _ = write!(o, ", last cycle {}->{}->{} MB", mb(a), mb(b), mb(c));
    }
    o.push('\n');
    if !g.recent_pauses.is_empty() {
        let ps: Vec<String> = g
            .recent_pauses
            .iter()
            .take(10)
            .map(|p| super::fmt_duration_ns(p.pause_ns))
            .collect();
        let _ = writeln!(
            o,
            "    recent pauses (most recent first): {}{}",
            ps.join(", "),
            if g.recent_pauses.len() > 10 {
                ", ..."
            } else {
                ""
            }
        );
    }

    // Size classes.
    let _ = writeln!(
        o,
        "\nSize classes (with live objects or spans; objects = mallocs - frees):"
    );
    let _ = writeln!(
        o,
        "{:>5} {:>6} {:>10} {:>12} {:>12} {:>12} {:>7} {:>11}",
        "class", "size", "objects", "bytes", "mallocs", "frees", "spans", "span bytes"
    );
    for c in &h.size_classes {
        if c.class == 0 || (c.objects == 0 && c.spans.unwrap_or(0) == 0) {
            continue;
        }
        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let _ = writeln!(
            o,
            "{:>5} {:>6} {:>10} {:>12} {:>12} {:>12} {:>7} {:>11}",
            c.class,
            c.size,
            c.objects,
            c.bytes,
            c.mallocs,
            c.frees,
            opt(c.spans),
            c.span_bytes
                .map(super::fmt_bytes)
                .unwrap_or_else(|| "?".into())
        );
    }

    // Per P.
    let _ = writeln!(o, "\nPer P (mcache; in flight = allocated from cached spans since they were cached, not yet in heapStats):");
    for p in &h.per_p {
        let _ = writeln!(
            o,
            "P{:<3} mcache {:#x}: {} cached spans, in flight {} objects ({}), tiny allocs {}",
            p.p,
            p.mcache,
            p.spans.len(),
            p.in_flight_objects,
            super::fmt_bytes(p.in_flight_bytes.max(0) as u64),
            p.tiny_allocs
        );
        for s in &p.spans {
            let _ = writeln!(
                o,
                "      class {:>2} ({:>5} B, {:<6}) span {:#x} base {:#x}: {}/{} used, +{} since cached",
                s.size_class,
                s.elem_size,
                if s.noscan { "noscan" } else { "scan" },
                s.span,
                s.base,
                s.alloc_count,
                s.nelems,
                s.in_flight
            );
        }
    }

    // Large objects.
    let l = &h.large;
    let _ = writeln!(
        o,
        "\nLarge objects (> 32 KiB): {} live, {} (allocated {}, freed {})",
        l.count,
        super::fmt_bytes(l.bytes),
        l.allocs,
        l.frees
    );
    match &l.objects {
        Some(objs) => {
            for x in objs {
                let _ = writeln!(
                    o,
                    "  {:#x} {:>10} B (span {}){}{}",
                    x.addr,
                    x.size,
                    super::fmt_bytes(x.span_bytes),
                    if x.noscan { " noscan" } else { "" },
                    x.type_name
                        .as_ref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default()
                );
            }
        }
        None => {
            let _ = writeln!(o, "  (list them with --large)");
        }
    }
    if let Some(c) = &h.spans {
        let _ = writeln!(
            o,
            "\nSpans: {} in mheap_.allspans, {} walked, {} in use{}",
            c.total,
            c.walked,
            c.in_use,
            if c.missing > 0 {
                format!(", {} not captured", c.missing)
            } else {
                String::new()
            }
        );
    }
    for w in &h.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}
