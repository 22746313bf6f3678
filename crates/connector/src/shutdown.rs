//! Shutdown: SIGTERM or Ctrl-C becomes one cancellation; a second signal exits at once.
//!
//! Only the source watches the cancellation token; the rest of the pipeline drains because its
//! input closes (see [`crate::app`]). The drain is bounded by `shutdown.drain_timeout_s` (one
//! deadline for the drain and any partition revocation after the signal), which
//! the configuration keeps below the consumer session timeout and which should be below the
//! pod's `terminationGracePeriodSeconds`.

use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGTERM or Ctrl-C; a second one exits the process with status 130.
pub async fn signal() {
    wait_for_signal().await;
    tracing::info!(message = "Shutdown requested; draining.");
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!(message = "Second signal; exiting without draining.");
        std::process::exit(130);
    });
}

/// A token cancelled by [`signal`].
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        signal().await;
        child.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
