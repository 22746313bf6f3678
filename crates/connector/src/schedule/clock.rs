//! Wall-clock time for the schedule, real or moved by hand, and waiting for an instant.
//!
//! Contract: [`Clock::now`] is the current UTC instant. [`SystemClock`] reads the system clock;
//! [`ManualClock`] only moves when [`ManualClock::set`] or [`ManualClock::advance`] is called
//! (tests, the simulated-clock demo) and wakes every waiter when it does. [`sleep_until`] returns
//! [`Wake::Reached`] once the clock reads `at` or later, or [`Wake::Cancelled`] as soon as the
//! token is cancelled (cancellation wins when both hold). With a system clock it sleeps at most
//! [`MAX_SLEEP_STEP`] at a time and reads the clock again, so a step of the wall clock (NTP, a
//! suspended VM) delays a wake-up by at most that much; with a manual clock it never sleeps on a
//! timer, so a test moves time forward without waiting.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest single timer sleep of [`sleep_until`] on a clock that moves by itself.
pub const MAX_SLEEP_STEP: Duration = Duration::from_secs(60);

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// For a clock that moves only when told to: notified (`notify_waiters`) after every move, so
    /// [`sleep_until`] waits on it instead of on a timer. `None` (the default) for a clock that
    /// moves by itself.
    fn moved(&self) -> Option<&Notify> {
        None
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                now: Mutex::new(start),
                moved: Notify::new(),
            }),
        }
    }

    /// Sets the time (backwards too) and wakes every waiter.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = to;
        self.inner.moved.notify_waiters();
    }

    /// Moves the time by `by` and wakes every waiter; returns the new time.
    pub fn advance(&self, by: TimeDelta) -> DateTime<Utc> {
        let now = {
            let mut now = self.lock();
            *now += by;
            *now
        };
        self.inner.moved.notify_waiters();
        now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.inner
            .now
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    fn moved(&self) -> Option<&Notify> {
        Some(&self.inner.moved)
    }
}

/// Why [`sleep_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The clock reads `at` or later.
    Reached,
    /// The token was cancelled first.
    Cancelled,
}

/// Waits until `clock` reads `at` or later, or `cancel` is cancelled.
pub async fn sleep_until(clock: &dyn Clock, at: DateTime<Utc>, cancel: &CancellationToken) -> Wake {
    loop {
        if cancel.is_cancelled() {
            return Wake::Cancelled;
        }
        match clock.moved() {
            Some(moved) => {
                // Register before reading the clock, so a move in between is not missed.
                let notified = moved.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if clock.now() >= at {
                    return Wake::Reached;
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = cancel.cancelled() => return Wake::Cancelled,
                }
            }
            None => {
                let now = clock.now();
                if now >= at {
                    return Wake::Reached;
                }
                let wait = (at - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_SLEEP_STEP);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return Wake::Cancelled,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::{OnOverrun, Schedule, ScheduleState, Window};
    use super::*;
    use chrono::NaiveTime;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Lets every other task on the current-thread runtime run until it waits again.
    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_clones_share_it() {
        let clock = ManualClock::new(utc("2026-03-29T00:00:00Z"));
        let other = clock.clone();
        assert_eq!(clock.now(), utc("2026-03-29T00:00:00Z"));
        assert_eq!(
            other.advance(TimeDelta::hours(2)),
            utc("2026-03-29T02:00:00Z")
        );
        assert_eq!(clock.now(), utc("2026-03-29T02:00:00Z"));
        clock.set(utc("2026-01-01T00:00:00Z"));
        assert_eq!(other.now(), utc("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn the_system_clock_reads_now() {
        let before = Utc::now();
        let now = SystemClock.now();
        assert!(now >= before && now <= Utc::now());
    }

    #[tokio::test]
    async fn sleep_until_a_past_instant_returns_at_once() {
        let clock = ManualClock::new(utc("2026-03-29T03:00:00Z"));
        let cancel = CancellationToken::new();
        let at = utc("2026-03-29T02:00:00Z");
        assert_eq!(sleep_until(&clock, at, &cancel).await, Wake::Reached);
        assert_eq!(sleep_until(&SystemClock, at, &cancel).await, Wake::Reached);
    }

    #[tokio::test]
    async fn sleep_until_on_a_manual_clock_wakes_when_the_clock_is_advanced_past_the_instant() {
        let clock = ManualClock::new(utc("2026-03-29T00:00:00Z"));
        let cancel = CancellationToken::new();
        let sleeper = {
            let clock = clock.clone();
            let cancel = cancel.clone();
            tokio::spawn(
                async move { sleep_until(&clock, utc("2026-03-29T02:00:00Z"), &cancel).await },
            )
        };
        settle().await;
        assert!(!sleeper.is_finished());
        clock.advance(TimeDelta::minutes(119));
        settle().await;
        assert!(!sleeper.is_finished(), "woke a minute early");
        clock.advance(TimeDelta::minutes(1));
        assert_eq!(sleeper.await.unwrap(), Wake::Reached);
    }

    #[tokio::test]
    async fn sleep_until_returns_cancelled_when_the_token_is_cancelled() {
        let clock = ManualClock::new(utc("2026-03-29T00:00:00Z"));
        let cancel = CancellationToken::new();
        let far = utc("2027-01-01T00:00:00Z");
        let sleeper = {
            let clock = clock.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { sleep_until(&clock, far, &cancel).await })
        };
        settle().await;
        cancel.cancel();
        assert_eq!(sleeper.await.unwrap(), Wake::Cancelled);
        // Also on the system clock, which would otherwise sleep for months.
        assert_eq!(
            sleep_until(&SystemClock, far, &cancel).await,
            Wake::Cancelled
        );
    }

    #[tokio::test]
    async fn sleep_until_on_the_system_clock_wakes_at_the_instant() {
        let cancel = CancellationToken::new();
        let at = Utc::now() + TimeDelta::milliseconds(30);
        assert_eq!(sleep_until(&SystemClock, at, &cancel).await, Wake::Reached);
        assert!(Utc::now() >= at);
    }

    /// The simulated-clock demo: a scheduler that sleeps until each opening and closing, driven
    /// by a manual clock through four nights around the spring clock change.
    #[tokio::test]
    async fn a_scheduler_on_a_manual_clock_opens_at_three_uk_time_each_night_across_the_clock_change(
    ) {
        let schedule = Schedule::Window {
            window: Window::new(
                NaiveTime::from_hms_opt(3, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                chrono_tz::Europe::London,
            )
            .unwrap(),
            on_overrun: OnOverrun::Stop,
        };
        let clock = ManualClock::new(utc("2026-03-27T12:00:00Z"));
        let cancel = CancellationToken::new();
        let scheduler = {
            let clock = clock.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut log = Vec::new();
                loop {
                    let wake = match schedule.state_at(clock.now()) {
                        ScheduleState::Open { closes_at } => {
                            log.push(format!("open {}", clock.now().to_rfc3339()));
                            sleep_until(&clock, closes_at, &cancel).await
                        }
                        ScheduleState::Closed { opens_at } => {
                            log.push(format!("closed {}", clock.now().to_rfc3339()));
                            sleep_until(&clock, opens_at, &cancel).await
                        }
                        ScheduleState::Always => unreachable!(),
                    };
                    if wake == Wake::Cancelled {
                        return log;
                    }
                }
            })
        };
        while clock.now() < utc("2026-03-31T12:00:00Z") {
            settle().await;
            clock.advance(TimeDelta::minutes(15));
        }
        settle().await;
        cancel.cancel();
        assert_eq!(
            scheduler.await.unwrap(),
            [
                "closed 2026-03-27T12:00:00+00:00",
                "open 2026-03-28T03:00:00+00:00",
                "closed 2026-03-28T06:00:00+00:00",
                "open 2026-03-29T02:00:00+00:00",
                "closed 2026-03-29T05:00:00+00:00",
                "open 2026-03-30T02:00:00+00:00",
                "closed 2026-03-30T05:00:00+00:00",
                "open 2026-03-31T02:00:00+00:00",
                "closed 2026-03-31T05:00:00+00:00",
            ]
        );
    }
}
