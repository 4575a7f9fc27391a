#!/usr/bin/env bash
# Show gorescue doing its main job, on a fresh Debian/Ubuntu machine:
#
#   bash scripts/demo.sh [DUMP]
#
# Installs what is missing (Rust, a C linker, pkg-config, libsystemd-dev), builds the release
# binary, and annotates the real goroutine dump from the story gorescue started from (a Go
# status bar wedged for about 23 hours; the blog post "Golang: debugging a running process",
# 2022-02-26), dated with the post's time, since the dump itself carries none. The output is
# the dump with every line kept, each goroutine header followed by the time it has been blocked
# since, and a summary that points at the moment the trouble began.
#
# DUMP defaults to tests/fixtures/seed/sigquit.txt; any other dump file works too (give its
# dump time with GORESCUE_DEMO_AT, or the empty string to use the file's own time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"

DUMP="${1:-tests/fixtures/seed/sigquit.txt}"
AT="${GORESCUE_DEMO_AT-2022-02-26T09:45:00Z}"

step() { printf '==> %s\n' "$*" >&2; }

if [ ! -f "$DUMP" ]; then
  echo "error: no dump at $DUMP (give one as the first argument)" >&2
  exit 1
fi

step "install what is missing"
need_debs pkg-config libsystemd-dev
ensure_rust

step "cargo build --release"
cargo build --release --quiet

args=(annotate "$DUMP")
[ -n "$AT" ] && args+=(--at "$AT")
step "target/release/gorescue ${args[*]}"
echo >&2
exec target/release/gorescue "${args[@]}"
