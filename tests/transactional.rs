//! Transactional mode (`kafka.transactional_id`) end to end: the real pipeline, the sandbox API
//! over real HTTP, acks and dead letters read back with `isolation.level=read_committed`.
//!
//! librdkafka's mock cluster speaks the whole transactional protocol (InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) but keeps none of its effects:
//! it acknowledges TxnOffsetCommit without storing the offsets, writes no commit or abort
//! markers, and serves `read_committed` readers everything up to the high watermark. So on the
//! mock these tests check what it can show: every record ends as exactly one ack or dead letter,
//! transactions commit (the commit counter moves), no offset is ever committed *outside* a
//! transaction (the mock stores only plain OffsetCommits, so the group must have none), a failed
//! transaction stops the pipeline, and a run stopped mid-way stops cleanly. The assertions that
//! need transaction semantics (committed offsets equal the end; after a stop mid-way every
//! `read_committed` ack lies below the committed offset) run against a real Kafka broker when
//! `ADS_TEST_KAFKA_TXN_BOOTSTRAP` names one (Tansu has no transactions), and are skipped
//! otherwise.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ads_connector::app::AppError;
use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use common::*;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// The test configuration in transactional mode, with a transactional id unique to the test
/// and the given drain deadline.
fn transactional_config(
    bootstrap: &str,
    names: &Names,
    sandbox: &AuthSandbox,
    batch: &str,
    extra: &str,
    drain_timeout_s: u64,
) -> Config {
    let text = config_toml(bootstrap, names, sandbox, batch, extra)
        .replace(
            "revoke_drain_timeout_ms = 5000",
            &format!(
                "revoke_drain_timeout_ms = 5000\ntransactional_id = \"{}-txn\"",
                names.group
            ),
        )
        .replace(
            "drain_timeout_s = 8",
            &format!("drain_timeout_s = {drain_timeout_s}"),
        );
    let config = Config::from_toml_str(&text).unwrap();
    assert!(config.kafka.transactional_id.is_some());
    config
}

/// Reads the ack and dead-letter topics with `isolation.level=read_committed` until `enough`
/// says so (given the number of records read) or the timeout passes, then a little longer to
/// catch duplicates.
fn read_committed(
    bootstrap: &str,
    names: &Names,
    enough: impl Fn(usize) -> bool,
    timeout: Duration,
) -> (Vec<OwnedMessage>, Vec<OwnedMessage>) {
    let mut committed_only = client(bootstrap);
    committed_only.set("isolation.level", "read_committed");
    let consumer = reader_from_start(committed_only, &[&names.ack, &names.dlq]);
    let (mut acks, mut dead) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + timeout;
    let mut settle: Option<Instant> = None;
    while Instant::now() < settle.unwrap_or(deadline) {
        if settle.is_none() && enough(acks.len() + dead.len()) {
            settle = Some(Instant::now() + Duration::from_millis(700));
        }
        if let Some(m) = consumer.poll(Duration::from_millis(50)) {
            let m = m.unwrap().detach();
            // The start-up probe's aborted record: a broker with transactions hides it from
            // read_committed readers; the mock cluster applies no transactions and shows it.
            if header(&m, "ads-probe").is_some() {
                continue;
            }
            if m.topic() == names.ack {
                acks.push(m);
            } else {
                dead.push(m);
            }
        }
    }
    (acks, dead)
}

/// `offset_commits_total{outcome="success"}`: in transactional mode, committed transactions
/// that carried offsets.
fn committed_transactions(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find(|l| l.starts_with("ads_connector_offset_commits_total{outcome=\"success\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The source record of every ack and dead letter.
fn outcomes(acks: &[OwnedMessage], dead: &[OwnedMessage]) -> Vec<(i32, i64)> {
    let acked = acks.iter().map(|m| {
        let (p, o, _) = ack_source(m);
        (p, o)
    });
    acked.chain(dead.iter().map(dlq_source)).collect()
}

/// On the mock cluster the group must have no committed offset: it keeps only plain
/// OffsetCommits, which transactional mode never sends (auto-commit, revocation, shutdown).
fn assert_nothing_committed_outside_transactions(bootstrap: &str, names: &Names) {
    let committed = committed(bootstrap, &names.group, &names.cad);
    assert!(
        committed.values().all(|&c| c < 0),
        "offsets committed outside a transaction: {committed:?}"
    );
}

async fn acks_every_record_exactly_once(broker: Broker) {
    let bootstrap = broker.bootstrap();
    let names = Names::new("txn");
    broker.create_topics(&names.topics(3)).await;
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 300, 31, 40).await;

    let config = transactional_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 25\nlinger_ms = 50",
        "",
        8,
    );
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(config, metrics.clone()).await;
    let (b, n, total) = (bootstrap.clone(), names.clone(), produced.len());
    let (acks, dead) = tokio::task::spawn_blocking(move || {
        read_committed(&b, &n, |seen| seen >= total, Duration::from_secs(60))
    })
    .await
    .unwrap();
    cancel.cancel();
    pipeline.finish().await.unwrap();

    assert_every_record_once(&produced, &acks, &dead);
    assert_sandbox_received_every_call(&sandbox.handle, &produced);
    assert!(
        committed_transactions(&metrics) >= 1,
        "no transaction carried offsets"
    );
    match broker {
        Broker::Mock(_) => assert_nothing_committed_outside_transactions(&bootstrap, &names),
        Broker::Real(_) => assert_committed_at_end(&bootstrap, &names.group, &names.cad, &produced),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_mode_acks_every_record_exactly_once_and_commits_only_in_transactions() {
    acks_every_record_exactly_once(Broker::mock(1, &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_txn_broker),
    ignore = "needs a Kafka broker with transactions: ADS_TEST_KAFKA_TXN_BOOTSTRAP (Tansu 0.6 has none)"
)]
async fn transactional_mode_commits_offsets_to_the_end_on_a_broker_with_transactions() {
    let Some(broker) = transactional_broker().map(Broker::Real) else {
        return;
    };
    acks_every_record_exactly_once(broker).await;
}

async fn stopped_mid_way(broker: Broker) {
    let bootstrap = broker.bootstrap();
    let names = Names::new("txn-stop");
    broker.create_topics(&names.topics(3)).await;
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 400, 37, 0).await;

    // Ten calls a submission, two submissions a second: the whole run would take about twenty
    // seconds; the stop comes after a few, and the two-second drain deadline cuts off the rest
    // (records already in the pipeline included).
    let config = transactional_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 20",
        "[rate_limit]\nrequests_per_minute = 120\nburst = 1",
        2,
    );
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(config, metrics.clone()).await;
    let (b, n) = (bootstrap.clone(), names.clone());
    tokio::task::spawn_blocking(move || {
        read_committed(&b, &n, |seen| seen >= 30, Duration::from_secs(60))
    })
    .await
    .unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), pipeline.finish())
        .await
        .expect("the drain is bounded")
        .unwrap();

    let (b, n) = (bootstrap.clone(), names.clone());
    let (acks, dead) = tokio::task::spawn_blocking(move || {
        read_committed(&b, &n, |_| true, Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(dead.is_empty(), "every produced record is valid");
    let mut seen = HashSet::new();
    for key in outcomes(&acks, &dead) {
        assert!(seen.insert(key), "record {key:?} acked twice");
    }
    assert!(
        seen.len() >= 30 && seen.len() < produced.len(),
        "the run was not stopped mid-way: {} of {} acked",
        seen.len(),
        produced.len()
    );
    assert!(committed_transactions(&metrics) >= 1);

    match broker {
        Broker::Mock(_) => assert_nothing_committed_outside_transactions(&bootstrap, &names),
        Broker::Real(_) => {
            // Every ack a read_committed reader sees lies below the committed offset, and
            // every record below it has its ack: acks and offsets moved together.
            let committed: HashMap<i32, i64> = committed(&bootstrap, &names.group, &names.cad);
            for (partition, offset) in &seen {
                let c = committed.get(partition).copied().unwrap_or(-1);
                assert!(
                    *offset < c,
                    "ack of {partition}:{offset} is visible but the committed offset is {c}"
                );
            }
            for r in &produced {
                let c = committed.get(&r.partition).copied().unwrap_or(-1);
                assert_eq!(
                    r.offset < c,
                    seen.contains(&(r.partition, r.offset)),
                    "record {}:{} against committed offset {c}",
                    r.partition,
                    r.offset
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_mid_way_stops_cleanly_and_commits_only_in_transactions() {
    stopped_mid_way(Broker::mock(1, &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_txn_broker),
    ignore = "needs a Kafka broker with transactions: ADS_TEST_KAFKA_TXN_BOOTSTRAP (Tansu 0.6 has none)"
)]
async fn a_run_stopped_mid_way_leaves_no_ack_beyond_the_committed_offset_on_a_broker_with_transactions(
) {
    let Some(broker) = transactional_broker().map(Broker::Real) else {
        return;
    };
    stopped_mid_way(broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_stops_the_pipeline_with_an_error() {
    let broker = Broker::mock(1, &[]);
    let bootstrap = broker.bootstrap();
    let names = Names::new("txn-fail");
    broker.create_topics(&names.topics(3)).await;
    let sandbox = auth_sandbox().await;
    produce_calls(&bootstrap, &names.cad, 50, 41, 0).await;
    // The group coordinator refuses the transaction's offsets: an abortable transaction error.
    let Broker::Mock(cluster) = &broker else {
        unreachable!()
    };
    cluster.request_errors(
        RDKafkaApiKey::TxnOffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
    );

    let config = transactional_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 20",
        "",
        8,
    );
    let metrics = Metrics::new();
    let (pipeline, _cancel) = start_pipeline(config, metrics.clone()).await;
    // Nobody cancels: the failed stage must stop the pipeline by itself.
    let result = tokio::time::timeout(Duration::from_secs(60), pipeline.finish())
        .await
        .expect("a failed transaction stops the pipeline");
    match result {
        Err(AppError::Produce(error)) => {
            assert!(error.to_string().contains("ransaction"), "{error}")
        }
        other => panic!("expected a transaction error, got {other:?}"),
    }
    assert_eq!(committed_transactions(&metrics), 0);
    assert_nothing_committed_outside_transactions(&bootstrap, &names);
}

/// Transactional mode refuses to start, before any POST, on a broker whose transactions do not
/// complete (Tansu 0.6 has no EndTxn): it used to post first and fail at its first commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_a_broker_without_transactions_transactional_mode_refuses_to_start_before_any_post() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("txn-refused");
    create_topics(&bootstrap, &names.topics(1)).await;
    let sandbox = auth_sandbox().await;
    produce_calls(&bootstrap, &names.cad, 20, 3, 0).await;
    let config = transactional_config(&bootstrap, &names, &sandbox, "max_calls = 5", "", 8);
    let started = tokio::time::timeout(
        Duration::from_secs(120),
        ads_connector::app::Pipeline::start(config, Metrics::new(), Default::default()),
    )
    .await
    .expect("the probe gives up within its timeouts");
    match started {
        Err(AppError::TransactionsUnsupported(_)) => {}
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("transactional mode started on a broker without transactions"),
    }
    assert_eq!(
        sandbox.handle.stats().calls_received,
        0,
        "nothing was posted"
    );
}
