//! The sandbox's memory: registered apps, issued tokens, used `jti`s, quotas, counters, the
//! calls received and the fault profile in force.
//!
//! Everything lives behind one `std::sync::Mutex`, held only for map updates and never across an
//! `.await`, which keeps thousands of requests per second cheap. Nothing is persisted: a restart
//! forgets tokens, `jti`s and recorded calls. Bodies are never stored, only what
//! [`ReceivedCall`] extracts.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::faults::{FaultProfile, Injector};
use super::quota::Quota;
use super::record::ReceivedCall;

/// Counters of everything the sandbox answered. `rejected_*` count `$process-message` and other
/// API-path rejections; token endpoint failures are all in `token_errors`. Injected faults are
/// counted only in the `faults_*` and `token_outage_*` counters, never in the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStats {
    /// `$process-message` requests answered 200.
    pub submissions_accepted: u64,
    /// Call bundles recorded from accepted submissions.
    pub calls_received: u64,
    /// Accepted submissions whose body was not a FHIR Bundle (accepted anyway, as the real API does).
    pub unparseable_bodies: u64,
    /// Body bytes of accepted submissions.
    pub bytes_received: u64,
    /// Access tokens issued by `/oauth2/token`.
    pub tokens_issued: u64,
    /// `/oauth2/token` requests answered with an error (any row of the table, including 429).
    pub token_errors: u64,
    /// The subset of `token_errors` that were 429.
    pub token_rate_limited: u64,
    /// 401s: missing or malformed `Authorization`, or an expired token.
    pub rejected_401: u64,
    /// The subset of `rejected_401` caused by an expired token.
    pub rejected_expired: u64,
    /// 403s: unknown access token.
    pub rejected_403: u64,
    /// 404s: unknown path.
    pub rejected_404: u64,
    /// 405s: `$process-message` with a method other than POST.
    pub rejected_405: u64,
    /// 429s: `$process-message` quota exceeded.
    pub rejected_429: u64,
    /// `$process-message` requests answered with an injected 5xx.
    pub faults_injected_5xx: u64,
    /// `$process-message` requests answered with an injected 4xx other than 429 (e.g. 408).
    pub faults_injected_4xx: u64,
    /// `$process-message` requests answered with an injected 429 (the `429=` rate).
    pub faults_injected_429: u64,
    /// `$process-message` requests answered 429 because a 429 storm was on.
    pub faults_storm_429: u64,
    /// `$process-message` connections reset without a response.
    pub faults_reset: u64,
    /// `$process-message` requests delayed by injected latency (accepted or faulted).
    pub faults_delayed: u64,
    /// Token requests refused with 503 by an injected outage.
    pub token_outage_refusals: u64,
    /// Token request connections reset without a response.
    pub token_outage_resets: u64,
}

/// What the sandbox knows about an access token presented on `$process-message`.
pub(crate) enum TokenStatus {
    Unknown,
    Expired,
    Valid { app: String },
}

/// A freshly issued access token.
pub(crate) struct IssuedToken {
    pub access_token: String,
    pub issued_at_ms: i64,
}

/// Fixed settings derived from [`super::SandboxConfig`] at start.
#[derive(Debug)]
pub(crate) struct Settings {
    /// API key → JWKS file (`None` = no public key registered).
    pub apps: HashMap<String, Option<PathBuf>>,
    pub open_access: bool,
    pub record_calls: bool,
    pub token_url: Url,
    pub token_lifetime: Duration,
}

/// State shared by all handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub settings: Settings,
    /// The fault profile in force and its dice (its own lock).
    pub faults: Injector,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    stats: SandboxStats,
    calls: Vec<ReceivedCall>,
    tokens: HashMap<String, TokenRecord>,
    /// `(client, jti)` pairs already used to obtain a token (the platform keeps them 30 days).
    used_jtis: HashSet<(String, String)>,
    api_quota: Quota,
    token_quota: Quota,
}

#[derive(Debug)]
struct TokenRecord {
    app: String,
    expires_at: Instant,
}

impl Shared {
    pub(crate) fn new(
        settings: Settings,
        quota_per_minute: u32,
        token_quota: u32,
        faults: FaultProfile,
    ) -> Self {
        let state = State {
            stats: SandboxStats::default(),
            calls: Vec::new(),
            tokens: HashMap::new(),
            used_jtis: HashSet::new(),
            api_quota: Quota::per_minute(quota_per_minute),
            token_quota: Quota::per_minute(token_quota),
        };
        Self {
            settings,
            faults: Injector::new(faults),
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters half-updated; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Updates the counters.
    pub(crate) fn count(&self, update: impl FnOnce(&mut SandboxStats)) {
        update(&mut self.lock().stats);
    }

    pub(crate) fn stats(&self) -> SandboxStats {
        self.lock().stats.clone()
    }

    pub(crate) fn calls(&self) -> Vec<ReceivedCall> {
        self.lock().calls.clone()
    }

    /// Every access token issued in the last day (expired ones included).
    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.lock().tokens.keys().cloned().collect()
    }

    pub(crate) fn is_jti_used(&self, client: &str, jti: &str) -> bool {
        self.lock()
            .used_jtis
            .contains(&(client.to_owned(), jti.to_owned()))
    }

    /// Counts a token request against `app`'s token quota.
    pub(crate) fn take_token_quota(&self, app: &str) -> Result<(), (u32, Duration)> {
        let mut state = self.lock();
        let limit = state.token_quota.limit();
        state
            .token_quota
            .take(app, Instant::now())
            .map_err(|wait| (limit, wait))
    }

    /// Counts a submission against `app`'s `$process-message` quota.
    pub(crate) fn take_api_quota(&self, app: &str) -> Result<(), (u32, Duration)> {
        let mut state = self.lock();
        let limit = state.api_quota.limit();
        state
            .api_quota
            .take(app, Instant::now())
            .map_err(|wait| (limit, wait))
    }

    /// Remembers `(client, jti)` and issues a token, or `None` when that `jti` was used meanwhile
    /// (checked again here so two concurrent requests cannot both use one `jti`).
    pub(crate) fn issue_token(&self, client: &str, jti: &str) -> Option<IssuedToken> {
        let now = Instant::now();
        let mut state = self.lock();
        if !state.used_jtis.insert((client.to_owned(), jti.to_owned())) {
            return None;
        }
        // Keep expired tokens for a day so they answer "expired" rather than "unknown".
        state.tokens.retain(|_, t| {
            now.saturating_duration_since(t.expires_at) < Duration::from_secs(86_400)
        });
        let access_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 28);
        let record = TokenRecord {
            app: client.to_owned(),
            expires_at: now + self.settings.token_lifetime,
        };
        state.tokens.insert(access_token.clone(), record);
        state.stats.tokens_issued += 1;
        Some(IssuedToken {
            access_token,
            issued_at_ms: chrono::Utc::now().timestamp_millis(),
        })
    }

    pub(crate) fn token_status(&self, access_token: &str) -> TokenStatus {
        let state = self.lock();
        match state.tokens.get(access_token) {
            None => TokenStatus::Unknown,
            Some(t) if Instant::now() >= t.expires_at => TokenStatus::Expired,
            Some(t) => TokenStatus::Valid { app: t.app.clone() },
        }
    }

    /// Records an accepted submission; `calls` is `None` for an unparseable body.
    pub(crate) fn record_submission(&self, bytes: usize, calls: Option<Vec<ReceivedCall>>) {
        let mut state = self.lock();
        state.stats.submissions_accepted += 1;
        state.stats.bytes_received += bytes as u64;
        if !self.settings.record_calls {
            return;
        }
        match calls {
            Some(calls) => {
                state.stats.calls_received += calls.len() as u64;
                state.calls.extend(calls);
            }
            None => state.stats.unparseable_bodies += 1,
        }
    }
}
