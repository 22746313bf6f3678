//! End to end on secured Kafka (`scripts/tansu-secure.sh`): the pipeline consumes from and
//! produces acks and dead letters to a broker over TLS with SASL SCRAM-SHA-512, and to one over
//! mutual TLS; refused credentials and certificates stop the `ads-connector run` binary at
//! start-up with an error that names the fault and never the password.
//!
//! The brokers are Tansu 0.6.0 (SASL: its own; TLS: `scripts/tls-front.py` in front, since
//! Tansu does not serve TLS). Needs `ADS_TEST_KAFKA_SECURE_BOOTSTRAP` and
//! `ADS_TEST_KAFKA_MTLS_BOOTSTRAP`; a build without them reports these tests as ignored
//! (skipped), never as passed (`build.rs`).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use common::*;

/// Runs the pipeline on `broker` over 120 calls (every 15th invalid) and checks that each one
/// ends as exactly one ack or dead letter, the API received every valid one, and the group's
/// offsets reached the end.
async fn every_record_is_acked_or_dead_lettered_on(broker: &SecuredBroker, test: &str) {
    let names = Names::new(test);
    let bootstrap = broker.bootstrap.clone();
    create_topics(&bootstrap, &names.topics(2)).await;
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 120, 31, 15).await;

    let toml = secured_config_toml(
        broker,
        &names,
        &sandbox,
        "max_calls = 40\nlinger_ms = 100",
        "",
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let valid = produced.iter().filter(|r| r.valid).count();
    let (acks, dead) = read_acks_and_dead_letters(
        &bootstrap,
        &names,
        valid,
        produced.len() - valid,
        Duration::from_secs(60),
    )
    .await;
    cancel.cancel();
    pipeline.finish().await.unwrap();

    assert!(!dead.is_empty(), "the invalid records were dead-lettered");
    assert_every_record_once(&produced, &acks, &dead);
    assert_sandbox_received_every_call(&sandbox.handle, &produced);
    let (group, cad) = (names.group.clone(), names.cad.clone());
    tokio::task::spawn_blocking(move || {
        assert_committed_at_end(&bootstrap, &group, &cad, &produced)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_secure_broker),
    ignore = "needs a SASL_SSL broker: ADS_TEST_KAFKA_SECURE_BOOTSTRAP (scripts/test.sh)"
)]
async fn the_connector_consumes_and_produces_acks_and_dead_letters_over_sasl_ssl() {
    let Some(broker) = secure_broker() else {
        return;
    };
    every_record_is_acked_or_dead_lettered_on(&broker, "sasl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_mtls_broker),
    ignore = "needs a mutual-TLS broker: ADS_TEST_KAFKA_MTLS_BOOTSTRAP (scripts/test.sh)"
)]
async fn the_connector_consumes_and_produces_acks_and_dead_letters_over_mutual_tls() {
    let Some(broker) = mtls_broker() else {
        return;
    };
    every_record_is_acked_or_dead_lettered_on(&broker, "mtls").await;
}

/// Runs `ads-connector run` on `broker` (topics that exist) and waits for it to exit; its
/// exit status and everything it wrote. Panics if it is still running after 40 s.
fn run_until_it_stops(broker: &SecuredBroker, test: &str) -> (std::process::ExitStatus, String) {
    let names = Names::new(test);
    // An NHS API configuration that is never reached: the connector stops before it.
    let nhs_api = "environment = \"sandbox\"";
    let toml = secured_connector_toml(broker, &names, nhs_api, "", "");
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "connector.toml", &toml);
    let mut child = connector_command()
        .args(["run", "--config"])
        .arg(&config)
        .env("ADS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the connector kept running on refused Kafka security");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status, out)
}

/// The last line the binary wrote to standard error: its closing `error: …`.
fn closing_error(output: &str) -> &str {
    output
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no closing error in:\n{output}"))
}

#[test]
#[cfg_attr(
    not(ads_test_secure_broker),
    ignore = "needs a SASL_SSL broker: ADS_TEST_KAFKA_SECURE_BOOTSTRAP (scripts/test.sh)"
)]
fn a_wrong_sasl_password_stops_the_connector_at_start_up_without_showing_the_password() {
    let Some(mut broker) = secure_broker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong = "wrong-password-6f1d0c";
    let (user, _) = broker.sasl.clone().unwrap();
    broker.sasl = Some((user, write_file(dir.path(), "password", wrong)));

    let (status, output) = run_until_it_stops(&broker, "wrongpw");

    assert!(!status.success(), "{output}");
    let error = closing_error(&output);
    assert!(error.contains("Kafka refused"), "{error}");
    assert!(
        error.contains("SASL") || error.contains("uthentication"),
        "{error}"
    );
    assert!(!output.contains(wrong), "the password leaked:\n{output}");
    let right = std::fs::read_to_string(secure_dir().join("password")).unwrap();
    assert!(!output.contains(right.trim()));
}

#[test]
#[cfg_attr(
    not(ads_test_secure_broker),
    ignore = "needs a SASL_SSL broker: ADS_TEST_KAFKA_SECURE_BOOTSTRAP (scripts/test.sh)"
)]
fn a_broker_certificate_from_an_untrusted_ca_stops_the_connector_at_start_up() {
    let Some(mut broker) = secure_broker() else {
        return;
    };
    broker.ca = secure_dir().join("untrusted-ca.pem");

    let (status, output) = run_until_it_stops(&broker, "untrusted");

    assert!(!status.success(), "{output}");
    let error = closing_error(&output);
    assert!(error.contains("Kafka refused"), "{error}");
    assert!(error.contains("certificate verify failed"), "{error}");
}

#[test]
#[cfg_attr(
    not(ads_test_mtls_broker),
    ignore = "needs a mutual-TLS broker: ADS_TEST_KAFKA_MTLS_BOOTSTRAP (scripts/test.sh)"
)]
fn a_mutual_tls_broker_refuses_a_connector_without_a_client_certificate_at_start_up() {
    let Some(mut broker) = mtls_broker() else {
        return;
    };
    broker.client_cert = None;

    let (status, output) = run_until_it_stops(&broker, "nocert");

    assert!(!status.success(), "{output}");
    let error = closing_error(&output);
    assert!(error.contains("Kafka refused"), "{error}");
    assert!(error.contains("SSL"), "{error}");
}

#[test]
#[cfg_attr(
    not(ads_test_secure_broker),
    ignore = "needs a SASL_SSL broker: ADS_TEST_KAFKA_SECURE_BOOTSTRAP (scripts/test.sh)"
)]
fn check_config_accepts_the_secured_kafka_keys_and_names_no_password() {
    let Some(broker) = secure_broker() else {
        return;
    };
    let names = Names::new("check");
    let toml = secured_connector_toml(&broker, &names, "environment = \"sandbox\"", "", "");
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "connector.toml", &toml);
    let out = Command::new(env!("CARGO_BIN_EXE_ads-connector"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let password = std::fs::read_to_string(secure_dir().join("password")).unwrap();
    assert!(!text.contains(password.trim()), "{text}");
}
