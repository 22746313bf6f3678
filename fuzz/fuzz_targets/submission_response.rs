//! Fuzz target: the API's answer to a submission (status, `Retry-After`, body). The contract
//! checked is `ads_connector::fuzz::submission_response`'s (shared with `tests/fuzz.rs`),
//! documented there with the input format.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::submission_response(data));
