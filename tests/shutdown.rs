//! Shutdown is bounded by `shutdown.drain_timeout_s`, whatever is in flight or being revoked.
//!
//! The `ads-connector run` binary on the mock cluster, with the sandbox holding every submission
//! far longer than the drain deadline (injected latency), gets SIGTERM while submissions are in
//! flight. The drain cannot finish, so the pipeline is cut off at the deadline; leaving the group
//! then revokes the partitions, whose records are still in flight. That revocation must not wait
//! its own `kafka.revoke_drain_timeout_ms` on top: one deadline, set by the signal, bounds the
//! drain, the revocation and the final commit together.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nhs_emulator::FaultProfile;

/// `shutdown.drain_timeout_s` of [`connector_toml`].
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// Allowed beyond the drain deadline: the process's own exit (closing the consumer and the
/// producer on the mock cluster, the runtime's shutdown) and the polling of this test.
const SLACK: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_drain_timeout_while_submissions_and_a_revocation_are_pending() {
    let names = Names::new("shutdown");
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    // Every submission is held a minute: none can finish within the drain deadline.
    let sandbox = auth_sandbox_with(|cfg| {
        cfg.faults = FaultProfile::parse("latency=60s").unwrap();
    })
    .await;
    let config = config_toml(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 5\nlinger_ms = 20",
        "[nhs_api.request]\nmax_in_flight = 4\ntimeout_ms = 120000",
    );
    let path = write_file(sandbox.dir.path(), "connector.toml", &config);
    let mut child = Running(spawn_run(&path, "info"));
    produce_calls(&bootstrap, &names.cad, 100, 7, 0).await;

    // Submissions in flight: the sandbox has recorded them (before their delay) and holds them.
    // Any one is enough: none can finish within the drain deadline. (Waiting for 10 calls was
    // flaky: at most `max_in_flight` = 4 submissions are in flight, and with `linger_ms` = 20
    // on a loaded machine each may carry only one or two calls.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox.handle.stats().calls_received == 0 {
        assert!(Instant::now() < deadline, "no submission reached the API");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    assert!(sigterm(&child).success());
    let status = wait_for_exit(&mut child, Duration::from_secs(60)).await;
    let took = signalled.elapsed();
    eprintln!(
        "SIGTERM to exit: {:.2} s (drain_timeout_s = {}, revoke_drain_timeout_ms = 5000)",
        took.as_secs_f64(),
        DRAIN_TIMEOUT.as_secs()
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        took <= DRAIN_TIMEOUT + SLACK,
        "shutdown took {took:?}, more than the drain timeout {DRAIN_TIMEOUT:?} plus {SLACK:?}"
    );
}
