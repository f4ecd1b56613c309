//! The Go version of an executable as a value. It sits in the binary layer
//! (which needs it to decode the module data) and depends on nothing; what
//! gospy knows per version, the supported range included, is in
//! `goruntime::version`, which re-exports this type.

use std::fmt;

/// A Go release as far as runtime layouts care: major and minor
/// ("go1.22.3" and "go1.22rc1" are both 1.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoVersion {
    major: u32,
    minor: u32,
}

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
        assert_eq!(GoVersion::new(1, 26).to_string(), "go1.26");
    }
}
