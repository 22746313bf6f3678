//! # nhs-emulator
//!
//! A faithful local stand-in for NHS England's API Platform in front of the Ambulance Data
//! Submission FHIR API: the shared `/oauth2/token` endpoint ([`token`]) and the
//! `/ambulance-data-submission` proxy ([`api`]), with the paths, check order, status codes and
//! exact error bodies of `docs/nhs-api.md` §1.3–1.8.
//!
//! Input: registered apps (API key → JWKS file), limits and a [`FaultProfile`] in
//! [`SandboxConfig`]. Output: an HTTP server on the given listener, plus [`SandboxHandle`] to read
//! what it received ([`SandboxStats`], [`ReceivedCall`]s in arrival order), switch the fault
//! profile, and stop it. The same data is served read-only at `GET /_sandbox/stats` and
//! `GET /_sandbox/calls`; `GET`/`PUT /_sandbox/faults` read or replace the fault profile.
//!
//! Faults ([`faults`]: error statuses, latency, connection resets, 429 storms, token endpoint
//! outages) are injected only when a profile asks; the default profile injects none. A reset
//! closes the TCP connection with an RST and no response ([`connection`]). Faulted requests are
//! never recorded as received calls. `docs/sandbox.md` documents all of it for users.
//!
//! DPS mode ([`dps`], off by default, [`SandboxHandle::set_dps`]) rejects accepted calls naming an
//! unregistered ODS code and sends one DPS error notification per call over MESH; a minimal MESH
//! API ([`mesh_box`], `mesh-sandbox`'s test mailboxes and shared key) is served at
//! `/messageexchange` on the same port, so the loop needs nothing installed (`docs/dps-errors.md`).
//!
//! Sending MESH messages (what DPS does, and the connector never does) lives here too:
//! [`mesh_send::MeshSend`] on the library's client, and the mailbox's header check
//! ([`mesh_box::verify`]). The connector library never links this crate.
//!
//! State is in memory only (lost on restart); bodies are never logged or stored, only the ids
//! and hashes in [`ReceivedCall`]. Dropping the handle stops the server too.

mod api;
mod connection;
mod dps;
mod faults;
mod jwt;
pub mod mesh_box;
pub mod mesh_send;
mod quota;
mod record;
mod state;
mod token;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

pub use dps::{DpsConfig, DpsStats};
pub use faults::{FaultProfile, FaultWindow, LatencyRange};
pub use record::ReceivedCall;
pub use state::SandboxStats;

use connection::{Connection, ResettableListener};
use state::{Settings, Shared};

/// Where the proxy lives under the public URL.
const API_BASE_PATH: &str = "/ambulance-data-submission";
/// Where the token endpoint lives under the public URL.
const TOKEN_PATH: &str = "/oauth2/token";
/// Largest accepted `$process-message` body. The real limit is not documented.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// How long [`SandboxHandle::shutdown`] waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Registered applications.
    pub apps: Vec<SandboxApp>,
    /// Like NHS's public sandbox: no token needed on `$process-message` (quota still applies,
    /// one bucket for the whole process).
    pub open_access: bool,
    /// `$process-message` requests allowed per app per minute (0 = unlimited).
    pub quota_per_minute: u32,
    /// `/oauth2/token` requests allowed per app per minute (0 = unlimited).
    pub token_quota_per_minute: u32,
    /// Base URL clients use; the JWT `aud` must be `{public_url}/oauth2/token`. Default
    /// `http://{bound address}` (an unspecified bind address becomes loopback).
    pub public_url: Option<Url>,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime_secs: u64,
    /// Faults to inject; the default injects none. Switch later with [`SandboxHandle::set_faults`].
    pub faults: FaultProfile,
    /// Record every accepted call (`/_sandbox/calls`, `calls_received`, the DPS reports). Off,
    /// an accepted submission is counted (`submissions_accepted`, `bytes_received`) and answered
    /// without its body being parsed: a fast sink, so a throughput benchmark on a shared machine
    /// measures the client, not the sandbox's own work (issue 16's baseline was measured
    /// against such a sink).
    pub record_calls: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            open_access: false,
            quota_per_minute: 1800,
            token_quota_per_minute: 300,
            public_url: None,
            token_lifetime_secs: 599,
            faults: FaultProfile::default(),
            record_calls: true,
        }
    }
}

/// One registered application: its API key and where its JWKS (public keys) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxApp {
    /// The API key, used as `iss`/`sub` of the client assertion.
    pub api_key: String,
    /// The JWKS file, re-read on every token request; `None` = no public key registered.
    pub jwks_path: Option<PathBuf>,
}

/// A `--app` value that is not `API_KEY=JWKS_FILE` or `API_KEY=`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SandboxAppParseError {
    /// No `=` at all.
    #[error("app `{0}` must be API_KEY=JWKS_FILE (or API_KEY= for an app without keys)")]
    MissingEquals(String),
    /// Nothing before the `=`.
    #[error("app `{0}` has an empty API key, e.g. `my-api-key=keys/jwks.json`")]
    EmptyApiKey(String),
}

impl SandboxApp {
    /// Parses `KEY=path`, or `KEY=` for an app with no JWKS registered.
    pub fn parse(s: &str) -> Result<Self, SandboxAppParseError> {
        let (api_key, path) = s
            .split_once('=')
            .ok_or_else(|| SandboxAppParseError::MissingEquals(s.to_owned()))?;
        if api_key.is_empty() {
            return Err(SandboxAppParseError::EmptyApiKey(s.to_owned()));
        }
        Ok(Self {
            api_key: api_key.to_owned(),
            jwks_path: (!path.is_empty()).then(|| PathBuf::from(path)),
        })
    }
}

impl FromStr for SandboxApp {
    type Err = SandboxAppParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A running sandbox. Dropping it stops the server; [`SandboxHandle::shutdown`] also waits.
pub struct SandboxHandle {
    local_addr: SocketAddr,
    api_base_url: Url,
    token_url: Url,
    shared: Arc<Shared>,
    dps: Arc<dps::DpsSlot>,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    _stop_on_drop: DropGuard,
}

impl std::fmt::Debug for SandboxHandle {
    // Not derived: the shared state holds every recorded call.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("local_addr", &self.local_addr)
            .field("api_base_url", &self.api_base_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `{public}/ambulance-data-submission` (no trailing slash).
    pub fn api_base_url(&self) -> Url {
        self.api_base_url.clone()
    }

    /// `{public}/oauth2/token`: the token endpoint, and the `aud` assertions must carry.
    pub fn token_url(&self) -> Url {
        self.token_url.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SandboxStats {
        self.shared.stats()
    }

    /// Every call bundle accepted so far, in arrival order.
    pub fn received_calls(&self) -> Vec<ReceivedCall> {
        self.shared.calls()
    }

    /// Every access token issued in the last day, expired ones included (tests look for them
    /// where they must never appear, such as the connector's logs).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.issued_tokens()
    }

    /// Puts `faults` in force from the next request on: the dice are reseeded and windows (storms,
    /// outages) restart from now. Requests already past their fault decision are unaffected.
    pub fn set_faults(&self, faults: FaultProfile) {
        tracing::info!(message = "Sandbox fault profile set.", faults = %faults);
        self.shared.faults.set(faults);
    }

    /// The fault profile in force.
    pub fn faults(&self) -> FaultProfile {
        self.shared.faults.profile()
    }

    /// The embedded MESH emulation's base URL ([`mesh_box`]: mailboxes `X26ABC1`–`3`, password
    /// `password`, shared key `TestKey`).
    pub fn mesh_url(&self) -> Url {
        let base = self.api_base_url.as_str();
        let root = base.trim_end_matches(API_BASE_PATH);
        Url::parse(root).expect("the public URL is a valid URL")
    }

    /// Puts DPS mode in force (`None` switches it off): see [`DpsConfig`].
    pub fn set_dps(&self, config: Option<DpsConfig>) -> Result<(), ads_connector::mesh::MeshError> {
        self.dps.set(config)
    }

    /// What DPS mode did so far.
    pub fn dps_stats(&self) -> DpsStats {
        self.dps.stats()
    }

    /// [`Self::dps_stats`] as a function that outlives a borrow of the handle.
    pub fn dps_stats_reader(&self) -> impl Fn() -> DpsStats + Send + Sync + 'static {
        let dps = self.dps.clone();
        move || dps.stats()
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a few seconds), and
    /// waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(message = "Sandbox server failed.", %error),
            Ok(Err(error)) => tracing::warn!(message = "Sandbox server task failed.", %error),
            Err(_) => self.server.abort(),
        }
        tracing::info!(message = "Sandbox stopped.", addr = %self.local_addr);
    }
}

/// Starts serving on `listener` in a background task and returns at once.
pub async fn start(listener: TcpListener, cfg: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let local_addr = listener.local_addr()?;
    let public = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(local_addr));
    let api_base_url = under(&public, API_BASE_PATH)?;
    let token_url = under(&public, TOKEN_PATH)?;
    let apps: HashMap<_, _> = cfg
        .apps
        .iter()
        .map(|app| (app.api_key.clone(), app.jwks_path.clone()))
        .collect();
    let settings = Settings {
        apps,
        open_access: cfg.open_access,
        record_calls: cfg.record_calls,
        token_url: token_url.clone(),
        token_lifetime: Duration::from_secs(cfg.token_lifetime_secs),
    };
    let shared = Arc::new(Shared::new(
        settings,
        cfg.quota_per_minute,
        cfg.token_quota_per_minute,
        cfg.faults.clone(),
    ));
    let stop = CancellationToken::new();
    let dps = Arc::new(dps::DpsSlot::default());
    let app = routes(shared.clone())
        .merge(mesh_box::routes())
        .layer(axum::Extension(dps.clone()))
        .into_make_service_with_connect_info::<Connection>();
    let server = axum::serve(ResettableListener(listener), app)
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let server = tokio::spawn(async move { server.await });
    tracing::info!(
        message = "Sandbox listening.",
        addr = %local_addr,
        apps = cfg.apps.len(),
        open_access = cfg.open_access,
        faults = %cfg.faults,
    );
    Ok(SandboxHandle {
        local_addr,
        api_base_url,
        token_url,
        shared,
        dps,
        _stop_on_drop: stop.clone().drop_guard(),
        stop,
        server,
    })
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            TOKEN_PATH,
            post(token::issue).fallback(token::method_not_allowed),
        )
        .route(
            "/ambulance-data-submission/$process-message",
            post(api::process_message)
                .fallback(api::process_message_wrong_method)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            "/ambulance-data-submission/_ping",
            get(api::ping).fallback(api::not_found),
        )
        .route("/_sandbox/stats", get(api::stats))
        .route("/_sandbox/calls", get(api::calls))
        .route("/_sandbox/faults", get(api::faults).put(api::set_faults))
        .fallback(api::not_found)
        .with_state(shared)
}

fn default_public_url(addr: SocketAddr) -> Url {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}", SocketAddr::new(ip, addr.port()));
    Url::parse(&url).expect("a socket address makes a valid http URL")
}

/// `{base}{path}`, keeping any path prefix `base` has.
fn under(base: &Url, path: &str) -> std::io::Result<Url> {
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_app_with_and_without_jwks() {
        let app = SandboxApp::parse("key=keys/jwks.json").unwrap();
        assert_eq!(app.api_key, "key");
        assert_eq!(app.jwks_path, Some(PathBuf::from("keys/jwks.json")));
        assert_eq!(SandboxApp::parse("key=").unwrap().jwks_path, None);
        assert!(SandboxApp::parse("key").is_err());
        assert!(SandboxApp::parse("=x").is_err());
    }

    #[test]
    fn urls_keep_the_public_prefix_and_default_to_loopback() {
        let base = Url::parse("https://example.test/nhs/").unwrap();
        assert_eq!(
            under(&base, TOKEN_PATH).unwrap().as_str(),
            "https://example.test/nhs/oauth2/token"
        );
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(default_public_url(any).as_str(), "http://127.0.0.1:8080/");
    }
}
