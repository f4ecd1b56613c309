//! Writing reports to stdout: the only place the CLI's results leave the
//! process (warnings go to stderr from the commands themselves).

use anyhow::Result;
use std::io::Write;

pub fn out(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()?;
    Ok(())
}

pub fn json_out<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    out(&s)
}

/// The process exits right after a one-shot report: freeing a model of 100k
/// goroutines one allocation at a time would only cost time. (Not for
/// reports repeated in a loop, like `top --pid --interval`.)
pub fn exit_soon<T>(x: T) {
    std::mem::forget(x);
}
