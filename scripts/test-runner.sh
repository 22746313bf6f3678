#!/usr/bin/env bash
# Cargo's runner for every test binary in scripts/test.sh (CARGO_TARGET_<host>_RUNNER): a binary
# that runs longer than ADS_TEST_BINARY_TIMEOUT_S (default 900 s; the slowest takes about 70 s)
# is stopped and fails, naming itself, so a hang costs one binary's limit instead of CI's
# 90 minutes and every binary after it. (A hang in tests/prometheus.rs once did exactly that.)
limit="${ADS_TEST_BINARY_TIMEOUT_S:-900}"
timeout --kill-after=10s "${limit}s" "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  printf '\nHANG: %s did not finish within %s s and was stopped (exit %s)\n' \
    "$(basename "$1")" "$limit" "$status" >&2
fi
exit "$status"
