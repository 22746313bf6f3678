//! [`MeshError`]: what went wrong talking to MESH, with its bounded [`MeshError::kind`] label
//! and [`MeshError::is_retryable`]; and [`transport`], which turns a `reqwest` error into
//! [`MeshError::Tls`] when a TLS verdict lies in its cause chain, else
//! [`MeshError::Transport`]. Messages carry no message body.

/// What went wrong talking to MESH.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// 401/403: wrong mailbox, password, shared key or certificate. Fatal until reconfigured.
    #[error("MESH refused the credentials of mailbox {mailbox} (HTTP {status}{})", reason(.description))]
    Auth {
        /// Mailbox.
        mailbox: String,
        /// Status.
        status: u16,
        /// MESH's own reason, when its error body gives one (`errorDescription` of the v1 body,
        /// `detail[].msg` of the v2 body, as `mesh-sandbox` serves them), e.g. `Invalid
        /// Authentication Token` or `Mailbox id does not match token`; at most
        /// [`MAX_DESCRIPTION`] characters. An error body carries no message content.
        description: Option<String>,
    },
    /// 404/410: the message is gone (acknowledged elsewhere or expired).
    #[error("MESH message {0} not found or gone")]
    Gone(String),
    /// Any other unexpected status.
    #[error("MESH answered HTTP {status} to {operation}")]
    Status {
        /// What we were doing.
        operation: &'static str,
        /// Status.
        status: u16,
    },
    /// Connection refused or reset, DNS, or timeout.
    #[error("cannot reach MESH: {0}")]
    Transport(#[source] reqwest::Error),
    /// The TLS handshake failed: the server refused our client certificate (missing, expired, or
    /// from a CA it does not trust) or we do not trust its certificate. The text is the TLS
    /// verdict (e.g. `received fatal alert: UnknownCA`). Needs an operator: `mesh.client_cert_file`,
    /// `mesh.client_key_file`, `mesh.ca_file`.
    #[error("MESH TLS handshake failed: {0} (check mesh.client_cert_file, mesh.client_key_file and mesh.ca_file)")]
    Tls(String),
    /// An answer we could not read.
    #[error("unexpected MESH response to {operation}: {detail}")]
    Protocol {
        /// What we were doing.
        operation: &'static str,
        /// Why.
        detail: String,
    },
    /// A chunk in a content encoding other than gzip, a corrupt gzip stream, or a message that
    /// decodes to more than [`MAX_DECODED_BYTES`](super::MAX_DECODED_BYTES).
    #[error("cannot decode the MESH message: {0}")]
    Encoding(String),
    /// The client could not be built (bad PEM).
    #[error("cannot build the MESH client: {0}")]
    Build(String),
}

impl MeshError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MeshError::Auth { .. } => "auth",
            MeshError::Gone(_) => "gone",
            MeshError::Status { .. } => "status",
            MeshError::Transport(_) => "transport",
            MeshError::Tls(_) => "tls",
            MeshError::Protocol { .. } => "protocol",
            MeshError::Encoding(_) => "encoding",
            MeshError::Build(_) => "build",
        }
    }

    /// Whether trying again later may succeed (transient), as opposed to needing an operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            MeshError::Transport(_) | MeshError::Protocol { .. } => true,
            MeshError::Status { status, .. } => *status == 429 || *status >= 500,
            MeshError::Gone(_) => false,
            MeshError::Auth { .. } | MeshError::Tls(_) => false,
            MeshError::Encoding(_) | MeshError::Build(_) => false,
        }
    }
}

/// `: {description}`, or nothing.
fn reason(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// The most characters of MESH's error description kept in [`MeshError::Auth`].
pub const MAX_DESCRIPTION: usize = 200;

/// MESH's reason in an error body: `errorDescription` (v1, and the emulator's), else the first
/// `detail[].msg` (v2, `mesh-sandbox`'s `MeshErrorV2`); printable characters only, bounded.
pub(crate) fn error_description(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value
        .get("errorDescription")
        .and_then(|d| d.as_str())
        .or_else(|| value.pointer("/detail/0/msg").and_then(|m| m.as_str()))?;
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

/// A transport error, or [`MeshError::Tls`] when a TLS verdict lies in its cause chain.
pub(super) fn transport(error: reqwest::Error) -> MeshError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = next {
        if let Some(tls) = tls_verdict(e) {
            return MeshError::Tls(tls.to_string());
        }
        next = e.source();
    }
    MeshError::Transport(error)
}

/// The rustls error `e` is or wraps: `io::Error::source` skips the error it wraps, and the
/// connector nests one `io::Error` in another, so look inside them.
fn tls_verdict<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_verdict(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_themselves() {
        let auth = MeshError::Auth {
            mailbox: "X".into(),
            status: 403,
            description: None,
        };
        assert!(!auth.is_retryable());
        assert_eq!(auth.kind(), "auth");
        assert_eq!(
            auth.to_string(),
            "MESH refused the credentials of mailbox X (HTTP 403)"
        );
        let busy = MeshError::Status {
            operation: "list",
            status: 503,
        };
        assert!(busy.is_retryable());
        assert!(!MeshError::Status {
            operation: "list",
            status: 400
        }
        .is_retryable());
    }

    /// The 403 bodies of `mesh-sandbox` (`views/error.py`: `MeshErrorV1`, `MeshErrorV2`) and of
    /// the built-in emulator.
    #[test]
    fn mesh_s_reason_is_read_from_either_error_body() {
        let v1 = br#"{"errorEvent":"","errorCode":"","errorDescription":"Invalid Authentication Token"}"#;
        assert_eq!(
            error_description(v1).as_deref(),
            Some("Invalid Authentication Token")
        );
        let v2 = br#"{"internal_id":"1","detail":[{"event":"","code":"","msg":"Mailbox id does not match token"}]}"#;
        assert_eq!(
            error_description(v2).as_deref(),
            Some("Mailbox id does not match token")
        );
        assert_eq!(error_description(b""), None);
        assert_eq!(error_description(b"<html>403</html>"), None);
        let long = format!(r#"{{"errorDescription":"{}\n"}}"#, "x".repeat(500));
        assert_eq!(
            error_description(long.as_bytes()).unwrap().len(),
            MAX_DESCRIPTION
        );
        let auth = MeshError::Auth {
            mailbox: "X26ABC2".into(),
            status: 403,
            description: error_description(v2),
        };
        assert_eq!(
            auth.to_string(),
            "MESH refused the credentials of mailbox X26ABC2 (HTTP 403: Mailbox id does not match token)"
        );
    }
}
