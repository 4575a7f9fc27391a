#!/usr/bin/env bash
# Benchmark `gorescue pid` end to end (issue 3's figures), as root: for N goroutines parked in
# `dumpprog -mode many` with stderr to /dev/null, compare
#   - untraced: `kill -QUIT` to exit, the runtime printing into /dev/null;
#   - gorescue: the whole `gorescue pid PID --yes` run (inspect, ptrace redirect to a memfd,
#     signal, drain into the raw file, save, annotate to /dev/null), goal: at most 3x untraced;
#   - strace: `strace -f -e trace=write -s 65536` attached while the program dumps (the seed's
#     route), then `gorescue strace` on its log. Only for N <= STRACE_MAX (default 10000): at
#     100,000 goroutines it takes many minutes.
# Every goroutine must be captured: the count of goroutine headers is printed for each route.
#   bash benches/pid_capture.sh            # N = 10000 and 100000
#   NS="10000" STRACE_MAX=0 bash benches/pid_capture.sh
set -euo pipefail
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
NS="${NS:-10000 100000}"
STRACE_MAX="${STRACE_MAX:-10000}"
save=target/bench/save
headers() { grep -c '^goroutine [0-9]* .*:$' "$1" || true; }

printf '%-8s %-34s %9s %7s %11s\n' "N" "route" "seconds" "ratio" "goroutines"
for n in $NS; do
  # Untraced: the runtime's own time to print into /dev/null.
  start_many "$n" /dev/null
  t0=$(now); kill -QUIT "$MANY_PID"; wait "$MANY_PID" || true; t1=$(now)
  base=$(elapsed "$t0" "$t1")
  printf '%-8s %-34s %9s %7s %11s\n' "$n" "untraced kill -QUIT to exit" "$base" "1.00" "-"

  # gorescue pid, the whole run.
  rm -rf "$save"
  start_many "$n" /dev/null
  t0=$(now)
  "$BIN" pid "$MANY_PID" --yes --save-dir "$save" >/dev/null 2>target/bench/pid.err </dev/null
  t1=$(now)
  wait "$MANY_PID" || true
  t=$(elapsed "$t0" "$t1")
  raw=$(ls "$save"/*.dump)
  printf '%-8s %-34s %9s %7s %11s\n' "$n" "gorescue pid (whole run)" "$t" \
    "$(awk -v a="$t" -v b="$base" 'BEGIN{printf "%.2f", a/b}')" "$(headers "$raw")"

  if [ "$n" -le "$STRACE_MAX" ]; then
    log=target/bench/strace.log
    start_many "$n" /dev/null
    strace -f -e trace=write -s 65536 -o "$log" -p "$MANY_PID" 2>/dev/null &
    spid=$!
    sleep 1
    t0=$(now); kill -QUIT "$MANY_PID"; wait "$MANY_PID" || true; wait "$spid" || true
    "$BIN" strace "$log" --format raw >target/bench/strace.dump
    t1=$(now)
    t=$(elapsed "$t0" "$t1")
    printf '%-8s %-34s %9s %7s %11s\n' "$n" "strace -f -e write + gorescue strace" "$t" \
      "$(awk -v a="$t" -v b="$base" 'BEGIN{printf "%.2f", a/b}')" "$(headers target/bench/strace.dump)"
    rm -f "$log"
  fi
done
