//! Hostile input cannot stop the connector: an oversized record and header keys that are not
//! UTF-8, mixed with good records, through the real pipeline on librdkafka's mock cluster.
//! Every good record is acked, every bad one dead-lettered with its kind, the pipeline never
//! stops, and the offsets are committed to the end.

mod common;

use std::time::{Duration, Instant};

use ads_connector::kafka::headers;
use ads_connector::metrics::Metrics;
use ads_devkit::generate::{to_json_line, Generator};
use common::*;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sha2::Digest;

/// The dead letters of `topic`, read with their headers as bytes (rdkafka's own accessor
/// panics on a key that is not UTF-8).
fn dead_letters(
    bootstrap: &str,
    topic: &str,
    expected: usize,
) -> Vec<(Option<Vec<u8>>, Vec<headers::RawHeader>)> {
    let consumer: BaseConsumer = reader_from_start(client(bootstrap), &[topic]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            out.push((m.payload().map(<[u8]>::to_vec), headers::read(&m)));
        }
    }
    out
}

fn header<'a>(headers: &'a [headers::RawHeader], key: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_and_non_utf8_header_keys_are_dead_lettered_or_acked_without_a_stop() {
    let names = Names::new("hostile");
    hostile_input(Broker::mock(1, &names.topics(1)), names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_an_oversized_record_and_non_utf8_header_keys_cannot_stop_the_connector() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("hostile-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(1)).await;
    hostile_input(broker, names).await;
}

async fn hostile_input(broker: Broker, names: Names) {
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let producer: FutureProducer = client(&bootstrap)
        .set("message.max.bytes", "5000000")
        .create()
        .unwrap();
    let weird = headers::owned([(b"\xff\xfe-key".as_slice(), Some(b"\xc3\x28".as_slice()))]);
    let mut generator = Generator::new(5);
    let good = to_json_line(&generator.next_call());
    let big = vec![b'x'; 1_100_000];
    for (payload, key) in [
        (good.as_bytes(), b"good".as_slice()),
        (big.as_slice(), b"big".as_slice()),
    ] {
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to(&names.cad)
                    .key(key)
                    .payload(payload)
                    .headers(weird.clone()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let more = produce_calls(&bootstrap, &names.cad, 20, 9, 0).await;

    let config = connector_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 50",
        "",
    );
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(config, metrics.clone()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let (b, ack) = (bootstrap.clone(), names.ack.clone());
    let acks =
        tokio::task::spawn_blocking(move || read_topic(&b, &ack, 21, Duration::from_secs(60)))
            .await
            .unwrap();
    let (b, dlq) = (bootstrap.clone(), names.dlq.clone());
    let letters = tokio::task::spawn_blocking(move || dead_letters(&b, &dlq, 1))
        .await
        .unwrap();
    cancel.cancel();
    pipeline.finish().await.unwrap();

    assert_eq!(
        acks.len(),
        21,
        "the good record with odd headers and 20 more are acked"
    );
    assert_eq!(letters.len(), 1);
    let (value, hs) = &letters[0];
    assert!(
        value.is_none(),
        "an oversized record is dead-lettered without its value"
    );
    assert_eq!(
        header(hs, b"ads-error-kind"),
        Some(b"record_too_large".as_slice())
    );
    assert_eq!(header(hs, b"ads-record-size"), Some(b"1100011".as_slice()));
    let sha: String = sha2::Sha256::digest(&big)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header(hs, b"ads-record-sha256"), Some(sha.as_bytes()));
    assert_eq!(
        header(hs, b"\xff\xfe-key"),
        Some(b"\xc3\x28".as_slice()),
        "the original header kept byte for byte"
    );
    let (b, group, cad) = (bootstrap.clone(), names.group.clone(), names.cad.clone());
    let committed = tokio::task::spawn_blocking(move || committed(&b, &group, &cad))
        .await
        .unwrap();
    assert_eq!(committed.get(&0).copied(), Some(more.len() as i64 + 2));
}
