//! Metrics: the one place that knows metric names (prefix `ads_connector_`).
//!
//! Stages call semantic methods (`record_consumed`, `batch_flushed`, `request_completed`, …);
//! they never spell a metric name or a label value. Every label value comes from an enum in this
//! file, from a `&'static str` error kind of a bounded enum elsewhere (`record_invalid`,
//! `dead_lettered`), or from configuration and the broker (topic names, partition numbers), so
//! cardinality is bounded and no patient data, call id or URL can become a label. Every label
//! value an enum knows is created at zero up front, so a dashboard's `rate()` and an alert's
//! ratio see a series (of zeros) before the first event. A private [`Registry`] keeps tests
//! isolated; `/metrics` encodes it in the Prometheus text format, with the process collector's
//! `process_*` families (CPU, resident memory, open files, start time). The catalogue, with the
//! meaning of every family, is `docs/metrics.md`; a test keeps the two in step.

use std::time::Duration;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Why a batch was flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// `batch.max_calls` reached.
    Count,
    /// The next call would pass `batch.max_bytes`.
    Bytes,
    /// `batch.linger_ms` elapsed.
    Linger,
    /// Input closed (shutdown).
    Shutdown,
}

impl FlushReason {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 4] = [Self::Count, Self::Bytes, Self::Linger, Self::Shutdown];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Bytes => "bytes",
            Self::Linger => "linger",
            Self::Shutdown => "shutdown",
        }
    }
}

/// HTTP status as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLabel {
    /// A status code we name (200, 401, 403, 429, 5xx we expect…).
    Code(u16),
    /// Any other status, by class.
    Class(u16),
    /// The request timed out.
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    TransportError,
}

impl StatusLabel {
    /// The values created at zero up front: the statuses dashboards and alerts select on.
    pub const COMMON: [Self; 11] = [
        Self::Code(200),
        Self::Code(400),
        Self::Code(401),
        Self::Code(403),
        Self::Code(429),
        Self::Code(500),
        Self::Code(502),
        Self::Code(503),
        Self::Code(504),
        Self::Timeout,
        Self::TransportError,
    ];

    /// From a response status.
    pub fn from_status(status: u16) -> Self {
        match status {
            200 | 201 | 202 | 400 | 401 | 403 | 404 | 405 | 408 | 413 | 415 | 429 | 500 | 501
            | 502 | 503 | 504 => Self::Code(status),
            other => Self::Class(other / 100),
        }
    }

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code(200) => "200",
            Self::Code(201) => "201",
            Self::Code(202) => "202",
            Self::Code(400) => "400",
            Self::Code(401) => "401",
            Self::Code(403) => "403",
            Self::Code(404) => "404",
            Self::Code(405) => "405",
            Self::Code(408) => "408",
            Self::Code(413) => "413",
            Self::Code(415) => "415",
            Self::Code(429) => "429",
            Self::Code(500) => "500",
            Self::Code(501) => "501",
            Self::Code(502) => "502",
            Self::Code(503) => "503",
            Self::Code(504) => "504",
            Self::Class(1) => "1xx",
            Self::Class(2) => "2xx",
            Self::Class(3) => "3xx",
            Self::Class(4) => "4xx",
            Self::Class(5) => "5xx",
            Self::Timeout => "timeout",
            Self::TransportError => "transport_error",
            Self::Code(_) | Self::Class(_) => "other",
        }
    }
}

/// How a request ended, for the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// 2xx.
    Success,
    /// Will be retried.
    Retryable,
    /// Permanent failure; the records are dead-lettered.
    Rejected,
}

impl RequestOutcome {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 3] = [Self::Success, Self::Retryable, Self::Rejected];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retryable => "retryable",
            Self::Rejected => "rejected",
        }
    }
}

/// Why a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 429 Too Many Requests.
    Status429,
    /// 408 Request Timeout.
    Status408,
    /// 5xx other than 501.
    Status5xx,
    /// 401/403: the token is refreshed once.
    Unauthorized,
    /// The client timed out.
    Timeout,
    /// Connection error.
    Connect,
    /// No token could be obtained.
    Token,
}

impl RetryReason {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 7] = [
        Self::Status429,
        Self::Status408,
        Self::Status5xx,
        Self::Unauthorized,
        Self::Timeout,
        Self::Connect,
        Self::Token,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status429 => "status_429",
            Self::Status408 => "status_408",
            Self::Status5xx => "status_5xx",
            Self::Unauthorized => "unauthorized",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Token => "token",
        }
    }
}

/// Ack outcome label (`ads.ack.v1` `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// The record's snapshot was submitted.
    Submitted,
    /// A newer snapshot of the same call in the same submission carried it.
    Superseded,
}

impl AckOutcome {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 2] = [Self::Submitted, Self::Superseded];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Superseded => "superseded",
        }
    }
}

/// Success or failure label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Success,
    /// It did not.
    Failure,
}

impl Outcome {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 2] = [Self::Success, Self::Failure];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Rebalance event label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceKind {
    /// Partitions assigned.
    Assign,
    /// Partitions revoked.
    Revoke,
}

impl RebalanceKind {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 2] = [Self::Assign, Self::Revoke];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Revoke => "revoke",
        }
    }
}

/// Role of this replica in the MESH poller lease (`crate::mesh::lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseRole {
    /// This replica polls MESH.
    Holder,
    /// Another replica polls; this one waits to take over.
    Standby,
}

impl LeaseRole {
    /// Every value.
    pub const ALL: [Self; 2] = [Self::Holder, Self::Standby];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holder => "holder",
            Self::Standby => "standby",
        }
    }
}

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
    records_outstanding: IntGauge,
    end_to_end: Histogram,
    last_success: IntGauge,
    consumer_lag: IntGaugeVec,
    ready: IntGauge,
    mesh: MeshMetrics,
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
            rebalances: counter(
                &r,
                "kafka_rebalances_total",
                "Consumer group rebalance events.",
                &["kind"],
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
                "1 while /readyz answers 200 (partitions assigned and a token held), else 0.",
            ),
            mesh: MeshMetrics::new(&r),
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

    /// A record failed decoding, mapping or validation (`reason` is a bounded error kind).
    pub fn record_invalid(&self, reason: &'static str) {
        self.decode_failures.with_label_values(&[reason]).inc();
    }

    /// Partitions were assigned or revoked.
    pub fn rebalanced(&self, kind: RebalanceKind, partitions: usize, now_assigned: usize) {
        if partitions > 0 {
            self.rebalances.with_label_values(&[kind.as_str()]).inc();
        }
        self.partitions_assigned.set(now_assigned as i64);
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

    /// A dead-letter record was published (`reason` is a bounded error kind).
    pub fn dead_lettered(&self, reason: &'static str) {
        self.dead_letters.with_label_values(&[reason]).inc();
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

    /// Forgets a revoked partition's lag series.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// A DPS error record was written to the errors topic (`crate::mesh`). `severity` is the
    /// worst issue's, folded into `fatal`/`error`/`warning`/`unknown`.
    pub fn dps_error_published(&self, unknown_format: bool, correlated: bool, severity: &str) {
        let severity = match severity {
            "fatal" | "error" | "warning" => severity,
            _ => "unknown",
        };
        let format = if unknown_format { "unknown" } else { "parsed" };
        let correlated = if correlated { "true" } else { "false" };
        self.mesh
            .dps_errors
            .with_label_values(&[format, correlated, severity])
            .inc();
    }

    /// A MESH poll failed; `kind` is a `MeshError`/`PollError` kind (bounded).
    pub fn mesh_poll_failed(&self, kind: &'static str) {
        self.mesh.poll_failures.with_label_values(&[kind]).inc();
    }

    /// This replica's role in the MESH poller lease: the chosen role's series is 1, the other 0.
    /// Without `[mesh]` neither series exists.
    pub fn mesh_lease_role(&self, role: LeaseRole) {
        for r in LeaseRole::ALL {
            self.mesh
                .lease
                .with_label_values(&[r.as_str()])
                .set(i64::from(r == role));
        }
    }

    /// A MESH poll completed (the inbox was read and every message in hand handled).
    pub fn mesh_polled(&self) {
        self.mesh.last_poll.set(chrono::Utc::now().timestamp());
    }
}

/// The MESH poller's families (`crate::mesh`).
#[derive(Clone)]
struct MeshMetrics {
    dps_errors: IntCounterVec,
    poll_failures: IntCounterVec,
    last_poll: IntGauge,
    lease: IntGaugeVec,
}

impl MeshMetrics {
    fn new(r: &Registry) -> Self {
        let dps_errors = counter(
            r,
            "dps_errors_published_total",
            "DPS error records written to the errors topic, by format, correlation and severity.",
            &["format", "correlated", "severity"],
        );
        for format in ["parsed", "unknown"] {
            for correlated in ["true", "false"] {
                for severity in ["fatal", "error", "warning", "unknown"] {
                    dps_errors.with_label_values(&[format, correlated, severity]);
                }
            }
        }
        let poll_failures = counter(
            r,
            "mesh_poll_failures_total",
            "MESH polls that ended in an error, by kind.",
            &["kind"],
        );
        for kind in ["auth", "tls", "transport", "status", "protocol", "produce"] {
            poll_failures.with_label_values(&[kind]);
        }
        let lease = IntGaugeVec::new(
            Opts::new(
                "ads_connector_mesh_poller_lease",
                "1 on the series of this replica's role in the MESH poller lease (holder polls MESH, standby waits); absent without [mesh].",
            ),
            &["role"],
        )
        .expect("valid metric");
        r.register(Box::new(lease.clone())).expect("unique metric");
        Self {
            dps_errors,
            poll_failures,
            lease,
            last_poll: gauge(
                r,
                "mesh_last_poll_success_timestamp_seconds",
                "Time of the last MESH poll that completed, Unix seconds; 0 before the first.",
            ),
        }
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

    #[test]
    fn unusual_statuses_collapse_into_their_class() {
        assert_eq!(StatusLabel::from_status(418).as_str(), "4xx");
        assert_eq!(StatusLabel::from_status(429).as_str(), "429");
        assert_eq!(StatusLabel::from_status(599).as_str(), "5xx");
    }
}
