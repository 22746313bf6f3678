//! Rate limit: one GCRA limiter (governor) per process, shared by every request.
//!
//! Input: a request about to be sent calls [`RateLimiter::acquire`]. Output: it returns when the
//! request may go, having waited for the limiter and for any shared pause. A 429 with
//! `Retry-After` calls [`RateLimiter::pause_for`], which holds back *every* request of the
//! process until the pause ends, not only the one that was refused (peers that back off per
//! request keep hammering the quota). Across replicas the application quota is shared without a
//! coordinator: after every rebalance the source calls [`RateLimiter::set_share`] with the
//! fraction of all input partitions this process owns, and the limiter is rebuilt for that share
//! of the quota, so N pods together stay under it. Nothing here fails; the wait is reported to
//! metrics.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;

use crate::config::RateLimitConfig;
use crate::metrics::Metrics;
use crate::telemetry;

/// The process-wide limiter.
pub struct RateLimiter {
    config: RateLimitConfig,
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    paused_until: Mutex<Option<Instant>>,
    metrics: Metrics,
}

/// The GCRA quota for `share` of the configured quota. GCRA lets through at most
/// `burst + T × rate` requests in any interval `T`; the rate is set to
/// `(requests_per_minute − burst) / minute` so that no 60-second window, wherever it starts,
/// holds more than `requests_per_minute` requests (the platform counts per minute).
pub fn quota(config: RateLimitConfig, share: f64) -> Quota {
    let scale = |n: u32| (f64::from(n) * share).floor() as u32;
    let per_minute = scale(config.requests_per_minute).max(1);
    let burst = scale(config.burst).clamp(1, per_minute);
    let rate = (per_minute - burst).max(1);
    let period = Duration::from_secs(60) / rate;
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("burst is at least 1"))
}

fn build(config: RateLimitConfig, share: f64) -> DefaultDirectRateLimiter {
    DefaultDirectRateLimiter::direct(quota(config, share))
}

impl RateLimiter {
    /// A limiter for `requests_per_minute` with `burst`, the whole quota to this process.
    pub fn new(config: RateLimitConfig, metrics: Metrics) -> Self {
        Self {
            config,
            limiter: Mutex::new(Arc::new(build(config, 1.0))),
            paused_until: Mutex::new(None),
            metrics,
        }
    }

    /// Takes `owned` of `total` partitions' share of the quota (at least one request a minute).
    pub fn set_share(&self, owned: usize, total: usize) {
        let share = if total == 0 {
            1.0
        } else {
            (owned as f64 / total as f64).clamp(0.0, 1.0)
        };
        *self.limiter.lock().expect("rate limiter lock poisoned") =
            Arc::new(build(self.config, share));
        tracing::info!(
            message = "Rate limit share updated.",
            owned,
            total,
            requests_per_minute = (f64::from(self.config.requests_per_minute) * share).floor()
        );
    }

    /// Waits until a request may be sent. A request that really waits gets a `rate_limit wait`
    /// span (a child of the current span); one let through at once gets none.
    pub async fn acquire(&self) {
        let started = Instant::now();
        let mut span = None;
        loop {
            let pause = *self
                .paused_until
                .lock()
                .expect("rate limiter lock poisoned");
            match pause {
                Some(until) if until > Instant::now() => {
                    span.get_or_insert_with(|| telemetry::rate_limit_span("retry_after"));
                    tokio::time::sleep_until(until).await
                }
                _ => break,
            }
        }
        let limiter = self
            .limiter
            .lock()
            .expect("rate limiter lock poisoned")
            .clone();
        if limiter.check().is_err() {
            span.get_or_insert_with(|| telemetry::rate_limit_span("quota"));
            limiter.until_ready().await;
        }
        let waited = started.elapsed();
        if let Some(span) = span {
            telemetry::rate_limit_waited(&span, waited);
        }
        self.metrics.rate_limited(waited);
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
        let inner = limiter.limiter.lock().unwrap().clone();
        for _ in 0..5 {
            assert!(inner.check().is_ok());
        }
        assert!(inner.check().is_err(), "the sixth needs a second");
    }

    #[test]
    fn no_sixty_second_window_ever_holds_more_than_the_quota() {
        use governor::clock::FakeRelativeClock;
        for (rpm, burst) in [(1800, 1), (1800, 10), (300, 5), (60, 60)] {
            let config = RateLimitConfig {
                requests_per_minute: rpm,
                burst,
            };
            let clock = FakeRelativeClock::default();
            let limiter =
                governor::RateLimiter::direct_with_clock(quota(config, 1.0), clock.clone());
            // A greedy client: every millisecond, take every request granted, for four minutes.
            let mut sent: Vec<u64> = Vec::new();
            for tick in 0..240_000u64 {
                while limiter.check().is_ok() {
                    sent.push(tick);
                }
                clock.advance(Duration::from_millis(1));
            }
            let worst = sent
                .iter()
                .enumerate()
                .map(|(i, start)| {
                    sent[i..]
                        .iter()
                        .take_while(|t| **t < start + 60_000)
                        .count()
                })
                .max()
                .unwrap();
            assert!(
                worst <= rpm as usize,
                "{rpm}/min burst {burst}: {worst} in one minute"
            );
            // The lower bound only shows the limiter is not needlessly strict (1 ms ticks round
            // the 33.4 ms spacing of 1800/min up).
            assert!(
                worst as f64 >= 0.95 * f64::from(rpm),
                "{rpm}/min burst {burst}: only {worst} used"
            );
        }
    }

    #[test]
    fn a_replica_owning_a_third_of_the_partitions_takes_a_third_of_the_quota() {
        let limiter = RateLimiter::new(
            RateLimitConfig {
                requests_per_minute: 1800,
                burst: 30,
            },
            Metrics::new(),
        );
        limiter.set_share(2, 6);
        let inner = limiter.limiter.lock().unwrap().clone();
        let granted = (0..100).take_while(|_| inner.check().is_ok()).count();
        assert_eq!(granted, 10, "a third of the burst of 30");
    }
}
