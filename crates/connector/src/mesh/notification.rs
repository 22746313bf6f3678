//! DPS error notifications: the format our sandbox emits, a pluggable parser, and the
//! `ads.dps-error.v1` record the poller publishes.
//!
//! NHS England has not published the notification DPS sends over MESH (nhs-api.md §4 item 10),
//! so `docs/dps-errors.md` defines one, `ads.dps-notification.v1` (JSON): the submission id (the
//! API's `message` id of the POST), and per call (bundle id, call id, provider ODS) a list of
//! issues with severity, code, location and diagnostics. Parsers implement
//! [`NotificationParser`]; the first that recognises a body wins. A body no parser recognises is
//! never dropped: it is published once, whole, as `format: "unknown"` (UTF-8 text when it is
//! text, else base64) so an operator can read it. Pure, no I/O.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Schema id of the notification format we define.
pub const NOTIFICATION_SCHEMA: &str = "ads.dps-notification.v1";
/// Schema id of the records on the errors topic.
pub const DPS_ERROR_SCHEMA: &str = "ads.dps-error.v1";

/// One issue DPS found in a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// `fatal`, `error`, `warning` or `information` (FHIR OperationOutcome severities).
    pub severity: String,
    /// A stable code, e.g. `provider-not-registered`.
    pub code: String,
    /// A FHIRPath to the offending element, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Human-readable detail (never patient data by contract of the sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

/// One rejected (or warned) call inside a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallIssues {
    /// The call Bundle's id (`Bundle.id`), when DPS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    /// The call identifier, when DPS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Provider ODS code, when DPS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ods: Option<String>,
    /// What is wrong.
    pub issues: Vec<Issue>,
}

/// A parsed notification: one submission, one or more calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Always [`NOTIFICATION_SCHEMA`] for our format.
    pub schema: String,
    /// The API's id of the submission (`{"message": …}` of the 200).
    pub submission_id: String,
    /// When DPS processed it (RFC 3339), if stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// The calls with issues.
    pub calls: Vec<CallIssues>,
}

/// Turns a MESH message body into a [`Notification`], or says it is not its format.
pub trait NotificationParser: Send + Sync {
    /// The `format` written into published records.
    fn format(&self) -> &'static str;
    /// `None` when the body is not in this parser's format.
    fn parse(&self, body: &[u8]) -> Option<Notification>;
}

/// The parser of `ads.dps-notification.v1`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonV1Parser;

impl NotificationParser for JsonV1Parser {
    fn format(&self) -> &'static str {
        NOTIFICATION_SCHEMA
    }

    fn parse(&self, body: &[u8]) -> Option<Notification> {
        let n: Notification = serde_json::from_slice(body).ok()?;
        (n.schema == NOTIFICATION_SCHEMA && !n.submission_id.is_empty()).then_some(n)
    }
}

/// The parsers tried in order; the default list holds [`JsonV1Parser`].
pub struct Parsers(pub Vec<Box<dyn NotificationParser>>);

impl Default for Parsers {
    fn default() -> Self {
        Self(vec![Box::new(JsonV1Parser)])
    }
}

impl Parsers {
    /// The first parser that recognises `body`, with its format.
    pub fn parse(&self, body: &[u8]) -> Option<(&'static str, Notification)> {
        self.0
            .iter()
            .find_map(|p| p.parse(body).map(|n| (p.format(), n)))
    }
}

/// Where the MESH message came from (in every record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshOrigin {
    /// MESH message id.
    pub message_id: String,
    /// `Mex-WorkflowID`.
    pub workflow_id: Option<String>,
    /// `Mex-LocalID`.
    pub local_id: Option<String>,
    /// When the poller retrieved it (RFC 3339).
    pub retrieved_at: String,
}

/// Source coordinates of the consumed record the rejected call came from (from its ack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// One `ads.dps-error.v1` record: one call of one notification, or one unrecognised message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpsErrorRecord {
    /// Always [`DPS_ERROR_SCHEMA`].
    pub schema: String,
    /// The parser's format, or `unknown`.
    pub format: String,
    /// The MESH message.
    pub mesh: MeshOrigin,
    /// The API's submission id, when known.
    pub submission_id: Option<String>,
    /// Whether the call was matched to an ack record.
    pub correlated: bool,
    /// Call id (from the ack when correlated, else as DPS reported it).
    pub call_id: Option<String>,
    /// Provider ODS code.
    pub provider_ods: Option<String>,
    /// Call Bundle id.
    pub bundle_id: Option<String>,
    /// Every consumed record whose ack names this submission and call (snapshots superseded
    /// inside the submission included), in ack order.
    pub sources: Vec<SourceRef>,
    /// The issues (empty for `unknown`).
    pub issues: Vec<Issue>,
    /// For `unknown` only: the body, as text when UTF-8, else base64 (see `raw_encoding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// `utf-8` or `base64`, with `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_encoding: Option<String>,
}

impl DpsErrorRecord {
    /// The Kafka key: the call id when known, else the MESH message id.
    pub fn key(&self) -> &str {
        self.call_id.as_deref().unwrap_or(&self.mesh.message_id)
    }

    /// A record of `format` for `mesh` naming no call and no issue; the base of the others.
    pub fn empty(format: &str, mesh: MeshOrigin, submission_id: Option<String>) -> Self {
        Self {
            schema: DPS_ERROR_SCHEMA.into(),
            format: format.into(),
            mesh,
            submission_id,
            correlated: false,
            call_id: None,
            provider_ods: None,
            bundle_id: None,
            sources: Vec::new(),
            issues: Vec::new(),
            raw: None,
            raw_encoding: None,
        }
    }

    /// The record for a body no parser recognised.
    pub fn unknown(mesh: MeshOrigin, body: &[u8]) -> Self {
        let (raw, encoding) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), "utf-8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(body),
                "base64",
            ),
        };
        Self {
            raw: Some(raw),
            raw_encoding: Some(encoding.into()),
            ..Self::empty("unknown", mesh, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": "ads.dps-notification.v1",
            "submission_id": "6eeec54e-3d39-4bc4-a1d9-57615d258fpq",
            "calls": [{"bundle_id": "b1", "call_id": "c1", "provider_ods": "RZZ99",
                       "issues": [{"severity": "error", "code": "provider-not-registered",
                                   "location": "Bundle.entry[0].resource"}]}]
        }))
        .unwrap()
    }

    #[test]
    fn parses_our_format() {
        let (format, n) = Parsers::default().parse(&sample()).unwrap();
        assert_eq!(format, NOTIFICATION_SCHEMA);
        assert_eq!(n.calls[0].issues[0].code, "provider-not-registered");
    }

    #[test]
    fn unrecognised_bodies_are_kept_raw() {
        assert!(Parsers::default().parse(b"DPS,ERROR,123").is_none());
        assert!(Parsers::default().parse(br#"{"schema":"other"}"#).is_none());
        let origin = MeshOrigin {
            message_id: "M1".into(),
            workflow_id: None,
            local_id: None,
            retrieved_at: "now".into(),
        };
        let text = DpsErrorRecord::unknown(origin.clone(), b"a,b");
        assert_eq!(text.raw.as_deref(), Some("a,b"));
        assert_eq!(text.key(), "M1");
        let binary = DpsErrorRecord::unknown(origin, &[0xff, 0x00]);
        assert_eq!(binary.raw_encoding.as_deref(), Some("base64"));
    }
}
