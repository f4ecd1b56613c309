//! Leaf text helpers (durations, byte sizes, fast decimal and hex): they
//! depend on nothing, so any layer may use them.

/// Human duration like Go's: 1h2m3s, 4.5s, 12ms.
pub fn fmt_duration_ns(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    if s >= 3600 {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else if ns >= 1_000_000_000 {
        format!("{:.1}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}µs", ns as f64 / 1e3)
    }
}

pub fn fmt_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// `{v}` appended to `out` without the formatting machinery.
pub fn push_decimal(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("?"));
}

/// `{v:#x}` appended to `out` without the formatting machinery (hot in
/// dumps of 100k goroutines).
pub fn push_hex(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    let mut x = v;
    loop {
        i -= 1;
        buf[i] = DIGITS[(x & 0xf) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    i -= 2;
    buf[i] = b'0';
    buf[i + 1] = b'x';
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("?"));
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause
/// whose text already ends the line (an error that prints its source, as
/// `SnapshotError::Io` does, would otherwise repeat it).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for c in e.chain() {
        let t = c.to_string();
        if line.ends_with(&t) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&t);
    }
    line
}

#[cfg(test)]
mod tests {
    /// An error whose message already holds its source's.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot open x.gss: {}", self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_line_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(Wrapped(io)).context("x.gss");
        assert_eq!(
            super::error_line(&e),
            "x.gss: cannot open x.gss: entity not found"
        );
    }

    #[test]
    fn push_hex_matches_format() {
        for v in [0u64, 1, 0xf, 0x10, 0xdead_beef, u64::MAX] {
            let mut s = String::new();
            super::push_hex(&mut s, v);
            assert_eq!(s, format!("{v:#x}"));
            let mut d = String::new();
            super::push_decimal(&mut d, v);
            assert_eq!(d, v.to_string());
        }
    }
}
