# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/demo.sh: install what is missing on a fresh
# Debian or Ubuntu machine. Source it; it defines functions and runs nothing.
#
#   need_debs PKG...      install the Debian packages that are not installed yet
#                         (apt-get update once, only when an install needs it)
#   ensure_rust           a Rust toolchain new enough for edition 2024, with rustfmt and clippy
#   ensure_pip            python3 and pip (python3-pip only when pip is missing)

_deps_apt_updated=

_deps_log() { printf '    %s\n' "$*" >&2; }

# Run as root, or through sudo when that works without a password.
_deps_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    echo "error: need root to run: $*" >&2
    echo "       run this script as root (or install the packages above yourself)" >&2
    return 1
  fi
}

_deps_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2)" = "ii" ]
}

need_debs() {
  local missing=() p
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: not a Debian/Ubuntu system (no dpkg-query/apt-get); install these yourself: $*" >&2
    return 1
  fi
  for p in "$@"; do
    _deps_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  _deps_log "installing Debian packages: ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0
    install --no-install-recommends)
  # Try without an update first (fast when the lists are fresh); update once if that fails.
  if [ -n "$_deps_apt_updated" ] || ! _deps_root "${apt[@]}" "${missing[@]}" </dev/null >/dev/null 2>&1; then
    if [ -z "$_deps_apt_updated" ]; then
      _deps_log "apt-get update"
      _deps_root env DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null >/dev/null
      _deps_apt_updated=1
    fi
    _deps_root "${apt[@]}" "${missing[@]}" </dev/null >/dev/null
  fi
}

ensure_pip() {
  command -v python3 >/dev/null 2>&1 || need_debs python3
  if ! python3 -m pip --version >/dev/null 2>&1 && ! command -v pip3 >/dev/null 2>&1; then
    need_debs python3-pip
  fi
}

# The oldest Rust that builds the crate (edition 2024).
_DEPS_RUST_MIN=85

_deps_cargo_minor() {
  cargo --version 2>/dev/null | sed -n 's/^cargo 1\.\([0-9]*\)\..*/\1/p'
}

ensure_rust() {
  # A rustup installation that is not on PATH yet (a fresh login shell would have it).
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  # A C compiler and linker: rustc links with cc.
  command -v cc >/dev/null 2>&1 || need_debs gcc libc6-dev
  if ! command -v cargo >/dev/null 2>&1; then
    _deps_log "installing Rust (stable, minimal profile) with rustup into $HOME/.cargo"
    need_debs curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y -q --profile minimal --component rustfmt,clippy </dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local minor
  minor=$(_deps_cargo_minor)
  if [ -z "$minor" ] || [ "$minor" -lt "$_DEPS_RUST_MIN" ]; then
    if command -v rustup >/dev/null 2>&1; then
      _deps_log "cargo $(cargo --version 2>/dev/null) is too old: rustup update stable"
      rustup -q update stable </dev/null
      rustup -q default stable </dev/null
    else
      echo "error: $(cargo --version 2>/dev/null || echo cargo) is too old (need Rust 1.$_DEPS_RUST_MIN or newer);" >&2
      echo "       install Rust with rustup: https://rustup.rs" >&2
      return 1
    fi
  fi
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      _deps_log "adding the rustfmt and clippy components"
      rustup -q component add rustfmt clippy </dev/null
    else
      echo "error: cargo fmt or cargo clippy is missing and there is no rustup to add them" >&2
      return 1
    fi
  fi
}
