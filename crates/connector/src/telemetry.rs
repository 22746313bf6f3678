//! Telemetry: logs with `tracing`, traces with OpenTelemetry, W3C trace context in and out.
//!
//! **Logs.** `ADS_LOG` (or `RUST_LOG`) sets the filter (default `info`); `ADS_LOG_FORMAT=json`
//! switches to one JSON object per line for log shippers. Log events carry counts, ids of our
//! own making (batch ids), Kafka coordinates and bounded error kinds only: never NHS numbers,
//! names, dates of birth, addresses or free text from patient records (`tests/no_patient_data.rs`
//! runs the pipeline at debug level and checks).
//!
//! **Traces.** Every process has a tracer provider, so spans have real ids and the
//! `traceparent` headers we write are real span contexts; spans leave the process only when the
//! standard variables ask for an exporter ([`TraceExport::from_env`]): `OTEL_TRACES_EXPORTER=otlp`,
//! or `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, and not
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The exporter is OTLP over HTTP with
//! protobuf bodies (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the only protocol built in);
//! endpoint, headers and timeout come from the usual `OTEL_EXPORTER_OTLP_*` variables, sampling
//! from `OTEL_TRACES_SAMPLER{,_ARG}` (default parent-based always-on), resource attributes from
//! `OTEL_SERVICE_NAME` (default `ads-connector`) and `OTEL_RESOURCE_ATTRIBUTES`. Spans are
//! batched on the SDK's own thread; [`OtelGuard`] flushes them when it is dropped, last in
//! `main`. Only this crate's spans at `info` and above are exported (the exporter's own HTTP
//! stack never traces itself).
//!
//! **Span model** (OpenTelemetry messaging and HTTP conventions; `ops.md` §4.3):
//! - `process {topic}` (consumer, root): one per submission, with one link per source record
//!   that carried a `traceparent` (at most [`MAX_LINKS`]), `messaging.*` attributes (with the
//!   consumer group, and `messaging.client.id` when `client.id` is set), and the record count;
//!   it ends when the submission's acks or dead letters are written.
//! - `POST` (client): one per HTTP attempt, child of `process`; its context is the request's
//!   `traceparent`; status code, resend count and `error.type`.
//! - `send {ack topic}` (producer): child of `process`; its context is the `traceparent` header
//!   of every ack record of the submission.
//! - `rate_limit wait` (internal): child of `process`, only when a request really waits for the
//!   limiter or a 429 pause; the wait and its cause as attributes.
//! - `token refresh` (internal): one per token request, with its `POST` child; a child of the
//!   submission that had to mint, a root in the background refresher. A submission that waited
//!   while another task minted gets a `token wait` event (with the wait) on its `process` span.
//! - `send {dead-letter topic}` (producer): a child of `process` for a refused submission's
//!   records, a root linked to the records' contexts for undecodable or unmappable ones; its
//!   context replaces the `traceparent` header of the dead-letter records it wrote.
//!
//! Attributes are topic names, the consumer group, counts, the configured URLs, status codes,
//! waits and bounded error kinds: never a record key (call ids may be incident numbers), a
//! payload, a patient value, an ack id, a token, a client assertion or an API key.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use url::Url;

/// Most links on one `process` span; records beyond it are counted, not linked.
pub const MAX_LINKS: usize = 128;

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceExport {
    /// Nowhere: spans get ids (so `traceparent` headers are real) but are not exported.
    None,
    /// OTLP over HTTP/protobuf; `endpoint` overrides the `OTEL_EXPORTER_OTLP_*` variables.
    Otlp {
        /// The full traces URL (`…/v1/traces`), or `None` for the variables' choice.
        endpoint: Option<String>,
    },
}

impl TraceExport {
    /// Reads the standard variables through `var` (see the module header).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Self::None;
        }
        match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "none" => Self::None,
            Some(v) if v.split(',').any(|e| e.trim() == "otlp") => Self::Otlp { endpoint: None },
            _ if set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") =>
            {
                Self::Otlp { endpoint: None }
            }
            _ => Self::None,
        }
    }
}

/// Flushes and stops the tracer provider when dropped: keep it alive until `main` returns.
#[must_use = "dropping the guard stops trace export"]
pub struct OtelGuard {
    provider: Option<SdkTracerProvider>,
}

impl OtelGuard {
    /// A guard over `provider` (tests that assemble their own subscriber use it).
    pub fn new(provider: SdkTracerProvider) -> Self {
        Self {
            provider: Some(provider),
        }
    }

    /// A guard with nothing to flush (telemetry was already initialised).
    pub fn none() -> Self {
        Self { provider: None }
    }

    /// Exports every span ended so far, and waits for it (blocking; tests read exports).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            if let Err(error) = provider.force_flush() {
                eprintln!("warning: flushing traces failed: {error}");
            }
        }
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Exports what is buffered, then stops the batch thread.
            if let Err(error) = provider.shutdown() {
                eprintln!("warning: flushing traces failed: {error}");
            }
        }
    }
}

/// Why the tracer provider could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP span exporter: {0}")]
pub struct TelemetryError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The tracer provider: resource from the standard variables, sampler from
/// `OTEL_TRACES_SAMPLER`, and an OTLP exporter when `export` says so.
pub fn tracer_provider(export: &TraceExport) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
    }
    let resource = resource
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_max_links_per_span(MAX_LINKS as u32);
    if let TraceExport::Otlp { endpoint } = export {
        if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            if protocol.trim() != "http/protobuf" {
                eprintln!(
                    "warning: OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not built in; \
                     exporting with http/protobuf"
                );
            }
        }
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint.clone());
        }
        builder = builder.with_batch_exporter(exporter.build()?);
    }
    Ok(builder.build())
}

/// The OpenTelemetry layer over `provider`, exporting this crate's spans at `info` and above.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_filter(Targets::new().with_target("ads_connector", LevelFilter::INFO))
}

/// Installs the global subscriber with `default` as the log filter unless `ADS_LOG` or
/// `RUST_LOG` says otherwise, and the tracer provider the `OTEL_*` variables ask for; a second
/// call is a no-op. Keep the guard until the end of `main`.
pub fn init(default: &str) -> OtelGuard {
    init_with(default, TraceExport::from_env(|k| std::env::var(k).ok()))
}

/// [`init`] with the trace export chosen by the caller.
pub fn init_with(default: &str, export: TraceExport) -> OtelGuard {
    let filter = EnvFilter::try_from_env("ADS_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("ADS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let (provider, problem) = match tracer_provider(&export) {
        Ok(p) => (p, None),
        Err(e) => (
            tracer_provider(&TraceExport::None).expect("no exporter"),
            Some(e),
        ),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel_layer(&provider))
        .try_init()
        .is_ok();
    if let Some(error) = problem {
        tracing::warn!(message = "Traces will not be exported.", %error);
    }
    if installed {
        OtelGuard::new(provider)
    } else {
        OtelGuard::none()
    }
}

fn propagator() -> &'static TraceContextPropagator {
    static P: OnceLock<TraceContextPropagator> = OnceLock::new();
    P.get_or_init(TraceContextPropagator::new)
}

/// The W3C `traceparent` of `span`, or `None` when it has no valid context (no tracer
/// provider installed, or the span is disabled).
pub fn traceparent(span: &Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    propagator().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The span context a `traceparent` header names, if it is valid.
pub fn remote_context(traceparent: &str) -> Option<SpanContext> {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = propagator().extract(&carrier);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The consumer the `process` spans name: its group, and `client.id` when one is configured.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    /// `group.id`.
    pub name: String,
    /// `client.id` from `kafka.properties`, if set.
    pub client_id: Option<String>,
}

/// Links `span` to the contexts of up to [`MAX_LINKS`] valid `traceparents`.
pub fn link<'a>(span: &Span, traceparents: impl IntoIterator<Item = &'a str>) {
    let contexts = traceparents.into_iter().filter_map(remote_context);
    for sc in contexts.take(MAX_LINKS) {
        span.add_link(sc);
    }
}

/// What the `process` span says about one submission.
pub struct ProcessFacts<'a> {
    /// The submission's id.
    pub batch_id: &'a dyn std::fmt::Display,
    /// Calls in it.
    pub calls: usize,
    /// Source records in it.
    pub records: usize,
    /// Why it was flushed.
    pub flush_reason: &'static str,
}

/// One source record of a submission: topic, partition and `traceparent`.
pub type RecordTrace<'a> = (&'a str, i32, Option<&'a str>);

/// The `process {topic}` span of one submission, linked to its records' contexts.
pub fn process_span(
    facts: ProcessFacts<'_>,
    records: &[RecordTrace<'_>],
    consumer: &ConsumerGroup,
) -> Span {
    let first = records.first();
    let topic: &str = first.map_or("", |r| r.0);
    let single_partition = first.and_then(|f| {
        records
            .iter()
            .all(|r| r.0 == f.0 && r.1 == f.1)
            .then_some(f.1)
    });
    let span = tracing::info_span!(
        parent: None,
        "process",
        otel.name = %format_args!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %topic,
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.batch.message_count = facts.records as i64,
        messaging.consumer.group.name = %consumer.name,
        messaging.client.id = consumer.client_id.as_deref(),
        ads.batch.id = %facts.batch_id,
        ads.batch.calls = facts.calls as i64,
        ads.batch.flush_reason = facts.flush_reason,
    );
    if let Some(partition) = single_partition {
        span.record("messaging.destination.partition.id", partition.to_string());
    }
    link(&span, records.iter().filter_map(|r| r.2));
    span
}

/// The `POST` span of one HTTP attempt (a child of the current span).
pub fn http_span(url: &Url, attempt: u32) -> Span {
    let span = tracing::info_span!(
        "POST",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        url.full = %url_without_query(url),
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().map_or(0, i64::from),
        http.request.resend_count = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if attempt > 1 {
        span.record("http.request.resend_count", i64::from(attempt - 1));
    }
    span
}

/// Records how an attempt ended on its `POST` span: the status code (0 when there was no
/// response) and, unless it succeeded, `error.type` (the bounded status label).
pub fn http_finished(span: &Span, status: u16, label: &'static str, success: bool) {
    if status > 0 {
        span.record("http.response.status_code", i64::from(status));
    }
    if !success {
        failed(span, label);
    }
}

/// Marks `span` failed: `otel.status_code=error` and `error.type` (a bounded kind).
pub fn failed(span: &Span, kind: &'static str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}

/// The `token refresh` span of one token request (a child of the current span, if any).
pub fn token_span() -> Span {
    tracing::info_span!(
        "token refresh",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Records on the current (`process`) span that it waited `waited` for a token another task
/// was minting.
pub fn token_waited(waited: Duration) {
    let wait_ms = KeyValue::new("ads.token.wait_ms", waited.as_secs_f64() * 1e3);
    Span::current().add_event("token wait", vec![wait_ms]);
}

/// The `rate_limit wait` span of a request held back by the limiter (`cause` `quota`) or by a
/// 429's pause (`retry_after`); a child of the current span. Close it with [`rate_limit_waited`].
pub fn rate_limit_span(cause: &'static str) -> Span {
    tracing::info_span!(
        "rate_limit wait",
        otel.kind = "internal",
        ads.rate_limit.cause = cause,
        ads.rate_limit.wait_ms = tracing::field::Empty,
    )
}

/// Records the whole wait on a `rate_limit wait` span.
pub fn rate_limit_waited(span: &Span, waited: Duration) {
    span.record("ads.rate_limit.wait_ms", waited.as_secs_f64() * 1e3);
}

/// The `send {topic}` span of publishing `messages` records, a child of `parent` (a root when
/// `parent` is `Span::none()`).
pub fn send_span(parent: &Span, topic: &str, messages: usize) -> Span {
    tracing::info_span!(
        parent: parent,
        "send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.batch.message_count = messages as i64,
    )
}

fn url_without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

/// Lower-case hex of `bytes` (digests and MACs).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of a panic payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "(a panic without a message)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn no_exporter_unless_the_standard_variables_ask_for_one() {
        assert_eq!(TraceExport::from_env(env(&[])), TraceExport::None);
        let otlp = TraceExport::Otlp { endpoint: None };
        assert_eq!(
            TraceExport::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])),
            otlp
        );
        assert_eq!(
            TraceExport::from_env(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c")])),
            otlp
        );
        assert_eq!(
            TraceExport::from_env(env(&[("OTEL_TRACES_EXPORTER", "otlp")])),
            otlp
        );
        assert_eq!(
            TraceExport::from_env(env(&[
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")
            ])),
            TraceExport::None
        );
        assert_eq!(
            TraceExport::from_env(env(&[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_TRACES_EXPORTER", "otlp")
            ])),
            TraceExport::None
        );
    }

    #[test]
    fn traceparent_headers_round_trip_to_span_contexts() {
        let sc = remote_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(
            remote_context("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(remote_context("garbage").is_none());
    }

    #[test]
    fn spans_have_no_traceparent_without_a_tracer_provider() {
        assert_eq!(traceparent(&Span::none()), None);
    }

    #[test]
    fn urls_in_spans_lose_their_query_and_credentials() {
        let url = Url::parse("https://u:p@api.example/x/$process-message?a=1#f").expect("url");
        assert_eq!(
            url_without_query(&url),
            "https://api.example/x/$process-message"
        );
    }
}
