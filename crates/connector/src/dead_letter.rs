//! Dead letters: records that cannot be submitted go to the dead-letter topic, unchanged.
//!
//! Input: [`DeadLetter`]s from the transform stage (undecodable or invalid records) and, with
//! their submission's `process` span, from the submitter (permanent API rejections, exhausted
//! retry budgets). Output: one record on the dead-letter topic per input, with the original key,
//! value and headers (`traceparent` replaced by the context of the `send` span that wrote it: a
//! child of the `process` span, or for transform rejects a root linked to the records' own
//! contexts), plus the headers
//! `ads-error-stage`, `ads-error-kind` (a bounded enum value), `ads-error-message`,
//! `ads-source-topic`, `ads-source-partition`, `ads-source-offset`, and for records refused by
//! the decoder or the local validation `ads-error-problems` (a JSON array of `{path, rule,
//! message}`, at most 16 KiB). Only after the broker has
//! acknowledged that write is the source record marked done in [`Offsets`]: a crash in between
//! writes the dead letter twice, never zero times. In transactional mode
//! (`kafka.transactional_id`) each chunk of dead letters and the offsets it completes are
//! committed in one Kafka transaction ([`Transactions`], shared with the acker), and the records
//! are marked done only after the commit: `read_committed` readers see each dead letter exactly
//! once. Ordering: per input order. Failure: a write the producer cannot deliver (after
//! librdkafka's own retries), or a transaction that fails, is fatal: the stage stops with an
//! error, nothing past it is committed, and the process exits non-zero.

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureRecord;
use tokio::sync::mpsc;
use tracing::Span;

use crate::kafka::{headers, ProduceError};
use crate::metrics::{DeadLetterKind, Metrics};
use crate::source::Envelope;
use crate::telemetry::{self, MAX_LINKS};
use crate::transactions::DurableWriter;

/// The pipeline stage where a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStage {
    /// Not a decodable `cad.call.v1` record.
    Decode,
    /// Decoded, but could not be mapped to a valid ADS bundle.
    Mapping,
    /// Refused by the API, or out of retry budget.
    Submit,
}

impl ErrorStage {
    /// Header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Mapping => "mapping",
            Self::Submit => "submit",
        }
    }
}

/// A record to dead-letter, with why.
#[derive(Debug)]
pub struct DeadLetter {
    /// The original record.
    pub envelope: crate::source::Envelope,
    /// Where it failed.
    pub stage: ErrorStage,
    /// Why: the `ads-error-kind` header and the metric label.
    pub kind: DeadLetterKind,
    /// Human-readable reason; never contains patient data.
    pub message: String,
    /// Machine-readable problems (`[{"path","rule","message"}]` as JSON) for records refused
    /// by the decoder or the local validation; sent as header `ads-error-problems`.
    pub problems: Option<String>,
    /// The `process` span of the submission that refused it (the submitter's letters); `None`
    /// for the transform stage's, whose `send` span is a root linked to the record instead.
    pub process: Option<Span>,
}

/// Longest `ads-error-problems` header: a bundle with many problems is cut to whole entries.
pub const MAX_PROBLEMS_BYTES: usize = 16 * 1024;

/// The problems as a JSON array, cut to whole entries within [`MAX_PROBLEMS_BYTES`].
pub fn problems_json<T: serde::Serialize>(problems: &[T]) -> Option<String> {
    let mut kept = problems.len();
    loop {
        let json = serde_json::to_string(&problems[..kept]).ok()?;
        if json.len() <= MAX_PROBLEMS_BYTES || kept == 0 {
            return Some(json);
        }
        kept /= 2;
    }
}

/// Publishes dead letters; see the module header.
pub struct DeadLetterProducer {
    /// Dead-letter topic.
    pub topic: String,
    /// Metrics.
    pub metrics: Metrics,
}

/// How many dead letters are written before their offsets are marked done together.
const CHUNK: usize = 256;

impl DeadLetterProducer {
    /// Runs until every sender of `input` is dropped; `output` (shared with the acker) writes
    /// the dead letters, then marks their records done.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<DeadLetter>,
        output: DurableWriter,
    ) -> Result<(), ProduceError> {
        let mut chunk = Vec::with_capacity(CHUNK);
        while input.recv_many(&mut chunk, CHUNK).await > 0 {
            self.publish(&chunk, &output).await?;
            chunk.clear();
        }
        Ok(())
    }

    async fn publish(
        &self,
        letters: &[DeadLetter],
        writer: &DurableWriter,
    ) -> Result<(), ProduceError> {
        // One `send` span per run of letters with the same `process` span (or none), at most
        // MAX_LINKS letters each; they all cover the one write below.
        let none = Span::none();
        let mut spans = Vec::new();
        let mut traceparents = Vec::with_capacity(letters.len());
        let same_parent = |a: &DeadLetter, b: &DeadLetter| {
            a.process.as_ref().and_then(Span::id) == b.process.as_ref().and_then(Span::id)
        };
        for group in letters
            .chunk_by(same_parent)
            .flat_map(|g| g.chunks(MAX_LINKS))
        {
            let parent = group[0].process.as_ref();
            let span = telemetry::send_span(parent.unwrap_or(&none), &self.topic, group.len());
            if parent.is_none() {
                let records = group.iter().map(|d| &d.envelope.traceparent);
                telemetry::link(&span, records.filter_map(Option::as_deref));
            }
            let traceparent = telemetry::traceparent(&span);
            traceparents.extend(std::iter::repeat_n(traceparent, group.len()));
            spans.push(span);
        }
        let prepared: Vec<(OwnedHeaders, &Envelope)> = letters
            .iter()
            .zip(&traceparents)
            .map(|(d, t)| (headers(d, t.as_deref()), &d.envelope))
            .collect();
        let records = prepared.iter().map(|(h, e)| {
            let mut r = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(h.clone());
            if let Some(k) = &e.key {
                r = r.key(k.as_slice());
            }
            if let Some(p) = &e.payload {
                r = r.payload(p.as_slice());
            }
            r
        });
        let done = letters.iter().map(|d| &d.envelope.pos);
        writer.write(records, done).await?;
        drop(spans);
        for d in letters {
            self.metrics.dead_lettered(d.kind);
            tracing::warn!(
                message = "Record dead-lettered.",
                stage = d.stage.as_str(),
                kind = d.kind.as_str(),
                topic = %d.envelope.pos.topic,
                partition = d.envelope.pos.partition,
                offset = d.envelope.pos.offset
            );
        }
        Ok(())
    }
}

/// The record's headers (its `traceparent` replaced by `traceparent` when there is one), plus
/// the reason headers.
pub(crate) fn headers(d: &DeadLetter, traceparent: Option<&str>) -> OwnedHeaders {
    let partition = d.envelope.pos.partition.to_string();
    let offset = d.envelope.pos.offset.to_string();
    let size = d.envelope.oversize.as_ref().map(|o| o.bytes.to_string());
    // The original headers byte for byte (a key that is not UTF-8 included).
    let original = d
        .envelope
        .headers
        .iter()
        .filter(|(key, _)| traceparent.is_none() || !key.eq_ignore_ascii_case(b"traceparent"))
        .map(|(key, value)| (key.as_slice(), value.as_deref()));
    let reasons = [
        ("ads-error-stage", d.stage.as_str()),
        ("ads-error-kind", d.kind.as_str()),
        ("ads-error-message", d.message.as_str()),
        ("ads-source-topic", &*d.envelope.pos.topic),
        ("ads-source-partition", partition.as_str()),
        ("ads-source-offset", offset.as_str()),
    ]
    .into_iter()
    .chain(traceparent.map(|t| ("traceparent", t)))
    .chain(d.problems.as_deref().map(|p| ("ads-error-problems", p)))
    .chain(size.as_deref().map(|s| ("ads-record-size", s)))
    .chain(
        d.envelope
            .oversize
            .as_ref()
            .map(|o| ("ads-record-sha256", o.sha256.as_str())),
    )
    .map(|(key, value)| (key.as_bytes(), Some(value.as_bytes())));
    headers::owned(original.chain(reasons))
}
