//! pprof labels in goroutine headers, exactly when the target's runtime
//! prints them, and unstarted goroutines.
//!
//! Go 1.27 prints labels (` {k: v}` after the brackets) when its
//! `tracebacklabels` setting is 1: the default, except for a module whose
//! go.mod says an older go version (DefaultGODEBUG has tracebacklabels=0)
//! or when GODEBUG sets it. Go 1.26 prints them (` labels:{"k": "v"}`
//! inside the brackets) only with GODEBUG=tracebacklabels=1. gospy reads
//! the setting from the target's memory.
//!
//! tests/fixtures/labels is built as a module (a go.mod with a chosen go
//! line, in a directory of its own), started, captured; its own
//! `runtime.Stack(buf, true)` (stack.txt) must equal gospy's dump byte for
//! byte, but for main's frames (main is running: it spins so that its last
//! goroutine never starts).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// Builds tests/fixtures/labels as module `fixture` whose go.mod says `go
/// GOMOD`, with toolchain `version`; None (SKIP) when it is not installed.
fn build_labels(version: &str, gomod: &str, pie: bool, ldflags: &str) -> Option<PathBuf> {
    let (full, go) = toolchain_version(version)?;
    let src = crate_root().join("tests/fixtures/labels/main.go");
    let mut name = format!("labels-{full}-gomod{gomod}");
    if pie {
        name.push_str("-pie");
    }
    if !ldflags.is_empty() {
        name.push_str("-stripped");
    }
    let dir = target_dir().join("gospy-fixtures").join(name);
    let out = dir.join("labels");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if matches!((mtime(&out), mtime(&src)), (Some(o), Some(s)) if o >= s) {
        return Some(out);
    }
    let module = dir.join("src");
    fs::create_dir_all(&module).unwrap();
    fs::copy(&src, module.join("main.go")).unwrap();
    fs::write(
        module.join("go.mod"),
        format!("module fixture\n\ngo {gomod}\n"),
    )
    .unwrap();
    let tmp = dir.join(format!(".labels.tmp.{}", std::process::id()));
    let cache = cache_dir();
    let mut cmd = Command::new(&go);
    cmd.arg("build").arg("-trimpath");
    if pie {
        cmd.arg("-buildmode=pie");
    }
    if !ldflags.is_empty() {
        cmd.arg(format!("-ldflags={ldflags}"));
    }
    cmd.arg("-o")
        .arg(&tmp)
        .arg(".")
        .current_dir(&module)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .env("GOCACHE", cache.join("go-build"))
        .env("GOPATH", cache.join("gopath"))
        .env("GOMODCACHE", cache.join("gopath/pkg/mod"))
        .env("CGO_ENABLED", "0")
        .env("GOWORK", "off")
        .env("GOENV", "off")
        .env("GOPROXY", "off");
    for var in [
        "GOROOT",
        "GOOS",
        "GOARCH",
        "GOEXPERIMENT",
        "GOAMD64",
        "GO111MODULE",
    ] {
        cmd.env_remove(var);
    }
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        o.status.success(),
        "building the labels fixture with go {full} (go.mod go {gomod}): {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    fs::rename(&tmp, &out).unwrap();
    Some(out)
}

/// Goroutine blocks ("goroutine N ...:" up to the blank line) by id.
fn blocks(text: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for b in text.split("\n\n") {
        let b = b.trim_matches('\n');
        let Some(rest) = b.strip_prefix("goroutine ") else {
            continue;
        };
        let id: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        out.insert(id.parse().unwrap(), b.to_string());
    }
    out
}

/// How the runtime shows labels in this run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Hidden,
    /// Go 1.27: ` {worker: plain}`.
    After,
    /// Go 1.26: ` labels:{"worker": "plain"}`.
    Inside,
}

struct Run {
    /// stack.txt and gospy's dump of the snapshot.
    oracle: String,
    dump: String,
    snap: PathBuf,
    _work: tempfile::TempDir,
    fx: Fixture,
}

fn start(binary: &Path, godebug: &str) -> Run {
    // asyncpreemptoff: main spins with GOMAXPROCS=1 and must not be
    // preempted (its last goroutine stays unstarted).
    let godebug = if godebug.is_empty() {
        "asyncpreemptoff=1".to_string()
    } else {
        format!("asyncpreemptoff=1,{godebug}")
    };
    let fx = Fixture::start_with_env(binary, &[("GODEBUG", &godebug)]);
    let oracle = fs::read_to_string(fx.dir.path().join("stack.txt")).unwrap();
    let work = tempfile::Builder::new()
        .prefix("gospy-labels-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("s.gss");
    capture(fx.pid, &snap, &[]);
    let dump = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "dump".as_ref()]);
    Run {
        oracle,
        dump,
        snap,
        _work: work,
        fx,
    }
}

/// The dump equals runtime.Stack but for main's frames; labels shown as
/// `want`.
fn check(what: &str, r: &Run, want: Want) {
    let (o, d) = (blocks(&r.oracle), blocks(&r.dump));
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        d.keys().collect::<Vec<_>>(),
        "{what}: goroutine ids differ\n--- runtime.Stack\n{}\n+++ gospy\n{}",
        r.oracle,
        r.dump
    );
    let mut problems = Vec::new();
    for (id, w) in &o {
        let g = &d[id];
        let (w, g) = if *id == 1 {
            // Running: its header only.
            (w.lines().next().unwrap(), g.lines().next().unwrap())
        } else {
            (w.as_str(), g.as_str())
        };
        if w != g {
            problems.push(format!(
                "goroutine {id}:\n--- runtime.Stack\n{w}\n+++ gospy dump\n{g}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: gospy's dump differs from the fixture's runtime.Stack:\n\n{}",
        problems.join("\n\n")
    );
    // The run is the variant it is meant to be.
    let shown = match want {
        Want::Hidden => None,
        Want::After => Some(" {worker: plain}:"),
        Want::Inside => Some(r#" labels:{"worker": "plain"}]:"#),
    };
    let plain = o
        .values()
        .find(|b| b.contains("main.park()") && b.contains("worker"));
    match shown {
        Some(s) => assert!(
            r.oracle.contains(s),
            "{what}: the runtime did not print labels as expected ({s:?}):\n{}",
            r.oracle
        ),
        None => assert!(
            plain.is_none() && !r.oracle.contains("worker"),
            "{what}: the runtime printed labels:\n{}",
            r.oracle
        ),
    }
}

fn case(
    what: &str,
    version: &str,
    gomod: &str,
    pie: bool,
    ldflags: &str,
    godebug: &str,
    want: Want,
) {
    let Some(bin) = build_labels(version, gomod, pie, ldflags) else {
        return;
    };
    let r = start(&bin, godebug);
    check(
        &format!("{what} (go {version}, go.mod go {gomod}, pie={pie}, ldflags={ldflags:?}, GODEBUG={godebug:?})"),
        &r,
        want,
    );
}

/// Acceptance: go.mod says go 1.19 → DefaultGODEBUG tracebacklabels=0.
#[test]
fn go1_27_gomod_1_19_no_labels() {
    case("old go.mod", "1.27", "1.19", false, "", "", Want::Hidden);
}

/// Acceptance: go.mod says go 1.27 → labels, quoted where needed.
#[test]
fn go1_27_gomod_1_27_labels() {
    case("new go.mod", "1.27", "1.27", false, "", "", Want::After);
}

/// GODEBUG overrides DefaultGODEBUG both ways: only memory knows it.
#[test]
fn go1_27_godebug_overrides() {
    case(
        "GODEBUG=0",
        "1.27",
        "1.27",
        false,
        "",
        "tracebacklabels=0",
        Want::Hidden,
    );
    case(
        "GODEBUG=1",
        "1.27",
        "1.19",
        false,
        "",
        "tracebacklabels=1",
        Want::After,
    );
}

/// Without symbols or DWARF, in a PIE: the setting is found through
/// runtime.dbgvars in the data segment.
#[test]
fn go1_27_stripped_pie() {
    case(
        "stripped PIE",
        "1.27",
        "1.19",
        true,
        "-s -w",
        "",
        Want::Hidden,
    );
    case(
        "stripped PIE",
        "1.27",
        "1.19",
        true,
        "-s -w",
        "tracebacklabels=1",
        Want::After,
    );
}

/// Go 1.26: off by default, inside the brackets when on.
#[test]
fn go1_26_labels_inside_brackets() {
    case("1.26 default", "1.26", "1.26", false, "", "", Want::Hidden);
    case(
        "1.26 on",
        "1.26",
        "1.26",
        false,
        "",
        "tracebacklabels=1",
        Want::Inside,
    );
}

/// Before 1.26 the runtime never prints labels.
#[test]
fn older_versions_no_labels() {
    case("1.25", "1.25", "1.25", false, "", "", Want::Hidden);
    case("1.21", "1.21", "1.21", false, "", "", Want::Hidden);
    case("1.19", "1.19", "1.19", false, "", "", Want::Hidden);
}

/// `--labels` forces them where the runtime would not; live too.
#[test]
fn labels_flag_forces() {
    let Some(bin) = build_labels("1.27", "1.19", false, "") else {
        return;
    };
    let r = start(&bin, "");
    let forced = gospy_ok([
        "analyze".as_ref(),
        r.snap.as_os_str(),
        "dump".as_ref(),
        "--labels".as_ref(),
    ]);
    for want in [
        " [chan receive] {worker: plain}:",
        r#" [chan receive] {span: "a b/c", worker: quoted}:"#,
        r#" [chan receive] {"caf\u00e9": "\u2603 \U0001d11e", "k\"q": "line\nbreak\ttab\\"}:"#,
        r#" [chan receive] {ctl: "\x01\u007f", empty: }:"#,
        " [chan receive] {parent: p}:",
    ] {
        assert!(
            forced.contains(want),
            "dump --labels lacks {want:?}:\n{forced}"
        );
    }
    let live = gospy_ok(["dump", "--pid", &r.fx.pid.to_string()]);
    assert!(
        !live.contains("worker"),
        "live dump shows labels the runtime does not print:\n{live}"
    );
}

/// An unstarted goroutine (`go parkWith(2, ...)` that never ran): dump
/// keeps the wrapper the runtime prints; summary and top name the wrapped
/// function, as for the started `go parkWith(1, ...)`.
#[test]
fn unstarted_goroutine_start_function() {
    for version in ["1.21", "1.24", "1.27"] {
        let Some(bin) = build_labels(version, version, false, "") else {
            continue;
        };
        let r = start(&bin, "");
        let o = blocks(&r.oracle);
        let (&id, block) = o
            .iter()
            .find(|(_, b)| b.contains("[runnable]"))
            .unwrap_or_else(|| panic!("go {version}: no unstarted goroutine:\n{}", r.oracle));
        // The wrapper: main.main.gowrapN (1.22+), main.main.funcN (1.21).
        assert!(
            block.contains("\nmain.main.") && !block.contains("main.parkWith("),
            "go {version}: the runtime prints no wrapper:\n{block}"
        );
        let d = blocks(&r.dump);
        assert_eq!(
            d.get(&id),
            Some(block),
            "go {version}: dump of goroutine {id}"
        );

        let s: serde_json::Value = serde_json::from_str(&gospy_ok([
            "analyze".as_ref(),
            r.snap.as_os_str(),
            "summary".as_ref(),
            "--json".as_ref(),
        ]))
        .unwrap();
        let start_of = |id: u64| -> String {
            s["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["id"] == id)
                .and_then(|g| g["start_function"].as_str())
                .unwrap_or_else(|| panic!("go {version}: goroutine {id} not in summary: {s:#}"))
                .to_string()
        };
        assert_eq!(start_of(id), "main.parkWith", "go {version}: unstarted");
        let started = o
            .iter()
            .find(|(_, b)| b.contains("main.parkWith(") && b.contains("[chan receive"))
            .map(|(&id, _)| id)
            .unwrap();
        assert_eq!(start_of(started), "main.parkWith", "go {version}: started");

        let top: serde_json::Value = serde_json::from_str(&gospy_ok([
            "analyze".as_ref(),
            r.snap.as_os_str(),
            "top".as_ref(),
            "--by".as_ref(),
            "start".as_ref(),
            "--json".as_ref(),
        ]))
        .unwrap();
        let group = top
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == "main.parkWith")
            .unwrap_or_else(|| panic!("go {version}: no main.parkWith group: {top:#}"));
        assert_eq!(group["count"], 2, "go {version}: {top:#}");
        assert!(
            !top.to_string().contains("gowrap") && !top.to_string().contains("main.main.func5"),
            "go {version}: top groups by a wrapper: {top:#}"
        );
    }
}

/// The setting's address found without symbols (through runtime.dbgvars)
/// is inside `runtime.debug` per the symbol table, on every version that
/// has the setting, PIE or not; older versions have no such entry.
#[test]
fn tracebacklabels_address_without_symbols() {
    use gospy::binary::Binary;
    use gospy::goruntime::version::godebug;
    for (version, pie) in [
        ("1.26", false),
        ("1.27", false),
        ("1.27", true),
        ("1.25", false),
    ] {
        let Some(path) = try_build_fixture("goroutines", version, pie, "") else {
            continue;
        };
        let bin = Binary::from_path(&path).expect("load fixture");
        let found = godebug::dbgvar_atomic_addr(&bin, godebug::TRACEBACK_LABELS);
        if !godebug::has_traceback_labels(bin.go) {
            assert_eq!(found, None, "go {version}: no tracebacklabels before 1.26");
            continue;
        }
        let (debug, size) = bin.elf.symbol("runtime.debug").expect("runtime.debug");
        let a = found.unwrap_or_else(|| panic!("go {version} pie={pie}: not found"));
        assert!(
            a >= debug && a + 4 <= debug + size,
            "go {version} pie={pie}: {a:#x} outside runtime.debug [{debug:#x}, +{size:#x})"
        );
        // Other settings are found the same way (and are elsewhere).
        let panicnil = godebug::dbgvar_atomic_addr(&bin, "panicnil").expect("panicnil");
        assert!(panicnil != a && panicnil >= debug && panicnil < debug + size);
    }
}

/// Live commands read the setting from memory too: GODEBUG turns labels on
/// for a module whose DefaultGODEBUG turns them off.
#[test]
fn live_dump_reads_the_setting() {
    let Some(bin) = build_labels("1.27", "1.19", false, "") else {
        return;
    };
    let r = start(&bin, "tracebacklabels=1");
    let live = gospy_ok(["dump", "--pid", &r.fx.pid.to_string()]);
    assert!(
        live.contains(" [chan receive] {worker: plain}:"),
        "live dump without the labels the runtime prints:\n{live}"
    );
    assert!(r.oracle.contains(" [chan receive] {worker: plain}:"));
}
