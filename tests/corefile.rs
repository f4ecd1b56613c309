//! Core files: a core written by gdb's `gcore` of a running fixture must
//! analyze to the same dump as a gospy capture of that same process (ids,
//! states, frames, creators, labels), and a zstd-compressed copy of it too.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn analyze_json(file: &Path, bin: Option<&Path>, what: &[&str]) -> Value {
    let mut args: Vec<&std::ffi::OsStr> = vec!["analyze".as_ref(), file.as_os_str()];
    if let Some(b) = bin {
        args.push("--bin".as_ref());
        args.push(b.as_os_str());
    }
    args.extend(what.iter().map(std::ffi::OsStr::new));
    let out = gospy_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON: {e}\n{out}"))
}

/// Goroutines keyed by id, without what may change between the capture and
/// the core (wait times; where running/runnable goroutines were).
fn by_id(v: &Value) -> std::collections::BTreeMap<u64, Value> {
    let mut out = std::collections::BTreeMap::new();
    for g in v.as_array().expect("goroutine list") {
        let mut g = g.clone();
        let id = g["id"].as_u64().unwrap();
        let moving = matches!(g["status"].as_str(), Some("running" | "runnable"));
        let o = g.as_object_mut().unwrap();
        o.remove("wait_ns");
        o.remove("wait_minutes");
        if moving {
            o.retain(|k, _| k == "id" || k == "start_function" || k == "created_by");
        }
        out.insert(id, g);
    }
    out
}

fn core_matches_capture(version: &str, pie: bool, ldflags: &str) {
    if !have_gcore() {
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", version, pie, ldflags) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-core-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("snap.gss");
    let mut fx = Fixture::start(&bin);
    capture(fx.pid, &snap, &[]);
    let core = gcore(fx.pid, work.path());
    fx.kill();

    let from_snap = by_id(&analyze_json(&snap, None, &["dump", "--json", "--all"]));
    // The executable from the core's NT_FILE note (no --bin).
    let core_raw = analyze_json(&core, None, &["dump", "--json", "--all"]);
    let from_core = by_id(&core_raw);
    let what = format!("go {version} pie={pie} ldflags={ldflags:?}");
    assert_eq!(
        from_snap.keys().collect::<Vec<_>>(),
        from_core.keys().collect::<Vec<_>>(),
        "{what}: goroutine ids differ"
    );
    for (id, g) in &from_snap {
        assert_eq!(
            g, &from_core[id],
            "{what}: goroutine {id} differs between the capture and the core"
        );
    }
    // The busy goroutine: running, its frames from the core's registers.
    let busy = core_raw.as_array().unwrap().iter().any(|g| {
        g["status"] == "running"
            && g["frames"]
                .as_array()
                .is_some_and(|f| f.iter().take(4).any(|f| f["function"] == "main.busyLoop"))
    });
    assert!(busy, "{what}: no running main.busyLoop in the core's dump");

    // Summary from the core: same counts, no wait times (clock unknown).
    let s = analyze_json(&core, Some(&bin), &["summary", "--json"]);
    let s0 = analyze_json(&snap, None, &["summary", "--json"]);
    for k in [
        "go_version",
        "gomaxprocs",
        "goroutine_count",
        "goroutines_listed",
    ] {
        assert_eq!(s[k], s0[k], "{what}: summary {k}");
    }
    assert!(s["threads"]["total"].as_u64().unwrap() >= 2);
    assert!(s["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["wait_ns"].is_null()));

    // A zstd-compressed core (systemd-coredump) reads the same.
    let zst = work.path().join("core.zst");
    let data = std::fs::read(&core).unwrap();
    std::fs::remove_file(&core).unwrap();
    let z = zstd::stream::encode_all(&data[..], 1).unwrap();
    drop(data);
    std::fs::write(&zst, z).unwrap();
    let from_zst = by_id(&analyze_json(
        &zst,
        Some(&bin),
        &["dump", "--json", "--all"],
    ));
    assert!(from_zst == from_core, "{what}: zstd core differs");
    eprintln!(
        "{what}: {} goroutines identical in capture, core and zstd core",
        from_core.len()
    );
}

#[test]
fn core_matches_capture_go1_22() {
    core_matches_capture("1.22", false, "");
}

#[test]
fn core_matches_capture_go1_27_pie_stripped() {
    core_matches_capture("1.27", true, "-s -w");
}

#[test]
fn core_matches_capture_go1_19() {
    core_matches_capture("1.19", false, "");
}

/// Not a core, not a snapshot: a clean error.
#[test]
fn truncated_core_is_an_error_not_a_panic() {
    let work = tempfile::tempdir().unwrap();
    let p = work.path().join("bad.core");
    // ELF64 LE header, e_type = ET_CORE, x86-64, phoff beyond the end.
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[16] = 4;
    h[18] = 62;
    h[32] = 200;
    h[54] = 56;
    h[56] = 3;
    std::fs::write(&p, &h).unwrap();
    let out = gospy(["analyze".as_ref(), p.as_os_str(), "dump".as_ref()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(101),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `gospy convert` writes a core that gdb opens with every thread, and that
/// gospy itself analyzes to the snapshot's own dump.
fn convert_opens_in_gdb(version: &str, pie: bool) {
    let gdb_ok = Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !gdb_ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("gdb is not installed");
        }
        println!("SKIP: gdb not installed");
        return;
    }
    let Some(bin) = try_build_fixture("goroutines", version, pie, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-convert-test-")
        .tempdir()
        .unwrap();
    let snap = work.path().join("snap.gss");
    let core = work.path().join("snap.core");
    {
        let mut fx = Fixture::start(&bin);
        capture(fx.pid, &snap, &[]);
        fx.kill();
    }
    gospy_ok([
        "convert".as_ref(),
        snap.as_os_str(),
        "-o".as_ref(),
        core.as_os_str(),
    ]);
    let info: Value = serde_json::from_str(&gospy_ok([
        "info".as_ref(),
        snap.as_os_str(),
        "--json".as_ref(),
    ]))
    .unwrap();
    let nthreads = info["threads"].as_u64().unwrap() as usize;

    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "info threads"])
        .arg(&bin)
        .arg(&core)
        .stdin(Stdio::null())
        .output()
        .expect("running gdb");
    let text = String::from_utf8_lossy(&out.stdout);
    let lwps: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches(['*', ' ']);
            let mut it = l.split_whitespace();
            it.next()?.parse::<u32>().ok()?;
            (it.next()? == "LWP").then(|| it.next().map(str::to_string))?
        })
        .collect();
    assert_eq!(
        lwps.len(),
        nthreads,
        "go {version} pie={pie}: gdb shows {} threads, the snapshot has {nthreads}:\n{text}\n{}",
        lwps.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    // gdb resolved the threads' PCs to Go functions (PIE relocated right).
    assert!(text.contains(" runtime."), "{text}");

    // Round trip: the core analyzes like the snapshot.
    let a = by_id(&analyze_json(&snap, None, &["dump", "--json", "--all"]));
    let b = by_id(&analyze_json(
        &core,
        Some(&bin),
        &["dump", "--json", "--all"],
    ));
    assert!(
        a == b,
        "go {version} pie={pie}: converted core dumps differently"
    );
}

#[test]
fn convert_opens_in_gdb_go1_27_pie() {
    convert_opens_in_gdb("1.27", true);
}

#[test]
fn convert_opens_in_gdb_go1_19() {
    convert_opens_in_gdb("1.19", false);
}
