//! `var` (one global's value) and `vars` (globals and their types).

use crate::analyze::Session;
use crate::goruntime::values::{self, Decoder, ValueOptions, NOT_CAPTURED_HINT};
use anyhow::{anyhow, Result};
use serde::Serialize;

/// What `var` prints.
pub struct VarReport {
    /// Text or JSON, ready for stdout.
    pub output: String,
    /// Remarks for stderr (parts not captured...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VarOptions {
    pub json: bool,
    /// Indirections followed (default: 32 for text, 64 for JSON).
    pub depth: Option<u32>,
    /// Elements per container (default: 100 for text, 4M for JSON).
    pub max_elems: Option<usize>,
}

fn no_dwarf() -> anyhow::Error {
    anyhow!("the executable has no DWARF (built with -ldflags=-w or -s): globals and their types are unknown; pass --bin with an unstripped build of the same source")
}

/// Globals whose names resemble `name`, for "did you mean".
fn similar(all: &[String], name: &str) -> Vec<String> {
    let short = name.rsplit('.').next().unwrap_or(name).to_lowercase();
    let mut out: Vec<String> = all
        .iter()
        .filter(|g| {
            let gs = g.rsplit('.').next().unwrap_or(g).to_lowercase();
            gs == short || (short.len() >= 3 && gs.contains(&short))
        })
        .take(8)
        .cloned()
        .collect();
    out.sort();
    out
}

pub fn var(s: &Session, name: &str, o: &VarOptions) -> Result<VarReport> {
    let t = &s.target;
    let d = t
        .bin
        .dwarf()
        .ok_or_else(|| crate::goruntime::reach::untyped_global_error(t, name))?;
    let Some(g) = d.global(name) else {
        let sim = similar(&d.globals(), name);
        let hint = if sim.is_empty() {
            "list them with `gospy analyze FILE vars [REGEX]`".to_string()
        } else {
            format!("did you mean {}?", sim.join(", "))
        };
        return Err(anyhow!(
            "no global variable named {name:?} in the executable (names are package path + name, e.g. main.config, net/http.DefaultClient); {hint}"
        ));
    };
    let ty =
        g.ty.ok_or_else(|| anyhow!("{name}: DWARF gives no type for this global"))?;
    let type_name = d.type_name(ty).unwrap_or_default();
    let addr = t.rt(g.addr);
    let mut opts = if o.json {
        ValueOptions::json()
    } else {
        ValueOptions::text()
    };
    if let Some(dp) = o.depth {
        opts.max_depth = dp;
    }
    if let Some(n) = o.max_elems {
        opts.max_elems = n;
    }
    let mut dec = Decoder::new(t, &s.mem, opts).ok_or_else(no_dwarf)?;
    let v = dec.decode_global(addr, ty);

    let mut notes = Vec::new();
    let mut missing = Vec::new();
    values::collect_missing(&v, &mut missing);
    let not_captured = missing
        .iter()
        .filter(|m| matches!(m, values::Missing::NotCaptured { .. }))
        .count();
    if not_captured > 0 {
        let first = dec
            .first_missing
            .first()
            .map(|(a, l)| format!(" (first: {l} bytes at {a:#x})"))
            .unwrap_or_default();
        notes.push(format!(
            "{not_captured} part(s) of {name} were not captured{first}: capture again with `gospy capture --pid PID --var {name}` for its full value, or --full for all writable memory"
        ));
    }
    if dec.budget_exhausted {
        notes.push("the read budget was exhausted: the value is incomplete".to_string());
    }
    if missing
        .iter()
        .any(|m| matches!(m, values::Missing::DepthLimit { .. }))
    {
        notes.push("some pointers were not followed: raise --depth".to_string());
    }
    let output = if o.json {
        let value = dec.to_json(&v);
        let mut obj = serde_json::json!({
            "name": name,
            "type": type_name,
            "address": format!("{addr:#x}"),
            "value": value,
        });
        if !notes.is_empty() {
            obj["notes"] = serde_json::json!(notes);
            if not_captured > 0 {
                obj["hint"] = serde_json::json!(NOT_CAPTURED_HINT);
            }
        }
        let mut out = serde_json::to_string_pretty(&obj)?;
        out.push('\n');
        out
    } else {
        format!("{name} {type_name} = {}\n", values::to_text(&v))
    };
    Ok(VarReport { output, notes })
}

#[derive(Debug, Serialize)]
pub struct GlobalInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub address: String,
    pub size: u64,
}

/// Globals (all, or those matching `pattern`) with their types.
pub fn globals(s: &Session, pattern: Option<&str>) -> Result<Vec<GlobalInfo>> {
    let t = &s.target;
    let d = t.bin.dwarf().ok_or_else(no_dwarf)?;
    let re = pattern
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| anyhow!("bad REGEX: {e}"))?;
    let mut out = Vec::new();
    for name in d.globals() {
        if re.as_ref().is_some_and(|r| !r.is_match(&name)) {
            continue;
        }
        let Some(g) = d.global(&name) else { continue };
        let (type_name, size) = match g.ty {
            Some(ty) => (
                d.type_name(ty).unwrap_or_default(),
                d.resolve(ty).map(|x| x.size).unwrap_or(0),
            ),
            None => (String::new(), 0),
        };
        out.push(GlobalInfo {
            name,
            type_name,
            address: format!("{:#x}", t.rt(g.addr)),
            size,
        });
    }
    Ok(out)
}

pub fn globals_text(gs: &[GlobalInfo]) -> String {
    let w = gs.iter().map(|g| g.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for g in gs {
        out.push_str(&format!("{:<w$}  {}\n", g.name, g.type_name));
    }
    out
}
