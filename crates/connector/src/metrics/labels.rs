//! The bounded label values of the connector's metrics: one enum per label, each with `as_str`
//! (the label value) and the values created at zero up front (`ALL`, or `COMMON` for statuses).
//! Stages pass these enums, never strings, so no record, URL or error message becomes a label.

use crate::cad::DecodeErrorKind;
use crate::mapping::MappingErrorKind;

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

/// How a gap in a partition's fetched offsets was settled (`crate::source`'s gap check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapOutcome {
    /// The missing offsets hold nothing readable (transaction markers, aborted transactions,
    /// compaction, retention): consumption went on.
    Empty,
    /// The broker skipped readable records (Tansu 0.6 resuming inside a producer batch): they
    /// were read again.
    Reread,
    /// Neither could be shown: the source stopped, committing nothing past the gap.
    Unresolved,
}

impl GapOutcome {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 3] = [Self::Empty, Self::Reread, Self::Unresolved];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Reread => "reread",
            Self::Unresolved => "unresolved",
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

/// Why a submission was refused for good (its records are dead-lettered, stage `submit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitRejection {
    /// A 4xx other than 401, 403, 408 and 429.
    Http4xx,
    /// 501 Not Implemented.
    Http501,
    /// A status no rule expects (1xx, 3xx…).
    HttpUnexpected,
    /// `nhs_api.request.max_retry_duration_s` ran out.
    RetriesExhausted,
}

impl SubmitRejection {
    /// Every value.
    pub const ALL: [Self; 4] = [
        Self::Http4xx,
        Self::Http501,
        Self::HttpUnexpected,
        Self::RetriesExhausted,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http4xx => "http_4xx",
            Self::Http501 => "http_501",
            Self::HttpUnexpected => "http_unexpected",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// Why the NHS API looks misconfigured: the `reason` of `ads_connector_api_misconfigured`. Each
/// is an answer only a wrong URL, path or credential explains; while one holds, submissions pause
/// (nothing is dead-lettered or committed) and are retried until the API answers normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFault {
    /// 404: no API at this URL.
    NotFound,
    /// 405: the URL does not take a POST.
    MethodNotAllowed,
    /// Any 3xx: the URL redirects, and redirects are never followed.
    Redirect,
    /// A 2xx without the API's submission id: not the API's answer.
    NoSubmissionId,
    /// 401 or 403 again with a fresh token, or at all without authentication.
    Unauthorized,
}

impl ApiFault {
    /// Every value.
    pub const ALL: [Self; 5] = [
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Redirect,
        Self::NoSubmissionId,
        Self::Unauthorized,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Redirect => "redirect",
            Self::NoSubmissionId => "no_submission_id",
            Self::Unauthorized => "unauthorized",
        }
    }
}

/// The kind of a dead letter: the `ads-error-kind` header and the `reason` label of
/// `ads_connector_dead_letters_total` (and, for decode and mapping kinds, of
/// `ads_connector_records_invalid_total`). One closed set, so every value exists at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// The record has no value (a tombstone).
    EmptyValue,
    /// Handling the record panicked (a bug): the record cost itself, not the pipeline.
    InternalError,
    /// The record is larger than `kafka.max_record_bytes` (dead-lettered without its value).
    RecordTooLarge,
    /// The record is not a valid `cad.call.v1` call.
    Decode(DecodeErrorKind),
    /// The call could not be mapped to a valid ADS Bundle.
    Mapping(MappingErrorKind),
    /// The API refused the submission for good.
    Submit(SubmitRejection),
}

impl DeadLetterKind {
    /// Every value.
    pub fn all() -> impl Iterator<Item = Self> {
        [Self::EmptyValue, Self::InternalError, Self::RecordTooLarge]
            .into_iter()
            .chain(DecodeErrorKind::ALL.into_iter().map(Self::Decode))
            .chain(MappingErrorKind::ALL.into_iter().map(Self::Mapping))
            .chain(SubmitRejection::ALL.into_iter().map(Self::Submit))
    }

    /// Label and header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyValue => "empty_value",
            Self::InternalError => "internal_error",
            Self::RecordTooLarge => "record_too_large",
            Self::Decode(k) => k.as_str(),
            Self::Mapping(k) => k.as_str(),
            Self::Submit(k) => k.as_str(),
        }
    }
}

impl std::fmt::Display for DeadLetterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task of the pipeline, named when it panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// The source stage.
    Source,
    /// The transform stage.
    Transform,
    /// The batcher stage.
    Batcher,
    /// The submitter's dispatch loop.
    Submitter,
    /// One submission's task inside the submitter.
    Submission,
    /// The acker stage.
    Acker,
    /// The dead-letter stage.
    DeadLetters,
    /// The MESH poller.
    MeshPoller,
    /// The window pass's coalescing stage (`[schedule]` in `window` mode).
    Coalescer,
    /// The window pass's controller (`[schedule]` in `window` mode).
    WindowPass,
}

impl Task {
    /// Every value.
    pub const ALL: [Self; 10] = [
        Self::Source,
        Self::Transform,
        Self::Batcher,
        Self::Submitter,
        Self::Submission,
        Self::Acker,
        Self::DeadLetters,
        Self::MeshPoller,
        Self::Coalescer,
        Self::WindowPass,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Transform => "transform",
            Self::Batcher => "batcher",
            Self::Submitter => "submitter",
            Self::Submission => "submission",
            Self::Acker => "acker",
            Self::DeadLetters => "dead_letters",
            Self::MeshPoller => "mesh_poller",
            Self::Coalescer => "coalescer",
            Self::WindowPass => "window_pass",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_statuses_collapse_into_their_class() {
        assert_eq!(StatusLabel::from_status(418).as_str(), "4xx");
        assert_eq!(StatusLabel::from_status(429).as_str(), "429");
        assert_eq!(StatusLabel::from_status(599).as_str(), "5xx");
    }
}
