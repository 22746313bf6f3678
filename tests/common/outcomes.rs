//! The connector's delivery invariants, asserted over what was produced and what came out:
//! acks, dead letters, committed offsets and the calls the sandbox API received.

use std::collections::{HashMap, HashSet};

use nhs_emulator::{ReceivedCall, SandboxHandle};
use rdkafka::message::OwnedMessage;

use super::kafka::{ack_source, committed, dlq_source, header, Produced};

/// Asserts the group committed, on every partition, the end offset of what was produced.
///
/// The end is taken from the delivery reports (the topics are unique to the test): Tansu 0.6.0
/// answers ListOffsets(latest) with a lower offset than the last record it acknowledged.
pub fn assert_committed_at_end(bootstrap: &str, group: &str, topic: &str, produced: &[Produced]) {
    let mut end: HashMap<i32, i64> = HashMap::new();
    for r in produced {
        let e = end.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let committed = committed(bootstrap, group, topic);
    for (partition, end) in end {
        assert_eq!(
            committed.get(&partition).copied(),
            Some(end),
            "partition {partition}: committed offset is not the end offset {end}"
        );
    }
}

/// Asserts the connector's invariant over what was produced and what came out.
pub fn assert_every_record_once(
    produced: &[Produced],
    acks: &[OwnedMessage],
    dlq: &[OwnedMessage],
) {
    let mut seen: HashMap<(i32, i64), (usize, usize)> = HashMap::new();
    for m in acks {
        let (p, o, v) = ack_source(m);
        assert_eq!(v["schema"], "ads.ack.v1");
        seen.entry((p, o)).or_default().0 += 1;
    }
    for m in dlq {
        seen.entry(dlq_source(m)).or_default().1 += 1;
        assert!(header(m, "ads-error-kind").is_some());
        assert!(header(m, "ads-error-stage").is_some());
    }
    for r in produced {
        let (acked, dead) = seen
            .get(&(r.partition, r.offset))
            .copied()
            .unwrap_or_default();
        assert_eq!(
            acked + dead,
            1,
            "record {}:{} acked {acked}× and dead-lettered {dead}×",
            r.partition,
            r.offset
        );
        if r.valid {
            assert_eq!(
                acked, 1,
                "valid record {}:{} was not acked",
                r.partition, r.offset
            );
        } else {
            assert_eq!(
                dead, 1,
                "invalid record {}:{} was not dead-lettered",
                r.partition, r.offset
            );
        }
    }
    assert_eq!(
        seen.len(),
        produced.len(),
        "acks or dead letters for records never produced"
    );
}

/// Asserts the sandbox received every valid call, its newest snapshot last.
pub fn assert_sandbox_received_every_call(sandbox: &SandboxHandle, produced: &[Produced]) {
    let received = sandbox.received_calls();
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for r in produced.iter().filter(|r| r.valid) {
        let e = newest.entry(&r.call_id).or_insert(&r.snapshot_at);
        if r.snapshot_at.as_str() > *e {
            *e = &r.snapshot_at;
        }
    }
    let got: HashSet<&str> = received.iter().map(|c| c.call_id.as_str()).collect();
    for call_id in newest.keys() {
        assert!(
            got.contains(call_id),
            "the API never received call {call_id}"
        );
    }
}

/// Asserts every produced record has at least one ack or dead letter (never both) and returns
/// the number of extra copies (duplicates).
pub fn assert_every_record_at_least_once(
    produced: &[Produced],
    acks: &[OwnedMessage],
    dlq: &[OwnedMessage],
) -> usize {
    let mut acked: HashMap<(i32, i64), Vec<String>> = HashMap::new();
    let mut dead: HashMap<(i32, i64), usize> = HashMap::new();
    for m in acks {
        let (p, o, v) = ack_source(m);
        acked
            .entry((p, o))
            .or_default()
            .push(v["bundle_id"].as_str().unwrap_or_default().to_string());
    }
    for m in dlq {
        *dead.entry(dlq_source(m)).or_default() += 1;
    }
    let mut duplicates = 0;
    for r in produced {
        let a = acked.get(&(r.partition, r.offset)).map_or(0, Vec::len);
        let d = dead.get(&(r.partition, r.offset)).copied().unwrap_or(0);
        assert!(a + d >= 1, "record {}:{} was lost", r.partition, r.offset);
        assert!(
            a == 0 || d == 0,
            "record {}:{} both acked and dead-lettered",
            r.partition,
            r.offset
        );
        assert_eq!(
            r.valid,
            a > 0,
            "record {}:{} valid={} but acked {a}×",
            r.partition,
            r.offset,
            r.valid
        );
        if let Some(ids) = acked.get(&(r.partition, r.offset)) {
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "a duplicate ack names another bundle"
            );
        }
        duplicates += a.saturating_sub(1) + d.saturating_sub(1);
    }
    duplicates
}

/// After a crash or an expired revocation drain, work in flight is consumed and sent again, so
/// an older snapshot can reach the API after a newer one; the newer one is then always resent
/// after it. So: every call the API saw out of order must also have been resent (some snapshot
/// received twice), and the last snapshot the API received of every call is its newest.
pub fn assert_out_of_order_only_if_redelivered(received: &[ReceivedCall], _acks: &[OwnedMessage]) {
    type Ts = chrono::DateTime<chrono::FixedOffset>;
    let mut newest: HashMap<&str, Ts> = HashMap::new();
    let mut last: HashMap<&str, Ts> = HashMap::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut resent: HashSet<&str> = HashSet::new();
    let mut out_of_order: HashSet<&str> = HashSet::new();
    for call in received {
        let Some(raw) = call.timestamp.as_deref() else {
            continue;
        };
        let Ok(ts) = chrono::DateTime::parse_from_rfc3339(raw) else {
            continue;
        };
        let id = call.call_id.as_str();
        if !seen.insert((id, raw)) {
            resent.insert(id);
        }
        match newest.get(id) {
            Some(n) if ts < *n => {
                out_of_order.insert(id);
            }
            Some(n) if ts == *n => {}
            _ => {
                newest.insert(id, ts);
            }
        }
        last.insert(id, ts);
    }
    let unexplained: Vec<_> = out_of_order.difference(&resent).collect();
    assert!(
        unexplained.is_empty(),
        "out of order without any resend: {unexplained:?}"
    );
    let stale: Vec<_> = newest
        .iter()
        .filter(|(id, n)| last[*id] != **n)
        .map(|(id, _)| id)
        .collect();
    assert!(
        stale.is_empty(),
        "the API was left holding an older snapshot of {stale:?}"
    );
}
