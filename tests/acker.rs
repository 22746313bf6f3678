//! The acker on librdkafka's mock cluster: the acks of later submissions go to the producer
//! while earlier ones still wait for the broker (issue 16: one write at a time made the acker the
//! pipeline's bottleneck), they land in the order the submissions arrived, and a record is marked
//! done only once the broker has its ack.

mod common;

use std::time::{Duration, Instant};

use ads_connector::acker::{Accepted, AckInputs, AckPublisher, AckWork, ACK_WRITES_IN_FLIGHT};
use ads_connector::kafka::OutputTopics;
use ads_connector::metrics::Metrics;
use ads_connector::offsets::Offsets;
use ads_connector::transactions::DurableWriter;
use common::*;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::mpsc;

/// Waits (up to a minute: a deadline for a hang, not a performance limit) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn accepted() -> Accepted {
    Accepted {
        api_id: Some("api-id".into()),
        http_status: 200,
        attempts: 1,
        submitted_at: chrono::Utc::now(),
        latency: Duration::from_millis(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_of_later_submissions_go_out_while_earlier_ones_wait_and_land_in_arrival_order() {
    let names = Names::new("acker");
    let broker = Broker::mock(1, &names.topics(1));
    let bootstrap = broker.bootstrap();
    let producer: FutureProducer = client(&bootstrap).create().unwrap();
    let offsets = Offsets::new();
    offsets.assign(&names.cad, 0);
    let writer = DurableWriter {
        producer: producer.clone(),
        transactions: None,
        offsets: offsets.clone(),
        topics: OutputTopics::new(
            client(&bootstrap),
            vec![("kafka.ack_topic", names.ack.clone())],
        )
        .unwrap(),
    };
    let acker = AckPublisher {
        topic: names.ack.clone(),
        metrics: Metrics::new(),
    };
    let (submissions_tx, submissions) = mpsc::channel(ACK_WRITES_IN_FLIGHT);
    let run = tokio::spawn(acker.run(
        AckInputs {
            submissions,
            superseded: None,
        },
        writer,
    ));

    // The broker stops answering, so no ack can be delivered.
    broker.cluster().broker_down(1).unwrap();
    let n = ACK_WRITES_IN_FLIGHT;
    for offset in 0..n as i64 {
        let mut batch = one_call_batch();
        batch.calls[0].submitted.pos = offsets.register(&names.cad, 0, offset).unwrap();
        let work = AckWork {
            batch,
            accepted: accepted(),
            span: tracing::Span::none(),
        };
        submissions_tx.send(work).await.unwrap();
    }
    // Every submission's ack is with the producer at once; none is done.
    wait_until("every submission's ack to be with the producer", || {
        producer.in_flight_count() == n as i32
    })
    .await;
    assert_eq!(
        offsets.outstanding(),
        n,
        "no record is done before its ack is delivered"
    );

    broker.cluster().broker_up(1).unwrap();
    wait_until("every record to be done", || offsets.outstanding() == 0).await;
    let acks = read_topic(&bootstrap, &names.ack, n, Duration::from_secs(30));
    let order: Vec<i64> = acks.iter().map(|m| ack_source(m).1).collect();
    assert_eq!(
        order,
        (0..n as i64).collect::<Vec<_>>(),
        "acks in arrival order"
    );
    assert_eq!(offsets.watermark(&names.cad, 0), Some(n as i64));

    drop(submissions_tx);
    run.await.unwrap().unwrap();
}
