#![no_main]
// Patches (region u16, offset u32, value u64) applied to the shipped
// sample's memory, then every memory decoder and report.
use std::sync::OnceLock;

fn base() -> &'static gospy::fuzzing::MemoryBase {
    static B: OnceLock<gospy::fuzzing::MemoryBase> = OnceLock::new();
    B.get_or_init(|| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/goroutines-go1.27.gss");
        gospy::fuzzing::MemoryBase::from_snapshot(std::fs::read(p).expect("the sample"))
            .expect("the sample decodes")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| gospy::fuzzing::memory_decoders(base(), data));
