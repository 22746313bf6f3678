//! [`DecodeError`], why a record is not a valid `cad.call.v1` call (a JSON path and a rule,
//! never a value), its closed [`DecodeErrorKind`] (a metric label and the `ads-error-kind`
//! header), and its machine-readable [`Problem`] list.

use std::fmt;

use crate::cad::{Problem, SCHEMA_ID};

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
