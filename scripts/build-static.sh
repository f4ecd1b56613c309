#!/usr/bin/env bash
# A static, stripped release binary of gospy: dist/gospy-static.
#
# It needs nothing from the machine it runs on (no glibc, no loader), so it
# can be copied into any container (distroless, alpine, scratch):
#   kubectl cp dist/gospy-static POD:/tmp/gospy && kubectl exec POD -- /tmp/gospy top --pid 1
#
# glibc's static libc is used (-C target-feature=+crt-static on the gnu
# target); gospy resolves no user or host names, the parts of glibc that
# need shared NSS modules at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# With --target, RUSTFLAGS reach only the target, not build scripts and
# proc macros (which must stay dynamic). Debug info is stripped anyway.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  CARGO_PROFILE_RELEASE_DEBUG=0 \
  cargo build --release --locked --target "$target"
mkdir -p dist
out=dist/gospy-static
cp "target/$target/release/gospy" "$out.tmp"
strip "$out.tmp"
mv "$out.tmp" "$out"
# Refuse a binary that still wants a dynamic loader.
if readelf -lW "$out" | grep -q 'Requesting program interpreter'; then
  echo "error: $out is not static (it has a program interpreter)" >&2
  exit 1
fi
echo "$out: $(du -h "$out" | cut -f1), static, stripped ($(./$out --version))"
