//! Chaos: the fault timeline of `demo --faults chaos`.
//!
//! While records flow, on a fixed timeline: a second connector joins the consumer group (a
//! cooperative rebalance moves partitions to it) and later leaves (they move back); one broker of
//! the mock cluster goes down and comes back; the token endpoint fails for a while (tokens are
//! short-lived under chaos, so a refresh falls into the outage). The sandbox's `chaos` fault
//! profile (5xx, 429 storms, resets, latency) runs underneath the whole time. The demo then
//! checks, from the ack and dead-letter topics and from what the sandbox received, that nothing
//! was lost and no older snapshot overtook a newer one.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use ads_connector::app::Pipeline;
use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use nhs_emulator::{FaultProfile, SandboxHandle};

/// The second connector that joins and leaves.
pub struct Second {
    /// Its configuration (same group and topics, its own metrics port).
    pub config: Config,
    /// Its metrics.
    pub metrics: Metrics,
}

/// What the timeline did.
#[derive(Debug, Default)]
pub struct ChaosReport {
    /// Records the second connector consumed.
    pub consumed: u64,
    /// The events, in order, with their time from the start.
    pub events: Vec<String>,
}

impl ChaosReport {
    /// One line for the summary.
    pub fn describe(&self) -> String {
        self.events.join("; ")
    }
}

/// Runs the timeline; see the module header.
pub async fn timeline(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    sandbox: &SandboxHandle,
    second: Second,
) -> Result<ChaosReport, ads_connector::app::AppError> {
    let start = Instant::now();
    let at = |s: f64| start + Duration::from_secs_f64(s);
    let mut report = ChaosReport::default();
    let event = |report: &mut ChaosReport, what: &str| {
        report
            .events
            .push(format!("{:.1}s {what}", start.elapsed().as_secs_f64()));
    };

    sleep_until(at(1.5)).await;
    let cancel = CancellationToken::new();
    let joined = Pipeline::start(second.config, second.metrics.clone(), cancel.clone()).await?;
    event(&mut report, "second consumer joined");

    sleep_until(at(3.0)).await;
    let _ = cluster.broker_down(2);
    event(&mut report, "broker 2 down");

    sleep_until(at(4.0)).await;
    let base = sandbox.faults();
    // API faults go on; every token request fails.
    let outage = FaultProfile::parse("500=3%,503=3%,reset=3%,latency=20..200ms,token_outage=100%")
        .expect("a valid fault spec");
    sandbox.set_faults(outage);
    event(&mut report, "token endpoint failing");

    sleep_until(at(5.5)).await;
    let _ = cluster.broker_up(2);
    event(&mut report, "broker 2 up");

    sleep_until(at(7.0)).await;
    cancel.cancel();
    joined.finish().await?;
    report.consumed = second.metrics.records_consumed();
    event(&mut report, "second consumer left");

    sleep_until(at(9.0)).await;
    sandbox.set_faults(base);
    event(&mut report, "token endpoint back");
    Ok(report)
}
