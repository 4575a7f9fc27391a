#!/usr/bin/env bash
# Benchmark of the ptrace capture (src/capture/ptrace), as root:
#
#   bash benches/ptrace_capture.sh            # n = 10000 and 100000
#   GORESCUE_BENCH_N=10000 bash benches/ptrace_capture.sh
#
# For `dumpprog -mode many -n N` with stderr to /dev/null it prints: the untraced time from
# kill -QUIT to exit; the time of open-file + seize + redirect fd 2 + signal + exit through the
# ptrace capture into a file, and into a memfd drained while the runtime writes; the ratios
# (goal: at most 3x), the bytes and the goroutines captured. With STRACE=1 it also times
# `strace -f -e trace=write -s 65536` attached to the same program (slow: about a minute for
# n = 10000; skipped for larger n).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
export GORESCUE_BENCH_N="${GORESCUE_BENCH_N:-10000,100000}"
cargo test --release --test ptrace -- --ignored --exact bench_capture --nocapture 2>&1 |
  grep -E '^n=|^  create|panicked|error' || true

if [ "${STRACE:-0}" = 1 ] && command -v strace >/dev/null; then
  bin=$(ls -d target/ptrace-test/bin/go1.27*/dumpprog | head -1)
  for n in ${GORESCUE_BENCH_N//,/ }; do
    [ "$n" -le 10000 ] || continue
    out=$(mktemp -p target)
    "$bin" -mode many -n "$n" 2>/dev/null >"$out.ready" &
    pid=$!
    until grep -q ready "$out.ready" 2>/dev/null; do sleep 0.05; done
    strace -f -e trace=write -s 65536 -o "$out" -p "$pid" 2>/dev/null &
    spid=$!
    sleep 1
    t0=$(date +%s.%N)
    kill -QUIT "$pid"
    wait "$pid" || true
    wait "$spid" || true
    t1=$(date +%s.%N)
    printf 'n=%s: strace -f -e trace=write attached: %.3fs from kill -QUIT to exit, %s lines of log\n' \
      "$n" "$(echo "$t1 - $t0" | bc)" "$(wc -l <"$out")"
    rm -f "$out" "$out.ready"
  done
fi
