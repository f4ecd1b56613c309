//! Command line: argument parsing, dispatch, output, exit codes.
//!
//! Only this module prints. Each command lives in its own file; live
//! commands all capture through [`live`], the one live path.

mod analyze_cmd;
pub mod args;
mod capture_cmd;
mod diff_cmd;
pub mod generate;
mod info;
mod leaks_cmd;
pub mod live;
mod objects_cmd;
mod output;
pub mod progress;
mod retain_cmd;
mod top;
pub mod tui;

use analyze_cmd::{print_dump, print_heap, print_summary, print_var, write_pprof};
use args::{Cli, Command};
use clap::Parser;
use live::Preset;

/// Exit codes (documented in the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const TARGET: i32 = 3;
    pub const INPUT: i32 = 4;
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
        Command::Capture(a) => (capture_cmd::cmd_capture(&a), exit::TARGET),
        Command::Analyze(a) => (analyze_cmd::cmd_analyze(&a), exit::INPUT),
        Command::Summary(a) => (
            live::run(&(&a).into(), &Preset::Goroutines, |s| {
                print_summary(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Dump(a) => (
            live::run(&(&a).into(), &Preset::Goroutines, |s| {
                print_dump(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Heap(a) => (
            live::run(
                &(&a).into(),
                &Preset::Heap {
                    large: a.args.large,
                    sites: a.args.sites,
                },
                |s| print_heap(s, &a.args),
            ),
            exit::TARGET,
        ),
        Command::Pprof(a) => (
            live::run(
                &(&a).into(),
                &Preset::Profile {
                    mem: a.args.kind != args::PprofKind::Goroutine,
                },
                |s| write_pprof(s, &a.args),
            ),
            exit::TARGET,
        ),
        Command::Var(a) => (
            live::run(&(&a).into(), &Preset::Var(a.args.name.clone()), |s| {
                print_var(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Info(a) => (info::cmd_info(&a), exit::INPUT),
        Command::Convert(a) => (info::cmd_convert(&a), exit::INPUT),
        Command::Top(a) => (top::live_top(&a), exit::TARGET),
        Command::Leaks(a) => (
            live::run(&(&a).into(), &Preset::HeapComplete, |s| {
                leaks_cmd::print_leaks(s, &a.args)
            }),
            exit::TARGET,
        ),
        Command::Diff(a) => (diff_cmd::cmd_diff(&a), exit::INPUT),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "gospy", &mut std::io::stdout());
            (Ok(()), exit::ERROR)
        }
        Command::Generate(a) => (generate::cmd_generate(&a), exit::ERROR),
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
            eprintln!("gospy: error: {}", crate::text::error_line(&e));
            class
        }
    }
}
