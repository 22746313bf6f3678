//! The one harness of the integration tests. Every test binary that needs a helper declares
//! `mod common;` and takes it from here, so a configuration, a key, a sandbox or a broker is
//! made one way everywhere:
//!
//! - [`env`]: the external resources (`build.rs`'s environment variables) and repository paths;
//! - [`batch`]: submissions built by hand for the submitter's tests;
//! - [`config`]: connector configurations (TOML) and files for them;
//! - [`keys`]: RSA key pairs, JWKS files and signed client assertions;
//! - [`sandbox`]: the NHS API sandbox on a loopback port, with or without signed-JWT apps;
//! - [`kafka`]: brokers (the mock cluster or a real one), topics, producing, reading back,
//!   committed offsets;
//! - [`outcomes`]: the connector's delivery invariants over what was produced and what came out;
//! - [`connector`]: the pipeline in-process and the `ads-connector` binary;
//! - [`mesh`]: MESH client configurations and `[mesh]` sections;
//! - [`hostile`]: the hostile records of `tests/fixtures/hostile/` and their dead-letter kinds;
//! - [`otlp`]: a local OTLP/HTTP traces endpoint.
//!
//! Everything but `otlp` is re-exported here, so `use common::*;` brings the whole kit.
// Each test binary compiles all of this and uses only part of it.
#![allow(dead_code)]

pub mod batch;
pub mod config;
pub mod connector;
pub mod env;
pub mod hostile;
pub mod kafka;
pub mod keys;
pub mod mesh;
pub mod otlp;
pub mod outcomes;
pub mod sandbox;

// A binary that uses none of a module's helpers would otherwise warn about its re-export.
#[allow(unused_imports)]
pub use self::{
    batch::*, config::*, connector::*, env::*, hostile::*, kafka::*, keys::*, mesh::*, outcomes::*,
    sandbox::*,
};
