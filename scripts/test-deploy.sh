#!/usr/bin/env bash
# Static checks of the deployment artefacts: deploy/Dockerfile, deploy/compose/, helm/ads-connector
# and deploy/k8s/. No Docker engine or cluster is needed. Installs its tools itself
# (a cached Python venv and npm folder under ~/.cache/ads-connector/deploy, Debian's promtool)
# and builds the connector for `check-config`. Prints one line per check and ends with
# `N passed, N failed`; exits non-zero on any failure.
#
#   scripts/test-deploy.sh          # check
#   scripts/test-deploy.sh --sync   # regenerate the derived files (chart README table, chart
#                                   # copies of dashboards/, kustomize base), then check
set -uo pipefail
cd "$(dirname "$0")/.."

CACHE="${ADS_DEPLOY_CACHE:-$HOME/.cache/ads-connector/deploy}"
VENV="$CACHE/venv"
NODE="$CACHE/node"
log() { printf '==> %s\n' "$*" >&2; }
setup_failed() {
  echo "FAIL setup: $*"
  echo "0 passed, 1 failed"
  exit 1
}
mkdir -p "$CACHE"

# 1. Python tools, pinned; the venv is rebuilt when requirements.txt changes.
req=tests/deploy/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  log "Installing the Python tools into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || setup_failed "python3 -m venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --ignore-requires-python -r "$req" \
    || setup_failed "pip install -r $req"
  echo "$want" >"$VENV/.requirements.sha256"
fi

# 2. CRD schemas from npm, pinned; reinstalled when package.json changes.
pkg=tests/deploy/package.json
want=$(sha256sum "$pkg" | cut -d' ' -f1)
if [ ! -d "$NODE/node_modules/@kubernetes-models" ] || [ "$(cat "$NODE/.package.sha256" 2>/dev/null)" != "$want" ]; then
  log "Installing the CRD schemas into $NODE"
  rm -rf "$NODE" && mkdir -p "$NODE" && cp "$pkg" "$NODE/package.json"
  (cd "$NODE" && npm install --silent --no-audit --no-fund --omit=dev >/dev/null 2>&1) \
    || setup_failed "npm install (in $NODE)"
  echo "$want" >"$NODE/.package.sha256"
fi

# 3. promtool, from Debian's prometheus package.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "Installing promtool (Debian package prometheus)"
  { apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; }; } \
    || log "could not install promtool; its check will fail"
fi

# 4. The connector itself, for check-config.
if [ -n "${ADS_CONNECTOR_BIN:-}" ]; then
  BIN="$ADS_CONNECTOR_BIN"
else
  log "cargo build --bin ads-connector"
  cargo build --quiet --bin ads-connector || setup_failed "cargo build"
  BIN="${CARGO_TARGET_DIR:-target}/debug/ads-connector"
fi
[ -x "$BIN" ] || setup_failed "no binary at $BIN"

COMPOSE_BIN=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
PATH="$VENV/bin:$PATH" exec "$VENV/bin/python" tests/deploy/check_deploy.py \
  --bin "$(realpath "$BIN")" \
  --node-modules "$NODE/node_modules" \
  --docker-compose "$COMPOSE_BIN" \
  --hadolint "$VENV/bin/hadolint" \
  "$@"
