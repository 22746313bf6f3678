//! Traces end to end: the connector, configured only through the standard `OTEL_*` variables,
//! exports its spans over OTLP/HTTP to a local endpoint that decodes them; the test checks the
//! span model of `src/telemetry.rs`: one `process` span per submission linked to every record's
//! `traceparent`, `POST` and `send` spans as its children, the HTTP request's `traceparent`
//! naming its `POST` span and every ack record's `traceparent` naming its `send` span.
//!
//! One test in this binary on purpose: it sets process environment variables before any other
//! thread exists and installs the global subscriber.

mod common;
#[path = "support/otlp.rs"]
mod otlp;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::generate::{self, Generator};
use ads_connector::metrics::Metrics;
use ads_connector::telemetry;
use axum::http::HeaderMap;
use common::{ack_source, header, read_topic, Names};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use otlp::Collector;
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const RECORDS: usize = 60;

#[test]
fn spans_reach_an_otlp_endpoint_with_batch_links_and_http_and_ack_children() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // The only configuration the connector gets: the standard variables. No other thread runs yet.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_SERVICE_NAME", "ads-connector-traces-test");
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let guard = telemetry::init("warn");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (collector, run) = runtime.block_on(async {
        listener.set_nonblocking(true).unwrap();
        let collector =
            Collector::serve(tokio::net::TcpListener::from_std(listener).unwrap()).await;
        (collector, run_pipeline().await)
    });
    // Flushes the batch span processor into the collector, which still runs on the runtime.
    drop(guard);
    let spans = collector.spans();
    drop(runtime);

    assert!(collector.requests() >= 1, "nothing was exported");
    let service = spans[0].resource.get("service.name").cloned();
    assert_eq!(service.as_deref(), Some("ads-connector-traces-test"));

    // process spans: consumer kind, messaging attributes, one link per record's traceparent.
    let process_name = format!("process {}", run.names.cad);
    let process: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == process_name)
        .collect();
    assert!(
        !process.is_empty(),
        "no `{process_name}` span among {spans:#?}"
    );
    let mut linked = HashSet::new();
    let mut records = 0;
    for p in &process {
        assert_eq!(p.span.kind, SpanKind::Consumer as i32);
        assert!(p.span.parent_span_id.is_empty(), "a batch span is a root");
        let a = p.attributes();
        assert_eq!(a[semconv::MESSAGING_SYSTEM], "kafka");
        assert_eq!(a[semconv::MESSAGING_OPERATION_TYPE], "process");
        assert_eq!(a[semconv::MESSAGING_DESTINATION_NAME], run.names.cad);
        records += a[semconv::MESSAGING_BATCH_MESSAGE_COUNT]
            .parse::<usize>()
            .unwrap();
        linked.extend(p.links());
    }
    assert_eq!(
        records, RECORDS,
        "every record is counted in one batch span"
    );
    let produced: HashSet<(String, String)> = run.traceparents.values().map(|t| ids(t)).collect();
    assert_eq!(
        linked, produced,
        "the batch spans link every record's context, and only those"
    );
    let process_ids: HashMap<String, &otlp::Received> =
        process.iter().map(|p| (p.span_id(), *p)).collect();

    // POST spans: client kind, children of a process span, status recorded.
    let posts: Vec<_> = spans.iter().filter(|s| s.span.name == "POST").collect();
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.span.kind, SpanKind::Client as i32);
        let parent = process_ids
            .get(&post.parent_span_id())
            .expect("a POST span's parent is a process span");
        assert_eq!(post.trace_id(), parent.trace_id());
        let a = post.attributes();
        assert_eq!(a[semconv::HTTP_REQUEST_METHOD], "POST");
        assert_eq!(a[semconv::HTTP_RESPONSE_STATUS_CODE], "200");
        assert!(a[semconv::URL_FULL].ends_with("/$process-message"));
        assert_eq!(a[semconv::SERVER_ADDRESS], "127.0.0.1");
    }
    // Each request carried its own POST span's context.
    let post_ids: HashSet<(String, String)> =
        posts.iter().map(|p| (p.trace_id(), p.span_id())).collect();
    let sent: HashSet<(String, String)> = run.request_traceparents.iter().map(|t| ids(t)).collect();
    assert_eq!(
        sent, post_ids,
        "the HTTP requests carry their POST spans' contexts"
    );

    // send spans: producer kind, children of a process span.
    let send_name = format!("send {}", run.names.ack);
    let sends: HashMap<String, &otlp::Received> = spans
        .iter()
        .filter(|s| s.span.name == send_name)
        .map(|s| (s.span_id(), s))
        .collect();
    assert!(!sends.is_empty(), "no `{send_name}` span");
    for send in sends.values() {
        assert_eq!(send.span.kind, SpanKind::Producer as i32);
        assert!(process_ids.contains_key(&send.parent_span_id()));
        let a = send.attributes();
        assert_eq!(a[semconv::MESSAGING_OPERATION_TYPE], "send");
        assert_eq!(a[semconv::MESSAGING_DESTINATION_NAME], run.names.ack);
    }

    // Every ack record: its traceparent names a send span whose process span links the source
    // record's own context; its body keeps the source record's trace id.
    assert_eq!(run.acks.len(), RECORDS);
    for ack in &run.acks {
        let (partition, offset, body) = ack_source(ack);
        let source = &run.traceparents[&(partition, offset)];
        let (trace, span) = ids(header(ack, "traceparent").expect("ack traceparent"));
        let send = sends
            .get(&span)
            .expect("the ack's traceparent names a send span");
        assert_eq!(send.trace_id(), trace);
        let process = process_ids[&send.parent_span_id()];
        assert!(process.links().contains(&ids(source)));
        assert_eq!(body["trace_id"], ids(source).0);
    }
}

/// `(trace id, span id)` of a `traceparent`.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    (parts[1].to_string(), parts[2].to_string())
}

struct Run {
    names: Names,
    traceparents: HashMap<(i32, i64), String>,
    request_traceparents: Vec<String>,
    acks: Vec<rdkafka::message::OwnedMessage>,
}

/// A fake NHS API in open-access mode that accepts everything and keeps each `traceparent`.
async fn fake_api() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .fallback(|headers: HeaderMap, axum::extract::State(seen): axum::extract::State<Arc<Mutex<Vec<String>>>>| async move {
            if let Some(t) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap().push(t.to_string());
            }
            axum::Json(serde_json::json!({"message": uuid::Uuid::new_v4().to_string()}))
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn run_pipeline() -> Run {
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let names = Names::new("traces");
    for (topic, partitions) in [(&names.cad, 2), (&names.ack, 1), (&names.dlq, 1)] {
        cluster.create_topic(topic, partitions, 1).unwrap();
    }
    let (base, seen) = fake_api().await;

    // Records with a traceparent each, as an instrumented CAD producer would write them.
    let producer: FutureProducer = common::client(&bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut generator = Generator::new(21);
    let mut rng = rand::thread_rng();
    let mut traceparents = HashMap::new();
    for _ in 0..RECORDS {
        let call = generator.next_call();
        let payload = generate::to_json_line(&call);
        let traceparent = format!("00-{:032x}-{:016x}-01", rng.gen::<u128>(), rng.gen::<u64>());
        let headers = OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some(&traceparent),
        });
        let record = FutureRecord::to(&names.cad)
            .key(&call.call_id)
            .payload(&payload)
            .headers(headers);
        let delivered = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        traceparents.insert((delivered.partition, delivered.offset), traceparent);
    }

    let config = Config::from_toml_str(&format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        group_id = "{group}"
        topics = ["{cad}"]
        ack_topic = "{ack}"
        dead_letter_topic = "{dlq}"
        session_timeout_ms = 10000
        revoke_drain_timeout_ms = 5000
        [nhs_api]
        environment = "custom"
        base_url = "{base}"
        [batch]
        max_calls = 20
        linger_ms = 100
        [http]
        listen = "127.0.0.1:0"
        [shutdown]
        drain_timeout_s = 8
        "#,
        group = names.group,
        cad = names.cad,
        ack = names.ack,
        dlq = names.dlq,
    ))
    .unwrap();
    let cancel = CancellationToken::new();
    let pipeline = Pipeline::start(config, Metrics::new(), cancel.clone())
        .await
        .unwrap();
    let (b, topic) = (bootstrap.clone(), names.ack.clone());
    let acks = tokio::task::spawn_blocking(move || {
        read_topic(&b, &topic, RECORDS, Duration::from_secs(60))
    })
    .await
    .unwrap();
    cancel.cancel();
    pipeline.finish().await.unwrap();
    let request_traceparents = seen.lock().unwrap().clone();
    Run {
        names,
        traceparents,
        request_traceparents,
        acks,
    }
}
