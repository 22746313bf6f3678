//! Metrics: the one place that knows metric names (prefix `ads_connector_`).
//!
//! Stages call semantic methods (`record_consumed`, `batch_flushed`, `request_completed`, …);
//! they never spell a metric name or a label value. Every label value comes from an enum in
//! `metrics/labels.rs` (dead-letter kinds included: [`DeadLetterKind`] gathers the decoder's,
//! the mapping's and the submitter's closed sets), or from configuration and the broker (topic names,
//! partition numbers), so cardinality is bounded and no patient data, call id or URL can become
//! a label. Every label value an enum knows is created at zero up front, so a dashboard's
//! `rate()` and an alert's ratio see a series (of zeros) before the first event. A private [`Registry`] keeps tests
//! isolated; `/metrics` encodes it in the Prometheus text format, with the process collector's
//! `process_*` families (CPU, resident memory, open files, start time). The catalogue, with the
//! meaning of every family, is `docs/metrics.md`; a test keeps the two in step.
//!
//! Layout: this file holds [`Metrics`], its registry and the pipeline's families;
//! `metrics/labels.rs` the label enums; `metrics/mesh.rs` the MESH poller's families and methods; `metrics/schedule.rs` the
//! submission schedule's.

use std::time::Duration;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

mod labels;
mod mesh;
mod schedule;

pub use labels::DeadLetterKind;

use crate::mapping::AdsItem;
pub use labels::{
    AckOutcome, ApiFault, FlushReason, GapOutcome, LeaseRole, Outcome, RebalanceKind,
    RequestOutcome, RetryReason, StatusLabel, SubmitRejection, Task,
};
use mesh::MeshMetrics;
pub use schedule::ScheduleLabel;
use schedule::ScheduleMetrics;

/// The commit the binary was built from: `ADS_GIT_SHA` at build time, `unknown` without it.
pub const GIT_SHA: &str = match option_env!("ADS_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// The connector's metrics; cheap to clone (every field is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    records_consumed: IntCounterVec,
    decode_failures: IntCounterVec,
    rebalances: IntCounterVec,
    offset_gaps: IntCounterVec,
    partitions_assigned: IntGauge,
    batch_records: Histogram,
    batch_bytes: Histogram,
    flushes: IntCounterVec,
    http_requests: IntCounterVec,
    request_duration: HistogramVec,
    retries: IntCounterVec,
    in_flight: IntGauge,
    limiter_wait: Histogram,
    token_refreshes: IntCounterVec,
    token_expiry: IntGauge,
    acks: IntCounterVec,
    dead_letters: IntCounterVec,
    offsets_commits: IntCounterVec,
    task_panics: IntCounterVec,
    source_paused: IntGauge,
    ads_items_missing: IntCounterVec,
    records_outstanding: IntGauge,
    end_to_end: Histogram,
    last_success: IntGauge,
    consumer_lag: IntGaugeVec,
    ready: IntGauge,
    api_misconfigured: IntGaugeVec,
    api_misconfigured_responses: IntCounterVec,
    mesh: MeshMetrics,
    schedule: ScheduleMetrics,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(format!("ads_connector_{name}"), help), labels)
        .expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(format!("ads_connector_{name}"), help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(
        HistogramOpts::new(format!("ads_connector_{name}"), help).buckets(buckets),
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric on a fresh private registry.
    pub fn new() -> Self {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("ads_connector_build_info", "Build information; always 1."),
            &["version", "git_sha"],
        )
        .expect("valid metric");
        r.register(Box::new(build.clone())).expect("unique metric");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_SHA])
            .set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("unique metric");
        let seconds = exponential_buckets(0.005, 2.0, 16).expect("valid buckets");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "ads_connector_http_request_duration_seconds",
                "Duration of submission requests to the NHS API.",
            )
            .buckets(seconds.clone()),
            &["outcome"],
        )
        .expect("valid metric");
        r.register(Box::new(request_duration.clone()))
            .expect("unique metric");
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "ads_connector_kafka_consumer_lag_records",
                "Records between the committed offset and the end of the partition.",
            ),
            &["topic", "partition"],
        )
        .expect("valid metric");
        let api_misconfigured = IntGaugeVec::new(
            Opts::new(
                "ads_connector_api_misconfigured",
                "1 for the reason the NHS API looks misconfigured (submissions paused), else 0.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        r.register(Box::new(api_misconfigured.clone()))
            .expect("unique metric");
        r.register(Box::new(consumer_lag.clone()))
            .expect("unique metric");
        let metrics = Self {
            records_consumed: counter(
                &r,
                "records_consumed_total",
                "Records consumed from the CAD topics.",
                &["topic"],
            ),
            decode_failures: counter(
                &r,
                "records_invalid_total",
                "Records that failed decoding, mapping or validation.",
                &["reason"],
            ),
            ads_items_missing: counter(
                &r,
                "ads_items_missing_at_close_total",
                "Submitted snapshots of closed calls that lack an ADS mandatory item, by item.",
                &["item"],
            ),
            source_paused: gauge(
                &r,
                "source_paused",
                "1 while the source has paused its partitions because the pipeline is full (it keeps polling, so it stays in the group).",
            ),
            task_panics: counter(
                &r,
                "task_panics_total",
                "Pipeline tasks that panicked (a bug); the pipeline stops and the process exits non-zero.",
                &["task"],
            ),
            rebalances: counter(
                &r,
                "kafka_rebalances_total",
                "Consumer group rebalance events.",
                &["kind"],
            ),
            offset_gaps: counter(
                &r,
                "kafka_offset_gaps_total",
                "Gaps in the offsets fetched from a partition (offsets never seen), by how they were settled.",
                &["outcome"],
            ),
            partitions_assigned: gauge(
                &r,
                "kafka_partitions_assigned",
                "Partitions currently assigned to this consumer.",
            ),
            batch_records: histogram(
                &r,
                "batch_records",
                "Records per submission.",
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            ),
            batch_bytes: histogram(
                &r,
                "batch_bytes",
                "Bytes per submission body.",
                exponential_buckets(1024.0, 2.0, 15).expect("valid buckets"),
            ),
            flushes: counter(
                &r,
                "batch_flushes_total",
                "Submissions closed, by reason.",
                &["reason"],
            ),
            http_requests: counter(
                &r,
                "http_requests_total",
                "Submission requests by response status.",
                &["status"],
            ),
            request_duration,
            retries: counter(
                &r,
                "http_retries_total",
                "Submission retries by reason.",
                &["reason"],
            ),
            in_flight: gauge(
                &r,
                "http_requests_in_flight",
                "Submission requests in flight.",
            ),
            limiter_wait: histogram(
                &r,
                "rate_limiter_wait_seconds",
                "Time a request waited for the rate limiter.",
                seconds.clone(),
            ),
            token_refreshes: counter(
                &r,
                "token_refreshes_total",
                "Access token requests by outcome.",
                &["outcome"],
            ),
            token_expiry: gauge(
                &r,
                "token_expiry_timestamp_seconds",
                "Expiry of the access token held, Unix seconds.",
            ),
            acks: counter(
                &r,
                "acks_published_total",
                "Ack records published, by outcome.",
                &["outcome"],
            ),
            dead_letters: counter(
                &r,
                "dead_letters_total",
                "Dead-letter records published, by reason.",
                &["reason"],
            ),
            offsets_commits: counter(
                &r,
                "offset_commits_total",
                "Offset commits by outcome.",
                &["outcome"],
            ),
            records_outstanding: gauge(
                &r,
                "records_outstanding",
                "Records consumed and not yet acked or dead-lettered.",
            ),
            end_to_end: histogram(
                &r,
                "end_to_end_latency_seconds",
                "Kafka record timestamp to ack published.",
                seconds,
            ),
            last_success: gauge(
                &r,
                "last_success_timestamp_seconds",
                "Time of the last accepted submission, Unix seconds.",
            ),
            consumer_lag,
            ready: gauge(
                &r,
                "ready",
                "1 while /readyz answers 200 (partitions assigned, a token held, the API not \
                 misconfigured), else 0.",
            ),
            api_misconfigured,
            api_misconfigured_responses: counter(
                &r,
                "api_misconfigured_responses_total",
                "API answers that only a misconfiguration explains, by reason.",
                &["reason"],
            ),
            mesh: MeshMetrics::new(&r),
            schedule: ScheduleMetrics::new(&r),
            registry: r,
        };
        metrics.zero_known_series();
        metrics
    }

    /// Creates every series an enum knows at zero, so `rate()` and ratios see them at once.
    fn zero_known_series(&self) {
        for reason in FlushReason::ALL {
            self.flushes.with_label_values(&[reason.as_str()]);
        }
        for status in StatusLabel::COMMON {
            self.http_requests.with_label_values(&[status.as_str()]);
        }
        for outcome in RequestOutcome::ALL {
            self.request_duration.with_label_values(&[outcome.as_str()]);
        }
        for reason in RetryReason::ALL {
            self.retries.with_label_values(&[reason.as_str()]);
        }
        for outcome in AckOutcome::ALL {
            self.acks.with_label_values(&[outcome.as_str()]);
        }
        for outcome in Outcome::ALL {
            self.token_refreshes.with_label_values(&[outcome.as_str()]);
            self.offsets_commits.with_label_values(&[outcome.as_str()]);
        }
        for kind in RebalanceKind::ALL {
            self.rebalances.with_label_values(&[kind.as_str()]);
        }
        for outcome in GapOutcome::ALL {
            self.offset_gaps.with_label_values(&[outcome.as_str()]);
        }
        for kind in DeadLetterKind::all() {
            self.dead_letters.with_label_values(&[kind.as_str()]);
            if !matches!(kind, DeadLetterKind::Submit(_)) {
                self.decode_failures.with_label_values(&[kind.as_str()]);
            }
        }
        for task in Task::ALL {
            self.task_panics.with_label_values(&[task.as_str()]);
        }
        for item in AdsItem::ALL {
            self.ads_items_missing.with_label_values(&[item.as_str()]);
        }
        for fault in ApiFault::ALL {
            self.api_misconfigured.with_label_values(&[fault.as_str()]);
            self.api_misconfigured_responses
                .with_label_values(&[fault.as_str()]);
        }
    }

    /// The registry, encoded in the Prometheus text format.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// A record was consumed from `topic`.
    pub fn record_consumed(&self, topic: &str) {
        self.records_consumed.with_label_values(&[topic]).inc();
        self.records_outstanding.inc();
    }

    /// Records consumed so far, over all topics.
    pub fn records_consumed(&self) -> u64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "ads_connector_records_consumed_total")
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().value() as u64)
            .sum()
    }

    /// A record failed decoding, mapping or validation.
    pub fn record_invalid(&self, reason: DeadLetterKind) {
        self.decode_failures
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Partitions were assigned or revoked.
    pub fn rebalanced(&self, kind: RebalanceKind, partitions: usize, now_assigned: usize) {
        if partitions > 0 {
            self.rebalances.with_label_values(&[kind.as_str()]).inc();
        }
        self.partitions_assigned.set(now_assigned as i64);
    }

    /// A submitted snapshot of a closed call lacks `item` (its ack names it too).
    pub fn ads_item_missing_at_close(&self, item: AdsItem) {
        self.ads_items_missing
            .with_label_values(&[item.as_str()])
            .inc();
    }

    /// A gap in a partition's fetched offsets was settled (see [`GapOutcome`]).
    pub fn offset_gap(&self, outcome: GapOutcome) {
        self.offset_gaps
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// The source paused (or resumed) its partitions for backpressure.
    pub fn source_paused(&self, paused: bool) {
        self.source_paused.set(i64::from(paused));
    }

    /// A pipeline task panicked.
    pub fn task_panicked(&self, task: Task) {
        self.task_panics.with_label_values(&[task.as_str()]).inc();
    }

    /// A submission was closed.
    pub fn batch_flushed(&self, reason: FlushReason, records: usize, bytes: usize) {
        self.flushes.with_label_values(&[reason.as_str()]).inc();
        self.batch_records.observe(records as f64);
        self.batch_bytes.observe(bytes as f64);
    }

    /// A request finished.
    pub fn request_completed(&self, status: StatusLabel, outcome: RequestOutcome, took: Duration) {
        self.http_requests
            .with_label_values(&[status.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[outcome.as_str()])
            .observe(took.as_secs_f64());
        if outcome == RequestOutcome::Success {
            self.last_success.set(chrono::Utc::now().timestamp());
        }
    }

    /// A request will be retried.
    pub fn request_retried(&self, reason: RetryReason) {
        self.retries.with_label_values(&[reason.as_str()]).inc();
    }

    /// Requests in flight changed by `delta`.
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.add(delta);
    }

    /// A request waited for the rate limiter.
    pub fn rate_limited(&self, waited: Duration) {
        self.limiter_wait.observe(waited.as_secs_f64());
    }

    /// A token request finished; `expires_at` is Unix seconds when it succeeded.
    pub fn token_refreshed(&self, outcome: Outcome, expires_at: Option<i64>) {
        self.token_refreshes
            .with_label_values(&[outcome.as_str()])
            .inc();
        if let Some(at) = expires_at {
            self.token_expiry.set(at);
        }
    }

    /// An ack record was published for a record whose Kafka timestamp is `kafka_ts_ms`.
    pub fn ack_published(&self, outcome: AckOutcome, kafka_ts_ms: Option<i64>) {
        self.acks.with_label_values(&[outcome.as_str()]).inc();
        self.records_outstanding.dec();
        if let Some(ts) = kafka_ts_ms {
            let now = chrono::Utc::now().timestamp_millis();
            self.end_to_end.observe(((now - ts).max(0) as f64) / 1000.0);
        }
    }

    /// A dead-letter record was published.
    pub fn dead_lettered(&self, reason: DeadLetterKind) {
        self.dead_letters
            .with_label_values(&[reason.as_str()])
            .inc();
        self.records_outstanding.dec();
    }

    /// An offset commit finished.
    pub fn offsets_committed(&self, outcome: Outcome) {
        self.offsets_commits
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// Consumer lag of one partition.
    pub fn consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Whether `/readyz` answers 200 (set by every heartbeat).
    pub fn readiness(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The NHS API answered as only a misconfiguration explains (`fault`).
    pub fn api_misconfigured_response(&self, fault: ApiFault) {
        self.api_misconfigured_responses
            .with_label_values(&[fault.as_str()])
            .inc();
    }

    /// Whether the API is misconfigured and why: 1 for `fault`, 0 for every other reason (all 0
    /// with `None`).
    pub fn api_misconfigured(&self, fault: Option<ApiFault>) {
        for each in ApiFault::ALL {
            self.api_misconfigured
                .with_label_values(&[each.as_str()])
                .set(i64::from(Some(each) == fault));
        }
    }

    /// Forgets a revoked partition's lag series.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_with_the_prefix() {
        let m = Metrics::new();
        m.record_consumed("cad");
        m.batch_flushed(FlushReason::Count, 3, 3000);
        m.request_completed(
            StatusLabel::from_status(200),
            RequestOutcome::Success,
            Duration::from_millis(5),
        );
        let text = m.encode();
        for name in [
            "ads_connector_build_info",
            "ads_connector_records_consumed_total",
            "ads_connector_batch_records_bucket",
            "ads_connector_http_requests_total{status=\"200\"}",
            "ads_connector_last_success_timestamp_seconds",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
