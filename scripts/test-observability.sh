#!/usr/bin/env bash
# Observability checks: installs Debian's `prometheus` package (server and promtool) when it is
# missing, without starting its service, then checks and unit-tests the alert rules with promtool
# and runs the observability tests (tests/prometheus.rs runs a real Prometheus on a loopback port
# against the connector).
#
#   scripts/test-observability.sh            install if needed, then run every check
#   scripts/test-observability.sh --install  only install (scripts/test.sh uses this)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n==> %s\n' "$*" >&2; }

PROMETHEUS=${ADS_TEST_PROMETHEUS:-/usr/bin/prometheus}

if [ ! -x "$PROMETHEUS" ] || [ ! -x "$(dirname "$PROMETHEUS")/promtool" ]; then
  log "Installing Debian's prometheus package (server and promtool; the service is not started)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # policy-rc.d answering 101 tells the package scripts not to start the service.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$made_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  PROMETHEUS=/usr/bin/prometheus
fi
"$PROMETHEUS" --version 2>&1 | head -1 >&2

if [ "${1:-}" = "--install" ]; then
  exit 0
fi

PROMTOOL="$(dirname "$PROMETHEUS")/promtool"
log "promtool check rules / test rules"
(cd dashboards && "$PROMTOOL" check rules alerts.yml && "$PROMTOOL" test rules alerts.test.yml)

log "observability tests on a real Prometheus"
export ADS_TEST_PROMETHEUS="$PROMETHEUS"
cargo test --test prometheus --test observability --test traces --test no_patient_data
