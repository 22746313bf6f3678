//! `[mesh]`: where the DPS error notifications are fetched and where they are published.
//!
//! Input: the `[mesh]` TOML table (optional; without it no poller runs). Output: a validated
//! [`MeshConfig`]. Its keys, with default, example and meaning: [`SECTION`]. Secrets (password,
//! shared key, client key) are file paths, read when the poller starts
//! ([`MeshConfig::client_config`]), never here and never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::settings::{Absent, Section, Setting};
use super::ConfigError;

/// `[mesh]`
pub const SECTION: Section = Section {
    name: "mesh",
    about: "DPS error notifications from the trust's MESH mailbox onto an errors topic \
            (`docs/dps-errors.md`). Optional: without the section no poller runs; with it, the \
            keys marked required must be written.",
    settings: &[
        URL,
        MAILBOX,
        PASSWORD_FILE,
        SHARED_KEY_FILE,
        CLIENT_CERT_FILE,
        CLIENT_KEY_FILE,
        CA_FILE,
        WORKFLOW_IDS,
        POLL_INTERVAL_S,
        MAX_MESSAGES_PER_POLL,
        ERRORS_TOPIC,
        CORRELATION_LOOKBACK_H,
        CORRELATION_MAX_CALLS,
        CORRELATION_WAIT_S,
        REQUEST_TIMEOUT_S,
    ],
};
/// `mesh.url`
pub const URL: Setting = Setting {
    key: "mesh.url",
    default: Absent::Required,
    prod_default: None,
    expected: "an http(s) URL with a host",
    example: Some("https://mesh-sync.spineservices.nhs.uk"),
    meaning: "MESH API base URL (without `/messageexchange`)",
};
/// `mesh.mailbox`
pub const MAILBOX: Setting = Setting {
    key: "mesh.mailbox",
    default: Absent::Required,
    prod_default: None,
    expected: "a MESH mailbox id (letters and digits)",
    example: Some("X26ABC2"),
    meaning: "the trust's mailbox id",
};
/// `mesh.password_file`
pub const PASSWORD_FILE: Setting = Setting {
    key: "mesh.password_file",
    default: Absent::Required,
    prod_default: None,
    expected: "a file path",
    example: Some("/secrets/mesh/password"),
    meaning: "file holding the mailbox password (secret)",
};
/// `mesh.shared_key_file`
pub const SHARED_KEY_FILE: Setting = Setting {
    key: "mesh.shared_key_file",
    default: Absent::Required,
    prod_default: None,
    expected: "a file path",
    example: Some("/secrets/mesh/shared-key"),
    meaning: "file holding the environment's MESH shared key, the HMAC key (secret)",
};
/// `mesh.client_cert_file`
pub const CLIENT_CERT_FILE: Setting = Setting {
    key: "mesh.client_cert_file",
    default: Absent::Unset("none"),
    prod_default: None,
    expected: "a file path, set together with mesh.client_key_file",
    example: Some("/secrets/mesh/client.crt"),
    meaning: "PEM client certificate for mutual TLS (the live service requires one)",
};
/// `mesh.client_key_file`
pub const CLIENT_KEY_FILE: Setting = Setting {
    key: "mesh.client_key_file",
    default: Absent::Unset("none"),
    prod_default: None,
    expected: "a file path, set together with mesh.client_cert_file",
    example: Some("/secrets/mesh/client.key"),
    meaning: "PEM private key of `client_cert_file` (secret)",
};
/// `mesh.ca_file`
pub const CA_FILE: Setting = Setting {
    key: "mesh.ca_file",
    default: Absent::Unset("none"),
    prod_default: None,
    expected: "a file path",
    example: Some("/secrets/mesh/ca.pem"),
    meaning: "PEM CA bundle to trust as well as the system roots",
};
/// `mesh.workflow_ids`
pub const WORKFLOW_IDS: Setting = Setting {
    key: "mesh.workflow_ids",
    default: Absent::Unset("`[]` (all)"),
    prod_default: None,
    expected: "a list of non-empty workflow ids",
    example: Some("[\"ADS_DPS_ERRORS\"]"),
    meaning: "only messages with these workflow ids are taken; others stay in the mailbox",
};
/// `mesh.poll_interval_s`
pub const POLL_INTERVAL_S: Setting = Setting {
    key: "mesh.poll_interval_s",
    default: Absent::Value("60"),
    prod_default: None,
    expected: "a positive number of seconds",
    example: None,
    meaning: "seconds between inbox polls",
};
/// `mesh.max_messages_per_poll`
pub const MAX_MESSAGES_PER_POLL: Setting = Setting {
    key: "mesh.max_messages_per_poll",
    default: Absent::Value("500"),
    prod_default: None,
    expected: "10–5000 (other values are clamped)",
    example: None,
    meaning: "inbox page size of each list request; a poll follows the inbox's `links.next` until \
              it is listed whole, so nothing is left for a later poll (despite the key's name)",
};
/// `mesh.errors_topic`
pub const ERRORS_TOPIC: Setting = Setting {
    key: "mesh.errors_topic",
    default: Absent::Required,
    prod_default: None,
    expected: "a topic",
    example: Some("ads.dps-errors"),
    meaning: "topic of the `ads.dps-error.v1` records",
};
/// `mesh.correlation_lookback_h`
pub const CORRELATION_LOOKBACK_H: Setting = Setting {
    key: "mesh.correlation_lookback_h",
    default: Absent::Value("168"),
    prod_default: None,
    expected: "a number of hours",
    example: None,
    meaning: "hours of the ack topic read at start to rebuild the correlation map",
};
/// `mesh.correlation_max_calls`
pub const CORRELATION_MAX_CALLS: Setting = Setting {
    key: "mesh.correlation_max_calls",
    default: Absent::Value("1000000"),
    prod_default: None,
    expected: "a positive number",
    example: None,
    meaning: "acked calls the correlation map holds at most, oldest submissions forgotten first \
              (about 160 bytes each)",
};
/// `mesh.correlation_wait_s`
pub const CORRELATION_WAIT_S: Setting = Setting {
    key: "mesh.correlation_wait_s",
    default: Absent::Value("300"),
    prod_default: None,
    expected: "a number of seconds",
    example: None,
    meaning: "how long a notification for a submission not (yet) seen on the ack topic waits in \
              MESH before it is published uncorrelated",
};
/// `mesh.request_timeout_s`
pub const REQUEST_TIMEOUT_S: Setting = Setting {
    key: "mesh.request_timeout_s",
    default: Absent::Value("30"),
    prod_default: None,
    expected: "a number of seconds (at least 1)",
    example: None,
    meaning: "per MESH request",
};

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
    POLL_INTERVAL_S.parsed_default()
}
fn default_max_messages() -> u32 {
    MAX_MESSAGES_PER_POLL.parsed_default()
}
fn default_lookback_h() -> u64 {
    CORRELATION_LOOKBACK_H.parsed_default()
}
fn default_max_calls() -> usize {
    CORRELATION_MAX_CALLS.parsed_default()
}
fn default_correlation_wait_s() -> u64 {
    CORRELATION_WAIT_S.parsed_default()
}
fn default_timeout_s() -> u64 {
    REQUEST_TIMEOUT_S.parsed_default()
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

impl RawMesh {
    /// Checks every value.
    pub fn validate(self) -> Result<MeshConfig, ConfigError> {
        let url = Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| URL.invalid())?;
        if self.mailbox.is_empty() || !self.mailbox.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(MAILBOX.invalid());
        }
        let client_identity = match (self.client_cert_file, self.client_key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(CLIENT_KEY_FILE.error("must be set together with mesh.client_cert_file"))
            }
        };
        if self.poll_interval_s == 0 {
            return Err(POLL_INTERVAL_S.invalid());
        }
        if self.errors_topic.is_empty() {
            return Err(ERRORS_TOPIC.error("must be set"));
        }
        if self.correlation_max_calls == 0 {
            return Err(CORRELATION_MAX_CALLS.invalid());
        }
        if self.workflow_ids.iter().any(String::is_empty) {
            return Err(WORKFLOW_IDS.error("must not contain an empty id"));
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
