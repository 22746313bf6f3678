//! The submission schedule's metric families (`[schedule]`, `crate::window`) and the
//! [`Metrics`] methods that record them: where the schedule stands, the next opening, the backlog
//! found at an opening (records and distinct calls), the POSTs coalescing saved, the time a
//! window took to drain its backlog, and windows that closed with a backlog left. Every label
//! value comes from [`ScheduleLabel`] and is created at zero on registration.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use super::{gauge, Metrics};

/// Where the submission schedule stands (`ads_connector_schedule_state{state}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleLabel {
    /// `schedule.mode = "continuous"`: submissions run whenever records arrive.
    Continuous,
    /// Outside the window: nothing is submitted, no token is requested; Kafka holds the backlog.
    Waiting,
    /// Inside the window (the backlog pass included).
    Open,
    /// The window has closed: submissions already under way finish (with `on_overrun =
    /// "continue"`, the pass goes on until the backlog is drained).
    Draining,
}

impl ScheduleLabel {
    /// Every value, for zero-initialised series.
    pub const ALL: [Self; 4] = [Self::Continuous, Self::Waiting, Self::Open, Self::Draining];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continuous => "continuous",
            Self::Waiting => "waiting",
            Self::Open => "open",
            Self::Draining => "draining",
        }
    }
}

impl Metrics {
    /// The schedule is now `state`; `next_opening` in Unix seconds (0 when continuous).
    pub fn schedule_state(&self, state: ScheduleLabel, next_opening: Option<i64>) {
        for s in ScheduleLabel::ALL {
            self.schedule
                .state
                .with_label_values(&[s.as_str()])
                .set(i64::from(s == state));
        }
        self.schedule.next_opening.set(next_opening.unwrap_or(0));
    }

    /// A window opened over a backlog of `records` records holding `calls` distinct calls.
    pub fn schedule_backlog_at_opening(&self, records: u64, calls: u64) {
        self.schedule
            .backlog_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        self.schedule
            .backlog_calls
            .set(i64::try_from(calls).unwrap_or(i64::MAX));
    }

    /// One record was acked `superseded` by the window pass instead of being POSTed.
    pub fn schedule_coalesced(&self) {
        self.schedule.coalesced.inc();
    }

    /// The backlog found at the last opening is all acked or dead-lettered, `seconds` after it.
    pub fn schedule_drained(&self, seconds: u64) {
        self.schedule
            .drain_seconds
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// A window closed with `records` records of its backlog not yet sent (0: it finished).
    pub fn schedule_closed(&self, records: u64) {
        self.schedule
            .backlog_left
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        if records > 0 {
            self.schedule.unfinished.inc();
        }
    }

    /// POSTs saved by coalescing so far (tests and the demo read it).
    pub fn schedule_coalesced_total(&self) -> u64 {
        self.schedule.coalesced.get()
    }
}

/// The schedule's families.
#[derive(Clone)]
pub(super) struct ScheduleMetrics {
    state: IntGaugeVec,
    next_opening: IntGauge,
    backlog_records: IntGauge,
    backlog_calls: IntGauge,
    coalesced: IntCounter,
    drain_seconds: IntGauge,
    backlog_left: IntGauge,
    unfinished: IntCounter,
}

fn int_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(format!("ads_connector_{name}"), help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl ScheduleMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let state = IntGaugeVec::new(
            Opts::new(
                "ads_connector_schedule_state",
                "1 on the series of where the submission schedule stands: continuous, waiting (outside the window), open, draining (closed, work under way finishing).",
            ),
            &["state"],
        )
        .expect("valid metric");
        r.register(Box::new(state.clone())).expect("unique metric");
        for s in ScheduleLabel::ALL {
            state.with_label_values(&[s.as_str()]);
        }
        Self {
            state,
            next_opening: gauge(
                r,
                "schedule_next_opening_timestamp_seconds",
                "When the submission window next opens, Unix seconds; 0 when continuous or open.",
            ),
            backlog_records: gauge(
                r,
                "schedule_backlog_records",
                "Records waiting in this replica's partitions when the window last opened.",
            ),
            backlog_calls: gauge(
                r,
                "schedule_backlog_calls",
                "Distinct calls among the records waiting when the window last opened (one POST entry each).",
            ),
            coalesced: int_counter(
                r,
                "schedule_coalesced_total",
                "Records acked superseded by the window pass without a POST of their own (POST entries saved).",
            ),
            drain_seconds: gauge(
                r,
                "schedule_drain_seconds",
                "Seconds from the last opening until its backlog was all acked or dead-lettered.",
            ),
            backlog_left: gauge(
                r,
                "schedule_backlog_left_records",
                "Records of the backlog still unsent when the window last closed (0: it finished).",
            ),
            unfinished: int_counter(
                r,
                "schedule_windows_unfinished_total",
                "Windows that closed before their backlog was sent (what is left waits for the next window).",
            ),
        }
    }
}
