//! Go-like text of a decoded value (`main.Config{Name: "x", Ports: []int{80,
//! 443}}`), broken over indented lines when long.

use super::format::{go_complex, go_float, go_quote};
use super::model::{Missing, Value, V};

/// Lines longer than this are broken, one element per line.
const TEXT_WIDTH: usize = 100;

/// Go-like text, broken over indented lines when long.
pub fn to_text(v: &Value) -> String {
    let mut out = String::new();
    pretty(v, 0, &mut out);
    out
}

fn is_scalar(v: &V) -> bool {
    matches!(
        v,
        V::Bool(_)
            | V::Int(_)
            | V::Uint(_)
            | V::Uintptr(_)
            | V::Float { .. }
            | V::Complex { .. }
            | V::Str { .. }
            | V::Bytes { .. }
            | V::UnsafePtr(_)
            | V::Func { .. }
            | V::Nil
            | V::Missing(_)
    )
}

fn missing_text(m: &Missing) -> String {
    match m {
        Missing::NotCaptured { .. } => {
            format!("<{}; capture with --var NAME or --full>", m.describe())
        }
        _ => format!("<{}>", m.describe()),
    }
}

fn scalar_text(v: &Value) -> String {
    match &v.v {
        V::Bool(b) => b.to_string(),
        V::Int(i) => i.to_string(),
        V::Uint(u) => u.to_string(),
        V::Uintptr(u) => format!("{u:#x}"),
        V::Float { v, bits } => go_float(*v, *bits),
        V::Complex { re, im, bits } => go_complex(*re, *im, *bits),
        V::Str { data, len } => {
            let mut s = go_quote(data);
            if (data.len() as u64) < *len {
                s.push_str(&format!("...(+{} bytes)", len - data.len() as u64));
            }
            s
        }
        V::Bytes { data, len, .. } => {
            let mut s = format!("[]byte({})", go_quote(data));
            if (data.len() as u64) < *len {
                s.push_str(&format!("...(+{} bytes)", len - data.len() as u64));
            }
            s
        }
        V::UnsafePtr(0) => "unsafe.Pointer(nil)".into(),
        V::UnsafePtr(p) => format!("unsafe.Pointer({p:#x})"),
        V::Func { pc, name } => name.clone().unwrap_or_else(|| format!("func@{pc:#x}")),
        V::Nil => "nil".into(),
        V::Missing(m) => missing_text(m),
        _ => String::new(),
    }
}

/// A composite's text: opening, (key, item) pairs, closing, and what was
/// left out.
type Parts<'v> = (
    String,
    Vec<(Option<String>, &'v Value)>,
    String,
    Option<String>,
);

fn parts(v: &Value) -> Parts<'_> {
    match &v.v {
        V::Struct { fields } => (
            format!("{}{{", v.type_name),
            fields
                .iter()
                .map(|f| (Some(f.name.clone()), &f.value))
                .collect(),
            "}".into(),
            None,
        ),
        V::Slice { elems, len, .. } | V::Array { elems, len } => (
            format!("{}{{", v.type_name),
            elems.iter().map(|e| (None, e)).collect(),
            "}".into(),
            ((elems.len() as u64) < *len)
                .then(|| format!("... +{} more", len - elems.len() as u64)),
        ),
        V::Map {
            entries,
            len,
            missing,
            ..
        } => {
            let mut items: Vec<(Option<String>, &Value)> = entries
                .iter()
                .map(|(k, val)| (Some(compact(k)), val))
                .collect();
            items.sort_by(|a, b| key_order(a.0.as_deref(), b.0.as_deref()));
            let more = (entries.len() as u64) < *len || !missing.is_empty();
            (
                format!("{}{{", v.type_name),
                items,
                "}".into(),
                more.then(|| {
                    let why = missing.first().map(missing_text).unwrap_or_default();
                    format!(
                        "... +{} more {why}",
                        len.saturating_sub(entries.len() as u64)
                    )
                    .trim_end()
                    .to_string()
                }),
            )
        }
        V::Chan {
            addr,
            len,
            cap,
            closed,
            values,
            ..
        } => (
            format!(
                "{}({addr:#x}){{len: {len}, cap: {cap}{}, buffered: [",
                v.type_name,
                if *closed { ", closed" } else { "" }
            ),
            values.iter().map(|e| (None, e)).collect(),
            "]}".into(),
            ((values.len() as u64) < *len)
                .then(|| format!("... +{} more", len - values.len() as u64)),
        ),
        _ => (String::new(), Vec::new(), String::new(), None),
    }
}

/// Map keys sorted like fmt: numbers numerically, others as text.
fn key_order(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    let (a, b) = (a.unwrap_or(""), b.unwrap_or(""));
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// One-line text.
fn compact(v: &Value) -> String {
    match &v.v {
        V::Ptr { target, .. } => format!("&{}", compact(target)),
        V::Iface { target } => {
            if is_scalar(&target.v) {
                format!("{}({})", target.type_name, compact(target))
            } else {
                compact(target)
            }
        }
        x if is_scalar(x) => scalar_text(v),
        _ => {
            let (open, items, close, more) = parts(v);
            let mut s = open;
            let mut first = true;
            for (k, item) in items {
                if !first {
                    s.push_str(", ");
                }
                first = false;
                if let Some(k) = k {
                    s.push_str(&k);
                    s.push_str(": ");
                }
                s.push_str(&compact(item));
            }
            if let Some(m) = more {
                if !first {
                    s.push_str(", ");
                }
                s.push_str(&m);
            }
            s.push_str(&close);
            s
        }
    }
}

fn pretty(v: &Value, indent: usize, out: &mut String) {
    let c = compact(v);
    if c.len() + indent * 4 <= TEXT_WIDTH {
        out.push_str(&c);
        return;
    }
    match &v.v {
        V::Ptr { target, .. } => {
            out.push('&');
            pretty(target, indent, out);
        }
        V::Iface { target } => {
            if is_scalar(&target.v) {
                out.push_str(&c);
            } else {
                pretty(target, indent, out);
            }
        }
        x if is_scalar(x) => out.push_str(&c),
        _ => {
            let (open, items, close, more) = parts(v);
            out.push_str(&open);
            out.push('\n');
            let pad = "    ".repeat(indent + 1);
            for (k, item) in items {
                out.push_str(&pad);
                if let Some(k) = k {
                    out.push_str(&k);
                    out.push_str(": ");
                }
                pretty(item, indent + 1, out);
                out.push_str(",\n");
            }
            if let Some(m) = more {
                out.push_str(&pad);
                out.push_str(&m);
                out.push('\n');
            }
            out.push_str(&"    ".repeat(indent));
            out.push_str(&close);
        }
    }
}
