//! Acker: one `ads.ack.v1` record per consumed record that reached the API.
//!
//! Input: [`AckWork`], an accepted submission with every source record it carried. Output: for
//! each record, one ack on the ack topic (key = call id, header `traceparent` when the source
//! record had one): outcome `submitted` for the snapshot that was sent, `superseded` for older
//! snapshots of the same call that the same submission replaced. Guarantee (at-least-once mode):
//! the ack is written and acknowledged by the broker *before* the source record is marked done in
//! [`crate::offsets::Offsets`]; a crash between the two produces a duplicate ack on restart, never a missing one.
//! Transactional mode (`kafka.transactional_id`): the acks of one submission and the offsets they
//! complete are committed in one Kafka transaction ([`crate::transactions::Transactions`]), and the records are marked
//! done only after the commit; `read_committed` readers see each ack exactly once. Ordering:
//! submissions are acked in the order they complete. Failure: a write the producer cannot
//! deliver, or a transaction that fails, is fatal (see [`ProduceError`]); nothing past it is
//! committed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::batcher::Batch;
use crate::kafka::ProduceError;
use crate::metrics::{AckOutcome, Metrics};
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
    /// The submission (batch) id.
    pub batch_id: &'a str,
    /// The call Bundle's id.
    pub bundle_id: &'a str,
    /// When the API accepted it.
    pub submitted_at: &'a str,
    /// Attempts.
    pub attempts: u32,
    /// HTTP status.
    pub http_status: u16,
    /// Latency of the accepted request, milliseconds.
    pub latency_ms: u64,
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

/// Publishes acks; see the module header.
pub struct AckPublisher {
    /// Ack topic.
    pub topic: String,
    /// Metrics.
    pub metrics: Metrics,
}

impl AckPublisher {
    /// Runs until the submitter drops its sender; `output` writes the acks, then marks their
    /// records done.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<AckWork>,
        output: DurableWriter,
    ) -> Result<(), ProduceError> {
        while let Some(work) = input.recv().await {
            self.publish(&work, &output).await?;
        }
        Ok(())
    }

    async fn publish(&self, work: &AckWork, writer: &DurableWriter) -> Result<(), ProduceError> {
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
                    source: AckSource {
                        topic: &envelope.pos.topic,
                        partition: envelope.pos.partition,
                        offset: envelope.pos.offset,
                        timestamp_ms: envelope.timestamp_ms,
                    },
                    call_id: &call.call_id,
                    provider_ods: &call.provider_ods,
                    outcome,
                    api_id: work.accepted.api_id.as_deref(),
                    batch_id: &batch_id,
                    bundle_id: &bundle_id,
                    submitted_at: &submitted_at,
                    attempts: work.accepted.attempts,
                    http_status: work.accepted.http_status,
                    latency_ms: work.accepted.latency.as_millis() as u64,
                    trace_id: envelope
                        .traceparent
                        .as_deref()
                        .and_then(|t| t.split('-').nth(1)),
                    missing_ads_items: match outcome {
                        AckOutcome::Submitted => {
                            call.missing_at_close.iter().map(|i| i.as_str()).collect()
                        }
                        AckOutcome::Superseded => Vec::new(),
                    },
                };
                let value = serde_json::to_vec(&ack).expect("ack serializes");
                let traceparent = send_traceparent.as_deref();
                let headers = traceparent.or(envelope.traceparent.as_deref()).map(|t| {
                    OwnedHeaders::new().insert(Header {
                        key: "traceparent",
                        value: Some(t),
                    })
                });
                prepared.push((value, headers, envelope, outcome));
            }
        }
        let records = prepared.iter().map(|(value, headers, envelope, _)| {
            let key = envelope.key.as_deref().unwrap_or_default();
            let r = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .key(key)
                .payload(value.as_slice());
            match headers {
                Some(h) => r.headers(h.clone()),
                None => r,
            }
        });
        let done = prepared.iter().map(|(_, _, e, _)| &e.pos);
        writer.write(records, done).instrument(send).await?;
        for (_, _, envelope, outcome) in &prepared {
            self.metrics.ack_published(*outcome, envelope.timestamp_ms);
        }
        for call in &work.batch.calls {
            for item in &call.missing_at_close {
                self.metrics.ads_item_missing_at_close(*item);
            }
        }
        Ok(())
    }
}
