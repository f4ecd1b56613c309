//! Allocation sites, from the heap profile's samples (`heapprof`), with no
//! Go toolchain:
//! - [`top`]: flat and cumulative values per function (or per line), as
//!   `go tool pprof -top` computes them: flat sums the samples whose leaf
//!   frame (the first line of the first location) is the site, cum the
//!   samples that have the site anywhere on their stack, each sample
//!   counted once per site;
//! - [`diff`]: growth of in-use objects and bytes per allocation site (the
//!   leaf frame's function, file and line) between two profiles.

use super::heapprof::{HeapSamples, SiteLine, SAMPLE_TYPES};
use crate::text::fmt_bytes;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One row of [`top`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Site {
    pub function: String,
    pub file: String,
    /// Only when sites are lines (`--lines`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub flat: i64,
    pub flat_pct: f64,
    pub cum: i64,
    pub cum_pct: f64,
}

/// `heap --sites`: the top sites for one sample type.
#[derive(Debug, Clone, Serialize)]
pub struct Sites {
    /// inuse_space, inuse_objects, alloc_space or alloc_objects.
    pub sample: String,
    /// The sum of every sample's value (the profile's total).
    pub total: i64,
    /// The top sites, by flat value (all of them when no limit was given).
    pub sites: Vec<Site>,
    /// Sites with a non-zero flat or cum value, shown or not.
    #[serde(skip)]
    pub count: usize,
}

/// The index of a sample type in [`SAMPLE_TYPES`].
pub fn sample_index(name: &str) -> Option<usize> {
    SAMPLE_TYPES.iter().position(|(t, _)| *t == name)
}

fn pct(v: i64, total: i64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (v as f64 * 10000.0 / total as f64).round() / 100.0
}

/// A site's key: function, file and (with `lines`) line.
fn key(l: &SiteLine, lines: bool) -> (String, String, Option<u32>) {
    (l.function.clone(), l.file.clone(), lines.then_some(l.line))
}

/// The top `limit` sites (0: all) for sample type `sample`
/// ([`SAMPLE_TYPES`] index), by function, or by line with `lines`.
pub fn top(hs: &HeapSamples, sample: usize, lines: bool, limit: usize) -> Sites {
    type Key = (String, String, Option<u32>);
    let mut acc: BTreeMap<Key, (i64, i64)> = BTreeMap::new();
    let mut total = 0i64;
    for (values, locs) in &hs.samples {
        let v = values[sample];
        total = total.wrapping_add(v);
        if v == 0 {
            continue;
        }
        let mut seen: BTreeSet<Key> = BTreeSet::new();
        let stack = locs.iter().flat_map(|&l| hs.locs[l].iter());
        for (i, l) in stack.enumerate() {
            let k = key(l, lines);
            let e = acc.entry(k.clone()).or_default();
            if i == 0 {
                e.0 += v;
            }
            if seen.insert(k) {
                e.1 += v;
            }
        }
    }
    let mut sites: Vec<Site> = acc
        .into_iter()
        .filter(|(_, (f, c))| *f != 0 || *c != 0)
        .map(|((function, file, line), (flat, cum))| Site {
            function,
            file,
            line,
            flat,
            flat_pct: pct(flat, total),
            cum,
            cum_pct: pct(cum, total),
        })
        .collect();
    sites.sort_by(|a, b| {
        b.flat
            .abs()
            .cmp(&a.flat.abs())
            .then(b.cum.abs().cmp(&a.cum.abs()))
            .then_with(|| (&a.function, &a.file, a.line).cmp(&(&b.function, &b.file, b.line)))
    });
    let count = sites.len();
    if limit > 0 {
        sites.truncate(limit);
    }
    Sites {
        sample: SAMPLE_TYPES[sample].0.to_string(),
        total,
        sites,
        count,
    }
}

/// A value of the sample type `sample`: bytes or a count.
fn fmt_value(v: i64, bytes: bool) -> String {
    let s = if bytes {
        fmt_bytes(v.unsigned_abs())
    } else {
        v.unsigned_abs().to_string()
    };
    if v < 0 {
        format!("-{s}")
    } else {
        s
    }
}

fn site_name(function: &str, file: &str, line: Option<u32>) -> String {
    match line {
        Some(l) => format!("{function} {file}:{l}"),
        None => function.to_string(),
    }
}

/// `heap --sites` as text, `go tool pprof -top`'s columns.
pub fn top_text(s: &Sites) -> String {
    let bytes = s.sample.ends_with("_space");
    let mut out = format!(
        "{}: {} total, {} sites",
        s.sample,
        fmt_value(s.total, bytes),
        s.count
    );
    if s.sites.len() < s.count {
        out.push_str(&format!(", top {} by flat shown", s.sites.len()));
    }
    out.push('\n');
    out.push_str(&format!(
        "{:>12} {:>7} {:>7} {:>12} {:>7}  site\n",
        "flat", "flat%", "sum%", "cum", "cum%"
    ));
    let mut sum = 0.0;
    for x in &s.sites {
        sum += x.flat_pct;
        out.push_str(&format!(
            "{:>12} {:>6.2}% {:>6.2}% {:>12} {:>6.2}%  {}\n",
            fmt_value(x.flat, bytes),
            x.flat_pct,
            sum,
            fmt_value(x.cum, bytes),
            x.cum_pct,
            site_name(&x.function, &x.file, x.line)
        ));
    }
    out
}

/// One allocation site's in-use values in both profiles.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SiteGrowth {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub objects_a: i64,
    pub objects_b: i64,
    pub objects_growth: i64,
    pub bytes_a: i64,
    pub bytes_b: i64,
    pub bytes_growth: i64,
}

/// `diff --heap-sites`: every allocation site in use in either profile,
/// by bytes growth (largest first), then objects growth.
#[derive(Debug, Clone, Serialize)]
pub struct SitesDiff {
    pub objects_growth: i64,
    pub bytes_growth: i64,
    pub sites: Vec<SiteGrowth>,
    pub warnings: Vec<String>,
}

/// In-use (objects, bytes) per leaf frame.
fn inuse_by_leaf(hs: &HeapSamples) -> BTreeMap<SiteLine, (i64, i64)> {
    let mut m: BTreeMap<SiteLine, (i64, i64)> = BTreeMap::new();
    for (values, locs) in &hs.samples {
        let Some(leaf) = locs.first().and_then(|&l| hs.locs[l].first()) else {
            continue;
        };
        if values[2] == 0 && values[3] == 0 {
            continue;
        }
        let e = m.entry(leaf.clone()).or_default();
        e.0 += values[2];
        e.1 += values[3];
    }
    m
}

/// Growth of in-use objects and bytes per allocation site, from A to B.
pub fn diff(a: &HeapSamples, b: &HeapSamples, warnings: Vec<String>) -> SitesDiff {
    let (ma, mb) = (inuse_by_leaf(a), inuse_by_leaf(b));
    let keys: BTreeSet<&SiteLine> = ma.keys().chain(mb.keys()).collect();
    let mut sites: Vec<SiteGrowth> = keys
        .into_iter()
        .map(|k| {
            let (oa, ba) = ma.get(k).copied().unwrap_or_default();
            let (ob, bb) = mb.get(k).copied().unwrap_or_default();
            SiteGrowth {
                function: k.function.clone(),
                file: k.file.clone(),
                line: k.line,
                objects_a: oa,
                objects_b: ob,
                objects_growth: ob - oa,
                bytes_a: ba,
                bytes_b: bb,
                bytes_growth: bb - ba,
            }
        })
        .collect();
    sites.sort_by(|x, y| {
        y.bytes_growth
            .cmp(&x.bytes_growth)
            .then(y.objects_growth.cmp(&x.objects_growth))
            .then_with(|| (&x.function, &x.file, x.line).cmp(&(&y.function, &y.file, y.line)))
    });
    SitesDiff {
        objects_growth: sites.iter().map(|s| s.objects_growth).sum(),
        bytes_growth: sites.iter().map(|s| s.bytes_growth).sum(),
        sites,
        warnings,
    }
}

/// Sites shown by [`diff_text`] at most.
const DIFF_TEXT_ROWS: usize = 40;

fn signed(v: i64, bytes: bool) -> String {
    let s = fmt_value(v, bytes);
    if v > 0 {
        format!("+{s}")
    } else {
        s
    }
}

/// `diff --heap-sites` as text: the sites whose in-use values changed.
pub fn diff_text(d: &SitesDiff) -> String {
    let mut out = String::new();
    for w in &d.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let changed: Vec<&SiteGrowth> = d
        .sites
        .iter()
        .filter(|s| s.bytes_growth != 0 || s.objects_growth != 0)
        .collect();
    out.push_str(&format!(
        "in-use heap growth (B - A): {} in {} objects; {} of {} allocation sites changed\n",
        signed(d.bytes_growth, true),
        signed(d.objects_growth, false),
        changed.len(),
        d.sites.len()
    ));
    if changed.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:>12} {:>10} {:>12} {:>10}  site (leaf frame)\n",
        "bytes", "objects", "bytes in B", "objs in B"
    ));
    for s in changed.iter().take(DIFF_TEXT_ROWS) {
        out.push_str(&format!(
            "{:>12} {:>10} {:>12} {:>10}  {}\n",
            signed(s.bytes_growth, true),
            signed(s.objects_growth, false),
            fmt_value(s.bytes_b, true),
            s.objects_b,
            site_name(&s.function, &s.file, Some(s.line))
        ));
    }
    if changed.len() > DIFF_TEXT_ROWS {
        out.push_str(&format!(
            "... {} more changed sites (--json lists every site)\n",
            changed.len() - DIFF_TEXT_ROWS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: &str, l: u32) -> SiteLine {
        SiteLine {
            function: f.into(),
            file: "main.go".into(),
            line: l,
        }
    }

    /// Locations: 0 = leaf (inlined newNode in makeNode), 1 = main.main,
    /// 2 = main.f (recursion: main.f twice on one stack).
    fn samples(inuse: [i64; 3]) -> HeapSamples {
        HeapSamples {
            samples: vec![
                ([0, 0, inuse[0], inuse[0] * 10], vec![0, 1]),
                ([0, 0, inuse[1], inuse[1] * 10], vec![2, 2, 1]),
                ([0, 0, inuse[2], inuse[2] * 10], vec![1]),
            ],
            locs: vec![
                vec![line("main.newNode", 3), line("main.makeNode", 7)],
                vec![line("main.main", 20)],
                vec![line("main.f", 12)],
            ],
        }
    }

    #[test]
    fn flat_and_cum_like_pprof_top() {
        let s = top(&samples([1, 2, 4]), 3, false, 0);
        assert_eq!(s.total, 70);
        let get = |f: &str| s.sites.iter().find(|x| x.function == f).unwrap();
        assert_eq!(
            (get("main.newNode").flat, get("main.newNode").cum),
            (10, 10)
        );
        assert_eq!(
            (get("main.makeNode").flat, get("main.makeNode").cum),
            (0, 10)
        );
        // Recursion counts once per sample in cum.
        assert_eq!((get("main.f").flat, get("main.f").cum), (20, 20));
        assert_eq!((get("main.main").flat, get("main.main").cum), (40, 70));
        assert_eq!(s.sites[0].function, "main.main");
        assert_eq!(s.sites.iter().map(|x| x.flat).sum::<i64>(), s.total);
        assert_eq!(get("main.main").cum_pct, 100.0);
        assert_eq!(top(&samples([1, 2, 4]), 3, false, 2).sites.len(), 2);
    }

    #[test]
    fn diff_by_leaf() {
        let d = diff(&samples([1, 2, 4]), &samples([1, 5, 4]), Vec::new());
        assert_eq!((d.objects_growth, d.bytes_growth), (3, 30));
        assert_eq!(d.sites[0].function, "main.f");
        assert_eq!(d.sites[0].objects_growth, 3);
        assert!(d.sites[1..].iter().all(|s| s.objects_growth == 0));
        assert!(diff_text(&d).contains("+30 B"));
    }
}
