//! The hostile records of `tests/fixtures/hostile/records.jsonl`: one bad `cad.call.v1` record
//! per kind of hostile input (bytes, framing, shape, fields, codes, values, cross-field rules),
//! each with the dead-letter kind (`ads-error-kind`) the connector gives it. One JSON object a
//! line: `name`, `kind`, `why`, and the value as `value` (text, or `null` for a tombstone) or
//! `value_base64` (bytes that are not UTF-8). `tests/hostile.rs` sends them through the
//! connector; `tests/fuzz.rs` keeps them in the fuzz corpora.

use base64::Engine;

use super::env::repo_path;

/// One hostile record.
#[derive(Debug, Clone)]
pub struct HostileCase {
    /// Unique, kebab-case.
    pub name: String,
    /// The dead-letter kind the connector gives it.
    pub kind: String,
    /// What is wrong with it.
    pub why: String,
    /// The record value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Every case of the fixture, in file order.
pub fn hostile_cases() -> Vec<HostileCase> {
    let path = repo_path("tests/fixtures/hostile/records.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let value = if let Some(b64) = v["value_base64"].as_str() {
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
            } else {
                v["value"].as_str().map(|s| s.as_bytes().to_vec())
            };
            HostileCase {
                name: field("name"),
                kind: field("kind"),
                why: field("why"),
                value,
            }
        })
        .collect()
}
