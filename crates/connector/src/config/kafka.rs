//! `[kafka]`: the consumer group, topics and client properties as written ([`RawKafka`]) and
//! validated ([`KafkaConfig`]).
//!
//! Contract: the ack and dead-letter topics are non-empty and differ from each other and from
//! every input topic; the revocation drain is below the session timeout; no secret sits in
//! `properties` (the SASL password is a file path, read elsewhere); `transactional.id` comes only
//! from `kafka.transactional_id`. Errors name the key and show an example.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

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

fn default_group() -> String {
    "ads-connector".into()
}
fn default_session_timeout_ms() -> u64 {
    45_000
}
fn default_revoke_drain_ms() -> u64 {
    10_000
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
