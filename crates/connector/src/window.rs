//! Window: NHS England's daily submission window (`[schedule]` in `window` mode), run over the
//! Kafka backlog so that only the newest snapshot of each call is POSTed.
//!
//! NHS England, "Flowing ADS data" (digital.nhs.uk): "The data items are to flow daily between
//! 3am and 6am", and "the latest submission overwrites the last … there is no need to re-submit
//! an open item as the next submission will correct it by default".
//!
//! Two stages:
//!
//! * [`WindowPass`] drives the source by the [`Schedule`] and its [`Clock`]. Input: the source's
//!   [`Rebalanced`] events. Output: the source's flow ([`source::set_flowing`], [`source::hold`],
//!   [`source::release`]), the shared [`Indexes`], the token provider's activity and the
//!   schedule metrics. Outside the window (*waiting*) records do not flow, no token is requested,
//!   the consumer keeps polling (group membership and committed position kept) and Kafka holds
//!   the backlog. When the window opens, every assigned partition is held while a first pass
//!   reads its backlog, from the committed offset to the high watermark seen at the opening, with
//!   a consumer of its own that joins no group and commits nothing; each record is decoded and
//!   mapped exactly as the transform does, and a valid one is recorded in a [`NewestIndex`] (call
//!   key → newest `snapshot_at` and its offset: about 66 bytes a call, capped at
//!   [`INDEX_MEMORY_PER_PARTITION`]). The partition is then released and the second pass is the
//!   ordinary pipeline. A partition assigned while the window is open is held and indexed the
//!   same way before it runs. At closing time the flow stops (`on_overrun = "stop"`: no record
//!   is handed on after it, and what was already handed on finishes, *draining*), or, with
//!   `"continue"`, goes on until the backlog indexed at the opening is done. A window that
//!   closes with backlog left counts in `ads_connector_schedule_windows_unfinished_total`.
//! * [`Coalescer`] sits between the transform and the batcher. Input: mapped calls in partition
//!   order. Output: the calls to submit, to the batcher, and, for a call whose index says a newer
//!   snapshot of it is in the backlog, a [`SupersededRecord`] to the acker (ack outcome
//!   `superseded`, naming the offset of the newer record) instead of a POST. Records the index
//!   does not cover (arrived after the opening, a partition whose first pass failed, an index
//!   past its memory cap) are submitted as in continuous mode: coalescing saves POSTs, never a
//!   record.
//!
//! Ordering and guarantees: the source and the rest of the pipeline are unchanged, so every
//! consumed record still ends as one ack or one dead letter before its offset is committed, and
//! the per-call fence still holds. A superseded record is acked before its newer snapshot is
//! POSTed; the newer one sits at a higher offset (or was handed on earlier), so a crash between
//! the two redelivers the newer one, never loses it. Failures: a first pass that fails (the
//! broker, a timeout) leaves that partition without an index, logged; nothing here is fatal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::acker::SupersededRecord;
use crate::auth::TokenProvider;
use crate::batcher::MappedCall;
use crate::mapping::MappingOptions;
use crate::metrics::{Metrics, ScheduleLabel};
use crate::offsets::{Offsets, RecordPos};
use crate::rate_limit::RateLimiter;
use crate::schedule::{
    sleep_until, Clock, NewestIndex, OnOverrun, Schedule, ScheduleState, Verdict, Wake,
};
use crate::source::{self, CadConsumer, Envelope, PartitionId, Rebalanced};
use crate::transform::{self, Transformed};

/// The most heap one partition's newest-snapshot index may use (about a million calls); past it
/// the index covers the offsets read so far and later records are submitted uncoalesced.
pub const INDEX_MEMORY_PER_PARTITION: usize = 64 * 1024 * 1024;

/// The shortest source-topic retention window mode is safe with: the records of a day wait up
/// to a day for the window, and a window that is missed (an outage from 03:00 to 06:00) makes
/// them wait one more day. Kafka's own default is 7 days.
pub const MIN_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// What is wrong with a topic's `retention.ms` for window mode, if anything (`-1` is forever).
pub fn retention_problem(topic: &str, retention_ms: i64) -> Option<String> {
    let min_ms = MIN_RETENTION.as_millis() as i64;
    (retention_ms >= 0 && retention_ms < min_ms).then(|| {
        format!(
            "topic {topic} keeps records {} hours (retention.ms {retention_ms}); in window mode \
             the backlog waits up to a day, two if a window is missed: set retention.ms to at \
             least {min_ms} ({} hours)",
            retention_ms / 3_600_000,
            min_ms / 3_600_000
        )
    })
}

/// Asks the broker for the source topics' `retention.ms` and logs a warning for each one
/// shorter than [`MIN_RETENTION`] ([`retention_problem`]). A broker that cannot say (no
/// DescribeConfigs) is logged at info level and nothing else happens.
pub async fn warn_on_short_retention(admin: ClientConfig, topics: Vec<String>) {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let client: AdminClient<DefaultClientContext> = match admin.create() {
        Ok(c) => c,
        Err(error) => {
            tracing::info!(message = "Cannot check the source topics' retention.", %error);
            return;
        }
    };
    let specifiers: Vec<ResourceSpecifier> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(BROKER_TIMEOUT));
    let results = match client.describe_configs(&specifiers, &options).await {
        Ok(results) => results,
        Err(error) => {
            tracing::info!(message = "Cannot check the source topics' retention.", %error);
            return;
        }
    };
    for (topic, result) in topics.iter().zip(results) {
        let retention = result.ok().and_then(|resource| {
            resource
                .get("retention.ms")
                .and_then(|entry| entry.value.as_deref())
                .and_then(|v| v.parse::<i64>().ok())
        });
        match retention {
            Some(ms) => {
                if let Some(problem) = retention_problem(topic, ms) {
                    tracing::warn!(message = "Source topic retention too short for window mode.", %problem);
                }
            }
            None => tracing::info!(
                message = "The broker did not report a source topic's retention.ms.",
                topic = %topic
            ),
        }
    }
}

/// librdkafka's prefetch of the first pass's reader (`queued.max.messages.kbytes`).
const SCAN_PREFETCH_KIB: &str = "8192";

/// Past the high watermark seen at the opening, this long without a record ends a first pass
/// (when the broker sends no end-of-partition).
const SCAN_QUIET_END: Duration = Duration::from_secs(2);

/// How long the first pass waits for the broker without a record before giving up a partition.
const SCAN_IDLE_LIMIT: Duration = Duration::from_secs(60);

/// How often the pass looks at the backlog's progress while the window is open or draining.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Timeout of each broker request of the pass (committed offsets, watermarks).
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pass's result for each partition, shared by [`WindowPass`] and [`Coalescer`]:
/// topic → partition → index, so that the coalescer finds a record's index by its `&str` topic
/// without building a key for every record.
#[derive(Clone, Default)]
pub struct Indexes(Arc<Mutex<HashMap<String, HashMap<i32, NewestIndex>>>>);

impl Indexes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<i32, NewestIndex>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The verdict for the record at `pos`, a snapshot of `call_key` taken at `snapshot_at`;
    /// then every record of the partition up to `pos` is forgotten (the second pass reads in
    /// order), and the partition's index is dropped once its whole range is passed.
    fn verdict(&self, pos: &RecordPos, call_key: &[u8], snapshot_at: DateTime<Utc>) -> Verdict {
        let mut indexes = self.lock();
        let Some(partitions) = indexes.get_mut(&*pos.topic) else {
            return Verdict::Unknown;
        };
        let Some(index) = partitions.get_mut(&pos.partition) else {
            return Verdict::Unknown;
        };
        let verdict = index.verdict(call_key, snapshot_at.timestamp_micros(), pos.offset);
        index.forget_through(pos.offset);
        if index.range().is_none_or(|(_, last)| pos.offset >= last) {
            partitions.remove(&pos.partition);
            if partitions.is_empty() {
                indexes.remove(&*pos.topic);
            }
        }
        verdict
    }

    fn install(&self, (topic, partition): PartitionId, index: NewestIndex) {
        self.lock()
            .entry(topic)
            .or_default()
            .insert(partition, index);
    }

    fn remove(&self, (topic, partition): &PartitionId) {
        let mut indexes = self.lock();
        if let Some(partitions) = indexes.get_mut(topic) {
            partitions.remove(partition);
            if partitions.is_empty() {
                indexes.remove(topic);
            }
        }
    }

    /// Heap bytes held by every index (the memory the pass costs).
    pub fn memory_bytes(&self) -> usize {
        self.lock()
            .values()
            .flat_map(HashMap::values)
            .map(NewestIndex::memory_bytes)
            .sum()
    }
}

/// The coalescing stage; see the module header.
pub struct Coalescer {
    /// The first pass's indexes.
    pub indexes: Indexes,
    /// Open (`true`) while records may go on to be submitted: the [`WindowPass`] closes it at
    /// closing time, so no new submission starts after the window.
    pub gate: tokio::sync::watch::Receiver<bool>,
    /// Which records are still this consumer's (a record of a partition revoked since it was
    /// consumed is dropped here: its offset is not committed, and its new owner has it).
    pub offsets: Offsets,
    /// Shutdown while the gate is closed: records held here are left uncommitted (redelivered)
    /// instead of waiting for the next window.
    pub cancel: CancellationToken,
}

/// Where the coalescer sends its records.
pub struct CoalescerOutput {
    /// Calls to submit, to the batcher.
    pub mapped: mpsc::Sender<MappedCall>,
    /// Records a newer snapshot replaces, to the acker.
    pub superseded: mpsc::Sender<SupersededRecord>,
}

impl Coalescer {
    /// Runs until the input closes (or shutdown while the gate is closed), then drops both
    /// senders.
    pub async fn run(mut self, mut input: mpsc::Receiver<MappedCall>, output: CoalescerOutput) {
        while let Some(call) = input.recv().await {
            if !*self.gate.borrow() {
                tokio::select! {
                    opened = self.gate.wait_for(|open| *open) => if opened.is_err() { return },
                    () = self.cancel.cancelled() => return,
                }
            }
            if !self.offsets.is_current(&call.envelope.pos) {
                tracing::debug!(
                    message = "Record of a revoked partition dropped; its new owner has it."
                );
                continue;
            }
            let verdict = self.indexes.verdict(
                &call.envelope.pos,
                call.call_key.as_bytes(),
                call.snapshot_at,
            );
            let sent = match verdict {
                Verdict::Superseded { by_offset } => output
                    .superseded
                    .send(SupersededRecord {
                        envelope: call.envelope,
                        call_id: call.call_id,
                        provider_ods: call.provider_ods,
                        bundle_id: call.bundle_id,
                        by_offset,
                    })
                    .await
                    .is_ok(),
                Verdict::Submit | Verdict::Unknown => output.mapped.send(call).await.is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
}

/// The first pass's client callbacks: the end of a partition is what the pass waits for, not an
/// error (librdkafka also reports it as a client-wide error event, which its default context
/// would log at ERROR level on every pass).
struct ScanContext;

impl rdkafka::ClientContext for ScanContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_)
            | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF) => {}
            error => tracing::warn!(message = "Window pass reader error.", %error, reason),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ScanContext {}

/// What the first pass needs to read a partition's backlog.
#[derive(Clone)]
pub struct Scanner {
    /// The source's consumer settings (bootstrap, security, isolation level); the pass joins
    /// no group and commits nothing.
    pub consumer: ClientConfig,
    /// How records are mapped: the same as the transform.
    pub options: MappingOptions,
    /// `kafka.max_record_bytes`: larger records are dead-lettered, never indexed.
    pub max_record_bytes: usize,
    /// Heap cap of each partition's index.
    pub memory_limit: usize,
}

/// One partition's first pass.
#[derive(Debug)]
pub struct Scanned {
    /// Call key → newest snapshot, over the records read.
    pub index: NewestIndex,
    /// Records read.
    pub records: u64,
    /// First offset of the backlog (the committed position).
    pub from: i64,
    /// One past the last offset of the backlog (the high watermark at the opening).
    pub to: i64,
}

/// Why a first pass gave up a partition (its records are then submitted uncoalesced).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The broker refused a request of the pass.
    #[error("the broker refused the window pass's read: {0}")]
    Kafka(#[from] KafkaError),
    /// No record came for [`SCAN_IDLE_LIMIT`] before the end of the backlog.
    #[error("no record for {0:?} before the end of the backlog")]
    Stalled(Duration),
    /// The pass panicked (a bug).
    #[error("the window pass panicked: {0}")]
    Panicked(String),
}

impl Scanner {
    /// Reads `topic`/`partition` from `from` to its end (at least `to`, the high watermark at the
    /// opening) and indexes every record that maps. Blocking: run it on a blocking thread.
    pub fn scan(&self, id: &PartitionId, from: i64, to: i64) -> Result<Scanned, ScanError> {
        let mut index = NewestIndex::with_memory_limit(self.memory_limit);
        let mut records = 0u64;
        // The end is where the broker's fetch answers say the log ends (librdkafka's partition
        // EOF), at least `to`: a broker whose ListOffsets lags its log (Tansu 0.6) would
        // otherwise cut the backlog short. Without an EOF, a quiet spell past `to` ends it.
        let mut end = from;
        let consumer: BaseConsumer<ScanContext> = self
            .consumer
            .clone()
            // Reads by `assign`, joins no group, stores and commits nothing.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // One partition at a time, read once: a small prefetch is enough, and the
            // pass must not add the source's whole prefetch budget to the process.
            .set("queued.max.messages.kbytes", SCAN_PREFETCH_KIB)
            .create_with_context(ScanContext)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&id.0, id.1, Offset::Offset(from))?;
        consumer.assign(&tpl)?;
        let topic: Arc<str> = Arc::from(id.0.as_str());
        let mut idle_since = Instant::now();
        loop {
            let message = match consumer.poll(Duration::from_millis(200)) {
                None => {
                    if end >= to && idle_since.elapsed() >= SCAN_QUIET_END {
                        break;
                    }
                    if idle_since.elapsed() >= SCAN_IDLE_LIMIT {
                        return Err(ScanError::Stalled(SCAN_IDLE_LIMIT));
                    }
                    continue;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(error)) => {
                    // librdkafka reports transient broker errors here and retries by itself.
                    tracing::debug!(message = "Window pass read error; retrying.", %error);
                    continue;
                }
                Some(Ok(m)) => m,
            };
            idle_since = Instant::now();
            let offset = message.offset();
            end = offset + 1;
            records += 1;
            let (key, payload) = (message.key(), message.payload());
            let bytes = key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len);
            if bytes <= self.max_record_bytes {
                let envelope = Envelope {
                    pos: RecordPos {
                        topic: topic.clone(),
                        partition: id.1,
                        offset,
                        generation: 0,
                    },
                    key: None,
                    payload: payload.map(<[u8]>::to_vec),
                    headers: Vec::new(),
                    timestamp_ms: None,
                    traceparent: None,
                    oversize: None,
                };
                if let Transformed::Mapped(call) = transform::transform(envelope, &self.options) {
                    let micros = call.snapshot_at.timestamp_micros();
                    match index.observe(call.call_key.as_bytes(), micros, offset) {
                        Ok(()) | Err(crate::schedule::ObserveError::KeyTooLong { .. }) => {}
                        Err(error) => {
                            tracing::warn!(
                                message = "Window pass index full; later records of the partition are submitted uncoalesced.",
                                topic = %id.0, partition = id.1, %error
                            );
                            break;
                        }
                    }
                }
            }
        }
        Ok(Scanned {
            index,
            records,
            from,
            to: end.max(to),
        })
    }
}

/// The window controller; see the module header.
pub struct WindowPass {
    /// When submissions may run (`Schedule::Window`).
    pub schedule: Schedule,
    /// The clock it is timed by (the system's, or a manual one in tests and the demo).
    pub clock: Arc<dyn Clock>,
    /// The first pass.
    pub scanner: Scanner,
    /// Where the indexes go.
    pub indexes: Indexes,
    /// Which records are done (the backlog's progress).
    pub offsets: Offsets,
    /// Opens and closes the [`Coalescer`]'s gate.
    pub gate: tokio::sync::watch::Sender<bool>,
    /// Told to stop requesting tokens outside the window.
    pub tokens: Arc<TokenProvider>,
    /// Closed outside the window: no request goes, one already waiting for it included.
    pub limiter: Arc<RateLimiter>,
    /// Metrics.
    pub metrics: Metrics,
    /// Ends the pass (the pipeline is shutting down).
    pub cancel: CancellationToken,
}

/// A partition's backlog as indexed at the opening: done when its watermark reaches `to`.
struct Backlog {
    from: i64,
    to: i64,
}

impl WindowPass {
    /// Runs until `cancel`; `input` carries the source's rebalances, `output` is the source's
    /// consumer, whose flow it drives.
    pub async fn run(
        self,
        mut input: mpsc::UnboundedReceiver<Rebalanced>,
        output: Arc<CadConsumer>,
    ) {
        let Schedule::Window { on_overrun, .. } = self.schedule else {
            return;
        };
        loop {
            let now = self.clock.now();
            match self.schedule.state_at(now) {
                ScheduleState::Always => return,
                ScheduleState::Closed { opens_at } => {
                    source::set_flowing(&output, false);
                    self.gate.send_replace(false);
                    self.limiter.set_open(false);
                    self.tokens.set_active(false);
                    self.metrics
                        .schedule_state(ScheduleLabel::Waiting, Some(opens_at.timestamp()));
                    tracing::info!(
                        message = "Submission window closed; waiting for the next opening.",
                        opens_at = %opens_at
                    );
                    // Rebalances while waiting need nothing: partitions are held as they come,
                    // and every assigned one is indexed at the opening.
                    let wait = sleep_until(self.clock.as_ref(), opens_at, &self.cancel);
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            wake = &mut wait => {
                                if wake == Wake::Cancelled {
                                    return;
                                }
                                break;
                            }
                            event = input.recv() => match event {
                                Some(Rebalanced::Revoked(ids)) => ids.iter().for_each(|id| self.indexes.remove(id)),
                                Some(Rebalanced::Assigned(_)) => {}
                                None => return,
                            },
                        }
                    }
                }
                ScheduleState::Open { closes_at } => {
                    if !self.open(closes_at, on_overrun, &mut input, &output).await {
                        return;
                    }
                }
            }
        }
    }

    /// One window, from its opening to the end of its drain. `false` when cancelled.
    async fn open(
        &self,
        closes_at: DateTime<Utc>,
        on_overrun: OnOverrun,
        input: &mut mpsc::UnboundedReceiver<Rebalanced>,
        consumer: &Arc<CadConsumer>,
    ) -> bool {
        let opened = Instant::now();
        self.metrics.schedule_state(ScheduleLabel::Open, None);
        self.tokens.set_active(true);
        self.limiter.set_open(true);
        tracing::info!(message = "Submission window open.", closes_at = %closes_at);
        let assigned = source::assigned(consumer);
        source::hold(consumer, &assigned);
        source::set_flowing(consumer, true);
        // Records held since the last closing go on once their partition is indexed again:
        // the index is installed before the partition is released, and they come first.
        let mut backlogs: HashMap<PartitionId, Backlog> = HashMap::new();
        let (records, calls) = self.index(consumer, &assigned, &mut backlogs).await;
        self.gate.send_replace(true);
        self.metrics.schedule_backlog_at_opening(records, calls);
        tracing::info!(
            message = "Window backlog indexed.",
            partitions = assigned.len(),
            records,
            calls
        );
        let (mut records, mut calls) = (records, calls);
        let mut reported = false;
        let mut closing = false;
        let deadline = sleep_until(self.clock.as_ref(), closes_at, &self.cancel);
        tokio::pin!(deadline);
        loop {
            // Drained: every partition indexed so far has sent its backlog. Before the first
            // assignment there is nothing to drain, and nothing to wait for either.
            let drained = self.backlog_left(&backlogs) == 0;
            if drained && !backlogs.is_empty() && !reported {
                reported = true;
                self.metrics.schedule_drained(opened.elapsed().as_secs());
                tracing::info!(
                    message = "Window backlog sent.",
                    seconds = opened.elapsed().as_secs()
                );
            }
            if closing && (on_overrun == OnOverrun::Stop || drained) {
                break;
            }
            tokio::select! {
                wake = &mut deadline, if !closing => {
                    if wake == Wake::Cancelled {
                        return false;
                    }
                    closing = true;
                    if on_overrun == OnOverrun::Continue && !drained {
                        self.metrics.schedule_state(ScheduleLabel::Draining, None);
                        tracing::info!(message = "Submission window closed; on_overrun = continue: sending the rest of the backlog.");
                    }
                }
                event = input.recv() => match event {
                    Some(Rebalanced::Assigned(ids)) => {
                        let fresh: Vec<PartitionId> =
                            ids.into_iter().filter(|id| !backlogs.contains_key(id)).collect();
                        let (more_records, more_calls) =
                            self.index(consumer, &fresh, &mut backlogs).await;
                        (records, calls) = (records + more_records, calls + more_calls);
                        self.metrics.schedule_backlog_at_opening(records, calls);
                    }
                    Some(Rebalanced::Revoked(ids)) => {
                        for id in &ids {
                            self.indexes.remove(id);
                            backlogs.remove(id);
                        }
                    }
                    None => return false,
                },
                () = tokio::time::sleep(PROGRESS_EVERY) => {}
                () = self.cancel.cancelled() => return false,
            }
        }
        // Closing: no record is consumed or goes on to the batcher, and no request is sent, from
        // now; requests already sent finish (a submission waiting for the limiter, or to retry,
        // waits for the next window).
        source::set_flowing(consumer, false);
        self.gate.send_replace(false);
        self.limiter.set_open(false);
        let left = self.backlog_left(&backlogs);
        self.metrics.schedule_closed(left);
        if left > 0 {
            tracing::warn!(
                message = "Submission window closed before its backlog was sent; the rest waits for the next window.",
                records_left = left
            );
        }
        for id in backlogs.keys() {
            self.indexes.remove(id);
        }
        true
    }

    /// Records of the backlogs indexed at the opening that are not yet done.
    fn backlog_left(&self, backlogs: &HashMap<PartitionId, Backlog>) -> u64 {
        backlogs
            .iter()
            .map(|((topic, partition), b)| {
                let done = self.offsets.watermark(topic, *partition).unwrap_or(b.from);
                u64::try_from(b.to - done).unwrap_or(0)
            })
            .sum()
    }

    /// Reads the backlog of `ids` (held), installs their indexes, releases them; returns the
    /// records read and distinct calls found.
    async fn index(
        &self,
        consumer: &Arc<CadConsumer>,
        ids: &[PartitionId],
        backlogs: &mut HashMap<PartitionId, Backlog>,
    ) -> (u64, u64) {
        let (mut records, mut calls) = (0, 0);
        for id in ids {
            let bounds = {
                let (consumer, id) = (consumer.clone(), id.clone());
                tokio::task::spawn_blocking(move || backlog_bounds(&consumer, &id)).await
            };
            let scanned = match bounds {
                Ok(Ok((from, to))) => {
                    let (scanner, id) = (self.scanner.clone(), id.clone());
                    tokio::task::spawn_blocking(move || scanner.scan(&id, from, to))
                        .await
                        .unwrap_or_else(|join| Err(ScanError::Panicked(join.to_string())))
                }
                Ok(Err(error)) => Err(ScanError::Kafka(error)),
                Err(join) => Err(ScanError::Panicked(join.to_string())),
            };
            match scanned {
                Ok(s) => {
                    records += s.records;
                    calls += s.index.len() as u64;
                    backlogs.insert(
                        id.clone(),
                        Backlog {
                            from: s.from,
                            to: s.to,
                        },
                    );
                    self.indexes.install(id.clone(), s.index);
                }
                Err(error) => tracing::warn!(
                    message = "Window pass could not index a partition; its records are submitted uncoalesced.",
                    topic = %id.0, partition = id.1, %error
                ),
            }
            source::release(consumer, std::slice::from_ref(id));
        }
        (records, calls)
    }
}

/// The backlog of a partition: from its committed offset (the low watermark when there is none,
/// or when retention deleted it) to its high watermark now.
fn backlog_bounds(consumer: &CadConsumer, id: &PartitionId) -> Result<(i64, i64), KafkaError> {
    let (low, high) = consumer.fetch_watermarks(&id.0, id.1, BROKER_TIMEOUT)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&id.0, id.1);
    let committed = consumer.committed_offsets(tpl, BROKER_TIMEOUT)?;
    let from = committed
        .find_partition(&id.0, id.1)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .unwrap_or(low)
        .max(low);
    Ok((from, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(offsets: &Offsets, offset: i64, key: &str, minute: u32) -> MappedCall {
        let pos = offsets.register("cad", 0, offset).expect("assigned");
        MappedCall {
            envelope: Envelope {
                pos,
                key: Some(key.as_bytes().to_vec()),
                payload: None,
                headers: Vec::new(),
                timestamp_ms: None,
                traceparent: None,
                oversize: None,
            },
            call_key: format!("RX6/{key}").into(),
            call_id: key.into(),
            provider_ods: "RX6".into(),
            bundle_id: uuid::Uuid::nil(),
            snapshot_at: DateTime::parse_from_rfc3339(&format!("2026-12-01T10:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            bytes: Vec::new(),
            missing_at_close: Vec::new(),
        }
    }

    struct Stage {
        input: mpsc::Sender<MappedCall>,
        mapped: mpsc::Receiver<MappedCall>,
        superseded: mpsc::Receiver<SupersededRecord>,
        gate: tokio::sync::watch::Sender<bool>,
    }

    fn start(indexes: Indexes, offsets: Offsets) -> Stage {
        let (input, input_rx) = mpsc::channel(16);
        let (mapped_tx, mapped) = mpsc::channel(16);
        let (superseded_tx, superseded) = mpsc::channel(16);
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let coalescer = Coalescer {
            indexes,
            gate: gate_rx,
            offsets,
            cancel: CancellationToken::new(),
        };
        let output = CoalescerOutput {
            mapped: mapped_tx,
            superseded: superseded_tx,
        };
        tokio::spawn(coalescer.run(input_rx, output));
        Stage {
            input,
            mapped,
            superseded,
            gate,
        }
    }

    #[tokio::test]
    async fn the_coalescer_holds_records_while_the_gate_is_closed_and_then_sends_only_the_newest_snapshot(
    ) {
        let offsets = Offsets::new();
        offsets.assign("cad", 0);
        // The first pass saw call A at offsets 0 (10:00) and 2 (10:05), call B at offset 1.
        let mut index = NewestIndex::new();
        let micros = |minute: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-12-01T10:{minute:02}:00Z"))
                .unwrap()
                .timestamp_micros()
        };
        index.observe(b"RX6/A", micros(0), 0).unwrap();
        index.observe(b"RX6/B", micros(1), 1).unwrap();
        index.observe(b"RX6/A", micros(5), 2).unwrap();
        let indexes = Indexes::default();
        indexes.install(("cad".into(), 0), index);
        let mut stage = start(indexes.clone(), offsets.clone());

        stage.input.send(call(&offsets, 0, "A", 0)).await.unwrap();
        stage.input.send(call(&offsets, 1, "B", 1)).await.unwrap();
        stage.input.send(call(&offsets, 2, "A", 5)).await.unwrap();
        tokio::task::yield_now().await;
        assert!(
            stage.mapped.try_recv().is_err(),
            "nothing goes on while the gate is closed"
        );
        assert!(stage.superseded.try_recv().is_err());

        stage.gate.send_replace(true);
        let old = stage.superseded.recv().await.unwrap();
        assert_eq!((old.envelope.pos.offset, old.by_offset), (0, 2));
        let sent: Vec<i64> = [
            stage.mapped.recv().await.unwrap(),
            stage.mapped.recv().await.unwrap(),
        ]
        .iter()
        .map(|c| c.envelope.pos.offset)
        .collect();
        assert_eq!(sent, [1, 2]);
        assert!(stage.superseded.try_recv().is_err());
        // The whole range is passed: the index is given back.
        assert_eq!(indexes.memory_bytes(), 0);
    }

    #[tokio::test]
    async fn a_record_of_a_partition_revoked_since_it_was_consumed_is_dropped_not_sent() {
        let offsets = Offsets::new();
        offsets.assign("cad", 0);
        let stale = call(&offsets, 0, "A", 0);
        // Revoked and assigned again (another generation): its new owner has the record.
        offsets.revoke("cad", 0);
        offsets.assign("cad", 0);
        let current = call(&offsets, 1, "B", 1);
        let mut stage = start(Indexes::default(), offsets.clone());
        stage.gate.send_replace(true);
        stage.input.send(stale).await.unwrap();
        stage.input.send(current).await.unwrap();
        let sent = stage.mapped.recv().await.unwrap();
        assert_eq!(sent.envelope.pos.offset, 1);
        drop(stage.input);
        assert!(stage.mapped.recv().await.is_none());
        assert!(stage.superseded.recv().await.is_none());
    }

    #[test]
    fn retention_shorter_than_two_days_is_a_problem_and_forever_is_not() {
        assert!(retention_problem("cad", 24 * 3_600_000).is_some());
        let text = retention_problem("cad", 3_600_000).unwrap();
        assert!(text.contains("topic cad keeps records 1 hours"), "{text}");
        assert!(text.contains("at least 172800000 (48 hours)"), "{text}");
        assert_eq!(retention_problem("cad", 48 * 3_600_000), None);
        assert_eq!(retention_problem("cad", 7 * 24 * 3_600_000), None);
        assert_eq!(retention_problem("cad", -1), None);
    }
}
