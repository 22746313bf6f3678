//! Lag: consumer lag per partition, from librdkafka's statistics.
//!
//! Input: the [`Statistics`] librdkafka emits every `statistics.interval.ms` (set by
//! [`crate::source::subscribe`], overridable in `kafka.properties`) to the consumer's context,
//! on the thread that polls the consumer. Output: the gauge
//! `ads_connector_kafka_consumer_lag_records{topic,partition}` of every partition this consumer
//! is fetching. The lag is measured from the committed offset (what a restart would resume
//! from) to the partition's end; before the group has committed anything it falls back to the
//! stored offset, then to the whole retained partition (`hi - lo`: a new group reading from the
//! earliest offset has all of it ahead). Partitions that librdkafka knows but does not fetch
//! (not assigned, or being stopped after a revocation) are skipped; a revocation removes the
//! series ([`Metrics::forget_partition`]). Nothing here fails or blocks: it is arithmetic on a
//! parsed JSON document. The lag is self-reported, so it stops with the process: alert on the
//! broker-side lag as well where a Kafka exporter runs (`docs/runbook.md`).

use rdkafka::statistics::Partition;
use rdkafka::Statistics;

use crate::metrics::Metrics;

/// Records the lag of every fetched partition in `stats`.
pub fn record(metrics: &Metrics, stats: &Statistics) {
    for (topic, t) in &stats.topics {
        for (&id, partition) in &t.partitions {
            if let Some(lag) = partition_lag(id, partition) {
                metrics.consumer_lag(topic, id, lag);
            }
        }
    }
}

/// The lag of one partition, or `None` when this consumer is not fetching it.
pub fn partition_lag(id: i32, p: &Partition) -> Option<i64> {
    // -1 is librdkafka's internal "unassigned" partition of a topic.
    if id < 0 || matches!(p.fetch_state.as_str(), "none" | "stopping" | "stopped") {
        return None;
    }
    if p.consumer_lag >= 0 {
        Some(p.consumer_lag)
    } else if p.consumer_lag_stored >= 0 {
        Some(p.consumer_lag_stored)
    } else if p.hi_offset >= 0 && p.lo_offset >= 0 {
        Some(p.hi_offset - p.lo_offset)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(partitions: serde_json::Value) -> Statistics {
        let json = serde_json::json!({
            "name": "c", "client_id": "c", "type": "consumer", "ts": 0, "time": 0, "age": 0,
            "replyq": 0, "msg_cnt": 0, "msg_size": 0, "msg_max": 0, "msg_size_max": 0,
            "simple_cnt": 0, "metadata_cache_cnt": 0, "brokers": {},
            "topics": {"cad": {"topic": "cad", "age": 0, "metadata_age": 0,
                "batchsize": {"min":0,"max":0,"avg":0,"sum":0,"cnt":0,"stddev":0,"hdrsize":0,
                    "p50":0,"p75":0,"p90":0,"p95":0,"p99":0,"p99_99":0,"outofrange":0},
                "batchcnt": {"min":0,"max":0,"avg":0,"sum":0,"cnt":0,"stddev":0,"hdrsize":0,
                    "p50":0,"p75":0,"p90":0,"p95":0,"p99":0,"p99_99":0,"outofrange":0},
                "partitions": partitions}},
            "tx": 0, "tx_bytes": 0, "rx": 0, "rx_bytes": 0, "txmsgs": 0, "txmsg_bytes": 0,
            "rxmsgs": 0, "rxmsg_bytes": 0
        });
        serde_json::from_value(json).expect("statistics JSON")
    }

    fn partition(
        id: i32,
        state: &str,
        lag: i64,
        stored: i64,
        lo: i64,
        hi: i64,
    ) -> serde_json::Value {
        serde_json::json!({
            "partition": id, "broker": 1, "leader": 1, "desired": true, "unknown": false,
            "msgq_cnt": 0, "msgq_bytes": 0, "xmit_msgq_cnt": 0, "xmit_msgq_bytes": 0,
            "fetchq_cnt": 0, "fetchq_size": 0, "fetch_state": state, "query_offset": 0,
            "next_offset": 0, "app_offset": 0, "stored_offset": 0, "committed_offset": 0,
            "eof_offset": 0, "lo_offset": lo, "hi_offset": hi, "ls_offset": hi,
            "consumer_lag": lag, "consumer_lag_stored": stored, "txmsgs": 0, "txbytes": 0,
            "rxmsgs": 0, "rxbytes": 0, "msgs": 0, "rx_ver_drops": 0, "msgs_inflight": 0,
            "next_ack_seq": 0, "next_err_seq": 0, "acked_msgid": 0
        })
    }

    #[test]
    fn fetched_partitions_report_their_lag_and_others_are_skipped() {
        let m = Metrics::new();
        record(
            &m,
            &stats(serde_json::json!({
                "0": partition(0, "active", 7, 3, 0, 10),
                "1": partition(1, "none", 5, 5, 0, 5),
                "-1": partition(-1, "none", -1, -1, -1, -1),
            })),
        );
        let text = m.encode();
        assert!(text
            .contains("ads_connector_kafka_consumer_lag_records{partition=\"0\",topic=\"cad\"} 7"));
        assert!(!text.contains("partition=\"1\""));
        assert!(!text.contains("partition=\"-1\""));
    }

    #[test]
    fn a_group_without_a_commit_falls_back_to_the_stored_offset_then_the_whole_partition() {
        let p: Partition =
            serde_json::from_value(partition(0, "active", -1, 4, 0, 10)).expect("partition");
        assert_eq!(partition_lag(0, &p), Some(4));
        let p: Partition =
            serde_json::from_value(partition(0, "active", -1, -1, 2, 10)).expect("partition");
        assert_eq!(partition_lag(0, &p), Some(8));
        let p: Partition =
            serde_json::from_value(partition(0, "offset-query", -1, -1, -1, -1)).expect("p");
        assert_eq!(partition_lag(0, &p), None);
    }
}
