# shellcheck shell=bash
# Shared by the benchmark scripts: build the release gorescue and tests/goprog with the newest
# Go toolchain, and start `dumpprog -mode many -n N` until it is ready.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mkdir -p target/bench
bash scripts/install-go.sh >/dev/null
GO=$(bash scripts/go-toolchains.sh | tail -n 1 | awk '{print $2}')
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$ROOT/target/gocache"
(cd tests/goprog && "$GO" build -o "$ROOT/target/bench/dumpprog" .)
cargo build --release --quiet
BIN="$ROOT/target/release/gorescue"
DUMPPROG="$ROOT/target/bench/dumpprog"

# start_many N STDERR_FILE: start the program in the background; sets $MANY_PID once ready.
start_many() {
  local ready
  ready=$(mktemp -p target/bench)
  "$DUMPPROG" -mode many -n "$1" >"$ready" 2>"$2" &
  MANY_PID=$!
  for _ in $(seq 1200); do grep -q ready "$ready" && break; sleep 0.05; done
  rm -f "$ready"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
