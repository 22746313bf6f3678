//! [`RequestBody`]: a submission's request body as the buffers it is made of.
//!
//! **In:** the call Bundles' own serialized bytes and the few bytes of the `batch` Bundle
//! around them. **Out:** the body reqwest sends, frame by frame, with its exact length (so the
//! request carries `Content-Length`, never chunked transfer encoding), as often as the
//! submission is attempted. The Bundles are never copied into one buffer: a 1.5 MB submission
//! would otherwise be copied (and its fresh pages faulted in) once more on every POST, and held
//! twice while in flight. Pure; never fails.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// A request body: its parts in order, shared by every attempt.
#[derive(Clone, Debug, Default)]
pub struct RequestBody {
    parts: Arc<[Bytes]>,
    len: usize,
}

impl RequestBody {
    /// The body made of `parts`, in order (empty parts are left out).
    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let parts: Arc<[Bytes]> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let len = parts.iter().map(Bytes::len).sum();
        RequestBody { parts, len }
    }

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body in one buffer (a copy: for tools and tests, not the request).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for part in self.parts.iter() {
            out.extend_from_slice(part);
        }
        out
    }

    /// The body of one request, from its first byte.
    pub fn to_reqwest(&self) -> reqwest::Body {
        reqwest::Body::wrap(Frames {
            parts: Arc::clone(&self.parts),
            next: 0,
            left: self.len as u64,
        })
    }
}

/// One sending of a [`RequestBody`]: each part a data frame, its length known to the end.
struct Frames {
    parts: Arc<[Bytes]>,
    next: usize,
    left: u64,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(part) = self.parts.get(self.next).cloned() else {
            return Poll::Ready(None);
        };
        self.next += 1;
        self.left -= part.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.parts.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_body_is_its_parts_in_order_and_its_length_is_theirs() {
        let body = RequestBody::from_parts([
            Bytes::from_static(b"{\"a\":"),
            Bytes::new(),
            Bytes::from(b"[1,2]".to_vec()),
            Bytes::from_static(b"}"),
        ]);
        assert_eq!(body.to_vec(), b"{\"a\":[1,2]}");
        assert_eq!(body.len(), 11);
        assert!(!body.is_empty() && RequestBody::default().is_empty());
    }

    /// Reads one HTTP/1.1 request off `socket`: its head (lower-cased) and its body, taken by
    /// `Content-Length` (a chunked body would not parse as the body and fail the test).
    async fn read_request(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let head_end = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the connection closed before the request's head ended"
            );
            buf.extend_from_slice(&chunk[..n]);
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec())
            .unwrap()
            .to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a Content-Length header")
            .trim()
            .parse()
            .unwrap();
        while buf.len() < head_end + length {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before the body ended");
            buf.extend_from_slice(&chunk[..n]);
        }
        (head, buf[head_end..].to_vec())
    }

    #[tokio::test]
    async fn reqwest_sends_the_parts_as_one_body_with_its_content_length_on_every_attempt() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let body = RequestBody::from_parts(
            [
                b"[\"".to_vec(),
                big,
                b"\",\"".to_vec(),
                b"z".repeat(70_000),
                b"\"]".to_vec(),
            ]
            .into_iter()
            .map(Bytes::from),
        );
        let expected = body.to_vec();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (head, received) = read_request(&mut socket).await;
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                seen.push((head, received));
            }
            seen
        });
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let response = client
                .post(&url)
                .body(body.to_reqwest())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        for (head, received) in server.await.unwrap() {
            assert!(!head.contains("transfer-encoding"), "{head}");
            assert!(
                head.contains(&format!("content-length: {}\r\n", expected.len())),
                "{head}"
            );
            assert!(
                received == expected,
                "the body sent is not the parts in order"
            );
        }
    }
}
