//! `gospy capture`: one snapshot file, or a series of them.

use super::args::CaptureArgs;
use super::output::json_out;
use super::progress::Progress;
use crate::capture::{capture, CaptureOptions};
use crate::report;
use anyhow::{Context, Result};

pub(super) fn cmd_capture(a: &CaptureArgs) -> Result<()> {
    if let Some(count) = a.count {
        return capture_series(a, count);
    }
    capture_to(a, &a.output)
}

/// `capture --count N [--interval D] -o DIR`: DIR/PID-1.gss ... DIR/PID-N.gss.
fn capture_series(a: &CaptureArgs, count: u64) -> Result<()> {
    if count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let interval = a.interval.unwrap_or(std::time::Duration::from_secs(10));
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("creating directory {}", a.output.display()))?;
    for n in 1..=count {
        let t = std::time::Instant::now();
        let path = a.output.join(format!("{}-{n}.gss", a.pid));
        capture_to(a, &path)?;
        if n < count {
            std::thread::sleep(interval.saturating_sub(t.elapsed()));
        }
    }
    Ok(())
}

fn capture_to(a: &CaptureArgs, output: &std::path::Path) -> Result<()> {
    let progress = Progress::start(format!("capturing pid {}", a.pid));
    // An executable this machine cannot open at its path is embedded unless
    // told otherwise: the snapshot could not be analyzed without it.
    let not_here = if a.embed_binary {
        None
    } else {
        crate::sources::exe::exe_not_here(a.pid)
    };
    let embed = a.embed_binary || (not_here.is_some() && !a.no_embed_binary);
    let opts = CaptureOptions {
        embed_binary: embed,
        bin: a.bin.clone(),
        max_spans: Some(a.max_spans),
        vars: a.vars.clone(),
        var_budget: a.var_budget,
        full: a.full,
        heap: a.heap,
        non_blocking: a.non_blocking,
        no_pre_read: a.no_pre_read,
        redact: a.redact,
        mem_profile: true,
        ..Default::default()
    };
    let (cap, _bin, stats) = capture(a.pid, &opts)?;
    let ws = crate::sources::snapshot::write_file(output, &cap, &Default::default())
        .with_context(|| format!("writing {}", output.display()))?;
    drop(progress);
    for w in &stats.load_warnings {
        eprintln!("warning: {w}");
    }
    let embed_note = match (&not_here, embed) {
        (Some(why), true) => {
            format!(", binary embedded because {why} (--no-embed-binary leaves it out)")
        }
        (Some(why), false) => {
            eprintln!(
                "warning: binary not embedded (--no-embed-binary) although {why}: analyze with --bin PATH"
            );
            String::new()
        }
        (None, true) => ", binary embedded".to_string(),
        (None, false) => String::new(),
    };
    let ns = ns_pid_note(&cap.meta.ns_pid);
    if a.json {
        json_out(&serde_json::json!({
            "file": output,
            "pid": a.pid,
            "ns_pid": cap.meta.ns_pid,
            "goroutines": stats.goroutines,
            "bytes_read": stats.bytes_read,
            "read_calls": stats.read_calls,
            "binary_load_ns": stats.binary_load.as_nanos() as u64,
            "precopy": stats.precopy,
            "quiet": stats.quiet,
            "regions": stats.regions,
            "file_size": ws.file_size,
            "pause_ns": stats.pause.as_nanos() as u64,
            "pause_phases_ns": stats.phases.iter().map(|(k, d)| (k.clone(), d.as_nanos() as u64)).collect::<Vec<_>>(),
            "embedded_binary": embed,
            "embedded_because": if embed { not_here.clone() } else { None },
            "exe_not_here": not_here,
            "redacted": stats.redacted,
            "warnings": cap.meta.warnings,
            "var_walk": stats.var_walk,
            "mem_profile": stats.mem_profile,
            "block_profiles": stats.block_profiles,
            "heap_validation": stats.heap_validation,
        }))?;
    } else {
        // How many stacks the pause could leave to the pre-copy.
        let quiet = stats.quiet.as_ref().is_some_and(|q| q.kept);
        let kept = match &stats.precopy {
            Some(p) if p.kept > 0 && quiet => format!(
                " (read before the pause: all goroutines, {} stacks)",
                p.kept
            ),
            Some(p) if p.kept > 0 => format!(" ({} stacks copied before the pause)", p.kept),
            _ if quiet => " (read before the pause: all goroutines)".to_string(),
            _ => String::new(),
        };
        eprintln!(
            "captured pid {}{ns} ({}): {} goroutines{kept}, {} read in {} regions, {}; wrote {} ({}){embed_note}",
            a.pid,
            cap.meta.go_version,
            stats.goroutines,
            report::fmt_bytes(stats.bytes_read),
            stats.regions,
            if a.non_blocking {
                "never stopped (--non-blocking)".to_string()
            } else {
                format!(
                    "paused {}",
                    report::fmt_duration_ns(stats.pause.as_nanos() as u64)
                )
            },
            output.display(),
            report::fmt_bytes(ws.file_size),
        );
        for w in &cap.meta.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

/// " (pid 1 in its PID namespace)" for a target in a container; "" outside.
pub(super) fn ns_pid_note(ns_pid: &[i32]) -> String {
    match ns_pid.last() {
        Some(inner) if ns_pid.len() > 1 => format!(" (pid {inner} in its PID namespace)"),
        _ => String::new(),
    }
}
