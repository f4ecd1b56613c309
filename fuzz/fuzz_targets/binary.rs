#![no_main]
// Seeds: scripts/fuzz.sh writes them to fuzz/corpus/binary/ (from the shipped sample).
libfuzzer_sys::fuzz_target!(|data: &[u8]| gospy::fuzzing::binary(data));
