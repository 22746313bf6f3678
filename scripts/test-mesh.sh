#!/usr/bin/env bash
# Only the MESH tests against NHS England's own MESH sandbox (scripts/test.sh runs them with
# everything else): starts the sandbox, runs `cargo test --test mesh`, stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mesh-sandbox.sh
trap mesh_sandbox_stop EXIT
cargo test --test mesh
