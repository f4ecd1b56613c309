#![no_main]
// Seeds: scripts/fuzz.sh writes them to fuzz/corpus/labels/ (from the shipped sample).
libfuzzer_sys::fuzz_target!(|data: &[u8]| gospy::fuzzing::labels(data));
