//! Go's formatting of scalars: fmt's `%v` of floats and complex numbers,
//! `strconv.Quote`, encoding/json's lossy UTF-8 and base64.

/// Bytes as a JSON string the way encoding/json does: each byte of invalid
/// UTF-8 becomes U+FFFD.
pub fn go_lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &bad[1..];
            }
        }
    }
}

/// `strconv.Quote`-like quoting of raw bytes.
pub fn go_quote(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    let mut rest = b;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(ok).unwrap_or_default(), bad)
            }
        };
        for c in valid.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if !go_printable(c) => {
                    if (c as u32) < 0x10000 {
                        out.push_str(&format!("\\u{:04x}", c as u32))
                    } else {
                        out.push_str(&format!("\\U{:08x}", c as u32))
                    }
                }
                c => out.push(c),
            }
        }
        if let Some((&x, tail)) = bad.split_first() {
            out.push_str(&format!("\\x{x:02x}"));
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out.push('"');
    out
}

/// Approximates `strconv.IsPrint` for non-ASCII characters.
fn go_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'))
}

/// A float as fmt's `%v` prints it: strconv 'g' with the shortest digits,
/// exponent form when the decimal exponent is below -4 or at least 6.
pub fn go_float(v: f64, bits: u8) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest digits and decimal exponent, e.g. "1.2345e8".
    let e = if bits == 32 {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    // strconv 'g' with shortest precision: %e when exp < -4 || exp >= 6.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if nd <= exp + 1 {
        out.push_str(&digits);
        for _ in 0..(exp + 1 - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..(exp + 1) as usize]);
        out.push('.');
        out.push_str(&digits[(exp + 1) as usize..]);
    }
    out
}

/// fmt's `%v` of a complex number: `(1+2i)`.
pub fn go_complex(re: f64, im: f64, bits: u8) -> String {
    let r = go_float(re, bits);
    let mut i = go_float(im, bits);
    if !i.starts_with('-') {
        i.insert(0, '+');
    }
    format!("({r}{i}i)")
}

/// Standard base64 with padding (encoding/json's []byte encoding).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_fmt() {
        assert_eq!(go_float(1e20, 64), "1e+20");
        assert_eq!(go_float(123456789.0, 64), "1.23456789e+08");
        assert_eq!(go_float(100000.0, 64), "100000");
        assert_eq!(go_float(1000000.0, 64), "1e+06");
        assert_eq!(go_float(0.0001, 64), "0.0001");
        assert_eq!(go_float(0.00001, 64), "1e-05");
        assert_eq!(go_float(0.1f32 as f64, 32), "0.1");
        assert_eq!(go_float(3.0, 64), "3");
        assert_eq!(go_float(-2.5e-9, 64), "-2.5e-09");
        assert_eq!(go_complex(1.5, -2.0, 64), "(1.5-2i)");
        assert_eq!(go_complex(0.1f32 as f64, 1e7, 32), "(0.1+1e+07i)");
    }

    #[test]
    fn quoting_and_base64() {
        assert_eq!(
            go_quote(b"a\xffb\x00\x7f\xc2\xa0\xe2\x80\x8b\xf0\x9f\x98\x80\xc3\xa9"),
            "\"a\\xffb\\x00\\x7f\\u00a0\\u200b😀é\""
        );
        assert_eq!(go_lossy(b"a\xffb\xe2\x82c"), "a\u{fffd}b\u{fffd}\u{fffd}c");
        assert_eq!(base64(b"binary\x00\x01\xff data"), "YmluYXJ5AAH/IGRhdGE=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
