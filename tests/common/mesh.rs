//! MESH for the tests: client configurations and the `[mesh]` section of a poller.

use std::path::Path;
use std::time::Duration;

use ads_connector::mesh::{MeshClientConfig, MeshConfig, RawMesh};

/// A client of `mailbox` at `url` without TLS client identity, 10 s per request.
pub fn mesh_client_config(
    url: &str,
    mailbox: &str,
    password: &str,
    shared_key: &[u8],
) -> MeshClientConfig {
    MeshClientConfig {
        url: url.parse().unwrap(),
        mailbox: mailbox.into(),
        password: password.into(),
        shared_key: shared_key.to_vec(),
        identity_pem: None,
        ca_pem: None,
        timeout: Duration::from_secs(10),
    }
}

/// The `[mesh]` keys (as JSON) of a poller of `mailbox` at `url` that takes `workflow` every
/// second and publishes to `errors_topic`; writes the `password` and `shared-key` files they
/// name into `dir`.
pub fn mesh_section(
    url: &str,
    mailbox: &str,
    (password, shared_key): (&str, &[u8]),
    workflow: &str,
    errors_topic: &str,
    dir: &Path,
) -> serde_json::Value {
    std::fs::write(dir.join("password"), password).unwrap();
    std::fs::write(dir.join("shared-key"), shared_key).unwrap();
    serde_json::json!({
        "url": url, "mailbox": mailbox,
        "password_file": dir.join("password"), "shared_key_file": dir.join("shared-key"),
        "workflow_ids": [workflow], "poll_interval_s": 1, "errors_topic": errors_topic,
    })
}

/// A `[mesh]` section (as JSON), validated as `run` validates it.
pub fn parse_mesh(section: serde_json::Value) -> MeshConfig {
    serde_json::from_value::<RawMesh>(section)
        .unwrap()
        .validate()
        .unwrap()
}
