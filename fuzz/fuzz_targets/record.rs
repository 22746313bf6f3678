//! Fuzz target: the whole Kafka record (key, value, headers) through the transform stage. The
//! contract checked is `ads_connector::fuzz::record`'s (shared with `tests/fuzz.rs`), documented
//! there with the input format.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::record(data));
