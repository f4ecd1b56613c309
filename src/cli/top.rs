//! `gospy top --pid N`: the interactive view on a terminal, plain periodic
//! reports otherwise; and the `top` report shared with `gospy analyze`.

use super::args::{LiveArgs, LiveTopArgs, TopArgs};
use super::live::{self, Preset};
use super::output::{json_out, out};
use super::tui;
use crate::analyze::{Model, Session};
use crate::report;
use anyhow::{Context, Result};

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

pub(super) fn print_top(s: &Session, a: &TopArgs) -> Result<()> {
    let o = top_options(a)?;
    report::top::check_by(s, &o.by)?;
    let m = Model::build_lean(s)?;
    let t = report::top::build(s, &m, &o);
    if a.json {
        json_out(&t.groups)
    } else {
        out(&report::top::to_text(&t, &o.by))
    }
}

pub(super) fn live_top(a: &LiveArgs<LiveTopArgs>) -> Result<()> {
    let args = &a.args;
    let target = live::Target::from(a);
    // Validate the options before touching the target.
    let topts = top_options(&args.top)?;
    if topts.by == report::top::GroupBy::Leak {
        anyhow::bail!(
            "live top cannot group by leak (it needs the whole heap): use `gospy leaks --pid {}`, \
             or capture with --heap and run `gospy analyze FILE top --by leak`",
            a.pid
        );
    }
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
        return tui::run(&tui::TuiOptions {
            target,
            interval: std::time::Duration::from_secs_f64(args.interval),
            all: args.top.all,
            by: topts.by,
            filter: args.top.filter.clone(),
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
        live::run(&target, &Preset::Goroutines, |s| {
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
