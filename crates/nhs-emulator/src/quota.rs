//! Fixed-window per-app quota, as Apigee's `Quota` policy counts it.
//!
//! Input: an app name and the current instant. Output: allowed, or the time until the app's
//! window resets (the `Retry-After`). A window opens at an app's first allowed request and lasts
//! one minute; only allowed requests count. A limit of 0 means "no limit". Pure, no I/O.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long one quota window lasts ("N requests every 1 minute(s)").
const WINDOW: Duration = Duration::from_secs(60);

/// Per-app request counters over fixed one-minute windows.
#[derive(Debug)]
pub(crate) struct Quota {
    limit: u32,
    windows: HashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    used: u32,
}

impl Quota {
    /// A quota of `limit` requests per app per minute (0 = unlimited).
    pub(crate) fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            windows: HashMap::new(),
        }
    }

    /// The configured limit per minute.
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one request for `app`, or returns how long until its window resets.
    pub(crate) fn take(&mut self, app: &str, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let window = self.windows.entry(app.to_owned()).or_insert(Window {
            started: now,
            used: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        if window.used >= self.limit {
            return Err(WINDOW.saturating_sub(now.duration_since(window.started)));
        }
        window.used += 1;
        Ok(())
    }
}

/// Whole seconds to put in `Retry-After`: rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_limit_requests_then_reports_time_to_reset() {
        let mut quota = Quota::per_minute(2);
        let t0 = Instant::now();
        assert!(quota.take("a", t0).is_ok());
        assert!(quota.take("a", t0).is_ok());
        let wait = quota.take("a", t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(quota.take("b", t0).is_ok(), "apps have separate windows");
    }

    #[test]
    fn opens_a_new_window_after_a_minute() {
        let mut quota = Quota::per_minute(1);
        let t0 = Instant::now();
        assert!(quota.take("a", t0).is_ok());
        assert!(quota.take("a", t0 + Duration::from_secs(59)).is_err());
        assert!(quota.take("a", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn zero_limit_means_unlimited() {
        let mut quota = Quota::per_minute(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| quota.take("a", t0).is_ok()));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(40_001)), 41);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
