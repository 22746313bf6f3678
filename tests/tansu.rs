//! End to end on a real Kafka-compatible broker (Tansu, started by `scripts/test.sh`): the
//! `ads-connector run` binary as a user runs it, stopped with SIGTERM.
//!
//! Needs `ADS_TEST_KAFKA_BOOTSTRAP`; a build without it reports the test as ignored (skipped),
//! never as passed (`build.rs`).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn the_run_binary_acks_every_record_on_tansu_and_drains_on_sigterm() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("tansu");
    create_topics(&bootstrap, &names.topics(3)).await;
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 300, 23, 40).await;

    let config = config_toml(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 40\nlinger_ms = 100",
        "",
    );
    let config_path = write_file(sandbox.dir.path(), "connector.toml", &config);
    let mut child = spawn_run(&config_path, "info");

    let valid = produced.iter().filter(|r| r.valid).count();
    let invalid = produced.len() - valid;
    let (acks, dead) =
        read_acks_and_dead_letters(&bootstrap, &names, valid, invalid, Duration::from_secs(90))
            .await;

    // SIGTERM: the connector drains, commits and exits 0.
    let killed = sigterm(&child);
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the connector did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");

    assert_every_record_once(&produced, &acks, &dead);
    assert_sandbox_received_every_call(&sandbox.handle, &produced);
    let b = bootstrap.clone();
    let (group, cad) = (names.group.clone(), names.cad.clone());
    tokio::task::spawn_blocking(move || assert_committed_at_end(&b, &group, &cad, &produced))
        .await
        .unwrap();
}
