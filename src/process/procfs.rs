//! Parsers for the `/proc` files we read. Pure functions over bytes/text so
//! they are unit-testable; malformed input yields `None`, never a panic.

use crate::model::MapEntry;

/// The fields of `/proc/PID/status` we use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub name: Option<String>,
    pub state: Option<char>,
    pub tgid: Option<i32>,
    pub tracer_pid: Option<i32>,
}

pub(crate) fn parse_status(text: &str) -> Status {
    let mut st = Status::default();
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key {
            "Name" => st.name = Some(val.to_string()),
            "State" => st.state = val.chars().next(),
            "Tgid" => st.tgid = val.parse().ok(),
            "TracerPid" => st.tracer_pid = val.parse().ok(),
            _ => {}
        }
    }
    st
}

/// State letter from a `/proc/.../stat` line. The command name is in
/// parentheses and may itself contain spaces and ')', so look after the
/// last ')'.
pub(crate) fn stat_state(stat: &[u8]) -> Option<char> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat[close + 1..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .map(|&b| b as char)
}

/// Thread name from a `comm` file (trailing newline removed).
pub(crate) fn comm_name(comm: &[u8]) -> String {
    let s = String::from_utf8_lossy(comm);
    s.strip_suffix('\n').unwrap_or(&s).to_string()
}

/// `/proc/PID/maps`: `start-end perms offset dev inode [path]`, the path
/// padded with spaces and possibly containing spaces itself.
pub(crate) fn parse_maps(text: &str) -> Option<Vec<MapEntry>> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut rest = line;
        let mut field = || -> Option<&str> {
            let r = rest.trim_start_matches(' ');
            let end = r.find(' ').unwrap_or(r.len());
            let (f, tail) = r.split_at(end);
            rest = tail;
            (!f.is_empty()).then_some(f)
        };
        let range = field()?;
        let perms = field()?;
        let offset = field()?;
        let _dev = field()?;
        let _inode = field()?;
        let path = rest.trim_start_matches(' ');
        let (start, end) = range.split_once('-')?;
        out.push(MapEntry {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            perms: perms.to_string(),
            offset: u64::from_str_radix(offset, 16).ok()?,
            path: path.to_string(),
        });
    }
    Some(out)
}

/// `/proc/PID/auxv`: native-endian u64 pairs up to `AT_NULL`.
pub(crate) fn parse_auxv(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for pair in bytes.chunks_exact(16) {
        let k = u64::from_ne_bytes(pair[..8].try_into().unwrap_or([0; 8]));
        let v = u64::from_ne_bytes(pair[8..].try_into().unwrap_or([0; 8]));
        if k == 0 {
            break;
        }
        out.push((k, v));
    }
    out
}

/// `/proc/PID/cmdline`: NUL-separated (and NUL-terminated) arguments.
pub(crate) fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let st = parse_status(
            "Name:\tmy prog\nUmask:\t0022\nState:\tt (tracing stop)\nTgid:\t42\nPid:\t43\nTracerPid:\t7\n",
        );
        assert_eq!(st.name.as_deref(), Some("my prog"));
        assert_eq!(st.state, Some('t'));
        assert_eq!(st.tgid, Some(42));
        assert_eq!(st.tracer_pid, Some(7));
        assert_eq!(parse_status("garbage"), Status::default());
    }

    #[test]
    fn stat_state_with_odd_comm() {
        assert_eq!(stat_state(b"123 (a) b) S 1 2 3"), Some('S'));
        assert_eq!(stat_state(b"123 (x) R 1"), Some('R'));
        assert_eq!(stat_state(b"123 (x"), None);
        assert_eq!(stat_state(b""), None);
        assert_eq!(comm_name(b"worker\n"), "worker");
    }

    #[test]
    fn maps_lines() {
        let text = "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/my prog (deleted)\n\
                    7ffd1000-7ffd2000 rw-p 00001000 00:00 0 \n\
                    7fff0000-7fff1000 r--p 00000000 00:00 0                          [vvar]\n";
        let m = parse_maps(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start, 0x400000);
        assert_eq!(m[0].end, 0x452000);
        assert_eq!(m[0].perms, "r-xp");
        assert_eq!(m[0].path, "/usr/bin/my prog (deleted)");
        assert_eq!(m[1].offset, 0x1000);
        assert_eq!(m[1].path, "");
        assert_eq!(m[2].path, "[vvar]");
        assert!(parse_maps("zzzz r-xp").is_none());
    }

    #[test]
    fn auxv_and_cmdline() {
        let mut b = Vec::new();
        for (k, v) in [(6u64, 4096u64), (9, 0x401000), (0, 0), (5, 5)] {
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&b), vec![(6, 4096), (9, 0x401000)]);
        assert_eq!(parse_auxv(&b[..20]), vec![(6, 4096)]);
        assert_eq!(parse_cmdline(b"a\0b c\0\0d\0"), vec!["a", "b c", "", "d"]);
        assert!(parse_cmdline(b"").is_empty());
    }
}
