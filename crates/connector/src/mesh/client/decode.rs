//! Decoding a retrieved message: the chunk count from `Mex-Chunk-Range`, and each chunk's body,
//! gunzipped when served `Content-Encoding: gzip` (any other content encoding is refused). All
//! gunzipping is capped: more than the limit decoded is refused as [`MeshError::Encoding`]
//! (a gzip bomb), as is a corrupt gzip stream.

use std::io::Read;

use reqwest::header::HeaderMap;

use super::error::transport;
use super::{MeshError, MAX_DECODED_BYTES};

pub(crate) fn chunk_total(headers: &HeaderMap) -> Result<u32, MeshError> {
    let Some(range) = headers.get("mex-chunk-range") else {
        return Ok(1);
    };
    range
        .to_str()
        .ok()
        .and_then(|r| r.split_once(':'))
        .and_then(|(_, total)| total.trim().parse::<u32>().ok())
        .filter(|total| *total >= 1)
        .ok_or_else(|| MeshError::Protocol {
            operation: "retrieve",
            detail: "bad mex-chunk-range".into(),
        })
}

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The body of one chunk, gunzipped when served `Content-Encoding: gzip`; at most `limit` bytes
/// once decoded.
pub(super) async fn chunk_body(
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, MeshError> {
    let encoding = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .map(|e| e.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let bytes = response.bytes().await.map_err(transport)?;
    match encoding.as_deref() {
        None | Some("" | "identity") if bytes.len() <= limit => Ok(bytes.to_vec()),
        None | Some("" | "identity") => Err(too_large()),
        Some("gzip" | "x-gzip") => gunzip(&bytes, limit),
        Some(other) => Err(MeshError::Encoding(format!(
            "content-encoding {other} is not supported"
        ))),
    }
}

fn too_large() -> MeshError {
    MeshError::Encoding(format!(
        "message larger than {MAX_DECODED_BYTES} bytes once decoded"
    ))
}

/// Gunzips `data` (every gzip member), refusing more than `limit` decoded bytes.
pub(crate) fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, MeshError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| MeshError::Encoding(format!("corrupt gzip: {e}")))?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzips_within_the_cap_and_refuses_a_bomb() {
        assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
        // 10 MiB of zeros compresses to ~10 KiB: well past a 1 MiB cap once decoded.
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let err = gunzip(&bomb, 1024 * 1024).unwrap_err();
        assert_eq!(err.kind(), "encoding");
        assert!(err.to_string().contains("larger than"), "{err}");
        let err = gunzip(b"\x1f\x8bnot gzip at all", 1024).unwrap_err();
        assert!(err.to_string().contains("corrupt gzip"), "{err}");
    }

    #[test]
    fn reads_chunk_range() {
        let mut headers = HeaderMap::new();
        assert_eq!(chunk_total(&headers).unwrap(), 1);
        headers.insert("mex-chunk-range", "1:4".parse().unwrap());
        assert_eq!(chunk_total(&headers).unwrap(), 4);
        headers.insert("mex-chunk-range", "1:x".parse().unwrap());
        assert!(chunk_total(&headers).is_err());
    }
}
