//! Criterion benches on the shipped sample (no Go toolchain needed):
//! pclntab lookup, unwinding every goroutine, snapshot reading.
//!
//!   cargo bench --bench decode

use criterion::{criterion_group, criterion_main, Criterion};
use gospy::analyze::{Model, Session};
use gospy::snapshot::SnapshotFile;
use std::path::PathBuf;
use std::sync::Arc;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/goroutines-go1.27.gss")
}

fn benches(c: &mut Criterion) {
    let snap = SnapshotFile::open(&sample()).expect("sample");
    let bin_bytes = snap.binary().unwrap().expect("embedded binary");
    let bin = gospy::binary::Binary::from_bytes(Arc::from(bin_bytes.clone())).unwrap();

    // PCs of every function entry + 16: the lookup mix of real unwinding.
    let pcs: Vec<u64> = bin.pcln.funcs().map(|f| f.entry + 16).collect();
    c.bench_function("pclntab: find_func + frames, all functions", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for &pc in &pcs {
                if let Some(f) = bin.pcln.find_func(pc) {
                    n += bin.pcln.frames(&f, pc).len();
                }
            }
            n
        })
    });
    c.bench_function("pclntab: pcsp, all functions", |b| {
        b.iter(|| {
            pcs.iter()
                .filter_map(|&pc| bin.pcln.find_func(pc).and_then(|f| bin.pcln.pcsp(&f, pc)))
                .count()
        })
    });

    c.bench_function("snapshot: open + decompress memory", |b| {
        b.iter(|| {
            let s = SnapshotFile::open(&sample()).unwrap();
            s.memory().unwrap().memory.total_bytes()
        })
    });

    let session = Session::open_file(&sample(), None).unwrap();
    c.bench_function("model: decode + unwind every goroutine", |b| {
        b.iter(|| Model::build(&session).unwrap().goroutines.len())
    });
    c.bench_function("binary: load (pclntab, moduledata; DWARF lazily)", |b| {
        b.iter(|| {
            gospy::binary::Binary::from_bytes(Arc::from(bin_bytes.clone()))
                .unwrap()
                .pcln
                .nfunc()
        })
    });
}

criterion_group!(name = decode; config = Criterion::default().sample_size(20); targets = benches);
criterion_main!(decode);
