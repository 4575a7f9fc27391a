#!/usr/bin/env bash
# Run gorescue's whole test suite: the one command for a fresh Debian/Ubuntu machine, and
# what CI runs (.ci/run). Run it as root from anywhere:
#
#   bash scripts/test.sh
#
# It installs what is missing (Debian packages, Rust, the Go toolchains the fixture tests
# use), then runs, in order, stopping at the first failure:
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --all-targets
#   cargo test --doc
#   the bounded fuzz run, when tests/fuzz.rs exists:
#     GORESCUE_FUZZ_SECONDS=${GORESCUE_FUZZ_SECONDS:-60} cargo test --release --test fuzz
#
# Environment: GORESCUE_FUZZ_SECONDS (default 60); GO_VERSIONS (see scripts/install-go.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"

step() { printf '\n==> %s\n' "$*"; }

step "install what is missing"
# pkg-config and libsystemd-dev: the journal and systemd code; golang-go and strace: the
# fixture and strace tests; groff-base (which has /usr/bin/groff; the full `groff`
# package adds only other output devices) and mandoc: the man page tests.
need_debs pkg-config libsystemd-dev golang-go strace groff-base mandoc iproute2
ensure_pip
ensure_rust
if [ -f scripts/install-go.sh ]; then
  step "Go toolchains (scripts/install-go.sh)"
  bash scripts/install-go.sh </dev/null
fi
echo "    $(cargo --version), $(rustc --version)"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
cargo test --all-targets

step "cargo test --doc"
cargo test --doc

if [ -f tests/fuzz.rs ]; then
  export GORESCUE_FUZZ_SECONDS="${GORESCUE_FUZZ_SECONDS:-60}"
  step "fuzz for ${GORESCUE_FUZZ_SECONDS} s: cargo test --release --test fuzz"
  cargo test --release --test fuzz
fi
