//! The per-version runtime layout tables (src/goruntime/version/tables.rs, used when
//! a binary has no DWARF) must agree with the DWARF of real binaries, field by
//! field, for every toolchain; and the layouts gospy derives from either
//! source must be identical.

mod common;

use common::*;
use gospy::binary::Binary;
use gospy::goruntime::heap::HeapLayout;
use gospy::goruntime::version::{Layout, LayoutSource, Tables};

fn check_version(version: &str) {
    let Some(path) = try_build_fixture("goroutines", version, false, "") else {
        return;
    };
    let bin = Binary::from_path(&path).expect("load fixture");
    let dwarf = bin.dwarf().expect("unstripped fixture has DWARF");
    let tables = Tables::for_version(bin.go).expect("tables for a tested version");
    assert!(tables.approximation.is_none());

    let mut problems = Vec::new();
    let mut checked = 0;
    let mut absent_types = Vec::new();
    for ty in Tables::type_names() {
        // Pseudo-types of anonymous struct fields ("runtime.p.gFree"): check
        // their members through the parent's dotted paths.
        let (dwarf_ty, prefix) = match ty.rsplit_once('.') {
            Some((parent, field))
                if Tables::type_names().any(|t| t == parent) && !field.contains('/') =>
            {
                (parent.to_string(), format!("{field}."))
            }
            _ => (ty.to_string(), String::new()),
        };
        if dwarf.size_of(&dwarf_ty).is_none() {
            if !tables.fields(ty).is_empty() {
                absent_types.push(ty);
            }
            continue;
        }
        if prefix.is_empty() {
            if let Some(want) = tables.size_of(ty) {
                let got = dwarf.size_of(ty);
                checked += 1;
                if got != Some(want) {
                    problems.push(format!("sizeof({ty}): tables {want}, DWARF {got:?}"));
                }
            }
        }
        for (field, off) in tables.fields(ty) {
            let path = format!("{prefix}{field}");
            let got = dwarf.offset_of(&dwarf_ty, &path);
            let want = LayoutSource::offset_of(&tables, &dwarf_ty, &path);
            checked += 1;
            if got != want || (prefix.is_empty() && want != Some(off)) {
                problems.push(format!("{dwarf_ty}.{path}: tables {want:?}, DWARF {got:?}"));
            }
        }
    }
    // Types every Go program has.
    for must in [
        "runtime.g",
        "runtime.m",
        "runtime.p",
        "runtime.schedt",
        "runtime.mheap",
    ] {
        if absent_types.contains(&must) {
            problems.push(format!("{must} not in DWARF"));
        }
    }

    let from_dwarf = Layout::from_source(&bin, dwarf).expect("layout from DWARF");
    let from_tables = Layout::from_source(&bin, &tables).expect("layout from tables");
    if from_dwarf != from_tables {
        problems.push(format!(
            "layouts differ:\n  DWARF:  {from_dwarf:?}\n  tables: {from_tables:?}"
        ));
    }
    // The heap layouts (offsets, field widths and array lengths, which the
    // tables derive from the next field's offset) agree too.
    let heap_dwarf = HeapLayout::from_source(&bin, dwarf).expect("heap layout from DWARF");
    let heap_tables = HeapLayout::from_source(&bin, &tables).expect("heap layout from tables");
    if heap_dwarf != heap_tables {
        problems.push(format!(
            "heap layouts differ:\n  DWARF:  {heap_dwarf:?}\n  tables: {heap_tables:?}"
        ));
    }
    // Wait reasons: the table equals the binary's own waitReasonStrings.
    let bin = std::sync::Arc::new(bin);
    let target = gospy::goruntime::Target::new(bin.clone(), 0).expect("target");
    let table_reasons =
        gospy::goruntime::version::waitreason::measured(bin.go).expect("wait reasons");
    if target.wait_reasons != table_reasons {
        problems.push(format!(
            "wait reasons differ:\n  binary: {:?}\n  tables: {table_reasons:?}",
            target.wait_reasons
        ));
    }
    assert!(
        problems.is_empty(),
        "go {version}: {} of {checked} table entries disagree with DWARF:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "go {version}: {checked} table entries agree with DWARF (types not in this binary's DWARF: {absent_types:?})"
    );
}

macro_rules! table_tests {
    ($($name:ident: $v:literal;)*) => {$(
        #[test]
        fn $name() {
            check_version($v);
        }
    )*};
}

table_tests! {
    tables_match_dwarf_go1_19: "1.19";
    tables_match_dwarf_go1_21: "1.21";
    tables_match_dwarf_go1_22: "1.22";
    tables_match_dwarf_go1_23: "1.23";
    tables_match_dwarf_go1_24: "1.24";
    tables_match_dwarf_go1_25: "1.25";
    tables_match_dwarf_go1_26: "1.26";
    tables_match_dwarf_go1_27: "1.27";
}
