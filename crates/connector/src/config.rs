//! Configuration: one TOML file plus `ADS__SECTION__KEY` environment overrides.
//!
//! Input: a TOML file and the process environment. Output: a validated [`Config`]; only validated
//! types reach the stages ("parse, don't validate"). Unknown keys are rejected, in the file and in
//! `ADS__…` variables. Validation errors name the key and show an example value. Secrets are file
//! paths, never values, and nothing here reads them: [`crate::auth`] reads the key file when it
//! mints a token.
//!
//! Every key's default, valid values, example and meaning are written once, as a
//! [`Setting`] const beside the struct that reads it; [`SECTIONS`] lists them all. The serde
//! default functions and the validation errors take their values from there, and
//! `docs/configuration.md` is rendered from there ([`docs::markdown`]; `tests/configuration_docs.rs`
//! fails when the file differs and rewrites it with `ADS_UPDATE_DOCS=1`, and fails when a key the
//! structs accept ([`accepted_keys`]) has no `Setting`, or the other way round).
//!
//! Layout: this file holds loading, the whole-file types ([`RawConfig`], [`Config`]) with the
//! checks that span sections, the small `[mapping]`, `[http]` and `[shutdown]` sections, and
//! [`ConfigError`]. One section each, raw and validated, with its `Setting`s: `config/kafka.rs`
//! (`[kafka]`), `config/nhs_api.rs` (`[nhs_api]`, `[nhs_api.request]`, the environments' URLs),
//! `config/rate_limit.rs` (`[rate_limit]`), `config/batch.rs` (`[batch]`) and `config/mesh.rs`
//! (`[mesh]`). `config/settings.rs` is the [`Setting`] type, `config/docs.rs` the docs renderer.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::mapping::{BundleType, CodeSystemStyle, MappingOptions};

pub mod batch;
pub mod docs;
pub mod kafka;
pub mod mesh;
pub mod nhs_api;
pub mod rate_limit;
pub mod schedule;
pub mod settings;

pub use batch::{BatchConfig, RawBatch, SubmissionMode};
pub use kafka::{KafkaConfig, RawKafka};
pub use nhs_api::{ApiConfig, AuthConfig, Preset, RawNhsApi, RawRequest, PRESETS};
pub use rate_limit::{RateLimitConfig, RawRateLimit};
pub use settings::{Absent, Section, Setting};

/// Every section's keys, in the order `docs/configuration.md` lists them.
pub const SECTIONS: &[Section] = &[
    kafka::SECTION,
    nhs_api::SECTION,
    nhs_api::REQUEST_SECTION,
    rate_limit::SECTION,
    batch::SECTION,
    MAPPING,
    HTTP,
    SHUTDOWN,
    schedule::SECTION,
    mesh::SECTION,
];

/// Every dotted key the file accepts, as the serde fields of [`RawConfig`] say (tests compare
/// it with [`SECTIONS`]).
///
/// # Errors
/// A field type the walker cannot follow ([`settings::accepted_keys`]).
pub fn accepted_keys() -> Result<Vec<String>, serde::de::value::Error> {
    settings::accepted_keys::<RawConfig>()
}

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

/// The file as written; its keys are [`SECTIONS`] (rendered in `docs/configuration.md`).
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
    /// When submissions run (`continuous`, or NHS England's daily window).
    #[serde(default)]
    pub schedule: crate::schedule::ScheduleConfig,
    /// DPS error notifications from MESH (optional; see `docs/dps-errors.md`).
    #[serde(default)]
    pub mesh: Option<mesh::RawMesh>,
}

/// `[mapping]`
pub const MAPPING: Section = Section {
    name: "mapping",
    about: "Choices about the FHIR payload where the ADS IG is not public (`docs/mapping.md`).",
    settings: &[BUNDLE_TYPE, ADS_BUNDLE_TYPE_CODE, CODE_SYSTEM_STYLE],
};
/// `mapping.bundle_type` values.
const COLLECTION: &str = "collection";
const MESSAGE: &str = "message";
/// `mapping.bundle_type`
pub const BUNDLE_TYPE: Setting = Setting {
    key: "mapping.bundle_type",
    default: Absent::Value(COLLECTION),
    prod_default: None,
    expected: "`collection` or `message`",
    example: None,
    meaning: "the call Bundle's type (the ADS IG does not say; see `docs/mapping.md`)",
};
/// `mapping.ads_bundle_type_code` values.
const ADS_BUNDLE_TYPE_CODES: [&str; 4] = ["mvp", "bundle-1", "bundle-2", "epr"];
/// `mapping.ads_bundle_type_code`
pub const ADS_BUNDLE_TYPE_CODE: Setting = Setting {
    key: "mapping.ads_bundle_type_code",
    default: Absent::Value(ADS_BUNDLE_TYPE_CODES[0]),
    prod_default: None,
    expected: "`mvp`, `bundle-1`, `bundle-2` or `epr`",
    example: None,
    meaning: "ADS-BundleType code in `Bundle.meta.tag`",
};
/// `mapping.code_system_style` values.
const AS_PUBLISHED: &str = "as-published";
const WITH_R4: &str = "with-r4";
const WITHOUT_R4: &str = "without-r4";
/// `mapping.code_system_style`
pub const CODE_SYSTEM_STYLE: Setting = Setting {
    key: "mapping.code_system_style",
    default: Absent::Value(AS_PUBLISHED),
    prod_default: None,
    expected: "`as-published`, `with-r4` or `without-r4`",
    example: None,
    meaning: "spelling of NHS England code-system URIs, which the IG itself spells both ways: \
              `as-published`, `with-r4` (`https://fhir.nhs.uk/R4/CodeSystem/…`) or `without-r4`",
};

/// `[http]`
pub const HTTP: Section = Section {
    name: "http",
    about: "The operations port.",
    settings: &[LISTEN],
};
/// `http.listen`
pub const LISTEN: Setting = Setting {
    key: "http.listen",
    default: Absent::Value("0.0.0.0:9464"),
    prod_default: None,
    expected: "an address with a port",
    example: None,
    meaning: "address of `/metrics`, `/livez`, `/readyz`",
};

/// `[shutdown]`
pub const SHUTDOWN: Section = Section {
    name: "shutdown",
    about: "Graceful shutdown.",
    settings: &[DRAIN_TIMEOUT_S],
};
/// `shutdown.drain_timeout_s`
pub const DRAIN_TIMEOUT_S: Setting = Setting {
    key: "shutdown.drain_timeout_s",
    default: Absent::Value("20"),
    prod_default: None,
    expected: "a number of seconds below `kafka.session_timeout_ms`",
    example: None,
    meaning: "on SIGTERM, finish in-flight work and commit within this many seconds",
};

/// `[mapping]` as written: each field is the key of that name in [`MAPPING`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// [`BUNDLE_TYPE`]
    #[serde(default = "default_bundle_type")]
    pub bundle_type: String,
    /// [`ADS_BUNDLE_TYPE_CODE`]
    #[serde(default = "default_ads_bundle_type_code")]
    pub ads_bundle_type_code: String,
    /// [`CODE_SYSTEM_STYLE`]
    #[serde(default = "default_code_system_style")]
    pub code_system_style: String,
}

/// `[http]` as written: each field is the key of that name in [`HTTP`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// [`LISTEN`]
    #[serde(default = "default_listen")]
    pub listen: String,
}

/// `[shutdown]` as written: each field is the key of that name in [`SHUTDOWN`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// [`DRAIN_TIMEOUT_S`]
    #[serde(default = "default_drain_s")]
    pub drain_timeout_s: u64,
}

fn default_ads_bundle_type_code() -> String {
    ADS_BUNDLE_TYPE_CODE.parsed_default()
}
fn default_code_system_style() -> String {
    CODE_SYSTEM_STYLE.parsed_default()
}
fn default_bundle_type() -> String {
    BUNDLE_TYPE.parsed_default()
}
fn default_listen() -> String {
    LISTEN.parsed_default()
}
fn default_drain_s() -> u64 {
    DRAIN_TIMEOUT_S.parsed_default()
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
    /// The token endpoint's budget and the `Retry-After` cap (`[nhs_api]`, `[nhs_api.request]`).
    pub pacing: nhs_api::Pacing,
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
    /// When submissions run (`[schedule]`).
    pub schedule: crate::schedule::Schedule,
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
        let mesh = self.mesh.map(mesh::RawMesh::validate).transpose()?;
        if let Some(mesh) = &mesh {
            kafka::refuse_input_matching(
                &kafka.topics,
                &mesh.errors_topic,
                mesh::ERRORS_TOPIC.key,
            )?;
        }
        let schedule = schedule::validate(&self.schedule, &self.nhs_api.environment)?;
        let environment = self.nhs_api.environment.clone();
        let pacing = self.nhs_api.pacing()?;
        let api = self.nhs_api.validate()?;
        let drain_timeout = Duration::from_secs(self.shutdown.drain_timeout_s);
        if drain_timeout >= kafka.session_timeout {
            return Err(DRAIN_TIMEOUT_S.error(format!(
                "must be below kafka.session_timeout_ms ({} ms) so a draining consumer keeps its partitions",
                kafka.session_timeout.as_millis()
            )));
        }
        if self.rate_limit.requests_per_minute == 0 {
            return Err(rate_limit::REQUESTS_PER_MINUTE.invalid());
        }
        if self.rate_limit.burst == 0 || self.rate_limit.burst > self.rate_limit.requests_per_minute
        {
            return Err(rate_limit::BURST.invalid());
        }
        let mode = batch::mode_for(self.batch.mode.as_deref(), &environment)?;
        if self.batch.linger_ms > 600_000 {
            return Err(batch::LINGER_MS.invalid());
        }
        if !(1..=100_000).contains(&self.batch.max_calls) {
            return Err(batch::MAX_CALLS.invalid());
        }
        if self.batch.max_bytes < 1024 {
            return Err(batch::MAX_BYTES.invalid());
        }
        let bundle_type = match self.mapping.bundle_type.as_str() {
            COLLECTION => BundleType::Collection,
            MESSAGE => BundleType::Message,
            _ => return Err(BUNDLE_TYPE.invalid()),
        };
        let ads_bundle_type_code = match self.mapping.ads_bundle_type_code.as_str() {
            code if ADS_BUNDLE_TYPE_CODES.contains(&code) => code.to_string(),
            _ => return Err(ADS_BUNDLE_TYPE_CODE.invalid()),
        };
        let code_system_style = match self.mapping.code_system_style.as_str() {
            AS_PUBLISHED => CodeSystemStyle::AsPublished,
            WITH_R4 => CodeSystemStyle::WithR4,
            WITHOUT_R4 => CodeSystemStyle::WithoutR4,
            _ => return Err(CODE_SYSTEM_STYLE.invalid()),
        };
        let http_listen = self.http.listen.parse().map_err(|_| LISTEN.invalid())?;
        Ok(Config {
            kafka,
            api,
            pacing,
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
            mesh,
            schedule,
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
        [batch]
        mode = "batch"
    "#;

    /// [`MINIMAL`] with `line` added to its `[section]` (a table of its own if it has none).
    fn with_key(section: &str, line: &str) -> String {
        let header = format!("[{section}]\n");
        if MINIMAL.contains(&header) {
            MINIMAL.replacen(&header, &format!("{header}{line}\n"), 1)
        } else {
            format!("{MINIMAL}\n{header}{line}\n")
        }
    }

    #[test]
    fn a_secret_where_its_path_belongs_is_refused_naming_the_key_but_not_the_secret() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        let text = MINIMAL.replace(
            "private_key_file = \"/keys/key.pem\"",
            &format!("private_key_file = \"\"\"{pem}\"\"\""),
        );
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("`nhs_api.private_key_file`"), "{err}");
        assert!(!err.contains("MIIEvQ"), "{err}");
        let jwt = "eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl";
        let text = MINIMAL.replace("/keys/api-key", jwt);
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("`nhs_api.api_key_file`"), "{err}");
        assert!(!err.contains("eyJ"), "{err}");
    }

    #[test]
    fn numbers_out_of_their_documented_range_are_refused_not_left_to_panic() {
        for (section, key, value, name) in [
            (
                "nhs_api.request",
                "max_in_flight",
                "9223372036854775807",
                "nhs_api.request.max_in_flight",
            ),
            ("batch", "max_calls", "0", "batch.max_calls"),
            ("batch", "max_calls", "1000000000", "batch.max_calls"),
            (
                "batch",
                "linger_ms",
                "9223372036854775807",
                "batch.linger_ms",
            ),
        ] {
            let text = with_key(section, &format!("{key} = {value}"));
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("`{name}`")), "{name}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = with_key("batch", "max_cals = 3");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("max_cals"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key_and_show_an_example() {
        let text = MINIMAL.replace("mode = \"batch\"", "mode = \"bulk\"");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(
            err.contains("`batch.mode`") && err.contains("e.g."),
            "{err}"
        );
    }

    #[test]
    fn int_and_prod_refuse_a_left_out_batch_mode_saying_why_and_other_environments_default_it() {
        let without = MINIMAL.replace("mode = \"batch\"", "");
        for environment in ["int", "prod"] {
            let text = without.replace(
                "environment = \"int\"",
                &format!("environment = \"{environment}\""),
            );
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            for part in [
                "`batch.mode` must be set",
                &format!("`nhs_api.environment` is `{environment}`"),
                "`batch`",
                "`single`",
                "does not publish",
                "confirm it with NHS England during onboarding",
            ] {
                assert!(err.contains(part), "{environment}: no {part:?} in {err}");
            }
        }
        let single = MINIMAL.replace("mode = \"batch\"", "mode = \"single\"");
        let config = Config::from_toml_str(&single).unwrap();
        assert_eq!(config.batch.mode, SubmissionMode::Single);
        let sandbox = without
            .replace("environment = \"int\"", "environment = \"sandbox\"")
            .replace("kid = \"int-1\"", "");
        let config = Config::from_toml_str(&sandbox).unwrap();
        assert_eq!(config.batch.mode, SubmissionMode::Batch);
    }

    #[test]
    fn drain_timeout_must_be_below_the_session_timeout() {
        let text = format!("{MINIMAL}\n[shutdown]\ndrain_timeout_s = 60\n");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("shutdown.drain_timeout_s"), "{err}");
    }

    fn settings() -> impl Iterator<Item = (&'static Section, &'static Setting)> {
        SECTIONS
            .iter()
            .flat_map(|section| section.settings.iter().map(move |s| (section, s)))
    }

    /// A TOML value as the table writes it: a TOML literal as is, anything else as a string.
    fn toml_value(text: &str) -> String {
        if toml::from_str::<toml::Table>(&format!("v = {text}")).is_ok() {
            text.to_owned()
        } else {
            format!("{text:?}")
        }
    }

    /// The TOML file of `values` (dotted key, value as the table writes it).
    fn toml_of<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut tables = std::collections::BTreeMap::<&str, String>::new();
        for (key, value) in values {
            let (table, name) = key.rsplit_once('.').unwrap();
            let lines = tables.entry(table).or_default();
            lines.push_str(&format!("{name} = {}\n", toml_value(value)));
        }
        tables
            .iter()
            .map(|(table, lines)| format!("[{table}]\n{lines}"))
            .collect()
    }

    /// Every key set to its example, except `skip`.
    fn examples_without(skip: &str) -> Vec<(&'static str, &'static str)> {
        settings()
            .map(|(_, s)| (s.key, s.example()))
            .filter(|(key, _)| *key != skip)
            .collect()
    }

    /// Parsed only, without the environment and without validation.
    fn raw(text: &str) -> Result<RawConfig, String> {
        Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_setting_sits_in_its_section_with_an_example_and_a_meaning() {
        let mut seen = std::collections::BTreeSet::new();
        for (section, s) in settings() {
            assert_eq!(s.key, format!("{}.{}", section.name, s.name()), "{s:?}");
            assert!(seen.insert(s.key), "`{}` is in the tables twice", s.key);
            assert!(!s.example().is_empty(), "`{}` has no example", s.key);
            assert!(!s.meaning.is_empty() && !s.expected.is_empty(), "{s:?}");
            assert!(
                s.prod_default.is_none() || matches!(s.default, Absent::Value(_)),
                "`{}`: a prod default needs a default",
                s.key
            );
        }
    }

    #[test]
    fn the_examples_together_are_a_valid_configuration() {
        let text = toml_of(examples_without(""));
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }

    #[test]
    fn exactly_the_keys_the_table_calls_required_are_required_by_the_parser() {
        for (_, s) in settings() {
            let result = raw(&toml_of(examples_without(s.key)));
            if s.default == Absent::Required {
                let err = result
                    .err()
                    .unwrap_or_else(|| panic!("`{}` is not required", s.key));
                assert!(
                    err.contains(&format!("missing field `{}`", s.name())),
                    "{}: {err}",
                    s.key
                );
            } else if let Err(e) = result {
                panic!(
                    "`{}` is required by the parser, the table says {:?}: {e}",
                    s.key, s.default
                );
            }
        }
    }

    #[test]
    fn an_absent_key_takes_the_table_default() {
        for (_, s) in settings() {
            let Absent::Value(default) = s.default else {
                continue;
            };
            let without = examples_without(s.key);
            let mut with = without.clone();
            with.push((s.key, default));
            if s.key == "schedule.mode" {
                // Left out beside `schedule.window` it is refused outside `prod` rather than
                // defaulted (schedule::config's tests), so the comparison does not apply.
                continue;
            }
            if s.key.starts_with("schedule.") {
                // `[schedule]` keeps an absent key absent (its default depends on
                // `nhs_api.environment`); what counts is the validated schedule.
                let schedule = |keys| Config::from_toml_str(&toml_of(keys)).unwrap().schedule;
                assert_eq!(
                    schedule(without),
                    schedule(with),
                    "`{}`: a left-out key is not `{default}`",
                    s.key
                );
                continue;
            }
            assert_eq!(
                format!("{:?}", raw(&toml_of(without)).unwrap()),
                format!("{:?}", raw(&toml_of(with)).unwrap()),
                "`{}`: a left-out key is not `{default}`",
                s.key
            );
        }
    }

    #[test]
    fn errors_take_the_key_and_the_example_from_the_table() {
        let text = format!("{MINIMAL}\n[nhs_api.request]\ntimeout_ms = 0\n");
        assert_eq!(
            Config::from_toml_str(&text).unwrap_err().to_string(),
            "`nhs_api.request.timeout_ms` must be a positive number of milliseconds, e.g. `30000`"
        );
    }
}
