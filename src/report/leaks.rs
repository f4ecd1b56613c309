//! Text for `leaks`: groups first (creation site × blocking site, with
//! counts), then each leaked goroutine with its stack.

use crate::analyze::leaks::Leaks;
use std::fmt::Write;

pub fn to_text(l: &Leaks) -> String {
    let mut s = String::new();
    if l.leaked.is_empty() {
        let _ = writeln!(
            s,
            "No leaked goroutines ({} blocked on a channel, select or sync object; all reachable).",
            l.candidates
        );
        return s;
    }
    let _ = writeln!(
        s,
        "{} leaked goroutines (of {} blocked on a channel, select or sync object): \
         nothing that may still run can reach what they wait on.\n",
        l.leaked.len(),
        l.candidates
    );
    let _ = writeln!(s, "{:>6}  {:<24} BLOCKED AT / CREATED BY", "COUNT", "WAIT");
    for g in &l.groups {
        let _ = writeln!(
            s,
            "{:>6}  {:<24} {}",
            g.count, g.wait_reason, g.blocking_site
        );
        let _ = writeln!(
            s,
            "{:>6}  {:<24} created by {}",
            "",
            "",
            g.created_by.as_deref().unwrap_or("?")
        );
    }
    for g in &l.leaked {
        let _ = writeln!(s, "\ngoroutine {} [{}] (leaked):", g.id, g.wait_reason);
        for f in &g.frames {
            let _ = writeln!(s, "  {f}");
        }
        if let Some(c) = &g.created_by {
            let _ = writeln!(
                s,
                "  created by {c} {}",
                g.created_at.as_deref().unwrap_or("")
            );
        }
    }
    s
}
