//! The DPS error poller: MESH inbox → `ads.dps-error.v1` records on the errors topic.
//!
//! Input: the trust's MESH mailbox (messages of the configured workflow ids) and the
//! [`Correlator`] fed from the ack topic. Output: for each MESH message, one record per call it
//! reports (key = call id when known, else the MESH message id), or one `format: "unknown"`
//! record holding the whole body when no parser recognises it. Guarantee: a MESH message is
//! acknowledged (and so deleted by MESH) only after every record made from it has been written
//! and acknowledged by the broker (`acks=all`, idempotent producer); a crash in between publishes
//! it again on the next poll, never loses it. Ordering: messages in inbox order, one at a time.
//! Across replicas: only the holder of the [`Lease`] polls, and it handles each message under
//! [`Lease::work`], so a handover never splits one message between two replicas.
//!
//! Correlation: a notification whose submission id is not (yet) on the ack topic is left in
//! MESH and retried on later polls for up to `correlation_wait_s` (the ack of a submission is
//! written after the API answers, and a restarted poller first re-reads the ack topic); after
//! that it is published with `correlated: false`. Failures: MESH or Kafka errors end the current
//! poll (logged, counted by kind) and the next poll retries; they never stop the pipeline, whose
//! delivery to the API does not depend on MESH. Message bodies are never logged.
//!
//! MESH's rhythm (NHS England's MESH API specification, `NHSDigital/mesh-api-specification`,
//! `specification/mesh-api.yaml`): a poll every `mesh.poll_interval_s` (5 minutes to a day,
//! checked by `config::mesh`), and a handshake ("Validate a mailbox") at start and then again
//! before a poll once the next poll might come [`HANDSHAKE_EVERY`] after the last successful
//! one ([`handshake_due`]). The specification: "Validate your mailbox once every 24 hours"; the
//! endpoint "is similar to a keep-alive or ping message, in that it allows monitoring on the
//! Spine to be aware of the active use of a mailbox". A failed handshake is logged and tried
//! again before the next poll. Only the lease holder polls, so only it repeats the handshake.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use super::client::{MeshClient, MeshError, MeshMessage};
use super::correlation::Correlator;
use super::lease::Lease;
use super::notification::{DpsErrorRecord, MeshOrigin, Notification, Parsers};
use crate::config::mesh::MeshConfig;
use crate::kafka::{produce_all, ProduceError};
use crate::metrics::Metrics;

/// How often the poller validates its mailbox (the MESH handshake) while it runs: MESH API
/// specification, "Validate your mailbox once every 24 hours using the 'Validate a mailbox'
/// endpoint" ("This endpoint only needs to be called once every 24 hours").
pub const HANDSHAKE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether a handshake is due before a poll at `now`: none has succeeded yet, or the poll after
/// this one might come `every` or more after the last success. That poll is `poll_interval`
/// away plus however long this poll takes, so one more `poll_interval` is kept to spare: with
/// the default 5-minute polls a handshake comes 23 h 50 min after the last; with daily polls,
/// before every poll.
pub fn handshake_due(
    last: Option<Instant>,
    now: Instant,
    poll_interval: Duration,
    every: Duration,
) -> bool {
    match last {
        None => true,
        Some(last) => now.saturating_duration_since(last) + poll_interval * 2 >= every,
    }
}

/// Why a poll ended early.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// MESH failed.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The errors topic could not be written.
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

impl PollError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Mesh(e) => e.kind(),
            PollError::Produce(_) => "produce",
        }
    }
}

/// Counters a caller (the demo, tests) can read while the poller runs.
#[derive(Debug, Default)]
pub struct PollerStats {
    /// Records written to the errors topic.
    pub published: AtomicU64,
    /// Of which correlated to an ack.
    pub correlated: AtomicU64,
    /// Of which `format: unknown`.
    pub unknown: AtomicU64,
    /// MESH messages acknowledged.
    pub acknowledged: AtomicU64,
    /// Polls that ended in an error.
    pub failed_polls: AtomicU64,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// MESH messages acknowledged.
    pub acknowledged: u64,
    /// Records published.
    pub published: u64,
    /// Messages left in MESH waiting for their acks to be seen.
    pub deferred: u64,
}

/// The poller; see the module header.
pub struct DpsPoller {
    client: MeshClient,
    config: MeshConfig,
    producer: FutureProducer,
    correlator: Arc<Correlator>,
    parsers: Parsers,
    metrics: Metrics,
    stats: Arc<PollerStats>,
    /// MESH message id → when first deferred.
    deferred: HashMap<String, Instant>,
    /// Messages of other workflows, left in the mailbox and not fetched again.
    skipped: HashSet<String>,
    /// The right to poll (always held unless [`Self::with_lease`] says otherwise).
    lease: Lease,
    /// Background tasks (the ack-topic reader, the lease keeper), awaited when the poller stops.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// When the last handshake succeeded.
    handshaken: Option<Instant>,
    /// How often to handshake ([`HANDSHAKE_EVERY`] unless a test shortens it).
    handshake_every: Duration,
}

impl DpsPoller {
    /// A poller with the default parsers.
    pub fn new(
        client: MeshClient,
        config: MeshConfig,
        producer: FutureProducer,
        correlator: Arc<Correlator>,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            config,
            producer,
            correlator,
            parsers: Parsers::default(),
            metrics,
            stats: Arc::new(PollerStats::default()),
            deferred: HashMap::new(),
            skipped: HashSet::new(),
            lease: Lease::exclusive(),
            tasks: Vec::new(),
            handshaken: None,
            handshake_every: HANDSHAKE_EVERY,
        }
    }

    /// Handshakes every `every` instead of [`HANDSHAKE_EVERY`] (tests: MESH's rule is 24 hours).
    pub fn with_handshake_every(mut self, every: Duration) -> Self {
        self.handshake_every = every;
        self
    }

    /// Makes [`Self::run`] wait for `task` (the ack-topic reader, the lease keeper) before
    /// returning, so their Kafka clients are closed when the pipeline's drain ends.
    pub fn with_task(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.tasks.push(task);
        self
    }

    /// Polls only while `lease` is held.
    pub fn with_lease(mut self, lease: Lease) -> Self {
        self.lease = lease;
        self
    }

    /// Replaces the parsers (tried in order).
    pub fn with_parsers(mut self, parsers: Parsers) -> Self {
        self.parsers = parsers;
        self
    }

    /// The lease this poller polls under.
    pub fn lease(&self) -> Lease {
        self.lease.clone()
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<PollerStats> {
        self.stats.clone()
    }

    /// Polls every `poll_interval` until `stop`; finishes the message in hand before returning.
    pub async fn run(mut self, stop: CancellationToken) {
        let tasks = std::mem::take(&mut self.tasks);
        self.poll_until(&stop).await;
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn poll_until(&mut self, stop: &CancellationToken) {
        // Give the ack reader its look-back first, so a restart correlates what it did before.
        let deadline = Instant::now() + self.config.correlation_wait;
        while !self.correlator.is_caught_up() && Instant::now() < deadline {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        if self.config.poll_interval.as_secs() < crate::config::mesh::MIN_POLL_INTERVAL_S {
            tracing::warn!(
                message = "MESH polled more often than every 5 minutes: allowed only for a loopback MESH (an emulator).",
                url = %self.config.url,
                poll_interval_s = self.config.poll_interval.as_secs()
            );
        }
        self.handshake().await;
        loop {
            if !self.lease.acquired(stop).await {
                return;
            }
            if handshake_due(
                self.handshaken,
                Instant::now(),
                self.config.poll_interval,
                self.handshake_every,
            ) {
                self.handshake().await;
            }
            let polled = self.poll_once(stop).await;
            if polled.is_ok() {
                self.metrics.mesh_polled();
            }
            match polled {
                Ok(report) if report.acknowledged > 0 || report.deferred > 0 => {
                    tracing::info!(
                        message = "MESH inbox polled.",
                        acknowledged = report.acknowledged,
                        published = report.published,
                        deferred = report.deferred
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    self.stats.failed_polls.fetch_add(1, Ordering::Relaxed);
                    self.metrics.mesh_poll_failed(error.kind());
                    tracing::warn!(message = "MESH poll failed; retrying at the next poll.", kind = error.kind(), %error);
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Validates the mailbox (the MESH handshake); remembers when it last succeeded.
    async fn handshake(&mut self) {
        match self.client.handshake().await {
            Ok(()) => {
                self.handshaken = Some(Instant::now());
                tracing::info!(message = "MESH handshake succeeded.", mailbox = %self.client.mailbox())
            }
            Err(error) => {
                tracing::error!(message = "MESH handshake failed; tried again before the next poll.", mailbox = %self.client.mailbox(), kind = error.kind(), %error)
            }
        }
    }

    /// One pass over the inbox.
    pub async fn poll_once(&mut self, stop: &CancellationToken) -> Result<PollReport, PollError> {
        let filter = match self.config.workflow_ids.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let ids = self
            .client
            .list_inbox(filter, self.config.max_messages_per_poll)
            .await?;
        let mut report = PollReport::default();
        let lease = self.lease.clone();
        for id in ids {
            if stop.is_cancelled() {
                break;
            }
            // Held until this message is published and acknowledged (or left): a lease
            // revocation waits for it, and no message starts once the lease is gone.
            let Some(_work) = lease.work().await else {
                break;
            };
            if self.skipped.contains(&id) {
                continue;
            }
            let message = match self.client.retrieve(&id).await {
                Ok(m) => m,
                Err(MeshError::Gone(_)) => continue,
                // One unreadable message must not hold up the others: it stays in MESH, is
                // counted, and is tried again at the next poll.
                Err(e @ (MeshError::Encoding(_) | MeshError::Protocol { .. })) => {
                    self.metrics.mesh_poll_failed(e.kind());
                    tracing::warn!(message = "MESH message left in the mailbox.", mesh_message_id = %id, kind = e.kind(), error = %e);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if !self.accepts(&message) {
                self.skipped.insert(id);
                continue;
            }
            let Some(records) = self.records(&message) else {
                report.deferred += 1;
                continue;
            };
            let values: Vec<(String, Vec<u8>)> = records
                .iter()
                .map(|r| {
                    (
                        r.key().to_owned(),
                        serde_json::to_vec(r).expect("record serializes"),
                    )
                })
                .collect();
            let prepared = values.iter().map(|(key, value)| {
                FutureRecord::<[u8], [u8]>::to(&self.config.errors_topic)
                    .key(key.as_bytes())
                    .payload(value.as_slice())
            });
            produce_all(&self.producer, prepared).await?;
            // Only now, with every record durable, may MESH forget the message.
            match self.client.acknowledge(&id).await {
                Ok(()) | Err(MeshError::Gone(_)) => {}
                Err(e) => return Err(e.into()),
            }
            self.deferred.remove(&id);
            report.acknowledged += 1;
            report.published += records.len() as u64;
            self.count(&records);
        }
        Ok(report)
    }

    fn accepts(&self, message: &MeshMessage) -> bool {
        self.config.workflow_ids.is_empty()
            || message
                .workflow_id
                .as_ref()
                .is_some_and(|w| self.config.workflow_ids.contains(w))
    }

    fn count(&self, records: &[DpsErrorRecord]) {
        self.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
        for r in records {
            self.stats.published.fetch_add(1, Ordering::Relaxed);
            if r.correlated {
                self.stats.correlated.fetch_add(1, Ordering::Relaxed);
            }
            if r.format == "unknown" {
                self.stats.unknown.fetch_add(1, Ordering::Relaxed);
            }
            let severity = r
                .issues
                .iter()
                .map(|i| i.severity.as_str())
                .find(|s| matches!(*s, "fatal" | "error"))
                .unwrap_or(if r.issues.is_empty() {
                    "unknown"
                } else {
                    "warning"
                });
            self.metrics
                .dps_error_published(r.format == "unknown", r.correlated, severity);
        }
    }

    /// The records for `message`, or `None` to leave it in MESH until its acks are seen.
    fn records(&mut self, message: &MeshMessage) -> Option<Vec<DpsErrorRecord>> {
        let origin = MeshOrigin {
            message_id: message.id.clone(),
            workflow_id: message.workflow_id.clone(),
            local_id: message.local_id.clone(),
            retrieved_at: chrono::Utc::now().to_rfc3339(),
        };
        let Some((format, notification)) = self.parsers.parse(&message.body) else {
            return Some(vec![DpsErrorRecord::unknown(origin, &message.body)]);
        };
        if !self.correlator.knows(&notification.submission_id) {
            let first = *self
                .deferred
                .entry(message.id.clone())
                .or_insert_with(Instant::now);
            if first.elapsed() < self.config.correlation_wait {
                return None;
            }
        }
        Some(correlate(&self.correlator, format, origin, notification))
    }
}

/// One record per call of `notification` (one uncorrelated record when it names no call).
pub fn correlate(
    correlator: &Correlator,
    format: &str,
    origin: MeshOrigin,
    notification: Notification,
) -> Vec<DpsErrorRecord> {
    let submission = notification.submission_id;
    if notification.calls.is_empty() {
        return vec![DpsErrorRecord::empty(format, origin, Some(submission))];
    }
    notification
        .calls
        .into_iter()
        .map(|call| {
            let acked = correlator.lookup(&submission, &call);
            let first = acked.first();
            DpsErrorRecord {
                correlated: first.is_some(),
                call_id: first.map(|a| a.call_id.clone()).or(call.call_id),
                provider_ods: first.map(|a| a.provider_ods.clone()).or(call.provider_ods),
                bundle_id: first.map(|a| a.bundle_id.clone()).or(call.bundle_id),
                sources: acked.into_iter().map(|a| a.source).collect(),
                issues: call.issues,
                ..DpsErrorRecord::empty(format, origin.clone(), Some(submission.clone()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// MESH API specification: "Validate your mailbox once every 24 hours".
    #[test]
    fn a_handshake_is_due_at_start_and_before_24_hours_pass() {
        let now = Instant::now() + 2 * HANDSHAKE_EVERY;
        let poll = 5 * MINUTE;
        assert!(handshake_due(None, now, poll, HANDSHAKE_EVERY));
        assert!(!handshake_due(Some(now), now, poll, HANDSHAKE_EVERY));
        assert!(!handshake_due(Some(now - HOUR), now, poll, HANDSHAKE_EVERY));
        assert!(!handshake_due(
            Some(now - (23 * HOUR + 49 * MINUTE)),
            now,
            poll,
            HANDSHAKE_EVERY
        ));
        // Two polls before the mark: the next could come late, so now.
        assert!(handshake_due(
            Some(now - (23 * HOUR + 50 * MINUTE)),
            now,
            poll,
            HANDSHAKE_EVERY
        ));
        assert!(handshake_due(
            Some(now - 25 * HOUR),
            now,
            poll,
            HANDSHAKE_EVERY
        ));
        // Daily polls (the longest MESH allows) handshake before every poll.
        assert!(handshake_due(
            Some(now - MINUTE),
            now,
            24 * HOUR,
            HANDSHAKE_EVERY
        ));
    }
}
