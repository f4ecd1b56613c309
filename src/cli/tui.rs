//! `gospy top --pid N` on a terminal: a refreshing full-screen view in the
//! spirit of py-spy top (ratatui + crossterm).
//!
//! One thread: each refresh captures the target (the same short ptrace pause
//! as every live command), builds the model, and the view regroups the latest
//! capture on every key press without touching the target again. The terminal
//! is restored on every exit path: normal return, error, panic (hook) and
//! SIGINT/SIGTERM delivered from outside (raw mode turns Ctrl-C into a key).

use super::live::{self, Preset};
use crate::analyze::{Model, Session};
use crate::report::{self, top};
use anyhow::Result;
use ratatui::crossterm::{
    event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Paragraph, Row, Table},
    Terminal,
};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Groupings cycled by `g`.
const GROUPINGS: [top::GroupBy; 4] = [
    top::GroupBy::Start,
    top::GroupBy::Current,
    top::GroupBy::Go,
    top::GroupBy::Stack,
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SortBy {
    Count,
    Delta,
    Name,
}

impl SortBy {
    fn next(self) -> SortBy {
        match self {
            SortBy::Count => SortBy::Delta,
            SortBy::Delta => SortBy::Name,
            SortBy::Name => SortBy::Count,
        }
    }
    fn name(self) -> &'static str {
        match self {
            SortBy::Count => "count",
            SortBy::Delta => "delta",
            SortBy::Name => "name",
        }
    }
}

/// Options of the interactive view.
pub struct TuiOptions {
    /// The process, as for every live command.
    pub target: live::Target,
    pub interval: Duration,
    /// Include system goroutines.
    pub all: bool,
    /// Initial grouping (from --by).
    pub by: top::GroupBy,
    /// Initial filter (from --filter).
    pub filter: Option<String>,
}

/// Set by SIGINT / SIGTERM / SIGHUP, or the watchdog, while the view runs.
static QUIT: AtomicBool = AtomicBool::new(false);
/// Held while a refresh captures (the target may be stopped), and by the
/// watchdog when it ends the process: no capture is under way then, and
/// none starts.
static CAPTURE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether the terminal (stdout) hung up or went away.
fn terminal_gone() -> bool {
    let mut p = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    (n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
        || !std::io::stdout().is_terminal()
}

/// Ends the view when asked to (signal) or when its terminal hangs up, even
/// while the main thread is stuck: crossterm's reader spins forever on a
/// hung-up tty (its read loop retries EOF and EIO), where no signal handler
/// flag is ever looked at. Never while a refresh captures: the pause guard
/// there must resume the target first; the main thread sees QUIT after it.
fn start_watchdog() {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(200));
        if terminal_gone() {
            QUIT.store(true, Ordering::SeqCst);
        }
        if QUIT.load(Ordering::SeqCst) {
            // Give the main thread its normal way out first.
            std::thread::sleep(Duration::from_millis(500));
            let _no_capture = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
            restore_terminal();
            std::process::exit(0);
        }
    });
}

/// Restores the terminal when dropped (normal return, `?`, unwinding).
struct TermGuard;

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// One capture, kept for regrouping.
struct Snap {
    session: Session,
    model: Model,
}

struct App {
    group: usize,
    sort: SortBy,
    filter: Option<regex::Regex>,
    filter_text: String,
    /// Some while typing a filter after `/`.
    editing: Option<String>,
    paused: bool,
    cur: Option<Snap>,
    prev: Option<Snap>,
    error: Option<String>,
    refreshes: u64,
}

struct ViewGroup {
    key: String,
    count: usize,
    delta: Option<i64>,
    statuses: BTreeMap<std::sync::Arc<str>, usize>,
}

impl App {
    fn options(&self, all: bool) -> top::TopOptions {
        top::TopOptions {
            by: GROUPINGS[self.group].clone(),
            filter: self.filter.clone(),
            all,
        }
    }

    fn groups(&self, all: bool) -> Vec<ViewGroup> {
        let Some(cur) = &self.cur else {
            return Vec::new();
        };
        let o = self.options(all);
        let t = top::build(&cur.session, &cur.model, &o);
        let prev: Option<HashMap<String, usize>> = self.prev.as_ref().map(|p| {
            top::build(&p.session, &p.model, &o)
                .groups
                .into_iter()
                .map(|g| (g.key, g.count))
                .collect()
        });
        let mut v: Vec<ViewGroup> = t
            .groups
            .into_iter()
            .map(|g| ViewGroup {
                delta: prev
                    .as_ref()
                    .map(|p| g.count as i64 - p.get(&g.key).copied().unwrap_or(0) as i64),
                key: g.key,
                count: g.count,
                statuses: g.statuses,
            })
            .collect();
        // Groups that vanished since the last refresh, shown with count 0.
        if let Some(p) = &prev {
            for (k, n) in p {
                if !v.iter().any(|g| &g.key == k) {
                    v.push(ViewGroup {
                        key: k.clone(),
                        count: 0,
                        delta: Some(-(*n as i64)),
                        statuses: BTreeMap::new(),
                    });
                }
            }
        }
        match self.sort {
            SortBy::Count => {
                v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)))
            }
            SortBy::Delta => v.sort_by(|a, b| {
                b.delta
                    .unwrap_or(0)
                    .abs()
                    .cmp(&a.delta.unwrap_or(0).abs())
                    .then_with(|| b.count.cmp(&a.count))
                    .then_with(|| a.key.cmp(&b.key))
            }),
            SortBy::Name => v.sort_by(|a, b| a.key.cmp(&b.key)),
        }
        v
    }
}

/// One refresh: the same capture as `gospy top --pid N --once` (no global
/// values read during the pause). Unstable goroutines are not listed here:
/// the view has no room for warnings.
fn capture_once(o: &TuiOptions) -> Result<Snap> {
    let session = live::session(&o.target, &Preset::Goroutines, |_| {})?;
    let model = Model::build_lean(&session)?;
    Ok(Snap { session, model })
}

/// Runs the interactive view until q / Esc / Ctrl-C (or a signal). The first
/// capture happens before the terminal is switched, so that an error (no such
/// process, permission) prints like every other command's.
pub fn run(o: &TuiOptions) -> Result<()> {
    let first = capture_once(o)?;
    let filter = match &o.filter {
        Some(f) => Some(regex::Regex::new(f)?),
        None => None,
    };
    let mut app = App {
        group: GROUPINGS.iter().position(|g| *g == o.by).unwrap_or(0),
        sort: SortBy::Count,
        filter,
        filter_text: o.filter.clone().unwrap_or_default(),
        editing: None,
        paused: false,
        cur: Some(first),
        prev: None,
        error: None,
        refreshes: 1,
    };

    extern "C" fn on_signal(_: libc::c_int) {
        QUIT.store(true, Ordering::SeqCst);
    }
    // SAFETY: installs an async-signal-safe handler (one atomic store).
    unsafe {
        let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGHUP, h);
    }
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev_hook(info);
    }));

    enable_raw_mode()?;
    let _guard = TermGuard;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let mut term = Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;

    start_watchdog();
    let mut next = Instant::now() + o.interval;
    loop {
        // A signal, or the watchdog: the terminal went away (hung up
        // without a SIGHUP reaching us: its session leader got it).
        if QUIT.load(Ordering::SeqCst) {
            return Ok(());
        }
        term.draw(|f| draw(f, &app, o))?;
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if let Some(text) = app.editing.as_mut() {
                        match k.code {
                            KeyCode::Enter => {
                                let t = std::mem::take(text);
                                app.editing = None;
                                if t.is_empty() {
                                    app.filter = None;
                                } else {
                                    // An invalid regex filters literally.
                                    app.filter = Some(regex::Regex::new(&t).unwrap_or_else(|_| {
                                        regex::Regex::new(&regex::escape(&t))
                                            .expect("escaped regex")
                                    }));
                                }
                                app.filter_text = t;
                            }
                            KeyCode::Esc => app.editing = None,
                            KeyCode::Backspace => {
                                text.pop();
                            }
                            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                                return Ok(())
                            }
                            KeyCode::Char(c) => text.push(c),
                            _ => {}
                        }
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            return Ok(())
                        }
                        KeyCode::Char('g') => app.group = (app.group + 1) % GROUPINGS.len(),
                        KeyCode::Char('s') => app.sort = app.sort.next(),
                        KeyCode::Char('/') => app.editing = Some(app.filter_text.clone()),
                        KeyCode::Char('p') => {
                            app.paused = !app.paused;
                            next = Instant::now() + o.interval;
                        }
                        _ => {}
                    }
                }
                Event::Resize(..) => {
                    term.autoresize()?;
                }
                _ => {}
            }
            continue;
        }
        if Instant::now() >= next {
            if !app.paused {
                let res = {
                    let _capturing = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
                    capture_once(o)
                };
                match res {
                    Ok(s) => {
                        app.prev = app.cur.take();
                        app.cur = Some(s);
                        app.error = None;
                        app.refreshes += 1;
                    }
                    Err(e) => {
                        app.error = Some(crate::text::error_line(&e));
                    }
                }
            }
            next = Instant::now() + o.interval;
        }
    }
}

fn draw(f: &mut ratatui::Frame, app: &App, o: &TuiOptions) {
    let area = f.area();
    let chunks = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .split(area);
    let bold = Style::default().add_modifier(Modifier::BOLD);

    // Header.
    let mut head: Vec<Line> = Vec::new();
    if let Some(cur) = &app.cur {
        let s = &cur.session;
        let m = &cur.model;
        let mut by_status: BTreeMap<std::sync::Arc<str>, usize> = BTreeMap::new();
        for g in m.goroutines.iter().filter(|g| o.all || !g.system) {
            *by_status.entry(g.status.clone()).or_insert(0) += 1;
        }
        head.push(Line::styled(
            format!(
                "gospy top  pid {}{}  {}  uptime {}  refresh {}{}",
                s.meta.pid,
                match s.meta.ns_pid.last() {
                    Some(inner) if s.meta.ns_pid.len() > 1 => format!(" (ns pid {inner})"),
                    _ => String::new(),
                },
                s.meta.go_version,
                m.uptime_ns
                    .map(report::fmt_duration_ns)
                    .unwrap_or_else(|| "?".into()),
                app.refreshes,
                if app.paused { "  [PAUSED]" } else { "" }
            ),
            bold,
        ));
        head.push(Line::raw(format!(
            "goroutines {} (NumGoroutine {}): {}",
            by_status.values().sum::<usize>(),
            m.num_goroutine
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            top::status_mix(&by_status)
        )));
        let heap = report::heap::summary_line(s);
        head.push(Line::raw(match heap {
            Some(h) => format!(
                "heap in use {}  GC count {}  last GC pause {}",
                report::fmt_bytes(h.heap_inuse),
                h.num_gc,
                h.last_pause_ns
                    .map(report::fmt_duration_ns)
                    .unwrap_or_else(|| "-".into())
            ),
            None => "heap: not decodable".into(),
        }));
        head.push(Line::raw(format!(
            "{}  every {:.1}s  grouped by {}  sorted by {}{}",
            if s.meta.stopped {
                format!(
                    "this refresh paused the target {}",
                    report::fmt_duration_ns(s.meta.pause_ns)
                )
            } else {
                "non-blocking: target never stopped".into()
            },
            o.interval.as_secs_f64(),
            GROUPINGS[app.group].name(),
            app.sort.name(),
            if app.filter_text.is_empty() {
                String::new()
            } else {
                format!("  filter /{}/", app.filter_text)
            }
        )));
    }
    f.render_widget(Paragraph::new(head), chunks[0]);

    // Body.
    let groups = app.groups(o.all);
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            Row::new(vec![
                g.count.to_string(),
                match g.delta {
                    Some(0) | None => String::new(),
                    Some(d) => format!("{d:+}"),
                },
                top::status_mix(&g.statuses),
                g.key.clone(),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(24),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec!["COUNT", "DELTA", "STATUS", "KEY"])
            .style(bold.add_modifier(Modifier::REVERSED)),
    );
    f.render_widget(table, chunks[1]);

    // Footer: keys, filter input or the last error.
    let footer = if let Some(t) = &app.editing {
        format!("filter (regex, Enter applies, Esc cancels): {t}_")
    } else if let Some(e) = &app.error {
        format!("error: {e}")
    } else {
        "g grouping  s sort  / filter  p pause  q quit".into()
    };
    f.render_widget(
        Paragraph::new(footer).style(Style::default().add_modifier(Modifier::REVERSED)),
        chunks[2],
    );
}
