#!/usr/bin/env bash
# The workspace's dependencies run one way: the connector library (crates/connector) depends on
# no other member; the emulator and the dev kit depend on the library; the binary on all three.
# `cargo tree` of the library, with its dev-dependencies, must name neither the emulator nor the
# dev kit. The import order inside the library (no module circle) is a test:
# tests/architecture.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --offline -p ads-connector -e normal,dev,build --prefix none 2>/dev/null \
  || cargo tree -p ads-connector -e normal,dev,build --prefix none)
bad=$(printf '%s\n' "$tree" | grep -E '^(nhs-emulator|ads-devkit|ads-connector-cli) ' | sort -u || true)
if [ -n "$bad" ]; then
  echo "crates/connector depends on a development member:" >&2
  printf '  %s\n' "$bad" >&2
  exit 1
fi
echo "crates/connector: $(printf '%s\n' "$tree" | sort -u | wc -l) crates in its tree, none of nhs-emulator, ads-devkit, ads-connector-cli"
