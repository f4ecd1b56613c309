//! The runtime's GODEBUG settings that change what a traceback prints.
//!
//! `tracebacklabels` (Go 1.26+) decides whether goroutine headers carry
//! pprof labels. Its value is `runtime.debug.tracebacklabels`, set at
//! startup from the setting's default for the Go version (0 in 1.26, 1 from
//! 1.27), then the binary's DefaultGODEBUG (the go.mod's go version: a
//! module that says `go 1.26` or older gets `tracebacklabels=0` on 1.27),
//! then the GODEBUG environment variable, and again whenever the program
//! calls os.Setenv("GODEBUG"). Only the value in memory is exact; the
//! default from the binary is the fallback when that memory is missing.

use crate::binary::goversion::GoVersion;
use crate::binary::Binary;

pub const TRACEBACK_LABELS: &str = "tracebacklabels";

/// Whether this Go version has the `tracebacklabels` setting at all (older
/// runtimes never print labels in tracebacks).
pub fn has_traceback_labels(go: GoVersion) -> bool {
    go.at_least(1, 26)
}

/// The setting's default for a program built by `go` with no GODEBUG in
/// its build info or environment.
fn version_default(go: GoVersion) -> i32 {
    i32::from(go.at_least(1, 27))
}

/// `name`'s value in the binary's DefaultGODEBUG (`build
/// DefaultGODEBUG=a=1,b=0` in `.go.buildinfo`), when it sets it.
pub fn default_godebug(build_info: Option<&str>, name: &str) -> Option<String> {
    let line = build_info?
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("build\tDefaultGODEBUG="))?;
    // Later entries win, as in the runtime's parsegodebug.
    line.split(',')
        .filter_map(|kv| kv.split_once('='))
        .rfind(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `tracebacklabels` as the runtime set it at startup, without GODEBUG from
/// the environment (which only the target's memory reflects).
pub fn traceback_labels_default(bin: &Binary) -> i32 {
    default_godebug(bin.elf.build_info.as_deref(), TRACEBACK_LABELS)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| version_default(bin.go))
}

/// Link-time address of the `atomic.Int32` behind the runtime's GODEBUG
/// setting `name` (e.g. `runtime.debug.tracebacklabels`). Found without
/// symbols or DWARF: `runtime.dbgvars` points at statically initialised
/// `dbgVar{name string; value *int32; atomic *atomic.Int32; def int32}`
/// records in the data segment (the same layout 1.19–1.27), and exactly one
/// of them is `{name, nil, &debug.X, def}`.
pub fn dbgvar_atomic_addr(bin: &Binary, name: &str) -> Option<u64> {
    let elf = &bin.elf;
    let writable: Vec<(u64, u64)> = elf
        .segments
        .iter()
        .filter(|s| s.writable && s.memsz > 0)
        .map(|s| (s.vaddr, s.vaddr + s.memsz))
        .collect();
    let in_data = |a: u64| writable.iter().any(|&(lo, hi)| a >= lo && a + 4 <= hi);
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let mut found: Option<u64> = None;
    for seg in elf.segments.iter().filter(|s| s.writable && s.filesz > 0) {
        let start = usize::try_from(seg.offset).ok()?;
        let len = usize::try_from(seg.filesz).ok()?;
        let Some(bytes) = elf.data.get(start..start.checked_add(len)?) else {
            continue;
        };
        // 8-aligned virtual addresses.
        let first = ((8 - (seg.vaddr % 8)) % 8) as usize;
        let mut i = first;
        while i + 40 <= bytes.len() {
            if word(bytes, i + 8) == name.len() as u64 && word(bytes, i + 16) == 0 {
                let atomic = word(bytes, i + 24);
                let mut s = vec![0u8; name.len()];
                if atomic % 4 == 0
                    && in_data(atomic)
                    && elf.read_vaddr(word(bytes, i), &mut s, true)
                    && s == name.as_bytes()
                {
                    match found {
                        Some(a) if a != atomic => return None, // ambiguous
                        _ => found = Some(atomic),
                    }
                }
            }
            i += 8;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_godebug_lines() {
        let info = "path\tcommand-line-arguments\nbuild\t-buildmode=exe\n\
                    build\tDefaultGODEBUG=asynctimerchan=1,tracebacklabels=0,x509sha1=1\n";
        assert_eq!(
            default_godebug(Some(info), "tracebacklabels").as_deref(),
            Some("0")
        );
        assert_eq!(default_godebug(Some(info), "panicnil"), None);
        assert_eq!(default_godebug(None, "tracebacklabels"), None);
        assert_eq!(
            default_godebug(Some("build\tDefaultGODEBUG=a=1,a=2"), "a").as_deref(),
            Some("2")
        );
    }
}
