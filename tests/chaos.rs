//! Chaos: the delivery engine under faults, each test bounded in time. Every test asserts that
//! every record ends as an ack or a dead letter, that duplicates only name the same bundle,
//! that the API never saw an older snapshot of a call after a newer one, and that committed
//! offsets reach the end.

mod common;

use std::time::Duration;

use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use ads_devkit::demo::ordering_violations;
use common::*;
use nhs_emulator::FaultProfile;
use tokio_util::sync::CancellationToken;

const BATCH: &str = "max_calls = 20\nlinger_ms = 50";
const REQUEST: &str = "[nhs_api.request]\nmax_in_flight = 4\ninitial_backoff_ms = 20\nmax_backoff_ms = 500\n[rate_limit]\nrequests_per_minute = 60000\nburst = 50";

struct Stage {
    broker: Broker,
    bootstrap: String,
    names: Names,
    sandbox: AuthSandbox,
}

async fn stage(
    test: &str,
    brokers: i32,
    configure: impl FnOnce(&mut nhs_emulator::SandboxConfig),
) -> Stage {
    let names = Names::new(test);
    let broker = Broker::mock(brokers, &names.topics(4));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox_with(configure).await;
    Stage {
        broker,
        bootstrap,
        names,
        sandbox,
    }
}

impl Stage {
    fn config(&self) -> Config {
        connector_config(&self.bootstrap, &self.names, &self.sandbox, BATCH, REQUEST)
    }

    async fn start(&self) -> (Pipeline, CancellationToken) {
        let (p, cancel) = start_pipeline(self.config(), Metrics::new()).await;
        assert!(p.ready(Duration::from_secs(30)).await, "pipeline not ready");
        (p, cancel)
    }

    async fn outcomes(
        &self,
        produced: &[Produced],
    ) -> (
        Vec<rdkafka::message::OwnedMessage>,
        Vec<rdkafka::message::OwnedMessage>,
    ) {
        let (b, names, produced) = (
            self.bootstrap.clone(),
            self.names.clone(),
            produced.to_vec(),
        );
        tokio::task::spawn_blocking(move || {
            read_outcomes(&b, &names, &produced, Duration::from_secs(90))
        })
        .await
        .unwrap()
    }

    async fn assert_committed_at_end(&self, produced: &[Produced]) {
        let (b, group, cad, produced) = (
            self.bootstrap.clone(),
            self.names.group.clone(),
            self.names.cad.clone(),
            produced.to_vec(),
        );
        tokio::task::spawn_blocking(move || assert_committed_at_end(&b, &group, &cad, &produced))
            .await
            .unwrap();
    }

    fn assert_in_order(&self) {
        let received = self.sandbox.handle.received_calls();
        assert_eq!(
            ordering_violations(&received),
            0,
            "an older snapshot reached the API after a newer one"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_resets_and_429_storms_delay_delivery_but_lose_nothing() {
    let s = stage("flaky", 1, |cfg| {
        cfg.faults = FaultProfile::parse("500=5%,502=3%,503=5%,408=3%,429=5%,reset=5%,latency=5..50ms,retry_after=1s,storm=1s/4s@1s")
            .unwrap();
    })
    .await;
    let (pipeline, cancel) = s.start().await;
    let produced = produce_paced(
        &s.bootstrap,
        &s.names.cad,
        400,
        31,
        60,
        8,
        Duration::from_secs(3),
    )
    .await;
    let (acks, dlq) = s.outcomes(&produced).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();

    let duplicates = assert_every_record_at_least_once(&produced, &acks, &dlq);
    assert_eq!(duplicates, 0, "no crash, so no duplicate");
    s.assert_in_order();
    s.assert_committed_at_end(&produced).await;
    let stats = s.sandbox.handle.stats();
    assert!(
        stats.faults_injected_5xx + stats.faults_reset + stats.faults_injected_429 > 0,
        "faults were injected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_holds_submissions_until_it_recovers() {
    let s = stage("token", 1, |cfg| cfg.token_lifetime_secs = 2).await;
    let (pipeline, cancel) = s.start().await;
    s.sandbox
        .handle
        .set_faults(FaultProfile::parse("token_outage=100%").unwrap());
    // The held token expires during the outage; submissions must wait, not fail.
    let produced = produce_paced(
        &s.bootstrap,
        &s.names.cad,
        200,
        32,
        0,
        4,
        Duration::from_secs(3),
    )
    .await;
    s.sandbox.handle.set_faults(FaultProfile::default());
    let (acks, dlq) = s.outcomes(&produced).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();

    assert_eq!(assert_every_record_at_least_once(&produced, &acks, &dlq), 0);
    assert!(dlq.is_empty(), "an auth outage never dead-letters records");
    s.assert_in_order();
    s.assert_committed_at_end(&produced).await;
    assert!(s.sandbox.handle.stats().token_outage_refusals > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_joining_and_leaving_mid_run_loses_nothing() {
    let s = stage("rebalance", 1, |cfg| {
        cfg.faults = FaultProfile::parse("latency=5..30ms").unwrap();
    })
    .await;
    let (first, cancel_first) = s.start().await;
    let mut source = CallSource::new(33, 80);
    let mut produced = source.produce(&s.bootstrap, &s.names.cad, 200).await;
    let (second, cancel_second) = s.start().await;
    produced.append(&mut source.produce(&s.bootstrap, &s.names.cad, 200).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel_second.cancel();
    second.finish().await.unwrap();
    produced.append(&mut source.produce(&s.bootstrap, &s.names.cad, 200).await);
    let (acks, dlq) = s.outcomes(&produced).await;
    cancel_first.cancel();
    first.finish().await.unwrap();

    let duplicates = assert_every_record_at_least_once(&produced, &acks, &dlq);
    eprintln!("duplicates after two rebalances: {duplicates}");
    // With the revocation drain, nothing is redelivered unless a drain hit its deadline.
    assert_out_of_order_only_if_redelivered(&s.sandbox.handle.received_calls(), &acks);
    s.assert_committed_at_end(&produced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_going_down_and_up_loses_nothing() {
    let s = stage("broker", 3, |_| {}).await;
    let (pipeline, cancel) = s.start().await;
    let mut source = CallSource::new(34, 70);
    let mut produced = source.produce(&s.bootstrap, &s.names.cad, 150).await;
    s.broker.cluster().broker_down(2).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.broker.cluster().broker_up(2).unwrap();
    produced.append(&mut source.produce(&s.bootstrap, &s.names.cad, 150).await);
    let (acks, dlq) = s.outcomes(&produced).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();

    assert_eq!(assert_every_record_at_least_once(&produced, &acks, &dlq), 0);
    s.assert_in_order();
    s.assert_committed_at_end(&produced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_killed_with_sigkill_and_restarted_loses_nothing() {
    let s = stage("sigkill", 1, |cfg| {
        cfg.faults = FaultProfile::parse("latency=10..40ms").unwrap();
    })
    .await;
    let path = write_file(
        s.sandbox.dir.path(),
        "connector.toml",
        &config_toml(&s.bootstrap, &s.names, &s.sandbox, BATCH, REQUEST),
    );

    let mut child = spawn_run(&path, "warn");
    let produced = produce_paced(
        &s.bootstrap,
        &s.names.cad,
        600,
        35,
        90,
        6,
        Duration::from_secs(2),
    )
    .await;
    // Kill it mid-run, without any chance to drain or commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.sandbox.handle.stats().calls_received < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the API"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = s.sandbox.handle.stats().calls_received;

    let mut child = spawn_run(&path, "warn");
    let (acks, dlq) = s.outcomes(&produced).await;
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    let duplicates = assert_every_record_at_least_once(&produced, &acks, &dlq);
    let violations = ordering_violations(&s.sandbox.handle.received_calls());
    eprintln!("killed after {before} calls reached the API; {duplicates} duplicate acks; {violations} ordering violations");
    assert_out_of_order_only_if_redelivered(&s.sandbox.handle.received_calls(), &acks);
    // A resent call is byte-identical to its first sending.
    let mut bodies = std::collections::HashMap::new();
    for call in s.sandbox.handle.received_calls() {
        let key = (call.call_id.clone(), call.timestamp.clone());
        let first = bodies
            .entry(key)
            .or_insert_with(|| call.body_sha256.clone());
        assert_eq!(
            *first, call.body_sha256,
            "a resend of call {} differs",
            call.call_id
        );
    }
    s.assert_committed_at_end(&produced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_pauses_consumption_with_bounded_memory_and_loses_nothing() {
    let s = stage("outage", 1, |cfg| {
        cfg.faults = FaultProfile::parse("503=100%").unwrap();
    })
    .await;
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline(s.config(), metrics.clone()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let produced = produce_calls(&s.bootstrap, &s.names.cad, 6000, 36, 0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Two channels of 1,024 records, the open batch, and four batches of 20 in and out of flight.
    let held = metrics.records_consumed();
    assert!(
        held < 2400,
        "consumed {held} records while the API was down: backpressure failed"
    );
    assert_eq!(s.sandbox.handle.stats().calls_received, 0);

    s.sandbox.handle.set_faults(FaultProfile::default());
    let (acks, dlq) = s.outcomes(&produced).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_eq!(assert_every_record_at_least_once(&produced, &acks, &dlq), 0);
    assert!(
        dlq.is_empty(),
        "an outage never dead-letters without a retry budget"
    );
    s.assert_in_order();
    s.assert_committed_at_end(&produced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_sandbox_quota_a_saturated_connector_never_gets_a_429() {
    // The sandbox counts per application per minute, as the platform does; the connector is
    // configured with the same quota and more work than it allows, one call per request.
    const QUOTA: u32 = 40;
    let s = stage("quota", 1, |cfg| cfg.quota_per_minute = QUOTA).await;
    let config = connector_config(
        &s.bootstrap,
        &s.names,
        &s.sandbox,
        "mode = \"single\"\nlinger_ms = 10",
        &format!("[rate_limit]\nrequests_per_minute = {QUOTA}\nburst = 3"),
    );
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    produce_calls(&s.bootstrap, &s.names.cad, 200, 37, 0).await;
    // Past the first quota window, so the limiter's burst and steady rate both meet the window.
    tokio::time::sleep(Duration::from_secs(65)).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();
    let stats = s.sandbox.handle.stats();
    assert_eq!(
        stats.rejected_429, 0,
        "the connector exceeded the quota it was given"
    );
    assert!(
        stats.submissions_accepted >= u64::from(QUOTA),
        "only {} accepted: the limiter is too strict",
        stats.submissions_accepted
    );
}
