//! `dump`: every goroutine with its stack, in the Go runtime's traceback
//! format (what `runtime.Stack(buf, true)` prints), or as JSON.

use crate::analyze::{Goroutine, Model, Session};
use crate::goruntime::traceback::{CreatedBy, Frame};
use crate::goruntime::version::GoVersion;
use crate::goruntime::Target;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct DumpGoroutine<'a> {
    pub id: u64,
    pub status: &'a str,
    pub wait_reason: Option<&'a str>,
    pub state: &'a str,
    pub wait_minutes: u64,
    pub wait_ns: Option<u64>,
    pub locked_to_thread: bool,
    pub system: bool,
    pub m: Option<i64>,
    pub start_function: String,
    pub frames: Vec<&'a Frame>,
    pub created_by: Option<&'a CreatedBy>,
    pub labels: &'a BTreeMap<String, String>,
    /// Why the stack is missing, when it is.
    pub stack_unavailable: Option<&'a str>,
    /// Why unwinding stopped early, when it did.
    pub stack_error: Option<&'a str>,
    pub warnings: &'a [String],
    /// The channel, semaphore or Cond it is blocked on, when known.
    pub waiting_on: Option<&'a crate::goruntime::waiting::WaitingOn>,
    /// Changed while a `--non-blocking` capture read it (frames not shown).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unstable: bool,
}

pub struct DumpOptions {
    /// Show system goroutines and runtime frames (GOTRACEBACK=system style).
    pub all: bool,
    /// Add a `[waiting on ...]` line after the header (not in the runtime's
    /// format, so off by default).
    pub wait_info: bool,
    /// Show pprof labels in goroutine headers even where the runtime would
    /// not (by default they are shown exactly when the target's runtime
    /// prints them: its `tracebacklabels` setting, Go 1.26+).
    pub labels: bool,
}

pub fn visible<'a>(m: &'a Model, opts: &DumpOptions) -> impl Iterator<Item = &'a Goroutine> {
    let all = opts.all;
    m.goroutines.iter().filter(move |g| all || !g.system)
}

pub fn to_json(s: &Session, m: &Model, opts: &DumpOptions) -> Vec<serde_json::Value> {
    visible(m, opts)
        .map(|g| {
            let d = DumpGoroutine {
                id: g.g.goid,
                status: &g.status,
                wait_reason: g.wait_reason.as_deref(),
                state: &g.state,
                wait_minutes: g.wait_minutes,
                wait_ns: g.wait_ns,
                locked_to_thread: g.locked_to_thread,
                system: g.system,
                m: g.m_id,
                start_function: super::start_function(s, g),
                frames: g
                    .stack
                    .frames
                    .iter()
                    .filter(|f| opts.all || f.shown)
                    .collect(),
                created_by: g.created_by.as_ref().filter(|c| opts.all || c.shown),
                labels: &g.labels,
                stack_unavailable: g.stack.unavailable.as_deref(),
                stack_error: g.stack.error.as_deref(),
                warnings: &g.warnings,
                waiting_on: g.waiting_on.as_ref(),
                unstable: g.unstable,
            };
            serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

fn needs_quoting(s: &str) -> bool {
    !s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/' || c == '_')
}

fn q(s: &str) -> String {
    if needs_quoting(s) {
        go_quoted(s)
    } else {
        s.to_string()
    }
}

/// The runtime's `printquoted` (print.go): printable ASCII as is, `\n \r
/// \t \\ \"` escaped, other characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn go_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (c as u32) < 127 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// How goroutine headers show pprof labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelStyle {
    /// Not at all (the runtime's `tracebacklabels` is 0, or before Go 1.26).
    Hidden,
    /// Go 1.27: ` {k: v, "k 2": "v"}` after the brackets, quoted only
    /// where needed.
    AfterBrackets,
    /// Go 1.26: ` labels:{"k": "v"}` inside the brackets, always quoted.
    InsideBrackets,
}

impl LabelStyle {
    /// What the target's runtime prints (`runtime_prints`: its
    /// `tracebacklabels` setting is 1), or what `--labels` forces.
    pub fn new(go: GoVersion, runtime_prints: bool, forced: bool) -> LabelStyle {
        if !runtime_prints && !forced {
            LabelStyle::Hidden
        } else if go.at_least(1, 26) && !go.at_least(1, 27) {
            LabelStyle::InsideBrackets
        } else {
            LabelStyle::AfterBrackets
        }
    }

    /// The style of `m`'s target with `opts`.
    pub fn of(s: &Session, m: &Model, opts: &DumpOptions) -> LabelStyle {
        LabelStyle::new(s.target.bin.go, m.traceback_labels, opts.labels)
    }
}

/// `goroutine N [state, M minutes, locked to thread] {labels}:`
pub fn header(g: &Goroutine, labels: LabelStyle) -> String {
    let mut h = format!("goroutine {} [{}", g.g.goid, g.state);
    if g.g.scan {
        h.push_str(" (scan)");
    }
    if g.wait_minutes >= 1 {
        let _ = write!(h, ", {} minutes", g.wait_minutes);
    }
    if g.locked_to_thread {
        h.push_str(", locked to thread");
    }
    let kv = |quote: fn(&str) -> String| -> String {
        let kv: Vec<String> = g
            .labels
            .iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect();
        kv.join(", ")
    };
    match labels {
        LabelStyle::InsideBrackets if !g.labels.is_empty() => {
            let _ = write!(h, " labels:{{{}}}]", kv(go_quoted));
        }
        LabelStyle::AfterBrackets if !g.labels.is_empty() => {
            let _ = write!(h, "] {{{}}}", kv(q));
        }
        _ => h.push(']'),
    }
    h.push(':');
    h
}

/// How the goroutines of one target are rendered.
#[derive(Clone, Copy)]
pub struct Style<'a> {
    pub go: GoVersion,
    pub labels: LabelStyle,
    /// What GOTRACEBACK=system (`--all`) adds: ` gp=0x.. m=N mp=0x..` in
    /// headers (Go 1.22+) and ` fp=0x.. sp=0x.. pc=0x..` after each
    /// physical frame's location (the target gives the outermost frame's
    /// size).
    pub addresses: Option<&'a Target>,
}

impl<'a> Style<'a> {
    pub fn of(s: &'a Session, m: &Model, opts: &DumpOptions) -> Style<'a> {
        Style {
            go: s.target.bin.go,
            labels: LabelStyle::of(s, m, opts),
            addresses: opts.all.then_some(&s.target),
        }
    }
}

pub fn render_goroutine(out: &mut String, g: &Goroutine, opts: &DumpOptions, style: &Style) {
    render_goroutine_frames(out, g, &g.stack.frames, opts, style)
}

/// Each physical frame's `fp` (the caller's SP: the next physical frame's
/// sp; for the outermost, sp + frame size + the return address), None for
/// inlined frames.
fn frame_pointers(t: &Target, frames: &[&Frame]) -> Vec<Option<u64>> {
    let mut out = vec![None; frames.len()];
    let mut caller_sp: Option<u64> = None;
    for (i, f) in frames.iter().enumerate().rev() {
        if f.inlined {
            continue;
        }
        out[i] = caller_sp.or_else(|| {
            let d = t.pc_info(f.pc, false)?.spdelta?;
            Some(f.sp.wrapping_add(d as u64).wrapping_add(8))
        });
        caller_sp = Some(f.sp);
    }
    out
}

/// [`render_goroutine`] with `frames` in place of the goroutine's own
/// (the same frames, with arguments: [`Model::frames_with_args`]).
pub fn render_goroutine_frames(
    out: &mut String,
    g: &Goroutine,
    frames: &[Frame],
    opts: &DumpOptions,
    style: &Style,
) {
    let all = opts.all;
    let go = style.go;
    let mut h = header(g, style.labels);
    if style.addresses.is_some() && go.at_least(1, 22) {
        let at = "goroutine ".len() + g.g.goid.to_string().len();
        let mut a = format!(" gp={:#x}", g.g.addr);
        match (g.g.m, g.m_id) {
            (0, _) => a.push_str(" m=nil"),
            (mp, Some(id)) => {
                let _ = write!(a, " m={id} mp={mp:#x}");
            }
            (mp, None) => {
                let _ = write!(a, " m=? mp={mp:#x}");
            }
        }
        h.insert_str(at, &a);
    }
    let _ = writeln!(out, "{h}");
    if let Some(why) = &g.stack.unavailable {
        let _ = writeln!(out, "\t{why}");
    }
    let frames: Vec<&Frame> = frames.iter().filter(|f| all || f.shown).collect();
    let fps = match style.addresses {
        Some(t) => frame_pointers(t, &frames),
        None => Vec::new(),
    };
    // The runtime prints at most 100 frames: from Go 1.21 the innermost 50
    // and outermost 50 around an elision line, before that the first 100.
    let n = frames.len();
    // Written piece by piece: the formatting machinery was a fifth of a
    // 100k-goroutine dump.
    let print = |out: &mut String, i: usize| {
        let f = frames[i];
        out.push_str(&f.function);
        out.push('(');
        out.push_str(f.args.as_deref().unwrap_or("..."));
        out.push_str(")\n\t");
        out.push_str(&f.file);
        out.push(':');
        crate::report::push_decimal(out, u64::from(f.line));
        if let Some(off) = f.offset {
            out.push_str(" +");
            crate::report::push_hex(out, off);
        }
        if let Some(fp) = fps.get(i).copied().flatten() {
            out.push_str(" fp=");
            crate::report::push_hex(out, fp);
            out.push_str(" sp=");
            crate::report::push_hex(out, f.sp);
            out.push_str(" pc=");
            crate::report::push_hex(out, f.pc);
        }
        out.push('\n');
    };
    if all && !go.at_least(1, 21) {
        // Go 1.19/1.20 stop after 100 physical frames (at GOTRACEBACK=system
        // every frame is printed, inlined ones with their physical frame).
        // The frames of a physical frame are its inlined ones, then itself.
        let end = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.inlined)
            .nth(99)
            .map_or(n, |(i, _)| i + 1);
        (0..end).for_each(|i| print(out, i));
        if end < n {
            let _ = writeln!(out, "...additional frames elided...");
        }
    } else if n <= 100 {
        (0..n).for_each(|i| print(out, i));
    } else if go.at_least(1, 21) {
        (0..50).for_each(|i| print(out, i));
        let _ = writeln!(out, "...{} frames elided...", n - 100);
        (n - 50..n).for_each(|i| print(out, i));
    } else {
        (0..100).for_each(|i| print(out, i));
        let _ = writeln!(out, "...additional frames elided...");
    }
    if let Some(e) = &g.stack.error {
        let _ = writeln!(out, "\t[gospy: stack walk stopped: {e}]");
    }
    // GOTRACEBACK=system (`--all`) also prints runtime-internal creators.
    if let Some(c) = g.created_by.as_ref().filter(|c| all || c.shown) {
        let _ = write!(out, "created by {}", c.function);
        if let Some(id) = c.goroutine {
            let _ = write!(out, " in goroutine {id}");
        }
        let _ = write!(out, "\n\t{}:{}", c.file, c.line);
        if let Some(off) = c.offset {
            let _ = write!(out, " +{off:#x}");
        }
        out.push('\n');
    }
}

pub fn to_text(s: &Session, m: &Model, opts: &DumpOptions) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_text(s, m, opts, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`to_text`] written to `w` as it is rendered: goroutines are formatted
/// in parallel a batch at a time and written in order, so neither the time
/// nor the memory of the whole text is paid up front.
pub fn write_text<W: std::io::Write>(
    s: &Session,
    m: &Model,
    opts: &DumpOptions,
    w: &mut W,
) -> std::io::Result<()> {
    use rayon::prelude::*;
    const BATCH: usize = 4096;
    let style = Style::of(s, m, opts);
    let gs: Vec<&Goroutine> = visible(m, opts).collect();
    for (bi, batch) in gs.chunks(BATCH).enumerate() {
        let texts: Vec<String> = batch
            .par_iter()
            .map(|g| {
                let mut one = String::with_capacity(1024);
                let frames = m.frames_with_args(s, g);
                render_goroutine_frames(&mut one, g, &frames, opts, &style);
                if let (true, Some(wo), Some(nl)) = (opts.wait_info, &g.waiting_on, one.find('\n'))
                {
                    // Right after the header line.
                    one.insert_str(nl + 1, &format!("\t[waiting on {}]\n", wo.describe()));
                }
                one
            })
            .collect();
        for (i, t) in texts.iter().enumerate() {
            if bi > 0 || i > 0 {
                w.write_all(b"\n")?;
            }
            w.write_all(t.as_bytes())?;
        }
    }
    Ok(())
}
