//! A local OTLP/HTTP traces endpoint for tests: an axum server that decodes every protobuf
//! `ExportTraceServiceRequest` posted to `/v1/traces` and keeps the spans, flattened, with their
//! resource attributes. Used by `tests/traces.rs` and `tests/no_patient_data.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// One received span and the resource it came with.
#[derive(Debug, Clone)]
pub struct Received {
    pub resource: HashMap<String, String>,
    pub span: Span,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The span's attributes as strings.
    pub fn attributes(&self) -> HashMap<String, String> {
        attributes(&self.span.attributes)
    }

    /// `(trace id, span id)` of every link.
    pub fn links(&self) -> Vec<(String, String)> {
        self.span
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect()
    }

    /// Whether the span's status is `Error`.
    pub fn failed(&self) -> bool {
        self.span
            .status
            .as_ref()
            .is_some_and(|s| s.code == SpanStatus::Error as i32)
    }

    /// `(name, attributes)` of every event.
    pub fn events(&self) -> Vec<(String, HashMap<String, String>)> {
        self.span
            .events
            .iter()
            .map(|e| (e.name.clone(), attributes(&e.attributes)))
            .collect()
    }
}

/// The endpoint; spans accumulate until the test reads them.
#[derive(Clone)]
pub struct Collector {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves on `listener` (bind it first when the address must be known early).
    pub async fn serve(listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let collector = Self {
            addr,
            spans: Arc::default(),
            requests: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(collector.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        collector
    }

    pub async fn start() -> Self {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    /// `http://addr` (what `OTEL_EXPORTER_OTLP_ENDPOINT` takes).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full traces URL.
    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    pub fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

async fn export(
    State(c): State<Collector>,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain")],
                b"not an ExportTraceServiceRequest".to_vec(),
            )
        }
    };
    *c.requests.lock().unwrap() += 1;
    let mut spans = c.spans.lock().unwrap();
    for rs in request.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                spans.push(Received {
                    resource: resource.clone(),
                    span,
                });
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

pub fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(&kv.value)))
        .collect()
}

/// Every string a span carries: name, attribute keys and values, events, links, status, resource.
pub fn span_text(r: &Received) -> String {
    fn push(out: &mut Vec<String>, kvs: &[KeyValue]) {
        for kv in kvs {
            out.push(kv.key.clone());
            out.push(value(&kv.value));
        }
    }
    let mut out = vec![r.span.name.clone()];
    push(&mut out, &r.span.attributes);
    for e in &r.span.events {
        out.push(e.name.clone());
        push(&mut out, &e.attributes);
    }
    for l in &r.span.links {
        push(&mut out, &l.attributes);
    }
    if let Some(s) = &r.span.status {
        out.push(s.message.clone());
    }
    for (k, v) in &r.resource {
        out.push(k.clone());
        out.push(v.clone());
    }
    out.join("\n")
}
