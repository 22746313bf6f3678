# Sourced by scripts/test.sh: secured Kafka for tests/secured_kafka.rs, from the same tansu binary
# as the plain broker. Makes a throw-away CA, server and client certificates with openssl (in a
# temporary directory, deleted on exit: no key is ever committed), then starts two brokers:
#
# - SASL_SSL: tansu with `--authentication` (SASL SCRAM-SHA-512 against users in its sqlite
#   storage; a user is provisioned first with `tansu user create` on the same database, because
#   an authenticating broker refuses AlterUserScramCredentials before authentication), behind
#   scripts/tls-front.py for TLS;
# - mutual TLS (security.protocol SSL with a client certificate): a plain tansu behind
#   tls-front.py with `--client-ca`, which refuses a client without a certificate from the CA.
#
# TLS is scripts/tls-front.py's, not tansu's: tansu 0.6.0 does not serve TLS (see that script's
# header), and offers no client-certificate verification either (`with_no_client_auth`).
#
# Exports ADS_TEST_KAFKA_SECURE_BOOTSTRAP, ADS_TEST_KAFKA_MTLS_BOOTSTRAP and
# ADS_TEST_KAFKA_SECURE_DIR (ca.pem, untrusted-ca.pem, client.pem, client.key, username,
# password). Needs `free_port`, `log` and `$WORK` from test.sh; its EXIT trap must call
# `tansu_secure_stop`.
SECURE_DIR="$WORK/secure"
mkdir -p "$SECURE_DIR"
SECURE_PIDS=()
tansu_secure_stop() {
  for pid in "${SECURE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SECURE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
wait_port() { # port pid log
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  cat "$3" >&2
  return 1
}

(
  cd "$SECURE_DIR"
  ossl() { openssl "$@" 2>/dev/null; }
  ca() { # name cn
    ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -keyout "$1.key" -out "$1.pem"
  }
  signed() { # name cn extensions
    ossl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
    printf '%s\n' "$3" >"$1.ext"
    ossl x509 -req -days 2 -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
      -extfile "$1.ext" -out "$1.pem"
  }
  ca ca "ads-connector test CA"
  ca untrusted-ca "not the broker's CA"
  signed server localhost "subjectAltName=IP:127.0.0.1,DNS:localhost"
  signed client ads-connector "extendedKeyUsage=clientAuth"
  rm -f ./*.csr ./*.ext ca.key untrusted-ca.key
  echo ads-connector >username
  # A fresh password each run, only ever in this file (and in tansu's storage as a SCRAM hash).
  openssl rand -hex 24 >password
  chmod 600 ./*.key password
) || { echo "openssl could not make the test certificates" >&2; exit 1; }

# SASL_SSL: provision the user on a throw-away unauthenticated tansu, then restart the same
# sqlite database with --authentication.
SASL_INNER=$(free_port)
SASL_PORT=$(free_port)
(cd "$SECURE_DIR" && exec tansu broker --storage-engine sqlite://tansu.db \
  --listener-url "tcp://127.0.0.1:$SASL_INNER" \
  --advertised-listener-url "tcp://127.0.0.1:$SASL_INNER") >"$WORK/tansu-provision.log" 2>&1 &
provision=$!
wait_port "$SASL_INNER" "$provision" "$WORK/tansu-provision.log" || exit 1
tansu user create --broker "tcp://127.0.0.1:$SASL_INNER" --mechanism scram512 \
  "$(cat "$SECURE_DIR/username")" "$(cat "$SECURE_DIR/password")" >/dev/null \
  || { echo "tansu user create failed" >&2; cat "$WORK/tansu-provision.log" >&2; exit 1; }
kill "$provision"; wait "$provision" 2>/dev/null || true
(cd "$SECURE_DIR" && exec tansu broker --storage-engine sqlite://tansu.db --authentication \
  --listener-url "tcp://127.0.0.1:$SASL_INNER" \
  --advertised-listener-url "tcp://127.0.0.1:$SASL_PORT") >"$WORK/tansu-sasl.log" 2>&1 &
SECURE_PIDS+=($!)
wait_port "$SASL_INNER" "$!" "$WORK/tansu-sasl.log" || exit 1
python3 scripts/tls-front.py --listen "127.0.0.1:$SASL_PORT" --upstream "127.0.0.1:$SASL_INNER" \
  --cert "$SECURE_DIR/server.pem" --key "$SECURE_DIR/server.key" >"$WORK/tls-sasl.log" 2>&1 &
SECURE_PIDS+=($!)
wait_port "$SASL_PORT" "$!" "$WORK/tls-sasl.log" || exit 1

# Mutual TLS: a plain tansu (memory storage) behind a front that requires a client certificate.
MTLS_INNER=$(free_port)
MTLS_PORT=$(free_port)
tansu broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$MTLS_INNER" \
  --advertised-listener-url "tcp://127.0.0.1:$MTLS_PORT" >"$WORK/tansu-mtls.log" 2>&1 &
SECURE_PIDS+=($!)
wait_port "$MTLS_INNER" "$!" "$WORK/tansu-mtls.log" || exit 1
python3 scripts/tls-front.py --listen "127.0.0.1:$MTLS_PORT" --upstream "127.0.0.1:$MTLS_INNER" \
  --cert "$SECURE_DIR/server.pem" --key "$SECURE_DIR/server.key" \
  --client-ca "$SECURE_DIR/ca.pem" >"$WORK/tls-mtls.log" 2>&1 &
SECURE_PIDS+=($!)
wait_port "$MTLS_PORT" "$!" "$WORK/tls-mtls.log" || exit 1

export ADS_TEST_KAFKA_SECURE_BOOTSTRAP="127.0.0.1:$SASL_PORT"
export ADS_TEST_KAFKA_MTLS_BOOTSTRAP="127.0.0.1:$MTLS_PORT"
export ADS_TEST_KAFKA_SECURE_DIR="$SECURE_DIR"
