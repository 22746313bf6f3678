//! Health: the operations HTTP port (`/metrics`, `/livez`, `/readyz`), served with axum.
//!
//! `/livez` answers 200 while the runtime's heartbeat (ticked every second by a task of
//! [`crate::app`]) is younger than 30 s: a wedged process gets restarted, a down dependency does
//! not fail liveness. `/readyz` answers 200 only when partitions are assigned, a token is held
//! (always held in open-access mode) and the API does not look misconfigured ([`ApiHealth`]),
//! 503 otherwise, with a JSON body saying which. `/metrics` is the Prometheus text format.
//! Nothing here exposes patient data.
//!
//! Layout: `health/api.rs` holds [`ApiHealth`], the misconfiguration state the submitter reports
//! to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::TokenProvider;
use crate::metrics::Metrics;
use crate::offsets::Offsets;

mod api;

pub use api::{hint, shown_url, ApiHealth, Misconfiguration, Resumed, PROBE_INTERVAL};

/// What the endpoints read.
#[derive(Clone)]
pub struct Health {
    /// Metrics to encode.
    pub metrics: Metrics,
    /// Assigned partitions.
    pub offsets: Offsets,
    /// Token state.
    pub tokens: Arc<TokenProvider>,
    /// Unix seconds of the last heartbeat.
    pub heartbeat: Arc<AtomicI64>,
    /// Whether the API looks misconfigured (the submitter reports to it).
    pub api: ApiHealth,
}

impl Health {
    /// Partitions are assigned, a token is held and the API does not look misconfigured.
    pub fn is_ready(&self) -> bool {
        self.offsets.assigned() > 0 && self.tokens.is_ready() && !self.api.is_misconfigured()
    }

    /// Records that the runtime is alive, and publishes readiness as a metric.
    pub fn beat(&self) {
        self.heartbeat
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        self.metrics.readiness(self.is_ready());
    }
}

/// The router (tests drive it in-process).
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// Binds `addr` and serves until `cancel` fires; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let app = router(health);
        let shutdown = async move { cancel.cancelled().await };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(message = "Health server failed.", %error);
        }
    });
    Ok(bound)
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.metrics.encode(),
    )
}

async fn livez(State(h): State<Health>) -> impl IntoResponse {
    let age = chrono::Utc::now().timestamp() - h.heartbeat.load(Ordering::Relaxed);
    if age < 30 {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "heartbeat stale")
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    let partitions = h.offsets.assigned();
    let token = h.tokens.is_ready();
    let status = if h.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let misconfigured = h.api.current().map(|m| m.fault.as_str());
    let body = serde_json::json!({
        "partitions_assigned": partitions,
        "token_held": token,
        "api_misconfigured": misconfigured,
    });
    (status, axum::Json(body))
}
