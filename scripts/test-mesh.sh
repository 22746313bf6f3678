#!/usr/bin/env bash
# MESH tests against NHS England's own MESH sandbox (PyPI `mesh-sandbox`) and client
# (`mesh-client`, the cross-check). Installs both into a cached venv
# (~/.cache/ads-connector/mesh-venv, reused when present), starts the sandbox on a free loopback
# port with full HMAC authentication, runs `cargo test --test mesh` against it, stops it, and
# ends with one line `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }
VENV="${ADS_MESH_VENV:-$HOME/.cache/ads-connector/mesh-venv}"
if ! "$VENV/bin/python" -c 'import mesh_sandbox, mesh_client, uvicorn' 2>/dev/null; then
  log "Installing mesh-sandbox and mesh-client into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet mesh-sandbox mesh-client uvicorn
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
WORK=$(mktemp -d)
log "Starting mesh-sandbox on 127.0.0.1:$PORT"
STORE_MODE=memory AUTH_MODE=full SHARED_KEY=TestKey \
  "$VENV/bin/uvicorn" mesh_sandbox.api:app --host 127.0.0.1 --port "$PORT" >"$WORK/mesh.log" 2>&1 &
MESH_PID=$!
cleanup() { kill "$MESH_PID" 2>/dev/null || true; wait "$MESH_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
  kill -0 "$MESH_PID" 2>/dev/null || break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$WORK/mesh.log" >&2; exit 1; }

export ADS_TEST_MESH_URL="http://127.0.0.1:$PORT"
export ADS_TEST_MESH_SHARED_KEY=TestKey
export ADS_TEST_MESH_PYTHON="$VENV/bin/python"
export ADS_TEST_REQUIRE_MESH=1

log "cargo test --test mesh"
set +e
cargo test --test mesh 2>&1 | tee "$WORK/test.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  log "mesh-sandbox log (tail)"; tail -40 "$WORK/mesh.log" >&2 || true
fi
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$WORK/test.log"
exit "$status"
