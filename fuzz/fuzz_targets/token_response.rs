//! Fuzz target: the token endpoint's answer (status and body). The contract checked is
//! `ads_connector::fuzz::token_response`'s (shared with `tests/fuzz.rs`), documented there with the
//! input format.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::token_response(data));
