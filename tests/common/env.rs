//! External resources and repository paths.
//!
//! A test that needs a resource is ignored (reported as skipped) unless the build saw the
//! resource's environment variable (`build.rs` sets the matching `cfg`, which the test's
//! `#[cfg_attr(not(…), ignore = "…")]` reads). Run without it anyway (`--include-ignored`), the
//! functions here panic: such a test fails rather than passes without testing anything.

use std::path::{Path, PathBuf};

/// The value of `var`, or a panic naming it and `how` to get it.
pub fn needs(var: &str, how: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("this test needs {var} ({how})"),
    }
}

/// The real broker `scripts/test.sh` started (Tansu): `ADS_TEST_KAFKA_BOOTSTRAP`.
pub fn real_broker() -> Option<String> {
    Some(needs("ADS_TEST_KAFKA_BOOTSTRAP", "run scripts/test.sh"))
}

/// A broker with transactions (Tansu 0.6 has none): `ADS_TEST_KAFKA_TXN_BOOTSTRAP`.
pub fn transactional_broker() -> Option<String> {
    Some(needs(
        "ADS_TEST_KAFKA_TXN_BOOTSTRAP",
        "a broker with transactions",
    ))
}

/// The SASL_SSL broker `scripts/tansu-secure.sh` started: `ADS_TEST_KAFKA_SECURE_BOOTSTRAP`.
pub fn secure_broker() -> Option<super::kafka::SecuredBroker> {
    let bootstrap = needs("ADS_TEST_KAFKA_SECURE_BOOTSTRAP", "run scripts/test.sh");
    Some(super::kafka::SecuredBroker::sasl_ssl(
        bootstrap,
        &secure_dir(),
    ))
}

/// The mutual-TLS broker `scripts/tansu-secure.sh` started: `ADS_TEST_KAFKA_MTLS_BOOTSTRAP`.
pub fn mtls_broker() -> Option<super::kafka::SecuredBroker> {
    let bootstrap = needs("ADS_TEST_KAFKA_MTLS_BOOTSTRAP", "run scripts/test.sh");
    Some(super::kafka::SecuredBroker::mutual_tls(
        bootstrap,
        &secure_dir(),
    ))
}

/// The certificates and credentials of the secured brokers: `ADS_TEST_KAFKA_SECURE_DIR`.
pub fn secure_dir() -> PathBuf {
    PathBuf::from(needs("ADS_TEST_KAFKA_SECURE_DIR", "run scripts/test.sh"))
}

/// NHS England's mesh-sandbox: `ADS_TEST_MESH_URL`.
pub fn mesh_sandbox_url() -> Option<String> {
    Some(needs("ADS_TEST_MESH_URL", "run scripts/test.sh"))
}

/// Debian's `prometheus` server binary: `ADS_TEST_PROMETHEUS`.
pub fn prometheus_binary() -> Option<PathBuf> {
    Some(PathBuf::from(needs(
        "ADS_TEST_PROMETHEUS",
        "run scripts/test.sh",
    )))
}

/// `path` (relative to the repository root) as an absolute path.
pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The directory of the golden `kind` fixtures (`cad` records, `fhir` bundles).
pub fn fixture_dir(kind: &str) -> PathBuf {
    repo_path("tests/fixtures").join(kind)
}

/// The golden `kind` fixture `name` (without `.json`).
pub fn fixture_path(kind: &str, name: &str) -> PathBuf {
    fixture_dir(kind).join(format!("{name}.json"))
}

/// The text of the repository file `path`.
pub fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Writes `text` to `dir/name`; the file's path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
