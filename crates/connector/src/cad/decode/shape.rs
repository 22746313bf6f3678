//! Rejecting arrays outside the schema's list fields: serde's derived structs also accept a
//! JSON array of their fields in order, the schema does not. First a byte scan
//! ([`arrays_only_in_list_fields`]) that settles a valid record without parsing it; when it is
//! not sure, [`Shape`], a non-allocating serde walk, decides. Both run before deserialising and
//! hold nothing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The fields whose values are JSON arrays in `cad.call.v1`; list items are never arrays.
const LIST_FIELDS: [&str; 10] = [
    "responses",
    "patients",
    "call_signs",
    "observations",
    "diagnoses",
    "injuries",
    "medications",
    "procedures",
    "safeguarding",
    "public_health",
];

/// True when a scan of the bytes, without parsing, finds every `[` outside strings opening
/// the value of a list field (`"responses": [`): then [`Shape`] would accept the text if it is
/// JSON at all. False means "not sure" (an array elsewhere, an escaped key, malformed text):
/// [`Shape`] decides. About ten times cheaper than the serde pass on a valid record.
pub(super) fn arrays_only_in_list_fields(text: &[u8]) -> bool {
    let mut i = 0;
    // The span of the last string literal, and the last byte outside strings and whitespace.
    let mut string = (0, 0);
    let mut last = 0u8;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                i = start;
                loop {
                    match text.get(i) {
                        None => return false,
                        Some(b'"') => break,
                        Some(b'\\') => i += 2,
                        Some(_) => i += 1,
                    }
                }
                string = (start, i);
                last = b'"';
            }
            b'[' => {
                // In JSON a `:` follows a key, so the string before it is this value's key.
                let key = &text[string.0..string.1];
                if last != b':' || !LIST_FIELDS.iter().any(|f| f.as_bytes() == key) {
                    return false;
                }
                last = b;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => last = b,
        }
        i += 1;
    }
    true
}

pub(super) struct Shape {
    pub(super) array_allowed: bool,
}

impl<'de> DeserializeSeed<'de> for Shape {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.array_allowed {
            return Err(de::Error::custom(
                "invalid type: array, expected a JSON object or a single value",
            ));
        }
        while seq
            .next_element_seed(Shape {
                array_allowed: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(ListKey(array_allowed)) = map.next_key()? {
            map.next_value_seed(Shape { array_allowed })?;
        }
        Ok(())
    }
}

/// An object key, reduced to "is it a list field?".
struct ListKey(bool);

impl<'de> de::Deserialize<'de> for ListKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ListKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E>(self, key: &str) -> Result<ListKey, E> {
                Ok(ListKey(LIST_FIELDS.contains(&key)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_accepts(text: &str) -> bool {
        let mut de = serde_json::Deserializer::from_str(text);
        Shape {
            array_allowed: false,
        }
        .deserialize(&mut de)
        .is_ok()
    }

    #[test]
    fn the_scan_accepts_only_what_the_serde_pass_accepts_and_defers_the_rest() {
        let cases = [
            (r#"{"responses":[{"call_sign":"A1"}],"patients":[]}"#, true),
            (r#"{ "patients" : [ {"call_signs": ["A1","B2"]} ] }"#, true),
            (
                r#"{"note":"[ not an array ]","x":"\"[","responses":[]}"#,
                true,
            ),
            (r#"{"a\"b":"c","responses":[]}"#, true),
            (r#"[1,2]"#, false),
            (r#"{"times":[1]}"#, false),
            (r#"{"responses":[[1]]}"#, false),
            (r#"{"responses":[{}, [2]]}"#, false),
            (r#"{"respon\u0073es":[]}"#, false),
            (r#"{"responses":"#, true),
            (r#"{"unterminated":"["#, false),
        ];
        for (text, scan) in cases {
            assert_eq!(arrays_only_in_list_fields(text.as_bytes()), scan, "{text}");
            if scan && serde_json::from_str::<serde_json::Value>(text).is_ok() {
                assert!(serde_accepts(text), "{text}");
            }
        }
        // Deferred, the serde pass still decides: an escaped list key is a list key.
        assert!(serde_accepts(r#"{"respon\u0073es":[]}"#));
        assert!(!serde_accepts(r#"{"times":[1]}"#));
    }

    #[test]
    fn the_scan_accepts_every_fixture_record() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/cad");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("read");
                if serde_accepts(&text) {
                    assert!(arrays_only_in_list_fields(text.as_bytes()), "{path:?}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 0);
    }
}
