//! Reports built from the model: plain data (serde::Serialize) first, text
//! rendering separate.

pub mod blockprof;
pub mod color;
pub mod diff;
pub mod dump;
pub mod heap;
pub mod heapprof;
pub mod leaks;
pub mod objects;
pub mod pprof;
pub mod retain;
pub mod sites;
pub mod summary;
pub mod top;
pub mod vars;

use crate::analyze::{Goroutine, Session};
// Leaf text helpers, kept reachable as `report::*` for the reports.
pub use crate::text::{fmt_bytes, fmt_duration_ns, push_decimal, push_hex};

/// The function a goroutine was started with, `go` wrappers resolved: when
/// the start PC is a compiler wrapper (`main.main.gowrap1`, method value
/// wrappers) the real function is the outermost frame the wrapper called.
pub fn start_function(s: &Session, g: &Goroutine) -> String {
    let t = &s.target;
    let Some(f) = t.find_func(g.g.startpc) else {
        return "?".into();
    };
    let name = t.bin.pcln.func_name(&f);
    let is_wrapper = t.bin.pcln.is_wrapper(&f) || is_gowrap_name(name);
    if is_wrapper {
        // Frames are innermost first; the wrapper sits just inside goexit.
        let frames = &g.stack.frames;
        if let Some(pos) = frames
            .iter()
            .rposition(|fr| *fr.function == *crate::goruntime::traceback::print_name(name))
        {
            if pos > 0 {
                return frames[pos - 1].function.to_string();
            }
        }
        // Not started yet (only the wrapper on its stack): what the
        // wrapper's code calls.
        if let Some(w) = t.wrapped_function(g.g.startpc) {
            return w.to_string();
        }
    }
    crate::goruntime::traceback::print_name(name)
}

/// Whether `g` starts in a go-statement wrapper (its start function is then
/// read from its frames).
pub fn start_is_wrapper(s: &Session, g: &Goroutine) -> bool {
    let t = &s.target;
    t.find_func(g.g.startpc)
        .map(|f| t.bin.pcln.is_wrapper(&f) || is_gowrap_name(t.bin.pcln.func_name(&f)))
        .unwrap_or(false)
}

fn is_gowrap_name(name: &str) -> bool {
    match name.rfind(".gowrap") {
        Some(i) => name[i + 7..].chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// Whether a function belongs to the standard library (or the runtime):
/// its package path's first element has no dot and it is not `main`.
pub fn is_std_function(name: &str) -> bool {
    let pkg_end = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let pkg = match name[pkg_end..].find('.') {
        Some(i) => &name[..pkg_end + i],
        None => name,
    };
    if pkg == "main" {
        return false;
    }
    let first = pkg.split('/').next().unwrap_or(pkg);
    !first.contains('.')
}

/// The innermost user (non standard library) frame the runtime would show;
/// else the innermost shown frame; else the innermost at all.
pub fn current_location(g: &Goroutine) -> Option<&crate::goruntime::traceback::Frame> {
    let f = &g.stack.frames;
    f.iter()
        .find(|f| f.shown && !is_std_function(&f.function))
        .or_else(|| f.iter().find(|f| f.shown))
        .or_else(|| f.first())
}

#[cfg(test)]
mod tests {
    #[test]
    fn std_functions() {
        assert!(super::is_std_function("runtime.gopark"));
        assert!(super::is_std_function(
            "internal/sync.runtime_SemacquireMutex"
        ));
        assert!(super::is_std_function("net/http.(*conn).serve"));
        assert!(!super::is_std_function("main.worker"));
        assert!(!super::is_std_function("github.com/x/y.(*T).Run"));
        assert!(!super::is_std_function("example.com/a.F.func1"));
    }
    #[test]
    fn gowrap() {
        assert!(super::is_gowrap_name("main.main.gowrap1"));
        assert!(super::is_gowrap_name("main.(*T).run.gowrap12"));
        assert!(!super::is_gowrap_name("main.gowrapper"));
    }
}
