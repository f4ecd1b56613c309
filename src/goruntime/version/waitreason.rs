//! Wait reasons (`g.waitreason` indexes `runtime.waitReasonStrings`): the
//! measured lists, for executables whose own list cannot be read.

use super::fallback::Tables;
use super::go::GoVersion;
use super::tables::WAIT_REASONS;

/// `runtime.waitReasonStrings` as measured for `go` (the column the layout
/// tables use for it).
pub fn measured(go: GoVersion) -> Option<Vec<String>> {
    let v = Tables::for_version(go)?.column_version();
    WAIT_REASONS
        .iter()
        .find(|(m, _)| *m == v)
        .map(|(_, l)| l.iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_lists() {
        assert_eq!(measured(GoVersion::new(1, 26)).unwrap()[19], "chan receive");
        assert!(measured(GoVersion::new(1, 18)).is_none());
    }
}
