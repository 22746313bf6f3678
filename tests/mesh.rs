//! MESH tests against NHS England's own MESH sandbox (PyPI `mesh-sandbox`, started by
//! `scripts/mesh-sandbox.sh` from `scripts/test.sh`, which exports `ADS_TEST_MESH_URL`), with NHS England's Python
//! `mesh-client` as a cross-check that our messages and theirs interoperate: authentication
//! (success and failure), chunked messages both ways, the poller publishing correlated DPS
//! errors and acknowledging only after Kafka, a poller restart with nothing lost, and the whole
//! loop connector → sandbox API (DPS mode) → MESH → poller → errors topic. Built
//! without `ADS_TEST_MESH_URL`, the tests that need the sandbox are ignored (reported as
//! skipped by the runner, `build.rs`). Each test uses its own workflow id, so tests sharing the
//! sandbox's mailboxes never see each other's messages. Kafka is librdkafka's mock cluster.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ads_connector::mesh::correlation::{AckReader, Correlator};
use ads_connector::mesh::notification::{
    CallIssues, Issue, Notification, DPS_ERROR_SCHEMA, NOTIFICATION_SCHEMA,
};
use ads_connector::mesh::{self, DpsPoller, MeshClient, MeshClientConfig, MeshError};
use ads_connector::metrics::Metrics;
use ads_devkit::generate::{self, Generator};
use common::{mesh_client_config, mesh_sandbox_url, mesh_section, parse_mesh, Broker};
use nhs_emulator as sandbox;
use nhs_emulator::mesh_send::{MeshSend, SendOptions};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const TRUST: &str = "X26ABC2";
const DPS: &str = "X26ABC1";

fn shared_key() -> Vec<u8> {
    std::env::var("ADS_TEST_MESH_SHARED_KEY")
        .unwrap_or_else(|_| "TestKey".into())
        .into_bytes()
}

fn client(url: &str, mailbox: &str) -> MeshClient {
    MeshClient::new(&mesh_client_config(url, mailbox, "password", &shared_key())).unwrap()
}

fn workflow(test: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ADS_T_{}_{}", test.to_uppercase(), &id[..8].to_uppercase())
}

/// Runs a Python snippet with NHS England's `mesh_client` (the venv of `scripts/test-mesh.sh`).
fn python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("ADS_TEST_MESH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const PY_SEND: &str = r#"
import sys, mesh_client
url, sender, to, wf, size, body = sys.argv[1:7]
with mesh_client.MeshClient(url, sender, "password", shared_key=b"TestKey", max_chunk_size=int(size)) as c:
    print(c.send_message(to, body.encode(), workflow_id=wf, local_id="py-local", subject="py"))
"#;

const PY_RECEIVE: &str = r#"
import sys, mesh_client
url, mailbox, wf = sys.argv[1:4]
with mesh_client.MeshClient(url, mailbox, "password", shared_key=b"TestKey") as c:
    for mid in c.list_messages(workflow_filter=wf):
        msg = c.retrieve_message(mid)
        print(msg.read().decode())
        msg.acknowledge()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn handshake_succeeds_and_wrong_credentials_are_refused() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    client(&url, TRUST).handshake().await.unwrap();
    client(&url, TRUST).count().await.unwrap();
    let wrong_password =
        MeshClient::new(&mesh_client_config(&url, TRUST, "not-it", &shared_key())).unwrap();
    let err = wrong_password.handshake().await.unwrap_err();
    assert!(matches!(err, MeshError::Auth { status: 403, .. }), "{err}");
    assert!(!err.is_retryable());
    let wrong_key =
        MeshClient::new(&mesh_client_config(&url, TRUST, "password", b"Other")).unwrap();
    let err = wrong_key.list_inbox(None, 10).await.unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn chunked_message_from_mesh_client_is_retrieved_whole_and_acknowledged() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let wf = workflow("pychunk");
    let body = "0123456789".repeat(25);
    let id = python(PY_SEND, &[&url, DPS, TRUST, &wf, "64", &body]);
    let trust = client(&url, TRUST);
    let ids = trust.list_inbox(Some(&wf), 10).await.unwrap();
    assert_eq!(ids, vec![id.clone()]);
    let message = trust.retrieve(&id).await.unwrap();
    assert_eq!(message.chunks, 4);
    assert_eq!(message.body, body.as_bytes());
    assert_eq!(message.workflow_id.as_deref(), Some(wf.as_str()));
    assert_eq!(message.local_id.as_deref(), Some("py-local"));
    trust.acknowledge(&id).await.unwrap();
    assert!(trust.list_inbox(Some(&wf), 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn our_chunked_message_is_read_by_mesh_client() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let wf = workflow("ourchunk");
    let body = "abcdefghij".repeat(30);
    let options = SendOptions {
        workflow_id: wf.clone(),
        chunk_size: Some(70),
        ..SendOptions::default()
    };
    client(&url, DPS)
        .send_message(TRUST, body.as_bytes(), &options)
        .await
        .unwrap();
    let received = python(PY_RECEIVE, &[&url, TRUST, &wf]);
    assert_eq!(received, body);
}

// ---- poller ----

/// Sends with `mesh_client` compressed: `transport` = `Content-Encoding: gzip` per chunk (its
/// `compress=True`), `payload` = the sender gzips the body itself and flags it
/// `Mex-Content-Compressed: Y` (its `compressed=True`).
const PY_SEND_COMPRESSED: &str = r#"
import sys, gzip, mesh_client
url, sender, to, wf, size, mode, body = sys.argv[1:8]
data = body.encode()
kw = dict(workflow_id=wf, local_id="py-gz", subject="py")
with mesh_client.MeshClient(url, sender, "password", shared_key=b"TestKey", max_chunk_size=int(size)) as c:
    if mode == "payload":
        print(c.send_message(to, gzip.compress(data), compress=False, compressed=True, **kw))
    else:
        print(c.send_message(to, data, compress=True, **kw))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn compressed_messages_from_mesh_client_are_decoded() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let trust = client(&url, TRUST);
    let body = "compressible DPS report line\n".repeat(40);
    // (chunk size, mode, chunks expected)
    for (size, mode, chunks) in [
        ("100000", "transport", 1),
        ("300", "transport", 4),
        ("100000", "payload", 1),
    ] {
        let wf = workflow("gzip");
        let id = python(
            PY_SEND_COMPRESSED,
            &[&url, DPS, TRUST, &wf, size, mode, &body],
        );
        assert_eq!(
            trust.list_inbox(Some(&wf), 10).await.unwrap(),
            vec![id.clone()]
        );
        let message = trust.retrieve(&id).await.unwrap();
        assert_eq!(message.chunks, chunks, "{mode} {size}");
        assert_eq!(
            String::from_utf8_lossy(&message.body),
            body,
            "{mode} {size}"
        );
        assert_eq!(message.local_id.as_deref(), Some("py-gz"));
        trust.acknowledge(&id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn listing_follows_next_links_so_a_poll_takes_more_than_one_page() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let k = kafka(&["acks", "errors"]);
    let wf = workflow("paging");
    let dir = tempfile::tempdir().unwrap();
    let options = SendOptions {
        workflow_id: wf.clone(),
        ..SendOptions::default()
    };
    let dps = client(&url, DPS);
    let n = 23;
    for i in 0..n {
        dps.send_message(TRUST, format!("legacy report {i}").as_bytes(), &options)
            .await
            .unwrap();
    }
    // Pages of 10: three requests, every id once.
    let ids = client(&url, TRUST).list_inbox(Some(&wf), 10).await.unwrap();
    assert_eq!(ids.len(), n);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n);

    let mut raw = mesh_section(
        &url,
        TRUST,
        ("password\n", &shared_key()),
        &wf,
        "errors",
        dir.path(),
    );
    raw["correlation_wait_s"] = serde_json::json!(20);
    raw["max_messages_per_poll"] = serde_json::json!(10);
    let config = parse_mesh(raw);
    assert_eq!(config.max_messages_per_poll, 10);
    let stop = CancellationToken::new();
    let mut poller = DpsPoller::new(
        MeshClient::new(&MeshClientConfig::from_config(&config).unwrap()).unwrap(),
        config.clone(),
        producer(&k.bootstrap()),
        Arc::new(Correlator::new(10)),
        Metrics::new(),
    );
    // One poll takes the whole inbox, not only its first page.
    let report = poller.poll_once(&stop).await.unwrap();
    assert_eq!(report.acknowledged, n as u64);
    assert_eq!(report.published, n as u64);
    let records = read_all(&k.bootstrap(), "errors", n).await;
    let raws: HashSet<String> = records
        .iter()
        .map(|r| r["raw"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(raws.len(), n);
    assert!(client(&url, TRUST)
        .list_inbox(Some(&wf), 10)
        .await
        .unwrap()
        .is_empty());
}

/// The mock cluster with `topics`, one partition each.
fn kafka(topics: &[&str]) -> Broker {
    let topics: Vec<(&str, i32)> = topics.iter().map(|t| (*t, 1)).collect();
    Broker::mock(1, &topics)
}

/// A producer that gives up on a record after 3 s (the dead-end broker of a restart test).
fn producer(bootstrap: &str) -> FutureProducer {
    common::client(bootstrap)
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap()
}

async fn write_ack(
    bootstrap: &str,
    topic: &str,
    api_id: &str,
    call: &str,
    bundle: &str,
    offset: i64,
) {
    let ack = serde_json::json!({
        "schema": "ads.ack.v1",
        "source": {"topic": "cad.calls", "partition": 0, "offset": offset, "timestamp_ms": 1},
        "call_id": call, "provider_ods": "RZZ99", "outcome": "submitted",
        "api_id": api_id, "batch_id": "batch", "bundle_id": bundle,
        "submitted_at": "2026-01-01T00:00:00Z", "attempts": 1, "http_status": 200, "latency_ms": 1,
    });
    let value = serde_json::to_vec(&ack).unwrap();
    producer(bootstrap)
        .send(
            FutureRecord::<str, [u8]>::to(topic)
                .key(call)
                .payload(&value),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
}

fn notification(submission: &str, bundle: &str) -> Vec<u8> {
    serde_json::to_vec(&Notification {
        schema: NOTIFICATION_SCHEMA.into(),
        submission_id: submission.into(),
        processed_at: None,
        calls: vec![CallIssues {
            bundle_id: Some(bundle.into()),
            call_id: None,
            provider_ods: None,
            issues: vec![Issue {
                severity: "error".into(),
                code: "provider-not-registered".into(),
                location: Some("Bundle.entry[3].resource.identifier[0].value".into()),
                diagnostics: None,
            }],
        }],
    })
    .unwrap()
}

fn mesh_config(
    url: &str,
    workflow: &str,
    errors_topic: &str,
    dir: &std::path::Path,
) -> mesh::MeshConfig {
    let key = shared_key();
    let mut raw = mesh_section(
        url,
        TRUST,
        ("password\n", &key),
        workflow,
        errors_topic,
        dir,
    );
    raw["correlation_wait_s"] = serde_json::json!(20);
    parse_mesh(raw)
}

async fn read_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<serde_json::Value> {
    common::read_topic_async(bootstrap, topic, expected, Duration::from_secs(45))
        .await
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn poller_publishes_correlated_errors_then_acknowledges_in_mesh() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let k = kafka(&["acks", "errors"]);
    let wf = workflow("poller");
    let dir = tempfile::tempdir().unwrap();
    let submission = format!("sub-{}", uuid::Uuid::new_v4());
    write_ack(
        &k.bootstrap(),
        "acks",
        &submission,
        "call-1",
        "bundle-1",
        41,
    )
    .await;
    write_ack(
        &k.bootstrap(),
        "acks",
        &submission,
        "call-2",
        "bundle-2",
        42,
    )
    .await;
    // Chunked, as a large DPS report would be.
    let options = SendOptions {
        workflow_id: wf.clone(),
        chunk_size: Some(100),
        ..SendOptions::default()
    };
    client(&url, DPS)
        .send_message(TRUST, &notification(&submission, "bundle-2"), &options)
        .await
        .unwrap();
    client(&url, DPS)
        .send_message(TRUST, b"DPS,LEGACY,REPORT\n", &options)
        .await
        .unwrap();

    let config = mesh_config(&url, &wf, "errors", dir.path());
    let stop = CancellationToken::new();
    let kafka_client = common::client(&k.bootstrap());
    let mut poller = mesh::start(
        &config,
        kafka_client,
        "ads-connector-test",
        "acks",
        producer(&k.bootstrap()),
        Metrics::new(),
        stop.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = 0;
    while published < 2 && Instant::now() < deadline {
        published += poller.poll_once(&stop).await.unwrap().published;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    assert_eq!(published, 2);
    let records = read_all(&k.bootstrap(), "errors", 2).await;
    let parsed = records.iter().find(|r| r["format"] != "unknown").unwrap();
    assert_eq!(parsed["schema"], DPS_ERROR_SCHEMA);
    assert_eq!(parsed["correlated"], true);
    assert_eq!(parsed["call_id"], "call-2");
    assert_eq!(parsed["sources"][0]["offset"], 42);
    assert_eq!(parsed["issues"][0]["code"], "provider-not-registered");
    let unknown = records.iter().find(|r| r["format"] == "unknown").unwrap();
    assert_eq!(unknown["raw"], "DPS,LEGACY,REPORT\n");
    assert!(client(&url, TRUST)
        .list_inbox(Some(&wf), 10)
        .await
        .unwrap()
        .is_empty());
    drop(k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn a_restarted_poller_loses_nothing_and_correlates_from_the_ack_topic() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    let k = kafka(&["acks", "errors"]);
    let wf = workflow("restart");
    let dir = tempfile::tempdir().unwrap();
    let submission = format!("sub-{}", uuid::Uuid::new_v4());
    write_ack(&k.bootstrap(), "acks", &submission, "call-9", "bundle-9", 9).await;
    let options = SendOptions {
        workflow_id: wf.clone(),
        ..SendOptions::default()
    };
    client(&url, DPS)
        .send_message(TRUST, &notification(&submission, "bundle-9"), &options)
        .await
        .unwrap();
    let config = mesh_config(&url, &wf, "errors", dir.path());

    // First life: the errors topic cannot be written (no broker there), so the poll fails and
    // the message must stay in MESH.
    let stop = CancellationToken::new();
    let correlator = Arc::new(Correlator::new(10));
    correlator.learn(
        &serde_json::to_vec(&serde_json::json!({
        "schema": "ads.ack.v1", "source": {"topic": "cad.calls", "partition": 0, "offset": 9},
        "call_id": "call-9", "api_id": submission, "bundle_id": "bundle-9"}))
        .unwrap(),
    );
    let dead_end = producer("127.0.0.1:9");
    let mut first = DpsPoller::new(
        MeshClient::new(&MeshClientConfig::from_config(&config).unwrap()).unwrap(),
        config.clone(),
        dead_end,
        correlator,
        Metrics::new(),
    );
    let err = first.poll_once(&stop).await.unwrap_err();
    assert_eq!(err.kind(), "produce");
    drop(first);
    assert_eq!(
        client(&url, TRUST)
            .list_inbox(Some(&wf), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Second life: a fresh process (empty map, rebuilt from the ack topic) publishes it.
    let mut second = mesh::start(
        &config,
        common::client(&k.bootstrap()),
        "ads-connector-test",
        "acks",
        producer(&k.bootstrap()),
        Metrics::new(),
        stop.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = 0;
    while published == 0 && Instant::now() < deadline {
        published += second.poll_once(&stop).await.unwrap().published;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let records = read_all(&k.bootstrap(), "errors", 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["correlated"], true);
    assert_eq!(records[0]["call_id"], "call-9");
    assert!(client(&url, TRUST)
        .list_inbox(Some(&wf), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_reader_rebuilds_the_map_from_the_look_back() {
    // Needs no MESH: the correlation half of "correct after a restart".
    let k = kafka(&["acks"]);
    write_ack(&k.bootstrap(), "acks", "S-1", "call-1", "bundle-1", 1).await;
    write_ack(&k.bootstrap(), "acks", "S-2", "call-2", "bundle-2", 2).await;
    let correlator = Arc::new(Correlator::new(100));
    let stop = CancellationToken::new();
    let reader = AckReader {
        client: common::client(&k.bootstrap()),
        topic: "acks".into(),
        lookback: Duration::from_secs(3600),
        correlator: correlator.clone(),
    };
    let task = tokio::spawn(reader.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !correlator.is_caught_up() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(correlator.is_caught_up());
    assert!(correlator.knows("S-1") && correlator.knows("S-2"));
    stop.cancel();
    task.await.unwrap();
}

// ---- the whole loop ----

/// Produces `n` new calls; every `reject_every`-th names an unregistered provider. Returns the
/// registered ODS codes and the rejected call ids.
async fn produce_calls_with_rejections(
    bootstrap: &str,
    topic: &str,
    n: usize,
    reject_every: usize,
) -> (HashSet<String>, HashSet<String>) {
    let mut generator = Generator::new(11);
    let producer = producer(bootstrap);
    let mut registered = HashSet::new();
    let mut rejected = HashSet::new();
    for i in 0..n {
        let mut call = generator.next_call();
        registered.insert(call.provider_ods.to_string());
        registered.insert(call.submitter_ods.to_string());
        if i % reject_every == reject_every - 1 {
            call.provider_ods = "RZZ99".into();
            rejected.insert(call.call_id.to_string());
        }
        let payload = generate::to_json_line(&call);
        producer
            .send(
                FutureRecord::to(topic)
                    .key(call.call_id.as_str())
                    .payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    (registered, rejected)
}

async fn whole_loop(url: String, use_embedded_mesh: bool) {
    let names = common::Names::new("mesh");
    let errors_topic = format!("{}-errors", names.ack);
    let k = kafka(&[&names.cad, &names.ack, &names.dlq, &errors_topic]);
    let api = common::auth_sandbox().await;
    let url = if use_embedded_mesh {
        api.handle.mesh_url().to_string()
    } else {
        url
    };
    let wf = workflow("loop");
    let (registered, rejected) =
        produce_calls_with_rejections(&k.bootstrap(), &names.cad, 40, 8).await;
    let key = if use_embedded_mesh {
        sandbox::mesh_box::SHARED_KEY.as_bytes().to_vec()
    } else {
        shared_key()
    };
    api.handle
        .set_dps(Some(sandbox::DpsConfig {
            registered_ods: registered,
            mesh: mesh_client_config(&url, DPS, "password", &key),
            to_mailbox: TRUST.into(),
            workflow_id: wf.clone(),
            chunk_size: Some(256),
        }))
        .unwrap();
    std::fs::write(api.dir.path().join("mesh-password"), "password").unwrap();
    std::fs::write(api.dir.path().join("mesh-key"), &key).unwrap();
    let extra = format!(
        r#"
        [mesh]
        url = "{url}"
        mailbox = "{TRUST}"
        password_file = "{pw}"
        shared_key_file = "{sk}"
        workflow_ids = ["{wf}"]
        poll_interval_s = 1
        errors_topic = "{errors_topic}"
        correlation_wait_s = 30
        "#,
        pw = api.dir.path().join("mesh-password").display(),
        sk = api.dir.path().join("mesh-key").display(),
    );
    let config = common::connector_config(
        &k.bootstrap(),
        &names,
        &api,
        "max_calls = 10\nlinger_ms = 100",
        &extra,
    );
    let metrics = Metrics::new();
    let (pipeline, cancel) = common::start_pipeline(config, metrics.clone()).await;
    let records = read_all(&k.bootstrap(), &errors_topic, rejected.len()).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();
    let dps = api.handle.dps_stats();
    assert_eq!(dps.calls_rejected as usize, rejected.len());
    assert_eq!(records.len(), rejected.len(), "{dps:?}");
    let published: HashSet<String> = records
        .iter()
        .map(|r| {
            assert_eq!(r["correlated"], true, "{r}");
            assert_eq!(r["provider_ods"], "RZZ99");
            assert!(r["sources"][0]["offset"].is_i64());
            r["call_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(published, rejected);
    assert!(metrics
        .encode()
        .contains("ads_connector_dps_errors_published_total{correlated=\"true\",format=\"parsed\",severity=\"error\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mesh),
    ignore = "needs NHS England's mesh-sandbox: ADS_TEST_MESH_URL (scripts/test.sh starts it)"
)]
async fn a_rejected_call_travels_from_the_connector_through_mesh_sandbox_to_the_errors_topic() {
    let Some(url) = mesh_sandbox_url() else {
        return;
    };
    whole_loop(url, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_loop_runs_on_the_embedded_mesh_emulation() {
    whole_loop(String::new(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_reports_every_injected_rejection_published() {
    let summary = ads_devkit::demo::run(ads_devkit::demo::DemoArgs {
        calls: 400,
        dps_errors: Some(0.05),
        key_bits: 2048,
        quiet: true,
        ..ads_devkit::demo::DemoArgs::default()
    })
    .await
    .unwrap();
    assert_eq!(summary.lost, 0);
    assert!(summary.dps_rejected > 0, "{summary:?}");
    assert_eq!(
        summary.dps_errors_published, summary.dps_rejected,
        "{summary:?}"
    );
    assert_eq!(
        summary.dps_errors_correlated, summary.dps_rejected,
        "{summary:?}"
    );
}
