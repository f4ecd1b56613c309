#!/bin/sh
# System packages the integration tests need besides the Go toolchains
# (scripts/install-go-toolchains.sh): tmux drives `gospy top`'s terminal view
# in tests/live_tui.rs; unshare, setpriv (util-linux), readelf, strip
# (binutils), dpkg-deb and cargo-deb build and check packages and
# containers in tests/namespaces.rs and tests/package.rs; qemu-user-static
# runs the arm64 fixtures of tests/arm64.rs (their qemu cores are the arm64
# cores gospy analyzes) and libc6-arm64-cross gives them the dynamic linker
# PIE builds need (qemu-aarch64-static -L /usr/aarch64-linux-gnu).
# Debian/Ubuntu; run as root (CI) or via sudo.
set -eu
# cargo-deb (tests/package.rs, scripts/build-deb.sh): once, into ~/.cargo/bin.
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
missing=""
for p in tmux unshare:util-linux setpriv:util-linux readelf:binutils strip:binutils dpkg-deb:dpkg; do
    cmd=${p%%:*}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing ${p#*:}"
done
command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing="$missing libc6-arm64-cross"
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing
