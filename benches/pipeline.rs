//! Criterion benchmarks of the pure pipeline stages: batching (with coalescing and body
//! assembly) and the offset watermark. The end-to-end throughput run is `ads-connector demo
//! --calls N --summary-json FILE`.

use std::sync::Arc;
use std::time::Duration;

use ads_connector::batcher::{BatchBuilder, MappedCall};
use ads_connector::config::{BatchConfig, SubmissionMode};
use ads_connector::metrics::FlushReason;
use ads_connector::offsets::{OffsetTracker, RecordPos};
use ads_connector::source::Envelope;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn call(i: usize, bundle: &[u8]) -> MappedCall {
    MappedCall {
        missing_at_close: Vec::new(),
        envelope: Envelope {
            pos: RecordPos {
                topic: Arc::from("cad"),
                partition: 0,
                offset: i as i64,
                generation: 1,
            },
            key: Some(format!("call-{i}").into_bytes()),
            payload: None,
            headers: vec![],
            timestamp_ms: Some(0),
            traceparent: None,
            oversize: None,
        },
        call_key: format!("RX6/call-{}", i % 900).into(),
        call_id: format!("call-{i}").into(),
        provider_ods: "RX6".into(),
        bundle_id: uuid::Uuid::new_v4(),
        snapshot_at: chrono::DateTime::from_timestamp(i as i64, 0).unwrap(),
        bytes: bundle.to_vec(),
    }
}

fn batching(c: &mut Criterion) {
    let bundle = vec![b'x'; 4096];
    let config = BatchConfig {
        mode: SubmissionMode::Batch,
        max_calls: 100,
        max_bytes: 4 << 20,
        linger: Duration::from_secs(1),
    };
    let mut group = c.benchmark_group("batcher");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("push_1000_calls_and_encode_bodies", |b| {
        b.iter_batched(
            || (0..1000).map(|i| call(i, &bundle)).collect::<Vec<_>>(),
            |calls| {
                let mut builder = BatchBuilder::new(config);
                let mut bytes = 0;
                for c in calls {
                    if let Some(batch) = builder.push(c) {
                        bytes += batch.body(SubmissionMode::Batch).len();
                    }
                }
                if let Some(batch) = builder.take(FlushReason::Shutdown) {
                    bytes += batch.body(SubmissionMode::Batch).len();
                }
                bytes
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn watermark(c: &mut Criterion) {
    let mut group = c.benchmark_group("offsets");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("register_and_complete_10k_out_of_order", |b| {
        b.iter(|| {
            let mut t = OffsetTracker::default();
            t.assign("cad", 0);
            let positions: Vec<_> = (0..10_000)
                .map(|o| t.register("cad", 0, o).unwrap())
                .collect();
            for chunk in positions.chunks(100).rev() {
                for p in chunk {
                    t.complete(p);
                }
            }
            t.outstanding()
        })
    });
    group.finish();
}

criterion_group!(benches, batching, watermark);
criterion_main!(benches);
