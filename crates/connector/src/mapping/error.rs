//! [`MappingError`], why a call could not be mapped, with its closed [`MappingErrorKind`] (a
//! metric label and the `ads-error-kind` header) and its machine-readable [`Problem`] list:
//! paths and rules, never patient data.

use std::fmt;

use super::Problem;
use crate::cad::DecodeError;

/// Why a call could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The call breaks the `cad.call.v1` rules (only for calls not made by [`crate::cad::decode`]).
    #[error("input is not a valid cad.call.v1 call: {0}")]
    InvalidInput(#[from] DecodeError),
    /// A [`MappingOptions`](super::MappingOptions) value is not acceptable.
    #[error("mapping option `{option}` {rule}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong.
        rule: String,
    },
    /// A reference in the Bundle does not match any entry's fullUrl (a mapping bug).
    #[error("{path}: reference does not resolve to a bundle entry")]
    UnresolvedReference {
        /// JSON path of the reference inside the Bundle.
        path: String,
    },
    /// The Bundle breaks local ADS validation rules (error severity).
    #[error("bundle fails {} local validation rule(s), first {}: {}", problems.len(),
        problems.first().map_or("$", |p| p.path.as_str()),
        problems.first().map_or("", |p| p.message.as_str()))]
    InvalidBundle {
        /// Every error-severity problem, in Bundle order.
        problems: Vec<Problem>,
    },
}

/// The closed set of mapping failure kinds: a metric label and the `ads-error-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingErrorKind {
    /// `invalid_input`
    InvalidInput,
    /// `invalid_option`
    InvalidOption,
    /// `unresolved_reference`
    UnresolvedReference,
    /// `invalid_bundle`
    InvalidBundle,
}

impl MappingErrorKind {
    /// Every kind (for pre-registering metric label values).
    pub const ALL: [MappingErrorKind; 4] = [
        MappingErrorKind::InvalidInput,
        MappingErrorKind::InvalidOption,
        MappingErrorKind::UnresolvedReference,
        MappingErrorKind::InvalidBundle,
    ];

    /// The snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            MappingErrorKind::InvalidInput => "invalid_input",
            MappingErrorKind::InvalidOption => "invalid_option",
            MappingErrorKind::UnresolvedReference => "unresolved_reference",
            MappingErrorKind::InvalidBundle => "invalid_bundle",
        }
    }
}

impl fmt::Display for MappingErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MappingError {
    /// The bounded kind of this error.
    pub fn kind(&self) -> MappingErrorKind {
        match self {
            MappingError::InvalidInput(_) => MappingErrorKind::InvalidInput,
            MappingError::InvalidOption { .. } => MappingErrorKind::InvalidOption,
            MappingError::UnresolvedReference { .. } => MappingErrorKind::UnresolvedReference,
            MappingError::InvalidBundle { .. } => MappingErrorKind::InvalidBundle,
        }
    }

    /// The error as a machine-readable problem list (for the dead-letter header): paths into
    /// the input record (`$.…` of `cad.call.v1`), into the Bundle, or `options.<name>`.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            MappingError::InvalidInput(e) => e.problems(),
            MappingError::InvalidOption { option, .. } => vec![Problem {
                path: format!("options.{option}"),
                rule: "invalid_option",
                message: self.to_string(),
            }],
            MappingError::UnresolvedReference { path } => vec![Problem {
                path: path.clone(),
                rule: "unresolved_reference",
                message: "reference does not resolve to a bundle entry".into(),
            }],
            MappingError::InvalidBundle { problems } => problems.clone(),
        }
    }
}
