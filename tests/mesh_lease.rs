//! One MESH poller across replicas (`crates/connector/src/mesh/lease.rs`): two connectors with `[mesh]` on the
//! same mailbox and group, with the crate's built-in MESH mailbox served over HTTP, on
//! librdkafka's mock cluster and on a real broker (Tansu, from `scripts/test.sh`; reported as ignored,
//! never passed, by a build without `ADS_TEST_KAFKA_BOOTSTRAP`). Proves that exactly one polls at a time, that stopping it hands the lease to
//! the other, and that every notification reaches the errors topic exactly once across the
//! handover (no duplicate, no loss).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ads_connector::mesh::{self, Lease, MeshClient};
use ads_connector::metrics::Metrics;
use common::{mesh_client_config, mesh_section, parse_mesh, Broker, Names};
use nhs_emulator::mesh_box;
use nhs_emulator::mesh_send::{MeshSend, SendOptions};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

const TRUST: &str = "X26ABC2";
const DPS: &str = "X26ABC1";
const WORKFLOW: &str = "ADS_DPS_ERRORS";

async fn serve_mesh() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, mesh_box::routes()).await });
    url
}

fn mailbox(url: &str, id: &str) -> MeshClient {
    let key = mesh_box::SHARED_KEY.as_bytes();
    MeshClient::new(&mesh_client_config(url, id, mesh_box::PASSWORD, key)).unwrap()
}

async fn send(url: &str, from: usize, to: usize) {
    let options = SendOptions {
        workflow_id: WORKFLOW.into(),
        ..SendOptions::default()
    };
    let client = mailbox(url, DPS);
    for i in from..to {
        client
            .send_message(
                TRUST,
                format!("DPS,LEGACY,REPORT,{i}\n").as_bytes(),
                &options,
            )
            .await
            .unwrap();
    }
}

struct Replica {
    lease: Lease,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn replica(config: &mesh::MeshConfig, bootstrap: &str, names: &Names) -> Replica {
    let stop = CancellationToken::new();
    let producer: FutureProducer = common::client(bootstrap).create().unwrap();
    let poller = mesh::start(
        config,
        common::client(bootstrap),
        &names.group,
        &names.ack,
        producer,
        Metrics::new(),
        stop.clone(),
    )
    .unwrap();
    let lease = poller.lease();
    let task = tokio::spawn(poller.run(stop.clone()));
    Replica { lease, stop, task }
}

/// Distinct MESH message ids on the errors topic, and how many records there are.
fn published(bootstrap: &str, topic: &str, expected: usize) -> (HashSet<String>, usize) {
    let records = common::read_topic(bootstrap, topic, expected, Duration::from_secs(60));
    let ids = records
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            v["mesh"]["message_id"].as_str().unwrap().to_owned()
        })
        .collect();
    (ids, records.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_publish_every_notification_once_while_the_lease_moves_between_them() {
    let names = Names::new("lease");
    let broker = Broker::mock(1, &[(&names.ack, 1), (&names.dlq, 3)]);
    handover(&broker.bootstrap(), &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_a_real_broker_the_lease_moves_without_a_duplicate_or_a_loss() {
    let Some(bootstrap) = common::real_broker() else {
        return;
    };
    let names = Names::new("lease");
    common::create_topics(&bootstrap, &[(&names.ack, 1), (&names.dlq, 3)]).await;
    handover(&bootstrap, &names).await;
}

/// The scenario on `bootstrap`: `names.dlq` serves as the errors topic.
async fn handover(bootstrap: &str, names: &Names) {
    let errors = names.dlq.as_str();
    let url = serve_mesh().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = (mesh_box::PASSWORD, mesh_box::SHARED_KEY.as_bytes());
    let section = mesh_section(&url, TRUST, secrets, WORKFLOW, errors, dir.path());
    let config = parse_mesh(section);

    send(&url, 0, 20).await;
    let a = replica(&config, bootstrap, names);
    let b = replica(&config, bootstrap, names);

    // Watch the two leases: never held by both at once; remember who held it at all.
    let (both, done) = (Arc::new(AtomicBool::new(false)), CancellationToken::new());
    let watcher = {
        let (la, lb, both, done) = (a.lease.clone(), b.lease.clone(), both.clone(), done.clone());
        tokio::spawn(async move {
            let (mut a_held, mut b_held) = (false, false);
            while !done.is_cancelled() {
                let (ha, hb) = (la.is_held(), lb.is_held());
                if ha && hb {
                    both.store(true, Ordering::SeqCst);
                }
                a_held |= ha;
                b_held |= hb;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (a_held, b_held)
        })
    };

    let (ids, records) = published(bootstrap, errors, 20);
    assert_eq!((ids.len(), records), (20, 20), "first 20 published once");

    // Stop whichever holds the lease; the other must take over and publish the next 20.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.lease.is_held() && !b.lease.is_held() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (holder, standby) = if a.lease.is_held() { (a, b) } else { (b, a) };
    send(&url, 20, 40).await;
    holder.stop.cancel();
    holder.task.await.unwrap();
    let handover = Instant::now();
    let (ids, records) = published(bootstrap, errors, 40);
    eprintln!("handover and 20 more published in {:?}", handover.elapsed());
    done.cancel();
    let (a_held, b_held) = watcher.await.unwrap();
    standby.stop.cancel();
    standby.task.await.unwrap();

    assert_eq!(ids.len(), 40, "every notification published");
    assert_eq!(records, 40, "none published twice");
    assert!(a_held && b_held, "the lease moved: a {a_held}, b {b_held}");
    assert!(
        !both.load(Ordering::SeqCst),
        "both replicas held the lease at once"
    );
    assert_eq!(
        mailbox(&url, TRUST).count().await.unwrap(),
        0,
        "every message acknowledged"
    );
}
