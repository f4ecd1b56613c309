//! cgo, externally linked executables (gcc as the linker, dynamically linked
//! against libc, the g pointer in TLS through runtime.tlsg), unstripped and
//! with `-s -w`, for every toolchain.
//!
//! tests/fixtures/cgo parks goroutines of known shapes, one of them inside a C
//! function (status "syscall", its thread in libc) and one blocked in a Go
//! callback called from C (Go -> C -> Go), and writes its own
//! `runtime.Stack(buf, true)` oracle. For each build:
//! - `gospy capture` + `gospy analyze SNAP dump --json` (and `--all`,
//!   `summary --json`) must match the oracle exactly like tests/dump_vs_runtime.rs;
//! - so must the live `gospy dump --pid PID --json`;
//! - the stripped build, analyzed with no --bin, must give the same dump,
//!   dump --all and summary as the unstripped build (tests/stripped.rs's
//!   comparison).
//!
//! One fixture process per build; each variant is built once per toolchain.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::dumpcmp::*;
use common::*;

/// `go build` environment: cgo on (the harness defaults to CGO_ENABLED=0).
const CGO_ENV: &[(&str, &str)] = &[("CGO_ENABLED", "1")];
const PLAIN: &str = "-linkmode=external";
const STRIPPED: &str = "-linkmode=external -s -w";

/// What one run of a build gave.
struct Run {
    oracle: Oracle,
    /// Snapshot chosen for the comparison (the busy goroutine running).
    snap: PathBuf,
    dump: Vec<DumpGoroutine>,
    dump_all: Vec<DumpGoroutine>,
    /// The live `dump --pid --json` attempts (the first one that caught the
    /// busy goroutine running, or the last).
    live: Vec<DumpGoroutine>,
    json_dump: Value,
    json_all: Value,
    json_summary: Value,
}

fn analyze_value(snap: &Path, args: &[&str]) -> Value {
    let mut a: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), snap.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    let out = gospy_ok(&a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("gospy {args:?}: bad JSON: {e}\n{out}"))
}

fn busy_running(d: &[DumpGoroutine], busy: u64) -> bool {
    d.iter().any(|g| g.id == busy && g.status == "running")
}

/// Starts `bin`, captures it twice and dumps it live (up to three times, until
/// the busy goroutine is caught running), then kills it and analyzes.
fn run(bin: &Path, work: &Path, tag: &str) -> Run {
    let mut fx = Fixture::start(bin);
    let oracle = fx.oracle();
    let busy = oracle.meta.busy_goroutine_id;
    let snaps = [
        work.join(format!("{tag}-a.gss")),
        work.join(format!("{tag}-b.gss")),
    ];
    for s in &snaps {
        capture(fx.pid, s, &[]);
    }
    let pid = fx.pid.to_string();
    let mut live = Vec::new();
    for attempt in 0..3 {
        let out = gospy_ok(["dump", "--pid", &pid, "--json"]);
        live = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{tag}: live dump: bad JSON: {e}\n{out}"));
        if busy_running(&live, busy) {
            break;
        }
        eprintln!("note: {tag}: live dump attempt {attempt}: busy goroutine not running");
    }
    assert!(fx.is_running(), "{tag}: fixture died: {}", fx.stderr());
    fx.kill();

    let mut chosen = None;
    for s in &snaps {
        let d = dump(s, false);
        if busy_running(&d, busy) || s == snaps.last().unwrap() {
            chosen = Some((s.clone(), d));
            break;
        }
        eprintln!("note: {tag}: busy goroutine not running in {}", s.display());
    }
    let (snap, dump_default) = chosen.unwrap();
    Run {
        dump_all: dump(&snap, true),
        json_dump: analyze_value(&snap, &["dump", "--json"]),
        json_all: analyze_value(&snap, &["dump", "--json", "--all"]),
        json_summary: analyze_value(&snap, &["summary", "--json"]),
        dump: dump_default,
        live,
        oracle,
        snap,
    }
}

/// Problems of one run against its own oracle (snapshot and live dumps).
fn check_against_oracle(r: &Run, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    compare(&r.oracle, &r.dump, &mut problems);
    check_all(&r.dump, &r.dump_all, &mut problems);
    let mut live = Vec::new();
    compare(&r.oracle, &r.live, &mut live);
    problems.extend(live.into_iter().map(|p| format!("live dump --pid: {p}")));
    let s = summary(&r.snap);
    let meta = &r.oracle.meta;
    if s.go_version.trim_start_matches("go") != meta.go_version.trim_start_matches("go") {
        problems.push(format!(
            "summary go_version {:?}, runtime says {:?}",
            s.go_version, meta.go_version
        ));
    }
    if s.gomaxprocs != meta.gomaxprocs {
        problems.push(format!(
            "summary gomaxprocs {}, runtime says {}",
            s.gomaxprocs, meta.gomaxprocs
        ));
    }
    if s.goroutine_count != meta.num_goroutine {
        problems.push(format!(
            "summary goroutine_count {}, runtime.NumGoroutine() said {}",
            s.goroutine_count, meta.num_goroutine
        ));
    }
    // The shapes this fixture exists for are there (and compared above).
    let has = |f: &str, state: &str| {
        r.dump
            .iter()
            .any(|g| g.state == state && g.frames.iter().any(|fr| fr.function == f))
    };
    for (f, state) in [
        ("main._Cfunc_c_sleep_forever", "syscall"),
        ("main.blockInCallback", "chan receive"),
    ] {
        if !has(f, state) {
            problems.push(format!("no goroutine in {f} [{state}]"));
        }
    }
    problems
        .into_iter()
        .map(|p| format!("{what}: {p}"))
        .collect()
}

/// The build is what this test claims: dynamically linked by the external
/// linker, with (unstripped) or without (stripped) DWARF and symbols.
fn check_build(bin: &Path, stripped: bool) {
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    use object::{Object, ObjectSection};
    assert!(
        file.section_by_name(".interp").is_some() && file.section_by_name(".dynamic").is_some(),
        "{}: not dynamically linked",
        bin.display()
    );
    // gcc's crt files are there: the external linker was used.
    let comment = file
        .section_by_name(".comment")
        .and_then(|s| {
            s.data()
                .ok()
                .map(|d| String::from_utf8_lossy(d).into_owned())
        })
        .unwrap_or_default();
    assert!(
        comment.contains("GCC"),
        "{}: no GCC .comment (not externally linked?)",
        bin.display()
    );
    let b = gospy::binary::Binary::from_path(bin).unwrap();
    assert_eq!(b.dwarf().is_none(), stripped, "{}: DWARF", bin.display());
    assert_eq!(b.elf.has_symtab(), !stripped, "{}: symtab", bin.display());
    if !stripped {
        assert!(
            b.elf.symbol("runtime.tlsg").is_some(),
            "{}: no runtime.tlsg",
            bin.display()
        );
    }
}

fn cgo_works(version: &str) {
    let Some(plain) = try_build_fixture_env("cgo", version, false, PLAIN, CGO_ENV) else {
        return;
    };
    let stripped = try_build_fixture_env("cgo", version, false, STRIPPED, CGO_ENV).unwrap();
    check_build(&plain, false);
    check_build(&stripped, true);
    let work = tempfile::Builder::new()
        .prefix("gospy-cgo-test-")
        .tempdir()
        .unwrap();

    let mut problems = Vec::new();
    let r0 = run(&plain, work.path(), "unstripped");
    problems.extend(check_against_oracle(&r0, "unstripped"));
    let what = format!("go {version} cgo");
    // A goroutine caught between two states makes one run differ: run the
    // stripped side again once before failing (as tests/stripped.rs does).
    for attempt in 0..2 {
        let r1 = run(&stripped, work.path(), "stripped");
        let mut p1 = check_against_oracle(&r1, "stripped (no --bin)");
        if let Some(d) = differences(
            &what,
            (&r0.json_dump, &r0.json_all, &r0.json_summary),
            (&r1.json_dump, &r1.json_all, &r1.json_summary),
        ) {
            p1.push(format!("stripped vs unstripped: {d}"));
        }
        if p1.is_empty() || attempt == 1 {
            problems.extend(p1);
            break;
        }
        eprintln!("note: attempt {attempt}: {}", p1.join("\n"));
    }
    if !problems.is_empty() {
        panic!(
            "{what}: {} problems:\n\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    let n = normalize_goroutines(&r0.json_all).len();
    report(&format!(
        "{what}: unstripped and stripped (-s -w, no --bin) match the runtime's own dump \
         (snapshot and live), {n} goroutines with --all"
    ));
}

macro_rules! cgo_tests {
    ($($name:ident: $v:literal;)*) => {$(
        #[test]
        fn $name() {
            cgo_works($v);
        }
    )*};
}

cgo_tests! {
    cgo_go1_19: "1.19";
    cgo_go1_21: "1.21";
    cgo_go1_22: "1.22";
    cgo_go1_23: "1.23";
    cgo_go1_24: "1.24";
    cgo_go1_25: "1.25";
    cgo_go1_26: "1.26";
    cgo_go1_27: "1.27";
}
