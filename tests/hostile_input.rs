//! Hostile input: gospy must be safe on arbitrary bytes.
//!
//! * `malformed_files_never_crash_hang_or_bloat`: a corpus of malformed
//!   snapshots (the committed files in tests/corpus/ plus cases generated
//!   here from the shipped sample: truncations, bit flips, wrong magic,
//!   absurd counts and lengths with valid checksums, garbage chunks, a
//!   decompression bomb) is analyzed by the real binary (`summary`, `dump`,
//!   and `info`): a clear error or a partial result, never exit code 101, never
//!   more than 10 s, and at most 2 × the uncompressed input + a fixed
//!   allowance of memory (peak RSS from wait4).
//! * `hostile_memory_never_panics_or_hangs`: snapshots whose chunks are valid
//!   but whose memory is hostile (allglen huge, allgs pointing into itself,
//!   allm cycles, g with sp outside its stack, PCs outside text, label
//!   structures with cycles and absurd counts, stacks of self-referencing
//!   frames shared by thousands of goroutines, random scribbles) are
//!   re-encoded and analyzed in-process (debug build: arithmetic overflow
//!   panics too): no panic, no case over 10 s.
//! * `damaged_chunk_is_named_and_the_rest_analyzes`: each chunk of a
//!   multi-chunk snapshot damaged in turn: analyze names the damaged region
//!   and still prints what it can.
//!
//! `GOSPY_WRITE_CORPUS=1` rewrites tests/corpus/ from the sample.

mod common;

use common::*;
use gospy::analyze::{Model, Session};
use gospy::binary::Binary;
use gospy::goruntime::Target;
use gospy::model::{Capture, Region, RegionKind};
use gospy::report;
use gospy::snapshot::format::{Preamble, CHUNK_ENTRY_LEN, PREAMBLE_LEN, REGION_ENTRY_LEN};
use gospy::snapshot::{self, SnapshotFile, WriteOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(10);

fn sample_path() -> PathBuf {
    crate_root().join("samples/goroutines-go1.27.gss")
}

/// The shipped sample, its capture, and its executable written to a file.
struct Base {
    bytes: Vec<u8>,
    cap: Capture,
    bin_path: PathBuf,
    bin: Arc<Binary>,
    _dir: tempfile::TempDir,
}

fn base() -> &'static Base {
    static B: OnceLock<Base> = OnceLock::new();
    B.get_or_init(|| {
        let bytes = std::fs::read(sample_path()).unwrap();
        let snap = SnapshotFile::from_bytes(bytes.clone()).unwrap();
        let cap = snap.capture().unwrap();
        let exe = cap.binary.clone().expect("the sample embeds its binary");
        let dir = tempfile::tempdir().unwrap();
        let bin_path = dir.path().join("goroutines");
        std::fs::write(&bin_path, &exe).unwrap();
        let bin = Arc::new(Binary::from_bytes(Arc::from(exe)).unwrap());
        Base {
            bytes,
            cap,
            bin_path,
            bin,
            _dir: dir,
        }
    })
}

/// The sample's memory without the binary, in 64 KiB chunks (several).
fn small_snapshot(cap: &Capture) -> Vec<u8> {
    let mut c = cap.clone();
    c.binary = None;
    snapshot::encode(
        &c,
        &WriteOptions {
            level: 3,
            chunk_size: 64 << 10,
        },
    )
    .unwrap()
}

fn raw_size(cap: &Capture) -> u64 {
    cap.regions.iter().map(|r| r.data.len() as u64).sum::<u64>()
        + cap.binary.as_ref().map_or(0, |b| b.len() as u64)
}

// ---------------------------------------------------------------------------
// Byte-level corpus
// ---------------------------------------------------------------------------

/// xorshift64*.
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

fn crc(b: &[u8]) -> u32 {
    gospy::snapshot::format::crc32(b)
}

fn preamble(b: &[u8]) -> Preamble {
    Preamble::decode(&b[..Preamble::prefix_len(b.len() as u64)], b.len() as u64).unwrap()
}

/// Recompute the section CRCs of `p` from `b` (where the sections lie inside
/// it) and write the preamble: a file whose checksums are all valid.
fn reseal(b: &mut [u8], mut p: Preamble) {
    let sect = |off: u64, len: u64| -> Option<u32> {
        let s = usize::try_from(off).ok()?;
        let e = s.checked_add(usize::try_from(len).ok()?)?;
        b.get(s..e).map(crc)
    };
    if let Some(c) = sect(p.header_off, p.header_len) {
        p.header_crc = c;
    }
    if let Some(c) = sect(
        p.chunk_table_off,
        p.chunk_count.saturating_mul(CHUNK_ENTRY_LEN as u64),
    ) {
        p.chunk_table_crc = c;
    }
    if let Some(c) = sect(
        p.region_index_off,
        p.region_count.saturating_mul(REGION_ENTRY_LEN as u64),
    ) {
        p.region_index_crc = c;
    }
    b[..PREAMBLE_LEN].copy_from_slice(&p.encode());
}

/// Rewrite field `field` (byte offset in an entry) of entry `i` of a table.
fn patch_entry(b: &mut [u8], table_off: u64, entry_len: usize, i: usize, field: usize, v: &[u8]) {
    let o = table_off as usize + i * entry_len + field;
    b[o..o + v.len()].copy_from_slice(v);
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Pass `--bin` (the snapshot does not embed its executable).
    with_bin: bool,
    /// Uncompressed size of what the case really holds (for the memory bound).
    raw: u64,
}

fn generated_cases() -> Vec<Case> {
    let b = base();
    let small = small_snapshot(&b.cap);
    let small_raw = raw_size(&b.cap) - b.cap.binary.as_ref().map_or(0, |x| x.len() as u64);
    let full_raw = raw_size(&b.cap);
    let p = preamble(&small);
    let mut cases = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>, with_bin: bool, raw: u64| {
        cases.push(Case {
            name,
            bytes,
            with_bin,
            raw,
        })
    };
    add("control-valid".into(), small.clone(), true, small_raw);
    add(
        "control-valid-embedded".into(),
        b.bytes.clone(),
        false,
        full_raw,
    );

    // Tiny and foreign files.
    add("empty".into(), Vec::new(), true, 0);
    add("one-byte".into(), vec![b'G'], true, 0);
    add("magic-only".into(), b"GOSPYSS\0".to_vec(), true, 0);
    add(
        "elf-not-snapshot".into(),
        std::fs::read(&b.bin_path).unwrap()[..4096].to_vec(),
        true,
        0,
    );
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    add(
        "garbage-4k".into(),
        (0..4096).map(|_| rng.next() as u8).collect(),
        true,
        0,
    );
    let mut wrong = small.clone();
    wrong[0] ^= 0x20;
    add("wrong-magic".into(), wrong, true, small_raw);

    // Truncations: every section boundary, and random points.
    let ends = [
        1,
        7,
        8,
        64,
        PREAMBLE_LEN as u64 - 1,
        PREAMBLE_LEN as u64,
        p.header_off + p.header_len / 2,
        p.chunk_table_off,
        p.chunk_table_off + CHUNK_ENTRY_LEN as u64 / 2,
        p.region_index_off + REGION_ENTRY_LEN as u64 * 3 + 5,
        p.region_index_off + p.region_count * REGION_ENTRY_LEN as u64,
        small.len() as u64 / 2,
        small.len() as u64 - 1,
    ];
    for e in ends {
        add(
            format!("truncated-at-{e}"),
            small[..e as usize].to_vec(),
            true,
            small_raw,
        );
    }
    for _ in 0..6 {
        let e = rng.below(small.len() as u64) as usize;
        add(
            format!("truncated-at-{e}"),
            small[..e].to_vec(),
            true,
            small_raw,
        );
    }
    // The full sample cut inside its embedded binary.
    let fp = preamble(&b.bytes);
    let cut = (fp.binary_off + fp.binary_comp_len / 2) as usize;
    add(
        "embedded-truncated-in-binary".into(),
        b.bytes[..cut].to_vec(),
        false,
        full_raw,
    );
    let mut flipped = b.bytes.clone();
    flipped[cut] ^= 0x10;
    add(
        "embedded-bitflip-in-binary".into(),
        flipped,
        false,
        full_raw,
    );

    // Bit flips anywhere (caught by a checksum somewhere).
    for _ in 0..30 {
        let pos = rng.below(small.len() as u64) as usize;
        let bit = rng.below(8);
        let mut v = small.clone();
        v[pos] ^= 1 << bit;
        add(format!("bitflip-{pos}-{bit}"), v, true, small_raw);
    }
    // Byte smashes in the data area, with the chunk CRCs recomputed: zstd and
    // the chunk's own raw CRC must still catch them or the decoders cope.
    let data_start = (p.region_index_off + p.region_count * REGION_ENTRY_LEN as u64) as usize;
    for _ in 0..10 {
        let pos = data_start + rng.below((small.len() - data_start) as u64) as usize;
        let mut v = small.clone();
        v[pos] = v[pos].wrapping_add(1 + rng.below(255) as u8);
        add(format!("chunk-byte-{pos}"), v, true, small_raw);
    }

    // Absurd preamble values, checksums valid.
    type PMut = fn(&mut Preamble);
    let pmuts: [(&str, PMut); 14] = [
        ("header-len-huge", |p| p.header_len = u64::MAX / 2),
        ("header-len-32M", |p| p.header_len = 32 << 20),
        ("header-off-past-end", |p| p.header_off = p.file_len + 1),
        ("chunk-count-2p40", |p| p.chunk_count = 1 << 40),
        ("chunk-count-zero", |p| p.chunk_count = 0),
        ("region-count-2p40", |p| p.region_count = 1 << 40),
        ("region-count-minus-one", |p| p.region_count -= 1),
        ("file-len-wrong", |p| p.file_len += 100),
        ("binary-flag-4GiB", |p| {
            p.optional_flags |= 1;
            p.binary_raw_len = 4 << 30;
            p.binary_comp_len = 16;
            p.binary_off = p.file_len - 16;
        }),
        ("binary-flag-overlaps-chunks", |p| {
            p.optional_flags |= 1;
            p.binary_raw_len = 1 << 20;
            p.binary_comp_len = p.file_len - p.header_off;
            p.binary_off = p.header_off;
        }),
        ("required-flags-unknown", |p| p.required_flags = 0x8000),
        ("sections-overlap", |p| p.chunk_table_off = p.header_off),
        ("region-index-in-preamble", |p| p.region_index_off = 0),
        ("optional-flags-all", |p| p.optional_flags = !1),
    ];
    for (name, f) in pmuts {
        let mut v = small.clone();
        let mut q = preamble(&v);
        f(&mut q);
        reseal(&mut v, q);
        add(format!("preamble-{name}"), v, true, small_raw);
    }

    // Absurd chunk table and region index entries, checksums valid.
    let ct = p.chunk_table_off;
    let ri = p.region_index_off;
    let nreg = p.region_count as usize;
    let entry_muts: Vec<(String, u64, usize, usize, usize, Vec<u8>)> = vec![
        (
            "chunk0-raw-len-max".into(),
            ct,
            CHUNK_ENTRY_LEN,
            0,
            12,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            "chunk0-raw-len-64M".into(),
            ct,
            CHUNK_ENTRY_LEN,
            0,
            12,
            (64u32 << 20).to_le_bytes().to_vec(),
        ),
        (
            "chunk0-comp-len-max".into(),
            ct,
            CHUNK_ENTRY_LEN,
            0,
            8,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            "chunk0-offset-max".into(),
            ct,
            CHUNK_ENTRY_LEN,
            0,
            0,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        (
            "chunk1-offset-zero".into(),
            ct,
            CHUNK_ENTRY_LEN,
            1,
            0,
            0u64.to_le_bytes().to_vec(),
        ),
        (
            "region0-len-max".into(),
            ri,
            REGION_ENTRY_LEN,
            0,
            8,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        (
            "region0-addr-wraps".into(),
            ri,
            REGION_ENTRY_LEN,
            0,
            0,
            (u64::MAX - 4).to_le_bytes().to_vec(),
        ),
        (
            "region-last-chunk-max".into(),
            ri,
            REGION_ENTRY_LEN,
            nreg - 1,
            16,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            "region-last-offset-max".into(),
            ri,
            REGION_ENTRY_LEN,
            nreg - 1,
            20,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            "region-mid-kind-255".into(),
            ri,
            REGION_ENTRY_LEN,
            nreg / 2,
            24,
            vec![255],
        ),
        (
            "region-mid-addr-zero".into(),
            ri,
            REGION_ENTRY_LEN,
            nreg / 2,
            0,
            0u64.to_le_bytes().to_vec(),
        ),
        (
            "region-mid-len-1G".into(),
            ri,
            REGION_ENTRY_LEN,
            nreg / 2,
            8,
            (1u64 << 30).to_le_bytes().to_vec(),
        ),
    ];
    for (name, off, elen, i, field, val) in entry_muts {
        let mut v = small.clone();
        patch_entry(&mut v, off, elen, i, field, &val);
        let q = preamble(&small);
        reseal(&mut v, q);
        add(format!("index-{name}"), v, true, small_raw);
    }
    // Every region at the same address (overlaps everywhere).
    {
        let mut v = small.clone();
        for i in 0..nreg {
            patch_entry(
                &mut v,
                ri,
                REGION_ENTRY_LEN,
                i,
                0,
                &0x00c0_0000_0000_u64.to_le_bytes(),
            );
        }
        reseal(&mut v, preamble(&small));
        add("index-all-regions-one-address".into(), v, true, small_raw);
    }
    // Metadata: random bytes and huge length prefixes, checksums valid.
    for (name, junk) in [
        (
            "meta-random",
            (0..p.header_len)
                .map(|_| rng.next() as u8)
                .collect::<Vec<u8>>(),
        ),
        ("meta-ff", vec![0xffu8; p.header_len as usize]),
        ("meta-zero", vec![0u8; p.header_len as usize]),
    ] {
        let mut v = small.clone();
        let o = p.header_off as usize;
        v[o..o + junk.len()].copy_from_slice(&junk);
        reseal(&mut v, preamble(&small));
        add(name.into(), v, true, small_raw);
    }

    // Memory replaced by noise: every chunk a valid frame of random bytes.
    {
        let mut c = b.cap.clone();
        c.binary = None;
        for r in &mut c.regions {
            for x in r.data.iter_mut() {
                *x = rng.next() as u8;
            }
        }
        add("memory-all-random".into(), encode64k(&c), true, small_raw);
        for r in &mut c.regions {
            r.data.iter_mut().for_each(|x| *x = 0xff);
        }
        add("memory-all-ff".into(), encode64k(&c), true, small_raw);
    }
    // A decompression bomb: 512 MiB of zeros declared and really there.
    {
        let mut c = b.cap.clone();
        c.binary = None;
        let bomb = 512u64 << 20;
        c.regions.push(Region {
            addr: 0x7000_0000_0000,
            kind: RegionKind::Other,
            data: vec![0u8; bomb as usize],
        });
        let v = snapshot::encode(&c, &WriteOptions::default()).unwrap();
        add("bomb-512MiB-zeros".into(), v, true, small_raw + bomb);
    }
    cases
}

fn encode64k(c: &Capture) -> Vec<u8> {
    snapshot::encode(
        c,
        &WriteOptions {
            level: 1,
            chunk_size: 64 << 10,
        },
    )
    .unwrap()
}

/// Result of one gospy run.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    elapsed: Duration,
    max_rss: u64,
    stderr: String,
    stdout_len: u64,
}

/// Tests of this file that must not overlap: the in-process one allocates a
/// lot, which would disturb the timing of the others.
static SERIAL: Mutex<()> = Mutex::new(());

const TIME: &str = "/usr/bin/time";

/// Runs gospy (in its own process group), killing it after twice the time
/// limit. Peak RSS: GNU time's report when /usr/bin/time exists (exact: time
/// forks gospy from its own small image), else wait4's, which on Linux may
/// include this test process's own high-water mark inherited through the
/// spawn.
fn run_gospy(args: &[&str], dir: &Path, tag: &str) -> Run {
    let out_path = dir.join(format!("out-{tag}"));
    let err_path = dir.join(format!("err-{tag}"));
    let rss_path = dir.join(format!("rss-{tag}"));
    let _ = std::fs::remove_file(&rss_path);
    let use_time = Path::new(TIME).exists();
    let mut cmd = if use_time {
        let mut c = Command::new(TIME);
        c.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_path)
            .arg(gospy_bin());
        c
    } else {
        Command::new(gospy_bin())
    };
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let child = cmd
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: waits for our own child; writes status and rusage.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if !killed && start.elapsed() > TIME_LIMIT * 2 {
            // SAFETY: the process group of our child, not yet reaped.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(child); // reaped by wait4
    let elapsed = start.elapsed();
    let mut code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let mut signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let mut max_rss = ru.ru_maxrss as u64 * 1024;
    if use_time {
        // "Command terminated by signal N" / "... non-zero status N", then %M.
        let report = std::fs::read_to_string(&rss_path).unwrap_or_default();
        if let Some(kb) = report
            .lines()
            .last()
            .and_then(|l| l.trim().parse::<u64>().ok())
        {
            max_rss = kb * 1024;
        }
        if let Some(sig) = report
            .lines()
            .find_map(|l| l.strip_prefix("Command terminated by signal "))
        {
            signal = sig.trim().parse().ok();
            code = None;
        }
    }
    Run {
        code,
        signal,
        elapsed,
        max_rss,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        stdout_len: std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0),
    }
}

fn corpus_dir() -> PathBuf {
    crate_root().join("tests/corpus")
}

/// Which generated cases are committed to tests/corpus (small ones).
fn committed(name: &str) -> bool {
    [
        "empty",
        "one-byte",
        "magic-only",
        "garbage-4k",
        "wrong-magic",
        "truncated-at-128",
        "preamble-header-len-huge",
        "preamble-chunk-count-2p40",
        "preamble-region-count-2p40",
        "preamble-binary-flag-4GiB",
        "index-chunk0-raw-len-max",
        "index-region0-len-max",
        "index-region0-addr-wraps",
        "index-all-regions-one-address",
        "meta-ff",
        "memory-all-ff",
    ]
    .contains(&name)
}

#[test]
fn malformed_files_never_crash_hang_or_bloat() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = base();
    let mut cases = generated_cases();
    if std::env::var("GOSPY_WRITE_CORPUS").as_deref() == Ok("1") {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for c in cases.iter().filter(|c| committed(&c.name)) {
            std::fs::write(corpus_dir().join(format!("{}.gss", c.name)), &c.bytes).unwrap();
        }
    }
    // The committed corpus (analyzed with the sample's executable).
    let small_raw = raw_size(&b.cap) - b.cap.binary.as_ref().map_or(0, |x| x.len() as u64);
    if let Ok(dir) = std::fs::read_dir(corpus_dir()) {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "gss"))
        {
            cases.push(Case {
                name: format!("corpus/{}", f.file_name().unwrap().to_string_lossy()),
                bytes: std::fs::read(&f).unwrap(),
                with_bin: true,
                raw: small_raw,
            });
        }
    }
    let work = tempfile::tempdir().unwrap();
    let bin_len = std::fs::metadata(&b.bin_path).unwrap().len();

    // Memory allowance: what analyzing the valid snapshot takes, plus slack.
    let ctrl = work.path().join("control.gss");
    std::fs::write(&ctrl, &cases[0].bytes).unwrap();
    let c = run_gospy(
        &[
            "analyze",
            ctrl.to_str().unwrap(),
            "--bin",
            b.bin_path.to_str().unwrap(),
            "dump",
        ],
        work.path(),
        "control",
    );
    assert_eq!(c.code, Some(0), "control: {}", c.stderr);
    let allowance = c.max_rss + (64 << 20);

    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let problems = Mutex::new(Vec::new());
    let stats = Mutex::new((0usize, 0usize, 0usize, 0f64)); // runs, ok, errors, worst rss ratio
    let ncases = queue.lock().unwrap().len();
    std::thread::scope(|s| {
        for t in 0..2 {
            let (queue, problems, stats, work) = (&queue, &problems, &stats, work.path());
            std::thread::Builder::new()
                .name("w".repeat(t + 1))
                .spawn_scoped(s, move || loop {
                    let Some((i, case)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let f = work.join(format!("case-{i}.gss"));
                    std::fs::write(&f, &case.bytes).unwrap();
                    for what in ["summary", "dump", "info"] {
                        let mut args = vec!["analyze", f.to_str().unwrap()];
                        if case.with_bin {
                            args.extend(["--bin", b.bin_path.to_str().unwrap()]);
                        }
                        args.push(what);
                        if what == "info" {
                            args = vec!["info", f.to_str().unwrap()];
                        }
                        let r = run_gospy(&args, work, &format!("{t}"));
                        let input = case.raw + case.bytes.len() as u64 + bin_len;
                        let limit = 2 * input + allowance;
                        let mut bad = Vec::new();
                        if r.code == Some(101) || r.stderr.contains("panicked") {
                            bad.push("panicked".to_string());
                        }
                        if r.signal.is_some() {
                            bad.push(format!("killed by signal {:?}", r.signal));
                        }
                        if r.elapsed > TIME_LIMIT {
                            bad.push(format!("took {:?}", r.elapsed));
                        }
                        if r.max_rss > limit {
                            bad.push(format!(
                                "peak RSS {} MiB > limit {} MiB",
                                r.max_rss >> 20,
                                limit >> 20
                            ));
                        }
                        match r.code {
                            Some(0) | Some(4) => {}
                            other => bad.push(format!("exit code {other:?}")),
                        }
                        if r.code != Some(0) && !r.stderr.contains("gospy: error:") {
                            bad.push("failed without an error line".into());
                        }
                        if r.code == Some(0) && r.stdout_len == 0 {
                            bad.push("succeeded with no output".into());
                        }
                        let mut st = stats.lock().unwrap();
                        st.0 += 1;
                        if r.code == Some(0) {
                            st.1 += 1;
                        } else {
                            st.2 += 1;
                        }
                        st.3 = st.3.max(r.max_rss as f64 / limit as f64);
                        if !bad.is_empty() {
                            problems.lock().unwrap().push(format!(
                                "{} ({what}): {}\n{}",
                                case.name,
                                bad.join(", "),
                                r.stderr.lines().take(5).collect::<Vec<_>>().join("\n")
                            ));
                        }
                    }
                    let _ = std::fs::remove_file(&f);
                })
                .unwrap();
        }
    });
    let st = stats.into_inner().unwrap();
    let problems = problems.into_inner().unwrap();
    report(&format!(
        "malformed inputs: {ncases} cases ({} runs: {} partial or complete results, {} clean errors; \
         peak RSS at most {:.0}% of the limit), {} problems",
        st.0,
        st.1,
        st.2,
        st.3 * 100.0,
        problems.len()
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---------------------------------------------------------------------------
// Semantic corruption: valid chunks, hostile memory
// ---------------------------------------------------------------------------

fn region_of(cap: &mut Capture, addr: u64, len: usize) -> Option<(&mut Region, usize)> {
    cap.regions.iter_mut().find_map(|r| {
        let end = r.addr + r.data.len() as u64;
        (addr >= r.addr && addr + len as u64 <= end).then(|| {
            let o = (addr - r.addr) as usize;
            (r, o)
        })
    })
}

fn put64(cap: &mut Capture, addr: u64, v: u64) {
    if let Some((r, o)) = region_of(cap, addr, 8) {
        r.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
}

fn get64(cap: &mut Capture, addr: u64) -> Option<u64> {
    region_of(cap, addr, 8).map(|(r, o)| u64::from_le_bytes(r.data[o..o + 8].try_into().unwrap()))
}

/// The sample's live gs, ms (addresses) and its target description.
struct Layout {
    target: Target,
    gs: Vec<u64>,
    ms: Vec<u64>,
}

fn layout() -> Layout {
    let b = base();
    let target = Target::new(b.bin.clone(), b.cap.meta.load_bias).unwrap();
    let s = Session::open(
        gospy::sources::from_capture(b.cap.clone(), b.bin.clone()),
        None,
    )
    .unwrap();
    let rt = s.runtime();
    let gs = rt.allg_addrs().unwrap();
    let ms = rt.ms().unwrap().0.iter().map(|m| m.addr).collect();
    Layout { target, gs, ms }
}

/// Encode, decode and analyze (summary and dump, text and JSON) a capture.
/// Err on a panic; the elapsed time otherwise.
fn analyze_capture(cap: &Capture) -> Result<(Duration, usize), String> {
    let b = base();
    let start = Instant::now();
    let bytes =
        snapshot::encode(cap, &WriteOptions::default()).map_err(|e| format!("encode: {e}"))?;
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let snap = SnapshotFile::from_bytes(bytes).unwrap();
        let decoded = snap.capture().unwrap();
        let s = Session::open(gospy::sources::from_capture(decoded, b.bin.clone()), None).unwrap();
        match Model::build(&s) {
            Ok(m) => {
                let sm = report::summary::build(&s, &m, true);
                let text = report::summary::to_text(&sm);
                let opts = report::dump::DumpOptions {
                    all: true,
                    wait_info: true,
                    labels: true,
                };
                let dump = report::dump::to_text(&s, &m, &opts);
                let json = report::dump::to_json(&s, &m, &opts);
                gospy::fuzzing::other_reports(&s, &m);
                text.len() + dump.len() + json.len()
            }
            Err(e) => e.to_string().len(),
        }
    }));
    match res {
        Ok(n) => Ok((start.elapsed(), n)),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())),
    }
}

type Mutation = Box<dyn Fn(&mut Capture, &Layout)>;

fn semantic_cases(l: &Layout) -> Vec<(String, Mutation)> {
    let t = &l.target;
    let gl = t.layout.g.clone();
    let ml = t.layout.m.clone();
    let globals = t.globals.clone();
    let mut v: Vec<(String, Mutation)> = Vec::new();
    let mut add = |name: &str, f: Mutation| v.push((name.to_string(), f));
    for n in [u64::MAX, 1 << 40, 50_000_000, 50_000_001] {
        let g = globals.clone();
        add(
            &format!("allglen-{n}"),
            Box::new(move |c, _| {
                put64(c, g.allglen, n);
                put64(c, g.allgs + 8, n);
            }),
        );
    }
    {
        let g = globals.clone();
        add(
            "allgs-points-at-itself",
            Box::new(move |c, _| {
                put64(c, g.allgs, g.allgs);
                put64(c, g.allglen, 3);
            }),
        );
    }
    {
        let g = globals.clone();
        add(
            "allgs-all-the-same-g",
            Box::new(move |c, l| {
                let base = get64(c, g.allgs).unwrap();
                let n = get64(c, g.allglen).unwrap();
                for i in 0..n {
                    put64(c, base + 8 * i, l.gs[0]);
                }
            }),
        );
    }
    for (name, val) in [
        ("allgs-into-g-middle", 1u64),
        ("allgs-to-top", u64::MAX - 7),
        ("allgs-to-8", 8),
    ] {
        let g = globals.clone();
        add(
            name,
            Box::new(move |c, l| {
                let base = get64(c, g.allgs).unwrap();
                let target = match val {
                    1 => l.gs[1] + 13,
                    x => x,
                };
                put64(c, base, target);
            }),
        );
    }
    {
        let ml2 = ml.clone();
        add(
            "allm-self-cycle",
            Box::new(move |c, l| put64(c, l.ms[0] + ml2.alllink, l.ms[0])),
        );
    }
    {
        let ml2 = ml.clone();
        add(
            "allm-cycle-to-first",
            Box::new(move |c, l| put64(c, *l.ms.last().unwrap() + ml2.alllink, l.ms[0])),
        );
    }
    {
        let ml2 = ml.clone();
        add(
            "allm-to-garbage",
            Box::new(move |c, l| put64(c, l.ms[0] + ml2.alllink, u64::MAX - 3)),
        );
    }
    {
        let ml2 = ml.clone();
        add(
            "m-fields-wild",
            Box::new(move |c, l| {
                for &m in &l.ms {
                    put64(c, m + ml2.curg, l.gs[2]);
                    put64(c, m + ml2.vdso_sp, u64::MAX);
                    put64(c, m + ml2.vdso_pc, u64::MAX);
                    put64(c, m + ml2.procid, 1);
                }
            }),
        );
    }
    // Every g at once, field by field.
    type FieldValue = Box<dyn Fn(u64, u64, u64) -> u64>;
    let gfields: Vec<(&str, u64, FieldValue)> = vec![
        (
            "sp-below-stack",
            gl.sched_sp,
            Box::new(|lo, _, _| lo.wrapping_sub(8)),
        ),
        ("sp-max", gl.sched_sp, Box::new(|_, _, _| u64::MAX)),
        ("sp-at-hi", gl.sched_sp, Box::new(|_, hi, _| hi)),
        ("stack-hi-max", gl.stack_hi, Box::new(|_, _, _| u64::MAX)),
        ("stack-lo-zero", gl.stack_lo, Box::new(|_, _, _| 0)),
        (
            "stack-inverted",
            gl.stack_hi,
            Box::new(|lo, _, _| lo.wrapping_sub(1)),
        ),
        ("pc-garbage", gl.sched_pc, Box::new(|_, _, _| 0xdead_beef)),
        ("pc-max", gl.sched_pc, Box::new(|_, _, _| u64::MAX)),
        ("syscallsp-max", gl.syscallsp, Box::new(|_, _, _| u64::MAX)),
        ("syscallsp-lo", gl.syscallsp, Box::new(|lo, _, _| lo)),
        ("gopc-max", gl.gopc, Box::new(|_, _, _| u64::MAX)),
        ("startpc-max", gl.startpc, Box::new(|_, _, _| u64::MAX)),
        ("goid-max", gl.goid, Box::new(|_, _, _| u64::MAX)),
        (
            "waitsince-min",
            gl.waitsince,
            Box::new(|_, _, _| i64::MIN as u64),
        ),
        (
            "waitsince-max",
            gl.waitsince,
            Box::new(|_, _, _| i64::MAX as u64),
        ),
        ("labels-top", gl.labels, Box::new(|_, _, _| u64::MAX - 7)),
        ("labels-self", gl.labels, Box::new(|_, _, g| g)),
        ("m-garbage", gl.m, Box::new(|_, _, _| u64::MAX)),
        ("status-running", gl.atomicstatus, Box::new(|_, _, _| 2)),
        (
            "status-wild",
            gl.atomicstatus,
            Box::new(|_, _, _| 0xffff_1234),
        ),
        (
            "waitreason-255",
            gl.waitreason,
            Box::new(|_, _, _| 0xffff_ffff_ffff_ffff),
        ),
    ];
    for (name, off, f) in gfields {
        let gl2 = gl.clone();
        add(
            &format!("every-g-{name}"),
            Box::new(move |c, l| {
                for &g in &l.gs {
                    let lo = get64(c, g + gl2.stack_lo).unwrap_or(0);
                    let hi = get64(c, g + gl2.stack_hi).unwrap_or(0);
                    put64(c, g + off, f(lo, hi, g));
                }
            }),
        );
    }
    // Stacks: every word a return address into a frameless spot (each
    // frame 8 bytes, pointing at the next: the longest possible walks).
    {
        let entry = t
            .find_func(t.rt(t.bin.pcln.func_by_name("main.blockChanRecv").unwrap().entry))
            .map(|f| t.rt(f.entry))
            .unwrap();
        add(
            "stacks-self-referencing-frames",
            Box::new(move |c, _| {
                for r in c.regions.iter_mut().filter(|r| r.kind == RegionKind::Stack) {
                    for w in r.data.chunks_exact_mut(8) {
                        w.copy_from_slice(&entry.to_le_bytes());
                    }
                }
            }),
        );
        // Thousands of goroutines sharing one 1 MiB stack of such frames
        // (without the shared frame budget: 2000 × 100k frames).
        let gl2 = gl.clone();
        let g = globals.clone();
        add(
            "2000-gs-share-a-1MiB-bomb-stack",
            Box::new(move |c, l| {
                let stack_lo = 0x7100_0000_0000u64;
                let stack_hi = stack_lo + (1 << 20);
                let mut data = Vec::with_capacity(1 << 20);
                while data.len() < 1 << 20 {
                    data.extend_from_slice(&entry.to_le_bytes());
                }
                c.regions.push(Region {
                    addr: stack_lo,
                    kind: RegionKind::Stack,
                    data,
                });
                let proto = region_of(c, l.gs[1], gl2.size as usize)
                    .map(|(r, o)| r.data[o..o + gl2.size as usize].to_vec())
                    .unwrap();
                let n = 2000u64;
                let gsz = (gl2.size + 63) & !63;
                let gbase = 0x7200_0000_0000u64;
                let mut gdata = vec![0u8; (n * gsz) as usize];
                let mut allgs = Vec::with_capacity(n as usize * 8);
                for i in 0..n {
                    let o = (i * gsz) as usize;
                    gdata[o..o + proto.len()].copy_from_slice(&proto);
                    let set = |d: &mut [u8], off: u64, v: u64| {
                        d[o + off as usize..o + off as usize + 8].copy_from_slice(&v.to_le_bytes())
                    };
                    set(&mut gdata, gl2.stack_lo, stack_lo);
                    set(&mut gdata, gl2.stack_hi, stack_hi);
                    set(&mut gdata, gl2.sched_sp, stack_lo);
                    set(&mut gdata, gl2.sched_pc, entry);
                    set(&mut gdata, gl2.syscallsp, 0);
                    set(&mut gdata, gl2.goid, 100_000 + i);
                    allgs.extend_from_slice(&(gbase + i * gsz).to_le_bytes());
                }
                c.regions.push(Region {
                    addr: gbase,
                    kind: RegionKind::G,
                    data: gdata,
                });
                let allgs_addr = 0x7300_0000_0000u64;
                c.regions.push(Region {
                    addr: allgs_addr,
                    kind: RegionKind::Allgs,
                    data: allgs,
                });
                put64(c, g.allgs, allgs_addr);
                put64(c, g.allgs + 8, n);
                put64(c, g.allglen, n);
            }),
        );
    }
    // Labels (Go 1.27: a list): absurd counts, self-references, huge strings.
    for (name, which) in [
        ("labels-count-4096", 0),
        ("labels-count-max", 1),
        ("labels-list-points-at-itself", 2),
        ("labels-string-len-max", 3),
        ("labels-string-ptr-top", 4),
        ("labels-4096-entries-one-64k-string", 5),
    ] {
        let gl2 = gl.clone();
        add(
            name,
            Box::new(move |c, l| {
                for &g in &l.gs {
                    let Some(lp) = get64(c, g + gl2.labels).filter(|&p| p != 0) else {
                        continue;
                    };
                    let Some(arr) = get64(c, lp) else { continue };
                    match which {
                        0 => put64(c, lp + 8, 4096),
                        1 => put64(c, lp + 8, u64::MAX),
                        2 => {
                            put64(c, lp, lp);
                            put64(c, lp + 8, 2);
                        }
                        3 => put64(c, arr + 8, u64::MAX),
                        4 => put64(c, arr, u64::MAX - 3),
                        _ => {
                            // A fake list of 4096 entries all naming one 64 KiB string.
                            let s = 0x7400_0000_0000u64;
                            let list = 0x7500_0000_0000u64;
                            let mut ents = Vec::new();
                            for _ in 0..4096 * 2 {
                                ents.extend_from_slice(&s.to_le_bytes());
                                ents.extend_from_slice(&(64u64 << 10).to_le_bytes());
                            }
                            if region_of(c, s, 1).is_none() {
                                c.regions.push(Region {
                                    addr: s,
                                    kind: RegionKind::Other,
                                    data: vec![b'x'; 64 << 10],
                                });
                                c.regions.push(Region {
                                    addr: list,
                                    kind: RegionKind::Other,
                                    data: ents,
                                });
                            }
                            put64(c, lp, list);
                            put64(c, lp + 8, 4096);
                        }
                    }
                }
            }),
        );
    }
    {
        let g = globals.clone();
        add(
            "allp-len-huge",
            Box::new(move |c, _| put64(c, g.allp + 8, u64::MAX)),
        );
        let g = globals.clone();
        add(
            "allp-ptr-garbage",
            Box::new(move |c, _| put64(c, g.allp, 0x10)),
        );
        let g = globals.clone();
        add(
            "sched-garbage",
            Box::new(move |c, _| {
                for i in 0..64 {
                    put64(c, g.sched + 8 * i, u64::MAX - i);
                }
            }),
        );
    }
    v
}

#[test]
fn hostile_memory_never_panics_or_hangs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let l = layout();
    let b = base();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut slowest = (Duration::ZERO, String::new());
    let mut check = |name: &str, cap: &Capture, failures: &mut Vec<String>| {
        count += 1;
        match analyze_capture(cap) {
            Ok((d, _)) => {
                if d > TIME_LIMIT {
                    failures.push(format!("{name}: took {d:?}"));
                }
                if d > slowest.0 {
                    slowest = (d, name.to_string());
                }
            }
            Err(p) => failures.push(format!("{name}: panicked: {p}")),
        }
    };
    // Silence the default panic message for caught panics.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, f) in semantic_cases(&l) {
        let mut cap = b.cap.clone();
        cap.binary = None;
        f(&mut cap, &l);
        check(&name, &cap, &mut failures);
    }
    // Random scribbles over the runtime's structures.
    let mut rng = Rng(0xbad_5eed_0000_0001);
    let struct_regions: Vec<usize> = b
        .cap
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(
                r.kind,
                RegionKind::G
                    | RegionKind::M
                    | RegionKind::P
                    | RegionKind::Allgs
                    | RegionKind::Stack
                    | RegionKind::Other
            ) || (r.kind == RegionKind::Data
                && r.addr <= l.target.globals.allgs
                && l.target.globals.allgs < r.addr + r.data.len() as u64)
        })
        .map(|(i, _)| i)
        .collect();
    let rounds = std::env::var("GOSPY_SCRIBBLE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    for round in 0..rounds {
        let mut cap = b.cap.clone();
        cap.binary = None;
        let writes = 1 + rng.below(40);
        for _ in 0..writes {
            let ri = struct_regions[rng.below(struct_regions.len() as u64) as usize];
            let r = &mut cap.regions[ri];
            if r.data.len() < 8 {
                continue;
            }
            let o = (rng.below((r.data.len() / 8) as u64) * 8) as usize;
            let v = match rng.below(7) {
                0 => 0,
                1 => u64::MAX,
                2 => rng.next(),
                3 => rng.below(4096),
                4 => l.gs[rng.below(l.gs.len() as u64) as usize] + rng.below(512),
                5 => i64::MIN as u64,
                _ => {
                    u64::from_le_bytes(r.data[o..o + 8].try_into().unwrap()) ^ (1 << rng.below(64))
                }
            };
            r.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        check(&format!("scribble-{round}"), &cap, &mut failures);
    }
    std::panic::set_hook(hook);
    report(&format!(
        "hostile memory: {count} cases, {} failures; slowest {} ({:?})",
        failures.len(),
        slowest.1,
        slowest.0
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Damaged chunks
// ---------------------------------------------------------------------------

#[test]
fn damaged_chunk_is_named_and_the_rest_analyzes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = base();
    let small = small_snapshot(&b.cap);
    let snap = SnapshotFile::from_bytes(small.clone()).unwrap();
    let chunks = snap.chunks().to_vec();
    assert!(
        chunks.len() >= 3,
        "want several chunks, got {}",
        chunks.len()
    );
    let work = tempfile::tempdir().unwrap();
    let mut partial = 0;
    for (i, c) in chunks.iter().enumerate() {
        let mut v = small.clone();
        let mid = (c.file_offset + u64::from(c.comp_len) / 2) as usize;
        v[mid] ^= 0x40;
        let f = work.path().join(format!("damaged-{i}.gss"));
        std::fs::write(&f, &v).unwrap();
        for what in ["summary", "dump"] {
            let out = gospy([
                "analyze",
                f.to_str().unwrap(),
                "--bin",
                b.bin_path.to_str().unwrap(),
                what,
            ]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(101), "chunk {i} {what}: {stderr}");
            // The damaged chunk is named with the address range and kinds it held.
            let warn = stderr
                .lines()
                .find(|l| l.starts_with("warning:") && l.contains(&format!("in chunk {i} (")))
                .unwrap_or_else(|| panic!("chunk {i} {what}: no warning names it:\n{stderr}"));
            assert!(warn.contains("0x") && warn.contains("kind"), "{warn}");
            if what == "summary" {
                eprintln!(
                    "chunk {i} damaged: exit {:?}\n  {}",
                    out.status.code(),
                    stderr.lines().collect::<Vec<_>>().join("\n  ")
                );
            }
            match out.status.code() {
                Some(0) => {
                    assert!(!out.stdout.is_empty(), "chunk {i} {what}: no output");
                    if what == "summary" {
                        partial += 1;
                    }
                    // Goroutines whose stacks were lost say why.
                    let text = String::from_utf8_lossy(&out.stdout);
                    if what == "dump" && text.contains("stack walk stopped") {
                        assert!(text.contains("damaged snapshot chunk"), "{text}");
                    }
                }
                // What could not be read is said to be lost with the damage.
                Some(4) => assert!(
                    stderr.contains("gospy: error:") && stderr.contains("damaged snapshot chunk"),
                    "{stderr}"
                ),
                other => panic!("chunk {i} {what}: exit {other:?}: {stderr}"),
            }
        }
    }
    report(&format!(
        "damaged chunks: {} chunks damaged one at a time, {partial} still analyzed (partial result)",
        chunks.len()
    ));
    assert!(partial > 0, "no damaged chunk left a partial result");
}
