//! Reading the demo's outcome back from Kafka: the ack and dead-letter topics from the start,
//! tallied per source record (duplicates and Kafka timestamp → ack latencies counted) until every
//! produced record is accounted for or the deadline passes; and, for `--measure-raw`, the rate
//! of a plain consumer reading the whole CAD topic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{ACK_TOPIC, CAD_TOPIC, DLQ_TOPIC};

#[derive(Default)]
pub(super) struct Tally {
    pub(super) acked: HashMap<(i32, i64), u32>,
    pub(super) dead: HashMap<(i32, i64), u32>,
    pub(super) duplicates: u64,
    pub(super) latencies_ms: Vec<f64>,
    /// Acks with outcome `superseded`.
    pub(super) superseded: u64,
}

/// Reads the ack and dead-letter topics from the start until `expected` source records are
/// accounted for or `deadline` passes.
pub(super) fn read_back(
    bootstrap: &str,
    expected: u64,
    deadline: Instant,
    progress: &indicatif::ProgressBar,
) -> Result<Tally> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ads-demo-reader")
        .set("enable.auto.commit", "false")
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(ACK_TOPIC, 0, Offset::Beginning)?;
    tpl.add_partition_offset(DLQ_TOPIC, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut tally = Tally::default();
    while ((tally.acked.len() + tally.dead.len()) as u64) < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let source = if message.topic() == ACK_TOPIC {
            let ack: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default())?;
            let src = &ack["source"];
            if ack["outcome"] == "superseded" {
                tally.superseded += 1;
            }
            if let (Some(ts), Some(sent)) = (
                src["timestamp_ms"].as_i64(),
                message.timestamp().to_millis(),
            ) {
                tally.latencies_ms.push((sent - ts) as f64);
            }
            let key = (
                src["partition"].as_i64().unwrap_or(-1) as i32,
                src["offset"].as_i64().unwrap_or(-1),
            );
            (&mut tally.acked, key)
        } else {
            let header = |name: &str| {
                message.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                })
            };
            let key = (
                header("ads-source-partition").unwrap_or(-1) as i32,
                header("ads-source-offset").unwrap_or(-1),
            );
            (&mut tally.dead, key)
        };
        let (map, key) = source;
        let count = map.entry(key).or_insert(0);
        *count += 1;
        if *count > 1 {
            tally.duplicates += 1;
        }
        progress.set_position((tally.acked.len() + tally.dead.len()) as u64);
    }
    Ok(tally)
}

/// Records per second of a plain consumer reading the whole CAD topic of the same cluster.
pub(super) fn raw_consume_rate(bootstrap: &str, expected: u64) -> Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ads-demo-raw")
        .set("enable.auto.commit", "false")
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(CAD_TOPIC), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(CAD_TOPIC, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut seen = 0u64;
    while seen < expected && started.elapsed() < Duration::from_secs(60) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m?;
            seen += 1;
        }
    }
    Ok(seen as f64 / started.elapsed().as_secs_f64())
}
