#!/usr/bin/env bash
# Benchmark `gorescue annotate` on a real 100,000-goroutine SIGQUIT dump (issue 2's figures):
#   - `--format json`: wall time and peak memory (goal: 5x faster than gostackparse's 4.3 s on a
#     168 MB dump, i.e. under 0.86 s; under 256 MiB);
#   - text without --group: throughput (goal: at least 500 MB/s) and peak memory, which must
#     not grow with the input (also measured on a 10,000-goroutine dump to show that);
#   - text with --group.
# The dump is made by tests/goprog (`dumpprog -mode many -n N`) with the newest Go toolchain
# and cached under target/bench/. Run as root on a fresh machine: bash benches/annotate.sh
set -euo pipefail
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS="${RUNS:-5}"

make_dump() { # N -> target/bench/dump-N.txt, the runtime's SIGQUIT output with stderr to a file
  local n=$1 out="target/bench/dump-$1.txt"
  [ -s "$out" ] && tail -n 1 "$out" | grep -q '^gs ' && return 0
  echo "making a $n-goroutine dump..." >&2
  start_many "$n" "$out"
  kill -QUIT "$MANY_PID"; wait "$MANY_PID" || true
}

# best-of-RUNS wall time and max RSS of one command (output to /dev/null)
measure() {
  local best="" rss=0 t m
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o target/bench/time.txt "$@" >/dev/null
    read -r t m <target/bench/time.txt
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

for n in 10000 100000; do make_dump "$n"; done
printf '%-42s %10s %8s %10s %12s\n' "case" "size MB" "best s" "MB/s" "peak RSS MB"
for n in 10000 100000; do
  f="target/bench/dump-$n.txt"
  mb=$(awk -v b="$(stat -c %s "$f")" 'BEGIN{printf "%.1f", b/1e6}')
  for mode in "json:--format json" "text:--format text" "group:--group"; do
    name=${mode%%:*}; args=${mode#*:}
    # shellcheck disable=SC2086
    read -r t rss < <(measure "$BIN" annotate "$f" $args)
    printf '%-42s %10s %8s %10s %12s\n' "annotate $name, $n goroutines" "$mb" "$t" \
      "$(awk -v m="$mb" -v t="$t" 'BEGIN{printf "%.0f", m/t}')" "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')"
  done
done
