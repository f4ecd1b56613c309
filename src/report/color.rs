//! Minimal colour for text reports: goroutine status names only, only when
//! stdout is a terminal and NO_COLOR is not set (https://no-color.org).

use std::io::IsTerminal;
use std::sync::OnceLock;

/// Whether reports written to stdout may use colour.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty())
            && std::io::stdout().is_terminal()
            && std::env::var_os("TERM").map_or(true, |t| t != "dumb")
    })
}

/// ANSI colour of a status or state name, if it has one.
fn code(state: &str) -> Option<&'static str> {
    Some(match state {
        "running" => "32",      // green
        "runnable" => "36",     // cyan
        "syscall" => "35",      // magenta
        "waiting" => "33",      // yellow
        "dead" | "idle" => "2", // dim
        _ => return None,
    })
}

/// `state` coloured when colour is enabled.
pub fn state(state: &str) -> String {
    paint(state, enabled())
}

/// `state` coloured when `on`.
pub fn paint(state: &str, on: bool) -> String {
    match (on, code(state)) {
        (true, Some(c)) => format!("\x1b[{c}m{state}\x1b[0m"),
        _ => state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paint() {
        assert_eq!(super::paint("running", false), "running");
        assert_eq!(super::paint("running", true), "\x1b[32mrunning\x1b[0m");
        assert_eq!(super::paint("chan receive", true), "chan receive");
    }
}
