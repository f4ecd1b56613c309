//! Runtime layouts without DWARF: lookups in the per-version tables of
//! [`super::tables`] (generated from layouts measured on real binaries).

use super::go::GoVersion;
use super::source::LayoutSource;
use super::tables::{TField, TStruct, STRUCTS, VERSIONS};
use super::tables_arm64;
use crate::model::Arch;

/// The per-version tables, one version column selected.
#[derive(Debug, Clone)]
pub struct Tables {
    col: usize,
    /// Go version of the target.
    pub go: GoVersion,
    /// Set when the target's version was not measured and a neighbour's
    /// column is used instead.
    pub approximation: Option<String>,
    /// The target's instruction set: arm64 structs padded to a cache line
    /// (128 bytes there, 64 on amd64) take their offsets from
    /// [`tables_arm64`].
    pub arch: Arch,
}

impl Tables {
    /// Tables for `go`. Go 1.20 (never measured) uses the 1.19 column:
    /// 1.20's runtime structs keep 1.19's layout for every field gospy reads
    /// (the trace-state and parentGoid changes of `g` came in 1.21).
    /// Versions newer than the newest measured use the newest column.
    pub fn for_version(go: GoVersion) -> Option<Tables> {
        if go.major() != 1 {
            return None;
        }
        let minor = go.minor();
        if let Some(col) = VERSIONS.iter().position(|&v| v == minor) {
            return Some(Tables {
                col,
                go,
                approximation: None,
                arch: Arch::X86_64,
            });
        }
        let (col, why) = match minor {
            20 => (
                0,
                "go1.20 layouts were not measured: using go1.19's".to_string(),
            ),
            m if m > VERSIONS[VERSIONS.len() - 1] => (
                VERSIONS.len() - 1,
                format!(
                    "go1.{m} is newer than the newest measured runtime layout (go1.{}): using it",
                    VERSIONS[VERSIONS.len() - 1]
                ),
            ),
            _ => return None,
        };
        Some(Tables {
            col,
            go,
            approximation: Some(why),
            arch: Arch::X86_64,
        })
    }

    /// Tables for `go` on `arch`.
    pub fn for_target(go: GoVersion, arch: Arch) -> Option<Tables> {
        Tables::for_version(go).map(|t| Tables { arch, ..t })
    }

    /// A field's offsets per version, arm64's where they differ.
    fn field_cols(&self, ty: &str, f: &TField) -> &'static [i32; 8] {
        if self.arch == Arch::Aarch64 {
            if let Some(o) = tables_arm64::FIELDS
                .iter()
                .find(|o| o.0 == ty && o.1 == f.name)
            {
                return &o.2;
            }
        }
        self.static_field(ty, f.name).map_or(&NONE, |f| &f.off)
    }

    fn static_field(&self, ty: &str, name: &str) -> Option<&'static TField> {
        self.get(ty)?.fields.iter().find(|f| f.name == name)
    }

    /// An array field's element size per version, arm64's where it differs.
    fn elem_cols(&self, ty: &str, f: &TField) -> Option<(&'static str, &'static [i32; 8])> {
        let (et, sizes) = self.static_field(ty, f.name)?.elem.as_ref()?;
        if self.arch == Arch::Aarch64 {
            if let Some(o) = tables_arm64::ELEMS
                .iter()
                .find(|o| o.0 == ty && o.1 == f.name)
            {
                return Some((et, &o.2));
            }
        }
        Some((et, sizes))
    }

    /// A struct's size per version, arm64's where it differs.
    fn size_cols(&self, s: &'static TStruct) -> &'static [i32; 8] {
        if self.arch == Arch::Aarch64 {
            if let Some(o) = tables_arm64::SIZES.iter().find(|o| o.0 == s.name) {
                return &o.1;
            }
        }
        &s.size
    }

    /// Go minor version of the column in use.
    pub fn column_version(&self) -> u32 {
        VERSIONS[self.col]
    }

    fn get(&self, ty: &str) -> Option<&'static TStruct> {
        STRUCTS.iter().find(|s| s.name == ty)
    }

    fn at(&self, cols: &[i32; 8]) -> Option<u64> {
        let v = cols[self.col];
        (v >= 0).then_some(v as u64)
    }

    /// Field paths: the longest member name matching a prefix of the path
    /// wins (pseudo-types have members like "stack.size"), then the rest is
    /// resolved in the member's type. "central[3].partial" indexes arrays.
    fn resolve(&self, ty: &str, path: &str, depth: u32) -> Option<u64> {
        if depth > 8 {
            return None;
        }
        let s = self.get(ty)?;
        if let Some(f) = s.fields.iter().find(|f| f.name == path) {
            return self.at(self.field_cols(ty, f));
        }
        let (head, rest) = path.split_once('.')?;
        let (name, index) = match head.split_once('[') {
            Some((n, i)) => (n, Some(i.strip_suffix(']')?.parse::<u64>().ok()?)),
            None => (head, None),
        };
        let f = s.fields.iter().find(|f| f.name == name)?;
        let base = self.at(self.field_cols(ty, f))?;
        match index {
            None => {
                let sub = f.ty?;
                Some(base + self.resolve(sub, rest, depth + 1)?)
            }
            Some(i) => {
                let (et, sizes) = self.elem_cols(ty, f)?;
                let esize = self.at(sizes).or_else(|| self.size_of(et))?;
                Some(base + i.checked_mul(esize)? + self.resolve(et, rest, depth + 1)?)
            }
        }
    }

    /// Bytes from a field to the next field of its struct (or the struct's
    /// end) in this version: the tables record offsets, not field types, so
    /// this is the field's size when no padding follows it (checked against
    /// DWARF for every field gospy sizes this way, tests/runtime_tables.rs).
    /// Dotted paths descend into tabled field types.
    fn gap_after(&self, ty: &str, path: &str) -> Option<u64> {
        let s = self.get(ty)?;
        if let Some((head, rest)) = path.split_once('.') {
            let f = s.fields.iter().find(|f| f.name == head)?;
            return self.gap_after(f.ty?, rest);
        }
        let off = self.at(self.field_cols(ty, s.fields.iter().find(|f| f.name == path)?))?;
        let next = s
            .fields
            .iter()
            .filter_map(|f| self.at(self.field_cols(ty, f)))
            .filter(|&o| o > off)
            .min()
            .or_else(|| self.at(self.size_cols(s)))?;
        next.checked_sub(off).filter(|&g| g > 0)
    }

    /// Names of the tabled types (for tests).
    pub fn type_names() -> impl Iterator<Item = &'static str> {
        STRUCTS.iter().map(|s| s.name)
    }

    /// (field, offset) of every top-level field present in this version.
    pub fn fields(&self, ty: &str) -> Vec<(&'static str, u64)> {
        self.get(ty)
            .map(|s| {
                s.fields
                    .iter()
                    .filter_map(|f| self.at(self.field_cols(ty, f)).map(|o| (f.name, o)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Offsets of a field no version has.
static NONE: [i32; 8] = [-1; 8];

impl LayoutSource for Tables {
    fn offset_of(&self, ty: &str, path: &str) -> Option<u64> {
        self.resolve(ty, path, 0)
    }
    fn size_of(&self, ty: &str) -> Option<u64> {
        self.at(self.size_cols(self.get(ty)?))
    }
    fn describe(&self) -> String {
        format!("go1.{} runtime tables", self.column_version())
    }
    fn field_size(&self, ty: &str, path: &str) -> Option<u64> {
        self.gap_after(ty, path)
    }
    fn array_len(&self, ty: &str, path: &str, elem_size: u64) -> Option<u64> {
        let gap = self.gap_after(ty, path)?;
        (elem_size > 0 && gap % elem_size == 0).then_some(gap / elem_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(minor: u32) -> Option<Tables> {
        Tables::for_version(GoVersion::new(1, minor))
    }

    #[test]
    fn nested_paths_and_versions() {
        let t = tables(22).unwrap();
        assert_eq!(t.offset_of("runtime.g", "sched.sp"), Some(56));
        assert_eq!(t.offset_of("runtime.g", "sched.bp"), Some(56 + 48));
        assert_eq!(t.offset_of("runtime.g", "stack.hi"), Some(8));
        assert_eq!(t.offset_of("runtime.p", "gFree.n"), Some(2464 + 8));
        assert_eq!(t.offset_of("runtime.p", "gFree.size"), None);
        assert_eq!(t.offset_of("runtime.schedt", "gFree.n"), Some(160 + 24));
        assert_eq!(t.size_of("runtime.g"), Some(424));
        let t = tables(25).unwrap();
        assert_eq!(t.offset_of("runtime.g", "sched.bp"), Some(56 + 40));
        assert_eq!(t.offset_of("runtime.schedt", "runq.size"), Some(112 + 16));
        assert_eq!(
            t.offset_of("runtime.schedt", "gFree.noStack.size"),
            Some(168 + 32)
        );
        assert_eq!(
            t.offset_of("runtime.mheap", "central[2].spanclass"),
            Some(66208 + 2 * 192)
        );
        assert_eq!(
            t.offset_of("runtime.mstats", "heapStats.stats[1].largeAlloc"),
            Some(1168 + 48)
        );
        // Widths and array lengths from the next field's offset.
        let t22 = tables(22).unwrap();
        assert_eq!(t22.field_size("runtime.mspan", "nelems"), Some(2));
        assert_eq!(t22.field_size("runtime.mspan", "allocCount"), Some(2));
        assert_eq!(
            tables(19).unwrap().field_size("runtime.mspan", "nelems"),
            Some(8)
        );
        assert_eq!(t22.array_len("runtime.mstats", "pause_ns", 8), Some(256));
        assert_eq!(t22.array_len("runtime.mcache", "alloc", 8), Some(136));
        assert_eq!(
            t22.array_len("runtime.heapStatsDelta", "smallAllocCount", 8),
            Some(68)
        );
        assert_eq!(
            t22.array_len("runtime.mstats", "heapStats.stats", 1176),
            Some(3)
        );
        assert_eq!(t22.array_len("runtime.mstats", "pause_ns", 7), None);
        assert_eq!(t22.field_size("runtime.mstats", "nosuchfield"), None);
        assert!(tables(20).unwrap().approximation.is_some());
        assert_eq!(tables(30).unwrap().column_version(), 27);
        assert!(tables(18).is_none());
    }

    #[test]
    fn arm64_cache_line_pads() {
        let t = Tables::for_target(GoVersion::new(1, 25), Arch::Aarch64).unwrap();
        // mheap.central's elements are padded to 128 bytes on arm64.
        assert_eq!(
            t.offset_of("runtime.mheap", "central[2].spanclass"),
            Some(66272 + 2 * 256)
        );
        assert_eq!(t.offset_of("runtime.mheap", "spanalloc"), Some(101088));
        // Structs without a cache-line pad are amd64's.
        assert_eq!(t.offset_of("runtime.g", "sched.bp"), Some(56 + 40));
    }
}
