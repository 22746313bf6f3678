//! `[mesh]`: where the DPS error notifications are fetched and where they are published.
//!
//! Input: the `[mesh]` TOML table (optional; without it no poller runs). Output: a validated
//! [`MeshConfig`]. Secrets (password, shared key, client key) are file paths, read when the
//! poller starts ([`MeshConfig::client_config`]), never here and never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::ConfigError;

/// `[mesh]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMesh {
    /// MESH API base URL, e.g. `https://mesh-sync.spineservices.nhs.uk`.
    pub url: String,
    /// The trust's mailbox id, e.g. `X26ABC2`.
    pub mailbox: String,
    /// File holding the mailbox password.
    pub password_file: PathBuf,
    /// File holding the environment's MESH shared key (the HMAC key).
    pub shared_key_file: PathBuf,
    /// Client certificate (PEM) for mutual TLS; the live service requires one.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// CA bundle (PEM) to trust in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Only messages with these workflow ids are taken (others stay in the mailbox); empty = all.
    #[serde(default)]
    pub workflow_ids: Vec<String>,
    /// Seconds between inbox polls.
    #[serde(default = "default_poll_interval_s")]
    pub poll_interval_s: u64,
    /// Inbox page size, 10–5000 (the key keeps its name: a poll follows `links.next` and
    /// takes every page, so nothing waits beyond the first page).
    #[serde(default = "default_max_messages")]
    pub max_messages_per_poll: u32,
    /// Topic of the `ads.dps-error.v1` records.
    pub errors_topic: String,
    /// Hours of the ack topic read at start to rebuild the correlation map.
    #[serde(default = "default_lookback_h")]
    pub correlation_lookback_h: u64,
    /// Acked calls the correlation map holds at most (oldest submissions forgotten first);
    /// about 170 bytes each.
    #[serde(default = "default_max_calls")]
    pub correlation_max_calls: usize,
    /// Seconds a notification for a submission not (yet) seen on the ack topic waits in MESH
    /// before it is published uncorrelated.
    #[serde(default = "default_correlation_wait_s")]
    pub correlation_wait_s: u64,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout_s")]
    pub request_timeout_s: u64,
}

fn default_poll_interval_s() -> u64 {
    60
}
fn default_max_messages() -> u32 {
    500
}
fn default_lookback_h() -> u64 {
    7 * 24
}
fn default_max_calls() -> usize {
    1_000_000
}
fn default_correlation_wait_s() -> u64 {
    300
}
fn default_timeout_s() -> u64 {
    30
}

/// Validated `[mesh]`.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Base URL.
    pub url: Url,
    /// Mailbox id.
    pub mailbox: String,
    /// Password file.
    pub password_file: PathBuf,
    /// Shared key file.
    pub shared_key_file: PathBuf,
    /// mTLS certificate and key files.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
    /// Accepted workflow ids (empty = all).
    pub workflow_ids: Vec<String>,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Inbox page size (every page is taken each poll).
    pub max_messages_per_poll: u32,
    /// Errors topic.
    pub errors_topic: String,
    /// Ack-topic look-back.
    pub correlation_lookback: Duration,
    /// Correlation bound, in acked calls.
    pub correlation_max_calls: usize,
    /// Wait for a late ack.
    pub correlation_wait: Duration,
    /// Request timeout.
    pub request_timeout: Duration,
}

fn invalid(key: &'static str, problem: &str, example: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.to_owned(),
        example,
    }
}

impl RawMesh {
    /// Checks every value.
    pub fn validate(self) -> Result<MeshConfig, ConfigError> {
        let url = Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(
                    "mesh.url",
                    "must be an http(s) URL with a host",
                    "https://mesh-sync.spineservices.nhs.uk",
                )
            })?;
        if self.mailbox.is_empty() || !self.mailbox.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "mesh.mailbox",
                "must be a MESH mailbox id (letters and digits)",
                "X26ABC2",
            ));
        }
        let client_identity = match (self.client_cert_file, self.client_key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "mesh.client_key_file",
                    "must be set together with mesh.client_cert_file",
                    "/secrets/mesh/client.key",
                ))
            }
        };
        if self.poll_interval_s == 0 {
            return Err(invalid("mesh.poll_interval_s", "must be positive", "60"));
        }
        if self.errors_topic.is_empty() {
            return Err(invalid(
                "mesh.errors_topic",
                "must be set",
                "ads.dps-errors",
            ));
        }
        if self.correlation_max_calls == 0 {
            return Err(invalid(
                "mesh.correlation_max_calls",
                "must be positive",
                "1000000",
            ));
        }
        if self.workflow_ids.iter().any(String::is_empty) {
            return Err(invalid(
                "mesh.workflow_ids",
                "must not contain an empty id",
                "[\"ADS_DPS_ERRORS\"]",
            ));
        }
        Ok(MeshConfig {
            url,
            mailbox: self.mailbox,
            password_file: self.password_file,
            shared_key_file: self.shared_key_file,
            client_identity,
            ca_file: self.ca_file,
            workflow_ids: self.workflow_ids,
            poll_interval: Duration::from_secs(self.poll_interval_s),
            max_messages_per_poll: self.max_messages_per_poll.clamp(10, 5000),
            errors_topic: self.errors_topic,
            correlation_lookback: Duration::from_secs(self.correlation_lookback_h * 3600),
            correlation_max_calls: self.correlation_max_calls,
            correlation_wait: Duration::from_secs(self.correlation_wait_s),
            request_timeout: Duration::from_secs(self.request_timeout_s.max(1)),
        })
    }
}

/// A secret file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {key} ({path}): {source}")]
pub struct SecretFileError {
    /// The config key.
    pub key: &'static str,
    /// The path.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecretFileError> {
    std::fs::read(path).map_err(|source| SecretFileError {
        key,
        path: path.display().to_string(),
        source,
    })
}

fn trimmed(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    text.trim().as_bytes().to_vec()
}

/// The `[mesh]` secrets, read from their files (never logged: no `Debug`).
pub struct MeshSecrets {
    /// Mailbox password.
    pub password: String,
    /// The environment's shared key (the HMAC key).
    pub shared_key: Vec<u8>,
    /// Client certificate and private key, PEM, concatenated (mTLS).
    pub identity_pem: Option<Vec<u8>>,
    /// Extra CA bundle to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

impl MeshConfig {
    /// Reads the secret files.
    pub fn read_secrets(&self) -> Result<MeshSecrets, SecretFileError> {
        let password = trimmed(read("mesh.password_file", &self.password_file)?);
        let shared_key = trimmed(read("mesh.shared_key_file", &self.shared_key_file)?);
        let identity_pem = match &self.client_identity {
            Some((cert, key)) => {
                let mut pem = read("mesh.client_cert_file", cert)?;
                pem.push(b'\n');
                pem.extend(read("mesh.client_key_file", key)?);
                Some(pem)
            }
            None => None,
        };
        let ca_pem = match &self.ca_file {
            Some(ca) => Some(read("mesh.ca_file", ca)?),
            None => None,
        };
        Ok(MeshSecrets {
            password: String::from_utf8_lossy(&password).into_owned(),
            shared_key,
            identity_pem,
            ca_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        topics = ["cad.calls"]
        ack_topic = "ads.acks"
        dead_letter_topic = "ads.dlq"
        [nhs_api]
        environment = "int"
        api_key_file = "/keys/api-key"
        private_key_file = "/keys/key.pem"
        kid = "int-1"
    "#;

    const MESH: &str = r#"
        [mesh]
        url = "https://mesh-sync.spineservices.nhs.uk"
        mailbox = "X26ABC2"
        password_file = "/secrets/mesh/password"
        shared_key_file = "/secrets/mesh/shared-key"
        errors_topic = "ads.dps-errors"
        workflow_ids = ["ADS_DPS_ERRORS"]
    "#;

    #[test]
    fn mesh_section_is_optional_and_validated_with_defaults() {
        assert!(Config::from_toml_str(BASE).unwrap().mesh.is_none());
        let c = Config::from_toml_str(&format!("{BASE}{MESH}")).unwrap();
        let mesh = c.mesh.unwrap();
        assert_eq!(mesh.mailbox, "X26ABC2");
        assert_eq!(mesh.poll_interval.as_secs(), 60);
        assert_eq!(mesh.correlation_lookback.as_secs(), 7 * 24 * 3600);
        assert_eq!(mesh.correlation_max_calls, 1_000_000);
        assert!(mesh.client_identity.is_none());
    }

    #[test]
    fn mesh_errors_name_the_key() {
        let bad_url = MESH.replace("https://mesh-sync.spineservices.nhs.uk", "mesh");
        let err = Config::from_toml_str(&format!("{BASE}{bad_url}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`mesh.url`"), "{err}");
        let half_tls = format!("{BASE}{MESH}client_cert_file = \"/c.pem\"\n");
        let err = Config::from_toml_str(&half_tls).unwrap_err().to_string();
        assert!(err.contains("mesh.client_key_file"), "{err}");
        let unknown = format!("{BASE}{MESH}bogus = 1\n");
        assert!(Config::from_toml_str(&unknown).is_err());
    }
}
