//! Property tests (proptest) for the decoders of untrusted input: snapshot
//! round trips, the reader and every decoder on arbitrary or mutated bytes
//! (no panic), sparse memory against a byte-map model, the shared work
//! budget. Kept fast (a few seconds in all).

mod common;

use common::*;
use gospy::fuzzing;
use gospy::memory::{Memory, SparseMemory};
use gospy::model::{Capture, CaptureMeta, Region, RegionKind, ThreadInfo};
use gospy::snapshot::{self, SnapshotFile, WriteOptions};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

const KINDS: [RegionKind; 8] = [
    RegionKind::Data,
    RegionKind::Allgs,
    RegionKind::G,
    RegionKind::Stack,
    RegionKind::P,
    RegionKind::M,
    RegionKind::Heap,
    RegionKind::Other,
];

fn region() -> impl Strategy<Value = Region> {
    (
        0u64..1 << 47,
        0usize..KINDS.len(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            (0usize..100_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        ],
    )
        .prop_map(|(addr, k, data)| Region {
            addr,
            kind: KINDS[k],
            data,
        })
}

fn capture() -> impl Strategy<Value = Capture> {
    (
        proptest::collection::vec(region(), 0..24),
        ".{0,40}",
        proptest::collection::vec(".{0,20}", 0..4),
        any::<i32>(),
        proptest::collection::vec((any::<i32>(), "[a-z]{0,15}"), 0..6),
        proptest::collection::vec(".{0,60}", 0..3),
    )
        .prop_map(|(regions, exe, cmdline, pid, threads, warnings)| Capture {
            meta: CaptureMeta {
                gospy_version: "0.1.0".into(),
                pid,
                exe_path: exe,
                cmdline,
                go_version: "go1.27.3".into(),
                threads: threads
                    .into_iter()
                    .map(|(tid, name)| ThreadInfo {
                        tid,
                        name,
                        state: 'S',
                        regs: None,
                    })
                    .collect(),
                warnings,
                ..Default::default()
            },
            regions,
            binary: None,
        })
}

fn opts() -> WriteOptions {
    WriteOptions {
        level: 1,
        chunk_size: 64 << 10,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever is written reads back the same, region by region.
    #[test]
    fn snapshot_round_trips(cap in capture()) {
        let bytes = snapshot::encode(&cap, &opts()).unwrap();
        let back = SnapshotFile::from_bytes(bytes).unwrap().capture().unwrap();
        let mut want = cap.regions.clone();
        want.sort_by_key(|r| r.addr);
        prop_assert_eq!(back.regions, want);
        prop_assert_eq!(back.meta, cap.meta);
    }

    /// Any byte changed in a valid snapshot: an error or damage warnings,
    /// never a panic; what still loads is what was written.
    #[test]
    fn mutated_snapshots_never_panic(
        cap in capture(),
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = snapshot::encode(&cap, &opts()).unwrap();
        for (i, b) in &muts {
            let at = i.index(bytes.len());
            bytes[at] ^= b | 1;
        }
        if truncate {
            let n = cut.index(bytes.len());
            bytes.truncate(n);
        }
        fuzzing::snapshot_reader(&bytes);
        if let Ok(snap) = SnapshotFile::from_bytes(bytes) {
            if let Ok(loaded) = snap.memory() {
                // Every byte that loads equals the original (CRCs guard them),
                // unless a region index entry itself was changed under a
                // valid CRC, which the mutations here cannot do.
                let orig = SparseMemory::new(
                    cap.regions.iter().map(|r| (r.addr, Arc::from(r.data.as_slice()))).collect(),
                );
                for (a, d) in loaded.memory.ranges().take(32) {
                    let mut buf = vec![0u8; d.len().min(64)];
                    if orig.read_exact(a, &mut buf).is_ok() {
                        prop_assert_eq!(&buf[..], &d[..buf.len()]);
                    }
                }
            }
        }
    }

    /// Arbitrary bytes, with or without the magic in front.
    #[test]
    fn reader_survives_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        magic in any::<bool>(),
    ) {
        let mut v = if magic { b"GOSPYSS\0".to_vec() } else { Vec::new() };
        v.extend_from_slice(&data);
        fuzzing::snapshot_reader(&v);
    }

    /// Sparse memory reads agree with a byte map: a read succeeds iff every
    /// byte is captured, and returns those bytes.
    #[test]
    fn sparse_memory_matches_a_byte_map(
        pieces in proptest::collection::vec((0u64..64, 1usize..64, any::<u8>()), 1..12),
        reads in proptest::collection::vec((0u64..2048, 0usize..96), 1..32),
    ) {
        let mut ranges = Vec::new();
        let mut model = HashMap::new();
        let mut at = 0u64;
        for (gap, len, fill) in pieces {
            at += gap;
            let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
            for (i, b) in data.iter().enumerate() {
                model.insert(at + i as u64, *b);
            }
            ranges.push((at, Arc::<[u8]>::from(data)));
            at += len as u64;
        }
        let mem = SparseMemory::new(ranges);
        for (addr, len) in reads {
            let mut buf = vec![0u8; len];
            let want: Option<Vec<u8>> = (0..len as u64).map(|i| model.get(&(addr + i)).copied()).collect();
            match (mem.read_exact(addr, &mut buf), want) {
                (Ok(()), Some(w)) => prop_assert_eq!(buf, w),
                (Err(_), None) => {}
                (got, want) => prop_assert!(false, "read {addr:#x}+{len}: {got:?} vs {want:?}"),
            }
        }
    }

    /// Label structures over arbitrary memory.
    #[test]
    fn label_decoders_survive_arbitrary_memory(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        fuzzing::labels(&data);
    }

    /// The pclntab parser and its lookups on a plausible header followed by
    /// arbitrary bytes.
    #[test]
    fn pclntab_survives_arbitrary_tables(
        hdr in proptest::collection::vec(0u64..4096, 8),
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        go120 in any::<bool>(),
    ) {
        let mut v = Vec::new();
        v.extend_from_slice(&(if go120 { 0xffff_fff1u32 } else { 0xffff_fff0 }).to_le_bytes());
        v.extend_from_slice(&[0, 0, 1, 8]);
        for h in hdr {
            v.extend_from_slice(&h.to_le_bytes());
        }
        v.extend_from_slice(&tail);
        fuzzing::pclntab(&v);
    }

    /// Taking from the shared budget never goes below zero, and a refused
    /// take takes nothing.
    #[test]
    fn budget_takes_exactly(start in 0u64..1000, takes in proptest::collection::vec(0u64..100, 0..50)) {
        let b = gospy::goruntime::traceback::FrameBudget::new(start);
        let mut left = start;
        for t in takes {
            let ok = b.take_n(t);
            prop_assert_eq!(ok, t <= left);
            if ok {
                left -= t;
            }
        }
    }
}

fn memory_base() -> &'static fuzzing::MemoryBase {
    static B: OnceLock<fuzzing::MemoryBase> = OnceLock::new();
    B.get_or_init(|| {
        let s = std::fs::read(crate_root().join("samples/goroutines-go1.27.gss")).unwrap();
        fuzzing::MemoryBase::from_snapshot(s).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every memory decoder and report on the sample with words overwritten.
    #[test]
    fn memory_decoders_survive_patched_memory(patches in proptest::collection::vec(any::<u8>(), 14..14 * 24)) {
        fuzzing::memory_decoders(memory_base(), &patches);
    }
}
