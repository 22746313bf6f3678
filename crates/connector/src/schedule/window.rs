//! When submissions may run: a daily local-time window in an IANA time zone, or always.
//!
//! Contract: [`Schedule::state_at`] maps an instant to [`ScheduleState`] (`Always`, `Open` until
//! an instant, `Closed` until an instant), and [`Schedule::next_opening`] gives the first opening
//! strictly after an instant. Both are pure functions of the instant and the validated
//! [`Schedule`]; nothing here reads a clock (only [`Schedule::describe`] does, for
//! `check-config`). Local times are resolved with the tz database of `chrono-tz`, never with a
//! fixed offset, so a window written as `03:00-06:00` in `Europe/London` opens at 03:00 on the
//! wall clock in winter (03:00 UTC) and in summer (02:00 UTC).
//!
//! A window `S-E` opens at local time `S` on every local date `D` and closes at local time `E` on
//! `D` (when `E > S`) or on the day after (when `E < S`: the window crosses midnight). The window
//! is half-open: open at `S`, closed again at `E`.
//!
//! # Clock changes
//!
//! A local time is taken as follows (the window never shrinks, and it never opens twice a day):
//!
//! | the local time… | as a start | as an end |
//! |---|---|---|
//! | occurs once | that instant | that instant |
//! | occurs twice (autumn overlap) | the earlier instant | the later instant |
//! | does not occur (spring gap) | the instant the clocks jump past it | the same |
//!
//! So `01:30-02:30` in `Europe/London` is open 00:30–02:30 UTC on 2026-10-25 (two hours, both
//! 01:30s included) and 01:00–01:30 UTC on 2026-03-29 (it opens when the clocks jump from 01:00
//! GMT to 02:00 BST). A window that lies wholly inside the gap (e.g. `01:10-01:50` on 2026-03-29
//! in London) never shows on the wall clock that day: it is empty and does not open. A window is
//! at most 23 h 59 min as written, plus that day's clock change (one hour in London), so shorter
//! than 25 h. A window of nearly 24 h can touch or run into the next day's on a clock-change day
//! (`02:00-01:59` in London: the 28 March window closes at 01:00 UTC on the 29th, when the
//! 29 March one opens; `01:50-01:10`: both 25 October 01:50 and 24 October's 01:10 fall in the
//! overlap, so the two windows share 00:50–01:10 UTC). `Open` then reports the later closing of
//! the windows open at that instant, and at a `closes_at` the state may be `Open` again.

use std::fmt;

use chrono::{
    DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

/// The longest run of nonexistent local time searched across (Samoa skipped a whole day in 2011).
const MAX_GAP: TimeDelta = TimeDelta::hours(26);
/// Step of that search. Every transition in the tz database falls on a whole minute after 1972;
/// the instant of the jump is then found to the second by bisection.
const GAP_STEP: TimeDelta = TimeDelta::minutes(1);
/// Local dates scanned forward for the next opening before giving up (an empty window happens at
/// most on a clock-change day, so two days suffice; the margin costs nothing).
const MAX_DAYS_SCANNED: u64 = 8;

/// Where a [`Schedule`] stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleState {
    /// `mode = "continuous"`: submissions may run at any time.
    Always,
    /// Inside a window that closes at `closes_at` (exclusive).
    Open {
        /// The first instant at which this window is closed.
        closes_at: DateTime<Utc>,
    },
    /// Outside every window; the next one opens at `opens_at` (always after now).
    Closed {
        /// Equal to [`Schedule::next_opening`] at the same instant.
        opens_at: DateTime<Utc>,
    },
}

impl ScheduleState {
    /// `Always` or `Open`.
    pub fn is_open(&self) -> bool {
        !matches!(self, ScheduleState::Closed { .. })
    }
}

/// What happens to the backlog still unsent when a window closes (`schedule.on_overrun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOverrun {
    /// No new submission starts after the window closes; the rest waits for the next window (NHS
    /// England: "the data items are to flow daily between 3am and 6am").
    Stop,
    /// A pass over the backlog that began inside the window runs on until it is drained.
    Continue,
}

impl OnOverrun {
    /// Every value, in the order the docs list them.
    pub const ALL: [OnOverrun; 2] = [OnOverrun::Stop, OnOverrun::Continue];

    /// The spelling in the configuration file.
    pub const fn as_str(self) -> &'static str {
        match self {
            OnOverrun::Stop => "stop",
            OnOverrun::Continue => "continue",
        }
    }

    /// The value spelled `text` in the configuration file.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for OnOverrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A daily window `start-end` in local time of `timezone`; `start != end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: NaiveTime,
    end: NaiveTime,
    timezone: Tz,
}

impl Window {
    /// `None` when `start == end` (an empty window; use [`Schedule::Continuous`] for "always").
    pub fn new(start: NaiveTime, end: NaiveTime, timezone: Tz) -> Option<Self> {
        (start != end).then_some(Self {
            start,
            end,
            timezone,
        })
    }

    /// Local opening time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Local closing time (on the next local day when it is before [`Window::start`]).
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// The IANA zone the times are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Whether the window closes on the local day after it opens.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// The window that opens on local date `date`, as `[opens, closes)` in UTC, or `None` when
    /// it lies wholly in a spring gap that day (see the module docs).
    pub fn on(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let opens = resolve(self.timezone, date.and_time(self.start), Fold::Earlier)?;
        let end_date = if self.crosses_midnight() {
            date.succ_opt()?
        } else {
            date
        };
        let closes = resolve(self.timezone, end_date.and_time(self.end), Fold::Later)?;
        (opens < closes).then_some((opens, closes))
    }

    /// The window's state at `now` (never [`ScheduleState::Always`]).
    pub fn state_at(&self, now: DateTime<Utc>) -> ScheduleState {
        let today = self.local_date(now);
        let closes_at = (-2..=1)
            .filter_map(|days| self.on(shift(today, days)?))
            .filter(|&(opens, closes)| opens <= now && now < closes)
            .map(|(_, closes)| closes)
            .max();
        match closes_at {
            Some(closes_at) => ScheduleState::Open { closes_at },
            None => ScheduleState::Closed {
                opens_at: self.next_opening(now).unwrap_or(DateTime::<Utc>::MAX_UTC),
            },
        }
    }

    /// The first opening strictly after `now` (from inside a window: the next day's).
    /// `None` only past the end of chrono's calendar.
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.local_date(now);
        // Openings grow with the date; the minimum is taken anyway so that a freak of the tz
        // database cannot hand back a later opening before an earlier one.
        let mut best: Option<DateTime<Utc>> = None;
        for days in -1..=MAX_DAYS_SCANNED as i64 {
            if best.is_some() && days > 2 {
                break;
            }
            let Some((opens, _)) = shift(today, days).and_then(|date| self.on(date)) else {
                continue;
            };
            if opens > now && best.is_none_or(|b| opens < b) {
                best = Some(opens);
            }
        }
        best
    }

    /// Whether `now` is inside a window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        matches!(self.state_at(now), ScheduleState::Open { .. })
    }

    fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.timezone).date_naive()
    }
}

impl fmt::Display for Window {
    /// `03:00-06:00 Europe/London`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} {}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M"),
            self.timezone.name()
        )
    }
}

/// A validated `[schedule]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Submit whenever records arrive.
    Continuous,
    /// Submit only inside the daily window.
    Window {
        /// When.
        window: Window,
        /// What to do with the backlog left when it closes.
        on_overrun: OnOverrun,
    },
}

impl Schedule {
    /// Where the schedule stands at `now`.
    pub fn state_at(&self, now: DateTime<Utc>) -> ScheduleState {
        match self {
            Schedule::Continuous => ScheduleState::Always,
            Schedule::Window { window, .. } => window.state_at(now),
        }
    }

    /// The first opening strictly after `now`; `None` when continuous.
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Continuous => None,
            Schedule::Window { window, .. } => window.next_opening(now),
        }
    }

    /// The window, when there is one.
    pub fn window(&self) -> Option<&Window> {
        match self {
            Schedule::Continuous => None,
            Schedule::Window { window, .. } => Some(window),
        }
    }

    /// `schedule.on_overrun` (meaningless, and `Continue`, when continuous).
    pub fn on_overrun(&self) -> OnOverrun {
        match self {
            Schedule::Continuous => OnOverrun::Continue,
            Schedule::Window { on_overrun, .. } => *on_overrun,
        }
    }

    /// Whether a new submission may start at `now`. `draining` says that a pass over the backlog
    /// that began while the window was open is still under way: `on_overrun = "continue"` lets
    /// it go on after closing time, `"stop"` does not (submissions already sent are not
    /// affected either way: this only gates starting one).
    pub fn may_start_submission(&self, now: DateTime<Utc>, draining: bool) -> bool {
        match self {
            Schedule::Continuous => true,
            Schedule::Window { window, on_overrun } => {
                window.contains(now) || (draining && *on_overrun == OnOverrun::Continue)
            }
        }
    }

    /// One line for `check-config`, as of the system clock.
    pub fn describe(&self) -> String {
        self.describe_at(Utc::now())
    }

    /// One line for `check-config`, as of `now`: `window 03:00-06:00 Europe/London, on_overrun
    /// stop (next opening 2026-12-02T03:00:00Z, 03:00 GMT)`.
    pub fn describe_at(&self, now: DateTime<Utc>) -> String {
        let Schedule::Window { window, on_overrun } = self else {
            return "continuous (submissions run whenever records arrive)".to_owned();
        };
        let tz = window.timezone;
        let at = |t: DateTime<Utc>| {
            format!(
                "{}, {}",
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                t.with_timezone(&tz).format("%H:%M %Z")
            )
        };
        let when = match window.state_at(now) {
            ScheduleState::Open { closes_at } => format!("open now, closes {}", at(closes_at)),
            ScheduleState::Closed { opens_at } => format!("next opening {}", at(opens_at)),
            ScheduleState::Always => unreachable!("a window is never always open"),
        };
        format!("window {window}, on_overrun {on_overrun} ({when})")
    }
}

/// Which instant an ambiguous local time means.
#[derive(Debug, Clone, Copy)]
enum Fold {
    Earlier,
    Later,
}

fn shift(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    }
}

/// `local` in `tz` as an instant, by the policy in the module docs.
fn resolve(tz: Tz, local: NaiveDateTime, fold: Fold) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let t = match fold {
                Fold::Earlier => a.min(b),
                Fold::Later => a.max(b),
            };
            Some(t.with_timezone(&Utc))
        }
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant after the run of nonexistent local time that holds `local`: the instant the
/// clocks jumped past it.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let steps = MAX_GAP.num_minutes() / GAP_STEP.num_minutes();
    let probe = |sign: i32| {
        (1..=steps).find_map(move |n| {
            let t = local.checked_add_signed(GAP_STEP * (sign * n as i32))?;
            match tz.from_local_datetime(&t) {
                LocalResult::Single(x) => Some(x),
                LocalResult::Ambiguous(a, b) => Some(if sign > 0 { a } else { b }),
                LocalResult::None => None,
            }
        })
    };
    let after = probe(1)?;
    let before = probe(-1)?;
    let offset_after = after.offset().fix();
    let offset_at = |secs: i64| {
        DateTime::from_timestamp(secs, 0).map(|t| tz.offset_from_utc_datetime(&t.naive_utc()).fix())
    };
    // Invariant: the offset at `lo` is the one before the jump, the one at `hi` the one after.
    let (mut lo, mut hi) = (before.timestamp(), after.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(mid)? == offset_after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn window(spec: &str, tz: Tz) -> Window {
        let (start, end) = spec.split_once('-').unwrap();
        Window::new(hm(start), hm(end), tz).unwrap()
    }

    fn london(spec: &str) -> Schedule {
        Schedule::Window {
            window: window(spec, chrono_tz::Europe::London),
            on_overrun: OnOverrun::Stop,
        }
    }

    fn open(closes: &str) -> ScheduleState {
        ScheduleState::Open {
            closes_at: utc(closes),
        }
    }

    fn closed(opens: &str) -> ScheduleState {
        ScheduleState::Closed {
            opens_at: utc(opens),
        }
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// State one second before, at, and one second after `t`.
    fn around(s: &Schedule, t: &str) -> [ScheduleState; 3] {
        let t = utc(t);
        [
            s.state_at(t - TimeDelta::seconds(1)),
            s.state_at(t),
            s.state_at(t + TimeDelta::seconds(1)),
        ]
    }

    #[test]
    fn the_window_opens_at_three_uk_time_on_the_spring_clock_change_which_is_two_utc() {
        let s = london("03:00-06:00");
        assert_eq!(
            around(&s, "2026-03-29T02:00:00Z"),
            [
                closed("2026-03-29T02:00:00Z"),
                open("2026-03-29T05:00:00Z"),
                open("2026-03-29T05:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-03-29T05:00:00Z"),
            [
                open("2026-03-29T05:00:00Z"),
                closed("2026-03-30T02:00:00Z"),
                closed("2026-03-30T02:00:00Z")
            ]
        );
    }

    #[test]
    fn the_window_opens_at_three_uk_time_on_the_autumn_clock_change_which_is_three_utc() {
        let s = london("03:00-06:00");
        assert_eq!(
            around(&s, "2026-10-25T03:00:00Z"),
            [
                closed("2026-10-25T03:00:00Z"),
                open("2026-10-25T06:00:00Z"),
                open("2026-10-25T06:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-10-25T06:00:00Z"),
            [
                open("2026-10-25T06:00:00Z"),
                closed("2026-10-26T03:00:00Z"),
                closed("2026-10-26T03:00:00Z")
            ]
        );
        // The day before is still summer time.
        assert_eq!(
            s.window().unwrap().on(date("2026-10-24")),
            Some((utc("2026-10-24T02:00:00Z"), utc("2026-10-24T05:00:00Z")))
        );
    }

    #[test]
    fn on_an_ordinary_winter_day_the_window_is_three_to_six_utc() {
        let s = london("03:00-06:00");
        assert_eq!(
            around(&s, "2026-12-01T03:00:00Z"),
            [
                closed("2026-12-01T03:00:00Z"),
                open("2026-12-01T06:00:00Z"),
                open("2026-12-01T06:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-12-01T06:00:00Z"),
            [
                open("2026-12-01T06:00:00Z"),
                closed("2026-12-02T03:00:00Z"),
                closed("2026-12-02T03:00:00Z")
            ]
        );
    }

    #[test]
    fn on_an_ordinary_summer_day_the_window_is_two_to_five_utc() {
        let s = london("03:00-06:00");
        assert_eq!(
            around(&s, "2026-07-01T02:00:00Z"),
            [
                closed("2026-07-01T02:00:00Z"),
                open("2026-07-01T05:00:00Z"),
                open("2026-07-01T05:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-07-01T05:00:00Z"),
            [
                open("2026-07-01T05:00:00Z"),
                closed("2026-07-02T02:00:00Z"),
                closed("2026-07-02T02:00:00Z")
            ]
        );
    }

    #[test]
    fn the_next_opening_is_today_before_the_window_and_tomorrow_inside_or_after_it() {
        let s = london("03:00-06:00");
        let next = |t: &str| s.next_opening(utc(t)).unwrap();
        assert_eq!(next("2026-12-01T00:00:00Z"), utc("2026-12-01T03:00:00Z"));
        assert_eq!(next("2026-12-01T02:59:59Z"), utc("2026-12-01T03:00:00Z"));
        assert_eq!(next("2026-12-01T03:00:00Z"), utc("2026-12-02T03:00:00Z"));
        assert_eq!(next("2026-12-01T04:30:00Z"), utc("2026-12-02T03:00:00Z"));
        assert_eq!(next("2026-12-01T06:00:00Z"), utc("2026-12-02T03:00:00Z"));
        assert_eq!(next("2026-12-01T23:59:59Z"), utc("2026-12-02T03:00:00Z"));
        // Across both clock changes.
        assert_eq!(next("2026-03-28T04:00:00Z"), utc("2026-03-29T02:00:00Z"));
        assert_eq!(next("2026-03-29T02:30:00Z"), utc("2026-03-30T02:00:00Z"));
        assert_eq!(next("2026-10-24T03:00:00Z"), utc("2026-10-25T03:00:00Z"));
        assert_eq!(next("2026-10-25T02:30:00Z"), utc("2026-10-25T03:00:00Z"));
    }

    #[test]
    fn a_window_across_midnight_closes_on_the_next_day_across_the_spring_clock_change() {
        let s = london("22:00-02:00");
        // Saturday 22:00 GMT to Sunday 02:00 BST (01:00 UTC): three hours.
        assert_eq!(
            around(&s, "2026-03-28T22:00:00Z"),
            [
                closed("2026-03-28T22:00:00Z"),
                open("2026-03-29T01:00:00Z"),
                open("2026-03-29T01:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-03-29T01:00:00Z"),
            [
                open("2026-03-29T01:00:00Z"),
                closed("2026-03-29T21:00:00Z"),
                closed("2026-03-29T21:00:00Z")
            ]
        );
        // Just after midnight local, still open.
        assert_eq!(
            s.state_at(utc("2026-03-29T00:30:00Z")),
            open("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            s.next_opening(utc("2026-03-29T00:30:00Z")),
            Some(utc("2026-03-29T21:00:00Z"))
        );
    }

    #[test]
    fn a_window_across_midnight_closes_on_the_next_day_across_the_autumn_clock_change() {
        let s = london("22:00-02:00");
        // Saturday 22:00 BST (21:00 UTC) to Sunday 02:00 GMT (02:00 UTC): five hours.
        assert_eq!(
            around(&s, "2026-10-24T21:00:00Z"),
            [
                closed("2026-10-24T21:00:00Z"),
                open("2026-10-25T02:00:00Z"),
                open("2026-10-25T02:00:00Z")
            ]
        );
        assert_eq!(
            around(&s, "2026-10-25T02:00:00Z"),
            [
                open("2026-10-25T02:00:00Z"),
                closed("2026-10-25T22:00:00Z"),
                closed("2026-10-25T22:00:00Z")
            ]
        );
    }

    #[test]
    fn a_start_in_the_spring_gap_opens_when_the_clocks_jump() {
        // 01:30 does not exist on 2026-03-29 in London: clocks go 01:00 GMT -> 02:00 BST.
        let w = window("01:30-02:30", chrono_tz::Europe::London);
        assert_eq!(
            w.on(date("2026-03-29")),
            Some((utc("2026-03-29T01:00:00Z"), utc("2026-03-29T01:30:00Z")))
        );
        let s = london("01:30-02:30");
        assert_eq!(
            around(&s, "2026-03-29T01:00:00Z"),
            [
                closed("2026-03-29T01:00:00Z"),
                open("2026-03-29T01:30:00Z"),
                open("2026-03-29T01:30:00Z")
            ]
        );
    }

    #[test]
    fn an_end_in_the_spring_gap_closes_when_the_clocks_jump() {
        let w = window("00:30-01:30", chrono_tz::Europe::London);
        assert_eq!(
            w.on(date("2026-03-29")),
            Some((utc("2026-03-29T00:30:00Z"), utc("2026-03-29T01:00:00Z")))
        );
    }

    #[test]
    fn a_window_wholly_inside_the_spring_gap_does_not_open_that_day() {
        let s = london("01:10-01:50");
        let w = s.window().unwrap();
        assert_eq!(w.on(date("2026-03-29")), None);
        assert_eq!(
            s.next_opening(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-30T00:10:00Z"))
        );
        assert_eq!(
            s.state_at(utc("2026-03-29T01:00:00Z")),
            closed("2026-03-30T00:10:00Z")
        );
    }

    #[test]
    fn an_ambiguous_start_takes_the_earlier_instant_and_an_ambiguous_end_the_later() {
        // 01:30 happens twice on 2026-10-25 in London: 00:30 UTC (BST) and 01:30 UTC (GMT).
        let w = window("01:30-02:30", chrono_tz::Europe::London);
        assert_eq!(
            w.on(date("2026-10-25")),
            Some((utc("2026-10-25T00:30:00Z"), utc("2026-10-25T02:30:00Z")))
        );
        let w = window("01:10-01:50", chrono_tz::Europe::London);
        assert_eq!(
            w.on(date("2026-10-25")),
            Some((utc("2026-10-25T00:10:00Z"), utc("2026-10-25T01:50:00Z")))
        );
        let s = london("01:30-02:30");
        assert_eq!(
            around(&s, "2026-10-25T00:30:00Z"),
            [
                closed("2026-10-25T00:30:00Z"),
                open("2026-10-25T02:30:00Z"),
                open("2026-10-25T02:30:00Z")
            ]
        );
        // The second 01:30 (GMT) does not open it again.
        assert_eq!(
            s.next_opening(utc("2026-10-25T01:30:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn a_gap_at_midnight_is_resolved_to_the_second() {
        // Havana springs forward at 00:00 -> 01:00 (2026-03-08).
        let w = window("00:30-03:00", chrono_tz::America::Havana);
        assert_eq!(
            w.on(date("2026-03-08")),
            Some((utc("2026-03-08T05:00:00Z"), utc("2026-03-08T07:00:00Z")))
        );
        // Lord Howe springs forward by half an hour, 02:00 -> 02:30 (2026-10-04).
        let w = window("02:10-04:00", chrono_tz::Australia::Lord_Howe);
        assert_eq!(
            w.on(date("2026-10-04")),
            Some((utc("2026-10-03T15:30:00Z"), utc("2026-10-03T17:00:00Z")))
        );
    }

    #[test]
    fn nearly_day_long_windows_touch_or_overlap_on_clock_change_days_and_stay_open_across() {
        let s = london("02:00-01:59");
        let w = s.window().unwrap();
        let (_, closes) = w.on(date("2026-03-28")).unwrap();
        let (opens, _) = w.on(date("2026-03-29")).unwrap();
        assert_eq!(
            (closes, opens),
            (utc("2026-03-29T01:00:00Z"), utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            around(&s, "2026-03-29T01:00:00Z"),
            [
                open("2026-03-29T01:00:00Z"),
                open("2026-03-30T00:59:00Z"),
                open("2026-03-30T00:59:00Z")
            ]
        );
        let s = london("01:50-01:10");
        let w = s.window().unwrap();
        assert_eq!(
            w.on(date("2026-10-24")),
            Some((utc("2026-10-24T00:50:00Z"), utc("2026-10-25T01:10:00Z")))
        );
        assert_eq!(
            w.on(date("2026-10-25")),
            Some((utc("2026-10-25T00:50:00Z"), utc("2026-10-26T01:10:00Z")))
        );
        assert_eq!(
            s.state_at(utc("2026-10-25T00:30:00Z")),
            open("2026-10-25T01:10:00Z")
        );
        assert_eq!(
            s.state_at(utc("2026-10-25T01:00:00Z")),
            open("2026-10-26T01:10:00Z")
        );
    }

    #[test]
    fn continuous_is_always_open_and_has_no_opening() {
        let s = Schedule::Continuous;
        assert_eq!(
            s.state_at(utc("2026-03-29T01:30:00Z")),
            ScheduleState::Always
        );
        assert!(s.state_at(utc("2026-03-29T01:30:00Z")).is_open());
        assert_eq!(s.next_opening(utc("2026-03-29T01:30:00Z")), None);
        assert!(s.may_start_submission(utc("2026-03-29T12:00:00Z"), false));
    }

    #[test]
    fn overrun_stop_starts_nothing_after_closing_and_continue_lets_a_pass_drain() {
        let stop = london("03:00-06:00");
        let cont = Schedule::Window {
            window: *stop.window().unwrap(),
            on_overrun: OnOverrun::Continue,
        };
        let inside = utc("2026-12-01T05:59:59Z");
        let after = utc("2026-12-01T06:00:00Z");
        for s in [&stop, &cont] {
            assert!(s.may_start_submission(inside, false));
            assert!(s.may_start_submission(inside, true));
            assert!(!s.may_start_submission(after, false));
        }
        assert!(!stop.may_start_submission(after, true));
        assert!(cont.may_start_submission(after, true));
    }

    #[test]
    fn describe_names_the_window_the_zone_and_the_next_opening() {
        let s = london("03:00-06:00");
        assert_eq!(
            s.describe_at(utc("2026-12-01T12:00:00Z")),
            "window 03:00-06:00 Europe/London, on_overrun stop \
             (next opening 2026-12-02T03:00:00Z, 03:00 GMT)"
        );
        assert_eq!(
            s.describe_at(utc("2026-07-01T03:00:00Z")),
            "window 03:00-06:00 Europe/London, on_overrun stop \
             (open now, closes 2026-07-01T05:00:00Z, 06:00 BST)"
        );
        assert_eq!(
            Schedule::Continuous.describe(),
            "continuous (submissions run whenever records arrive)"
        );
        assert!(s.describe().starts_with("window 03:00-06:00 Europe/London"));
    }

    #[test]
    fn an_empty_window_is_refused() {
        assert_eq!(
            Window::new(hm("03:00"), hm("03:00"), chrono_tz::Europe::London),
            None
        );
    }

    const SPECS: [&str; 9] = [
        "03:00-06:00",
        "01:50-01:10",
        "22:00-02:00",
        "01:30-02:30",
        "01:10-01:50",
        "00:00-00:30",
        "23:30-00:15",
        "02:00-01:59",
        "12:00-11:00",
    ];

    const ZONES: [Tz; 6] = [
        chrono_tz::Europe::London,
        chrono_tz::America::New_York,
        chrono_tz::America::Havana,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Kolkata,
        chrono_tz::UTC,
    ];

    /// What must hold at any instant: `state_at` and `next_opening` agree, the opening instant is
    /// open, the instant before it is not, and no window lasts 25 hours.
    fn check_consistency(s: &Schedule, now: DateTime<Utc>) -> Result<(), String> {
        let fail = |what: String| Err(format!("{} at {now}: {what}", s.describe_at(now)));
        let Some(next) = s.next_opening(now) else {
            return fail("no next opening".into());
        };
        if next <= now || next - now > TimeDelta::hours(49) {
            return fail(format!("next opening {next}"));
        }
        match s.state_at(now) {
            ScheduleState::Always => return fail("a window is never always open".into()),
            ScheduleState::Closed { opens_at } => {
                if opens_at != next {
                    return fail(format!("closed until {opens_at}, next opening {next}"));
                }
                let mid = now + (opens_at - now) / 2;
                if s.state_at(mid) != (ScheduleState::Closed { opens_at }) {
                    return fail(format!("not closed until {opens_at} at {mid}"));
                }
                if s.state_at(opens_at - TimeDelta::seconds(1)).is_open() {
                    return fail(format!("open just before opening {opens_at}"));
                }
                match s.state_at(opens_at) {
                    ScheduleState::Open { closes_at }
                        if closes_at > opens_at && closes_at - opens_at < TimeDelta::hours(25) => {}
                    other => return fail(format!("{other:?} at opening {opens_at}")),
                }
            }
            ScheduleState::Open { closes_at } => {
                if closes_at <= now || closes_at - now >= TimeDelta::hours(25) {
                    return fail(format!("open until {closes_at}"));
                }
                if !s.state_at(closes_at - TimeDelta::seconds(1)).is_open() {
                    return fail(format!("closed just before closing {closes_at}"));
                }
            }
        }
        Ok(())
    }

    fn every_schedule() -> impl Iterator<Item = Schedule> {
        ZONES.into_iter().flat_map(|tz| {
            SPECS.into_iter().map(move |spec| Schedule::Window {
                window: window(spec, tz),
                on_overrun: OnOverrun::Stop,
            })
        })
    }

    /// The instants in 2026 at which `tz` changes its UTC offset.
    fn transitions_2026(tz: Tz) -> Vec<DateTime<Utc>> {
        let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        let mut t = utc("2026-01-01T00:00:00Z");
        let mut found = Vec::new();
        while t < utc("2027-01-01T00:00:00Z") {
            let next = t + TimeDelta::minutes(30);
            if offset(t) != offset(next) {
                found.push(next);
            }
            t = next;
        }
        found
    }

    #[test]
    fn the_zones_under_test_change_clocks_in_2026_where_expected() {
        assert_eq!(
            transitions_2026(chrono_tz::Europe::London),
            [utc("2026-03-29T01:00:00Z"), utc("2026-10-25T01:00:00Z")]
        );
        assert_eq!(transitions_2026(chrono_tz::America::Havana).len(), 2);
        assert_eq!(transitions_2026(chrono_tz::Australia::Lord_Howe).len(), 2);
        assert!(transitions_2026(chrono_tz::Asia::Kolkata).is_empty());
    }

    #[test]
    fn state_at_agrees_with_next_opening_every_seven_minutes_around_every_clock_change() {
        // Seven minutes is prime to the hour, so the sweep lands on every minute of the hour.
        let mut checked = 0;
        for s in every_schedule() {
            let tz = s.window().unwrap().timezone();
            for change in transitions_2026(tz) {
                let mut t = change - TimeDelta::hours(30);
                while t < change + TimeDelta::hours(30) {
                    if let Err(e) = check_consistency(&s, t) {
                        panic!("{e}");
                    }
                    checked += 1;
                    t += TimeDelta::minutes(7);
                }
            }
        }
        assert!(checked > 20_000, "{checked}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn state_at_agrees_with_next_opening_at_any_instant_of_2026(
            secs in 1_767_225_600i64..1_798_761_600, // 2026-01-01T00:00Z .. 2027-01-01T00:00Z
            spec in 0..SPECS.len(),
            zone in 0..ZONES.len(),
        ) {
            let s = Schedule::Window {
                window: window(SPECS[spec], ZONES[zone]),
                on_overrun: OnOverrun::Stop,
            };
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            check_consistency(&s, now).map_err(TestCaseError::fail)?;
        }
    }
}
