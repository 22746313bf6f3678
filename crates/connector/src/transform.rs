//! Transform: decode each record as `cad.call.v1`, map it to its ADS call Bundle, serialize it.
//!
//! Input: [`Envelope`]s in consume order. Output: a [`MappedCall`] to the batcher for every
//! record that decodes and maps, or a [`DeadLetter`] (stage `decode` or `mapping`, kind from the
//! error's bounded enum, message with the JSON path and rule but never a patient value) for every
//! record that does not, including one whose handling panicked (kind `internal_error`).
//! Exactly one of the two per input record, in input order; nothing is dropped. No failure
//! stops this stage: it ends when its input closes, dropping both senders.

use tokio::sync::mpsc;

use crate::batcher::MappedCall;
use crate::cad;
use crate::dead_letter::{problems_json, DeadLetter, ErrorStage};
use crate::mapping::{self, MappingOptions};
use crate::metrics::{DeadLetterKind, Metrics};
use crate::source::Envelope;

/// What became of one record.
#[derive(Debug)]
pub enum Transformed {
    /// Ready for the batcher.
    Mapped(MappedCall),
    /// Bound for the dead-letter topic.
    Invalid(DeadLetter),
}

/// Decodes and maps one record. A panic while doing so (a bug that this record triggers) costs
/// this record, not the pipeline: it is dead-lettered with kind `internal_error` and the
/// panic's message (our panics name invariants, never input values).
pub fn transform(envelope: Envelope, options: &MappingOptions) -> Transformed {
    if let Some(o) = &envelope.oversize {
        let message = format!(
            "the record is {} bytes, above kafka.max_record_bytes; its value is not in this dead letter (ads-record-sha256 identifies it)",
            o.bytes
        );
        return Transformed::Invalid(DeadLetter {
            envelope,
            stage: ErrorStage::Decode,
            kind: DeadLetterKind::RecordTooLarge,
            message,
            problems: None,
            process: None,
        });
    }
    guarded(envelope, |payload| work(payload, options))
}

/// Runs `work` on the record's value, turning a panic into an `internal_error` dead letter.
fn guarded(
    envelope: Envelope,
    work: impl FnOnce(Option<&[u8]>) -> Result<Work, Refusal>,
) -> Transformed {
    let payload = envelope.payload.as_deref();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(payload)));
    let (stage, kind, message, problems) = match outcome {
        Ok(Ok(w)) => {
            return Transformed::Mapped(MappedCall {
                envelope,
                call_key: w.call_key,
                call_id: w.call_id,
                provider_ods: w.provider_ods,
                bundle_id: w.bundle_id,
                snapshot_at: w.snapshot_at,
                bytes: w.bytes,
                missing_at_close: w.missing_at_close,
            })
        }
        Ok(Err(refusal)) => refusal,
        Err(panic) => (
            ErrorStage::Mapping,
            DeadLetterKind::InternalError,
            format!(
                "the connector failed on this record (a bug; the record may be valid): {}",
                crate::telemetry::panic_message(panic)
            ),
            None,
        ),
    };
    Transformed::Invalid(DeadLetter {
        envelope,
        stage,
        kind,
        message,
        problems,
        process: None,
    })
}

/// What a record that maps becomes, without its envelope.
struct Work {
    call_key: String,
    call_id: String,
    provider_ods: String,
    bundle_id: uuid::Uuid,
    snapshot_at: chrono::DateTime<chrono::Utc>,
    bytes: Vec<u8>,
    missing_at_close: Vec<mapping::AdsItem>,
}

/// Why a record is refused: stage, kind, message, problems (JSON).
type Refusal = (ErrorStage, DeadLetterKind, String, Option<String>);

fn work(payload: Option<&[u8]>, options: &MappingOptions) -> Result<Work, Refusal> {
    let call = match payload.map(cad::decode) {
        Some(Ok(call)) => call,
        Some(Err(e)) => {
            return Err((
                ErrorStage::Decode,
                DeadLetterKind::Decode(e.kind()),
                e.to_string(),
                problems_json(&e.problems()),
            ))
        }
        None => {
            return Err((
                ErrorStage::Decode,
                DeadLetterKind::EmptyValue,
                "the record has no value (tombstone)".to_string(),
                None,
            ))
        }
    };
    let bundle = mapping::map_validated(&call, options).map_err(|e| {
        (
            ErrorStage::Mapping,
            DeadLetterKind::Mapping(e.kind()),
            e.to_string(),
            problems_json(&e.problems()),
        )
    })?;
    let bytes = serde_json::to_vec(&bundle.json).expect("a serde_json::Value always serializes");
    Ok(Work {
        call_key: bundle.call_key,
        call_id: call.call_id,
        provider_ods: call.provider_ods,
        bundle_id: bundle.bundle_id,
        snapshot_at: bundle.snapshot_at,
        bytes,
        missing_at_close: bundle.missing_at_close,
    })
}

/// The transform stage; see the module header.
pub struct Transform {
    /// How calls are mapped.
    pub options: MappingOptions,
    /// Metrics.
    pub metrics: Metrics,
}

/// Where the transform stage sends its records.
pub struct TransformOutput {
    /// Mapped calls, to the batcher.
    pub mapped: mpsc::Sender<MappedCall>,
    /// Invalid records, to the dead-letter stage.
    pub dead_letters: mpsc::Sender<DeadLetter>,
}

impl Transform {
    /// Runs the stage until its input closes; see the module header.
    pub async fn run(self, mut input: mpsc::Receiver<Envelope>, output: TransformOutput) {
        while let Some(envelope) = input.recv().await {
            let sent = match transform(envelope, &self.options) {
                Transformed::Mapped(call) => output.mapped.send(call).await.is_ok(),
                Transformed::Invalid(letter) => {
                    self.metrics.record_invalid(letter.kind);
                    output.dead_letters.send(letter).await.is_ok()
                }
            };
            if !sent {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::offsets::RecordPos;

    fn envelope(payload: &[u8]) -> Envelope {
        Envelope {
            pos: RecordPos {
                topic: Arc::from("cad"),
                partition: 0,
                offset: 7,
                generation: 1,
            },
            key: Some(b"call".to_vec()),
            payload: Some(payload.to_vec()),
            headers: Vec::new(),
            timestamp_ms: None,
            traceparent: None,
            oversize: None,
        }
    }

    #[test]
    fn a_panic_while_handling_a_record_dead_letters_that_record_as_internal_error() {
        let out = guarded(envelope(b"{}"), |_| {
            panic!("index out of bounds: the len is 0")
        });
        let Transformed::Invalid(letter) = out else {
            panic!("a panicking record must be dead-lettered");
        };
        assert_eq!(letter.kind, DeadLetterKind::InternalError);
        assert_eq!(letter.kind.as_str(), "internal_error");
        assert!(
            letter.message.contains("index out of bounds"),
            "{}",
            letter.message
        );
        assert_eq!(letter.envelope.pos.offset, 7);
        assert_eq!(letter.envelope.payload.as_deref(), Some(b"{}".as_slice()));
    }

    #[test]
    fn a_record_that_does_not_panic_goes_through_unchanged() {
        let out = transform(envelope(b"not json"), &MappingOptions::default());
        let Transformed::Invalid(letter) = out else {
            panic!("invalid JSON is dead-lettered");
        };
        assert_eq!(letter.kind.as_str(), "invalid_json");
    }
}
