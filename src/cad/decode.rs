//! Decoding a record into a [`CadCall`], and the value-free [`DecodeError`]s it reports.
//!
//! **In:** record bytes. **Out:** a `CadCall` that passed serde and [`super::rules`], or the
//! first problem as a `DecodeError` with its JSON path. serde's own messages quote values; only
//! the schema-derived parts of them are kept.

use std::fmt;

use serde::Deserialize;

use super::{CadCall, Problem, SCHEMA_ID};

/// Why a record is not a valid `cad.call.v1` call.
///
/// Messages give the JSON path (`$.patients[0].demographics.nhs_number`) and the rule; they
/// never contain a field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not UTF-8.
    #[error("record is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The bytes are not one JSON document.
    #[error("record is not valid JSON: {reason} at line {line} column {column}")]
    InvalidJson {
        /// The parser's reason (a fixed phrase).
        reason: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `schema` is not `cad.call.v1`.
    #[error("{path}: must be \"{SCHEMA_ID}\"")]
    SchemaMismatch {
        /// JSON path of the field.
        path: String,
    },
    /// A field the contract does not define.
    #[error("{path}: unknown field, not part of {SCHEMA_ID}")]
    UnknownField {
        /// JSON path of the field (unusual names are shown as `?`).
        path: String,
    },
    /// A mandatory field is absent.
    #[error("{path}: missing mandatory field")]
    MissingField {
        /// JSON path of the missing field.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path}: wrong JSON type, expected {expected}")]
    InvalidType {
        /// JSON path of the field.
        path: String,
        /// What was expected.
        expected: String,
    },
    /// A value breaks a format or range rule.
    #[error("{path}: {rule}")]
    InvalidValue {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// A code is not in its code list.
    #[error("{path}: {rule}")]
    InvalidCode {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// An ODS code is malformed.
    #[error("{path}: {rule}")]
    InvalidOdsCode {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// An NHS number is malformed or fails its check digit.
    #[error("{path}: {rule}")]
    InvalidNhsNumber {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// Two timestamps are in an impossible order.
    #[error("{path}: {rule}")]
    TimestampsOutOfOrder {
        /// JSON path of the later-in-sequence field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// A cross reference does not resolve, or an identifier is duplicated.
    #[error("{path}: {rule}")]
    InconsistentReference {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
}

/// The closed set of decode failure kinds: a metric label and the `ads-error-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// `invalid_utf8`
    InvalidUtf8,
    /// `invalid_json`
    InvalidJson,
    /// `schema_mismatch`
    SchemaMismatch,
    /// `unknown_field`
    UnknownField,
    /// `missing_field`
    MissingField,
    /// `invalid_type`
    InvalidType,
    /// `invalid_value`
    InvalidValue,
    /// `invalid_code`
    InvalidCode,
    /// `invalid_ods_code`
    InvalidOdsCode,
    /// `invalid_nhs_number`
    InvalidNhsNumber,
    /// `timestamps_out_of_order`
    TimestampsOutOfOrder,
    /// `inconsistent_reference`
    InconsistentReference,
}

impl DecodeErrorKind {
    /// Every kind (for pre-registering metric label values).
    pub const ALL: [DecodeErrorKind; 12] = [
        DecodeErrorKind::InvalidUtf8,
        DecodeErrorKind::InvalidJson,
        DecodeErrorKind::SchemaMismatch,
        DecodeErrorKind::UnknownField,
        DecodeErrorKind::MissingField,
        DecodeErrorKind::InvalidType,
        DecodeErrorKind::InvalidValue,
        DecodeErrorKind::InvalidCode,
        DecodeErrorKind::InvalidOdsCode,
        DecodeErrorKind::InvalidNhsNumber,
        DecodeErrorKind::TimestampsOutOfOrder,
        DecodeErrorKind::InconsistentReference,
    ];

    /// The snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeErrorKind::InvalidUtf8 => "invalid_utf8",
            DecodeErrorKind::InvalidJson => "invalid_json",
            DecodeErrorKind::SchemaMismatch => "schema_mismatch",
            DecodeErrorKind::UnknownField => "unknown_field",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::InvalidType => "invalid_type",
            DecodeErrorKind::InvalidValue => "invalid_value",
            DecodeErrorKind::InvalidCode => "invalid_code",
            DecodeErrorKind::InvalidOdsCode => "invalid_ods_code",
            DecodeErrorKind::InvalidNhsNumber => "invalid_nhs_number",
            DecodeErrorKind::TimestampsOutOfOrder => "timestamps_out_of_order",
            DecodeErrorKind::InconsistentReference => "inconsistent_reference",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecodeError {
    /// The bounded kind of this error.
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            DecodeError::InvalidUtf8 { .. } => DecodeErrorKind::InvalidUtf8,
            DecodeError::InvalidJson { .. } => DecodeErrorKind::InvalidJson,
            DecodeError::SchemaMismatch { .. } => DecodeErrorKind::SchemaMismatch,
            DecodeError::UnknownField { .. } => DecodeErrorKind::UnknownField,
            DecodeError::MissingField { .. } => DecodeErrorKind::MissingField,
            DecodeError::InvalidType { .. } => DecodeErrorKind::InvalidType,
            DecodeError::InvalidValue { .. } => DecodeErrorKind::InvalidValue,
            DecodeError::InvalidCode { .. } => DecodeErrorKind::InvalidCode,
            DecodeError::InvalidOdsCode { .. } => DecodeErrorKind::InvalidOdsCode,
            DecodeError::InvalidNhsNumber { .. } => DecodeErrorKind::InvalidNhsNumber,
            DecodeError::TimestampsOutOfOrder { .. } => DecodeErrorKind::TimestampsOutOfOrder,
            DecodeError::InconsistentReference { .. } => DecodeErrorKind::InconsistentReference,
        }
    }

    /// The error as a machine-readable problem list (one entry: the decoder stops at the first
    /// broken rule). `rule` is the [`DecodeErrorKind`] label.
    pub fn problems(&self) -> Vec<Problem> {
        let path = self.path().to_string();
        let full = self.to_string();
        let message = match full.strip_prefix(&path).and_then(|m| m.strip_prefix(": ")) {
            Some(rule) => rule.to_string(),
            None => full.clone(),
        };
        vec![Problem {
            path,
            rule: self.kind().as_str(),
            message,
        }]
    }

    /// The JSON path the error is about (`$` for the whole record).
    pub fn path(&self) -> &str {
        match self {
            DecodeError::InvalidUtf8 { .. } | DecodeError::InvalidJson { .. } => "$",
            DecodeError::SchemaMismatch { path }
            | DecodeError::UnknownField { path }
            | DecodeError::MissingField { path }
            | DecodeError::InvalidType { path, .. }
            | DecodeError::InvalidValue { path, .. }
            | DecodeError::InvalidCode { path, .. }
            | DecodeError::InvalidOdsCode { path, .. }
            | DecodeError::InvalidNhsNumber { path, .. }
            | DecodeError::TimestampsOutOfOrder { path, .. }
            | DecodeError::InconsistentReference { path, .. } => path,
        }
    }
}

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

/// A non-allocating walk over the JSON that rejects arrays outside the schema's list fields.
mod shape {
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
