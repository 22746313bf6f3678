//! The connector's own NHS API client (token provider and submitter) against the sandbox over
//! real HTTP: tokens minted, reused and refreshed; the token errors of nhs-api.md §1.4 that a
//! client's assertion can provoke surface with the platform's exact words; submissions accepted,
//! refused and retried as the classification table says.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ads_connector::acker::Accepted;
use ads_connector::auth::{AuthError, TokenProvider};
use ads_connector::config::{ApiConfig, AuthConfig, RateLimitConfig, SubmissionMode};
use ads_connector::health::ApiHealth;
use ads_connector::metrics::Metrics;
use ads_connector::rate_limit::RateLimiter;
use ads_connector::submitter::{unfinished_limit, Submitted, Submitter, SubmitterOutput};
use common::{
    app, one_call_batch, process_message_url, shared_key as key, spawn_sandbox, write_jwks,
};
use nhs_emulator::{SandboxConfig, SandboxHandle};
use tokio::sync::mpsc;
use url::Url;

const API_KEY: &str = "client-test-app";

struct Fixture {
    sandbox: SandboxHandle,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(configure: impl FnOnce(&mut SandboxConfig, &std::path::Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        write_jwks(&jwks, &[key("a")]);
        std::fs::write(dir.path().join("a.pem"), &key("a").private_pem).unwrap();
        std::fs::write(dir.path().join("b.pem"), &key("b").private_pem).unwrap();
        std::fs::write(dir.path().join("api-key"), API_KEY).unwrap();
        std::fs::write(dir.path().join("unknown-api-key"), "nobody").unwrap();
        let apps = vec![app(API_KEY, jwks)];
        let sandbox = spawn_sandbox(apps, |cfg| configure(cfg, dir.path())).await;
        Self { sandbox, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn auth(&self, api_key: &str, key_file: &str, kid: &str) -> AuthConfig {
        AuthConfig::SignedJwt {
            token_url: self.sandbox.token_url(),
            api_key_file: self.path(api_key),
            private_key_file: self.path(key_file),
            kid: kid.into(),
            refresh_fraction: 0.75,
        }
    }

    fn tokens(&self, auth: &AuthConfig) -> Arc<TokenProvider> {
        Arc::new(TokenProvider::new(
            auth,
            reqwest::Client::new(),
            Metrics::new(),
        ))
    }

    fn submitter(&self, tokens: Arc<TokenProvider>, url: Url, budget: Duration) -> Submitter {
        self.submitter_with(
            tokens,
            url,
            budget,
            ApiHealth::new(&self.submit_url(), Metrics::new()),
        )
    }

    fn submitter_with(
        &self,
        tokens: Arc<TokenProvider>,
        url: Url,
        budget: Duration,
        api: ApiHealth,
    ) -> Submitter {
        Submitter {
            client: ads_connector::submitter::http_client(Duration::from_secs(5)).unwrap(),
            config: ApiConfig {
                submit_url: url,
                auth: AuthConfig::None,
                timeout: Duration::from_secs(5),
                max_in_flight: 1,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                max_retry_duration: Some(budget),
                misconfigured_exit_after: None,
            },
            mode: SubmissionMode::Batch,
            tokens,
            limiter: Arc::new(RateLimiter::new(
                RateLimitConfig {
                    requests_per_minute: 60_000,
                    burst: 100,
                },
                Metrics::new(),
            )),
            metrics: Metrics::new(),
            group: ads_connector::telemetry::ConsumerGroup {
                name: "client-tests".into(),
                client_id: None,
            },
            api,
        }
    }

    fn submit_url(&self) -> Url {
        Url::parse(&process_message_url(&self.sandbox)).unwrap()
    }
}

async fn refused(fixture: &Fixture, auth: AuthConfig) -> (u16, String, String) {
    match fixture.tokens(&auth).bearer().await {
        Err(AuthError::Refused {
            status,
            error,
            description,
        }) => (status, error, description),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a token"),
    }
}

#[tokio::test]
async fn a_token_is_minted_once_and_shared_by_concurrent_callers() {
    let f = Fixture::start(|_, _| {}).await;
    let tokens = f.tokens(&f.auth("api-key", "a.pem", "a"));
    assert!(!tokens.is_ready(), "no token before the first request");
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let t = tokens.clone();
            tokio::spawn(async move { t.bearer().await.unwrap().unwrap() })
        })
        .collect();
    let mut values = Vec::new();
    for h in handles {
        values.push(h.await.unwrap());
    }
    assert!(values.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(f.sandbox.stats().tokens_issued, 1, "single flight");
    assert!(tokens.is_ready());
}

#[tokio::test]
async fn the_token_is_refreshed_with_a_fresh_jti_once_its_refresh_point_passes() {
    let f = Fixture::start(|cfg, _| cfg.token_lifetime_secs = 2).await;
    let tokens = f.tokens(&f.auth("api-key", "a.pem", "a"));
    let first = tokens.bearer().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = tokens.bearer().await.unwrap().unwrap();
    assert_ne!(first, second);
    // The sandbox refuses a reused jti, so two tokens prove two distinct assertions.
    assert_eq!(f.sandbox.stats().tokens_issued, 2);
}

#[tokio::test]
async fn an_unknown_kid_is_refused_with_the_platform_message() {
    let f = Fixture::start(|_, _| {}).await;
    let (status, error, description) = refused(&f, f.auth("api-key", "a.pem", "nope")).await;
    assert_eq!((status, error.as_str()), (401, "invalid_request"));
    assert_eq!(
        description,
        "Invalid 'kid' header in client_assertion JWT - no matching public key"
    );
}

#[tokio::test]
async fn an_unknown_api_key_is_refused_with_the_platform_message() {
    let f = Fixture::start(|_, _| {}).await;
    let (status, error, description) = refused(&f, f.auth("unknown-api-key", "a.pem", "a")).await;
    assert_eq!((status, error.as_str()), (401, "invalid_request"));
    assert_eq!(
        description,
        "Invalid 'iss'/'sub' claims in client_assertion JWT"
    );
}

#[tokio::test]
async fn a_key_that_does_not_match_the_jwks_fails_signature_verification() {
    let f = Fixture::start(|_, _| {}).await;
    // Key b signs, but the JWKS publishes key a under kid "a".
    let (status, error, description) = refused(&f, f.auth("api-key", "b.pem", "a")).await;
    assert_eq!((status, error.as_str()), (401, "public_key error"));
    assert_eq!(description, "JWT signature verification failed");
}

#[tokio::test]
async fn an_aud_that_is_not_the_token_url_is_refused() {
    let f = Fixture::start(|cfg, _| {
        cfg.public_url = Some(Url::parse("https://int.api.service.nhs.uk").unwrap());
    })
    .await;
    // The client posts to the real address, so its `aud` is not the server's public token URL.
    let listener_url =
        Url::parse(&format!("http://{}/oauth2/token", f.sandbox.local_addr())).unwrap();
    let auth = AuthConfig::SignedJwt {
        token_url: listener_url,
        api_key_file: f.path("api-key"),
        private_key_file: f.path("a.pem"),
        kid: "a".into(),
        refresh_fraction: 0.75,
    };
    let (status, error, description) = refused(&f, auth).await;
    assert_eq!((status, error.as_str()), (401, "invalid_request"));
    assert_eq!(
        description,
        "Missing or invalid 'aud' claim in client_assertion JWT"
    );
}

#[tokio::test]
async fn an_app_without_a_registered_public_key_gets_403() {
    let f = Fixture::start(|cfg, _| {
        cfg.apps[0].jwks_path = None;
    })
    .await;
    let (status, error, description) = refused(&f, f.auth("api-key", "a.pem", "a")).await;
    assert_eq!((status, error.as_str()), (403, "public_key error"));
    assert!(description.starts_with("You need to register a public key"));
}

#[tokio::test]
async fn an_unreadable_key_file_is_reported_without_calling_the_server() {
    let f = Fixture::start(|_, _| {}).await;
    match f
        .tokens(&f.auth("api-key", "missing.pem", "a"))
        .bearer()
        .await
    {
        Err(e @ AuthError::KeyFile { .. }) => assert!(!e.is_transient()),
        other => panic!("expected a key file error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(f.sandbox.stats().token_errors, 0);
}

#[tokio::test]
async fn a_rotated_key_file_is_used_without_a_restart() {
    let f = Fixture::start(|cfg, _| cfg.token_lifetime_secs = 1).await;
    let tokens = f.tokens(&f.auth("api-key", "a.pem", "a"));
    tokens.bearer().await.unwrap();
    // Rotate: the JWKS now publishes key b under kid "a", and the key file holds key b.
    let mut jwk = key("b").jwk.clone();
    jwk["kid"] = "a".into();
    std::fs::write(
        f.path("jwks.json"),
        serde_json::json!({"keys": [jwk]}).to_string(),
    )
    .unwrap();
    std::fs::write(f.path("a.pem"), &key("b").private_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    tokens.bearer().await.unwrap();
    assert_eq!(f.sandbox.stats().tokens_issued, 2);
}

#[tokio::test]
async fn a_submission_is_accepted_with_the_message_id() {
    let f = Fixture::start(|_, _| {}).await;
    let tokens = f.tokens(&f.auth("api-key", "a.pem", "a"));
    let submitter = f.submitter(tokens, f.submit_url(), Duration::from_secs(5));
    match submitter.submit(&one_call_batch()).await {
        Submitted::Accepted(Accepted {
            api_id,
            http_status,
            attempts,
            ..
        }) => {
            assert!(api_id.is_some_and(|id| !id.is_empty()));
            assert_eq!((http_status, attempts), (200, 1));
        }
        Submitted::Rejected { kind, message } => panic!("{}: {message}", kind.as_str()),
    }
    assert_eq!(f.sandbox.received_calls().len(), 1);
}

#[tokio::test]
async fn a_submitter_whose_acker_takes_nothing_stops_taking_batches_at_its_unfinished_limit() {
    let f = Fixture::start(|cfg, _| cfg.open_access = true).await;
    let mut submitter = f.submitter(
        f.tokens(&AuthConfig::None),
        f.submit_url(),
        Duration::from_secs(5),
    );
    submitter.config.max_in_flight = 2;
    let limit = unfinished_limit(2);
    let offered = 20;
    let (batches, input) = mpsc::channel(offered);
    for _ in 0..offered {
        batches.send(one_call_batch()).await.unwrap();
    }
    // One slot for an accepted submission, never taken: the acker is stuck.
    let (acks, mut stuck_acker) = mpsc::channel(1);
    let (dead_letters, _dead) = mpsc::channel(1);
    let run = tokio::spawn(submitter.run(input, SubmitterOutput { acks, dead_letters }));

    // The one in the acker's slot, and the limit's worth answered and waiting to hand over.
    let expected = limit + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while f.sandbox.received_calls().len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the submissions were not sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        batches.capacity(),
        expected,
        "batches taken by the submitter"
    );
    assert_eq!(f.sandbox.received_calls().len(), expected);

    // The acker takes one: one more batch is taken, no more.
    stuck_acker.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(batches.capacity(), expected + 1);
    run.abort();
}

#[tokio::test]
async fn a_wrong_path_pauses_the_submission_as_misconfigured_instead_of_refusing_it() {
    let f = Fixture::start(|cfg, _| cfg.open_access = true).await;
    let url = Url::parse(&format!("{}/submission", f.sandbox.api_base_url())).unwrap();
    let tokens = f.tokens(&AuthConfig::None);
    let api = ApiHealth::new(&url, Metrics::new());
    // A 1 s retry budget: a pause must not spend it (nothing is dead-lettered for a 404).
    let submitter = f.submitter_with(tokens, url, Duration::from_secs(1), api.clone());
    let pending =
        tokio::time::timeout(Duration::from_secs(3), submitter.submit(&one_call_batch())).await;
    assert!(
        pending.is_err(),
        "a wrong path must neither be accepted nor refused"
    );
    let m = api.current().expect("misconfigured");
    assert_eq!((m.fault.as_str(), m.status), ("not_found", 404));
    assert!(
        f.sandbox.stats().rejected_404 >= 2,
        "the submission is probed again"
    );
}

#[tokio::test]
async fn a_429_beyond_the_retry_budget_ends_as_retries_exhausted() {
    let f = Fixture::start(|cfg, _| {
        cfg.open_access = true;
        cfg.quota_per_minute = 1;
    })
    .await;
    let submitter = f.submitter(
        f.tokens(&AuthConfig::None),
        f.submit_url(),
        Duration::from_secs(2),
    );
    assert!(matches!(
        submitter.submit(&one_call_batch()).await,
        Submitted::Accepted(_)
    ));
    // The quota is spent for this minute; Retry-After is longer than the 2 s budget.
    match submitter.submit(&one_call_batch()).await {
        Submitted::Rejected { kind, .. } => assert_eq!(kind.as_str(), "retries_exhausted"),
        Submitted::Accepted(_) => panic!("the quota was spent"),
    }
    assert_eq!(f.sandbox.stats().rejected_429, 1);
}

#[tokio::test]
async fn a_token_the_api_does_not_know_is_replaced_once_then_the_api_counts_as_misconfigured() {
    // Tokens come from sandbox A; submissions go to sandbox B, which never issued them (403).
    let a = Fixture::start(|_, _| {}).await;
    let b = Fixture::start(|_, _| {}).await;
    let tokens = a.tokens(&a.auth("api-key", "a.pem", "a"));
    let api = ApiHealth::new(&b.submit_url(), Metrics::new());
    let submitter = a.submitter_with(
        tokens,
        b.submit_url(),
        Duration::from_millis(800),
        api.clone(),
    );
    // Refused again with the fresh token: a misconfiguration, paused, never dead-lettered.
    let pending =
        tokio::time::timeout(Duration::from_secs(3), submitter.submit(&one_call_batch())).await;
    assert!(
        pending.is_err(),
        "B must refuse A's tokens, and that is no reason to dead-letter"
    );
    assert_eq!(
        api.current().map(|m| m.fault.as_str()),
        Some("unauthorized")
    );
    assert!(b.sandbox.stats().rejected_403 >= 2);
    assert!(
        a.sandbox.stats().tokens_issued >= 2,
        "every refusal hands the token back and a new one is minted"
    );
}
