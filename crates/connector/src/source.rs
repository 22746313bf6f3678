//! Source: the Kafka consumer group that reads `cad.call.v1` records.
//!
//! Input: the configured topics, in a consumer group using the cooperative-sticky assignor.
//! Output: one [`Envelope`] per record, in partition order, on a bounded channel; a full channel
//! stops the polling (backpressure reaches the broker, memory stays bounded). Every record is
//! registered with [`Offsets`] before it is sent on, so the watermark can never pass it.
//! Acknowledgement: none here; offsets are stored by [`Offsets`] when records are done and
//! committed by librdkafka's auto-commit (of stored offsets only) and by the final synchronous
//! commit in [`crate::app`]; in transactional mode (`kafka.transactional_id`) auto-commit is off,
//! no offset store is plugged in, and offsets are committed only inside
//! [`crate::transactions`]. Rebalances: an assignment starts a fresh generation for its
//! partitions. A revocation first waits (at most `kafka.revoke_drain_timeout_ms`, polling
//! stopped meanwhile) for the records of those partitions already in the pipeline to be acked or
//! dead-lettered, commits their watermark (not in transactional mode), then forgets them;
//! anything still in flight at the deadline can no longer move their offsets and is redelivered
//! to the new owner (at-least-once); outside the submission window (window mode, records not
//! flowing) it does not wait, since nothing held can complete before the next opening. After every rebalance the rate limiter takes this consumer's share of all
//! input partitions. Shutdown: only this stage
//! watches the cancellation token; it stops polling and drops its sender, and the rest of the
//! pipeline drains behind it. Failures: consumer errors are logged and polling goes on
//! (librdkafka reconnects by itself); a record of a partition no longer assigned is skipped.
//!
//! Gaps: offsets only ever move over offsets the connector has seen. Each partition expects
//! its next offset ([`Offsets::continuity`]): at an assignment, the group's committed offset,
//! then one past each record. A record above it leaves a gap, logged once with the partition and
//! range and counted (`kafka_offset_gaps_total`); the record is not registered until [`gaps`]
//! has read the gap with a reader of its own: holding nothing readable (transaction markers,
//! aborted transactions, compaction, retention) the record goes on; holding records the
//! broker skipped (Tansu 0.6 resuming a fetch inside a producer batch, after a rejoin or a
//! resume) the consumer is sought back to a start that covers them, and records already seen
//! are skipped on the way. A gap neither shown empty nor read again after a few attempts stops
//! the source with [`SourceError::Gap`] (fatal; nothing past it is committed). A partition whose
//! committed offset cannot be read at assignment trusts its first record as the start (logged).
//!
//! Pausing, without ever leaving the group: a partition is paused while the pipeline has been
//! full for [`pause_after`] (backpressure), while the schedule stops the flow ([`set_flowing`]:
//! `[schedule]` in `window` mode, outside the window), and while it is *held* (window mode: a
//! partition assigned is held until [`release`]d, once the window pass has indexed its backlog;
//! [`Rebalanced`] tells the pass of every assignment and revocation). The consumer keeps polling
//! throughout, so `max.poll.interval.ms` never expires and rebalances are served. Records
//! already taken from librdkafka when the flow stops are still handed on: they are the work in
//! flight that finishes after a window closes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;
use crate::kafka::bounded_drop::BoundedDrop;
use crate::kafka::headers::{self, RawHeader};
use crate::kafka::KafkaClients;
use crate::metrics::{GapOutcome, Metrics, Outcome, RebalanceKind};
use crate::offsets::{Continuity, OffsetStore, Offsets, RecordPos};

pub mod gaps;

/// The source's failures.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created or subscribed (fatal: bad configuration).
    #[error("cannot start the Kafka consumer: {0}")]
    Start(#[from] rdkafka::error::KafkaError),
    /// A gap in a partition's offsets could not be shown to hold nothing readable, nor read
    /// again (fatal: nothing past it is committed, and the restart reads from before it).
    #[error(
        "offsets {from}..{to} of {topic}/{partition} were never fetched and could not be \
         read again or shown to hold no record ({reason}); stopping without committing past them"
    )]
    Gap {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The first offset not seen.
        from: i64,
        /// The record that revealed the gap.
        to: i64,
        /// Why it stays unresolved.
        reason: String,
    },
}

/// How many times one gap may be probed or read again before the source gives up.
const GAP_ATTEMPTS: u32 = 5;

/// Told, after every rebalance, how many input partitions this consumer owns and how many there
/// are in all (the application wires it to the rate limiter's share).
pub type ShareListener = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// A partition: topic and number.
pub type PartitionId = (String, i32);

/// A rebalance, as the window pass hears of it (window mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalanced {
    /// These partitions were assigned; they stay held (paused) until [`release`]d.
    Assigned(Vec<PartitionId>),
    /// These partitions were revoked (their in-flight records drained first).
    Revoked(Vec<PartitionId>),
}

/// Why partitions are paused; see the module header.
#[derive(Debug, Default)]
struct Pauses {
    /// The pipeline has been full for `pause_after`.
    backpressure: bool,
    /// The schedule lets records flow (always, in continuous mode).
    flowing: bool,
    /// Window mode: assigned partitions not yet released by the window pass.
    held: HashSet<PartitionId>,
    /// What librdkafka has paused now.
    paused: HashSet<PartitionId>,
}

/// One consumed record and where it came from.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Topic, partition, offset and generation.
    pub pos: RecordPos,
    /// The record key (the call id).
    pub key: Option<Vec<u8>>,
    /// The record value.
    pub payload: Option<Vec<u8>>,
    /// The record headers as bytes, unchanged (dead letters carry them on byte for byte).
    pub headers: Vec<RawHeader>,
    /// The record's Kafka timestamp, milliseconds.
    pub timestamp_ms: Option<i64>,
    /// W3C `traceparent` header, if the producer set one.
    pub traceparent: Option<String>,
    /// Set when the record was larger than `kafka.max_record_bytes`: its value (and an
    /// oversized key or header set) was dropped at once, and it is dead-lettered as
    /// `record_too_large` with these references instead.
    pub oversize: Option<Oversize>,
}

/// What is kept of a record above `kafka.max_record_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    /// Key, value and headers, in bytes.
    pub bytes: usize,
    /// SHA-256 of the value, hex: enough to find the record again without keeping it.
    pub sha256: String,
}

/// The largest key kept from an oversized record.
const OVERSIZE_KEY_KEPT: usize = 1024;
/// The largest header set kept from an oversized record.
const OVERSIZE_HEADERS_KEPT: usize = 64 * 1024;

/// Consumer callbacks: rebalances drain and commit revoked partitions, feed the offset tracker,
/// the [`ShareListener`] and metrics.
pub struct SourceContext {
    offsets: Offsets,
    metrics: Metrics,
    on_share: ShareListener,
    topics: Vec<String>,
    revoke_drain: Duration,
    /// Transactional mode: offsets are committed only inside transactions.
    transactional: bool,
    /// The pipeline was dropped without draining: revocations neither wait nor commit.
    abandoned: AtomicBool,
    /// Backpressure, the schedule's flow and held partitions; partitions assigned meanwhile are
    /// paused as they arrive when any of these says so.
    pauses: Mutex<Pauses>,
    /// Window mode: where rebalances are told, and new partitions are held.
    window: Option<mpsc::UnboundedSender<Rebalanced>>,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        crate::lag::record(&self.metrics, &statistics);
    }
}

impl SourceContext {
    fn pauses(&self) -> std::sync::MutexGuard<'_, Pauses> {
        self.pauses.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the source paused its partitions because the pipeline is full.
    fn backpressured(&self) -> bool {
        self.pauses().backpressure
    }

    /// Pauses and resumes the assigned partitions so that librdkafka's state matches
    /// [`Pauses`]: a partition runs only when the pipeline has room, the schedule lets records
    /// flow and it is not held. Each partition is paused or resumed only when its state changes
    /// (a pause drops librdkafka's prefetched records, see [`consume`]).
    fn apply_pauses<C: Consumer<Self>>(&self, consumer: &C) {
        let assignment = match consumer.assignment() {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(message = "Cannot read the assignment to pause or resume it.", %error);
                return;
            }
        };
        let (mut pause, mut resume) = (TopicPartitionList::new(), TopicPartitionList::new());
        {
            let mut p = self.pauses();
            let stop_all = p.backpressure || !p.flowing;
            for e in assignment.elements() {
                let id = (e.topic().to_string(), e.partition());
                let want = stop_all || p.held.contains(&id);
                if want && !p.paused.contains(&id) {
                    pause.add_partition(e.topic(), e.partition());
                    p.paused.insert(id);
                } else if !want && p.paused.contains(&id) {
                    resume.add_partition(e.topic(), e.partition());
                    p.paused.remove(&id);
                }
            }
        }
        for (list, pausing) in [(&pause, true), (&resume, false)] {
            if list.count() == 0 {
                continue;
            }
            let result = if pausing {
                consumer.pause(list)
            } else {
                consumer.resume(list)
            };
            if let Err(error) = result {
                tracing::warn!(message = "Cannot pause or resume partitions.", %error);
            }
        }
    }

    /// From now on a revocation neither waits for records in flight nor commits: the pipeline
    /// behind this consumer was dropped without draining (`crate::app::Pipeline`'s `Drop`).
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// Waits for the revoked partitions' in-flight records (bounded by `revoke_drain`), then
    /// commits their watermarks so the next owner starts right behind the last ack.
    fn drain_and_commit(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        if self.abandoned.load(Ordering::Acquire) {
            return;
        }
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        // Outside the submission window nothing in the pipeline can complete: commit what is
        // done and let the new owner redeliver the rest (the window pass drops it as stale).
        let wait = if self.pauses().flowing {
            self.revoke_drain
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + wait;
        let wait = || self.offsets.drain(&partitions, deadline);
        // The callback runs on the task polling the consumer; let the runtime move other tasks
        // off this thread while it waits for them.
        let marks = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        };
        let mut commit = TopicPartitionList::new();
        for (topic, partition, next) in &marks {
            let _ = commit.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        // In transactional mode the transactions that completed these records committed their
        // watermarks already; a commit here would be one outside a transaction.
        if commit.count() > 0 && !self.transactional {
            match consumer.commit(&commit, CommitMode::Sync) {
                Ok(()) => self.metrics.offsets_committed(Outcome::Success),
                Err(error) => {
                    self.metrics.offsets_committed(Outcome::Failure);
                    tracing::warn!(message = "Commit of revoked partitions failed.", %error);
                }
            }
        }
    }

    /// Tells the offset tracker where each newly assigned partition starts: its committed
    /// offset, so a first record above it is a gap (a broker that resumed past it). A partition
    /// without one starts where its first record is (`auto.offset.reset=earliest`). If the
    /// broker does not answer, the first records are trusted as the start (logged).
    fn start_at_committed(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let mut wanted = TopicPartitionList::new();
        for e in tpl.elements() {
            wanted.add_partition(e.topic(), e.partition());
        }
        match consumer.committed_offsets(wanted, Duration::from_secs(10)) {
            Ok(committed) => {
                for e in committed.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        self.offsets.start_at(e.topic(), e.partition(), o);
                    }
                }
            }
            Err(error) => tracing::warn!(
                message = "Cannot read the committed offsets of assigned partitions; their first records are taken as the start.",
                %error
            ),
        }
    }

    /// Tells the [`ShareListener`] this consumer's share of all input partitions.
    fn update_share(&self, consumer: &BaseConsumer<Self>) {
        let mut total = 0;
        for topic in &self.topics {
            match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                Ok(m) => {
                    total += m
                        .topics()
                        .iter()
                        .map(|t| t.partitions().len())
                        .sum::<usize>()
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot read topic metadata; keeping the rate share.", %error);
                    return;
                }
            }
        }
        (self.on_share)(self.offsets.assigned(), total);
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.drain_and_commit(consumer, tpl);
            let mut revoked = Vec::with_capacity(tpl.count());
            {
                let mut p = self.pauses();
                for e in tpl.elements() {
                    let id = (e.topic().to_string(), e.partition());
                    p.held.remove(&id);
                    p.paused.remove(&id);
                    revoked.push(id);
                }
            }
            for e in tpl.elements() {
                self.offsets.revoke(e.topic(), e.partition());
                self.metrics.forget_partition(e.topic(), e.partition());
            }
            if let Some(window) = &self.window {
                let _ = window.send(Rebalanced::Revoked(revoked));
            }
            let assigned = self.offsets.assigned();
            self.metrics
                .rebalanced(RebalanceKind::Revoke, tpl.count(), assigned);
            tracing::info!(
                message = "Partitions revoked.",
                partitions = tpl.count(),
                assigned
            );
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let assigned: Vec<PartitionId> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                for (topic, partition) in &assigned {
                    self.offsets.assign(topic, *partition);
                }
                self.start_at_committed(consumer, tpl);
                {
                    let mut p = self.pauses();
                    for id in &assigned {
                        // A partition assigned again starts running; librdkafka resumes it.
                        p.paused.remove(id);
                        if self.window.is_some() {
                            p.held.insert(id.clone());
                        }
                    }
                }
                self.apply_pauses(consumer);
                if let Some(window) = &self.window {
                    let _ = window.send(Rebalanced::Assigned(assigned));
                }
                let assigned = self.offsets.assigned();
                self.metrics
                    .rebalanced(RebalanceKind::Assign, tpl.count(), assigned);
                tracing::info!(
                    message = "Partitions assigned.",
                    partitions = tpl.count(),
                    assigned
                );
                self.update_share(consumer);
            }
            Rebalance::Revoke(_) => self.update_share(consumer),
            Rebalance::Error(error) => {
                tracing::warn!(message = "Rebalance failed.", %error)
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.metrics.offsets_committed(Outcome::Success),
            // No stored offset changed since the last commit: nothing to count.
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => {}
            Err(error) => {
                self.metrics.offsets_committed(Outcome::Failure);
                tracing::warn!(message = "Offset commit failed.", %error);
            }
        }
    }
}

/// The consumer of this connector: librdkafka's stream consumer, whose last handle leaves the
/// group within [`CLOSE_TIMEOUT`] ([`BoundedDrop`]).
pub type CadConsumer = BoundedDrop<StreamConsumer<SourceContext>>;

/// How long dropping the last [`CadConsumer`] handle waits for librdkafka to close it. Leaving
/// the group takes milliseconds when the coordinator answers; the final synchronous commit in
/// [`crate::app`] has its own deadline before this.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the consumer, subscribes it, and plugs its offset store into `offsets`. With
/// `window` (`[schedule]` in `window` mode) records do not flow until [`set_flowing`], every
/// assigned partition is held until [`release`]d, and rebalances are told on `window`.
pub fn subscribe(
    clients: &KafkaClients,
    cfg: &KafkaConfig,
    offsets: &Offsets,
    metrics: &Metrics,
    on_share: ShareListener,
    window: Option<mpsc::UnboundedSender<Rebalanced>>,
) -> Result<Arc<CadConsumer>, SourceError> {
    let c = clients.source_consumer(cfg);
    let context = SourceContext {
        offsets: offsets.clone(),
        metrics: metrics.clone(),
        on_share,
        topics: cfg.topics.clone(),
        revoke_drain: cfg.revoke_drain_timeout,
        transactional: cfg.transactional_id.is_some(),
        abandoned: Default::default(),
        pauses: Mutex::new(Pauses {
            flowing: window.is_none(),
            ..Pauses::default()
        }),
        window,
    };
    let consumer: Arc<CadConsumer> = Arc::new(BoundedDrop::new(
        c.create_with_context(context)?,
        CLOSE_TIMEOUT,
        "source consumer",
    ));
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    if cfg.transactional_id.is_none() {
        offsets.set_store(Arc::new(KafkaOffsetStore(Arc::downgrade(&consumer))));
    }
    Ok(consumer)
}

/// Stores offsets in librdkafka's offset store (committed by auto-commit and at shutdown).
struct KafkaOffsetStore(Weak<CadConsumer>);

impl OffsetStore for KafkaOffsetStore {
    fn store(&self, topic: &str, partition: i32, next_offset: i64) -> Result<(), String> {
        let consumer = self.0.upgrade().ok_or("consumer closed")?;
        // Not `store_offset`: librdkafka's rd_kafka_offset_store stores `offset + 1`, while
        // rd_kafka_offsets_store stores the list's offsets as given (the next offset to read).
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(next_offset))
            .map_err(|e| e.to_string())?;
        consumer.store_offsets(&tpl).map_err(|e| e.to_string())
    }
}

/// The source stage; see the module header.
pub struct Source {
    /// Registers every consumed record's position.
    pub offsets: Offsets,
    /// `kafka.max_record_bytes`: larger records are not held (see [`Oversize`]).
    pub max_record_bytes: usize,
    /// How long the pipeline may stay full before the partitions are paused
    /// ([`pause_after`]).
    pub pause_after: Duration,
    /// Metrics.
    pub metrics: Metrics,
    /// Reads the gaps in fetched offsets ([`gaps`]).
    pub gaps: gaps::GapProbe,
    /// Shutdown: the only stage that watches it.
    pub cancel: CancellationToken,
}

impl Source {
    /// Consumes `input` until `cancel` fires or `output` closes; fails on a gap in a
    /// partition's offsets that can be neither shown empty nor read again.
    pub async fn run(
        self,
        input: Arc<CadConsumer>,
        output: mpsc::Sender<Envelope>,
    ) -> Result<(), SourceError> {
        let Self {
            offsets,
            max_record_bytes,
            pause_after,
            metrics,
            gaps,
            cancel,
        } = self;
        let gaps = GapCheck {
            probe: gaps,
            attempts: HashMap::new(),
        };
        consume(
            input,
            offsets,
            max_record_bytes,
            pause_after,
            metrics,
            gaps,
            output,
            cancel,
        )
        .await
    }
}

/// The source's side of gap handling: probes a gap ([`gaps::GapProbe`]) and either lets the
/// record that revealed it through or seeks the consumer back.
struct GapCheck {
    probe: gaps::GapProbe,
    /// `(topic, partition, from)` → attempts, for the gaps still open.
    attempts: HashMap<(String, i32, i64), u32>,
}

/// What the source does with the record that revealed a gap.
enum GapVerdict {
    /// Register it: the gap holds nothing readable.
    Register,
    /// Drop it: the consumer was sought back and reads the gap (and it) again.
    Reread,
}

impl GapCheck {
    /// The record at `offset` followed on: gaps of the partition before it are closed.
    fn passed(&mut self, topic: &str, partition: i32, offset: i64) {
        if !self.attempts.is_empty() {
            self.attempts
                .retain(|(t, p, from), _| !(t == topic && *p == partition && *from <= offset));
        }
    }

    /// Settles the gap `from..to` of `topic`/`partition`; see [`gaps`].
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &mut self,
        consumer: &CadConsumer,
        offsets: &Offsets,
        metrics: &Metrics,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<GapVerdict, SourceError> {
        let key = (topic.to_string(), partition, from);
        let attempt = {
            let n = self.attempts.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if attempt == 1 {
            tracing::warn!(
                message = "Offsets skipped by the broker; checking whether they hold records.",
                topic,
                partition,
                from,
                to,
                missing = to - from
            );
        }
        let fail = |reason: String| {
            metrics.offset_gap(GapOutcome::Unresolved);
            SourceError::Gap {
                topic: topic.to_string(),
                partition,
                from,
                to,
                reason,
            }
        };
        if attempt > GAP_ATTEMPTS {
            return Err(fail(format!(
                "still skipped after being read again {GAP_ATTEMPTS} times"
            )));
        }
        let probe = self.probe.clone();
        let t = topic.to_string();
        let probed = tokio::task::spawn_blocking(move || probe.probe(&t, partition, from, to))
            .await
            .map_err(|e| fail(e.to_string()))?;
        match probed {
            Ok(gaps::Probed::Empty) => {
                self.attempts.remove(&key);
                metrics.offset_gap(GapOutcome::Empty);
                tracing::info!(
                    message = "The skipped offsets hold no record; going on.",
                    topic,
                    partition,
                    from,
                    to
                );
                Ok(GapVerdict::Register)
            }
            Ok(gaps::Probed::Skipped { next, seek_to }) => {
                offsets.skip_to(topic, partition, next);
                if let Err(error) =
                    consumer.seek(topic, partition, Offset::Offset(seek_to), SEEK_TIMEOUT)
                {
                    // Revoked meanwhile: the next owner starts from the committed offset.
                    if offsets.continuity(topic, partition, next) == Continuity::Unassigned {
                        return Ok(GapVerdict::Reread);
                    }
                    return Err(fail(format!("cannot seek to {seek_to}: {error}")));
                }
                metrics.offset_gap(GapOutcome::Reread);
                tracing::warn!(
                    message = "The broker skipped records; reading them again.",
                    topic,
                    partition,
                    from = next,
                    to,
                    seek_to
                );
                // Once read again, the gap starts later (or is gone).
                self.attempts.remove(&key);
                self.attempts.insert((key.0, partition, next), attempt);
                Ok(GapVerdict::Reread)
            }
            Err(error) if attempt < GAP_ATTEMPTS => {
                tracing::warn!(
                    message = "Cannot read the skipped offsets; trying again.",
                    topic,
                    partition,
                    from,
                    to,
                    %error
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                // The record is dropped and fetched again from where the gap starts.
                if let Err(error) =
                    consumer.seek(topic, partition, Offset::Offset(from), SEEK_TIMEOUT)
                {
                    if offsets.continuity(topic, partition, from) == Continuity::Unassigned {
                        return Ok(GapVerdict::Reread);
                    }
                    return Err(fail(format!("cannot seek to {from}: {error}")));
                }
                Ok(GapVerdict::Reread)
            }
            Err(error) => Err(fail(error.to_string())),
        }
    }
}

/// Longest wait for the consumer to seek a partition back to a gap.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Backpressure without leaving the group: when the next stage's channel has been full for
/// [`pause_after`], every assigned partition is paused and the consumer keeps polling (so
/// librdkafka's `max.poll.interval.ms` never expires and rebalances are served), holding the
/// few records already fetched; when the channel has room again the records go out and the
/// partitions are resumed. A poll loop that simply stopped (the old behaviour) made the consumer leave its
/// group after `max.poll.interval.ms` of API outage.
#[allow(clippy::too_many_arguments)]
async fn consume(
    consumer: Arc<CadConsumer>,
    offsets: Offsets,
    max_record_bytes: usize,
    pause_after: Duration,
    metrics: Metrics,
    mut gaps: GapCheck,
    output: mpsc::Sender<Envelope>,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    // Records consumed but not yet handed on; bounded: while it is non-empty the partitions are
    // paused, so only records librdkafka had already queued can join it.
    let mut pending: VecDeque<Envelope> = VecDeque::new();
    'poll: loop {
        // Hand on what fits without waiting.
        while let Some(envelope) = pending.pop_front() {
            match output.try_send(envelope) {
                Ok(()) => {}
                Err(TrySendError::Full(envelope)) => {
                    pending.push_front(envelope);
                    break;
                }
                Err(TrySendError::Closed(_)) => break 'poll,
            }
        }
        if pending.is_empty() {
            set_paused(&consumer, false);
        } else if !consumer.context().backpressured() {
            // Full. A short stall (the API slower than the broker for a moment) is waited out
            // without polling, as librdkafka allows for `max.poll.interval.ms`; only a long one
            // (an outage) pauses the partitions. Pausing drops librdkafka's prefetched records
            // and refetches them on resume, which some brokers serve badly (Tansu 0.6 skips to
            // the next producer batch when a fetch starts inside one), so it is kept for the
            // stalls that need it.
            tokio::select! {
                _ = cancel.cancelled() => break,
                permit = tokio::time::timeout(pause_after, output.reserve()) => match permit {
                    Ok(Ok(permit)) => {
                        permit.send(pending.pop_front().expect("non-empty"));
                        continue;
                    }
                    Ok(Err(_)) => break,
                    Err(_full_for_long) => set_paused(&consumer, true),
                },
            }
        }
        let message = tokio::select! {
            // Shutdown with records held: they stay uncommitted and are redelivered.
            _ = cancel.cancelled() => break,
            permit = output.reserve(), if !pending.is_empty() => match permit {
                Ok(permit) => {
                    permit.send(pending.pop_front().expect("non-empty"));
                    continue;
                }
                Err(_) => break,
            },
            m = consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(message = "Kafka consumer error.", %error);
                continue;
            }
        };
        // Never register past an offset not seen: a gap is settled first (see `gaps`).
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        match offsets.continuity(topic, partition, offset) {
            Continuity::Next => gaps.passed(topic, partition, offset),
            Continuity::BelowStart { start } => tracing::warn!(
                message = "Partition log shorter than its committed offset; reading from where the consumer was reset.",
                topic,
                partition,
                committed = start,
                offset
            ),
            // A refetch after a seek back, or a record of a partition no longer assigned.
            Continuity::Seen | Continuity::Unassigned => continue,
            Continuity::Gap { from, to } => {
                let settled = tokio::select! {
                    _ = cancel.cancelled() => break,
                    settled = gaps.settle(&consumer, &offsets, &metrics, topic, partition, from, to) => settled?,
                };
                match settled {
                    GapVerdict::Register => {}
                    GapVerdict::Reread => continue,
                }
            }
        }
        let Some(pos) = offsets.register(topic, partition, offset) else {
            continue;
        };
        metrics.record_consumed(message.topic());
        // As bytes: rdkafka's accessor panics on a key that is not UTF-8 (kafka::headers).
        let headers = headers::read(&message);
        let traceparent = headers
            .iter()
            .find(|(k, _)| k == b"traceparent")
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| is_traceparent(v))
            .map(str::to_string);
        let (key, payload) = (message.key(), message.payload());
        let header_bytes: usize = headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let bytes = key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len) + header_bytes;
        let envelope = if bytes > max_record_bytes {
            // Never held: the value goes, and a key or headers too large to keep.
            Envelope {
                pos,
                key: key
                    .filter(|k| k.len() <= OVERSIZE_KEY_KEPT)
                    .map(<[u8]>::to_vec),
                payload: None,
                headers: if header_bytes <= OVERSIZE_HEADERS_KEPT {
                    headers
                } else {
                    Vec::new()
                },
                timestamp_ms: message.timestamp().to_millis(),
                traceparent,
                oversize: Some(Oversize {
                    bytes,
                    sha256: sha256_hex(payload.unwrap_or_default()),
                }),
            }
        } else {
            Envelope {
                pos,
                key: key.map(<[u8]>::to_vec),
                payload: payload.map(<[u8]>::to_vec),
                headers,
                timestamp_ms: message.timestamp().to_millis(),
                traceparent,
                oversize: None,
            }
        };
        pending.push_back(envelope);
    }
    tracing::info!(message = "Source stopped polling.");
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::telemetry::hex(&sha2::Sha256::digest(bytes))
}

/// How long a full pipeline is waited out without polling before the partitions are paused: a
/// quarter of librdkafka's `max.poll.interval.ms` (from `kafka.properties`, else its default
/// 300 s), at most 10 s, so the consumer always polls well within the interval.
pub fn pause_after(properties: &std::collections::BTreeMap<String, String>) -> Duration {
    let interval_ms = properties
        .get("max.poll.interval.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300_000);
    Duration::from_millis(interval_ms / 4).min(Duration::from_secs(10))
}

/// Pauses (or resumes) every assigned partition for backpressure, once per change of state.
fn set_paused(consumer: &CadConsumer, paused: bool) {
    let context = consumer.context();
    {
        let mut p = context.pauses();
        if p.backpressure == paused {
            return;
        }
        p.backpressure = paused;
    }
    context.apply_pauses(&**consumer);
    context.metrics.source_paused(paused);
    if paused {
        tracing::debug!(message = "Pipeline full: partitions paused.");
    } else {
        tracing::debug!(message = "Partitions resumed.");
    }
}

/// Window mode: lets records flow (the window is open) or stops them (closed). Stopping pauses
/// every assigned partition at once; records already taken from librdkafka still go on.
pub fn set_flowing(consumer: &CadConsumer, flowing: bool) {
    let context = consumer.context();
    context.pauses().flowing = flowing;
    context.apply_pauses(&**consumer);
}

/// Window mode: holds `partitions` (paused until [`release`]d), e.g. every assigned one when a
/// window opens, until the window pass has indexed their backlog.
pub fn hold(consumer: &CadConsumer, partitions: &[PartitionId]) {
    let context = consumer.context();
    context.pauses().held.extend(partitions.iter().cloned());
    context.apply_pauses(&**consumer);
}

/// Window mode: `partitions` may run again (when records flow and the pipeline has room).
pub fn release(consumer: &CadConsumer, partitions: &[PartitionId]) {
    let context = consumer.context();
    {
        let mut p = context.pauses();
        for id in partitions {
            p.held.remove(id);
        }
    }
    context.apply_pauses(&**consumer);
}

/// The partitions assigned to `consumer` now.
pub fn assigned(consumer: &CadConsumer) -> Vec<PartitionId> {
    consumer
        .assignment()
        .map(|a| {
            a.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        })
        .unwrap_or_default()
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, as W3C Trace Context defines it.
fn is_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_are_checked_for_shape() {
        assert!(is_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent("00-xyz-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("not a header"));
    }
}
