//! `[nhs_api]` and `[nhs_api.request]`: the NHS environment, credentials and request limits as
//! written ([`RawNhsApi`], [`RawRequest`]) and validated ([`ApiConfig`], [`AuthConfig`]), their
//! keys ([`SECTION`], [`REQUEST_SECTION`]) and the environments' URLs ([`PRESETS`]).
//!
//! Contract: an environment preset (`sandbox`, `int`, `prod`; nhs-api.md §1.2), or `custom` with
//! explicit URLs, gives the submission URL for the chosen `paths`; `auth` (`signed-jwt` or
//! `none`, from the environment when absent) says how the client authenticates. Signed JWT needs
//! a token URL, the API key file, the private key file and a `kid` (written here, or a
//! `kid_file` beside the key, re-read with it: [`KeyId`]). No authentication is an explicit
//! choice (`auth = "none"`, the default only of `sandbox`), never the result of a missing key:
//! `custom` without `token_url` is refused unless it says `none`.
//! `misconfigured_exit_after_s` bounds how long a misconfigured API may pause the submissions. The token endpoint's budget
//! and the longest `Retry-After` wait are [`Pacing`]. Credentials stay file paths and nothing
//! here reads them. Errors name the key and show an example.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::settings::{Absent, Section, Setting};
use super::ConfigError;

/// `[nhs_api]`
pub const SECTION: Section = Section {
    name: "nhs_api",
    about: "The NHS API environment and the application's credentials. The environment sets the \
            API and token URLs ([Environments](#environments)) and the defaults of the keys that \
            say so.",
    settings: &[
        ENVIRONMENT,
        PATHS,
        BASE_URL,
        AUTH,
        TOKEN_URL,
        API_KEY_FILE,
        PRIVATE_KEY_FILE,
        KID,
        KID_FILE,
        TOKEN_REFRESH_FRACTION,
        TOKEN_REQUESTS_PER_MINUTE,
        MISCONFIGURED_EXIT_AFTER_S,
    ],
};
/// `nhs_api.environment`
pub const ENVIRONMENT: Setting = Setting {
    key: "nhs_api.environment",
    default: Absent::Required,
    prod_default: None,
    expected: "`sandbox`, `int`, `prod` or `custom`",
    example: Some("int"),
    meaning: "the NHS environment: its URLs ([Environments](#environments)), or `custom` with \
              `base_url` and `token_url` (or `auth = \"none\"`)",
};
/// `nhs_api.auth` value: a token obtained with a signed JWT client assertion.
pub const AUTH_SIGNED_JWT: &str = "signed-jwt";
/// `nhs_api.auth` value: no authentication at all.
pub const AUTH_NONE: &str = "none";
/// `nhs_api.auth`
pub const AUTH: Setting = Setting {
    key: "nhs_api.auth",
    default: Absent::Unset("from `nhs_api.environment`: `none` for `sandbox`, else `signed-jwt`"),
    prod_default: None,
    expected: "`signed-jwt` or `none`",
    example: Some("signed-jwt"),
    meaning: "`signed-jwt` (a token from `token_url`; needs the key files and the `kid`) or \
              `none`: no authentication, an explicit choice for an open API (the public \
              sandbox, a local emulator), refused for `int` and `prod`. `custom` without \
              `token_url` must say `none`",
};
/// `nhs_api.paths` value: the platform's current paths.
pub const PATHS_CURRENT: &str = "current";
/// `nhs_api.paths` value: the 2021 paths under `/ambulance-analytics`.
pub const PATHS_LEGACY: &str = "legacy-2021";
/// `nhs_api.paths`
pub const PATHS: Setting = Setting {
    key: "nhs_api.paths",
    default: Absent::Value(PATHS_CURRENT),
    prod_default: None,
    expected: "`current` or `legacy-2021`",
    example: None,
    meaning: "`current` (`/$process-message`, platform `/oauth2/token`) or `legacy-2021` \
              (`/ambulance-analytics/submission`, `…/token`)",
};
/// `nhs_api.base_url`
pub const BASE_URL: Setting = Setting {
    key: "nhs_api.base_url",
    default: Absent::Unset("from `nhs_api.environment`; required for `custom`"),
    prod_default: None,
    expected: "an http(s) URL with a host",
    example: Some("https://int.api.service.nhs.uk/ambulance-data-submission"),
    meaning: "API base URL; submissions are POSTed to `{base}/$process-message` \
              (`{base}/submission` with `legacy-2021`)",
};
/// `nhs_api.token_url`
pub const TOKEN_URL: Setting = Setting {
    key: "nhs_api.token_url",
    default: Absent::Unset("from `nhs_api.environment`"),
    prod_default: None,
    expected: "an http(s) URL with a host",
    example: Some("https://int.api.service.nhs.uk/oauth2/token"),
    meaning: "token endpoint, also the JWT `aud`; required by `signed-jwt` (`sandbox` has none: \
              open access)",
};
/// `nhs_api.api_key_file`
pub const API_KEY_FILE: Setting = Setting {
    key: "nhs_api.api_key_file",
    default: Absent::RequiredWhen("with a token URL"),
    prod_default: None,
    expected: "a file path",
    example: Some("/var/run/secrets/nhs/api-key"),
    meaning: "file with the application's API key (JWT `iss` and `sub`; secret)",
};
/// `nhs_api.private_key_file`
pub const PRIVATE_KEY_FILE: Setting = Setting {
    key: "nhs_api.private_key_file",
    default: Absent::RequiredWhen("with a token URL"),
    prod_default: None,
    expected: "a file path",
    example: Some("/var/run/secrets/nhs/private-key.pem"),
    meaning: "PEM RSA private key registered in the app's JWKS (secret); re-read at every token \
              refresh",
};
/// `nhs_api.kid`
pub const KID: Setting = Setting {
    key: "nhs_api.kid",
    default: Absent::RequiredWhen("with a token URL and no `nhs_api.kid_file`"),
    prod_default: None,
    expected: "a non-empty key id",
    example: Some("ads-int-1"),
    meaning: "key id (`kid`) of that key in the app's JWKS",
};
/// `nhs_api.kid_file`
pub const KID_FILE: Setting = Setting {
    key: "nhs_api.kid_file",
    default: Absent::Unset("none: the `kid` is `nhs_api.kid`"),
    prod_default: None,
    expected: "a file path",
    example: Some("/var/run/secrets/nhs/kid"),
    meaning: "file holding the key id (`kid`) of the private key; overrides `nhs_api.kid`. \
              Re-read with the key at every token refresh, so rotating to a key with a new `kid` \
              needs no restart (`docs/runbook.md`, key rotation)",
};
/// `nhs_api.token_refresh_fraction`
pub const TOKEN_REFRESH_FRACTION: Setting = Setting {
    key: "nhs_api.token_refresh_fraction",
    default: Absent::Value("0.75"),
    prod_default: None,
    expected: "between 0.1 and 0.95",
    example: None,
    meaning: "refresh the token when this fraction of its lifetime has passed",
};
/// Largest `nhs_api.token_requests_per_minute`: the platform's whole token quota per application.
pub const TOKEN_QUOTA_PER_MINUTE: u32 = 300;
/// `nhs_api.token_requests_per_minute`
pub const TOKEN_REQUESTS_PER_MINUTE: Setting = Setting {
    key: "nhs_api.token_requests_per_minute",
    default: Absent::Value("20"),
    prod_default: None,
    expected: "from 1 to 300",
    example: None,
    meaning: "this process's fixed share of the platform's 300 token requests a minute per \
              application (all replicas and deployments using it): 20 keeps 15 replicas under \
              300. A process needs one request per token lifetime (599 s); failures back off \
              (1 s doubling to 60 s, equal jitter) and a 429's `Retry-After` is honoured, below \
              this budget",
};
/// `nhs_api.misconfigured_exit_after_s`
pub const MISCONFIGURED_EXIT_AFTER_S: Setting = Setting {
    key: "nhs_api.misconfigured_exit_after_s",
    default: Absent::Value("0"),
    prod_default: None,
    expected: "a number of seconds, `0` for never",
    example: Some("1800"),
    meaning: "exit non-zero once the API has looked misconfigured (404, 405, a redirect, a 2xx \
              without the API's id, 401/403 with a fresh token) this long; `0` pauses until it \
              answers normally and resumes by itself. Either way nothing is dead-lettered or \
              committed for it (`docs/runbook.md`, AdsConnectorApiMisconfigured)",
};
/// `[nhs_api.request]`
pub const REQUEST_SECTION: Section = Section {
    name: "nhs_api.request",
    about: "Request timeout, retries and concurrency of the submissions.",
    settings: &[
        TIMEOUT_MS,
        MAX_IN_FLIGHT,
        INITIAL_BACKOFF_MS,
        MAX_BACKOFF_MS,
        MAX_RETRY_DURATION_S,
        MAX_RETRY_AFTER_S,
    ],
};
/// `nhs_api.request.timeout_ms`
pub const TIMEOUT_MS: Setting = Setting {
    key: "nhs_api.request.timeout_ms",
    default: Absent::Value("30000"),
    prod_default: None,
    expected: "a positive number of milliseconds",
    example: None,
    meaning: "per-request timeout",
};
/// `nhs_api.request.max_in_flight`
pub const MAX_IN_FLIGHT: Setting = Setting {
    key: "nhs_api.request.max_in_flight",
    default: Absent::Value("64"),
    prod_default: None,
    expected: "a number from 1 to 1024",
    example: None,
    meaning: "most submissions in flight at once. Within it the connector keeps as many in \
              flight as using the quota needs at the API's latency (requests a second × latency \
              × 1.5, plus one: 4 at 50 ms, 15 at 300 ms, 46 at 1 s for 1,800 a minute); the \
              default covers 1,800 a minute up to about 1.4 s a request. Never more requests than \
              `rate_limit`: the limiter stays the ceiling. Memory: up to twice this many batches \
              (in flight and queued for it) of at most `batch.max_bytes`",
};
/// `nhs_api.request.initial_backoff_ms`
pub const INITIAL_BACKOFF_MS: Setting = Setting {
    key: "nhs_api.request.initial_backoff_ms",
    default: Absent::Value("250"),
    prod_default: None,
    expected: "positive and at most max_backoff_ms",
    example: None,
    meaning: "first retry backoff; doubles per attempt up to `max_backoff_ms`, with equal jitter \
              (a wait in `[backoff/2, backoff]`)",
};
/// `nhs_api.request.max_backoff_ms`
pub const MAX_BACKOFF_MS: Setting = Setting {
    key: "nhs_api.request.max_backoff_ms",
    default: Absent::Value("60000"),
    prod_default: None,
    expected: "milliseconds, at least `initial_backoff_ms`",
    example: None,
    meaning: "cap of the retry backoff",
};
/// `nhs_api.request.max_retry_duration_s`
pub const MAX_RETRY_DURATION_S: Setting = Setting {
    key: "nhs_api.request.max_retry_duration_s",
    default: Absent::Value("0"),
    prod_default: None,
    expected: "a number of seconds, `0` for no limit",
    example: Some("3600"),
    meaning: "dead-letter a submission after retrying it this long; `0` retries for ever",
};
/// Largest `nhs_api.request.max_retry_after_s`.
pub const MAX_RETRY_AFTER_LIMIT_S: u64 = 3600;
/// `nhs_api.request.max_retry_after_s`
pub const MAX_RETRY_AFTER_S: Setting = Setting {
    key: "nhs_api.request.max_retry_after_s",
    default: Absent::Value("120"),
    prod_default: None,
    expected: "from 1 to 3600 seconds",
    example: None,
    meaning: "longest wait a `Retry-After` (delta-seconds or HTTP-date) of the API or the token \
              endpoint imposes; a longer one is cut to this (the platform sends 60 for its \
              quota, 1 for its spike arrest)",
};
/// `[nhs_api]` as written: each field is the key of that name in [`SECTION`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNhsApi {
    /// [`ENVIRONMENT`]
    pub environment: String,
    /// [`PATHS`]
    #[serde(default = "default_paths")]
    pub paths: String,
    /// [`BASE_URL`]
    #[serde(default)]
    pub base_url: Option<String>,
    /// [`AUTH`]
    #[serde(default)]
    pub auth: Option<String>,
    /// [`TOKEN_URL`]
    #[serde(default)]
    pub token_url: Option<String>,
    /// [`API_KEY_FILE`]
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// [`PRIVATE_KEY_FILE`]
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// [`KID`]
    #[serde(default)]
    pub kid: Option<String>,
    /// [`KID_FILE`]
    #[serde(default)]
    pub kid_file: Option<PathBuf>,
    /// `[nhs_api.request]`, [`REQUEST_SECTION`].
    #[serde(default)]
    pub request: RawRequest,
    /// [`TOKEN_REFRESH_FRACTION`]
    #[serde(default = "default_refresh_fraction")]
    pub token_refresh_fraction: f64,
    /// [`TOKEN_REQUESTS_PER_MINUTE`]
    #[serde(default = "default_token_rpm")]
    pub token_requests_per_minute: u32,
    /// [`MISCONFIGURED_EXIT_AFTER_S`]
    #[serde(default = "default_misconfigured_exit_after_s")]
    pub misconfigured_exit_after_s: u64,
}

/// `[nhs_api.request]` as written: each field is the key of that name in [`REQUEST_SECTION`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// [`TIMEOUT_MS`]
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// [`MAX_IN_FLIGHT`]
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// [`INITIAL_BACKOFF_MS`]
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// [`MAX_BACKOFF_MS`]
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// [`MAX_RETRY_DURATION_S`]
    #[serde(default = "default_max_retry_s")]
    pub max_retry_duration_s: u64,
    /// [`MAX_RETRY_AFTER_S`]
    #[serde(default = "default_max_retry_after_s")]
    pub max_retry_after_s: u64,
}

fn default_paths() -> String {
    PATHS.parsed_default()
}
fn default_refresh_fraction() -> f64 {
    TOKEN_REFRESH_FRACTION.parsed_default()
}
fn default_timeout_ms() -> u64 {
    TIMEOUT_MS.parsed_default()
}
fn default_in_flight() -> usize {
    MAX_IN_FLIGHT.parsed_default()
}
fn default_initial_backoff_ms() -> u64 {
    INITIAL_BACKOFF_MS.parsed_default()
}
fn default_max_backoff_ms() -> u64 {
    MAX_BACKOFF_MS.parsed_default()
}
fn default_max_retry_s() -> u64 {
    MAX_RETRY_DURATION_S.parsed_default()
}
fn default_token_rpm() -> u32 {
    TOKEN_REQUESTS_PER_MINUTE.parsed_default()
}
fn default_max_retry_after_s() -> u64 {
    MAX_RETRY_AFTER_S.parsed_default()
}
fn default_misconfigured_exit_after_s() -> u64 {
    MISCONFIGURED_EXIT_AFTER_S.parsed_default()
}

impl Default for RawRequest {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            max_in_flight: default_in_flight(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            max_retry_duration_s: default_max_retry_s(),
            max_retry_after_s: default_max_retry_after_s(),
        }
    }
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// Open access (the NHS public sandbox): no token.
    None,
    /// Signed JWT client assertion, RS512.
    SignedJwt {
        /// Token endpoint, also the JWT `aud`.
        token_url: Url,
        /// File with the API key.
        api_key_file: PathBuf,
        /// File with the private key PEM.
        private_key_file: PathBuf,
        /// Key id, or the file that holds it.
        kid: KeyId,
        /// Refresh after this fraction of the lifetime.
        refresh_fraction: f64,
    },
}

/// Where the assertion's `kid` comes from. `"ads-int-1".into()` is a fixed key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyId {
    /// `nhs_api.kid`, fixed for the life of the process.
    Fixed(String),
    /// `nhs_api.kid_file`, re-read with the private key at every token request.
    File(PathBuf),
}

impl From<&str> for KeyId {
    fn from(kid: &str) -> Self {
        Self::Fixed(kid.to_owned())
    }
}

impl From<String> for KeyId {
    fn from(kid: String) -> Self {
        Self::Fixed(kid)
    }
}

/// How hard this process may press the NHS endpoints: `nhs_api.token_requests_per_minute` and
/// `nhs_api.request.max_retry_after_s`, validated. `Default` is the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Token requests a minute this process may make ([`TOKEN_REQUESTS_PER_MINUTE`]).
    pub token_requests_per_minute: u32,
    /// The longest wait a `Retry-After` imposes, on either endpoint ([`MAX_RETRY_AFTER_S`]).
    pub max_retry_after: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            token_requests_per_minute: default_token_rpm(),
            max_retry_after: Duration::from_secs(default_max_retry_after_s()),
        }
    }
}

/// Validated `[nhs_api]`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Full URL submissions are POSTed to.
    pub submit_url: Url,
    /// Authentication.
    pub auth: AuthConfig,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Submissions in flight.
    pub max_in_flight: usize,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Retry budget; `None` retries forever.
    pub max_retry_duration: Option<Duration>,
    /// Exit after the API has looked misconfigured this long; `None` waits for it to recover.
    pub misconfigured_exit_after: Option<Duration>,
}

/// One NHS environment's URLs for one `nhs_api.paths` (nhs-api.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// `nhs_api.environment`.
    pub environment: &'static str,
    /// `nhs_api.paths`: [`PATHS_CURRENT`] or [`PATHS_LEGACY`].
    pub paths: &'static str,
    /// The API base URL.
    pub base_url: &'static str,
    /// The token URL (also the JWT `aud`); `None` is open access.
    pub token_url: Option<&'static str>,
}

/// The NHS environments and their URLs (nhs-api.md §1.2), as the docs list them.
pub const PRESETS: [Preset; 6] = [
    Preset {
        environment: "sandbox",
        paths: PATHS_CURRENT,
        base_url: "https://sandbox.api.service.nhs.uk/ambulance-data-submission",
        token_url: None,
    },
    Preset {
        environment: "int",
        paths: PATHS_CURRENT,
        base_url: "https://int.api.service.nhs.uk/ambulance-data-submission",
        token_url: Some("https://int.api.service.nhs.uk/oauth2/token"),
    },
    Preset {
        environment: "prod",
        paths: PATHS_CURRENT,
        base_url: "https://api.service.nhs.uk/ambulance-data-submission",
        token_url: Some("https://api.service.nhs.uk/oauth2/token"),
    },
    Preset {
        environment: "sandbox",
        paths: PATHS_LEGACY,
        base_url: "https://sandbox.api.service.nhs.uk/ambulance-analytics",
        token_url: None,
    },
    Preset {
        environment: "int",
        paths: PATHS_LEGACY,
        base_url: "https://int.api.service.nhs.uk/ambulance-analytics",
        token_url: Some("https://int.api.service.nhs.uk/ambulance-analytics/token"),
    },
    Preset {
        environment: "prod",
        paths: PATHS_LEGACY,
        base_url: "https://api.service.nhs.uk/ambulance-analytics",
        token_url: Some("https://api.service.nhs.uk/ambulance-analytics/token"),
    },
];

/// The URLs of `environment` for `paths`, `None` for an unknown environment.
fn preset(environment: &str, paths: &str) -> Option<(&'static str, Option<&'static str>)> {
    PRESETS
        .iter()
        .find(|p| p.environment == environment && p.paths == paths)
        .map(|p| (p.base_url, p.token_url))
}

impl RawNhsApi {
    /// The token budget and the `Retry-After` cap, validated ([`Pacing`]).
    pub fn pacing(&self) -> Result<Pacing, ConfigError> {
        let rpm = self.token_requests_per_minute;
        if !(1..=TOKEN_QUOTA_PER_MINUTE).contains(&rpm) {
            return Err(TOKEN_REQUESTS_PER_MINUTE.invalid());
        }
        let max_retry_after_s = self.request.max_retry_after_s;
        if !(1..=MAX_RETRY_AFTER_LIMIT_S).contains(&max_retry_after_s) {
            return Err(MAX_RETRY_AFTER_S.invalid());
        }
        Ok(Pacing {
            token_requests_per_minute: rpm,
            max_retry_after: Duration::from_secs(max_retry_after_s),
        })
    }

    pub(super) fn validate(self) -> Result<ApiConfig, ConfigError> {
        self.pacing()?;
        let legacy = match self.paths.as_str() {
            PATHS_CURRENT => false,
            PATHS_LEGACY => true,
            _ => return Err(PATHS.invalid()),
        };
        let preset = match self.environment.as_str() {
            "custom" => None,
            env => Some(preset(env, &self.paths).ok_or_else(|| ENVIRONMENT.invalid())?),
        };
        let base = match (&self.base_url, preset) {
            (Some(url), _) => url.clone(),
            (None, Some((url, _))) => url.to_string(),
            (None, None) => {
                return Err(BASE_URL.error("is required when environment is `custom`"));
            }
        };
        let base = parse_url(BASE_URL, &base)?;
        let submit_path = if legacy {
            "submission"
        } else {
            "$process-message"
        };
        let submit_url = Url::parse(&format!(
            "{}/{submit_path}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| BASE_URL.error("is not a valid URL"))?;
        let token_url = match (&self.token_url, preset) {
            (Some(url), _) => Some(parse_url(TOKEN_URL, url)?),
            (None, Some((_, Some(url)))) => Some(parse_url(TOKEN_URL, url)?),
            _ => None,
        };
        // No authentication only when chosen: written, or the default of an open preset.
        let signed_jwt = match self.auth.as_deref() {
            Some(AUTH_SIGNED_JWT) => true,
            Some(AUTH_NONE) => false,
            Some(_) => return Err(AUTH.invalid()),
            None => !matches!(preset, Some((_, None))),
        };
        let auth = match (signed_jwt, token_url) {
            (false, _) if matches!(preset, Some((_, Some(_)))) => {
                return Err(AUTH.error(format!(
                    "cannot be `none` with environment `{}`, whose API needs signed-JWT \
                     authentication",
                    self.environment
                )));
            }
            (false, Some(_)) if self.token_url.is_some() => {
                return Err(AUTH.error(
                    "is `none` but nhs_api.token_url is set: remove one (`signed-jwt` uses the \
                     token URL)",
                ));
            }
            (false, _) => AuthConfig::None,
            (true, None) => {
                return Err(TOKEN_URL.error(
                    "is required for signed-JWT authentication (for an API without \
                     authentication, set nhs_api.auth = \"none\")",
                ));
            }
            (true, Some(token_url)) => {
                let required = |setting: Setting| {
                    move || setting.error("is required for signed-JWT authentication")
                };
                let api_key_file = self.api_key_file.ok_or_else(required(API_KEY_FILE))?;
                let private_key_file = self
                    .private_key_file
                    .ok_or_else(required(PRIVATE_KEY_FILE))?;
                API_KEY_FILE.secret_path(&api_key_file)?;
                PRIVATE_KEY_FILE.secret_path(&private_key_file)?;
                if let Some(file) = &self.kid_file {
                    KID_FILE.secret_path(file)?;
                }
                // The file, when given, overrides `kid` (a chart may keep a default `kid`).
                let kid = match (self.kid, self.kid_file) {
                    (_, Some(file)) => KeyId::File(file),
                    (kid, None) => KeyId::Fixed(
                        kid.filter(|k| !k.trim().is_empty())
                            .ok_or_else(required(KID))?,
                    ),
                };
                if !(0.1..=0.95).contains(&self.token_refresh_fraction) {
                    return Err(TOKEN_REFRESH_FRACTION.invalid());
                }
                AuthConfig::SignedJwt {
                    token_url,
                    api_key_file,
                    private_key_file,
                    kid,
                    refresh_fraction: self.token_refresh_fraction,
                }
            }
        };
        let r = self.request;
        if !(1..=1024).contains(&r.max_in_flight) {
            return Err(MAX_IN_FLIGHT.invalid());
        }
        if r.timeout_ms == 0 {
            return Err(TIMEOUT_MS.invalid());
        }
        if r.initial_backoff_ms == 0 || r.initial_backoff_ms > r.max_backoff_ms {
            return Err(INITIAL_BACKOFF_MS.invalid());
        }
        Ok(ApiConfig {
            submit_url,
            auth,
            timeout: Duration::from_millis(r.timeout_ms),
            max_in_flight: r.max_in_flight,
            initial_backoff: Duration::from_millis(r.initial_backoff_ms),
            max_backoff: Duration::from_millis(r.max_backoff_ms),
            max_retry_duration: (r.max_retry_duration_s > 0)
                .then(|| Duration::from_secs(r.max_retry_duration_s)),
            misconfigured_exit_after: (self.misconfigured_exit_after_s > 0)
                .then(|| Duration::from_secs(self.misconfigured_exit_after_s)),
        })
    }
}

fn parse_url(setting: Setting, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|_| setting.error("must be an absolute URL with a scheme and host"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(setting.invalid());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{AuthConfig, KeyId, Pacing};
    use crate::config::tests::MINIMAL;
    use crate::config::Config;

    #[test]
    fn int_preset_sets_submission_and_token_urls() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(
            c.api.submit_url.as_str(),
            "https://int.api.service.nhs.uk/ambulance-data-submission/$process-message"
        );
        match c.api.auth {
            AuthConfig::SignedJwt { token_url, .. } => {
                assert_eq!(
                    token_url.as_str(),
                    "https://int.api.service.nhs.uk/oauth2/token"
                )
            }
            AuthConfig::None => panic!("int needs a token"),
        }
    }

    #[test]
    fn legacy_preset_uses_the_2021_paths() {
        let text = MINIMAL.replace(
            "environment = \"int\"",
            "environment = \"int\"\npaths = \"legacy-2021\"",
        );
        let c = Config::from_toml_str(&text).unwrap();
        assert_eq!(
            c.api.submit_url.as_str(),
            "https://int.api.service.nhs.uk/ambulance-analytics/submission"
        );
    }

    #[test]
    fn sandbox_preset_needs_no_credentials() {
        let text = r#"
            [kafka]
            bootstrap_servers = "k:9092"
            topics = ["t"]
            ack_topic = "a"
            dead_letter_topic = "d"
            [nhs_api]
            environment = "sandbox"
        "#;
        let c = Config::from_toml_str(text).unwrap();
        assert!(matches!(c.api.auth, AuthConfig::None));
    }

    #[test]
    fn signed_jwt_needs_a_kid() {
        let text = MINIMAL.replace("kid = \"int-1\"", "");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("nhs_api.kid"), "{err}");
    }

    #[test]
    fn the_kid_can_come_from_a_file_which_overrides_the_kid() {
        let text = MINIMAL.replace("kid = \"int-1\"", "kid_file = \"/keys/kid\"");
        match Config::from_toml_str(&text).unwrap().api.auth {
            AuthConfig::SignedJwt { kid, .. } => {
                assert_eq!(kid, KeyId::File("/keys/kid".into()))
            }
            AuthConfig::None => panic!("int needs a token"),
        }
        let both = MINIMAL.replace("kid = \"int-1\"", "kid = \"a\"\nkid_file = \"/keys/kid\"");
        match Config::from_toml_str(&both).unwrap().api.auth {
            AuthConfig::SignedJwt { kid, .. } => {
                assert_eq!(kid, KeyId::File("/keys/kid".into()))
            }
            AuthConfig::None => panic!("int needs a token"),
        }
        match Config::from_toml_str(MINIMAL).unwrap().api.auth {
            AuthConfig::SignedJwt { kid, .. } => assert_eq!(kid, "int-1".into()),
            AuthConfig::None => panic!("int needs a token"),
        }
    }

    #[test]
    fn pacing_defaults_and_bounds() {
        let raw = |extra: &str| {
            let text = format!("{MINIMAL}{extra}");
            let raw: crate::config::RawConfig = toml_from(&text);
            raw.nhs_api.pacing()
        };
        assert_eq!(raw("").unwrap(), Pacing::default());
        assert_eq!(
            Pacing::default(),
            Pacing {
                token_requests_per_minute: 20,
                max_retry_after: Duration::from_secs(120),
            }
        );
        for bad in [
            "token_requests_per_minute = 0",
            "token_requests_per_minute = 301",
            "[nhs_api.request]\nmax_retry_after_s = 0",
            "[nhs_api.request]\nmax_retry_after_s = 3601",
        ] {
            let text = MINIMAL.replace("kid = \"int-1\"", &format!("kid = \"int-1\"\n{bad}"));
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            let key = if bad.contains("token") {
                "nhs_api.token_requests_per_minute"
            } else {
                "nhs_api.request.max_retry_after_s"
            };
            assert!(err.contains(key), "{bad}: {err}");
        }
        let text = "\n[nhs_api.request]\nmax_retry_after_s = 30";
        assert_eq!(raw(text).unwrap().max_retry_after, Duration::from_secs(30));
    }

    const CUSTOM_OPEN: &str = r#"
            [kafka]
            bootstrap_servers = "k:9092"
            topics = ["t"]
            ack_topic = "a"
            dead_letter_topic = "d"
            [nhs_api]
            environment = "custom"
            base_url = "http://emulator:9100/ambulance-data-submission"
        "#;

    #[test]
    fn custom_without_a_token_url_is_refused_unless_auth_is_none() {
        let err = Config::from_toml_str(CUSTOM_OPEN).unwrap_err().to_string();
        assert!(
            err.contains("nhs_api.token_url") && err.contains("auth = \"none\""),
            "{err}"
        );
        let open = format!("{CUSTOM_OPEN}auth = \"none\"\n");
        let c = Config::from_toml_str(&open).unwrap();
        assert!(matches!(c.api.auth, AuthConfig::None));
    }

    #[test]
    fn auth_none_is_refused_where_the_api_needs_a_token() {
        for (text, key) in [
            (
                MINIMAL.replace("kid = \"int-1\"", "kid = \"int-1\"\nauth = \"none\""),
                "int",
            ),
            (
                format!("{CUSTOM_OPEN}auth = \"none\"\ntoken_url = \"https://t.example/token\"\n"),
                "token_url",
            ),
            (format!("{CUSTOM_OPEN}auth = \"open\"\n"), "signed-jwt"),
        ] {
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains("nhs_api.auth") && err.contains(key), "{err}");
        }
    }

    #[test]
    fn the_sandbox_is_open_by_default_and_signed_jwt_there_needs_a_token_url() {
        let sandbox = CUSTOM_OPEN
            .replace("environment = \"custom\"", "environment = \"sandbox\"")
            .replace(
                "base_url = \"http://emulator:9100/ambulance-data-submission\"",
                "",
            );
        let c = Config::from_toml_str(&sandbox).unwrap();
        assert!(matches!(c.api.auth, AuthConfig::None));
        let jwt = format!("{sandbox}auth = \"signed-jwt\"\n");
        let err = Config::from_toml_str(&jwt).unwrap_err().to_string();
        assert!(err.contains("nhs_api.token_url"), "{err}");
    }

    #[test]
    fn the_misconfiguration_exit_is_off_by_default_and_set_in_seconds() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(c.api.misconfigured_exit_after, None);
        let text = MINIMAL.replace(
            "kid = \"int-1\"",
            "kid = \"int-1\"\nmisconfigured_exit_after_s = 1800",
        );
        let c = Config::from_toml_str(&text).unwrap();
        assert_eq!(
            c.api.misconfigured_exit_after,
            Some(Duration::from_secs(1800))
        );
    }

    fn toml_from(text: &str) -> crate::config::RawConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(text))
            .extract()
            .unwrap()
    }
}
