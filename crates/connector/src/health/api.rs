//! Whether the NHS API looks misconfigured: one [`ApiHealth`], shared by the submitter (which
//! reports every answer) and `/readyz` (which turns 503 while it holds).
//!
//! Input: the submitter's classified answers, [`ApiHealth::misconfigured`] for an answer only a
//! wrong URL, path or credential explains ([`ApiFault`]) and [`ApiHealth::answered_normally`] for
//! an answer of the API's own (accepted, or refused for the content). Output: the state, the
//! metrics `ads_connector_api_misconfigured{reason}` (1 for the current reason) and
//! `ads_connector_api_misconfigured_responses_total{reason}`, one error line when the fault begins
//! or changes (status, reason, what to check, and the submission URL without user info, query or
//! fragment: never a token or key) and one line when it ends. Waiters are woken on recovery
//! ([`ApiHealth::recovered`]), so paused submissions resume at once.

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

struct Inner {
    state: Mutex<Option<Misconfiguration>>,
    recovered: Notify,
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
