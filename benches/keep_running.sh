#!/usr/bin/env bash
# Benchmark --keep-running (issue 5's figure), as root: how long each route holds up a live Go
# service (tests/goprog/serveprog: N goroutines parked, HEAP MiB of live heap, net/http/pprof).
# For every configuration and route, REPS captures (`gorescue pid PID --via ROUTE`), each
# reporting:
#   pause  the JSON's capture.pause_ms: for the snapshot, the time every thread was stopped
#          (seize + fork + detach); for pprof, the time to the response's first byte (an upper
#          bound of the Go world's stops while runtime/pprof formats the listing);
#   stall  what the service itself saw: the longest gap of a goroutine that sleeps 1 ms at a
#          time, over the capture (serveprog's /stall); "idle" is that gap with no capture.
# It also prints which route `--keep-running --dry-run` would choose. Goal: a pause of at most
# 50 ms with 10,000 goroutines and a 1 GiB heap.
#   bash benches/keep_running.sh
#   CONFIGS="10000:1024" REPS=10 bash benches/keep_running.sh
set -euo pipefail
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
CONFIGS="${CONFIGS:-10000:1024 10000:0 1000:2048 50000:16}"
REPS="${REPS:-5}"
(cd tests/goprog && "$GO" build -o "$ROOT/target/bench/serveprog" ./serveprog)
SERVE="$ROOT/target/bench/serveprog"
save=target/bench/save-keep

# http GET PATH: the body, from serveprog's listener ($ADDR), with bash's /dev/tcp.
http() {
  local body
  exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}"
  printf 'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' "$1" >&3
  body=$(cat <&3)
  exec 3<&-
  printf '%s\n' "${body##*$'\r\n\r\n'}"
}

# stats V...: min / median / max.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{printf "%s / %s / %s", v[1], v[int((NR+1)/2)], v[NR]}'
}

printf '%-8s %-6s %-9s %-9s %-26s %-26s %s\n' goroutines heap RssAnon route "pause ms (min/med/max)" \
  "stall ms (min/med/max)" "--keep-running picks"
for cfg in $CONFIGS; do
  n=${cfg%:*}; heap=${cfg#*:}
  addrfile=target/bench/serve.addr; ready=target/bench/serve.ready
  rm -f "$addrfile" "$ready"
  "$SERVE" -n "$n" -heap "$heap" -pprof -http "$addrfile" >"$ready" 2>target/bench/serve.err &
  pid=$!
  for _ in $(seq 1200); do grep -q ready "$ready" 2>/dev/null && break; sleep 0.05; done
  ADDR="127.0.0.1:$(sed 's/.*://' "$addrfile")"
  rss=$(awk '/^RssAnon/{printf "%.0fMiB", $2/1024}' "/proc/$pid/status")
  picks=$("$BIN" pid "$pid" --keep-running --dry-run 2>&1 | sed -n 's/^capture: *\([a-z]*\).*/\1/p')
  sleep 1; http /stall >/dev/null; sleep 2
  idle=$(awk -v us="$(http /stall)" 'BEGIN{printf "%.1f", us/1000}')
  printf '%-8s %-6s %-9s %-9s %-26s %-26s %s\n' "$n" "${heap}M" "$rss" idle - "$idle" "$picks"
  for route in snapshot pprof; do
    pauses=(); stalls=()
    for _ in $(seq "$REPS"); do
      rm -rf "$save"
      http /stall >/dev/null
      "$BIN" pid "$pid" --via "$route" --yes --format json --save-dir "$save" \
        -o target/bench/keep.json 2>target/bench/keep.err </dev/null ||
        { cat target/bench/keep.err >&2; exit 1; }
      pauses+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dumps"][0]["capture"]["pause_ms"])' target/bench/keep.json)")
      stalls+=("$(awk -v us="$(http /stall)" 'BEGIN{printf "%.1f", us/1000}')")
      sleep 0.3
    done
    printf '%-8s %-6s %-9s %-9s %-26s %-26s\n' "$n" "${heap}M" "$rss" "$route" "$(stats "${pauses[@]}")" \
      "$(stats "${stalls[@]}")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ -s target/bench/serve.err ]; then
    echo "serveprog wrote to its stderr:" >&2; cat target/bench/serve.err >&2; exit 1
  fi
done
