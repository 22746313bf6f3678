//! What the sandbox remembers about an accepted `$process-message` body.
//!
//! Input: the raw request body and the submission id the sandbox answered with. Output: one
//! [`ReceivedCall`] per call Bundle, in body order, or `None` when the body is not a FHIR Bundle
//! at all. A body is either one call Bundle (any `type` except `batch`) or a `batch` Bundle whose
//! `entry[].resource` are call Bundles (other entries are ignored). Nothing is validated: the real
//! API accepts anything, so this only extracts what tests need. Pure, no I/O, never logs.
//!
//! Cost: this runs on every accepted POST, inside the demo's process, so it must stay far cheaper
//! than the connector's own per-call work (issue 16). The fast path parses the body once into
//! borrowed views ([`Head`]: only the few fields recorded, every other value skipped or kept as
//! raw text) and hashes each call bundle's bytes as received when they already are the canonical
//! serialization ([`canonical::is_canonical`]; the connector's always are, as it writes
//! `serde_json::to_vec` of a `Value`). Anything unusual (a duplicate key, a field of an
//! unexpected JSON type, a non-canonical bundle) takes the exact path instead: the body or that
//! bundle parsed into a `serde_json::Value` and re-serialized, as before. Both paths give the same
//! [`ReceivedCall`]s; the tests compare them.

mod canonical;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One call Bundle the sandbox accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedCall {
    /// The `{"message": …}` id returned for the POST that carried this bundle.
    pub submission_id: String,
    /// `Bundle.id` of the call bundle (empty when absent).
    pub bundle_id: String,
    /// `identifier[0].value` of the bundle's first `Communication` resource (empty when absent).
    pub call_id: String,
    /// `Bundle.timestamp`, when present.
    pub timestamp: Option<String>,
    /// Lower-case hex SHA-256 of `serde_json::to_vec` of the call bundle as a `serde_json::Value`
    /// (object keys sorted), so the same bundle hashes the same however it was formatted.
    pub body_sha256: String,
}

/// The call bundles in `body`, or `None` when `body` is not a JSON FHIR Bundle.
pub(crate) fn received_calls(body: &[u8], submission_id: &str) -> Option<Vec<ReceivedCall>> {
    fast::received_calls(body, submission_id).or_else(|| exact::received_calls(body, submission_id))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The fast path: borrowed views of the body, raw bytes hashed. `None` means "not sure": the
/// caller then takes the exact path, so this never decides anything the exact path would decide
/// differently (a body that is not a Bundle, too, is left to it).
mod fast {
    use super::*;

    /// The fields recorded from a Bundle or looked at in a resource, each as raw JSON text of
    /// any type (`null` reads as absent, as indexing a `Value` does).
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "resourceType", borrow, default)]
        resource_type: Option<&'a RawValue>,
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a RawValue>,
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        timestamp: Option<&'a RawValue>,
        /// An array of objects, or the exact path is taken.
        #[serde(borrow, default)]
        entry: Option<Vec<MapOnly<Member<'a>>>>,
        #[serde(borrow, default)]
        identifier: Option<&'a RawValue>,
    }

    /// A `Bundle.entry` element or an `identifier` element: only `resource` and `value`.
    #[derive(Deserialize)]
    struct Member<'a> {
        #[serde(borrow, default)]
        resource: Option<&'a RawValue>,
        #[serde(borrow, default)]
        value: Option<&'a RawValue>,
    }

    /// A `T` read only from a JSON object: serde's derived structs also take an array (its
    /// elements as the fields in order), which indexing a `Value` never does.
    struct MapOnly<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visit<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
                type Value = MapOnly<T>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    map: M,
                ) -> Result<Self::Value, M::Error> {
                    T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MapOnly)
                }
            }
            deserializer.deserialize_map(Visit(std::marker::PhantomData))
        }
    }

    pub(super) fn received_calls(body: &[u8], submission_id: &str) -> Option<Vec<ReceivedCall>> {
        let text = std::str::from_utf8(trim(body)).ok()?;
        let root: Head = object(text)?.ok()?;
        if string(root.resource_type)?.as_deref() != Some("Bundle") {
            return None;
        }
        if string(root.kind)?.as_deref() != Some("batch") {
            return Some(vec![describe(&root, text, submission_id)?]);
        }
        let mut calls = Vec::new();
        for MapOnly(entry) in root.entry.iter().flatten() {
            let Some(resource) = entry.resource else {
                continue;
            };
            let Some(bundle) = object::<Head>(resource.get()) else {
                continue;
            };
            let bundle = bundle.ok()?;
            if string(bundle.resource_type)?.as_deref() == Some("Bundle") {
                calls.push(describe(&bundle, resource.get(), submission_id)?);
            }
        }
        Some(calls)
    }

    fn describe(bundle: &Head, text: &str, submission_id: &str) -> Option<ReceivedCall> {
        Some(ReceivedCall {
            submission_id: submission_id.to_owned(),
            bundle_id: string(bundle.id)?.unwrap_or_default(),
            call_id: call_id(bundle)?.unwrap_or_default(),
            timestamp: string(bundle.timestamp)?,
            body_sha256: body_sha256(text.as_bytes())?,
        })
    }

    /// `identifier[0].value` of the first entry resource whose `resourceType` is
    /// `Communication`.
    fn call_id(bundle: &Head) -> Option<Option<String>> {
        for MapOnly(entry) in bundle.entry.iter().flatten() {
            let Some(resource) = entry.resource else {
                continue;
            };
            let Some(resource) = object::<Head>(resource.get()) else {
                continue;
            };
            let resource = resource.ok()?;
            if string(resource.resource_type)?.as_deref() != Some("Communication") {
                continue;
            }
            let Some(identifiers) = resource.identifier.filter(|i| i.get().starts_with('[')) else {
                return Some(None);
            };
            let identifiers: Vec<&RawValue> = serde_json::from_str(identifiers.get()).ok()?;
            let Some(first) = identifiers.first() else {
                return Some(None);
            };
            return match member(first)? {
                Some(first) => string(first.value),
                None => Some(None),
            };
        }
        Some(None)
    }

    fn body_sha256(bundle: &[u8]) -> Option<String> {
        if canonical::is_canonical(bundle) {
            return Some(hex(&Sha256::digest(bundle)));
        }
        let value: Value = serde_json::from_slice(bundle).ok()?;
        Some(exact::sha256_hex(&value))
    }

    /// `text` parsed as a `T` when it is a JSON object (`None` when it is another value; the
    /// inner error when it is an object `T` cannot take, e.g. with a duplicate field).
    fn object<'a, T: Deserialize<'a>>(text: &'a str) -> Option<serde_json::Result<T>> {
        text.starts_with('{').then(|| serde_json::from_str(text))
    }

    /// An entry or identifier element: `Some(None)` when it is not an object (its fields then
    /// read as absent), `None` when the exact path must decide.
    fn member<'a>(raw: &'a RawValue) -> Option<Option<Member<'a>>> {
        match object(raw.get()) {
            None => Some(None),
            Some(parsed) => parsed.ok().map(Some),
        }
    }

    /// The string a raw value holds: `Some(None)` when it is absent or not a string.
    fn string(raw: Option<&RawValue>) -> Option<Option<String>> {
        match raw.map(RawValue::get) {
            Some(text) if text.starts_with('"') => serde_json::from_str(text).ok().map(Some),
            _ => Some(None),
        }
    }

    /// `body` without JSON whitespace around it.
    fn trim(body: &[u8]) -> &[u8] {
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        let start = body.iter().position(|b| !ws(b)).unwrap_or(body.len());
        let end = body.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
        &body[start..end]
    }
}

/// The exact path: the body as a `serde_json::Value`, each call bundle re-serialized and hashed.
mod exact {
    use super::*;

    pub(super) fn received_calls(body: &[u8], submission_id: &str) -> Option<Vec<ReceivedCall>> {
        let root: Value = serde_json::from_slice(body).ok()?;
        if !is_bundle(&root) {
            return None;
        }
        let bundles: Vec<&Value> = if root["type"] == "batch" {
            entry_resources(&root).filter(|r| is_bundle(r)).collect()
        } else {
            vec![&root]
        };
        Some(
            bundles
                .into_iter()
                .map(|bundle| describe(bundle, submission_id))
                .collect(),
        )
    }

    fn describe(bundle: &Value, submission_id: &str) -> ReceivedCall {
        let communication = entry_resources(bundle).find(|r| r["resourceType"] == "Communication");
        let call_id = communication
            .and_then(|c| c["identifier"][0]["value"].as_str())
            .unwrap_or_default();
        ReceivedCall {
            submission_id: submission_id.to_owned(),
            bundle_id: bundle["id"].as_str().unwrap_or_default().to_owned(),
            call_id: call_id.to_owned(),
            timestamp: bundle["timestamp"].as_str().map(str::to_owned),
            body_sha256: sha256_hex(bundle),
        }
    }

    fn is_bundle(value: &Value) -> bool {
        value["resourceType"] == "Bundle"
    }

    fn entry_resources(bundle: &Value) -> impl Iterator<Item = &Value> {
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| &entry["resource"])
    }

    pub(super) fn sha256_hex(value: &Value) -> String {
        // Serialising a `Value` cannot fail: its keys are always strings.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        hex(&Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: &str, call_id: &str) -> Value {
        json!({
            "resourceType": "Bundle", "id": id, "type": "collection",
            "timestamp": "2025-01-01T00:00:00Z",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "p"}},
                {"resource": {"resourceType": "Communication",
                              "identifier": [{"system": "s", "value": call_id}]}}
            ]
        })
    }

    #[test]
    fn records_a_single_call_bundle() {
        let body = serde_json::to_vec(&call("b1", "C1")).unwrap();
        let calls = received_calls(&body, "m1").unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].bundle_id, "b1");
        assert_eq!(calls[0].call_id, "C1");
        assert_eq!(calls[0].submission_id, "m1");
        assert_eq!(calls[0].timestamp.as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(calls[0].body_sha256.len(), 64);
    }

    #[test]
    fn records_each_call_bundle_of_a_batch_in_order() {
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": call("b1", "C1")},
            {"resource": {"resourceType": "Patient"}},
            {"resource": call("b2", "C2")}
        ]});
        let calls = received_calls(&serde_json::to_vec(&batch).unwrap(), "m").unwrap();
        let ids: Vec<_> = calls.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["C1", "C2"]);
    }

    #[test]
    fn hash_ignores_formatting_and_key_order() {
        let compact = br#"{"resourceType":"Bundle","id":"x","type":"collection"}"#;
        let spaced = br#"{ "type" : "collection", "id": "x", "resourceType": "Bundle" }"#;
        let a = received_calls(compact, "m").unwrap();
        let b = received_calls(spaced, "m").unwrap();
        assert_eq!(a[0].body_sha256, b[0].body_sha256);
    }

    /// The fast path either gives up or agrees with the exact path.
    fn assert_paths_agree(body: &[u8]) -> bool {
        let fast = fast::received_calls(body, "m");
        if let Some(fast) = &fast {
            assert_eq!(
                Some(fast),
                exact::received_calls(body, "m").as_ref(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        fast.is_some()
    }

    #[test]
    fn compact_bodies_take_the_fast_path_and_agree_with_the_exact_one() {
        let single = serde_json::to_vec(&call("b1", "C1")).unwrap();
        let batch = serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": call("b1", "C1"), "request": {"method": "POST"}},
            {"resource": call("b2", "C2")}
        ]}))
        .unwrap();
        assert!(assert_paths_agree(&single));
        assert!(assert_paths_agree(&batch));
        // The batch the connector writes: its envelope keys are not sorted, its bundles are.
        let mut connector = br#"{"resourceType":"Bundle","id":"x","type":"batch","entry":[{"fullUrl":"urn:uuid:b1","resource":"#.to_vec();
        connector.extend_from_slice(&single);
        connector.extend_from_slice(br#","request":{"method":"POST","url":"Bundle"}}]}"#);
        assert!(assert_paths_agree(&connector));
        assert_eq!(received_calls(&connector, "m").unwrap()[0].call_id, "C1");
    }

    #[test]
    fn unusual_bodies_give_what_the_exact_path_gives() {
        let bodies: &[&str] = &[
            r#"{"resourceType":"Bundle","id":"x"}"#,
            r#" {"resourceType" : "Bundle", "id": "x", "timestamp": null} "#,
            r#"{"resourceType":"Bundle","id":7,"timestamp":["t"],"entry":[1,"s",null,{"resource":"r"}]}"#,
            r#"{"resourceType":"Bundle","entry":{"resource":{}}}"#,
            r#"{"resourceType":"Bundle","id":"a","id":"b"}"#,
            r#"{"resourceType":"Bundle","type":"batch","entry":[1,{"resource":[]},{"resource":{"resourceType":"Bundle","id":"in"}}]}"#,
            r#"{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Communication","identifier":{"value":"x"}}}]}}]}"#,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Communication","identifier":[]}}]}"#,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Communication","identifier":["v"]}}]}"#,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Communication","identifier":[{"value":5}]}},{"resource":{"resourceType":"Communication","identifier":[{"value":"second"}]}}]}"#,
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Encounter","type":[{"text":"t"}]}},{"resource":{"resourceType":"Communication","identifier":[{"value":"C\u0031"}]}}]}"#,
            r#"{"resourceType":"Bundle","type":"b\u0061tch","entry":[{"resource":{"resourceType":"Bundle","id":"in"}}]}"#,
            r#"{"resourceType":"Bundle","n":1.50,"s":"\/"}"#,
            r#"{"resourceType":"Bundle","type":"batch"}"#,
            r#"{"resourceType":"Patient"}"#,
            r#"["Bundle"]"#,
        ];
        for body in bodies {
            assert_paths_agree(body.as_bytes());
            assert_eq!(
                received_calls(body.as_bytes(), "m"),
                exact::received_calls(body.as_bytes(), "m"),
                "{body}"
            );
        }
    }

    #[test]
    fn non_bundles_are_unparseable() {
        assert!(received_calls(b"", "m").is_none());
        assert!(received_calls(b"not json", "m").is_none());
        assert!(received_calls(br#"{"resourceType":"Patient"}"#, "m").is_none());
    }
}
