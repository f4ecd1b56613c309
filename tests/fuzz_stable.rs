//! Fuzzing on stable Rust: a bounded mutation loop (bit flips, byte sets,
//! interesting integers, truncation, duplication, splices) over seed inputs
//! taken from the shipped sample, for every entry point of
//! `gospy::fuzzing` (snapshot reader, pclntab parser, DWARF layout loader,
//! label decoders, memory decoders, executable loader). A panic is caught, the input saved to
//! `<target dir>/fuzz-crashes/` and the test fails.
//!
//! `GOSPY_FUZZ_SECONDS` (default 2) is the time per target; `scripts/fuzz.sh`
//! runs it longer (and the libFuzzer targets in fuzz/ when cargo-fuzz and a
//! nightly toolchain are there). `GOSPY_FUZZ_SEED` repeats a run;
//! `GOSPY_FUZZ_SEEDS_DIR` writes each target's seeds to DIR/<target>/.

mod common;

use common::*;
use gospy::fuzzing;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 7,
    1 << 32,
    1 << 40,
];

/// One mutation of `v`, within `hot` (a byte range) when given.
fn mutate(v: &mut Vec<u8>, rng: &mut Rng, hot: Option<(usize, usize)>, seeds: &[Vec<u8>]) {
    let (lo, hi) = hot.unwrap_or((0, v.len()));
    let hi = hi.min(v.len());
    let pos = |rng: &mut Rng| lo + rng.below(hi.saturating_sub(lo));
    match rng.below(8) {
        0 if hi > lo => {
            let p = pos(rng);
            v[p] ^= 1 << rng.below(8);
        }
        1 if hi > lo => {
            let p = pos(rng);
            v[p] = rng.next() as u8;
        }
        2 if hi > lo + 8 => {
            let p = pos(rng).min(v.len() - 8);
            let x = INTERESTING[rng.below(INTERESTING.len())];
            let n = [1, 2, 4, 8][rng.below(4)];
            v[p..p + n].copy_from_slice(&x.to_le_bytes()[..n]);
        }
        3 if !v.is_empty() => {
            let n = rng.below(v.len());
            v.truncate(n);
        }
        4 if hi > lo + 16 => {
            // Copy a block over another place.
            let a = pos(rng);
            let b = pos(rng);
            let n = rng.below(64).min(v.len() - a.max(b));
            let block = v[a..a + n].to_vec();
            v[b..b + n].copy_from_slice(&block);
        }
        5 if !seeds.is_empty() => {
            // Splice the tail of another seed.
            let s = &seeds[rng.below(seeds.len())];
            let at = rng.below(v.len().max(1));
            let from = rng.below(s.len().max(1));
            v.truncate(at);
            v.extend_from_slice(&s[from..]);
        }
        6 if hi > lo => {
            let p = pos(rng);
            let n = rng.below(32);
            v.splice(p..p, std::iter::repeat(rng.next() as u8).take(n));
        }
        _ => {
            if hi > lo {
                let p = pos(rng);
                let n = rng.below(16).min(v.len() - p);
                v.drain(p..p + n);
            }
        }
    }
}

fn seconds() -> f64 {
    std::env::var("GOSPY_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0)
}

/// Runs `f` on mutations of `seeds` for the configured time. Returns the
/// number of inputs tried.
fn fuzz(name: &str, seeds: &[Vec<u8>], hot: Option<(usize, usize)>, f: impl Fn(&[u8])) -> usize {
    let seed = std::env::var("GOSPY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6f73_7079_0000_0001u64 ^ name.len() as u64);
    let mut rng = Rng(seed | 1);
    // scripts/fuzz.sh hands the seeds to the libFuzzer targets this way.
    if let Some(dir) = std::env::var_os("GOSPY_FUZZ_SEEDS_DIR") {
        let dir = std::path::PathBuf::from(dir).join(name);
        let _ = std::fs::create_dir_all(&dir);
        for (i, s) in seeds.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("seed-{i}")), s);
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut n = 0;
    let mut crash = None;
    // The seeds themselves first.
    let mut queue: Vec<Vec<u8>> = seeds.to_vec();
    while crash.is_none() && (Instant::now() < deadline || !queue.is_empty()) {
        let input = queue.pop().unwrap_or_else(|| {
            let mut v = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(6) {
                mutate(&mut v, &mut rng, hot, seeds);
            }
            v
        });
        n += 1;
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)));
        let took = start.elapsed();
        if r.is_err() || took > Duration::from_secs(10) {
            let msg = match r {
                Err(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
                Ok(()) => format!("took {took:?}"),
            };
            crash = Some((input, msg));
        }
    }
    std::panic::set_hook(hook);
    if let Some((input, msg)) = crash {
        let dir = target_dir().join("fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:016x}.bin", fnv(&input)));
        let _ = std::fs::write(&path, &input);
        panic!(
            "fuzz {name}: {msg} on a {} byte input saved to {} (seed {seed})",
            input.len(),
            path.display()
        );
    }
    report(&format!("fuzz {name}: {n} inputs, no crash"));
    n
}

fn fnv(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn sample() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| std::fs::read(crate_root().join("samples/goroutines-go1.27.gss")).unwrap())
}

fn memory_base() -> &'static fuzzing::MemoryBase {
    static B: OnceLock<fuzzing::MemoryBase> = OnceLock::new();
    B.get_or_init(|| fuzzing::MemoryBase::from_snapshot(sample().clone()).unwrap())
}

fn exe() -> Vec<u8> {
    memory_base().bin.elf.data.to_vec()
}

#[test]
fn fuzz_snapshot_reader() {
    let base = memory_base();
    let mut cap = base.cap.clone();
    cap.binary = None;
    let small = gospy::snapshot::encode(
        &cap,
        &gospy::snapshot::WriteOptions {
            level: 1,
            chunk_size: 64 << 10,
        },
    )
    .unwrap();
    // Mostly the small snapshot (fast); the embedded one now and then.
    fuzz(
        "snapshot",
        &[small.clone(), small, sample().clone()],
        None,
        fuzzing::snapshot_reader,
    );
}

#[test]
fn fuzz_pclntab() {
    let seed = memory_base().bin.pcln.bytes().to_vec();
    // Mutations concentrate on the header and the functab's start.
    fuzz("pclntab", &[seed], Some((0, 1 << 16)), fuzzing::pclntab);
}

#[test]
fn fuzz_dwarf() {
    let elf = exe();
    let e = gospy::binary::elf::ElfFile::parse(std::sync::Arc::from(elf.clone())).unwrap();
    // Mutate inside the DWARF sections (and the section headers' area).
    let hot = e
        .sections
        .iter()
        .filter(|s| s.name.contains("debug_info") || s.name.contains("debug_abbrev"))
        .filter_map(|s| s.file_range)
        .map(|(o, l)| (o as usize, (o + l) as usize))
        .next();
    fuzz("dwarf", &[elf], hot, fuzzing::dwarf);
}

#[test]
fn fuzz_labels() {
    // A label list (Go 1.24+) and an old-style map, both well formed.
    let base = 0x10000u64;
    let mut list = Vec::new();
    list.extend_from_slice(&(base + 16).to_le_bytes()); // arr
    list.extend_from_slice(&2u64.to_le_bytes()); // len
    for (k, v) in [(base + 80, 3u64), (base + 83, 4)] {
        list.extend_from_slice(&k.to_le_bytes());
        list.extend_from_slice(&v.to_le_bytes());
        list.extend_from_slice(&k.to_le_bytes());
        list.extend_from_slice(&v.to_le_bytes());
    }
    list.extend_from_slice(b"keyvalu");
    let mut hmap = vec![0u8; 48];
    hmap[0] = 1; // count
    hmap[9] = 0; // B
    hmap[16..24].copy_from_slice(&(base + 48).to_le_bytes());
    let mut bucket = vec![0u8; 272];
    bucket[0] = 9; // tophash
    bucket[8..16].copy_from_slice(&(base + 320).to_le_bytes());
    bucket[16..24].copy_from_slice(&3u64.to_le_bytes());
    bucket[136..144].copy_from_slice(&(base + 323).to_le_bytes());
    bucket[144..152].copy_from_slice(&3u64.to_le_bytes());
    hmap.extend_from_slice(&bucket);
    hmap.extend_from_slice(b"abcdef");
    fuzz("labels", &[list, hmap], None, fuzzing::labels);
}

#[test]
fn fuzz_memory_decoders() {
    let base = memory_base();
    let mut rng = Rng(7);
    let seeds: Vec<Vec<u8>> = (0..4)
        .map(|_| (0..14 * 8).map(|_| rng.next() as u8).collect())
        .collect();
    fuzz("memory", &seeds, None, |d| {
        fuzzing::memory_decoders(base, d)
    });
}

#[test]
fn fuzz_binary() {
    // ELF header, program and section headers, build info: the first pages.
    fuzz("binary", &[exe()], Some((0, 8192)), fuzzing::binary);
}
