//! Rate limit: one GCRA limiter (governor) per process, shared by every request.
//!
//! Input: a request about to be sent calls [`RateLimiter::acquire`]. Output: it returns when the
//! request may go, having waited for the limiter and for any shared pause. A 429 with
//! `Retry-After` calls [`RateLimiter::pause_for`], which holds back *every* request of the
//! process until the pause ends, not only the one that was refused (peers that back off per
//! request keep hammering the quota). Nothing here fails; the wait is reported to metrics.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;

use crate::config::RateLimitConfig;
use crate::metrics::Metrics;

/// The process-wide limiter.
pub struct RateLimiter {
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    metrics: Metrics,
}

impl RateLimiter {
    /// A limiter for `requests_per_minute` with `burst`.
    pub fn new(config: RateLimitConfig, metrics: Metrics) -> Self {
        let per_minute = NonZeroU32::new(config.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultDirectRateLimiter::direct(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            paused_until: Mutex::new(None),
            metrics,
        }
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        let started = Instant::now();
        loop {
            let pause = *self
                .paused_until
                .lock()
                .expect("rate limiter lock poisoned");
            match pause {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
        self.metrics.rate_limited(started.elapsed());
    }

    /// Holds back every request for `wait` (a 429's `Retry-After`).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self
            .paused_until
            .lock()
            .expect("rate limiter lock poisoned");
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_every_request() {
        let limiter = RateLimiter::new(
            RateLimitConfig {
                requests_per_minute: 6000,
                burst: 100,
            },
            Metrics::new(),
        );
        limiter.pause_for(Duration::from_secs(5));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_burst_is_granted_and_the_next_request_must_wait() {
        let limiter = RateLimiter::new(
            RateLimitConfig {
                requests_per_minute: 60,
                burst: 5,
            },
            Metrics::new(),
        );
        for _ in 0..5 {
            assert!(limiter.limiter.check().is_ok());
        }
        assert!(limiter.limiter.check().is_err(), "the sixth needs a second");
    }
}
