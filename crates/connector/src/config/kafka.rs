//! `[kafka]`: the consumer group, topics and client properties as written ([`RawKafka`]) and
//! validated ([`KafkaConfig`]), and its keys ([`SECTION`]: default, valid values, example,
//! meaning).
//!
//! Contract: the ack and dead-letter topics are non-empty and differ from each other and from
//! every input topic; the revocation drain is below the session timeout; no secret sits in
//! `properties` (the SASL password and the TLS key's password are file paths, read by
//! `crate::kafka`); `transactional.id` comes only
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
        MAX_RECORD_BYTES,
        TRANSACTIONAL_ID,
        PROPERTIES,
        SASL_PASSWORD_FILE,
        SSL_KEY_PASSWORD_FILE,
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
/// `kafka.max_record_bytes`
pub const MAX_RECORD_BYTES: Setting = Setting {
    key: "kafka.max_record_bytes",
    default: Absent::Value("900000"),
    prod_default: None,
    expected: "a number of bytes from 1024, at least 100000 below the producer's \
               `message.max.bytes` (librdkafka's default 1000000)",
    example: None,
    meaning: "the largest record (key, value and headers) the connector handles; a larger one \
              is dead-lettered without its value (kind `record_too_large`, with headers \
              `ads-record-size` and `ads-record-sha256`), never crashing or looping. The \
              default leaves room under Kafka's usual 1 MB message limit for the dead letter's \
              own headers",
};
/// The room a dead letter needs above its record for the reason headers.
pub const DEAD_LETTER_HEADROOM: usize = 100_000;
/// librdkafka's default producer `message.max.bytes`.
pub const PRODUCER_MESSAGE_MAX_BYTES: usize = 1_000_000;
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
    expected: "a table of librdkafka properties from the allow-list (security, connection, \
               fetch and batching tuning), without secrets",
    example: Some("{ \"security.protocol\" = \"SASL_SSL\" }"),
    meaning: "extra librdkafka properties for consumer and producer, only from an allow-list \
              (`ALLOWED_PROPERTIES` in `config/kafka.rs`): security (`security.protocol`, \
              `sasl.mechanism`, `sasl.username`, `sasl.oauthbearer.*` except the secret, \
              `ssl.*.location`, `ssl.endpoint.identification.algorithm`, …), client identity, \
              connection, fetch and producer batching tuning, `debug`. Anything that changes \
              offset storing or committing, isolation, the group, delivery or idempotence \
              (`enable.auto.offset.store`, `enable.auto.commit`, `isolation.level`, \
              `auto.offset.reset`, `group.id`, `acks`, `enable.idempotence`, `transactional.id`, \
              …) is refused, and so are secrets whatever their case (use \
              `kafka.sasl_password_file` and `kafka.ssl_key_password_file`). \
              `topic.metadata.propagation.max.ms` (librdkafka's default 30000) is also how long \
              the start-up check waits for an output topic the broker's metadata does not list \
              yet before it stops, naming the topic",
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
/// `kafka.ssl_key_password_file`
pub const SSL_KEY_PASSWORD_FILE: Setting = Setting {
    key: "kafka.ssl_key_password_file",
    default: Absent::Unset("none (the key of `ssl.key.location` is not encrypted)"),
    prod_default: None,
    expected: "a file path",
    example: Some("/var/run/secrets/kafka/tls/key-password"),
    meaning: "file whose content becomes `ssl.key.password` (secret): the password of an \
              encrypted client key for mutual TLS (`ssl.key.location`)",
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
    /// [`MAX_RECORD_BYTES`]
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// [`PROPERTIES`]
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// [`SASL_PASSWORD_FILE`]
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// [`SSL_KEY_PASSWORD_FILE`]
    #[serde(default)]
    pub ssl_key_password_file: Option<PathBuf>,
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

fn default_max_record_bytes() -> usize {
    MAX_RECORD_BYTES.parsed_default()
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
    /// The largest record handled; larger ones are dead-lettered without their value.
    pub max_record_bytes: usize,
    /// Extra librdkafka properties.
    pub properties: BTreeMap<String, String>,
    /// SASL password file.
    pub sasl_password_file: Option<PathBuf>,
    /// The file of the client key's password (`ssl.key.password`).
    pub ssl_key_password_file: Option<PathBuf>,
    /// The producer's `transactional.id`; `Some` means transactional mode.
    pub transactional_id: Option<String>,
    /// How long a topic the broker's metadata does not list yet may take to appear before it
    /// counts as missing ([`TOPIC_PROPAGATION_PROPERTY`] in `properties`, or librdkafka's
    /// default [`TOPIC_PROPAGATION_DEFAULT_MS`]): the start-up check of the output topics waits
    /// this long for one created moments before the connector started.
    pub topic_propagation: Duration,
}

/// librdkafka's `topic.metadata.propagation.max.ms`: "Apache Kafka topic creation is
/// asynchronous and it takes some time for a new topic to propagate throughout the cluster to
/// all brokers. [...] This setting delays marking a topic as non-existent until the configured
/// propagation max time has passed" (librdkafka `CONFIGURATION.md`). On the allow-list; the
/// connector's start-up check of its output topics honours it too.
pub const TOPIC_PROPAGATION_PROPERTY: &str = "topic.metadata.propagation.max.ms";

/// librdkafka's default of [`TOPIC_PROPAGATION_PROPERTY`] (`CONFIGURATION.md`: 30000, range
/// 0 .. 3600000).
pub const TOPIC_PROPAGATION_DEFAULT_MS: u64 = 30_000;

/// The largest [`TOPIC_PROPAGATION_PROPERTY`] librdkafka takes.
const TOPIC_PROPAGATION_MAX_MS: u64 = 3_600_000;

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
        for (setting, topic) in [
            (ACK_TOPIC, &self.ack_topic),
            (DEAD_LETTER_TOPIC, &self.dead_letter_topic),
        ] {
            refuse_input_matching(&self.topics, topic, setting.key)?;
        }
        for key in self.properties.keys() {
            let lower = key.to_ascii_lowercase();
            if is_secret_property(&lower) {
                // The example is where the secret goes instead.
                let file = if lower.starts_with("ssl.") {
                    SSL_KEY_PASSWORD_FILE
                } else {
                    SASL_PASSWORD_FILE
                };
                return Err(ConfigError::Invalid {
                    key: PROPERTIES.key,
                    problem: format!("must not carry the secret `{key}`; use {}", file.key),
                    example: file.example(),
                });
            }
            if !ALLOWED_PROPERTIES.contains(&key.as_str()) {
                let why = if GUARANTEE_PROPERTIES.contains(&lower.as_str()) {
                    "changes offset storing, committing, isolation or delivery, which the \
                     connector's guarantee depends on"
                } else {
                    "is not in the allow-list of librdkafka properties (docs/configuration.md)"
                };
                return Err(PROPERTIES.error(format!("must not set `{key}`: it {why}")));
            }
        }
        if let Some(path) = &self.sasl_password_file {
            SASL_PASSWORD_FILE.secret_path(path)?;
        }
        if let Some(path) = &self.ssl_key_password_file {
            SSL_KEY_PASSWORD_FILE.secret_path(path)?;
        }
        // The dead letter of a record at the limit must still fit the producer's limit.
        let producer_max = match self.properties.get("message.max.bytes") {
            Some(v) => v.parse::<usize>().map_err(|_| {
                PROPERTIES.error("must give `message.max.bytes` as a number of bytes")
            })?,
            None => PRODUCER_MESSAGE_MAX_BYTES,
        };
        if self.max_record_bytes < 1024
            || self.max_record_bytes.saturating_add(DEAD_LETTER_HEADROOM) > producer_max
        {
            return Err(MAX_RECORD_BYTES.error(format!(
                "must be from 1024 to {} (the producer's `message.max.bytes` {producer_max} less {DEAD_LETTER_HEADROOM} for a dead letter's headers)",
                producer_max.saturating_sub(DEAD_LETTER_HEADROOM)
            )));
        }
        let topic_propagation_ms = match self.properties.get(TOPIC_PROPAGATION_PROPERTY) {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= TOPIC_PROPAGATION_MAX_MS)
                .ok_or_else(|| {
                    PROPERTIES.error(format!(
                        "must give `{TOPIC_PROPAGATION_PROPERTY}` as milliseconds from 0 to \
                         {TOPIC_PROPAGATION_MAX_MS}"
                    ))
                })?,
            None => TOPIC_PROPAGATION_DEFAULT_MS,
        };
        Ok(KafkaConfig {
            topic_propagation: Duration::from_millis(topic_propagation_ms),
            bootstrap_servers: self.bootstrap_servers,
            group_id: self.group_id,
            topics: self.topics,
            ack_topic: self.ack_topic,
            dead_letter_topic: self.dead_letter_topic,
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            revoke_drain_timeout: Duration::from_millis(self.revoke_drain_timeout_ms),
            max_record_bytes: self.max_record_bytes,
            properties: self.properties,
            sasl_password_file: self.sasl_password_file,
            ssl_key_password_file: self.ssl_key_password_file,
            transactional_id: self.transactional_id,
        })
    }
}

/// The librdkafka properties `kafka.properties` may set: security, client identity, connection,
/// fetch and producer batching tuning, and debugging. The connector sets every property its
/// guarantee depends on itself (`crate::kafka::KafkaClients`), so nothing here can change how
/// offsets are stored or committed, what a reader sees, or when a write counts as delivered.
pub const ALLOWED_PROPERTIES: &[&str] = &[
    // Security.
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.kerberos.keytab",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    // Client identity and connection.
    "client.id",
    "client.rack",
    "client.dns.lookup",
    "broker.address.family",
    "socket.timeout.ms",
    "socket.keepalive.enable",
    "socket.connection.setup.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    TOPIC_PROPAGATION_PROPERTY,
    "api.version.request",
    "request.timeout.ms",
    // Consumer fetch tuning.
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.message.max.bytes",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.queue.backoff.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "statistics.interval.ms",
    // Producer batching (acks and idempotence stay the connector's).
    "linger.ms",
    "batch.num.messages",
    "batch.size",
    "compression.type",
    "compression.codec",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "message.timeout.ms",
    "message.max.bytes",
    // Debugging.
    "debug",
    "log_level",
];

/// Properties refused because the delivery guarantee depends on them (named in the error).
const GUARANTEE_PROPERTIES: &[&str] = &[
    "enable.auto.offset.store",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "isolation.level",
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "enable.partition.eof",
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "transactional.id",
    "transaction.timeout.ms",
    "message.send.max.retries",
    "retries",
    "bootstrap.servers",
    "metadata.broker.list",
];

/// A property that holds a secret, whatever its case (`SASL.PASSWORD`, `ssl.key.pem`, …).
fn is_secret_property(lower: &str) -> bool {
    lower.contains("password")
        || lower.contains("secret")
        || lower == "ssl.key.pem"
        || lower == "sasl.oauthbearer.config"
}

/// Refuses an input topic that is `output` or, as a librdkafka pattern (`^…`), matches it: the
/// connector would consume its own output and loop for ever.
pub(super) fn refuse_input_matching(
    inputs: &[String],
    output: &str,
    output_key: &'static str,
) -> Result<(), ConfigError> {
    for input in inputs {
        let matches = match input.strip_prefix('^') {
            None => input == output,
            Some(_) => match regex::Regex::new(input) {
                Ok(re) => re.is_match(output),
                Err(_) => {
                    return Err(TOPICS.error(format!(
                        "has a pattern the connector cannot check against `{output_key}`; \
                         write the topics out or use a simpler pattern"
                    )))
                }
            },
        };
        if matches {
            return Err(TOPICS.error(format!(
                "must not name or match `{output_key}` (`{output}`): the connector would \
                 consume its own output and loop"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn the_client_key_password_is_a_file_and_never_an_inline_property() {
        let with = |line: &str| {
            MINIMAL.replace(
                "dead_letter_topic = \"ads.dlq\"",
                &format!("dead_letter_topic = \"ads.dlq\"\n{line}"),
            )
        };
        let err = Config::from_toml_str(&with("properties = { \"ssl.key.password\" = \"x\" }"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.ssl_key_password_file"), "{err}");
        let c =
            Config::from_toml_str(&with("ssl_key_password_file = \"/run/kafka/key-pw\"")).unwrap();
        assert_eq!(
            c.kafka.ssl_key_password_file.as_deref(),
            Some(std::path::Path::new("/run/kafka/key-pw"))
        );
        let err = Config::from_toml_str(&with(
            "ssl_key_password_file = \"-----BEGIN ENCRYPTED PRIVATE KEY-----\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.ssl_key_password_file"), "{err}");
        assert!(!err.contains("BEGIN"), "{err}");
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

    fn with_properties(props: &str) -> Result<Config, String> {
        let text = MINIMAL.replace(
            "dead_letter_topic = \"ads.dlq\"",
            &format!("dead_letter_topic = \"ads.dlq\"\nproperties = {{ {props} }}"),
        );
        Config::from_toml_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_topic_propagation_wait_is_librdkafkas_default_or_the_property_and_a_bad_value_is_refused(
    ) {
        let default = with_properties("").unwrap();
        assert_eq!(default.kafka.topic_propagation, Duration::from_secs(30));
        let set = with_properties("\"topic.metadata.propagation.max.ms\" = \"2500\"").unwrap();
        assert_eq!(set.kafka.topic_propagation, Duration::from_millis(2500));
        for bad in ["soon", "-1", "3600001"] {
            let err = with_properties(&format!(
                "\"topic.metadata.propagation.max.ms\" = \"{bad}\""
            ))
            .unwrap_err();
            assert!(
                err.contains("topic.metadata.propagation.max.ms") && err.contains("3600000"),
                "{err}"
            );
        }
    }

    fn with_topics(topics: &str) -> Result<Config, String> {
        let mut text = String::new();
        for line in MINIMAL.lines() {
            if line.trim_start().starts_with("topics") {
                text.push_str(&format!("topics = {topics}\n"));
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        Config::from_toml_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_topic_pattern_that_matches_the_ack_or_dead_letter_topic_is_refused() {
        let err = with_topics("[\"^.*\"]").unwrap_err();
        assert!(err.contains("`kafka.topics`"), "{err}");
        assert!(err.contains("loop"), "{err}");
        let err = with_topics("[\"cad.calls\", \"^ads\\\\..*\"]").unwrap_err();
        assert!(
            err.contains("kafka.ack_topic") || err.contains("kafka.dead_letter_topic"),
            "{err}"
        );
        assert!(with_topics("[\"^cad\\\\..*\"]").is_ok());
        assert!(with_topics("[\"^(unclosed\"]").is_err());
    }

    #[test]
    fn properties_that_change_the_delivery_guarantee_are_refused_by_name() {
        for key in [
            "enable.auto.offset.store",
            "enable.auto.commit",
            "isolation.level",
            "auto.offset.reset",
            "acks",
            "enable.idempotence",
            "group.id",
        ] {
            let err = with_properties(&format!("\"{key}\" = \"x\"")).unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{err}");
            assert!(err.contains("guarantee"), "{err}");
        }
    }

    #[test]
    fn only_allow_listed_properties_pass_and_secrets_are_refused_whatever_their_case() {
        assert!(with_properties("\"client.id\" = \"x\", \"security.protocol\" = \"SSL\"").is_ok());
        let err = with_properties("\"socket.nagle.disable\" = \"true\"").unwrap_err();
        assert!(err.contains("allow-list"), "{err}");
        for key in [
            "SASL.PASSWORD",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
        ] {
            let err = with_properties(&format!("\"{key}\" = \"hunter2\"")).unwrap_err();
            assert!(err.contains("secret"), "{key}: {err}");
            assert!(!err.contains("hunter2"), "{key}: {err}");
        }
    }
}
