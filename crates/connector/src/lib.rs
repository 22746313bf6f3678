//! # ads-connector
//!
//! Moves ambulance Computer Aided Despatch (CAD) call snapshots from Kafka to NHS England's
//! Ambulance Data Submission FHIR API, with an acknowledgement or a dead letter for every
//! consumed record and offsets committed only behind them.
//!
//! # Layout
//!
//! The pipeline, in the order data flows (wired in [`app`]):
//!
//! ```text
//!  Kafka CAD topics ─► source ─► transform ─► batcher ─► submitter ─► acker ─► offsets
//!                        │          │ invalid               │ rejected            (contiguous
//!                        │          └───────► dead_letter ◄─┘                      watermark)
//!                        └─ rebalance: drain and commit revoked partitions, then forget them
//!  MESH inbox ─► mesh poller ─► errors topic   (DPS notifications, correlated through the acks)
//! ```
//!
//! | module | role |
//! |---|---|
//! | [`app`] | wires the stages into the pipeline and runs it until shutdown |
//! | [`config`] | TOML file + `ADS__SECTION__KEY` overrides → validated [`config::Config`]; one file per section |
//! | [`source`] | Kafka consumer group; turns records into [`source::Envelope`]s; registers offsets |
//! | [`cad`] | the `cad.call.v1` input contract (call, response, contact, clinical) and its decoder |
//! | [`transform`] | the stage task: decode, map and serialize each record, or dead-letter it |
//! | [`mapping`] | one CAD call → one deterministic ADS FHIR call Bundle, locally validated |
//! | [`batcher`] | groups call bundles into submissions by count, bytes and linger; coalesces snapshots |
//! | [`submitter`] | POSTs submissions through the [`rate_limit`] and [`auth`] token; retry classification |
//! | [`auth`] | signed-JWT (RS512) client assertion and the one shared, refreshed access token |
//! | [`rate_limit`] | the process-wide GCRA limiter; a 429 pauses every request for `Retry-After` |
//! | [`acker`] | publishes one `ads.ack.v1` record per consumed record, then marks it done |
//! | [`dead_letter`] | publishes the original record with reason headers, then marks it done |
//! | [`offsets`] | per-partition contiguous watermark of done records; what may be committed |
//! | [`mesh`] | MESH client and poller: DPS error notifications, correlated through the ack topic, to an errors topic |
//! | [`transactions`] | transactional mode: acks, dead letters and offsets in one Kafka transaction |
//! | [`metrics`], [`lag`], [`health`], [`telemetry`], [`shutdown`] | operations |
//! | [`keygen`], [`validate`] | the signing key pair and JWKS for onboarding, the `validate` command |
//!
//! Every stage file opens with its contract: input, output, ordering, ack guarantee, failures.
//! A module that outgrew one file keeps its root file (`foo.rs`) and puts its parts in `foo/`:
//! `config/` (one file per section), `cad/` (model sections, decoder, rules, time formats),
//! `cad/decode/` (error type, array-shape pass), `cad/rules/` (format predicates), `mapping/`
//! (entry builders, options, error, codes), `mapping/check/` (resource rules, code systems,
//! typed times), `metrics/` (label enums, MESH families), `generate/` (a call's events,
//! patients, reference data), `demo/` (produce, read-back, summary), `mesh/client/` (error
//! type, chunk and gzip decoding) and `sandbox/faults/` (spec grammar, injector); [`mesh`] and
//! [`sandbox`] are `mod.rs` folders.

pub mod acker;
pub mod app;
pub mod auth;
pub mod batcher;
pub mod cad;
pub mod config;
pub mod dead_letter;
pub mod health;
pub mod kafka;
pub mod keygen;
pub mod lag;
pub mod mapping;
pub mod mesh;
pub mod metrics;
pub mod offsets;
pub mod rate_limit;
pub mod shutdown;
pub mod source;
pub mod submitter;
pub mod telemetry;
pub mod transactions;
pub mod transform;
pub mod validate;
