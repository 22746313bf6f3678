//! Connector configurations: the TOML the end-to-end tests run the pipeline (or the binary) on,
//! and a minimal valid file for the command-line and `[mesh]` tests.

use ads_connector::config::Config;

use super::kafka::{Names, SecuredBroker};
use super::sandbox::AuthSandbox;

/// A valid configuration for NHS England's INT environment that connects to nothing: Kafka on
/// `localhost:9092`, keys under `/keys`, `batch.mode` written (INT requires it). Append
/// sections (e.g. `[mesh]`) as needed.
pub const INT_CONFIG: &str = r#"
[kafka]
bootstrap_servers = "localhost:9092"
topics = ["cad.calls"]
ack_topic = "ads.acks"
dead_letter_topic = "ads.dead-letters"
[nhs_api]
environment = "int"
api_key_file = "/keys/api-key"
private_key_file = "/keys/key.pem"
kid = "int-1"
[batch]
mode = "batch"
"#;

/// A connector configuration for `names` against `bootstrap`, with the `[nhs_api]` lines
/// `nhs_api`, the `[batch]` lines `batch`, and `extra` TOML at the end.
pub fn connector_toml(
    bootstrap: &str,
    names: &Names,
    nhs_api: &str,
    batch: &str,
    extra: &str,
) -> String {
    format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        group_id = "{group}"
        topics = ["{cad}"]
        ack_topic = "{ack}"
        dead_letter_topic = "{dlq}"
        session_timeout_ms = 10000
        revoke_drain_timeout_ms = 5000
        [nhs_api]
        {nhs_api}
        [batch]
        {batch}
        [http]
        listen = "127.0.0.1:0"
        [shutdown]
        drain_timeout_s = 8
        {extra}
        "#,
        group = names.group,
        cad = names.cad,
        ack = names.ack,
        dlq = names.dlq,
    )
}

/// A connector configuration for `names` against `bootstrap` and the sandbox.
pub fn config_toml(
    bootstrap: &str,
    names: &Names,
    sandbox: &AuthSandbox,
    batch: &str,
    extra: &str,
) -> String {
    connector_toml(bootstrap, names, &sandbox.nhs_api_toml(), batch, extra)
}

/// [`connector_toml`] against a secured broker: its `[kafka]` security keys added.
pub fn secured_connector_toml(
    broker: &SecuredBroker,
    names: &Names,
    nhs_api: &str,
    batch: &str,
    extra: &str,
) -> String {
    let toml = connector_toml(&broker.bootstrap, names, nhs_api, batch, extra);
    // The `[kafka]` table ends where `[nhs_api]` begins.
    let at = toml.find("[nhs_api]").unwrap();
    format!("{}{}\n{}", &toml[..at], broker.kafka_toml(), &toml[at..])
}

/// [`config_toml`] against a secured broker: its `[kafka]` security keys added.
pub fn secured_config_toml(
    broker: &SecuredBroker,
    names: &Names,
    sandbox: &AuthSandbox,
    batch: &str,
    extra: &str,
) -> String {
    secured_connector_toml(broker, names, &sandbox.nhs_api_toml(), batch, extra)
}

/// [`config_toml`], parsed.
pub fn connector_config(
    bootstrap: &str,
    names: &Names,
    sandbox: &AuthSandbox,
    batch: &str,
    extra: &str,
) -> Config {
    Config::from_toml_str(&config_toml(bootstrap, names, sandbox, batch, extra)).unwrap()
}
