//! End to end on librdkafka's mock cluster: the real pipeline, the sandbox API over real HTTP
//! with signed-JWT authentication, acks and dead letters read back from their topics.

mod common;

use std::time::Duration;

use ads_connector::metrics::Metrics;
use common::*;

async fn run_pipeline_until_done(
    bootstrap: &str,
    names: &Names,
    sandbox: &AuthSandbox,
    produced: &[Produced],
    batch: &str,
    extra: &str,
) -> (
    Vec<rdkafka::message::OwnedMessage>,
    Vec<rdkafka::message::OwnedMessage>,
) {
    let config = connector_config(bootstrap, names, sandbox, batch, extra);
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let valid = produced.iter().filter(|r| r.valid).count();
    let invalid = produced.len() - valid;
    let (acks, dead) =
        read_acks_and_dead_letters(bootstrap, names, valid, invalid, Duration::from_secs(60)).await;
    cancel.cancel();
    pipeline.finish().await.unwrap();
    (acks, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_ends_as_exactly_one_ack_or_dead_letter_and_offsets_reach_the_end() {
    let names = Names::new("mock");
    let broker = Broker::mock(1, &names.topics(3));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 400, 11, 50).await;

    let (acks, dead) = run_pipeline_until_done(
        &bootstrap,
        &names,
        &sandbox,
        &produced,
        "max_calls = 50\nlinger_ms = 100",
        "",
    )
    .await;

    assert_every_record_once(&produced, &acks, &dead);
    assert_sandbox_received_every_call(&sandbox.handle, &produced);
    for letter in &dead {
        let problems: serde_json::Value =
            serde_json::from_str(header(letter, "ads-error-problems").unwrap()).unwrap();
        let first = &problems[0];
        assert!(
            first["rule"].is_string() && first["path"].is_string(),
            "{problems}"
        );
    }
    assert_committed_at_end(&bootstrap, &names.group, &names.cad, &produced);
    let stats = sandbox.handle.stats();
    assert!(stats.tokens_issued >= 1);
    assert!(stats.submissions_accepted >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_mode_posts_one_call_per_request() {
    let names = Names::new("single");
    let broker = Broker::mock(1, &names.topics(1));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    // No updates collide inside a batch in single mode, so every valid record is one request.
    let produced = produce_calls(&bootstrap, &names.cad, 30, 5, 0).await;

    let (acks, dead) = run_pipeline_until_done(
        &bootstrap,
        &names,
        &sandbox,
        &produced,
        "mode = \"single\"\nlinger_ms = 50",
        "[rate_limit]\nrequests_per_minute = 60000\nburst = 100",
    )
    .await;
    assert_every_record_once(&produced, &acks, &dead);
    assert!(dead.is_empty());
    let batches: std::collections::HashSet<String> = acks
        .iter()
        .map(|m| ack_source(m).2["batch_id"].as_str().unwrap().to_string())
        .collect();
    let submitted = acks
        .iter()
        .filter(|m| ack_source(m).2["outcome"] == "submitted")
        .count();
    assert_eq!(
        batches.len(),
        submitted,
        "one submission per submitted call"
    );
    assert_eq!(
        sandbox.handle.stats().submissions_accepted as usize,
        submitted
    );
}
