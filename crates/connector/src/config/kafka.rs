//! `[kafka]`: the consumer group, topics and client properties as written ([`RawKafka`]) and
//! validated ([`KafkaConfig`]), and its keys ([`SECTION`]: default, valid values, example,
//! meaning).
//!
//! Contract: the ack and dead-letter topics are non-empty and differ from each other and from
//! every input topic; the revocation drain is below the session timeout; no secret sits in
//! `properties` (the SASL password is a file path, read elsewhere); `transactional.id` comes only
//! from `kafka.transactional_id`. Errors name the key and show an example.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::settings::{Absent, Section, Setting};
use super::ConfigError;

/// `[kafka]`
pub const SECTION: Section = Section {
    name: "kafka",
    about: "The consumer group, the topics and the librdkafka client properties.",
    settings: &[
        BOOTSTRAP_SERVERS,
        GROUP_ID,
        TOPICS,
        ACK_TOPIC,
        DEAD_LETTER_TOPIC,
        SESSION_TIMEOUT_MS,
        REVOKE_DRAIN_TIMEOUT_MS,
        TRANSACTIONAL_ID,
        PROPERTIES,
        SASL_PASSWORD_FILE,
    ],
};
/// `kafka.bootstrap_servers`
pub const BOOTSTRAP_SERVERS: Setting = Setting {
    key: "kafka.bootstrap_servers",
    default: Absent::Required,
    prod_default: None,
    expected: "`host:port[,host:port…]`",
    example: Some("kafka-0.kafka:9092,kafka-1.kafka:9092"),
    meaning: "the brokers to bootstrap from",
};
/// `kafka.group_id`
pub const GROUP_ID: Setting = Setting {
    key: "kafka.group_id",
    default: Absent::Value("ads-connector"),
    prod_default: None,
    expected: "a consumer group id",
    example: None,
    meaning: "consumer group shared by all replicas (cooperative-sticky assignor)",
};
/// `kafka.topics`
pub const TOPICS: Setting = Setting {
    key: "kafka.topics",
    default: Absent::Required,
    prod_default: None,
    expected: "a list of at least one non-empty topic",
    example: Some("[\"cad.calls\"]"),
    meaning: "topics carrying `cad.call.v1` records",
};
/// `kafka.ack_topic`
pub const ACK_TOPIC: Setting = Setting {
    key: "kafka.ack_topic",
    default: Absent::Required,
    prod_default: None,
    expected: "a topic that is not an input topic",
    example: Some("ads.acks"),
    meaning: "receives one `ads.ack.v1` record per consumed record",
};
/// `kafka.dead_letter_topic`
pub const DEAD_LETTER_TOPIC: Setting = Setting {
    key: "kafka.dead_letter_topic",
    default: Absent::Required,
    prod_default: None,
    expected: "a topic that is neither an input topic nor `kafka.ack_topic`",
    example: Some("ads.dead-letters"),
    meaning: "receives records that cannot be submitted",
};
/// `kafka.session_timeout_ms`
pub const SESSION_TIMEOUT_MS: Setting = Setting {
    key: "kafka.session_timeout_ms",
    default: Absent::Value("45000"),
    prod_default: None,
    expected: "milliseconds, above the drain deadlines",
    example: None,
    meaning: "consumer session timeout; `kafka.revoke_drain_timeout_ms` and \
              `shutdown.drain_timeout_s` must be below it",
};
/// `kafka.revoke_drain_timeout_ms`
pub const REVOKE_DRAIN_TIMEOUT_MS: Setting = Setting {
    key: "kafka.revoke_drain_timeout_ms",
    default: Absent::Value("10000"),
    prod_default: None,
    expected: "milliseconds, below `kafka.session_timeout_ms`",
    example: None,
    meaning: "on revocation, wait this long for the partitions' in-flight records to be acked, \
              then commit and hand over",
};
/// `kafka.transactional_id`
pub const TRANSACTIONAL_ID: Setting = Setting {
    key: "kafka.transactional_id",
    default: Absent::Unset("none (at-least-once mode)"),
    prod_default: None,
    expected: "a non-empty id, unique per replica",
    example: Some("ads-connector-0"),
    meaning: "turns on transactional mode: acks, dead letters and offsets in one Kafka \
              transaction; must be unique per replica and stable across its restarts (e.g. the \
              pod name, through `ADS__KAFKA__TRANSACTIONAL_ID`); ack-topic readers should then \
              use `isolation.level=read_committed`",
};
/// `kafka.properties`
pub const PROPERTIES: Setting = Setting {
    key: "kafka.properties",
    default: Absent::Unset("`{}` (none)"),
    prod_default: None,
    expected: "a table of librdkafka properties without secrets and without `transactional.id`",
    example: Some("{ \"security.protocol\" = \"SASL_SSL\" }"),
    meaning: "extra librdkafka properties for consumer and producer (`security.protocol`, \
              `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, …); secrets are refused here \
              (use `kafka.sasl_password_file`), and `transactional.id` too (use \
              `kafka.transactional_id`)",
};
/// `kafka.sasl_password_file`
pub const SASL_PASSWORD_FILE: Setting = Setting {
    key: "kafka.sasl_password_file",
    default: Absent::Unset("none"),
    prod_default: None,
    expected: "a file path",
    example: Some("/var/run/secrets/kafka/password"),
    meaning: "file whose content becomes `sasl.password` (secret)",
};

/// `[kafka]` as written: each field is the key of that name in [`SECTION`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// [`BOOTSTRAP_SERVERS`]
    pub bootstrap_servers: String,
    /// [`GROUP_ID`]
    #[serde(default = "default_group")]
    pub group_id: String,
    /// [`TOPICS`]
    pub topics: Vec<String>,
    /// [`ACK_TOPIC`]
    pub ack_topic: String,
    /// [`DEAD_LETTER_TOPIC`]
    pub dead_letter_topic: String,
    /// [`SESSION_TIMEOUT_MS`]
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// [`REVOKE_DRAIN_TIMEOUT_MS`]
    #[serde(default = "default_revoke_drain_ms")]
    pub revoke_drain_timeout_ms: u64,
    /// [`PROPERTIES`]
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// [`SASL_PASSWORD_FILE`]
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// [`TRANSACTIONAL_ID`]
    #[serde(default)]
    pub transactional_id: Option<String>,
}

fn default_group() -> String {
    GROUP_ID.parsed_default()
}
fn default_session_timeout_ms() -> u64 {
    SESSION_TIMEOUT_MS.parsed_default()
}
fn default_revoke_drain_ms() -> u64 {
    REVOKE_DRAIN_TIMEOUT_MS.parsed_default()
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

impl RawKafka {
    pub(super) fn validate(self) -> Result<KafkaConfig, ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(BOOTSTRAP_SERVERS.error("must not be empty"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(TOPICS.error("must list at least one non-empty topic"));
        }
        for (setting, topic) in [
            (ACK_TOPIC, &self.ack_topic),
            (DEAD_LETTER_TOPIC, &self.dead_letter_topic),
        ] {
            if topic.trim().is_empty() {
                return Err(setting.error("must not be empty"));
            }
            if self.topics.contains(topic) {
                return Err(setting.error("must differ from every input topic"));
            }
        }
        if self.revoke_drain_timeout_ms >= self.session_timeout_ms {
            return Err(REVOKE_DRAIN_TIMEOUT_MS.error(format!(
                "must be below kafka.session_timeout_ms ({} ms)",
                self.session_timeout_ms
            )));
        }
        if self.ack_topic == self.dead_letter_topic {
            return Err(DEAD_LETTER_TOPIC.error("must differ from kafka.ack_topic"));
        }
        if self
            .transactional_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(
                TRANSACTIONAL_ID.error("must not be empty (leave it out for at-least-once mode)")
            );
        }
        if self.properties.contains_key("transactional.id") {
            return Err(
                PROPERTIES.error("must not set `transactional.id`; use kafka.transactional_id")
            );
        }
        for key in self.properties.keys() {
            if key.starts_with("sasl.password") || key == "ssl.key.password" {
                // The example is where the secret goes instead.
                return Err(ConfigError::Invalid {
                    key: PROPERTIES.key,
                    problem: format!(
                        "must not carry the secret `{key}`; use kafka.sasl_password_file"
                    ),
                    example: SASL_PASSWORD_FILE.example(),
                });
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

#[cfg(test)]
mod tests {
    use crate::config::tests::MINIMAL;
    use crate::config::Config;

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
}
