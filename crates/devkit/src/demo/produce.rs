//! The demo's input: generated `cad.call.v1` records (some later snapshots of earlier calls, a
//! share made invalid by truncation, a share naming an unregistered provider under
//! `--dps-errors`), each with a `traceparent` header, produced to the CAD topic at once or
//! spread over a pace. Seeded: the same arguments give the same records.

use std::time::Duration;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::{DemoArgs, CAD_TOPIC};
use crate::generate::{self, Generator};
use ads_connector::kafka::produce_all;

/// Produces the demo's records; returns how many, and how many distinct calls they hold.
pub(super) async fn produce(
    bootstrap: &str,
    args: &DemoArgs,
    pace: Duration,
) -> Result<(u64, u64)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("socket.nagle.disable", "true")
        .set("linger.ms", "5")
        .create()?;
    let mut generator =
        Generator::starting_at(args.seed, chrono::Utc::now() - chrono::Duration::hours(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut calls: Vec<ads_connector::cad::CadCall> = Vec::new();
    let mut records: Vec<(Vec<u8>, Vec<u8>, OwnedHeaders)> = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let known = calls.len();
        let roll: f64 = rng.gen();
        let call = if roll < args.update_ratio && !calls.is_empty() {
            let i = rng.gen_range(0..calls.len());
            let next = generator.next_update(&calls[i]);
            calls[i] = next.clone();
            next
        } else {
            let call = generator.next_call();
            calls.push(call.clone());
            call
        };
        let mut payload = generate::to_json_line(&call).into_bytes();
        if let Some(rate) = args.dps_errors {
            if calls.len() > known && rng.gen::<f64>() < rate {
                payload = crate::demo::dps_errors::rejected_payload(&call);
            }
        }
        if rng.gen::<f64>() < args.invalid_ratio {
            // A truncated record: the connector must dead-letter it, not crash or drop it.
            payload.truncate(payload.len() / 2);
        }
        let traceparent = format!("00-{:032x}-{:016x}-01", rng.gen::<u128>(), rng.gen::<u64>());
        let headers = OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some(&traceparent),
        });
        records.push((call.call_id.as_bytes().to_vec(), payload, headers));
    }
    // Without a pace, everything at once; with one, in 40 slices spread over it.
    let slices = if pace.is_zero() { 1 } else { 40 };
    let per_slice = records.len().div_ceil(slices).max(1);
    for slice in records.chunks(per_slice) {
        let prepared = slice.iter().map(|(k, v, h)| {
            FutureRecord::<[u8], [u8]>::to(CAD_TOPIC)
                .key(k.as_slice())
                .payload(v.as_slice())
                .headers(h.clone())
        });
        produce_all(&producer, prepared).await?;
        tokio::time::sleep(pace / slices as u32).await;
    }
    Ok((records.len() as u64, calls.len() as u64))
}
