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
//! | [`window`] | `[schedule]` window mode: opens and closes the source by NHS England's daily window, indexes the backlog, acks older snapshots `superseded` (the coalescer sits between transform and batcher) |
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
//! | [`kafka`] | every librdkafka client setting in one place; the durable produce helper |
//! | [`schedule`] | NHS England's submission window in UK time (IANA zones), an injectable clock, and the newest-snapshot index of a backlog |
//!
//! Imports run one way, domain ← base ← services ← stages ← MESH ← wiring (`tests/architecture.rs`
//! checks it, with no import circle): the domain is [`cad`], [`mapping`], [`validate`],
//! [`keygen`]; the base [`metrics`], [`offsets`], [`shutdown`], [`telemetry`], [`config`],
//! [`kafka`], [`lag`], [`schedule`]; the services [`auth`], [`rate_limit`], [`health`]; the stages [`source`],
//! [`transactions`], [`transform`], [`batcher`], [`submitter`], [`acker`], [`dead_letter`],
//! [`window`]; then
//! [`mesh`] and [`app`]; the hidden `fuzz` module (the fuzz harnesses of `tests/fuzz.rs` and
//! `fuzz/`) sits above them all and nothing imports it. This crate depends on no other
//! workspace member: the NHS emulator (`crates/nhs-emulator`) and the dev kit
//! (`crates/devkit`) depend on it.
//!
//! Every stage is a struct built from its dependencies with `run(self, input, output)`, and its
//! file opens with its contract: input, output, ordering, ack guarantee, failures.
//! A module that outgrew one file keeps its root file (`foo.rs`) and puts its parts in `foo/`:
//! `config/` (one file per section, `[mesh]` included), `cad/` (model sections, decoder, rules, time formats),
//! `cad/decode/` (error type, array-shape pass), `cad/rules/` (format predicates), `mapping/`
//! (entry builders, options, error, codes), `mapping/check/` (resource rules, code systems,
//! typed times), `metrics/` (label enums, MESH families), `mesh/client/` (error type, chunk
//! and gzip decoding); [`mesh`] is a `mod.rs` folder.

pub mod acker;
pub mod app;
pub mod auth;
pub mod batcher;
pub mod cad;
pub mod config;
pub mod conformance;
pub mod dead_letter;
// The fuzz harnesses of `tests/fuzz.rs` and `fuzz/` (not API; above every layer).
#[doc(hidden)]
pub mod fuzz;
pub mod health;
pub mod kafka;
pub mod keygen;
pub mod lag;
pub mod mapping;
pub mod mesh;
pub mod metrics;
pub mod offsets;
pub mod rate_limit;
pub mod schedule;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod submitter;
pub mod telemetry;
pub mod transactions;
pub mod transform;
pub mod validate;
pub mod window;
