//! Finalizer and cleanup specials as roots (issue 14): the runtime's
//! `markrootSpans` treats a finalizer's closure (and everything its object
//! points to) and a cleanup's closure (Go 1.24+) as roots. On the specials
//! fixture (tests/fixtures/specials: finalizers whose closures alone hold
//! known buffers) and, from Go 1.24, the cleanups fixture (the same plus
//! `runtime.AddCleanup` with known arguments), a `--heap` capture gives:
//! - `retain --json`: one root per finalizer, `runtime: finalizer for
//!   *main.Res ADDR (main.setFinalizer.func1)`, per cleanup, `runtime:
//!   cleanup for ADDR (main.addCleanup.func1)`, and for the finalizer queued
//!   behind a hung one, `runtime: queued finalizer for *main.Res ADDR
//!   (main.queueFinalizer.func1)` (`runtime.allfin` recovered from code
//!   without a symbol table), and (cleanups fixture) for the cleanup queued
//!   behind a hung one, `runtime: queued cleanup (main.queueCleanup.func1)`
//!   (not on Go 1.25+ without a symbol table), each retaining the
//!   fixture's own computation within 1% (HeapAlloc deltas across GCs
//!   around `SetFinalizer`/`AddCleanup`), for non-PIE, PIE and `-s -w`, with
//!   every heap object scanned by its exact pointer mask (`conservative`
//!   false: Go 1.19–1.21 through the heap arena bitmaps);
//! - `path` to a finalizer's buffer starts at its finalizer root;
//! - a gcore core gives the same roots and bytes;
//! - snapshots whose specials lists (span `specials` heads, records'
//!   `next`, `offset`, `kind`, `fn`) are corrupted never panic or hang.

mod common;

use common::specials::check_specials;
use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;

fn json(args: &[&OsStr]) -> Value {
    let out = gospy_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn retain_json(snap: &Path) -> Value {
    json(&[
        "analyze".as_ref(),
        snap.as_os_str(),
        "retain".as_ref(),
        "--top".as_ref(),
        "100".as_ref(),
        "--json".as_ref(),
    ])
}

/// The fixture for a Go version: cleanups exist from Go 1.24.
fn fixture_for(version: &str) -> &'static str {
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor >= 24 {
        "cleanups"
    } else {
        "specials"
    }
}

fn capture_fixture(version: &str, pie: bool, ldflags: &str, core: bool) -> Option<HeapCapture> {
    heap_capture(fixture_for(version), version, pie, ldflags, core)
}

fn specials(version: &str, pie: bool, ldflags: &str) {
    let Some(c) = capture_fixture(version, pie, ldflags, false) else {
        return;
    };
    let what = format!("go {version} pie={pie} ldflags={ldflags:?}");
    let got = retain_json(&c.snap);
    assert_eq!(got["conservative"], serde_json::json!(false), "{what}");
    let lines = check_specials(&what, &got, &c.expect);
    report(&format!("{what}: {}", lines.join(", ")));
    // The path to the largest finalizer's buffer starts at its root.
    let last = c.expect["finalizers"].as_array().unwrap().last().unwrap();
    let (obj, buf) = (
        last["object"].as_u64().unwrap(),
        last["buffer"].as_u64().unwrap(),
    );
    let p = json(&[
        "analyze".as_ref(),
        c.snap.as_os_str(),
        "path".as_ref(),
        format!("{buf:#x}").as_ref(),
        "--json".as_ref(),
    ]);
    let first = p["objects"][0]["path"][0]["name"].as_str().unwrap_or("");
    assert!(
        first.starts_with("runtime: finalizer for *main.Res ")
            && first.contains(&format!("{obj:#x}")),
        "{what}: path to the finalizer's buffer: {p}"
    );
}

macro_rules! specials_tests {
    ($($name:ident: $version:literal, pie = $pie:literal, $flags:literal;)*) => {$(
        #[test]
        fn $name() {
            specials($version, $pie, $flags);
        }
    )*};
}

specials_tests! {
    specials_go1_19: "1.19", pie = false, "";
    specials_go1_21: "1.21", pie = false, "";
    specials_go1_22: "1.22", pie = false, "";
    specials_go1_23: "1.23", pie = false, "";
    specials_go1_24: "1.24", pie = false, "";
    specials_go1_25: "1.25", pie = false, "";
    specials_go1_26: "1.26", pie = false, "";
    specials_go1_27: "1.27", pie = false, "";
    specials_go1_22_pie: "1.22", pie = true, "";
    specials_go1_27_pie: "1.27", pie = true, "";
    specials_go1_22_stripped: "1.22", pie = false, "-s -w";
    specials_go1_27_stripped: "1.27", pie = false, "-s -w";
    specials_go1_27_pie_stripped: "1.27", pie = true, "-s -w";
    specials_go1_25_stripped: "1.25", pie = false, "-s -w";
    specials_go1_26_pie_stripped: "1.26", pie = true, "-s -w";
}

/// A gcore core of the fixture gives the same finalizer and cleanup roots
/// as a `--heap` capture of it.
fn core_same(version: &str) {
    if !have_gcore() {
        return;
    }
    let Some(c) = capture_fixture(version, false, "", true) else {
        return;
    };
    let what = format!("go {version} core");
    let core = c.core.clone().unwrap();
    let a = check_specials(&what, &retain_json(&c.snap), &c.expect);
    let b = check_specials(&what, &retain_json(&core), &c.expect);
    let _ = std::fs::remove_file(&core);
    assert_eq!(a, b, "{what}: --heap capture vs core");
    report(&format!("{what}: same specials as the --heap capture"));
}

#[test]
fn core_go1_22() {
    core_same("1.22");
}

#[test]
fn core_go1_27() {
    core_same("1.27");
}

/// xorshift64*: deterministic mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Snapshots whose specials lists are corrupted (the spans' `specials`
/// heads, the records' `next`, `offset`, `kind` and root words: zero, all
/// ones, random, pointing at a record (cycles), bit flips): `retain` never
/// panics nor takes over 10 s.
fn hostile_specials(version: &str) {
    use gospy::analyze::Session;
    use gospy::binary::Binary;
    use gospy::goruntime::heap::specials::SpecialsLayout;
    use gospy::goruntime::heap::HeapTarget;
    use gospy::snapshot::SnapshotFile;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let Some(c) = capture_fixture(version, false, "", false) else {
        return;
    };
    let bin = Arc::new(Binary::from_bytes(Arc::from(std::fs::read(&c.bin).unwrap())).unwrap());
    let base = SnapshotFile::from_bytes(std::fs::read(&c.snap).unwrap())
        .unwrap()
        .capture()
        .unwrap();
    // The records, found by the decoder on the intact snapshot.
    let records = {
        let s = Session::open(
            gospy::sources::from_capture(base.clone(), bin.clone()),
            None,
        )
        .unwrap();
        let ht = HeapTarget::new(&s.target).unwrap();
        let l = SpecialsLayout::from_binary(&s.target.bin).unwrap();
        let scan = l.scan(&ht, &s.mem);
        assert!(
            scan.specials.len() >= 3 && scan.broken == 0,
            "go {version}: specials on the intact snapshot: {} found, {} broken",
            scan.specials.len(),
            scan.broken
        );
        // Each record's words, and each span's list head.
        let mut v: Vec<(u64, u64)> = scan
            .specials
            .iter()
            .map(|s| (s.record, l.record_size))
            .collect();
        v.extend(
            scan.specials
                .iter()
                .map(|s| (s.span + l.span_specials_offset(), 8)),
        );
        v.sort_unstable();
        v.dedup();
        v
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(0x5bec_1a15 ^ version.len() as u64);
    let (mut failures, mut warned) = (Vec::new(), 0);
    let rounds = 40;
    for round in 0..rounds {
        let mut cap = base.clone();
        cap.binary = None;
        for _ in 0..1 + rng.below(6) {
            let (rec, len) = records[rng.below(records.len() as u64) as usize];
            let at = rec + rng.below(len / 8) * 8;
            let Some(r) = cap
                .regions
                .iter_mut()
                .find(|r| at >= r.addr && at + 8 <= r.addr + r.data.len() as u64)
            else {
                continue;
            };
            let o = (at - r.addr) as usize;
            let old = u64::from_le_bytes(r.data[o..o + 8].try_into().unwrap());
            let v = match rng.below(5) {
                0 => 0,
                1 => u64::MAX,
                2 => rng.next(),
                3 => records[rng.below(records.len() as u64) as usize].0,
                _ => old ^ (1 << rng.below(64)),
            };
            r.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        let start = Instant::now();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let s = Session::open(gospy::sources::from_capture(cap, bin.clone()), None).unwrap();
            match gospy::report::retain::build(&s, Some(10)) {
                Ok((r, _)) => {
                    let _ = gospy::report::retain::to_text(&r);
                    r.warnings.len()
                }
                Err(_) => 0,
            }
        }));
        let took = start.elapsed();
        match res {
            Ok(w) => warned += usize::from(w > 0),
            Err(_) => failures.push(format!("round {round}: panicked")),
        }
        if took > Duration::from_secs(10) {
            failures.push(format!("round {round}: took {took:?}"));
        }
    }
    std::panic::set_hook(hook);
    report(&format!(
        "go {version}: {rounds} snapshots with corrupted specials: {warned} with warnings, {} failures",
        failures.len()
    ));
    assert!(failures.is_empty(), "go {version}: {failures:?}");
}

#[test]
fn hostile_specials_go1_22() {
    hostile_specials("1.22");
}

#[test]
fn hostile_specials_go1_27() {
    hostile_specials("1.27");
}

/// The specials layout and kind numbers gospy uses without DWARF (the
/// per-version tables, `version::specials`) equal what DWARF says, for
/// every toolchain (the fixtures link finalizers and, 1.24+, cleanups).
#[test]
fn layout_tables_match_dwarf() {
    use gospy::binary::Binary;
    use gospy::goruntime::heap::specials::SpecialsLayout;
    use gospy::goruntime::version::specials::{CleanupQueueLayout, SpecialKinds, FIN_BLOCK};
    use gospy::goruntime::version::Tables;
    let mut checked = Vec::new();
    for (version, _) in toolchains() {
        let Some(path) = try_build_fixture(fixture_for(version), version, false, "") else {
            continue;
        };
        let bin = Binary::from_path(&path).expect("load fixture");
        let dwarf = bin.dwarf().expect("DWARF");
        let tables = Tables::for_version(bin.go).expect("tables");
        let a = SpecialsLayout::from_source(&bin, dwarf).expect("layout from DWARF");
        let b = SpecialsLayout::from_source(&bin, &tables).expect("layout from tables");
        assert_eq!(a, b, "go {version}: specials layout, DWARF vs tables");
        assert_eq!(
            SpecialKinds::for_binary(&bin),
            SpecialKinds::for_version(bin.go),
            "go {version}: special kinds, DWARF constants vs the version's values"
        );
        // The finalizer queue's blocks and records.
        let fb = ["runtime.finBlock", "runtime.finblock"]
            .into_iter()
            .find(|t| dwarf.size_of(t).is_some())
            .expect("finblock in DWARF");
        let f = FIN_BLOCK;
        assert_eq!(
            (
                dwarf.size_of(fb),
                dwarf.offset_of(fb, "alllink"),
                dwarf.offset_of(fb, "cnt"),
                dwarf.offset_of(fb, "fin"),
            ),
            (Some(f.size()), Some(f.alllink), Some(f.cnt), Some(f.fin)),
            "go {version}: {fb} layout"
        );
        let fz = "runtime.finalizer";
        assert_eq!(
            (
                dwarf.size_of(fz),
                dwarf.offset_of(fz, "fn"),
                dwarf.offset_of(fz, "arg"),
                dwarf.offset_of(fz, "fint"),
                dwarf.offset_of(fz, "ot"),
            ),
            (
                Some(f.entry_size),
                Some(f.fn_),
                Some(f.arg),
                Some(f.fint),
                Some(f.ot)
            ),
            "go {version}: runtime.finalizer layout"
        );
        // The cleanup queue (1.25+).
        if let Some(cq) = CleanupQueueLayout::for_version(bin.go, bin.elf.arch) {
            let cb = "runtime.cleanupBlock";
            assert_eq!(
                (
                    dwarf.offset_of("runtime.cleanupQueue", "all"),
                    dwarf.size_of(cb),
                    dwarf.offset_of(cb, "cleanupBlockHeader.alllink"),
                    dwarf.offset_of(cb, "cleanupBlockHeader.n"),
                    dwarf.offset_of(cb, "cleanups"),
                ),
                (
                    Some(cq.all),
                    Some(cq.size()),
                    Some(cq.alllink),
                    Some(cq.n),
                    Some(cq.cleanups)
                ),
                "go {version}: cleanup queue layout"
            );
        }
        let k = dwarf.constant("runtime._KindSpecialFinalizer");
        checked.push(format!("{version} (DWARF _KindSpecialFinalizer {k:?})"));
    }
    report(&format!(
        "specials layout and kinds match DWARF: {checked:?}"
    ));
}

/// `runtime.allfin` recovered from `runtime.queuefinalizer`'s code (for
/// `-s` builds) is where the symbol table says, on every toolchain: amd64
/// PIE and not, and arm64.
#[test]
fn allfin_recovered_matches_symtab() {
    let mut checked = Vec::new();
    for (version, _) in toolchains() {
        for (pie, arch) in [(false, "amd64"), (true, "amd64"), (false, "arm64")] {
            let env = [("GOARCH", arch)];
            let Some(path) = try_build_fixture_env("goroutines", version, pie, "", &env) else {
                continue;
            };
            let bin = gospy::binary::Binary::from_path(&path).expect("load fixture");
            let want = bin.elf.symbols().get("runtime.allfin").map(|s| s.0);
            assert!(
                want.is_some(),
                "go {version}: runtime.allfin not in the symbol table"
            );
            assert_eq!(
                gospy::goruntime::version::specials::recover_allfin(&bin),
                want,
                "go {version} {arch} pie={pie}: runtime.allfin recovered from code"
            );
            checked.push(format!("{version} {arch}{}", if pie { " pie" } else { "" }));
        }
    }
    report(&format!("runtime.allfin recovered from code: {checked:?}"));
}

/// `runtime.gcCleanups` (Go 1.25+) recovered from `runtime.markroot`'s
/// code (for `-s` builds, after `runtime.allfin` from its own code) is
/// where the symbol table says, on every toolchain from 1.25: amd64 PIE
/// and not, and arm64.
#[test]
fn gc_cleanups_recovered_matches_symtab() {
    use gospy::goruntime::version::specials::{
        recover_allfin, recover_gc_cleanups, CleanupQueueLayout,
    };
    let mut checked = Vec::new();
    for (version, _) in toolchains() {
        if go_minor(version) < (1, 25) {
            continue;
        }
        for (pie, arch) in [(false, "amd64"), (true, "amd64"), (false, "arm64")] {
            let env = [("GOARCH", arch)];
            let Some(path) = try_build_fixture_env("cleanups", version, pie, "", &env) else {
                continue;
            };
            let bin = gospy::binary::Binary::from_path(&path).expect("load fixture");
            let want = bin.elf.symbols().get("runtime.gcCleanups").map(|s| s.0);
            assert!(
                want.is_some(),
                "go {version}: runtime.gcCleanups not in the symbol table"
            );
            // The queue's layout on this architecture, against DWARF.
            let cq = CleanupQueueLayout::for_version(bin.go, bin.elf.arch).expect("1.25+");
            assert_eq!(
                bin.dwarf()
                    .expect("DWARF")
                    .offset_of("runtime.cleanupQueue", "all"),
                Some(cq.all),
                "go {version} {arch}: runtime.cleanupQueue.all"
            );
            let allfin = recover_allfin(&bin).expect("runtime.allfin recovered");
            assert_eq!(
                recover_gc_cleanups(&bin, allfin),
                want,
                "go {version} {arch} pie={pie}: runtime.gcCleanups recovered from code"
            );
            checked.push(format!("{version} {arch}{}", if pie { " pie" } else { "" }));
        }
    }
    assert!(
        !checked.is_empty() || std::env::var_os("CI").is_none(),
        "no Go 1.25+ toolchain"
    );
    report(&format!(
        "runtime.gcCleanups recovered from code: {checked:?}"
    ));
}
