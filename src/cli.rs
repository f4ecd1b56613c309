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
  gospy analyze app.gss var main.config          a global's value (--json: as encoding/json)
  gospy analyze app.gss vars '^main[.]'           globals and their types
  gospy var main.config --pid 1234               a global's value, live
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
memory is read; it resumes on every path, including errors and Ctrl-C. Stacks of goroutines\n\
parked since before the last GC cycle are copied before the pause and kept only if the\n\
goroutine provably did not run since, so the pause mostly reads the g structs (about 20 ms\n\
for 100k goroutines). Needs the same user as the target (or root / CAP_SYS_PTRACE) and\n\
kernel.yama.ptrace_scope <= 1 for non-children.\n\
The snapshot contains process memory (stacks, runtime data): it is created with mode 0600.\n\n\
Examples:\n  \
gospy capture --pid 1234 -o app.gss\n  \
gospy capture --pid 1234 -o app.gss --embed-binary\n  \
gospy capture --pid 1234 -o app.gss --bin ./app.unstripped\n  \
gospy capture --pid 1234 -o snaps/ --count 6 --interval 10s   snaps/1234-1.gss ... 1234-6.gss\n  \
gospy capture --pid 1234 -o app.gss --non-blocking            never stop the target"
    )]
    Capture(CaptureArgs),
    /// Analyze a .gss snapshot (anywhere, later)
    #[command(after_help = "Examples:
  gospy analyze app.gss summary
  gospy analyze app.gss dump --wait-info
  gospy analyze app.gss dump --json | jq '.[] | select(.state == \"chan receive\")'
  gospy analyze app.gss heap --large
  gospy analyze app.gss top --by go
  gospy analyze app.gss pprof -o goroutines.pb.gz && go tool pprof -top goroutines.pb.gz
  gospy analyze app.gss folded | flamegraph.pl > goroutines.svg
  gospy analyze core.1234 dump --bin ./app     an ELF core file")]
    Analyze(AnalyzeArgs),
    /// Live: capture into memory, then print the summary
    #[command(after_help = "Examples:
  gospy summary --pid 1234
  gospy summary --pid 1234 --all --json
  gospy summary --pid 1234 --non-blocking      never stop the target")]
    Summary(LiveArgs<SummaryArgs>),
    /// Live: capture into memory, then dump every goroutine
    #[command(after_help = "Examples:
  gospy dump --pid 1234
  gospy dump --pid 1234 --json --labels
  gospy dump --pid 1234 --bin ./app.unstripped   the running binary is stripped
  gospy dump --pid 1234 --non-blocking --json    unstable goroutines get \"unstable\": true")]
    Dump(LiveArgs<DumpArgs>),
    /// Live: capture into memory (with this global's full value), then print it
    Var(LiveArgs<VarArgs>),
    /// Live: capture into memory, then print heap and GC statistics
    #[command(after_help = "Examples:
  gospy heap --pid 1234
  gospy heap --pid 1234 --large --json")]
    Heap(LiveArgs<HeapArgs>),
    /// Describe a snapshot file: capture facts, build ids, sizes
    #[command(after_help = "Examples:
  gospy info app.gss
  gospy info app.gss --json")]
    Info(InfoArgs),
    /// Live: goroutines grouped and counted; an interactive view on a terminal
    /// (keys: g grouping, s sort, / filter, p pause, q quit), plain periodic
    /// reports otherwise
    #[command(after_help = "Examples:
  gospy top --pid 1234                     interactive on a terminal
  gospy top --pid 1234 --interval 5 --by go
  gospy top --pid 1234 --once --json
  gospy top --pid 1234 --count 10 > top.log  plain periodic reports")]
    Top(LiveArgs<LiveTopArgs>),
    /// Compare two snapshots of one process: goroutine growth, leak candidates
    #[command(after_help = "Examples:
  gospy diff before.gss after.gss
  gospy diff snaps/1234-1.gss snaps/1234-6.gss --by go --json")]
    Diff(DiffArgs),
    /// Write a snapshot as an ELF core file (for gdb: `gdb BINARY FILE.core`)
    #[command(after_help = "Examples:
  gospy convert app.gss -o app.core && gdb ./app app.core")]
    Convert(ConvertArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:
  gospy completions bash > /etc/bash_completion.d/gospy
  gospy completions zsh > \"${fpath[1]}/_gospy\"
  gospy completions fish > ~/.config/fish/completions/gospy.fish")]
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    pub shell: clap_complete::Shell,
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
    /// Output file (.gss); with --count, a directory that receives
    /// PID-1.gss, PID-2.gss...
    #[arg(long, short)]
    pub output: PathBuf,
    /// Take a series of N snapshots (for `gospy diff`, leak hunting)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Time between the snapshots of a series: 10s, 500ms, 2m (default 10s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "count")]
    pub interval: Option<std::time::Duration>,
    /// Store the executable in the snapshot so it analyzes on any machine
    #[arg(long)]
    pub embed_binary: bool,
    /// Unstripped build of the target's executable (build ids must match)
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Print the capture report as JSON
    #[arg(long)]
    pub json: bool,
    /// Never stop the target: read it while it runs; goroutines that change
    /// while read are recorded as unstable
    #[arg(long)]
    pub non_blocking: bool,
    /// Drop data contents (locals, non-runtime globals, label values, registers,
    /// arguments), keeping what goroutine, scheduler and heap analysis need
    #[arg(long)]
    pub redact: bool,
    /// Spans of the heap's span table to store, for `heap --large` and
    /// spans per size class (0: none)
    #[arg(long, default_value_t = crate::goruntime::heap::DEFAULT_MAX_SPANS)]
    pub max_spans: usize,
    /// Capture this global's full value, whatever its size (repeatable)
    #[arg(long = "var", value_name = "NAME")]
    pub vars: Vec<String>,
    /// Bytes of objects reachable from globals to capture [default: 16M]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub var_budget: Option<u64>,
    /// Store all writable memory of the process (large)
    #[arg(long)]
    pub full: bool,
}

/// "16777216", "16M", "512k", "1G".
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                'b' => 1,
                _ => {
                    return Err(format!(
                        "bad size {s:?}: use a number with an optional K, M or G suffix"
                    ))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("bad size {s:?}: use a number with an optional K, M or G suffix"))
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
    /// A global variable's value, by full name (main.config, net/http.DefaultClient)
    Var(VarArgs),
    /// Global variables and their types
    Vars(VarsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct VarArgs {
    /// Full name: package path, dot, name (main.config, net/http.DefaultClient)
    pub name: String,
    /// JSON output: {"name", "type", "value"}, value as encoding/json writes it
    #[arg(long)]
    pub json: bool,
    /// Pointers, interfaces, slices, maps followed [default: 32, 64 with --json]
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,
    /// Elements shown per slice, array, map or channel [default: 100, all with --json]
    #[arg(long, value_name = "N")]
    pub max_elems: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct VarsArgs {
    /// Only globals whose name matches this regular expression
    pub regex: Option<String>,
    /// JSON output: a list of {name, type, address, size}
    #[arg(long)]
    pub json: bool,
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
    /// Never stop the target: read it while it runs; goroutines that change
    /// while read are reported as unstable (no frames shown)
    #[arg(long)]
    pub non_blocking: bool,
    #[command(flatten)]
    pub args: T,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// For a core file: the executable that crashed (default: the path the
    /// core records), for its Go version and build ids.
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
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
            live(a.pid, a.bin.as_deref(), a.non_blocking, |s| {
                print_summary(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Dump(a) => (
            live(a.pid, a.bin.as_deref(), a.non_blocking, |s| {
                print_dump(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Heap(a) => (
            live_heap(a.pid, a.bin.as_deref(), a.non_blocking, &a.args),
            exit::TARGET,
        ),
        Command::Var(a) => {
            let opts = CaptureOptions {
                bin: a.bin.clone(),
                vars: vec![a.args.name.clone()],
                // Only that global is needed.
                var_budget: Some(0),
                ..Default::default()
            };
            (
                live_with(a.pid, &opts, |s| print_var(s, &a.args)),
                exit::TARGET,
            )
        }
        Command::Info(a) => (cmd_info(&a), exit::INPUT),
        Command::Convert(a) => (cmd_convert(&a), exit::INPUT),
        Command::Top(a) => (live_top(&a), exit::TARGET),
        Command::Diff(a) => (cmd_diff(&a), exit::INPUT),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "gospy", &mut std::io::stdout());
            (Ok(()), exit::ERROR)
        }
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

/// `10s`, `500ms`, `2m`, `1h` or plain seconds (`0.5`).
pub fn parse_duration(v: &str) -> std::result::Result<std::time::Duration, String> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {v:?} (examples: 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {v:?}: use ms, s, m or h")),
    };
    if !(secs >= 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("invalid duration {v:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn cmd_capture(a: &CaptureArgs) -> Result<()> {
    if let Some(count) = a.count {
        return capture_series(a, count);
    }
    capture_to(a, &a.output)
}

/// `capture --count N [--interval D] -o DIR`: DIR/PID-1.gss ... DIR/PID-N.gss.
fn capture_series(a: &CaptureArgs, count: u64) -> Result<()> {
    if count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let interval = a.interval.unwrap_or(std::time::Duration::from_secs(10));
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("creating directory {}", a.output.display()))?;
    for n in 1..=count {
        let t = std::time::Instant::now();
        let path = a.output.join(format!("{}-{n}.gss", a.pid));
        capture_to(a, &path)?;
        if n < count {
            std::thread::sleep(interval.saturating_sub(t.elapsed()));
        }
    }
    Ok(())
}

fn capture_to(a: &CaptureArgs, output: &std::path::Path) -> Result<()> {
    let progress = crate::progress::Progress::start(format!("capturing pid {}", a.pid));
    let opts = CaptureOptions {
        embed_binary: a.embed_binary,
        bin: a.bin.clone(),
        max_spans: Some(a.max_spans),
        vars: a.vars.clone(),
        var_budget: a.var_budget,
        full: a.full,
        non_blocking: a.non_blocking,
        redact: a.redact,
    };
    let (cap, _bin, stats) = capture(a.pid, &opts)?;
    let ws = crate::sources::snapshot::write_file(output, &cap, &Default::default())
        .with_context(|| format!("writing {}", output.display()))?;
    drop(progress);
    if a.json {
        json_out(&serde_json::json!({
            "file": output,
            "pid": a.pid,
            "goroutines": stats.goroutines,
            "bytes_read": stats.bytes_read,
            "read_calls": stats.read_calls,
            "binary_load_ns": stats.binary_load.as_nanos() as u64,
            "precopy": stats.precopy,
            "regions": stats.regions,
            "file_size": ws.file_size,
            "pause_ns": stats.pause.as_nanos() as u64,
            "pause_phases_ns": stats.phases.iter().map(|(k, d)| (k.clone(), d.as_nanos() as u64)).collect::<Vec<_>>(),
            "embedded_binary": a.embed_binary,
            "redacted": stats.redacted,
            "warnings": cap.meta.warnings,
            "var_walk": stats.var_walk,
        }))?;
    } else {
        // How many stacks the pause could leave to the pre-copy.
        let kept = match &stats.precopy {
            Some(p) if p.kept > 0 => format!(" ({} stacks copied before the pause)", p.kept),
            _ => String::new(),
        };
        eprintln!(
            "captured pid {} ({}): {} goroutines{kept}, {} read in {} regions, {}; wrote {} ({}){}",
            a.pid,
            cap.meta.go_version,
            stats.goroutines,
            report::fmt_bytes(stats.bytes_read),
            stats.regions,
            if a.non_blocking {
                "never stopped (--non-blocking)".to_string()
            } else {
                format!(
                    "paused {}",
                    report::fmt_duration_ns(stats.pause.as_nanos() as u64)
                )
            },
            output.display(),
            report::fmt_bytes(ws.file_size),
            if a.embed_binary {
                ", binary embedded"
            } else {
                ""
            }
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
    non_blocking: bool,
    f: impl FnOnce(&Session) -> Result<()>,
) -> Result<()> {
    let opts = CaptureOptions {
        embed_binary: false,
        bin: bin.map(|p| p.to_path_buf()),
        // Live goroutine/heap analyses need no global values: keep the
        // pause minimal.
        var_budget: Some(0),
        non_blocking,
        ..Default::default()
    };
    let progress = crate::progress::Progress::start(format!("capturing pid {pid}"));
    let (cap, bin, _stats) = capture(pid, &opts)?;
    print_unstable(&cap.meta);
    let s = Session::open(crate::sources::from_capture(cap, bin), None)?;
    drop(progress);
    f(&s)
}

/// Like `live`, with explicit capture options.
fn live_with(
    pid: i32,
    opts: &CaptureOptions,
    f: impl FnOnce(&Session) -> Result<()>,
) -> Result<()> {
    let (cap, bin, _stats) = capture(pid, opts)?;
    let s = Session::open(crate::sources::from_capture(cap, bin), None)?;
    f(&s)
}

fn print_var(s: &Session, a: &VarArgs) -> Result<()> {
    let o = report::vars::VarOptions {
        json: a.json,
        depth: a.depth,
        max_elems: a.max_elems,
    };
    let r = report::vars::var(s, &a.name, &o)?;
    out(&r.output)?;
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}

fn print_vars(s: &Session, a: &VarsArgs) -> Result<()> {
    let gs = report::vars::globals(s, a.regex.as_deref())?;
    if a.json {
        json_out(&gs)
    } else {
        out(&report::vars::globals_text(&gs))
    }
}

/// Live `heap`: with `--large` every span is read, else the default number.
fn live_heap(
    pid: i32,
    bin: Option<&std::path::Path>,
    non_blocking: bool,
    a: &HeapArgs,
) -> Result<()> {
    let opts = CaptureOptions {
        embed_binary: false,
        bin: bin.map(|p| p.to_path_buf()),
        max_spans: Some(if a.large {
            crate::goruntime::heap::MAX_SPANS_LIMIT
        } else {
            crate::goruntime::heap::DEFAULT_MAX_SPANS
        }),
        // No global values needed.
        var_budget: Some(0),
        non_blocking,
        ..Default::default()
    };
    let (cap, bin, _stats) = capture(pid, &opts)?;
    let s = Session::open(crate::sources::from_capture(cap, bin), None)?;
    print_heap(&s, a)
}

extern "C" {
    // From the mimalloc library (the binary's global allocator).
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
}
/// `mi_option_purge_delay` (same position in mimalloc v2 and v3).
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

/// Offline analysis holds the whole snapshot in memory and its peak RSS is
/// a target of its own (at most twice the snapshot's uncompressed size):
/// - no transparent huge pages (the allocator's 2 MiB-aligned arenas would
///   be backed by huge pages touched a few bytes at a time: a third more);
/// - freed memory goes back to the system at once.
///
/// Not for capture: inside the pause, fresh pages would have to be faulted
/// in again, and its pre-touched read buffer copies faster with huge pages.
fn analysis_memory_mode() {
    // SAFETY: prctl with integer arguments only changes this process's
    // flag; mi_option_set sets an allocator option (plain integers).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

fn cmd_analyze(a: &AnalyzeArgs) -> Result<()> {
    analysis_memory_mode();
    let progress = crate::progress::Progress::start(format!("loading {}", a.file.display()));
    let s = Session::open_file(&a.file, a.bin.as_deref())?;
    drop(progress);
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    let r = match &a.what {
        Analysis::Summary(x) => print_summary(&s, x),
        Analysis::Dump(x) => print_dump(&s, x),
        Analysis::Var(x) => print_var(&s, x),
        Analysis::Vars(x) => print_vars(&s, x),
        Analysis::Heap(x) => print_heap(&s, x),
        Analysis::Top(x) => print_top(&s, x),
        Analysis::Pprof(x) => write_pprof(&s, x),
        Analysis::Folded(x) => {
            let m = Model::build_lean(&s)?;
            out(&report::pprof::folded(
                &m,
                &report::pprof::ExportOptions { all: x.all },
            ))
        }
    };
    exit_soon(s);
    r
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
    let m = Model::build_lean(s)?;
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
    let topts = top_options(&args.top)?;
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        anyhow::bail!("--interval must be a positive number of seconds");
    }
    // Interactive view on a terminal (unless a fixed number of reports or
    // JSON was asked for).
    if !args.once
        && args.count.is_none()
        && !args.top.json
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return crate::tui::run(&crate::tui::TuiOptions {
            pid: a.pid,
            bin: a.bin.clone(),
            interval: std::time::Duration::from_secs_f64(args.interval),
            all: args.top.all,
            by: topts.by,
            filter: args.top.filter.clone(),
            non_blocking: a.non_blocking,
        });
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
        live(a.pid, a.bin.as_deref(), a.non_blocking, |s| {
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
    let m = Model::build_lean(s)?;
    let data = report::pprof::profile_gz(s, &m, &report::pprof::ExportOptions { all: a.all })?;
    std::fs::write(&a.output, data).with_context(|| format!("writing {}", a.output.display()))?;
    Ok(())
}

fn cmd_diff(a: &DiffArgs) -> Result<()> {
    analysis_memory_mode();
    let by = report::top::GroupBy::from_args(&a.by)?;
    let sa =
        Session::open_file(&a.a, a.bin.as_deref()).with_context(|| a.a.display().to_string())?;
    // --bin names A's executable; B gets it too when they are the same build.
    let peek = crate::sources::snapshot::SnapshotFile::open(&a.b)
        .with_context(|| a.b.display().to_string())?;
    let same = peek.meta.go_build_id == sa.meta.go_build_id
        && peek.meta.gnu_build_id == sa.meta.gnu_build_id;
    drop(peek);
    let bin_b = if same { a.bin.as_deref() } else { None };
    let sb = Session::open_file(&a.b, bin_b).with_context(|| a.b.display().to_string())?;
    let mut warnings = Vec::new();
    if let Some(w) = report::diff::check_same_binary(&sa, &sb, a.force)? {
        warnings.push(w);
    }
    for (name, s) in [(&a.a, &sa), (&a.b, &sb)] {
        for w in &s.warnings {
            eprintln!("warning: {}: {w}", name.display());
        }
    }
    let ma = Model::build_lean(&sa)?;
    let mb = Model::build_lean(&sb)?;
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
    let m = Model::build_lean(s)?;
    let sm = report::summary::build(s, &m, a.all);
    exit_soon(m);
    if a.json {
        json_out(&sm)
    } else {
        out(&report::summary::to_text(&sm))
    }
}

fn print_dump(s: &Session, a: &DumpArgs) -> Result<()> {
    // Text is rendered a batch at a time, arguments included then: the
    // model itself need not hold them.
    let m = if a.json {
        Model::build(s)?
    } else {
        Model::build_lean(s)?
    };
    let opts = DumpOptions {
        all: a.all,
        wait_info: a.wait_info,
        labels: a.labels,
    };
    let r = if a.json {
        json_out(&report::dump::to_json(s, &m, &opts))
    } else {
        let mut o = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        report::dump::write_text(s, &m, &opts, &mut o)
            .and_then(|()| o.flush())
            .map_err(anyhow::Error::from)
    };
    exit_soon(m);
    r
}

/// The process exits right after a one-shot report: freeing a model of 100k
/// goroutines one allocation at a time would only cost time. (Not for
/// reports repeated in a loop, like `top --pid --interval`.)
fn exit_soon<T>(x: T) {
    std::mem::forget(x);
}

fn cmd_convert(a: &ConvertArgs) -> Result<()> {
    let st = crate::sources::write_core::convert_snapshot(&a.file, &a.output)?;
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
    if crate::sources::elfcore::is_core_file(&a.file) {
        return cmd_info_core(a);
    }
    let snap = crate::sources::snapshot::SnapshotFile::open(&a.file)
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
            "stopped": m.stopped,
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

/// `gospy info CORE`: the core's notes, and its executable's Go details.
fn cmd_info_core(a: &InfoArgs) -> Result<()> {
    let i = crate::analyze::core_info(&a.file, a.bin.as_deref())?;
    if a.json {
        return json_out(&i);
    }
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "file:        {} (ELF core{}, {})",
        i.file,
        if i.compressed { ", zstd" } else { "" },
        report::fmt_bytes(i.file_size)
    );
    let _ = writeln!(
        o,
        "process:     pid {} ({}): {}",
        i.pid,
        i.comm,
        i.exe_path.as_deref().unwrap_or("executable not recorded")
    );
    if !i.cmdline.is_empty() {
        let _ = writeln!(o, "cmdline:     {}", i.cmdline);
    }
    if i.signal != 0 {
        let name = match i.signal {
            libc::SIGQUIT => " (SIGQUIT)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGTRAP => " (SIGTRAP)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGSYS => " (SIGSYS)",
            _ => "",
        };
        let _ = writeln!(o, "signal:      {}{name}", i.signal);
    }
    let _ = writeln!(o, "threads:     {}", i.threads);
    let _ = writeln!(
        o,
        "memory:      {} in {} segments, {} file mappings",
        report::fmt_bytes(i.memory_bytes),
        i.memory_segments,
        i.mapped_files
    );
    let _ = writeln!(
        o,
        "dumped:      unix time {:.3}",
        i.capture_wall_time_ns as f64 / 1e9
    );
    match (&i.binary, &i.binary_error) {
        (Some(b), _) => {
            let _ = writeln!(o, "go:          {}", i.go_version.as_deref().unwrap_or("?"));
            let _ = writeln!(
                o,
                "build ids:   {}",
                crate::binary::elf::build_id_string(
                    i.go_build_id.as_deref(),
                    i.gnu_build_id.as_deref()
                )
            );
            let _ = writeln!(o, "binary:      {b}");
        }
        (None, Some(e)) => {
            let _ = writeln!(o, "binary:      not available: {e}");
        }
        (None, None) => {}
    }
    for w in &i.warnings {
        let _ = writeln!(o, "warning:     {w}");
    }
    out(&o)
}

/// `--non-blocking`: one warning line per goroutine that changed while read.
fn print_unstable(meta: &crate::model::CaptureMeta) {
    for u in &meta.flags.unstable {
        eprintln!("warning: {}", u.note());
    }
}
