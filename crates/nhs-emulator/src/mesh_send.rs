//! Sending MESH messages: what DPS does to a trust's mailbox, and what the connector never does.
//!
//! The connector only reads its inbox; sending lives here, beside the emulator, built on the
//! product client's authenticated [`MeshClient::request`]. `POST …/outbox` sends the first chunk
//! (`Mex-Chunk-Range: 1:N`), `POST …/outbox/{id}/{n}` the others, as NHS England's MESH API and
//! its `mesh-client` do.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::Deserialize;

use ads_connector::mesh::{MeshClient, MeshError};

/// Optional headers of a message to send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// `Mex-WorkflowID`.
    pub workflow_id: String,
    /// `Mex-LocalID`.
    pub local_id: Option<String>,
    /// `Mex-Subject`.
    pub subject: Option<String>,
    /// `Mex-Content-Type`.
    pub content_type: Option<String>,
    /// Split the body into chunks of at most this many bytes (`None` = one chunk).
    pub chunk_size: Option<usize>,
}

#[derive(Deserialize)]
struct Sent {
    message_id: String,
}

/// Sending, for a [`MeshClient`] (import the trait to call it).
pub trait MeshSend {
    /// `POST …/outbox` (and `…/outbox/{id}/{n}` for further chunks): sends `body` to `to` and
    /// returns the message id.
    fn send_message(
        &self,
        to: &str,
        body: &[u8],
        options: &SendOptions,
    ) -> impl std::future::Future<Output = Result<String, MeshError>> + Send;
}

impl MeshSend for MeshClient {
    /// `POST …/outbox` (and `…/outbox/{id}/{n}` for further chunks): sends `body` to `to`.
    async fn send_message(
        &self,
        to: &str,
        body: &[u8],
        options: &SendOptions,
    ) -> Result<String, MeshError> {
        let size = options.chunk_size.unwrap_or(usize::MAX).max(1);
        let chunks: Vec<&[u8]> = if body.is_empty() {
            vec![body]
        } else {
            body.chunks(size).collect()
        };
        let total = chunks.len();
        let mut request = self
            .request(Method::POST, "/outbox")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("mex-to", to)
            .header("mex-workflowid", &options.workflow_id)
            .header("mex-chunk-range", format!("1:{total}"));
        if let Some(v) = &options.local_id {
            request = request.header("mex-localid", v);
        }
        if let Some(v) = &options.subject {
            request = request.header("mex-subject", v);
        }
        if let Some(v) = &options.content_type {
            request = request.header("mex-content-type", v);
        }
        let response = self.send("send", request.body(chunks[0].to_vec())).await?;
        let id = MeshClient::json::<Sent>("send", response).await?.message_id;
        for (i, chunk) in chunks.iter().enumerate().skip(1) {
            let n = i + 1;
            let request = self
                .request(Method::POST, &format!("/outbox/{id}/{n}"))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header("mex-chunk-range", format!("{n}:{total}"))
                .body(chunk.to_vec());
            self.send("send", request).await?;
        }
        Ok(id)
    }
}
