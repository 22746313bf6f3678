//! `[nhs_api]` and `[nhs_api.request]`: the NHS environment, credentials and request limits as
//! written ([`RawNhsApi`], [`RawRequest`]) and validated ([`ApiConfig`], [`AuthConfig`]).
//!
//! Contract: an environment preset (`sandbox`, `int`, `prod`; nhs-api.md §1.2), or `custom` with
//! explicit URLs, gives the submission URL for the chosen `paths`; a token URL turns on signed-JWT
//! authentication, which then needs the API key file, the private key file and a `kid`.
//! Credentials stay file paths and nothing here reads them. Errors name the key and show an
//! example.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{invalid, ConfigError};

/// `[nhs_api]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNhsApi {
    /// `sandbox`, `int`, `prod` or `custom` (then `base_url` and `token_url` are required).
    pub environment: String,
    /// `current` (`/$process-message`, platform `/oauth2/token`) or `legacy-2021`.
    #[serde(default = "default_paths")]
    pub paths: String,
    /// Overrides the environment's API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Overrides the environment's token URL (also the JWT `aud`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// File holding the application's API key (JWT `iss` and `sub`). Not needed for `sandbox`.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// PEM file of the RSA private key registered with the app (re-read on every token).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// Key id (`kid`) of that key in the app's JWKS.
    #[serde(default)]
    pub kid: Option<String>,
    /// Request timeout, retries and concurrency.
    #[serde(default)]
    pub request: RawRequest,
    /// Refresh the token when this fraction of its lifetime has passed.
    #[serde(default = "default_refresh_fraction")]
    pub token_refresh_fraction: f64,
}

/// `[nhs_api.request]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// Per-request timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Submissions in flight at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// First retry backoff; doubles up to `max_backoff_ms`, with equal jitter (a wait in `[backoff/2, backoff]`).
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Cap of the retry backoff.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Give up and dead-letter after retrying this long; 0 retries forever.
    #[serde(default = "default_max_retry_s")]
    pub max_retry_duration_s: u64,
}

fn default_paths() -> String {
    "current".into()
}
fn default_refresh_fraction() -> f64 {
    0.75
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_in_flight() -> usize {
    1
}
fn default_initial_backoff_ms() -> u64 {
    250
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_max_retry_s() -> u64 {
    0
}

impl Default for RawRequest {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            max_in_flight: default_in_flight(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            max_retry_duration_s: default_max_retry_s(),
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
        /// Key id.
        kid: String,
        /// Refresh after this fraction of the lifetime.
        refresh_fraction: f64,
    },
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
}

/// The NHS environments and their URLs (nhs-api.md §1.2).
fn preset(environment: &str, legacy: bool) -> Option<(&'static str, Option<&'static str>)> {
    Some(match (environment, legacy) {
        ("sandbox", false) => (
            "https://sandbox.api.service.nhs.uk/ambulance-data-submission",
            None,
        ),
        ("int", false) => (
            "https://int.api.service.nhs.uk/ambulance-data-submission",
            Some("https://int.api.service.nhs.uk/oauth2/token"),
        ),
        ("prod", false) => (
            "https://api.service.nhs.uk/ambulance-data-submission",
            Some("https://api.service.nhs.uk/oauth2/token"),
        ),
        ("sandbox", true) => (
            "https://sandbox.api.service.nhs.uk/ambulance-analytics",
            None,
        ),
        ("int", true) => (
            "https://int.api.service.nhs.uk/ambulance-analytics",
            Some("https://int.api.service.nhs.uk/ambulance-analytics/token"),
        ),
        ("prod", true) => (
            "https://api.service.nhs.uk/ambulance-analytics",
            Some("https://api.service.nhs.uk/ambulance-analytics/token"),
        ),
        _ => return None,
    })
}

impl RawNhsApi {
    pub(super) fn validate(self) -> Result<ApiConfig, ConfigError> {
        let legacy = match self.paths.as_str() {
            "current" => false,
            "legacy-2021" => true,
            _ => {
                return Err(invalid(
                    "nhs_api.paths",
                    "must be `current` or `legacy-2021`",
                    "current",
                ))
            }
        };
        let preset = match self.environment.as_str() {
            "custom" => None,
            env => Some(preset(env, legacy).ok_or_else(|| {
                invalid(
                    "nhs_api.environment",
                    "must be `sandbox`, `int`, `prod` or `custom`",
                    "int",
                )
            })?),
        };
        let base = match (&self.base_url, preset) {
            (Some(url), _) => url.clone(),
            (None, Some((url, _))) => url.to_string(),
            (None, None) => {
                return Err(invalid(
                    "nhs_api.base_url",
                    "is required when environment is `custom`",
                    "http://127.0.0.1:8080/ambulance-data-submission",
                ))
            }
        };
        let base = parse_url("nhs_api.base_url", &base)?;
        let submit_path = if legacy {
            "submission"
        } else {
            "$process-message"
        };
        let submit_url = Url::parse(&format!(
            "{}/{submit_path}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| invalid("nhs_api.base_url", "is not a valid URL", "https://…"))?;
        let token_url = match (&self.token_url, preset) {
            (Some(url), _) => Some(parse_url("nhs_api.token_url", url)?),
            (None, Some((_, Some(url)))) => Some(parse_url("nhs_api.token_url", url)?),
            _ => None,
        };
        let auth = match token_url {
            None => AuthConfig::None,
            Some(token_url) => {
                let api_key_file = self.api_key_file.ok_or_else(|| {
                    invalid(
                        "nhs_api.api_key_file",
                        "is required for signed-JWT authentication",
                        "/var/run/secrets/nhs/api-key",
                    )
                })?;
                let private_key_file = self.private_key_file.ok_or_else(|| {
                    invalid(
                        "nhs_api.private_key_file",
                        "is required for signed-JWT authentication",
                        "/var/run/secrets/nhs/private-key.pem",
                    )
                })?;
                let kid = self.kid.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                    invalid(
                        "nhs_api.kid",
                        "is required for signed-JWT authentication",
                        "ads-int-1",
                    )
                })?;
                if !(0.1..=0.95).contains(&self.token_refresh_fraction) {
                    return Err(invalid(
                        "nhs_api.token_refresh_fraction",
                        "must be between 0.1 and 0.95",
                        "0.75",
                    ));
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
        if r.max_in_flight == 0 {
            return Err(invalid(
                "nhs_api.request.max_in_flight",
                "must be positive",
                "1",
            ));
        }
        if r.timeout_ms == 0 {
            return Err(invalid(
                "nhs_api.request.timeout_ms",
                "must be positive",
                "30000",
            ));
        }
        if r.initial_backoff_ms == 0 || r.initial_backoff_ms > r.max_backoff_ms {
            return Err(invalid(
                "nhs_api.request.initial_backoff_ms",
                "must be positive and at most max_backoff_ms",
                "250",
            ));
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
        })
    }
}

fn parse_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|_| {
        invalid(
            key,
            "must be an absolute URL with a scheme and host",
            "https://int.api.service.nhs.uk/ambulance-data-submission",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            key,
            "must be an http(s) URL with a host",
            "https://int.api.service.nhs.uk/ambulance-data-submission",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::AuthConfig;
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
}
