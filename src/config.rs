//! Configuration: one TOML file plus `ADS__SECTION__KEY` environment overrides.
//!
//! Input: a TOML file (every key documented in `docs/configuration.md` and the README) and the
//! process environment. Output: a validated [`Config`]; only validated types reach the stages
//! ("parse, don't validate"). Unknown keys are rejected, in the file and in `ADS__…` variables.
//! Validation errors name the key and show an example value. Secrets are file paths, never values,
//! and nothing here reads them: [`crate::auth`] reads the key file when it mints a token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use url::Url;

use crate::mapping::{BundleType, CodeSystemStyle, MappingOptions};

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
    pub mesh: Option<crate::mesh::RawMesh>,
}

/// `[kafka]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Consumer group id shared by all replicas.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Topics carrying `cad.call.v1` records.
    pub topics: Vec<String>,
    /// Topic receiving one `ads.ack.v1` record per consumed record.
    pub ack_topic: String,
    /// Topic receiving records that cannot be submitted.
    pub dead_letter_topic: String,
    /// Consumer session timeout; the drain deadline must be below it.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// On revocation, wait this long for the partitions' in-flight records before handing
    /// them over; must be below the session timeout.
    #[serde(default = "default_revoke_drain_ms")]
    pub revoke_drain_timeout_ms: u64,
    /// Extra librdkafka properties for consumer and producer (TLS, SASL mechanism, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// File holding the SASL password (sets `sasl.password`); never put the value in the file.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// Turns on transactional mode: acks, dead letters and offsets in one Kafka transaction.
    /// Must be unique per replica and stable across its restarts (e.g. the pod name, through
    /// `ADS__KAFKA__TRANSACTIONAL_ID`).
    #[serde(default)]
    pub transactional_id: Option<String>,
}

/// `[nhs_api]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNhsApi {
    /// `sandbox`, `int`, `prod` or `custom` (then `base_url` and `token_url` are required).
    pub environment: String,
    /// `current` (`/$process-message`, platform `/oauth2/token`) or `legacy-2021`.
    #[serde(default = "default_paths")]
    pub paths: String,
    /// Overrides the environment's API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Overrides the environment's token URL (also the JWT `aud`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// File holding the application's API key (JWT `iss` and `sub`). Not needed for `sandbox`.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// PEM file of the RSA private key registered with the app (re-read on every token).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// Key id (`kid`) of that key in the app's JWKS.
    #[serde(default)]
    pub kid: Option<String>,
    /// Request timeout, retries and concurrency.
    #[serde(default)]
    pub request: RawRequest,
    /// Refresh the token when this fraction of its lifetime has passed.
    #[serde(default = "default_refresh_fraction")]
    pub token_refresh_fraction: f64,
}

/// `[nhs_api.request]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// Per-request timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Submissions in flight at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// First retry backoff; doubles up to `max_backoff_ms`, with full jitter.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Cap of the retry backoff.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Give up and dead-letter after retrying this long; 0 retries forever.
    #[serde(default = "default_max_retry_s")]
    pub max_retry_duration_s: u64,
}

/// `[rate_limit]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// The application's quota, requests per minute, for all replicas together.
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    /// Requests allowed back to back before GCRA spacing applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

/// `[batch]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    /// `batch` (a FHIR batch Bundle of call Bundles) or `single` (one call per POST).
    #[serde(default = "default_batch_mode")]
    pub mode: String,
    /// Most call bundles in one submission.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Most bytes in one submission body.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest a call waits for its submission to fill.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
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

fn default_group() -> String {
    "ads-connector".into()
}
fn default_session_timeout_ms() -> u64 {
    45_000
}
fn default_revoke_drain_ms() -> u64 {
    10_000
}
fn default_paths() -> String {
    "current".into()
}
fn default_refresh_fraction() -> f64 {
    0.75
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_in_flight() -> usize {
    1
}
fn default_initial_backoff_ms() -> u64 {
    250
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_max_retry_s() -> u64 {
    0
}
fn default_rpm() -> u32 {
    1800
}
fn default_burst() -> u32 {
    1
}
fn default_batch_mode() -> String {
    "batch".into()
}
fn default_max_calls() -> usize {
    100
}
fn default_max_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_linger_ms() -> u64 {
    1000
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

impl Default for RawRequest {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            max_in_flight: default_in_flight(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            max_retry_duration_s: default_max_retry_s(),
        }
    }
}
impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            requests_per_minute: default_rpm(),
            burst: default_burst(),
        }
    }
}
impl Default for RawBatch {
    fn default() -> Self {
        Self {
            mode: default_batch_mode(),
            max_calls: default_max_calls(),
            max_bytes: default_max_bytes(),
            linger_ms: default_linger_ms(),
        }
    }
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
    pub mesh: Option<crate::mesh::MeshConfig>,
}

/// Validated `[kafka]`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub bootstrap_servers: String,
    /// Consumer group.
    pub group_id: String,
    /// Input topics.
    pub topics: Vec<String>,
    /// Ack topic.
    pub ack_topic: String,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Revocation drain deadline.
    pub revoke_drain_timeout: Duration,
    /// Extra librdkafka properties.
    pub properties: BTreeMap<String, String>,
    /// SASL password file.
    pub sasl_password_file: Option<PathBuf>,
    /// The producer's `transactional.id`; `Some` means transactional mode.
    pub transactional_id: Option<String>,
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// Open access (the NHS public sandbox): no token.
    None,
    /// Signed JWT client assertion, RS512.
    SignedJwt {
        /// Token endpoint, also the JWT `aud`.
        token_url: Url,
        /// File with the API key.
        api_key_file: PathBuf,
        /// File with the private key PEM.
        private_key_file: PathBuf,
        /// Key id.
        kid: String,
        /// Refresh after this fraction of the lifetime.
        refresh_fraction: f64,
    },
}

/// Validated `[nhs_api]`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Full URL submissions are POSTed to.
    pub submit_url: Url,
    /// Authentication.
    pub auth: AuthConfig,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Submissions in flight.
    pub max_in_flight: usize,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Retry budget; `None` retries forever.
    pub max_retry_duration: Option<Duration>,
}

/// Validated `[rate_limit]`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Burst.
    pub burst: u32,
}

/// One call per POST, or a FHIR `batch` Bundle of call Bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionMode {
    /// A FHIR `batch` Bundle whose entries are call Bundles.
    Batch,
    /// One call Bundle per POST.
    Single,
}

/// Validated `[batch]`.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Submission mode.
    pub mode: SubmissionMode,
    /// Most calls per submission (1 in `single` mode).
    pub max_calls: usize,
    /// Most bytes per submission.
    pub max_bytes: usize,
    /// Linger.
    pub linger: Duration,
}

/// The NHS environments and their URLs (nhs-api.md §1.2).
fn preset(environment: &str, legacy: bool) -> Option<(&'static str, Option<&'static str>)> {
    Some(match (environment, legacy) {
        ("sandbox", false) => (
            "https://sandbox.api.service.nhs.uk/ambulance-data-submission",
            None,
        ),
        ("int", false) => (
            "https://int.api.service.nhs.uk/ambulance-data-submission",
            Some("https://int.api.service.nhs.uk/oauth2/token"),
        ),
        ("prod", false) => (
            "https://api.service.nhs.uk/ambulance-data-submission",
            Some("https://api.service.nhs.uk/oauth2/token"),
        ),
        ("sandbox", true) => (
            "https://sandbox.api.service.nhs.uk/ambulance-analytics",
            None,
        ),
        ("int", true) => (
            "https://int.api.service.nhs.uk/ambulance-analytics",
            Some("https://int.api.service.nhs.uk/ambulance-analytics/token"),
        ),
        ("prod", true) => (
            "https://api.service.nhs.uk/ambulance-analytics",
            Some("https://api.service.nhs.uk/ambulance-analytics/token"),
        ),
        _ => return None,
    })
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
            mesh: self.mesh.map(crate::mesh::RawMesh::validate).transpose()?,
        })
    }
}

impl RawKafka {
    fn validate(self) -> Result<KafkaConfig, ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(invalid(
                "kafka.bootstrap_servers",
                "must not be empty",
                "kafka-0.kafka:9092,kafka-1.kafka:9092",
            ));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(invalid(
                "kafka.topics",
                "must list at least one non-empty topic",
                "[\"cad.calls\"]",
            ));
        }
        for (key, topic) in [
            ("kafka.ack_topic", &self.ack_topic),
            ("kafka.dead_letter_topic", &self.dead_letter_topic),
        ] {
            if topic.trim().is_empty() {
                return Err(invalid(key, "must not be empty", "ads.acks"));
            }
            if self.topics.contains(topic) {
                return Err(invalid(
                    key,
                    "must differ from every input topic",
                    "ads.acks",
                ));
            }
        }
        if self.revoke_drain_timeout_ms >= self.session_timeout_ms {
            return Err(invalid(
                "kafka.revoke_drain_timeout_ms",
                format!(
                    "must be below kafka.session_timeout_ms ({} ms)",
                    self.session_timeout_ms
                ),
                "10000",
            ));
        }
        if self.ack_topic == self.dead_letter_topic {
            return Err(invalid(
                "kafka.dead_letter_topic",
                "must differ from kafka.ack_topic",
                "ads.dead-letters",
            ));
        }
        if self
            .transactional_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(invalid(
                "kafka.transactional_id",
                "must not be empty (leave it out for at-least-once mode)",
                "ads-connector-0",
            ));
        }
        if self.properties.contains_key("transactional.id") {
            return Err(invalid(
                "kafka.properties",
                "must not set `transactional.id`; use kafka.transactional_id",
                "{ \"security.protocol\" = \"SASL_SSL\" }",
            ));
        }
        for key in self.properties.keys() {
            if key.starts_with("sasl.password") || key == "ssl.key.password" {
                return Err(invalid(
                    "kafka.properties",
                    format!("must not carry the secret `{key}`; use kafka.sasl_password_file"),
                    "/var/run/secrets/kafka/password",
                ));
            }
        }
        Ok(KafkaConfig {
            bootstrap_servers: self.bootstrap_servers,
            group_id: self.group_id,
            topics: self.topics,
            ack_topic: self.ack_topic,
            dead_letter_topic: self.dead_letter_topic,
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            revoke_drain_timeout: Duration::from_millis(self.revoke_drain_timeout_ms),
            properties: self.properties,
            sasl_password_file: self.sasl_password_file,
            transactional_id: self.transactional_id,
        })
    }
}

impl RawNhsApi {
    fn validate(self) -> Result<ApiConfig, ConfigError> {
        let legacy = match self.paths.as_str() {
            "current" => false,
            "legacy-2021" => true,
            _ => {
                return Err(invalid(
                    "nhs_api.paths",
                    "must be `current` or `legacy-2021`",
                    "current",
                ))
            }
        };
        let preset = match self.environment.as_str() {
            "custom" => None,
            env => Some(preset(env, legacy).ok_or_else(|| {
                invalid(
                    "nhs_api.environment",
                    "must be `sandbox`, `int`, `prod` or `custom`",
                    "int",
                )
            })?),
        };
        let base = match (&self.base_url, preset) {
            (Some(url), _) => url.clone(),
            (None, Some((url, _))) => url.to_string(),
            (None, None) => {
                return Err(invalid(
                    "nhs_api.base_url",
                    "is required when environment is `custom`",
                    "http://127.0.0.1:8080/ambulance-data-submission",
                ))
            }
        };
        let base = parse_url("nhs_api.base_url", &base)?;
        let submit_path = if legacy {
            "submission"
        } else {
            "$process-message"
        };
        let submit_url = Url::parse(&format!(
            "{}/{submit_path}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| invalid("nhs_api.base_url", "is not a valid URL", "https://…"))?;
        let token_url = match (&self.token_url, preset) {
            (Some(url), _) => Some(parse_url("nhs_api.token_url", url)?),
            (None, Some((_, Some(url)))) => Some(parse_url("nhs_api.token_url", url)?),
            _ => None,
        };
        let auth = match token_url {
            None => AuthConfig::None,
            Some(token_url) => {
                let api_key_file = self.api_key_file.ok_or_else(|| {
                    invalid(
                        "nhs_api.api_key_file",
                        "is required for signed-JWT authentication",
                        "/var/run/secrets/nhs/api-key",
                    )
                })?;
                let private_key_file = self.private_key_file.ok_or_else(|| {
                    invalid(
                        "nhs_api.private_key_file",
                        "is required for signed-JWT authentication",
                        "/var/run/secrets/nhs/private-key.pem",
                    )
                })?;
                let kid = self.kid.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    invalid(
                        "nhs_api.kid",
                        "is required for signed-JWT authentication",
                        "ads-int-1",
                    )
                })?;
                if !(0.1..=0.95).contains(&self.token_refresh_fraction) {
                    return Err(invalid(
                        "nhs_api.token_refresh_fraction",
                        "must be between 0.1 and 0.95",
                        "0.75",
                    ));
                }
                AuthConfig::SignedJwt {
                    token_url,
                    api_key_file,
                    private_key_file,
                    kid,
                    refresh_fraction: self.token_refresh_fraction,
                }
            }
        };
        let r = self.request;
        if r.max_in_flight == 0 {
            return Err(invalid(
                "nhs_api.request.max_in_flight",
                "must be positive",
                "1",
            ));
        }
        if r.timeout_ms == 0 {
            return Err(invalid(
                "nhs_api.request.timeout_ms",
                "must be positive",
                "30000",
            ));
        }
        if r.initial_backoff_ms == 0 || r.initial_backoff_ms > r.max_backoff_ms {
            return Err(invalid(
                "nhs_api.request.initial_backoff_ms",
                "must be positive and at most max_backoff_ms",
                "250",
            ));
        }
        Ok(ApiConfig {
            submit_url,
            auth,
            timeout: Duration::from_millis(r.timeout_ms),
            max_in_flight: r.max_in_flight,
            initial_backoff: Duration::from_millis(r.initial_backoff_ms),
            max_backoff: Duration::from_millis(r.max_backoff_ms),
            max_retry_duration: (r.max_retry_duration_s > 0)
                .then(|| Duration::from_secs(r.max_retry_duration_s)),
        })
    }
}

fn parse_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|_| {
        invalid(
            key,
            "must be an absolute URL with a scheme and host",
            "https://int.api.service.nhs.uk/ambulance-data-submission",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            key,
            "must be an http(s) URL with a host",
            "https://int.api.service.nhs.uk/ambulance-data-submission",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
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
    fn int_preset_sets_submission_and_token_urls() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(
            c.api.submit_url.as_str(),
            "https://int.api.service.nhs.uk/ambulance-data-submission/$process-message"
        );
        match c.api.auth {
            AuthConfig::SignedJwt { token_url, .. } => {
                assert_eq!(
                    token_url.as_str(),
                    "https://int.api.service.nhs.uk/oauth2/token"
                )
            }
            AuthConfig::None => panic!("int needs a token"),
        }
    }

    #[test]
    fn legacy_preset_uses_the_2021_paths() {
        let text = MINIMAL.replace(
            "environment = \"int\"",
            "environment = \"int\"\npaths = \"legacy-2021\"",
        );
        let c = Config::from_toml_str(&text).unwrap();
        assert_eq!(
            c.api.submit_url.as_str(),
            "https://int.api.service.nhs.uk/ambulance-analytics/submission"
        );
    }

    #[test]
    fn sandbox_preset_needs_no_credentials() {
        let text = r#"
            [kafka]
            bootstrap_servers = "k:9092"
            topics = ["t"]
            ack_topic = "a"
            dead_letter_topic = "d"
            [nhs_api]
            environment = "sandbox"
        "#;
        let c = Config::from_toml_str(text).unwrap();
        assert!(matches!(c.api.auth, AuthConfig::None));
    }

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

    #[test]
    fn secrets_are_refused_as_inline_kafka_properties() {
        let text = MINIMAL.replace(
            "dead_letter_topic = \"ads.dlq\"",
            "dead_letter_topic = \"ads.dlq\"\nproperties = { \"sasl.password\" = \"x\" }",
        );
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("sasl_password_file"), "{err}");
    }

    #[test]
    fn a_transactional_id_turns_on_transactional_mode_and_must_not_be_empty() {
        assert_eq!(
            Config::from_toml_str(MINIMAL)
                .unwrap()
                .kafka
                .transactional_id,
            None
        );
        let with = |id: &str| {
            MINIMAL.replace(
                "dead_letter_topic = \"ads.dlq\"",
                &format!("dead_letter_topic = \"ads.dlq\"\ntransactional_id = \"{id}\""),
            )
        };
        let c = Config::from_toml_str(&with("ads-connector-0")).unwrap();
        assert_eq!(c.kafka.transactional_id.as_deref(), Some("ads-connector-0"));
        let err = Config::from_toml_str(&with(" ")).unwrap_err().to_string();
        assert!(err.contains("`kafka.transactional_id`"), "{err}");
        let text = MINIMAL.replace(
            "dead_letter_topic = \"ads.dlq\"",
            "dead_letter_topic = \"ads.dlq\"\nproperties = { \"transactional.id\" = \"x\" }",
        );
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("kafka.transactional_id"), "{err}");
    }

    #[test]
    fn signed_jwt_needs_a_kid() {
        let text = MINIMAL.replace("kid = \"int-1\"", "");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("nhs_api.kid"), "{err}");
    }
}
