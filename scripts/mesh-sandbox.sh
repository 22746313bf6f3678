# Sourced by scripts/test.sh (and scripts/test-mesh.sh): starts NHS England's own MESH sandbox
# (PyPI `mesh-sandbox`) with NHS England's Python `mesh-client` beside it for the cross-checks,
# from a cached venv (~/.cache/ads-connector/mesh-venv, reused when present), on a free loopback
# port with full HMAC authentication, and exports what tests/mesh.rs reads. The caller's EXIT
# trap must call `mesh_sandbox_stop`.
VENV="${ADS_MESH_VENV:-$HOME/.cache/ads-connector/mesh-venv}"
if ! "$VENV/bin/python" -c 'import mesh_sandbox, mesh_client, uvicorn' 2>/dev/null; then
  printf '\n==> %s\n' "Installing mesh-sandbox and mesh-client into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet mesh-sandbox mesh-client uvicorn
fi
MESH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MESH_LOG=$(mktemp)
STORE_MODE=memory AUTH_MODE=full SHARED_KEY=TestKey \
  "$VENV/bin/uvicorn" mesh_sandbox.api:app --host 127.0.0.1 --port "$MESH_PORT" >"$MESH_LOG" 2>&1 &
MESH_PID=$!
mesh_sandbox_stop() { kill "$MESH_PID" 2>/dev/null || true; wait "$MESH_PID" 2>/dev/null || true; }
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$MESH_PORT/health" >/dev/null 2>&1; then break; fi
  kill -0 "$MESH_PID" 2>/dev/null || break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$MESH_PORT/health" >/dev/null || { cat "$MESH_LOG" >&2; exit 1; }
export ADS_TEST_MESH_URL="http://127.0.0.1:$MESH_PORT"
export ADS_TEST_MESH_SHARED_KEY=TestKey
export ADS_TEST_MESH_PYTHON="$VENV/bin/python"
