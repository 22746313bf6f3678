//! The Ambulance Data Submission proxy: `POST /ambulance-data-submission/$process-message`,
//! `GET /ambulance-data-submission/_ping`, the 404 for every other path, and the read-only
//! `/_sandbox/{stats,calls}` inspection endpoints.
//!
//! `$process-message` checks, in the live proxy's order (nhs-api.md §1.6): path (404, by the
//! router) → method (405) → access token (401/403, skipped with `open_access`) → per-app quota
//! (429 with `Retry-After`) → 200 `{"message": "<fresh id>"}`. The body is never validated, as on
//! the real API; call bundles found in it are recorded, and a body that is not a FHIR Bundle is
//! accepted and counted as unparseable. Bodies are never logged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::quota::retry_after_secs;
use super::record::{received_calls, ReceivedCall};
use super::state::{SandboxStats, Shared, TokenStatus};

/// The quota bucket used when `open_access` is on: one per sandbox process.
const OPEN_ACCESS_APP: &str = "open-access";

/// Why a request to the API proxy was refused; `Display` is the body's `error` text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Server Not Found")]
    NotFound,
    #[error("Request method must be POST, not {0}")]
    MethodNotAllowed(Method),
    #[error("invalid/missing access token")]
    MissingToken,
    #[error("invalid access token")]
    InvalidToken,
    #[error("Access Token expired")]
    ExpiredToken,
    #[error("Your application, {app}, has exceeded its quota of {limit} requests every 1 minute(s) and is being rate limited.")]
    RateLimited {
        app: String,
        limit: u32,
        retry_after: Duration,
    },
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingToken | ApiError::ExpiredToken => StatusCode::UNAUTHORIZED,
            ApiError::InvalidToken => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn count(&self, stats: &mut SandboxStats) {
        match self {
            ApiError::NotFound => stats.rejected_404 += 1,
            ApiError::MethodNotAllowed(_) => stats.rejected_405 += 1,
            ApiError::MissingToken => stats.rejected_401 += 1,
            ApiError::ExpiredToken => {
                stats.rejected_401 += 1;
                stats.rejected_expired += 1;
            }
            ApiError::InvalidToken => stats.rejected_403 += 1,
            ApiError::RateLimited { .. } => stats.rejected_429 += 1,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            // Not mapped by the ADS proxy, so Apigee's default fault body (a guess, §1.6).
            ApiError::ExpiredToken => {
                let body = json!({"fault": {
                    "faultstring": "Access Token expired",
                    "detail": {"errorcode": "keymanagement.service.access_token_expired"}
                }});
                (status, Json(body)).into_response()
            }
            ApiError::RateLimited { retry_after, .. } => {
                let retry_after = [(header::RETRY_AFTER, retry_after_secs(retry_after))];
                (
                    status,
                    retry_after,
                    Json(json!({"error": self.to_string()})),
                )
                    .into_response()
            }
            _ => (status, Json(json!({"error": self.to_string()}))).into_response(),
        }
    }
}

/// Counts and logs a refusal, then renders it.
fn refuse(shared: &Shared, error: ApiError) -> Response {
    shared.count(|stats| error.count(stats));
    tracing::debug!(message = "Request refused.", status = %error.status());
    error.into_response()
}

/// `POST /ambulance-data-submission/$process-message`.
pub(crate) async fn process_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = if shared.settings.open_access {
        OPEN_ACCESS_APP.to_owned()
    } else {
        match authorised_app(&shared, &headers) {
            Ok(app) => app,
            Err(error) => return refuse(&shared, error),
        }
    };
    if let Err((limit, retry_after)) = shared.take_api_quota(&app) {
        let error = ApiError::RateLimited {
            app,
            limit,
            retry_after,
        };
        return refuse(&shared, error);
    }
    let message = uuid::Uuid::new_v4().to_string();
    let calls = received_calls(&body, &message);
    let recorded = calls.as_ref().map(Vec::len);
    shared.record_submission(body.len(), calls);
    tracing::debug!(message = "Submission accepted.", bytes = body.len(), calls = ?recorded);
    Json(json!({ "message": message })).into_response()
}

/// The app owning the bearer token in `headers`.
fn authorised_app(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::MissingToken)?;
    match shared.token_status(token) {
        TokenStatus::Unknown => Err(ApiError::InvalidToken),
        TokenStatus::Expired => Err(ApiError::ExpiredToken),
        TokenStatus::Valid { app } => Ok(app),
    }
}

/// Any method but POST on `$process-message`.
pub(crate) async fn process_message_wrong_method(
    State(shared): State<Arc<Shared>>,
    method: Method,
) -> Response {
    refuse(&shared, ApiError::MethodNotAllowed(method))
}

/// Every path the proxy does not serve (checked before any token).
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    refuse(&shared, ApiError::NotFound)
}

/// `GET /ambulance-data-submission/_ping`.
pub(crate) async fn ping() -> Json<serde_json::Value> {
    Json(json!({
        "version": concat!("ads-connector-sandbox-", env!("CARGO_PKG_VERSION")),
        "revision": "1",
        "releaseId": "local",
        "commitId": "local",
    }))
}

/// `GET /_sandbox/stats`.
pub(crate) async fn stats(State(shared): State<Arc<Shared>>) -> Json<SandboxStats> {
    Json(shared.stats())
}

/// `GET /_sandbox/calls`, in arrival order.
pub(crate) async fn calls(State(shared): State<Arc<Shared>>) -> Json<Vec<ReceivedCall>> {
    Json(shared.calls())
}
