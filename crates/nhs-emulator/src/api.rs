//! The Ambulance Data Submission proxy: `POST /ambulance-data-submission/$process-message`,
//! `GET /ambulance-data-submission/_ping`, the 404 for every other path, the read-only
//! `/_sandbox/{stats,calls}` inspection endpoints, and `GET`/`PUT /_sandbox/faults` to read or
//! replace the fault profile.
//!
//! `$process-message` checks, in the live proxy's order (nhs-api.md §1.6): path (404, by the
//! router) → method (405) → access token (401/403, skipped with `open_access`) → 429 storm (an
//! injected fault) → per-app quota (429 with `Retry-After`) → injected latency, then an injected
//! status or connection reset → 200 `{"message": "<fresh id>"}`. Only a request that got no
//! injected fault is accepted and recorded; it is recorded before its injected delay, so a client
//! that gives up waiting has delivered it all the same. The body is never validated, as on the
//! real API; call bundles found in it are recorded, and a body that is not a FHIR Bundle is
//! accepted and counted as unparseable. Bodies are never logged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::connection::Connection;
use super::faults::{ApiFault, FaultProfile};
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
    axum::Extension(dps): axum::Extension<Arc<super::dps::DpsSlot>>,
    ConnectInfo(connection): ConnectInfo<Connection>,
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
    if let Some(retry_after) = shared.faults.storm() {
        shared.count(|stats| stats.faults_storm_429 += 1);
        tracing::debug!(message = "Request refused by an injected 429 storm.");
        let body = json!({"error": "This API is currently receiving a high volume of requests and is being rate limited."});
        let retry_after = [(header::RETRY_AFTER, retry_after_secs(retry_after))];
        return (StatusCode::TOO_MANY_REQUESTS, retry_after, Json(body)).into_response();
    }
    if let Err((limit, retry_after)) = shared.take_api_quota(&app) {
        let error = ApiError::RateLimited {
            app,
            limit,
            retry_after,
        };
        return refuse(&shared, error);
    }
    let plan = shared.faults.plan_api();
    if !plan.delay.is_zero() {
        shared.count(|stats| stats.faults_delayed += 1);
    }
    match plan.fault {
        ApiFault::None => {
            let message = uuid::Uuid::new_v4().to_string();
            // A sink (`record_calls` off) parses nothing: the submission is only counted.
            let calls = if shared.settings.record_calls {
                dps.submitted(&body, &message);
                received_calls(&body, &message)
            } else {
                None
            };
            let recorded = calls.as_ref().map(Vec::len);
            shared.record_submission(body.len(), calls);
            tracing::debug!(message = "Submission accepted.", bytes = body.len(), calls = ?recorded);
            delay(plan.delay).await;
            Json(json!({ "message": message })).into_response()
        }
        ApiFault::Status(status) => {
            delay(plan.delay).await;
            injected_status(&shared, &app, status)
        }
        ApiFault::Reset => {
            delay(plan.delay).await;
            shared.count(|stats| stats.faults_reset += 1);
            tracing::debug!(message = "Connection reset by an injected fault.");
            connection.reset();
            // Never written: the connection fails first.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn delay(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Counts and renders an injected error status, with the body the platform most likely sends
/// (Apigee's default fault bodies for gateway errors; a guess, nhs-api.md §1.6 says "unknown").
fn injected_status(shared: &Shared, app: &str, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    shared.count(|stats| match status.as_u16() {
        429 => stats.faults_injected_429 += 1,
        500.. => stats.faults_injected_5xx += 1,
        _ => stats.faults_injected_4xx += 1,
    });
    tracing::debug!(message = "Injected error status.", %status);
    match status.as_u16() {
        // §1.6: the proxy's own 500 has no body.
        500 => status.into_response(),
        502 => apigee_fault(
            status,
            "Unexpected EOF at target",
            "messaging.adaptors.http.flow.UnexpectedEOFAtTarget",
        ),
        503 => service_unavailable(),
        504 => apigee_fault(
            status,
            "Gateway Timeout",
            "messaging.adaptors.http.flow.GatewayTimeout",
        ),
        429 => {
            let retry_after = retry_after_secs(shared.faults.retry_after());
            let body = json!({"error": format!(
                "Your application, {app}, has created a spike in traffic and is being rate limited. \
                 Please reduce the frequency of your requests."
            )});
            (status, [(header::RETRY_AFTER, retry_after)], Json(body)).into_response()
        }
        _ => {
            let reason = status.canonical_reason().unwrap_or("Injected fault");
            (status, Json(json!({ "error": reason }))).into_response()
        }
    }
}

/// Apigee's 503 when the target is down; also the token endpoint's injected outage.
pub(crate) fn service_unavailable() -> Response {
    apigee_fault(
        StatusCode::SERVICE_UNAVAILABLE,
        "The Service is temporarily unavailable",
        "messaging.adaptors.http.flow.ServiceUnavailable",
    )
}

fn apigee_fault(status: StatusCode, faultstring: &str, errorcode: &str) -> Response {
    let body = json!({"fault": {"faultstring": faultstring, "detail": {"errorcode": errorcode}}});
    (status, Json(body)).into_response()
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

/// `GET /_sandbox/faults`: `{"faults": "<spec>"}`, the canonical spec of the profile in force.
pub(crate) async fn faults(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "faults": shared.faults.profile().to_string() }))
}

/// `PUT /_sandbox/faults` with a fault spec as the body: puts it in force (windows restart) and
/// answers like `GET`; 400 `{"error": "<why>"}` for a bad spec.
pub(crate) async fn set_faults(State(shared): State<Arc<Shared>>, spec: String) -> Response {
    match FaultProfile::parse(&spec) {
        Ok(profile) => {
            let spec = profile.to_string();
            shared.faults.set(profile);
            tracing::info!(message = "Sandbox fault profile set.", faults = %spec);
            Json(json!({ "faults": spec })).into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}
