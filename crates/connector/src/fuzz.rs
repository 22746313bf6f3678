//! Fuzz harnesses: one function per boundary where bytes from outside enter the connector. Each
//! takes arbitrary bytes, drives them through the connector's own code for that boundary and
//! asserts the boundary's contract: no panic, and either a well-formed result or an error of a
//! bounded kind. A broken contract panics, which is how both drivers see a finding.
//!
//! Two drivers share these functions, so a case found by one is checked by the other:
//! - `tests/fuzz.rs` (stable Rust, inside `cargo test`, so in CI): replays every file of
//!   `fuzz/corpus/<harness>/`, then runs a fixed number of seeded mutations of that corpus;
//! - the cargo-fuzz targets of `fuzz/` (nightly, libFuzzer), one per harness, same names.
//!
//! | harness | boundary | input bytes |
//! |---|---|---|
//! | [`decode`] | [`cad::decode`] | a record value |
//! | [`record`] | the whole Kafka record through [`transform::transform`] and the dead-letter headers | [`RecordInput`] framing |
//! | [`token_response`] | the token endpoint's answer ([`auth`]) | `status\nbody` |
//! | [`submission_response`] | `Retry-After` and the API's answer through [`submitter::classify`] | `status\nretry-after\nbody` |
//! | [`mesh_response`] | every reader of a MESH answer (inbox page, count, error body, chunk range, gzip, `links.next`, DPS notification) | a body |
//! | [`configuration`] | [`Config::from_toml_str`] | TOML text |
//!
//! Not part of the connector's API (`#[doc(hidden)]`); nothing in the library uses it, so it sits
//! above every layer (`tests/architecture.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rdkafka::message::Headers;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use crate::auth::{self, AuthError, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME};
use crate::cad::{self, DecodeErrorKind};
use crate::config::Config;
use crate::dead_letter;
use crate::kafka::headers::RawHeader;
use crate::mapping::{map_call, MappingOptions};
use crate::mesh::client::{self as mesh_client, MAX_DECODED_BYTES};
use crate::mesh::correlation::Correlator;
use crate::mesh::notification::{DpsErrorRecord, MeshOrigin, Parsers};
use crate::mesh::poller::correlate;
use crate::metrics::DeadLetterKind;
use crate::offsets::RecordPos;
use crate::rate_limit::parse_retry_after;
use crate::source::{Envelope, Oversize};
use crate::submitter::{classify, Action, Attempt};
use crate::transform::{self, Transformed};

/// A harness: bytes in, a panic when the boundary breaks its contract.
pub type Harness = fn(&[u8]);

/// The harnesses by name (the corpus directory and cargo-fuzz target of each).
pub const HARNESSES: [(&str, Harness); 6] = [
    ("decode", decode),
    ("record", record),
    ("token_response", token_response),
    ("submission_response", submission_response),
    ("mesh_response", mesh_response),
    ("configuration", configuration),
];

/// `cad::decode` on a record value: an error names a `$` path and a bounded kind with a
/// one-entry problem list; an accepted call re-encodes to a record that decodes to the same call
/// and maps to a Bundle (or breaks only `response_time_before_call_answered`, the Bundle rule
/// the input contract leaves to the mapping stage).
pub fn decode(data: &[u8]) {
    match cad::decode(data) {
        Ok(call) => {
            let again = cad::decode(&call.to_json_bytes()).expect("a decoded call re-decodes");
            assert_eq!(again, call, "the decoder is a fixed point");
            if let Err(e) = map_call(&call, &MappingOptions::default()) {
                // The one refusal of a decoded call that is the data's fault: a response time
                // before the call was answered, which `cad.call.v1` does not rule out (the
                // record is dead-lettered `invalid_bundle` at the mapping stage).
                let problems = e.problems();
                assert!(
                    !problems.is_empty()
                        && problems
                            .iter()
                            .all(|p| p.rule == "response_time_before_call_answered"),
                    "a decoded call does not map: {e:?}"
                );
            }
        }
        Err(err) => {
            assert!(err.path().starts_with('$'));
            assert!(DecodeErrorKind::ALL.contains(&err.kind()));
            let problems = err.problems();
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].path, err.path());
            serde_json::to_string(&problems).expect("problems serialise");
        }
    }
}

/// One Kafka record as the [`record`] harness reads it from bytes: key, value and headers, each
/// of which may be absent, and whether the source found it oversized.
///
/// Framing (every byte string decodes to some record; a short input just ends early): a flags
/// byte (bit 0 key present, bit 1 value present, bit 2 oversized); the key as a u16 LE length
/// and its bytes; a header count byte and per header a u16 LE key length, the key, a byte (1:
/// the value follows), a u16 LE value length and the value; then the value, every byte left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordInput {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// The headers, keys and values as bytes.
    pub headers: Vec<RawHeader>,
    /// The source found the record above `kafka.max_record_bytes`.
    pub oversize: bool,
}

impl RecordInput {
    /// Reads the framing; never fails.
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut r = Reader(data);
        let flags = r.byte();
        let key = (flags & 1 != 0).then(|| {
            let n = r.u16();
            r.take(n).to_vec()
        });
        let count = r.byte();
        let mut headers = Vec::new();
        for _ in 0..count {
            if r.0.is_empty() {
                break;
            }
            let n = r.u16();
            let name = r.take(n).to_vec();
            let value = (r.byte() == 1).then(|| {
                let n = r.u16();
                r.take(n).to_vec()
            });
            headers.push((name, value));
        }
        Self {
            key,
            value: (flags & 2 != 0).then(|| r.0.to_vec()),
            headers,
            oversize: flags & 4 != 0,
        }
    }

    /// The framing of this record ([`Self::from_bytes`] reads it back). Keys and header parts
    /// longer than 65535 bytes are cut there.
    pub fn to_bytes(&self) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, bytes: &[u8]) {
            let n = bytes.len().min(u16::MAX as usize);
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.extend_from_slice(&bytes[..n]);
        }
        let flags = u8::from(self.key.is_some())
            | u8::from(self.value.is_some()) << 1
            | u8::from(self.oversize) << 2;
        let mut out = vec![flags];
        if let Some(key) = &self.key {
            put(&mut out, key);
        }
        let count = self.headers.len().min(u8::MAX as usize);
        out.push(count as u8);
        for (name, value) in &self.headers[..count] {
            put(&mut out, name);
            match value {
                Some(v) => {
                    out.push(1);
                    put(&mut out, v);
                }
                None => out.push(0),
            }
        }
        if let Some(value) = &self.value {
            out.extend_from_slice(value);
        }
        out
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> usize {
        let b = self.take(2);
        usize::from(b.first().copied().unwrap_or(0))
            | usize::from(b.get(1).copied().unwrap_or(0)) << 8
    }
}

/// What the transform stage makes of `input`, as the source would hand it over.
pub fn transform_record(input: &RecordInput) -> Transformed {
    let envelope = Envelope {
        pos: RecordPos {
            topic: Arc::from("cad.calls"),
            partition: 0,
            offset: 0,
            generation: 1,
        },
        key: input.key.clone(),
        payload: if input.oversize {
            None
        } else {
            input.value.clone()
        },
        headers: input.headers.clone(),
        timestamp_ms: None,
        traceparent: None,
        oversize: input.oversize.then(|| Oversize {
            bytes: input.value.as_ref().map_or(0, Vec::len),
            sha256: "0".repeat(64),
        }),
    };
    transform::transform(envelope, &MappingOptions::default())
}

/// The whole Kafka record (key, value, headers) through the transform stage: exactly one of a
/// mapped call (its Bundle JSON) or a dead letter of a bounded kind other than
/// `internal_error` (a panic the stage caught: a bug), whose headers (the record's, byte for
/// byte, plus the reasons) can be built.
pub fn record(data: &[u8]) {
    let input = RecordInput::from_bytes(data);
    match transform_record(&input) {
        Transformed::Mapped(call) => {
            assert!(!input.oversize && input.value.is_some());
            let bundle: serde_json::Value =
                serde_json::from_slice(&call.bytes).expect("a mapped call is JSON");
            assert!(bundle.is_object());
            assert!(!call.call_id.is_empty());
        }
        Transformed::Invalid(letter) => {
            assert_ne!(
                letter.kind,
                DeadLetterKind::InternalError,
                "the record made the connector panic: {}",
                letter.message
            );
            assert!(DeadLetterKind::all().any(|k| k == letter.kind));
            if input.oversize {
                assert_eq!(letter.kind, DeadLetterKind::RecordTooLarge);
            } else if input.value.is_none() {
                assert_eq!(letter.kind, DeadLetterKind::EmptyValue);
            }
            assert!(!letter.message.is_empty());
            if let Some(problems) = &letter.problems {
                let v: serde_json::Value =
                    serde_json::from_str(problems).expect("problems are JSON");
                assert!(v.is_array());
            }
            let reasons =
                6 + usize::from(letter.problems.is_some()) + 2 * usize::from(input.oversize);
            let headers = dead_letter::headers(&letter, None);
            assert_eq!(headers.count(), input.headers.len() + reasons);
        }
    }
}

/// The status line (`200\n…`) of a harness input and the rest; `200` and the whole input when
/// the input does not start with one.
fn status_and_rest(data: &[u8]) -> (u16, &[u8]) {
    if let Some(at) = data.iter().take(6).position(|b| *b == b'\n') {
        if let Some(status) = std::str::from_utf8(&data[..at])
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
        {
            return (status, &data[at + 1..]);
        }
    }
    (200, data)
}

/// The token endpoint's answer (`status\nbody`): a 200 gives a non-empty token and a lifetime
/// within [`MIN_TOKEN_LIFETIME`]..=[`MAX_TOKEN_LIFETIME`], or `bad_response`; any other status
/// is a refusal.
pub fn token_response(data: &[u8]) {
    let (status, body) = status_and_rest(data);
    if status == 200 {
        match auth::read_token(body) {
            Ok((token, lifetime, cut)) => {
                assert!(!token.is_empty());
                assert!((MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&lifetime));
                assert!(!cut || lifetime == MAX_TOKEN_LIFETIME);
            }
            Err(e) => {
                assert!(matches!(e, AuthError::BadResponse(_)), "{e}");
                assert!(e.is_transient());
                assert!(!e.to_string().is_empty());
            }
        }
    } else {
        let e = auth::refusal(status, body);
        assert!(matches!(e, AuthError::Refused { status: s, .. } if s == status));
        assert!(!e.kind().is_empty());
        assert!(!e.to_string().is_empty());
    }
}

/// The longest `Retry-After` the harness lets through (`nhs_api.request.max_retry_after_s`).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The API's answer to a submission (`status\nretry-after\nbody`): `Retry-After` read as the
/// submitter reads it (seconds or an HTTP-date, capped), then classified. An accepted answer is
/// a 2xx with a non-blank id; a rejection quotes at most the body's first KiB; a wait is never
/// above the cap.
pub fn submission_response(data: &[u8]) {
    let (status, rest) = status_and_rest(data);
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let retry_after = header
        .and_then(|h| parse_retry_after(&String::from_utf8_lossy(h), now).ok())
        .map(|wait| wait.min(MAX_RETRY_AFTER));
    let attempt = Attempt::Response {
        status,
        retry_after,
        body: Bytes::copy_from_slice(body),
    };
    match classify(&attempt) {
        Action::Accept(id) => {
            assert!((200..300).contains(&status));
            assert!(!id.trim().is_empty());
        }
        Action::Retry { after, .. } => assert!(after.is_none_or(|a| a <= MAX_RETRY_AFTER)),
        Action::RefreshToken => assert!(status == 401 || status == 403),
        Action::Misconfigured(_) => {}
        Action::Reject { kind, message } => {
            assert!(!(200..300).contains(&status));
            assert!(!kind.as_str().is_empty());
            let prefix = format!("HTTP {status}: ");
            assert!(message.starts_with(&prefix));
            // At most 1 KiB of body, each byte at worst a 3-byte replacement character.
            assert!(message.len() <= prefix.len() + 3 * 1024);
        }
    }
}

/// The base URL the MESH harness resolves `links.next` against.
const MESH_ROOT: &str = "https://mesh.example.nhs.uk/prefix/";

/// One MESH answer body through every reader of one: inbox page (and its `links.next`), count,
/// error description, `Mex-Chunk-Range`, gunzip (capped), and the DPS notification parsers with
/// the records they produce. Every failure is a bounded [`crate::mesh::MeshError`] kind; every
/// record serialises.
pub fn mesh_response(data: &[u8]) {
    let root = Url::parse(MESH_ROOT).expect("a valid URL");
    let mut links = vec![String::from_utf8_lossy(data).into_owned()];
    match mesh_client::read_inbox_page(data) {
        Ok(page) => links.extend(page.links.next),
        Err(e) => assert_eq!(e.kind(), "protocol"),
    }
    for next in links {
        match mesh_client::next_page_url(&root, &next) {
            Ok(url) => assert_eq!(url.origin(), root.origin()),
            Err(e) => assert_eq!(e.kind(), "protocol"),
        }
    }
    if let Err(e) = mesh_client::read_count(data) {
        assert_eq!(e.kind(), "protocol");
    }
    if let Some(d) = mesh_client::error_description(data) {
        assert!(!d.is_empty() && d.chars().count() <= mesh_client::MAX_DESCRIPTION);
        assert!(!d.chars().any(char::is_control));
    }
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert("mex-chunk-range", value);
        match mesh_client::chunk_total(&headers) {
            Ok(total) => assert!(total >= 1),
            Err(e) => assert_eq!(e.kind(), "protocol"),
        }
    }
    const GUNZIP_LIMIT: usize = 1 << 20;
    match mesh_client::gunzip(data, GUNZIP_LIMIT.min(MAX_DECODED_BYTES)) {
        Ok(out) => assert!(out.len() <= GUNZIP_LIMIT),
        Err(e) => assert_eq!(e.kind(), "encoding"),
    }
    let origin = MeshOrigin {
        message_id: "MSG-1".into(),
        workflow_id: Some("ADS_DPS_ERRORS".into()),
        local_id: None,
        retrieved_at: "2025-03-01T00:00:00Z".into(),
    };
    let correlator = Correlator::new(16);
    correlator.learn(data);
    let records = match Parsers::default().parse(data) {
        Some((format, notification)) => correlate(&correlator, format, origin, notification),
        None => vec![DpsErrorRecord::unknown(origin, data)],
    };
    assert!(!records.is_empty());
    for r in &records {
        serde_json::to_vec(r).expect("a DPS error record serialises");
    }
}

/// TOML text (bytes not UTF-8 replaced, as a file read would fail on them anyway) through
/// [`Config::from_toml_str`]: a validated configuration or an error with a message.
pub fn configuration(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Config::from_toml_str(&text) {
        assert!(!e.to_string().is_empty());
    }
}
