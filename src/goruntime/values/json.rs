//! What `encoding/json` would write for a decoded value (the limits are in
//! the `values` module docs).

use super::format::{base64, go_complex, go_float, go_lossy};
use super::model::{Missing, Value, V};
use super::text::to_text;
use crate::goruntime::gotypes::Types;
use crate::memory::Memory;
use std::sync::Arc;

/// JSON rendering needs the types (struct fields `encoding/json` writes).
pub struct Json<'t, 'a> {
    pub types: &'t mut Types<'a>,
    pub mem: &'t dyn Memory,
}

impl Json<'_, '_> {
    /// What `encoding/json` would write for `v` (see the module docs for
    /// the differences).
    pub fn render(&mut self, v: &Value) -> serde_json::Value {
        use serde_json::Value as J;
        match &v.v {
            V::Bool(b) => J::Bool(*b),
            V::Int(i) => J::from(*i),
            V::Uint(u) | V::Uintptr(u) => J::from(*u),
            V::Float { v, bits } => json_float(*v, *bits),
            V::Complex { re, im, bits } => J::String(go_complex(*re, *im, *bits)),
            V::Str { data, len } => {
                let mut s = go_lossy(data);
                if (data.len() as u64) < *len {
                    s.push_str(&format!("…(+{} bytes)", len - data.len() as u64));
                }
                J::String(s)
            }
            V::Bytes { data, len, .. } => {
                if (data.len() as u64) < *len {
                    marker(
                        "truncated",
                        &format!("{len} bytes, first {} shown: {}", data.len(), base64(data)),
                    )
                } else {
                    J::String(base64(data))
                }
            }
            V::Nil => J::Null,
            V::Ptr { target, .. } => self.render(target),
            V::UnsafePtr(p) => {
                if *p == 0 {
                    J::Null
                } else {
                    J::String(format!("{p:#x}"))
                }
            }
            V::Func { pc, name } => J::String(name.clone().unwrap_or_else(|| format!("{pc:#x}"))),
            V::Slice { elems, len, .. } | V::Array { elems, len } => {
                let mut out: Vec<J> = elems.iter().map(|e| self.render(e)).collect();
                if (elems.len() as u64) < *len {
                    out.push(marker(
                        "truncated",
                        &format!("{} more elements", len - elems.len() as u64),
                    ));
                }
                J::Array(out)
            }
            V::Struct { .. } => self.struct_json(v),
            V::Map {
                entries,
                len,
                missing,
                ..
            } => {
                let mut m = serde_json::Map::new();
                for (k, val) in entries {
                    m.insert(json_key(k), self.render(val));
                }
                if !missing.is_empty() || (entries.len() as u64) < *len {
                    let why = missing
                        .first()
                        .map(|x| x.describe())
                        .unwrap_or_else(|| "element cap".into());
                    m.insert(
                        "$gospy".into(),
                        marker(
                            "incomplete",
                            &format!("{} of {len} entries shown; {why}", entries.len()),
                        ),
                    );
                }
                J::Object(m)
            }
            V::Iface { target } => self.render(target),
            V::Chan {
                len,
                cap,
                closed,
                elem_type,
                values,
                ..
            } => {
                let vals: Vec<J> = values.iter().map(|e| self.render(e)).collect();
                serde_json::json!({
                    "len": len, "cap": cap, "closed": closed,
                    "elem": elem_type, "values": vals,
                })
            }
            V::Missing(m) => missing_json(m),
        }
    }

    fn struct_json(&mut self, v: &Value) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        let plan = match v.ty {
            Some(t) => self.types.json_fields(self.mem, t),
            None => Arc::new(Vec::new()),
        };
        'fields: for jf in plan.iter() {
            let mut cur = v;
            for (k, &idx) in jf.path.iter().enumerate() {
                let V::Struct { fields } = &cur.v else {
                    continue 'fields;
                };
                let Some(f) = fields.get(idx) else {
                    continue 'fields;
                };
                if k + 1 == jf.path.len() {
                    let j = self.render(&f.value);
                    out.insert(jf.name.clone(), j);
                } else {
                    // Through an embedded struct or non-nil embedded pointer.
                    cur = match &f.value.v {
                        V::Ptr { target, .. } => target,
                        V::Nil => continue 'fields,
                        V::Missing(m) => {
                            out.insert(jf.name.clone(), missing_json(m));
                            continue 'fields;
                        }
                        _ => &f.value,
                    };
                }
            }
        }
        serde_json::Value::Object(out)
    }
}

fn marker(what: &str, detail: &str) -> serde_json::Value {
    serde_json::json!({ "$gospy": what, "detail": detail })
}

fn missing_json(m: &Missing) -> serde_json::Value {
    match m {
        Missing::NotCaptured { addr, len } => serde_json::json!({
            "$gospy": "not captured",
            "addr": format!("{addr:#x}"),
            "len": len,
            "hint": NOT_CAPTURED_HINT,
        }),
        Missing::Cycle { addr } => {
            serde_json::json!({"$gospy": "cycle", "addr": format!("{addr:#x}")})
        }
        Missing::DepthLimit { addr } => {
            serde_json::json!({"$gospy": "depth limit", "addr": format!("{addr:#x}")})
        }
        Missing::Budget => serde_json::json!({"$gospy": "read budget exhausted"}),
        Missing::Unknown(why) => serde_json::json!({"$gospy": "unknown", "detail": why}),
    }
}

/// How to get a value that was not captured.
pub const NOT_CAPTURED_HINT: &str = "capture again with `gospy capture --var NAME` (guarantees that global's full value), a larger --var-budget, or --full (all writable memory)";

/// A map key as `encoding/json` writes it: strings as is, integers in
/// decimal; other kinds (which encoding/json rejects) by their text.
fn json_key(k: &Value) -> String {
    match &k.v {
        V::Str { data, .. } => go_lossy(data),
        V::Int(i) => i.to_string(),
        V::Uint(u) | V::Uintptr(u) => u.to_string(),
        V::Iface { target } => json_key(target),
        _ => to_text(k),
    }
}

/// A float as the JSON number `encoding/json` writes, parsed back: integral
/// values it prints without exponent become integers.
fn json_float(v: f64, bits: u8) -> serde_json::Value {
    if !v.is_finite() {
        return marker("unsupported float", &go_float(v, bits));
    }
    // encoding/json writes the shortest decimal for the float's own size.
    let v = if bits == 32 {
        format!("{}", v as f32).parse::<f64>().unwrap_or(v)
    } else {
        v
    };
    let abs = v.abs();
    let exp_form = abs != 0.0 && !(1e-6..1e21).contains(&abs);
    if !exp_form && v.fract() == 0.0 {
        if (0.0..18446744073709551616.0).contains(&v) {
            return serde_json::Value::from(v as u64);
        }
        if (-9223372036854775808.0..0.0).contains(&v) {
            return serde_json::Value::from(v as i64);
        }
    }
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_floats() {
        assert_eq!(json_float(80.0, 64), serde_json::json!(80));
        assert_eq!(json_float(0.1f32 as f64, 32), serde_json::json!(0.1));
        assert_eq!(json_float(-1.0, 64), serde_json::json!(-1));
        assert_eq!(json_float(1e21, 64), serde_json::json!(1e21));
        assert_eq!(
            json_float(u64::MAX as f64, 64),
            serde_json::from_str::<serde_json::Value>("18446744073709551616").unwrap()
        );
    }
}
