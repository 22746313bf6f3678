//! Quota benchmark: how much of the NHS API quota the connector uses with a large backlog, at
//! each API latency, and how fast it resumes after an outage. Not criterion: each figure is one
//! wall-clock run of the whole pipeline (librdkafka's mock cluster → connector → the in-process
//! sandbox with signed-JWT authentication), with the connector's default `[nhs_api.request]`.
//!
//! Quota runs: the sandbox enforces `ADS_BENCH_QUOTA` requests a minute (default 1,800, the real
//! per-proxy quota; Apigee-style fixed one-minute windows from the first request, 429 with
//! `Retry-After` beyond it) and delays every answer by the injected latency; the connector's
//! `rate_limit.requests_per_minute` is the same quota. A backlog of more calls than the quota
//! allows is produced first (`batch.mode = "single"`: one request per call; one record in seven
//! is a later snapshot of an earlier call, as in the integration tests). The run is measured over
//! `ADS_BENCH_SECONDS` (default 60, one whole quota window) from the first accepted request, and
//! prints requests a minute, the share of the quota, and the 429s.
//!
//! Recovery run: with a backlog in flight, the sandbox goes away entirely for
//! `ADS_BENCH_OUTAGE_S` (default 180, fractions allowed; connections refused, so the API and the
//! token endpoint are both down) and comes back on the same port as a fresh process (it has
//! forgotten the issued tokens, so the first answer is a 403 and the connector must authenticate
//! again). It prints the seconds from the sandbox being back to the first accepted submission.
//! The probe runs every 2 s from the first failure, so an outage of a whole number of probe
//! intervals lines its return up with a probe: vary the length (180.5, 180.9, …) to see the
//! spread.
//!
//! Run: `cargo bench --bench quota` (about 7 minutes). `ADS_BENCH_LATENCIES=50ms,1s` picks the
//! latencies, `ADS_BENCH_OUTAGE_S=0` skips the recovery run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ads_connector::metrics::Metrics;
use common::*;
use nhs_emulator::{FaultProfile, SandboxConfig, SandboxHandle};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn latencies() -> Vec<Duration> {
    let text = std::env::var("ADS_BENCH_LATENCIES").unwrap_or_else(|_| "50ms,300ms,1s".into());
    text.split(',')
        .map(|item| {
            let item = item.trim();
            if let Some(ms) = item.strip_suffix("ms") {
                Duration::from_millis(ms.parse().expect("a latency in ms"))
            } else {
                let s = item.strip_suffix('s').expect("a latency in ms or s");
                Duration::from_secs_f64(s.parse().expect("a latency in s"))
            }
        })
        .collect()
}

/// Requests the sandbox has answered on `$process-message` past the token check.
fn requests(sandbox: &SandboxHandle) -> u64 {
    let s = sandbox.stats();
    s.submissions_accepted
        + s.rejected_429
        + s.faults_injected_5xx
        + s.faults_injected_4xx
        + s.faults_injected_429
        + s.faults_storm_429
        + s.faults_reset
}

/// Waits until the sandbox has accepted a submission; the instant it saw it.
async fn first_accepted(sandbox: &SandboxHandle, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    while sandbox.stats().submissions_accepted == 0 {
        assert!(Instant::now() < deadline, "nothing accepted in {timeout:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

fn connector_extra(quota: u32) -> String {
    format!("[rate_limit]\nrequests_per_minute = {quota}")
}

const BATCH: &str = "mode = \"single\"\nlinger_ms = 20";

async fn quota_run(latency: Duration, quota: u32, seconds: u64) {
    let ms = latency.as_millis();
    let names = Names::new(&format!("quota-{ms}"));
    let broker = Broker::mock(1, &names.topics(4));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox_with(|cfg| {
        cfg.quota_per_minute = quota;
        cfg.faults = FaultProfile::parse(&format!("latency={ms}ms")).unwrap();
    })
    .await;
    let backlog = (u64::from(quota) * seconds / 60) as usize * 6 / 5 + 200;
    produce_calls(&bootstrap, &names.cad, backlog, 11, 0).await;
    let config = connector_config(&bootstrap, &names, &sandbox, BATCH, &connector_extra(quota));
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let t0 = first_accepted(&sandbox.handle, Duration::from_secs(60)).await;
    tokio::time::sleep_until((t0 + Duration::from_secs(seconds)).into()).await;
    let sent = requests(&sandbox.handle);
    let per_minute = sent as f64 * 60.0 / seconds as f64;
    let share = 100.0 * per_minute / f64::from(quota);
    let refused = sandbox.handle.stats().rejected_429;
    println!(
        "latency {ms:>5} ms: {per_minute:>7.0} requests/min of {quota} ({share:5.1} %), \
         {refused} × 429 (over {seconds} s from the first accepted request)"
    );
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), pipeline.finish()).await;
}

async fn restart(addr: SocketAddr, cfg: SandboxConfig) -> SandboxHandle {
    // The old listener is gone; the port is free again (SO_REUSEADDR) unless taken meanwhile.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the sandbox's port is free again");
    nhs_emulator::start(listener, cfg).await.unwrap()
}

async fn recovery_run(outage: Duration) {
    let names = Names::new("recovery");
    let broker = Broker::mock(1, &names.topics(4));
    let bootstrap = broker.bootstrap();
    let latency = "latency=50ms";
    let sandbox = auth_sandbox_with(|cfg| {
        cfg.faults = FaultProfile::parse(latency).unwrap();
    })
    .await;
    produce_calls(&bootstrap, &names.cad, 20_000, 13, 0).await;
    let config = connector_config(&bootstrap, &names, &sandbox, BATCH, &connector_extra(1800));
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    first_accepted(&sandbox.handle, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The same application (API key, JWKS) on the same port, as a fresh process.
    let addr = sandbox.handle.local_addr();
    let public_url = url::Url::parse(&format!("http://{addr}")).unwrap();
    let cfg = SandboxConfig {
        apps: vec![app(
            &std::fs::read_to_string(&sandbox.api_key_file).unwrap(),
            sandbox.dir.path().join("jwks.json"),
        )],
        public_url: Some(public_url),
        faults: FaultProfile::parse(latency).unwrap(),
        ..SandboxConfig::default()
    };
    let AuthSandbox { handle, dir, .. } = sandbox;
    handle.shutdown().await;
    tokio::time::sleep(outage).await;
    let back = restart(addr, cfg).await;
    let up = Instant::now();
    let accepted = first_accepted(&back, Duration::from_secs(600)).await;
    println!(
        "recovery: first accepted submission {:.1} s after the API and token endpoint came back \
         (outage {:.1} s, connections refused; the restarted sandbox forgot the token)",
        (accepted - up).as_secs_f64(),
        outage.as_secs_f64()
    );
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), pipeline.finish()).await;
    drop(dir);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing to run.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let quota: u32 = env_or("ADS_BENCH_QUOTA", 1800);
        let seconds: u64 = env_or("ADS_BENCH_SECONDS", 60);
        let outage: f64 = env_or("ADS_BENCH_OUTAGE_S", 180.0);
        for latency in latencies() {
            quota_run(latency, quota, seconds).await;
        }
        if outage > 0.0 {
            recovery_run(Duration::from_secs_f64(outage)).await;
        }
    });
}
