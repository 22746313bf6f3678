//! Backpressure never depends on not polling: through an API outage longer than librdkafka's
//! `max.poll.interval.ms`, the source pauses its partitions and keeps polling, so the consumer
//! never leaves its group, and everything is delivered once the API is back.
//!
//! On librdkafka's mock cluster, and on Tansu (`ADS_TEST_KAFKA_BOOTSTRAP`). On Tansu 0.6,
//! resuming a paused partition refetches from inside a producer batch and Tansu skips to the
//! next batch (DESIGN §8); the source sees the gap in the offsets and reads the skipped records
//! again (`tests/offset_gaps.rs`), so nothing is lost and no offset moves past them (issue 14).

mod common;

use std::time::Duration;

use ads_connector::metrics::Metrics;
use common::*;
use nhs_emulator::FaultProfile;

const BATCH: &str = "max_calls = 20\nlinger_ms = 50";
const REQUEST: &str = "[nhs_api.request]\nmax_in_flight = 4\ninitial_backoff_ms = 20\nmax_backoff_ms = 500\n[rate_limit]\nrequests_per_minute = 60000\nburst = 50";

/// The value of one series in the Prometheus text of `metrics`.
fn series(metrics: &Metrics, name_and_labels: &str) -> f64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {name_and_labels}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_longer_than_the_poll_interval_never_makes_the_consumer_leave_its_group() {
    let names = Names::new("pause");
    outage(Broker::mock(1, &names.topics(4)), names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_an_api_outage_longer_than_the_poll_interval_loses_nothing() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("pause-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(4)).await;
    outage(broker, names).await;
}

async fn outage(broker: Broker, names: Names) {
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox_with(|cfg| {
        cfg.faults = FaultProfile::parse("503=100%").unwrap();
    })
    .await;
    let mut config = connector_config(&bootstrap, &names, &sandbox, BATCH, REQUEST);
    // librdkafka leaves the group when the application has not polled for this long (and
    // requires it to be at least the session timeout).
    config.kafka.session_timeout = Duration::from_secs(6);
    config.kafka.revoke_drain_timeout = Duration::from_secs(2);
    config.drain_timeout = Duration::from_secs(4);
    config
        .kafka
        .properties
        .insert("max.poll.interval.ms".into(), "6000".into());
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(config, metrics.clone()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let produced = produce_calls(&bootstrap, &names.cad, 6000, 37, 0).await;

    // Three poll intervals of outage with the pipeline full.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(sandbox.handle.stats().calls_received, 0);
    assert_eq!(
        series(&metrics, "ads_connector_source_paused"),
        1.0,
        "the full pipeline paused the partitions"
    );
    assert_eq!(
        series(
            &metrics,
            "ads_connector_kafka_rebalances_total{kind=\"revoke\"}"
        ),
        0.0,
        "the consumer left its group during the outage"
    );

    sandbox.handle.set_faults(FaultProfile::default());
    let (b, n, p) = (bootstrap.clone(), names.clone(), produced.clone());
    let (acks, dlq) =
        tokio::task::spawn_blocking(move || read_outcomes(&b, &n, &p, Duration::from_secs(120)))
            .await
            .unwrap();
    assert_eq!(series(&metrics, "ads_connector_source_paused"), 0.0);
    // Before the shutdown, whose close of the consumer is a revocation of its own.
    assert_eq!(
        series(
            &metrics,
            "ads_connector_kafka_rebalances_total{kind=\"revoke\"}"
        ),
        0.0
    );
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_eq!(assert_every_record_at_least_once(&produced, &acks, &dlq), 0);
    assert!(dlq.is_empty());
    let (group, cad) = (names.group.clone(), names.cad.clone());
    tokio::task::spawn_blocking(move || {
        assert_committed_at_end(&bootstrap, &group, &cad, &produced)
    })
    .await
    .unwrap();
}
