//! Black-box tests of the local NHS API sandbox over real HTTP on 127.0.0.1:0: the token
//! endpoint's checks in the order and with the exact bodies of nhs-api.md §1.4, the
//! `$process-message` proxy of §1.6, call recording, and `keygen` output. Test JWTs are signed
//! with `jsonwebtoken` directly, never through the connector's own auth code.

mod common;

use std::time::Duration;

use ads_connector::keygen::{self, KeyPair, KeygenError};
use common::{
    app, assertion_claims, jwt_header, now, post_form, process_message_url, shared_key, sign,
    spawn_sandbox, token_form, write_jwks, JWT_BEARER,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use nhs_emulator::{self as sandbox, SandboxApp, SandboxConfig, SandboxHandle, SandboxStats};
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const API_KEY: &str = "test-api-key";
const NO_JWKS_API_KEY: &str = "app-without-jwks";
const BROKEN_JWKS_API_KEY: &str = "app-whose-jwks-file-is-missing";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Key pairs are slow to generate, so every test shares these two.
fn key_a() -> &'static KeyPair {
    shared_key("key-a")
}

fn key_b() -> &'static KeyPair {
    shared_key("key-b")
}

struct TestSandbox {
    handle: SandboxHandle,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// A sandbox with three apps: [`API_KEY`] (JWKS holding key a), [`NO_JWKS_API_KEY`] and
/// [`BROKEN_JWKS_API_KEY`] (a JWKS path that does not exist).
async fn spawn(configure: impl FnOnce(&mut SandboxConfig)) -> TestSandbox {
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    write_jwks(&jwks_path, &[key_a()]);
    let apps = vec![
        SandboxApp::parse(&format!("{API_KEY}={}", jwks_path.display())).unwrap(),
        SandboxApp::parse(&format!("{NO_JWKS_API_KEY}=")).unwrap(),
        app(BROKEN_JWKS_API_KEY, dir.path().join("missing.json")),
    ];
    let handle = spawn_sandbox(apps, configure).await;
    TestSandbox {
        handle,
        http: reqwest::Client::new(),
        dir,
    }
}

impl TestSandbox {
    /// Claims of a valid client assertion for [`API_KEY`].
    fn claims(&self) -> Value {
        self.claims_for(API_KEY)
    }

    fn claims_for(&self, api_key: &str) -> Value {
        assertion_claims(api_key, self.handle.token_url().as_str())
    }

    /// A valid assertion signed by key a.
    fn assertion(&self) -> String {
        sign(&jwt_header("key-a"), &self.claims(), key_a())
    }

    async fn post_form(&self, form: &[(&str, &str)]) -> Response {
        post_form(&self.http, self.handle.token_url(), form)
            .await
            .unwrap()
    }

    async fn request_token(&self, assertion: &str) -> Response {
        self.post_form(&token_form(assertion)).await
    }

    async fn access_token(&self) -> String {
        let response = self.request_token(&self.assertion()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    fn process_message_url(&self) -> String {
        process_message_url(&self.handle)
    }

    async fn submit(&self, access_token: Option<&str>, body: impl Into<reqwest::Body>) -> Response {
        let mut request = self
            .http
            .post(self.process_message_url())
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(body);
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        let url = format!("http://{}{path}", self.handle.local_addr());
        self.http.get(url).send().await.unwrap()
    }
}

async fn assert_token_error(
    response: Response,
    status: StatusCode,
    error: &str,
    description: &str,
) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    let message_id = body["message_id"].as_str().unwrap_or_default();
    assert!(!message_id.is_empty(), "message_id missing: {body}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
}

/// Row 8: a 400 `invalid_request` with `description`.
async fn assert_assertion_rejected(
    sandbox: &TestSandbox,
    jwt_header: Value,
    claims: Value,
    description: &str,
) {
    let response = sandbox
        .request_token(&sign(&jwt_header, &claims, key_a()))
        .await;
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
    )
    .await;
}

async fn assert_error_body(response: Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": error }));
}

fn call_bundle(id: &str, call_id: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": id,
        "type": "collection",
        "timestamp": "2025-03-01T09:30:00Z",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "1"}},
            {"fullUrl": "urn:uuid:2", "resource": {
                "resourceType": "Communication",
                "identifier": [{"system": "https://example.test/call-id", "value": call_id}]
            }}
        ]
    })
}

fn sha256_hex(value: &Value) -> String {
    Sha256::digest(serde_json::to_vec(value).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// /oauth2/token: success
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_assertion_gets_a_bearer_token_with_string_expires_in_599() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .post_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &sandbox.assertion()),
            ("client_id", API_KEY),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], "599");
    assert_eq!(body["token_type"], "Bearer");
    assert!(!body["access_token"].as_str().unwrap().is_empty());
    let issued_at: i64 = body["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (issued_at / 1000).abs_diff(now() as i64) < 5,
        "issued_at is epoch ms"
    );
    assert_eq!(sandbox.handle.stats().tokens_issued, 1);
}

#[tokio::test]
async fn typ_header_is_compared_case_insensitively() {
    let sandbox = spawn(|_| {}).await;
    let header = json!({"alg": "RS512", "typ": "jwt", "kid": "key-a"});
    let response = sandbox
        .request_token(&sign(&header, &sandbox.claims(), key_a()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn expires_in_follows_the_configured_token_lifetime() {
    let sandbox = spawn(|cfg| cfg.token_lifetime_secs = 30).await;
    let body: Value = sandbox
        .request_token(&sandbox.assertion())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], "30");
}

// ---------------------------------------------------------------------------------------------
// /oauth2/token: the §1.4 table, one test per row
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_endpoint_answers_get_with_empty_405_allowing_post() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .http
        .get(sandbox.handle.token_url())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn token_request_with_charset_in_content_type_is_415() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .http
        .post(sandbox.handle.token_url())
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let description = "Content-Type header must be application/x-www-form-urlencoded";
    assert_token_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn token_request_without_grant_type_is_400() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .post_form(&[("client_assertion_type", JWT_BEARER)])
        .await;
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "grant_type is missing",
    )
    .await;
}

#[tokio::test]
async fn token_request_with_unsupported_grant_type_is_400() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox.post_form(&[("grant_type", "password")]).await;
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "grant_type is invalid",
    )
    .await;
}

#[tokio::test]
async fn token_request_with_wrong_client_assertion_type_is_400() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .post_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "jwt"),
            ("client_assertion", &sandbox.assertion()),
        ])
        .await;
    let description = "Missing or invalid client_assertion_type - must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'";
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn token_request_without_client_assertion_is_400() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .post_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
        ])
        .await;
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Missing client_assertion",
    )
    .await;
}

#[tokio::test]
async fn token_request_with_malformed_jwt_is_400() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox.request_token("not.a-jwt").await;
    let description = "Malformed JWT in client_assertion";
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn assertion_with_alg_other_than_rs512_is_400() {
    let sandbox = spawn(|_| {}).await;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "key-a"});
    let description = "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'";
    assert_assertion_rejected(&sandbox, header, sandbox.claims(), description).await;
}

#[tokio::test]
async fn expired_assertion_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["exp"] = json!(now() - 5);
    let description = "Invalid 'exp' claim in client_assertion JWT - JWT has expired";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn expiry_is_checked_before_the_kid_header() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["exp"] = json!(now() - 5);
    let header = json!({"alg": "RS512", "typ": "JWT"});
    let description = "Invalid 'exp' claim in client_assertion JWT - JWT has expired";
    assert_assertion_rejected(&sandbox, header, claims, description).await;
}

#[tokio::test]
async fn assertion_without_kid_is_400() {
    let sandbox = spawn(|_| {}).await;
    let header = json!({"alg": "RS512", "typ": "JWT"});
    let description = "Missing 'kid' header in client_assertion JWT";
    assert_assertion_rejected(&sandbox, header, sandbox.claims(), description).await;
}

#[tokio::test]
async fn assertion_with_typ_other_than_jwt_is_400() {
    let sandbox = spawn(|_| {}).await;
    let header = json!({"alg": "RS512", "typ": "JOSE", "kid": "key-a"});
    let description = "Invalid 'typ' header in client_assertion JWT - must be 'JWT'";
    assert_assertion_rejected(&sandbox, header, sandbox.claims(), description).await;
}

#[tokio::test]
async fn assertion_without_exp_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims.as_object_mut().unwrap().remove("exp");
    let description = "Missing 'exp' claim in client_assertion JWT";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn assertion_with_non_numeric_exp_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["exp"] = json!((now() + 60).to_string());
    let description = "Invalid 'exp' claim in client_assertion JWT - must be an integer";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn assertion_whose_iss_differs_from_sub_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["iss"] = json!("someone-else");
    let description = "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn assertion_without_jti_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims.as_object_mut().unwrap().remove("jti");
    let description = "Missing 'jti' claim in client_assertion JWT";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn assertion_with_non_string_jti_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["jti"] = json!(42);
    let description = "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn reused_jti_is_rejected_after_a_token_was_issued_with_it() {
    let sandbox = spawn(|_| {}).await;
    let assertion = sandbox.assertion();
    assert_eq!(
        sandbox.request_token(&assertion).await.status(),
        StatusCode::OK
    );
    let response = sandbox.request_token(&assertion).await;
    let description = "Non-unique 'jti' claim in client_assertion JWT";
    assert_token_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn assertion_expiring_more_than_310_seconds_ahead_is_400() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["exp"] = json!(now() + 400);
    let description = "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future";
    assert_assertion_rejected(&sandbox, jwt_header("key-a"), claims, description).await;
}

#[tokio::test]
async fn assertion_from_unknown_api_key_is_401() {
    let sandbox = spawn(|_| {}).await;
    let claims = sandbox.claims_for("not-a-registered-key");
    let response = sandbox
        .request_token(&sign(&jwt_header("key-a"), &claims, key_a()))
        .await;
    let description = "Invalid 'iss'/'sub' claims in client_assertion JWT";
    assert_token_error(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn token_requests_over_the_app_quota_are_429_with_retry_after() {
    let sandbox = spawn(|cfg| cfg.token_quota_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(
            sandbox.request_token(&sandbox.assertion()).await.status(),
            StatusCode::OK
        );
    }
    let response = sandbox.request_token(&sandbox.assertion()).await;
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let description = "Your application, test-api-key, has exceeded its quota of 2 requests every 1 minute(s) and is being rate limited.";
    assert_token_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        description,
    )
    .await;
    assert_eq!(sandbox.handle.stats().token_rate_limited, 1);
}

#[tokio::test]
async fn app_without_registered_jwks_is_403() {
    let sandbox = spawn(|_| {}).await;
    let claims = sandbox.claims_for(NO_JWKS_API_KEY);
    let response = sandbox
        .request_token(&sign(&jwt_header("key-a"), &claims, key_a()))
        .await;
    let description = "You need to register a public key to use this authentication method - please contact support to configure";
    assert_token_error(
        response,
        StatusCode::FORBIDDEN,
        "public_key error",
        description,
    )
    .await;
}

#[tokio::test]
async fn unreadable_jwks_file_is_403_unreachable() {
    let sandbox = spawn(|_| {}).await;
    let claims = sandbox.claims_for(BROKEN_JWKS_API_KEY);
    let response = sandbox
        .request_token(&sign(&jwt_header("key-a"), &claims, key_a()))
        .await;
    let description = "The JWKS endpoint, for your client_assertion can't be reached";
    assert_token_error(
        response,
        StatusCode::FORBIDDEN,
        "public_key error",
        description,
    )
    .await;
}

#[tokio::test]
async fn assertion_for_another_token_url_is_401() {
    let sandbox = spawn(|_| {}).await;
    let mut claims = sandbox.claims();
    claims["aud"] = json!("https://int.api.service.nhs.uk/oauth2/token");
    let response = sandbox
        .request_token(&sign(&jwt_header("key-a"), &claims, key_a()))
        .await;
    let description = "Missing or invalid 'aud' claim in client_assertion JWT";
    assert_token_error(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn aud_follows_the_configured_public_url() {
    let public = url::Url::parse("https://sandbox.example.test/").unwrap();
    let sandbox = spawn(|cfg| cfg.public_url = Some(public)).await;
    assert_eq!(
        sandbox.handle.token_url().as_str(),
        "https://sandbox.example.test/oauth2/token"
    );
    let mut claims = sandbox.claims();
    claims["aud"] = json!("https://sandbox.example.test/oauth2/token");
    // The sandbox itself is reached on its bound address; only `aud` carries the public URL.
    let url = format!("http://{}/oauth2/token", sandbox.handle.local_addr());
    let assertion = sign(&jwt_header("key-a"), &claims, key_a());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion),
    ];
    let response = sandbox.http.post(url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn assertion_with_kid_missing_from_jwks_is_401() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .request_token(&sign(
            &jwt_header("no-such-kid"),
            &sandbox.claims(),
            key_a(),
        ))
        .await;
    let description = "Invalid 'kid' header in client_assertion JWT - no matching public key";
    assert_token_error(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid_request",
        description,
    )
    .await;
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_401() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .request_token(&sign(&jwt_header("key-a"), &sandbox.claims(), key_b()))
        .await;
    let description = "JWT signature verification failed";
    assert_token_error(
        response,
        StatusCode::UNAUTHORIZED,
        "public_key error",
        description,
    )
    .await;
    assert_eq!(sandbox.handle.stats().token_errors, 1);
}

#[tokio::test]
async fn rewritten_jwks_file_is_honoured_without_restart() {
    let sandbox = spawn(|_| {}).await;
    assert_eq!(
        sandbox.request_token(&sandbox.assertion()).await.status(),
        StatusCode::OK
    );

    // Rotate: keygen replaces jwks.json with key b only.
    let paths = keygen::write(key_b(), sandbox.dir.path()).unwrap();
    assert_eq!(paths.jwks, sandbox.dir.path().join("jwks.json"));

    let rotated = sign(&jwt_header("key-b"), &sandbox.claims(), key_b());
    assert_eq!(
        sandbox.request_token(&rotated).await.status(),
        StatusCode::OK
    );
    let retired = sandbox.request_token(&sandbox.assertion()).await;
    let description = "Invalid 'kid' header in client_assertion JWT - no matching public key";
    assert_token_error(
        retired,
        StatusCode::UNAUTHORIZED,
        "invalid_request",
        description,
    )
    .await;

    // Publishing both keys accepts both.
    write_jwks(&paths.jwks, &[key_a(), key_b()]);
    assert_eq!(
        sandbox.request_token(&sandbox.assertion()).await.status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// /ambulance-data-submission
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_path_is_404_before_any_token_check() {
    let sandbox = spawn(|_| {}).await;
    let url = format!("{}/submission", sandbox.handle.api_base_url());
    let response = sandbox.http.post(url).body("{}").send().await.unwrap();
    assert_error_body(response, StatusCode::NOT_FOUND, "Server Not Found").await;
    assert_error_body(
        sandbox.get("/elsewhere").await,
        StatusCode::NOT_FOUND,
        "Server Not Found",
    )
    .await;
    assert_eq!(sandbox.handle.stats().rejected_404, 2);
}

#[tokio::test]
async fn process_message_with_get_or_put_is_405_naming_the_verb() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox
        .http
        .get(sandbox.process_message_url())
        .send()
        .await
        .unwrap();
    assert_error_body(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Request method must be POST, not GET",
    )
    .await;
    let response = sandbox
        .http
        .put(sandbox.process_message_url())
        .send()
        .await
        .unwrap();
    assert_error_body(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Request method must be POST, not PUT",
    )
    .await;
}

#[tokio::test]
async fn process_message_without_or_with_malformed_authorization_is_401() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox.submit(None, "{}").await;
    assert_error_body(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid/missing access token",
    )
    .await;
    let response = sandbox
        .http
        .post(sandbox.process_message_url())
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_error_body(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid/missing access token",
    )
    .await;
    assert_eq!(sandbox.handle.stats().rejected_401, 2);
}

#[tokio::test]
async fn process_message_with_unknown_token_is_403() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox.submit(Some("not-issued-here"), "{}").await;
    assert_error_body(response, StatusCode::FORBIDDEN, "invalid access token").await;
    assert_eq!(sandbox.handle.stats().rejected_403, 1);
}

#[tokio::test]
async fn process_message_with_expired_token_is_401_apigee_fault() {
    let sandbox = spawn(|cfg| cfg.token_lifetime_secs = 1).await;
    let token = sandbox.access_token().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = sandbox.submit(Some(&token), "{}").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    let fault = json!({"fault": {
        "faultstring": "Access Token expired",
        "detail": {"errorcode": "keymanagement.service.access_token_expired"}
    }});
    assert_eq!(body, fault);
    assert_eq!(sandbox.handle.stats().rejected_expired, 1);
}

#[tokio::test]
async fn submissions_over_the_app_quota_are_429_with_retry_after() {
    let sandbox = spawn(|cfg| cfg.quota_per_minute = 2).await;
    let token = sandbox.access_token().await;
    for _ in 0..2 {
        assert_eq!(
            sandbox.submit(Some(&token), "{}").await.status(),
            StatusCode::OK
        );
    }
    let response = sandbox.submit(Some(&token), "{}").await;
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let message = "Your application, test-api-key, has exceeded its quota of 2 requests every 1 minute(s) and is being rate limited.";
    assert_error_body(response, StatusCode::TOO_MANY_REQUESTS, message).await;
    assert_eq!(sandbox.handle.stats().rejected_429, 1);
}

#[tokio::test]
async fn valid_submission_is_200_with_a_fresh_message_id() {
    let sandbox = spawn(|_| {}).await;
    let token = sandbox.access_token().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = sandbox.submit(Some(&token), "{}").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        ids.push(body["message"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(sandbox.handle.stats().submissions_accepted, 2);
}

#[tokio::test]
async fn open_access_needs_no_token_but_keeps_the_quota() {
    let sandbox = spawn(|cfg| {
        cfg.open_access = true;
        cfg.quota_per_minute = 1;
    })
    .await;
    assert_eq!(sandbox.submit(None, "{}").await.status(), StatusCode::OK);
    let response = sandbox.submit(None, "{}").await;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let message = "Your application, open-access, has exceeded its quota of 1 requests every 1 minute(s) and is being rate limited.";
    assert_error_body(response, StatusCode::TOO_MANY_REQUESTS, message).await;
}

#[tokio::test]
async fn a_sink_answers_and_counts_submissions_without_recording_their_calls() {
    let sandbox = spawn(|cfg| cfg.record_calls = false).await;
    let token = sandbox.access_token().await;
    let bundle = serde_json::to_vec(&call_bundle("bundle-1", "CALL-0001")).unwrap();
    let response = sandbox.submit(Some(&token), bundle.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let message: Value = response.json().await.unwrap();
    assert!(message["message"].as_str().is_some_and(|id| !id.is_empty()));

    let stats = sandbox.handle.stats();
    assert_eq!(stats.submissions_accepted, 1);
    assert_eq!(stats.bytes_received, bundle.len() as u64);
    assert_eq!(stats.calls_received, 0);
    assert_eq!(
        stats.unparseable_bodies, 0,
        "not parsed, so not counted unparseable"
    );
    assert!(sandbox.handle.received_calls().is_empty());
}

#[tokio::test]
async fn single_call_bundle_is_recorded_with_its_ids_and_hash() {
    let sandbox = spawn(|_| {}).await;
    let token = sandbox.access_token().await;
    let bundle = call_bundle("bundle-1", "CALL-0001");
    let response = sandbox
        .submit(Some(&token), serde_json::to_vec_pretty(&bundle).unwrap())
        .await;
    let message: Value = response.json().await.unwrap();

    let calls = sandbox.handle.received_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].submission_id, message["message"].as_str().unwrap());
    assert_eq!(calls[0].bundle_id, "bundle-1");
    assert_eq!(calls[0].call_id, "CALL-0001");
    assert_eq!(calls[0].timestamp.as_deref(), Some("2025-03-01T09:30:00Z"));
    assert_eq!(calls[0].body_sha256, sha256_hex(&bundle));
}

#[tokio::test]
async fn batch_bundle_records_each_call_bundle_in_order() {
    let sandbox = spawn(|_| {}).await;
    let token = sandbox.access_token().await;
    let (first, second) = (call_bundle("b-1", "CALL-1"), call_bundle("b-2", "CALL-2"));
    let batch = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": first, "request": {"method": "POST", "url": "Bundle"}},
            {"resource": second, "request": {"method": "POST", "url": "Bundle"}}
        ]
    });
    let response = sandbox.submit(Some(&token), batch.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let calls = sandbox.handle.received_calls();
    let ids: Vec<_> = calls
        .iter()
        .map(|c| (c.bundle_id.as_str(), c.call_id.as_str()))
        .collect();
    assert_eq!(ids, [("b-1", "CALL-1"), ("b-2", "CALL-2")]);
    assert_eq!(calls[1].body_sha256, sha256_hex(&second));
    assert_eq!(calls[0].submission_id, calls[1].submission_id);
    assert_eq!(sandbox.handle.stats().calls_received, 2);
}

#[tokio::test]
async fn unparseable_body_is_accepted_and_counted() {
    let sandbox = spawn(|_| {}).await;
    let token = sandbox.access_token().await;
    assert_eq!(
        sandbox
            .submit(Some(&token), "this is not FHIR")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        sandbox.submit(Some(&token), "").await.status(),
        StatusCode::OK
    );
    let stats = sandbox.handle.stats();
    assert_eq!(
        (stats.submissions_accepted, stats.unparseable_bodies),
        (2, 2)
    );
    assert!(sandbox.handle.received_calls().is_empty());
}

#[tokio::test]
async fn ping_answers_version_json_without_a_token() {
    let sandbox = spawn(|_| {}).await;
    let response = sandbox.get("/ambulance-data-submission/_ping").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["version"].is_string(), "{body}");
}

#[tokio::test]
async fn inspection_endpoints_serve_stats_and_calls_as_json() {
    let sandbox = spawn(|_| {}).await;
    let token = sandbox.access_token().await;
    sandbox
        .submit(Some(&token), call_bundle("b", "C").to_string())
        .await;
    let stats: SandboxStats = sandbox.get("/_sandbox/stats").await.json().await.unwrap();
    assert_eq!(stats, sandbox.handle.stats());
    assert_eq!(stats.tokens_issued, 1);
    let calls: Vec<sandbox::ReceivedCall> =
        sandbox.get("/_sandbox/calls").await.json().await.unwrap();
    assert_eq!(calls, sandbox.handle.received_calls());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sandbox = spawn(|_| {}).await;
    let url = sandbox.process_message_url();
    sandbox.handle.shutdown().await;
    assert!(sandbox.http.post(url).send().await.is_err());
}

// ---------------------------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn keygen_writes_a_private_key_0600_a_public_key_and_a_jwks_that_verifies_its_jwts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let paths = keygen::write(key_a(), &out).unwrap();
    assert_eq!(paths.private_key, out.join("key-a.pem"));
    assert_eq!(paths.public_key, out.join("key-a.pub.pem"));
    assert_eq!(paths.jwks, out.join("jwks.json"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&paths.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let private_pem = std::fs::read_to_string(&paths.private_key).unwrap();
    let public_pem = std::fs::read_to_string(&paths.public_key).unwrap();
    assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));

    let jwks: Value = serde_json::from_slice(&std::fs::read(&paths.jwks).unwrap()).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    for (field, value) in [
        ("kty", "RSA"),
        ("alg", "RS512"),
        ("use", "sig"),
        ("kid", "key-a"),
    ] {
        assert_eq!(jwk[field], value, "{field}");
    }
    assert_eq!(jwk["e"], "AQAB");
    assert!(
        !jwk["n"].as_str().unwrap().contains(['=', '+', '/']),
        "base64url without padding"
    );

    // A JWT signed with the written private key verifies with the JWKS key and the public PEM.
    let claims = json!({"sub": "x", "exp": now() + 60});
    let mut header = jsonwebtoken::Header::new(Algorithm::RS512);
    header.kid = Some("key-a".into());
    let signing_key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &signing_key).unwrap();
    let validation = {
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS512);
        v.required_spec_claims.clear();
        v
    };
    let from_jwks =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let decoded = jsonwebtoken::decode::<Value>(&token, &from_jwks, &validation).unwrap();
    assert_eq!(decoded.claims, claims);
    let from_pem = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&token, &from_pem, &validation).is_ok());
}

#[test]
fn keygen_refuses_to_overwrite_an_existing_key() {
    let dir = tempfile::tempdir().unwrap();
    keygen::write(key_a(), dir.path()).unwrap();
    let error = keygen::write(key_a(), dir.path()).unwrap_err();
    assert!(
        matches!(error, KeygenError::AlreadyExists(path) if path == dir.path().join("key-a.pem"))
    );
}

#[test]
fn keygen_rejects_a_kid_that_is_not_a_safe_file_name() {
    let error = keygen::generate("../escape", 2048).unwrap_err();
    assert!(matches!(error, KeygenError::InvalidKid(_)));
}

#[test]
fn jwks_lists_every_given_key_in_order() {
    let jwks = keygen::jwks(&[key_a(), key_b()]);
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, [json!("key-a"), json!("key-b")]);
}
