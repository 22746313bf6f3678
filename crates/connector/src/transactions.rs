//! Durable writes of acks and dead letters: [`DurableWriter`] chooses between at-least-once (the
//! idempotent producer, then proof from the broker's metadata that the topics written to still
//! exist ([`OutputTopics::confirm`]), then the offset store) and transactional mode ([`Transactions`]: acks,
//! dead letters and offsets in one Kafka transaction, on when `kafka.transactional_id` is set).
//!
//! Input: from the acker or the dead-letter stage, the records to write and the source positions
//! they answer for. Output: one committed transaction holding those records and the consumer
//! group offsets that completing those positions moves (the watermarks of
//! [`Offsets::watermarks_after`], sent with `send_offsets_to_transaction` and the consumer's
//! current group metadata); only after the commit are the positions marked done in [`Offsets`].
//! Nothing else commits offsets in this mode: no [`crate::offsets::OffsetStore`] is plugged in,
//! auto-commit is off, and neither the revocation callback nor the shutdown commits.
//!
//! Ordering: one transaction at a time for the whole process, acks and dead letters alike. A
//! tokio mutex is held from `begin_transaction` to the commit or abort (the blocking part owns
//! the guard, so even a cancelled caller cannot let a second transaction start early), and the
//! positions are marked done before it is released: the offsets successive transactions send
//! never go backwards.
//!
//! Guarantee: `read_committed` readers of the ack and dead-letter topics see a record's ack or
//! dead letter if and only if the offset past that record is committed with it: exactly once on
//! those topics, at least once towards the API (a crash between a submission and the commit of
//! its transaction resends the submission; bundle ids are deterministic). The one exception is
//! the same as in at-least-once mode: a partition revoked while its records are still in a
//! transaction (past `kafka.revoke_drain_timeout_ms`) is redone by its next owner, so those
//! records can be acked twice.
//!
//! Failures: any transaction error aborts the transaction when librdkafka allows it, then fails
//! the calling stage with [`ProduceError`]. That is fatal: the pipeline stops, the process exits
//! non-zero, and after the restart `init_transactions` with the same id fences this producer and
//! aborts whatever it left open, and the uncommitted work is consumed again. On shutdown,
//! [`Transactions::close`] aborts a transaction that a stage cut off by the drain deadline left
//! open, so `read_committed` readers are not held back until the broker's transaction timeout.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::kafka::{enqueue_all, produce_all, Deliveries, OutputTopics, ProduceError};
use crate::metrics::{Metrics, Outcome};
use crate::offsets::{Offsets, RecordPos};
use crate::source::CadConsumer;

/// Longest wait for `init_transactions` (it finds the coordinator and fences older producers).
const INIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one transactional call (send offsets, commit, abort).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// At shutdown, how long [`Transactions::close`] waits for a transaction still committing.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Writes acks or dead letters durably, then marks their source records done: with the
/// idempotent producer followed by the offset store, or (transactional mode) in one transaction
/// together with the offsets they complete. Shared by the acker and the dead-letter stage.
#[derive(Clone)]
pub struct DurableWriter {
    /// The shared producer.
    pub producer: FutureProducer,
    /// Transactional mode: the transactions shared by both stages.
    pub transactions: Option<Transactions>,
    /// Offset tracker.
    pub offsets: Offsets,
    /// At-least-once mode: proof, before offsets are stored, that the topics written to still
    /// exist (a broker may acknowledge a write to a deleted topic and drop it).
    pub topics: OutputTopics,
}

impl DurableWriter {
    /// Writes `records` and, once the broker has them, marks `done` done.
    pub async fn write<'a, 'p>(
        &self,
        records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
        done: impl IntoIterator<Item = &'p RecordPos>,
    ) -> Result<(), ProduceError> {
        self.start(records, done.into_iter().cloned().collect())
            .await?
            .finish()
            .await
    }

    /// Starts a write: hands `records` to the producer now, in order, and returns the
    /// [`PendingWrite`] that finishes it (waits for the broker, confirms the topics written to,
    /// then marks `done` done). Writes started one after another land in that order on every
    /// partition; they may finish in any order, and each marks only its own records done, so an
    /// offset is still committed only past records whose writes were delivered. In
    /// transactional mode the whole transaction runs here, one at a time as always, and the
    /// pending write has nothing left to do.
    pub async fn start<'a>(
        &self,
        records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
        done: Vec<RecordPos>,
    ) -> Result<PendingWrite, ProduceError> {
        if let Some(transactions) = &self.transactions {
            transactions.publish(records, &done).await?;
            return Ok(PendingWrite(None));
        }
        let mut written: Vec<String> = Vec::with_capacity(1);
        let records = records.inspect(|r| {
            if !written.iter().any(|t| t == r.topic) {
                written.push(r.topic.to_string());
            }
        });
        // A refused enqueue is reported by `finish` too: naming a missing topic takes the topic
        // check's lock, which a pending write of the caller may hold (see `PendingWrite`).
        let enqueued = enqueue_all(&self.producer, records).await;
        Ok(PendingWrite(Some(Unfinished {
            enqueued,
            written,
            done,
            topics: self.topics.clone(),
            offsets: self.offsets.clone(),
        })))
    }
}

/// The rest of a write [`DurableWriter::start`] began; [`PendingWrite::finish`] does it.
///
/// A caller holding several must poll them together (as the acker does, in one
/// `FuturesUnordered`) and never wait for another write of its own in between: a pending write
/// can hold the lock of the shared topic check ([`OutputTopics::confirm`]) while it waits, and a
/// write that needs that lock would wait for a future nobody polls.
#[must_use = "a write marks its records done only when it is finished"]
pub struct PendingWrite(Option<Unfinished>);

struct Unfinished {
    /// The records handed to the producer, or why they could not be.
    enqueued: Result<Deliveries, ProduceError>,
    /// The topics written to.
    written: Vec<String>,
    done: Vec<RecordPos>,
    topics: OutputTopics,
    offsets: Offsets,
}

impl PendingWrite {
    /// Waits for the broker to have every record, confirms the topics written to still exist
    /// ([`OutputTopics::confirm`]), then marks the write's source records done.
    pub async fn finish(self) -> Result<(), ProduceError> {
        let Some(Unfinished {
            enqueued,
            written,
            done,
            topics,
            offsets,
        }) = self.0
        else {
            return Ok(());
        };
        let written: Vec<&str> = written.iter().map(String::as_str).collect();
        let delivered = match enqueued {
            Ok(deliveries) => deliveries.delivered().await,
            Err(error) => Err(error),
        };
        if let Err(error) = delivered {
            return Err(refused(&topics, &written, error).await);
        }
        topics.confirm(&written, Instant::now()).await?;
        offsets.complete(&done);
        Ok(())
    }
}

/// The error of a write that failed: a broker that refuses writes to a deleted topic is named by
/// the topic's check.
async fn refused(topics: &OutputTopics, written: &[&str], error: ProduceError) -> ProduceError {
    if matches!(
        error.kafka_error().rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic)
    ) {
        if let Err(missing) = topics.confirm(written, Instant::now()).await {
            return missing;
        }
    }
    error
}

/// The one transactional producer shared by the acker and the dead-letter stage; see the
/// module header.
#[derive(Clone)]
pub struct Transactions {
    producer: FutureProducer,
    /// Weak: the pipeline drops the consumer to leave the group; this must not keep it alive.
    consumer: Weak<CadConsumer>,
    offsets: Offsets,
    metrics: Metrics,
    /// `true` while a transaction is open; locked from begin to commit or abort.
    open: Arc<Mutex<bool>>,
}

impl Transactions {
    /// Initialises transactions on `producer` (created with [`crate::kafka::KafkaClients::producer`]); blocks a
    /// blocking-pool thread, at most a minute. An error is fatal (no coordinator, not
    /// authorised, or the id is in use by a newer producer).
    pub async fn init(
        producer: FutureProducer,
        consumer: &Arc<CadConsumer>,
        offsets: Offsets,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(INIT_TIMEOUT))
            .await
            .map_err(|_| KafkaError::Canceled)??;
        tracing::info!(
            message = "Transactional mode: acks, dead letters and offsets commit together."
        );
        Ok(Self {
            producer,
            consumer: Arc::downgrade(consumer),
            offsets,
            metrics,
            open: Arc::new(Mutex::new(false)),
        })
    }

    /// Proves, before the pipeline sends anything to the API, that the broker really completes
    /// a transaction: one probe record (header `ads-probe`, empty value) is written to `topic`
    /// inside a transaction that is then aborted. `read_committed` readers never see it. A
    /// broker without working transactions (Tansu 0.6: no EndTxn) fails here, and the
    /// connector refuses to start instead of posting to the API and failing at its first
    /// commit.
    pub async fn probe(&self, topic: &str) -> Result<(), KafkaError> {
        let _open = self.open.clone().lock_owned().await;
        self.producer.begin_transaction()?;
        let record = FutureRecord::<[u8], [u8]>::to(topic)
            .payload(b"".as_slice())
            .headers(
                rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                    key: "ads-probe",
                    value: Some("transactions"),
                }),
            );
        let produced = produce_all(&self.producer, std::iter::once(record)).await;
        let producer = self.producer.clone();
        let aborted = tokio::task::spawn_blocking(move || producer.abort_transaction(CALL_TIMEOUT))
            .await
            .map_err(|_| KafkaError::Canceled)?;
        produced.map_err(|e| e.kafka_error())?;
        aborted
    }

    /// Writes `records` and commits, in one transaction, the offsets that completing `done`
    /// moves; then marks `done` in [`Offsets`]. Waits for any other transaction first.
    pub async fn publish<'a, 'p>(
        &self,
        records: impl Iterator<Item = FutureRecord<'a, [u8], [u8]>>,
        done: impl IntoIterator<Item = &'p RecordPos>,
    ) -> Result<(), ProduceError> {
        let done: Vec<RecordPos> = done.into_iter().cloned().collect();
        let mut open = self.open.clone().lock_owned().await;
        self.producer.begin_transaction()?;
        *open = true;
        if let Err(error) = produce_all(&self.producer, records).await {
            let producer = self.producer.clone();
            let reason = error.kafka_error();
            let _ = tokio::task::spawn_blocking(move || abort(&producer, &reason, open)).await;
            self.metrics.offsets_committed(Outcome::Failure);
            return Err(error);
        }
        let marks = self.offsets.watermarks_after(&done);
        let group = match self.consumer.upgrade() {
            Some(consumer) => consumer.group_metadata(),
            None => None,
        };
        let (producer, offsets) = (self.producer.clone(), self.offsets.clone());
        let committed = tokio::task::spawn_blocking(move || {
            match commit(&producer, &marks, group.as_ref()) {
                Ok(()) => {
                    // Still under the lock: the next transaction computes its watermarks
                    // from a tracker that already counts these records as done.
                    offsets.complete(&done);
                    *open = false;
                    tracing::debug!(
                        message = "Transaction committed.",
                        records = done.len(),
                        partitions = marks.len()
                    );
                    Ok(marks.len())
                }
                Err(error) => {
                    abort(&producer, &error, open);
                    Err(error)
                }
            }
        })
        .await
        .map_err(|_| ProduceError::Delivery(KafkaError::Canceled))?;
        match committed {
            Ok(partitions) => {
                if partitions > 0 {
                    self.metrics.offsets_committed(Outcome::Success);
                }
                Ok(())
            }
            Err(error) => {
                self.metrics.offsets_committed(Outcome::Failure);
                Err(ProduceError::Delivery(error))
            }
        }
    }

    /// Aborts a transaction left open by a stage that was cut off (drain deadline). Waits a
    /// few seconds for a transaction still committing, then gives up: the broker aborts it at
    /// `transaction.timeout.ms`, or the next `init_transactions` with this id does.
    pub async fn close(&self) {
        let Ok(open) = tokio::time::timeout(CLOSE_WAIT, self.open.clone().lock_owned()).await
        else {
            tracing::warn!(
                message =
                    "A transaction is still committing at shutdown; leaving it to the broker."
            );
            return;
        };
        if !*open {
            return;
        }
        tracing::warn!(
            message = "Aborting the transaction a stage cut off by the drain deadline left open."
        );
        let producer = self.producer.clone();
        let error = KafkaError::Canceled;
        let _ = tokio::task::spawn_blocking(move || abort(&producer, &error, open)).await;
    }
}

/// Sends the offsets (if any moved) and commits. Blocking.
fn commit(
    producer: &FutureProducer,
    marks: &[(Arc<str>, i32, i64)],
    group: Option<&ConsumerGroupMetadata>,
) -> KafkaResult<()> {
    if !marks.is_empty() {
        let Some(group) = group else {
            // Committing the records without their offsets would duplicate them after a
            // restart: abort instead.
            tracing::error!(
                message = "No consumer group metadata; the transaction cannot carry its offsets."
            );
            return Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::State));
        };
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in marks {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        producer.send_offsets_to_transaction(&tpl, group, CALL_TIMEOUT)?;
    }
    producer.commit_transaction(CALL_TIMEOUT)
}

/// Aborts the open transaction after `error`, unless the error is fatal (the producer is then
/// unusable and the broker aborts the transaction when this id is initialised again). Blocking.
fn abort(producer: &FutureProducer, error: &KafkaError, mut open: OwnedMutexGuard<bool>) {
    if matches!(error, KafkaError::Transaction(e) if e.is_fatal()) {
        *open = false;
        tracing::error!(message = "Transaction failed fatally; it cannot be aborted.", %error);
        return;
    }
    match producer.abort_transaction(CALL_TIMEOUT) {
        Ok(()) => {
            *open = false;
            tracing::warn!(message = "Transaction aborted.", %error);
        }
        Err(abort_error) => {
            tracing::error!(message = "Transaction could not be aborted.", %error, %abort_error)
        }
    }
}
