#!/usr/bin/env bash
# Fuzz gospy's decoders for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# 1. Stable Rust: the mutation loop of tests/fuzz_stable.rs (release build)
#    over the snapshot reader, pclntab parser, DWARF layout loader, label and
#    memory decoders and the executable loader, SECONDS per target. Crashing inputs are saved to
#    target/fuzz-crashes/.
# 2. With cargo-fuzz and a nightly toolchain: the same entry points under
#    libFuzzer (fuzz/fuzz_targets/*), SECONDS each, seeded from step 1.
#    Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
seed=${GOSPY_FUZZ_SEED:-$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ))}
echo "fuzz.sh: $secs s per target, seed $seed"
GOSPY_FUZZ_SECONDS=$secs GOSPY_FUZZ_SEED=$seed GOSPY_FUZZ_SEEDS_DIR="$PWD/fuzz/corpus" \
    cargo test --release --test fuzz_stable -- --nocapture --test-threads 1
if cargo +nightly fuzz --version >/dev/null 2>&1; then
    for t in snapshot pclntab dwarf labels memory binary; do
        mkdir -p "fuzz/corpus/$t"
        (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096)
    done
else
    echo "fuzz.sh: cargo-fuzz or a nightly toolchain is missing; libFuzzer targets skipped" \
         "(rustup toolchain install nightly; cargo install cargo-fuzz)"
fi
