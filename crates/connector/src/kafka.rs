//! Kafka clients: every librdkafka setting the connector makes, in one place, and the one way it
//! writes records durably.
//!
//! Input: the validated `[kafka]` section. Output: [`KafkaClients`], built once per process (the
//! SASL password file is read once, here), which hands out the configuration of each client the
//! connector creates: the source's consumer group, the producer of acks and dead letters (plain
//! or transactional), and the MESH poller's readers and lease consumer. [`produce_all`] writes a
//! set of records and returns only when the broker has acknowledged every one.
//!
//! Failures: a secret file that cannot be read is [`KafkaClientError::Secret`] (fatal: a fault
//! of the configuration); so is a broker that refuses the connector's SASL credentials or TLS
//! ([`KafkaClientError::Refused`], found at start-up by [`KafkaClients::check_security`]
//! instead of librdkafka retrying for ever); a write the broker does not acknowledge is
//! [`ProduceError`] (fatal for the pipeline: nothing past it is committed).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

pub mod headers;

/// A Kafka client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum KafkaClientError {
    /// The SASL password file could not be read (fatal). The message names the key, never the
    /// file's content.
    #[error(transparent)]
    Secret(crate::secret::SecretError),
    /// The brokers refused the SASL credentials or the TLS handshake failed (fatal: a fault of
    /// the configuration). `reason` is librdkafka's, which never contains the password.
    #[error(
        "Kafka refused the connection's security: {reason}. Check `kafka.properties` \
         (`security.protocol`, `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, \
         `ssl.certificate.location`, `ssl.key.location`) and the files of \
         `kafka.sasl_password_file` and `kafka.ssl_key_password_file`"
    )]
    Refused {
        /// What librdkafka reported.
        reason: String,
    },
    /// The probe client of [`KafkaClients::check_security`] could not be created.
    #[error("cannot create a Kafka client: {0}")]
    Client(KafkaError),
}

/// The producer could not deliver (fatal for the pipeline).
#[derive(Debug, thiserror::Error)]
#[error("cannot deliver to Kafka: {0}")]
pub struct ProduceError(#[from] pub KafkaError);

/// The configuration of every Kafka client of the process; see the module header.
#[derive(Clone)]
pub struct KafkaClients {
    base: ClientConfig,
    /// `security.protocol` is SSL or SASL: [`Self::check_security`] has something to check.
    secured: bool,
}

impl std::fmt::Debug for KafkaClients {
    // Not derived: the base configuration holds the SASL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClients").finish_non_exhaustive()
    }
}

impl KafkaClients {
    /// Bootstrap, security and the operator's `kafka.properties`, shared by every client; reads
    /// the SASL password file.
    pub fn new(cfg: &KafkaConfig) -> Result<Self, KafkaClientError> {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &cfg.bootstrap_servers)
            // Without this, small requests on loopback wait for Nagle (measured: 300 vs 680k rec/s).
            .set("socket.nagle.disable", "true");
        for (k, v) in &cfg.properties {
            base.set(k, v);
        }
        if let Some(path) = &cfg.sasl_password_file {
            let password = crate::secret::read("kafka.sasl_password_file", path)
                .map_err(KafkaClientError::Secret)?;
            base.set(
                "sasl.password",
                String::from_utf8_lossy(&password).trim_end(),
            );
        }
        if let Some(path) = &cfg.ssl_key_password_file {
            let password = crate::secret::read("kafka.ssl_key_password_file", path)
                .map_err(KafkaClientError::Secret)?;
            base.set(
                "ssl.key.password",
                String::from_utf8_lossy(&password).trim_end(),
            );
        }
        let secured = cfg
            .properties
            .get("security.protocol")
            .is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"));
        Ok(Self { base, secured })
    }

    /// With TLS or SASL configured, connects once and fails with [`KafkaClientError::Refused`]
    /// if the brokers refuse the credentials or the TLS handshake fails; librdkafka would
    /// otherwise log the refusal and retry for ever while the connector looks healthy. Returns
    /// `Ok` as soon as the brokers answer, and also after `wait` without an answer (brokers
    /// unreachable: not a fault of the configuration, and the clients keep retrying). Blocks.
    pub fn check_security(&self, wait: Duration) -> Result<(), KafkaClientError> {
        if !self.secured {
            return Ok(());
        }
        let probe: BaseConsumer<SecurityProbe> = self
            .base()
            .create_with_context(SecurityProbe::default())
            .map_err(KafkaClientError::Client)?;
        let deadline = Instant::now() + wait;
        loop {
            let answered = probe
                .client()
                .fetch_metadata(None, Duration::from_millis(500));
            // Serves the error events that carry librdkafka's reason.
            let _ = probe.poll(Duration::from_millis(50));
            if let Some(reason) = probe.context().refusal() {
                return Err(KafkaClientError::Refused { reason });
            }
            match answered {
                Ok(_) => return Ok(()),
                Err(KafkaError::MetadataFetch(code)) if is_refusal(code) => {
                    return Err(KafkaClientError::Refused {
                        reason: code.to_string(),
                    })
                }
                Err(_) if Instant::now() < deadline => {}
                Err(error) => {
                    // Never answered, and the TLS connections were closed after the handshake.
                    if let Some(reason) = probe.context().closed_after_handshake() {
                        return Err(KafkaClientError::Refused {
                            reason: format!(
                                "{reason}: the broker closes every TLS connection right after \
                                 the handshake, as one that requires a client certificate \
                                 (mutual TLS) does when it is missing or not trusted"
                            ),
                        });
                    }
                    tracing::warn!(
                        message = "Kafka did not answer the start-up security check; starting anyway.",
                        %error
                    );
                    return Ok(());
                }
            }
        }
    }

    /// The shared settings alone (readers that join no group and write nothing).
    pub fn base(&self) -> ClientConfig {
        self.base.clone()
    }

    /// The source's consumer group: cooperative-sticky, offsets stored only by the connector
    /// (when a record has its ack or dead letter), committed by librdkafka's auto-commit, or
    /// only inside transactions in transactional mode.
    pub fn source_consumer(&self, cfg: &KafkaConfig) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", &cfg.group_id)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "enable.auto.commit",
                if cfg.transactional_id.is_some() {
                    "false"
                } else {
                    "true"
                },
            )
            .set("auto.commit.interval.ms", "1000")
            // Offsets are stored only when a record has its ack or dead letter.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                cfg.session_timeout.as_millis().to_string(),
            )
            // Tansu and other brokers hold fetches for fetch.wait.max.ms when a partition is idle.
            .set("fetch.wait.max.ms", "50")
            // Statistics feed the per-partition consumer lag gauge (crate::lag).
            .set("statistics.interval.ms", "5000");
        // The operator's properties win over the defaults above, as they always have.
        for (k, v) in &cfg.properties {
            c.set(k, v);
        }
        c
    }

    /// The producer of acks, dead letters and DPS error records: idempotent, every replica
    /// acknowledges; with `transactional_id`, transactional (which implies both).
    pub fn producer(&self, transactional_id: Option<&str>) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        if let Some(id) = transactional_id {
            c.set("transactional.id", id);
        }
        c
    }
}

/// The context of [`KafkaClients::check_security`]'s client: keeps the first security error
/// librdkafka reports (its error events are where the reason is).
#[derive(Default)]
struct SecurityProbe {
    refused: Mutex<Option<String>>,
    /// The last "SSL connection closed by peer" before any answer: with TLS 1.3 the server's
    /// refusal of the client certificate arrives after the client finished the handshake, and
    /// librdkafka only logs it as a disconnection.
    closed: Mutex<Option<String>>,
}

impl SecurityProbe {
    fn refusal(&self) -> Option<String> {
        self.refused.lock().ok()?.clone()
    }

    fn closed_after_handshake(&self) -> Option<String> {
        self.closed.lock().ok()?.clone()
    }
}

impl ClientContext for SecurityProbe {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if message.contains("SSL connection closed by peer") {
            if let Ok(mut closed) = self.closed.lock() {
                *closed = Some(message.to_string());
            }
        }
        tracing::debug!(
            message = "librdkafka (security check).",
            ?level,
            fac,
            log = message
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let refused = match error.rdkafka_error_code() {
            Some(code) if is_refusal(code) => true,
            // A server that refuses the client certificate shows as a transport error on the
            // first read after the handshake (TLS 1.3).
            Some(RDKafkaErrorCode::BrokerTransportFailure) => reason.contains("SSL"),
            _ => false,
        };
        if refused {
            if let Ok(mut first) = self.refused.lock() {
                first.get_or_insert_with(|| reason.to_string());
            }
        }
    }
}

// A consumer that joins no group: only its error events are used.
impl ConsumerContext for SecurityProbe {}

/// librdkafka's codes for refused credentials and failed TLS.
fn is_refusal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SSL
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::IllegalSASLState
            | RDKafkaErrorCode::UnsupportedSASLMechanism
    )
}

/// Enqueues every record, then waits for every delivery report. Waits and retries while the
/// producer's local queue is full.
pub async fn produce_all<'a>(
    producer: &FutureProducer,
    records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
) -> Result<(), ProduceError> {
    let mut deliveries = Vec::new();
    for mut record in records {
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(ProduceError(error)),
            }
        }
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(ProduceError(error)),
            Err(_cancelled) => return Err(ProduceError(KafkaError::Canceled)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn password_files_become_the_secret_properties_and_plaintext_needs_no_check() {
        let dir = tempfile::tempdir().unwrap();
        let sasl = dir.path().join("sasl-password");
        let key = dir.path().join("key-password");
        std::fs::write(&sasl, "s3cret-sasl\n").unwrap();
        std::fs::write(&key, "s3cret-key\n").unwrap();
        let text = format!(
            r#"
            [kafka]
            bootstrap_servers = "localhost:9"
            topics = ["cad.calls"]
            ack_topic = "ads.acks"
            dead_letter_topic = "ads.dlq"
            sasl_password_file = "{}"
            ssl_key_password_file = "{}"
            [nhs_api]
            environment = "sandbox"
            "#,
            sasl.display(),
            key.display()
        );
        let config = Config::from_toml_str(&text).unwrap();
        let clients = KafkaClients::new(&config.kafka).unwrap();
        let base = clients.base();
        assert_eq!(base.get("sasl.password"), Some("s3cret-sasl"));
        assert_eq!(base.get("ssl.key.password"), Some("s3cret-key"));
        assert!(!format!("{clients:?}").contains("s3cret"));
        // No `security.protocol`: nothing to check, and nothing is connected to.
        clients.check_security(Duration::ZERO).unwrap();
    }
}
