//! Acceptance tests (issue 13) for the heap profile beyond a capture at
//! MemProfileRate = 1 (tests/heap_profile.rs):
//! - **default rate**: the heapprof fixture run with the runtime's default
//!   MemProfileRate (GOSPY_HEAPPROF_DEFAULT_RATE=1): the sampled records are
//!   scaled (scaleHeapSample) and gospy's heap profile from a capture must
//!   hold exactly the fixture's own scaled values;
//! - **gcore core**: a core written by gdb's `gcore` of the running fixture
//!   gives the same heap profile as the fixture's own (and so as a capture);
//! - **kernel core**: the fixture killed with SIGABRT under
//!   GOTRACEBACK=crash, core size unlimited: the kernel's core gives the
//!   same heap profile as the fixture's own.
//!
//! Compared through `pprof -raw` as in tests/heap_profile.rs: the multiset of
//! non-zero samples (four values, stack lines, `bytes` label) and the
//! sample types.

mod common;
#[path = "common/prof.rs"]
mod prof;

use common::*;
use prof::{differences, parse_raw, pprof_raw};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `analyze FILE [--bin BIN] pprof heap -o OUT`, compared with the
/// fixture's own heap.pb.gz; the differences, and the oracle's non-zero
/// sample count.
fn compare_heap(
    file: &Path,
    bin: Option<&Path>,
    oracle_dir: &Path,
    out: &Path,
) -> (Vec<String>, usize) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), file.as_os_str()];
    if let Some(b) = bin {
        args.push("--bin".as_ref());
        args.push(b.as_os_str());
    }
    for a in ["pprof", "heap", "-o"] {
        args.push(a.as_ref());
    }
    args.push(out.as_os_str());
    gospy_ok(&args);
    let want = pprof_raw(&oracle_dir.join("heap.pb.gz"));
    let n = parse_raw(&want, 4).values().sum();
    (differences(&want, &pprof_raw(out), 4), n)
}

fn default_rate_matches(version: &str, pie: bool, ldflags: &str) {
    let Some(binary) = try_build_fixture("heapprof", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heaprate-test-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start_with_env(&binary, &[("GOSPY_HEAPPROF_DEFAULT_RATE", "1")]);
    let snap = work.path().join("heapprof.gss");
    capture(fx.pid, &snap, &[]);
    let (problems, n) = compare_heap(&snap, None, fx.dir.path(), &work.path().join("heap.pb.gz"));
    let want = parse_raw(&pprof_raw(&fx.dir.path().join("heap.pb.gz")), 4);
    drop(fx);
    // The 1 MiB object is sampled only when the sampler's next point
    // (exponential, mean 512 KiB) falls within it: 86% of runs (once seen
    // missing). The many small objects always give scaled samples.
    // Many small objects: a few samples, each scaled by ~4096.
    assert!(
        want.keys().any(|s| s.0[2] > 4000
            && s.1
                .first()
                .is_some_and(|l| l[0].starts_with("main.allocMany "))),
        "go {version}: the oracle lacks main.allocMany's scaled samples"
    );
    report(&format!(
        "heap profile, default rate, go {version} pie={pie} ldflags={ldflags:?}: {n} non-zero samples, {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} pie={pie} ldflags={ldflags:?} default rate:\n{}",
        problems.join("\n")
    );
}

macro_rules! default_rate_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            default_rate_matches($version, $pie, $flags);
        }
    )*};
}

default_rate_tests! {
    default_rate_go1_19: "1.19", pie = false, "";
    default_rate_go1_21: "1.21", pie = false, "";
    default_rate_go1_22: "1.22", pie = false, "";
    default_rate_go1_23: "1.23", pie = false, "";
    default_rate_go1_24: "1.24", pie = false, "";
    default_rate_go1_25: "1.25", pie = false, "";
    default_rate_go1_26: "1.26", pie = false, "";
    default_rate_go1_27: "1.27", pie = false, "";
    default_rate_go1_19_pie: "1.19", pie = true, "";
    default_rate_go1_27_pie: "1.27", pie = true, "";
    default_rate_no_symbols_go1_19: "1.19", pie = false, "-s -w";
    default_rate_no_symbols_go1_27: "1.27", pie = false, "-s -w";
    default_rate_go1_21_pie: "1.21", pie = true, "";
    default_rate_no_symbols_go1_21: "1.21", pie = false, "-s -w";
    default_rate_go1_22_pie: "1.22", pie = true, "";
    default_rate_no_symbols_go1_22: "1.22", pie = false, "-s -w";
    default_rate_go1_23_pie: "1.23", pie = true, "";
    default_rate_no_symbols_go1_23: "1.23", pie = false, "-s -w";
    default_rate_go1_24_pie: "1.24", pie = true, "";
    default_rate_no_symbols_go1_24: "1.24", pie = false, "-s -w";
    default_rate_go1_25_pie: "1.25", pie = true, "";
    default_rate_no_symbols_go1_25: "1.25", pie = false, "-s -w";
    default_rate_go1_26_pie: "1.26", pie = true, "";
    default_rate_no_symbols_go1_26: "1.26", pie = false, "-s -w";
}

/// A gcore core of the running fixture, and a capture of it: both give the
/// fixture's own heap profile.
fn gcore_matches(version: &str, pie: bool, ldflags: &str) {
    if !have_gcore() {
        return;
    }
    let Some(binary) = try_build_fixture("heapprof", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heapcore-test-")
        .tempdir()
        .unwrap();
    let mut fx = Fixture::start(&binary);
    let snap = work.path().join("snap.gss");
    capture(fx.pid, &snap, &[]);
    let core = gcore(fx.pid, work.path());
    fx.kill();
    let mut problems = Vec::new();
    let (p, n) = compare_heap(&core, None, fx.dir.path(), &work.path().join("core.pb.gz"));
    problems.extend(p.into_iter().map(|p| format!("gcore core: {p}")));
    let (p, _) = compare_heap(&snap, None, fx.dir.path(), &work.path().join("snap.pb.gz"));
    problems.extend(p.into_iter().map(|p| format!("capture: {p}")));
    report(&format!(
        "heap profile from a gcore core, go {version} pie={pie} ldflags={ldflags:?}: {n} non-zero samples, {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} pie={pie} ldflags={ldflags:?}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn gcore_heap_profile_go1_19() {
    gcore_matches("1.19", false, "");
}

#[test]
fn gcore_heap_profile_go1_23() {
    gcore_matches("1.23", false, "");
}

#[test]
fn gcore_heap_profile_go1_27_pie_stripped() {
    gcore_matches("1.27", true, "-s -w");
}

fn cannot(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("kernel core files are impossible in this environment (CI=true): {why}");
    }
    println!("SKIP: kernel core files are impossible in this environment: {why}");
}

/// The kernel's core of the fixture (SIGABRT, GOTRACEBACK=crash) gives the
/// fixture's own heap profile: the crash prints a traceback and allocates
/// nothing the published profile holds (no GC runs).
fn kernel_core_matches(version: &str, pie: bool) {
    let Some(binary) = try_build_fixture("heapprof", version, pie, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-heapkcore-test-")
        .tempdir()
        .unwrap();
    let cwd = work.path().to_path_buf();
    let mut fx = Fixture::start_configured(&binary, &[], &[("GOTRACEBACK", "crash")], |cmd| {
        cmd.current_dir(&cwd);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            cmd.pre_exec(|| {
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_CORE, &mut cur);
                cur.rlim_cur = cur.rlim_max;
                libc::setrlimit(libc::RLIMIT_CORE, &cur);
                Ok(())
            });
        }
    });
    let pid = fx.pid;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let core = match kernel_core_path(&cwd, pid, comm.trim()) {
        Ok(p) => p,
        Err(why) => return cannot(&why),
    };
    // SAFETY: the child is ours and not reaped: its pid cannot be reused.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGABRT) }, 0);
    let status = fx
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("go {version}: the fixture did not die of SIGABRT"));
    if !status.core_dumped() || !core.is_file() {
        return cannot(&format!(
            "no core (core dumped: {}, expected at {})",
            status.core_dumped(),
            core.display()
        ));
    }
    let (problems, n) = compare_heap(
        &core,
        Some(&binary),
        fx.dir.path(),
        &work.path().join("heap.pb.gz"),
    );
    report(&format!(
        "heap profile from a kernel core, go {version} pie={pie}: {n} non-zero samples, {} differences",
        problems.len()
    ));
    assert!(
        problems.is_empty(),
        "go {version} pie={pie} kernel core:\n{}",
        problems.join("\n")
    );
}

#[test]
fn kernel_core_heap_profile_go1_19() {
    kernel_core_matches("1.19", false);
}

#[test]
fn kernel_core_heap_profile_go1_22() {
    kernel_core_matches("1.22", false);
}

#[test]
fn kernel_core_heap_profile_go1_27_pie() {
    kernel_core_matches("1.27", true);
}

#[test]
fn gcore_heap_profile_go1_21_pie() {
    gcore_matches("1.21", true, "");
}

#[test]
fn gcore_heap_profile_go1_22_stripped() {
    gcore_matches("1.22", false, "-s -w");
}

#[test]
fn gcore_heap_profile_go1_24_pie() {
    gcore_matches("1.24", true, "");
}

#[test]
fn gcore_heap_profile_go1_25_stripped() {
    gcore_matches("1.25", false, "-s -w");
}

#[test]
fn gcore_heap_profile_go1_26() {
    gcore_matches("1.26", false, "");
}

#[test]
fn kernel_core_heap_profile_go1_21_pie() {
    kernel_core_matches("1.21", true);
}

#[test]
fn kernel_core_heap_profile_go1_23() {
    kernel_core_matches("1.23", false);
}

#[test]
fn kernel_core_heap_profile_go1_24_pie() {
    kernel_core_matches("1.24", true);
}

#[test]
fn kernel_core_heap_profile_go1_25() {
    kernel_core_matches("1.25", false);
}

#[test]
fn kernel_core_heap_profile_go1_26_pie() {
    kernel_core_matches("1.26", true);
}

/// Nothing to read (issue 13): a program that never links the runtime's
/// profile readers. The globals fixture imports no runtime/pprof, so the
/// linker drops runtime.MemProfile and sets runtime.disableMemoryProfiling
/// (cmd/link lib.go; mprof.go: the rate is then 0 from the start); it never
/// calls SetBlockProfileRate or SetMutexProfileFraction either. The oracle is
/// the linker's own rule, checked on the symbol table of the plain build:
/// no runtime.MemProfile. Each profile is refused in one line naming why,
/// with a non-zero exit, and no output file is left behind.
fn nothing_to_read(version: &str, ldflags: &str) {
    let Some(binary) = try_build_fixture("globals", version, false, ldflags) else {
        return;
    };
    let plain = build_fixture("globals", version, false, "");
    let go = toolchain(version).expect("toolchain");
    let nm = Command::new(&go)
        .args(["tool", "nm"])
        .arg(&plain)
        .output()
        .expect("go tool nm");
    assert!(nm.status.success(), "go tool nm failed");
    let syms = String::from_utf8_lossy(&nm.stdout);
    assert!(
        !syms.lines().any(|l| l.ends_with(" runtime.MemProfile")),
        "go {version}: the globals fixture links runtime.MemProfile; it cannot serve as the no-profile program"
    );
    assert!(
        syms.lines()
            .any(|l| l.ends_with(" runtime.disableMemoryProfiling")),
        "go {version}: no runtime.disableMemoryProfiling in the symbol table"
    );
    let work = tempfile::Builder::new()
        .prefix("gospy-noprof-test-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let snap = work.path().join("globals.gss");
    capture(fx.pid, &snap, &[]);
    let pid = fx.pid.to_string();
    for (kind, why) in [
        ("heap", "no heap profile: runtime.MemProfileRate is 0"),
        ("allocs", "no heap profile: runtime.MemProfileRate is 0"),
        ("block", "no block profile"),
        ("mutex", "no mutex profile"),
    ] {
        let out = work.path().join(format!("{kind}.pb.gz"));
        let snap_args = ["analyze".as_ref(), snap.as_os_str(), "pprof".as_ref()];
        let live_args = [
            "pprof".as_ref(),
            "--pid".as_ref(),
            std::ffi::OsStr::new(&pid),
        ];
        for args in [&snap_args[..], &live_args[..]] {
            let mut a: Vec<&std::ffi::OsStr> = args.to_vec();
            a.extend([kind.as_ref(), "-o".as_ref(), out.as_os_str()]);
            let o = gospy(&a);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success(),
                "go {version} {ldflags:?}: gospy {a:?} succeeded with nothing to read"
            );
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "go {version} {ldflags:?}: gospy {a:?}: not one line:\n{err}"
            );
            assert!(
                err.contains(why),
                "go {version} {ldflags:?}: gospy {a:?}: the line does not say {why:?}:\n{err}"
            );
            assert!(
                !out.exists(),
                "go {version} {ldflags:?}: gospy {a:?} left {} behind",
                out.display()
            );
        }
    }
    drop(fx);
    report(&format!(
        "nothing to read, go {version} {ldflags:?}: heap, allocs, block and mutex refused in one line each (snapshot and live)"
    ));
}

#[test]
fn nothing_to_read_go1_19() {
    nothing_to_read("1.19", "");
}

#[test]
fn nothing_to_read_go1_23() {
    nothing_to_read("1.23", "");
}

#[test]
fn nothing_to_read_go1_27() {
    nothing_to_read("1.27", "");
}

#[test]
fn nothing_to_read_no_symbols_go1_27() {
    nothing_to_read("1.27", "-s -w");
}
