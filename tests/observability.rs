//! Observability contracts: the operations port of a running pipeline (`/livez`, `/readyz`,
//! `/metrics` with consumer lag), the metric catalogue in `docs/metrics.md` against the registry,
//! the Grafana dashboard's conventions (datasource, job and instance variables,
//! `$__rate_interval`, unit and description on every panel, only metrics that exist), and the
//! alert rules' runbook sections and promtool unit tests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ads_connector::cad::DecodeErrorKind;
use ads_connector::metrics::{
    AckOutcome, DeadLetterKind, FlushReason, LeaseRole, Metrics, Outcome, RebalanceKind,
    RequestOutcome, RetryReason, StatusLabel,
};
use common::*;

/// A registry on which every semantic method has run once, encoded.
fn exercised() -> String {
    let m = Metrics::new();
    m.record_consumed("cad");
    m.record_invalid(DeadLetterKind::Decode(DecodeErrorKind::InvalidJson));
    m.rebalanced(RebalanceKind::Assign, 1, 1);
    m.batch_flushed(FlushReason::Count, 3, 3000);
    m.request_completed(
        StatusLabel::from_status(200),
        RequestOutcome::Success,
        Duration::from_millis(5),
    );
    m.request_retried(RetryReason::Status429);
    m.in_flight(0);
    m.rate_limited(Duration::from_millis(1));
    m.token_refreshed(Outcome::Success, Some(1));
    m.ack_published(AckOutcome::Submitted, Some(0));
    m.dead_lettered(DeadLetterKind::Decode(DecodeErrorKind::InvalidJson));
    m.offsets_committed(Outcome::Success);
    m.consumer_lag("cad", 0, 1);
    m.readiness(true);
    m.mesh_lease_role(LeaseRole::Holder);
    m.encode()
}

/// `name → type` of every family in Prometheus text.
/// (`process_virtual_memory_max_bytes` is left out: it exists only where a limit is set.)
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter(|l| !l.starts_with("process_virtual_memory_max_bytes "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_string(), kind.to_string())
        })
        .collect()
}

#[test]
fn the_catalogue_in_docs_lists_exactly_the_registered_families() {
    let registered = families(&exercised());
    let documented: BTreeMap<String, String> = read_repo_file("docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let (name, rest) = l.split_once('`')?;
            let kind = rest.split('|').nth(1)?.trim();
            Some((name.to_string(), kind.to_string()))
        })
        .collect();
    assert_eq!(documented, registered);
    for name in registered.keys() {
        assert!(
            name.starts_with("ads_connector_") || name.starts_with("process_"),
            "{name} has no prefix"
        );
    }
}

#[test]
fn every_enum_label_value_exists_at_zero_before_the_first_event() {
    let text = Metrics::new().encode();
    for series in [
        "ads_connector_batch_flushes_total{reason=\"shutdown\"} 0",
        "ads_connector_http_requests_total{status=\"503\"} 0",
        "ads_connector_http_requests_total{status=\"timeout\"} 0",
        "ads_connector_http_retries_total{reason=\"status_429\"} 0",
        "ads_connector_token_refreshes_total{outcome=\"failure\"} 0",
        "ads_connector_offset_commits_total{outcome=\"failure\"} 0",
        "ads_connector_acks_published_total{outcome=\"superseded\"} 0",
        "ads_connector_kafka_rebalances_total{kind=\"revoke\"} 0",
        "ads_connector_http_request_duration_seconds_count{outcome=\"rejected\"} 0",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
}

/// Every metric name an expression mentions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["ads_connector_", "process_"] {
        for (i, _) in expr.match_indices(prefix) {
            if expr[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `process_*` in prose is not a metric.
            if !name.ends_with('_') {
                names.insert(name);
            }
        }
    }
    names
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read_repo_file("dashboards/ads-connector.json")).unwrap()
}

#[test]
fn the_dashboard_follows_the_grafana_conventions() {
    let d = dashboard();
    assert!(d.get("id").is_none(), "store dashboards without an id");
    assert_eq!(d["uid"], "ads-connector");
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).cloned();
    let ds = var("datasource").expect("a datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    assert_eq!(ds["label"], "Data Source");
    for name in ["job", "instance"] {
        let v = var(name).unwrap_or_else(|| panic!("a {name} variable"));
        assert_eq!(v["multi"], true);
        assert_eq!(v["includeAll"], true);
        assert_eq!(v["allValue"], ".+");
    }
    let rows: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Overview",
            "Consumer lag",
            "Batching",
            "NHS API",
            "Auth",
            "Rate limiter",
            "Acks and dead letters",
            "Process",
            "DPS errors (MESH)",
            "Data quality",
            "Submission schedule"
        ]
    );
    let panels: Vec<&serde_json::Value> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .collect();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            p["description"].as_str().is_some_and(|s| s.len() > 20),
            "{title}: no description"
        );
        assert!(
            p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{title}: no unit"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                expr.contains("job=~\"$job\"") && expr.contains("instance=~\"$instance\""),
                "{title}: {expr} lacks the job or instance matcher"
            );
            for f in ["rate(", "increase(", "irate("] {
                for (i, _) in expr.match_indices(f) {
                    let rest = &expr[i..];
                    let window = &rest[rest.find('[').unwrap()..];
                    assert!(
                        window.starts_with("[$__rate_interval]"),
                        "{title}: {f} without $__rate_interval in {expr}"
                    );
                }
            }
        }
    }
}

#[test]
fn dashboards_and_alerts_name_only_metrics_that_exist() {
    let registered = families(&exercised());
    let exists = |name: &str| {
        registered.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|base| registered.get(base).is_some_and(|k| k == "histogram"))
            })
    };
    let mut exprs: Vec<String> = Vec::new();
    for p in dashboard()["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    let alerts = read_repo_file("dashboards/alerts.yml");
    exprs.push(alerts.clone());
    let mut named = 0;
    for expr in &exprs {
        for name in metric_names(expr) {
            named += 1;
            assert!(exists(&name), "{name} is not a metric of the registry");
        }
    }
    assert!(named > 40);
}

/// `(alert name, runbook_url)` of every rule in `dashboards/alerts.yml`.
fn alerts() -> Vec<(String, String)> {
    let text = read_repo_file("dashboards/alerts.yml");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            current = Some(name.to_string());
        } else if let Some(url) = line.strip_prefix("runbook_url: ") {
            out.push((
                current.take().expect("runbook_url after alert"),
                url.trim_matches('"').to_string(),
            ));
        }
    }
    out
}

#[test]
fn every_alert_has_a_runbook_section_and_promtool_cases_that_fire_and_stay_quiet() {
    let alerts = alerts();
    assert!(alerts.len() >= 10);
    let runbook = read_repo_file("docs/runbook.md");
    let tests = read_repo_file("dashboards/alerts.test.yml");
    for (name, url) in &alerts {
        assert!(
            runbook.lines().any(|l| l == format!("## {name}")),
            "docs/runbook.md has no `## {name}` section"
        );
        assert_eq!(url, &format!("docs/runbook.md#{}", name.to_lowercase()));
        let cases = tests.matches(&format!("alertname: {name}\n")).count();
        let firing = tests
            .split("- eval_time:")
            .filter(|c| c.contains(&format!("alertname: {name}\n")) && c.contains("exp_labels"))
            .count();
        assert!(
            cases >= 2 && firing >= 1,
            "{name}: {cases} promtool cases, {firing} firing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_port_reports_liveness_readiness_and_per_partition_lag() {
    let names = Names::new("ops");
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let produced = produce_calls(&bootstrap, &names.cad, 40, 3, 0).await;
    let config = connector_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 50",
        "[kafka.properties]\n\"statistics.interval.ms\" = \"200\"",
    );
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let base = format!("http://{}", pipeline.health_addr);
    assert!(pipeline.ready(Duration::from_secs(30)).await);
    let acks = read_topic_async(
        &bootstrap,
        &names.ack,
        produced.len(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(acks.len(), produced.len());

    let livez = reqwest::get(format!("{base}/livez")).await.unwrap();
    assert_eq!(livez.status(), 200);
    let readyz = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 200);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(body["partitions_assigned"], 2);
    assert_eq!(body["token_held"], true);

    // Lag arrives with the next statistics; the heartbeat publishes readiness every second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = response.text().await.unwrap();
        let lag_zero = (0..2).all(|p| {
            text.contains(&format!(
                "ads_connector_kafka_consumer_lag_records{{partition=\"{p}\",topic=\"{}\"}} 0",
                names.cad
            ))
        });
        if (lag_zero && text.contains("ads_connector_ready 1"))
            || tokio::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for p in 0..2 {
        let series = format!(
            "ads_connector_kafka_consumer_lag_records{{partition=\"{p}\",topic=\"{}\"}} 0",
            names.cad
        );
        assert!(text.contains(&series), "{series} missing from\n{text}");
    }
    assert!(text.contains("ads_connector_ready 1"));
    assert!(text.contains("process_resident_memory_bytes"));
    assert!(text.contains(&format!(
        "ads_connector_records_consumed_total{{topic=\"{}\"}} {}",
        names.cad,
        produced.len()
    )));
    cancel.cancel();
    pipeline.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_no_token_can_be_obtained() {
    let names = Names::new("unready");
    let broker = Broker::mock(1, &names.topics(1));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    // An API key the token server does not know: every token request is refused.
    std::fs::write(&sandbox.api_key_file, "unknown-application").unwrap();
    let config = connector_config(&bootstrap, &names, &sandbox, "", "");
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let base = format!("http://{}", pipeline.health_addr);
    assert!(!pipeline.ready(Duration::from_secs(3)).await);
    let readyz = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 503);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(body["token_held"], false);
    // Liveness does not depend on the token server.
    assert_eq!(
        reqwest::get(format!("{base}/livez"))
            .await
            .unwrap()
            .status(),
        200
    );
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("ads_connector_ready 0"));
    assert!(!text.contains("ads_connector_token_refreshes_total{outcome=\"failure\"} 0"));
    cancel.cancel();
    pipeline.finish().await.unwrap();
}
