//! Auth: the one shared access token, obtained with a signed JWT client assertion (RS512).
//!
//! Input: requests ask [`TokenProvider::bearer`] for a token; a 401/403 answer hands the token
//! back through [`TokenProvider::reject`]. Output: a valid bearer token, or `None` in open-access
//! mode (the NHS sandbox). Guarantees: single-flight (concurrent callers never mint two tokens:
//! the refresh happens under one async lock); a fresh `jti` (UUIDv4) for every assertion, never
//! reused; `exp` 290 s ahead (the platform refuses more than 300 s); the API key file, the private
//! key file and the `kid` file (`nhs_api.kid_file`, when used) are re-read for every assertion, so
//! a rotated key, even to a new `kid`, is picked up without a restart.
//! The token is refreshed proactively by [`TokenProvider::run_refresher`] once
//! `refresh_fraction` of its lifetime has passed; if a refresh fails while the current token is
//! still valid (more than [`VALIDITY_MARGIN`] left), the current token stays in use.
//!
//! Token endpoint discipline: the endpoint's quota (300 a minute per application, shared by every
//! replica) is protected whatever the callers do. Every token request, from the refresher or from
//! a submission, takes one from this process's [`TokenBudget`] (`nhs_api.token_requests_per_minute`);
//! after a failure no request is made before a shared backoff ends (1 s doubling to 60 s, equal
//! jitter) or, when the answer carried one, before its `Retry-After` (seconds or HTTP-date, capped
//! at `nhs_api.request.max_retry_after_s`). A caller that needs a token meanwhile gets the current
//! one if it is still valid, or [`AuthError::HeldBack`] at once, without a request. So a failing
//! endpoint sees a handful of requests in the first minute and about one a minute after, however
//! many submissions are waiting. One exception ends the backoff early: the API refusing the
//! current token (401/403, [`TokenProvider::reject`]) shows the platform answers again after an
//! outage, so the replacement is requested at once (still within the budget, and never before a
//! token endpoint's own `Retry-After`).
//!
//! `expires_in` (a string on the platform, `"599"`; a number is accepted too) is read without
//! panicking whatever it holds: fractions are cut to whole seconds, a lifetime above
//! [`MAX_TOKEN_LIFETIME`] is cut to it (and logged), and a missing, non-numeric, non-finite, zero,
//! negative or sub-second value refuses the answer with [`AuthError::BadResponse`] saying which.
//!
//! Failures: every [`AuthError`] is transient for the
//! pipeline (requests wait and retry; `/readyz` reports no token), and each says what to fix.
//! Key material and tokens are never logged. Each token request is a `token refresh` span with
//! a `POST` child (outcome and bounded `error.type` only; never the assertion, the token or the
//! API key); a caller that waited while another task minted records a `token wait` event.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use url::Url;

use crate::config::nhs_api::{KeyId, Pacing};
use crate::config::AuthConfig;
use crate::metrics::{Metrics, Outcome, StatusLabel};
use crate::rate_limit::{parse_retry_after, TokenBudget, LONG_WAIT};
use crate::telemetry;

/// JWT lifetime requested; the token server refuses more than 300 s (and allows 310).
const ASSERTION_LIFETIME_S: i64 = 290;

/// The shortest `expires_in` accepted: below a second the token would be expired on arrival.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);
/// The longest lifetime believed: a larger `expires_in` (the platform's is 599 s) is cut to
/// this, so the token is refreshed at least daily and no deadline can overflow.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// A held token stays in use after a failed refresh while more than this is left of it (or a
/// quarter of its lifetime, for tokens shorter than 20 s).
pub const VALIDITY_MARGIN: Duration = Duration::from_secs(5);
/// First wait after a failed token request; it doubles with each consecutive failure.
pub const TOKEN_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Cap of that wait (before equal jitter, which draws it from `[backoff/2, backoff]`).
pub const TOKEN_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest `kid` file content accepted (a `kid` is a short identifier).
const MAX_KID_LEN: usize = 256;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key or API key file could not be read or parsed.
    #[error("cannot read {what} from {}: {reason}", crate::secret::shown(path))]
    KeyFile {
        /// Which file.
        what: &'static str,
        /// Its path (shown only when it looks like a path, never the secret).
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
    /// No request was made: the last one failed and the backoff or its `Retry-After` has not
    /// ended, or this process's token budget is spent; and no valid token is held.
    #[error("no access token; the next token request is held back for {} s ({reason})", .wait.as_secs_f64().ceil())]
    HeldBack {
        /// How long until a request may be made.
        wait: Duration,
        /// Why (the last failure, or the budget); no key material.
        reason: String,
    },
}

impl AuthError {
    /// Whether retrying soon can help without an operator (outage, rate limit).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::BadResponse(_) | Self::HeldBack { .. } => true,
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
            Self::HeldBack { .. } => "held_back",
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
    /// Any JSON: [`token_lifetime`] decides.
    #[serde(default)]
    expires_in: Option<Value>,
}

/// The lifetime `expires_in` gives, as whole seconds within
/// [[`MIN_TOKEN_LIFETIME`], [`MAX_TOKEN_LIFETIME`]]; the flag says it was cut to the maximum.
/// Accepts a number or a numeric string (`"599"`, `599`, `"599.9"`); refuses, saying why, a
/// missing or `null` value, any other JSON type, a non-numeric or non-finite string, and a value
/// under a second (zero and negatives included). Never panics.
fn token_lifetime(expires_in: Option<&Value>) -> Result<(Duration, bool), AuthError> {
    let bad = |why: String| AuthError::BadResponse(format!("expires_in {why}"));
    let seconds = match expires_in {
        None | Some(Value::Null) => return Err(bad("is missing".into())),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let shown = || {
        let text = expires_in.map(Value::to_string).unwrap_or_default();
        text.chars().take(40).collect::<String>()
    };
    let seconds = match seconds {
        Some(s) if s.is_finite() => s,
        _ => return Err(bad(format!("is not a number of seconds: {}", shown()))),
    };
    if seconds < MIN_TOKEN_LIFETIME.as_secs_f64() {
        return Err(bad(format!(
            "is {}: under the {} s minimum, the token would be expired on arrival",
            shown(),
            MIN_TOKEN_LIFETIME.as_secs()
        )));
    }
    let max = MAX_TOKEN_LIFETIME.as_secs();
    if seconds > max as f64 {
        return Ok((MAX_TOKEN_LIFETIME, true));
    }
    // Finite and within [1, max]: the cast is exact after `floor`.
    Ok((Duration::from_secs(seconds.floor() as u64), false))
}

/// A 200 answer of the token endpoint: the access token, its lifetime and whether that was cut
/// to [`MAX_TOKEN_LIFETIME`]; or [`AuthError::BadResponse`] saying what is wrong with it. Pure,
/// never panics whatever the body holds (`crate::fuzz::token_response` checks it).
pub(crate) fn read_token(body: &[u8]) -> Result<(String, Duration, bool), AuthError> {
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|e| AuthError::BadResponse(e.to_string()))?;
    if parsed.access_token.is_empty() {
        return Err(AuthError::BadResponse("access_token is empty".into()));
    }
    let (lifetime, cut) = token_lifetime(parsed.expires_in.as_ref())?;
    Ok((parsed.access_token, lifetime, cut))
}

/// Any other answer of the token endpoint: [`AuthError::Refused`] with the OAuth `error` and
/// `error_description` of its body, when it has them. Pure, never panics.
pub(crate) fn refusal(status: u16, body: &[u8]) -> AuthError {
    let err: OAuthError = serde_json::from_slice(body).unwrap_or_default();
    let (error, description) = if err.error.is_empty() {
        ("(no OAuth error body)".to_string(), String::new())
    } else {
        (err.error, err.error_description)
    };
    AuthError::Refused {
        status,
        error,
        description,
    }
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

/// `at + by`, or `at` itself if that would overflow (only reachable with a lifetime far beyond
/// [`MAX_TOKEN_LIFETIME`]; `at` is the safe side: due now).
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).unwrap_or(at)
}

impl Token {
    fn expires_at(&self) -> Instant {
        later(self.obtained, self.lifetime)
    }
    fn refresh_at(&self, fraction: f64) -> Instant {
        later(self.obtained, self.lifetime.mul_f64(fraction))
    }
    /// Whether it may still be sent at `now`: more than the margin left.
    fn is_valid_at(&self, now: Instant) -> bool {
        let margin = VALIDITY_MARGIN.min(self.lifetime / 4);
        later(now, margin) < self.expires_at()
    }
}

struct Jwt {
    token_url: Url,
    api_key_file: PathBuf,
    private_key_file: PathBuf,
    kid: KeyId,
    refresh_fraction: f64,
}

/// What the provider holds, under one lock.
#[derive(Default)]
struct State {
    token: Option<Token>,
    /// Consecutive failed token requests.
    failures: u32,
    /// No token request before this (a failure's backoff or `Retry-After`, or the budget).
    not_before: Option<Instant>,
    /// Why `not_before` is set, for [`AuthError::HeldBack`].
    held_back_by: String,
    /// `not_before` is only the failure backoff (not a `Retry-After`, not the budget).
    backoff_only: bool,
}

/// A failed token request, with the answer's `Retry-After` when it had one.
struct Failed {
    error: AuthError,
    retry_after: Option<Duration>,
}

impl From<AuthError> for Failed {
    fn from(error: AuthError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// The wait after `failures` consecutive failures (at least 1), before jitter: 1 s doubling, at
/// most [`TOKEN_BACKOFF_MAX`].
fn failure_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    TOKEN_BACKOFF_INITIAL
        .saturating_mul(1 << doublings)
        .min(TOKEN_BACKOFF_MAX)
}

/// Equal jitter: a wait in `[backoff/2, backoff]`; `unit` is uniform in `[0, 1]`.
fn equal_jitter(backoff: Duration, unit: f64) -> Duration {
    let half = backoff / 2;
    half + (backoff - half).mul_f64(unit.clamp(0.0, 1.0))
}

/// The process's one token provider; share it in an `Arc`.
pub struct TokenProvider {
    jwt: Option<Jwt>,
    client: reqwest::Client,
    current: Mutex<State>,
    held: AtomicBool,
    /// Token requests made, successful or not (tells a caller it waited for one).
    mints: AtomicU64,
    budget: TokenBudget,
    pacing: Pacing,
    metrics: Metrics,
    /// `false` outside the submission window (`[schedule]`): the refresher requests nothing.
    active: tokio::sync::watch::Sender<bool>,
}

impl TokenProvider {
    /// A provider for the configured mode, with the default [`Pacing`] (see
    /// [`Self::with_pacing`]).
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
        let pacing = Pacing::default();
        Self {
            held: AtomicBool::new(jwt.is_none()),
            jwt,
            client,
            current: Mutex::new(State::default()),
            mints: AtomicU64::new(0),
            budget: TokenBudget::per_minute(pacing.token_requests_per_minute),
            pacing,
            metrics,
            active: tokio::sync::watch::Sender::new(true),
        }
    }

    /// Outside the submission window (`false`) the refresher requests no token and `/readyz`
    /// does not ask for one (waiting is healthy); from the opening (`true`) it refreshes again.
    pub fn set_active(&self, active: bool) {
        self.active.send_replace(active);
    }

    /// The same provider with this token budget and `Retry-After` cap (`nhs_api.token_requests_per_minute`,
    /// `nhs_api.request.max_retry_after_s`).
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.budget = TokenBudget::per_minute(pacing.token_requests_per_minute);
        self.pacing = pacing;
        self
    }

    /// Whether a usable token is held (always true in open-access mode); feeds `/readyz`.
    pub fn is_ready(&self) -> bool {
        self.held.load(Ordering::Relaxed) || !*self.active.borrow()
    }

    /// A bearer token, minting one if none is held or the held one is past its refresh point.
    /// While token requests are held back (a failure's backoff or `Retry-After`, or the budget),
    /// no request is made: the held token is returned if still valid, else
    /// [`AuthError::HeldBack`].
    pub async fn bearer(&self) -> Result<Option<Arc<str>>, AuthError> {
        let Some(jwt) = &self.jwt else {
            return Ok(None);
        };
        let (mints, waiting) = (self.mints.load(Ordering::Relaxed), Instant::now());
        let mut state = self.current.lock().await;
        if self.mints.load(Ordering::Relaxed) != mints {
            // Another task (the refresher, another submission) minted while this one waited.
            telemetry::token_waited(waiting.elapsed());
        }
        let now = Instant::now();
        if let Some(token) = state.token.as_ref() {
            if now < token.refresh_at(jwt.refresh_fraction) {
                return Ok(Some(token.value.clone()));
            }
        }
        let held_back = match state.not_before {
            Some(at) if now < at => Some(at - now),
            _ => match self.budget.take() {
                Ok(()) => None,
                Err(wait) => {
                    state.not_before = Some(later(now, wait));
                    state.backoff_only = false;
                    state.held_back_by = format!(
                        "token request budget of {} a minute spent",
                        self.budget.requests_per_minute()
                    );
                    Some(wait)
                }
            },
        };
        if let Some(wait) = held_back {
            return match state.token.as_ref() {
                Some(token) if token.is_valid_at(now) => Ok(Some(token.value.clone())),
                _ => {
                    self.drop_token(&mut state);
                    Err(AuthError::HeldBack {
                        wait,
                        reason: state.held_back_by.clone(),
                    })
                }
            };
        }
        match self.mint(jwt).await {
            Ok(token) => {
                let value = token.value.clone();
                *state = State {
                    token: Some(token),
                    ..State::default()
                };
                self.held.store(true, Ordering::Relaxed);
                Ok(Some(value))
            }
            Err(failed) => {
                let now = Instant::now();
                let wait = self.after_failure(&mut state, &failed, now);
                let error = failed.error;
                match state.token.as_ref() {
                    Some(token) if token.is_valid_at(now) => {
                        let left = token.expires_at().saturating_duration_since(now);
                        tracing::warn!(
                            message = "Token refresh failed; the current token stays in use.",
                            %error,
                            retry_in_s = wait.as_secs_f64(),
                            token_valid_s = left.as_secs(),
                        );
                        Ok(Some(token.value.clone()))
                    }
                    _ => {
                        tracing::error!(
                            message = "Cannot obtain an access token.",
                            %error,
                            retry_in_s = wait.as_secs_f64(),
                        );
                        self.drop_token(&mut state);
                        Err(error)
                    }
                }
            }
        }
    }

    /// Records a failed request: the next one waits for the backoff of this many consecutive
    /// failures, or for the answer's `Retry-After` (capped) if longer. Returns that wait; a long
    /// one is logged here, once, with its reason.
    fn after_failure(&self, state: &mut State, failed: &Failed, now: Instant) -> Duration {
        state.failures = state.failures.saturating_add(1);
        let unit = rand::thread_rng().gen_range(0.0..=1.0);
        let backoff = equal_jitter(failure_backoff(state.failures), unit);
        let asked = failed
            .retry_after
            .map(|r| r.min(self.pacing.max_retry_after));
        let (wait, reason) = match asked {
            Some(asked) if asked > backoff => (asked, "retry_after"),
            _ => (backoff, "backoff"),
        };
        state.not_before = Some(later(now, wait));
        state.backoff_only = reason == "backoff";
        state.held_back_by = format!("the last one failed: {}", failed.error);
        if wait > LONG_WAIT {
            tracing::warn!(
                message = "Token requests paused.",
                reason,
                pause_s = wait.as_secs(),
                retry_after_s = failed.retry_after.map(|r| r.as_secs()),
                failures = state.failures,
                kind = failed.error.kind(),
            );
        }
        wait
    }

    fn drop_token(&self, state: &mut State) {
        state.token = None;
        self.held.store(false, Ordering::Relaxed);
    }

    /// The API refused `token` (401/403): drop it so the next call mints a new one (within the
    /// budget and after any `Retry-After`). The refusal is the platform answering, so the failure
    /// backoff of earlier token requests (during an outage, say) ends: re-authenticating after
    /// the outage does not wait for it.
    pub async fn reject(&self, token: &str) {
        let mut state = self.current.lock().await;
        if state.token.as_ref().is_some_and(|t| &*t.value == token) {
            state.token = None;
            if state.backoff_only && state.not_before.is_some() {
                state.not_before = None;
                state.backoff_only = false;
            }
        }
    }

    /// Refreshes the token in the background before it reaches its refresh point, until
    /// `cancel` fires. After a failure (or with the budget spent) it sleeps until the next
    /// request is allowed; [`Self::bearer`] logs each failure. Outside the submission window
    /// ([`Self::set_active`] `false`) it requests nothing.
    pub async fn run_refresher(self: Arc<Self>, cancel: CancellationToken) {
        let Some(jwt) = &self.jwt else {
            return;
        };
        let mut active = self.active.subscribe();
        loop {
            // Outside the submission window: no token request until it opens.
            tokio::select! {
                _ = cancel.cancelled() => return,
                woke = active.wait_for(|a| *a) => if woke.is_err() { return },
            }
            let wake = {
                let state = self.current.lock().await;
                let due = state
                    .token
                    .as_ref()
                    .map(|t| t.refresh_at(jwt.refresh_fraction));
                match (due, state.not_before) {
                    (Some(due), Some(allowed)) => due.max(allowed),
                    (Some(at), None) | (None, Some(at)) => at,
                    (None, None) => Instant::now(),
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
                // Went inactive (the window closed): wait for the next opening instead.
                _ = active.wait_for(|a| !*a) => continue,
            }
            // Failures are logged by `bearer` and set `not_before`, which the next round waits for.
            let _ = self.bearer().await;
        }
    }

    /// One token request, in a `token refresh` span; called with `current` locked.
    async fn mint(&self, jwt: &Jwt) -> Result<Token, Failed> {
        let span = telemetry::token_span();
        let result = self.request_token(jwt).instrument(span.clone()).await;
        self.mints.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(token) => {
                let lifetime_s = i64::try_from(token.lifetime.as_secs()).unwrap_or(i64::MAX);
                let expires = chrono::Utc::now().timestamp().saturating_add(lifetime_s);
                self.metrics
                    .token_refreshed(Outcome::Success, Some(expires));
                tracing::info!(
                    message = "Access token obtained.",
                    lifetime_s = token.lifetime.as_secs()
                );
            }
            Err(failed) => {
                telemetry::failed(&span, failed.error.kind());
                self.metrics.token_refreshed(Outcome::Failure, None);
            }
        }
        result
    }

    async fn request_token(&self, jwt: &Jwt) -> Result<Token, Failed> {
        let assertion = client_assertion(jwt)?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .map_err(|e| Failed::from(AuthError::Sign(e.to_string())))?;
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
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            Ok::<_, reqwest::Error>((status, retry_after, response.bytes().await?))
        }
        .instrument(post.clone())
        .await;
        let (status, retry_after, body) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                let label = if e.is_timeout() {
                    StatusLabel::Timeout
                } else {
                    StatusLabel::TransportError
                };
                telemetry::http_finished(&post, 0, label.as_str(), false);
                return Err(AuthError::Transport(without_url(e)).into());
            }
        };
        let label = StatusLabel::from_status(status).as_str();
        telemetry::http_finished(&post, status, label, status == 200);
        drop(post);
        if status != 200 {
            let retry_after = retry_after.and_then(|value| {
                parse_retry_after(&value, SystemTime::now())
                    .inspect_err(|e| tracing::warn!(message = "Retry-After ignored.", error = %e))
                    .ok()
            });
            return Err(Failed {
                error: refusal(status, &body),
                retry_after,
            });
        }
        let (access_token, lifetime, cut) = read_token(&body)?;
        if cut {
            tracing::warn!(
                message = "Token lifetime cut to the maximum.",
                max_s = MAX_TOKEN_LIFETIME.as_secs()
            );
        }
        Ok(Token {
            value: Arc::from(access_token),
            obtained,
            lifetime,
        })
    }
}

/// The `kid` to sign with: the configured one, or the `kid` file's content (trimmed), read now.
fn read_kid(kid: &KeyId) -> Result<String, AuthError> {
    let path = match kid {
        KeyId::Fixed(kid) => return Ok(kid.clone()),
        KeyId::File(path) => path,
    };
    let bad = |reason: String| AuthError::KeyFile {
        what: "the key id (kid)",
        path: path.clone(),
        reason,
    };
    let text =
        crate::secret::read_text("nhs_api.kid_file", path).map_err(|e| bad(e.to_string()))?;
    let kid = text.trim();
    if kid.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
        return Err(bad(format!(
            "not a key id (one line of at most {MAX_KID_LEN} characters)"
        )));
    }
    Ok(kid.to_owned())
}

/// The private key and its `kid`, read afresh. With a `kid` file, the `kid` is read before and
/// after the key: if a rotation changed it in between, both are read again (twice at most), so a
/// key is not signed for with the other key's `kid`.
fn signing_key(jwt: &Jwt) -> Result<(String, EncodingKey), AuthError> {
    let mut kid = read_kid(&jwt.kid)?;
    for _ in 0..3 {
        let key = read_private_key(&jwt.private_key_file)?;
        let again = read_kid(&jwt.kid)?;
        if again == kid {
            return Ok((kid, key));
        }
        kid = again;
    }
    Err(AuthError::KeyFile {
        what: "the key id (kid)",
        path: match &jwt.kid {
            KeyId::File(path) => path.clone(),
            KeyId::Fixed(_) => jwt.private_key_file.clone(),
        },
        reason: "kept changing while the private key was read (a rotation in progress?)".into(),
    })
}

fn read_private_key(path: &Path) -> Result<EncodingKey, AuthError> {
    let pem =
        crate::secret::read("nhs_api.private_key_file", path).map_err(|e| AuthError::KeyFile {
            what: "the private key",
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    EncodingKey::from_rsa_pem(&pem).map_err(|_| AuthError::KeyFile {
        what: "the private key",
        path: path.to_owned(),
        reason: "not an RSA private key in PEM form".into(),
    })
}

/// Builds and signs the client assertion, reading the key files (and the `kid` file) afresh.
fn client_assertion(jwt: &Jwt) -> Result<String, AuthError> {
    let api_key =
        crate::secret::read_text("nhs_api.api_key_file", &jwt.api_key_file).map_err(|e| {
            AuthError::KeyFile {
                what: "the API key",
                path: jwt.api_key_file.clone(),
                reason: e.to_string(),
            }
        })?;
    let api_key = api_key.as_str();
    let (kid, key) = signing_key(jwt)?;
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some(kid);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lifetime(value: Option<Value>) -> Result<(Duration, bool), String> {
        token_lifetime(value.as_ref()).map_err(|e| e.to_string())
    }

    #[test]
    fn expires_in_as_the_platform_writes_it_or_as_a_number() {
        let secs = |s| Ok((Duration::from_secs(s), false));
        assert_eq!(lifetime(Some(json!("599"))), secs(599));
        assert_eq!(lifetime(Some(json!(" 599 "))), secs(599));
        assert_eq!(lifetime(Some(json!(599))), secs(599));
        // Fractions are cut to whole seconds (never rounded up past the real expiry).
        assert_eq!(lifetime(Some(json!("599.9"))), secs(599));
        assert_eq!(lifetime(Some(json!(1.5))), secs(1));
        assert_eq!(lifetime(Some(json!("1"))), secs(1));
    }

    #[test]
    fn a_huge_expires_in_is_cut_to_the_maximum() {
        for huge in [
            json!("18446744073709551615"),
            json!(18446744073709551615u64),
            json!("1e300"),
            json!(1e300),
            json!(86_401),
        ] {
            assert_eq!(
                lifetime(Some(huge.clone())),
                Ok((MAX_TOKEN_LIFETIME, true)),
                "{huge}"
            );
        }
        assert_eq!(
            lifetime(Some(json!(86_400))),
            Ok((MAX_TOKEN_LIFETIME, false))
        );
    }

    #[test]
    fn a_zero_negative_sub_second_missing_or_non_numeric_expires_in_is_refused_saying_why() {
        let cases = [
            (Some(json!("0")), "minimum"),
            (Some(json!(0)), "minimum"),
            (Some(json!("-1")), "minimum"),
            (Some(json!(-599)), "minimum"),
            (Some(json!("0.5")), "minimum"),
            (Some(json!(-1e300)), "minimum"),
            (None, "missing"),
            (Some(Value::Null), "missing"),
            (Some(json!("")), "not a number"),
            (Some(json!("abc")), "not a number"),
            (Some(json!("599s")), "not a number"),
            (Some(json!("inf")), "not a number"),
            (Some(json!("NaN")), "not a number"),
            (Some(json!(true)), "not a number"),
            (Some(json!([599])), "not a number"),
            (Some(json!({"s": 599})), "not a number"),
        ];
        for (value, why) in cases {
            let error = lifetime(value.clone()).unwrap_err();
            assert!(
                error.contains("expires_in") && error.contains(why),
                "{value:?}: {error}"
            );
        }
        // The value quoted in the error is bounded.
        let long = "9".repeat(400) + "x";
        assert!(lifetime(Some(json!(long))).unwrap_err().len() < 200);
    }

    #[test]
    fn deadlines_never_overflow_whatever_the_lifetime() {
        let token = Token {
            value: Arc::from("t"),
            obtained: Instant::now(),
            lifetime: Duration::MAX,
        };
        // Overflow falls back to "due now", the safe side.
        assert_eq!(token.expires_at(), token.obtained);
        assert_eq!(token.refresh_at(0.75), token.obtained);
        assert!(!token.is_valid_at(Instant::now()));
        let day = Token {
            lifetime: MAX_TOKEN_LIFETIME,
            ..token
        };
        assert!(day.is_valid_at(day.obtained));
    }

    #[test]
    fn a_short_token_is_valid_until_a_quarter_of_its_lifetime_is_left() {
        let now = Instant::now();
        let token = Token {
            value: Arc::from("t"),
            obtained: now,
            lifetime: Duration::from_secs(8),
        };
        assert!(token.is_valid_at(now + Duration::from_millis(5_900)));
        assert!(!token.is_valid_at(now + Duration::from_secs(6)));
        let long = Token {
            lifetime: Duration::from_secs(599),
            ..token
        };
        assert!(long.is_valid_at(now + Duration::from_secs(593)));
        assert!(!long.is_valid_at(now + Duration::from_secs(594)));
    }

    #[test]
    fn the_failure_backoff_doubles_from_one_second_to_a_minute_and_never_overflows() {
        let seen: Vec<u64> = (1..=9).map(|n| failure_backoff(n).as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(failure_backoff(0), TOKEN_BACKOFF_INITIAL);
        assert_eq!(failure_backoff(u32::MAX), TOKEN_BACKOFF_MAX);
        let b = Duration::from_secs(60);
        assert_eq!(equal_jitter(b, 0.0), Duration::from_secs(30));
        assert_eq!(equal_jitter(b, 1.0), b);
        assert_eq!(equal_jitter(b, 9.0), b);
    }

    #[test]
    fn a_kid_is_read_from_its_file_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kid");
        let kid = KeyId::File(file.clone());
        assert!(matches!(read_kid(&kid), Err(AuthError::KeyFile { .. })));
        std::fs::write(&file, "ads-prod-2\n").unwrap();
        assert_eq!(read_kid(&kid).unwrap(), "ads-prod-2");
        for bad in ["", " \n\t", "a\nb", &"k".repeat(300)] {
            std::fs::write(&file, bad).unwrap();
            match read_kid(&kid) {
                Err(e @ AuthError::KeyFile { .. }) => {
                    assert!(e.to_string().contains("kid"), "{e}");
                    assert!(!e.is_transient());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(read_kid(&KeyId::from("fixed")).unwrap(), "fixed");
    }

    #[test]
    fn held_back_is_transient_and_names_its_wait() {
        let error = AuthError::HeldBack {
            wait: Duration::from_millis(29_200),
            reason: "the last one failed: token endpoint answered 429".into(),
        };
        assert!(error.is_transient());
        assert_eq!(error.kind(), "held_back");
        assert!(error.to_string().contains("30 s"), "{error}");
    }

    /// A provider for an unreachable token URL holding the token `t`, with three failed
    /// refreshes behind it and the next request held back a minute by `backoff_only`'s cause.
    async fn after_failed_refreshes(backoff_only: bool) -> TokenProvider {
        let auth = AuthConfig::SignedJwt {
            token_url: Url::parse("http://127.0.0.1:9/oauth2/token").unwrap(),
            api_key_file: "/nonexistent/api-key".into(),
            private_key_file: "/nonexistent/key.pem".into(),
            kid: "k".into(),
            refresh_fraction: 0.75,
        };
        let provider = TokenProvider::new(&auth, reqwest::Client::new(), Metrics::new());
        {
            let mut state = provider.current.lock().await;
            state.token = Some(Token {
                value: "t".into(),
                obtained: Instant::now(),
                lifetime: Duration::from_secs(599),
            });
            state.failures = 3;
            state.not_before = Some(Instant::now() + Duration::from_secs(60));
            state.backoff_only = backoff_only;
        }
        provider
    }

    #[tokio::test]
    async fn the_api_refusing_the_token_ends_the_failure_backoff_but_not_a_retry_after() {
        let provider = after_failed_refreshes(true).await;
        // Another token than the held one: nothing changes.
        provider.reject("other").await;
        assert!(provider.current.lock().await.not_before.is_some());
        provider.reject("t").await;
        let state = provider.current.lock().await;
        assert!(state.token.is_none());
        assert!(state.not_before.is_none(), "re-authenticates at once");

        // A token endpoint's Retry-After (or the budget) is kept.
        let provider = after_failed_refreshes(false).await;
        provider.reject("t").await;
        assert!(provider.current.lock().await.not_before.is_some());
    }
}
