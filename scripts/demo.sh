#!/usr/bin/env bash
# Show gorescue doing its main job, on a fresh Debian/Ubuntu machine, as root:
#
#   bash scripts/demo.sh                    rescue a wedged Go service, live
#   bash scripts/demo.sh --offline [DUMP]   annotate the dump from the story (nothing is run)
#
# Live (the default): installs what is missing (pkg-config, libsystemd-dev, golang-go, Rust, a
# C linker), builds the release gorescue and the demo Go program (tests/goprog, "dumpprog -mode
# wedge": goroutines blocked in many ways, then idle) under target/demo/, and starts it:
#   - where systemd runs (PID 1, and systemctl is-system-running says running or degraded),
#     as the transient service gorescue-demo (systemd-run --collect), so that its stderr is
#     the journal; then: gorescue unit gorescue-demo --yes --save-dir target/demo/save
#   - otherwise (a container, a chroot), as a plain process whose stderr is /dev/null, the
#     story's hardest case; then: gorescue pid PID --yes --save-dir target/demo/save
# Before the capture it waits GORESCUE_DEMO_WAIT seconds (default 65): the Go runtime reports a
# goroutine's wait only from one minute on, as stamped by a garbage collection, so a shorter
# wait shows no blocked-since times and no onset clusters. SIGQUIT ends the demo program; the
# raw capture stays in target/demo/save. The demo program or unit is removed on exit, however
# the script ends.
#
# --offline: builds the release binary and annotates the real goroutine dump from the story
# gorescue started from (a Go status bar wedged for about 23 hours; the blog post "Golang:
# debugging a running process", 2022-02-26), dated with the post's time, since the dump itself
# carries none. DUMP defaults to tests/fixtures/seed/sigquit.txt; any other dump file works too
# (give its dump time with GORESCUE_DEMO_AT, or the empty string to use the file's own time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"

step() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# --offline: the seed's dump, annotated.

if [ "${1:-}" = "--offline" ]; then
  shift
  DUMP="${1:-tests/fixtures/seed/sigquit.txt}"
  AT="${GORESCUE_DEMO_AT-2022-02-26T09:45:00Z}"
  if [ ! -f "$DUMP" ]; then
    echo "error: no dump at $DUMP (give one after --offline)" >&2
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
fi

if [ $# -gt 0 ]; then
  echo "usage: bash scripts/demo.sh [--offline [DUMP]]" >&2
  exit 2
fi

# ---------------------------------------------------------------------------------------------
# Live: a wedged Go service, rescued.

WAIT="${GORESCUE_DEMO_WAIT:-65}"
case "$WAIT" in
  '' | *[!0-9]*)
    echo "error: GORESCUE_DEMO_WAIT must be a number of seconds, not '$WAIT'" >&2
    exit 2
    ;;
esac
UNIT=gorescue-demo
DEMO="$ROOT/target/demo"
SAVE="$DEMO/save"

if [ "$(id -u)" -ne 0 ]; then
  echo "error: the live demo needs root: it signals and ptraces the demo program, and starts" >&2
  echo "       a systemd service where systemd runs. Run it as root (sudo bash scripts/demo.sh)," >&2
  echo "       or try 'bash scripts/demo.sh --offline', which runs nothing." >&2
  exit 1
fi

step "install what is missing"
need_debs pkg-config libsystemd-dev golang-go
ensure_rust

step "cargo build --release"
cargo build --release --quiet

GO=/usr/lib/go-1.19/bin/go
if [ ! -x "$GO" ]; then
  GO=$(command -v go || true)
  if [ -z "$GO" ]; then
    echo "error: no Go toolchain: neither /usr/lib/go-1.19/bin/go nor go on PATH" >&2
    exit 1
  fi
fi
step "build the demo Go program: $GO build -o target/demo/dumpprog ./tests/goprog"
mkdir -p "$DEMO" "$SAVE"
(cd tests/goprog && env GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
  GOCACHE="$ROOT/target/gocache" GOPATH="$ROOT/target/gopath" \
  "$GO" build -o "$DEMO/dumpprog" .)

# Where the demo runs: a transient unit where systemd is up, a plain process otherwise.
mode=plain
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && [ -d /run/systemd/system ]; then
  state=$(systemctl is-system-running 2>/dev/null || true)
  case "$state" in
    running | degraded) mode=systemd ;;
    *) step "systemd is PID 1 but is '$state', not running or degraded: using a plain process" ;;
  esac
fi

demo_pid=
sleep_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "$sleep_pid" ] && kill "$sleep_pid" 2>/dev/null
  if [ "$mode" = systemd ]; then
    if systemctl is-active --quiet "$UNIT" 2>/dev/null; then
      systemctl stop "$UNIT" >/dev/null 2>&1 || true
    fi
    systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
  elif [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -KILL "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Wait until the demo program says "ready" (its goroutines are blocked and stamped by a GC).
wait_ready() { # COMMAND... that prints the program's stdout so far
  local i
  for i in $(seq 1 100); do
    if "$@" 2>/dev/null | grep -qx ready; then
      return 0
    fi
    sleep 0.1
  done
  echo "warning: the demo program did not say 'ready' within 10 s; going on" >&2
}

if [ "$mode" = systemd ]; then
  # A leftover from an earlier run would make systemd-run fail.
  systemctl stop "$UNIT" >/dev/null 2>&1 || true
  systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
  step "systemd-run --unit=$UNIT --collect $DEMO/dumpprog -mode wedge"
  systemd-run --quiet --unit="$UNIT" --collect --description="gorescue demo: a wedged Go service" \
    "$DEMO/dumpprog" -mode wedge
  invocation=$(systemctl show -P InvocationID "$UNIT")
  wait_ready journalctl -q -o cat "_SYSTEMD_INVOCATION_ID=$invocation"
  demo_pid=$(systemctl show -P MainPID "$UNIT")
  step "$UNIT.service runs as PID $demo_pid; its stdout and stderr go to the journal"
  capture=(target/release/gorescue unit "$UNIT" --yes --save-dir "$SAVE")
else
  step "no systemd running here: start the demo as a plain process, stderr to /dev/null"
  "$DEMO/dumpprog" -mode wedge >"$DEMO/dumpprog.out" 2>/dev/null </dev/null &
  demo_pid=$!
  wait_ready cat "$DEMO/dumpprog.out"
  step "target/demo/dumpprog -mode wedge runs as PID $demo_pid, stderr /dev/null"
  capture=(target/release/gorescue pid "$demo_pid" --yes --save-dir "$SAVE")
fi

if [ "$WAIT" -gt 0 ]; then
  step "wait $WAIT s before the capture: the Go runtime reports a goroutine's wait only from one"
  step "minute on, as stamped by a garbage collection, so only then does the output show"
  step "blocked-since times and onset clusters (GORESCUE_DEMO_WAIT=SECONDS changes the wait)"
  sleep "$WAIT" &
  sleep_pid=$!
  wait "$sleep_pid"
  sleep_pid=
fi

step "${capture[*]}"
echo >&2
rc=0
"${capture[@]}" || rc=$?
exit "$rc"
