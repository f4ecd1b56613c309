//! Command line: argument parsing, dispatch, output, exit codes.

use crate::analyze::{Model, Session};
use crate::capture::{capture, CaptureOptions};
use crate::report::{self, dump::DumpOptions};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Exit codes (documented in the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const TARGET: i32 = 3;
    pub const INPUT: i32 = 4;
}

const EXAMPLES: &str = "\
Examples:
  gospy capture --pid 1234 -o app.gss            freeze for milliseconds, write a snapshot
  gospy capture --pid 1234 -o app.gss --embed-binary   ...that analyzes on any machine
  gospy analyze app.gss summary                  scheduler, Ps, threads, one line per goroutine
  gospy analyze app.gss dump                     every goroutine's stack, Go traceback format
  gospy analyze app.gss dump --json | jq .       the same as JSON
  gospy analyze app.gss heap                     heap and GC statistics (MemStats), size classes
  gospy summary --pid 1234                       capture into memory and analyze, live
  gospy analyze app.gss top --by go              goroutines grouped by go statement
  gospy top --pid 1234 --once                    the same, live, one report
  gospy diff before.gss after.gss                goroutine growth and leak candidates
  gospy analyze app.gss pprof -o g.pb.gz         goroutine profile for `go tool pprof`
  gospy info app.gss                             what a snapshot holds";

#[derive(Parser, Debug)]
#[command(name = "gospy", version, about = "Inspect running Go programs without changing them", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Pause a Go process for milliseconds and write a .gss snapshot
    #[command(
        after_help = "The target is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT (never SIGSTOP) only while\n\
memory is read; it resumes on every path, including errors and Ctrl-C. Needs the same user as\n\
the target (or root / CAP_SYS_PTRACE) and kernel.yama.ptrace_scope <= 1 for non-children.\n\
The snapshot contains process memory (stacks, runtime data): it is created with mode 0600."
    )]
    Capture(CaptureArgs),
    /// Analyze a .gss snapshot (anywhere, later)
    Analyze(AnalyzeArgs),
    /// Live: capture into memory, then print the summary
    Summary(LiveArgs<SummaryArgs>),
    /// Live: capture into memory, then dump every goroutine
    Dump(LiveArgs<DumpArgs>),
    /// Live: capture into memory, then print heap and GC statistics
    Heap(LiveArgs<HeapArgs>),
    /// Describe a snapshot file: capture facts, build ids, sizes
    Info(InfoArgs),
    /// Live: goroutines grouped and counted (plain periodic reports for now)
    Top(LiveArgs<LiveTopArgs>),
    /// Compare two snapshots of one process: goroutine growth, leak candidates
    Diff(DiffArgs),
    /// Write a snapshot as an ELF core file (for gdb: `gdb BINARY FILE.core`)
    Convert(ConvertArgs),
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Snapshot file (.gss)
    pub file: PathBuf,
    /// Output core file
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// Process id of the Go program
    #[arg(long, short)]
    pub pid: i32,
    /// Output file (.gss)
    #[arg(long, short)]
    pub output: PathBuf,
    /// Store the executable in the snapshot so it analyzes on any machine
    #[arg(long)]
    pub embed_binary: bool,
    /// Unstripped build of the target's executable (build ids must match)
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Print the capture report as JSON
    #[arg(long)]
    pub json: bool,
    /// Drop data contents (locals, non-runtime globals, label values, registers,
    /// arguments), keeping what goroutine, scheduler and heap analysis need
    #[arg(long)]
    pub redact: bool,
    /// Spans of the heap's span table to store, for `heap --large` and
    /// spans per size class (0: none)
    #[arg(long, default_value_t = crate::goruntime::heap::DEFAULT_MAX_SPANS)]
    pub max_spans: usize,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Snapshot file written by `gospy capture`, or an ELF core file
    pub file: PathBuf,
    /// The executable that was captured (default: embedded copy, then the recorded path)
    #[arg(long, global = true)]
    pub bin: Option<PathBuf>,
    #[command(subcommand)]
    pub what: Analysis,
}

#[derive(Subcommand, Debug)]
pub enum Analysis {
    /// Scheduler, Ps, threads, goroutine states, one line per goroutine
    Summary(SummaryArgs),
    /// Every goroutine with its stack, in the Go runtime's traceback format
    Dump(DumpArgs),
    /// Heap and GC statistics (a runtime.MemStats equivalent), size classes, Ps
    Heap(HeapArgs),
    /// Goroutines grouped by start function (or --by ...), sorted by count
    Top(TopArgs),
    /// Write a pprof goroutine profile (gzip-compressed profile.proto)
    Pprof(PprofArgs),
    /// Folded stacks (`outer;...;inner count`) for flamegraph tools
    Folded(FoldedArgs),
}

#[derive(Args, Debug, Clone)]
pub struct TopArgs {
    /// Group by: start (default), go, current, stack, wait, or label KEY
    #[arg(long, num_args = 1..=2, value_names = ["KIND", "KEY"])]
    pub by: Vec<String>,
    /// Keep goroutines whose group key or any frame's function matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Include system goroutines
    #[arg(long)]
    pub all: bool,
    /// JSON output: a list of groups {key, count, statuses, percent}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LiveTopArgs {
    #[command(flatten)]
    pub top: TopArgs,
    /// Print one report and exit
    #[arg(long)]
    pub once: bool,
    /// Seconds between reports
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// Stop after N reports
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct PprofArgs {
    /// Output file (gzip-compressed profile.proto)
    #[arg(long, short)]
    pub output: PathBuf,
    /// Include system goroutines
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct FoldedArgs {
    /// Include system goroutines and runtime frames
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot
    pub a: PathBuf,
    /// The newer snapshot
    pub b: PathBuf,
    /// Group by: start (default), go, current, stack, wait, or label KEY
    #[arg(long, num_args = 1..=2, value_names = ["KIND", "KEY"])]
    pub by: Vec<String>,
    /// Include system goroutines
    #[arg(long)]
    pub all: bool,
    /// JSON output
    #[arg(long)]
    pub json: bool,
    /// Compare snapshots of different executables anyway
    #[arg(long)]
    pub force: bool,
    /// The executable that was captured (default: embedded copy, then the recorded path)
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct HeapArgs {
    /// JSON output: {"memstats": {runtime.MemStats fields}, "size_classes", "per_p", "large", ...}
    #[arg(long)]
    pub json: bool,
    /// List large objects (> 32 KiB), biggest first
    #[arg(long)]
    pub large: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// JSON output
    #[arg(long)]
    pub json: bool,
    /// Include system goroutines (GC workers, finalizer...)
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DumpArgs {
    /// JSON output: a list of goroutines with frames
    #[arg(long)]
    pub json: bool,
    /// Show system goroutines and runtime-internal frames too
    #[arg(long)]
    pub all: bool,
    /// Add a `[waiting on ...]` line (channel, semaphore, Cond) after headers
    #[arg(long)]
    pub wait_info: bool,
    /// Show pprof labels in goroutine headers (the runtime itself does from Go 1.27)
    #[arg(long)]
    pub labels: bool,
}

#[derive(Args, Debug)]
pub struct LiveArgs<T: Args> {
    /// Process id of the Go program
    #[arg(long, short)]
    pub pid: i32,
    /// Unstripped build of the target's executable (build ids must match)
    #[arg(long)]
    pub bin: Option<PathBuf>,
    #[command(flatten)]
    pub args: T,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Error classes that map to exit codes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let (res, class) = match cli.cmd {
        Command::Capture(a) => (cmd_capture(&a), exit::TARGET),
        Command::Analyze(a) => (cmd_analyze(&a), exit::INPUT),
        Command::Summary(a) => (
            live(a.pid, a.bin.as_deref(), |s| print_summary(s, &a.args)),
            exit::TARGET,
        ),
        Command::Dump(a) => (
            live(a.pid, a.bin.as_deref(), |s| print_dump(s, &a.args)),
            exit::TARGET,
        ),
        Command::Heap(a) => (live_heap(a.pid, a.bin.as_deref(), &a.args), exit::TARGET),
        Command::Info(a) => (cmd_info(&a), exit::INPUT),
        Command::Convert(a) => (cmd_convert(&a), exit::INPUT),
        Command::Top(a) => (live_top(&a), exit::TARGET),
        Command::Diff(a) => (cmd_diff(&a), exit::INPUT),
    };
    match res {
        Ok(()) => exit::OK,
        Err(e) => {
            // Broken pipe (e.g. `| head`) is not an error worth reporting.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return exit::OK;
            }
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("gospy: error: {}", msg.join(": "));
            class
        }
    }
}

fn out(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()?;
    Ok(())
}

fn json_out<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    out(&s)
}

fn cmd_capture(a: &CaptureArgs) -> Result<()> {
    let opts = CaptureOptions {
        embed_binary: a.embed_binary,
        bin: a.bin.clone(),
        max_spans: Some(a.max_spans),
        redact: a.redact,
    };
    let (cap, _bin, stats) = capture(a.pid, &opts)?;
    let ws = crate::snapshot::write_file(&a.output, &cap, &Default::default())
        .with_context(|| format!("writing {}", a.output.display()))?;
    if a.json {
        json_out(&serde_json::json!({
            "file": a.output,
            "pid": a.pid,
            "goroutines": stats.goroutines,
            "bytes_read": stats.bytes_read,
            "regions": stats.regions,
            "file_size": ws.file_size,
            "pause_ns": stats.pause.as_nanos() as u64,
            "pause_phases_ns": stats.phases.iter().map(|(k, d)| (k.clone(), d.as_nanos() as u64)).collect::<Vec<_>>(),
            "embedded_binary": a.embed_binary,
            "redacted": stats.redacted,
            "warnings": cap.meta.warnings,
        }))?;
    } else {
        eprintln!(
            "captured pid {} ({}): {} goroutines, {} read in {} regions, paused {}; wrote {} ({}){}",
            a.pid,
            cap.meta.go_version,
            stats.goroutines,
            report::fmt_bytes(stats.bytes_read),
            stats.regions,
            report::fmt_duration_ns(stats.pause.as_nanos() as u64),
            a.output.display(),
            report::fmt_bytes(ws.file_size),
            if a.embed_binary { ", binary embedded" } else { "" }
        );
        for w in &cap.meta.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

fn live(
    pid: i32,
    bin: Option<&std::path::Path>,
    f: impl FnOnce(&Session) -> Result<()>,
) -> Result<()> {
    let opts = CaptureOptions {
        embed_binary: false,
        bin: bin.map(|p| p.to_path_buf()),
        ..Default::default()
    };
    let (cap, bin, _stats) = capture(pid, &opts)?;
    let s = Session::from_capture(cap, bin)?;
    f(&s)
}

/// Live `heap`: with `--large` every span is read, else the default number.
fn live_heap(pid: i32, bin: Option<&std::path::Path>, a: &HeapArgs) -> Result<()> {
    let opts = CaptureOptions {
        embed_binary: false,
        bin: bin.map(|p| p.to_path_buf()),
        max_spans: Some(if a.large {
            crate::goruntime::heap::MAX_SPANS_LIMIT
        } else {
            crate::goruntime::heap::DEFAULT_MAX_SPANS
        }),
        ..Default::default()
    };
    let (cap, bin, _stats) = capture(pid, &opts)?;
    let s = Session::from_capture(cap, bin)?;
    print_heap(&s, a)
}

fn cmd_analyze(a: &AnalyzeArgs) -> Result<()> {
    let s = Session::open_snapshot(&a.file, a.bin.as_deref())?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    match &a.what {
        Analysis::Summary(x) => print_summary(&s, x),
        Analysis::Dump(x) => print_dump(&s, x),
        Analysis::Heap(x) => print_heap(&s, x),
        Analysis::Top(x) => print_top(&s, x),
        Analysis::Pprof(x) => write_pprof(&s, x),
        Analysis::Folded(x) => {
            let m = Model::build(&s)?;
            out(&report::pprof::folded(
                &m,
                &report::pprof::ExportOptions { all: x.all },
            ))
        }
    }
}

fn top_options(a: &TopArgs) -> Result<report::top::TopOptions> {
    let filter = match &a.filter {
        Some(f) => Some(regex::Regex::new(f).with_context(|| format!("--filter {f:?}"))?),
        None => None,
    };
    Ok(report::top::TopOptions {
        by: report::top::GroupBy::from_args(&a.by)?,
        filter,
        all: a.all,
    })
}

fn print_top(s: &Session, a: &TopArgs) -> Result<()> {
    let o = top_options(a)?;
    let m = Model::build(s)?;
    let t = report::top::build(s, &m, &o);
    if a.json {
        json_out(&t.groups)
    } else {
        out(&report::top::to_text(&t, &o.by))
    }
}

fn live_top(a: &LiveArgs<LiveTopArgs>) -> Result<()> {
    let args = &a.args;
    // Validate the options before touching the target.
    top_options(&args.top)?;
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        anyhow::bail!("--interval must be a positive number of seconds");
    }
    let reports = if args.once { Some(1) } else { args.count };
    if !args.once {
        // Ctrl-C ends the loop between captures: never while the target is
        // paused.
        extern "C" fn on_sigint(_: libc::c_int) {
            STOP.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        // SAFETY: installs an async-signal-safe handler (one atomic store).
        unsafe {
            libc::signal(
                libc::SIGINT,
                on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    let stopped = || STOP.load(std::sync::atomic::Ordering::SeqCst);
    let mut n = 0u64;
    loop {
        live(a.pid, a.bin.as_deref(), |s| {
            if !args.once && !args.top.json {
                out(&format!(
                    "--- pid {} at unix time {:.3}, capture pause {}\n",
                    s.meta.pid,
                    s.meta.wall_time_ns as f64 / 1e9,
                    report::fmt_duration_ns(s.meta.pause_ns)
                ))?;
            }
            print_top(s, &args.top)
        })?;
        n += 1;
        if reports.is_some_and(|r| n >= r) {
            return Ok(());
        }
        if !args.top.json {
            out("\n")?;
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(args.interval);
        while !stopped() && std::time::Instant::now() < until {
            std::thread::sleep(
                std::time::Duration::from_millis(50)
                    .min(until.saturating_duration_since(std::time::Instant::now())),
            );
        }
        if stopped() {
            return Ok(());
        }
    }
}

/// Set by SIGINT during a periodic live `top`.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn write_pprof(s: &Session, a: &PprofArgs) -> Result<()> {
    let m = Model::build(s)?;
    let data = report::pprof::profile_gz(s, &m, &report::pprof::ExportOptions { all: a.all })?;
    std::fs::write(&a.output, data).with_context(|| format!("writing {}", a.output.display()))?;
    Ok(())
}

fn cmd_diff(a: &DiffArgs) -> Result<()> {
    let by = report::top::GroupBy::from_args(&a.by)?;
    let sa = Session::open_snapshot(&a.a, a.bin.as_deref())
        .with_context(|| a.a.display().to_string())?;
    // --bin names A's executable; B gets it too when they are the same build.
    let peek =
        crate::snapshot::SnapshotFile::open(&a.b).with_context(|| a.b.display().to_string())?;
    let same = peek.meta.go_build_id == sa.meta.go_build_id
        && peek.meta.gnu_build_id == sa.meta.gnu_build_id;
    drop(peek);
    let bin_b = if same { a.bin.as_deref() } else { None };
    let sb = Session::open_snapshot(&a.b, bin_b).with_context(|| a.b.display().to_string())?;
    let mut warnings = Vec::new();
    if let Some(w) = report::diff::check_same_binary(&sa, &sb, a.force)? {
        warnings.push(w);
    }
    for (name, s) in [(&a.a, &sa), (&a.b, &sb)] {
        for w in &s.warnings {
            eprintln!("warning: {}: {w}", name.display());
        }
    }
    let ma = Model::build(&sa)?;
    let mb = Model::build(&sb)?;
    let d = report::diff::build(&sa, &ma, &sb, &mb, &by, a.all, warnings);
    if a.json {
        json_out(&d)
    } else {
        out(&report::diff::to_text(&d))
    }
}

fn print_heap(s: &Session, a: &HeapArgs) -> Result<()> {
    let h = report::heap::build(s, a.large)?;
    if a.json {
        json_out(&h)
    } else {
        out(&report::heap::to_text(&h))
    }
}

fn print_summary(s: &Session, a: &SummaryArgs) -> Result<()> {
    let m = Model::build(s)?;
    let sm = report::summary::build(s, &m, a.all);
    if a.json {
        json_out(&sm)
    } else {
        out(&report::summary::to_text(&sm))
    }
}

fn print_dump(s: &Session, a: &DumpArgs) -> Result<()> {
    let m = Model::build(s)?;
    let opts = DumpOptions {
        all: a.all,
        wait_info: a.wait_info,
        labels: a.labels,
    };
    if a.json {
        json_out(&report::dump::to_json(s, &m, &opts))
    } else {
        out(&report::dump::to_text(s, &m, &opts))
    }
}

fn cmd_convert(a: &ConvertArgs) -> Result<()> {
    let st = crate::corewrite::convert_snapshot(&a.file, &a.output)?;
    eprintln!(
        "wrote {}: {} threads, {} in {} segments",
        a.output.display(),
        st.threads,
        report::fmt_bytes(st.bytes),
        st.segments
    );
    Ok(())
}

fn cmd_info(a: &InfoArgs) -> Result<()> {
    let snap = crate::snapshot::SnapshotFile::open(&a.file)
        .with_context(|| a.file.display().to_string())?;
    let m = &snap.meta;
    let stats = snap.stats();
    if a.json {
        return json_out(&serde_json::json!({
            "file": a.file,
            "pid": m.pid,
            "exe_path": m.exe_path,
            "cmdline": m.cmdline,
            "hostname": m.hostname,
            "go_version": m.go_version,
            "go_build_id": m.go_build_id,
            "gnu_build_id": m.gnu_build_id,
            "load_bias": m.load_bias,
            "capture_wall_time_ns": m.wall_time_ns,
            "pause_ns": m.pause_ns,
            "threads": m.threads.len(),
            "embedded_binary": snap.has_binary(),
            "gospy_version": m.gospy_version,
            "warnings": m.warnings,
            "stats": stats,
        }));
    }
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "file:        {} (format {}, {})",
        a.file.display(),
        stats.format_version,
        report::fmt_bytes(stats.file_size)
    );
    let _ = writeln!(
        o,
        "process:     pid {} on {}: {}",
        m.pid, m.hostname, m.exe_path
    );
    if !m.cmdline.is_empty() {
        let _ = writeln!(o, "cmdline:     {}", m.cmdline.join(" "));
    }
    let _ = writeln!(o, "go:          {}", m.go_version);
    let _ = writeln!(
        o,
        "build ids:   {}",
        crate::binary::elf::build_id_string(m.go_build_id.as_deref(), m.gnu_build_id.as_deref())
    );
    let _ = writeln!(
        o,
        "captured:    unix time {:.3} by gospy {}",
        m.wall_time_ns as f64 / 1e9,
        m.gospy_version
    );
    let _ = writeln!(
        o,
        "pause:       {} ({} threads)",
        report::fmt_duration_ns(m.pause_ns),
        m.threads.len()
    );
    let _ = writeln!(
        o,
        "binary:      {}",
        if snap.has_binary() {
            format!(
                "embedded ({} compressed)",
                report::fmt_bytes(stats.binary_compressed_bytes)
            )
        } else {
            "not embedded (analysis needs --bin or the original path)".to_string()
        }
    );
    let _ = writeln!(
        o,
        "memory:      {} in {} regions, {} compressed in {} chunks",
        report::fmt_bytes(stats.uncompressed_bytes),
        stats.regions,
        report::fmt_bytes(stats.compressed_bytes),
        stats.chunks
    );
    for k in &stats.per_kind {
        if k.regions > 0 {
            let _ = writeln!(
                o,
                "  {:<8} {:>8} regions {:>12}",
                format!("{:?}", k.kind),
                k.regions,
                report::fmt_bytes(k.bytes)
            );
        }
    }
    for w in &m.warnings {
        let _ = writeln!(o, "warning:     {w}");
    }
    out(&o)
}
