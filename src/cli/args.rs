//! Command line arguments (clap): every command, its flags and help text.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
  gospy pprof --pid 1234 heap -o heap.pb.gz      the runtime's heap profile, live
  gospy analyze app.gss heap --sites             top allocation sites, no Go toolchain
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
  gospy analyze app.gss heap --sites -n 10 --sample alloc_space
  gospy analyze app.gss pprof heap -o heap.pb.gz && go tool pprof -top heap.pb.gz
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
  gospy heap --pid 1234 --large --json
  gospy heap --pid 1234 --sites -n 10     top allocation sites (in-use bytes)")]
    Heap(LiveArgs<HeapArgs>),
    /// Live: capture into memory, then write a pprof goroutine, heap, allocs, block or mutex profile
    #[command(
        after_help = "The heap and allocs profiles are the runtime's own sampled records
(runtime.MemProfileRate, 512 KiB by default), read from the process's memory: no
net/http/pprof, no port, nothing written to the target. So are the block and
mutex profiles, once the program turned them on (runtime.SetBlockProfileRate,
runtime.SetMutexProfileFraction).

Examples:
  gospy pprof --pid 1234 -o goroutines.pb.gz
  gospy pprof --pid 1234 heap -o heap.pb.gz && go tool pprof -top heap.pb.gz
  gospy pprof --pid 1234 allocs -o allocs.pb.gz
  gospy pprof --pid 1234 mutex -o mutex.pb.gz && go tool pprof -top mutex.pb.gz"
    )]
    Pprof(LiveArgs<PprofArgs>),
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
    /// Live: a heap-complete capture into memory, then the goroutines that can never
    /// run again (see `gospy analyze FILE leaks --help`)
    #[command(after_help = LEAKS_HELP)]
    Leaks(LiveArgs<LeaksArgs>),
    /// Compare two snapshots of one process: goroutine growth, leak candidates
    #[command(after_help = "Examples:
  gospy diff before.gss after.gss
  gospy diff snaps/1234-1.gss snaps/1234-6.gss --by go --json
  gospy diff before.gss after.gss --heap-sites    where in-use memory grew (heap profile)")]
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
    /// Generate packaging files: man pages or completion scripts
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `gospy generate` (hidden): files for packages.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
}

#[derive(Subcommand, Debug)]
pub enum GenerateWhat {
    /// Man pages: gospy.1 and one gospy-COMMAND.1 per command, in DIR
    Man {
        /// Directory to write the pages into (created if missing)
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
    },
    /// A completion script on stdout, or in --output DIR under the name the
    /// shell expects (gospy, _gospy, gospy.fish)
    Completions {
        /// Shell to generate completions for
        shell: clap_complete::Shell,
        /// Directory to write the script into instead of stdout
        #[arg(long, short, value_name = "DIR")]
        output: Option<PathBuf>,
    },
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
    /// Store the executable in the snapshot so it analyzes on any machine.
    /// Done without asking when the executable is not at its path on this
    /// machine (deleted or replaced, or the target runs in a container, in
    /// another mount namespace)
    #[arg(long)]
    pub embed_binary: bool,
    /// Never store the executable, even when it is not at its path on this
    /// machine (analysis will then need --bin)
    #[arg(long, conflicts_with = "embed_binary")]
    pub no_embed_binary: bool,
    /// Unstripped build of the target's executable (build ids must match)
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Print the capture report as JSON
    #[arg(long)]
    pub json: bool,
    /// Never stop the target: read it while it runs; goroutines that change
    /// while read are recorded as unstable. With --heap, spans swept, freed
    /// or reused during the copy are dropped and counted (heap_validation)
    #[arg(long)]
    pub non_blocking: bool,
    /// Read every goroutine inside the pause, even when the target is quiet
    /// (by default a quiet target's goroutines are read just before the
    /// stop and the pause only proves nothing ran since; see capture --json
    /// `quiet`)
    #[arg(long)]
    pub no_pre_read: bool,
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
    /// Heap-complete: also store every in-use heap span and its allocation
    /// bits (every span struct: --max-spans is ignored), for `analyze FILE
    /// objects`, with the finalizer and cleanup records (roots). The pause
    /// grows with the heap, at memory-copy speed (about 200-250 ms for a
    /// 256 MiB heap on a loaded 2-core machine); --non-blocking avoids it
    #[arg(long, conflicts_with = "redact")]
    pub heap: bool,
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
    /// Write a pprof goroutine, heap, allocs, block or mutex profile (gzip-compressed profile.proto)
    Pprof(PprofArgs),
    /// Folded stacks (`outer;...;inner count`) for flamegraph tools
    Folded(FoldedArgs),
    /// A global variable's value, by full name (main.config, net/http.DefaultClient)
    Var(VarArgs),
    /// Global variables and their types
    Vars(VarsArgs),
    /// Heap objects by type (or size class): count and bytes, plus totals.
    /// Needs a heap-complete snapshot (`capture --heap`, `--full`, or a core)
    #[command(
        after_help = "Types come from the runtime's own records (Go 1.22+: allocation
headers of objects over 512 B with pointers, span.largeType of large objects), then, with
DWARF, from every global and typed object through typed pointers. Objects whose type is
unknown are grouped as \"unknown, SIZE B\" by size class.

Examples:
  gospy capture --pid 1234 --heap -o app.gss
  gospy analyze app.gss objects
  gospy analyze app.gss objects --by size-class
  gospy analyze app.gss objects --json -n 0"
    )]
    Objects(ObjectsArgs),
    /// What holds the memory: bytes and objects each root (global, goroutine frame,
    /// runtime internal) retains, from the heap's dominator tree, with the path down its
    /// largest retained chain; also per type. Needs a heap-complete snapshot
    #[command(
        after_help = "An object is retained by a root when every path from any root to it goes
through that root: dropping the root would free it. Objects several roots reach are
retained by none of them. Roots: package globals by full name (main.cache), runtime
globals (runtime: allgs), goroutine frames (goroutine 18: main.holder); without a symbol
table, data+0xOFF / bss+0xOFF.

Pointers come from the GC's own exact masks: .data/.bss pointer masks, frame stack maps,
and per heap object the span heap bits and allocation header types (Go 1.22+) or the heap
arena bitmaps (Go 1.19-1.21, stored by `capture --heap`). Where no mask can be read (e.g. a
1.19-1.21 snapshot taken before gospy stored the bitmaps) words are scanned conservatively,
said in the warnings and in JSON's \"conservative\": a stale word can then make an object
look shared. Finalizer specials are not roots yet.

Examples:
  gospy capture --pid 1234 --heap -o app.gss
  gospy analyze app.gss retain --top 20
  gospy analyze app.gss retain -o retain.pb.gz && go tool pprof -top retain.pb.gz
  gospy analyze app.gss retain --json"
    )]
    Retain(RetainArgs),
    /// Why an object is alive: the shortest path from a root to it (by address, or
    /// for objects of one type)
    #[command(after_help = "Examples:
  gospy analyze app.gss path 0xc000123450
  gospy analyze app.gss path --type main.Node -n 3
  gospy analyze app.gss path --type '[]uint8' --json")]
    Path(PathArgs),
    /// Goroutines that can never run again: blocked on a channel, select or sync object
    /// that nothing able to run can reach (the runtime's goroutine leak definition).
    /// Needs a heap-complete snapshot
    #[command(after_help = LEAKS_HELP)]
    Leaks(LeaksArgs),
}

/// Shared by `analyze FILE leaks` and live `leaks`.
pub const LEAKS_HELP: &str = "A goroutine is leaked when it waits on a channel operation, a select
(nil channels and `select {}` included) or a sync.Mutex, RWMutex, WaitGroup or Cond, and
what it waits on is reachable only from the stacks of other such goroutines. As the Go
runtime's own leak detector (Go 1.26+ GOEXPERIMENT=goroutineleakprofile, on in 1.27)
does: mark from the globals, runtime internals and the stacks of goroutines that may run;
a blocked goroutine whose channel or sync object got marked may run too; repeat until
nothing changes; the blocked goroutines left are leaked. Works for Go 1.19-1.27 from a
snapshot, without a GC in the target. The main goroutine in `select {}` is not reported.

Output: groups (blocking site and creating function, with counts), then each goroutine.

Examples:
  gospy capture --pid 1234 --heap -o app.gss && gospy analyze app.gss leaks
  gospy analyze app.gss leaks --json     {\"leaked\": [{\"id\", \"wait_reason\", \"created_by\", \"frames\"}], \"groups\": [...]}
  gospy leaks --pid 1234                 live: a heap-complete capture in memory";

#[derive(Args, Debug, Clone)]
pub struct LeaksArgs {
    /// JSON output: {"leaked": [{"id", "wait_reason", "created_by", "frames", ...}], "groups": [...]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RetainArgs {
    /// Roots (and types) shown, most retained bytes first (0: all) [default: 20, all with --json]
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Also write a pprof profile (gzip): each root's path a stack, values retained
    /// objects and bytes (`go tool pprof -http=: retain.pb.gz` for a flame graph)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// JSON output: {"roots": [{"root", "kind", "retained_bytes", "retained_objects",
    /// "path"}], "types": [...], "total_bytes", "unreachable_bytes", ...}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PathArgs {
    /// Address inside the object (hex, 0x optional)
    #[arg(
        value_name = "ADDR",
        required_unless_present = "ty",
        conflicts_with = "ty"
    )]
    pub addr: Option<String>,
    /// Every object of this type (as `analyze FILE objects` names it)
    #[arg(long = "type", value_name = "T")]
    pub ty: Option<String>,
    /// Objects shown with --type
    #[arg(short = 'n', value_name = "N", default_value_t = 5)]
    pub n: usize,
    /// JSON output: {"matched", "objects": [{"addr", "type", "path": [{"name", "addr"}]}]}
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ObjectsBy {
    /// Go type as the runtime spells it (main.Node, []uint8, map.bucket[string][]uint8)
    #[default]
    Type,
    /// Size class (object size)
    SizeClass,
}

#[derive(Args, Debug, Clone)]
pub struct ObjectsArgs {
    /// Group objects by type or by size class
    #[arg(long, value_enum, default_value_t = ObjectsBy::Type)]
    pub by: ObjectsBy,
    /// JSON output: {"total_objects", "total_bytes", "types": [{"type", "count", "bytes"}], ...}
    #[arg(long)]
    pub json: bool,
    /// Groups shown, most bytes first (0: all) [default: 30, all with --json]
    #[arg(short = 'n', value_name = "N")]
    pub n: Option<usize>,
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
    /// Group by: start (default), go, current, stack, wait, leak (heap-complete
    /// snapshots), or label KEY
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

/// Which profile `pprof` writes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PprofKind {
    /// Goroutines and their stacks
    #[default]
    Goroutine,
    /// Allocation sites, in use and since the start (the runtime's sampled heap profile)
    Heap,
    /// The same records as heap, shown by default as alloc_space (bytes
    /// allocated since the start), as `pprof.Lookup("allocs")` writes them
    Allocs,
    /// Where goroutines waited (channels, select, sync.Cond, sync.Mutex
    /// waits): contentions and delay per stack, recorded by the runtime once
    /// the program called runtime.SetBlockProfileRate
    Block,
    /// Holders of contended mutexes (the Unlock that made others wait):
    /// contentions and delay per stack, recorded by the runtime once the
    /// program called runtime.SetMutexProfileFraction
    Mutex,
}

#[derive(Args, Debug, Clone)]
pub struct PprofArgs {
    /// The profile: goroutine (default), heap, allocs, block or mutex
    #[arg(value_enum, default_value_t = PprofKind::Goroutine, hide_default_value = true)]
    pub kind: PprofKind,
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
    /// Instead of goroutines: growth of in-use heap objects and bytes per allocation
    /// site (the leaf frame's function and line), from the runtime's heap profile,
    /// largest growth first. JSON: {"objects_growth", "bytes_growth", "sites":
    /// [{"function", "file", "line", "objects_a", "objects_b", "objects_growth",
    /// "bytes_a", "bytes_b", "bytes_growth"}], "warnings"}
    #[arg(long, conflicts_with_all = ["by", "all"])]
    pub heap_sites: bool,
    /// Instead of goroutines: growth of heap objects by type between two heap-complete
    /// snapshots (`capture --heap`, --full or cores), largest byte growth first. JSON:
    /// {"objects_growth", "bytes_growth", "types": [{"type", "count_a", "count_b",
    /// "count_growth", "bytes_a", "bytes_b", "bytes_growth"}], "warnings"}
    #[arg(long, conflicts_with_all = ["by", "all", "heap_sites"])]
    pub objects: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HeapArgs {
    /// JSON output: {"memstats": {runtime.MemStats fields}, "size_classes", "per_p", "large", ...};
    /// with --sites: {"sample", "total", "sites": [{"function", "file", "line" (with --lines),
    /// "flat", "flat_pct", "cum", "cum_pct"}]}
    #[arg(long)]
    pub json: bool,
    /// List large objects (> 32 KiB), biggest first
    #[arg(long, conflicts_with = "sites")]
    pub large: bool,
    /// Top allocation sites from the runtime's heap profile, like `go tool pprof -top`:
    /// flat = samples allocated in the function itself (the leaf frame), cum = samples
    /// with the function anywhere on the stack (once per sample), sorted by flat
    #[arg(long)]
    pub sites: bool,
    /// With --sites: the value to rank by
    #[arg(long, value_enum, default_value_t = SampleType::InuseSpace, requires = "sites")]
    pub sample: SampleType,
    /// With --sites: sites shown (0: all)
    #[arg(
        short = 'n',
        value_name = "N",
        default_value_t = 20,
        requires = "sites"
    )]
    pub n: usize,
    /// With --sites: one site per source line instead of per function
    #[arg(long, requires = "sites")]
    pub lines: bool,
}

/// A heap profile's sample type (values scaled as runtime/pprof scales
/// them when the profile is sampled).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    /// Bytes allocated and not yet freed (as of the last GC)
    #[value(name = "inuse_space")]
    InuseSpace,
    /// Objects allocated and not yet freed (as of the last GC)
    #[value(name = "inuse_objects")]
    InuseObjects,
    /// Bytes allocated since the program started
    #[value(name = "alloc_space")]
    AllocSpace,
    /// Objects allocated since the program started
    #[value(name = "alloc_objects")]
    AllocObjects,
}

impl SampleType {
    /// The name in the profile (`inuse_space`...).
    pub fn name(self) -> &'static str {
        match self {
            SampleType::InuseSpace => "inuse_space",
            SampleType::InuseObjects => "inuse_objects",
            SampleType::AllocSpace => "alloc_space",
            SampleType::AllocObjects => "alloc_objects",
        }
    }
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
    /// GOTRACEBACK=system: system goroutines, runtime-internal frames and
    /// creators, g/m addresses and each frame's fp/sp/pc (as a SIGQUIT dump)
    #[arg(long)]
    pub all: bool,
    /// Add a `[waiting on ...]` line (channel, semaphore, Cond) after headers
    #[arg(long)]
    pub wait_info: bool,
    /// Show pprof labels in goroutine headers even where the target's runtime
    /// would not (by default they follow its tracebacklabels setting, Go 1.26+)
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
