//! The Go version of a target and the range gospy supports. A leaf: the
//! binary layer parses the version with it, without depending on layouts.

use std::fmt;

/// A Go release as far as runtime layouts care: major and minor
/// ("go1.22.3" and "go1.22rc1" are both 1.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoVersion {
    major: u32,
    minor: u32,
}

/// Oldest and newest Go versions gospy is tested against.
pub const OLDEST_SUPPORTED: GoVersion = GoVersion::new(1, 19);
pub const NEWEST_SUPPORTED: GoVersion = GoVersion::new(1, 27);

impl GoVersion {
    pub const fn new(major: u32, minor: u32) -> GoVersion {
        GoVersion { major, minor }
    }

    /// Parse "go1.22.10" / "go1.27rc1" / "devel go1.23-abc".
    pub fn parse(v: &str) -> Option<GoVersion> {
        let i = v.find("go1.")?;
        let rest = &v[i + 2..];
        let mut it = rest.split(|c: char| !c.is_ascii_digit());
        let major: u32 = it.next()?.parse().ok()?;
        let minor: u32 = it.next()?.parse().ok()?;
        Some(GoVersion { major, minor })
    }

    pub fn major(self) -> u32 {
        self.major
    }

    /// Minor version (22 for go1.22.x): selects a column of the tables.
    pub fn minor(self) -> u32 {
        self.minor
    }

    /// Whether this is `major.minor` or later.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= GoVersion::new(major, minor)
    }

    /// Within [`OLDEST_SUPPORTED`]..=[`NEWEST_SUPPORTED`].
    pub fn is_supported(self) -> bool {
        (OLDEST_SUPPORTED..=NEWEST_SUPPORTED).contains(&self)
    }

    /// The warning for a version outside the supported range; `text` is the
    /// version as the executable spells it.
    pub fn support_warning(self, text: &str) -> Option<String> {
        (!self.is_supported()).then(|| {
            format!("{text} is outside the supported range {OLDEST_SUPPORTED}–{NEWEST_SUPPORTED}; results may be wrong")
        })
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_compare() {
        let v = |s| GoVersion::parse(s).map(|v| (v.major(), v.minor()));
        assert_eq!(v("go1.22.10"), Some((1, 22)));
        assert_eq!(v("go1.27rc1"), Some((1, 27)));
        assert_eq!(v("devel go1.23-abc"), Some((1, 23)));
        assert_eq!(v("go1.19"), Some((1, 19)));
        assert_eq!(v("x"), None);
        let g = GoVersion::parse("go1.23.1").unwrap();
        assert!(g.at_least(1, 23) && g.at_least(1, 21) && !g.at_least(1, 24));
        assert!(g.is_supported() && g.support_warning("go1.23.1").is_none());
        assert_eq!(
            GoVersion::new(1, 18).support_warning("go1.18.3").unwrap(),
            "go1.18.3 is outside the supported range go1.19–go1.27; results may be wrong"
        );
        assert!(!GoVersion::new(2, 0).is_supported());
        assert_eq!(GoVersion::new(1, 26).to_string(), "go1.26");
    }
}
