#!/usr/bin/env bash
# Benchmark `gorescue unit` on a service that logs to the journal (issue 4's figures), as root:
# boots a real systemd in a private namespace (tests/common/systemd.rs), runs a service with
# N goroutines (default 20,000), and prints the runtime's own time to print its dump into the
# journal and how many goroutines the journal kept, next to gorescue unit's whole run and how
# many goroutines it delivered.
#   bash benches/unit_journal.sh
#   GORESCUE_BENCH_N=100000 bash benches/unit_journal.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
cargo test --release --test unit_cmd -- --ignored --exact bench_unit_journal --nocapture 2>&1 |
  grep -E '^n=|panicked|error'
