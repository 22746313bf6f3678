//! Demo: the whole connector on an embedded default, nothing to install.
//!
//! Starts librdkafka's mock cluster (real Kafka protocol on loopback, in-process), the sandbox
//! NHS API with authentication on an ephemeral port and a freshly generated key, produces
//! generated `cad.call.v1` records (some later snapshots of earlier calls, a few invalid ones so
//! the dead-letter path shows), runs the real pipeline ([`ads_connector::app::Pipeline`]) until every
//! record has an ack or a dead letter *as read back from the ack and dead-letter topics*, then
//! drains and prints a summary. `lost` counts produced records with neither; it must be 0.
//!
//! `--schedule window` runs NHS England's daily window (`[schedule]`, 03:00-06:00 UK time) on a
//! simulated clock: a day's records (most of them later snapshots of earlier calls) are produced
//! while the clock stands a minute before the opening, the demo checks that nothing was POSTed
//! and no token requested, moves the clock to the opening, and reports the POSTs made, the
//! records acked `superseded` and `lost` (0). Nothing sleeps until 03:00.
//!
//! Layout: this file holds the options and the orchestration ([`run`]); `demo/produce.rs` makes
//! and produces the records; `demo/read_back.rs` reads the ack and dead-letter topics back (and
//! times a plain consumer for `--measure-raw`); `demo/summary.rs` the [`Summary`], its figures
//! and its printing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::chaos;
use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::keygen;
use ads_connector::metrics::Metrics;
use ads_connector::schedule::{Clock, ManualClock};
use nhs_emulator as sandbox;

pub mod dps_errors;
mod produce;
mod read_back;
mod summary;

use produce::produce;
use read_back::{raw_consume_rate, read_back};
pub use summary::{ordering_violations, Summary, WindowFigures};
use summary::{percentile, print_summary};

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
    /// `continuous` (records are submitted as they arrive) or `window` (NHS England's daily
    /// window on a simulated clock: a day's backlog, then only the newest snapshot of each call).
    #[arg(long, value_name = "MODE")]
    pub schedule: Option<String>,
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
            schedule: None,
            requests_per_minute: 1800,
            measure_raw: false,
        }
    }
}

/// Runs the demo; see the module header.
pub async fn run(mut args: DemoArgs) -> Result<Summary> {
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let chaos = args.faults.as_deref() == Some("chaos");
    let window = match args.schedule.as_deref() {
        None | Some("continuous") => false,
        Some("window") if chaos => {
            anyhow::bail!("--schedule window does not run with --faults chaos")
        }
        Some("window") => true,
        Some(other) => anyhow::bail!("--schedule {other}: must be `continuous` or `window`"),
    };
    if window {
        // A day's backlog: most records are later snapshots of calls already in it.
        args.update_ratio = args.update_ratio.max(0.75);
    }
    let schedule_section = if window {
        "[schedule]\nmode = \"window\"\nwindow = \"03:00-06:00\"\ntimezone = \"Europe/London\""
    } else {
        ""
    };
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
            crate::demo::dps_errors::enable(&sandbox, work.path(), DPS_ERRORS_TOPIC, args.seed)?
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
            {schedule_section}
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
    // Window mode: a simulated clock a minute before the next opening.
    let opens_at = config.schedule.next_opening(chrono::Utc::now());
    let clock = ManualClock::new(
        opens_at.map_or_else(chrono::Utc::now, |t| t - chrono::TimeDelta::minutes(1)),
    );
    let schedule = config.schedule.describe_at(clock.now());
    let pipeline = Pipeline::start_with_clock(
        config,
        metrics.clone(),
        cancel.clone(),
        Arc::new(clock.clone()),
    )
    .await?;
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
    // Window mode: the whole day's backlog waits for the opening; nothing may be sent before it.
    let mut window_figures = None;
    let mut produced_early = None;
    if let Some(opens_at) = opens_at {
        produced_early = Some(produce(&bootstrap, &args, Duration::ZERO).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = sandbox.stats();
        window_figures = Some(WindowFigures {
            schedule,
            posts_before_opening: before.submissions_accepted,
            tokens_before_opening: before.tokens_issued,
            coalesced: 0,
            calls_posted_more_than_once: 0,
        });
        clock.set(opens_at);
    }
    let started = Instant::now();
    let pace = if chaos {
        Duration::from_secs(8)
    } else {
        Duration::ZERO
    };
    let produce = async {
        match produced_early {
            Some(counts) => Ok(counts),
            None => produce(&bootstrap, &args, pace).await,
        }
    };
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
    let (produced, distinct_calls) = produced;
    let tally = read.await??;
    let dps = match args.dps_errors {
        Some(_) => {
            let (bootstrap, stats) = (bootstrap.clone(), sandbox.dps_stats_reader());
            tokio::task::spawn_blocking(move || {
                crate::demo::dps_errors::await_published(
                    &bootstrap,
                    DPS_ERRORS_TOPIC,
                    stats,
                    Duration::from_secs(60),
                )
            })
            .await??
        }
        None => crate::demo::dps_errors::Published::default(),
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
        distinct_calls,
        superseded: tally.superseded,
        window: window_figures.map(|w| WindowFigures {
            coalesced: metrics.schedule_coalesced_total(),
            calls_posted_more_than_once: posted_more_than_once(&received),
            ..w
        }),
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

/// Calls the API received more than once.
fn posted_more_than_once(received: &[sandbox::ReceivedCall]) -> u64 {
    let mut posts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for call in received {
        *posts.entry(call.call_id.as_str()).or_default() += 1;
    }
    posts.values().filter(|&&n| n > 1).count() as u64
}
