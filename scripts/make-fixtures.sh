#!/usr/bin/env bash
# (Re)generate the real Go dump fixtures under tests/fixtures/ with every installed toolchain.
#   scripts/make-fixtures.sh                    install toolchains if needed, then everything (~3-4 min)
#   scripts/make-fixtures.sh --only 1.27.3      one version (see scripts/fixturegen.py --help)
#   scripts/make-fixtures.sh --many 100000      also a 100,000-goroutine dump in target/fixture-work/ (benchmarks)
# The journal fixtures need systemd: scripts/make-journal-fixtures.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${SKIP_INSTALL:-}" ]; then "$ROOT/scripts/install-go.sh" >/dev/null; fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1 && [ -z "${SKIP_INSTALL:-}" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null 2>&1 || true
fi
ulimit -c 0
exec python3 "$ROOT/scripts/fixturegen.py" "$@"
