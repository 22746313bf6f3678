//! The submitter's retry classification as data: one attempt's result ([`Attempt`]) → what to
//! do next ([`Action`]). Input: a response (status, `Retry-After`, body) or a transport failure.
//! Output: accept (with the submission id of a 2xx body), retry (with the reason and any wait),
//! refresh the token, pause as misconfigured (404, 405, any 3xx, a 2xx without the API's id:
//! answers only a wrong URL or path explains, never the records' fault), or reject (a bounded
//! kind and a message with the body's first KiB, which the API fills with protocol errors, never
//! patient data). Pure: no I/O, no clock.

use std::time::Duration;

use bytes::Bytes;

use crate::metrics::{ApiFault, RetryReason, SubmitRejection};

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Accepted, with the API's submission id.
    Accept(String),
    /// Try again, after `after` if the server said so.
    Retry {
        /// Why.
        reason: RetryReason,
        /// `Retry-After`, when given.
        after: Option<Duration>,
    },
    /// Drop the token and try again with a fresh one.
    RefreshToken,
    /// The answer only a misconfiguration explains: the submission waits and is sent again
    /// (never dead-lettered) until the API answers normally.
    Misconfigured(ApiFault),
    /// Permanent: dead-letter the records.
    Reject {
        /// Why.
        kind: SubmitRejection,
        /// Status and body excerpt.
        message: String,
    },
}

/// The result of sending one request.
pub enum Attempt {
    /// An HTTP response.
    Response {
        /// Status code.
        status: u16,
        /// `Retry-After` as a wait, if present and readable (delta-seconds or an HTTP-date,
        /// already capped by the caller).
        retry_after: Option<Duration>,
        /// The body.
        body: Bytes,
    },
    /// The request timed out.
    Timeout,
    /// No response: connection refused or reset, DNS, TLS.
    Transport,
}

/// Retry classification as data (Vector's `retry_action` table, plus the NHS token rules).
pub fn classify(attempt: &Attempt) -> Action {
    match attempt {
        Attempt::Timeout => Action::Retry {
            reason: RetryReason::Timeout,
            after: None,
        },
        Attempt::Transport => Action::Retry {
            reason: RetryReason::Connect,
            after: None,
        },
        Attempt::Response {
            status,
            retry_after,
            body,
        } => match *status {
            200..=299 => match api_id(body) {
                Some(id) => Action::Accept(id),
                None => Action::Misconfigured(ApiFault::NoSubmissionId),
            },
            300..=399 => Action::Misconfigured(ApiFault::Redirect),
            404 => Action::Misconfigured(ApiFault::NotFound),
            405 => Action::Misconfigured(ApiFault::MethodNotAllowed),
            401 | 403 => Action::RefreshToken,
            429 => Action::Retry {
                reason: RetryReason::Status429,
                after: *retry_after,
            },
            408 => Action::Retry {
                reason: RetryReason::Status408,
                after: None,
            },
            501 => reject(SubmitRejection::Http501, *status, body),
            500..=599 => Action::Retry {
                reason: RetryReason::Status5xx,
                after: *retry_after,
            },
            400..=499 => reject(SubmitRejection::Http4xx, *status, body),
            _ => reject(SubmitRejection::HttpUnexpected, *status, body),
        },
    }
}

fn reject(kind: SubmitRejection, status: u16, body: &Bytes) -> Action {
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(1024)]);
    Action::Reject {
        kind,
        message: format!("HTTP {status}: {excerpt}"),
    }
}

/// The submission id in a 200 body: `{"message": id}` (the spec) or `{"id": id}` (seen live),
/// a non-empty string or a number.
fn api_id(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["message", "id"].iter().find_map(|k| match &v[*k] {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<u64>, body: &str) -> Attempt {
        Attempt::Response {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn accepts_the_message_id_and_the_id_variant() {
        assert_eq!(
            classify(&response(
                200,
                None,
                r#"{"message":"6eeec54e-3d39-4bc4-a1d9-57615d258fpq"}"#
            )),
            Action::Accept("6eeec54e-3d39-4bc4-a1d9-57615d258fpq".into())
        );
        assert_eq!(
            classify(&response(200, None, r#"{"id":"abc"}"#)),
            Action::Accept("abc".into())
        );
    }

    #[test]
    fn a_2xx_without_the_api_s_id_is_a_misconfiguration_not_an_acceptance() {
        for body in [
            "",
            "<html>Sign in</html>",
            "{}",
            r#"{"message":""}"#,
            r#"{"id":null}"#,
        ] {
            assert_eq!(
                classify(&response(200, None, body)),
                Action::Misconfigured(ApiFault::NoSubmissionId),
                "{body}"
            );
        }
        assert_eq!(
            classify(&response(204, None, "")),
            Action::Misconfigured(ApiFault::NoSubmissionId)
        );
    }

    #[test]
    fn not_found_method_not_allowed_and_redirects_are_misconfigurations() {
        assert_eq!(
            classify(&response(404, None, "Server Not Found")),
            Action::Misconfigured(ApiFault::NotFound)
        );
        assert_eq!(
            classify(&response(405, None, "")),
            Action::Misconfigured(ApiFault::MethodNotAllowed)
        );
        for status in [300, 301, 302, 303, 307, 308] {
            assert_eq!(
                classify(&response(status, None, "")),
                Action::Misconfigured(ApiFault::Redirect),
                "{status}"
            );
        }
    }

    #[test]
    fn retries_429_after_its_retry_after_header() {
        assert_eq!(
            classify(&response(429, Some(60), "{}")),
            Action::Retry {
                reason: RetryReason::Status429,
                after: Some(Duration::from_secs(60))
            }
        );
    }

    #[test]
    fn a_503_s_retry_after_is_kept_for_the_wait() {
        assert_eq!(
            classify(&response(503, Some(30), "")),
            Action::Retry {
                reason: RetryReason::Status5xx,
                after: Some(Duration::from_secs(30))
            }
        );
    }

    #[test]
    fn retries_408_5xx_timeouts_and_connection_errors_but_not_501() {
        for status in [408, 500, 502, 503, 504] {
            assert!(
                matches!(classify(&response(status, None, "")), Action::Retry { .. }),
                "{status}"
            );
        }
        assert!(matches!(classify(&Attempt::Timeout), Action::Retry { .. }));
        assert!(matches!(
            classify(&Attempt::Transport),
            Action::Retry { .. }
        ));
        assert!(matches!(
            classify(&response(501, None, "")),
            Action::Reject {
                kind: SubmitRejection::Http501,
                ..
            }
        ));
    }

    #[test]
    fn refreshes_the_token_on_401_and_403() {
        assert_eq!(classify(&response(401, None, "")), Action::RefreshToken);
        assert_eq!(classify(&response(403, None, "")), Action::RefreshToken);
    }

    #[test]
    fn dead_letters_other_4xx_with_the_response_body() {
        match classify(&response(
            400,
            None,
            r#"{"error":"Missing x-dataset-id header"}"#,
        )) {
            Action::Reject { kind, message } => {
                assert_eq!(kind, SubmitRejection::Http4xx);
                assert!(message.contains("HTTP 400") && message.contains("x-dataset-id"));
            }
            other => panic!("{other:?}"),
        }
    }
}
