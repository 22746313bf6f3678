//! Configuration: one TOML file plus `ADS__SECTION__KEY` environment overrides.
//!
//! Input: a TOML file (every key documented in `docs/configuration.md` and the README) and the
//! process environment. Output: a validated [`Config`]; only validated types reach the stages
//! ("parse, don't validate"). Unknown keys are rejected, in the file and in `ADS__…` variables.
//! Validation errors name the key and show an example value. Secrets are file paths, never values,
//! and nothing here reads them: [`crate::auth`] reads the key file when it mints a token.
//!
//! Layout: this file holds loading, the whole-file types ([`RawConfig`], [`Config`]) with the
//! checks that span sections, the small `[mapping]`, `[http]` and `[shutdown]` sections, and
//! [`ConfigError`]. One section each, raw and validated: `config/kafka.rs` (`[kafka]`),
//! `config/nhs_api.rs` (`[nhs_api]`), `config/rate_limit.rs` (`[rate_limit]`) and
//! `config/batch.rs` (`[batch]`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::mapping::{BundleType, CodeSystemStyle, MappingOptions};

mod batch;
mod kafka;
pub mod mesh;
mod nhs_api;
mod rate_limit;

pub use batch::{BatchConfig, RawBatch, SubmissionMode};
pub use kafka::{KafkaConfig, RawKafka};
pub use nhs_api::{ApiConfig, AuthConfig, RawNhsApi, RawRequest};
pub use rate_limit::{RateLimitConfig, RawRateLimit};

/// A configuration problem, naming the key and the expected form.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment override could not be read or parsed (unknown key, bad type).
    #[error("{0}")]
    Parse(String),
    /// A value parsed but is not acceptable.
    #[error("`{key}` {problem}, e.g. `{example}`")]
    Invalid {
        /// Dotted key, as written in the file.
        key: &'static str,
        /// What is wrong.
        problem: String,
        /// An acceptable value.
        example: &'static str,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>, example: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        example,
    }
}

/// The file as written. Every field is documented in `docs/configuration.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Kafka consumer group, topics and client properties.
    pub kafka: RawKafka,
    /// The NHS API environment, credentials and request limits.
    pub nhs_api: RawNhsApi,
    /// Application quota shared by every request of this process.
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    /// How call bundles are grouped into submissions.
    #[serde(default)]
    pub batch: RawBatch,
    /// Choices about the FHIR payload where the ADS IG is not public.
    #[serde(default)]
    pub mapping: RawMapping,
    /// The HTTP port for `/metrics`, `/livez`, `/readyz`.
    #[serde(default)]
    pub http: RawHttp,
    /// Graceful shutdown.
    #[serde(default)]
    pub shutdown: RawShutdown,
    /// DPS error notifications from MESH (optional; see `docs/dps-errors.md`).
    #[serde(default)]
    pub mesh: Option<mesh::RawMesh>,
}

/// `[mapping]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// `collection` or `message` (the ADS IG does not say; see docs/mapping.md).
    #[serde(default = "default_bundle_type")]
    pub bundle_type: String,
    /// ADS-BundleType code in `Bundle.meta.tag`: `mvp`, `bundle-1`, `bundle-2` or `epr`.
    #[serde(default = "default_ads_bundle_type_code")]
    pub ads_bundle_type_code: String,
    /// Spelling of NHS England code-system URIs: `as-published`, `with-r4` or `without-r4`.
    #[serde(default = "default_code_system_style")]
    pub code_system_style: String,
}

/// `[http]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Address for `/metrics`, `/livez`, `/readyz`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

/// `[shutdown]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// On SIGTERM, finish in-flight work and commit within this many seconds.
    #[serde(default = "default_drain_s")]
    pub drain_timeout_s: u64,
}

fn default_ads_bundle_type_code() -> String {
    "mvp".into()
}
fn default_code_system_style() -> String {
    "as-published".into()
}
fn default_bundle_type() -> String {
    "collection".into()
}
fn default_listen() -> String {
    "0.0.0.0:9464".into()
}
fn default_drain_s() -> u64 {
    20
}

impl Default for RawMapping {
    fn default() -> Self {
        Self {
            bundle_type: default_bundle_type(),
            ads_bundle_type_code: default_ads_bundle_type_code(),
            code_system_style: default_code_system_style(),
        }
    }
}
impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}
impl Default for RawShutdown {
    fn default() -> Self {
        Self {
            drain_timeout_s: default_drain_s(),
        }
    }
}

/// The validated configuration every stage reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka settings.
    pub kafka: KafkaConfig,
    /// Where and how to submit.
    pub api: ApiConfig,
    /// Process-wide rate limit.
    pub rate_limit: RateLimitConfig,
    /// Submission assembly.
    pub batch: BatchConfig,
    /// FHIR payload choices.
    pub mapping: MappingOptions,
    /// Operations port.
    pub http_listen: SocketAddr,
    /// Drain deadline on SIGTERM.
    pub drain_timeout: Duration,
    /// The MESH poller, when `[mesh]` is configured.
    pub mesh: Option<mesh::MeshConfig>,
}

impl Config {
    /// Reads `path` and the `ADS__…` environment, then validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::file_exact(path)))
    }

    /// Parses TOML text plus the `ADS__…` environment (tests and the demo use this).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = figment
            .merge(Env::prefixed("ADS__").split("__"))
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        raw.validate()
    }
}

impl RawConfig {
    /// Checks every value and cross-field rule; returns the only type the stages see.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let kafka = self.kafka.validate()?;
        let api = self.nhs_api.validate()?;
        let drain_timeout = Duration::from_secs(self.shutdown.drain_timeout_s);
        if drain_timeout >= kafka.session_timeout {
            return Err(invalid(
                "shutdown.drain_timeout_s",
                format!(
                    "must be below kafka.session_timeout_ms ({} ms) so a draining consumer keeps its partitions",
                    kafka.session_timeout.as_millis()
                ),
                "20",
            ));
        }
        if self.rate_limit.requests_per_minute == 0 {
            return Err(invalid(
                "rate_limit.requests_per_minute",
                "must be positive",
                "1800",
            ));
        }
        if self.rate_limit.burst == 0 || self.rate_limit.burst > self.rate_limit.requests_per_minute
        {
            return Err(invalid(
                "rate_limit.burst",
                "must be positive and at most requests_per_minute",
                "1",
            ));
        }
        let mode = match self.batch.mode.as_str() {
            "batch" => SubmissionMode::Batch,
            "single" => SubmissionMode::Single,
            _ => {
                return Err(invalid(
                    "batch.mode",
                    "must be `batch` or `single`",
                    "batch",
                ))
            }
        };
        if self.batch.max_calls == 0 {
            return Err(invalid("batch.max_calls", "must be positive", "100"));
        }
        if self.batch.max_bytes < 1024 {
            return Err(invalid(
                "batch.max_bytes",
                "must be at least 1024",
                "4194304",
            ));
        }
        let bundle_type = match self.mapping.bundle_type.as_str() {
            "collection" => BundleType::Collection,
            "message" => BundleType::Message,
            _ => {
                return Err(invalid(
                    "mapping.bundle_type",
                    "must be `collection` or `message`",
                    "collection",
                ))
            }
        };
        let ads_bundle_type_code = match self.mapping.ads_bundle_type_code.as_str() {
            code @ ("mvp" | "bundle-1" | "bundle-2" | "epr") => code.to_string(),
            _ => {
                return Err(invalid(
                    "mapping.ads_bundle_type_code",
                    "must be `mvp`, `bundle-1`, `bundle-2` or `epr`",
                    "mvp",
                ))
            }
        };
        let code_system_style = match self.mapping.code_system_style.as_str() {
            "as-published" => CodeSystemStyle::AsPublished,
            "with-r4" => CodeSystemStyle::WithR4,
            "without-r4" => CodeSystemStyle::WithoutR4,
            _ => {
                return Err(invalid(
                    "mapping.code_system_style",
                    "must be `as-published`, `with-r4` or `without-r4`",
                    "as-published",
                ))
            }
        };
        let http_listen = self.http.listen.parse().map_err(|_| {
            invalid(
                "http.listen",
                "must be an address with a port",
                "0.0.0.0:9464",
            )
        })?;
        Ok(Config {
            kafka,
            api,
            rate_limit: RateLimitConfig {
                requests_per_minute: self.rate_limit.requests_per_minute,
                burst: self.rate_limit.burst,
            },
            batch: BatchConfig {
                mode,
                max_calls: if mode == SubmissionMode::Single {
                    1
                } else {
                    self.batch.max_calls
                },
                max_bytes: self.batch.max_bytes,
                linger: Duration::from_millis(self.batch.linger_ms),
            },
            mapping: MappingOptions {
                bundle_type,
                ads_bundle_type_code,
                code_system_style,
                ..MappingOptions::default()
            },
            http_listen,
            drain_timeout,
            mesh: self.mesh.map(mesh::RawMesh::validate).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MINIMAL: &str = r#"
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

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = format!("{MINIMAL}\n[batch]\nmax_cals = 3\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("max_cals"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key_and_show_an_example() {
        let text = format!("{MINIMAL}\n[batch]\nmode = \"bulk\"\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(
            err.contains("`batch.mode`") && err.contains("e.g."),
            "{err}"
        );
    }

    #[test]
    fn drain_timeout_must_be_below_the_session_timeout() {
        let text = format!("{MINIMAL}\n[shutdown]\ndrain_timeout_s = 60\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("shutdown.drain_timeout_s"), "{err}");
    }
}
