//! A client of the MESH API (the `/messageexchange` API that NHS England's MESH and its
//! `mesh-sandbox` serve): handshake, inbox list and count, retrieve (every chunk), acknowledge,
//! and send (single or chunked; the sandbox's DPS side and tests use it).
//!
//! Input: [`MeshClientConfig`] (base URL, mailbox, password, shared key, optional mTLS identity and
//! CA). Output: typed results or a [`MeshError`] that classifies itself: [`MeshError::kind`] is a
//! bounded label and [`MeshError::is_retryable`] says whether the next poll may succeed.
//! Every request carries a fresh `NHSMESH` header ([`super::auth`]) and
//! `Accept: application/vnd.mesh.v2+json`. Retrieval sends `Accept-Encoding: gzip`, as NHS
//! England's `mesh-client` does: a chunk served with `Content-Encoding: gzip` (each chunk is
//! compressed on its own, so they are decoded one by one) is gunzipped here, and a whole body
//! flagged `Mex-Content-Compressed: Y` that is itself gzip (the sender compressed the payload)
//! is gunzipped once assembled. Decoding is capped at [`MAX_DECODED_BYTES`] for the whole
//! message (a gzip bomb is refused as [`MeshError::Encoding`] and stays in MESH); any other
//! content encoding is refused the same way. Inbox listing follows `links.next` until the inbox
//! is listed whole. Message bodies are never logged.
//!
//! Layout: this file holds the configuration, the message types and [`MeshClient`]'s requests;
//! `client/error.rs` [`MeshError`] and how a transport error is classified (TLS or not);
//! `client/decode.rs` the chunk range, gzip decoding and its cap.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use url::Url;

use super::auth::MeshAuth;
use crate::config::mesh::{MeshConfig, SecretFileError};

mod decode;
mod error;

use decode::{chunk_body, GZIP_MAGIC};
pub(crate) use decode::{chunk_total, gunzip};
use error::transport;
pub use error::MeshError;
pub(crate) use error::{error_description, MAX_DESCRIPTION};

/// The MESH API version we speak.
pub const MESH_V2: &str = "application/vnd.mesh.v2+json";

/// The most a retrieved message may decode to (all chunks, after gunzip): 100 MiB, MESH's own
/// limit for a single-part message. Larger is refused as a gzip bomb.
pub const MAX_DECODED_BYTES: usize = 100 * 1024 * 1024;

/// The most inbox pages one [`MeshClient::list_inbox`] follows (a guard against a server that
/// keeps answering `links.next`).
pub const MAX_INBOX_PAGES: usize = 1000;

/// How to reach one mailbox.
#[derive(Clone)]
pub struct MeshClientConfig {
    /// Base URL, e.g. `https://mesh-sync.spineservices.nhs.uk` (no `/messageexchange`).
    pub url: Url,
    /// Mailbox id.
    pub mailbox: String,
    /// Mailbox password.
    pub password: String,
    /// The environment's shared key (the HMAC key).
    pub shared_key: Vec<u8>,
    /// Client certificate and private key, PEM, concatenated (mTLS, required by the real service).
    pub identity_pem: Option<Vec<u8>>,
    /// Extra CA bundle to trust, PEM (the NHS MESH CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl MeshClientConfig {
    /// The client configuration of `[mesh]`: reads its secret files.
    pub fn from_config(cfg: &MeshConfig) -> Result<Self, SecretFileError> {
        let secrets = cfg.read_secrets()?;
        Ok(Self {
            url: cfg.url.clone(),
            mailbox: cfg.mailbox.clone(),
            password: secrets.password,
            shared_key: secrets.shared_key,
            identity_pem: secrets.identity_pem,
            ca_pem: secrets.ca_pem,
            timeout: cfg.request_timeout,
        })
    }
}

impl std::fmt::Debug for MeshClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshClientConfig")
            .field("url", &self.url.as_str())
            .field("mailbox", &self.mailbox)
            .field("mtls", &self.identity_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// One message retrieved in full.
#[derive(Clone)]
pub struct MeshMessage {
    /// MESH message id.
    pub id: String,
    /// `Mex-WorkflowID`.
    pub workflow_id: Option<String>,
    /// `Mex-LocalID` (the sender's own reference).
    pub local_id: Option<String>,
    /// `Mex-Subject`.
    pub subject: Option<String>,
    /// `Mex-From`.
    pub from: Option<String>,
    /// `Mex-Content-Type`, else the response `Content-Type`.
    pub content_type: Option<String>,
    /// Chunks the message came in.
    pub chunks: u32,
    /// The whole body, chunks concatenated in order.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for MeshMessage {
    // Not derived: the body may carry patient data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshMessage")
            .field("id", &self.id)
            .field("workflow_id", &self.workflow_id)
            .field("chunks", &self.chunks)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// One page of an inbox listing.
#[derive(Deserialize)]
pub(crate) struct InboxPage {
    /// Message ids.
    pub(crate) messages: Vec<String>,
    #[serde(default)]
    pub(crate) links: InboxLinks,
}

/// An inbox page's links.
#[derive(Deserialize, Default)]
pub(crate) struct InboxLinks {
    /// The next page, while more remain.
    pub(crate) next: Option<String>,
}

#[derive(Deserialize)]
struct Count {
    count: u64,
}

/// `operation`'s JSON answer `bytes` as a `T`, or [`MeshError::Protocol`].
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    bytes: &[u8],
) -> Result<T, MeshError> {
    serde_json::from_slice(bytes).map_err(|e| MeshError::Protocol {
        operation,
        detail: e.to_string(),
    })
}

/// One inbox page: its message ids and its `links.next`.
pub(crate) fn read_inbox_page(body: &[u8]) -> Result<InboxPage, MeshError> {
    parse_json("list", body)
}

/// The `count` of a `…/count` answer.
pub(crate) fn read_count(body: &[u8]) -> Result<u64, MeshError> {
    parse_json::<Count>("count", body).map(|c| c.count)
}

/// The URL of an inbox page's `links.next`. MESH answers a path (`/messageexchange/…`): it goes
/// under the configured base URL `root` (which may carry a path prefix); an absolute link is
/// taken as is, and refused unless it points at `root`'s origin.
pub(crate) fn next_page_url(root: &Url, next: &str) -> Result<Url, MeshError> {
    let next = if next.starts_with('/') {
        format!("{}{next}", root.as_str().trim_end_matches('/'))
    } else {
        next.to_owned()
    };
    let url = Url::parse(&next).map_err(|e| MeshError::Protocol {
        operation: "list",
        detail: format!("bad links.next: {e}"),
    })?;
    if url.origin() != root.origin() {
        return Err(MeshError::Protocol {
            operation: "list",
            detail: "links.next points at another host".into(),
        });
    }
    Ok(url)
}

/// A MESH API client for one mailbox.
#[derive(Debug)]
pub struct MeshClient {
    http: reqwest::Client,
    root: Url,
    base: String,
    auth: MeshAuth,
}

impl MeshClient {
    /// Builds the HTTP client (with the mTLS identity and CA when configured).
    pub fn new(cfg: &MeshClientConfig) -> Result<Self, MeshError> {
        let mut builder = reqwest::Client::builder().timeout(cfg.timeout);
        if let Some(pem) = &cfg.identity_pem {
            let identity =
                reqwest::Identity::from_pem(pem).map_err(|e| MeshError::Build(e.to_string()))?;
            builder = builder.identity(identity);
        }
        if let Some(pem) = &cfg.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| MeshError::Build(e.to_string()))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| MeshError::Build(e.to_string()))?;
        Ok(Self {
            http,
            root: cfg.url.clone(),
            base: format!(
                "{}/messageexchange/{}",
                cfg.url.as_str().trim_end_matches('/'),
                cfg.mailbox
            ),
            auth: MeshAuth::new(&cfg.mailbox, &cfg.password, &cfg.shared_key),
        })
    }

    /// The mailbox id.
    pub fn mailbox(&self) -> &str {
        self.auth.mailbox()
    }

    /// A request to `{url}/messageexchange/{mailbox}{path}` with this mailbox's authorization and
    /// the MESH v2 `Accept` header: the operations this client lacks (the emulator's sender) are
    /// built on it.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.auth.header())
            .header(ACCEPT, MESH_V2)
    }

    /// Sends a request built by [`Self::request`]; any status but 2xx is a [`MeshError`].
    pub async fn send(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, MeshError> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => MeshError::Auth {
                mailbox: self.mailbox().to_owned(),
                status: status.as_u16(),
                // An unreadable error body only loses the reason, not the error.
                description: match response.bytes().await {
                    Ok(body) => error_description(&body),
                    Err(_) => None,
                },
            },
            _ => MeshError::Status {
                operation,
                status: status.as_u16(),
            },
        })
    }

    /// Reads a JSON answer of `operation`.
    pub async fn json<T: serde::de::DeserializeOwned>(
        operation: &'static str,
        response: reqwest::Response,
    ) -> Result<T, MeshError> {
        let bytes = response.bytes().await.map_err(transport)?;
        parse_json(operation, &bytes)
    }

    /// `POST /messageexchange/{mailbox}`: checks the credentials (and tells MESH who we are).
    pub async fn handshake(&self) -> Result<(), MeshError> {
        let request = self
            .request(Method::POST, "")
            .header(
                "mex-ClientVersion",
                concat!("ads-connector==", env!("CARGO_PKG_VERSION")),
            )
            .header("mex-OSName", std::env::consts::OS)
            .header("mex-OSArchitecture", std::env::consts::ARCH)
            .header("mex-OSVersion", "N/A")
            .header("mex-JavaVersion", "N/A");
        self.send("handshake", request).await.map(drop)
    }

    /// `GET …/count`: messages waiting.
    pub async fn count(&self) -> Result<u64, MeshError> {
        let response = self
            .send("count", self.request(Method::GET, "/count"))
            .await?;
        Ok(Self::json::<Count>("count", response).await?.count)
    }

    /// `GET …/inbox`: ids of every message waiting, in inbox order, optionally filtered by one
    /// workflow id. Pages of `max_results` (10–5000) are requested; while a page carries
    /// `links.next` (MESH sets it when more messages remain), that link is followed, so nothing
    /// beyond the first page is skipped. A page may be empty and still carry `links.next`: with
    /// a `workflow_filter`, MESH filters each page of the inbox after taking it (NHS England's
    /// `mesh-client`, `MeshClient.list_messages`: "if workflow_filter is set it's possible to
    /// receive an empty page when more results exist outside the first max_results"), so an
    /// empty page does not end the listing; only a page without `links.next` does, or a `next`
    /// already followed (a server looping on one cursor), or [`MAX_INBOX_PAGES`]. Nothing is
    /// retrieved or acknowledged while listing, so the `continue_from` cursors stay valid. Ids
    /// are deduplicated.
    pub async fn list_inbox(
        &self,
        workflow: Option<&str>,
        max_results: u32,
    ) -> Result<Vec<String>, MeshError> {
        let mut request = self
            .request(Method::GET, "/inbox")
            .query(&[("max_results", max_results.clamp(10, 5000).to_string())]);
        if let Some(workflow) = workflow {
            request = request.query(&[("workflow_filter", workflow)]);
        }
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut followed = HashSet::new();
        for page_number in 1..=MAX_INBOX_PAGES {
            let response = self.send("list", request).await?;
            let page = read_inbox_page(&response.bytes().await.map_err(transport)?)?;
            for id in page.messages {
                if seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
            // An empty page with a `next` goes on (see above); a `next` already followed ends
            // the listing (a server looping on one cursor).
            let Some(next) = page.links.next.filter(|next| followed.insert(next.clone())) else {
                break;
            };
            if page_number == MAX_INBOX_PAGES {
                tracing::warn!(
                    message = "MESH inbox listing stopped at the page limit; the rest waits for the next poll.",
                    pages = MAX_INBOX_PAGES,
                    listed = ids.len()
                );
                break;
            }
            let url = next_page_url(&self.root, &next)?;
            request = self
                .http
                .get(url)
                .header(AUTHORIZATION, self.auth.header())
                .header(ACCEPT, MESH_V2);
        }
        Ok(ids)
    }

    /// `GET …/inbox/{id}` then `…/inbox/{id}/{n}` for every further chunk.
    pub async fn retrieve(&self, id: &str) -> Result<MeshMessage, MeshError> {
        let first = self.chunk(id, 1).await?;
        let headers = first.headers().clone();
        let total = chunk_total(&headers)?;
        let mut body = chunk_body(first, MAX_DECODED_BYTES).await?;
        for n in 2..=total {
            let room = MAX_DECODED_BYTES - body.len();
            body.extend(chunk_body(self.chunk(id, n).await?, room).await?);
        }
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The sender compressed the payload itself (MESH passes it through as is).
        let flagged = get("mex-content-compressed").is_some_and(|v| {
            matches!(v.trim().to_ascii_uppercase().as_str(), "Y" | "YES" | "TRUE")
        });
        if flagged && body.starts_with(&GZIP_MAGIC) {
            body = gunzip(&body, MAX_DECODED_BYTES)?;
        }
        Ok(MeshMessage {
            id: id.to_owned(),
            workflow_id: get("mex-workflowid"),
            local_id: get("mex-localid"),
            subject: get("mex-subject"),
            from: get("mex-from"),
            content_type: get("mex-content-type").or_else(|| get("content-type")),
            chunks: total,
            body,
        })
    }

    async fn chunk(&self, id: &str, n: u32) -> Result<reqwest::Response, MeshError> {
        let path = if n == 1 {
            format!("/inbox/{id}")
        } else {
            format!("/inbox/{id}/{n}")
        };
        let request = self
            .request(Method::GET, &path)
            .header(ACCEPT_ENCODING, "gzip");
        match self.send("retrieve", request).await {
            Err(MeshError::Status {
                status: 404 | 410, ..
            }) => Err(MeshError::Gone(id.to_owned())),
            other => other,
        }
    }

    /// `PUT …/inbox/{id}/status/acknowledged`: MESH deletes the message.
    pub async fn acknowledge(&self, id: &str) -> Result<(), MeshError> {
        let path = format!("/inbox/{id}/status/acknowledged");
        match self
            .send("acknowledge", self.request(Method::PUT, &path))
            .await
        {
            Err(MeshError::Status {
                status: 404 | 410, ..
            }) => Err(MeshError::Gone(id.to_owned())),
            other => other.map(drop),
        }
    }
}
