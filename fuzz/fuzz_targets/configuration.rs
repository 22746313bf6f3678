//! Fuzz target: the configuration file (TOML). The contract checked is
//! `ads_connector::fuzz::configuration`'s (shared with `tests/fuzz.rs`), documented there with the
//! input format.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::configuration(data));
