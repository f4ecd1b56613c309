//! `var` on stripped executables without --bin: the type of a global cannot be
//! recovered without DWARF, so gospy must say so in one line and exit non-zero
//! (never print a guess): with `-w` (symbols, no DWARF) it says where the
//! global is; with `-s -w` that nothing about globals is known. Both from a
//! snapshot (`analyze SNAP var`) and live (`var --pid`). The fix the message
//! suggests (--bin with the unstripped build) then works live.

mod common;

use common::*;

/// One short error line, a non-zero exit that is not a panic, nothing on stdout.
fn assert_one_line_error(out: &std::process::Output, what: &str, must_contain: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !out.status.success()
            && out.status.code() != Some(101)
            && !stderr.contains("panicked")
            && out.stdout.is_empty()
            && lines.len() == 1,
        "{what}: want a non-zero exit and one error line; got {}\nstdout:\n{}\nstderr:\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    for m in must_contain {
        assert!(stderr.contains(m), "{what}: {m:?} not in {stderr:?}");
    }
}

fn stripped_var(version: &str) {
    let Some(unstripped) = try_build_fixture("globals", version, false, "") else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("gospy-stripped-var-")
        .tempdir()
        .unwrap();
    for (flags, want) in [
        (
            "-w",
            &["main.GInt", "type cannot be recovered", "8 bytes", "--bin"][..],
        ),
        (
            "-s -w",
            &["main.GInt", "neither DWARF nor a symbol table", "--bin"][..],
        ),
    ] {
        let bin = build_fixture("globals", version, false, flags);
        let what = format!("go {version} {flags}");
        let fx = Fixture::start(&bin);
        let snap = work.path().join("snap.gss");
        capture(fx.pid, &snap, &[]);
        let pid = fx.pid.to_string();
        let live = gospy(["var", "main.GInt", "--pid", &pid]);
        assert_one_line_error(&live, &format!("{what}: live var"), want);
        let out = gospy([
            "analyze".as_ref(),
            snap.as_os_str(),
            "var".as_ref(),
            "main.GInt".as_ref(),
        ]);
        assert_one_line_error(&out, &format!("{what}: analyze var"), want);
        let out = gospy([
            "analyze".as_ref(),
            snap.as_os_str(),
            "var".as_ref(),
            "main.noSuchGlobal".as_ref(),
        ]);
        assert_one_line_error(
            &out,
            &format!("{what}: analyze var of a missing global"),
            &["main.noSuchGlobal", "--bin"],
        );
        if flags == "-s -w" {
            // The suggested fix: the unstripped twin, live.
            let got = gospy_ok([
                "var".as_ref(),
                "main.GInt".as_ref(),
                "--pid".as_ref(),
                pid.as_ref(),
                "--bin".as_ref(),
                unstripped.as_os_str(),
                "--json".as_ref(),
            ]);
            let v: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert!(
                got.contains("-42"),
                "{what}: var --bin UNSTRIPPED main.GInt: {v}"
            );
        }
        drop(fx);
    }
    report(&format!(
        "go {version}: var on -w / -s -w builds without --bin: one clear line, non-zero exit"
    ));
}

#[test]
fn stripped_var_go1_19() {
    stripped_var("1.19");
}

#[test]
fn stripped_var_go1_27() {
    stripped_var("1.27");
}
