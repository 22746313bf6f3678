//! The connector under test: the pipeline in-process, or the `ads-connector` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// Starts the pipeline on `config`, counting into `metrics`; cancel the token to stop it.
pub async fn start_pipeline(config: Config, metrics: Metrics) -> (Pipeline, CancellationToken) {
    let cancel = CancellationToken::new();
    let pipeline = Pipeline::start(config, metrics, cancel.clone())
        .await
        .unwrap();
    (pipeline, cancel)
}

/// The `ads-connector` binary of this build, as a command to add arguments to.
pub fn connector_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ads-connector"))
}

/// `ads-connector run --config config` with `ADS_LOG=log`, its standard output discarded.
pub fn spawn_run(config: &Path, log: &str) -> Child {
    connector_command()
        .args(["run", "--config"])
        .arg(config)
        .env("ADS_LOG", log)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The connector's log formats (`ADS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (no `ADS_LOG_FORMAT`).
    Text,
    /// JSON lines (`ADS_LOG_FORMAT=json`).
    Json,
}

impl LogFormat {
    /// Both formats.
    pub const ALL: [Self; 2] = [Self::Text, Self::Json];

    /// `text` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// The directory the connector's logs are written to by [`spawn_run_logged`] and
/// [`run_logged`]: `connector-logs` under cargo's `CARGO_TARGET_TMPDIR`, kept after the run.
pub fn connector_log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("connector-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `command` at `ADS_LOG=level` in `format`, its standard output and error both written to
/// `log` (created afresh).
fn logged(mut command: Command, format: LogFormat, level: &str, log: &Path) -> Command {
    // A new file, not the old one truncated: a connector a previous run left behind (killed
    // test) keeps writing to the old one, never into this run's log.
    let _ = std::fs::remove_file(log);
    let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    command
        .env("ADS_LOG", level)
        .env_remove("RUST_LOG")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    match format {
        LogFormat::Text => command.env_remove("ADS_LOG_FORMAT"),
        LogFormat::Json => command.env("ADS_LOG_FORMAT", "json"),
    };
    command
}

/// A connector process killed when this is dropped before it exits, so a test that fails
/// (panics) leaves no connector running.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// `ads-connector run --config config` at `ADS_LOG=trace` in `format`, every line it writes (to
/// standard output or error) in the file `log`.
pub fn spawn_run_logged(config: &Path, format: LogFormat, log: &Path) -> Running {
    spawn_run_logged_at(config, format, "trace", log)
}

/// [`spawn_run_logged`] at `ADS_LOG=level` (`info` for long runs, whose trace would be huge).
pub fn spawn_run_logged_at(config: &Path, format: LogFormat, level: &str, log: &Path) -> Running {
    let mut command = connector_command();
    command.args(["run", "--config"]).arg(config);
    Running(logged(command, format, level, log).spawn().unwrap())
}

/// The address of the metrics endpoint (`[http] listen`, port 0 bound by the connector), read
/// from the "Pipeline started." line of the JSON log `log` (at `info` or finer); waits at most
/// `timeout` for it.
pub async fn metrics_address(log: &Path, timeout: Duration) -> std::net::SocketAddr {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text.lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = &v["fields"];
            (fields["message"] == "Pipeline started.")
                .then(|| fields["metrics"].as_str().map(str::to_owned))?
        });
        if let Some(addr) = found {
            return addr.parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no \"Pipeline started.\" line in {} within {timeout:?}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Prometheus text of the metrics endpoint at `addr`.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series `name_and_labels` (as written, e.g. `x_total{kind="a"}`) in the
/// Prometheus text `text`.
pub fn series_in(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `ads-connector` with `args` at `ADS_LOG=trace` in `format`, to completion, every line it
/// writes in the file `log`; its exit status.
pub fn run_logged(args: &[&std::ffi::OsStr], format: LogFormat, log: &Path) -> ExitStatus {
    let mut command = connector_command();
    command.args(args);
    logged(command, format, "trace", log).status().unwrap()
}

/// Waits for `child` to exit, at most `timeout` (then kills it and panics).
pub async fn wait_for_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the connector did not exit within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends SIGTERM to `child` (the connector drains, commits and exits); the status of `kill`.
pub fn sigterm(child: &Child) -> ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
}

/// Starts the pipeline on `config` with its submission window timed by `clock` (a
/// `ManualClock` the test moves); cancel the token to stop it.
pub async fn start_pipeline_at(
    config: Config,
    metrics: Metrics,
    clock: ads_connector::schedule::ManualClock,
) -> (Pipeline, CancellationToken) {
    let cancel = CancellationToken::new();
    let pipeline =
        Pipeline::start_with_clock(config, metrics, cancel.clone(), std::sync::Arc::new(clock))
            .await
            .unwrap();
    (pipeline, cancel)
}
