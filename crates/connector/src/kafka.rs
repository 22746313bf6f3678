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
//! of the configuration); a write the broker does not acknowledge is [`ProduceError`] (fatal for
//! the pipeline: nothing past it is committed).

use std::time::Duration;

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
}

/// The producer could not deliver (fatal for the pipeline).
#[derive(Debug, thiserror::Error)]
#[error("cannot deliver to Kafka: {0}")]
pub struct ProduceError(#[from] pub KafkaError);

/// The configuration of every Kafka client of the process; see the module header.
#[derive(Clone)]
pub struct KafkaClients {
    base: ClientConfig,
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
        Ok(Self { base })
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
