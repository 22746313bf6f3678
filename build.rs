//! Tells the integration tests which external resources this build has, so a test that needs an
//! absent one is reported by the test runner as ignored (skipped), never counted as passed.
//!
//! Each resource is an environment variable that `scripts/test.sh` sets after starting it; the
//! tests gate on the matching `cfg` with `#[cfg_attr(not(CFG), ignore = "…")]`.

fn main() {
    for (var, cfg) in [
        // A real Kafka broker (Tansu, started by scripts/test.sh).
        ("ADS_TEST_KAFKA_BOOTSTRAP", "ads_test_broker"),
        // Secured Kafka (scripts/tansu-secure.sh): SASL_SSL, and mutual TLS.
        ("ADS_TEST_KAFKA_SECURE_BOOTSTRAP", "ads_test_secure_broker"),
        ("ADS_TEST_KAFKA_MTLS_BOOTSTRAP", "ads_test_mtls_broker"),
        // A Kafka broker with transactions (none in CI: Tansu 0.6 has none).
        ("ADS_TEST_KAFKA_TXN_BOOTSTRAP", "ads_test_txn_broker"),
        // Debian's prometheus and promtool.
        ("ADS_TEST_PROMETHEUS", "ads_test_prometheus"),
        // NHS England's mesh-sandbox (Python, from PyPI).
        ("ADS_TEST_MESH_URL", "ads_test_mesh"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
}
