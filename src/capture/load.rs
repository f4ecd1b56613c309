//! The target's executable, loaded before anything is read from memory.

use crate::binary::Binary;
use crate::process::Process;
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;

/// Load the executable for a live process: its own bytes through
/// /proc/PID/exe, or `--bin` checked against them by build id.
pub fn load_target_binary(
    proc_: &Process,
    bin: Option<&std::path::Path>,
) -> Result<(Arc<Binary>, Option<crate::binary::elf::ElfFile>)> {
    let exe = proc_.exe_shared().with_context(|| {
        format!(
            "pid {}: reading the executable via /proc/{}/exe",
            proc_.pid, proc_.pid
        )
    })?;
    let running = crate::binary::elf::ElfFile::parse(exe)
        .with_context(|| format!("pid {}: the executable is not an ELF file", proc_.pid))?;
    if running.go_version.is_none() {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", proc_.pid)).unwrap_or_default();
        let exe = proc_.exe_path().unwrap_or_default();
        return Err(anyhow!(
            "pid {} ({}, {exe}) is not a Go program: its executable has no Go build info",
            proc_.pid,
            comm.trim()
        ));
    }
    let bin = match bin {
        None => {
            let b = Binary::from_elf(running)
                .with_context(|| format!("pid {}: loading the executable", proc_.pid))?;
            return Ok((Arc::new(b), None));
        }
        Some(p) => {
            let b = Binary::from_path(p)?;
            crate::sources::exe::check_live_bin(&running, &b.elf, proc_.pid)?;
            b
        }
    };
    Ok((Arc::new(bin), Some(running)))
}
