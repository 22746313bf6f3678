//! Whether the NHS API looks misconfigured, or is failing: one [`ApiHealth`], shared by the
//! submitter (which reports every answer) and `/readyz` (which turns 503 while it is
//! misconfigured).
//!
//! Input: the submitter's classified answers, [`ApiHealth::misconfigured`] for an answer only a
//! wrong URL, path or credential explains ([`ApiFault`]) and [`ApiHealth::answered_normally`] for
//! an answer of the API's own (accepted, or refused for the content). Output: the state, the
//! metrics `ads_connector_api_misconfigured{reason}` (1 for the current reason) and
//! `ads_connector_api_misconfigured_responses_total{reason}`, one error line when the fault begins
//! or changes (status, reason, what to check, and the submission URL without user info, query or
//! fragment: never a token or key) and one line when it ends. Waiters are woken on recovery
//! ([`ApiHealth::recovered`]), so paused submissions resume at once.
//!
//! The same wake-up ends outages. [`ApiHealth::failed`] records a transient failure (5xx, 408, a
//! timeout, no connection); the next normal answer after one logs that the API answers again and
//! wakes every submission waiting in its retry backoff ([`ApiHealth::wait_to_retry`]), however
//! long that backoff had grown, so a backlog resumes within seconds of the API's return instead of
//! after the longest backoff. While the API fails, one waiting submission a [`PROBE_INTERVAL`]
//! (one per process, not one per submission) is let go early as the probe that finds out. The
//! woken submissions still wait for the rate limiter, which lets them go at the quota's pace:
//! no thundering herd.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use crate::metrics::{ApiFault, Metrics};

/// The current fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misconfiguration {
    /// Why.
    pub fault: ApiFault,
    /// The last status that said so.
    pub status: u16,
    /// Since when the API has looked misconfigured (any reason).
    pub since: Instant,
}

/// The API's configuration health; cheap to clone.
#[derive(Clone)]
pub struct ApiHealth {
    inner: Arc<Inner>,
}

/// While the API fails, how often one waiting submission is let go early to probe it.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Why [`ApiHealth::wait_to_retry`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// The whole wait passed.
    Waited,
    /// A normal answer after failures (or the end of a misconfiguration): the API is back.
    Recovered,
    /// The API is failing and this submission is the probe.
    Probe,
}

struct Inner {
    state: Mutex<Option<Misconfiguration>>,
    recovered: Notify,
    /// A transient failure since the last normal answer.
    failing: AtomicBool,
    /// While failing: when the next probe may go.
    next_probe: Mutex<Option<Instant>>,
    metrics: Metrics,
    url: String,
}

/// What an operator checks for `fault`.
pub fn hint(fault: ApiFault) -> &'static str {
    match fault {
        ApiFault::NotFound => {
            "no API at this URL: check nhs_api.environment, nhs_api.base_url and nhs_api.paths"
        }
        ApiFault::MethodNotAllowed => {
            "this URL does not take a POST: check nhs_api.base_url and nhs_api.paths"
        }
        ApiFault::Redirect => {
            "the URL redirects and redirects are never followed: put the final URL (https \
             included) in nhs_api.base_url"
        }
        ApiFault::NoSubmissionId => {
            "a 2xx without the API's submission id is not the API's answer (a proxy, a portal, \
             another service): check nhs_api.base_url"
        }
        ApiFault::Unauthorized => {
            "refused again with a fresh token, or without authentication: check that the \
             credentials (nhs_api.api_key_file, nhs_api.kid, the private key) belong to this \
             environment, and nhs_api.auth"
        }
    }
}

/// `url` without user info, query or fragment (what logs and errors may show).
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

impl ApiHealth {
    /// Healthy, for the API at `submit_url`, counting into `metrics`.
    pub fn new(submit_url: &Url, metrics: Metrics) -> Self {
        metrics.api_misconfigured(None);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(None),
                recovered: Notify::new(),
                failing: AtomicBool::new(false),
                next_probe: Mutex::new(None),
                metrics,
                url: shown_url(submit_url),
            }),
        }
    }

    /// The API answered `status`, which only a misconfiguration explains. Logged when the fault
    /// begins or its reason changes, not at every probe.
    pub fn misconfigured(&self, fault: ApiFault, status: u16) {
        let inner = &self.inner;
        inner.metrics.api_misconfigured_response(fault);
        let mut state = inner.state.lock().expect("api health lock poisoned");
        let changed = state.is_none_or(|m| m.fault != fault);
        let since = state.map_or_else(Instant::now, |m| m.since);
        *state = Some(Misconfiguration {
            fault,
            status,
            since,
        });
        drop(state);
        if changed {
            inner.metrics.api_misconfigured(Some(fault));
            tracing::error!(
                message = "The NHS API answers as if the connector were misconfigured; \
                           submissions pause (nothing is dead-lettered or committed) and are \
                           retried until it answers normally.",
                status,
                reason = fault.as_str(),
                url = %inner.url,
                check = hint(fault),
            );
        }
    }

    /// The API answered as itself (accepted, or refused for the content): a fault, if any,
    /// ends, and paused submissions are woken.
    pub fn answered_normally(&self) {
        let inner = &self.inner;
        let ended = inner.state.lock().expect("api health lock poisoned").take();
        if let Some(ended) = ended {
            inner.metrics.api_misconfigured(None);
            tracing::info!(
                message = "The NHS API answers normally again; submissions resume.",
                reason = ended.fault.as_str(),
                paused_s = ended.since.elapsed().as_secs(),
                url = %inner.url,
            );
            inner.recovered.notify_waiters();
        }
        if inner.failing.swap(false, Ordering::AcqRel) {
            *inner.next_probe.lock().expect("api health lock poisoned") = None;
            tracing::info!(
                message = "The NHS API answers again; submissions waiting to retry resume.",
                url = %inner.url,
            );
            inner.recovered.notify_waiters();
        }
    }

    /// The API failed transiently (5xx, 408, a timeout, no connection): submissions waiting to
    /// retry are woken by the next normal answer, and one a [`PROBE_INTERVAL`] probes meanwhile.
    pub fn failed(&self) {
        if !self.inner.failing.swap(true, Ordering::AcqRel) {
            *self
                .inner
                .next_probe
                .lock()
                .expect("api health lock poisoned") = Some(Instant::now() + PROBE_INTERVAL);
        }
    }

    /// Whether the API has failed transiently since its last normal answer.
    pub fn is_failing(&self) -> bool {
        self.inner.failing.load(Ordering::Acquire)
    }

    /// A retry's wait: `wait`, cut short when the API answers normally again (to any
    /// submission), or, while it fails, when this submission is picked as the probe (at most one
    /// a [`PROBE_INTERVAL`] in the process).
    pub async fn wait_to_retry(&self, wait: Duration) -> Resumed {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.inner.recovered.notified();
            tokio::pin!(notified);
            // Registered before reading the probe slot, so a recovery in between is not missed.
            notified.as_mut().enable();
            let probe = if self.is_failing() {
                *self
                    .inner
                    .next_probe
                    .lock()
                    .expect("api health lock poisoned")
            } else {
                None
            };
            let until = probe.map_or(deadline, |p| p.min(deadline));
            tokio::select! {
                _ = &mut notified => return Resumed::Recovered,
                _ = tokio::time::sleep_until(until) => {
                    if probe.is_some_and(|p| p < deadline) && self.claim_probe(probe) {
                        return Resumed::Probe;
                    }
                    if Instant::now() >= deadline {
                        return Resumed::Waited;
                    }
                }
            }
        }
    }

    /// Takes the probe slot `at` if no other submission has: the next one is a
    /// [`PROBE_INTERVAL`] later.
    fn claim_probe(&self, at: Option<Instant>) -> bool {
        let mut next = self
            .inner
            .next_probe
            .lock()
            .expect("api health lock poisoned");
        if *next != at || !self.is_failing() {
            return false;
        }
        *next = Some(Instant::now() + PROBE_INTERVAL);
        true
    }

    /// The current fault, if any.
    pub fn current(&self) -> Option<Misconfiguration> {
        *self.inner.state.lock().expect("api health lock poisoned")
    }

    /// Whether the API looks misconfigured.
    pub fn is_misconfigured(&self) -> bool {
        self.current().is_some()
    }

    /// The submission URL as logs show it.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Returns once the API is not (or no longer) misconfigured.
    pub async fn recovered(&self) {
        loop {
            let notified = self.inner.recovered.notified();
            tokio::pin!(notified);
            // Registered before the check, so an `answered_normally` in between is not missed.
            notified.as_mut().enable();
            if !self.is_misconfigured() {
                return;
            }
            notified.await;
        }
    }

    /// Returns the fault once the API has looked misconfigured for longer than `limit` without
    /// a normal answer in between; never returns while it answers normally.
    pub async fn misconfigured_longer_than(&self, limit: Duration) -> Misconfiguration {
        loop {
            match self.current() {
                Some(m) if m.since.elapsed() > limit => return m,
                Some(m) => {
                    let left = limit.saturating_sub(m.since.elapsed());
                    tokio::time::sleep(left.min(Duration::from_secs(1)) + Duration::from_millis(1))
                        .await;
                }
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> (ApiHealth, Metrics) {
        let metrics = Metrics::new();
        let url = Url::parse("https://user:pw@api.example/ads/$process-message?k=v#f").unwrap();
        (ApiHealth::new(&url, metrics.clone()), metrics)
    }

    #[test]
    fn the_url_shown_has_no_user_info_query_or_fragment() {
        let (api, _) = health();
        assert_eq!(api.url(), "https://api.example/ads/$process-message");
    }

    #[tokio::test]
    async fn a_fault_sets_its_reason_to_1_until_a_normal_answer_clears_it() {
        let (api, metrics) = health();
        assert!(!api.is_misconfigured());
        api.misconfigured(ApiFault::NotFound, 404);
        api.misconfigured(ApiFault::NotFound, 404);
        let m = api.current().unwrap();
        assert_eq!((m.fault, m.status), (ApiFault::NotFound, 404));
        let text = metrics.encode();
        assert!(text.contains("ads_connector_api_misconfigured{reason=\"not_found\"} 1"));
        assert!(text.contains("ads_connector_api_misconfigured{reason=\"redirect\"} 0"));
        assert!(text
            .contains("ads_connector_api_misconfigured_responses_total{reason=\"not_found\"} 2"));
        api.misconfigured(ApiFault::Redirect, 301);
        assert_eq!(api.current().unwrap().since, m.since, "the pause goes on");
        api.answered_normally();
        assert!(!api.is_misconfigured());
        assert!(metrics
            .encode()
            .contains("ads_connector_api_misconfigured{reason=\"redirect\"} 0"));
    }

    #[tokio::test]
    async fn waiters_wake_when_the_api_answers_normally() {
        let (api, _) = health();
        api.recovered().await;
        api.misconfigured(ApiFault::MethodNotAllowed, 405);
        let waiting = {
            let api = api.clone();
            tokio::spawn(async move { api.recovered().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        api.answered_normally();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    /// Spawns `n` submissions waiting `wait` to retry; their results as they come.
    fn waiting(
        api: &ApiHealth,
        n: usize,
        wait: Duration,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Resumed> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..n {
            let (api, tx) = (api.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(api.wait_to_retry(wait).await);
            });
        }
        rx
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_normal_answer_after_failures_wakes_every_submission_waiting_to_retry() {
        let (api, _) = health();
        api.failed();
        let mut woken = waiting(&api, 50, Duration::from_secs(60));
        settle().await;
        assert!(woken.is_empty(), "nobody wakes before the API answers");
        let started = Instant::now();
        api.answered_normally();
        for _ in 0..50 {
            assert_eq!(woken.recv().await, Some(Resumed::Recovered));
        }
        assert!(started.elapsed() < PROBE_INTERVAL, "woken, not timed out");
        assert!(!api.is_failing());
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_api_fails_one_waiting_submission_probes_per_interval() {
        let (api, _) = health();
        api.failed();
        let mut woken = waiting(&api, 20, Duration::from_secs(60));
        settle().await;
        for round in 1..=3 {
            tokio::time::advance(PROBE_INTERVAL).await;
            settle().await;
            assert_eq!(woken.recv().await, Some(Resumed::Probe), "round {round}");
            assert!(woken.is_empty(), "only one probe in round {round}");
        }
        // Another failure does not move the schedule; the API coming back wakes the rest.
        api.failed();
        api.answered_normally();
        for _ in 0..17 {
            assert_eq!(woken.recv().await, Some(Resumed::Recovered));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_failures_a_retry_waits_its_whole_backoff() {
        let (api, _) = health();
        let mut woken = waiting(&api, 3, Duration::from_secs(10));
        // Normal answers of other submissions do not cut a wait short unless the API had failed.
        api.answered_normally();
        tokio::time::advance(Duration::from_secs(9)).await;
        settle().await;
        assert!(woken.is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..3 {
            assert_eq!(woken.recv().await, Some(Resumed::Waited));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_exit_deadline_counts_from_the_start_of_the_fault() {
        let (api, _) = health();
        let limit = Duration::from_secs(30);
        api.misconfigured(ApiFault::NotFound, 404);
        tokio::time::advance(Duration::from_secs(20)).await;
        api.misconfigured(ApiFault::NotFound, 404);
        let started = Instant::now();
        let m = api.misconfigured_longer_than(limit).await;
        assert_eq!(m.fault, ApiFault::NotFound);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(10) && waited < Duration::from_secs(12));
    }
}
