//! Traces end to end: the connector, configured only through the standard `OTEL_*` variables,
//! exports its spans over OTLP/HTTP to a local endpoint that decodes them; each test runs the
//! pipeline (mock Kafka cluster, fake NHS API, records carrying a `traceparent`) and checks the
//! span model of `src/telemetry.rs` on what reached the endpoint: `process` spans linked to every
//! record and naming the consumer group, their `POST`, `send`, `rate_limit wait` and
//! `token refresh` children, dead letters' `send` spans, and the `traceparent` headers that name
//! them.
//!
//! The tests share one exporter: the first to run sets the process environment and installs the
//! global subscriber while every other test thread waits for it ([`shared`], before any thread of
//! ours exists); each test then picks its own spans out by topic names and URLs.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use ads_connector::telemetry;
use ads_devkit::generate::{self, Generator};
use axum::http::{HeaderMap, StatusCode};
use common::otlp::{self, Collector, Received};
use common::{
    ack_source, connector_toml, dlq_source, fresh_key_files, header, producer, random_traceparent,
    read_acks_and_dead_letters, send_traced, start_pipeline, write_file, Broker, Names,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use rdkafka::message::{Headers, Message, OwnedMessage};

const RECORDS: usize = 60;

#[test]
fn spans_reach_an_otlp_endpoint_with_batch_links_and_http_and_ack_children() {
    let (base, run, request_traceparents) = run(async {
        let (base, seen) = fake_api(StatusCode::OK).await;
        let client_id = "[kafka.properties]\n\"client.id\" = \"ads-traces-client\"";
        let run = run_pipeline("traces", (RECORDS, 0), &api(&base), client_id, RECORDS).await;
        let request_traceparents = seen.lock().unwrap().clone();
        (base, run, request_traceparents)
    });
    let spans = exported();
    assert!(shared().collector.requests() >= 1, "nothing was exported");
    let service = spans[0].resource.get("service.name").cloned();
    assert_eq!(service.as_deref(), Some("ads-connector-traces-test"));

    // process spans: consumer kind, messaging attributes, one link per record's traceparent.
    let process = process_spans(&spans, &run.names);
    let mut linked = HashSet::new();
    let mut records = 0;
    for p in process.values() {
        assert_eq!(p.span.kind, SpanKind::Consumer as i32);
        assert!(p.span.parent_span_id.is_empty(), "a batch span is a root");
        let a = p.attributes();
        assert_eq!(a[semconv::MESSAGING_SYSTEM], "kafka");
        assert_eq!(a[semconv::MESSAGING_OPERATION_TYPE], "process");
        assert_eq!(a[semconv::MESSAGING_DESTINATION_NAME], run.names.cad);
        assert_eq!(a[semconv::MESSAGING_CONSUMER_GROUP_NAME], run.names.group);
        assert_eq!(a[semconv::MESSAGING_CLIENT_ID], "ads-traces-client");
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

    // POST spans: client kind, children of a process span, status recorded.
    let posts = posts_to(&spans, &base);
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.span.kind, SpanKind::Client as i32);
        let parent = process
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
    let sent: HashSet<(String, String)> = request_traceparents.iter().map(|t| ids(t)).collect();
    assert_eq!(
        sent, post_ids,
        "the HTTP requests carry their POST spans' contexts"
    );

    // send spans: producer kind, children of a process span.
    let sends = named(&spans, &format!("send {}", run.names.ack));
    assert!(!sends.is_empty(), "no `send {}` span", run.names.ack);
    for send in sends.values() {
        assert_eq!(send.span.kind, SpanKind::Producer as i32);
        assert!(process.contains_key(&send.parent_span_id()));
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
        let process = process[&send.parent_span_id()];
        assert!(process.links().contains(&ids(source)));
        assert_eq!(body["trace_id"], ids(source).0);
    }
}

#[test]
fn token_requests_are_token_refresh_spans_with_an_http_child_their_outcome_and_no_secret() {
    let (run, server) = run(async {
        let server = TokenServer::start(6).await;
        let (base, _) = fake_api(StatusCode::OK).await;
        // Signed JWT against the token server: no `auth = "none"` here.
        let nhs_api = format!(
            "environment = \"custom\"\nbase_url = \"{base}\"\n{}",
            server.config()
        );
        let request = "[nhs_api.request]\nmax_in_flight = 4\ninitial_backoff_ms = 20\n\
                       max_backoff_ms = 100";
        let run = run_pipeline("token", (40, 0), &nhs_api, request, 40).await;
        (run, server)
    });
    let spans = exported();
    let process = process_spans(&spans, &run.names);
    let children = children(&spans);

    // One `token refresh` span per token request, each with its POST to the token endpoint.
    let refreshes: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "token refresh")
        .filter(|s| {
            children.get(&s.span_id()).is_some_and(|c| {
                c.iter()
                    .any(|p| p.attributes()[semconv::URL_FULL] == server.url)
            })
        })
        .collect();
    assert_eq!(
        refreshes.len(),
        server.requests.load(Ordering::SeqCst),
        "one token refresh span per token request"
    );
    for refresh in &refreshes {
        assert_eq!(refresh.span.kind, SpanKind::Internal as i32);
        let posts = &children[&refresh.span_id()];
        assert_eq!(posts.len(), 1, "a token refresh span has one child");
        let post = posts[0];
        assert_eq!(post.span.name, "POST");
        assert_eq!(post.span.kind, SpanKind::Client as i32);
        let (a, p) = (refresh.attributes(), post.attributes());
        assert_eq!(p[semconv::HTTP_REQUEST_METHOD], "POST");
        match p[semconv::HTTP_RESPONSE_STATUS_CODE].as_str() {
            "200" => {
                assert!(!refresh.failed() && !post.failed());
                assert!(!a.contains_key(semconv::ERROR_TYPE));
            }
            "500" => {
                assert!(refresh.failed() && post.failed());
                assert_eq!(a[semconv::ERROR_TYPE], "500");
                assert_eq!(p[semconv::ERROR_TYPE], "500");
            }
            other => panic!("unexpected token status {other}"),
        }
    }
    // The refresher's requests are roots; a submission that had to mint is their parent.
    let (roots, minted): (Vec<&Received>, Vec<&Received>) = refreshes
        .iter()
        .partition(|r| r.span.parent_span_id.is_empty());
    assert!(
        roots.iter().any(|r| r.failed()),
        "the refresher's first request failed"
    );
    // Since the token discipline (issue 15) a submission that finds no token while the
    // refresher backs off is held back instead of minting one itself, so whether any
    // submission mints depends on timing; each one that does is a child of its process span.
    for r in &minted {
        assert!(process.contains_key(&r.parent_span_id()));
    }
    assert!(refreshes.iter().any(|r| !r.failed()), "no token obtained");
    // Submissions that waited while another task minted show it on their process span.
    let waits: Vec<f64> = process
        .values()
        .flat_map(|p| p.events())
        .filter(|(name, _)| name == "token wait")
        .map(|(_, a)| a["ads.token.wait_ms"].parse().unwrap())
        .collect();
    assert!(!waits.is_empty(), "no token wait event");
    assert!(waits.iter().all(|w| *w > 0.0));

    // No secret in any span: API key, client assertions (and their parts), access tokens.
    let text: String = spans.iter().map(otlp::span_text).collect();
    let mut secrets = vec![server.api_key.clone(), "Bearer".to_string()];
    for assertion in server.assertions.lock().unwrap().iter() {
        secrets.push(assertion.clone());
        secrets.extend(assertion.split('.').map(str::to_string));
    }
    secrets.extend(server.tokens.lock().unwrap().iter().cloned());
    assert!(secrets.len() > 8, "the token server saw too little");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret in the spans");
    }
}

#[test]
fn a_request_held_back_by_the_rate_limit_gets_a_rate_limit_wait_span_and_one_let_through_none() {
    let (base, run) = run(async {
        let (base, _) = fake_api(StatusCode::OK).await;
        // 1 request at once, then one every 200 ms.
        let limit = "[rate_limit]\nrequests_per_minute = 300\nburst = 1";
        let run = run_pipeline("ratelimit", (16, 0), &api(&base), limit, 16).await;
        (base, run)
    });
    let spans = exported();
    let process = process_spans(&spans, &run.names);
    let posts = posts_to(&spans, &base);
    let waits: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "rate_limit wait")
        .filter(|s| process.contains_key(&s.parent_span_id()))
        .collect();
    assert!(!waits.is_empty(), "no rate_limit wait span");
    assert!(
        waits.len() < posts.len(),
        "the first request is let through at once, without a span"
    );
    for wait in &waits {
        assert_eq!(wait.span.kind, SpanKind::Internal as i32);
        let a = wait.attributes();
        assert_eq!(a["ads.rate_limit.cause"], "quota");
        assert!(a["ads.rate_limit.wait_ms"].parse::<f64>().unwrap() > 0.0);
        // The request it held back is a sibling that starts once the wait is over.
        assert!(posts
            .iter()
            .any(|p| p.parent_span_id() == wait.parent_span_id()
                && p.span.start_time_unix_nano >= wait.span.end_time_unix_nano));
    }
    // Wherever they come from, rate_limit wait spans are children of process spans.
    let all_process: HashSet<String> = spans
        .iter()
        .filter(|s| s.span.name.starts_with("process "))
        .map(|s| s.span_id())
        .collect();
    for wait in spans.iter().filter(|s| s.span.name == "rate_limit wait") {
        assert!(all_process.contains(&wait.parent_span_id()));
    }
}

#[test]
fn dead_letters_carry_send_spans_under_their_submission_or_linked_to_their_undecodable_record() {
    const VALID: usize = 12;
    const INVALID: usize = 4;
    let (base, run) = run(async {
        // An API that refuses every submission for good: every valid record is dead-lettered.
        let (base, _) = fake_api(StatusCode::BAD_REQUEST).await;
        let run = run_pipeline("deadletter", (VALID, INVALID), &api(&base), "", 0).await;
        (base, run)
    });
    let spans = exported();
    let process = process_spans(&spans, &run.names);
    let sends = named(&spans, &format!("send {}", run.names.dlq));
    for send in sends.values() {
        assert_eq!(send.span.kind, SpanKind::Producer as i32);
        let a = send.attributes();
        assert_eq!(a[semconv::MESSAGING_SYSTEM], "kafka");
        assert_eq!(a[semconv::MESSAGING_OPERATION_TYPE], "send");
        assert_eq!(a[semconv::MESSAGING_DESTINATION_NAME], run.names.dlq);
    }
    let counted: usize = sends
        .values()
        .map(|s| s.attributes()[semconv::MESSAGING_BATCH_MESSAGE_COUNT].parse::<usize>())
        .sum::<Result<_, _>>()
        .unwrap();
    assert_eq!(counted, VALID + INVALID, "each dead letter counted once");
    for post in posts_to(&spans, &base) {
        assert!(post.failed());
        assert_eq!(post.attributes()[semconv::ERROR_TYPE], "400");
    }

    assert_eq!(run.dead.len(), VALID + INVALID);
    let mut stages = HashMap::new();
    for letter in &run.dead {
        let source = ids(&run.traceparents[&dlq_source(letter)]);
        let traceparents = letter.headers().unwrap().iter();
        let traceparents = traceparents.filter(|h| h.key == "traceparent").count();
        assert_eq!(
            traceparents, 1,
            "the record's traceparent is replaced, not repeated"
        );
        let (trace, span) = ids(header(letter, "traceparent").unwrap());
        let send = sends
            .get(&span)
            .expect("the dead letter's traceparent names a send span");
        assert_eq!(send.trace_id(), trace);
        let stage = header(letter, "ads-error-stage").unwrap();
        *stages.entry(stage.to_string()).or_insert(0) += 1;
        match stage {
            "submit" => {
                let process = process
                    .get(&send.parent_span_id())
                    .expect("a refused submission's send span is a child of its process span");
                assert!(process.links().contains(&source));
            }
            "decode" => {
                assert!(
                    send.span.parent_span_id.is_empty(),
                    "no process span: a root"
                );
                assert!(send.links().contains(&source));
            }
            other => panic!("unexpected stage {other}"),
        }
    }
    let expected = HashMap::from([
        ("submit".to_string(), VALID),
        ("decode".to_string(), INVALID),
    ]);
    assert_eq!(stages, expected);
}

/// The exporter the tests share, and its endpoint (on a runtime of its own).
struct Shared {
    collector: Collector,
    guard: telemetry::OtelGuard,
    _runtime: tokio::runtime::Runtime,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        // The only configuration the connector gets: the standard variables. Every other test
        // thread waits for this initialisation; no thread of ours exists yet.
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
        std::env::set_var("OTEL_SERVICE_NAME", "ads-connector-traces-test");
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        let guard = telemetry::init("warn");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = runtime.block_on(async { tokio::net::TcpListener::from_std(listener) });
        let collector = runtime.block_on(Collector::serve(listener.unwrap()));
        Shared {
            collector,
            guard,
            _runtime: runtime,
        }
    })
}

/// Runs one test's pipeline on a runtime of its own, once the exporter is installed.
fn run<T>(test: impl Future<Output = T>) -> T {
    shared();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

/// Every span exported so far, after flushing those that ended.
fn exported() -> Vec<Received> {
    shared().guard.flush();
    shared().collector.spans()
}

/// The spans named `name`, by span id.
fn named<'a>(spans: &'a [Received], name: &str) -> HashMap<String, &'a Received> {
    spans
        .iter()
        .filter(|s| s.span.name == name)
        .map(|s| (s.span_id(), s))
        .collect()
}

/// The test's `process` spans, by span id.
fn process_spans<'a>(spans: &'a [Received], names: &Names) -> HashMap<String, &'a Received> {
    let process = named(spans, &format!("process {}", names.cad));
    assert!(!process.is_empty(), "no `process {}` span", names.cad);
    process
}

/// The `POST` spans of requests to `base`.
fn posts_to<'a>(spans: &'a [Received], base: &str) -> Vec<&'a Received> {
    spans
        .iter()
        .filter(|s| s.span.name == "POST" && s.attributes()[semconv::URL_FULL].starts_with(base))
        .collect()
}

/// Every span's children, by parent span id.
fn children(spans: &[Received]) -> HashMap<String, Vec<&Received>> {
    let mut out: HashMap<String, Vec<&Received>> = HashMap::new();
    for s in spans.iter().filter(|s| !s.span.parent_span_id.is_empty()) {
        out.entry(s.parent_span_id()).or_default().push(s);
    }
    out
}

/// `(trace id, span id)` of a `traceparent`.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    (parts[1].to_string(), parts[2].to_string())
}

/// The `[nhs_api]` lines for an open-access API at `base`.
fn api(base: &str) -> String {
    format!("environment = \"custom\"\nauth = \"none\"\nbase_url = \"{base}\"")
}

struct Run {
    names: Names,
    traceparents: HashMap<(i32, i64), String>,
    acks: Vec<OwnedMessage>,
    dead: Vec<OwnedMessage>,
}

/// A fake NHS API that answers every request with `status` and keeps each `traceparent`.
async fn fake_api(status: StatusCode) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .fallback(move |headers: HeaderMap, axum::extract::State(seen): axum::extract::State<Arc<Mutex<Vec<String>>>>| async move {
            if let Some(t) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap().push(t.to_string());
            }
            let body = if status.is_success() {
                serde_json::json!({"message": uuid::Uuid::new_v4().to_string()})
            } else {
                serde_json::json!({"resourceType": "OperationOutcome", "issue": []})
            };
            (status, axum::Json(body))
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A fake OAuth2 token endpoint: the first `failures` requests get a 500, later ones (slowly) a
/// fresh token. Keeps every client assertion and token, to look for them in the spans.
struct TokenServer {
    url: String,
    api_key: String,
    private_key: std::path::PathBuf,
    key_dir: tempfile::TempDir,
    requests: Arc<AtomicUsize>,
    assertions: Arc<Mutex<Vec<String>>>,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    async fn start(failures: usize) -> Self {
        let key_dir = tempfile::tempdir().unwrap();
        let private_key = fresh_key_files("traces-1", key_dir.path()).private_key;
        let api_key = format!("app-{}", uuid::Uuid::new_v4().simple());
        write_file(key_dir.path(), "api-key", &api_key);
        let requests = Arc::new(AtomicUsize::new(0));
        let assertions: Arc<Mutex<Vec<String>>> = Arc::default();
        let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, a, t) = (requests.clone(), assertions.clone(), tokens.clone());
        let app = axum::Router::new().fallback(move |body: String| async move {
            let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
            a.lock().unwrap().push(form["client_assertion"].clone());
            if r.fetch_add(1, Ordering::SeqCst) < failures {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let body =
                    serde_json::json!({"error": "server_error", "error_description": "busy"});
                return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body));
            }
            // Slow enough that concurrent submissions wait for it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
            t.lock().unwrap().push(token.clone());
            let body = serde_json::json!({"access_token": token, "expires_in": "599"});
            (StatusCode::OK, axum::Json(body))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            api_key,
            private_key,
            key_dir,
            requests,
            assertions,
            tokens,
        }
    }

    /// The `[nhs_api]` lines for signed-JWT authentication against this endpoint.
    fn config(&self) -> String {
        let dir = self.key_dir.path();
        format!(
            "token_url = \"{}\"\napi_key_file = \"{}\"\nprivate_key_file = \"{}\"\nkid = \"traces-1\"",
            self.url,
            dir.join("api-key").display(),
            self.private_key.display(),
        )
    }
}

/// Produces `valid` calls and `invalid` truncated records, each with a `traceparent`, runs the
/// pipeline with `[nhs_api]` lines `nhs_api` and the TOML `extra`, until `acks` acks and every
/// invalid or refused record's dead letter are written, then stops it.
async fn run_pipeline(
    test: &str,
    (valid, invalid): (usize, usize),
    nhs_api: &str,
    extra: &str,
    acks: usize,
) -> Run {
    let names = Names::new(test);
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    let traceparents = produce(&bootstrap, &names.cad, valid, invalid).await;

    let batch = "max_calls = 5\nlinger_ms = 100";
    let toml = connector_toml(&bootstrap, &names, nhs_api, batch, extra);
    let config = Config::from_toml_str(&toml).unwrap();
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let dead = valid + invalid - acks;
    let (acks, dead) =
        read_acks_and_dead_letters(&bootstrap, &names, acks, dead, Duration::from_secs(60)).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();
    Run {
        names,
        traceparents,
        acks,
        dead,
    }
}

/// Produces the records as an instrumented CAD producer would: each with a `traceparent`.
async fn produce(
    bootstrap: &str,
    topic: &str,
    valid: usize,
    invalid: usize,
) -> HashMap<(i32, i64), String> {
    let producer = producer(bootstrap);
    let mut generator = Generator::new(21);
    let mut rng = rand::thread_rng();
    let mut traceparents = HashMap::new();
    for i in 0..valid + invalid {
        let call = generator.next_call();
        let mut payload = generate::to_json_line(&call);
        if i >= valid {
            payload.truncate(payload.len() / 2);
        }
        let traceparent = random_traceparent(&mut rng);
        let delivered = send_traced(&producer, topic, &call.call_id, &payload, &traceparent).await;
        traceparents.insert(delivered, traceparent);
    }
    traceparents
}
