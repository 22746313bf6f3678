//! End-to-end throughput on one real Kafka broker (issue 16): a raw librdkafka consumer doing no
//! work, and the `ads-connector run` binary submitting to the sandbox API in another process,
//! each read the same N generated `cad.call.v1` records; prints records per second, CPU seconds
//! per 1000 records and the ratio connector / raw.
//!
//! Run: `cargo bench --bench end_to_end`. The broker is `ADS_TEST_KAFKA_BOOTSTRAP` when set,
//! else a Tansu this starts on a free loopback port with memory storage (`tansu` on `PATH` or in
//! `~/.cargo/bin`; `./scripts/test.sh` installs it); with neither it says so and exits 0.
//! Knobs: `ADS_E2E_RECORDS` (default 200000), `ADS_E2E_ROUNDS` (3), `ADS_E2E_PARTITIONS` (4),
//! `ADS_E2E_SANDBOX` (another `ads-connector` binary to serve the sandbox API, to compare two
//! sandboxes on the same connector), `ADS_E2E_CONNECTORS` (`ads-connector` binaries separated by
//! `:`, each run in every round on the same records and sandbox, round r starting with the
//! r-th, each with a row of its own in the table: two builds side by side, e.g. a copy of the
//! binary before a change and after it;
//! default: this build's), `ADS_E2E_SNAPSHOTS` (K: the records are N/K calls of K
//! snapshots each, produced round by round as a day's backlog; default: one record in ten a later
//! snapshot), `ADS_E2E_FETCH_WAIT_MS` (`fetch.wait.max.ms` of the raw consumer and the
//! connector alike, default 10: Tansu 0.6 holds every fetch for this long even when records are
//! waiting, so at librdkafka's default of 500 ms both readers measure the broker's wait, about
//! 10,000 records/s, not themselves; a Kafka broker answers as soon as `fetch.min.bytes` is
//! there), `ADS_E2E_SANDBOX_RECORD` (set: the sandbox records every call, as in the tests; by
//! default it is a fast sink, `sandbox --sink`, which counts and answers each POST without
//! parsing it, as issue 16's baseline was measured: recording costs the sandbox about 5 ms of
//! CPU per POST, taken from the same two cores as the connector), `ADS_E2E_SCHEDULE=window` (the connector in `[schedule]` window mode, the window
//! open from the start: the backlog is indexed, then only the newest snapshot of each call is
//! POSTed; the sandbox records calls; the table adds the distinct calls, the call entries POSTed
//! and the records acked `superseded`). Every connector round reports its peak resident memory (`VmHWM`). Linux only:
//! CPU time and memory are read from `/proc`.
//!
//! Method. The records (seeded generator, one in ten a later snapshot of an earlier call, none
//! invalid) are produced once to a fresh CAD topic. Then the rounds alternate raw, connector, and
//! the table shows medians. Raw: a fresh consumer (librdkafka's defaults but
//! `fetch.wait.max.ms`) assigned every partition from the beginning; wall time from `assign` to
//! the N-th record, CPU time of this process over the same span (nothing else runs in it then).
//! Connector: a fresh consumer group and fresh ack
//! and dead-letter topics per round, the sandbox (`ads-connector sandbox --open`, no quota,
//! `--sink` unless told to record) in a
//! process of its own, started once; wall time from the connector's `/readyz` first answering 200
//! (partitions assigned) to the N-th ack or dead letter read back from Kafka, CPU time of the
//! connector process over the same span (start-up and shutdown excluded). The sandbox's CPU time
//! is measured the same way and reported per POST, not counted as the connector's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use ads_connector::kafka::produce_all;
use ads_devkit::generate::{to_json_line, Generator};

const CONNECTOR: &str = env!("CARGO_BIN_EXE_ads-connector");
/// Linux reports `/proc/<pid>/stat` times in USER_HZ, 100 per second on every architecture.
const TICKS_PER_S: f64 = 100.0;

fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    let Some(broker) = Broker::start()? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let work = tempfile::tempdir()?;
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let cad = format!("e2e-cad-{run_id}");

    eprintln!(
        "producing {} records to {cad} ({} partitions) on {}",
        settings.records, settings.partitions, broker.bootstrap
    );
    runtime.block_on(create_topics(
        &broker.bootstrap,
        &[(cad.as_str(), settings.partitions)],
    ))?;
    let (bytes, calls) = runtime.block_on(produce(
        &broker.bootstrap,
        &cad,
        settings.records,
        settings.snapshots,
    ))?;

    let sandbox = Sandbox::start(
        settings
            .sandbox_binary
            .as_deref()
            .unwrap_or(Path::new(CONNECTOR)),
        settings.record_calls,
    )?;
    let mut raw = Vec::new();
    let mut connector = vec![Vec::new(); settings.connectors.len()];
    let mut sandbox_use = vec![Vec::new(); settings.connectors.len()];
    for round in 1..=settings.rounds {
        let r = raw_round(&broker.bootstrap, &cad, &settings)?;
        eprintln!("round {round}: raw       {r}");
        raw.push(r);
        // Each round starts with the next build, so none always runs first (on a broker that
        // has taken fewer acks) or last.
        let n = settings.connectors.len();
        for i in (0..n).map(|k| (k + round as usize - 1) % n) {
            let binary = &settings.connectors[i];
            let names = Names::new(run_id, round, i);
            runtime.block_on(create_topics(
                &broker.bootstrap,
                &[(names.ack.as_str(), 1), (names.dlq.as_str(), 1)],
            ))?;
            let (c, s) = connector_round(
                binary,
                &broker.bootstrap,
                &cad,
                &names,
                &sandbox,
                work.path(),
                &settings,
            )?;
            eprintln!(
                "round {round}: connector {} {c}; sandbox {s}",
                binary.display()
            );
            connector[i].push(c);
            sandbox_use[i].push(s);
        }
    }
    for (i, binary) in settings.connectors.iter().enumerate() {
        print_table(
            &settings,
            binary,
            &broker.bootstrap,
            bytes,
            calls,
            &raw,
            &connector[i],
            &sandbox_use[i],
        );
    }
    Ok(())
}

struct Settings {
    records: u64,
    rounds: u32,
    partitions: i32,
    sandbox_binary: Option<PathBuf>,
    /// The connector binaries each round runs.
    connectors: Vec<PathBuf>,
    /// Snapshots per call (0: one record in ten a later snapshot).
    snapshots: u64,
    /// `[schedule]` window mode, open from the start.
    window: bool,
    /// `fetch.wait.max.ms` of the raw consumer and the connector alike.
    fetch_wait_ms: u32,
    /// The sandbox records every call (else it is a fast sink, `sandbox --sink`).
    record_calls: bool,
}

impl Settings {
    fn from_env() -> Result<Self> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
            match std::env::var(name) {
                Ok(text) => text
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={text} is not a positive number")),
                Err(_) => Ok(default),
            }
        }
        Ok(Self {
            records: var("ADS_E2E_RECORDS", 200_000)?,
            rounds: var("ADS_E2E_ROUNDS", 3)?,
            partitions: var("ADS_E2E_PARTITIONS", 4)?,
            sandbox_binary: std::env::var_os("ADS_E2E_SANDBOX").map(PathBuf::from),
            connectors: match std::env::var_os("ADS_E2E_CONNECTORS") {
                Some(list) => std::env::split_paths(&list).collect(),
                None => vec![PathBuf::from(CONNECTOR)],
            },
            snapshots: var("ADS_E2E_SNAPSHOTS", 0)?,
            fetch_wait_ms: var("ADS_E2E_FETCH_WAIT_MS", 10)?,
            record_calls: std::env::var("ADS_E2E_SCHEDULE").as_deref() == Ok("window")
                || std::env::var_os("ADS_E2E_SANDBOX_RECORD").is_some(),
            window: match std::env::var("ADS_E2E_SCHEDULE").as_deref() {
                Ok("window") => true,
                Ok("continuous") | Err(_) => false,
                Ok(other) => bail!("ADS_E2E_SCHEDULE={other}: `continuous` or `window`"),
            },
        })
    }
}

/// One timed read of the N records.
#[derive(Debug, Clone, Copy)]
struct Sample {
    records: u64,
    wall_s: f64,
    cpu_s: f64,
    /// Peak resident memory of the process, MiB (the connector's rounds only).
    peak_rss_mib: Option<f64>,
    /// Acks with outcome `superseded` (the connector's rounds only).
    superseded: u64,
}

impl Sample {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.wall_s
    }

    fn cpu_s_per_1k(&self) -> f64 {
        self.cpu_s / self.records as f64 * 1000.0
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} records/s, {:.4} CPU s per 1k records ({:.2} s wall, {:.2} s CPU)",
            self.records_per_s(),
            self.cpu_s_per_1k(),
            self.wall_s,
            self.cpu_s
        )
    }
}

/// What the sandbox spent on one connector round.
#[derive(Debug, Clone, Copy)]
struct SandboxUse {
    posts: u64,
    cpu_s: f64,
    /// Call entries the POSTs carried.
    calls: u64,
}

impl SandboxUse {
    fn ms_per_post(&self) -> f64 {
        self.cpu_s * 1000.0 / self.posts.max(1) as f64
    }
}

impl std::fmt::Display for SandboxUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} POSTs, {:.2} ms CPU per POST",
            self.posts,
            self.ms_per_post()
        )
    }
}

/// The Kafka broker: the one named by `ADS_TEST_KAFKA_BOOTSTRAP`, or a Tansu of our own.
struct Broker {
    bootstrap: String,
    tansu: Option<Child>,
}

impl Broker {
    fn start() -> Result<Option<Self>> {
        if let Ok(bootstrap) = std::env::var("ADS_TEST_KAFKA_BOOTSTRAP") {
            return Ok(Some(Self {
                bootstrap,
                tansu: None,
            }));
        }
        let Some(tansu) = find_tansu() else {
            eprintln!(
                "end_to_end: skipped: no Kafka broker. Set ADS_TEST_KAFKA_BOOTSTRAP=host:port, or \
                 install Tansu (`./scripts/test.sh` does, or `cargo install --locked tansu \
                 --version 0.6.0 --features dynostore,libsql`) and run again."
            );
            return Ok(None);
        };
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", tansu.display()))?;
        let broker = Self {
            bootstrap: format!("127.0.0.1:{port}"),
            tansu: Some(child),
        };
        wait_until(Duration::from_secs(20), "Tansu to listen", || {
            Ok(TcpStream::connect(("127.0.0.1", port)).is_ok())
        })?;
        Ok(Some(broker))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.tansu {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_tansu() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    let cargo_bin = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin/tansu"));
    on_path.chain(cargo_bin).find(|path| path.is_file())
}

/// The sandbox NHS API in a process of its own: open access, no quota.
struct Sandbox {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
    addr: String,
    base_url: String,
}

impl Sandbox {
    fn start(binary: &Path, record_calls: bool) -> Result<Self> {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary)
            .args([
                "sandbox",
                "--open",
                "--quota-per-minute",
                "0",
                "--listen",
                &addr,
            ])
            .args((!record_calls).then_some("--sink"))
            .env("ADS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        // It prints `sandbox API:   <url>` once it listens. Its stdout stays open (a closed
        // pipe would fail its next print).
        let mut stdout = BufReader::new(child.stdout.take().context("sandbox stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(base_url) = line.strip_prefix("sandbox API:") else {
            bail!("the sandbox printed {line:?} instead of its URL");
        };
        Ok(Self {
            base_url: base_url.trim().to_owned(),
            child,
            _stdout: stdout,
            addr,
        })
    }

    fn accepted_posts(&self) -> Result<u64> {
        self.stat("submissions_accepted")
    }

    fn calls_received(&self) -> Result<u64> {
        self.stat("calls_received")
    }

    fn stat(&self, name: &str) -> Result<u64> {
        let (_, body) = http_get(&self.addr, "/_sandbox/stats")?;
        let stats: serde_json::Value = serde_json::from_str(&body)?;
        stats[name]
            .as_u64()
            .with_context(|| format!("no {name} in the sandbox's stats"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The topics and group of one connector round.
struct Names {
    ack: String,
    dlq: String,
    group: String,
}

impl Names {
    fn new(run_id: &str, round: u32, connector: usize) -> Self {
        Self {
            ack: format!("e2e-ack-{run_id}-{round}-{connector}"),
            dlq: format!("e2e-dlq-{run_id}-{round}-{connector}"),
            group: format!("e2e-connector-{run_id}-{round}-{connector}"),
        }
    }
}

async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("cannot create {topic}: {code}"))?;
    }
    // A created topic can be missing from the broker's metadata for a moment (Tansu 0.6, and
    // Kafka until it propagates); the connector's start-up check would then stop it.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for (name, _) in topics {
        let name = name.to_string();
        wait_until(
            Duration::from_secs(30),
            "a new topic in the metadata",
            || {
                let metadata = reader.fetch_metadata(Some(&name), Duration::from_secs(5))?;
                Ok(metadata
                    .topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
            },
        )?;
    }
    Ok(())
}

/// Produces `n` generated records keyed by call id: with `snapshots` K > 0, N/K calls of K
/// snapshots each, round by round (every call's first snapshot, then every call's second, …);
/// else one in ten a later snapshot of an earlier call. Returns their payload bytes and the
/// distinct calls.
async fn produce(bootstrap: &str, topic: &str, n: u64, snapshots: u64) -> Result<(u64, u64)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()?;
    let mut generator = Generator::starting_at(16, chrono::Utc::now() - chrono::Duration::hours(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut calls = Vec::new();
    let mut bytes = 0;
    let mut left = n;
    while left > 0 {
        let chunk = left.min(10_000);
        left -= chunk;
        let done = n - left - chunk;
        let records: Vec<(Vec<u8>, Vec<u8>)> = (done..done + chunk)
            .map(|i| {
                let call = if let Some(per_round) = n.checked_div(snapshots) {
                    let per_round = per_round.max(1);
                    let c = (i % per_round) as usize;
                    if i < per_round {
                        calls.push(generator.next_call());
                    } else {
                        calls[c] = generator.next_update(&calls[c]);
                    }
                    calls[c].clone()
                } else if rng.gen::<f64>() < 0.1 && !calls.is_empty() {
                    let i = rng.gen_range(0..calls.len());
                    calls[i] = generator.next_update(&calls[i]);
                    calls[i].clone()
                } else {
                    let call = generator.next_call();
                    calls.push(call.clone());
                    call
                };
                let payload = to_json_line(&call).into_bytes();
                (call.call_id.as_bytes().to_vec(), payload)
            })
            .collect();
        bytes += records.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        let prepared = records.iter().map(|(k, v)| {
            FutureRecord::<[u8], [u8]>::to(topic)
                .key(k.as_slice())
                .payload(v.as_slice())
        });
        produce_all(&producer, prepared).await?;
    }
    Ok((bytes, calls.len() as u64))
}

/// A plain consumer reading the whole topic and doing nothing with the records.
fn raw_round(bootstrap: &str, topic: &str, settings: &Settings) -> Result<Sample> {
    let n = settings.records;
    let group = format!("e2e-raw-{}", uuid::Uuid::new_v4().simple());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", settings.fetch_wait_ms.to_string())
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..settings.partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    let deadline = Instant::now() + Duration::from_secs(120 + n / 1000);
    let cpu_before = cpu_seconds("self")?;
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let mut seen = 0;
    while seen < n {
        if Instant::now() > deadline {
            bail!("the raw consumer read {seen} of {n} records before its deadline");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            std::hint::black_box(message?.payload_len());
            seen += 1;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds("self")? - cpu_before;
    Ok(Sample {
        records: n,
        wall_s,
        cpu_s,
        peak_rss_mib: None,
        superseded: 0,
    })
}

/// `ads-connector run` with a fresh group and ack topic, until every record is acked or
/// dead-lettered.
fn connector_round(
    binary: &Path,
    bootstrap: &str,
    cad: &str,
    names: &Names,
    sandbox: &Sandbox,
    work: &Path,
    settings: &Settings,
) -> Result<(Sample, SandboxUse)> {
    let (n, window) = (settings.records, settings.window);
    let health = format!("127.0.0.1:{}", free_port()?);
    // Window mode: a UTC window open from an hour ago to three hours ahead.
    let schedule = if window {
        let now = chrono::Utc::now();
        let at = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
        format!(
            "[schedule]\nmode = \"window\"\nwindow = \"{}-{}\"\ntimezone = \"UTC\"",
            at(now - chrono::Duration::hours(1)),
            at(now + chrono::Duration::hours(3))
        )
    } else {
        String::new()
    };
    let config = format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        group_id = "{group}"
        topics = ["{cad}"]
        ack_topic = "{ack}"
        dead_letter_topic = "{dlq}"
        properties = {{ "fetch.wait.max.ms" = "{fetch_wait_ms}" }}
        [nhs_api]
        environment = "custom"
        base_url = "{base}"
        auth = "none"
        [nhs_api.request]
        max_in_flight = 4
        [rate_limit]
        requests_per_minute = 1000000
        burst = 100
        [batch]
        max_calls = 100
        linger_ms = 200
        [http]
        listen = "{health}"
        {schedule}
        "#,
        group = names.group,
        ack = names.ack,
        dlq = names.dlq,
        base = sandbox.base_url,
        fetch_wait_ms = settings.fetch_wait_ms,
    );
    let path = work.join(format!("{}.toml", names.group));
    std::fs::write(&path, config)?;
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(&path)
        .env("ADS_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id().to_string();
    let sandbox_pid = sandbox.child.id().to_string();

    // Reads the outcome topics back; created before the clock starts.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{}-reader", names.group))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut outcomes = TopicPartitionList::new();
    outcomes.add_partition_offset(&names.ack, 0, Offset::Beginning)?;
    outcomes.add_partition_offset(&names.dlq, 0, Offset::Beginning)?;
    reader.assign(&outcomes)?;

    let result = (|| {
        wait_until(Duration::from_secs(60), "the connector to be ready", || {
            if let Some(status) = child.try_wait()? {
                bail!("the connector exited with {status} before it was ready");
            }
            Ok(http_get(&health, "/readyz").is_ok_and(|(status, _)| status == 200))
        })?;
        let (cpu_before, sandbox_before) = (cpu_seconds(&pid)?, cpu_seconds(&sandbox_pid)?);
        let posts_before = sandbox.accepted_posts()?;
        let calls_before = sandbox.calls_received()?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120 + n / 100);
        let (mut seen, mut superseded) = (0, 0);
        while seen < n {
            if Instant::now() > deadline {
                bail!("{seen} of {n} records acked or dead-lettered before the deadline");
            }
            if let Some(message) = reader.poll(Duration::from_millis(100)) {
                let message = message?;
                let payload = message.payload().unwrap_or_default();
                if message.topic() == names.ack
                    && memchr_find(payload, br#""outcome":"superseded""#)
                {
                    superseded += 1;
                }
                seen += 1;
            }
        }
        let wall_s = started.elapsed().as_secs_f64();
        let cpu_s = cpu_seconds(&pid)? - cpu_before;
        let sandbox_cpu_s = cpu_seconds(&sandbox_pid)? - sandbox_before;
        let posts = sandbox.accepted_posts()? - posts_before;
        let calls = sandbox.calls_received()? - calls_before;
        Ok((
            Sample {
                records: n,
                wall_s,
                cpu_s,
                peak_rss_mib: Some(peak_rss_mib(&pid)?),
                superseded,
            },
            SandboxUse {
                posts,
                cpu_s: sandbox_cpu_s,
                calls,
            },
        ))
    })();
    stop(&mut child);
    result
}

/// SIGTERM (the connector drains and exits), SIGKILL after 30 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether `needle` occurs in `haystack`.
fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The peak resident memory of a process so far (`VmHWM` of `/proc/<pid>/status`), MiB.
fn peak_rss_mib(pid: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")?;
    Ok(kib / 1024.0)
}

/// User plus system CPU seconds of a process (`self` or a pid), all its threads.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (Linux only)"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> Result<f64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_S)
}

/// A plain HTTP/1.0 GET on loopback: the status and the body.
fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[allow(clippy::too_many_arguments)]
fn print_table(
    settings: &Settings,
    binary: &Path,
    bootstrap: &str,
    bytes: u64,
    calls: u64,
    raw: &[Sample],
    connector: &[Sample],
    sandbox: &[SandboxUse],
) {
    let rate = |s: &[Sample]| median(s.iter().map(Sample::records_per_s).collect());
    let cpu = |s: &[Sample]| median(s.iter().map(Sample::cpu_s_per_1k).collect());
    let (raw_rate, raw_cpu) = (rate(raw), cpu(raw));
    let (connector_rate, connector_cpu) = (rate(connector), cpu(connector));
    let sandbox_ms = median(sandbox.iter().map(SandboxUse::ms_per_post).collect());
    let sandbox_per_1k = median(
        sandbox
            .iter()
            .map(|s| s.cpu_s / settings.records as f64 * 1000.0)
            .collect(),
    );
    println!();
    println!("connector: {}", binary.display());
    println!(
        "end to end on one broker ({bootstrap}): {} records of {} bytes on average, {} partitions, \
         fetch.wait.max.ms {}, {} alternating rounds, medians",
        settings.records,
        bytes / settings.records.max(1),
        settings.partitions,
        settings.fetch_wait_ms,
        settings.rounds
    );
    println!(
        "{:<34} {:>12} {:>22}",
        "", "records/s", "CPU s per 1k records"
    );
    println!(
        "{:<34} {:>12.0} {:>22.4}",
        "raw librdkafka consumer, no work", raw_rate, raw_cpu
    );
    println!(
        "{:<34} {:>12.0} {:>22.4}",
        "ads-connector run → sandbox", connector_rate, connector_cpu
    );
    println!(
        "{:<34} {:>12.4} {:>22.1}",
        "ratio connector / raw",
        connector_rate / raw_rate,
        connector_cpu / raw_cpu
    );
    println!(
        "sandbox{} (its own process, not counted above): {sandbox_ms:.2} ms CPU per POST, \
         {sandbox_per_1k:.4} CPU s per 1k records",
        if settings.record_calls {
            ", recording calls"
        } else {
            " --sink"
        }
    );
    let peak = connector
        .iter()
        .filter_map(|s| s.peak_rss_mib)
        .fold(0.0, f64::max);
    println!("connector peak resident memory (VmHWM), the largest of the rounds: {peak:.0} MiB");
    let schedule = if settings.window {
        "window mode"
    } else {
        "continuous mode"
    };
    let posts = median(sandbox.iter().map(|s| s.posts as f64).collect());
    let posted = if settings.record_calls {
        let entries = median(sandbox.iter().map(|s| s.calls as f64).collect());
        format!("{entries:.0} call entries POSTed in {posts:.0} POSTs")
    } else {
        format!("{posts:.0} POSTs (`sandbox --sink` does not count their call entries)")
    };
    let superseded = median(connector.iter().map(|s| s.superseded as f64).collect());
    println!(
        "{schedule}: {calls} distinct calls, {posted}, {superseded:.0} records acked superseded \
         (medians)"
    );
}
