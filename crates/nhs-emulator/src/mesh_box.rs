//! A minimal in-memory MESH API, so the embedded demo can run the DPS error loop with nothing
//! installed. It mirrors NHS England's `mesh-sandbox` in `AUTH_MODE=full`: the same test
//! mailboxes (`X26ABC1`, `X26ABC2`, `X26ABC3`, password `password`), the shared key `TestKey`,
//! the `NHSMESH` HMAC header checked on every request (403 with `errorDescription`), and the
//! paths our client uses: `POST /messageexchange/{mailbox}` (handshake), `GET …/count`,
//! `GET …/inbox` (paged, with `workflow_filter` = an exact workflow id),
//! `GET …/inbox/{id}[/{chunk}]` (`Mex-*` headers, `Mex-Chunk-Range`),
//! `PUT …/inbox/{id}/status/acknowledged`, and
//! `POST …/outbox[/{id}/{chunk}]`. Messages are delivered when their last chunk arrives.
//! Not emulated: tracking, lookup, expiry, compression, rich inbox. State is lost on stop;
//! bodies are never logged.
//!
//! Inbox paging: messages are listed in the order they were sent, `max_results` (10–5000,
//! default 500) at a time; while more remain, the page carries `links.next` with a
//! `continue_from` cursor. With a `workflow_filter`, each page of the inbox is taken first and
//! filtered after, so a page can be empty and still carry `links.next`: the behaviour NHS
//! England's `mesh-client` documents for MESH (`MeshClient.list_messages`: "if workflow_filter
//! is set it's possible to receive an empty page when more results exist outside the first
//! max_results"). `mesh-sandbox` differs there: it filters the whole inbox before it pages
//! (`handlers/inbox.py`, `_get_inbox_messages`), so it never serves such a page; this emulator
//! follows MESH, so clients can be tested against it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use ads_connector::mesh::auth::{self, SCHEME};

/// The shared key of the emulation (as `mesh-sandbox`'s usual test setup).
pub const SHARED_KEY: &str = "TestKey";
/// The test mailboxes; every one has the password [`PASSWORD`].
pub const MAILBOXES: [&str; 3] = ["X26ABC1", "X26ABC2", "X26ABC3"];
/// The password of every test mailbox.
pub const PASSWORD: &str = "password";

#[derive(Clone)]
struct Stored {
    from: String,
    to: String,
    workflow_id: String,
    local_id: Option<String>,
    subject: Option<String>,
    content_type: Option<String>,
    chunks: Vec<Option<Bytes>>,
    delivered: bool,
    /// Order of sending: the inbox order and the paging cursor.
    seq: u64,
}

#[derive(Default)]
pub(crate) struct MeshBox {
    messages: Mutex<BTreeMap<String, Stored>>,
    sent: AtomicU64,
}

/// The default page size of `GET …/inbox`, as MESH's and `mesh-sandbox`'s.
pub const DEFAULT_MAX_RESULTS: usize = 500;

type Shared = Arc<MeshBox>;

/// The MESH API as a router with its own empty store, to serve on any listener (the sandbox
/// merges it into its own; `tests/mesh_tls.rs` serves it over mutual TLS).
pub fn routes() -> Router {
    Router::new()
        .route("/messageexchange/{mailbox}", post(handshake))
        .route("/messageexchange/{mailbox}/count", get(count))
        .route("/messageexchange/{mailbox}/inbox", get(list))
        .route("/messageexchange/{mailbox}/inbox/{id}", get(first_chunk))
        .route("/messageexchange/{mailbox}/inbox/{id}/{chunk}", get(chunk))
        .route(
            "/messageexchange/{mailbox}/inbox/{id}/status/acknowledged",
            put(acknowledge),
        )
        .route("/messageexchange/{mailbox}/outbox", post(send))
        .route(
            "/messageexchange/{mailbox}/outbox/{id}/{chunk}",
            post(send_chunk),
        )
        .with_state(Arc::new(MeshBox::default()))
}

fn error(status: StatusCode, description: &str) -> Response {
    let body = json!({"errorEvent": "", "errorCode": "", "errorDescription": description});
    (status, Json(body)).into_response()
}

fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "Invalid Authentication Token")
}

/// The mailbox in the path, when the header is a valid `NHSMESH` token for it.
fn authorise(mailbox: &str, headers: &HeaderMap) -> Option<String> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let password = |m: &str| MAILBOXES.contains(&m).then(|| PASSWORD.to_owned());
    verify(header, SHARED_KEY.as_bytes(), password).filter(|m| m.eq_ignore_ascii_case(mailbox))
}

async fn handshake(Path(mailbox): Path<String>, headers: HeaderMap) -> Response {
    match authorise(&mailbox, &headers) {
        Some(m) => Json(json!({ "mailboxId": m })).into_response(),
        None => forbidden(),
    }
}

/// The messages waiting in `mailbox` after the cursor `after`, in inbox order: `(seq, id,
/// workflow id)`.
fn inbox(shared: &MeshBox, mailbox: &str, after: u64) -> Vec<(u64, String, String)> {
    let messages = shared.messages.lock().expect("mesh lock");
    let mut waiting: Vec<_> = messages
        .iter()
        .filter(|(_, m)| m.delivered && m.to == mailbox && m.seq > after)
        .map(|(id, m)| (m.seq, id.clone(), m.workflow_id.clone()))
        .collect();
    waiting.sort_unstable();
    waiting
}

async fn count(
    State(shared): State<Shared>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
) -> Response {
    if authorise(&mailbox, &headers).is_none() {
        return forbidden();
    }
    Json(json!({ "count": inbox(&shared, &mailbox, 0).len() })).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    max_results: Option<usize>,
    workflow_filter: Option<String>,
    continue_from: Option<String>,
}

async fn list(
    State(shared): State<Shared>,
    Path(mailbox): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if authorise(&mailbox, &headers).is_none() {
        return forbidden();
    }
    let max_results = q.max_results.unwrap_or(DEFAULT_MAX_RESULTS).clamp(10, 5000);
    let after = match q.continue_from.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(after)) => after,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Invalid continue_from"),
    };
    let filter = q
        .workflow_filter
        .as_deref()
        .map(|w| w.trim_start_matches('='));
    let approx_inbox_count = inbox(&shared, &mailbox, 0).len();
    let waiting = inbox(&shared, &mailbox, after);
    // A page of the inbox, then the filter (see the module header): a page may end up empty.
    let page = &waiting[..waiting.len().min(max_results)];
    let ids: Vec<&str> = page
        .iter()
        .filter(|(_, _, workflow)| filter.is_none_or(|f| workflow == f))
        .map(|(_, id, _)| id.as_str())
        .collect();
    let link = |continue_from: Option<u64>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("max_results", &max_results.to_string());
        if let Some(filter) = &q.workflow_filter {
            query.append_pair("workflow_filter", filter);
        }
        if let Some(cursor) = continue_from {
            query.append_pair("continue_from", &cursor.to_string());
        }
        format!("/messageexchange/{mailbox}/inbox?{}", query.finish())
    };
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link((after > 0).then_some(after)).into());
    if waiting.len() > page.len() {
        let last = page.last().map_or(after, |(seq, _, _)| *seq);
        links.insert("next".into(), link(Some(last)).into());
    }
    let body = json!({
        "messages": ids,
        "links": links,
        "approx_inbox_count": approx_inbox_count,
    });
    Json(body).into_response()
}

async fn first_chunk(
    State(shared): State<Shared>,
    Path((mailbox, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve_chunk(&shared, &mailbox, &id, 1, &headers)
}

async fn chunk(
    State(shared): State<Shared>,
    Path((mailbox, id, n)): Path<(String, String, usize)>,
    headers: HeaderMap,
) -> Response {
    serve_chunk(&shared, &mailbox, &id, n, &headers)
}

fn serve_chunk(
    shared: &MeshBox,
    mailbox: &str,
    id: &str,
    n: usize,
    headers: &HeaderMap,
) -> Response {
    if authorise(mailbox, headers).is_none() {
        return forbidden();
    }
    let messages = shared.messages.lock().expect("mesh lock");
    let Some(m) = messages.get(id).filter(|m| m.delivered && m.to == mailbox) else {
        return error(StatusCode::NOT_FOUND, "Message does not exist");
    };
    let Some(Some(body)) = n.checked_sub(1).and_then(|i| m.chunks.get(i)) else {
        return error(StatusCode::NOT_FOUND, "Chunk does not exist");
    };
    let total = m.chunks.len();
    let mut out = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), v);
        }
    };
    set("mex-from", &m.from);
    set("mex-to", &m.to);
    set("mex-workflowid", &m.workflow_id);
    set("mex-messageid", id);
    set("mex-messagetype", "DATA");
    set("mex-chunk-range", &format!("{n}:{total}"));
    set("mex-total-chunks", &total.to_string());
    set("content-type", "application/octet-stream");
    if let Some(v) = &m.local_id {
        set("mex-localid", v);
    }
    if let Some(v) = &m.subject {
        set("mex-subject", v);
    }
    if let Some(v) = &m.content_type {
        set("mex-content-type", v);
    }
    let status = if total > 1 {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    (status, out, body.clone()).into_response()
}

async fn acknowledge(
    State(shared): State<Shared>,
    Path((mailbox, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if authorise(&mailbox, &headers).is_none() {
        return forbidden();
    }
    let mut messages = shared.messages.lock().expect("mesh lock");
    match messages.get(&id) {
        Some(m) if m.delivered && m.to == mailbox => {
            messages.remove(&id);
            Json(json!({ "messageId": id })).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "Message does not exist"),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn chunk_range(headers: &HeaderMap) -> Option<(usize, usize)> {
    let range = header(headers, "mex-chunk-range").unwrap_or_else(|| "1:1".into());
    let (n, total) = range.split_once(':')?;
    let (n, total) = (n.trim().parse().ok()?, total.trim().parse().ok()?);
    (n >= 1 && n <= total).then_some((n, total))
}

async fn send(
    State(shared): State<Shared>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(from) = authorise(&mailbox, &headers) else {
        return forbidden();
    };
    let Some(to) = header(&headers, "mex-to").filter(|t| MAILBOXES.contains(&t.as_str())) else {
        return error(StatusCode::NOT_FOUND, "Recipient mailbox not found");
    };
    let Some((1, total)) = chunk_range(&headers) else {
        return error(StatusCode::BAD_REQUEST, "Invalid Mex-Chunk-Range");
    };
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let mut chunks = vec![None; total];
    chunks[0] = Some(body);
    let stored = Stored {
        from,
        to,
        workflow_id: header(&headers, "mex-workflowid").unwrap_or_default(),
        local_id: header(&headers, "mex-localid"),
        subject: header(&headers, "mex-subject"),
        content_type: header(&headers, "mex-content-type"),
        delivered: total == 1,
        chunks,
        seq: shared.sent.fetch_add(1, Ordering::Relaxed) + 1,
    };
    shared
        .messages
        .lock()
        .expect("mesh lock")
        .insert(id.clone(), stored);
    (StatusCode::ACCEPTED, Json(json!({ "message_id": id }))).into_response()
}

async fn send_chunk(
    State(shared): State<Shared>,
    Path((mailbox, id, n)): Path<(String, String, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(from) = authorise(&mailbox, &headers) else {
        return forbidden();
    };
    let mut messages = shared.messages.lock().expect("mesh lock");
    let Some(m) = messages
        .get_mut(&id)
        .filter(|m| m.from == from && !m.delivered)
    else {
        return error(StatusCode::NOT_FOUND, "Message does not exist");
    };
    let Some(slot) = n.checked_sub(1).and_then(|i| m.chunks.get_mut(i)) else {
        return error(StatusCode::BAD_REQUEST, "Invalid chunk number");
    };
    *slot = Some(body);
    m.delivered = m.chunks.iter().all(Option::is_some);
    (StatusCode::ACCEPTED, Json(json!({ "message_id": id }))).into_response()
}

/// Checks a header value against a mailbox's password .
/// Returns the mailbox id when the HMAC matches.
pub fn verify(
    header: &str,
    shared_key: &[u8],
    password_of: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let rest = header.trim().strip_prefix(SCHEME)?.trim_start();
    let parts: Vec<&str> = rest.split(':').collect();
    let [mailbox, nonce, count, timestamp, mac] = parts.as_slice() else {
        return None;
    };
    let count: u64 = count.parse().ok()?;
    let password = password_of(mailbox)?;
    let expected = auth::header_value(mailbox, &password, shared_key, nonce, count, timestamp);
    let expected_mac = expected.rsplit(':').next()?;
    expected_mac
        .eq_ignore_ascii_case(mac)
        .then(|| (*mailbox).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_a_header_only_with_the_shared_key_and_the_password() {
        let header = auth::header_value(
            "X26ABC1",
            "password",
            b"TestKey",
            "nonce",
            0,
            "202601010000",
        );
        let verified = verify(&header, b"TestKey", |_| Some("password".into()));
        assert_eq!(verified.as_deref(), Some("X26ABC1"));
        assert_eq!(
            verify(&header, b"OtherKey", |_| Some("password".into())),
            None
        );
        assert_eq!(verify(&header, b"TestKey", |_| Some("wrong".into())), None);
    }
}
