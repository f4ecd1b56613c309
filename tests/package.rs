//! What gospy ships as: the static binary (scripts/build-static.sh) and the
//! Debian package (scripts/build-deb.sh).
//!
//! - The static binary runs in an empty root: a chroot holding only it and
//!   the shipped sample analyzes the sample; with /proc bind-mounted (and
//!   unmounted on every path) it captures a fixture running outside, whose
//!   executable the chroot cannot see, so the capture embeds it.
//! - The .deb: `dpkg-deb --info` (name, version, architecture, no Depends
//!   for a static binary), `--contents` (/usr/bin/gospy, man pages, bash, zsh
//!   and fish completions), then its extracted binary analyzes the sample.
//!
//! The first build of the static binary is a full release build (several
//! minutes); later runs are incremental. Needs root for chroot and mount;
//! skipped otherwise, and a missing tool fails under CI=true.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn have(tool: &str) -> bool {
    let found = which(tool).is_some();
    if !found {
        assert!(!ci(), "{tool} is missing; CI requires it");
        report(&format!("SKIP: {tool} is missing"));
    }
    found
}

fn sh(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// dist/gospy-static, built once per test process by the script.
fn static_binary() -> PathBuf {
    static BUILT: OnceLock<Mutex<bool>> = OnceLock::new();
    let lock = BUILT.get_or_init(|| Mutex::new(false));
    let mut built = lock.lock().unwrap_or_else(|e| e.into_inner());
    let path = crate_root().join("dist/gospy-static");
    if !*built {
        sh(
            Command::new("bash")
                .arg("scripts/build-static.sh")
                .current_dir(crate_root()),
            "scripts/build-static.sh",
        );
        *built = true;
    }
    path
}

fn sample() -> PathBuf {
    crate_root().join("samples/goroutines-go1.27.gss")
}

/// `mount --bind /proc DIR/proc`, unmounted when dropped (also on panic).
struct ProcMount(PathBuf);

impl ProcMount {
    fn new(root: &Path) -> ProcMount {
        let dir = root.join("proc");
        std::fs::create_dir_all(&dir).unwrap();
        sh(
            Command::new("mount").arg("--bind").arg("/proc").arg(&dir),
            "mount --bind /proc",
        );
        ProcMount(dir)
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still inside): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn static_binary_runs_in_an_empty_root() {
    if unsafe { libc::geteuid() } != 0 {
        report("SKIP: the empty-root test needs root (chroot, mount)");
        return;
    }
    if !(have("chroot") && have("mount") && have("readelf") && have("strip")) {
        return;
    }
    let bin = static_binary();
    let elf = sh(Command::new("readelf").args(["-lW"]).arg(&bin), "readelf");
    assert!(
        !text(&elf.stdout).contains("program interpreter"),
        "dist/gospy-static is dynamically linked"
    );
    let sections = sh(Command::new("readelf").arg("-SW").arg(&bin), "readelf -S");
    assert!(
        !text(&sections.stdout).contains(".debug_info"),
        "dist/gospy-static is not stripped"
    );

    // The root holds the binary and the sample, nothing else.
    let root = tempfile::Builder::new()
        .prefix("gospy-empty-root-")
        .tempdir()
        .unwrap();
    // cp(1), not fs::copy: a writable descriptor of ours inherited by a
    // concurrent test's fork would make exec fail with ETXTBSY.
    let st = std::process::Command::new("cp")
        .arg(&bin)
        .arg(root.path().join("gospy"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::copy(sample(), root.path().join("sample.gss")).unwrap();
    // The environment is cleared: nothing from the host leaks in.
    let chroot_bin = which("chroot").unwrap();
    let chroot = |args: &[&str]| -> Output {
        Command::new(&chroot_bin)
            .arg(root.path())
            .arg("/gospy")
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = chroot(&["analyze", "/sample.gss", "summary"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("main.busyLoop"),
        "{}",
        text(&out.stdout)
    );
    let out = chroot(&["analyze", "/sample.gss", "dump"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("goroutine "),
        "{}",
        text(&out.stdout)
    );

    // A capture from the empty root, of a target outside it.
    let Some(fixture) = try_build_fixture("goroutines", "1.27", false, "") else {
        return;
    };
    let fx = Fixture::start(&fixture);
    let pid = fx.pid.to_string();
    {
        let _proc = ProcMount::new(root.path());
        let out = chroot(&["capture", "--pid", &pid, "-o", "/snap.gss"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "capture from the empty root: {err}");
        // The fixture's path does not exist inside the root: embedded.
        assert!(err.contains("binary embedded because"), "{err}");
        let out = chroot(&["summary", "--pid", &pid]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("main.busyLoop"));
    }
    assert!(
        !root.path().join("proc/self").exists(),
        "/proc still mounted in the root"
    );
    let snap = root.path().join("snap.gss");
    let sum = gospy_ok(["analyze".as_ref(), snap.as_os_str(), "summary".as_ref()]);
    assert!(sum.contains("main.busyLoop"), "{sum}");
    report(&format!(
        "package: static binary ({} KiB) analyzes the sample and captures pid {pid} from an empty root",
        std::fs::metadata(&bin).unwrap().len() / 1024
    ));
}

#[test]
fn debian_package() {
    if !(have("dpkg-deb") && have("readelf") && have("strip")) {
        return;
    }
    static_binary();
    sh(
        Command::new("bash")
            .arg("scripts/build-deb.sh")
            .env("GOSPY_REUSE_STATIC", "1")
            .current_dir(crate_root()),
        "scripts/build-deb.sh",
    );
    let version = env!("CARGO_PKG_VERSION");
    let deb = crate_root().join(format!("dist/gospy_{version}-1_amd64.deb"));
    assert!(deb.is_file(), "{} is missing", deb.display());

    let info = text(
        &sh(
            Command::new("dpkg-deb").arg("--info").arg(&deb),
            "dpkg-deb --info",
        )
        .stdout,
    );
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{k}: ")))
            .map(str::to_string)
    };
    assert_eq!(field("Package").as_deref(), Some("gospy"), "{info}");
    assert_eq!(field("Version"), Some(format!("{version}-1")), "{info}");
    assert_eq!(field("Architecture").as_deref(), Some("amd64"), "{info}");
    // A static binary depends on nothing.
    assert!(
        field("Depends").is_none_or(|d| d.trim().is_empty()),
        "a static binary needs no Depends: {info}"
    );
    assert!(field("Maintainer").is_some(), "{info}");
    assert!(
        field("Description").is_some_and(|d| d.contains("Go")),
        "{info}"
    );

    let contents = text(
        &sh(
            Command::new("dpkg-deb").arg("--contents").arg(&deb),
            "dpkg-deb --contents",
        )
        .stdout,
    );
    let files: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for want in [
        "./usr/bin/gospy",
        "./usr/share/man/man1/gospy.1.gz",
        "./usr/share/man/man1/gospy-capture.1.gz",
        "./usr/share/man/man1/gospy-dump.1.gz",
        "./usr/share/bash-completion/completions/gospy",
        "./usr/share/zsh/vendor-completions/_gospy",
        "./usr/share/fish/vendor_completions.d/gospy.fish",
    ] {
        assert!(
            files.contains(&want),
            "{want} not in the package:\n{contents}"
        );
    }
    assert!(
        contents
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/gospy")),
        "{contents}"
    );

    let x = tempfile::tempdir().unwrap();
    sh(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(x.path()),
        "dpkg-deb -x",
    );
    let exe = x.path().join("usr/bin/gospy");
    let out = sh(
        Command::new(&exe)
            .arg("analyze")
            .arg(sample())
            .arg("summary"),
        "the packaged gospy on the sample",
    );
    assert!(text(&out.stdout).contains("main.busyLoop"));
    let out = sh(Command::new(&exe).arg("--version"), "gospy --version");
    assert!(text(&out.stdout).contains(version));
    // The man page is a real page of the real command line.
    let man = x.path().join("usr/share/man/man1/gospy-capture.1.gz");
    let page = {
        use std::io::Read;
        let mut s = String::new();
        flate2_read(&man).read_to_string(&mut s).unwrap();
        s
    };
    assert!(page.contains(".TH gospy-capture 1"), "{page}");
    assert!(page.contains("no\\-embed\\-binary"), "{page}");
    let bash =
        std::fs::read_to_string(x.path().join("usr/share/bash-completion/completions/gospy"))
            .unwrap();
    assert!(
        bash.contains("complete") && bash.contains("gospy"),
        "{bash}"
    );
    let fish = std::fs::read_to_string(
        x.path()
            .join("usr/share/fish/vendor_completions.d/gospy.fish"),
    )
    .unwrap();
    assert!(fish.contains("complete -c gospy"), "{fish}");
    report(&format!(
        "package: {} ({} KiB): {} files, runs after extraction",
        deb.file_name().unwrap().to_string_lossy(),
        std::fs::metadata(&deb).unwrap().len() / 1024,
        files.len()
    ));
}

/// A gzip reader (the man pages are compressed per Debian policy).
fn flate2_read(path: &Path) -> impl std::io::Read {
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
}
