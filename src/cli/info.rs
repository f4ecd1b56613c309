//! `gospy info`: what a snapshot or core file holds; `gospy convert`:
//! a snapshot as an ELF core.

use super::args::{ConvertArgs, InfoArgs};
use super::output::{json_out, out};
use crate::report;
use anyhow::{Context, Result};

pub(super) fn cmd_convert(a: &ConvertArgs) -> Result<()> {
    let st = crate::sources::write_core::convert_snapshot(&a.file, &a.output)?;
    eprintln!(
        "wrote {}: {} threads, {} in {} segments",
        a.output.display(),
        st.threads,
        report::fmt_bytes(st.bytes),
        st.segments
    );
    Ok(())
}

pub(super) fn cmd_info(a: &InfoArgs) -> Result<()> {
    if crate::sources::elfcore::is_core_file(&a.file) {
        return cmd_info_core(a);
    }
    let snap = crate::sources::snapshot::SnapshotFile::open(&a.file)
        .with_context(|| a.file.display().to_string())?;
    let m = &snap.meta;
    let stats = snap.stats();
    if a.json {
        return json_out(&serde_json::json!({
            "file": a.file,
            "pid": m.pid,
            "ns_pid": m.ns_pid,
            "exe_path": m.exe_path,
            "cmdline": m.cmdline,
            "hostname": m.hostname,
            "go_version": m.go_version,
            "go_build_id": m.go_build_id,
            "gnu_build_id": m.gnu_build_id,
            "load_bias": m.load_bias,
            "capture_wall_time_ns": m.wall_time_ns,
            "pause_ns": m.pause_ns,
            "stopped": m.stopped,
            "threads": m.threads.len(),
            "embedded_binary": snap.has_binary(),
            "gospy_version": m.gospy_version,
            "warnings": m.warnings,
            "stats": stats,
        }));
    }
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "file:        {} (format {}, {})",
        a.file.display(),
        stats.format_version,
        report::fmt_bytes(stats.file_size)
    );
    let _ = writeln!(
        o,
        "process:     pid {}{} on {}: {}",
        m.pid,
        super::capture_cmd::ns_pid_note(&m.ns_pid),
        m.hostname,
        m.exe_path
    );
    if !m.cmdline.is_empty() {
        let _ = writeln!(o, "cmdline:     {}", m.cmdline.join(" "));
    }
    let _ = writeln!(o, "go:          {}", m.go_version);
    let _ = writeln!(
        o,
        "build ids:   {}",
        crate::binary::elf::build_id_string(m.go_build_id.as_deref(), m.gnu_build_id.as_deref())
    );
    let _ = writeln!(
        o,
        "captured:    unix time {:.3} by gospy {}",
        m.wall_time_ns as f64 / 1e9,
        m.gospy_version
    );
    let _ = writeln!(
        o,
        "pause:       {} ({} threads)",
        report::fmt_duration_ns(m.pause_ns),
        m.threads.len()
    );
    let _ = writeln!(
        o,
        "binary:      {}",
        if snap.has_binary() {
            format!(
                "embedded ({} compressed)",
                report::fmt_bytes(stats.binary_compressed_bytes)
            )
        } else {
            "not embedded (analysis needs --bin or the original path)".to_string()
        }
    );
    let _ = writeln!(
        o,
        "memory:      {} in {} regions, {} compressed in {} chunks",
        report::fmt_bytes(stats.uncompressed_bytes),
        stats.regions,
        report::fmt_bytes(stats.compressed_bytes),
        stats.chunks
    );
    for k in &stats.per_kind {
        if k.regions > 0 {
            let _ = writeln!(
                o,
                "  {:<8} {:>8} regions {:>12}",
                format!("{:?}", k.kind),
                k.regions,
                report::fmt_bytes(k.bytes)
            );
        }
    }
    for w in &m.warnings {
        let _ = writeln!(o, "warning:     {w}");
    }
    out(&o)
}

/// `gospy info CORE`: the core's notes, and its executable's Go details.
fn cmd_info_core(a: &InfoArgs) -> Result<()> {
    let i = crate::analyze::core_info(&a.file, a.bin.as_deref())?;
    if a.json {
        return json_out(&i);
    }
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "file:        {} (ELF core{}, {})",
        i.file,
        if i.compressed { ", zstd" } else { "" },
        report::fmt_bytes(i.file_size)
    );
    let _ = writeln!(
        o,
        "process:     pid {} ({}): {}",
        i.pid,
        i.comm,
        i.exe_path.as_deref().unwrap_or("executable not recorded")
    );
    if !i.cmdline.is_empty() {
        let _ = writeln!(o, "cmdline:     {}", i.cmdline);
    }
    if i.arch != "amd64" {
        let _ = writeln!(o, "machine:     {}", i.arch);
    }
    if i.signal != 0 {
        let name = match i.signal {
            libc::SIGQUIT => " (SIGQUIT)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGTRAP => " (SIGTRAP)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGSYS => " (SIGSYS)",
            _ => "",
        };
        let _ = writeln!(o, "signal:      {}{name}", i.signal);
    }
    let _ = writeln!(o, "threads:     {}", i.threads);
    let _ = writeln!(
        o,
        "memory:      {} in {} segments, {} file mappings",
        report::fmt_bytes(i.memory_bytes),
        i.memory_segments,
        i.mapped_files
    );
    let _ = writeln!(
        o,
        "dumped:      unix time {:.3}",
        i.capture_wall_time_ns as f64 / 1e9
    );
    match (&i.binary, &i.binary_error) {
        (Some(b), _) => {
            let _ = writeln!(o, "go:          {}", i.go_version.as_deref().unwrap_or("?"));
            let _ = writeln!(
                o,
                "build ids:   {}",
                crate::binary::elf::build_id_string(
                    i.go_build_id.as_deref(),
                    i.gnu_build_id.as_deref()
                )
            );
            let _ = writeln!(o, "binary:      {b}");
        }
        (None, Some(e)) => {
            let _ = writeln!(o, "binary:      not available: {e}");
        }
        (None, None) => {}
    }
    for w in &i.warnings {
        let _ = writeln!(o, "warning:     {w}");
    }
    out(&o)
}
