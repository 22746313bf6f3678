//! Transform: decode each record as `cad.call.v1`, map it to its ADS call Bundle, serialize it.
//!
//! Input: [`Envelope`]s in consume order. Output: a [`MappedCall`] to the batcher for every
//! record that decodes and maps, or a [`DeadLetter`] (stage `decode` or `mapping`, kind from the
//! error's bounded enum, message with the JSON path and rule but never a patient value) for every
//! record that does not. Exactly one of the two per input record, in input order; nothing is
//! dropped. No failure stops this stage: it ends when its input closes, dropping both senders.

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

/// Decodes and maps one record.
pub fn transform(envelope: Envelope, options: &MappingOptions) -> Transformed {
    match try_transform(envelope, options) {
        Ok(call) => Transformed::Mapped(call),
        Err(letter) => Transformed::Invalid(*letter),
    }
}

fn try_transform(
    envelope: Envelope,
    options: &MappingOptions,
) -> Result<MappedCall, Box<DeadLetter>> {
    let reject = |envelope, stage, kind, message, problems| {
        Box::new(DeadLetter {
            envelope,
            stage,
            kind,
            message,
            problems,
            process: None,
        })
    };
    let call = match envelope.payload.as_deref().map(cad::decode) {
        Some(Ok(call)) => call,
        Some(Err(e)) => {
            let (kind, message) = (DeadLetterKind::Decode(e.kind()), e.to_string());
            let problems = problems_json(&e.problems());
            return Err(reject(
                envelope,
                ErrorStage::Decode,
                kind,
                message,
                problems,
            ));
        }
        None => {
            let message = "the record has no value (tombstone)".to_string();
            return Err(reject(
                envelope,
                ErrorStage::Decode,
                DeadLetterKind::EmptyValue,
                message,
                None,
            ));
        }
    };
    let bundle = match mapping::map_validated(&call, options) {
        Ok(bundle) => bundle,
        Err(e) => {
            let (kind, message) = (DeadLetterKind::Mapping(e.kind()), e.to_string());
            let problems = problems_json(&e.problems());
            return Err(reject(
                envelope,
                ErrorStage::Mapping,
                kind,
                message,
                problems,
            ));
        }
    };
    let bytes = serde_json::to_vec(&bundle.json).expect("a serde_json::Value always serializes");
    Ok(MappedCall {
        envelope,
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
