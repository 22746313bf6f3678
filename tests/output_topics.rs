//! The output topics (acks, dead letters) must exist, and a write counts only if they still do.
//!
//! Issue 14 item 7: with the ack topic deleted while the connector ran on Tansu 0.6, every ack
//! was acknowledged by the broker (delivery reports with offsets counted from 0 again) and
//! dropped, and the connector committed its offsets to the end without one ack. librdkafka's
//! mock cluster has no DeleteTopics (the admin request times out), so there a deleted topic is
//! its metadata answering `UnknownTopicOrPartition`, while its produce path goes on
//! acknowledging writes exactly as Tansu's does. Now: a missing output topic stops the start,
//! naming it, once it has had `topic.metadata.propagation.max.ms` to appear (librdkafka's
//! own wait before it marks a topic non-existent), so one created moments before the start
//! does not stop it; one that disappears stops the pipeline with an error naming it, and
//! nothing past the last write proven to have landed is committed. On the mock cluster
//! (always) and on Tansu (`ADS_TEST_KAFKA_BOOTSTRAP`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ads_connector::app::{AppError, Pipeline};
use ads_connector::config::Config;
use ads_connector::kafka::ProduceError;
use ads_connector::metrics::Metrics;
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaRespErr;
use tokio_util::sync::CancellationToken;

const BATCH: &str = "max_calls = 20\nlinger_ms = 20";

/// A mock cluster with the input topic and one of the two output topics (`missing` is the
/// other: `names.ack` or `names.dlq`), the sandbox, and a configuration on them that gives a
/// topic the metadata does not list `propagation_ms` to appear.
async fn without_output_topic(
    prefix: &str,
    missing: fn(&Names) -> &str,
    propagation_ms: u64,
) -> (Names, Broker, AuthSandbox, Config) {
    let names = Names::new(prefix);
    let present = [&names.ack, &names.dlq]
        .into_iter()
        .find(|t| t.as_str() != missing(&names))
        .expect("one output topic is present");
    let broker = Broker::mock(1, &[(&names.cad, 1), (present, 1)]);
    let sandbox = auth_sandbox().await;
    let properties =
        format!("[kafka.properties]\n\"topic.metadata.propagation.max.ms\" = \"{propagation_ms}\"");
    let config = connector_config(&broker.bootstrap(), &names, &sandbox, BATCH, &properties);
    (names, broker, sandbox, config)
}

fn ack(names: &Names) -> &str {
    &names.ack
}

fn dead_letters(names: &Names) -> &str {
    &names.dlq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ack_topic_stops_the_start_naming_the_topic_and_its_key() {
    let (names, _broker, _sandbox, config) = without_output_topic("no-ack", ack, 1000).await;
    let asked = Instant::now();
    let started = Pipeline::start(config, Metrics::new(), CancellationToken::new()).await;
    let Err(error) = started else {
        panic!("the pipeline started without its ack topic");
    };
    assert!(
        asked.elapsed() >= Duration::from_millis(1000),
        "stopped after {:?}, before the topic had its propagation time to appear",
        asked.elapsed()
    );
    assert!(
        matches!(&error, AppError::Produce(ProduceError::TopicMissing { topic, key, .. })
            if *topic == names.ack && *key == "kafka.ack_topic"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&names.ack) && text.contains("kafka.ack_topic"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_stops_the_start_naming_it() {
    let (names, _broker, _sandbox, config) = without_output_topic("no-dlq", dead_letters, 0).await;
    let started = Pipeline::start(config, Metrics::new(), CancellationToken::new()).await;
    let Err(error) = started else {
        panic!("the pipeline started without its dead-letter topic");
    };
    assert!(
        error.to_string().contains(&names.dlq)
            && error.to_string().contains("kafka.dead_letter_topic"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_topic_created_moments_after_the_start_is_waited_for_and_every_record_is_acked_to_it(
) {
    let (names, broker, _sandbox, config) = without_output_topic("late-ack", ack, 60_000).await;
    let bootstrap = broker.bootstrap();
    let cancel = CancellationToken::new();
    // The topic appears 1.5 s into the start, as a topic operator's would beside the pod.
    let (started, ()) = tokio::join!(
        Pipeline::start(config, Metrics::new(), cancel.clone()),
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            broker.create_topics(&[(&names.ack, 1)]).await;
        }
    );
    let pipeline = match started {
        Ok(pipeline) => pipeline,
        Err(error) => panic!("the start did not wait for the ack topic: {error}"),
    };
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let produced = CallSource::new(72, 0)
        .produce(&bootstrap, &names.cad, 60)
        .await;
    let (b, n, p) = (bootstrap.clone(), names.clone(), produced.clone());
    let (acks, dlq) =
        tokio::task::spawn_blocking(move || read_outcomes(&b, &n, &p, Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(assert_every_record_at_least_once(&produced, &acks, &dlq), 0);
    cancel.cancel();
    pipeline.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_while_the_start_waits_for_a_missing_output_topic_stops_it_at_once_naming_the_topic(
) {
    // Ten minutes to appear: only the shutdown can end the wait within the test.
    let (names, _broker, _sandbox, config) =
        without_output_topic("no-ack-stop", ack, 600_000).await;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let (started, ()) = tokio::join!(
        tokio::time::timeout(
            Duration::from_secs(120),
            Pipeline::start(config, Metrics::new(), cancel)
        ),
        async {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            stop.cancel();
        }
    );
    let started = started.expect("the start went on waiting for the topic after the shutdown");
    let Err(error) = started else {
        panic!("the pipeline started without its ack topic");
    };
    assert!(
        matches!(&error, AppError::Produce(ProduceError::TopicMissing { topic, .. }) if *topic == names.ack),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_cluster_an_ack_topic_that_disappears_stops_the_pipeline_without_committing_past_it(
) {
    let names = Names::new("gone-mock");
    ack_topic_disappears(Broker::mock(1, &names.topics(2)), names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_an_ack_topic_deleted_while_running_stops_the_pipeline_without_committing_past_it()
{
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("gone-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(2)).await;
    ack_topic_disappears(broker, names).await;
}

/// Deletes `topic`: with the AdminClient on a real broker; on the mock cluster (no
/// DeleteTopics) its metadata answers `UnknownTopicOrPartition` from now on.
async fn delete_topic(broker: &Broker, topic: &str) {
    match broker {
        Broker::Mock(cluster) => cluster
            .topic_error(
                topic,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            )
            .unwrap(),
        Broker::Real(bootstrap) => {
            let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            for result in admin.delete_topics(&[topic], &options).await.unwrap() {
                result.unwrap();
            }
        }
    }
}

/// 200 records acked and committed; the ack topic deleted; 200 more produced: the pipeline
/// stops by itself with an error naming the ack topic, and the committed offsets stay where
/// the first 200 ended.
async fn ack_topic_disappears(broker: Broker, names: Names) {
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let config = connector_config(&bootstrap, &names, &sandbox, BATCH, "");
    let (pipeline, _cancel) = start_pipeline(config, Metrics::new()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let mut calls = CallSource::new(71, 0);
    let first = calls.produce(&bootstrap, &names.cad, 200).await;
    let (b, n, p) = (bootstrap.clone(), names.clone(), first.clone());
    let (acks, dlq) =
        tokio::task::spawn_blocking(move || read_outcomes(&b, &n, &p, Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(assert_every_record_at_least_once(&first, &acks, &dlq), 0);
    let mut end: HashMap<i32, i64> = HashMap::new();
    for r in &first {
        let e = end.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }

    delete_topic(&broker, &names.ack).await;
    let second = calls.produce(&bootstrap, &names.cad, 200).await;
    let stopped = tokio::time::timeout(Duration::from_secs(60), pipeline.finish())
        .await
        .expect("the pipeline kept running with its ack topic gone");
    let error = stopped.expect_err("the pipeline stopped without an error");
    assert!(
        matches!(&error, AppError::Produce(ProduceError::TopicMissing { topic, .. }) if *topic == names.ack),
        "{error}"
    );
    assert!(error.to_string().contains(&names.ack), "{error}");

    let (group, cad) = (names.group.clone(), names.cad.clone());
    let committed = tokio::task::spawn_blocking(move || committed(&bootstrap, &group, &cad))
        .await
        .unwrap();
    for r in &second {
        let c = committed.get(&r.partition).copied().unwrap_or(-1);
        assert!(
            c <= r.offset,
            "partition {}: committed {c}, past record {} produced after the ack topic was deleted",
            r.partition,
            r.offset
        );
    }
    for (partition, end) in end {
        assert_eq!(
            committed.get(&partition).copied(),
            Some(end),
            "partition {partition}"
        );
    }
}
