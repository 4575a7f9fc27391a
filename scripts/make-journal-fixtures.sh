#!/usr/bin/env bash
# Journal fixtures: the wedge run as a transient systemd service inside a private systemd
# (../shared/tools/systemd-ns: PID+mount namespace, private tmpfs over /tmp, /var/tmp and
# /var/log/journal; basic.target), SIGQUIT after > 60 s, then journalctl in several -o modes.
#
#   scripts/make-journal-fixtures.sh            uses the newest toolchain (GO_VERSION=1.19.8 etc. to pick)
#
# Writes tests/fixtures/journal/<mode>.txt and tests/fixtures/journal/dumpdemo.meta.
# Needs root. The binary lives under target/ (the namespace sees the host's files except /tmp).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NS="${SYSTEMD_NS:-$ROOT/../shared/tools/systemd-ns}"
[ -x "$NS" ] || NS=/work/shared/tools/systemd-ns
OUT="$ROOT/tests/fixtures/journal"
UNIT=dumpdemo
WAIT="${WAIT:-66}"

line=$("$ROOT/scripts/go-toolchains.sh" | { if [ -n "${GO_VERSION:-}" ]; then grep "^$GO_VERSION "; else tail -1; fi; })
[ -n "$line" ] || { echo "no toolchain ${GO_VERSION:-}: run scripts/install-go.sh" >&2; exit 1; }
ver=${line%% *}; go=${line#* }
bindir="$ROOT/target/goprog-bin/$ver"
mkdir -p "$bindir"
( cd "$ROOT/tests/goprog" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
    GOPATH="$ROOT/target/gopath" GOCACHE="$ROOT/target/gocache/$ver" "$go" build -o "$bindir/dumpprog" . )

started_here=
if ! "$NS" run true 2>/dev/null; then
  "$NS" start
  started_here=1
fi
cleanup() { if [ -n "$started_here" ]; then "$NS" stop || true; fi; }
trap cleanup EXIT

ns() { "$NS" run "$@"; }
ns systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
ns systemctl stop "$UNIT" >/dev/null 2>&1 || true
# a fresh journal for the unit: rotate and vacuum what an earlier run left
ns journalctl --rotate >/dev/null 2>&1 || true
ns journalctl --vacuum-time=1s >/dev/null 2>&1 || true
since=$(ns date '+%Y-%m-%d %H:%M:%S')
sleep 1

ns systemd-run --unit="$UNIT" --description="gorescue journal fixture (go$ver wedge)" \
  "$bindir/dumpprog" -mode wedge
for _ in $(seq 300); do
  if [ "$(ns journalctl -u "$UNIT" --since "$since" -o cat --no-pager 2>/dev/null | grep -cx ready || true)" != 0 ]; then break; fi
  sleep 0.2
done
[ "$(ns journalctl -u "$UNIT" --since "$since" -o cat --no-pager | grep -cx ready || true)" != 0 ] || { echo "the unit never printed ready" >&2; exit 1; }
echo "go$ver wedge running as $UNIT; waiting ${WAIT}s"
sleep "$WAIT"
signal_time=$(date -u '+%Y-%m-%dT%H:%M:%S.%NZ')
ns systemctl kill -s QUIT "$UNIT"
for _ in $(seq 100); do
  state=$(ns systemctl show -p ActiveState --value "$UNIT")
  case "$state" in inactive|failed) break ;; esac
  sleep 0.1
done
sleep 1
status=$(ns systemctl show -p ExecMainStatus --value "$UNIT")
mainpid=$(ns journalctl -u "$UNIT" --since "$since" -o json --no-pager | python3 -c '
import json,sys
pids=[json.loads(l).get("_PID") for l in sys.stdin.read().splitlines() if l.strip()]
ids=[p for p in pids if p and p != "1"]
print(ids[0] if ids else "")')

mkdir -p "$OUT"
for mode in short short-iso short-iso-precise short-precise short-unix short-monotonic cat; do
  ns journalctl -u "$UNIT" --since "$since" -o "$mode" --no-pager > "$OUT/$mode.txt"
done
# what a reader gets from -o cat: count as in fixturegen.py (no blank lines in a journal)
counts=$(python3 - "$OUT/cat.txt" <<'PY'
import re,sys
d=open(sys.argv[1],'rb').read().split(b'\n')
g=f=0; ing=False; prev=b''
loc=re.compile(rb'^\t.*:\d+( \+0x[0-9a-f]+)?( fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x[0-9a-f]+)?$')
for l in d:
    if re.match(rb'^goroutine \d+ ', l): g+=1; ing=True
    elif ing and loc.match(l) and not prev.startswith(b'created by '): f+=1
    prev=l
print("goroutines=%d\nframes=%d" % (g, f))
PY
)
{
  echo "go_version=go$ver"
  echo "unit=$UNIT"
  echo "main_pid=$mainpid"
  echo "exit_code=$status"
  echo "signal_time=$signal_time"
  echo "signal_time_source=host wall clock just before systemctl kill -s QUIT"
  echo "systemd=$(ns systemctl --version | head -1)"
  echo "$counts"
  echo "modes=short short-iso short-iso-precise short-precise short-unix short-monotonic cat"
} > "$OUT/dumpdemo.meta"
ns systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
echo "wrote $OUT/{short,short-iso,short-iso-precise,short-precise,short-unix,short-monotonic,cat}.txt and dumpdemo.meta"
