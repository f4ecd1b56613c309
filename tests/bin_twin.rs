//! `--bin` with a stripped target: the goroutines fixture built with
//! `-ldflags='-s -w'` and analyzed live with `--bin` of the same build
//! unstripped gives the same dump as the unstripped target itself; `--bin`
//! of a different build (`-X main.buildTag=other`) is refused with a
//! one-line error and exit code 3.
//!
//! Go's build ids of the two builds differ (cmd/go hashes -ldflags into the
//! executable's build id: actionID(binary)/actionID(main.a)/contentID(main.a)/
//! contentID(binary)); only contentID(main.a), the third part, is equal, and
//! it is equal for the -X build too. The test checks exactly that with
//! `go tool buildid`, so gospy's twin check (src/binary/twin.rs) is needed.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn go_for(version: &str) -> std::path::PathBuf {
    toolchain(version).expect("toolchain")
}

fn buildid(go: &Path, bin: &Path) -> Vec<String> {
    let out = std::process::Command::new(go)
        .args(["tool", "buildid"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split('/')
        .map(str::to_string)
        .collect()
}

/// Goroutines minus what differs between two processes of the same program:
/// running/runnable goroutines' positions, wait times, M ids, goroutine ids,
/// argument values and blocked-on addresses (heap addresses). Sorted.
fn normalize(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for g in v.as_array().expect("goroutine list") {
        let mut g = g.clone();
        let status = g["status"].as_str().unwrap_or("").to_string();
        let o = g.as_object_mut().unwrap();
        for k in ["wait_ns", "wait_minutes", "m", "id", "waiting_on"] {
            o.remove(k);
        }
        if let Some(Value::Object(cb)) = o.get_mut("created_by") {
            cb.remove("goroutine");
        }
        if let Some(Value::Array(frames)) = o.get_mut("frames") {
            for f in frames {
                if let Some(f) = f.as_object_mut() {
                    f.remove("args");
                }
            }
        }
        if status == "running" || status == "runnable" {
            o.retain(|k, _| k == "start_function" || k == "created_by");
        }
        out.push(g);
    }
    out.sort_by_key(|g| g.to_string());
    out
}

fn live_dump(pid: u32, bin: Option<&Path>) -> Value {
    let pid = pid.to_string();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "dump".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "--json".as_ref(),
        "--all".as_ref(),
    ];
    if let Some(b) = bin {
        args.push("--bin".as_ref());
        args.push(b.as_os_str());
    }
    serde_json::from_str(&gospy_ok(&args)).unwrap()
}

fn twin(version: &str) {
    let Some(full) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let stripped = build_fixture("goroutines", version, false, "-s -w");
    let other = build_fixture("goroutines", version, false, "-X main.buildTag=other");
    let go = go_for(version);
    let (idf, ids, ido) = (
        buildid(&go, &full),
        buildid(&go, &stripped),
        buildid(&go, &other),
    );
    assert_eq!(idf.len(), 4, "{idf:?}");
    assert_ne!(idf, ids, "-s -w changes Go's build id");
    assert_eq!(
        idf[2], ids[2],
        "contentID(main.a) is the same: {idf:?} {ids:?}"
    );
    assert_eq!(idf[2], ido[2], "...and for -X builds too: {idf:?} {ido:?}");

    let fx_full = Fixture::start(&full);
    let fx_stripped = Fixture::start(&stripped);
    let want = normalize(&live_dump(fx_full.pid, None));
    let got = normalize(&live_dump(fx_stripped.pid, Some(&full)));
    assert!(want.len() > 20, "too few goroutines: {}", want.len());
    if want != got {
        let first = want
            .iter()
            .zip(&got)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("unstripped: {a}\n--bin:      {b}"))
            .unwrap_or_else(|| format!("{} vs {} goroutines", want.len(), got.len()));
        panic!(
            "go {version}: stripped target with --bin differs from the unstripped target:\n{first}"
        );
    }

    // A different build: one clear line, exit code 3.
    let pid = fx_stripped.pid.to_string();
    let out = gospy([
        "dump".as_ref(),
        "--pid".as_ref(),
        pid.as_ref(),
        "--bin".as_ref(),
        other.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("build id mismatch"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bin_twin_go1_19() {
    twin("1.19");
}

#[test]
fn bin_twin_go1_22() {
    twin("1.22");
}

#[test]
fn bin_twin_go1_27() {
    twin("1.27");
}
