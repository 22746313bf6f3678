//! Fuzz target: `cad::decode` on arbitrary bytes. The contract checked is
//! `ads_connector::fuzz::decode`'s (shared with `tests/fuzz.rs`): no panic; an error names a
//! `$` path and a bounded kind with a one-entry problem list; an accepted call re-decodes to
//! itself and maps to a Bundle.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ads_connector::fuzz::decode(data));
