//! Auth: the one shared access token, obtained with a signed JWT client assertion (RS512).
//!
//! Input: requests ask [`TokenProvider::bearer`] for a token; a 401/403 answer hands the token
//! back through [`TokenProvider::reject`]. Output: a valid bearer token, or `None` in open-access
//! mode (the NHS sandbox). Guarantees: single-flight (concurrent callers never mint two tokens:
//! the refresh happens under one async lock); a fresh `jti` (UUIDv4) for every assertion, never
//! reused; `exp` 290 s ahead (the platform refuses more than 300 s); the API key and private key
//! files are re-read for every assertion, so a rotated key is picked up without a restart.
//! The token is refreshed proactively by [`TokenProvider::run_refresher`] once
//! `refresh_fraction` of its lifetime has passed; if a refresh fails while the current token is
//! still valid, the current token stays in use. Failures: every [`AuthError`] is transient for the
//! pipeline (requests wait and retry; `/readyz` reports no token), and each says what to fix.
//! Key material and tokens are never logged. Each token request is a `token refresh` span with
//! a `POST` child (outcome and bounded `error.type` only; never the assertion, the token or the
//! API key); a caller that waited while another task minted records a `token wait` event.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use url::Url;

use crate::config::AuthConfig;
use crate::metrics::{Metrics, Outcome, StatusLabel};
use crate::telemetry;

/// JWT lifetime requested; the token server refuses more than 300 s (and allows 310).
const ASSERTION_LIFETIME_S: i64 = 290;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key or API key file could not be read or parsed.
    #[error("cannot read {what} from {path}: {reason}")]
    KeyFile {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What went wrong (no key material).
        reason: String,
    },
    /// Signing the assertion failed.
    #[error("cannot sign the client assertion: {0}")]
    Sign(String),
    /// The token endpoint could not be reached.
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// The token endpoint refused the assertion.
    #[error("token endpoint answered {status}: {error}: {description}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// The token endpoint answered 200 with an unreadable body.
    #[error("token endpoint answered an unreadable body: {0}")]
    BadResponse(String),
}

impl AuthError {
    /// Whether retrying soon can help without an operator (outage, rate limit).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::BadResponse(_) => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            Self::KeyFile { .. } | Self::Sign(_) => false,
        }
    }

    /// Bounded kind (`error.type` of the `token refresh` span).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KeyFile { .. } => "key_file",
            Self::Sign(_) => "sign",
            Self::Transport(_) => StatusLabel::TransportError.as_str(),
            Self::Refused { status, .. } => StatusLabel::from_status(*status).as_str(),
            Self::BadResponse(_) => "bad_response",
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: StringOrNumber,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(u64),
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

struct Token {
    value: Arc<str>,
    obtained: Instant,
    lifetime: Duration,
}

impl Token {
    fn expires_at(&self) -> Instant {
        self.obtained + self.lifetime
    }
    fn refresh_at(&self, fraction: f64) -> Instant {
        self.obtained + self.lifetime.mul_f64(fraction)
    }
}

struct Jwt {
    token_url: Url,
    api_key_file: PathBuf,
    private_key_file: PathBuf,
    kid: String,
    refresh_fraction: f64,
}

/// The process's one token provider; share it in an `Arc`.
pub struct TokenProvider {
    jwt: Option<Jwt>,
    client: reqwest::Client,
    current: Mutex<Option<Token>>,
    held: AtomicBool,
    /// Token requests made, successful or not (tells a caller it waited for one).
    mints: AtomicU64,
    metrics: Metrics,
}

impl TokenProvider {
    /// A provider for the configured mode.
    pub fn new(config: &AuthConfig, client: reqwest::Client, metrics: Metrics) -> Self {
        let jwt = match config {
            AuthConfig::None => None,
            AuthConfig::SignedJwt {
                token_url,
                api_key_file,
                private_key_file,
                kid,
                refresh_fraction,
            } => Some(Jwt {
                token_url: token_url.clone(),
                api_key_file: api_key_file.clone(),
                private_key_file: private_key_file.clone(),
                kid: kid.clone(),
                refresh_fraction: *refresh_fraction,
            }),
        };
        Self {
            held: AtomicBool::new(jwt.is_none()),
            jwt,
            client,
            current: Mutex::new(None),
            mints: AtomicU64::new(0),
            metrics,
        }
    }

    /// Whether a usable token is held (always true in open-access mode); feeds `/readyz`.
    pub fn is_ready(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// A bearer token, minting one if none is held or the held one is past its refresh point.
    pub async fn bearer(&self) -> Result<Option<Arc<str>>, AuthError> {
        let Some(jwt) = &self.jwt else {
            return Ok(None);
        };
        let (mints, waiting) = (self.mints.load(Ordering::Relaxed), Instant::now());
        let mut current = self.current.lock().await;
        if self.mints.load(Ordering::Relaxed) != mints {
            // Another task (the refresher, another submission) minted while this one waited.
            telemetry::token_waited(waiting.elapsed());
        }
        let now = Instant::now();
        if let Some(token) = current.as_ref() {
            if now < token.refresh_at(jwt.refresh_fraction) {
                return Ok(Some(token.value.clone()));
            }
        }
        match self.mint(jwt).await {
            Ok(token) => {
                let value = token.value.clone();
                *current = Some(token);
                self.held.store(true, Ordering::Relaxed);
                Ok(Some(value))
            }
            Err(error) => match current.as_ref() {
                Some(token) if now + Duration::from_secs(5) < token.expires_at() => {
                    tracing::warn!(message = "Token refresh failed; the current token stays in use.", %error);
                    Ok(Some(token.value.clone()))
                }
                _ => {
                    *current = None;
                    self.held.store(false, Ordering::Relaxed);
                    Err(error)
                }
            },
        }
    }

    /// The API refused `token` (401/403): drop it so the next call mints a new one.
    pub async fn reject(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| &*t.value == token) {
            *current = None;
        }
    }

    /// Refreshes the token in the background before it reaches its refresh point, until
    /// `cancel` fires. Failed refreshes are retried with capped backoff.
    pub async fn run_refresher(self: Arc<Self>, cancel: CancellationToken) {
        let Some(jwt) = &self.jwt else {
            return;
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let wake = {
                let current = self.current.lock().await;
                current
                    .as_ref()
                    .map(|t| t.refresh_at(jwt.refresh_fraction))
                    .unwrap_or_else(Instant::now)
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
            }
            match self.bearer().await {
                Ok(_) => backoff = Duration::from_secs(1),
                Err(error) => {
                    tracing::error!(message = "Cannot obtain an access token.", %error);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// One token request, in a `token refresh` span; called with `current` locked.
    async fn mint(&self, jwt: &Jwt) -> Result<Token, AuthError> {
        let span = telemetry::token_span();
        let result = self.request_token(jwt).instrument(span.clone()).await;
        self.mints.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(token) => {
                let expires = chrono::Utc::now().timestamp() + token.lifetime.as_secs() as i64;
                self.metrics
                    .token_refreshed(Outcome::Success, Some(expires));
                tracing::info!(
                    message = "Access token obtained.",
                    lifetime_s = token.lifetime.as_secs()
                );
            }
            Err(error) => {
                telemetry::failed(&span, error.kind());
                self.metrics.token_refreshed(Outcome::Failure, None);
            }
        }
        result
    }

    async fn request_token(&self, jwt: &Jwt) -> Result<Token, AuthError> {
        let assertion = client_assertion(jwt)?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .map_err(|e| AuthError::Sign(e.to_string()))?;
        let obtained = Instant::now();
        let post = telemetry::http_span(&jwt.token_url, 1);
        let sent = async {
            let response = self
                .client
                .post(jwt.token_url.clone())
                // Exactly this value: the platform compares the header as a string.
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form)
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        }
        .instrument(post.clone())
        .await;
        let (status, body) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                let label = if e.is_timeout() {
                    StatusLabel::Timeout
                } else {
                    StatusLabel::TransportError
                };
                telemetry::http_finished(&post, 0, label.as_str(), false);
                return Err(AuthError::Transport(without_url(e)));
            }
        };
        let label = StatusLabel::from_status(status).as_str();
        telemetry::http_finished(&post, status, label, status == 200);
        drop(post);
        if status != 200 {
            let err: OAuthError = serde_json::from_slice(&body).unwrap_or_default();
            let (error, description) = if err.error.is_empty() {
                ("(no OAuth error body)".to_string(), String::new())
            } else {
                (err.error, err.error_description)
            };
            return Err(AuthError::Refused {
                status,
                error,
                description,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| AuthError::BadResponse(e.to_string()))?;
        let seconds = match parsed.expires_in {
            StringOrNumber::Number(n) => n,
            StringOrNumber::String(s) => s
                .trim()
                .parse()
                .map_err(|_| AuthError::BadResponse("expires_in is not a number".into()))?,
        };
        if seconds == 0 || parsed.access_token.is_empty() {
            return Err(AuthError::BadResponse("empty token or lifetime".into()));
        }
        Ok(Token {
            value: Arc::from(parsed.access_token),
            obtained,
            lifetime: Duration::from_secs(seconds),
        })
    }
}

/// Builds and signs the client assertion, reading both key files afresh.
fn client_assertion(jwt: &Jwt) -> Result<String, AuthError> {
    let api_key = std::fs::read_to_string(&jwt.api_key_file).map_err(|e| AuthError::KeyFile {
        what: "the API key",
        path: jwt.api_key_file.clone(),
        reason: e.to_string(),
    })?;
    let api_key = api_key.trim();
    let pem = std::fs::read(&jwt.private_key_file).map_err(|e| AuthError::KeyFile {
        what: "the private key",
        path: jwt.private_key_file.clone(),
        reason: e.to_string(),
    })?;
    let key = EncodingKey::from_rsa_pem(&pem).map_err(|_| AuthError::KeyFile {
        what: "the private key",
        path: jwt.private_key_file.clone(),
        reason: "not an RSA private key in PEM form".into(),
    })?;
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some(jwt.kid.clone());
    let claims = Claims {
        iss: api_key,
        sub: api_key,
        aud: jwt.token_url.as_str(),
        jti: uuid::Uuid::new_v4().to_string(),
        exp: chrono::Utc::now().timestamp() + ASSERTION_LIFETIME_S,
    };
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| AuthError::Sign(e.to_string()))
}

/// reqwest errors carry the URL; keep the message without it (query strings could hold ids).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}
