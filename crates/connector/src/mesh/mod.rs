//! MESH: the asynchronous half of the API contract. NHS England's Data Processing Service (DPS)
//! validates submissions after the API has accepted them and sends content errors to the trust's
//! MESH mailbox; this module retrieves them and publishes them, correlated to calls, to Kafka.
//!
//! ```text
//!  ack topic ──► correlation::AckReader ──► Correlator (api_id → calls, source offsets)
//!                                                │
//!  MESH inbox ──► client ──► poller ── parse ────┴──► errors topic (ads.dps-error.v1)
//!       ▲                       │                           │ written (acks=all)
//!       └──── acknowledge ◄─────┴───────────────────────────┘ then acknowledged in MESH
//! ```
//!
//! | module | role |
//! |---|---|
//! | [`auth`] | the `NHSMESH` HMAC-SHA256 authorization header |
//! | [`client`] | the MESH API client: handshake, inbox list/count, retrieve (chunked), acknowledge, send; `client/` holds [`MeshError`] and the chunk and gzip decoding |
//! | [`config`] | the `[mesh]` section |
//! | [`notification`] | the notification format (`docs/dps-errors.md`), parsers, the `ads.dps-error.v1` record |
//! | [`correlation`] | the bounded submission → calls map, rebuilt from the ack topic at start |
//! | [`lease`] | one poller across replicas: a Kafka consumer group on the errors topic |
//! | [`poller`] | the task: list, retrieve, parse, correlate, publish, then acknowledge |
//! | [`demo`] | the DPS loop of `ads-connector demo --dps-errors` |
//!
//! [`start`] wires them for [`crate::app`]. Message bodies (they may carry patient data) are
//! never logged: only ids, sizes and counts.

pub mod auth;
pub mod client;
pub mod correlation;
pub mod lease;
pub mod notification;
pub mod poller;

use std::sync::Arc;

use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

pub use crate::config::mesh::{MeshConfig, RawMesh, SecretFileError};
pub use client::{MeshClient, MeshClientConfig, MeshError, MeshMessage};
pub use correlation::{AckReader, Correlator};
pub use lease::{Lease, LeaseKeeper};
pub use poller::{DpsPoller, PollerStats};

use crate::metrics::Metrics;

/// The poller could not start.
#[derive(Debug, thiserror::Error)]
pub enum MeshStartError {
    /// A secret file is missing or unreadable.
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    /// The client could not be built (bad PEM).
    #[error(transparent)]
    Client(#[from] MeshError),
}

/// Starts the ack-topic reader and the lease keeper (until `stop`) and returns the poller, ready
/// to [`DpsPoller::run`], which waits for both when it stops. `kafka` carries the pipeline's
/// client properties; `group_id` is the pipeline's consumer group (the lease group is
/// `<group_id>.mesh-poller`).
pub fn start(
    config: &MeshConfig,
    kafka: ClientConfig,
    group_id: &str,
    ack_topic: &str,
    producer: FutureProducer,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<DpsPoller, MeshStartError> {
    let client = MeshClient::new(&MeshClientConfig::from_config(config)?)?;
    let correlator = Arc::new(Correlator::new(config.correlation_max_calls));
    let reader = AckReader {
        client: kafka.clone(),
        topic: ack_topic.to_owned(),
        lookback: config.correlation_lookback,
        correlator: correlator.clone(),
    };
    let lease = Lease::vacant();
    let keeper = LeaseKeeper {
        client: kafka,
        group_id: format!("{group_id}.mesh-poller"),
        topic: config.errors_topic.clone(),
        lease: lease.clone(),
        metrics: metrics.clone(),
    };
    let reader = tokio::spawn(reader.run(stop.clone()));
    let keeper = tokio::spawn(keeper.run(stop));
    Ok(
        DpsPoller::new(client, config.clone(), producer, correlator, metrics)
            .with_lease(lease)
            .with_task(reader)
            .with_task(keeper),
    )
}
