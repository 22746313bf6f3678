//! Configuration faults stop the line, not the data (issue 15): a wrong URL or path, a method
//! the API does not take, a redirect, a 2xx that is not the API's, a 401/403 that a fresh token
//! does not cure, on the real pipeline (mock cluster, sandbox or a switchable fake API over real
//! HTTP). Submissions pause: nothing is dead-lettered, nothing is committed, `/readyz` answers
//! 503 and `ads_connector_api_misconfigured` says why; once the API answers normally the
//! connector resumes by itself and every record is acked.
//!
//! The wrong-URL window lasts `ADS_MISCONFIGURED_WINDOW_S` seconds (8 by default; 60 for the
//! issue's minute).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::*;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How long a test keeps the connector pointed at a wrong URL.
fn window() -> Duration {
    let secs = std::env::var("ADS_MISCONFIGURED_WINDOW_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    Duration::from_secs(secs)
}

/// The sandbox's `[nhs_api]` lines with the base URL's path replaced by `path`.
fn wrong_path_toml(sandbox: &AuthSandbox, path: &str) -> String {
    let right = sandbox.handle.api_base_url().to_string();
    let mut wrong = sandbox.handle.api_base_url();
    wrong.set_path(path);
    sandbox
        .nhs_api_toml()
        .replace(&format!("\"{right}\""), &format!("\"{wrong}\""))
}

/// Offsets the group committed past the first record of a partition of the CAD topic (every
/// record of these tests is produced before the connector starts, so any is past an unsent
/// record). A commit of offset 0 (the shutdown commit of an untouched partition) moves nothing.
fn commits_past_the_start(bootstrap: &str, names: &Names) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = committed(bootstrap, &names.group, &names.cad)
        .into_iter()
        .filter(|(_, offset)| *offset > 0)
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_path_for_a_while_dead_letters_nothing_and_commits_nothing() {
    let names = Names::new("wrong-path");
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 30, 15, 0).await;
    let nhs_api = wrong_path_toml(&sandbox, "/ambulance-data-submision");
    let toml = connector_toml(
        &bootstrap,
        &names,
        &nhs_api,
        "max_calls = 5\nlinger_ms = 50",
        "",
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    tokio::time::sleep(window()).await;
    let during = commits_past_the_start(&bootstrap, &names);
    cancel.cancel();
    let finished = pipeline.finish().await;
    let after = commits_past_the_start(&bootstrap, &names);
    let (acks, dead) = read_acks_and_dead_letters(
        &bootstrap,
        &names,
        produced.len(),
        produced.len(),
        Duration::from_secs(3),
    )
    .await;
    eprintln!(
        "wrong path for {} s: {} records produced, {} acked, {} dead-lettered, offsets committed \
         during the window {during:?}, after the stop {after:?}",
        window().as_secs(),
        produced.len(),
        acks.len(),
        dead.len(),
    );
    assert!(finished.is_ok(), "{:?}", finished.err());
    assert_eq!(dead.len(), 0, "a configuration fault dead-lettered records");
    assert_eq!(acks.len(), 0);
    assert!(
        during.is_empty(),
        "committed past unsent records: {during:?}"
    );
    assert!(after.is_empty(), "committed past unsent records: {after:?}");
}

// ---------------------------------------------------------------------------------------------
// A fake API whose answer the test switches, and a pipeline in front of it
// ---------------------------------------------------------------------------------------------

/// How the fake API answers a submission.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// This status, with `Location: {base}/moved/$process-message` on a 3xx, and this body.
    Status(u16, &'static str),
    /// 200 with a fresh `{"message": id}`, as the API.
    Accept,
}

/// The API base path of the fake; a request anywhere else (a followed redirect) is counted.
const BASE_PATH: &str = "/ambulance-data-submission";

#[derive(Clone)]
struct FakeApi {
    base: Url,
    answer: Arc<Mutex<Answer>>,
    /// Requests to the configured submission URL.
    hits: Arc<AtomicUsize>,
    /// Requests anywhere else: a redirect that was followed.
    elsewhere: Arc<AtomicUsize>,
}

impl FakeApi {
    async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!(
            "http://{}{BASE_PATH}",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let api = Self {
            base,
            answer: Arc::new(Mutex::new(answer)),
            hits: Arc::default(),
            elsewhere: Arc::default(),
        };
        let state = api.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let api = state.clone();
            async move { api.respond(&uri) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        api
    }

    fn respond(&self, uri: &Uri) -> Response {
        if uri.path() != format!("{BASE_PATH}/$process-message") {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
            let id = uuid::Uuid::new_v4().to_string();
            return (StatusCode::OK, format!(r#"{{"message":"{id}"}}"#)).into_response();
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        match *self.answer.lock().unwrap() {
            Answer::Accept => {
                let id = uuid::Uuid::new_v4().to_string();
                (StatusCode::OK, format!(r#"{{"message":"{id}"}}"#)).into_response()
            }
            Answer::Status(status, body) => {
                let status = StatusCode::from_u16(status).unwrap();
                let mut response = (status, body).into_response();
                if status.is_redirection() {
                    let moved = format!(
                        "{}/moved/$process-message",
                        self.base.origin().ascii_serialization()
                    );
                    response
                        .headers_mut()
                        .insert(header::LOCATION, moved.parse().unwrap());
                }
                response
            }
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// `[nhs_api]` lines for this fake without authentication, quick backoff.
    fn open_toml(&self) -> String {
        format!(
            "environment = \"custom\"\nauth = \"none\"\nbase_url = \"{}\"\n{BACKOFF}",
            self.base
        )
    }
}

/// Short retry backoff so a paused submission probes (and resumes) quickly.
const BACKOFF: &str = "[nhs_api.request]\ninitial_backoff_ms = 50\nmax_backoff_ms = 400";

struct Running {
    names: Names,
    _broker: Broker,
    bootstrap: String,
    produced: Vec<Produced>,
    pipeline: Pipeline,
    cancel: CancellationToken,
    ops: String,
}

/// 20 valid records on 2 partitions, and the pipeline on `nhs_api` (plus `nhs_api_extra` keys).
async fn run(test: &str, nhs_api: &str) -> Running {
    let names = Names::new(test);
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    let produced = produce_calls(&bootstrap, &names.cad, 20, 15, 0).await;
    let toml = connector_toml(
        &bootstrap,
        &names,
        nhs_api,
        "max_calls = 5\nlinger_ms = 50",
        "",
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let ops = format!("http://{}", pipeline.health_addr);
    Running {
        names,
        _broker: broker,
        bootstrap,
        produced,
        pipeline,
        cancel,
        ops,
    }
}

impl Running {
    /// `/readyz`: status and `api_misconfigured`.
    async fn readyz(&self) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}/readyz", self.ops)).await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        (status, body["api_misconfigured"].clone())
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.ops))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `/readyz` names `reason` (at most 30 s), then for `window`; asserts the pause
    /// held all along: 503, the gauge, no ack, no dead letter, no commit.
    async fn assert_paused(&self, reason: &str, window: Duration) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, got) = self.readyz().await;
            if got == reason {
                assert_eq!(status, 503, "/readyz must be false while misconfigured");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz never named {reason}: {status} {got}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(window).await;
        let (status, got) = self.readyz().await;
        assert_eq!((status, got.as_str()), (503, Some(reason)));
        let metrics = self.metrics().await;
        assert!(
            metrics.contains(&format!(
                "ads_connector_api_misconfigured{{reason=\"{reason}\"}} 1"
            )),
            "the gauge does not say {reason}"
        );
        assert!(metrics.contains("ads_connector_ready 0"));
        let (acks, dead) = read_acks_and_dead_letters(
            &self.bootstrap,
            &self.names,
            1,
            1,
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(dead.len(), 0, "a configuration fault dead-lettered records");
        assert_eq!(acks.len(), 0, "an answer that is not the API's was acked");
        let commits = commits_past_the_start(&self.bootstrap, &self.names);
        assert!(
            commits.is_empty(),
            "committed past unsent records: {commits:?}"
        );
    }

    /// Once the API answers normally: every record acked once, none dead-lettered, `/readyz`
    /// 200 again, offsets at the end after the stop.
    async fn assert_resumes(self) {
        let acks = read_topic_async(
            &self.bootstrap,
            &self.names.ack,
            self.produced.len(),
            Duration::from_secs(60),
        )
        .await;
        let (status, got) = self.readyz().await;
        assert_eq!((status, got), (200, serde_json::Value::Null));
        assert!(self
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("ads_connector_api_misconfigured{"))
            .all(|l| l.ends_with(" 0")));
        self.cancel.cancel();
        self.pipeline.finish().await.unwrap();
        let dead = read_topic_async(
            &self.bootstrap,
            &self.names.dlq,
            1,
            Duration::from_millis(500),
        )
        .await;
        assert_every_record_once(&self.produced, &acks, &dead);
        assert!(dead.is_empty());
        assert_committed_at_end(
            &self.bootstrap,
            &self.names.group,
            &self.names.cad,
            &self.produced,
        );
    }
}

/// The fake API answers `answer` (a misconfiguration named `reason`) for a while, then as the
/// API: the pause holds, then the connector resumes by itself.
async fn pauses_then_resumes(test: &str, answer: Answer, reason: &str) -> FakeApi {
    let api = FakeApi::start(answer).await;
    let running = run(test, &api.open_toml()).await;
    running.assert_paused(reason, Duration::from_secs(3)).await;
    assert!(
        api.hits.load(Ordering::SeqCst) >= 2,
        "the paused submission is probed again"
    );
    api.answer(Answer::Accept);
    running.assert_resumes().await;
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_pauses_submissions_and_the_connector_resumes_by_itself_when_the_api_answers() {
    pauses_then_resumes(
        "not-found",
        Answer::Status(404, "Server Not Found"),
        "not_found",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_pauses_submissions_instead_of_dead_lettering_them() {
    pauses_then_resumes(
        "not-allowed",
        Answer::Status(405, r#"{"error":"Method not allowed"}"#),
        "method_not_allowed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_301_or_302_is_never_followed_and_pauses_submissions() {
    for (status, test) in [(301, "moved"), (302, "found")] {
        let api = pauses_then_resumes(test, Answer::Status(status, ""), "redirect").await;
        assert_eq!(
            api.elsewhere.load(Ordering::SeqCst),
            0,
            "the {status} redirect was followed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_without_the_api_s_id_is_not_acked_and_pauses_submissions() {
    pauses_then_resumes(
        "no-id",
        Answer::Status(200, "<html><body>Sign in</body></html>"),
        "no_submission_id",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_a_401_is_a_misconfiguration_at_once() {
    pauses_then_resumes("open-401", Answer::Status(401, ""), "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_or_403_that_persists_after_a_fresh_token_pauses_submissions() {
    for (status, test) in [(401, "unauth"), (403, "forbidden")] {
        // Tokens from the sandbox; submissions to the fake, which refuses every one of them.
        let sandbox = auth_sandbox().await;
        let api = FakeApi::start(Answer::Status(
            status,
            r#"{"error":"Invalid access token"}"#,
        ))
        .await;
        let right = sandbox.handle.api_base_url().to_string();
        let nhs_api = sandbox
            .nhs_api_toml()
            .replace(&format!("\"{right}\""), &format!("\"{}\"", api.base));
        let running = run(test, &format!("{nhs_api}\n{BACKOFF}")).await;
        running
            .assert_paused("unauthorized", Duration::from_secs(2))
            .await;
        assert!(
            sandbox.handle.stats().tokens_issued >= 2,
            "the refused token was handed back and a fresh one tried"
        );
        api.answer(Answer::Accept);
        running.assert_resumes().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_exit_deadline_a_lasting_misconfiguration_stops_the_pipeline_with_an_error() {
    let api = FakeApi::start(Answer::Status(404, "")).await;
    let nhs_api = api.open_toml().replace(
        "auth = \"none\"",
        "auth = \"none\"\nmisconfigured_exit_after_s = 2",
    );
    let running = run("exit-after", &nhs_api).await;
    let finished = tokio::time::timeout(Duration::from_secs(60), running.pipeline.finish())
        .await
        .expect("the pipeline stops by itself");
    let error = finished
        .expect_err("a lasting misconfiguration is an error")
        .to_string();
    assert!(
        error.contains("misconfigured_exit_after_s") && error.contains("404"),
        "{error}"
    );
    assert!(error.contains(api.base.as_str()), "{error}");
    let (acks, dead) = read_acks_and_dead_letters(
        &running.bootstrap,
        &running.names,
        1,
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!((acks.len(), dead.len()), (0, 0));
    let commits = commits_past_the_start(&running.bootstrap, &running.names);
    assert!(
        commits.is_empty(),
        "committed past unsent records: {commits:?}"
    );
}

#[test]
fn check_config_refuses_custom_without_a_token_url_unless_auth_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let open = INT_CONFIG.replace(
        "environment = \"int\"",
        "environment = \"custom\"\nbase_url = \"http://emulator:9100/ambulance-data-submission\"",
    );
    let check = |text: &str| {
        let path = write_file(dir.path(), "config.toml", text);
        connector_command()
            .args(["check-config", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };
    let refused = check(&open);
    let said = String::from_utf8_lossy(&refused.stderr).to_string()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("nhs_api.token_url") && said.contains("auth = \"none\""),
        "{said}"
    );
    let chosen = open.replace(
        "environment = \"custom\"",
        "environment = \"custom\"\nauth = \"none\"",
    );
    let accepted = check(&chosen);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}
