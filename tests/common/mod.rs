//! Shared helpers for gospy's integration tests: Go toolchains, fixture
//! builds, running fixtures, parsing the Go runtime's own traceback text (the
//! oracle the fixtures write), and running the gospy binary.
//!
//! Included by each integration test with `mod common;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

pub mod dumpcmp;
pub mod owners;
pub mod specials;
pub mod tmux;

/// The crate root (where Cargo.toml is).
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// Go toolchains
// ---------------------------------------------------------------------------

/// `(version, path to the go binary)` for every installed toolchain, from
/// `scripts/install-go-toolchains.sh` (run once per test process).
pub fn toolchains() -> &'static [(String, PathBuf)] {
    static TOOLCHAINS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    TOOLCHAINS.get_or_init(|| {
        let script = crate_root().join("scripts/install-go-toolchains.sh");
        assert!(script.is_file(), "{} is missing", script.display());
        let out = Command::new("bash")
            .arg("scripts/install-go-toolchains.sh")
            .current_dir(crate_root())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running scripts/install-go-toolchains.sh: {e}"));
        // The script exits non-zero when some toolchain is missing, but still
        // lists the ones it has.
        if !out.status.success() {
            eprintln!(
                "install-go-toolchains.sh: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        parse_toolchain_lines(&String::from_utf8_lossy(&out.stdout))
    })
}

fn parse_toolchain_lines(text: &str) -> Vec<(String, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let (v, p) = l.trim().split_once(' ')?;
            Some((v.to_string(), PathBuf::from(p.trim())))
        })
        .filter(|(_, p)| p.is_file())
        .collect()
}

/// Whether `version` ("1.22.10") is `prefix` ("1.22") or a patch of it.
fn version_matches(version: &str, prefix: &str) -> bool {
    let version = version.strip_prefix("go").unwrap_or(version);
    let prefix = prefix.strip_prefix("go").unwrap_or(prefix);
    version == prefix
        || version
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Full version ("1.22.10") and go binary of the installed toolchain matching
/// `version_prefix` ("1.22"), or None (and a SKIP line) when it is missing.
/// Panics instead when the environment variable CI is "true".
pub fn toolchain_version(version_prefix: &str) -> Option<(String, PathBuf)> {
    let found = toolchains()
        .iter()
        .find(|(v, _)| version_matches(v, version_prefix))
        .cloned();
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "go {version_prefix} is not installed (CI=true: every toolchain is required); \
                 run `bash scripts/install-go-toolchains.sh`"
            );
        }
        println!("SKIP: go {version_prefix} not installed");
    }
    found
}

/// Path of the go binary of the toolchain matching `version_prefix`; see
/// [`toolchain_version`].
pub fn toolchain(version_prefix: &str) -> Option<PathBuf> {
    toolchain_version(version_prefix).map(|(_, go)| go)
}

// ---------------------------------------------------------------------------
// Fixture builds
// ---------------------------------------------------------------------------

/// Cargo's target directory: CARGO_TARGET_DIR, else the one holding this
/// test executable (target/<profile>/deps/<test>), else <crate>/target.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            crate_root().join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if dir.join("CACHEDIR.TAG").exists() || dir.ends_with("target") {
                return dir.to_path_buf();
            }
        }
    }
    crate_root().join("target")
}

/// gospy's cache directory outside the checkout (~/.cache/gospy).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gospy")
}

/// Builds `tests/fixtures/NAME/main.go` with the toolchain matching
/// `go_version` into `<target>/gospy-fixtures/NAME-<version>[-pie][-<ldflags
/// hash>]/NAME` and returns the binary's path. Rebuilds only when main.go is
/// newer than the binary. Concurrent callers are safe: each builds into its
/// own temporary name and renames it into place (Go builds are reproducible).
///
/// Panics if the toolchain is missing or the build fails; use
/// [`try_build_fixture`] to skip instead.
pub fn build_fixture(name: &str, go_version: &str, pie: bool, extra_ldflags: &str) -> PathBuf {
    try_build_fixture(name, go_version, pie, extra_ldflags)
        .unwrap_or_else(|| panic!("go {go_version} is not installed"))
}

/// Like [`build_fixture`], but returns None (after printing "SKIP: ...") when
/// the toolchain is not installed and CI is not "true".
pub fn try_build_fixture(
    name: &str,
    go_version: &str,
    pie: bool,
    extra_ldflags: &str,
) -> Option<PathBuf> {
    try_build_fixture_env(name, go_version, pie, extra_ldflags, &[])
}

/// Like [`try_build_fixture`] with extra environment variables for `go build`
/// (e.g. `CGO_ENABLED=1`, which overrides the default `CGO_ENABLED=0`); they
/// are part of the output directory's name.
pub fn try_build_fixture_env(
    name: &str,
    go_version: &str,
    pie: bool,
    extra_ldflags: &str,
    build_env: &[(&str, &str)],
) -> Option<PathBuf> {
    let (version, go) = toolchain_version(go_version)?;
    let src_dir = crate_root().join("tests/fixtures").join(name);
    let src = src_dir.join("main.go");
    let mut dir_name = format!("{name}-{version}");
    if pie {
        dir_name.push_str("-pie");
    }
    if !extra_ldflags.is_empty() {
        dir_name.push_str(&format!("-{:08x}", fnv1a(extra_ldflags.as_bytes()) as u32));
    }
    if !build_env.is_empty() {
        let env: Vec<String> = build_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        dir_name.push_str(&format!(
            "-env{:08x}",
            fnv1a(env.join("\n").as_bytes()) as u32
        ));
    }
    let out_dir = target_dir().join("gospy-fixtures").join(dir_name);
    let out = out_dir.join(name);
    if is_up_to_date(&out, &src) {
        return Some(out);
    }
    fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("creating {}: {e}", out_dir.display()));
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let tmp = out_dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let cache = cache_dir();
    let mut cmd = Command::new(&go);
    cmd.arg("build").arg("-trimpath");
    if pie {
        cmd.arg("-buildmode=pie");
    }
    if !extra_ldflags.is_empty() {
        cmd.arg(format!("-ldflags={extra_ldflags}"));
    }
    cmd.arg("-o").arg(&tmp).arg("main.go");
    cmd.current_dir(&src_dir)
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
    for (k, v) in build_env {
        cmd.env(k, v);
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", go.display()));
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "building fixture {name} with go {version} (pie={pie}, ldflags={extra_ldflags:?}) failed: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&tmp, &out)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), out.display()));
    Some(out)
}

fn is_up_to_date(out: &Path, src: &Path) -> bool {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(out), mtime(src)) {
        (Some(o), Some(s)) => o >= s,
        _ => false,
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Running fixtures
// ---------------------------------------------------------------------------

/// How long a fixture may take to write its oracle.
pub const FIXTURE_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running fixture process. Its ORACLE_DIR is `dir` (a fresh temporary
/// directory that also holds the fixture's stdout.log and stderr.log). Dropping
/// it kills exactly this child (by pid) and reaps it.
///
/// The fixture is started with GOSPY_FIXTURE_PDEATHSIG=1: the kernel SIGKILLs
/// it when the *thread* that started it exits, so a test that dies without
/// unwinding leaves no spinning process. Start it on the thread that owns it.
pub struct Fixture {
    child: Child,
    pub pid: u32,
    pub dir: TempDir,
}

impl Fixture {
    /// Starts `binary ORACLE_DIR` and waits until it has written
    /// ORACLE_DIR/ready. Panics with the fixture's stderr if it exits or is
    /// not ready within [`FIXTURE_READY_TIMEOUT`].
    pub fn start(binary: &Path) -> Fixture {
        Fixture::start_with_env(binary, &[])
    }

    /// Like [`Fixture::start`] with extra environment variables.
    pub fn start_with_env(binary: &Path, env: &[(&str, &str)]) -> Fixture {
        Fixture::start_with_args(binary, &[], env)
    }

    /// Like [`Fixture::start`] with extra arguments (after ORACLE_DIR) and
    /// environment variables.
    pub fn start_with_args(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Fixture {
        Fixture::start_configured(binary, args, env, |_| {})
    }

    /// Like [`Fixture::start_with_args`]; `configure` may change the command
    /// last (working directory, `pre_exec`...).
    pub fn start_configured(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("gospy-oracle-")
            .tempdir()
            .expect("creating a temporary ORACLE_DIR");
        let log = |n: &str| {
            fs::File::create(dir.path().join(n)).unwrap_or_else(|e| panic!("creating {n}: {e}"))
        };
        let mut cmd = Command::new(binary);
        cmd.arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            // SIGKILL the fixture if this test thread dies without dropping it.
            .env("GOSPY_FIXTURE_PDEATHSIG", "1");
        // Settings that would change what the runtime prints or does.
        for var in ["GODEBUG", "GOTRACEBACK", "GOGC", "GOMEMLIMIT"] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        configure(&mut cmd);
        // A binary the test just copied can be briefly "busy" (ETXTBSY): a
        // process forked meanwhile by another test thread may still hold the
        // copy's write descriptor until it execs.
        let mut attempts = 0;
        let child = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("starting fixture {}: {e}", binary.display()),
            }
        };
        let mut fixture = Fixture {
            pid: child.id(),
            child,
            dir,
        };
        fixture.wait_ready(binary);
        fixture
    }

    fn wait_ready(&mut self, binary: &Path) {
        let ready = self.dir.path().join("ready");
        let start = Instant::now();
        loop {
            if ready.exists() {
                return;
            }
            match self.child.try_wait() {
                Ok(Some(status)) => panic!(
                    "fixture {} exited before writing its oracle ({status}); stderr:\n{}",
                    binary.display(),
                    self.stderr()
                ),
                Ok(None) => {}
                Err(e) => panic!("waiting for fixture {}: {e}", binary.display()),
            }
            if start.elapsed() > FIXTURE_READY_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "fixture {} (pid {}) not ready after {:?}; stderr:\n{}",
                    binary.display(),
                    self.pid,
                    FIXTURE_READY_TIMEOUT,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The fixture's stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits up to `timeout` for the fixture to exit by itself; its status,
    /// or None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the fixture (SIGKILL to its pid) and reaps it. The oracle files
    /// stay readable until the Fixture is dropped. Idempotent.
    pub fn kill(&mut self) {
        // std does not signal a child it has already reaped, so this can never
        // hit a recycled pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Reads and parses the oracle (stack.txt and meta.json).
    pub fn oracle(&self) -> Oracle {
        Oracle::read(self.dir.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.kill();
    }
}

/// ORACLE_DIR/meta.json.
#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    pub pid: u32,
    /// runtime.Version(), e.g. "go1.22.10".
    pub go_version: String,
    /// runtime.NumGoroutine() right after stack.txt was taken.
    pub num_goroutine: usize,
    pub gomaxprocs: usize,
    /// pprof labels by goroutine id.
    pub labels: BTreeMap<u64, BTreeMap<String, String>>,
    /// The goroutine spinning in main.busyLoop (runnable or running).
    pub busy_goroutine_id: u64,
    /// The goroutine that wrote the oracle (main, running at the time; later
    /// blocked in a channel receive in main.main).
    pub oracle_goroutine_id: u64,
    #[serde(default)]
    pub listen_addr: String,
    #[serde(default)]
    pub build_tag: String,
}

impl Meta {
    /// (major, minor) of go_version: "go1.22.10" → (1, 22).
    pub fn go_minor(&self) -> (u32, u32) {
        go_minor(&self.go_version)
    }
}

/// (major, minor) of a version string like "go1.22.10", "1.19" or
/// "go1.27rc1"; (0, 0) if unparsable.
pub fn go_minor(version: &str) -> (u32, u32) {
    let v = version.strip_prefix("go").unwrap_or(version);
    let mut parts = v.split('.');
    let num = |s: Option<&str>| -> u32 {
        s.map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
    };
    (num(parts.next()), num(parts.next()))
}

/// Everything a fixture wrote.
#[derive(Debug, Clone)]
pub struct Oracle {
    pub text: String,
    pub goroutines: Vec<OracleGoroutine>,
    pub meta: Meta,
}

impl Oracle {
    pub fn read(dir: &Path) -> Result<Oracle, String> {
        let read = |n: &str| {
            fs::read_to_string(dir.join(n))
                .map_err(|e| format!("reading {}: {e}", dir.join(n).display()))
        };
        let text = read("stack.txt")?;
        let meta: Meta = serde_json::from_str(&read("meta.json")?)
            .map_err(|e| format!("parsing meta.json: {e}"))?;
        let goroutines = parse_oracle(&text).map_err(|e| format!("parsing stack.txt: {e}"))?;
        Ok(Oracle {
            text,
            goroutines,
            meta,
        })
    }

    pub fn goroutine(&self, id: u64) -> Option<&OracleGoroutine> {
        self.goroutines.iter().find(|g| g.id == id)
    }

    /// The oracle's text block of goroutine `id` (for diffs).
    pub fn block(&self, id: u64) -> Option<&str> {
        let header = format!("goroutine {id} ");
        self.text
            .split("\n\n")
            .find(|b| b.trim_start().starts_with(&header))
            .map(str::trim)
    }
}

// ---------------------------------------------------------------------------
// Oracle parser: the text of runtime.Stack(buf, true), Go 1.19 – 1.27
// ---------------------------------------------------------------------------

/// One goroutine of a runtime traceback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OracleGoroutine {
    pub id: u64,
    /// The status text inside `[...]`, without ", N minutes", ", locked to
    /// thread", ", synctest bubble N" and Go 1.26's " labels:{...}"; flags
    /// like " (scan)" or " (durable)" stay.
    pub state: String,
    /// The ", N minutes" value (0 when absent).
    pub wait_minutes: u64,
    /// ", locked to thread".
    pub locked_to_thread: bool,
    /// pprof labels shown in the header: Go 1.27 `goroutine 7 [select] {k: v}:`
    /// (default on) and Go 1.26 `[select labels:{"k": "v"}]` (with
    /// GODEBUG=tracebacklabels=1). Empty when none are shown.
    pub labels: BTreeMap<String, String>,
    pub frames: Vec<OracleFrame>,
    /// Where frames were left out, if the runtime said so.
    pub elided: Option<Elision>,
    pub created_by: Option<OracleCreatedBy>,
    /// "goroutine running on other thread; stack unavailable".
    pub unavailable: bool,
}

/// One (logical) frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OracleFrame {
    /// The function name without the argument list, e.g. "main.(*T).run".
    pub function: String,
    /// The raw argument list between the parentheses ("..." when inlined).
    pub args: String,
    pub file: String,
    pub line: u32,
    /// Printed with "(...)" and without an offset: inlined into its caller.
    pub inlined: bool,
    /// The " +0x1f" value; None for inlined frames (and a pc at the entry).
    pub offset: Option<u64>,
}

/// "created by F [in goroutine N]" and its location.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OracleCreatedBy {
    pub function: String,
    /// The creating goroutine (" in goroutine N", Go 1.21+).
    pub goroutine: Option<u64>,
    pub file: String,
    pub line: u32,
    pub offset: Option<u64>,
}

/// Frames left out of a traceback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elision {
    /// Index into `frames` where the gap is (frames before it are the inner
    /// ones, frames from it on the outer ones).
    pub at: usize,
    /// How many were left out: "...51 frames elided..." (Go 1.21+); None for
    /// Go 1.19's "...additional frames elided..." at the end of the stack.
    pub count: Option<usize>,
}

/// Parses the text of `runtime.Stack(buf, true)` (or a crash / SIGQUIT dump
/// made of the same blocks). Lines that are not part of a goroutine block
/// before the first header are ignored; "[originating from goroutine N]"
/// ancestor sections (GODEBUG=tracebackancestors) are skipped.
pub fn parse_oracle(text: &str) -> Result<Vec<OracleGoroutine>, String> {
    let mut out: Vec<OracleGoroutine> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    // Inside an ancestor section of the current goroutine: skip frames.
    let mut in_ancestor = false;
    while i < lines.len() {
        let line = lines[i];
        let lineno = i + 1;
        i += 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("goroutine ") && !line.starts_with("goroutine running") {
            out.push(parse_header(line).map_err(|e| format!("line {lineno}: {e}: {line:?}"))?);
            in_ancestor = false;
            continue;
        }
        let Some(g) = out.last_mut() else {
            continue; // preamble (e.g. a panic message)
        };
        if line.starts_with("[originating from goroutine ") {
            in_ancestor = true;
            continue;
        }
        if let Some(tail) = line.strip_prefix('\t') {
            if tail.trim() == "goroutine running on other thread; stack unavailable" {
                g.unavailable = true;
                continue;
            }
            return Err(format!("line {lineno}: unexpected indented line: {line:?}"));
        }
        if line == "...additional frames elided..." {
            if !in_ancestor {
                g.elided = Some(Elision {
                    at: g.frames.len(),
                    count: None,
                });
            }
            continue;
        }
        if let Some(n) = line
            .strip_prefix("...")
            .and_then(|s| s.strip_suffix(" frames elided..."))
        {
            let count = n
                .parse()
                .map_err(|_| format!("line {lineno}: bad elision count: {line:?}"))?;
            if !in_ancestor {
                g.elided = Some(Elision {
                    at: g.frames.len(),
                    count: Some(count),
                });
            }
            continue;
        }
        if line.starts_with("non-Go function at pc=") {
            continue; // cgo frame without a symbolizer
        }
        // A frame or "created by" line, followed by its tab-indented location.
        let loc_line = lines
            .get(i)
            .and_then(|l| l.strip_prefix('\t'))
            .ok_or_else(|| format!("line {lineno}: no location line after {line:?}"))?;
        i += 1;
        let (file, line_no, offset) = parse_location(loc_line)
            .map_err(|e| format!("line {}: {e}: {loc_line:?}", lineno + 1))?;
        if let Some(rest) = line.strip_prefix("created by ") {
            let (function, goroutine) = match rest.split_once(" in goroutine ") {
                Some((f, n)) => (
                    f.to_string(),
                    Some(
                        n.trim()
                            .parse()
                            .map_err(|_| format!("line {lineno}: bad goroutine id: {line:?}"))?,
                    ),
                ),
                None => (rest.trim().to_string(), None),
            };
            if !in_ancestor {
                g.created_by = Some(OracleCreatedBy {
                    function,
                    goroutine,
                    file,
                    line: line_no,
                    offset,
                });
            }
            continue;
        }
        let (function, args) =
            split_call(line).ok_or_else(|| format!("line {lineno}: not a frame: {line:?}"))?;
        if !in_ancestor {
            g.frames.push(OracleFrame {
                inlined: args == "..." && offset.is_none(),
                function,
                args,
                file,
                line: line_no,
                offset,
            });
        }
    }
    Ok(out)
}

/// "goroutine 7 [chan receive, 3 minutes, locked to thread]:" and variants:
/// " gp=0x.. m=N mp=0x.." (GOTRACEBACK=system, Go 1.22+), labels inside the
/// brackets (" labels:{...}", Go 1.26) or after them (" {k: v}", Go 1.27).
fn parse_header(line: &str) -> Result<OracleGoroutine, String> {
    let rest = line
        .strip_prefix("goroutine ")
        .ok_or("not a goroutine header")?;
    let id_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = rest[..id_end].parse().map_err(|_| "bad goroutine id")?;
    let open = rest.find(" [").ok_or("no '[' in header")?;
    let after = &rest[open + 2..];
    let close = find_unquoted(after, ']').ok_or("no ']' in header")?;
    let inner = &after[..close];
    let tail = after[close + 1..]
        .strip_suffix(':')
        .ok_or("header does not end with ':'")?
        .trim();

    let mut g = OracleGoroutine {
        id,
        ..Default::default()
    };
    // Go 1.26: "... labels:{"k": "v", ...}" is the last item inside [].
    let (inner, labels126) = match inner.find(" labels:{") {
        Some(p) => (&inner[..p], Some(&inner[p + " labels:".len()..])),
        None => (inner, None),
    };
    if let Some(l) = labels126 {
        g.labels = parse_labels(l)?;
    }
    if !tail.is_empty() {
        g.labels = parse_labels(tail)?;
    }
    let mut parts = inner.split(", ");
    g.state = parts.next().unwrap_or_default().to_string();
    for part in parts {
        if let Some(m) = part.strip_suffix(" minutes") {
            g.wait_minutes = m.parse().map_err(|_| format!("bad minutes {part:?}"))?;
        } else if part == "locked to thread" {
            g.locked_to_thread = true;
        } else if part.starts_with("synctest bubble ") {
            // Go 1.25+: the synctest bubble id.
        } else {
            return Err(format!("unknown header item {part:?}"));
        }
    }
    Ok(g)
}

/// Byte index of the first `target` outside double-quoted strings and braces.
fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let (mut in_quote, mut escaped, mut depth) = (false, false, 0usize);
    for (i, c) in s.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if c == target && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// "{k: v, "k 2": "v\n"}" → map. Keys and values are bare or Go-quoted.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let body = s
        .trim()
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| format!("bad labels {s:?}"))?;
    let mut map = BTreeMap::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, r) = label_token(rest)?;
        rest = r
            .strip_prefix(": ")
            .ok_or_else(|| format!("no ': ' after label key in {s:?}"))?;
        let (value, r) = label_token(rest)?;
        map.insert(key, value);
        rest = r.strip_prefix(", ").unwrap_or(r).trim_start();
        if !r.starts_with(", ") && !rest.is_empty() {
            return Err(format!("bad labels {s:?}"));
        }
    }
    Ok(map)
}

/// A bare (up to ':' / ',' ) or double-quoted token; returns it and the rest.
fn label_token(s: &str) -> Result<(String, &str), String> {
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((out, &q[i + 1..])),
                '\\' => {
                    let (_, e) = chars.next().ok_or("dangling backslash")?;
                    let hex =
                        |n: usize, chars: &mut std::str::CharIndices| -> Result<u32, String> {
                            let h: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                            u32::from_str_radix(&h, 16).map_err(|_| format!("bad escape \\{e}{h}"))
                        };
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '\\' | '"' => out.push(e),
                        // \xNN is a control character or a byte of invalid
                        // UTF-8 (which a String cannot hold).
                        'x' => out.push(char::from_u32(hex(2, &mut chars)?).unwrap_or('\u{fffd}')),
                        'u' => out.push(char::from_u32(hex(4, &mut chars)?).unwrap_or('\u{fffd}')),
                        'U' => out.push(char::from_u32(hex(8, &mut chars)?).unwrap_or('\u{fffd}')),
                        _ => return Err(format!("unknown escape \\{e}")),
                    }
                }
                _ => out.push(c),
            }
        }
        Err(format!("unterminated quoted label {s:?}"))
    } else {
        let end = s.find([':', ',']).unwrap_or(s.len());
        Ok((s[..end].to_string(), &s[end..]))
    }
}

/// "\t/path/file.go:42 +0x1f [fp=0x.. sp=0x.. pc=0x..]" → (file, 42, Some(0x1f)).
fn parse_location(s: &str) -> Result<(String, u32, Option<u64>), String> {
    let s = match s.find(" fp=") {
        Some(p) => &s[..p],
        None => s,
    };
    let (s, offset) = match s.rsplit_once(" +0x") {
        Some((loc, hex)) => (
            loc,
            Some(u64::from_str_radix(hex.trim(), 16).map_err(|_| "bad offset")?),
        ),
        None => (s, None),
    };
    let (file, line) = s.rsplit_once(':').ok_or("no ':line'")?;
    let line = line.trim().parse().map_err(|_| "bad line number")?;
    Ok((file.to_string(), line, offset))
}

/// "main.(*T).run(0x1, {0x2, 0x3})" → ("main.(*T).run", "0x1, {0x2, 0x3}").
/// Arguments never contain parentheses, so the list starts at the last '('.
fn split_call(line: &str) -> Option<(String, String)> {
    let body = line.strip_suffix(')')?;
    let open = body.rfind('(')?;
    if open == 0 {
        return None;
    }
    Some((body[..open].to_string(), body[open + 1..].to_string()))
}

/// Renders a goroutine back in the runtime's format (minus argument values),
/// for readable diffs.
pub fn render_oracle_goroutine(g: &OracleGoroutine) -> String {
    let mut s = format!("goroutine {} [{}", g.id, g.state);
    if g.wait_minutes > 0 {
        s += &format!(", {} minutes", g.wait_minutes);
    }
    if g.locked_to_thread {
        s += ", locked to thread";
    }
    s += "]";
    if !g.labels.is_empty() {
        s += &format!(" {:?}", g.labels);
    }
    s += ":\n";
    for (i, f) in g.frames.iter().enumerate() {
        if let Some(e) = g.elided.as_ref().filter(|e| e.at == i) {
            s += &format!(
                "...{} frames elided...\n",
                e.count.map_or("additional".into(), |c| c.to_string())
            );
        }
        s += &render_frame(&f.function, f.inlined, &f.file, f.line, f.offset);
    }
    if let Some(e) = g.elided.as_ref().filter(|e| e.at == g.frames.len()) {
        s += &format!(
            "...{} frames elided...\n",
            e.count.map_or("additional".into(), |c| c.to_string())
        );
    }
    if g.unavailable {
        s += "\tgoroutine running on other thread; stack unavailable\n";
    }
    if let Some(c) = &g.created_by {
        s += &render_created_by(&c.function, c.goroutine, &c.file, c.line);
    }
    s
}

/// One frame in the runtime's layout: "fn(...)\n\tfile:line +0xoff\n".
pub fn render_frame(
    function: &str,
    inlined: bool,
    file: &str,
    line: u32,
    offset: Option<u64>,
) -> String {
    let mut s = format!(
        "{function}({})\n\t{file}:{line}",
        if inlined { "..." } else { "" }
    );
    if let Some(o) = offset {
        s += &format!(" +{o:#x}");
    }
    s + "\n"
}

pub fn render_created_by(function: &str, goroutine: Option<u64>, file: &str, line: u32) -> String {
    let mut s = format!("created by {function}");
    if let Some(n) = goroutine {
        s += &format!(" in goroutine {n}");
    }
    s + &format!("\n\t{file}:{line}\n")
}

// ---------------------------------------------------------------------------
// Running gospy
// ---------------------------------------------------------------------------

/// The gospy binary built by cargo for this test run.
pub fn gospy_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gospy"))
}

/// Runs gospy with `args` and returns its output (whatever the exit status).
pub fn gospy<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    Command::new(gospy_bin())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running gospy {args:?}: {e}"))
}

/// Runs gospy and panics (showing its output) unless it exits 0; returns stdout.
pub fn gospy_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = gospy(&args);
    assert!(
        out.status.success(),
        "gospy {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap_or_else(|e| panic!("gospy {args:?}: stdout is not UTF-8: {e}"))
}

/// `gospy capture --pid PID -o OUT EXTRA...`; panics unless it exits 0 and
/// writes OUT.
pub fn capture(pid: u32, out_path: &Path, extra_args: &[&str]) {
    let _ = fs::remove_file(out_path);
    let pid = pid.to_string();
    let mut args: Vec<&OsStr> = vec!["capture".as_ref(), "--pid".as_ref(), pid.as_ref()];
    args.push("-o".as_ref());
    args.push(out_path.as_os_str());
    args.extend(extra_args.iter().map(OsStr::new));
    let json = !extra_args.contains(&"--json");
    if json {
        args.push("--json".as_ref());
    }
    let out = gospy_ok(&args);
    assert!(
        out_path.is_file(),
        "gospy capture exited 0 but did not write {}",
        out_path.display()
    );
    // Which way the pause went (the quiet pre-read kept, or why not): both
    // ways must give what the fixture's oracle says.
    if let Some(q) = json
        .then(|| serde_json::from_str::<serde_json::Value>(&out).ok())
        .flatten()
        .and_then(|c| c.get("quiet").cloned())
    {
        report(&format!(
            "capture of pid {pid}: quiet pre-read {}",
            match q["kept"].as_bool() {
                Some(true) => "kept".to_string(),
                _ => format!(
                    "not kept ({})",
                    q["why_not"].as_str().unwrap_or("not tried")
                ),
            }
        ));
    }
}

/// Prints a result line that shows in the test output even when the test
/// passes and libtest captures `println!` (a direct write to stderr is not
/// captured): counts such as "fault injection: 200 trials, 0 failures".
pub fn report(line: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
    let _ = e.flush();
}

/// Where the kernel will write the core of process `pid` (command name
/// `comm`) started in `cwd`, from /proc/sys/kernel/core_pattern; Err says why
/// this environment cannot give a core file to this test.
pub fn kernel_core_path(cwd: &Path, pid: u32, comm: &str) -> Result<PathBuf, String> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .map_err(|e| format!("reading /proc/sys/kernel/core_pattern: {e}"))?;
    let pattern = pattern.trim_end_matches('\n');
    if pattern.starts_with('|') {
        return Err(format!(
            "core_pattern pipes cores to a program ({pattern:?}, e.g. systemd-coredump or \
             apport): no core file in the fixture's directory"
        ));
    }
    let uses_pid = std::fs::read_to_string("/proc/sys/kernel/core_uses_pid")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let mut out = String::new();
    let mut chars = pattern.chars();
    let mut has_pid = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('p' | 'P' | 'i' | 'I') => {
                has_pid = true;
                out += &pid.to_string();
            }
            Some('e') => out += &comm.chars().take(15).collect::<String>(),
            Some('s') => out += &libc::SIGABRT.to_string(),
            Some(other) => {
                return Err(format!(
                    "core_pattern {pattern:?} uses %{other}, which this test does not expand"
                ))
            }
            None => {}
        }
    }
    if uses_pid && !has_pid {
        out += &format!(".{pid}");
    }
    Ok(cwd.join(out)) // an absolute pattern replaces cwd
}

/// Whether gdb's `gcore` runs here (it has no --version: `-h` prints its
/// usage and exits non-zero; what matters is that it runs). Without it a
/// test skips, except under CI=true, where a missing gcore is a failure.
pub fn have_gcore() -> bool {
    let ok = Command::new("gcore")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "gcore (gdb) is not installed"
        );
        println!("SKIP: gcore (gdb) not installed");
    }
    ok
}

/// gdb's `gcore` of `pid` into `dir` (`dir/core.PID`); panics with gcore's
/// stderr when it wrote no core.
pub fn gcore(pid: u32, dir: &Path) -> PathBuf {
    let out = Command::new("gcore")
        .arg("-o")
        .arg(dir.join("core"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("running gcore");
    let core = dir.join(format!("core.{pid}"));
    assert!(
        core.is_file(),
        "gcore wrote no core: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    core
}

/// A `capture --heap` of a fixture that writes ORACLE_DIR/expect.json, and
/// optionally a gcore core of the same moment.
pub struct HeapCapture {
    pub work: TempDir,
    pub snap: PathBuf,
    pub expect: serde_json::Value,
    pub core: Option<PathBuf>,
    pub bin: PathBuf,
}

/// Builds and starts fixture `name`, reads its expect.json, captures it with
/// `--heap` (and gcore when `core`), then kills it.
pub fn heap_capture(
    name: &str,
    version: &str,
    pie: bool,
    ldflags: &str,
    core: bool,
) -> Option<HeapCapture> {
    let bin = try_build_fixture(name, version, pie, ldflags)?;
    let work = tempfile::Builder::new()
        .prefix(&format!("gospy-{name}-heap-"))
        .tempdir()
        .unwrap();
    let snap = work.path().join("heap.gss");
    // A fixture whose own measure was disturbed (`"noisy": true`: the
    // runtime started a thread while it measured) runs again, 3 times at
    // most.
    let mut attempt = 0;
    let (mut fx, expect) = loop {
        attempt += 1;
        let fx = Fixture::start(&bin);
        let expect: serde_json::Value = serde_json::from_slice(
            &fs::read(fx.dir.path().join("expect.json")).expect("expect.json"),
        )
        .expect("expect.json is JSON");
        if expect["noisy"].as_bool() != Some(true) || attempt == 3 {
            break (fx, expect);
        }
        report(&format!(
            "{name}: the fixture's own measure was noisy (attempt {attempt}): again"
        ));
    };
    capture(fx.pid, &snap, &["--heap"]);
    let core = core.then(|| gcore(fx.pid, work.path()));
    fx.kill();
    Some(HeapCapture {
        work,
        snap,
        expect,
        core,
        bin,
    })
}
