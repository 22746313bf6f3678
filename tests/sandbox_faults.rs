//! Black-box tests of the sandbox's fault injection over real HTTP on 127.0.0.1:0, as a reqwest
//! client sees it: injected statuses with their bodies, latency, connection resets (a connection
//! error, not a status), 429 storms, token endpoint outages; the counters of each; that faulted
//! requests are never recorded; that faults come after the token and quota checks; switching
//! profiles at runtime; reproducibility with a seed; the spec grammar; and the CLI `--faults`
//! flag. Latency is only ever asserted as a lower bound.

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant};

use ads_connector::keygen::KeyPair;
use common::{
    assertion_claims, connector_command, jwt_header, post_form, process_message_url, shared_key,
    sign, spawn_sandbox, token_form, write_jwks,
};
use nhs_emulator::{
    FaultProfile, FaultWindow, LatencyRange, SandboxApp, SandboxConfig, SandboxHandle,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const API_KEY: &str = "fault-test-app";
/// Upper bound for polling loops, so a broken sandbox fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn key() -> &'static KeyPair {
    shared_key("fault-key")
}

fn spec(text: &str) -> FaultProfile {
    FaultProfile::parse(text).unwrap_or_else(|e| panic!("spec `{text}`: {e}"))
}

struct Sandbox {
    handle: SandboxHandle,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A sandbox with one app ([`API_KEY`], JWKS holding [`key`]), no quota, and `faults`.
async fn spawn(faults: &str, configure: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    write_jwks(&jwks, &[key()]);
    let apps = vec![SandboxApp::parse(&format!("{API_KEY}={}", jwks.display())).unwrap()];
    let handle = spawn_sandbox(apps, |cfg| {
        cfg.quota_per_minute = 0;
        cfg.token_quota_per_minute = 0;
        cfg.faults = spec(faults);
        configure(cfg);
    })
    .await;
    Sandbox {
        handle,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// An open-access sandbox (no token needed on `$process-message`) with `faults`.
async fn open(faults: &str) -> Sandbox {
    spawn(faults, |cfg| cfg.open_access = true).await
}

fn call_bundle(call_id: &str) -> String {
    json!({
        "resourceType": "Bundle", "id": format!("bundle-{call_id}"), "type": "collection",
        "entry": [{"resource": {"resourceType": "Communication",
                                "identifier": [{"system": "s", "value": call_id}]}}]
    })
    .to_string()
}

impl Sandbox {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.local_addr())
    }

    /// POSTs a call bundle to `$process-message` (no token; use with open access).
    async fn try_submit(&self, call_id: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(process_message_url(&self.handle))
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(call_bundle(call_id))
            .send()
            .await
    }

    async fn submit(&self, call_id: &str) -> reqwest::Response {
        self.try_submit(call_id).await.expect("an HTTP response")
    }

    /// A valid client assertion for [`API_KEY`] with a fresh `jti`.
    fn assertion(&self) -> String {
        let claims = assertion_claims(API_KEY, self.handle.token_url().as_str());
        sign(&jwt_header("fault-key"), &claims, key())
    }

    async fn try_request_token(&self, assertion: &str) -> reqwest::Result<reqwest::Response> {
        post_form(&self.http, self.handle.token_url(), &token_form(assertion)).await
    }

    async fn request_token(&self, assertion: &str) -> reqwest::Response {
        self.try_request_token(assertion)
            .await
            .expect("an HTTP response")
    }
}

/// The error and all its sources, for assertion messages.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" <- ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Asserts `result` is a transport error (no HTTP status at all) caused by a TCP reset, and
/// returns its description.
fn assert_connection_error(result: reqwest::Result<reqwest::Response>) -> String {
    let error = match result {
        Ok(response) => panic!(
            "expected a connection error, got HTTP {}",
            response.status()
        ),
        Err(error) => error,
    };
    let text = chain(&error);
    assert!(error.status().is_none(), "{text}");
    assert!(!error.is_timeout(), "{text}");
    assert!(error.is_request() || error.is_connect(), "{text}");
    let mut source = error.source();
    let mut reset = false;
    while let Some(cause) = source {
        let kind = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
        reset |= kind == Some(std::io::ErrorKind::ConnectionReset);
        source = cause.source();
    }
    assert!(reset, "expected `connection reset by peer` in: {text}");
    text
}

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// $process-message: statuses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_injected_503_reaches_the_client_with_apigees_body_and_is_counted_but_not_recorded() {
    let sandbox = open("503=1").await;
    let response = sandbox.submit("C1").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(response).await;
    assert_eq!(
        body["fault"]["detail"]["errorcode"],
        "messaging.adaptors.http.flow.ServiceUnavailable"
    );
    let stats = sandbox.handle.stats();
    assert_eq!(stats.faults_injected_5xx, 1);
    assert_eq!(stats.submissions_accepted, 0);
    assert_eq!(stats.calls_received, 0);
    assert!(sandbox.handle.received_calls().is_empty());
}

#[tokio::test]
async fn every_configured_status_is_injected_and_counted_by_class() {
    let sandbox = open("none").await;
    for status in [500u16, 502, 504, 408, 400, 599] {
        sandbox.handle.set_faults(spec(&format!("{status}=1")));
        let response = sandbox.submit("C").await;
        assert_eq!(response.status().as_u16(), status);
        let text = response.text().await.unwrap();
        if status == 500 {
            assert_eq!(text, "", "the proxy's 500 has no body");
        } else {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert!(body.is_object(), "{text}");
        }
    }
    let stats = sandbox.handle.stats();
    assert_eq!(stats.faults_injected_5xx, 4);
    assert_eq!(stats.faults_injected_4xx, 2);
    assert_eq!(stats.submissions_accepted, 0);
    assert!(sandbox.handle.received_calls().is_empty());
}

#[tokio::test]
async fn an_injected_429_carries_the_configured_retry_after_and_is_not_a_quota_rejection() {
    let sandbox = open("429=1,retry_after=7s").await;
    let response = sandbox.submit("C").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    let body = json_body(response).await;
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("spike in traffic"), "{body}");
    let stats = sandbox.handle.stats();
    assert_eq!(stats.faults_injected_429, 1);
    assert_eq!(stats.rejected_429, 0);
    assert_eq!(stats.submissions_accepted, 0);
}

// ---------------------------------------------------------------------------------------------
// $process-message: where faults apply
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn faults_come_after_the_token_check() {
    let sandbox = spawn("500=1,reset=0", |_| {}).await;
    let url = format!("{}/$process-message", sandbox.handle.api_base_url());
    let missing = sandbox.http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let unknown = sandbox
        .http
        .post(&url)
        .bearer_auth("no-such-token")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    let stats = sandbox.handle.stats();
    assert_eq!((stats.rejected_401, stats.rejected_403), (1, 1));
    assert_eq!(stats.faults_injected_5xx, 0);
}

#[tokio::test]
async fn faults_come_after_the_quota_check_and_faulted_requests_use_the_quota() {
    let sandbox = spawn("500=1", |cfg| {
        cfg.open_access = true;
        cfg.quota_per_minute = 1;
    })
    .await;
    assert_eq!(
        sandbox.submit("C").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let refused = sandbox.submit("C").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(json_body(refused).await["error"]
        .as_str()
        .unwrap()
        .contains("has exceeded its quota of 1 requests"));
    let stats = sandbox.handle.stats();
    assert_eq!((stats.faults_injected_5xx, stats.rejected_429), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// $process-message: resets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_reset_is_a_connection_error_for_the_client_not_an_http_status() {
    let sandbox = open("reset=1").await;
    let error = assert_connection_error(sandbox.try_submit("C1").await);
    let stats = sandbox.handle.stats();
    assert_eq!(
        stats.faults_reset, 1,
        "exactly one reset, so the client did not retry behind our back: {error}"
    );
    assert_eq!(stats.submissions_accepted, 0);
    assert!(sandbox.handle.received_calls().is_empty());

    // The same client recovers on a new connection once resets stop.
    sandbox.handle.set_faults(FaultProfile::default());
    assert_eq!(sandbox.submit("C2").await.status(), StatusCode::OK);
    let calls = sandbox.handle.received_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, "C2");
}

#[tokio::test]
async fn a_reset_on_a_reused_keep_alive_connection_is_also_a_connection_error() {
    let sandbox = open("none").await;
    // Warm the pool so the next request goes over an idle keep-alive connection.
    assert_eq!(sandbox.submit("C1").await.status(), StatusCode::OK);
    sandbox.handle.set_faults(spec("reset=1"));
    assert_connection_error(sandbox.try_submit("C2").await);
    assert_eq!(sandbox.handle.stats().faults_reset, 1);
    let ids: Vec<_> = sandbox
        .handle
        .received_calls()
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["C1"]);
}

// ---------------------------------------------------------------------------------------------
// $process-message: latency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn latency_delays_every_response_by_at_least_its_minimum() {
    let sandbox = open("latency=150..250ms").await;
    for i in 0..3 {
        let started = Instant::now();
        let response = sandbox.submit(&format!("C{i}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
    sandbox.handle.set_faults(spec("503=1,latency=100ms"));
    let started = Instant::now();
    assert_eq!(
        sandbox.submit("C").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "faulted responses are delayed too"
    );
    let stats = sandbox.handle.stats();
    assert_eq!(stats.faults_delayed, 4);
    assert_eq!(stats.submissions_accepted, 3);
}

#[tokio::test]
async fn a_submission_is_recorded_before_its_delay_so_a_client_that_gives_up_still_delivered_it() {
    let sandbox = open("latency=20s").await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let result = impatient
        .post(format!(
            "{}/$process-message",
            sandbox.handle.api_base_url()
        ))
        .body(call_bundle("SLOW"))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    let deadline = Instant::now() + PATIENCE;
    while sandbox.handle.received_calls().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = sandbox.handle.received_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, "SLOW");
}

// ---------------------------------------------------------------------------------------------
// $process-message: 429 storms
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_storm_answers_429_with_its_retry_after_for_its_window_then_stops() {
    let sandbox = open("none").await;
    let switched = Instant::now();
    sandbox.handle.set_faults(spec("storm=3s,retry_after=3s"));
    let first = sandbox.submit("C").await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()[header::RETRY_AFTER], "3");
    assert!(json_body(first).await["error"]
        .as_str()
        .unwrap()
        .contains("high volume of requests"));
    let deadline = Instant::now() + PATIENCE;
    let mut refused = 1;
    loop {
        let status = sandbox.submit("C").await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        refused += 1;
        assert!(Instant::now() < deadline, "the storm never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched.elapsed() >= Duration::from_secs(3));
    let stats = sandbox.handle.stats();
    assert_eq!(stats.faults_storm_429, refused);
    assert_eq!(stats.rejected_429, 0);
    assert_eq!(stats.submissions_accepted, 1);
    assert_eq!(sandbox.handle.received_calls().len(), 1);
}

#[tokio::test]
async fn storm_refusals_do_not_use_the_app_quota() {
    let sandbox = spawn("storm=60m", |cfg| {
        cfg.open_access = true;
        cfg.quota_per_minute = 2;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            sandbox.submit("C").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    sandbox.handle.set_faults(FaultProfile::default());
    assert_eq!(sandbox.submit("C").await.status(), StatusCode::OK);
    assert_eq!(sandbox.submit("C").await.status(), StatusCode::OK);
    assert_eq!(
        sandbox.submit("C").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let stats = sandbox.handle.stats();
    assert_eq!((stats.faults_storm_429, stats.rejected_429), (5, 1));
}

// ---------------------------------------------------------------------------------------------
// /oauth2/token outages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_outage_refuses_with_503_without_using_the_jti_or_counting_as_a_token_error() {
    let sandbox = spawn("token_outage=1", |_| {}).await;
    let assertion = sandbox.assertion();
    let refused = sandbox.request_token(&assertion).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(refused).await;
    assert_eq!(
        body["fault"]["faultstring"],
        "The Service is temporarily unavailable"
    );
    let stats = sandbox.handle.stats();
    assert_eq!(stats.token_outage_refusals, 1);
    assert_eq!((stats.token_errors, stats.tokens_issued), (0, 0));

    // When the outage is over, the very same assertion gets a token: its jti was not used.
    sandbox.handle.set_faults(FaultProfile::default());
    let granted = sandbox.request_token(&assertion).await;
    assert_eq!(granted.status(), StatusCode::OK);
    assert!(json_body(granted).await["access_token"].is_string());
    assert_eq!(sandbox.handle.stats().tokens_issued, 1);
}

#[tokio::test]
async fn a_token_outage_window_ends_and_tokens_are_issued_again() {
    let sandbox = spawn("none", |_| {}).await;
    let switched = Instant::now();
    sandbox.handle.set_faults(spec("token_outage=3s"));
    let deadline = Instant::now() + PATIENCE;
    let mut refusals = 0;
    loop {
        let status = sandbox.request_token(&sandbox.assertion()).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        refusals += 1;
        assert!(Instant::now() < deadline, "the outage never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refusals >= 1);
    assert!(switched.elapsed() >= Duration::from_secs(3));
    let stats = sandbox.handle.stats();
    assert_eq!(stats.token_outage_refusals, refusals);
    assert_eq!(stats.tokens_issued, 1);
}

#[tokio::test]
async fn a_token_reset_is_a_connection_error_on_the_token_endpoint() {
    let sandbox = spawn("token_reset=1", |_| {}).await;
    assert_connection_error(sandbox.try_request_token(&sandbox.assertion()).await);
    let stats = sandbox.handle.stats();
    assert_eq!(stats.token_outage_resets, 1);
    assert_eq!((stats.token_errors, stats.tokens_issued), (0, 0));
}

#[tokio::test]
async fn token_faults_leave_process_message_alone_and_the_reverse() {
    let sandbox = open("token_outage=1,token_reset=0").await;
    assert_eq!(sandbox.submit("C").await.status(), StatusCode::OK);
    sandbox.handle.set_faults(spec("503=1"));
    let token = sandbox.request_token(&sandbox.assertion()).await;
    assert_eq!(token.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Switching, reproducibility, named profiles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn set_faults_switches_faults_on_and_off_mid_run() {
    let sandbox = open("none").await;
    assert_eq!(sandbox.submit("C1").await.status(), StatusCode::OK);
    sandbox.handle.set_faults(spec("502=1"));
    assert_eq!(sandbox.handle.faults(), spec("502=1"));
    assert_eq!(sandbox.submit("C2").await.status(), StatusCode::BAD_GATEWAY);
    sandbox.handle.set_faults(FaultProfile::default());
    assert_eq!(sandbox.submit("C3").await.status(), StatusCode::OK);
    let ids: Vec<_> = sandbox
        .handle
        .received_calls()
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["C1", "C3"]);
    assert_eq!(sandbox.handle.stats().faults_injected_5xx, 1);
}

#[tokio::test]
async fn the_faults_endpoint_shows_and_replaces_the_profile() {
    let sandbox = open("flaky").await;
    let url = sandbox.url("/_sandbox/faults");
    let shown = json_body(sandbox.http.get(&url).send().await.unwrap()).await;
    assert_eq!(
        shown["faults"],
        FaultProfile::named("flaky").unwrap().to_string()
    );

    let put = sandbox
        .http
        .put(&url)
        .body("504=100%")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(json_body(put).await["faults"], "504=1");
    assert_eq!(sandbox.handle.faults(), spec("504=1"));
    assert_eq!(
        sandbox.submit("C").await.status(),
        StatusCode::GATEWAY_TIMEOUT
    );

    let bad = sandbox.http.put(&url).body("504=2").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(json_body(bad).await["error"]
        .as_str()
        .unwrap()
        .contains("rate must be"));
    assert_eq!(
        sandbox.handle.faults(),
        spec("504=1"),
        "a bad spec changes nothing"
    );
}

/// Statuses of `n` sequential submissions; a connection error is recorded as 0.
async fn outcomes(sandbox: &Sandbox, n: usize) -> Vec<u16> {
    let mut seen = Vec::with_capacity(n);
    for i in 0..n {
        let status = match sandbox.try_submit(&format!("C{i}")).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        seen.push(status);
    }
    seen
}

#[tokio::test]
async fn a_seeded_profile_injects_the_same_faults_in_the_same_order() {
    let knobs = "500=0.2,503=0.2,reset=0.1,seed=42";
    let first = outcomes(&open(knobs).await, 60).await;
    let second = outcomes(&open(knobs).await, 60).await;
    assert_eq!(first, second);
    for status in [0, 200, 500, 503] {
        assert!(first.contains(&status), "{status} missing from {first:?}");
    }
    let other = outcomes(&open("500=0.2,503=0.2,reset=0.1,seed=43").await, 60).await;
    assert_ne!(first, other, "another seed, other dice");
}

#[tokio::test]
async fn the_flaky_profile_mixes_faults_with_mostly_successes_and_counts_them_all() {
    let sandbox = open("flaky,latency=0ms,seed=7").await;
    let seen = outcomes(&sandbox, 300).await;
    let ok = seen.iter().filter(|s| **s == 200).count() as u64;
    let resets = seen.iter().filter(|s| **s == 0).count() as u64;
    let errors = seen.iter().filter(|s| **s >= 500).count() as u64;
    assert_eq!(ok + resets + errors, 300, "{seen:?}");
    assert!(ok > 240 && errors > 0, "{seen:?}");
    let stats = sandbox.handle.stats();
    assert_eq!(stats.submissions_accepted, ok);
    assert_eq!(stats.faults_injected_5xx, errors);
    assert_eq!(stats.faults_reset, resets);
    assert_eq!(sandbox.handle.received_calls().len() as u64, ok);
}

#[tokio::test]
async fn the_default_config_injects_no_faults() {
    assert_eq!(SandboxConfig::default().faults, FaultProfile::default());
    assert!(FaultProfile::default().is_none());
    let sandbox = open("none").await;
    let seen = outcomes(&sandbox, 20).await;
    assert!(seen.iter().all(|s| *s == 200), "{seen:?}");
    let stats = sandbox.handle.stats();
    assert_eq!(stats.submissions_accepted, 20);
    assert_eq!(stats.faults_delayed + stats.faults_reset, 0);
}

// ---------------------------------------------------------------------------------------------
// Spec grammar
// ---------------------------------------------------------------------------------------------

#[test]
fn every_named_profile_parses_and_none_is_the_default() {
    for name in FaultProfile::NAMES {
        let named = FaultProfile::named(name).unwrap();
        assert_eq!(FaultProfile::parse(name).unwrap(), named);
        named.validate().unwrap();
    }
    assert_eq!(FaultProfile::named("none"), Some(FaultProfile::default()));
    assert_eq!(FaultProfile::named("nope"), None);
    let flaky = FaultProfile::named("flaky").unwrap();
    assert_eq!(flaky.status_rates[&503], 0.02);
    assert_eq!(
        flaky.latency,
        LatencyRange {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200)
        }
    );
    let chaos = FaultProfile::named("chaos").unwrap();
    assert!(chaos.storm.is_some() && chaos.token_outage_window.is_some());
    assert!(chaos.reset_rate > flaky.reset_rate);
    assert!(FaultProfile::named("429-storm").unwrap().storm.is_some());
    assert!(FaultProfile::named("token-outage")
        .unwrap()
        .token_outage_window
        .is_some());
}

#[test]
fn the_documented_knob_spec_parses_to_the_expected_profile() {
    let profile = spec("500=0.05,503=0.02,reset=0.01,latency=20..200ms,token_outage=0.3");
    assert_eq!(profile.status_rates.len(), 2);
    assert_eq!(profile.status_rates[&500], 0.05);
    assert_eq!(profile.status_rates[&503], 0.02);
    assert_eq!(profile.reset_rate, 0.01);
    assert_eq!(profile.latency.min, Duration::from_millis(20));
    assert_eq!(profile.latency.max, Duration::from_millis(200));
    assert_eq!(profile.token_outage_rate, 0.3);
    assert_eq!(profile.token_outage_window, None);
    assert_eq!(profile.seed, None);

    let windows = spec(" storm = 2s/20s@10s , token_reset=5s , token_outage=500ms/1m , seed=9 ");
    assert_eq!(
        windows.storm,
        Some(FaultWindow {
            length: Duration::from_secs(2),
            period: Some(Duration::from_secs(20)),
            start: Duration::from_secs(10),
        })
    );
    assert_eq!(
        windows.token_reset_window.unwrap().length,
        Duration::from_secs(5)
    );
    assert_eq!(
        windows.token_outage_window.unwrap().period,
        Some(Duration::from_secs(60))
    );
    assert_eq!(windows.seed, Some(9));
    assert_eq!(spec("429=5%").status_rates[&429], 0.05);
}

#[test]
fn knobs_after_a_profile_name_override_it() {
    let profile = spec("flaky,503=0.1,latency=0ms,seed=3");
    let flaky = FaultProfile::named("flaky").unwrap();
    assert_eq!(profile.status_rates[&503], 0.1);
    assert_eq!(profile.status_rates[&500], flaky.status_rates[&500]);
    assert_eq!(profile.latency, LatencyRange::default());
    assert_eq!(profile.seed, Some(3));
}

#[test]
fn a_profile_prints_as_a_spec_that_parses_back_to_it() {
    for text in [
        "none",
        "flaky",
        "chaos,seed=1",
        "500=0.05,503=0.02,reset=0.01,latency=20..200ms,token_outage=0.3",
        "408=1%,retry_after=2m,storm=1500ms/3s,token_reset=0.25,token_reset=1s@2s",
        "latency=1s",
    ] {
        let profile = spec(text);
        let printed = profile.to_string();
        assert_eq!(spec(&printed), profile, "`{text}` printed as `{printed}`");
    }
    assert_eq!(FaultProfile::default().to_string(), "none");
    assert_eq!(
        spec("503=5%,latency=20..200ms").to_string(),
        "503=0.05,latency=20ms..200ms"
    );
}

#[test]
fn bad_specs_are_rejected_with_messages_naming_the_problem() {
    let cases = [
        ("", "empty fault spec"),
        ("   ", "empty fault spec"),
        ("wobbly", "unknown fault profile `wobbly`"),
        ("500=0.1,,503=0.1", "empty item"),
        ("500=0.1,flaky", "must come first"),
        ("frobnicate=1", "unknown fault knob `frobnicate=1`"),
        ("500", "unknown fault profile `500`"),
        ("200=0.1", "from 400 to 599"),
        ("700=0.1", "from 400 to 599"),
        ("500=abc", "rate must be a number from 0 to 1"),
        ("500=1.5", "rate must be a number from 0 to 1"),
        ("500=150%", "rate must be a number from 0 to 1"),
        ("500=-0.1", "rate must be a number from 0 to 1"),
        ("500=0.6,503=0.5", "add up to"),
        ("500=0.5,reset=0.6", "add up to"),
        ("token_outage=0.7,token_reset=0.4", "add up to"),
        ("500=0.1,500=0.2", "given twice"),
        ("latency=200", "needs a unit"),
        ("latency=200..20ms", "runs backwards"),
        ("latency=1.5ms", "whole number of milliseconds"),
        ("latency=2d", "needs a unit"),
        ("latency=48h", "needs a unit"),
        ("latency=2000m", "longer than a day"),
        ("retry_after=500ms", "whole seconds"),
        ("retry_after=0s", "whole seconds"),
        ("storm=0s", "zero length"),
        ("storm=10s/5s", "period must be at least"),
        ("storm=5", "needs a unit"),
        ("token_outage=5x", "needs a unit"),
        ("seed=-1", "seed must be a whole number"),
    ];
    for (text, expected) in cases {
        match FaultProfile::parse(text) {
            Ok(profile) => panic!("`{text}` was accepted as {profile:?}"),
            Err(message) => assert!(
                message.contains(expected),
                "`{text}`: expected a message containing `{expected}`, got `{message}`"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI flag
// ---------------------------------------------------------------------------------------------

#[test]
fn the_sandbox_command_rejects_a_bad_faults_spec_naming_the_problem() {
    let output = connector_command()
        .args(["sandbox", "--open", "--listen", "127.0.0.1:0"])
        .args(["--faults", "503=2"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--faults"), "{stderr}");
    assert!(
        stderr.contains("rate must be a number from 0 to 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_sandbox_command_serves_the_profile_named_by_its_faults_flag() {
    let mut child = tokio::process::Command::from(connector_command())
        .args(["sandbox", "--open", "--listen", "127.0.0.1:0"])
        .args(["--faults", "chaos,seed=5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let api = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("sandbox API:") {
                return url.trim().to_owned();
            }
        }
        panic!("the sandbox exited without printing its URL");
    })
    .await
    .expect("the sandbox printed its URL");
    let base = api.trim_end_matches("/ambulance-data-submission");
    let shown: Value = reqwest::get(format!("{base}/_sandbox/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["faults"], spec("chaos,seed=5").to_string());
    child.kill().await.unwrap();
}
