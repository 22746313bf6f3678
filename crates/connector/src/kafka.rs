//! Kafka clients: every librdkafka setting the connector makes, in one place, and the one way it
//! writes records durably.
//!
//! Input: the validated `[kafka]` section. Output: [`KafkaClients`], built once per process (the
//! SASL password file is read once, here), which hands out the configuration of each client the
//! connector creates: the source's consumer group, the producer of acks and dead letters (plain
//! or transactional), and the MESH poller's readers and lease consumer. [`produce_all`] writes a
//! set of records and returns only when the broker has acknowledged every one; [`OutputTopics`]
//! then proves the topics written to still exist (a broker may acknowledge a write to a deleted
//! topic and drop it), and at start-up that they exist at all. The producer never creates a
//! topic.
//!
//! Failures: a secret file that cannot be read is [`KafkaClientError::Secret`] (fatal: a fault
//! of the configuration); so is a broker that refuses the connector's SASL credentials or TLS
//! ([`KafkaClientError::Refused`], found at start-up by [`KafkaClients::check_security`]
//! instead of librdkafka retrying for ever); a write the broker does not acknowledge is
//! [`ProduceError`] (fatal for the pipeline: nothing past it is committed), and so is an output
//! topic that does not exist or disappears ([`ProduceError::TopicMissing`], naming it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

pub mod bounded_drop;
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

/// Acks, dead letters or DPS error records could not be written durably (fatal for the
/// pipeline: nothing past the write is committed).
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The producer could not deliver, or a transaction failed.
    #[error("cannot deliver to Kafka: {0}")]
    Delivery(#[from] KafkaError),
    /// An output topic does not exist: at start-up, or it disappeared while the connector ran
    /// (see [`OutputTopics`]). Writes to it may have been acknowledged by the broker and
    /// dropped, so nothing written after the last check that found it is committed.
    #[error(
        "the output topic `{topic}` (`{key}`) does not exist on the broker ({reason}); the \
         connector never creates its output topics and commits nothing past a write it cannot \
         prove landed: create the topic and restart"
    )]
    TopicMissing {
        /// The configuration key naming the topic (`kafka.ack_topic`, …).
        key: &'static str,
        /// The topic.
        topic: String,
        /// What the broker's metadata said.
        reason: String,
    },
}

impl ProduceError {
    /// As librdkafka's error (a missing topic is its `UnknownTopicOrPartition`).
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            Self::Delivery(error) => error.clone(),
            Self::TopicMissing { .. } => {
                KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition)
            }
        }
    }
}

/// Kilobytes of records the source's consumer fetches ahead of the pipeline
/// (`queued.max.messages.kbytes`, librdkafka's default 65536 for the one queue of a consumer
/// group): about 4,500 records of 1.8 kB, a second of the connector's fastest pace and many fetch
/// round trips. librdkafka also lowers `fetch.max.bytes` (50 MB by default) to it unless that is
/// set, so one fetch response is no larger: the consumer holds at most about twice this, 16 MiB,
/// whatever the backlog (it was 64 MiB and more, the largest part of the connector's memory while
/// it drained a backlog). The window pass's reader has a budget of its own of the same size. The
/// operator's `kafka.properties` can still set it.
pub const PREFETCH_KBYTES: usize = 8192;

/// How long librdkafka waits before fetching a partition again once the prefetch budget
/// ([`PREFETCH_KBYTES`]) was full (`fetch.queue.backoff.ms`, default 1000). While the connector
/// drains a backlog the budget is full most of the time; at the default, each partition then
/// waited up to a second after the pipeline had taken its records, the consumer's queue ran
/// dry, and the whole pipeline waited on Kafka (measured on Tansu: the source waited for
/// records 60 % of the time, and the connector ran at 7,400 records/s against 89,000 for a raw
/// consumer). librdkafka's documentation says to lower it when the queue thresholds are low.
/// The operator's `kafka.properties` can still set it.
pub const FETCH_QUEUE_BACKOFF_MS: u32 = 20;

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
            // The memory budget of the records librdkafka fetches ahead (see [`PREFETCH_KBYTES`]).
            .set("queued.max.messages.kbytes", PREFETCH_KBYTES.to_string())
            // And fetches again soon after the pipeline takes from a full budget (see
            // [`FETCH_QUEUE_BACKOFF_MS`]).
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string())
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
            .set("linger.ms", "5")
            // A deleted output topic must fail loudly, never come back empty and unnoticed
            // (librdkafka's producers ask brokers with `auto.create.topics.enable` to create
            // the topics they write to by default).
            .set("allow.auto.create.topics", "false");
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

/// How long one metadata request of [`OutputTopics`] may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How often [`OutputTopics::confirm`] asks again while the brokers do not answer.
const METADATA_RETRY: Duration = Duration::from_millis(500);

/// The output topics (acks, dead letters), and proof that they still exist.
///
/// A broker can acknowledge a write to a topic that no longer exists and drop it: Tansu 0.6
/// does, for a topic deleted while the connector runs (its delivery reports carry offsets
/// counted from 0 again, and nothing is readable); and librdkafka's mock cluster keeps
/// acknowledging writes to a topic whose metadata says it is unknown. A delivery report alone
/// does not prove an ack landed, so before the offsets of a write are stored,
/// [`OutputTopics::confirm`] checks the broker's metadata for the topic with a request that
/// started after the write was acknowledged. The checks are shared: one request in flight at a
/// time confirms every write acknowledged before it started. A topic the metadata does not
/// know is [`ProduceError::TopicMissing`] (fatal); a broker that does not answer is asked
/// again until it does (as a write waits for a broker that is down).
#[derive(Clone)]
pub struct OutputTopics {
    inner: Arc<OutputTopicsInner>,
}

struct OutputTopicsInner {
    /// A consumer-type client that joins no group: its metadata requests never ask the broker
    /// to create a topic (`allow.auto.create.topics` is false for consumers).
    client: BaseConsumer,
    /// Each output topic and the configuration key that names it.
    topics: Vec<(&'static str, String)>,
    /// When the last check that found each topic started.
    confirmed: tokio::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

impl OutputTopics {
    /// The output topics, `(configuration key, topic)`; creates the client that checks them
    /// from `consumer`, the source consumer's settings (so the operator's consumer properties
    /// are valid together); it subscribes to nothing and commits nothing.
    pub fn new(
        consumer: ClientConfig,
        topics: Vec<(&'static str, String)>,
    ) -> Result<Self, KafkaError> {
        let mut config = consumer;
        let client: BaseConsumer = config
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false")
            .create()?;
        Ok(Self {
            inner: Arc::new(OutputTopicsInner {
                client,
                topics,
                confirmed: Default::default(),
            }),
        })
    }

    /// Asks the broker's metadata for each of `topics` (each output topic when `None`).
    /// Blocks. `Err(TopicMissing)` names the first topic the broker does not know;
    /// `Err(Delivery)` is a broker that did not answer.
    pub fn check(&self, topics: Option<&[&str]>) -> Result<(), ProduceError> {
        for (key, topic) in &self.inner.topics {
            if topics.is_some_and(|t| !t.contains(&topic.as_str())) {
                continue;
            }
            let metadata = self
                .inner
                .client
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
            let known = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map(|t| (t.error(), t.partitions().len()));
            let reason = match known {
                Some((None, n)) if n > 0 => continue,
                Some((Some(error), _)) => RDKafkaErrorCode::from(error).to_string(),
                Some((None, _)) => "it has no partitions".to_string(),
                None => "the broker's metadata does not list it".to_string(),
            };
            return Err(ProduceError::TopicMissing {
                key,
                topic: topic.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// [`OutputTopics::check`] of every output topic at start-up, waiting as librdkafka waits
    /// for a topic it has just been asked for (`topic.metadata.propagation.max.ms`,
    /// [`crate::config::kafka::TOPIC_PROPAGATION_PROPERTY`]): a topic the metadata does not
    /// list is asked for again every [`METADATA_RETRY`] until `propagation` has passed since
    /// the first answer, so an output topic created moments before the connector started (a
    /// topic operator reconciling beside the Deployment, a broker still propagating it) does
    /// not stop the start. `Err(TopicMissing)` once `propagation` has passed, or at once when
    /// `cancel` fires while it waits; `Err(Delivery)` is a broker that did not answer (the
    /// caller starts anyway: every write is checked again by [`OutputTopics::confirm`]).
    pub async fn check_at_start(
        &self,
        propagation: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), ProduceError> {
        let mut first_missing: Option<Instant> = None;
        loop {
            let this = self.clone();
            let checked = match tokio::task::spawn_blocking(move || this.check(None)).await {
                Ok(checked) => checked,
                // A panic fails loudly, as it would have without the blocking thread.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(ProduceError::Delivery(KafkaError::Canceled)),
            };
            let Err(error @ ProduceError::TopicMissing { .. }) = checked else {
                return checked;
            };
            let since = *first_missing.get_or_insert_with(|| {
                tracing::warn!(
                    message = "An output topic is not in the broker's metadata yet; waiting for it to propagate before stopping.",
                    %error,
                    wait_ms = propagation.as_millis() as u64,
                );
                Instant::now()
            });
            if since.elapsed() >= propagation {
                return Err(error);
            }
            tokio::select! {
                _ = tokio::time::sleep(METADATA_RETRY.min(propagation)) => {}
                _ = cancel.cancelled() => return Err(error),
            }
        }
    }

    /// Returns once each of `topics` was found by a metadata request that started at or after
    /// `delivered_at` (the time the writes to it were acknowledged); see the type's doc.
    pub async fn confirm(
        &self,
        topics: &[&str],
        delivered_at: Instant,
    ) -> Result<(), ProduceError> {
        let mut confirmed = self.inner.confirmed.lock().await;
        let stale: Vec<String> = topics
            .iter()
            .filter(|t| confirmed.get(**t).is_none_or(|at| *at < delivered_at))
            .map(|t| t.to_string())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let mut warned: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let (this, asked) = (self.clone(), stale.clone());
            let checked = tokio::task::spawn_blocking(move || {
                let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
                this.check(Some(&asked))
            })
            .await
            .map_err(|_| ProduceError::Delivery(KafkaError::Canceled))?;
            match checked {
                Ok(()) => {
                    for topic in stale {
                        confirmed.insert(topic, started);
                    }
                    return Ok(());
                }
                Err(error @ ProduceError::TopicMissing { .. }) => {
                    tracing::error!(
                        message = "An output topic disappeared; stopping without committing past the writes to it.",
                        %error
                    );
                    return Err(error);
                }
                Err(error) => {
                    // Logged once, then every minute while it lasts.
                    if warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(60)) {
                        tracing::warn!(
                            message = "Cannot read the output topics' metadata; offsets wait.",
                            %error
                        );
                        warned = Some(Instant::now());
                    }
                    tokio::time::sleep(METADATA_RETRY).await;
                }
            }
        }
    }
}

/// Enqueues every record, then waits for every delivery report. Waits and retries while the
/// producer's local queue is full.
pub async fn produce_all<'a>(
    producer: &FutureProducer,
    records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
) -> Result<(), ProduceError> {
    enqueue_all(producer, records).await?.delivered().await
}

/// Hands every record to the producer, in order, waiting and retrying while its local queue is
/// full; [`Deliveries::delivered`] then waits for the broker. Records enqueued by one call come
/// before those of a later call on every partition (librdkafka keeps enqueue order, and the
/// idempotent producer keeps it through retries).
pub async fn enqueue_all<'a>(
    producer: &FutureProducer,
    records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
) -> Result<Deliveries, ProduceError> {
    let mut deliveries = Vec::with_capacity(records.size_hint().0);
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
                Err((error, _)) => return Err(ProduceError::Delivery(error)),
            }
        }
    }
    Ok(Deliveries(deliveries))
}

/// Records handed to the producer by [`enqueue_all`], not yet known to be delivered.
#[must_use = "a write is not durable until its deliveries are awaited"]
pub struct Deliveries(Vec<DeliveryFuture>);

impl Deliveries {
    /// Waits for every delivery report; the first failure is the error.
    pub async fn delivered(self) -> Result<(), ProduceError> {
        for delivery in self.0 {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(ProduceError::Delivery(error)),
                Err(_cancelled) => return Err(ProduceError::Delivery(KafkaError::Canceled)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_source_consumer_fetches_ahead_within_its_memory_budget_unless_the_operator_says_otherwise(
    ) {
        let config = |properties: &str| {
            let text = format!(
                r#"
                [kafka]
                bootstrap_servers = "localhost:9"
                topics = ["cad.calls"]
                ack_topic = "ads.acks"
                dead_letter_topic = "ads.dlq"
                {properties}
                [nhs_api]
                environment = "sandbox"
                "#
            );
            Config::from_toml_str(&text).unwrap().kafka
        };
        let default = config("");
        let consumer = KafkaClients::new(&default)
            .unwrap()
            .source_consumer(&default);
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("8192"));
        assert_eq!(
            consumer.get("fetch.queue.backoff.ms"),
            Some("20"),
            "fetches again soon after the pipeline takes from a full budget"
        );
        assert_eq!(
            consumer.get("fetch.max.bytes"),
            None,
            "left to librdkafka, which lowers it to the prefetch budget"
        );
        let raised = config(
            "properties = { \"queued.max.messages.kbytes\" = \"32768\", \"fetch.queue.backoff.ms\" = \"100\" }",
        );
        let consumer = KafkaClients::new(&raised).unwrap().source_consumer(&raised);
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("32768"));
        assert_eq!(consumer.get("fetch.queue.backoff.ms"), Some("100"));
    }

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
