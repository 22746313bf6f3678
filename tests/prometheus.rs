//! The dashboard and the alerts, proven on a real Prometheus.
//!
//! `ADS_TEST_PROMETHEUS` names the `prometheus` server binary (Debian's package:
//! `/usr/bin/prometheus`, with `promtool` beside it); a build without it reports these tests as ignored
//! (skipped), never as passed (`build.rs`). `scripts/test-observability.sh` installs the package
//! and sets it.
//!
//! The workload: the real pipeline in-process on librdkafka's mock cluster, against the sandbox
//! NHS API with signed-JWT authentication and injected faults (5xx, 429 with `Retry-After`,
//! 400 rejections, connection resets, latency), on records produced for about 15 seconds, some
//! of them invalid. Prometheus runs on a loopback port with a temporary configuration and
//! storage directory, scrapes `/metrics` every second and evaluates `dashboards/alerts.yml`
//! every second. Then every dashboard query (with `$job`, `$instance` and `$__rate_interval`
//! as Grafana would fill them) and every alert expression is evaluated through the HTTP API.
//! A query must return series unless it is listed, with its reason, as legitimately empty.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ads_connector::metrics::Metrics;
use common::*;
use nhs_emulator::FaultProfile;

/// What Grafana puts in for `$__rate_interval` here: well above four scrape intervals.
const RATE_INTERVAL: &str = "30s";

/// Dashboard panels (by title) that may return no series in this workload, and why. (Every label value an
/// enum knows exists at zero from start-up, the workload authenticates, and the sandbox injects
/// every fault class the panels show; only the MESH lease is absent without `[mesh]`.)
const EMPTY_PANEL_QUERIES: &[(&str, &str)] = &[(
    "MESH poller lease",
    "the workload has no [mesh] section, so no lease series exists",
)];

/// Metrics that alerts select but that have no series in this workload, and why.
const ABSENT_METRICS: &[(&str, &str)] = &[(
    "ads_connector_mesh_poller_lease",
    "the lease gauge exists only with a [mesh] section, which the workload lacks",
)];

/// Alerts whose expression has no series in this workload, and why. The others must fire.
const QUIET_ALERTS: &[(&str, &str)] = &[
    (
        "AdsConnectorDpsRejections",
        "the workload has no [mesh] section, so no DPS errors are published",
    ),
    (
        "AdsConnectorMeshPollFailing",
        "the workload has no [mesh] section, so MESH is never polled",
    ),
    (
        "AdsConnectorMeshPollerLeaseVacant",
        "the workload has no [mesh] section, so no lease series exists",
    ),
    ("AdsConnectorDown", "the connector is up and scraped"),
    ("AdsConnectorRestarting", "the process never restarts"),
    (
        "AdsConnectorNotReady",
        "the pipeline is ready (partitions assigned, token held)",
    ),
    (
        "AdsConnectorNoPartitionsAssigned",
        "the only replica owns every partition",
    ),
    (
        "AdsConnectorConsumerLagHigh",
        "the lag stays far below 10000 records",
    ),
    (
        "AdsConnectorConsumerLagGrowing",
        "the lag stays far below 1000 records",
    ),
    (
        "AdsConnectorNoSuccessfulSubmissions",
        "submissions are accepted throughout",
    ),
    (
        "AdsConnectorTokenRefreshFailing",
        "the token server accepts every request",
    ),
    (
        "AdsConnectorTokenExpiring",
        "the token lives 599 s and the workload lasts seconds",
    ),
    (
        "AdsConnectorRateLimiterSaturated",
        "limiter waits stay well below a second",
    ),
    (
        "AdsConnectorEndToEndLatencyHigh",
        "records are acked within seconds",
    ),
    (
        "AdsConnectorOffsetCommitsFailing",
        "the mock cluster accepts every commit",
    ),
    (
        "AdsConnectorApiMisconfigured",
        "the API's URL, path and authentication are right: no misconfiguration pause",
    ),
    (
        "AdsConnectorWindowBacklogLeft",
        "the workload submits continuously ([schedule] mode = continuous): no window closes",
    ),
];

fn promtool(prometheus: &Path) -> PathBuf {
    std::env::var_os("ADS_TEST_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| prometheus.with_file_name("promtool"))
}

#[test]
#[cfg_attr(
    not(ads_test_prometheus),
    ignore = "needs Prometheus: ADS_TEST_PROMETHEUS (scripts/test.sh installs Debian's prometheus)"
)]
fn promtool_accepts_the_rules_and_passes_every_alert_unit_test() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let promtool = promtool(&prometheus);
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(repo_path("dashboards"))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", promtool.display()));
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The Prometheus server, stopped when dropped.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_prometheus(binary: &Path, target: std::net::SocketAddr) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: ads-connector\n    static_configs:\n      - targets: ['{target}']\n",
            rules = repo_path("dashboards/alerts.yml").display(),
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/-/ready", server.base)).await {
            if r.status().is_success() {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "Prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Evaluates `expr` now; the result vector.
async fn query(base: &str, expr: &str) -> Vec<serde_json::Value> {
    let response: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["status"], "success", "{expr}: {response}");
    response["data"]["result"].as_array().unwrap().clone()
}

/// A dashboard query as Grafana sends it with every job and instance selected.
fn as_grafana_sends_it(expr: &str) -> String {
    expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$job", ".+")
        .replace("$instance", ".+")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_prometheus),
    ignore = "needs Prometheus: ADS_TEST_PROMETHEUS (scripts/test.sh installs Debian's prometheus)"
)]
async fn every_dashboard_query_and_alert_expression_returns_series_from_a_real_prometheus() {
    let Some(binary) = prometheus_binary() else {
        return;
    };

    // The workload's connector, with the sandbox injecting faults.
    let names = Names::new("prom");
    let broker = Broker::mock(1, &names.topics(3));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    sandbox.handle.set_faults(
        FaultProfile::parse(
            "500=5%,503=5%,429=2%,400=4%,reset=2%,latency=5..60ms,retry_after=1s,seed=5",
        )
        .unwrap(),
    );
    let config = connector_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 100",
        "[rate_limit]\nrequests_per_minute = 1200\nburst = 2\n\
         [kafka.properties]\n\"statistics.interval.ms\" = \"1000\"",
    );
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let prometheus = start_prometheus(&binary, pipeline.health_addr).await;
    let base = prometheus.base.clone();
    assert!(pipeline.ready(Duration::from_secs(30)).await);

    // About 15 s of traffic, some records invalid, so every rate has points in its window.
    let mut produced = Vec::new();
    for round in 0..30u64 {
        produced.extend(produce_calls(&bootstrap, &names.cad, 25, round + 1, 10).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (b, ack, dlq) = (bootstrap.clone(), names.ack.clone(), names.dlq.clone());
    let total = produced.len();
    let done = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let acks = read_topic(&b, &ack, total, Duration::from_secs(2)).len();
            let dead = read_topic(&b, &dlq, total, Duration::from_millis(200)).len();
            if acks + dead >= total || Instant::now() > deadline {
                return (acks, dead);
            }
        }
    });
    let (acks, dead) = done.await.unwrap();
    // A reset after the API accepted can resend a submission: duplicates, never fewer.
    assert!(acks + dead >= total, "the workload did not finish");
    // Let the last scrapes and rule evaluations land.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scrapes = query(&base, "count_over_time(up{job=\"ads-connector\"}[5m])").await;
    let scrapes: f64 = scrapes[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(scrapes >= 15.0, "only {scrapes} scrapes");

    // Every dashboard query.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("dashboards/ads-connector.json")).unwrap(),
    )
    .unwrap();
    let mut empty = Vec::new();
    let mut evaluated = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let result = query(&base, &as_grafana_sends_it(expr)).await;
            evaluated += 1;
            let allowed = EMPTY_PANEL_QUERIES
                .iter()
                .any(|(title, _)| panel["title"] == *title);
            if result.is_empty() && !allowed {
                empty.push(format!("{}: {expr}", panel["title"]));
            }
        }
    }
    assert!(evaluated >= 40, "only {evaluated} dashboard queries");
    assert!(
        empty.is_empty(),
        "dashboard queries without series:\n{}",
        empty.join("\n")
    );

    // The workload really moved: throughput, lag per partition, latency, faults.
    for (expr, why) in [
        (
            "sum(increase(ads_connector_records_consumed_total[5m])) > 0",
            "records consumed",
        ),
        (
            "sum(increase(ads_connector_acks_published_total[5m])) > 0",
            "acks published",
        ),
        (
            "sum(increase(ads_connector_dead_letters_total[5m])) > 0",
            "dead letters",
        ),
        (
            "count(ads_connector_kafka_consumer_lag_records) == 3",
            "a lag series per partition",
        ),
        (
            "sum(increase(ads_connector_http_retries_total[5m])) > 0",
            "retries",
        ),
        (
            "sum(increase(ads_connector_http_requests_total{status=\"429\"}[5m])) > 0",
            "429s",
        ),
        (
            "sum(increase(ads_connector_end_to_end_latency_seconds_count[5m])) > 0",
            "latencies",
        ),
        (
            "sum(ads_connector_token_expiry_timestamp_seconds) > time()",
            "a token held",
        ),
        ("process_resident_memory_bytes > 0", "process metrics"),
    ] {
        assert!(!query(&base, expr).await.is_empty(), "{why}: {expr}");
    }

    // Every alert: Prometheus evaluated it without error; its expression has series unless it
    // is quiet for a stated reason; a quiet alert's metrics exist all the same.
    let rules: serde_json::Value = reqwest::get(format!("{base}/api/v1/rules?type=alert"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap();
            let expr = rule["query"].as_str().unwrap();
            seen.insert(name.to_string());
            if rule["health"] != "ok" {
                problems.push(format!(
                    "{name}: health {} ({})",
                    rule["health"], rule["lastError"]
                ));
            }
            let fired = !query(&base, expr).await.is_empty();
            let quiet = QUIET_ALERTS.iter().find(|(n, _)| *n == name);
            match (fired, quiet) {
                (false, None) => problems.push(format!("{name}: no series for {expr}")),
                (true, Some((_, why))) => {
                    problems.push(format!("{name}: listed as quiet ({why}) but has series"))
                }
                _ => {}
            }
            for selector in selectors(expr) {
                let absent = ABSENT_METRICS.iter().any(|(m, _)| selector.starts_with(m));
                if !absent && query(&base, &selector).await.is_empty() {
                    problems.push(format!("{name}: {selector} has no series"));
                }
            }
        }
    }
    let alerts_in_file: BTreeSet<String> =
        std::fs::read_to_string(repo_path("dashboards/alerts.yml"))
            .unwrap()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_string))
            .collect();
    assert_eq!(seen, alerts_in_file, "Prometheus did not load every alert");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Alerts that fire with `for: 0m` are firing in Prometheus itself.
    let firing: serde_json::Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: BTreeMap<String, String> = firing["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states.get("AdsConnectorDeadLetters").map(String::as_str),
        Some("firing")
    );
    assert_eq!(
        states
            .get("AdsConnectorSubmissionsRejected")
            .map(String::as_str),
        Some("firing")
    );

    cancel.cancel();
    pipeline.finish().await.unwrap();
}

/// The metric selectors of an expression (`name{matchers}` or a bare name), for a check that
/// each selects series even when the whole expression is quiet.
fn selectors(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_name = (expr[i..].starts_with("ads_connector_")
            || expr[i..].starts_with("process_")
            || expr[i..].starts_with("up{"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts_name {
            i += 1;
            continue;
        }
        let end = expr[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |n| i + n);
        let mut selector = expr[i..end].to_string();
        let mut next = end;
        if expr[end..].starts_with('{') {
            let close = expr[end..].find('}').unwrap() + end;
            selector.push_str(&expr[end..=close]);
            next = close + 1;
        }
        out.insert(selector);
        i = next;
    }
    out
}
