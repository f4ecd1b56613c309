//! Checks the test harness itself, without gospy: the goroutines fixture
//! builds and runs with every toolchain (PIE and not), its oracle parses and
//! shows every expected goroutine blocked where it should be, meta.json is
//! sane, and the oracle parser handles each runtime's format variations.

mod common;

use std::collections::BTreeMap;

use common::*;

/// (function that must appear in the goroutine's frames, how many goroutines,
/// acceptable states). Mirrors `expected` in tests/fixtures/goroutines/main.go.
const EXPECTED: &[(&str, usize, &[&str])] = &[
    ("main.blockChanSend", 1, &["chan send"]),
    ("main.blockChanRecv", 1, &["chan receive"]),
    ("main.blockSelect", 1, &["select"]),
    ("main.blockSelectNoCases", 1, &["select (no cases)"]),
    ("main.blockNilChanRecv", 1, &["chan receive (nil chan)"]),
    ("main.blockNilChanSend", 1, &["chan send (nil chan)"]),
    ("main.blockMutex", 1, &["sync.Mutex.Lock", "semacquire"]),
    ("main.blockRLock", 1, &["sync.RWMutex.RLock", "semacquire"]),
    ("main.blockWLock", 1, &["sync.RWMutex.Lock", "semacquire"]),
    (
        "main.blockWaitGroup",
        1,
        &["sync.WaitGroup.Wait", "semacquire"],
    ),
    ("main.blockCond", 1, &["sync.Cond.Wait"]),
    ("main.blockSleep", 1, &["sleep"]),
    ("main.blockAccept", 1, &["IO wait"]),
    ("main.blockSyscall", 1, &["syscall"]),
    ("main.deepRecursion", 1, &["chan receive"]),
    ("main.inlinedChain", 1, &["chan receive"]),
    ("main.withArgs", 1, &["chan receive"]),
    ("main.spawner", 1, &["chan receive"]),
    ("main.spawnedChild", 1, &["chan receive"]),
    ("main.orphan", 1, &["chan receive"]),
    ("main.(*server).serve", 1, &["chan receive"]),
    ("main.(*server).run", 1, &["chan receive"]),
    ("main.startClosure.func1", 1, &["chan receive"]),
    ("main.labelled.func1", 1, &["chan receive"]),
    ("main.labelledChild", 1, &["chan receive"]),
    ("main.worker", 10, &["chan receive"]),
    ("main.lockedThread", 1, &["chan receive"]),
    ("main.recurse", 2, &["chan receive"]),
];

fn has_frame(g: &OracleGoroutine, function: &str) -> bool {
    g.frames.iter().any(|f| f.function == function)
}

fn only<'a>(o: &'a Oracle, function: &str) -> &'a OracleGoroutine {
    let gs: Vec<_> = o
        .goroutines
        .iter()
        .filter(|g| has_frame(g, function))
        .collect();
    assert_eq!(gs.len(), 1, "goroutines with {function}");
    gs[0]
}

fn names(g: &OracleGoroutine) -> Vec<(&str, bool)> {
    g.frames
        .iter()
        .map(|f| (f.function.as_str(), f.inlined))
        .collect()
}

fn selfcheck(version: &str, pie: bool) {
    let Some(bin) = try_build_fixture("goroutines", version, pie, "") else {
        return;
    };
    let mut fx = Fixture::start(&bin);
    let o = fx.oracle();
    let m = &o.meta;
    let ctx = format!("go {version} pie={pie}");

    // meta.json
    assert_eq!(m.pid, fx.pid, "{ctx}: meta pid");
    assert!(
        m.go_version.starts_with(&format!("go{version}")),
        "{ctx}: go_version {}",
        m.go_version
    );
    assert!(m.gomaxprocs >= 1, "{ctx}");
    assert_eq!(m.build_tag, "default", "{ctx}");
    assert_eq!(m.oracle_goroutine_id, 1, "{ctx}");
    let (_, minor) = m.go_minor();

    // Goroutine set: unique ids; as many as runtime.NumGoroutine() (no system
    // goroutines shown, nothing started or exited in between).
    let mut ids: Vec<u64> = o.goroutines.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), o.goroutines.len(), "{ctx}: duplicate ids");
    assert_eq!(
        o.goroutines.len(),
        m.num_goroutine,
        "{ctx}: goroutines in stack.txt vs NumGoroutine"
    );
    let expected_total: usize = EXPECTED
        .iter()
        .filter(|e| e.0 != "main.recurse")
        .map(|e| e.1)
        .sum::<usize>()
        + 3; // veryDeepRecursion (bottom frames elided in 1.19), main, busy loop
    assert_eq!(o.goroutines.len(), expected_total, "{ctx}");

    // The writer: main, running.
    let main = &o.goroutines[0];
    assert_eq!(main.id, m.oracle_goroutine_id, "{ctx}");
    assert_eq!(main.state, "running", "{ctx}");
    assert!(
        has_frame(main, "main.main") && has_frame(main, "main.allStacks"),
        "{ctx}: {main:?}"
    );
    assert!(main.created_by.is_none(), "{ctx}");

    // The busy loop: preempted by Stack's stop-the-world.
    let busy = o.goroutine(m.busy_goroutine_id).expect("busy goroutine");
    assert!(
        busy.state == "runnable" || busy.state == "running",
        "{ctx}: busy is {}",
        busy.state
    );
    assert_eq!(busy.frames[0].function, "main.busyLoop", "{ctx}");

    // Everything else is blocked in its expected state.
    for g in &o.goroutines {
        if g.id == main.id || g.id == busy.id {
            continue;
        }
        assert!(!g.unavailable, "{ctx}: goroutine {} unavailable", g.id);
        assert!(
            !["running", "runnable", "preempted"].contains(&g.state.as_str()),
            "{ctx}: goroutine {} is {}",
            g.id,
            g.state
        );
        assert_eq!(g.wait_minutes, 0, "{ctx}");
        assert_eq!(
            g.locked_to_thread,
            has_frame(g, "main.lockedThread"),
            "{ctx}: {}",
            g.id
        );
        assert!(
            g.created_by.is_some(),
            "{ctx}: goroutine {} has no creator",
            g.id
        );
        for f in &g.frames {
            assert!(f.inlined || f.offset.is_some(), "{ctx}: {f:?}");
            assert!(f.line > 0 && !f.file.is_empty(), "{ctx}: {f:?}");
            if f.function.starts_with("main.") {
                assert_eq!(f.file, "./main.go", "{ctx}: -trimpath file name");
            }
        }
    }
    for (function, count, states) in EXPECTED {
        let gs: Vec<_> = o
            .goroutines
            .iter()
            .filter(|g| has_frame(g, function))
            .collect();
        assert_eq!(gs.len(), *count, "{ctx}: goroutines with {function}");
        for g in gs {
            assert!(
                states.contains(&g.state.as_str()),
                "{ctx}: {function} in goroutine {} is {:?}, want one of {states:?}",
                g.id,
                g.state
            );
        }
    }
    let by_mutex = only(&o, "main.blockMutex");
    let want_mutex = if minor >= 21 {
        "sync.Mutex.Lock"
    } else {
        "semacquire"
    };
    assert_eq!(by_mutex.state, want_mutex, "{ctx}");

    // Creators. 1.21+ names the creating goroutine.
    let parent = |id: u64| if minor >= 21 { Some(id) } else { None };
    let spawner = only(&o, "main.spawner");
    let child = only(&o, "main.spawnedChild");
    let cb = child.created_by.as_ref().unwrap();
    assert_eq!(
        (cb.function.as_str(), cb.goroutine),
        ("main.spawner", parent(spawner.id)),
        "{ctx}"
    );
    for f in [
        "main.blockChanRecv",
        "main.withArgs",
        "main.worker",
        "main.(*server).run",
    ] {
        let cb = only_or_first(&o, f).created_by.clone().unwrap();
        assert_eq!(
            (cb.function.as_str(), cb.goroutine),
            ("main.startAll", parent(1)),
            "{ctx}: {f}"
        );
        assert_eq!(cb.file, "./main.go", "{ctx}");
    }
    let orphan = only(&o, "main.orphan").created_by.clone().unwrap();
    assert_eq!(orphan.function, "main.shortLivedSpawner", "{ctx}");
    if let Some(dead) = orphan.goroutine {
        assert!(
            o.goroutine(dead).is_none(),
            "{ctx}: the orphan's creator has exited"
        );
    }
    assert_eq!(
        only(&o, "main.startClosure.func1")
            .created_by
            .as_ref()
            .unwrap()
            .function,
        "main.startClosure",
        "{ctx}"
    );
    // `go f(x)` and `go obj.M()`: the gowrap / -fm wrappers are not shown.
    for f in [
        "main.withArgs",
        "main.(*server).serve",
        "main.(*server).run",
    ] {
        let g = only(&o, f);
        assert_eq!(names(g), vec![(f, false)], "{ctx}");
    }

    // Inlined frames at the top and in the middle of a physical frame.
    assert_eq!(
        names(only(&o, "main.inlinedChain")),
        vec![
            ("main.inlC", true),
            ("main.inlB", true),
            ("main.inlLeaf", false),
            ("main.inlA", true),
            ("main.inlinedChain", false)
        ],
        "{ctx}"
    );
    // sync.(*Mutex).Lock's fast path is inlined into blockMutex.
    assert!(
        by_mutex
            .frames
            .iter()
            .any(|f| f.function == "sync.(*Mutex).Lock" && f.inlined),
        "{ctx}: {by_mutex:?}"
    );

    // Recursion: 40 frames shown in full; 150 elided.
    let deep = only(&o, "main.deepRecursion");
    assert_eq!(deep.frames.len(), 41, "{ctx}");
    assert!(deep.elided.is_none(), "{ctx}");
    let very = o
        .goroutines
        .iter()
        .find(|g| {
            g.frames
                .iter()
                .filter(|f| f.function == "main.recurse")
                .count()
                > 40
        })
        .expect("veryDeepRecursion goroutine");
    if minor >= 21 {
        // 50 inner frames, "...51 frames elided...", 50 outer frames.
        assert_eq!(
            very.elided,
            Some(Elision {
                at: 50,
                count: Some(51)
            }),
            "{ctx}"
        );
        assert_eq!(very.frames.len(), 100, "{ctx}");
        assert_eq!(
            very.frames.last().unwrap().function,
            "main.veryDeepRecursion",
            "{ctx}"
        );
    } else {
        // Go 1.19 stops after 100 physical frames (hidden runtime frames
        // included) and, as those were hidden, prints no elision marker.
        assert_eq!(very.elided, None, "{ctx}");
        assert_eq!(very.frames.len(), 97, "{ctx}");
        assert!(
            very.frames.iter().all(|f| f.function == "main.recurse"),
            "{ctx}"
        );
    }

    // Syscall and IO wait.
    assert!(
        has_frame(only(&o, "main.blockSyscall"), "syscall.Syscall"),
        "{ctx}"
    );
    assert!(
        has_frame(only(&o, "main.blockAccept"), "net.(*TCPListener).Accept"),
        "{ctx}"
    );

    // Labels: both goroutines, both keys; in the 1.27 header too.
    let want: BTreeMap<String, String> = [("worker", "labelled"), ("span", "a b/c")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let labelled = [
        only(&o, "main.labelled.func1").id,
        only(&o, "main.labelledChild").id,
    ];
    assert_eq!(m.labels.keys().copied().collect::<Vec<_>>(), {
        let mut l = labelled.to_vec();
        l.sort_unstable();
        l
    });
    for id in labelled {
        assert_eq!(m.labels[&id], want, "{ctx}");
        let g = o.goroutine(id).unwrap();
        if minor >= 27 {
            assert_eq!(g.labels, want, "{ctx}: labels in the 1.27 header");
        } else {
            assert!(g.labels.is_empty(), "{ctx}");
        }
    }
    assert_eq!(
        o.goroutines.iter().filter(|g| !g.labels.is_empty()).count(),
        if minor >= 27 { 2 } else { 0 },
        "{ctx}"
    );

    // The fixture keeps running (only the busy loop), and dies with Drop.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(fx.is_running(), "{ctx}: fixture exited: {}", fx.stderr());
    let pid = fx.pid;
    drop(fx);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "{ctx}: fixture still alive"
    );
}

fn only_or_first<'a>(o: &'a Oracle, function: &str) -> &'a OracleGoroutine {
    o.goroutines
        .iter()
        .find(|g| has_frame(g, function))
        .unwrap()
}

macro_rules! selfchecks {
    ($($name:ident: $version:literal, $pie:literal;)*) => {$(
        #[test]
        fn $name() {
            selfcheck($version, $pie);
        }
    )*};
}

selfchecks! {
    fixture_selfcheck_go1_19: "1.19", false;
    fixture_selfcheck_go1_21: "1.21", false;
    fixture_selfcheck_go1_22: "1.22", false;
    fixture_selfcheck_go1_23: "1.23", false;
    fixture_selfcheck_go1_24: "1.24", false;
    fixture_selfcheck_go1_25: "1.25", false;
    fixture_selfcheck_go1_26: "1.26", false;
    fixture_selfcheck_go1_27: "1.27", false;
    fixture_selfcheck_go1_19_pie: "1.19", true;
    fixture_selfcheck_go1_27_pie: "1.27", true;
}

/// A build with another -X value gets another build id (what the
/// missing-binary test relies on).
#[test]
fn fixture_ldflags_variant_has_other_build_id() {
    let Some(a) = try_build_fixture("goroutines", "1.22", false, "") else {
        return;
    };
    let b = build_fixture("goroutines", "1.22", false, "-X main.buildTag=other");
    assert_ne!(a, b);
    let note = |p: &std::path::Path| {
        let data = std::fs::read(p).unwrap();
        // The Go build id note is near the start: "Go\0\0" then the id.
        let at = data.windows(4).position(|w| w == b"Go\0\0").unwrap();
        data[at..at + 100].to_vec()
    };
    assert_ne!(note(&a), note(&b));
}

// --- parser unit tests on hand-written texts -------------------------------

#[test]
fn parses_go119_format() {
    let text = "goroutine 1 [running]:\nmain.main()\n\t/x/main.go:10 +0x1d\n\n\
        goroutine 18 [chan receive, 3 minutes, locked to thread]:\n\
        main.inl(...)\n\t/x/main.go:5\n\
        main.(*T).run(0xc000010000, {0x4b2c2d?, 0x1?})\n\t/x/main.go:7 +0x2f\n\
        ...additional frames elided...\n\
        created by main.main\n\t/x/main.go:12 +0x3a\n";
    let gs = parse_oracle(text).unwrap();
    assert_eq!(gs.len(), 2);
    let g = &gs[1];
    assert_eq!(
        (g.id, g.state.as_str(), g.wait_minutes, g.locked_to_thread),
        (18, "chan receive", 3, true)
    );
    assert_eq!(
        g.frames[0],
        OracleFrame {
            function: "main.inl".into(),
            args: "...".into(),
            file: "/x/main.go".into(),
            line: 5,
            inlined: true,
            offset: None
        }
    );
    assert_eq!(g.frames[1].function, "main.(*T).run");
    assert_eq!(g.frames[1].offset, Some(0x2f));
    assert!(!g.frames[1].inlined);
    assert_eq!(g.elided, Some(Elision { at: 2, count: None }));
    assert_eq!(
        g.created_by,
        Some(OracleCreatedBy {
            function: "main.main".into(),
            goroutine: None,
            file: "/x/main.go".into(),
            line: 12,
            offset: Some(0x3a)
        })
    );
}

#[test]
fn parses_go121_to_go127_variants() {
    let text = "goroutine 7 gp=0xc000007c00 m=nil [select (no cases), 12 minutes]:\n\
        main.F[...](0x1)\n\t./main.go:3 +0x10 fp=0xc00003e7d0 sp=0xc00003e7b0 pc=0x45f10\n\
        ...51 frames elided...\n\
        main.G()\n\t./main.go:4 +0x11\n\
        created by main.main in goroutine 1\n\t./main.go:9 +0x20\n\
        [originating from goroutine 1]:\n\
        main.main(...)\n\t./main.go:9 +0x20\n\n\
        goroutine 9 [sync.Mutex.Lock labels:{\"a\": \"b, c]\", \"k\": \"\\x01\\u00e9\"}]:\n\
        main.H()\n\t./main.go:5 +0x12\n\n\
        goroutine 10 [chan receive (durable), synctest bubble 3] {span: \"a b/c\", worker: labelled}:\n\
        main.H()\n\t./main.go:5 +0x12\n\n\
        goroutine 11 [running]:\n\
        \tgoroutine running on other thread; stack unavailable\n\
        created by main.main in goroutine 1\n\t./main.go:9 +0x20\n";
    let gs = parse_oracle(text).unwrap();
    assert_eq!(gs.len(), 4);
    let g = &gs[0];
    assert_eq!(
        (g.id, g.state.as_str(), g.wait_minutes),
        (7, "select (no cases)", 12)
    );
    assert_eq!(g.frames.len(), 2);
    assert_eq!(g.frames[0].function, "main.F[...]");
    assert_eq!(g.frames[0].offset, Some(0x10));
    assert_eq!(
        g.elided,
        Some(Elision {
            at: 1,
            count: Some(51)
        })
    );
    let cb = g.created_by.as_ref().unwrap();
    assert_eq!(
        (cb.function.as_str(), cb.goroutine, cb.line),
        ("main.main", Some(1), 9)
    );

    assert_eq!(gs[1].state, "sync.Mutex.Lock");
    let l: Vec<_> = gs[1]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(l, vec![("a", "b, c]"), ("k", "\u{1}é")]);

    assert_eq!(gs[2].state, "chan receive (durable)");
    let l: Vec<_> = gs[2]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(l, vec![("span", "a b/c"), ("worker", "labelled")]);

    assert!(gs[3].unavailable && gs[3].frames.is_empty());
    assert_eq!(gs[3].created_by.as_ref().unwrap().goroutine, Some(1));
}

#[test]
fn rejects_garbage() {
    assert!(parse_oracle("goroutine x [running]:\n").is_err());
    assert!(parse_oracle("goroutine 1 [running]:\nmain.main()\n").is_err());
    assert!(parse_oracle("goroutine 1 [running]:\nmain.main()\n\tnoline\n").is_err());
    assert!(parse_oracle("").unwrap().is_empty());
}
