//! MESH by the rules (issue 15, item 4): what NHS England's MESH API asks of a client, each rule
//! checked against the crate's built-in MESH mailbox (`nhs_emulator::mesh_box`, served over HTTP
//! on loopback) or through `ads-connector check-config`. The rules' sources are NHS England's MESH
//! API specification (`NHSDigital/mesh-api-specification`, `specification/mesh-api.yaml`) and
//! NHS England's Python `mesh-client`; `docs/dps-errors.md` ("MESH by the rules") lists them.
//!
//! 1. Poll "a maximum of once every five minutes" and "a minimum of once a day":
//!    `mesh.poll_interval_s` defaults to 300 and is refused outside 300–86400, below 300 unless
//!    `mesh.url` is loopback (the demo's and the tests' emulators).
//! 2. "Validate your mailbox once every 24 hours": a handshake at start and again while running.
//! 3. The mailbox id "Must be uppercase": a lower-case `mesh.mailbox` is refused by
//!    `check-config` (MESH would answer 403).
//! 4. With a `workflow_filter`, an inbox page "can be empty when more results exist": the poller
//!    follows `links.next` through it.
//!
//! Kafka, where a test needs it, is librdkafka's mock cluster.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ads_connector::mesh::correlation::Correlator;
use ads_connector::mesh::{DpsPoller, MeshClient, MeshClientConfig, MeshConfig, MeshError};
use ads_connector::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use nhs_emulator::mesh_box;
use nhs_emulator::mesh_send::{MeshSend, SendOptions};

use rdkafka::producer::FutureProducer;

use common::*;
use tokio_util::sync::CancellationToken;

const TRUST: &str = "X26ABC2";
const DPS: &str = "X26ABC1";
const WORKFLOW: &str = "ADS_DPS_ERRORS";
const OTHER_WORKFLOW: &str = "OTHER_WORKFLOW";
const ERRORS_TOPIC: &str = "ads.dps-errors";

/// Requests the emulator received, by kind.
#[derive(Clone, Default)]
struct Seen {
    handshakes: Arc<AtomicUsize>,
    lists: Arc<AtomicUsize>,
}

async fn count(State(seen): State<Seen>, request: Request, next: Next) -> Response {
    let path = request.uri().path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match (request.method(), segments.as_slice()) {
        (&Method::POST, ["messageexchange", _mailbox]) => {
            seen.handshakes.fetch_add(1, Ordering::SeqCst);
        }
        (&Method::GET, ["messageexchange", _mailbox, "inbox"]) => {
            seen.lists.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    }
    next.run(request).await
}

/// The built-in MESH mailbox on a loopback port, counting what it is asked; its base URL.
async fn serve_mesh() -> (String, Seen) {
    let seen = Seen::default();
    let app = mesh_box::routes().layer(axum::middleware::from_fn_with_state(seen.clone(), count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn mailbox(url: &str, id: &str) -> MeshClient {
    let config = mesh_client_config(url, id, mesh_box::PASSWORD, mesh_box::SHARED_KEY.as_bytes());
    MeshClient::new(&config).unwrap()
}

async fn send(url: &str, workflow: &str, body: &str) -> String {
    let options = SendOptions {
        workflow_id: workflow.into(),
        ..SendOptions::default()
    };
    mailbox(url, DPS)
        .send_message(TRUST, body.as_bytes(), &options)
        .await
        .unwrap()
}

/// The trust's `[mesh]` section at `url`, validated as `run` validates it; `extra` are more keys
/// (JSON). Writes the secret files into `dir`.
fn mesh_config(url: &str, dir: &std::path::Path, extra: serde_json::Value) -> MeshConfig {
    let secrets = (mesh_box::PASSWORD, mesh_box::SHARED_KEY.as_bytes());
    let mut section = mesh_section(url, TRUST, secrets, WORKFLOW, ERRORS_TOPIC, dir);
    let keys = section.as_object_mut().unwrap();
    // These rules are about the poll interval: leave it at its default unless `extra` sets it.
    keys.remove("poll_interval_s");
    keys.insert("correlation_wait_s".into(), 0.into());
    keys.extend(extra.as_object().unwrap().clone());
    parse_mesh(section)
}

fn kafka() -> (Broker, FutureProducer) {
    let broker = Broker::mock(1, &[(ERRORS_TOPIC, 1)]);
    let producer = producer(&broker.bootstrap());
    (broker, producer)
}

fn poller(config: &MeshConfig, producer: FutureProducer) -> DpsPoller {
    let client = MeshClient::new(&MeshClientConfig::from_config(config).unwrap()).unwrap();
    DpsPoller::new(
        client,
        config.clone(),
        producer,
        Arc::new(Correlator::new(1000)),
        Metrics::new(),
    )
}

// Rule 1: the poll interval.

/// A valid configuration with a `[mesh]` section at the real MESH (INT): more keys can be appended.
fn config() -> String {
    format!(
        "{INT_CONFIG}[mesh]\nurl = \"https://msg.intspineservices.nhs.uk\"\nmailbox = \"X26ABC2\"\n\
         password_file = \"/secrets/mesh/password\"\nshared_key_file = \"/secrets/mesh/shared-key\"\n\
         errors_topic = \"ads.dps-errors\"\n"
    )
}

/// `ads-connector check-config` on `text`: success and what it printed.
fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "config.toml", text);
    let out = connector_command()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn check_config_refuses_polling_mesh_more_often_than_every_five_minutes() {
    let (ok, printed) = check_config(&config());
    assert!(ok, "the default interval, 300 s, is valid: {printed}");
    let (ok, printed) = check_config(&format!("{}poll_interval_s = 60\n", config()));
    assert!(!ok, "{printed}");
    assert!(
        printed.contains("`mesh.poll_interval_s` must be at least 300 (60 given)")
            && printed.contains("once every 5 minutes"),
        "{printed}"
    );
    let (ok, printed) = check_config(&format!("{}poll_interval_s = 90000\n", config()));
    assert!(!ok, "{printed}");
    assert!(printed.contains("once a day"), "{printed}");
    // The escape for emulators: a loopback MESH may be polled every second.
    let local = config().replace(
        "https://msg.intspineservices.nhs.uk",
        "http://127.0.0.1:8700",
    );
    let (ok, printed) = check_config(&format!("{local}poll_interval_s = 1\n"));
    assert!(ok, "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_poll_interval_is_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let config = mesh_config(
        "https://mesh-sync.spineservices.nhs.uk",
        dir.path(),
        serde_json::json!({}),
    );
    assert_eq!(config.poll_interval, Duration::from_secs(300));
}

// Rule 2: the handshake, at start and at least every 24 hours.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_handshakes_at_start_and_again_while_it_runs() {
    let (url, seen) = serve_mesh().await;
    let dir = tempfile::tempdir().unwrap();
    let config = mesh_config(&url, dir.path(), serde_json::json!({"poll_interval_s": 1}));
    let (_cluster, producer) = kafka();

    // MESH's 24 hours: one handshake at start, however many polls follow.
    let stop = CancellationToken::new();
    let task = tokio::spawn(poller(&config, producer.clone()).run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    task.await.unwrap();
    assert!(seen.lists.load(Ordering::SeqCst) >= 2);
    assert_eq!(seen.handshakes.load(Ordering::SeqCst), 1);

    // Shortened to 3 s (with 1 s polls, due once a second has passed): repeated while running.
    let (url, seen) = serve_mesh().await;
    let config = mesh_config(&url, dir.path(), serde_json::json!({"poll_interval_s": 1}));
    let stop = CancellationToken::new();
    let poller = poller(&config, producer).with_handshake_every(Duration::from_secs(3));
    let task = tokio::spawn(poller.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stop.cancel();
    task.await.unwrap();
    let handshakes = seen.handshakes.load(Ordering::SeqCst);
    assert!(handshakes >= 2, "{handshakes} handshakes");
    assert!(handshakes <= seen.lists.load(Ordering::SeqCst) + 1);
}

// Rule 3: upper-case mailbox ids.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_mailbox_is_refused_by_mesh_and_so_by_check_config() {
    let (url, _) = serve_mesh().await;
    let err = mailbox(&url, &TRUST.to_lowercase())
        .handshake()
        .await
        .unwrap_err();
    assert!(matches!(err, MeshError::Auth { status: 403, .. }), "{err}");
    mailbox(&url, TRUST).handshake().await.unwrap();
    let (ok, printed) = check_config(&config().replace("X26ABC2", "x26abc2"));
    assert!(!ok, "{printed}");
    assert!(
        printed.contains("`mesh.mailbox` must be upper case") && printed.contains("`X26ABC2`"),
        "{printed}"
    );
}

// Rule 4: paging through empty pages.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serves_an_empty_filtered_page_that_still_links_to_the_next() {
    let (url, _) = serve_mesh().await;
    for i in 0..10 {
        send(&url, OTHER_WORKFLOW, &format!("other {i}")).await;
    }
    let ours = send(&url, WORKFLOW, "ours").await;
    let trust = mailbox(&url, TRUST);
    let first = trust.request(
        Method::GET,
        &format!("/inbox?max_results=10&workflow_filter={WORKFLOW}"),
    );
    let first: serde_json::Value =
        MeshClient::json("list", trust.send("list", first).await.unwrap())
            .await
            .unwrap();
    assert_eq!(first["messages"], serde_json::json!([]), "{first}");
    let next = first["links"]["next"]
        .as_str()
        .expect("links.next")
        .to_owned();
    assert!(next.contains("continue_from="), "{next}");
    let second = trust.request(
        Method::GET,
        next.trim_start_matches(&format!("/messageexchange/{TRUST}")),
    );
    let second: serde_json::Value =
        MeshClient::json("list", trust.send("list", second).await.unwrap())
            .await
            .unwrap();
    assert_eq!(second["messages"], serde_json::json!([ours]), "{second}");
    assert!(second["links"].get("next").is_none(), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_next_links_through_empty_pages() {
    let (url, seen) = serve_mesh().await;
    for i in 0..25 {
        send(&url, OTHER_WORKFLOW, &format!("other {i}")).await;
    }
    let ours = send(&url, WORKFLOW, "ours").await;
    let ids = mailbox(&url, TRUST)
        .list_inbox(Some(WORKFLOW), 10)
        .await
        .unwrap();
    assert_eq!(ids, vec![ours]);
    // Pages of 10 over 26 messages: two empty pages, then ours.
    assert_eq!(seen.lists.load(Ordering::SeqCst), 3);
    // Unfiltered, every page is full and the whole inbox is listed.
    let all = mailbox(&url, TRUST).list_inbox(None, 10).await.unwrap();
    assert_eq!(all.len(), 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_takes_a_notification_behind_empty_pages() {
    let (url, _) = serve_mesh().await;
    for i in 0..25 {
        send(&url, OTHER_WORKFLOW, &format!("other {i}")).await;
    }
    let ours = send(&url, WORKFLOW, "DPS,LEGACY,REPORT,1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let config = mesh_config(
        &url,
        dir.path(),
        serde_json::json!({"poll_interval_s": 1, "max_messages_per_poll": 10}),
    );
    let (_cluster, producer) = kafka();
    let mut poller = poller(&config, producer);
    let report = poller.poll_once(&CancellationToken::new()).await.unwrap();
    assert_eq!(
        (report.acknowledged, report.published),
        (1, 1),
        "{report:?}"
    );
    // Acknowledged, so gone; the other workflow's messages stay in the mailbox.
    let left = mailbox(&url, TRUST).list_inbox(None, 10).await.unwrap();
    assert_eq!(left.len(), 25);
    assert!(!left.contains(&ours));
}
