#!/usr/bin/env bash
# Regenerates samples/goroutines-go1.27.gss: the goroutines fixture built with
# Go 1.27 (-trimpath, so no local paths), captured with the executable
# embedded, plus the runtime's own runtime.Stack output at that moment
# (samples/goroutines-go1.27.stack.txt) to compare `gospy analyze ... dump` with.
#
#   bash scripts/make-sample.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(GOSPY_GO_VERSIONS=1.27.3 bash scripts/install-go-toolchains.sh | awk '{print $2}')
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd tests/fixtures/goroutines && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
  "$GO" build -trimpath -o "$work/goroutines" main.go)
cargo build --release -q
mkdir "$work/oracle"
"$work/goroutines" "$work/oracle" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 150); do [ -f "$work/oracle/ready" ] && break; sleep 0.2; done
[ -f "$work/oracle/ready" ] || { cat "$work/stderr"; exit 1; }
./target/release/gospy capture --pid "$pid" -o samples/goroutines-go1.27.gss --embed-binary
cp "$work/oracle/stack.txt" samples/goroutines-go1.27.stack.txt
cp "$work/oracle/meta.json" samples/goroutines-go1.27.meta.json
echo "wrote samples/goroutines-go1.27.gss"
