//! Batcher: groups mapped calls into submissions by count, bytes and linger.
//!
//! Input: [`MappedCall`]s in consume order. Output: [`Batch`]es, in order, each closed for a
//! [`FlushReason`]: `max_calls` reached, the next call would pass `max_bytes`, the oldest call
//! waited `linger`, or the input closed (shutdown: the partial batch is flushed, never dropped).
//! Snapshots of the same call inside one batch coalesce to the newest (by `snapshot_at`; equal
//! times keep the later record); every replaced record rides along as `superseded` so it still
//! gets its own ack. A single call larger than `max_bytes` is sent alone rather than refused.
//! [`Batch::body`] encodes the submission: the call Bundle itself (`single` mode) or a FHIR
//! `batch` Bundle whose entries are the call Bundles, as a [`RequestBody`] of the Bundles' own
//! serialized bytes and the few bytes around them (no second serialization, and no copy). No
//! I/O and no failure here. Memory: the one open batch, at most `batch.max_calls` calls and
//! `batch.max_bytes` of Bundles (a single larger call aside), plus the source records it
//! answers for.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::cad::Text;
use crate::config::{BatchConfig, SubmissionMode};
use crate::mapping::AdsItem;
use crate::metrics::{FlushReason, Metrics};
use crate::source::Envelope;
use crate::telemetry;

mod body;
pub use body::RequestBody;

/// A decoded, mapped and validated call with its source record.
#[derive(Debug)]
pub struct MappedCall {
    /// The source record.
    pub envelope: Envelope,
    /// `provider/call id`: snapshots with the same key are the same call.
    pub call_key: Text,
    /// The call identifier.
    pub call_id: Text,
    /// Provider ODS code.
    pub provider_ods: Text,
    /// Deterministic Bundle id (the same for every snapshot of the call).
    pub bundle_id: Uuid,
    /// When the snapshot was taken; the newest wins.
    pub snapshot_at: DateTime<Utc>,
    /// The serialized call Bundle.
    pub bytes: Vec<u8>,
    /// ADS mandatory items this closed call lacks ([`crate::mapping::missing_at_close`]).
    pub missing_at_close: Vec<AdsItem>,
}

/// One call in a submission, with every source record it answers for.
#[derive(Debug)]
pub struct BatchedCall {
    /// `provider/call id`.
    pub call_key: Text,
    /// The call identifier.
    pub call_id: Text,
    /// Provider ODS code.
    pub provider_ods: Text,
    /// Bundle id.
    pub bundle_id: Uuid,
    /// Snapshot time of the bundle sent.
    pub snapshot_at: DateTime<Utc>,
    /// The serialized call Bundle sent (shared with the request bodies made of it).
    pub bytes: Bytes,
    /// ADS mandatory items the sent snapshot lacks although the call is closed.
    pub missing_at_close: Vec<AdsItem>,
    /// The record whose snapshot is sent.
    pub submitted: Envelope,
    /// Older snapshots of the same call replaced inside this batch.
    pub superseded: Vec<Envelope>,
}

impl BatchedCall {
    /// Every source record this call answers for.
    pub fn envelopes(&self) -> impl Iterator<Item = &Envelope> + Clone {
        std::iter::once(&self.submitted).chain(&self.superseded)
    }
}

/// One submission.
#[derive(Debug)]
pub struct Batch {
    /// Submission id (also the outer Bundle's id in `batch` mode).
    pub id: Uuid,
    /// The calls, in first-arrival order.
    pub calls: Vec<BatchedCall>,
    /// The body's size in `batch` mode as the byte limit counts it (exact, or one byte over).
    pub bytes: usize,
    /// Why it was closed.
    pub reason: FlushReason,
}

/// The `batch` Bundle's own bytes before its entries (around its id) and after them.
const BATCH_HEAD: [&[u8]; 2] = [
    br#"{"resourceType":"Bundle","id":""#,
    br#"","type":"batch","entry":["#,
];
const BATCH_TAIL: &[u8] = b"]}";
/// An entry's bytes before its Bundle (around the Bundle's id), after it, and between entries.
const ENTRY_HEAD: [&[u8]; 2] = [br#"{"fullUrl":"urn:uuid:"#, br#"","resource":"#];
const ENTRY_TAIL: &[u8] = br#","request":{"method":"POST","url":"Bundle"}}"#;
const ENTRY_SEPARATOR: &[u8] = b",";
/// A hyphenated UUID's length.
const UUID_LEN: usize = 36;
/// Bytes a call adds to a `batch` Bundle besides its own: fullUrl, request, the separator
/// (the first entry has none, so a body is at most this one byte shorter than counted).
const ENTRY_OVERHEAD: usize =
    ENTRY_HEAD[0].len() + UUID_LEN + ENTRY_HEAD[1].len() + ENTRY_TAIL.len() + ENTRY_SEPARATOR.len();
/// The outer Bundle's own bytes.
const BATCH_OVERHEAD: usize =
    BATCH_HEAD[0].len() + UUID_LEN + BATCH_HEAD[1].len() + BATCH_TAIL.len();

impl Batch {
    /// Source records in this batch.
    pub fn records(&self) -> usize {
        self.calls.iter().map(|c| 1 + c.superseded.len()).sum()
    }

    /// The request body for `mode`: the call Bundle itself, or the `batch` Bundle of them,
    /// made of the Bundles' own buffers and the bytes around them (nothing copied).
    pub fn body(&self, mode: SubmissionMode) -> RequestBody {
        if mode == SubmissionMode::Single && self.calls.len() == 1 {
            return RequestBody::from_parts([self.calls[0].bytes.clone()]);
        }
        // The bytes between the Bundles, written into one buffer and handed out as slices of it.
        let mut glue = Vec::with_capacity(BATCH_OVERHEAD + self.calls.len() * ENTRY_OVERHEAD);
        let mut cuts = Vec::with_capacity(self.calls.len() + 1);
        // `before`, the id, `after`.
        let around = |glue: &mut Vec<u8>, [before, after]: [&[u8]; 2], id: &Uuid| {
            glue.extend_from_slice(before);
            let mut text = Uuid::encode_buffer();
            glue.extend_from_slice(id.hyphenated().encode_lower(&mut text).as_bytes());
            glue.extend_from_slice(after);
        };
        around(&mut glue, BATCH_HEAD, &self.id);
        for (i, call) in self.calls.iter().enumerate() {
            if i > 0 {
                glue.extend_from_slice(ENTRY_SEPARATOR);
            }
            around(&mut glue, ENTRY_HEAD, &call.bundle_id);
            cuts.push(glue.len());
            glue.extend_from_slice(ENTRY_TAIL);
        }
        glue.extend_from_slice(BATCH_TAIL);
        cuts.push(glue.len());
        let glue = Bytes::from(glue);
        let mut parts = Vec::with_capacity(2 * self.calls.len() + 1);
        let mut from = 0;
        for (call, &cut) in self.calls.iter().zip(&cuts) {
            parts.push(glue.slice(from..cut));
            parts.push(call.bytes.clone());
            from = cut;
        }
        parts.push(glue.slice(from..));
        RequestBody::from_parts(parts)
    }
}

/// The pure batching policy.
pub struct BatchBuilder {
    config: BatchConfig,
    calls: Vec<BatchedCall>,
    index: HashMap<Text, usize>,
    bytes: usize,
    opened: Option<Instant>,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new(config: BatchConfig) -> Self {
        Self {
            calls: Vec::with_capacity(config.max_calls),
            index: HashMap::with_capacity(config.max_calls),
            config,
            bytes: BATCH_OVERHEAD,
            opened: None,
        }
    }

    /// When the open batch must be flushed for linger, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.config.linger)
    }

    /// Adds a call; returns a batch that had to close (before or because of it).
    pub fn push(&mut self, call: MappedCall) -> Option<Batch> {
        if let Some(&i) = self.index.get(&call.call_key) {
            self.coalesce(i, call);
            return None;
        }
        let size = call.bytes.len() + ENTRY_OVERHEAD;
        let mut flushed = None;
        if !self.calls.is_empty() && self.bytes + size > self.config.max_bytes {
            flushed = self.take(FlushReason::Bytes);
        }
        self.opened.get_or_insert_with(Instant::now);
        self.index.insert(call.call_key.clone(), self.calls.len());
        self.bytes += size;
        self.calls.push(BatchedCall {
            call_key: call.call_key,
            call_id: call.call_id,
            provider_ods: call.provider_ods,
            bundle_id: call.bundle_id,
            snapshot_at: call.snapshot_at,
            bytes: Bytes::from(call.bytes),
            missing_at_close: call.missing_at_close,
            submitted: call.envelope,
            superseded: Vec::new(),
        });
        if flushed.is_none() && self.calls.len() >= self.config.max_calls {
            flushed = self.take(FlushReason::Count);
        }
        flushed
    }

    fn coalesce(&mut self, i: usize, call: MappedCall) {
        let held = &mut self.calls[i];
        if call.snapshot_at >= held.snapshot_at {
            self.bytes = self.bytes + call.bytes.len() - held.bytes.len();
            let older = std::mem::replace(&mut held.submitted, call.envelope);
            held.superseded.push(older);
            held.bytes = Bytes::from(call.bytes);
            held.snapshot_at = call.snapshot_at;
            held.missing_at_close = call.missing_at_close;
        } else {
            held.superseded.push(call.envelope);
        }
    }

    /// Closes the open batch, if any.
    pub fn take(&mut self, reason: FlushReason) -> Option<Batch> {
        if self.calls.is_empty() {
            return None;
        }
        self.index.clear();
        self.opened = None;
        let bytes = std::mem::replace(&mut self.bytes, BATCH_OVERHEAD);
        Some(Batch {
            id: Uuid::new_v4(),
            // The next batch's room made now: a batch grows to `max_calls` most of the time.
            calls: std::mem::replace(&mut self.calls, Vec::with_capacity(self.config.max_calls)),
            bytes,
            reason,
        })
    }
}

/// The batcher stage: the pure [`BatchBuilder`] driven by its input and the linger clock.
pub struct Batcher {
    /// Submission size, bytes and linger.
    pub config: BatchConfig,
    /// Metrics.
    pub metrics: Metrics,
}

impl Batcher {
    /// Runs the batcher until its input closes; see the module header.
    pub async fn run(self, input: mpsc::Receiver<MappedCall>, output: mpsc::Sender<Batch>) {
        batch(self.config, self.metrics, input, output).await
    }
}

async fn batch(
    config: BatchConfig,
    metrics: Metrics,
    mut input: mpsc::Receiver<MappedCall>,
    output: mpsc::Sender<Batch>,
) {
    let mut builder = BatchBuilder::new(config);
    loop {
        let deadline = builder.deadline();
        let flushed = tokio::select! {
            call = input.recv() => match call {
                Some(call) => builder.push(call),
                None => {
                    if let Some(batch) = builder.take(FlushReason::Shutdown) {
                        send(&metrics, &output, batch).await;
                    }
                    return;
                }
            },
            _ = sleep_until(deadline) => builder.take(FlushReason::Linger),
        };
        if let Some(batch) = flushed {
            if !send(&metrics, &output, batch).await {
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn send(metrics: &Metrics, output: &mpsc::Sender<Batch>, batch: Batch) -> bool {
    metrics.batch_flushed(batch.reason, batch.records(), batch.bytes);
    output.send(batch).await.is_ok()
}

impl Batch {
    /// The `process {topic}` span of this submission, linked to its records' trace contexts.
    pub fn process_span(&self, consumer: &telemetry::ConsumerGroup) -> tracing::Span {
        let records: Vec<telemetry::RecordTrace<'_>> = self
            .calls
            .iter()
            .flat_map(|c| c.envelopes())
            .map(|e| (&*e.pos.topic, e.pos.partition, e.traceparent.as_deref()))
            .collect();
        let facts = telemetry::ProcessFacts {
            batch_id: &self.id,
            calls: self.calls.len(),
            records: self.records(),
            flush_reason: self.reason.as_str(),
        };
        telemetry::process_span(facts, &records, consumer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::offsets::RecordPos;

    fn config(max_calls: usize, max_bytes: usize) -> BatchConfig {
        BatchConfig {
            mode: SubmissionMode::Batch,
            max_calls,
            max_bytes,
            linger: Duration::from_millis(500),
        }
    }

    fn call(key: &str, offset: i64, snapshot_s: i64, size: usize) -> MappedCall {
        MappedCall {
            missing_at_close: Vec::new(),
            envelope: Envelope {
                pos: RecordPos {
                    topic: Arc::from("cad"),
                    partition: 0,
                    offset,
                    generation: 1,
                },
                key: Some(key.as_bytes().to_vec()),
                payload: None,
                headers: vec![],
                timestamp_ms: None,
                traceparent: None,
                oversize: None,
            },
            call_key: format!("RX6/{key}").into(),
            call_id: key.into(),
            provider_ods: "RX6".into(),
            bundle_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
            snapshot_at: DateTime::from_timestamp(snapshot_s, 0).unwrap(),
            bytes: format!("{{\"k\":\"{}\"}}", "x".repeat(size)).into_bytes(),
        }
    }

    #[test]
    fn flushes_when_the_count_limit_is_reached() {
        let mut b = BatchBuilder::new(config(2, 1 << 20));
        assert!(b.push(call("a", 0, 1, 10)).is_none());
        let batch = b.push(call("b", 1, 1, 10)).unwrap();
        assert_eq!(batch.reason, FlushReason::Count);
        assert_eq!(batch.calls.len(), 2);
        assert!(b.take(FlushReason::Shutdown).is_none());
    }

    #[test]
    fn flushes_before_a_call_that_would_pass_the_byte_limit() {
        let mut b = BatchBuilder::new(config(100, 1000));
        assert!(b.push(call("a", 0, 1, 500)).is_none());
        let batch = b.push(call("b", 1, 1, 500)).unwrap();
        assert_eq!(batch.reason, FlushReason::Bytes);
        assert_eq!(batch.calls[0].call_id, "a");
        let rest = b.take(FlushReason::Shutdown).unwrap();
        assert_eq!(rest.calls[0].call_id, "b");
    }

    #[test]
    fn a_call_larger_than_the_limit_is_sent_alone() {
        let mut b = BatchBuilder::new(config(100, 1024));
        assert!(b.push(call("big", 0, 1, 5000)).is_none());
        let batch = b.take(FlushReason::Linger).unwrap();
        assert_eq!(batch.calls.len(), 1);
    }

    #[test]
    fn snapshots_of_one_call_coalesce_to_the_newest() {
        let mut b = BatchBuilder::new(config(100, 1 << 20));
        b.push(call("a", 0, 10, 10));
        b.push(call("a", 1, 20, 12));
        b.push(call("a", 2, 15, 14));
        let batch = b.take(FlushReason::Linger).unwrap();
        assert_eq!(batch.calls.len(), 1);
        let c = &batch.calls[0];
        assert_eq!(c.submitted.pos.offset, 1);
        let mut superseded: Vec<i64> = c.superseded.iter().map(|e| e.pos.offset).collect();
        superseded.sort();
        assert_eq!(superseded, vec![0, 2]);
        assert_eq!(batch.records(), 3);
    }

    #[test]
    fn batch_body_is_a_fhir_batch_bundle_of_the_call_bundles() {
        let mut b = BatchBuilder::new(config(100, 1 << 20));
        b.push(call("a", 0, 1, 3));
        b.push(call("b", 1, 1, 3));
        let batch = b.take(FlushReason::Linger).unwrap();
        let bytes = batch.body(SubmissionMode::Batch).to_vec();
        // The byte limit counts the body exactly, but for the first entry's missing separator.
        assert_eq!(batch.bytes, bytes.len() + 1);
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["id"], batch.id.to_string());
        assert_eq!(
            body["entry"][1]["fullUrl"],
            format!("urn:uuid:{}", batch.calls[1].bundle_id)
        );
        assert_eq!(body["type"], "batch");
        assert_eq!(body["entry"].as_array().unwrap().len(), 2);
        assert_eq!(body["entry"][1]["resource"]["k"], "xxx");
        assert_eq!(body["entry"][0]["request"]["method"], "POST");
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_a_partial_batch_after_linger_and_on_shutdown() {
        let (in_tx, in_rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let batcher = Batcher {
            config: config(100, 1 << 20),
            metrics: Metrics::new(),
        };
        let task = tokio::spawn(batcher.run(in_rx, out_tx));
        in_tx.send(call("a", 0, 1, 3)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(out_rx.recv().await.unwrap().reason, FlushReason::Linger);
        in_tx.send(call("b", 1, 1, 3)).await.unwrap();
        drop(in_tx);
        assert_eq!(out_rx.recv().await.unwrap().reason, FlushReason::Shutdown);
        task.await.unwrap();
    }
}
