//! Acceptance test for `var` and `vars`: gospy's decoding of every global of
//! tests/fixtures/globals must equal what the program itself wrote with
//! encoding/json (ORACLE_DIR/globals.json), for every toolchain, PIE too,
//! and builds with the old map implementation on 1.24/1.25
//! (GOEXPERIMENT=noswissmap).
//!
//! Globals encoding/json rejects (complex numbers, channels, funcs,
//! unsafe.Pointer, the pointer cycle, maps with array or bool keys) are in
//! ORACLE_DIR/extra.json with the facts gospy must show instead: fmt's %v of
//! complex numbers and unsafe.Pointer, channel len/cap/buffered values,
//! function names (runtime.FuncForPC), map sizes.
//!
//! Comparison is `serde_json::Value` equality of the parsed documents (so
//! `80` and `80.0` differ: gospy must write numbers as encoding/json does).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use common::*;

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// `gospy analyze SNAP var NAME --json`.
fn var_json(snap: &Path, name: &str) -> Value {
    let out = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "var".as_ref(),
        name.as_ref(),
        "--json".as_ref(),
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("var {name} --json: {e}\n{out}"))
}

fn var_text(snap: &Path, name: &str) -> String {
    gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "var".as_ref(),
        name.as_ref(),
    ])
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        format!("{}... ({} chars)", &s[..400], s.len())
    } else {
        s
    }
}

/// Checks every global of the oracle against `var --json` (and the extra
/// facts for the ones encoding/json rejects); returns the problems.
fn check_globals(snap: &Path, oracle_dir: &Path) -> Vec<String> {
    let want = read_json(&oracle_dir.join("globals.json"));
    let extra = read_json(&oracle_dir.join("extra.json"));
    let want = want.as_object().expect("globals.json is an object");
    let extra = extra.as_object().expect("extra.json is an object");
    assert!(
        want.len() >= 60,
        "the fixture encoded only {} globals",
        want.len()
    );
    let mut problems = Vec::new();
    for (name, w) in want {
        let got = var_json(snap, name);
        if got["name"] != *name.as_str() || !got["type"].is_string() {
            problems.push(format!("{name}: bad name/type in {}", short(&got)));
        }
        if &got["value"] != w {
            problems.push(format!(
                "{name}:\n    gospy: {}\n    encoding/json: {}",
                short(&got["value"]),
                short(w)
            ));
        }
    }
    for (name, facts) in extra {
        let got = var_json(snap, name);
        let v = &got["value"];
        let mut checked = false;
        if let Some(f) = facts.get("fmt") {
            checked = true;
            if v != f {
                problems.push(format!("{name}: gospy {}, fmt %v {}", short(v), f));
            }
        }
        if let Some(c) = facts.get("chan") {
            checked = true;
            let ok = if c.is_null() {
                v.is_null()
            } else {
                v["len"] == c["len"]
                    && v["cap"] == c["cap"]
                    && v["values"] == c["values"]
                    && v["closed"] == Value::Bool(false)
            };
            if !ok {
                problems.push(format!("{name}: gospy {}, want chan {}", short(v), c));
            }
        }
        if let Some(f) = facts.get("func") {
            checked = true;
            let want = if f.as_str() == Some("") {
                Value::Null
            } else {
                f.clone()
            };
            if v != &want {
                problems.push(format!("{name}: gospy {}, want func {}", short(v), want));
            }
        }
        if let Some(n) = facts.get("len") {
            checked = true;
            let got_len = v.as_object().map(|o| o.len() as u64);
            if got_len != n.as_u64() {
                problems.push(format!("{name}: {got_len:?} entries, want {n}"));
            }
        }
        if let Some(vals) = facts.get("cycle") {
            checked = true;
            let text = var_text(snap, name);
            let vals: Vec<i64> = vals
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect();
            let ok =
                vals.iter().all(|x| text.contains(&format!("Val: {x}"))) && text.contains("cycle");
            if !ok || v.to_string().matches("\"cycle\"").count() != 1 {
                problems.push(format!(
                    "{name}: cycle {vals:?} not shown: {text} / {}",
                    short(v)
                ));
            }
        }
        if !checked {
            problems.push(format!(
                "{name}: no check for this global's extra facts {facts}"
            ));
        }
    }
    problems
}

/// `vars` lists every global the fixture wrote, with a type.
fn check_vars(snap: &Path, oracle_dir: &Path) -> Vec<String> {
    let out = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "vars".as_ref(),
        "^main[.]G".as_ref(),
        "--json".as_ref(),
    ]);
    let list: Vec<Value> = serde_json::from_str(&out).expect("vars --json is a list");
    let types: BTreeMap<String, String> = list
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_string(),
                g["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for f in ["globals.json", "extra.json"] {
        let v = read_json(&oracle_dir.join(f));
        names.extend(v.as_object().unwrap().keys().cloned());
    }
    for n in &names {
        match types.get(n) {
            Some(t) if !t.is_empty() => {}
            _ => problems.push(format!("vars does not list {n} with a type")),
        }
    }
    if types.len() != names.len() {
        problems.push(format!(
            "vars '^main[.]G' lists {} globals, the fixture has {}",
            types.len(),
            names.len()
        ));
    }
    // Text form: one line per global, name then type.
    let text = gospy_ok([
        "analyze".as_ref(),
        snap.as_os_str(),
        "vars".as_ref(),
        "^main[.]GConfig$".as_ref(),
    ]);
    if text.split_whitespace().collect::<Vec<_>>() != ["main.GConfig", "main.Config"] {
        problems.push(format!("vars text: {text:?}"));
    }
    problems
}

/// Builds the fixture with GOEXPERIMENT set (build_fixture clears it).
fn build_with_experiment(version: &str, experiment: &str) -> Option<PathBuf> {
    let (full, go) = toolchain_version(version)?;
    let src = crate_root().join("tests/fixtures/globals/main.go");
    let dir = target_dir()
        .join("gospy-fixtures")
        .join(format!("globals-{full}-{experiment}"));
    let out = dir.join("globals");
    let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if fresh(&out).is_some() && fresh(&out) >= fresh(&src) {
        return Some(out);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".globals.{}", std::process::id()));
    let cache = cache_dir();
    let st = Command::new(&go)
        .args(["build", "-trimpath", "-o"])
        .arg(&tmp)
        .arg("main.go")
        .current_dir(src.parent().unwrap())
        .env("GOEXPERIMENT", experiment)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .env("GOCACHE", cache.join("go-build"))
        .env("GOPATH", cache.join("gopath"))
        .env("CGO_ENABLED", "0")
        .env("GOWORK", "off")
        .env("GOENV", "off")
        .env("GOPROXY", "off")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "building globals with GOEXPERIMENT={experiment}"
    );
    std::fs::rename(&tmp, &out).unwrap();
    Some(out)
}

fn var_matches_json(version: &str, pie: bool, experiment: Option<&str>) {
    let binary = match experiment {
        Some(e) => build_with_experiment(version, e),
        None => try_build_fixture("globals", version, pie, ""),
    };
    let Some(binary) = binary else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-var-test-")
        .tempdir()
        .unwrap();
    let mut fx = Fixture::start(&binary);
    let snap = work.path().join("globals.gss");
    capture(fx.pid, &snap, &[]);
    fx.kill();
    let mut problems = check_globals(&snap, fx.dir.path());
    problems.extend(check_vars(&snap, fx.dir.path()));
    assert!(
        problems.is_empty(),
        "go {version} (pie={pie}, GOEXPERIMENT={experiment:?}): {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

macro_rules! var_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, exp = $exp:expr;)*) => {$(
        #[test]
        fn $name() {
            var_matches_json($version, $pie, $exp);
        }
    )*};
}

var_tests! {
    var_matches_json_go1_19: "1.19", pie = false, exp = None;
    var_matches_json_go1_21: "1.21", pie = false, exp = None;
    var_matches_json_go1_22: "1.22", pie = false, exp = None;
    var_matches_json_go1_23: "1.23", pie = false, exp = None;
    var_matches_json_go1_24: "1.24", pie = false, exp = None;
    var_matches_json_go1_25: "1.25", pie = false, exp = None;
    var_matches_json_go1_26: "1.26", pie = false, exp = None;
    var_matches_json_go1_27: "1.27", pie = false, exp = None;
    var_matches_json_go1_19_pie: "1.19", pie = true, exp = None;
    var_matches_json_go1_27_pie: "1.27", pie = true, exp = None;
    var_matches_json_go1_24_noswissmap: "1.24", pie = false, exp = Some("noswissmap");
    var_matches_json_go1_25_noswissmap: "1.25", pie = false, exp = Some("noswissmap");
}

/// With `--var-budget 0` nothing behind a pointer is captured: `var` says
/// so and how to get it; `--var NAME` then guarantees that global's full
/// value, and `--full` everything. Also the live `gospy var --pid`.
fn not_captured_then_var(version: &str) {
    let Some(binary) = try_build_fixture("globals", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-var-budget-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let want = read_json(&fx.dir.path().join("globals.json"));
    let none = work.path().join("none.gss");
    let one = work.path().join("one.gss");
    let full = work.path().join("full.gss");
    capture(fx.pid, &none, &["--var-budget", "0"]);
    capture(
        fx.pid,
        &one,
        &[
            "--var-budget",
            "0",
            "--var",
            "main.GBigMap",
            "--var",
            "main.GConfig",
        ],
    );
    capture(fx.pid, &full, &["--full"]);
    let pid = fx.pid.to_string();
    let live = gospy_ok(["var", "main.GStructMap", "--pid", &pid, "--json"]);
    let live_var_text = gospy_ok(["var", "main.GShape", "--pid", &pid]);
    drop(fx);

    // Not captured: a marker with the hint, in text (stdout + note on
    // stderr) and JSON.
    let out = gospy([
        "analyze".as_ref(),
        none.as_os_str(),
        "var".as_ref(),
        "main.GBigMap".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "var on a budget-0 snapshot must not fail"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("main.GBigMap map[string]int = <not captured:")
            && stdout.contains("--var"),
        "text: {stdout}"
    );
    assert!(
        stderr.contains("not captured") && stderr.contains("--var main.GBigMap"),
        "note: {stderr}"
    );
    let j = var_json(&none, "main.GBigMap");
    assert_eq!(j["value"]["$gospy"], "not captured", "{j}");
    assert!(
        j["value"]["hint"].as_str().unwrap().contains("--var"),
        "{j}"
    );
    // Scalars in .data/.bss are always there.
    assert_eq!(var_json(&none, "main.GInt")["value"], want["main.GInt"]);

    // --var: that global's full value, without any budget.
    for name in ["main.GBigMap", "main.GConfig"] {
        assert_eq!(var_json(&one, name)["value"], want[name], "--var {name}");
    }
    assert_eq!(
        var_json(&one, "main.GStructMap")["value"]["$gospy"],
        "not captured"
    );

    // --full: everything.
    for name in ["main.GBigMap", "main.GStructMap", "main.GAnyNested"] {
        assert_eq!(var_json(&full, name)["value"], want[name], "--full {name}");
    }

    // Live.
    let live: Value = serde_json::from_str(&live).unwrap();
    assert_eq!(live["value"], want["main.GStructMap"], "live var");
    assert_eq!(
        live_var_text.trim(),
        "main.GShape main.Shape = main.Rect{W: 3, H: 4}"
    );
}

#[test]
fn var_not_captured_then_var_go1_19() {
    not_captured_then_var("1.19");
}

#[test]
fn var_not_captured_then_var_go1_27() {
    not_captured_then_var("1.27");
}

/// Text rendering of a few globals, exactly.
#[test]
fn var_text_rendering() {
    let Some(binary) = try_build_fixture("globals", "1.27", false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-var-text-")
        .tempdir()
        .unwrap();
    let fx = Fixture::start(&binary);
    let snap = work.path().join("s.gss");
    capture(fx.pid, &snap, &[]);
    drop(fx);
    let cases = [
        ("main.GInts", "main.GInts []int = []int{80, 443}"),
        ("main.GComplex128", "main.GComplex128 complex128 = (1+2i)"),
        ("main.GFloat32", "main.GFloat32 float32 = 0.1"),
        (
            "main.GInvalidUTF8",
            r#"main.GInvalidUTF8 string = "a\xffb\xe2\x82c""#,
        ),
        ("main.GNilPtr", "main.GNilPtr *main.Config = nil"),
        ("main.GAnyInt", "main.GAnyInt interface {} = int(42)"),
        ("main.GFunc", "main.GFunc func(int) int = main.double"),
        (
            "main.GSmallMap",
            r#"main.GSmallMap map[string]bool = map[string]bool{"maybe": true, "no": false, "yes": true}"#,
        ),
        (
            "main.GError",
            r#"main.GError error = &errors.errorString{s: "boom"}"#,
        ),
        (
            "main.GWrapper",
            r#"main.GWrapper main.Wrapper = main.Wrapper{Count: 3, Label: "three"}"#,
        ),
    ];
    let mut problems = Vec::new();
    for (name, want) in cases {
        let got = var_text(&snap, name);
        if got.trim_end() != want {
            problems.push(format!("{name}:\n  got  {}\n  want {want}", got.trim_end()));
        }
    }
    let chan = var_text(&snap, "main.GChanWrap");
    if !chan.contains(r#"{len: 4, cap: 4, buffered: ["w2", "w3", "w4", "w5"]}"#) {
        problems.push(format!("GChanWrap: {chan}"));
    }
    let big = var_text(&snap, "main.GBigMap");
    if !big.contains("... +1565 more") {
        problems.push(format!(
            "GBigMap is not capped at 100 entries: {}",
            &big[..200]
        ));
    }
    let out = gospy([
        "analyze".as_ref(),
        snap.as_os_str(),
        "var".as_ref(),
        "main.NoSuchThing".as_ref(),
    ]);
    if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("vars") {
        problems.push(format!(
            "unknown global: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
