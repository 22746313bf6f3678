//! `[rate_limit]`: the application quota shared by every request of this process, as written
//! ([`RawRateLimit`]) and validated ([`RateLimitConfig`]), and its keys ([`SECTION`]). The checks
//! (a positive rate, a burst of at most the rate) run in
//! [`RawConfig::validate`](super::RawConfig::validate).

use serde::Deserialize;

use super::settings::{Absent, Section, Setting};

/// `[rate_limit]`
pub const SECTION: Section = Section {
    name: "rate_limit",
    about: "The application quota shared by every request of this process.",
    settings: &[REQUESTS_PER_MINUTE, BURST],
};
/// `rate_limit.requests_per_minute`
pub const REQUESTS_PER_MINUTE: Setting = Setting {
    key: "rate_limit.requests_per_minute",
    default: Absent::Value("1800"),
    prod_default: None,
    expected: "a positive number",
    example: None,
    meaning: "the application's quota this process may use, requests per minute",
};
/// `rate_limit.burst`
pub const BURST: Setting = Setting {
    key: "rate_limit.burst",
    default: Absent::Value("1"),
    prod_default: None,
    expected: "positive and at most `rate_limit.requests_per_minute`",
    example: None,
    meaning: "requests allowed back to back before GCRA spacing applies; the platform's spike \
              arrest smooths the quota into sub-second intervals, so keep it small. No 60-second \
              window ever holds more than `requests_per_minute` requests, bursts included",
};

/// `[rate_limit]` as written: each field is the key of that name in [`SECTION`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// [`REQUESTS_PER_MINUTE`]
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    /// [`BURST`]
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rpm() -> u32 {
    REQUESTS_PER_MINUTE.parsed_default()
}
fn default_burst() -> u32 {
    BURST.parsed_default()
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            requests_per_minute: default_rpm(),
            burst: default_burst(),
        }
    }
}

/// Validated `[rate_limit]`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Burst.
    pub burst: u32,
}
