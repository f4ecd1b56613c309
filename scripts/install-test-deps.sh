#!/bin/sh
# System packages the integration tests need besides the Go toolchains
# (scripts/install-go-toolchains.sh): tmux drives `gospy top`'s terminal view
# in tests/live_tui.rs. Debian/Ubuntu; run as root (CI) or via sudo.
set -eu
missing=""
for p in tmux; do
    command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing
