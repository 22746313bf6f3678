//! `[mesh]`: where the DPS error notifications are fetched and where they are published.
//!
//! Input: the `[mesh]` TOML table (optional; without it no poller runs). Output: a validated
//! [`MeshConfig`]. Its keys, with default, example and meaning: [`SECTION`]. Secrets (password,
//! shared key, client key) are file paths, read when the poller starts
//! ([`MeshConfig::read_secrets`]), never here and never logged.
//!
//! MESH's own rules refused here, with their source: NHS England's MESH API specification
//! (`NHSDigital/mesh-api-specification`, `specification/mesh-api.yaml`, the page
//! <https://digital.nhs.uk/developer/api-catalogue/message-exchange-for-social-care-and-health-api>):
//!
//! * the mailbox id "Must be uppercase" (the `NHSMESH` authorization header's `mailbox_id`);
//!   `mesh-sandbox` upper-cases the id in the path but not the one in the header, and answers a
//!   lower-case id 403 "Mailbox id does not match token". [`MAILBOX`] refuses it here instead.
//! * "Client systems MUST poll their assigned inbox a minimum of once a day and a maximum of once
//!   every five minutes" ("Check an inbox"; the pseudocode: "Poll your mailbox at most every 5
//!   minutes, but at least every 24 hours"): [`POLL_INTERVAL_S`] is 300–86400 s, default 300.
//!   Shorter intervals are accepted only when `mesh.url` is a loopback address
//!   ([`is_loopback`]): the live and path-to-live MESH are never there, the local emulators of the
//!   demo and the tests always are.

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
    expected: "a MESH mailbox id: upper-case letters and digits (MESH: the mailbox id \"Must be \
               uppercase\")",
    example: Some("X26ABC2"),
    meaning: "the trust's mailbox id, upper case as MESH requires",
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
    default: Absent::Value("300"),
    prod_default: None,
    expected: "300–86400 seconds: MESH allows an inbox poll at most once every 5 minutes and \
               requires one at least once a day (below 300 only with a loopback `mesh.url`, \
               a local emulator)",
    example: None,
    meaning: "seconds between inbox polls (MESH API: \"a maximum of once every five minutes\", \
              \"a minimum of once a day\")",
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

/// The shortest poll interval MESH allows, seconds: "a maximum of once every five minutes" (MESH
/// API specification, "Check an inbox").
pub const MIN_POLL_INTERVAL_S: u64 = 5 * 60;
/// The longest poll interval MESH allows, seconds: "a minimum of once a day" (same place).
pub const MAX_POLL_INTERVAL_S: u64 = 24 * 60 * 60;

/// Whether `url` points at this machine (`127.0.0.0/8`, `::1`, `localhost`): only there, where
/// the demo's and the tests' emulators listen and NHS England's MESH never does, may the poll
/// interval be shorter than [`MIN_POLL_INTERVAL_S`].
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A MESH mailbox id as MESH accepts it: upper-case ASCII letters and digits.
fn is_mailbox_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

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
        if !is_mailbox_id(&self.mailbox) {
            let upper = self.mailbox.to_ascii_uppercase();
            return Err(if is_mailbox_id(&upper) {
                MAILBOX.error(format!(
                    "must be upper case: MESH mailbox ids are (\"Must be uppercase\", MESH API \
                     specification) and MESH refuses `{}` with 403; write `{upper}`",
                    self.mailbox
                ))
            } else {
                MAILBOX.invalid()
            });
        }
        PASSWORD_FILE.secret_path(&self.password_file)?;
        SHARED_KEY_FILE.secret_path(&self.shared_key_file)?;
        for (setting, path) in [
            (CLIENT_CERT_FILE, &self.client_cert_file),
            (CLIENT_KEY_FILE, &self.client_key_file),
            (CA_FILE, &self.ca_file),
        ] {
            if let Some(path) = path {
                setting.secret_path(path)?;
            }
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
        if self.poll_interval_s < MIN_POLL_INTERVAL_S && !is_loopback(&url) {
            return Err(POLL_INTERVAL_S.error(format!(
                "must be at least {MIN_POLL_INTERVAL_S} ({} given): MESH allows an inbox poll at \
                 most once every 5 minutes (MESH API specification, \"Check an inbox\"); a \
                 shorter interval is accepted only when mesh.url is a loopback address (a local \
                 emulator)",
                self.poll_interval_s
            )));
        }
        if self.poll_interval_s > MAX_POLL_INTERVAL_S {
            return Err(POLL_INTERVAL_S.error(format!(
                "must be at most {MAX_POLL_INTERVAL_S} ({} given): MESH requires an inbox poll at \
                 least once a day (MESH API specification, \"Check an inbox\")",
                self.poll_interval_s
            )));
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
pub type SecretFileError = crate::secret::SecretError;

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecretFileError> {
    crate::secret::read(key, path)
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
        [batch]
        mode = "batch"
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
        assert_eq!(mesh.poll_interval.as_secs(), 300);
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

    fn load(mesh: &str) -> Result<super::MeshConfig, String> {
        Config::from_toml_str(&format!("{BASE}{mesh}"))
            .map(|c| c.mesh.unwrap())
            .map_err(|e| e.to_string())
    }

    /// MESH API specification, "Check an inbox": "Client systems MUST poll their assigned inbox a
    /// minimum of once a day and a maximum of once every five minutes".
    #[test]
    fn the_poll_interval_keeps_to_mesh_s_five_minutes_to_a_day() {
        let with = |interval: u64| format!("{MESH}poll_interval_s = {interval}\n");
        let err = load(&with(60)).unwrap_err();
        assert!(
            err.contains("`mesh.poll_interval_s` must be at least 300 (60 given)"),
            "{err}"
        );
        assert!(err.contains("once every 5 minutes"), "{err}");
        assert!(err.contains("loopback"), "{err}");
        assert!(load(&with(299)).is_err());
        assert_eq!(load(&with(300)).unwrap().poll_interval.as_secs(), 300);
        assert_eq!(load(&with(86_400)).unwrap().poll_interval.as_secs(), 86_400);
        let err = load(&with(86_401)).unwrap_err();
        assert!(
            err.contains("`mesh.poll_interval_s` must be at most 86400"),
            "{err}"
        );
        assert!(err.contains("once a day"), "{err}");
        assert!(load(&with(0))
            .unwrap_err()
            .contains("`mesh.poll_interval_s`"));
    }

    /// The demo's and the tests' emulators listen on loopback, where NHS England's MESH never is:
    /// only there may they poll faster than every 5 minutes.
    #[test]
    fn a_loopback_mesh_may_be_polled_faster() {
        for url in [
            "http://127.0.0.1:8700",
            "http://127.8.9.10:8700",
            "https://localhost:8443",
            "http://[::1]:8700",
        ] {
            let mesh = MESH.replace("https://mesh-sync.spineservices.nhs.uk", url);
            let mesh = load(&format!("{mesh}poll_interval_s = 1\n")).unwrap();
            assert_eq!(mesh.poll_interval.as_secs(), 1, "{url}");
        }
        for url in [
            "https://msg.intspineservices.nhs.uk",
            "http://10.0.0.1:8700",
            "http://mesh-sandbox:8700",
            "http://localhost.example:8700",
        ] {
            let mesh = MESH.replace("https://mesh-sync.spineservices.nhs.uk", url);
            let err = load(&format!("{mesh}poll_interval_s = 1\n")).unwrap_err();
            assert!(err.contains("`mesh.poll_interval_s`"), "{url}: {err}");
        }
    }

    /// MESH API specification, the `NHSMESH` header's `mailbox_id`: "Must be uppercase".
    #[test]
    fn a_mailbox_id_must_be_upper_case() {
        let err = load(&MESH.replace("X26ABC2", "x26abc2")).unwrap_err();
        assert!(err.contains("`mesh.mailbox` must be upper case"), "{err}");
        assert!(err.contains("write `X26ABC2`"), "{err}");
        let err = load(&MESH.replace("X26ABC2", "X26abc2")).unwrap_err();
        assert!(err.contains("`mesh.mailbox` must be upper case"), "{err}");
        for bad in ["", "X26-ABC2", "X26 ABC2", "X26ÄBC2"] {
            let err = load(&MESH.replace("X26ABC2", bad)).unwrap_err();
            assert!(
                err.contains("`mesh.mailbox` must be a MESH mailbox id"),
                "{bad}: {err}"
            );
        }
        assert_eq!(load(MESH).unwrap().mailbox, "X26ABC2");
    }
}
