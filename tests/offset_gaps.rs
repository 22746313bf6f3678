//! Offsets only ever move over offsets the connector has seen (issue 14 item 5, the gap half).
//!
//! A fetched record above the next offset a partition expects (where its assignment started,
//! or one past the last record) leaves a gap. Gaps that hold nothing readable (transaction
//! markers, aborted transactions under `read_committed`) are consumed past; records a broker
//! skipped (Tansu 0.6 resumes inside a producer batch at the next batch: 602 of 200,000 records
//! were once committed without an ack) are read again. On librdkafka's mock cluster (always)
//! and on Tansu (`ADS_TEST_KAFKA_BOOTSTRAP`).

mod common;

use std::time::Duration;

use ads_connector::metrics::Metrics;
use ads_connector::source::gaps::{GapProbe, Probed};
use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const BATCH: &str = "max_calls = 50\nlinger_ms = 20";

/// The value of one series in the Prometheus text of `metrics`.
fn series(metrics: &Metrics, name_and_labels: &str) -> f64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {name_and_labels}"))
}

fn gaps(metrics: &Metrics, outcome: &str) -> f64 {
    series(
        metrics,
        &format!("ads_connector_kafka_offset_gaps_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gap_probe_finds_skipped_records_and_a_start_that_reads_them() {
    let names = Names::new("gap-probe");
    let broker = Broker::mock(1, &names.topics(1));
    let bootstrap = broker.bootstrap();
    produce_calls(&bootstrap, &names.cad, 100, 9, 0).await;
    let mut config = client(&bootstrap);
    config.set("group.id", &names.group);
    let probe = GapProbe::new(config);
    let cad = names.cad.clone();
    let probed = tokio::task::spawn_blocking(move || probe.probe(&cad, 0, 40, 90))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        probed,
        Probed::Skipped {
            next: 40,
            seek_to: 39
        },
        "one record back covers the gap's start on a broker that reads from any offset"
    );
    // The probe commits nothing for the group.
    let (b, group, cad) = (bootstrap.clone(), names.group.clone(), names.cad.clone());
    let committed = tokio::task::spawn_blocking(move || committed(&b, &group, &cad))
        .await
        .unwrap();
    assert_eq!(committed.get(&0).copied(), Some(-1));
}

/// Commits `offset` of partition 0 of `names.cad` for the group, as a previous owner would.
fn commit_group_offset(bootstrap: &str, names: &Names, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&names.cad, 0, Offset::Offset(offset))
        .unwrap();
    let committer: BaseConsumer = client(bootstrap)
        .set("group.id", &names.group)
        .create()
        .unwrap();
    committer.commit(&tpl, CommitMode::Sync).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_cluster_a_group_resuming_inside_a_producer_batch_reads_every_record_after_it()
{
    let names = Names::new("gap-resume-mock");
    resume_inside_a_batch(Broker::mock(1, &names.topics(1)), names, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_a_group_resuming_inside_a_producer_batch_reads_the_records_tansu_skips() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("gap-resume-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(1)).await;
    resume_inside_a_batch(broker, names, true).await;
}

/// 1,000 records in a few producer batches; the group's offset committed at 437, inside one;
/// the connector started: every record from 437 on is acked or dead-lettered, none before, and
/// the offset is committed to the end. `skips`: the broker is known to skip to the next batch
/// (Tansu), so the connector must have read a gap again.
async fn resume_inside_a_batch(broker: Broker, names: Names, skips: bool) {
    const RESUME_AT: i64 = 437;
    let bootstrap = broker.bootstrap();
    let produced = produce_calls(&bootstrap, &names.cad, 1000, 11, 50).await;
    assert!(produced.iter().all(|r| r.partition == 0));
    commit_group_offset(&bootstrap, &names, RESUME_AT);

    let sandbox = auth_sandbox().await;
    let config = connector_config(&bootstrap, &names, &sandbox, BATCH, "");
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(config, metrics.clone()).await;
    let wanted: Vec<Produced> = produced
        .iter()
        .filter(|r| r.offset >= RESUME_AT)
        .cloned()
        .collect();
    let (b, n, w) = (bootstrap.clone(), names.clone(), wanted.clone());
    let (acks, dlq) =
        tokio::task::spawn_blocking(move || read_outcomes(&b, &n, &w, Duration::from_secs(90)))
            .await
            .unwrap();
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_every_record_once(&wanted, &acks, &dlq);
    if skips {
        assert!(gaps(&metrics, "reread") >= 1.0, "Tansu skipped nothing?");
    } else {
        assert_eq!(gaps(&metrics, "reread") + gaps(&metrics, "empty"), 0.0);
    }
    assert_eq!(gaps(&metrics, "unresolved"), 0.0);
    let (group, cad) = (names.group.clone(), names.cad.clone());
    tokio::task::spawn_blocking(move || assert_committed_at_end(&bootstrap, &group, &cad, &wanted))
        .await
        .unwrap();
}
