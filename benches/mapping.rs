//! Criterion benches of the per-call work of the transform stage: decode (`cad.call.v1` bytes →
//! `CadCall`), encode (`CadCall` → validated ADS Bundle as the request body's bytes: map, local
//! validation and one write), `decode_map_serialize` (both: what the transform does per
//! record), and, off the per-record path, local validation of a `serde_json::Value` (`check`,
//! the `validate` command), the UK Core conformance check (`uk_core_conformance`) and
//! serializing a `Value` (`serialize`). Each iteration handles a fixed set of generated calls
//! of every stage of life, so throughput reads as calls (or bytes) per second.
//!
//! Run: `cargo bench --bench mapping` (add `-- --quick` for a short run).
//!
//! Instructions per record: `ADS_BENCH_PASSES=N` runs the transform's per-record work N times
//! over the calls instead of criterion and exits; under `valgrind --tool=callgrind`,
//! `(I(N) - I(0)) / (N × 100)` is the instruction count of one record.

use std::hint::black_box;

/// The binary's allocator (`src/allocator.rs`).
#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

use ads_connector::cad::{self, CadCall};
use ads_connector::mapping::{check, encode_validated, map_call, MappingOptions};
use ads_devkit::generate::{to_json_line, Generator};
use criterion::{criterion_group, Criterion, Throughput};

const CALLS: usize = 100;

fn inputs() -> (Vec<Vec<u8>>, Vec<CadCall>) {
    let mut generator = Generator::new(2025);
    let calls: Vec<CadCall> = (0..CALLS)
        .map(|_| {
            let call = generator.next_call();
            generator.next_update(&call)
        })
        .collect();
    let bytes = calls.iter().map(|c| to_json_line(c).into_bytes()).collect();
    (bytes, calls)
}

fn bench(c: &mut Criterion) {
    let (records, calls) = inputs();
    let options = MappingOptions::default();
    let bundles: Vec<_> = calls
        .iter()
        .map(|call| map_call(call, &options).expect("generated calls map"))
        .collect();
    let record_bytes: usize = records.iter().map(Vec::len).sum();
    let bundle_bytes: usize = bundles
        .iter()
        .map(|b| serde_json::to_vec(&b.json).expect("serializes").len())
        .sum();

    let mut group = c.benchmark_group("per_call");
    group.throughput(Throughput::Elements(CALLS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                black_box(cad::decode(black_box(r)).expect("valid"));
            }
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            for call in &calls {
                call.validate().expect("valid");
                black_box(encode_validated(black_box(call), &options).expect("maps"));
            }
        })
    });
    group.bench_function("check", |b| {
        b.iter(|| {
            for bundle in &bundles {
                black_box(check::bundle(black_box(&bundle.json)));
            }
        })
    });
    // The UK Core StructureDefinition check (`validate` and the tests; not on the per-record
    // path): compare with `check`, the typed local validation the service runs.
    ads_connector::conformance::check_bundle(&bundles[0].json);
    group.bench_function("uk_core_conformance", |b| {
        b.iter(|| {
            for bundle in &bundles {
                black_box(ads_connector::conformance::check_bundle(black_box(
                    &bundle.json,
                )));
            }
        })
    });
    group.bench_function("serialize", |b| {
        b.iter(|| {
            for bundle in &bundles {
                black_box(serde_json::to_vec(black_box(&bundle.json)).expect("serializes"));
            }
        })
    });
    group.bench_function("decode_map_serialize", |b| {
        b.iter(|| {
            for r in &records {
                black_box(per_record(black_box(r), &options));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("bytes");
    group.throughput(Throughput::Bytes(record_bytes as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                black_box(cad::decode(black_box(r)).expect("valid"));
            }
        })
    });
    group.throughput(Throughput::Bytes(bundle_bytes as u64));
    group.bench_function("serialize", |b| {
        b.iter(|| {
            for bundle in &bundles {
                black_box(serde_json::to_vec(black_box(&bundle.json)).expect("serializes"));
            }
        })
    });
    group.finish();
}

/// The transform's work on one record: decode, map, check, write the request body's bytes.
fn per_record(record: &[u8], options: &MappingOptions) -> Vec<u8> {
    let call = cad::decode(record).expect("valid");
    encode_validated(&call, options).expect("maps").bytes
}

criterion_group!(benches, bench);

fn main() {
    if let Some(passes) = std::env::var("ADS_BENCH_PASSES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let (records, _) = inputs();
        let options = MappingOptions::default();
        for _ in 0..passes {
            for r in &records {
                black_box(per_record(black_box(r), &options));
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
