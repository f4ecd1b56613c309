//! Helpers for the profile tests (block, mutex, heap at the default rate,
//! cores): `pprof -raw` listings parsed into multisets of samples, each
//! sample its values, its stack (function and file:line of every line of
//! every location, inner first) and its labels. Included with
//! `#[path = "common/prof.rs"] mod prof;`.

#![allow(dead_code)]

use crate::common::toolchains;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A sample: values, stack (location lines, inner first), labels.
pub type Sample = (Vec<i64>, Vec<Vec<String>>, String);

/// A `pprof` binary: the first toolchain that ships one in pkg/tool (from
/// Go 1.25 `go tool pprof` builds it on demand), else `go tool pprof`.
pub fn pprof_cmd() -> Command {
    for (_, go) in toolchains().iter().rev() {
        let root = go.parent().and_then(Path::parent).map(PathBuf::from);
        if let Some(p) = root.map(|r| r.join("pkg/tool/linux_amd64/pprof")) {
            if p.is_file() {
                return Command::new(p);
            }
        }
    }
    let (_, go) = toolchains().last().expect("a Go toolchain").clone();
    let mut c = Command::new(go);
    c.args(["tool", "pprof"]).env("GOTOOLCHAIN", "local");
    c
}

pub fn pprof_raw(file: &Path) -> String {
    let out = pprof_cmd()
        .args(["-raw", "-symbolize=none"])
        .arg(file)
        .output()
        .expect("running pprof");
    assert!(
        out.status.success(),
        "pprof -raw {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pprof output is UTF-8")
}

/// "main.f ./main.go:12:0 s=10" → "main.f main.go:12".
fn line_key(l: &str) -> String {
    let mut it = l.split_whitespace();
    let f = it.next().unwrap_or("");
    let pos = it.next().unwrap_or("");
    let pos = pos.rsplit('/').next().unwrap_or(pos);
    let pos = pos.strip_suffix(":0").unwrap_or(pos);
    format!("{f} {pos}")
}

/// The samples of a `pprof -raw` listing with `n` values each (all-zero
/// samples left out), counted.
pub fn parse_raw(text: &str, n: usize) -> BTreeMap<Sample, usize> {
    let mut samples: Vec<(Vec<i64>, Vec<String>, String)> = Vec::new();
    let mut locs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = "";
    let mut cur = String::new();
    for l in text.lines() {
        match l {
            "Samples:" => section = "s",
            "Locations" => section = "l",
            "Mappings" => section = "m",
            _ if section == "s" => {
                if let Some((vals, ids)) = l.split_once(':').filter(|_| !l.contains("bytes:")) {
                    let v: Vec<i64> = vals
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if v.len() == n {
                        let ids = ids.split_whitespace().map(str::to_string).collect();
                        samples.push((v, ids, String::new()));
                    }
                } else if let Some(s) = samples.last_mut() {
                    s.2.push_str(l.trim());
                }
            }
            _ if section == "l" => {
                let t = l.trim_start();
                if let Some((id, rest)) = t
                    .split_once(": 0x")
                    .filter(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                {
                    cur = id.to_string();
                    let rest = rest.split_once(' ').map(|x| x.1).unwrap_or("");
                    let rest = rest
                        .strip_prefix("M=")
                        .map_or(rest, |r| r.split_once(' ').map(|x| x.1).unwrap_or(""));
                    let e = locs.entry(cur.clone()).or_default();
                    if !rest.trim().is_empty() {
                        e.push(line_key(rest));
                    }
                } else if !t.is_empty() {
                    locs.entry(cur.clone()).or_default().push(line_key(t));
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (v, ids, label) in samples {
        if v.iter().all(|&x| x == 0) {
            continue;
        }
        let stack = ids
            .iter()
            .map(|i| locs.get(i).cloned().unwrap_or_default())
            .collect();
        *out.entry((v, stack, label)).or_insert(0) += 1;
    }
    out
}

/// The lines of a listing before its samples: period type, period and the
/// sample types (the time left out).
pub fn header(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = text.lines();
    for l in it.by_ref() {
        if l == "Samples:" {
            break;
        }
        if !l.starts_with("Time:") && !l.starts_with("Duration:") {
            out.push(l.trim().to_string());
        }
    }
    out.extend(it.next().map(|l| l.trim().to_string()));
    out
}

pub fn render(s: &Sample) -> String {
    let stack: Vec<String> = s.1.iter().map(|l| l.join(" | ")).collect();
    format!("{:?} {} <- {}", s.0, s.2, stack.join(" <- "))
}

/// Differences between two listings of `n` values per sample: the header,
/// and every sample whose multiplicity differs.
pub fn differences(want_raw: &str, got_raw: &str, n: usize) -> Vec<String> {
    let (want, got) = (parse_raw(want_raw, n), parse_raw(got_raw, n));
    let mut problems = Vec::new();
    if header(want_raw) != header(got_raw) {
        problems.push(format!(
            "header: oracle {:?}, gospy {:?}",
            header(want_raw),
            header(got_raw)
        ));
    }
    for (s, k) in &want {
        let g = got.get(s).copied().unwrap_or(0);
        if g != *k {
            problems.push(format!("oracle ×{k}, gospy ×{g}: {}", render(s)));
        }
    }
    for (s, k) in &got {
        if !want.contains_key(s) {
            problems.push(format!("oracle ×0, gospy ×{k}: {}", render(s)));
        }
    }
    problems
}

/// Whether a difference line of [`differences`] is contention on the
/// runtime's own locks, which the mutex profile records from Go 1.22 and
/// the runtime's threads can add to after a fixture wrote its oracle (seen:
/// sysmon, the scheduler, a system call's exit while the oracle itself was
/// being written): stacks of runtime frames only, or whose innermost frame
/// is the runtime's `unlock` (the unlocker's stack, user frames and all).
pub fn runtime_lock_sample(p: &str) -> bool {
    let Some((_, stack)) = p.split_once(" <- ") else {
        return false;
    };
    let mut frames = stack.split(" <- ").flat_map(|l| l.split(" | "));
    let first = frames.clone().next().unwrap_or_default();
    first.starts_with("runtime.unlock")
        || first.starts_with("runtime._LostContendedRuntimeLock")
        || frames.all(|f| f.starts_with("runtime.") || f.starts_with("internal/runtime/"))
}
