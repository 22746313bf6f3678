//! Fuzz target: `cad::decode` on arbitrary bytes.
//!
//! Contract checked on every input: decode never panics; an error names a JSON path starting
//! with `$` and a bounded kind, and its problem list has exactly that path; an accepted call
//! re-encodes to a record that decodes to the same call (the decoder is a fixed point) and
//! maps to a Bundle without a mapping error.

#![no_main]

use ads_connector::cad::{self, DecodeErrorKind};
use ads_connector::mapping::{map_call, MappingOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match cad::decode(data) {
        Ok(call) => {
            let again = cad::decode(&call.to_json_bytes()).expect("a decoded call re-decodes");
            assert_eq!(again, call);
            map_call(&call, &MappingOptions::default()).expect("a decoded call maps");
        }
        Err(err) => {
            assert!(err.path().starts_with('$'));
            assert!(DecodeErrorKind::ALL.contains(&err.kind()));
            let problems = err.problems();
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].path, err.path());
            serde_json::to_string(&problems).expect("problems serialise");
        }
    }
});
