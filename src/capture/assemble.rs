//! After the resume: attach what the pause kept without copying (pre-copied
//! stacks and label sets, the globals walk's objects), then build the
//! [`Capture`] (metadata, regions, executable) and redact it if asked.

use super::options::CaptureOptions;
use super::plan::{Loaded, Prepared};
use super::rounds::drop_covered;
use super::stats::CaptureStats;
use crate::model::{Capture, CaptureMeta, Region, RegionKind, ThreadInfo};
use bytes::Bytes;

/// Pre-copied stacks of the goroutines the pause kept (allgs indices
/// `kept_idx`), and the pre-copied label sets they hold (`kept_labels`).
pub(super) fn attach_kept(p: &mut Prepared<'_>, kept_idx: &[u32], mut kept_labels: Vec<u64>) {
    // The heap profile's buckets read before the pause.
    if let (Some(pt), Some(pre), Some(pb)) = (&p.prof_t, &p.pre_buckets, &p.bucket_pause) {
        super::buckets::attach(pt, pre, pb, &mut p.asm.regions);
    }
    let Some(pre) = p.pre.as_ref() else {
        return;
    };
    let asm = &mut p.asm;
    for &i in kept_idx {
        if let Some(ps) = pre.stacks.get(i as usize).and_then(|p| p.as_ref()) {
            asm.regions
                .push((ps.sp, ps.data.clone(), RegionKind::Stack));
        }
    }
    kept_labels.sort_unstable();
    kept_labels.dedup();
    let mut done = std::collections::HashSet::new();
    for set in &kept_labels {
        for &(a, l) in pre.label_sets.get(set).map(|v| &v[..]).unwrap_or(&[]) {
            if done.insert(a) {
                if let Some(d) = pre.label_mem.slice(a, l as usize) {
                    asm.regions.push((a, d, RegionKind::Other));
                }
            }
        }
    }
}

/// When the target was stopped, and its threads.
pub(super) struct PauseFacts {
    pub(super) pause: std::time::Duration,
    pub(super) wall_ns: u64,
    pub(super) mono_ns: u64,
    pub(super) threads: Vec<ThreadInfo>,
}

/// The globals walk's objects and the last warnings go in; the capture
/// comes out.
pub(super) fn finish(
    ld: &Loaded,
    mut p: Prepared<'_>,
    opts: &CaptureOptions,
    stats: &mut CaptureStats,
    facts: PauseFacts,
) -> Capture {
    if let Some(w) = p.walker.take() {
        if w.stats.skipped > 0 {
            p.warnings.push(format!(
                "globals: {} objects ({}) reachable from globals were not captured (--var-budget); capture with --var NAME for one global's full value",
                w.stats.skipped,
                crate::text::fmt_bytes(w.stats.skipped_bytes)
            ));
        }
        stats.bytes_read += w.stats.bytes;
        stats.var_walk = Some(w.stats.clone());
        for (addr, d) in w.into_regions() {
            p.asm
                .regions
                .push((addr, Bytes::from_owner(d), RegionKind::Other));
        }
    }
    if !p.full_plan.is_empty() {
        drop_covered(&mut p.asm.regions, &p.full_plan);
    }
    stats.regions = p.asm.regions.len();
    if stats.failed_ranges > 0 {
        p.warnings.push(format!(
            "{} memory ranges could not be read",
            stats.failed_ranges
        ));
    }
    let bin = &ld.bin;
    let meta = CaptureMeta {
        gospy_version: env!("CARGO_PKG_VERSION").to_string(),
        pid: ld.pid,
        exe_path: ld.exe_path.clone(),
        cmdline: ld.cmdline.clone(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        go_build_id: bin.elf.go_build_id.clone(),
        gnu_build_id: bin.elf.gnu_build_id.clone(),
        go_version: bin.go_version.clone(),
        load_bias: ld.bias,
        wall_time_ns: facts.wall_ns,
        mono_time_ns: facts.mono_ns,
        pause_ns: facts.pause.as_nanos() as u64,
        stopped: !opts.non_blocking,
        maps: ld.maps.clone(),
        auxv: ld.auxv.clone(),
        threads: facts.threads,
        warnings: p.warnings,
        flags: crate::model::CaptureFlags {
            redacted: false,
            non_blocking: opts.non_blocking,
            unstable: p.unstable,
        },
        // Capture runs on x86-64 only (see README, "Architectures").
        arch: crate::model::Arch::X86_64,
        ns_pid: ld.ns.pid.clone(),
    };
    // Embed what analysis needs: the --bin build when given, else the executable.
    let regions = p
        .asm
        .regions
        .into_iter()
        .map(|(addr, d, kind)| Region {
            addr,
            kind,
            data: d.to_vec(),
        })
        .collect();
    let mut cap = Capture {
        meta,
        regions,
        binary: opts.embed_binary.then(|| bin.elf.data.to_vec()),
    };
    if opts.redact {
        // After the resume: redaction never lengthens the pause.
        stats.redacted = Some(crate::capture::redact::redact(&mut cap, &ld.target));
    }
    cap
}
