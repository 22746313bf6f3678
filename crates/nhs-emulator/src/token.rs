//! `POST /oauth2/token`: the NHS API Platform's signed-JWT client-credentials grant.
//!
//! Input: a form with `grant_type=client_credentials`, the jwt-bearer `client_assertion_type` and
//! a `client_assertion` JWT signed RS512 by a key in the app's JWKS file. Output: 200
//! `{"access_token", "expires_in": "<secs>", "token_type": "Bearer", "issued_at": "<epoch ms>"}`,
//! or the platform's error for the first failing check, in the order of nhs-api.md §1.4 rows
//! 1–15; [`grant`] reads top to bottom like that table. Every error body is
//! `{"error", "error_description", "message_id"}`, except row 1 (405, empty text/plain).
//!
//! Before any of that, an injected token endpoint outage (the fault profile's `token_outage` and
//! `token_reset`) refuses the request with Apigee's 503 (or the profile's `token_outage_status`: a
//! 429 like the quota's, with `Retry-After` in seconds or as an HTTP-date, or another status with
//! an Apigee fault body) or resets its connection; such a request uses neither the token quota nor
//! its `jti`, and is counted only in `token_outage_*`.
//!
//! The JWKS file is re-read on every request, so rotating keys needs no restart. A `jti` is
//! remembered per client once a token is issued with it. Never logs the assertion or the token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::DecodingKey;
use serde_json::{json, Value};

use super::api::service_unavailable;
use super::connection::Connection;
use super::faults::{TokenFault, TokenRefusal};
use super::jwt::{find_key, is_falsy, KeyLookup, UnverifiedJwt};
use super::quota::retry_after_secs;
use super::state::Shared;

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// "exp ≤ now + 5 min", with the platform's extra 10 s for edge cases.
const MAX_EXP_AHEAD_SECS: f64 = 310.0;

/// Why a token request was refused; `Display` is the exact `error_description`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    // Row 2.
    #[error("Content-Type header must be application/x-www-form-urlencoded")]
    ContentType,
    // Rows 3–6: the form.
    #[error("grant_type is missing")]
    MissingGrantType,
    #[error("grant_type is invalid")]
    UnsupportedGrantType,
    #[error("Missing or invalid client_assertion_type - must be '{JWT_BEARER}'")]
    ClientAssertionType,
    #[error("Missing client_assertion")]
    MissingClientAssertion,
    // Row 7.
    #[error("Malformed JWT in client_assertion")]
    MalformedJwt,
    // Row 8: header and claim checks, in the platform's order.
    #[error("Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'")]
    InvalidAlg,
    #[error("Invalid 'exp' claim in client_assertion JWT - JWT has expired")]
    Expired,
    #[error("Missing 'kid' header in client_assertion JWT")]
    MissingKid,
    #[error("Invalid 'typ' header in client_assertion JWT - must be 'JWT'")]
    InvalidTyp,
    #[error("Missing 'exp' claim in client_assertion JWT")]
    MissingExp,
    #[error("Invalid 'exp' claim in client_assertion JWT - must be an integer")]
    ExpNotNumber,
    #[error("Missing or non-matching 'iss'/'sub' claims in client_assertion JWT")]
    IssSubMismatch,
    #[error("Missing 'jti' claim in client_assertion JWT")]
    MissingJti,
    #[error("Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID")]
    InvalidJti,
    #[error("Non-unique 'jti' claim in client_assertion JWT")]
    ReusedJti,
    #[error("Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future")]
    ExpTooFar,
    // Rows 9–15.
    #[error("Invalid 'iss'/'sub' claims in client_assertion JWT")]
    UnknownClient,
    #[error("Your application, {app}, has exceeded its quota of {limit} requests every 1 minute(s) and is being rate limited.")]
    RateLimited {
        app: String,
        limit: u32,
        retry_after: Duration,
    },
    #[error("You need to register a public key to use this authentication method - please contact support to configure")]
    NoPublicKey,
    #[error("The JWKS endpoint, for your client_assertion can't be reached")]
    JwksUnreachable,
    #[error("Missing or invalid 'aud' claim in client_assertion JWT")]
    InvalidAudience,
    #[error("Invalid 'kid' header in client_assertion JWT - no matching public key")]
    NoMatchingKey,
    #[error("JWT signature verification failed")]
    BadSignature,
}

impl TokenError {
    fn status(&self) -> StatusCode {
        use TokenError::*;
        match self {
            ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UnknownClient | InvalidAudience | NoMatchingKey | BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            NoPublicKey | JwksUnreachable => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The OAuth `error` code.
    fn code(&self) -> &'static str {
        use TokenError::*;
        match self {
            UnsupportedGrantType => "unsupported_grant_type",
            NoPublicKey | JwksUnreachable | BadSignature => "public_key error",
            // The platform's 429 body for this API is not public; this shape is ours.
            RateLimited { .. } => "rate_limited",
            _ => "invalid_request",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code(),
            "error_description": self.to_string(),
            "message_id": uuid::Uuid::new_v4().to_string(),
        });
        let mut response = (self.status(), Json(body)).into_response();
        if let TokenError::RateLimited { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs(retry_after).into());
        }
        response
    }
}

/// Row 1: any method but POST.
pub(crate) async fn method_not_allowed() -> Response {
    let headers = [
        (header::ALLOW, HeaderValue::from_static("POST")),
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
    ];
    (StatusCode::METHOD_NOT_ALLOWED, headers).into_response()
}

/// `POST /oauth2/token`.
pub(crate) async fn issue(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.faults.plan_token() {
        TokenFault::None => {}
        TokenFault::Unavailable(refusal) => {
            shared.count(|s| s.token_outage_refusals += 1);
            tracing::debug!(
                message = "Token request refused by an injected outage.",
                status = refusal.status
            );
            return injected_refusal(refusal);
        }
        TokenFault::Reset => {
            shared.count(|s| s.token_outage_resets += 1);
            tracing::debug!(message = "Token connection reset by an injected fault.");
            connection.reset();
            // Never written: the connection fails first.
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let granted = grant(&shared, &headers, &body).await;
    let issued = granted.and_then(|(client, jti)| {
        shared
            .issue_token(&client, &jti)
            .ok_or(TokenError::ReusedJti)
    });
    match issued {
        Ok(token) => {
            tracing::debug!(message = "Access token issued.");
            Json(json!({
                "access_token": token.access_token,
                "expires_in": shared.settings.token_lifetime.as_secs().to_string(),
                "token_type": "Bearer",
                "issued_at": token.issued_at_ms.to_string(),
            }))
            .into_response()
        }
        Err(error) => {
            let rate_limited = matches!(error, TokenError::RateLimited { .. });
            shared.count(|s| {
                s.token_errors += 1;
                s.token_rate_limited += u64::from(rate_limited);
            });
            tracing::debug!(message = "Token request refused.", status = %error.status());
            error.into_response()
        }
    }
}

/// The answer of an injected token outage: Apigee's 503, a 429 with `Retry-After` (as the quota
/// answers, in the profile's format), or an Apigee fault with the injected status.
fn injected_refusal(refusal: TokenRefusal) -> Response {
    let Ok(status) = StatusCode::from_u16(refusal.status) else {
        return service_unavailable();
    };
    match refusal.status {
        503 => service_unavailable(),
        429 => {
            let body = json!({
                "error": "rate_limited",
                "error_description": "This API is currently receiving a high volume of requests and is being rate limited.",
                "message_id": uuid::Uuid::new_v4().to_string(),
            });
            let retry_after = if refusal.http_date {
                http_date_after(refusal.retry_after)
            } else {
                retry_after_secs(refusal.retry_after).into()
            };
            (status, [(header::RETRY_AFTER, retry_after)], Json(body)).into_response()
        }
        _ => {
            let body = json!({"fault": {
                "faultstring": "Injected token endpoint fault",
                "detail": {"errorcode": "sandbox.faults.token_outage"},
            }});
            (status, Json(body)).into_response()
        }
    }
}

/// `Retry-After` as an IMF-fixdate (RFC 9110 §5.6.7) `wait` from now, rounded up to a whole
/// second (at least one second ahead).
fn http_date_after(wait: Duration) -> HeaderValue {
    // The fault spec allows at most a day, so the seconds always fit.
    let secs = i64::try_from(retry_after_secs(wait)).unwrap_or(86_400);
    let ahead = chrono::TimeDelta::try_seconds(secs).unwrap_or(chrono::TimeDelta::days(1));
    let at = chrono::Utc::now() + ahead + chrono::TimeDelta::milliseconds(999);
    let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    HeaderValue::from_str(&text).expect("an IMF-fixdate is a valid header value")
}

/// Rows 2–15 in table order; on success the client (API key) and the assertion's `jti`.
async fn grant(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, String), TokenError> {
    require_form_content_type(headers)?; // row 2
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let assertion = require_client_credentials_form(&form)?; // rows 3–6
    let jwt = UnverifiedJwt::decode(assertion).ok_or(TokenError::MalformedJwt)?; // row 7
    let (client, jti) = check_assertion(&jwt, now_secs(), |c, j| shared.is_jti_used(c, j))?; // row 8
    let jwks_path = registered_jwks(shared, &client)?; // row 9
    take_token_quota(shared, &client)?; // row 10
    let jwks = read_jwks(jwks_path).await?; // rows 11–12
    require_audience(&jwt, shared.settings.token_url.as_str())?; // row 13
    let key = public_key(&jwks, &jwt)?; // row 14
    require_signature(&jwt, &key)?; // row 15
    Ok((client, jti))
}

fn require_form_content_type(headers: &HeaderMap) -> Result<(), TokenError> {
    // Plain string comparison, as the platform's condition: `; charset=…` fails.
    match headers.get(header::CONTENT_TYPE) {
        Some(value) if value == FORM_CONTENT_TYPE => Ok(()),
        _ => Err(TokenError::ContentType),
    }
}

fn require_client_credentials_form(form: &HashMap<String, String>) -> Result<&str, TokenError> {
    match form.get("grant_type").map(String::as_str) {
        None | Some("") => return Err(TokenError::MissingGrantType),
        Some("client_credentials") => {}
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    }
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(TokenError::ClientAssertionType);
    }
    match form.get("client_assertion").map(String::as_str) {
        None | Some("") => Err(TokenError::MissingClientAssertion),
        Some(assertion) => Ok(assertion),
    }
}

/// Row 8: the platform's header and claim checks, first failure wins. Returns `(sub, jti)`.
fn check_assertion(
    jwt: &UnverifiedJwt<'_>,
    now: f64,
    jti_used: impl Fn(&str, &str) -> bool,
) -> Result<(String, String), TokenError> {
    let (header, claims) = (&jwt.header, &jwt.claims);
    let exp = claims.get("exp");
    let exp_secs = exp.and_then(Value::as_f64);
    if header.get("alg").and_then(Value::as_str) != Some("RS512") {
        return Err(TokenError::InvalidAlg);
    }
    if exp_secs.is_some_and(|exp| now > exp) {
        return Err(TokenError::Expired);
    }
    if is_falsy(header.get("kid")) {
        return Err(TokenError::MissingKid);
    }
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|typ| typ.eq_ignore_ascii_case("JWT")) {
        return Err(TokenError::InvalidTyp);
    }
    if is_falsy(exp) {
        return Err(TokenError::MissingExp);
    }
    let exp_secs = exp_secs.ok_or(TokenError::ExpNotNumber)?;
    let (iss, sub) = (claims.get("iss"), claims.get("sub"));
    if is_falsy(iss) || iss != sub {
        return Err(TokenError::IssSubMismatch);
    }
    let client = match sub {
        Some(Value::String(sub)) => sub.clone(),
        other => other.map(Value::to_string).unwrap_or_default(),
    };
    if is_falsy(claims.get("jti")) {
        return Err(TokenError::MissingJti);
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or(TokenError::InvalidJti)?;
    if jti_used(&client, jti) {
        return Err(TokenError::ReusedJti);
    }
    if exp_secs - now > MAX_EXP_AHEAD_SECS {
        return Err(TokenError::ExpTooFar);
    }
    Ok((client, jti.to_owned()))
}

/// Row 9: the client must be a registered API key; its JWKS file, if it has one.
fn registered_jwks<'s>(shared: &'s Shared, client: &str) -> Result<Option<&'s Path>, TokenError> {
    let app = shared.settings.apps.get(client);
    app.map(Option::as_deref).ok_or(TokenError::UnknownClient)
}

/// Row 10: the app's token quota.
fn take_token_quota(shared: &Shared, client: &str) -> Result<(), TokenError> {
    let quota = shared.take_token_quota(client);
    quota.map_err(|(limit, retry_after)| TokenError::RateLimited {
        app: client.to_owned(),
        limit,
        retry_after,
    })
}

/// Rows 11–12: the app's JWKS file plays its registered JWKS URL.
async fn read_jwks(path: Option<&Path>) -> Result<Value, TokenError> {
    let path = path.ok_or(TokenError::NoPublicKey)?;
    let bytes = tokio::fs::read(path).await.map_err(|error| {
        tracing::warn!(message = "JWKS file unreadable.", path = %path.display(), %error);
        TokenError::JwksUnreachable
    })?;
    serde_json::from_slice(&bytes).map_err(|error| {
        tracing::warn!(message = "JWKS file is not JSON.", path = %path.display(), %error);
        TokenError::JwksUnreachable
    })
}

/// Row 13: `aud` must be this token endpoint's URL (a JSON array containing it also passes).
fn require_audience(jwt: &UnverifiedJwt<'_>, token_url: &str) -> Result<(), TokenError> {
    let matches = match jwt.claims.get("aud") {
        Some(Value::String(aud)) => aud == token_url,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud == token_url),
        _ => false,
    };
    matches.then_some(()).ok_or(TokenError::InvalidAudience)
}

/// Row 14: a key with the assertion's `kid`. A matching key that is not usable RSA cannot verify
/// anything, so it fails as a bad signature (row 15).
fn public_key(jwks: &Value, jwt: &UnverifiedJwt<'_>) -> Result<DecodingKey, TokenError> {
    let kid = jwt
        .header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match find_key(jwks, kid) {
        KeyLookup::NoMatch => Err(TokenError::NoMatchingKey),
        KeyLookup::Unusable => Err(TokenError::BadSignature),
        KeyLookup::Found(key) => Ok(key),
    }
}

/// Row 15: RS512 signature, with the platform's 10 s time allowance.
fn require_signature(jwt: &UnverifiedJwt<'_>, key: &DecodingKey) -> Result<(), TokenError> {
    let verified = jwt.verifies_with(key, now_secs());
    verified.then_some(()).ok_or(TokenError::BadSignature)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
