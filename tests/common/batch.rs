//! Submissions built by hand, for tests of the submitter alone.

use std::sync::Arc;
use std::time::Duration;

use ads_connector::batcher::{Batch, BatchBuilder, MappedCall};
use ads_connector::config::{BatchConfig, SubmissionMode};
use ads_connector::metrics::FlushReason;
use ads_connector::offsets::RecordPos;
use ads_connector::source::Envelope;

/// A submission of one generated call (seed 3), as the batcher would close it.
pub fn one_call_batch() -> Batch {
    let mut generator = ads_devkit::generate::Generator::new(3);
    let call = generator.next_call();
    let bundle =
        ads_connector::mapping::map_call(&call, &ads_connector::mapping::MappingOptions::default())
            .unwrap();
    let mut builder = BatchBuilder::new(BatchConfig {
        mode: SubmissionMode::Batch,
        max_calls: 10,
        max_bytes: 1 << 20,
        linger: Duration::from_secs(1),
    });
    builder.push(MappedCall {
        missing_at_close: Vec::new(),
        envelope: Envelope {
            pos: RecordPos {
                topic: Arc::from("cad"),
                partition: 0,
                offset: 0,
                generation: 1,
            },
            key: Some(call.call_id.as_bytes().to_vec()),
            payload: None,
            headers: vec![],
            timestamp_ms: None,
            traceparent: None,
            oversize: None,
        },
        call_key: bundle.call_key.clone(),
        call_id: call.call_id.clone(),
        provider_ods: call.provider_ods.clone(),
        bundle_id: bundle.bundle_id,
        snapshot_at: bundle.snapshot_at,
        bytes: serde_json::to_vec(&bundle.json).unwrap(),
    });
    builder.take(FlushReason::Linger).unwrap()
}
