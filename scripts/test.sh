#!/usr/bin/env bash
# The whole test suite. Installs and starts what the tests need (a Tansu Kafka broker), then runs
# formatting, lints and every test. Works on a fresh machine with only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
log() { printf '\n==> %s\n' "$*" >&2; }

# 1. A real Kafka-compatible broker: Tansu, built once and cached in ~/.cargo/bin. `libsql` is its
#    sqlite storage, the only one in this build that keeps SCRAM users (scripts/tansu-secure.sh).
TANSU_FEATURES=dynostore,libsql
# The sqlite library is linked in only with `libsql`: its file-header magic is in the binary.
tansu_has_features() { grep -qa "SQLite format 3" "$(command -v tansu)"; }
if ! command -v tansu >/dev/null 2>&1 || ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION" \
  || ! tansu_has_features; then
  log "Installing tansu $TANSU_VERSION (about 10 minutes, once)"
  cargo install --locked tansu --version "$TANSU_VERSION" --features "$TANSU_FEATURES" \
    || cargo install tansu --version "$TANSU_VERSION" --features "$TANSU_FEATURES"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TANSU_PORT=$(free_port)
WORK=$(mktemp -d)
log "Starting tansu on 127.0.0.1:$TANSU_PORT"
tansu broker \
  --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
mesh_sandbox_stop() { :; }
tansu_secure_stop() { :; }
cleanup() {
  kill "$TANSU_PID" 2>/dev/null || true; wait "$TANSU_PID" 2>/dev/null || true
  tansu_secure_stop; mesh_sandbox_stop; rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$TANSU_PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
kill -0 "$TANSU_PID" || { cat "$WORK/tansu.log"; exit 1; }

log "Prometheus and promtool (Debian's package; its service is not started)"
./scripts/test-observability.sh --install
export ADS_TEST_PROMETHEUS=/usr/bin/prometheus

export ADS_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$TANSU_PORT"

# ---- Secured Kafka (tests/secured_kafka.rs) ------------------------------------------------
# Throw-away certificates, a SASL_SSL broker and a mutual-TLS broker from the same tansu binary.
log "Secured Kafka: SASL_SSL and mutual-TLS tansu (throw-away CA)"
source scripts/tansu-secure.sh
# ---- end of secured Kafka --------------------------------------------------------------------

log "NHS England's mesh-sandbox and mesh-client (cached venv)"
source scripts/mesh-sandbox.sh

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
log "architecture: the connector library depends on neither the NHS emulator nor the dev kit"
./scripts/check-architecture.sh
log "cargo test"
# Every test binary runs under scripts/test-runner.sh: a hang fails that binary, loudly, and the
# others still run.
HOST_TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export "CARGO_TARGET_$(printf '%s' "$HOST_TRIPLE" | tr 'a-z-' 'A-Z_')_RUNNER=$PWD/scripts/test-runner.sh"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$WORK/test.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  log "tansu log (tail)"; tail -50 "$WORK/tansu.log" >&2 || true
  log "secured tansu log (tail)"; tail -20 "$WORK/tansu-sasl.log" >&2 || true
fi

log "deployment checks: Dockerfile, compose stack, Helm chart, Kubernetes manifests"
./scripts/test-deploy.sh 2>&1 | tee "$WORK/deploy.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ "$status" -ne 0 ]; then log "mesh-sandbox log (tail)"; tail -40 "$MESH_LOG" >&2 || true; fi

# Tests that need something this run lacks (a broker with transactions) are ignored by the
# runner: listed here as skipped, never counted as passed.
log "skipped (ignored by the runner: what they need is absent)"
grep -E '^test .* \.\.\. ignored' "$WORK/test.log" | sed 's/^test /  /' >&2 || true

# The failed tests by name, here at the end where a CI log's tail shows them.
if grep -qE '^test .* \.\.\. FAILED|^HANG: |^FAIL ' "$WORK/test.log" "$WORK/deploy.log"; then
  log "failed"
  grep -hE '^test .* \.\.\. FAILED|^HANG: |^FAIL ' "$WORK/test.log" "$WORK/deploy.log" | sed 's/^/  /' >&2 || true
fi

# One closing line over everything (the last cargo line is the doc-tests').
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     /^HANG: / { f += 1 }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$WORK/test.log" "$WORK/deploy.log"
exit "$status"
