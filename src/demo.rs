//! Demo: the whole connector on an embedded default, nothing to install.
//!
//! Starts librdkafka's mock cluster (real Kafka protocol on loopback, in-process), the sandbox
//! NHS API with authentication on an ephemeral port and a freshly generated key, produces
//! generated `cad.call.v1` records (some later snapshots of earlier calls, a few invalid ones so
//! the dead-letter path shows), runs the real pipeline ([`crate::app::Pipeline`]) until every
//! record has an ack or a dead letter *as read back from the ack and dead-letter topics*, then
//! drains and prints a summary. `lost` counts produced records with neither; it must be 0.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::acker::produce_all;
use crate::app::Pipeline;
use crate::config::Config;
use crate::generate::{self, Generator};
use crate::metrics::Metrics;
use crate::{chaos, keygen, sandbox};

const CAD_TOPIC: &str = "cad.calls";
const ACK_TOPIC: &str = "ads.acks";
const DLQ_TOPIC: &str = "ads.dead-letters";
const DPS_ERRORS_TOPIC: &str = "ads.dps-errors";

/// `ads-connector demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Records to produce.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Write the summary as one JSON object to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Partitions of the CAD topic (default: 4, or one per 1000 calls up to 64: librdkafka's
    /// mock cluster slows down sharply past about 5000 records of 3 KB in one partition).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Seed of the call generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Share of records that are a later snapshot of an earlier call.
    #[arg(long, default_value_t = 0.1)]
    pub update_ratio: f64,
    /// Share of records that are invalid (they must be dead-lettered).
    #[arg(long, default_value_t = 0.005)]
    pub invalid_ratio: f64,
    /// RSA key size of the demo's application key.
    #[arg(long, default_value_t = 4096)]
    pub key_bits: usize,
    /// Give up waiting for acks after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Address of the metrics port while the demo runs.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: String,
    /// Do not print the progress bar and the summary.
    #[arg(long)]
    pub quiet: bool,
    /// The NHS application quota the connector keeps to (requests per minute).
    #[arg(long, default_value_t = 1800)]
    pub requests_per_minute: u32,
    /// Also time a plain consumer reading the same CAD topic, and report the ratio.
    #[arg(long)]
    pub measure_raw: bool,
    /// Run under faults: `chaos` (API faults, a second consumer joining and leaving, a broker
    /// down and up, the token endpoint failing for a while) or a sandbox fault spec.
    #[arg(long)]
    pub faults: Option<String>,
    /// Share of new calls naming a well-formed but unregistered provider ODS code: the API
    /// accepts them, the sandbox's DPS rejects them over its MESH emulation, and the connector's
    /// MESH poller publishes them to the errors topic (`docs/dps-errors.md`).
    #[arg(long, value_name = "RATE")]
    pub dps_errors: Option<f64>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            calls: 2000,
            summary_json: None,
            partitions: None,
            seed: 7,
            update_ratio: 0.1,
            invalid_ratio: 0.005,
            key_bits: 4096,
            timeout_s: 120,
            metrics_listen: "127.0.0.1:0".into(),
            quiet: true,
            faults: None,
            dps_errors: None,
            requests_per_minute: 1800,
            measure_raw: false,
        }
    }
}

/// What the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Records produced to the CAD topic.
    pub produced: u64,
    /// Records the connector consumed.
    pub consumed: u64,
    /// Submissions the API accepted.
    pub submissions: u64,
    /// Produced records with at least one ack.
    pub acked: u64,
    /// Produced records with a dead letter.
    pub dead_lettered: u64,
    /// Produced records with neither.
    pub lost: u64,
    /// Ack or dead-letter records beyond the first for a source record.
    pub duplicates: u64,
    /// Times the sandbox received an older snapshot of a call after a newer one.
    pub ordering_violations: u64,
    /// Calls the sandbox received.
    pub calls_received: u64,
    /// Seconds from the first produce to the last ack.
    pub elapsed_s: f64,
    /// Produced records per second over `elapsed_s`.
    pub records_per_s: f64,
    /// Median Kafka timestamp → ack, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile Kafka timestamp → ack, milliseconds.
    pub p99_ms: f64,
    /// Calls the sandbox's DPS rejected (`--dps-errors`).
    pub dps_rejected: u64,
    /// `ads.dps-error.v1` records read back from the errors topic.
    pub dps_errors_published: u64,
    /// Of which correlated to their ack.
    pub dps_errors_correlated: u64,
    /// A plain consumer's rate on the same topic and cluster (`--measure-raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_consume_records_per_s: Option<f64>,
    /// `records_per_s / raw_consume_records_per_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_ratio: Option<f64>,
}

/// Runs the demo; see the module header.
pub async fn run(args: DemoArgs) -> Result<Summary> {
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let chaos = args.faults.as_deref() == Some("chaos");
    let faults = match args.faults.as_deref() {
        None => sandbox::FaultProfile::default(),
        Some(spec) => sandbox::FaultProfile::parse(spec)
            .map_err(|e| anyhow::anyhow!("--faults {spec}: {e}"))?,
    };

    // An in-process Kafka cluster with the three topics (three brokers under chaos, so one can
    // go down while the others keep serving).
    let brokers = if chaos { 3 } else { 1 };
    let cluster = MockCluster::new(brokers).context("cannot start the mock Kafka cluster")?;
    let partitions = args
        .partitions
        .unwrap_or_else(|| i32::try_from(args.calls / 1000).unwrap_or(64).clamp(4, 64));
    cluster.create_topic(CAD_TOPIC, partitions, 1)?;
    cluster.create_topic(ACK_TOPIC, 1, 1)?;
    cluster.create_topic(DLQ_TOPIC, 1, 1)?;
    let bootstrap = cluster.bootstrap_servers();

    // The sandbox NHS API with authentication, and a fresh application key.
    let api_key = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let pair = keygen::generate("demo-1", args.key_bits)?;
    let paths = keygen::write(&pair, work.path())?;
    let api_key_file = work.path().join("api-key");
    std::fs::write(&api_key_file, &api_key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = sandbox::start(
        listener,
        sandbox::SandboxConfig {
            apps: vec![sandbox::SandboxApp {
                api_key: api_key.clone(),
                jwks_path: Some(paths.jwks.clone()),
            }],
            faults,
            // Short-lived tokens under chaos, so refreshes happen while the token endpoint fails.
            token_lifetime_secs: if chaos { 8 } else { 599 },
            ..sandbox::SandboxConfig::default()
        },
    )
    .await?;
    // DPS mode: the sandbox rejects unregistered providers after acceptance, over its MESH.
    let mesh_section = match args.dps_errors {
        Some(_) => {
            cluster.create_topic(DPS_ERRORS_TOPIC, 1, 1)?;
            crate::mesh::demo::enable(&sandbox, work.path(), DPS_ERRORS_TOPIC, args.seed)?
        }
        None => String::new(),
    };
    let config_text = |listen: &str| {
        format!(
            r#"
            [kafka]
            bootstrap_servers = "{bootstrap}"
            group_id = "ads-connector-demo"
            topics = ["{CAD_TOPIC}"]
            ack_topic = "{ACK_TOPIC}"
            dead_letter_topic = "{DLQ_TOPIC}"
            session_timeout_ms = 10000
            revoke_drain_timeout_ms = 5000
            [nhs_api]
            environment = "custom"
            base_url = "{base}"
            token_url = "{token}"
            api_key_file = "{api_key_file}"
            private_key_file = "{key}"
            kid = "demo-1"
            [nhs_api.request]
            max_in_flight = 4
            initial_backoff_ms = 50
            max_backoff_ms = 2000
            [rate_limit]
            requests_per_minute = {rpm}
            [batch]
            max_calls = 100
            linger_ms = 200
            [http]
            listen = "{listen}"
            [shutdown]
            drain_timeout_s = 8
            {mesh_section}
            "#,
            base = sandbox.api_base_url(),
            token = sandbox.token_url(),
            api_key_file = api_key_file.display(),
            key = paths.private_key.display(),
            rpm = args.requests_per_minute,
        )
    };

    // The real pipeline.
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let config = Config::from_toml_str(&config_text(&args.metrics_listen))?;
    let pipeline = Pipeline::start(config, metrics.clone(), cancel.clone()).await?;
    if !args.quiet {
        eprintln!(
            "metrics: http://{}/metrics (while the demo runs)",
            pipeline.health_addr
        );
    }
    if !pipeline.ready(Duration::from_secs(60)).await {
        anyhow::bail!("the pipeline did not become ready (no partitions or no token) within 60 s");
    }

    // Produce the records into the running pipeline (spread over a few seconds under chaos, so
    // the faults hit a pipeline in motion), and read the ack and dead-letter topics back until
    // every produced record is accounted for.
    let progress = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(args.calls as u64)
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records acked or dead-lettered  {per_sec}",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let pace = if chaos {
        Duration::from_secs(8)
    } else {
        Duration::ZERO
    };
    let produce = produce(&bootstrap, &args, pace);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let read = tokio::task::spawn_blocking({
        let (bootstrap, progress, expected) =
            (bootstrap.clone(), progress.clone(), args.calls as u64);
        move || read_back(&bootstrap, expected, deadline, &progress)
    });
    let second = chaos::Second {
        config: Config::from_toml_str(&config_text("127.0.0.1:0"))?,
        metrics: Metrics::new(),
    };
    let (produced, chaos_report) = if chaos {
        let (produced, report) = tokio::join!(produce, chaos::timeline(&cluster, &sandbox, second));
        (produced?, Some(report?))
    } else {
        (produce.await?, None)
    };
    let tally = read.await??;
    let dps = match args.dps_errors {
        Some(_) => {
            let (bootstrap, stats) = (bootstrap.clone(), sandbox.dps_stats_reader());
            tokio::task::spawn_blocking(move || {
                crate::mesh::demo::await_published(
                    &bootstrap,
                    DPS_ERRORS_TOPIC,
                    stats,
                    Duration::from_secs(60),
                )
            })
            .await??
        }
        None => crate::mesh::demo::Published::default(),
    };
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    cancel.cancel();
    pipeline.finish().await?;
    let stats = sandbox.stats();
    let received = sandbox.received_calls();
    sandbox.shutdown().await;
    let raw = if args.measure_raw {
        let bootstrap = bootstrap.clone();
        Some(tokio::task::spawn_blocking(move || raw_consume_rate(&bootstrap, produced)).await??)
    } else {
        None
    };
    drop(cluster);

    let mut latencies = tally.latencies_ms;
    latencies.sort_by(f64::total_cmp);
    let done = tally.acked.len() + tally.dead.len();
    let consumed_by_second = chaos_report.as_ref().map_or(0, |r| r.consumed);
    let summary = Summary {
        produced,
        consumed: metrics.records_consumed() + consumed_by_second,
        submissions: stats.submissions_accepted,
        acked: tally.acked.len() as u64,
        dead_lettered: tally.dead.len() as u64,
        lost: produced.saturating_sub(done as u64),
        duplicates: tally.duplicates,
        ordering_violations: ordering_violations(&received),
        calls_received: received.len() as u64,
        elapsed_s: elapsed.as_secs_f64(),
        records_per_s: produced as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        dps_rejected: dps.rejected,
        dps_errors_published: dps.published,
        dps_errors_correlated: dps.correlated,
        raw_consume_records_per_s: raw,
        throughput_ratio: raw.map(|r| produced as f64 / elapsed.as_secs_f64() / r),
    };
    if !args.quiet {
        if let Some(report) = &chaos_report {
            println!("faults: {}", report.describe());
        }
        print_summary(&summary);
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(summary)
}

/// Times the API received an older snapshot of a call after a newer one (an equal one is a
/// harmless resend).
pub fn ordering_violations(received: &[sandbox::ReceivedCall]) -> u64 {
    let mut newest: HashMap<&str, &str> = HashMap::new();
    let mut violations = 0;
    for call in received {
        let Some(ts) = call.timestamp.as_deref() else {
            continue;
        };
        match newest.get(call.call_id.as_str()) {
            Some(seen) if parse_ts(ts) < parse_ts(seen) => violations += 1,
            Some(seen) if parse_ts(ts) == parse_ts(seen) => {}
            _ => {
                newest.insert(&call.call_id, ts);
            }
        }
    }
    violations
}

fn parse_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

async fn produce(bootstrap: &str, args: &DemoArgs, pace: Duration) -> Result<u64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("socket.nagle.disable", "true")
        .set("linger.ms", "5")
        .create()?;
    let mut generator =
        Generator::starting_at(args.seed, chrono::Utc::now() - chrono::Duration::hours(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut calls: Vec<crate::cad::CadCall> = Vec::new();
    let mut records: Vec<(Vec<u8>, Vec<u8>, OwnedHeaders)> = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let known = calls.len();
        let roll: f64 = rng.gen();
        let call = if roll < args.update_ratio && !calls.is_empty() {
            let i = rng.gen_range(0..calls.len());
            let next = generator.next_update(&calls[i]);
            calls[i] = next.clone();
            next
        } else {
            let call = generator.next_call();
            calls.push(call.clone());
            call
        };
        let mut payload = generate::to_json_line(&call).into_bytes();
        if let Some(rate) = args.dps_errors {
            if calls.len() > known && rng.gen::<f64>() < rate {
                payload = crate::mesh::demo::rejected_payload(&call);
            }
        }
        if rng.gen::<f64>() < args.invalid_ratio {
            // A truncated record: the connector must dead-letter it, not crash or drop it.
            payload.truncate(payload.len() / 2);
        }
        let traceparent = format!("00-{:032x}-{:016x}-01", rng.gen::<u128>(), rng.gen::<u64>());
        let headers = OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some(&traceparent),
        });
        records.push((call.call_id.clone().into_bytes(), payload, headers));
    }
    // Without a pace, everything at once; with one, in 40 slices spread over it.
    let slices = if pace.is_zero() { 1 } else { 40 };
    let per_slice = records.len().div_ceil(slices).max(1);
    for slice in records.chunks(per_slice) {
        let prepared = slice.iter().map(|(k, v, h)| {
            FutureRecord::<[u8], [u8]>::to(CAD_TOPIC)
                .key(k.as_slice())
                .payload(v.as_slice())
                .headers(h.clone())
        });
        produce_all(&producer, prepared).await?;
        tokio::time::sleep(pace / slices as u32).await;
    }
    Ok(records.len() as u64)
}

#[derive(Default)]
struct Tally {
    acked: HashMap<(i32, i64), u32>,
    dead: HashMap<(i32, i64), u32>,
    duplicates: u64,
    latencies_ms: Vec<f64>,
}

/// Reads the ack and dead-letter topics from the start until `expected` source records are
/// accounted for or `deadline` passes.
fn read_back(
    bootstrap: &str,
    expected: u64,
    deadline: Instant,
    progress: &indicatif::ProgressBar,
) -> Result<Tally> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ads-demo-reader")
        .set("enable.auto.commit", "false")
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(ACK_TOPIC, 0, Offset::Beginning)?;
    tpl.add_partition_offset(DLQ_TOPIC, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut tally = Tally::default();
    while ((tally.acked.len() + tally.dead.len()) as u64) < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let source = if message.topic() == ACK_TOPIC {
            let ack: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default())?;
            let src = &ack["source"];
            if let (Some(ts), Some(sent)) = (
                src["timestamp_ms"].as_i64(),
                message.timestamp().to_millis(),
            ) {
                tally.latencies_ms.push((sent - ts) as f64);
            }
            let key = (
                src["partition"].as_i64().unwrap_or(-1) as i32,
                src["offset"].as_i64().unwrap_or(-1),
            );
            (&mut tally.acked, key)
        } else {
            let header = |name: &str| {
                message.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                })
            };
            let key = (
                header("ads-source-partition").unwrap_or(-1) as i32,
                header("ads-source-offset").unwrap_or(-1),
            );
            (&mut tally.dead, key)
        };
        let (map, key) = source;
        let count = map.entry(key).or_insert(0);
        *count += 1;
        if *count > 1 {
            tally.duplicates += 1;
        }
        progress.set_position((tally.acked.len() + tally.dead.len()) as u64);
    }
    Ok(tally)
}

/// Records per second of a plain consumer reading the whole CAD topic of the same cluster.
fn raw_consume_rate(bootstrap: &str, expected: u64) -> Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ads-demo-raw")
        .set("enable.auto.commit", "false")
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(CAD_TOPIC), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(CAD_TOPIC, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut seen = 0u64;
    while seen < expected && started.elapsed() < Duration::from_secs(60) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m?;
            seen += 1;
        }
    }
    Ok(seen as f64 / started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

fn print_summary(s: &Summary) {
    println!("ads-connector demo");
    println!("  produced        {:>8}", s.produced);
    println!("  consumed        {:>8}", s.consumed);
    println!("  submissions     {:>8}", s.submissions);
    println!("  acked           {:>8}", s.acked);
    println!("  dead letters    {:>8}", s.dead_lettered);
    println!("  lost            {:>8}", s.lost);
    println!("  duplicates      {:>8}", s.duplicates);
    println!("  order violations{:>8}", s.ordering_violations);
    println!(
        "  calls received  {:>8}  (by the sandbox API)",
        s.calls_received
    );
    println!("  elapsed         {:>8.2} s", s.elapsed_s);
    println!("  throughput      {:>8.0} records/s", s.records_per_s);
    println!(
        "  latency p50     {:>8.1} ms  (Kafka timestamp → ack)",
        s.p50_ms
    );
    println!("  latency p99     {:>8.1} ms", s.p99_ms);
    if s.dps_rejected > 0 || s.dps_errors_published > 0 {
        println!(
            "  DPS rejections  {:>8}  (by the sandbox, after acceptance)",
            s.dps_rejected
        );
        println!(
            "  DPS errors      {:>8}  published ({} correlated to their call)",
            s.dps_errors_published, s.dps_errors_correlated
        );
    }
    if let (Some(raw), Some(ratio)) = (s.raw_consume_records_per_s, s.throughput_ratio) {
        println!(
            "  raw consume     {raw:>8.0} records/s  (a plain consumer, same topic and cluster)"
        );
        println!("  ratio           {ratio:>8.3}  (connector / raw consume)");
    }
}
