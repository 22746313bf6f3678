//! `[rate_limit]`: the application quota shared by every request of this process, as written
//! ([`RawRateLimit`]) and validated ([`RateLimitConfig`]). The checks (a positive rate, a burst
//! of at most the rate) run in [`RawConfig::validate`](super::RawConfig::validate).

use serde::Deserialize;

/// `[rate_limit]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// The application's quota, requests per minute, for all replicas together.
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    /// Requests allowed back to back before GCRA spacing applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rpm() -> u32 {
    1800
}
fn default_burst() -> u32 {
    1
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
