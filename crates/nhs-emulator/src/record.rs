//! What the sandbox remembers about an accepted `$process-message` body.
//!
//! Input: the raw request body and the submission id the sandbox answered with. Output: one
//! [`ReceivedCall`] per call Bundle, in body order, or `None` when the body is not a FHIR Bundle
//! at all. A body is either one call Bundle (any `type` except `batch`) or a `batch` Bundle whose
//! `entry[].resource` are call Bundles (other entries are ignored). Nothing is validated: the real
//! API accepts anything, so this only extracts what tests need. Pure, no I/O, never logs.

use serde::{Deserialize, Serialize};
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

fn sha256_hex(value: &Value) -> String {
    // Serialising a `Value` cannot fail: its keys are always strings.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

    #[test]
    fn non_bundles_are_unparseable() {
        assert!(received_calls(b"", "m").is_none());
        assert!(received_calls(b"not json", "m").is_none());
        assert!(received_calls(br#"{"resourceType":"Patient"}"#, "m").is_none());
    }
}
