//! Submitter: POSTs each submission to `$process-message` and classifies the answer.
//!
//! Input: [`Batch`]es in order. Output: an [`AckWork`] to the acker for every accepted
//! submission (2xx with `{"message": id}` or `{"id": id}`), or one [`DeadLetter`] per source
//! record for a permanently refused one (other 4xx, or the retry budget spent). As many
//! submissions are in flight as using the quota at the API's latency needs
//! ([`RateLimiter::in_flight_limit`]: quota × latency with a margin, never more than
//! `max_in_flight`); every request waits for the shared [`RateLimiter`], which stays the ceiling
//! (more in flight never means more requests than the quota), and carries the shared token.
//! Ordering: batches are dispatched in arrival (so per-partition) order, and a per-call fence
//! holds back a batch while any call in it has an older snapshot in flight or retrying, so a
//! newer snapshot never reaches the API before an older one. Each call's snapshots take turns in
//! arrival order; a held batch waits in its own task (keeping its place in flight), and the
//! batches behind it that share no call go past it: with dozens in flight at a high latency, one
//! update held for a second would otherwise idle the whole quota for that second (82.6 % of the
//! quota at 1 s, measured, instead of 99 %). Retry classification is data
//! ([`classify`]): 429, 408 and 5xx except 501, timeouts and connection errors retry with capped
//! exponential backoff ([`Backoff`]) and equal jitter ([`equal_jitter`]); a 429's `Retry-After` pauses the whole limiter
//! (`Retry-After` is delta-seconds or an HTTP-date, capped at `nhs_api.request.max_retry_after_s`,
//! the limiter's `max_retry_after`); 401/403
//! hand the token back and retry with a new one; other statuses dead-letter with the response
//! body. While the API is down, batches wait here, the channels fill and consumption pauses:
//! nothing is dropped unless `max_retry_duration_s` says so. Recovery is fast whatever the
//! backoff had grown to: a transient failure marks the API failing ([`ApiHealth::failed`]), one
//! waiting submission a couple of seconds probes it, and the first normal answer wakes every
//! submission waiting to retry and restarts its backoff ([`ApiHealth::wait_to_retry`]); they go
//! out through the limiter, at the quota's pace. A submission waiting for a token retries when the
//! token provider next allows a request, not after its own backoff, and a 401/403 of the API (the
//! platform answers again) ends the token provider's failure backoff ([`TokenProvider::reject`]).
//!
//! Memory: at most [`unfinished_limit`] submissions are unfinished in this stage (in flight,
//! held at the fence, or answered and waiting for the acker); past that it takes no batch, so
//! an acker that cannot write stops consumption instead of piling submissions up here.
//!
//! Configuration faults stop the line, not the data. An answer only a wrong URL, path or
//! credential explains (404, 405, any 3xx: redirects are never followed, see [`http_client`]; a
//! 2xx without the API's id; a 401/403 again after a fresh token, or at all without
//! authentication) marks the API misconfigured ([`ApiHealth`]): the submission is sent again
//! with backoff, never dead-lettered, and its wait spends no retry budget; `/readyz` turns 503
//! and `ads_connector_api_misconfigured` says why. A normal answer ends the pause and wakes every
//! paused submission. The only fatal failure: with `nhs_api.misconfigured_exit_after_s`, a pause
//! longer than that ends the stage with [`SubmitterError::Misconfigured`] (the process exits
//! non-zero, committing nothing past the paused records).
//!
//! Layout: `submitter/classify.rs` holds the classification table ([`classify`]); this file the
//! dispatch, the attempts loop and the per-call fence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::acker::{Accepted, AckWork};
use crate::auth::{AuthError, TokenProvider};
use crate::batcher::{Batch, RequestBody};
use crate::cad::Text;
use crate::config::{ApiConfig, SubmissionMode};
use crate::dead_letter::{DeadLetter, ErrorStage};
use crate::health::{self, ApiHealth, Resumed};
use crate::metrics::{
    ApiFault, DeadLetterKind, Metrics, RequestOutcome, RetryReason, StatusLabel, SubmitRejection,
    Task,
};
use crate::rate_limit::{parse_retry_after, RateLimiter};
use crate::telemetry;

mod classify;

pub use classify::{classify, Action, Attempt};

/// How a whole submission ended.
pub enum Submitted {
    /// Accepted by the API.
    Accepted(Accepted),
    /// Refused for good; `kind` and `message` go into the dead letters.
    Rejected {
        /// Why.
        kind: SubmitRejection,
        /// Reason.
        message: String,
    },
}

/// Where the submitter sends its results.
pub struct SubmitterOutput {
    /// Accepted submissions, to the acker.
    pub acks: mpsc::Sender<AckWork>,
    /// Records of refused submissions, to the dead-letter stage.
    pub dead_letters: mpsc::Sender<DeadLetter>,
}

/// The submitter's failures: a bug, or a misconfiguration outlasting
/// `nhs_api.misconfigured_exit_after_s` (other answers of the API are retried or dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum SubmitterError {
    /// A submission task panicked (a bug). The message is the panic's, which never carries
    /// patient data: submissions hold only serialized bytes and ids.
    #[error("a submission task panicked: {0}")]
    Panic(String),
    /// The API has looked misconfigured for longer than `nhs_api.misconfigured_exit_after_s`.
    #[error(
        "the NHS API at {url} has answered {status} ({reason}) for {seconds} s, longer than \
         nhs_api.misconfigured_exit_after_s; stopping without committing past the waiting \
         records: {hint}"
    )]
    Misconfigured {
        /// The submission URL, without user info or query.
        url: String,
        /// The last status.
        status: u16,
        /// The reason's label value.
        reason: &'static str,
        /// How long the pause had lasted.
        seconds: u64,
        /// What to check.
        hint: &'static str,
    },
}

/// The HTTP client of the submitter and the token provider: `timeout` per request, and
/// redirects never followed. A 3xx is a misconfiguration: following it would turn the POST into
/// a GET or carry the token to another host.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Ends a batch's turn at the fence for its keys when dropped.
struct FenceGuard {
    fence: Arc<CallFence>,
    keys: Vec<Text>,
}

impl Drop for FenceGuard {
    fn drop(&mut self) {
        self.fence.leave(&self.keys);
    }
}

/// An accepted submission as the acker needs it: each call's Bundle bytes and its records'
/// values and headers are released (the acker writes keys, positions and trace context only),
/// so the acks waiting to be written hold kilobytes, not the submissions' bodies.
fn without_bodies(mut batch: Batch) -> Batch {
    for call in &mut batch.calls {
        call.bytes = Bytes::new();
        for envelope in std::iter::once(&mut call.submitted).chain(&mut call.superseded) {
            envelope.payload = None;
            envelope.headers = Vec::new();
        }
    }
    batch
}

/// Hands a finished submission on: its acks, or a dead letter per record.
async fn deliver(
    batch: Batch,
    outcome: Submitted,
    span: tracing::Span,
    acks: &mpsc::Sender<AckWork>,
    dead: &mpsc::Sender<DeadLetter>,
) {
    match outcome {
        Submitted::Accepted(accepted) => {
            let _ = acks
                .send(AckWork {
                    batch: without_bodies(batch),
                    accepted,
                    span,
                })
                .await;
        }
        Submitted::Rejected { kind, message } => {
            for call in batch.calls {
                let envelopes = std::iter::once(call.submitted).chain(call.superseded);
                for envelope in envelopes {
                    let letter = DeadLetter {
                        envelope,
                        stage: ErrorStage::Submit,
                        kind: DeadLetterKind::Submit(kind),
                        message: message.clone(),
                        problems: None,
                        process: Some(span.clone()),
                    };
                    let _ = dead.send(letter).await;
                }
            }
        }
    }
}

/// The NHS API client; see the module header.
pub struct Submitter {
    /// HTTP client (built once, with the request timeout).
    pub client: reqwest::Client,
    /// Request limits and the submission URL.
    pub config: ApiConfig,
    /// One call per POST or a batch Bundle.
    pub mode: SubmissionMode,
    /// The shared token.
    pub tokens: Arc<TokenProvider>,
    /// The shared limiter.
    pub limiter: Arc<RateLimiter>,
    /// Metrics.
    pub metrics: Metrics,
    /// The consumer group the `process` spans name.
    pub group: telemetry::ConsumerGroup,
    /// Whether the API looks misconfigured, shared with `/readyz`.
    pub api: ApiHealth,
}

impl Submitter {
    /// Runs until the batcher closes its output and every request in flight has finished.
    /// Each submission runs in a `process` span naming [`Self::group`]; that span goes along with
    /// its acks or dead letters. A submission task that panics (a bug) fails the stage with
    /// [`SubmitterError::Panic`]: the pipeline stops loudly instead of waiting for ever. With
    /// `nhs_api.misconfigured_exit_after_s`, a longer misconfiguration ends it with
    /// [`SubmitterError::Misconfigured`]; the submissions in flight are dropped undelivered.
    pub async fn run(
        self,
        input: mpsc::Receiver<Batch>,
        output: SubmitterOutput,
    ) -> Result<(), SubmitterError> {
        let api = self.api.clone();
        let Some(limit) = self.config.misconfigured_exit_after else {
            return self.dispatch(input, output).await;
        };
        tokio::select! {
            result = self.dispatch(input, output) => result,
            m = api.misconfigured_longer_than(limit) => Err(SubmitterError::Misconfigured {
                url: api.url().to_string(),
                status: m.status,
                reason: m.fault.as_str(),
                seconds: m.since.elapsed().as_secs(),
                hint: health::hint(m.fault),
            }),
        }
    }

    async fn dispatch(
        self,
        mut input: mpsc::Receiver<Batch>,
        output: SubmitterOutput,
    ) -> Result<(), SubmitterError> {
        let this = Arc::new(self);
        let in_flight = Arc::new(InFlight::default());
        let fence = Arc::new(CallFence::default());
        let mut tasks = JoinSet::new();
        loop {
            // Submissions answered but not yet taken by the acker stay in their tasks: bounded,
            // so an acker that cannot write (Kafka not acknowledging) stops this stage taking
            // batches instead of holding every later one here.
            while tasks.len() >= unfinished_limit(this.config.max_in_flight) {
                if let Some(joined) = tasks.join_next().await {
                    this.check(joined)?;
                }
            }
            let Some(batch) = input.recv().await else {
                break;
            };
            let keys: Vec<Text> = batch.calls.iter().map(|c| c.call_key.clone()).collect();
            // Takes the batch's turn for each of its calls now, in arrival order; it waits for
            // the turn in its own task, so later batches of other calls are not held behind it.
            let turn = fence.reserve(&keys);
            let permit = in_flight
                .enter(|| this.limiter.in_flight_limit(this.config.max_in_flight))
                .await;
            let (this2, acks, dead) = (
                this.clone(),
                output.acks.clone(),
                output.dead_letters.clone(),
            );
            // Leaves the fence however the task ends, a panic included, so dispatch goes on
            // and the panic is reported below instead of stalling every later snapshot.
            let guard = FenceGuard {
                fence: fence.clone(),
                keys,
            };
            let span = batch.process_span(&this.group);
            let fence = fence.clone();
            tasks.spawn(async move {
                fence.wait_turn(&turn).await;
                let outcome = this2.submit(&batch).instrument(span.clone()).await;
                drop(guard);
                drop(permit);
                deliver(batch, outcome, span, &acks, &dead).await;
            });
            while let Some(joined) = tasks.try_join_next() {
                this.check(joined)?;
            }
        }
        while let Some(joined) = tasks.join_next().await {
            this.check(joined)?;
        }
        Ok(())
    }

    fn check(&self, joined: Result<(), tokio::task::JoinError>) -> Result<(), SubmitterError> {
        match joined {
            Err(error) if error.is_panic() => {
                self.metrics.task_panicked(Task::Submission);
                Err(SubmitterError::Panic(telemetry::panic_message(
                    error.into_panic(),
                )))
            }
            _ => Ok(()),
        }
    }

    /// Sends one submission until it is accepted, refused, or out of retry budget.
    pub async fn submit(&self, batch: &Batch) -> Submitted {
        let body = batch.body(self.mode);
        let traceparent = batch_traceparent(batch);
        // The retry budget counts from the last answer that was not a misconfiguration: a pause
        // spends none of it, so no record is dead-lettered for a fault of the configuration.
        let mut started = Instant::now();
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        let mut attempts = 0u32;
        // Consecutive 401/403 answers: the first hands the token back and retries at once; one
        // more, with the fresh token, is a misconfiguration (so is any without authentication).
        let mut refused = 0u32;
        loop {
            attempts += 1;
            let (reason, after) = match self.tokens.bearer().await {
                Err(error) => {
                    tracing::warn!(message = "No access token; the submission waits.", %error);
                    // Held back: try again when the provider may request one if that comes
                    // before this submission's own backoff, which may have grown long meanwhile.
                    let after = match &error {
                        AuthError::HeldBack { wait, .. } => {
                            Some((*wait).min(jitter(backoff.current())))
                        }
                        _ => None,
                    };
                    (RetryReason::Token, after)
                }
                Ok(token) => {
                    self.limiter.acquire().await;
                    let sent = Instant::now();
                    self.metrics.in_flight(1);
                    let post = telemetry::http_span(&self.config.submit_url, attempts);
                    let request_traceparent =
                        telemetry::traceparent(&post).unwrap_or_else(|| traceparent.clone());
                    let attempt = self
                        .send(&body, token.as_deref(), &request_traceparent)
                        .instrument(post.clone())
                        .await;
                    self.metrics.in_flight(-1);
                    let took = sent.elapsed();
                    let (label, code) = match &attempt {
                        Attempt::Response { status, .. } => {
                            (StatusLabel::from_status(*status), *status)
                        }
                        Attempt::Timeout => (StatusLabel::Timeout, 0),
                        Attempt::Transport => (StatusLabel::TransportError, 0),
                    };
                    let mut action = classify(&attempt);
                    if action == Action::RefreshToken {
                        refused += 1;
                        if token.is_none() || refused > 1 {
                            action = Action::Misconfigured(ApiFault::Unauthorized);
                        }
                    } else {
                        refused = 0;
                    }
                    let outcome = match &action {
                        Action::Accept(_) => RequestOutcome::Success,
                        Action::Reject { .. } => RequestOutcome::Rejected,
                        Action::Retry { .. } | Action::RefreshToken | Action::Misconfigured(_) => {
                            RequestOutcome::Retryable
                        }
                    };
                    self.metrics.request_completed(label, outcome, took);
                    let success = outcome == RequestOutcome::Success;
                    telemetry::http_finished(&post, code, label.as_str(), success);
                    if matches!(action, Action::Accept(_) | Action::Reject { .. }) {
                        // The API's own answer: its time sizes the requests in flight.
                        self.limiter.observe_latency(took);
                    }
                    match action {
                        Action::Accept(api_id) => {
                            self.api.answered_normally();
                            tracing::info!(message = "Submission accepted.", batch_id = %batch.id, calls = batch.calls.len(), attempts);
                            return Submitted::Accepted(Accepted {
                                api_id: Some(api_id),
                                http_status: code,
                                attempts,
                                submitted_at: chrono::Utc::now(),
                                latency: took,
                            });
                        }
                        Action::Reject { kind, message } => {
                            self.api.answered_normally();
                            tracing::warn!(message = "Submission refused.", batch_id = %batch.id, status = code, kind = kind.as_str());
                            return Submitted::Rejected { kind, message };
                        }
                        Action::RefreshToken => {
                            if let Some(token) = &token {
                                self.tokens.reject(token).await;
                            }
                            // The first refusal retries at once with a new token.
                            (RetryReason::Unauthorized, Some(Duration::ZERO))
                        }
                        Action::Misconfigured(fault) => {
                            self.api.misconfigured(fault, code);
                            if fault == ApiFault::Unauthorized {
                                // The next probe carries a fresh token, so new credentials
                                // (a rotated key file) end the pause without a restart.
                                if let Some(token) = &token {
                                    self.tokens.reject(token).await;
                                }
                            }
                            let wait = jitter(backoff.current());
                            tracing::debug!(message = "Submission paused: the API looks misconfigured.", batch_id = %batch.id, status = code, reason = fault.as_str(), attempts, wait_ms = wait.as_millis() as u64);
                            // Another submission's normal answer ends the wait at once.
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = self.api.recovered() => {}
                            }
                            backoff.grow();
                            started = Instant::now();
                            continue;
                        }
                        Action::Retry { reason, after } => {
                            if reason != RetryReason::Status429 {
                                // 429 is the quota speaking (the limiter pauses); the rest is an
                                // outage that a normal answer ends.
                                self.api.failed();
                            }
                            (reason, after)
                        }
                    }
                }
            };
            self.metrics.request_retried(reason);
            if reason == RetryReason::Status429 {
                self.limiter.pause_for(after.unwrap_or(backoff.current()));
            }
            let wait = after.unwrap_or_else(|| jitter(backoff.current()));
            // While the API looks misconfigured (a token held back after refused ones, say), the
            // wait is the configuration's fault: it spends no budget either.
            if self.api.is_misconfigured() {
                started = Instant::now();
            }
            if let Some(budget) = self.config.max_retry_duration {
                if started.elapsed() + wait > budget {
                    return Submitted::Rejected {
                        kind: SubmitRejection::RetriesExhausted,
                        message: format!(
                            "gave up after {attempts} attempts over {} s (last: {})",
                            started.elapsed().as_secs(),
                            reason.as_str()
                        ),
                    };
                }
            }
            tracing::warn!(message = "Submission will be retried.", batch_id = %batch.id, reason = reason.as_str(), attempts, wait_ms = wait.as_millis() as u64);
            match self.api.wait_to_retry(wait).await {
                // The API is back: a later failure backs off from the start again.
                Resumed::Recovered => {
                    backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
                }
                Resumed::Waited | Resumed::Probe => backoff.grow(),
            }
        }
    }

    async fn send(&self, body: &RequestBody, token: Option<&str>, traceparent: &str) -> Attempt {
        let url: Url = self.config.submit_url.clone();
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/fhir+json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header("traceparent", traceparent)
            .body(body.to_reqwest());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Timeout,
            Err(_) => return Attempt::Transport,
        };
        let status = response.status().as_u16();
        // Seconds or an HTTP-date; capped here, so no wait below is longer than the setting.
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                parse_retry_after(&text, SystemTime::now())
                    .inspect_err(
                        |e| tracing::warn!(message = "Retry-After ignored.", status, error = %e),
                    )
                    .ok()
            })
            .map(|wait| wait.min(self.limiter.max_retry_after()));
        match response.bytes().await {
            Ok(body) => Attempt::Response {
                status,
                retry_after,
                body,
            },
            Err(e) if e.is_timeout() => Attempt::Timeout,
            Err(_) => Attempt::Transport,
        }
    }
}

/// The submission tasks the stage keeps unfinished at most: `max_in_flight` sending or held at
/// the fence, and as many again answered and waiting for the acker to take them. A stalled acker
/// (Kafka not acknowledging) then holds a bounded number of submissions here, and the channels
/// behind fill and pause consumption, as a stalled API does.
pub fn unfinished_limit(max_in_flight: usize) -> usize {
    2 * max_in_flight.max(1)
}

/// Submissions in flight, under a limit that moves with the API's latency.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    left: Notify,
}

/// A slower API raises the limit without a submission leaving (the latency is observed before
/// the submission ends, so this is a backstop): the limit is read again this often.
const IN_FLIGHT_RECHECK: Duration = Duration::from_millis(100);

impl InFlight {
    /// Waits until fewer than `limit()` submissions are in flight, then counts one more until
    /// the guard is dropped.
    async fn enter(self: &Arc<Self>, limit: impl Fn() -> usize) -> InFlightGuard {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            // Registered before the check, so a submission leaving in between is not missed.
            left.as_mut().enable();
            {
                let mut count = self.count.lock().expect("in-flight lock poisoned");
                if *count < limit() {
                    *count += 1;
                    return InFlightGuard(self.clone());
                }
            }
            let _ = tokio::time::timeout(IN_FLIGHT_RECHECK, left).await;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        *self.count.lock().expect("in-flight lock poisoned")
    }
}

/// One submission in flight; leaves when dropped.
struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        *self.0.count.lock().expect("in-flight lock poisoned") -= 1;
        self.0.left.notify_waiters();
    }
}

/// Per-call turns: the snapshots of one call go to the API one at a time, in arrival order.
#[derive(Default)]
pub struct CallFence {
    /// Per call with a snapshot in flight or waiting: (turns handed out, turns finished).
    turns: Mutex<HashMap<Text, (u64, u64)>>,
    left: Notify,
}

/// A batch's place in the queue of each of its calls ([`CallFence::reserve`]).
#[derive(Debug)]
pub struct FenceTurn(Vec<(Text, u64)>);

impl CallFence {
    /// Waits until none of `keys` is in flight, then marks them all in flight.
    pub async fn enter(&self, keys: &[Text]) {
        let turn = self.reserve(keys);
        self.wait_turn(&turn).await;
    }

    /// Queues a batch of `keys` behind every earlier batch sharing a call with it; does not
    /// wait. Every reserved turn must end with [`Self::leave`] (the dispatch's guard does it
    /// however the task ends), or the call's later snapshots wait for ever.
    pub fn reserve(&self, keys: &[Text]) -> FenceTurn {
        let mut turns = self.turns.lock().expect("fence lock poisoned");
        FenceTurn(
            keys.iter()
                .map(|k| {
                    let (issued, _) = turns.entry(k.clone()).or_insert((0, 0));
                    *issued += 1;
                    (k.clone(), *issued - 1)
                })
                .collect(),
        )
    }

    /// Waits until every earlier batch sharing a call with `turn` has left.
    pub async fn wait_turn(&self, turn: &FenceTurn) {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            // Register for the wake-up before checking, so a `leave` in between is not missed.
            left.as_mut().enable();
            {
                let turns = self.turns.lock().expect("fence lock poisoned");
                let due = |(k, t): &(Text, u64)| turns.get(k).is_some_and(|(_, f)| f == t);
                if turn.0.iter().all(due) {
                    return;
                }
            }
            left.await;
        }
    }

    /// Ends the current turn of each of `keys` (the batch in flight for them is done).
    pub fn leave(&self, keys: &[Text]) {
        let mut turns = self.turns.lock().expect("fence lock poisoned");
        for k in keys {
            if let Some((issued, finished)) = turns.get_mut(k) {
                *finished += 1;
                if finished == issued {
                    turns.remove(k);
                }
            }
        }
        drop(turns);
        self.left.notify_waiters();
    }

    /// Calls with a snapshot in flight or waiting for its turn.
    pub fn len(&self) -> usize {
        self.turns.lock().expect("fence lock poisoned").len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Capped exponential backoff: `initial`, then doubled after each wait, never above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    current: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            current: initial.min(max),
            max,
        }
    }

    /// The backoff of the next wait (before jitter).
    pub fn current(&self) -> Duration {
        self.current
    }

    /// Doubles the backoff, capped at the maximum.
    pub fn grow(&mut self) {
        self.current = (self.current * 2).min(self.max);
    }
}

/// Equal jitter (half the backoff, plus a uniform share of the other half): a wait in
/// `[backoff/2, backoff]`, so retries of many pods spread out but never come sooner than half
/// the backoff. `unit` is uniform in `[0, 1]`.
pub fn equal_jitter(backoff: Duration, unit: f64) -> Duration {
    let half = backoff / 2;
    half + (backoff - half).mul_f64(unit.clamp(0.0, 1.0))
}

fn jitter(backoff: Duration) -> Duration {
    equal_jitter(backoff, rand::thread_rng().gen_range(0.0..=1.0))
}

/// The request's `traceparent`: the first record's trace, with a new span id for this request.
fn batch_traceparent(batch: &Batch) -> String {
    let mut rng = rand::thread_rng();
    let trace_id = batch
        .calls
        .iter()
        .flat_map(|c| c.envelopes())
        .find_map(|e| e.traceparent.as_deref())
        .and_then(|t| t.split('-').nth(1))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rng.gen::<u128>()));
    format!("00-{trace_id}-{:016x}-01", rng.gen::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fence_holds_a_newer_snapshot_until_the_older_one_left() {
        let fence = Arc::new(CallFence::default());
        fence.enter(&["RX6/1".into(), "RX6/2".into()]).await;
        let waiting = {
            let fence = fence.clone();
            tokio::spawn(async move { fence.enter(&["RX6/2".into()]).await })
        };
        // Other calls pass while RX6/2 is held.
        fence.enter(&["RX6/3".into()]).await;
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        fence.leave(&["RX6/1".into(), "RX6/2".into()]);
        waiting.await.unwrap();
        assert_eq!(fence.len(), 2);
    }

    #[tokio::test]
    async fn a_held_batch_waits_alone_and_each_call_keeps_its_snapshots_in_order() {
        let fence = Arc::new(CallFence::default());
        let keys = |ks: &[&str]| ks.iter().map(|k| Text::from(*k)).collect::<Vec<_>>();
        // Arrival order: A1 (call A), A2 (call A again), B1 (call B), A3 with B2 (both again).
        let a1 = fence.reserve(&keys(&["A"]));
        let a2 = fence.reserve(&keys(&["A"]));
        let b1 = fence.reserve(&keys(&["B"]));
        let a3b2 = fence.reserve(&keys(&["A", "B"]));
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        for (name, turn) in [("A2", a2), ("A3B2", a3b2)] {
            let (fence, tx) = (fence.clone(), tx.clone());
            tokio::spawn(async move {
                fence.wait_turn(&turn).await;
                tx.send(name).unwrap();
            });
        }
        fence.wait_turn(&a1).await;
        // B1 goes while A2 waits behind A1: the held batch does not hold the others.
        fence.wait_turn(&b1).await;
        tokio::task::yield_now().await;
        assert!(order.try_recv().is_err(), "A2 and A3B2 wait");
        fence.leave(&keys(&["A"]));
        assert_eq!(order.recv().await, Some("A2"));
        fence.leave(&keys(&["B"]));
        tokio::task::yield_now().await;
        assert!(order.try_recv().is_err(), "A3B2 waits for A2 too");
        fence.leave(&keys(&["A"]));
        assert_eq!(order.recv().await, Some("A3B2"));
        fence.leave(&keys(&["A", "B"]));
        assert!(fence.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn submissions_in_flight_never_exceed_the_limit_and_more_go_once_it_rises() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gate = Arc::new(InFlight::default());
        let limit = Arc::new(AtomicUsize::new(2));
        let mut held = Vec::new();
        for _ in 0..2 {
            let l = limit.clone();
            held.push(gate.enter(move || l.load(Ordering::Relaxed)).await);
        }
        let third = {
            let (gate, l) = (gate.clone(), limit.clone());
            tokio::spawn(async move { gate.enter(move || l.load(Ordering::Relaxed)).await })
        };
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!third.is_finished(), "two in flight is the limit");
        assert_eq!(gate.len(), 2);
        // The API got slower: the limit rises and the waiting submission goes without any
        // other leaving.
        limit.store(3, Ordering::Relaxed);
        tokio::time::advance(IN_FLIGHT_RECHECK).await;
        held.push(third.await.unwrap());
        assert_eq!(gate.len(), 3);
        // Faster again: nobody is cut off, but no new one goes until the count is under it.
        limit.store(1, Ordering::Relaxed);
        let fourth = {
            let (gate, l) = (gate.clone(), limit.clone());
            tokio::spawn(async move { gate.enter(move || l.load(Ordering::Relaxed)).await })
        };
        held.pop();
        held.pop();
        tokio::time::advance(IN_FLIGHT_RECHECK).await;
        assert!(!fourth.is_finished(), "one in flight is the new limit");
        held.pop();
        let _fourth = fourth.await.unwrap();
        assert_eq!(gate.len(), 1);
    }

    #[test]
    fn backoff_doubles_from_the_initial_value_up_to_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(backoff.current().as_millis());
            backoff.grow();
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn equal_jitter_spans_half_to_the_whole_backoff() {
        let b = Duration::from_millis(1000);
        assert_eq!(equal_jitter(b, 0.0), Duration::from_millis(500));
        assert_eq!(equal_jitter(b, 0.5), Duration::from_millis(750));
        assert_eq!(equal_jitter(b, 1.0), Duration::from_millis(1000));
        assert_eq!(equal_jitter(b, 7.0), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_stays_within_half_to_full_backoff() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }
}
