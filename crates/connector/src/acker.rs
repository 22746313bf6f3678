//! Acker: one `ads.ack.v1` record per consumed record that reached the API.
//!
//! Input ([`AckInputs`]): [`AckWork`], an accepted submission with every source record it
//! carried, and (`[schedule]` in `window` mode) [`SupersededRecord`]s, records the window pass
//! found replaced by a newer snapshot of their call in the backlog. Output: for each record, one
//! ack on the ack topic (key = call id, header `traceparent` when the source record had one):
//! outcome `submitted` for the snapshot that was sent, `superseded` for older snapshots of the
//! same call that the same submission replaced, or that the window pass replaced (no POST of
//! their own: the submission fields are null and `superseded_by` names the newer record).
//! Superseded records waiting together are written together (at most [`SUPERSEDED_PER_WRITE`]
//! per write, or per transaction). Guarantee (at-least-once mode):
//! the ack is written and acknowledged by the broker *before* the source record is marked done in
//! [`crate::offsets::Offsets`]; a crash between the two produces a duplicate ack on restart, never a missing one.
//! Transactional mode (`kafka.transactional_id`): the acks of one submission and the offsets they
//! complete are committed in one Kafka transaction ([`crate::transactions::Transactions`]), and the records are marked
//! done only after the commit; `read_committed` readers see each ack exactly once. Ordering:
//! submissions are acked in the order they complete: each one's acks are handed to the producer
//! before the next one's, so they land in that order. Up to [`ACK_WRITES_IN_FLIGHT`]
//! submissions' acks wait for the broker at once (in transactional mode, one transaction at a
//! time), each marking only its own records done once delivered. Failure: a write the producer
//! cannot deliver, or a transaction that fails, is fatal (see [`ProduceError`]); no record whose
//! ack was not delivered is committed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::batcher::Batch;
use crate::cad::Text;
use crate::kafka::ProduceError;
use crate::mapping::AdsItem;
use crate::metrics::{AckOutcome, Metrics};
use crate::offsets::RecordPos;
use crate::source::Envelope;
use crate::telemetry;
use crate::transactions::DurableWriter;

/// The schema id written in every ack.
pub const ACK_SCHEMA: &str = "ads.ack.v1";

/// What the API said about one accepted submission.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The API's id (`message` or `id` of the 200 body); opaque.
    pub api_id: Option<String>,
    /// HTTP status.
    pub http_status: u16,
    /// Attempts it took.
    pub attempts: u32,
    /// Time of the successful response.
    pub submitted_at: DateTime<Utc>,
    /// Latency of the successful request.
    pub latency: Duration,
}

/// An accepted submission to acknowledge.
#[derive(Debug)]
pub struct AckWork {
    /// The submission.
    pub batch: Batch,
    /// The API's answer.
    pub accepted: Accepted,
    /// The submission's `process` span: the ack records' `send` span is its child.
    pub span: tracing::Span,
}

/// Superseded records of the window pass written in one write (one transaction in
/// transactional mode).
pub const SUPERSEDED_PER_WRITE: usize = 512;

/// Submissions whose acks may be with the producer at once, waiting for the broker. One at a
/// time, the acker was the pipeline's bottleneck: each write waited for the producer's linger,
/// the broker's round trip and the topic check before the next submission's acks were handed
/// over, about 10 ms a submission on loopback (the submitter's tasks waited 156 ms on average
/// to hand their submissions over). Bounds the acks and positions held here.
pub const ACK_WRITES_IN_FLIGHT: usize = 8;

/// The rest of one ack write: waits for the broker, then counts the acks.
type AckWrite = Pin<Box<dyn Future<Output = Result<(), ProduceError>> + Send>>;

/// A record the window pass acks `superseded` without a POST: a newer snapshot of the same call
/// (by `snapshot_at`) is in the same partition's backlog, at `by_offset`.
#[derive(Debug)]
pub struct SupersededRecord {
    /// The source record.
    pub envelope: Envelope,
    /// The call identifier.
    pub call_id: Text,
    /// Provider ODS code.
    pub provider_ods: Text,
    /// The call's Bundle id (the same for every snapshot of the call).
    pub bundle_id: uuid::Uuid,
    /// Offset, in the same partition, of the newer snapshot that replaces this one.
    pub by_offset: i64,
}

/// The acker's inputs.
pub struct AckInputs {
    /// Accepted submissions, from the submitter.
    pub submissions: mpsc::Receiver<AckWork>,
    /// Records the window pass superseded; `None` outside `window` mode.
    pub superseded: Option<mpsc::Receiver<SupersededRecord>>,
}

/// Room for an ack's JSON: a submitted ack is about 450 bytes, so it is written without a
/// reallocation.
const ACK_JSON_CAPACITY: usize = 640;

/// An ack's JSON.
fn ack_json(ack: &AckRecord<'_>) -> Vec<u8> {
    let mut value = Vec::with_capacity(ACK_JSON_CAPACITY);
    serde_json::to_writer(&mut value, ack).expect("ack serializes");
    value
}

/// The `ads.ack.v1` record.
#[derive(Debug, Serialize)]
pub struct AckRecord<'a> {
    /// Always `ads.ack.v1`.
    pub schema: &'static str,
    /// Where the acknowledged record came from.
    pub source: AckSource<'a>,
    /// The call identifier.
    pub call_id: &'a str,
    /// Provider ODS code.
    pub provider_ods: &'a str,
    /// `submitted` or `superseded`.
    pub outcome: AckOutcome,
    /// The API's id for the submission.
    pub api_id: Option<&'a str>,
    /// The submission (batch) id; null for a record the window pass superseded (no POST).
    pub batch_id: Option<&'a str>,
    /// The call Bundle's id.
    pub bundle_id: &'a str,
    /// When the API accepted it; null without a POST.
    pub submitted_at: Option<&'a str>,
    /// Attempts (0 without a POST).
    pub attempts: u32,
    /// HTTP status; null without a POST.
    pub http_status: Option<u16>,
    /// Latency of the accepted request, milliseconds; null without a POST.
    pub latency_ms: Option<u64>,
    /// For `superseded`: the record whose newer snapshot of the call replaced this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<AckRef<'a>>,
    /// Trace id from the record's `traceparent`, if any.
    pub trace_id: Option<&'a str>,
    /// Data-quality feedback (submitted acks only): the ADS mandatory items (`ADS15`, `ADS20`,
    /// `ADS21`, `ADS33`) the sent snapshot lacks although the call is closed. DPS would report
    /// them days later through MESH; a later snapshot can still complete the call. Omitted
    /// when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_ads_items: Vec<&'static str>,
}

/// Source coordinates inside an ack.
#[derive(Debug, Serialize)]
pub struct AckSource<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp, milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// Another source record, named in an ack.
#[derive(Debug, Serialize)]
pub struct AckRef<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl<'a> AckRef<'a> {
    fn of(pos: &'a RecordPos) -> Self {
        Self {
            topic: &pos.topic,
            partition: pos.partition,
            offset: pos.offset,
        }
    }
}

impl<'a> AckSource<'a> {
    fn of(envelope: &'a Envelope) -> Self {
        Self {
            topic: &envelope.pos.topic,
            partition: envelope.pos.partition,
            offset: envelope.pos.offset,
            timestamp_ms: envelope.timestamp_ms,
        }
    }
}

/// The trace id of the record's `traceparent`, if it had one.
fn trace_id(envelope: &Envelope) -> Option<&str> {
    envelope
        .traceparent
        .as_deref()
        .and_then(|t| t.split('-').nth(1))
}

/// Publishes acks; see the module header.
pub struct AckPublisher {
    /// Ack topic.
    pub topic: String,
    /// Metrics.
    pub metrics: Metrics,
}

impl AckPublisher {
    /// Runs until every input is closed; `output` writes the acks, then marks their records
    /// done.
    pub async fn run(self, input: AckInputs, output: DurableWriter) -> Result<(), ProduceError> {
        let AckInputs {
            mut submissions,
            mut superseded,
        } = input;
        let mut submissions_open = true;
        let mut held = Vec::with_capacity(SUPERSEDED_PER_WRITE);
        // Writes whose acks are with the producer, waiting for the broker. Polled together, and
        // nothing here waits for a write on its own: a pending write may hold the topic
        // check's lock (`PendingWrite`).
        let mut writes: FuturesUnordered<AckWrite> = FuturesUnordered::new();
        loop {
            tokio::select! {
                Some(finished) = writes.next(), if !writes.is_empty() => finished?,
                work = submissions.recv(),
                    if submissions_open && writes.len() < ACK_WRITES_IN_FLIGHT => match work {
                    Some(work) => {
                        let write = self.publish(&work, &output).await?;
                        writes.push(write);
                    }
                    None => submissions_open = false,
                },
                n = async {
                    match superseded.as_mut() {
                        Some(rx) => rx.recv_many(&mut held, SUPERSEDED_PER_WRITE).await,
                        None => std::future::pending().await,
                    }
                }, if superseded.is_some() && writes.len() < ACK_WRITES_IN_FLIGHT => {
                    if n == 0 {
                        superseded = None;
                    } else {
                        let write = self.publish_superseded(&held, &output).await?;
                        writes.push(write);
                        held.clear();
                    }
                },
                else => return Ok(()),
            }
        }
    }

    /// Hands the acks of records the window pass superseded to the producer, as one write; the
    /// returned future finishes it and counts the acks.
    async fn publish_superseded(
        &self,
        records: &[SupersededRecord],
        writer: &DurableWriter,
    ) -> Result<AckWrite, ProduceError> {
        let mut prepared: Vec<(Vec<u8>, &Envelope)> = Vec::with_capacity(records.len());
        for r in records {
            let bundle_id = r.bundle_id.to_string();
            let by = RecordPos {
                offset: r.by_offset,
                ..r.envelope.pos.clone()
            };
            let ack = AckRecord {
                schema: ACK_SCHEMA,
                source: AckSource::of(&r.envelope),
                call_id: &r.call_id,
                provider_ods: &r.provider_ods,
                outcome: AckOutcome::Superseded,
                api_id: None,
                batch_id: None,
                bundle_id: &bundle_id,
                submitted_at: None,
                attempts: 0,
                http_status: None,
                latency_ms: None,
                superseded_by: Some(AckRef::of(&by)),
                trace_id: trace_id(&r.envelope),
                missing_ads_items: Vec::new(),
            };
            let value = ack_json(&ack);
            prepared.push((value, &r.envelope));
        }
        let records = prepared.iter().map(|(value, envelope)| {
            let r = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .key(envelope.key.as_deref().unwrap_or_default())
                .payload(value.as_slice());
            match envelope.traceparent.as_deref() {
                Some(t) => r.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                    key: "traceparent",
                    value: Some(t),
                })),
                None => r,
            }
        });
        let done = prepared.iter().map(|(_, e)| &e.pos);
        let pending = writer.start(records, done.cloned().collect()).await?;
        let timestamps: Vec<Option<i64>> = prepared.iter().map(|(_, e)| e.timestamp_ms).collect();
        let metrics = self.metrics.clone();
        Ok(Box::pin(async move {
            pending.finish().await?;
            for timestamp_ms in timestamps {
                metrics.ack_published(AckOutcome::Superseded, timestamp_ms);
                metrics.schedule_coalesced();
            }
            Ok(())
        }))
    }

    /// Hands the submission's acks to the producer; the returned future finishes the write and
    /// counts the acks.
    async fn publish(
        &self,
        work: &AckWork,
        writer: &DurableWriter,
    ) -> Result<AckWrite, ProduceError> {
        let mut prepared: Vec<(Vec<u8>, Option<OwnedHeaders>, &Envelope, AckOutcome)> = Vec::new();
        let send = telemetry::send_span(&work.span, &self.topic, work.batch.records());
        let send_traceparent = telemetry::traceparent(&send);
        // The same for every record of the submission, or of a call: formatted once.
        let batch_id = work.batch.id.to_string();
        let submitted_at = work.accepted.submitted_at.to_rfc3339();
        for call in &work.batch.calls {
            let bundle_id = call.bundle_id.to_string();
            let records = std::iter::once((&call.submitted, AckOutcome::Submitted))
                .chain(call.superseded.iter().map(|e| (e, AckOutcome::Superseded)));
            for (envelope, outcome) in records {
                let ack = AckRecord {
                    schema: ACK_SCHEMA,
                    source: AckSource::of(envelope),
                    call_id: &call.call_id,
                    provider_ods: &call.provider_ods,
                    outcome,
                    api_id: work.accepted.api_id.as_deref(),
                    batch_id: Some(&batch_id),
                    bundle_id: &bundle_id,
                    submitted_at: Some(&submitted_at),
                    attempts: work.accepted.attempts,
                    http_status: Some(work.accepted.http_status),
                    latency_ms: Some(work.accepted.latency.as_millis() as u64),
                    superseded_by: match outcome {
                        AckOutcome::Submitted => None,
                        AckOutcome::Superseded => Some(AckRef::of(&call.submitted.pos)),
                    },
                    trace_id: trace_id(envelope),
                    missing_ads_items: match outcome {
                        AckOutcome::Submitted => {
                            call.missing_at_close.iter().map(|i| i.as_str()).collect()
                        }
                        AckOutcome::Superseded => Vec::new(),
                    },
                };
                let value = ack_json(&ack);
                let traceparent = send_traceparent.as_deref();
                let headers = traceparent.or(envelope.traceparent.as_deref()).map(|t| {
                    OwnedHeaders::new_with_capacity(1).insert(Header {
                        key: "traceparent",
                        value: Some(t),
                    })
                });
                prepared.push((value, headers, envelope, outcome));
            }
        }
        let done: Vec<RecordPos> = prepared.iter().map(|(_, _, e, _)| e.pos.clone()).collect();
        // What the metrics need once the write is finished, so the records are not held.
        let published: Vec<(AckOutcome, Option<i64>)> = prepared
            .iter()
            .map(|(_, _, envelope, outcome)| (*outcome, envelope.timestamp_ms))
            .collect();
        let missing: Vec<AdsItem> = work
            .batch
            .calls
            .iter()
            .flat_map(|call| call.missing_at_close.iter().copied())
            .collect();
        // Each record takes its headers (produced once; no copy of them).
        let records = prepared.iter_mut().map(|(value, headers, envelope, _)| {
            let key = envelope.key.as_deref().unwrap_or_default();
            let r = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .key(key)
                .payload(value.as_slice());
            match headers.take() {
                Some(h) => r.headers(h),
                None => r,
            }
        });
        let pending = writer.start(records, done).instrument(send.clone()).await?;
        let metrics = self.metrics.clone();
        Ok(Box::pin(
            async move {
                pending.finish().await?;
                for (outcome, timestamp_ms) in published {
                    metrics.ack_published(outcome, timestamp_ms);
                }
                for item in missing {
                    metrics.ads_item_missing_at_close(item);
                }
                Ok(())
            }
            .instrument(send),
        ))
    }
}
