//! The connector under test: the pipeline in-process, or the `ads-connector` binary.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

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

/// Sends SIGTERM to `child` (the connector drains, commits and exits); the status of `kill`.
pub fn sigterm(child: &Child) -> ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
}
