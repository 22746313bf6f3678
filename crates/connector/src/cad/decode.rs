//! Decoding a record into a [`CadCall`], and the value-free [`DecodeError`]s it reports.
//!
//! **In:** record bytes. **Out:** a `CadCall` that passed serde and [`super::rules`], or the
//! first problem as a `DecodeError` with its JSON path. serde's own messages quote values; only
//! the schema-derived parts of them are kept.
//!
//! **Cost:** a valid record is scanned once for arrays (`decode/shape.rs`: a byte scan, with
//! the serde shape pass only when the scan is not sure) and parsed once, typed, without path
//! tracking; only a record that fails is parsed again with `serde_path_to_error` for its path.
//!
//! Layout: this file holds [`decode`] and the translation of serde's errors into value-free
//! ones; `decode/error.rs` [`DecodeError`] and its [`DecodeErrorKind`]; `decode/shape.rs` the
//! first pass that rejects JSON arrays where the schema has none.

use serde::Deserialize;

use super::{CadCall, SCHEMA_ID};

mod error;
mod shape;

pub use error::{DecodeError, DecodeErrorKind};

/// Decodes and validates one `cad.call.v1` record value.
pub fn decode(bytes: &[u8]) -> Result<CadCall, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let call = match parse(text) {
        Ok(call) => call,
        Err(err) => {
            // A record of another schema version usually fails on its new fields first; say
            // "wrong schema" rather than "unknown field" when that is the real cause.
            if !matches!(err, DecodeError::InvalidJson { .. }) && schema_is_foreign(text) {
                return Err(DecodeError::SchemaMismatch {
                    path: "$.schema".into(),
                });
            }
            return Err(err);
        }
    };
    call.validate()?;
    Ok(call)
}

fn parse(text: &str) -> Result<CadCall, DecodeError> {
    // The passes without path tracking first: a valid record (nearly all) pays for no path;
    // a record that fails one is parsed again, tracked, for the error's path.
    if let Some(call) = parse_untracked(text) {
        return Ok(call);
    }
    parse_tracked(text)
}

/// [`parse_tracked`] for a valid record, without the paths; `None` when anything fails.
fn parse_untracked(text: &str) -> Option<CadCall> {
    if !shape::arrays_only_in_list_fields(text.as_bytes()) {
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(
            shape::Shape {
                array_allowed: false,
            },
            &mut de,
        )
        .ok()?;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let call = CadCall::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(call)
}

fn parse_tracked(text: &str) -> Result<CadCall, DecodeError> {
    // serde's derived structs also accept a JSON array of their fields in order; the schema
    // does not, so a first pass checks that arrays appear only where the schema has lists.
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    serde::de::DeserializeSeed::deserialize(
        shape::Shape {
            array_allowed: false,
        },
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
    )
    .map_err(|e| from_serde(serde_path_to_error::Error::new(track.path(), e)))?;

    let mut de = serde_json::Deserializer::from_str(text);
    let call: CadCall = serde_path_to_error::deserialize(&mut de).map_err(from_serde)?;
    de.end().map_err(|e| json_syntax(&e))?;
    Ok(call)
}

/// True when the record is a JSON object whose `schema` is a string other than ours.
fn schema_is_foreign(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        schema: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Probe>(text) {
        Ok(Probe {
            schema: Some(serde_json::Value::String(s)),
        }) => s != SCHEMA_ID,
        _ => false,
    }
}

fn json_syntax(err: &serde_json::Error) -> DecodeError {
    DecodeError::InvalidJson {
        reason: message_without_position(err),
        line: err.line(),
        column: err.column(),
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn message_without_position(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(at) if err.line() > 0 => full[..at].to_string(),
        _ => full,
    }
}

/// Turns a serde error into a value-free [`DecodeError`].
///
/// serde's messages quote the offending value (``invalid type: string "Smith", expected …``);
/// only the parts that come from the schema (field names, expectations) are kept.
fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    use serde_json::error::Category;

    let path = render_path(err.path());
    let inner = err.inner();
    match inner.classify() {
        Category::Io | Category::Syntax | Category::Eof => json_syntax(inner),
        Category::Data => {
            let msg = message_without_position(inner);
            if let Some(field) = backticked_after(&msg, "missing field ") {
                DecodeError::MissingField {
                    path: join(&path, field),
                }
            } else if msg.starts_with("unknown field ") {
                DecodeError::UnknownField { path }
            } else if let Some(field) = backticked_after(&msg, "duplicate field ") {
                DecodeError::InvalidValue {
                    path: join(&path, field),
                    rule: "field appears more than once".into(),
                }
            } else if msg.starts_with("unknown variant ") {
                DecodeError::InvalidCode {
                    path,
                    rule: format!("not in the code list; {}", expectation(&msg)),
                }
            } else if msg.starts_with("invalid type: ") {
                DecodeError::InvalidType {
                    path,
                    expected: expectation(&msg)
                        .trim_start_matches("expected ")
                        .to_string(),
                }
            } else if msg.starts_with("invalid value: ") || msg.starts_with("invalid length ") {
                DecodeError::InvalidValue {
                    path,
                    rule: expectation(&msg).to_string(),
                }
            } else if msg.starts_with("expected ") {
                // Our own deserializers' messages: a fixed rule with an example, no value.
                DecodeError::InvalidValue { path, rule: msg }
            } else {
                DecodeError::InvalidValue {
                    path,
                    rule: "invalid value".into(),
                }
            }
        }
    }
}

/// The `expected …` tail of a serde message (value-free), or a generic phrase.
fn expectation(msg: &str) -> &str {
    match msg.find(", expected ") {
        Some(at) => &msg[at + 2..],
        None => "value not allowed",
    }
}

/// The backticked word right after `prefix`, when it is a plain field name.
fn backticked_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?.strip_prefix('`')?;
    let name = &rest[..rest.find('`')?];
    is_field_name(name).then_some(name)
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn join(path: &str, field: &str) -> String {
    format!("{path}.{field}")
}

/// `$.a.b[0].c`; object keys that are not plain field names are shown as `?` because an unknown
/// key could be anything a producer put there.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('.');
                out.push_str(if is_field_name(key) { key } else { "?" });
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}
