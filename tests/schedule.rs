//! NHS England's submission window (`[schedule]` in `window` mode), end to end: a backlog with
//! several snapshots of each call waits outside the window (no POST, no token), and inside it
//! only the newest snapshot of each call is POSTed while every older one is acked `superseded`,
//! naming the record that replaced it. Time is a `ManualClock` the tests move: nothing sleeps
//! until 03:00.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ads_connector::metrics::Metrics;
use ads_connector::schedule::ManualClock;
use chrono::{DateTime, Utc};
use common::*;
use rdkafka::message::OwnedMessage;

/// NHS England's window, in UK time.
const WINDOW: &str =
    "[schedule]\nmode = \"window\"\nwindow = \"03:00-06:00\"\ntimezone = \"Europe/London\"";

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Per call: the offsets of its valid snapshots, and the newest valid one (greatest
/// `snapshot_at`).
fn newest_valid(produced: &[Produced]) -> HashMap<&str, &Produced> {
    let mut newest: HashMap<&str, &Produced> = HashMap::new();
    for r in produced.iter().filter(|r| r.valid) {
        let entry = newest.entry(r.call_id.as_str()).or_insert(r);
        let (a, b) = (utc(&r.snapshot_at), utc(&entry.snapshot_at));
        if (a, r.offset) > (b, entry.offset) {
            *entry = r;
        }
    }
    newest
}

/// The window's promise: every record once; per call exactly one `submitted` ack, for its
/// newest valid snapshot, every other valid snapshot `superseded` by that one with no POST
/// fields, and the API received each call exactly once, its newest snapshot.
fn assert_newest_snapshot_of_each_call_posted_once(
    produced: &[Produced],
    acks: &[OwnedMessage],
    dead: &[OwnedMessage],
    sandbox: &AuthSandbox,
) -> usize {
    assert_every_record_once(produced, acks, dead);
    let newest = newest_valid(produced);
    let by_pos: HashMap<(i32, i64), &Produced> = produced
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let mut superseded = 0;
    for m in acks {
        let (p, o, ack) = ack_source(m);
        let record = by_pos[&(p, o)];
        let winner = newest[record.call_id.as_str()];
        if (winner.partition, winner.offset) == (p, o) {
            assert_eq!(ack["outcome"], "submitted", "{ack}");
        } else {
            superseded += 1;
            assert_eq!(ack["outcome"], "superseded", "{ack}");
            assert_eq!(ack["superseded_by"]["offset"], winner.offset, "{ack}");
            assert_eq!(ack["superseded_by"]["partition"], winner.partition, "{ack}");
            assert!(
                ack["batch_id"].is_null() && ack["http_status"].is_null(),
                "{ack}"
            );
            assert_eq!(ack["attempts"], 0, "{ack}");
        }
    }
    let mut received: HashMap<String, Vec<String>> = HashMap::new();
    for call in sandbox.handle.received_calls() {
        received
            .entry(call.call_id)
            .or_default()
            .push(call.timestamp.unwrap_or_default());
    }
    assert_eq!(received.len(), newest.len(), "calls received");
    for (call_id, winner) in &newest {
        let got = &received[*call_id];
        assert_eq!(got.len(), 1, "call {call_id} was POSTed {}×", got.len());
        assert_eq!(
            utc(&got[0]),
            utc(&winner.snapshot_at),
            "call {call_id}: the API did not receive the newest snapshot"
        );
    }
    superseded
}

/// After a restart or a rebalance: every record has an outcome (some twice: work in flight is
/// redelivered), every call reached the API with its newest snapshot last, and only work in
/// flight went twice: at most the submitter's in-flight submissions (`max_in_flight` 4 × 5
/// calls) and a batch in the making, per replica.
fn assert_each_call_reached_the_api_resending_only_work_in_flight(
    produced: &[Produced],
    acks: &[OwnedMessage],
    dead: &[OwnedMessage],
    sandbox: &AuthSandbox,
) {
    let duplicates = assert_every_record_at_least_once(produced, acks, dead);
    let received = sandbox.handle.received_calls();
    let newest = newest_valid(produced);
    let mut posts: HashMap<&str, usize> = HashMap::new();
    for call in &received {
        *posts.entry(call.call_id.as_str()).or_default() += 1;
    }
    assert_eq!(posts.len(), newest.len(), "every call reached the API");
    let resent: usize = posts.values().map(|n| n - 1).sum();
    assert!(
        resent <= 2 * 25,
        "{resent} calls resent, {duplicates} duplicate outcomes"
    );
    assert_out_of_order_only_if_redelivered(&received, acks);
}

/// Waits (at most two minutes) until the group's committed offsets reach the end of what was
/// produced.
async fn until_committed_at_end(bootstrap: &str, names: &Names, produced: &[Produced]) {
    let mut end: HashMap<i32, i64> = HashMap::new();
    for r in produced {
        let e = end.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let reached = until(Duration::from_secs(120), || {
        let committed = committed(bootstrap, &names.group, &names.cad);
        end.iter().all(|(p, e)| committed.get(p) == Some(e))
    })
    .await;
    assert!(reached, "the committed offsets did not reach the end");
}

/// Waits (at most a minute) until the sandbox has received `n` calls.
async fn until_calls_received(sandbox: &AuthSandbox, n: u64) {
    let reached = until(Duration::from_secs(60), || {
        sandbox.handle.stats().calls_received >= n
    })
    .await;
    assert!(reached, "the API did not receive {n} calls");
}

/// Waits until `done` holds (checking every 50 ms), at most `timeout`.
async fn until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Acks on the ack topic now (read from the start).
fn acks_now(bootstrap: &str, names: &Names) -> usize {
    read_topic(
        bootstrap,
        &names.ack,
        usize::MAX,
        Duration::from_millis(1500),
    )
    .len()
}

/// A backlog of `calls` calls of `snapshots` snapshots each (round by round, seeded), waiting
/// on a mock cluster with the sandbox API: the set-up of most tests here.
struct Backlog {
    names: Names,
    /// Kept alive for the test's length.
    _broker: Broker,
    bootstrap: String,
    sandbox: AuthSandbox,
    produced: Vec<Produced>,
}

impl Backlog {
    async fn on_mock(
        name: &str,
        partitions: i32,
        calls: usize,
        snapshots: usize,
        seed: u64,
    ) -> Self {
        let names = Names::new(name);
        let broker = Broker::mock(1, &names.topics(partitions));
        let bootstrap = broker.bootstrap();
        let sandbox = auth_sandbox().await;
        let produced = produce_snapshots(&bootstrap, &names.cad, calls, snapshots, seed, 0).await;
        Self {
            names,
            _broker: broker,
            bootstrap,
            sandbox,
            produced,
        }
    }

    /// The connector's configuration: `batch` for `[batch]`, `WINDOW` and `extra` after it.
    fn config(&self, batch: &str, extra: &str) -> ads_connector::config::Config {
        connector_config(
            &self.bootstrap,
            &self.names,
            &self.sandbox,
            batch,
            &format!("{WINDOW}\n{extra}"),
        )
    }
}

async fn window_pass_over_a_backlog(broker: &Broker, names: &Names, before: &str, opens: &str) {
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    // 80 calls, 4 snapshots each, round by round; every 10th call's newest snapshot invalid.
    let produced = produce_snapshots(&bootstrap, &names.cad, 80, 4, 31, 10).await;
    let config = connector_config(
        &bootstrap,
        names,
        &sandbox,
        "max_calls = 20\nlinger_ms = 100",
        WINDOW,
    );
    let clock = ManualClock::new(utc(before));
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline_at(config, metrics.clone(), clock.clone()).await;

    // Waiting is healthy, and nothing is sent: no POST, no token request, no ack.
    assert!(
        pipeline.ready(Duration::from_secs(30)).await,
        "/readyz while waiting"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    clock.set(utc(opens) - chrono::TimeDelta::seconds(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = sandbox.handle.stats();
    assert_eq!(
        (stats.submissions_accepted, stats.tokens_issued),
        (0, 0),
        "before the window"
    );
    assert_eq!(acks_now(&bootstrap, names), 0, "acks before the window");

    clock.set(utc(opens));
    let (acks, dead) = read_outcomes(&bootstrap, names, &produced, Duration::from_secs(90));
    let superseded =
        assert_newest_snapshot_of_each_call_posted_once(&produced, &acks, &dead, &sandbox);
    // 80 calls × 4 snapshots: 8 newest snapshots invalid (dead letters), 80 POSTed, the rest
    // superseded.
    assert_eq!(dead.len(), 8);
    assert_eq!(superseded, 320 - 80 - 8);
    assert_eq!(metrics.schedule_coalesced_total(), superseded as u64);
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_committed_at_end(&bootstrap, &names.group, &names.cad, &produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_spring_clock_change_the_window_opens_at_three_uk_time_and_posts_only_the_newest_snapshot_of_each_call(
) {
    // 29 March 2026: 03:00 BST is 02:00 UTC.
    let names = Names::new("window-spring");
    let broker = Broker::mock(1, &names.topics(3));
    window_pass_over_a_backlog(
        &broker,
        &names,
        "2026-03-29T00:30:00Z",
        "2026-03-29T02:00:00Z",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_autumn_clock_change_the_window_opens_at_three_uk_time_and_posts_only_the_newest_snapshot_of_each_call(
) {
    // 25 October 2026: 03:00 GMT is 03:00 UTC; at 02:00 UTC (02:00 GMT) it is still closed.
    let names = Names::new("window-autumn");
    let broker = Broker::mock(1, &names.topics(2));
    window_pass_over_a_backlog(
        &broker,
        &names,
        "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_a_window_pass_posts_only_the_newest_snapshot_of_each_call() {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("window-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(3)).await;
    window_pass_over_a_backlog(
        &broker,
        &names,
        "2026-12-02T01:00:00Z",
        "2026-12-02T03:00:00Z",
    )
    .await;
}

/// Slow enough that a window can close in the middle of the backlog: 2 requests a second of 5
/// calls each.
const SLOW: &str = "[rate_limit]\nrequests_per_minute = 120\nburst = 1";
const SLOW_BATCH: &str = "max_calls = 5\nlinger_ms = 50";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_closes_mid_backlog_resumes_at_the_next_opening_with_nothing_lost_or_sent_twice(
) {
    let backlog = Backlog::on_mock("window-overrun", 2, 60, 3, 41).await;
    let Backlog {
        names,
        bootstrap,
        sandbox,
        produced,
        ..
    } = &backlog;
    let config = backlog.config(SLOW_BATCH, SLOW);
    // 2 December 2026: GMT, the window is 03:00-06:00 UTC.
    let clock = ManualClock::new(utc("2026-12-02T02:59:00Z"));
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline_at(config, metrics.clone(), clock.clone()).await;
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    clock.set(utc("2026-12-02T03:00:00Z"));

    // Close the window once part of the backlog is sent.
    until_calls_received(sandbox, 10).await;
    clock.set(utc("2026-12-02T06:00:00Z"));
    // What was handed on finishes; then nothing more is sent until the next opening.
    let mut last = u64::MAX;
    for _ in 0..20 {
        let now = sandbox.handle.stats().calls_received;
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let sent_in_first_window = sandbox.handle.stats().calls_received;
    assert!(
        sent_in_first_window < 60,
        "the whole backlog went in the first window"
    );
    assert!(metrics
        .encode()
        .contains("ads_connector_schedule_windows_unfinished_total 1"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sandbox.handle.stats().calls_received,
        sent_in_first_window,
        "sent after closing"
    );

    clock.set(utc("2026-12-03T03:00:00Z"));
    let (acks, dead) = read_outcomes(bootstrap, names, produced, Duration::from_secs(120));
    let superseded =
        assert_newest_snapshot_of_each_call_posted_once(produced, &acks, &dead, sandbox);
    assert_eq!(superseded, 180 - 60);
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_committed_at_end(bootstrap, &names.group, &names.cad, produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_the_window_goes_on_from_the_committed_position_and_resends_only_work_in_flight(
) {
    let backlog = Backlog::on_mock("window-restart", 2, 60, 3, 43).await;
    let Backlog {
        names,
        bootstrap,
        sandbox,
        produced,
        ..
    } = &backlog;
    // Slower still (2.5 calls a second), so the drain at shutdown cannot send the rest.
    let slower = "[rate_limit]\nrequests_per_minute = 30\nburst = 1";
    let config = || backlog.config(SLOW_BATCH, slower);
    let clock = ManualClock::new(utc("2026-12-02T03:30:00Z"));
    let (first, cancel) = start_pipeline_at(config(), Metrics::new(), clock.clone()).await;
    until_calls_received(sandbox, 10).await;
    cancel.cancel();
    first.finish().await.unwrap();
    let sent_before_restart = sandbox.handle.stats().calls_received;
    assert!(sent_before_restart < 60);

    let (second, cancel) = start_pipeline_at(config(), Metrics::new(), clock.clone()).await;
    until_committed_at_end(bootstrap, names, produced).await;
    let (acks, dead) = read_outcomes(bootstrap, names, produced, Duration::from_secs(30));
    assert_each_call_reached_the_api_resending_only_work_in_flight(produced, &acks, &dead, sandbox);
    cancel.cancel();
    second.finish().await.unwrap();
    assert_committed_at_end(bootstrap, &names.group, &names.cad, produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_in_the_middle_of_the_window_loses_nothing_and_resends_only_work_in_flight() {
    let backlog = Backlog::on_mock("window-rebalance", 4, 80, 3, 47).await;
    let Backlog {
        names,
        bootstrap,
        sandbox,
        produced,
        ..
    } = &backlog;
    let config = || backlog.config(SLOW_BATCH, SLOW);
    let clock = ManualClock::new(utc("2026-12-02T03:30:00Z"));
    let (first, cancel_first) = start_pipeline_at(config(), Metrics::new(), clock.clone()).await;
    until_calls_received(sandbox, 10).await;
    // A second replica joins: the partitions are shared out again, mid-window.
    let (second, cancel_second) = start_pipeline_at(config(), Metrics::new(), clock.clone()).await;
    until_committed_at_end(bootstrap, names, produced).await;
    let (acks, dead) = read_outcomes(bootstrap, names, produced, Duration::from_secs(30));
    assert_each_call_reached_the_api_resending_only_work_in_flight(produced, &acks, &dead, sandbox);
    cancel_first.cancel();
    cancel_second.cancel();
    first.finish().await.unwrap();
    second.finish().await.unwrap();
    assert_committed_at_end(bootstrap, &names.group, &names.cad, produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_arrive_while_the_window_is_open_are_submitted_too() {
    let backlog = Backlog::on_mock("window-late", 2, 30, 2, 53).await;
    let config = backlog.config("max_calls = 20\nlinger_ms = 50", "");
    let Backlog {
        names,
        bootstrap,
        sandbox,
        mut produced,
        ..
    } = backlog;
    let clock = ManualClock::new(utc("2026-12-02T04:00:00Z"));
    let (pipeline, cancel) = start_pipeline_at(config, Metrics::new(), clock.clone()).await;
    until_calls_received(&sandbox, 30).await;
    // New calls arrive while the window is open: not in the indexed backlog, sent as they come.
    produced.extend(produce_snapshots(&bootstrap, &names.cad, 20, 1, 59, 0).await);
    let (acks, dead) = read_outcomes(&bootstrap, &names, &produced, Duration::from_secs(60));
    assert_newest_snapshot_of_each_call_posted_once(&produced, &acks, &dead, &sandbox);
    cancel.cancel();
    pipeline.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_demo_on_a_simulated_clock_sends_nothing_before_the_opening_and_each_call_once()
{
    let summary = ads_devkit::demo::run(ads_devkit::demo::DemoArgs {
        calls: 1500,
        schedule: Some("window".into()),
        key_bits: 2048,
        quiet: true,
        ..ads_devkit::demo::DemoArgs::default()
    })
    .await
    .unwrap();
    let window = summary.window.clone().expect("window figures");
    assert_eq!(summary.lost, 0, "{summary:?}");
    assert_eq!(summary.duplicates, 0, "{summary:?}");
    assert_eq!(
        (window.posts_before_opening, window.tokens_before_opening),
        (0, 0),
        "{summary:?}"
    );
    assert_eq!(window.calls_posted_more_than_once, 0, "{summary:?}");
    // Several snapshots a call: most records are acked superseded, each by the window pass.
    assert!(summary.superseded * 2 > summary.produced, "{summary:?}");
    assert_eq!(window.coalesced, summary.superseded, "{summary:?}");
    // Every call with a valid snapshot was POSTed once (a call whose only snapshots were
    // truncated has none).
    assert!(
        summary.calls_received <= summary.distinct_calls,
        "{summary:?}"
    );
    assert_eq!(
        summary.acked,
        summary.calls_received + summary.superseded,
        "{summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_overrun_continue_a_pass_begun_in_the_window_drains_its_backlog_after_closing_time()
{
    let backlog = Backlog::on_mock("window-continue", 2, 60, 3, 61).await;
    let Backlog {
        names,
        bootstrap,
        sandbox,
        produced,
        ..
    } = &backlog;
    let config = backlog.config(SLOW_BATCH, &format!("on_overrun = \"continue\"\n{SLOW}"));
    let clock = ManualClock::new(utc("2026-12-02T05:59:00Z"));
    let metrics = Metrics::new();
    let (pipeline, cancel) = start_pipeline_at(config, metrics.clone(), clock.clone()).await;
    until_calls_received(sandbox, 10).await;
    // Closing time passes mid-backlog: the pass goes on, and the backlog is sent in full.
    clock.set(utc("2026-12-02T06:00:00Z"));
    let (acks, dead) = read_outcomes(bootstrap, names, produced, Duration::from_secs(120));
    assert_newest_snapshot_of_each_call_posted_once(produced, &acks, &dead, sandbox);
    assert!(
        metrics
            .encode()
            .contains("ads_connector_schedule_windows_unfinished_total 0"),
        "a drained window is not unfinished"
    );
    cancel.cancel();
    pipeline.finish().await.unwrap();
    assert_committed_at_end(bootstrap, &names.group, &names.cad, produced);
}
