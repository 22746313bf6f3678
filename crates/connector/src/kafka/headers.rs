//! Record headers as bytes, both ways, so no header can stop the pipeline.
//!
//! rdkafka's header accessors turn a header *key* into `&str` with an `unwrap` (rdkafka 0.39,
//! `BorrowedHeaders::try_get`, `message.rs`): a key that is not UTF-8 panics there, and any
//! producer on a topic can write one. So the source reads headers through librdkafka's C API
//! ([`read`]), keys and values as bytes, and the dead-letter stage writes them back byte for
//! byte ([`owned`]). Where a header is only looked for (`traceparent`), a key or value that is
//! not UTF-8 simply does not match.

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

use rdkafka::bindings as rd;
use rdkafka::message::{BorrowedMessage, OwnedHeaders};

/// One header: key and value (`None` for a null value), as bytes.
pub type RawHeader = (Vec<u8>, Option<Vec<u8>>);

/// Every header of `message`, in order, as bytes.
pub fn read(message: &BorrowedMessage<'_>) -> Vec<RawHeader> {
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live rd_kafka_message_t of `message`; librdkafka fills
    // `headers` with a pointer it owns for the message's lifetime (or returns an error when
    // the message has none).
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is valid while `message` is borrowed.
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    let mut out = Vec::with_capacity(count);
    for idx in 0..count {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx` < count; librdkafka writes pointers into its own storage.
        let err =
            unsafe { rd::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka stores header names NUL-terminated; the bytes live as long as
        // `message`, and are copied here.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
        let value = (!value.is_null()).then(|| {
            // SAFETY: `value` points at `size` bytes owned by the message.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec()
        });
        out.push((key, value));
    }
    out
}

/// Headers to produce, keys and values as given (bytes that are not UTF-8 included).
pub fn owned<'a>(headers: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> OwnedHeaders {
    let owned = OwnedHeaders::new_with_capacity(8);
    {
        // rdkafka's own convention: a `&BorrowedHeaders` *is* the rd_kafka_headers_t pointer
        // (`BorrowedHeaders::as_native_ptr` casts the reference), and `as_borrowed` hands out
        // the `OwnedHeaders`' one. `OwnedHeaders::insert` only takes `&str` keys.
        let native = owned.as_borrowed() as *const _ as *mut rd::rd_kafka_headers_t;
        for (key, value) in headers {
            let (value_ptr, value_len) = match value {
                Some(v) => (v.as_ptr().cast::<c_void>(), v.len() as isize),
                None => (std::ptr::null(), 0),
            };
            // SAFETY: `native` is the live headers list of `owned`; librdkafka copies the key
            // and value bytes. It fails only on a read-only list, which this one is not.
            let err = unsafe {
                rd::rd_kafka_header_add(
                    native,
                    key.as_ptr().cast::<c_char>(),
                    key.len() as isize,
                    value_ptr,
                    value_len,
                )
            };
            debug_assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    owned
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;

    use super::*;

    #[tokio::test]
    async fn headers_that_are_not_utf8_round_trip_byte_for_byte_without_a_panic() {
        let cluster = MockCluster::new(1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let sent: Vec<RawHeader> = vec![
            (b"\xff\xfe-not-utf8".to_vec(), Some(b"\xc3\x28".to_vec())),
            (b"traceparent".to_vec(), None),
            (b"plain".to_vec(), Some(b"value".to_vec())),
        ];
        let headers = owned(sent.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        assert_eq!(headers.count(), 3);
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to("t")
                    .payload(b"x".as_slice())
                    .headers(headers),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&["t"]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let message = loop {
            assert!(std::time::Instant::now() < deadline, "no record");
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                break m;
            }
        };
        assert_eq!(read(&message), sent);
        // Why this module exists: rdkafka's own accessor panics on the first header.
        let rdkafka_view = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            message.headers().map(|h| h.iter().count())
        }));
        assert!(
            rdkafka_view.is_err(),
            "rdkafka's header accessor no longer panics"
        );
    }
}
