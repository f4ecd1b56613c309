//! Kernel core files: the goroutines fixture runs with GOTRACEBACK=crash, a
//! core size limit of "unlimited" and its working directory in a temporary
//! directory; once it has written its `runtime.Stack` oracle it gets SIGABRT,
//! the Go runtime prints its crash traceback and dies of the signal, and the
//! kernel writes the core (/proc/sys/kernel/core_pattern, "core" here: a file
//! in the crashing process's cwd). Then:
//! - `gospy analyze CORE --bin FIXTURE dump --json` lists every goroutine of
//!   the oracle; those parked in it are identical (state, frames, offsets,
//!   arguments, creator); main (which wrote the oracle, then parked) is parked
//!   in main.main;
//! - `summary --json` works and agrees with the runtime's counts;
//! - the same core compressed with zstd (as systemd-coredump stores it:
//!   `core.*.zst`) gives byte-identical dump and summary output, and so does
//!   the core without --bin (executable found through NT_FILE).
//!
//! The busy goroutine (main.busyLoop, the only one running when the signal
//! arrives) is checked for identity (id, creator) and state only: where it is
//! depends on where the signal and the runtime's crash handling (which stops
//! the world) caught it, and the kernel's core holds the thread's registers
//! inside the crash handler (raise, on the signal stack), not the signal
//! context the runtime itself used for its own crash traceback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::time::Duration;

use common::dumpcmp::*;
use common::*;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips (prints why) or, with CI=true, fails.
fn cannot(why: &str) {
    if ci() {
        panic!("kernel core files are impossible in this environment (CI=true): {why}");
    }
    println!("SKIP: kernel core files are impossible in this environment: {why}");
}

fn analyze(file: &Path, bin: Option<&Path>, what: &[&str]) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), file.as_os_str()];
    if let Some(b) = bin {
        args.push("--bin".as_ref());
        args.push(b.as_os_str());
    }
    args.extend(what.iter().map(std::ffi::OsStr::new));
    gospy_ok(&args)
}

fn kernel_core(version: &str, pie: bool) {
    let Some(bin) = try_build_fixture("goroutines", version, pie, "") else {
        return;
    };
    let what = format!("go {version} pie={pie}");
    let work = tempfile::Builder::new()
        .prefix("gospy-kcore-test-")
        .tempdir()
        .unwrap();
    let cwd = work.path().to_path_buf();
    let mut fx = Fixture::start_configured(&bin, &[], &[("GOTRACEBACK", "crash")], |cmd| {
        cmd.current_dir(&cwd);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            cmd.pre_exec(|| {
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &unlimited) != 0 {
                    // The hard limit may be lower: take what is allowed.
                    let mut cur = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_CORE, &mut cur);
                    cur.rlim_cur = cur.rlim_max;
                    libc::setrlimit(libc::RLIMIT_CORE, &cur);
                }
                Ok(())
            });
        }
    });
    let oracle = fx.oracle();
    let pid = fx.pid;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let core = match kernel_core_path(&cwd, pid, comm.trim()) {
        Ok(p) => p,
        Err(why) => return cannot(&why),
    };
    // The child is ours and not reaped yet: its pid cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGABRT) }, 0);
    let status = fx
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{what}: the fixture did not die of SIGABRT within 60s"));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "{what}: {status}; stderr:\n{}",
        fx.stderr()
    );
    if !status.core_dumped() || !core.is_file() {
        let why = format!(
            "the fixture died of SIGABRT with GOTRACEBACK=crash but the kernel wrote no core \
             (core dumped: {}, expected at {}; limits:\n{limits})",
            status.core_dumped(),
            core.display()
        );
        return cannot(&why);
    }
    // The runtime's own crash output (GOTRACEBACK=crash) went to stderr.
    assert!(
        fx.stderr().contains("SIGABRT: abort"),
        "{what}: no crash traceback on stderr"
    );
    let core_size = std::fs::metadata(&core).unwrap().len();

    let dump_json = analyze(&core, Some(&bin), &["dump", "--json"]);
    let got: Vec<DumpGoroutine> = serde_json::from_str(&dump_json).unwrap();
    let all: Vec<DumpGoroutine> =
        serde_json::from_str(&analyze(&core, Some(&bin), &["dump", "--json", "--all"])).unwrap();
    let summary_json = analyze(&core, Some(&bin), &["summary", "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&summary_json).unwrap();

    let mut problems = Vec::new();
    let meta = &oracle.meta;
    let by_id: BTreeMap<u64, &DumpGoroutine> = got.iter().map(|g| (g.id, g)).collect();
    let want_ids: BTreeSet<u64> = oracle.goroutines.iter().map(|g| g.id).collect();
    let got_ids: BTreeSet<u64> = by_id.keys().copied().collect();
    if want_ids != got_ids {
        problems.push(format!(
            "goroutine ids differ: only in the runtime's dump {:?}, only in gospy's {:?}",
            want_ids.difference(&got_ids).collect::<Vec<_>>(),
            got_ids.difference(&want_ids).collect::<Vec<_>>()
        ));
    }
    let mut parked = 0;
    for want in &oracle.goroutines {
        let Some(g) = by_id.get(&want.id) else {
            continue;
        };
        if want.id == meta.busy_goroutine_id {
            // See the module comment: identity and state only.
            let cb = |c: Option<(&str, Option<u64>)>| c.map(|(f, g)| (f.to_string(), g));
            let want_cb = cb(want
                .created_by
                .as_ref()
                .map(|c| (c.function.as_str(), c.goroutine)));
            let got_cb = cb(g
                .created_by
                .as_ref()
                .map(|c| (c.function.as_str(), c.goroutine)));
            if !matches!(g.status.as_str(), "running" | "runnable") || got_cb != want_cb {
                problems.push(format!(
                    "busy goroutine {}: status {:?}, created_by {got_cb:?}; want running or \
                     runnable, created by {want_cb:?}",
                    g.id, g.status
                ));
            }
            if !g.frames.is_empty()
                && !g
                    .frames
                    .iter()
                    .take(4)
                    .any(|f| f.function == "main.busyLoop")
            {
                problems.push(format!(
                    "busy goroutine {}: frames but no main.busyLoop among the top ones: {:?}",
                    g.id,
                    g.frames.iter().map(|f| &f.function).collect::<Vec<_>>()
                ));
            }
        } else if want.id == meta.oracle_goroutine_id {
            check_writer(g, &mut problems);
        } else if want.unavailable || want.state == "running" || want.state == "runnable" {
        } else {
            parked += 1;
            let diffs = compare_blocked(want, g, meta.go_minor());
            if !diffs.is_empty() {
                problems.push(render_diff(&oracle, want, g, &diffs));
            }
        }
    }
    check_all(&got, &all, &mut problems);
    for (k, want) in [
        ("goroutine_count", serde_json::json!(meta.num_goroutine)),
        ("gomaxprocs", serde_json::json!(meta.gomaxprocs)),
        ("go_version", serde_json::json!(meta.go_version)),
    ] {
        if summary[k] != want {
            problems.push(format!("summary {k}: {}, want {want}", summary[k]));
        }
    }
    let threads = summary["threads"]["total"].as_u64().unwrap_or(0);
    if threads < 2 {
        problems.push(format!("summary: {threads} threads"));
    }

    // `gospy info CORE`: the core's notes and, its executable being found
    // through NT_FILE, the Go version and build ids.
    let info: serde_json::Value = serde_json::from_str(&gospy_ok([
        "info".as_ref(),
        core.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let b = gospy::binary::Binary::from_path(&bin).unwrap();
    for (k, want) in [
        ("pid", serde_json::json!(pid)),
        ("signal", serde_json::json!(libc::SIGABRT)),
        ("threads", summary["threads"]["total"].clone()),
        ("go_version", serde_json::json!(meta.go_version)),
        ("go_build_id", serde_json::json!(b.elf.go_build_id)),
        ("gnu_build_id", serde_json::json!(b.elf.gnu_build_id)),
        ("exe_path", serde_json::json!(bin.display().to_string())),
        ("compressed", serde_json::json!(false)),
    ] {
        if info[k] != want {
            problems.push(format!("info --json {k}: {}, want {want}", info[k]));
        }
    }
    let text = gospy_ok(["info".as_ref(), core.as_os_str()]);
    for want in [
        format!("pid {pid} "),
        "6 (SIGABRT)".into(),
        meta.go_version.clone(),
    ] {
        if !text.contains(&want) {
            problems.push(format!("info: no {want:?} in:\n{text}"));
        }
    }

    // Without --bin: the executable from the core's NT_FILE note.
    if analyze(&core, None, &["dump", "--json"]) != dump_json {
        problems.push("the core without --bin dumps differently".into());
    }

    // systemd-coredump stores cores zstd-compressed as
    // core.COMM.UID.BOOT_ID.PID.USEC.zst, USEC the crash time (here: the
    // core's modification time), which gospy takes as the capture time.
    let usec = std::fs::metadata(&core)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let zst = cwd.join(format!(
        "core.goroutines.0.0123456789abcdef0123456789abcdef.{pid}.{usec}.zst"
    ));
    {
        let data = std::fs::read(&core).unwrap();
        std::fs::remove_file(&core).unwrap();
        std::fs::write(&zst, zstd::stream::encode_all(&data[..], 3).unwrap()).unwrap();
    }
    if analyze(&zst, Some(&bin), &["dump", "--json"]) != dump_json {
        problems.push("the zstd-compressed core dumps differently".into());
    }
    let zst_summary = analyze(&zst, Some(&bin), &["summary", "--json"]);
    let wall = serde_json::from_str::<serde_json::Value>(&zst_summary).unwrap()
        ["capture_wall_time_ns"]
        .as_u64();
    if wall != Some(usec * 1000) {
        problems.push(format!(
            "zstd core: capture_wall_time_ns {wall:?}, want {} (from the file name)",
            usec * 1000
        ));
    }
    // The uncompressed core's time is its modification time (nanoseconds):
    // the capture time and what is relative to it differ by < 1µs.
    let without_time = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        remove_keys(&mut v, &["capture_wall_time_ns", "last_gc_ago_ns"]);
        v.to_string()
    };
    if without_time(&zst_summary) != without_time(&summary_json) {
        problems.push(format!(
            "the zstd-compressed core summarizes differently: {}",
            first_line_diff(&without_time(&summary_json), &without_time(&zst_summary))
        ));
    }

    if !problems.is_empty() {
        panic!(
            "{what}: kernel core ({core_size} bytes): {} problems:\n\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    assert!(parked > 20, "{what}: only {parked} parked goroutines");
    report(&format!(
        "{what}: kernel core ({} MiB) and its zstd copy: {parked} parked goroutines identical \
         to runtime.Stack, {} goroutines listed",
        core_size >> 20,
        got.len()
    ));
}

fn remove_keys(v: &mut serde_json::Value, keys: &[&str]) {
    match v {
        serde_json::Value::Object(o) => {
            for k in keys {
                o.remove(*k);
            }
            o.values_mut().for_each(|x| remove_keys(x, keys));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| remove_keys(x, keys)),
        _ => {}
    }
}

/// The first differing line of two pretty-printed JSON texts.
fn first_line_diff(a: &str, b: &str) -> String {
    let pretty = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .map(|v| format!("{v:#}"))
            .unwrap_or_else(|_| s.to_string())
    };
    let (a, b) = (pretty(a), pretty(b));
    a.lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("{x:?} vs {y:?}"))
        .unwrap_or_else(|| "lengths differ".into())
}

macro_rules! kernel_core_tests {
    ($($name:ident: $v:literal, pie = $pie:literal;)*) => {$(
        #[test]
        fn $name() {
            kernel_core($v, $pie);
        }
    )*};
}

kernel_core_tests! {
    kernel_core_go1_19: "1.19", pie = false;
    kernel_core_go1_21: "1.21", pie = false;
    kernel_core_go1_22: "1.22", pie = false;
    kernel_core_go1_23: "1.23", pie = false;
    kernel_core_go1_24: "1.24", pie = false;
    kernel_core_go1_25: "1.25", pie = false;
    kernel_core_go1_26: "1.26", pie = false;
    kernel_core_go1_27: "1.27", pie = false;
    kernel_core_go1_27_pie: "1.27", pie = true;
}
