#!/usr/bin/env bash
# Benchmark --keep-running (issue 5's figure), as root: the pause of a process with 10,000
# goroutines, and with 10,000 goroutines and a 1 GiB live heap, three snapshot dumps each
# (goal: at most 50 ms). Runs tests/snapshot.rs's pause test in release mode and prints its
# figures: the pause, split into seizing the threads and the fork, and the copy's dump time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
cargo test --release --test snapshot -- --exact pause_many_and_big_heap --nocapture 2>&1 |
  grep -E '^go[0-9]|panicked|error'
