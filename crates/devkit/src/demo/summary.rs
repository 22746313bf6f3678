//! What the demo measured ([`Summary`], also written as JSON with `--summary-json`), the figures
//! derived from the raw counts (ordering violations, latency percentiles), and the printed
//! summary. No I/O beyond `println!`.

use std::collections::HashMap;

use serde::Serialize;

use nhs_emulator as sandbox;

/// What the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Records produced to the CAD topic.
    pub produced: u64,
    /// Records the connector consumed.
    pub consumed: u64,
    /// Submissions the API accepted.
    pub submissions: u64,
    /// Produced records with at least one ack.
    pub acked: u64,
    /// Produced records with a dead letter.
    pub dead_lettered: u64,
    /// Produced records with neither.
    pub lost: u64,
    /// Ack or dead-letter records beyond the first for a source record.
    pub duplicates: u64,
    /// Times the sandbox received an older snapshot of a call after a newer one.
    pub ordering_violations: u64,
    /// Calls the sandbox received.
    pub calls_received: u64,
    /// Seconds from the first produce to the last ack.
    pub elapsed_s: f64,
    /// Produced records per second over `elapsed_s`.
    pub records_per_s: f64,
    /// Median Kafka timestamp → ack, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile Kafka timestamp → ack, milliseconds.
    pub p99_ms: f64,
    /// Calls the sandbox's DPS rejected (`--dps-errors`).
    pub dps_rejected: u64,
    /// `ads.dps-error.v1` records read back from the errors topic.
    pub dps_errors_published: u64,
    /// Of which correlated to their ack.
    pub dps_errors_correlated: u64,
    /// Distinct calls among the records produced.
    pub distinct_calls: u64,
    /// Acks with outcome `superseded` (a newer snapshot of the call replaced the record).
    pub superseded: u64,
    /// `--schedule window`: the simulated window's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFigures>,
    /// A plain consumer's rate on the same topic and cluster (`--measure-raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_consume_records_per_s: Option<f64>,
    /// `records_per_s / raw_consume_records_per_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_ratio: Option<f64>,
}

/// What `--schedule window` measured on its simulated clock.
#[derive(Debug, Clone, Serialize)]
pub struct WindowFigures {
    /// The schedule, as `check-config` prints it at the start of the simulated day.
    pub schedule: String,
    /// POSTs made before the simulated opening (must be 0).
    pub posts_before_opening: u64,
    /// Token requests made before the simulated opening (must be 0).
    pub tokens_before_opening: u64,
    /// Records acked `superseded` by the window pass, without a POST of their own.
    pub coalesced: u64,
    /// Calls the API received more than once (must be 0 without faults).
    pub calls_posted_more_than_once: u64,
}

/// Times the API received an older snapshot of a call after a newer one (an equal one is a
/// harmless resend).
pub fn ordering_violations(received: &[sandbox::ReceivedCall]) -> u64 {
    let mut newest: HashMap<&str, &str> = HashMap::new();
    let mut violations = 0;
    for call in received {
        let Some(ts) = call.timestamp.as_deref() else {
            continue;
        };
        match newest.get(call.call_id.as_str()) {
            Some(seen) if parse_ts(ts) < parse_ts(seen) => violations += 1,
            Some(seen) if parse_ts(ts) == parse_ts(seen) => {}
            _ => {
                newest.insert(&call.call_id, ts);
            }
        }
    }
    violations
}

fn parse_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

pub(super) fn print_summary(s: &Summary) {
    println!("ads-connector demo");
    println!("  produced        {:>8}", s.produced);
    println!("  consumed        {:>8}", s.consumed);
    println!("  submissions     {:>8}", s.submissions);
    println!("  acked           {:>8}", s.acked);
    println!("  dead letters    {:>8}", s.dead_lettered);
    println!("  lost            {:>8}", s.lost);
    println!("  duplicates      {:>8}", s.duplicates);
    println!("  order violations{:>8}", s.ordering_violations);
    println!("  distinct calls  {:>8}", s.distinct_calls);
    println!(
        "  superseded      {:>8}  (acked: a newer snapshot of the call replaced them)",
        s.superseded
    );
    println!(
        "  calls received  {:>8}  (by the sandbox API)",
        s.calls_received
    );
    println!("  elapsed         {:>8.2} s", s.elapsed_s);
    println!("  throughput      {:>8.0} records/s", s.records_per_s);
    println!(
        "  latency p50     {:>8.1} ms  (Kafka timestamp → ack)",
        s.p50_ms
    );
    println!("  latency p99     {:>8.1} ms", s.p99_ms);
    if let Some(w) = &s.window {
        println!("  schedule        {}", w.schedule);
        println!(
            "  before opening  {:>8}  POSTs, {} token requests",
            w.posts_before_opening, w.tokens_before_opening
        );
        println!(
            "  coalesced       {:>8}  records acked superseded by the window pass, no POST",
            w.coalesced
        );
        println!(
            "  posted twice    {:>8}  calls the API received more than once",
            w.calls_posted_more_than_once
        );
    }
    if s.dps_rejected > 0 || s.dps_errors_published > 0 {
        println!(
            "  DPS rejections  {:>8}  (by the sandbox, after acceptance)",
            s.dps_rejected
        );
        println!(
            "  DPS errors      {:>8}  published ({} correlated to their call)",
            s.dps_errors_published, s.dps_errors_correlated
        );
    }
    if let (Some(raw), Some(ratio)) = (s.raw_consume_records_per_s, s.throughput_ratio) {
        println!(
            "  raw consume     {raw:>8.0} records/s  (a plain consumer, same topic and cluster)"
        );
        println!("  ratio           {ratio:>8.3}  (connector / raw consume)");
    }
}
