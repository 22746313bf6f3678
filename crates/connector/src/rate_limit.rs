//! Rate limit: one GCRA limiter (governor) per process, shared by every API request; the token
//! endpoint's own budget ([`TokenBudget`]); and `Retry-After` as the server writes it
//! ([`parse_retry_after`]).
//!
//! Input: a request about to be sent calls [`RateLimiter::acquire`]. Output: it returns when the
//! request may go, having waited for the limiter and for any shared pause. A 429 with
//! `Retry-After` calls [`RateLimiter::pause_for`], which holds back *every* request of the
//! process until the pause ends, not only the one that was refused (peers that back off per
//! request keep hammering the quota). A pause is never longer than the limiter's
//! `max_retry_after` (`nhs_api.request.max_retry_after_s`), whatever the server asked, and one
//! longer than [`LONG_WAIT`] is logged once, when it starts, with its length. Across replicas the
//! application quota is shared without a coordinator: after every rebalance the source calls
//! [`RateLimiter::set_share`] with the fraction of all input partitions this process owns, and
//! the limiter is rebuilt for that share of the quota, so N pods together stay under it. Outside
//! the submission window (`[schedule]` in `window` mode) the window pass closes the limiter
//! ([`RateLimiter::set_open`]): no request goes until it opens again, a submission already
//! waiting included. Nothing here fails; the wait is reported to metrics.
//!
//! Requests in flight: the limiter also says how many submissions must be in flight to use its
//! rate ([`RateLimiter::in_flight_limit`]). By Little's law a process sending `r` requests a
//! second that each take `L` seconds has `r × L` in flight, so with one at a time (the old
//! default) the rate is `1 / L` whatever the quota: 58 % of 1,800 a minute at 53 ms on loopback,
//! about 11 % at 300 ms over the internet. The submitter reports the latency of every answer of
//! the API's own ([`RateLimiter::observe_latency`]); the limit is `ceil(r × L × 1.5) + 1` within
//! `[1, nhs_api.request.max_in_flight]`, for this process's share of the quota. More in flight
//! never means more requests: every request still waits here, so the quota stays the ceiling and
//! the extra submissions only queue for it.
//!
//! `Retry-After` (RFC 9110 §10.2.3) is delta-seconds or an HTTP-date (IMF-fixdate, and the
//! obsolete RFC 850 and asctime forms recipients must accept). Delta-seconds too large for a
//! `u64` saturate, a date in the past means "now"; the caller caps the result, so no value can
//! overflow an `Instant`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;

use crate::config::nhs_api::Pacing;
use crate::config::RateLimitConfig;
use crate::metrics::Metrics;
use crate::telemetry;

/// A pause or a wait longer than this is logged (once, when it starts, with its reason).
pub const LONG_WAIT: Duration = Duration::from_secs(5);

/// The latency assumed until the first answer is timed: the slow end of a POST over the
/// internet, so a backlog starts with enough requests in flight rather than one, and the first
/// answers bring the limit down to what the API needs.
pub const ASSUMED_LATENCY: Duration = Duration::from_secs(1);

/// Headroom over rate × latency: latencies spread, and a request queued at the limiter is in
/// flight too. Half again, plus one.
const IN_FLIGHT_MARGIN: f64 = 1.5;

/// Submissions that must be in flight for `per_minute` requests a minute when each takes
/// `latency`: `ceil(per_minute / 60 × latency × 1.5) + 1`, at least 1, at most `max`.
pub fn in_flight_for(per_minute: u32, latency: Duration, max: usize) -> usize {
    let needed = f64::from(per_minute) / 60.0 * latency.as_secs_f64() * IN_FLIGHT_MARGIN;
    // Finite and non-negative; the cast saturates for absurd latencies.
    let needed = (needed.ceil() as usize).saturating_add(1);
    needed.clamp(1, max.max(1))
}

/// The API's latency as seen by the submissions: a slower answer is believed at once (the
/// submissions needed in flight rise at the next answer), a faster one pulls the estimate down
/// by a fifth of the difference (one quick answer does not empty the pipeline).
fn next_latency(estimate: Option<Duration>, sample: Duration) -> Duration {
    match estimate {
        Some(estimate) if sample < estimate => estimate - (estimate - sample) / 5,
        _ => sample,
    }
}

/// The process-wide limiter.
pub struct RateLimiter {
    config: RateLimitConfig,
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    paused_until: Mutex<Option<Instant>>,
    max_retry_after: Duration,
    metrics: Metrics,
    /// `false` outside the submission window.
    open: tokio::sync::watch::Sender<bool>,
    /// This process's share of the quota, requests per minute (what [`quota`] was built for).
    per_minute: AtomicU32,
    /// The API's latency ([`next_latency`]); `None` until the first answer.
    latency: Mutex<Option<Duration>>,
}

/// The GCRA quota for `share` of the configured quota. GCRA lets through at most
/// `burst + T × rate` requests in any interval `T`; the rate is set to
/// `(requests_per_minute − burst) / minute` so that no 60-second window, wherever it starts,
/// holds more than `requests_per_minute` requests (the platform counts per minute).
pub fn quota(config: RateLimitConfig, share: f64) -> Quota {
    let scale = |n: u32| (f64::from(n) * share).floor() as u32;
    let per_minute = share_per_minute(config, share);
    let burst = scale(config.burst).clamp(1, per_minute);
    let rate = (per_minute - burst).max(1);
    let period = Duration::from_secs(60) / rate;
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("burst is at least 1"))
}

/// `share` of the quota, requests per minute (at least one).
fn share_per_minute(config: RateLimitConfig, share: f64) -> u32 {
    ((f64::from(config.requests_per_minute) * share).floor() as u32).max(1)
}

fn build(config: RateLimitConfig, share: f64) -> DefaultDirectRateLimiter {
    DefaultDirectRateLimiter::direct(quota(config, share))
}

impl RateLimiter {
    /// A limiter for `requests_per_minute` with `burst`, the whole quota to this process.
    /// Pauses are capped at the default `nhs_api.request.max_retry_after_s`
    /// ([`Self::with_max_retry_after`] sets another cap).
    pub fn new(config: RateLimitConfig, metrics: Metrics) -> Self {
        Self {
            config,
            limiter: Mutex::new(Arc::new(build(config, 1.0))),
            paused_until: Mutex::new(None),
            max_retry_after: Pacing::default().max_retry_after,
            metrics,
            open: tokio::sync::watch::Sender::new(true),
            per_minute: AtomicU32::new(share_per_minute(config, 1.0)),
            latency: Mutex::new(None),
        }
    }

    /// Opens (the submission window is open, or always in continuous mode) or closes the
    /// limiter: while closed, [`Self::acquire`] lets no request go.
    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }

    /// The same limiter with pauses capped at `max` (`nhs_api.request.max_retry_after_s`).
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The longest pause or `Retry-After` wait this process accepts.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
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
        self.per_minute
            .store(share_per_minute(self.config, share), Ordering::Relaxed);
        tracing::info!(
            message = "Rate limit share updated.",
            owned,
            total,
            requests_per_minute = (f64::from(self.config.requests_per_minute) * share).floor()
        );
    }

    /// Requests a minute this process may send (its share of the quota).
    pub fn requests_per_minute(&self) -> u32 {
        self.per_minute.load(Ordering::Relaxed)
    }

    /// Records how long an answer of the API's own took (sending to the end of its body).
    pub fn observe_latency(&self, took: Duration) {
        let mut latency = self.latency.lock().expect("rate limiter lock poisoned");
        *latency = Some(next_latency(*latency, took));
    }

    /// Submissions that should be in flight to use this process's share of the quota at the
    /// API's latency (assumed [`ASSUMED_LATENCY`] until an answer is timed), at most `max`.
    pub fn in_flight_limit(&self, max: usize) -> usize {
        let latency = self
            .latency
            .lock()
            .expect("rate limiter lock poisoned")
            .unwrap_or(ASSUMED_LATENCY);
        in_flight_for(self.requests_per_minute(), latency, max)
    }

    /// Waits until a request may be sent. A request that really waits gets a `rate_limit wait`
    /// span (a child of the current span); one let through at once gets none.
    pub async fn acquire(&self) {
        let started = Instant::now();
        let mut span = None;
        loop {
            self.until_open(&mut span).await;
            self.take(&mut span).await;
            // Closed while this request waited for the quota: it waits for the next window.
            if *self.open.borrow() {
                break;
            }
        }
        let waited = started.elapsed();
        if let Some(span) = span {
            telemetry::rate_limit_waited(&span, waited);
        }
        self.metrics.rate_limited(waited);
    }

    /// Waits while the submission window is closed.
    async fn until_open(&self, span: &mut Option<tracing::Span>) {
        if *self.open.borrow() {
            return;
        }
        span.get_or_insert_with(|| telemetry::rate_limit_span("schedule"));
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
    }

    /// Waits for any shared pause, then for the quota.
    async fn take(&self, span: &mut Option<tracing::Span>) {
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
    }

    /// Holds back every request for `wait` (a 429's `Retry-After`, or the backoff without one),
    /// at most [`Self::max_retry_after`]. A pause longer than [`LONG_WAIT`] is logged when it
    /// starts (not again for the 429s of requests that were in flight with it).
    pub fn pause_for(&self, wait: Duration) {
        let capped = wait.min(self.max_retry_after);
        let now = Instant::now();
        // `capped` is at most an hour (the setting's bound), so this cannot overflow; should it
        // ever, no pause is better than a panic.
        let Some(until) = now.checked_add(capped) else {
            return;
        };
        let mut paused = self
            .paused_until
            .lock()
            .expect("rate limiter lock poisoned");
        let in_force = paused.is_some_and(|p| p > now);
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
            if !in_force && capped > LONG_WAIT {
                tracing::warn!(
                    message = "API requests paused.",
                    reason = "status_429",
                    pause_s = capped.as_secs(),
                    retry_after_s = wait.as_secs(),
                    capped = capped < wait,
                );
            }
        }
    }
}

/// A `Retry-After` that is neither delta-seconds nor an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Retry-After `{0}` is neither delta-seconds nor an HTTP-date")]
pub struct BadRetryAfter(String);

/// The wait a `Retry-After` value asks for, from `now` (RFC 9110 §10.2.3): delta-seconds
/// (`120`; more than `u64::MAX` seconds saturates) or an HTTP-date (`Sun, 06 Nov 1994 08:49:37
/// GMT`, also the obsolete `Sunday, 06-Nov-94 08:49:37 GMT` and `Sun Nov  6 08:49:37 1994`); a
/// date in the past is no wait. Not capped: the caller caps it (`max_retry_after`). Anything else
/// (negative, fractional, empty, another date format) is an error quoting the value (at most 64
/// characters; a header, never a secret).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Result<Duration, BadRetryAfter> {
    let text = value.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: the one way this fails is too many of them.
        return Ok(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(text, now).ok_or_else(|| BadRetryAfter(text.chars().take(64).collect()))?;
    Ok(SystemTime::from(at)
        .duration_since(now)
        .unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three forms of RFC 9110 §5.6.7.
fn http_date(text: &str, now: SystemTime) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(text) {
        // IMF-fixdate (`GMT` is one of RFC 2822's zones).
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%a %b %e %H:%M:%S %Y") {
        return Some(at.and_utc());
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`). The weekday is dropped before parsing: chrono
    // would check it against its own century for the two-digit year.
    let (_weekday, rest) = text.split_once(", ")?;
    let at = NaiveDateTime::parse_from_str(rest, "%d-%b-%y %H:%M:%S GMT").ok()?;
    // The two-digit year: the year with those digits that is not more than 50 years ahead
    // (RFC 9110 §5.6.7), rather than chrono's fixed 1969–2068 window.
    let this_year = DateTime::<Utc>::from(now).year();
    let mut year = this_year - this_year.rem_euclid(100) + at.year().rem_euclid(100);
    if year > this_year + 50 {
        year -= 100;
    }
    Some(at.with_year(year)?.and_utc())
}

/// The time source of [`TokenBudget`]: tokio's clock, so a paused test clock drives it too.
#[derive(Debug, Clone)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

/// Token requests this process may still make: a GCRA limiter of its own, separate from the API
/// requests', for `nhs_api.token_requests_per_minute` (this replica's fixed share of the
/// platform's 300 token requests a minute per application). As for the API quota, no 60-second
/// window holds more than the budget, bursts included.
pub struct TokenBudget {
    limiter: governor::RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>,
    clock: TokioClock,
    per_minute: u32,
}

/// Token requests allowed back to back (a first token, a 401's replacement, a refresh).
const TOKEN_BURST: u32 = 3;

impl TokenBudget {
    /// A budget of `per_minute` token requests (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let quota = quota(
            RateLimitConfig {
                requests_per_minute: per_minute,
                burst: TOKEN_BURST.min(per_minute),
            },
            1.0,
        );
        let clock = TokioClock {
            origin: Instant::now(),
        };
        Self {
            limiter: governor::RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            per_minute,
        }
    }

    /// Takes one token request from the budget, or says how long until one is available.
    pub fn take(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// The budget, requests per minute.
    pub fn requests_per_minute(&self) -> u32 {
        self.per_minute
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

    fn at(text: &str) -> SystemTime {
        SystemTime::from(DateTime::parse_from_rfc3339(text).unwrap())
    }

    #[test]
    fn retry_after_is_delta_seconds_or_an_http_date_in_any_of_its_three_forms() {
        let now = at("1994-11-06T08:49:07Z");
        let parse = |v: &str| parse_retry_after(v, now);
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse(" 7 "), Ok(Duration::from_secs(7)));
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(date), Ok(Duration::from_secs(30)), "{date}");
        }
        // A date already past asks for no wait.
        assert_eq!(parse("Sat, 05 Nov 1994 08:49:37 GMT"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_huge_retry_after_saturates_and_never_overflows_the_pause() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).unwrap() > LONG_WAIT);
        let limiter = RateLimiter::new(
            RateLimitConfig {
                requests_per_minute: 60,
                burst: 1,
            },
            Metrics::new(),
        )
        .with_max_retry_after(Duration::from_secs(120));
        // Panicked with an `Instant` overflow before the cap.
        limiter.pause_for(Duration::from_secs(u64::MAX));
        limiter.pause_for(Duration::MAX);
        let until = limiter.paused_until.lock().unwrap().unwrap();
        assert!(until <= Instant::now() + Duration::from_secs(120));
    }

    #[test]
    fn an_unreadable_retry_after_is_an_error_quoting_it() {
        let now = SystemTime::now();
        for bad in ["", "-5", "1.5", "soon", "2024-01-01T00:00:00Z", "+3"] {
            let error = parse_retry_after(bad, now).unwrap_err();
            assert!(error.to_string().contains(bad), "{bad}: {error}");
        }
        let long = "x".repeat(500);
        assert!(parse_retry_after(&long, now).unwrap_err().0.len() <= 64);
    }

    #[test]
    fn rfc850_years_are_never_more_than_fifty_years_ahead() {
        let now = at("2030-01-01T00:00:00Z");
        // `75` is 2075 (45 years ahead), not 1975; `99` is 1999, not 2099.
        let ahead = parse_retry_after("Monday, 01-Jan-75 00:00:00 GMT", now).unwrap();
        assert!(ahead > Duration::from_secs(40 * 365 * 86_400));
        assert_eq!(
            parse_retry_after("Friday, 01-Jan-99 00:00:00 GMT", now),
            Ok(Duration::ZERO)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_budget_grants_its_burst_then_spaces_requests_out() {
        let budget = TokenBudget::per_minute(20);
        for _ in 0..TOKEN_BURST {
            assert_eq!(budget.take(), Ok(()));
        }
        let wait = budget.take().unwrap_err();
        // (20 − 3) a minute: one every 60/17 s.
        assert!(
            wait > Duration::from_secs(3) && wait <= Duration::from_millis(3530),
            "{wait:?}"
        );
        tokio::time::advance(wait).await;
        assert_eq!(budget.take(), Ok(()));
        // Over ten virtual minutes of asking every 100 ms, never more than 20 in a minute.
        let mut granted = Vec::new();
        for tick in 0..6_000u64 {
            if budget.take().is_ok() {
                granted.push(tick);
            }
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        let worst = (0..granted.len())
            .map(|i| {
                granted[i..]
                    .iter()
                    .take_while(|t| **t < granted[i] + 600)
                    .count()
            })
            .max()
            .unwrap();
        assert!(worst <= 20, "{worst} token requests in one minute");
    }

    #[test]
    fn requests_in_flight_grow_with_latency_up_to_the_maximum() {
        // 1,800 a minute is 30 a second: 30 × L × 1.5, rounded up, plus one.
        let at = |ms| in_flight_for(1800, Duration::from_millis(ms), 128);
        assert_eq!(at(0), 1);
        assert_eq!(at(53), 4);
        assert_eq!(at(300), 15);
        assert_eq!(at(1000), 46);
        assert_eq!(at(2000), 91);
        assert_eq!(at(10_000), 128, "never above max_in_flight");
        assert_eq!(in_flight_for(1800, Duration::MAX, 64), 64);
        assert_eq!(in_flight_for(1800, Duration::from_secs(1), 0), 1);
        // A replica with a third of the quota needs a third as many.
        assert_eq!(in_flight_for(600, Duration::from_secs(1), 128), 16);
        let mut seen = Vec::new();
        for ms in (0..5000).step_by(10) {
            seen.push(at(ms));
        }
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "monotonic in latency"
        );
    }

    #[test]
    fn a_slower_answer_is_believed_at_once_and_a_faster_one_gradually() {
        let limiter = RateLimiter::new(
            RateLimitConfig {
                requests_per_minute: 1800,
                burst: 1,
            },
            Metrics::new(),
        );
        assert_eq!(limiter.in_flight_limit(1024), 46, "1 s assumed at first");
        limiter.observe_latency(Duration::from_millis(50));
        assert_eq!(
            limiter.in_flight_limit(1024),
            4,
            "the first answer replaces the guess"
        );
        limiter.observe_latency(Duration::from_secs(1));
        assert_eq!(limiter.in_flight_limit(1024), 46, "slower: at once");
        limiter.observe_latency(Duration::from_millis(50));
        let after_one = limiter.in_flight_limit(1024);
        assert!(after_one > 30 && after_one < 46, "{after_one}");
        for _ in 0..40 {
            limiter.observe_latency(Duration::from_millis(50));
        }
        assert_eq!(
            limiter.in_flight_limit(1024),
            4,
            "faster: within a few dozen answers"
        );
        // The share of the quota scales the limit.
        limiter.set_share(1, 2);
        assert_eq!(limiter.requests_per_minute(), 900);
        limiter.observe_latency(Duration::from_secs(1));
        assert_eq!(limiter.in_flight_limit(1024), 24);
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
