//! # ads-devkit
//!
//! The development kit of `ads-connector`: what a developer or a demo needs and a production
//! deployment never runs. It depends on the connector library and the NHS emulator; the library
//! depends on neither.
//!
//! | module | role |
//! |---|---|
//! | [`generate`] | realistic synthetic `cad.call.v1` calls and their snapshots (seeded, deterministic) |
//! | [`demo`] | `ads-connector demo`: librdkafka's mock cluster, the emulator, generated calls, the real pipeline, a summary; `demo/dps_errors` is the DPS error loop of `--dps-errors` |
//! | [`chaos`] | the demo's fault timeline (`--faults chaos`) |

pub mod chaos;
pub mod demo;
pub mod generate;
