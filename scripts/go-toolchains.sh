#!/usr/bin/env bash
# Print every installed Go toolchain as "VERSION PATH", one per line, oldest first
# (Debian's /usr/lib/go-1.19 and target/go/*/go/bin/go). Installs nothing; see install-go.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/install-go.sh" --list
