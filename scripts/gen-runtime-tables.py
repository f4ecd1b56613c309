#!/usr/bin/env python3
"""Generate src/goruntime/version/tables.rs: per-Go-version layouts of the runtime
structures and the wait-reason strings, used when the executable has no DWARF.

Inputs (measured from the DWARF of real Go 1.19, 1.21-1.27 binaries):
  go-runtime-offsets.txt  one block per struct: a header line
                          "<type> 1.19 1.21 ...", a SIZE line, then one line
                          per field "<name> <off|-> ... <type description>"
  go-wait-reasons.txt     "go1.N: 0=''; 1='GC assist marking'; ..."

Usage: scripts/gen-runtime-tables.py [REFERENCE_DIR] > src/goruntime/version/tables.rs
REFERENCE_DIR defaults to scripts/go-runtime-reference (a copy of
shared/reference kept in the repository so the output is reproducible).

Besides the measured tables, a few anonymous struct fields (which the
reference lists only as "struct struct {...}") get pseudo-types describing
their members, so dotted paths such as "gFree.n" resolve; the integration
test tests/runtime_tables.rs checks every offset here against DWARF.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "go-runtime-reference")

# Anonymous struct fields: (struct, field) -> pseudo-type with members whose
# offsets are relative to the field, per version column. `None` = absent.
# Go versions (columns): 1.19 1.21 1.22 1.23 1.24 1.25 1.26 1.27
ANON = {
    # p.gFree: struct { gList; n int32 } up to 1.24; a gList {head; size} from 1.25.
    ("runtime.p", "gFree"): {
        "head": [0] * 8,
        "n": [8, 8, 8, 8, 8, None, None, None],
        "size": [None, None, None, None, None, 8, 8, 8],
    },
    # schedt.gFree: struct { lock mutex; stack gList; noStack gList; n int32 } up
    # to 1.24; the counters live in the gLists from 1.25 (gList is 16 bytes).
    ("runtime.schedt", "gFree"): {
        "lock": [0] * 8,
        "stack": [8] * 8,
        "noStack": [16, 16, 16, 16, 16, 24, 24, 24],
        "n": [24, 24, 24, 24, 24, None, None, None],
        "stack.size": [None, None, None, None, None, 16, 16, 16],
        "noStack.size": [None, None, None, None, None, 32, 32, 32],
    },
    ("runtime.schedt", "disable"): {
        "user": [0] * 8,
        "runnable": [8] * 8,
    },
    ("runtime.mheap", "curArena"): {
        "base": [0] * 8,
        "end": [8] * 8,
    },
}

# Fields whose type is an array of a tabled struct: (struct, field) -> (element
# type, element size per column). Lets callers index e.g. mheap.central.
ARRAYS = {
    # [numSpanClasses]struct { mcentral mcentral; pad [...]byte }: 168 + 24.
    ("runtime.mheap", "central"): ("runtime.mcentral", [192] * 8),
    ("runtime.consistentHeapStats", "stats"): ("runtime.heapStatsDelta", None),
}


def parse_offsets(path):
    structs = []
    cur = None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            cur = None
            continue
        toks = line.split()
        if cur is None:
            vers = toks[1:]
            if vers != ["1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26", "1.27"]:
                sys.exit(f"unexpected version columns in {line!r}")
            cur = {"name": toks[0], "size": None, "fields": []}
            structs.append(cur)
            continue
        name = toks[0]
        cols = [None if t == "-" else int(t) for t in toks[1:9]]
        if name == "SIZE":
            cur["size"] = cols
            continue
        if name == "_":
            continue  # padding; several per struct, only one listed
        desc = " ".join(toks[9:])
        cur["fields"].append({"name": name, "offs": cols, "desc": desc})
    return structs


def nested_type(desc, known):
    """The struct type of a field when every alternative names the same
    tabled struct ("runtime.gobuf (48) | runtime.gobuf (56)")."""
    names = set()
    for alt in desc.split("|"):
        alt = alt.strip()
        m = re.match(r"^(\S+) \(\d+\)$", alt)
        if not m:
            return None
        names.add(m.group(1))
    if len(names) == 1:
        n = names.pop()
        if n in known:
            return n
    return None


def parse_wait_reasons(path):
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^go1\.(\d+):\s*(.*)$", line)
        if not m:
            sys.exit(f"bad wait-reason line {line[:40]!r}")
        minor = int(m.group(1))
        items = re.findall(r"(\d+)='([^']*)'", m.group(2))
        strs = []
        for i, (idx, s) in enumerate(items):
            if int(idx) != i:
                sys.exit(f"go1.{minor}: wait reason {idx} out of order")
            strs.append(s)
        out.append((minor, strs))
    return out


def rs_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rs_cols(cols):
    return "[" + ", ".join("-1" if c is None else str(c) for c in cols) + "]"


def main():
    structs = parse_offsets(os.path.join(REF, "go-runtime-offsets.txt"))
    waits = parse_wait_reasons(os.path.join(REF, "go-wait-reasons.txt"))
    known = {s["name"] for s in structs}
    o = []
    w = o.append
    w("//! GENERATED by scripts/gen-runtime-tables.py from the measured runtime")
    w("//! layouts (go-runtime-offsets.txt, go-wait-reasons.txt). Do not edit.")
    w("//!")
    w("//! Offsets are per Go version column ([`VERSIONS`]); -1 means the field")
    w("//! does not exist in that version. Used only when DWARF is absent; see")
    w("//! `fallback.rs` for lookups and tests/runtime_tables.rs for the check")
    w("//! against DWARF.")
    w("")
    w("/// Go minor versions of the columns.")
    w("pub const VERSIONS: [u32; 8] = [19, 21, 22, 23, 24, 25, 26, 27];")
    w("")
    w("pub struct TField {")
    w("    pub name: &'static str,")
    w("    pub off: [i32; 8],")
    w("    /// Struct type of the field (a tabled type or an anonymous pseudo-type).")
    w("    pub ty: Option<&'static str>,")
    w("    /// Element type and per-version element size when the field is an array")
    w("    /// of a tabled struct (size -1: use the element type's size).")
    w("    pub elem: Option<(&'static str, [i32; 8])>,")
    w("}")
    w("")
    w("pub struct TStruct {")
    w("    pub name: &'static str,")
    w("    pub size: [i32; 8],")
    w("    pub fields: &'static [TField],")
    w("}")
    w("")
    w("pub static STRUCTS: &[TStruct] = &[")
    pseudo = []
    for s in structs:
        w("    TStruct {")
        w(f"        name: {rs_str(s['name'])},")
        w(f"        size: {rs_cols(s['size'])},")
        w("        fields: &[")
        for f in s["fields"]:
            key = (s["name"], f["name"])
            ty = None
            if key in ANON:
                ty = f"{s['name']}.{f['name']}"
                pseudo.append((ty, ANON[key]))
            else:
                ty = nested_type(f["desc"], known)
            elem = "None"
            if key in ARRAYS:
                et, es = ARRAYS[key]
                elem = f"Some(({rs_str(et)}, {rs_cols(es if es else [None] * 8)}))"
            tys = "None" if ty is None else f"Some({rs_str(ty)})"
            w(
                f"            TField {{ name: {rs_str(f['name'])}, off: {rs_cols(f['offs'])}, ty: {tys}, elem: {elem} }},"
            )
        w("        ],")
        w("    },")
    for name, members in pseudo:
        w("    TStruct {")
        w(f"        name: {rs_str(name)},")
        w(f"        size: {rs_cols([None] * 8)},")
        w("        fields: &[")
        for m, cols in members.items():
            w(
                f"            TField {{ name: {rs_str(m)}, off: {rs_cols(cols)}, ty: None, elem: None }},"
            )
        w("        ],")
        w("    },")
    w("];")
    w("")
    w("/// `runtime.waitReasonStrings` per Go minor version.")
    w("pub static WAIT_REASONS: &[(u32, &[&str])] = &[")
    for minor, strs in waits:
        w(f"    ({minor}, &[")
        for s in strs:
            w(f"        {rs_str(s)},")
        w("    ]),")
    w("];")
    sys.stdout.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
