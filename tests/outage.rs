//! Issue 14 item 5: backpressure by pausing, never by not polling. Through an NHS API outage
//! longer than librdkafka's `max.poll.interval.ms`, with a backlog waiting, the `ads-connector
//! run` binary on Tansu pauses its partitions and keeps polling: the consumer never leaves its
//! group (no revocation, no second assignment), no offset is committed past a record not done,
//! its memory stays flat, and once the API is back every record ends as exactly one ack or dead
//! letter, the offsets committed to the end.
//!
//! Two sizes: a CI-sized run (5,000 records, a 30 s outage against a 10 s poll interval), and
//! the issue's own (200,000 records, a 10-minute outage at the default 300 s interval), ignored
//! for its length. Both need Tansu (`ADS_TEST_KAFKA_BOOTSTRAP`); `tests/backpressure.rs` has the
//! in-process version on the mock cluster too.
//!
//! On Tansu 0.6, resuming a paused partition refetches from inside a producer batch and Tansu
//! skips to the next batch; the source reads the skipped records again (`gaps_total{outcome=
//! "reread"}`, `tests/offset_gaps.rs`), so a reread gap is expected here and only an unresolved
//! one is a failure.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use nhs_emulator::FaultProfile;

/// Fast retries and a rate limit that never holds the drain back.
const REQUEST: &str = "[nhs_api.request]\nmax_in_flight = 4\ninitial_backoff_ms = 20\nmax_backoff_ms = 500\n[rate_limit]\nrequests_per_minute = 60000\nburst = 50";
const PARTITIONS: i32 = 4;

/// One outage run.
struct Outage {
    /// Records produced before the connector starts (every 50th invalid).
    records: usize,
    /// `max.poll.interval.ms` in `[kafka.properties]`; `None`: librdkafka's default (300 s).
    max_poll_interval_ms: Option<u64>,
    /// How long the API answers 503 to everything.
    outage: Duration,
    /// How often the connector's RSS and metrics are sampled during the outage.
    sample_every: Duration,
    /// Longest wait for every record's outcome once the API is back.
    drain_timeout: Duration,
}

/// What a run measured.
#[derive(Debug)]
struct Measured {
    /// Revocations plus assignments after the first, during and after the outage.
    rejoins: u64,
    /// Records produced that came out as neither an ack nor a dead letter.
    lost: usize,
    /// Extra acks or dead letters.
    duplicates: usize,
    /// `(seconds into the outage, VmRSS in KiB)` of the connector process.
    rss: Vec<(f64, u64)>,
    /// From the API's recovery to every record's outcome read back (includes the reader's
    /// 0.7 s wait for duplicates).
    drain: Duration,
    /// Offset gaps the source read again (Tansu's skips on resume).
    gaps_reread: f64,
    /// Seconds into the outage of the first sample that saw the partitions paused.
    paused_at: f64,
}

/// `VmRSS` of process `pid`, KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The metric `name_and_labels` at the connector's endpoint `addr` (panics if absent).
async fn metric(addr: std::net::SocketAddr, name_and_labels: &str) -> f64 {
    let text = scrape_metrics(addr).await;
    series_in(&text, name_and_labels).unwrap_or_else(|| panic!("no series {name_and_labels}"))
}

/// Assignments and revocations so far: `(assign, revoke)`.
async fn rebalances(addr: std::net::SocketAddr) -> (u64, u64) {
    let text = scrape_metrics(addr).await;
    let count = |kind: &str| {
        let series = format!("ads_connector_kafka_rebalances_total{{kind=\"{kind}\"}}");
        series_in(&text, &series).unwrap_or_else(|| panic!("no series {series}")) as u64
    };
    (count("assign"), count("revoke"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Outage {
    async fn run(&self, test: &str) -> Measured {
        let bootstrap = real_broker().unwrap();
        let names = Names::new(test);
        create_topics(&bootstrap, &names.topics(PARTITIONS)).await;
        let sandbox = auth_sandbox_with(|cfg| {
            cfg.faults = FaultProfile::parse("503=100%").unwrap();
        })
        .await;

        // The backlog, waiting before the connector starts (in slices: a producer queues at
        // most 100,000 records).
        let started = Instant::now();
        let mut source = CallSource::new(145, 50);
        let mut produced = Vec::with_capacity(self.records);
        while produced.len() < self.records {
            let n = (self.records - produced.len()).min(20_000);
            produced.append(&mut source.produce(&bootstrap, &names.cad, n).await);
        }
        eprintln!(
            "{test}: produced {} records in {:.1?}",
            produced.len(),
            started.elapsed()
        );

        let mut extra = REQUEST.to_string();
        if let Some(ms) = self.max_poll_interval_ms {
            extra.push_str(&format!(
                "\n[kafka.properties]\n\"max.poll.interval.ms\" = \"{ms}\""
            ));
        }
        let config = config_toml(
            &bootstrap,
            &names,
            &sandbox,
            "max_calls = 100\nlinger_ms = 100",
            &extra,
        );
        let path = write_file(sandbox.dir.path(), "connector.toml", &config);
        let log = connector_log_dir().join(format!("{}.log", names.cad));
        let mut child = spawn_run_logged_at(&path, LogFormat::Json, "info", &log);
        let pid = child.id();
        let addr = metrics_address(&log, Duration::from_secs(60)).await;

        // The first assignment: every partition, once.
        let deadline = Instant::now() + Duration::from_secs(60);
        while metric(addr, "ads_connector_kafka_partitions_assigned").await < f64::from(PARTITIONS)
        {
            assert!(
                Instant::now() < deadline,
                "the partitions were never assigned"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (first_assign, first_revoke) = rebalances(addr).await;
        assert_eq!(first_revoke, 0);

        // The outage, the pipeline full behind it.
        let outage_start = Instant::now();
        let mut rss = Vec::new();
        let mut paused_at = None;
        while outage_start.elapsed() < self.outage {
            let at = outage_start.elapsed().as_secs_f64();
            rss.push((at, vm_rss_kib(pid)));
            if paused_at.is_none() && metric(addr, "ads_connector_source_paused").await == 1.0 {
                paused_at = Some(at);
            }
            let (assign, revoke) = rebalances(addr).await;
            assert_eq!(
                (assign, revoke),
                (first_assign, 0),
                "the consumer rejoined its group {at:.0} s into the outage"
            );
            tokio::time::sleep(self.sample_every).await;
        }
        assert_eq!(sandbox.handle.stats().calls_received, 0, "no outage?");
        assert!(sandbox.handle.stats().faults_injected_5xx > 0, "no outage?");
        let paused_at = paused_at.expect("the full pipeline never paused its partitions");
        assert_eq!(
            metric(addr, "ads_connector_source_paused").await,
            1.0,
            "paused until the API is back"
        );
        // Nothing valid is done, so no committed offset passed the first valid record.
        let (b, group, cad) = (bootstrap.clone(), names.group.clone(), names.cad.clone());
        let committed = tokio::task::spawn_blocking(move || committed(&b, &group, &cad))
            .await
            .unwrap();
        let mut first_valid: HashMap<i32, i64> = HashMap::new();
        for r in produced.iter().filter(|r| r.valid) {
            let e = first_valid.entry(r.partition).or_insert(r.offset);
            *e = (*e).min(r.offset);
        }
        for (partition, offset) in &committed {
            assert!(
                *offset <= first_valid[partition],
                "partition {partition} committed at {offset}, past its first valid record {}, \
                 which was never submitted",
                first_valid[partition]
            );
        }

        // The API is back.
        sandbox.handle.set_faults(FaultProfile::default());
        let recovered = Instant::now();
        let (b, n, p, timeout) = (
            bootstrap.clone(),
            names.clone(),
            produced.clone(),
            self.drain_timeout,
        );
        let (acks, dlq) = tokio::task::spawn_blocking(move || read_outcomes(&b, &n, &p, timeout))
            .await
            .unwrap();
        let drain = recovered.elapsed();

        // Before the shutdown, whose close of the consumer is a revocation of its own.
        let (assign, revoke) = rebalances(addr).await;
        assert_eq!(metric(addr, "ads_connector_source_paused").await, 0.0);
        let gap = |outcome: &str| {
            format!("ads_connector_kafka_offset_gaps_total{{outcome=\"{outcome}\"}}")
        };
        let gaps_reread = metric(addr, &gap("reread")).await;
        let gaps_empty = metric(addr, &gap("empty")).await;
        let gaps_unresolved = metric(addr, &gap("unresolved")).await;
        sigterm(&child);
        let status = wait_for_exit(&mut child, Duration::from_secs(60)).await;
        assert!(status.success(), "exit status {status}");

        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !log_text.contains("maximum poll interval"),
            "librdkafka reported the poll interval exceeded (see {})",
            log.display()
        );
        let mut outcomes: HashMap<(i32, i64), usize> = HashMap::new();
        for m in &acks {
            let (p, o, _) = ack_source(m);
            *outcomes.entry((p, o)).or_default() += 1;
        }
        for m in &dlq {
            *outcomes.entry(dlq_source(m)).or_default() += 1;
        }
        let lost = produced
            .iter()
            .filter(|r| !outcomes.contains_key(&(r.partition, r.offset)))
            .count();
        let duplicates = outcomes.values().map(|n| n - 1).sum();
        let measured = Measured {
            rejoins: (assign - first_assign) + revoke,
            lost,
            duplicates,
            rss,
            drain,
            gaps_reread,
            paused_at,
        };
        let rss_kib: Vec<u64> = measured.rss.iter().map(|(_, k)| *k).collect();
        eprintln!(
            "{test}: {} records, {:?} outage (max.poll.interval.ms {}): paused {paused_at:.1} s \
             in; rejoins {}, lost {}, duplicates {}, acks {}, dead letters {}; gaps reread {}, \
             empty {gaps_empty}, unresolved {gaps_unresolved}; drained {:.1?} after recovery",
            produced.len(),
            self.outage,
            self.max_poll_interval_ms
                .map_or("300000 (default)".to_string(), |ms| ms.to_string()),
            measured.rejoins,
            measured.lost,
            measured.duplicates,
            acks.len(),
            dlq.len(),
            measured.gaps_reread,
            measured.drain,
        );
        eprintln!(
            "{test}: connector VmRSS over the outage, {} samples: first {:.1} MiB, min {:.1}, \
             max {:.1}, last {:.1}",
            rss_kib.len(),
            mib(rss_kib[0]),
            mib(*rss_kib.iter().min().unwrap()),
            mib(*rss_kib.iter().max().unwrap()),
            mib(*rss_kib.last().unwrap()),
        );
        let every = (measured.rss.len() / 20).max(1);
        let trace: Vec<String> = measured
            .rss
            .iter()
            .step_by(every)
            .map(|(at, kib)| format!("{at:.0}s:{:.1}", mib(*kib)))
            .collect();
        eprintln!("{test}: VmRSS MiB samples: {}", trace.join(" "));

        assert_eq!(measured.rejoins, 0, "the consumer rejoined its group");
        assert_eq!(gaps_unresolved, 0.0, "a gap the source could not settle");
        assert_eq!(measured.lost, 0, "records lost");
        // Valid records acked, invalid ones dead-lettered, never both (duplicates counted).
        assert_eq!(
            assert_every_record_at_least_once(&produced, &acks, &dlq),
            measured.duplicates
        );
        let (group, cad) = (names.group.clone(), names.cad.clone());
        tokio::task::spawn_blocking(move || {
            assert_committed_at_end(&bootstrap, &group, &cad, &produced)
        })
        .await
        .unwrap();
        measured
    }
}

/// Once the source has paused its partitions nothing more is fetched, so the connector's RSS
/// from then on never exceeds its first sample after the pause by more than the factor
/// `slack`: memory is flat, not growing with the outage.
fn assert_flat(measured: &Measured, slack: f64) {
    let after: Vec<u64> = measured
        .rss
        .iter()
        .filter(|(at, _)| *at >= measured.paused_at)
        .map(|(_, kib)| *kib)
        .collect();
    let (first, max) = (after[0], *after.iter().max().unwrap());
    assert!(
        max as f64 <= first as f64 * slack,
        "RSS grew during the outage: {:.1} MiB when the source paused, then up to {:.1} MiB",
        mib(first),
        mib(max)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn an_api_outage_of_three_poll_intervals_with_5000_records_waiting_costs_no_rejoin_and_no_record(
) {
    let outage = Outage {
        records: 5_000,
        // The session timeout of the harness's configuration is 10 s, the least librdkafka
        // allows the poll interval to be.
        max_poll_interval_ms: Some(10_000),
        outage: Duration::from_secs(30),
        sample_every: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(90),
    };
    let measured = outage.run("outage").await;
    // No rejoin, so nothing is redelivered: exactly one outcome per record.
    assert_eq!(measured.duplicates, 0);
    assert_flat(&measured, 1.25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about 15 minutes (a 10-minute outage, then the drain of 200,000 records; \
            longer in a debug build): with Tansu on PORT, ADS_TEST_KAFKA_BOOTSTRAP=127.0.0.1:PORT \
            cargo test --release --test outage -- --ignored --nocapture"]
async fn a_ten_minute_api_outage_with_200000_records_waiting_on_tansu_costs_no_rejoin_no_record_and_no_memory(
) {
    let outage = Outage {
        records: 200_000,
        max_poll_interval_ms: None,
        outage: Duration::from_secs(600),
        sample_every: Duration::from_secs(5),
        // A debug build on a loaded 2-core machine drains about 130 records a second.
        drain_timeout: Duration::from_secs(3600),
    };
    let measured = outage.run("outage-10min").await;
    assert_flat(&measured, 1.25);
}
