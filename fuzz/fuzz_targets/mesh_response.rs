//! Fuzz target: a MESH answer body through every reader of one. The contract checked is
//! `ads_connector::fuzz::mesh_response`'s (shared with `tests/fuzz.rs`), documented there with the
//! input format.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::mesh_response(data));
