//! The range of Go versions gospy supports.

pub use crate::binary::goversion::GoVersion;

/// Oldest and newest Go versions gospy is tested against.
pub const OLDEST_SUPPORTED: GoVersion = GoVersion::new(1, 19);
pub const NEWEST_SUPPORTED: GoVersion = GoVersion::new(1, 27);

/// Within [`OLDEST_SUPPORTED`]..=[`NEWEST_SUPPORTED`].
pub fn is_supported(v: GoVersion) -> bool {
    (OLDEST_SUPPORTED..=NEWEST_SUPPORTED).contains(&v)
}

/// The warning for a version outside the supported range; `text` is the
/// version as the executable spells it.
pub fn support_warning(v: GoVersion, text: &str) -> Option<String> {
    (!is_supported(v)).then(|| {
        format!("{text} is outside the supported range {OLDEST_SUPPORTED}–{NEWEST_SUPPORTED}; results may be wrong")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_range() {
        let g = GoVersion::parse("go1.23.1").unwrap();
        assert!(is_supported(g) && support_warning(g, "go1.23.1").is_none());
        assert_eq!(
            support_warning(GoVersion::new(1, 18), "go1.18.3").unwrap(),
            "go1.18.3 is outside the supported range go1.19–go1.27; results may be wrong"
        );
        assert!(!is_supported(GoVersion::new(2, 0)));
    }
}
