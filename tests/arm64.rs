//! linux/arm64 cores analyzed on this (x86-64) machine.
//!
//! The fixtures are cross-compiled with GOARCH=arm64 (CGO off) and run under
//! qemu-user (`qemu-aarch64-static`, Debian's qemu-user-static; PIE builds
//! get their dynamic linker from libc6-arm64-cross through `-L`), with
//! GOTRACEBACK=crash and an unlimited core size. Once a fixture has written
//! its oracle it gets SIGABRT: the Go runtime prints its crash traceback on
//! stderr (every goroutine, system goroutines and runtime frames included)
//! and dies of the signal, and qemu writes the guest's ELF core
//! (`qemu_NAME_DATE_PID.core`, AArch64, NT_PRSTATUS in the `user_pt_regs`
//! layout) in the working directory. Then, for Go 1.19 and 1.21–1.27, plain
//! and PIE builds:
//! - `dump --all --json` lists exactly the goroutines of the crash traceback;
//!   every one that is parked there is identical (state, frames with
//!   offsets and arguments, creator); the default dump lists the ones
//!   runtime.Stack listed, and `--all` marks the others as system;
//! - `summary --json` agrees with the runtime's counts, `top --json` counts
//!   every goroutine, `var` reads globals (DWARF);
//! - with the heap fixture: `heap --json` MemStats equal what
//!   runtime.ReadMemStats returned before the abort (HeapReleased may only
//!   have grown, the scavenger runs on);
//! - `-w` and `-s -w` builds dump the same (layouts from gospy's tables;
//!   with `-s -w` the runtime globals recovered from arm64 code, which
//!   `globals_from_code_*` check against the symbol table);
//! - goroutines parked in a panic raised by a nil dereference unwind
//!   through runtime.sigpanic as the runtime did (tests/fixtures/sigpanic);
//!   so does the busy goroutine when the crash preempted it (asyncPreempt);
//! - a core of another architecture (a real riscv64 core from
//!   qemu-riscv64-static, and an x86-64 core relabelled riscv64) is refused
//!   in one line naming the supported architectures, and so is the amd64
//!   build of the fixture offered with the arm64 core;
//! - gospy's layout tables give arm64's layouts (tables_match_dwarf_*), and
//!   the globals recovered from arm64 code are the symbol table's
//!   (globals_from_code_*).
//!
//! The goroutine the signal interrupted (main.busyLoop's, the only one not
//! parked) is checked for identity and state only, as in tests/kernel_core.rs.

mod common;
#[path = "common/prof.rs"]
mod prof;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dumpcmp::*;
use common::*;
use serde_json::Value;

const QEMU: &str = "qemu-aarch64-static";
/// The arm64 dynamic linker and libc of libc6-arm64-cross (PIE builds).
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const ARM64: &[(&str, &str)] = &[("GOARCH", "arm64")];

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips (prints why) or, with CI=true, fails.
fn cannot(why: &str) {
    if ci() {
        panic!("arm64 cores cannot be made here (CI=true): {why}");
    }
    println!("SKIP: arm64 cores cannot be made here: {why}");
}

fn qemu_missing() -> Option<String> {
    let found = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!found).then(|| format!("{QEMU} is not installed (scripts/install-test-deps.sh)"))
}

/// An arm64 fixture run under qemu until its oracle, then aborted.
struct QemuCore {
    /// The fixture's working directory (the core is written there).
    work: tempfile::TempDir,
    /// ORACLE_DIR.
    dir: PathBuf,
    core: PathBuf,
    stderr: String,
}

/// Runs `bin` under qemu with GOTRACEBACK=crash until it writes ORACLE_DIR/ready,
/// sends SIGABRT and waits for the guest's core. Err: why there is none.
fn run_to_core(bin: &Path, env: &[(&str, &str)]) -> Result<QemuCore, String> {
    run_to_core_with(QEMU, bin, env)
}

/// [`run_to_core`] under another qemu-user emulator.
fn run_to_core_with(qemu: &str, bin: &Path, env: &[(&str, &str)]) -> Result<QemuCore, String> {
    let work = tempfile::Builder::new()
        .prefix("gospy-arm64-test-")
        .tempdir()
        .unwrap();
    let dir = work.path().join("oracle");
    std::fs::create_dir(&dir).unwrap();
    let log = |n: &str| std::fs::File::create(work.path().join(n)).unwrap();
    let mut cmd = Command::new(qemu);
    cmd.arg("-L")
        .arg(SYSROOT)
        .arg(bin)
        .arg(&dir)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(log("stdout.log"))
        .stderr(log("stderr.log"))
        .env("GOTRACEBACK", "crash")
        .env("GOSPY_FIXTURE_PDEATHSIG", "1");
    for var in ["GODEBUG", "GOGC", "GOMEMLIMIT"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
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
    let mut child = cmd.spawn().map_err(|e| format!("starting {qemu}: {e}"))?;
    let stderr = |w: &Path| std::fs::read_to_string(w.join("stderr.log")).unwrap_or_default();
    // qemu runs the fixture several times slower than native.
    let start = Instant::now();
    while !dir.join("ready").exists() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{} exited ({st}) before its oracle; stderr:\n{}",
                bin.display(),
                stderr(work.path())
            );
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} not ready after 180s under qemu", bin.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The child is ours and not reaped yet: its pid cannot have been reused.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGABRT) }, 0);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            _ if start.elapsed() > Duration::from_secs(300) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not die of SIGABRT", bin.display());
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let err = stderr(work.path());
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "{}: {status}; stderr:\n{err}",
        bin.display()
    );
    assert!(err.contains("SIGABRT: abort"), "no crash traceback:\n{err}");
    // qemu dies of the signal too: the host may have dumped qemu itself
    // (core_pattern "core"); only the guest's core matters.
    let mut core = None;
    for e in std::fs::read_dir(work.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("qemu_") && name.ends_with(".core") {
            core = Some(e.path());
        } else if name == "core" || name.starts_with("core.") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let core = core.ok_or_else(|| {
        format!(
            "qemu wrote no guest core in {} (core size limit?)",
            work.path().display()
        )
    })?;
    Ok(QemuCore {
        work,
        dir,
        core,
        stderr: err,
    })
}

fn analyze(core: &Path, bin: &Path, what: &[&str]) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "analyze".as_ref(),
        core.as_os_str(),
        "--bin".as_ref(),
        bin.as_os_str(),
    ];
    args.extend(what.iter().map(std::ffi::OsStr::new));
    gospy_ok(&args)
}

/// The crash traceback's goroutines: from the first goroutine header to the
/// signal's register dump; each goroutine once (first listing), the
/// signalled thread's g0 ("goroutine 0") left out.
fn crash_goroutines(stderr: &str) -> Result<(String, Vec<OracleGoroutine>), String> {
    let start = stderr
        .find("\ngoroutine ")
        .ok_or("no goroutine in the crash output")?
        + 1;
    let mut section = String::new();
    for line in stderr[start..].lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        let is_reg = line.contains("0x")
            && (matches!(word, "lr" | "sp" | "pc" | "fault" | "pstate")
                || (word.starts_with('r') && word[1..].parse::<u32>().is_ok()));
        if is_reg || line.starts_with("SIGQUIT") || line.starts_with("-----") {
            break;
        }
        section.push_str(line);
        section.push('\n');
    }
    let parsed = parse_oracle(&section)?;
    let mut seen = BTreeSet::new();
    let gs = parsed
        .into_iter()
        .filter(|g| g.id != 0 && seen.insert(g.id))
        .collect();
    Ok((section, gs))
}

/// `ldflags` "-w": no DWARF (layouts from gospy's tables, globals from the
/// symbol table); "-s -w": no symbol table either (globals recovered from
/// the runtime's arm64 code).
fn dump_goroutines(version: &str, pie: bool, ldflags: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("goroutines", version, pie, ldflags, ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} pie={pie} ldflags={ldflags:?}");
    let run = match run_to_core(&bin, &[]) {
        Ok(r) => r,
        Err(why) => return cannot(&why),
    };
    let stack = Oracle::read(&run.dir).unwrap_or_else(|e| panic!("{what}: {e}"));
    let meta = stack.meta.clone();
    let (section, crash) =
        crash_goroutines(&run.stderr).unwrap_or_else(|e| panic!("{what}: crash traceback: {e}"));
    let crash_oracle = Oracle {
        text: section,
        goroutines: crash.clone(),
        meta: meta.clone(),
    };
    let core = &run.core;
    let default: Vec<DumpGoroutine> =
        serde_json::from_str(&analyze(core, &bin, &["dump", "--json"])).unwrap();
    let all: Vec<DumpGoroutine> =
        serde_json::from_str(&analyze(core, &bin, &["dump", "--json", "--all"])).unwrap();

    let mut problems = Vec::new();
    let by_id: BTreeMap<u64, &DumpGoroutine> = all.iter().map(|g| (g.id, g)).collect();
    let want_ids: BTreeSet<u64> = crash.iter().map(|g| g.id).collect();
    let got_ids: BTreeSet<u64> = by_id.keys().copied().collect();
    if want_ids != got_ids {
        problems.push(format!(
            "goroutine ids differ: only in the crash traceback {:?}, only in gospy's dump --all {:?}",
            want_ids.difference(&got_ids).collect::<Vec<_>>(),
            got_ids.difference(&want_ids).collect::<Vec<_>>()
        ));
    }
    // runtime.Stack lists the user goroutines: exactly the default dump.
    let user: BTreeSet<u64> = stack.goroutines.iter().map(|g| g.id).collect();
    let shown: BTreeSet<u64> = default.iter().map(|g| g.id).collect();
    if user != shown {
        problems.push(format!(
            "default dump {shown:?}, runtime.Stack listed {user:?}"
        ));
    }
    check_all(&default, &all, &mut problems);
    let mut parked = 0;
    let mut system = 0;
    let mut hidden_creators = 0;
    let mut preempted = 0;
    for want in &crash {
        let Some(g) = by_id.get(&want.id) else {
            continue;
        };
        let is_system = !user.contains(&want.id);
        if g.system != is_system {
            problems.push(format!(
                "goroutine {}: system {}, want {is_system}",
                want.id, g.system
            ));
        }
        if want.id == meta.busy_goroutine_id {
            if !matches!(g.status.as_str(), "running" | "runnable") {
                problems.push(format!(
                    "busy goroutine {}: status {:?}, want running or runnable",
                    g.id, g.status
                ));
            }
            // Preempted (asynchronously: through runtime.asyncPreempt, the
            // call the signal handler injects) by the crash's stop: its
            // frames are in g.sched, as the runtime printed them.
            if want.state == "runnable" && !want.unavailable && g.status == "runnable" {
                let mut d = Vec::new();
                compare_frames(want, &g.frames, meta.go_minor(), &mut d);
                if !d.is_empty() {
                    problems.push(render_diff(&crash_oracle, want, g, &d));
                }
                preempted += 1;
            }
            continue;
        }
        if want.unavailable || want.state == "running" || want.state == "runnable" {
            continue;
        }
        parked += 1;
        system += usize::from(is_system);
        let mut diffs = compare_blocked(want, g, meta.go_minor());
        diffs.retain(|d| d != "marked system");
        // GOTRACEBACK=crash prints runtime creators too, as dump --all does.
        hidden_creators += usize::from(
            want.created_by
                .as_ref()
                .is_some_and(|c| c.function.starts_with("runtime.")),
        );
        if !diffs.is_empty() {
            problems.push(render_diff(&crash_oracle, want, g, &diffs));
        }
    }

    // summary, top, var.
    let summary: Value =
        serde_json::from_str(&analyze(core, &bin, &["summary", "--json"])).unwrap();
    for (k, want) in [
        ("goroutine_count", serde_json::json!(meta.num_goroutine)),
        ("gomaxprocs", serde_json::json!(meta.gomaxprocs)),
        ("go_version", serde_json::json!(meta.go_version)),
    ] {
        if summary[k] != want {
            problems.push(format!("summary {k}: {}, want {want}", summary[k]));
        }
    }
    let top: Value = serde_json::from_str(&analyze(core, &bin, &["top", "--json"])).unwrap();
    let counted: u64 = top
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["count"].as_u64()).sum())
        .unwrap_or(0);
    if counted != meta.num_goroutine as u64 {
        problems.push(format!(
            "top counts {counted} goroutines, want {}",
            meta.num_goroutine
        ));
    }
    let info: Value = serde_json::from_str(&gospy_ok([
        "info".as_ref(),
        core.as_os_str(),
        "--bin".as_ref(),
        bin.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    if info["arch"] != "arm64" || info["go_version"] != serde_json::json!(meta.go_version) {
        problems.push(format!("info --json: {info}"));
    }
    if ldflags.is_empty() {
        // The amd64 build of the same source: refused in one line.
        if let Some(amd64) = try_build_fixture("goroutines", version, pie, "") {
            let out = gospy([
                "analyze".as_ref(),
                core.as_os_str(),
                "--bin".as_ref(),
                amd64.as_os_str(),
                "summary".as_ref(),
            ]);
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success()
                || err.lines().count() != 1
                || !err.contains("is for amd64 but the core file is for arm64")
            {
                problems.push(format!("the amd64 executable for the arm64 core: {err}"));
            }
        }
        let tag: Value =
            serde_json::from_str(&analyze(core, &bin, &["var", "main.buildTag", "--json"]))
                .unwrap();
        if tag["value"] != serde_json::json!(meta.build_tag) {
            problems.push(format!(
                "var main.buildTag: {}, want {:?}",
                tag["value"], meta.build_tag
            ));
        }
        let workers: Value =
            serde_json::from_str(&analyze(core, &bin, &["var", "main.workCh", "--json"])).unwrap();
        if workers["type"] != "chan int" {
            problems.push(format!("var main.workCh: {workers}"));
        }
    }

    if !problems.is_empty() {
        panic!(
            "{what}: qemu core {}: {} problems:\n\n{}",
            run.core.display(),
            problems.len(),
            problems.join("\n")
        );
    }
    assert!(parked > 30, "{what}: only {parked} parked goroutines");
    assert!(system > 2, "{what}: only {system} parked system goroutines");
    report(&format!(
        "{what}: qemu core: {parked} parked goroutines ({system} system) identical to the \
         runtime's crash traceback, {} listed ({preempted} preempted busy goroutine compared); \
         {hidden_creators} runtime creators among them",
        all.len()
    ));
    drop(run.work);
}

/// Goroutines parked in a panic raised by a nil dereference: their stacks go
/// through runtime.sigpanic, the call arm64's signal handler injects after
/// saving LR on the stack (tests/fixtures/sigpanic: a frameless leaf and a
/// function with a frame fault).
fn sigpanic_frames(version: &str, ldflags: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("sigpanic", version, false, ldflags, ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} ldflags={ldflags:?} sigpanic");
    let run = match run_to_core(&bin, &[]) {
        Ok(r) => r,
        Err(why) => return cannot(&why),
    };
    let (_, crash) =
        crash_goroutines(&run.stderr).unwrap_or_else(|e| panic!("{what}: crash traceback: {e}"));
    let all: Vec<DumpGoroutine> =
        serde_json::from_str(&analyze(&run.core, &bin, &["dump", "--json", "--all"])).unwrap();
    let by_id: BTreeMap<u64, &DumpGoroutine> = all.iter().map(|g| (g.id, g)).collect();
    let go = go_minor(&format!("go{version}"));
    let mut problems = Vec::new();
    let mut through_sigpanic = 0;
    for want in &crash {
        let Some(g) = by_id.get(&want.id) else {
            problems.push(format!("goroutine {} missing", want.id));
            continue;
        };
        if want.unavailable || want.state == "running" || want.state == "runnable" {
            continue;
        }
        let mut diffs = compare_blocked(want, g, go);
        diffs.retain(|d| d != "marked system");
        let runtime_creator = want
            .created_by
            .as_ref()
            .is_some_and(|c| c.function.starts_with("runtime."));
        if runtime_creator && g.created_by.is_none() {
            diffs.retain(|d| !d.starts_with("created_by None"));
        }
        if !diffs.is_empty() {
            problems.push(format!(
                "goroutine {}: {}\n  got:\n{}",
                want.id,
                diffs.join("\n  "),
                render_dump_goroutine(g)
            ));
        }
        if want.frames.iter().any(|f| f.function == "runtime.sigpanic") {
            through_sigpanic += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} problems:\n\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(through_sigpanic, 2, "{what}: goroutines through sigpanic");
    report(&format!(
        "{what}: {through_sigpanic} goroutines unwound through runtime.sigpanic as the runtime did"
    ));
}

/// MemStats of the heap fixture (quiet mode) against gospy's `heap --json`.
fn heap_memstats(version: &str, pie: bool, ldflags: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("heap", version, pie, ldflags, ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} pie={pie} ldflags={ldflags:?} heap");
    // Under qemu the runtime may start another M after the fixture's last
    // ReadMemStats (sysmon hands off the P of a slow system call): its m
    // and signal stack are then in the core but not in the oracle. Such a
    // run is done again.
    let mut tries = 0;
    let (run, oracle) = loop {
        tries += 1;
        let run = match run_to_core(&bin, &[("GOSPY_HEAP_MODE", "quiet")]) {
            Ok(r) => r,
            Err(why) => return cannot(&why),
        };
        let oracle: Value =
            serde_json::from_str(&std::fs::read_to_string(run.dir.join("memstats.json")).unwrap())
                .unwrap();
        let summary: Value =
            serde_json::from_str(&analyze(&run.core, &bin, &["summary", "--json"])).unwrap();
        let ms = summary["scheduler"]["ms_total"].as_u64().unwrap_or(0);
        let threads = oracle["Threads"].as_u64().unwrap_or(ms);
        if ms <= threads || tries == 3 {
            break (run, oracle);
        }
        eprintln!("{what}: {ms} Ms in the core, {threads} at the fixture's ReadMemStats: again");
    };
    let heap: Value = serde_json::from_str(&analyze(&run.core, &bin, &["heap", "--json"])).unwrap();
    let got = &heap["memstats"];
    let mut problems = Vec::new();
    for f in [
        "NumGC",
        "NumForcedGC",
        "PauseTotalNs",
        "LastGC",
        "NextGC",
        "Mallocs",
        "Frees",
        "HeapObjects",
        "HeapAlloc",
        "Alloc",
        "TotalAlloc",
        "HeapSys",
        "HeapInuse",
        "HeapIdle",
        "StackInuse",
        "StackSys",
        "MSpanInuse",
        "MCacheInuse",
        "BuckHashSys",
        "Sys",
        "GCSys",
        "OtherSys",
        "PauseNs",
        "BySize",
    ] {
        if got[f] != oracle[f] {
            problems.push(format!("{f}: want {} got {}", oracle[f], got[f]));
        }
    }
    let released = got["HeapReleased"].as_u64().unwrap_or(0);
    if released < oracle["HeapReleased"].as_u64().unwrap_or(0)
        || released > got["HeapIdle"].as_u64().unwrap_or(0)
    {
        problems.push(format!(
            "HeapReleased {released}: want >= {} and <= HeapIdle",
            oracle["HeapReleased"]
        ));
    }
    let summary: Value =
        serde_json::from_str(&analyze(&run.core, &bin, &["summary", "--json"])).unwrap();
    if summary.to_string().is_empty() {
        problems.push("empty summary".into());
    }
    assert!(
        problems.is_empty(),
        "{what}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    report(&format!(
        "{what}: MemStats of the qemu core equal runtime.ReadMemStats ({} objects)",
        got["HeapObjects"]
    ));
}

/// The block and mutex profiles of a stripped (`-s -w`) contend fixture's
/// qemu core against the fixture's own `pprof.Lookup(..).WriteTo(f, 0)`:
/// the bucket lists and the mutex profile's rate (Go 1.19's writer scales
/// by it) found from arm64 code. Contention on the runtime's own locks
/// after the oracle was written (1.22+) is reported, not a failure, as in
/// tests/block_profile.rs.
fn contention_profiles_stripped(version: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("contend", version, false, "-s -w", ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} -s -w block/mutex profiles");
    let run = match run_to_core(&bin, &[]) {
        Ok(r) => r,
        Err(why) => return cannot(&why),
    };
    let mut problems = Vec::new();
    let mut samples = 0;
    for kind in ["block", "mutex"] {
        let got_file = run.work.path().join(format!("{kind}.pb.gz"));
        analyze(
            &run.core,
            &bin,
            &["pprof", kind, "-o", got_file.to_str().unwrap()],
        );
        let want = prof::pprof_raw(&run.dir.join(format!("{kind}.pb.gz")));
        let got = prof::pprof_raw(&got_file);
        samples += prof::parse_raw(&want, 2).values().sum::<usize>();
        for p in prof::differences(&want, &got, 2) {
            if kind == "mutex" && prof::runtime_lock_sample(&p) {
                report(&format!(
                    "  runtime's own lock contention since the oracle: {p}"
                ));
            } else {
                problems.push(format!("{kind}: {p}"));
            }
        }
    }
    assert!(samples > 0, "{what}: the oracles hold no samples");
    assert!(
        problems.is_empty(),
        "{what}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    report(&format!(
        "{what}: equal to the fixture's own ({samples} samples)"
    ));
}

/// `retain` on a qemu core of the owners fixture: every owner (the parked
/// goroutine's frame included, found through arm64 stack maps: `varp = fp`,
/// `argp = fp + 8`) retains the fixture's own bytes within 1%.
fn retain_owners(version: &str, ldflags: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("owners", version, false, ldflags, ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} ldflags={ldflags:?} retain");
    let run = match run_to_core(&bin, &[]) {
        Ok(r) => r,
        Err(why) => return cannot(&why),
    };
    let expect: Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("expect.json")).unwrap())
            .unwrap();
    let got: Value =
        serde_json::from_str(&analyze(&run.core, &bin, &["retain", "--json"])).unwrap();
    assert_eq!(got["conservative"], Value::Bool(false), "{what}: {got}");
    let lines = common::owners::check_owners(&what, &got, &expect, ldflags.is_empty());
    report(&format!("{what}: {}", lines.join(", ")));
}

/// Finalizer and cleanup roots (Go 1.25+: the cleanups fixture, whose
/// cleanup queue sits after two 128-byte cache-line pads on arm64, and
/// `runtime.allfin` / `runtime.gcCleanups` recovered from arm64 code when
/// stripped) on a qemu core: each named and retaining the fixture's own
/// bytes within 1%.
fn specials_arm64(version: &str, ldflags: &str) {
    if let Some(why) = qemu_missing() {
        return cannot(&why);
    }
    let Some(bin) = try_build_fixture_env("cleanups", version, false, ldflags, ARM64) else {
        return;
    };
    let what = format!("arm64 go {version} ldflags={ldflags:?} specials");
    // The fixture's one-shot measure of its queued cleanup is noisy when the
    // runtime started a thread meanwhile: run it again (3 times at most).
    for attempt in 1..=3 {
        let run = match run_to_core(&bin, &[]) {
            Ok(r) => r,
            Err(why) => return cannot(&why),
        };
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(run.dir.join("expect.json")).unwrap())
                .unwrap();
        if expect["noisy"].as_bool() == Some(true) && attempt < 3 {
            report(&format!(
                "{what}: the fixture's own measure was noisy: again"
            ));
            continue;
        }
        let got: Value = serde_json::from_str(&analyze(
            &run.core,
            &bin,
            &["retain", "--top", "100", "--json"],
        ))
        .unwrap();
        let lines = common::specials::check_specials(&what, &got, &expect);
        report(&format!("{what}: {}", lines.join(", ")));
        return;
    }
}

#[test]
fn specials_go1_25_stripped() {
    specials_arm64("1.25", "-s -w");
}

#[test]
fn specials_go1_27() {
    specials_arm64("1.27", "");
}

#[test]
fn specials_go1_27_stripped() {
    specials_arm64("1.27", "-s -w");
}

macro_rules! arm64_tests {
    ($($name:ident: $v:literal;)*) => {$(
        mod $name {
            #[test]
            fn dump() {
                super::dump_goroutines($v, false, "");
            }
            #[test]
            fn dump_pie() {
                super::dump_goroutines($v, true, "");
            }
            #[test]
            fn dump_no_dwarf() {
                super::dump_goroutines($v, false, "-w");
            }
            #[test]
            fn heap() {
                super::heap_memstats($v, false, "");
            }
            #[test]
            fn heap_stripped() {
                super::heap_memstats($v, false, "-s -w");
            }
            #[test]
            fn heap_pie() {
                super::heap_memstats($v, true, "");
            }
            #[test]
            fn sigpanic() {
                super::sigpanic_frames($v, "");
            }
            #[test]
            fn sigpanic_stripped() {
                super::sigpanic_frames($v, "-s -w");
            }
            #[test]
            fn dump_stripped() {
                super::dump_goroutines($v, false, "-s -w");
            }
            #[test]
            fn dump_stripped_pie() {
                super::dump_goroutines($v, true, "-s -w");
            }
            #[test]
            fn contention_stripped() {
                super::contention_profiles_stripped($v);
            }
            #[test]
            fn retain() {
                super::retain_owners($v, "");
            }
            #[test]
            fn retain_stripped() {
                super::retain_owners($v, "-s -w");
            }
        }
    )*};
}

arm64_tests! {
    go1_19: "1.19";
    go1_21: "1.21";
    go1_22: "1.22";
    go1_23: "1.23";
    go1_24: "1.24";
    go1_25: "1.25";
    go1_26: "1.26";
    go1_27: "1.27";
}

/// A real riscv64 core (the small sigpanic fixture built with
/// GOARCH=riscv64, aborted under qemu-riscv64-static): refused in one line.
#[test]
fn riscv64_core_is_refused() {
    if Command::new("qemu-riscv64-static")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return cannot("qemu-riscv64-static is not installed");
    }
    let Some(bin) = try_build_fixture_env("sigpanic", "1.27", false, "", &[("GOARCH", "riscv64")])
    else {
        return;
    };
    // qemu-riscv64 sometimes dies of the signal without writing the guest's
    // core when the machine is loaded (seen in full-suite runs, never alone).
    // Three tries; then the refusal is checked on an arm64 qemu core whose
    // ELF machine field says RISC-V (243), which is what gospy decides on.
    let mut run = None;
    let mut why = String::new();
    for _ in 0..3 {
        match run_to_core_with("qemu-riscv64-static", &bin, &[]) {
            Ok(r) => {
                run = Some(r);
                break;
            }
            Err(e) => why = e,
        }
    }
    let run = match run {
        Some(r) => r,
        None => {
            let Some(arm) = try_build_fixture_env("sigpanic", "1.27", false, "", ARM64) else {
                return;
            };
            let mut r = match run_to_core_with("qemu-aarch64-static", &arm, &[]) {
                Ok(r) => r,
                Err(e) => return cannot(&format!("{why}; and the arm64 core: {e}")),
            };
            let mut bytes = std::fs::read(&r.core).unwrap();
            assert_eq!(&bytes[..4], b"\x7fELF");
            bytes[18..20].copy_from_slice(&243u16.to_le_bytes());
            let patched = r.work.path().join("riscv64-machine.core");
            std::fs::write(&patched, bytes).unwrap();
            r.core = patched;
            report(&format!(
                "riscv64: {why} (3 tries); refusal checked on an arm64 core marked RISC-V"
            ));
            r
        }
    };
    for args in [
        vec!["analyze".as_ref(), run.core.as_os_str(), "dump".as_ref()],
        vec![
            "analyze".as_ref(),
            run.core.as_os_str(),
            "--bin".as_ref(),
            bin.as_os_str(),
            "summary".as_ref(),
        ],
        vec!["info".as_ref(), run.core.as_os_str()],
    ] {
        let out = gospy(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("core file is for riscv64; gospy supports x86-64 and arm64"),
            "{args:?}: {err}"
        );
    }
    // The riscv64 executable itself.
    let b = gospy::binary::Binary::from_path(&bin);
    let msg = b.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        msg.contains("the executable is for riscv64; gospy supports x86-64 and arm64"),
        "{msg}"
    );
}

/// An x86-64 core relabelled as riscv64 (e_machine 243): refused in one line.
#[test]
fn other_architecture_is_refused() {
    let Some(bin) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("x.gss");
    capture(fx.pid, &snap, &[]);
    fx.kill();
    let core = work.path().join("x.core");
    gospy_ok([
        "convert".as_ref(),
        snap.as_os_str(),
        "-o".as_ref(),
        core.as_os_str(),
    ]);
    let mut bytes = std::fs::read(&core).unwrap();
    bytes[18..20].copy_from_slice(&243u16.to_le_bytes());
    std::fs::write(&core, &bytes).unwrap();
    for what in [&["dump"][..], &["summary"][..]] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), core.as_os_str()];
        args.extend(what.iter().map(std::ffi::OsStr::new));
        let out = gospy(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("core file is for riscv64; gospy supports x86-64 and arm64"),
            "{err}"
        );
    }
    let out = gospy(["info".as_ref(), core.as_os_str()]);
    assert!(!out.status.success());
}

/// The runtime globals recovered from arm64 code (as for a `-s -w` build)
/// are exactly where the symbol table says, PIE and not.
fn globals_from_code(version: &str, pie: bool) {
    let Some(path) = try_build_fixture_env("goroutines", version, pie, "", ARM64) else {
        return;
    };
    let bin = gospy::binary::Binary::from_path(&path).unwrap();
    let rec = gospy::goruntime::version::globals::recover(&bin);
    let mut problems: Vec<String> = rec.missing.iter().map(|m| format!("missing {m}")).collect();
    let minor = bin.go.minor();
    let mut want = vec![
        "runtime.allgs",
        "runtime.allglen",
        "runtime.allgptr",
        "runtime.allm",
        "runtime.allp",
        "runtime.gomaxprocs",
        "runtime.sched",
        "runtime.runtimeInitTime",
        "runtime.waitReasonStrings",
        "runtime.gStatusStrings",
        "runtime.buildVersion",
        "runtime.mheap_",
        "runtime.memstats",
        "runtime.gcController",
        "runtime.emptymspan",
        "runtime.mbuckets",
        "runtime.MemProfileRate",
        "runtime.mProfCycle",
        "runtime.mutexprofilerate",
    ];
    want.push(if minor >= 25 {
        "runtime.numCPUStartup"
    } else {
        "runtime.ncpu"
    });
    want.push(if minor >= 21 {
        "runtime.fingStatus"
    } else {
        "runtime.fingRunning"
    });
    for name in &want {
        let sym = bin.elf.symbol(name).map(|s| s.0);
        let got = rec.addrs.get(*name).copied();
        if got != sym {
            problems.push(format!(
                "{name}: recovered {:?}, symbol table {:?}",
                got.map(|a| format!("{a:#x}")),
                sym.map(|a| format!("{a:#x}"))
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "arm64 go {version} pie={pie}: {}",
        problems.join("\n")
    );
}

macro_rules! arm64_globals_tests {
    ($($name:ident: $v:literal;)*) => {$(
        #[test]
        fn $name() {
            globals_from_code($v, false);
            globals_from_code($v, true);
        }
    )*};
}

arm64_globals_tests! {
    globals_from_code_go1_19: "1.19";
    globals_from_code_go1_21: "1.21";
    globals_from_code_go1_22: "1.22";
    globals_from_code_go1_23: "1.23";
    globals_from_code_go1_24: "1.24";
    globals_from_code_go1_25: "1.25";
    globals_from_code_go1_26: "1.26";
    globals_from_code_go1_27: "1.27";
}

/// gospy's runtime layout tables (measured on amd64) against the DWARF of
/// arm64 builds: the layouts gospy derives from either must be the same.
fn tables_match_dwarf(version: &str) {
    use gospy::goruntime::heap::HeapLayout;
    use gospy::goruntime::version::{Layout, LayoutSource, Tables};
    let Some(path) = try_build_fixture_env("goroutines", version, false, "", ARM64) else {
        return;
    };
    let bin = gospy::binary::Binary::from_path(&path).unwrap();
    let dwarf = bin.dwarf().expect("DWARF");
    let tables = Tables::for_target(bin.go, bin.elf.arch).expect("tables");
    let mut problems = Vec::new();
    for ty in Tables::type_names() {
        if ty.matches('.').count() > 1 || dwarf.size_of(ty).is_none() {
            continue;
        }
        if let (Some(want), got) = (tables.size_of(ty), dwarf.size_of(ty)) {
            if got != Some(want) {
                problems.push(format!("sizeof({ty}): tables {want}, DWARF {got:?}"));
            }
        }
        for (field, _) in tables.fields(ty) {
            let got = dwarf.offset_of(ty, field);
            let want = LayoutSource::offset_of(&tables, ty, field);
            if got != want {
                problems.push(format!("{ty}.{field}: tables {want:?}, DWARF {got:?}"));
            }
        }
    }
    let from_dwarf = Layout::from_source(&bin, dwarf).unwrap();
    let from_tables = Layout::from_source(&bin, &tables).unwrap();
    if from_dwarf != from_tables {
        problems.push(format!(
            "layouts differ:\n  DWARF:  {from_dwarf:?}\n  tables: {from_tables:?}"
        ));
    }
    let heap_dwarf = HeapLayout::from_source(&bin, dwarf).unwrap();
    let heap_tables = HeapLayout::from_source(&bin, &tables).unwrap();
    if heap_dwarf != heap_tables {
        problems.push(format!(
            "heap layouts differ:\n  DWARF:  {heap_dwarf:?}\n  tables: {heap_tables:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "arm64 go {version}:\n{}",
        problems.join("\n")
    );
}

macro_rules! arm64_tables_tests {
    ($($name:ident: $v:literal;)*) => {$(
        #[test]
        fn $name() {
            tables_match_dwarf($v);
        }
    )*};
}

arm64_tables_tests! {
    tables_match_dwarf_go1_19: "1.19";
    tables_match_dwarf_go1_21: "1.21";
    tables_match_dwarf_go1_22: "1.22";
    tables_match_dwarf_go1_23: "1.23";
    tables_match_dwarf_go1_24: "1.24";
    tables_match_dwarf_go1_25: "1.25";
    tables_match_dwarf_go1_26: "1.26";
    tables_match_dwarf_go1_27: "1.27";
}

/// Writes src/goruntime/version/tables_arm64.rs: the runtime layouts that
/// differ on arm64 from gospy's tables, from the DWARF of arm64 builds of
/// every tested version (`cargo test --test arm64 gen_arm64_tables --
/// --ignored`; tables_match_dwarf_* check the result).
#[test]
#[ignore]
fn gen_arm64_tables() {
    use gospy::goruntime::version::tables::{STRUCTS, VERSIONS};
    use gospy::goruntime::version::LayoutSource;
    let bins: Vec<gospy::binary::Binary> = VERSIONS
        .iter()
        .map(|m| {
            let v = format!("1.{m}");
            let p = try_build_fixture_env("goroutines", &v, false, "", ARM64)
                .unwrap_or_else(|| panic!("go {v} is needed"));
            gospy::binary::Binary::from_path(&p).unwrap()
        })
        .collect();
    let (mut fields, mut sizes, mut elems) = (String::new(), String::new(), String::new());
    let names: Vec<&str> = STRUCTS.iter().map(|s| s.name).collect();
    let cols = |a: &[i32; 8]| {
        a.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for s in STRUCTS {
        let (dty, prefix) = match s.name.rsplit_once('.') {
            Some((parent, field)) if names.contains(&parent) && !field.contains('/') => {
                (parent.to_string(), format!("{field}."))
            }
            _ => (s.name.to_string(), String::new()),
        };
        if prefix.is_empty() {
            let mut size = s.size;
            for (c, b) in bins.iter().enumerate() {
                if let Some(n) = b.dwarf().unwrap().size_of(&dty) {
                    size[c] = n as i32;
                }
            }
            if size != s.size {
                sizes += &format!("    ({:?}, [{}]),\n", s.name, cols(&size));
            }
        }
        for f in s.fields {
            let path = format!("{prefix}{}", f.name);
            let (mut off, mut stride) = (f.off, f.elem.map(|e| e.1));
            for (c, b) in bins.iter().enumerate() {
                let d = b.dwarf().unwrap();
                if d.size_of(&dty).is_none() {
                    continue; // not in this binary: keep amd64's
                }
                // Pseudo-types' members are relative to their field.
                let base = match prefix.strip_suffix('.') {
                    Some(field) => d.offset_of(&dty, field),
                    None => Some(0),
                };
                off[c] = d
                    .offset_of(&dty, &path)
                    .zip(base)
                    .map_or(-1, |(o, b)| (o - b) as i32);
                if let Some(st) = stride.as_mut().filter(|st| st[c] >= 0) {
                    if let (Some(sz), Some(n)) = (
                        LayoutSource::field_size(d, &dty, &path),
                        LayoutSource::array_len(d, &dty, &path, 0),
                    ) {
                        st[c] = (sz / n.max(1)) as i32;
                    }
                }
            }
            if off != f.off {
                fields += &format!("    ({:?}, {:?}, [{}]),\n", s.name, f.name, cols(&off));
            }
            if let (Some(st), Some(e)) = (stride, f.elem) {
                if st != e.1 {
                    elems += &format!("    ({:?}, {:?}, [{}]),\n", s.name, f.name, cols(&st));
                }
            }
        }
    }
    let out = format!(
        "//! GENERATED by tests/arm64.rs (`cargo test --test arm64 gen_arm64_tables\n\
         //! -- --ignored`) from the DWARF of arm64 builds of every tested version:\n\
         //! the runtime layouts that differ from [`super::tables`] on arm64 (structs\n\
         //! holding `cpu.CacheLinePad`, 128 bytes there). Do not edit.\n\n\
         /// (type, field, offset per version column; -1: no such field).\n\
         pub static FIELDS: &[(&str, &str, [i32; 8])] = &[\n{fields}];\n\n\
         /// (type, size per version column).\n\
         pub static SIZES: &[(&str, [i32; 8])] = &[\n{sizes}];\n\n\
         /// (type, array field, element size per version column).\n\
         pub static ELEMS: &[(&str, &str, [i32; 8])] = &[\n{elems}];\n"
    );
    std::fs::write(
        crate_root().join("src/goruntime/version/tables_arm64.rs"),
        out,
    )
    .unwrap();
}
