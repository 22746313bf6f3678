//! Correlation: from the API's submission id (what DPS names in a notification) to the calls and
//! consumed records it carried, learned from the ack topic.
//!
//! Input: `ads.ack.v1` records (each carries `api_id`, `call_id`, `provider_ods`, `bundle_id` and
//! its source topic/partition/offset). Output: [`Correlator::lookup`]. The reader
//! ([`AckReader`]) starts at the ack records written in the last `correlation_lookback_h` hours
//! (`offsets_for_times`), reads to the end, marks itself caught up, and then tails the topic, so
//! after a restart the map holds every submission of the look-back window again: nothing is kept
//! on disk. It uses no consumer group offsets (assign, never commit).
//!
//! Bound: at most `correlation_max_calls` acked calls are held (default 1 000 000); beyond it the
//! oldest submissions (by first ack seen) are forgotten whole, and a notification for one of them
//! is published uncorrelated (`correlated: false`, with the ids DPS gave). A held call costs
//! about 170 bytes with typical ids (measured by `tests/correlation_memory.rs`: the topic and
//! provider code are shared, the call and bundle ids stored once), so the default holds about
//! 170 MB at most: a week of acks at 100 000 a day, and at full quota (1800 submissions of 100
//! calls a minute) the last five or so minutes. Duplicate acks (a resend after a crash) are stored once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::notification::{CallIssues, SourceRef};

/// Distinct topic names and provider codes shared at most.
const MAX_INTERNED: usize = 10_000;

/// What one ack told us about one call of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedCall {
    /// Call id.
    pub call_id: String,
    /// Provider ODS code.
    pub provider_ods: String,
    /// Call Bundle id.
    pub bundle_id: String,
    /// The consumed record.
    pub source: SourceRef,
}

#[derive(Deserialize)]
struct AckView {
    schema: String,
    source: AckSourceView,
    call_id: String,
    #[serde(default)]
    provider_ods: String,
    api_id: Option<String>,
    #[serde(default)]
    bundle_id: String,
}

#[derive(Deserialize)]
struct AckSourceView {
    topic: String,
    partition: i32,
    offset: i64,
}

/// One held call, compact: the topic and provider are interned, the ids stored once.
struct Held {
    call_id: Box<str>,
    bundle_id: Box<str>,
    provider_ods: Arc<str>,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
}

impl Held {
    fn to_acked(&self) -> AckedCall {
        AckedCall {
            call_id: self.call_id.to_string(),
            provider_ods: self.provider_ods.to_string(),
            bundle_id: self.bundle_id.to_string(),
            source: SourceRef {
                topic: self.topic.to_string(),
                partition: self.partition,
                offset: self.offset,
            },
        }
    }
}

#[derive(Default)]
struct Inner {
    by_submission: HashMap<Arc<str>, Vec<Held>>,
    order: VecDeque<Arc<str>>,
    calls: usize,
    /// Topic names and provider codes (few distinct values), shared by every held call.
    interned: HashSet<Arc<str>>,
}

impl Inner {
    fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(v) = self.interned.get(value) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(value);
        // Topics and providers are few; past this many distinct values, stop sharing.
        if self.interned.len() < MAX_INTERNED {
            self.interned.insert(v.clone());
        }
        v
    }

    fn evict_to(&mut self, max_calls: usize) {
        while self.calls > max_calls {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(calls) = self.by_submission.remove(&old) {
                self.calls -= calls.len();
            }
        }
    }
}

/// The bounded submission → calls map; see the module header.
pub struct Correlator {
    inner: Mutex<Inner>,
    max_calls: usize,
    caught_up: AtomicBool,
}

impl Correlator {
    /// An empty map holding at most `max_calls` acked calls.
    pub fn new(max_calls: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_calls: max_calls.max(1),
            caught_up: AtomicBool::new(false),
        }
    }

    /// Learns from one ack record's JSON value; ignores anything that is not an `ads.ack.v1`
    /// with an `api_id`.
    pub fn learn(&self, ack: &[u8]) {
        let Ok(ack) = serde_json::from_slice::<AckView>(ack) else {
            return;
        };
        let Some(api_id) = ack
            .api_id
            .filter(|_| ack.schema == crate::acker::ACK_SCHEMA)
        else {
            return;
        };
        let mut inner = self.inner.lock().expect("correlator lock");
        let topic = inner.intern(&ack.source.topic);
        let provider_ods = inner.intern(&ack.provider_ods);
        let (partition, offset) = (ack.source.partition, ack.source.offset);
        let held = Held {
            call_id: ack.call_id.into(),
            bundle_id: ack.bundle_id.into(),
            provider_ods,
            topic,
            partition,
            offset,
        };
        match inner.by_submission.get_mut(api_id.as_str()) {
            Some(calls) => {
                let duplicate = calls.iter().any(|c| {
                    c.offset == offset
                        && c.partition == partition
                        && Arc::ptr_eq(&c.topic, &held.topic)
                });
                if duplicate {
                    return;
                }
                calls.push(held);
            }
            None => {
                let key: Arc<str> = Arc::from(api_id);
                inner.order.push_back(key.clone());
                inner.by_submission.insert(key, vec![held]);
            }
        }
        inner.calls += 1;
        inner.evict_to(self.max_calls);
    }

    /// Whether any ack for `submission_id` has been seen (and not evicted).
    pub fn knows(&self, submission_id: &str) -> bool {
        let inner = self.inner.lock().expect("correlator lock");
        inner.by_submission.contains_key(submission_id)
    }

    /// Submissions held.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("correlator lock").order.len()
    }

    /// Acked calls held (what the bound counts).
    pub fn calls(&self) -> usize {
        self.inner.lock().expect("correlator lock").calls
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The acked records of `call` inside `submission_id`: matched by bundle id when DPS gives
    /// one, else by call id, else (a submission of one call) that call. Empty when unknown.
    pub fn lookup(&self, submission_id: &str, call: &CallIssues) -> Vec<AckedCall> {
        let inner = self.inner.lock().expect("correlator lock");
        let Some(calls) = inner.by_submission.get(submission_id) else {
            return Vec::new();
        };
        // Without an id, only a submission of one call (however many snapshots) can be matched.
        let named = call.bundle_id.is_some() || call.call_id.is_some();
        if !named && calls.windows(2).any(|w| w[0].bundle_id != w[1].bundle_id) {
            return Vec::new();
        }
        let matching = |c: &&Held| match (&call.bundle_id, &call.call_id) {
            (Some(bundle), _) => &*c.bundle_id == bundle.as_str(),
            (None, Some(id)) => &*c.call_id == id.as_str(),
            (None, None) => true,
        };
        calls.iter().filter(matching).map(Held::to_acked).collect()
    }

    /// Whether the reader has read the ack topic up to where it ended when the reader started.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    fn set_caught_up(&self) {
        self.caught_up.store(true, Ordering::Release);
    }
}

/// Reads the ack topic into a [`Correlator`]; see the module header.
pub struct AckReader {
    /// Client properties (bootstrap servers, security), as the pipeline's.
    pub client: ClientConfig,
    /// The ack topic.
    pub topic: String,
    /// How far back to start.
    pub lookback: Duration,
    /// Where to learn into.
    pub correlator: Arc<Correlator>,
}

impl AckReader {
    /// Runs on a blocking thread until `stop`; errors are logged and retried.
    pub async fn run(self, stop: CancellationToken) {
        let result = tokio::task::spawn_blocking(move || self.read(&stop)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(message = "Ack topic reader stopped; DPS errors will be published uncorrelated.", %error)
            }
            Err(error) => tracing::error!(message = "Ack topic reader panicked.", %error),
        }
    }

    fn read(self, stop: &CancellationToken) -> Result<(), rdkafka::error::KafkaError> {
        let mut client = self.client;
        client
            .set("group.id", "ads-connector-dps-correlation")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50");
        let consumer: BaseConsumer = client.create()?;
        let timeout = Duration::from_secs(10);
        let partitions = loop {
            match consumer.fetch_metadata(Some(&self.topic), timeout) {
                Ok(meta) => {
                    let parts: Vec<i32> = meta
                        .topics()
                        .iter()
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect();
                    if !parts.is_empty() {
                        break parts;
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot read ack topic metadata; retrying.", %error)
                }
            }
            if stop.is_cancelled() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let since = chrono::Utc::now().timestamp_millis()
            - i64::try_from(self.lookback.as_millis()).unwrap_or(i64::MAX / 2);
        let mut times = TopicPartitionList::new();
        for p in &partitions {
            times.add_partition_offset(&self.topic, *p, Offset::Offset(since.max(0)))?;
        }
        let found = consumer.offsets_for_times(times, timeout)?;
        // `End` means "nothing newer" on a real broker, but some brokers (librdkafka's mock
        // cluster) answer it for any timestamp: where the partition is not empty, start at the
        // beginning instead and skip records older than the look-back by their timestamp.
        let mut start = TopicPartitionList::new();
        let mut targets: HashMap<i32, i64> = HashMap::new();
        for p in &partitions {
            let (low, high) = consumer.fetch_watermarks(&self.topic, *p, timeout)?;
            targets.insert(*p, high);
            let offset = found
                .find_partition(&self.topic, *p)
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(_)))
                .unwrap_or(if high > low {
                    Offset::Beginning
                } else {
                    Offset::End
                });
            start.add_partition_offset(&self.topic, *p, offset)?;
        }
        consumer.assign(&start)?;
        let mut positions: HashMap<i32, i64> = start
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.partition(), o),
                Offset::Beginning => (e.partition(), 0),
                _ => (e.partition(), -1),
            })
            .collect();
        let mut learned = 0u64;
        let caught_up = |positions: &HashMap<i32, i64>| {
            targets.iter().all(|(p, high)| {
                *high == 0
                    || positions
                        .get(p)
                        .is_some_and(|pos| *pos >= *high || *pos < 0)
            })
        };
        if caught_up(&positions) {
            self.correlator.set_caught_up();
        }
        while !stop.is_cancelled() {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = match message {
                Ok(m) => m,
                Err(error) => {
                    tracing::warn!(message = "Ack topic read failed.", %error);
                    continue;
                }
            };
            let recent = message.timestamp().to_millis().is_none_or(|t| t >= since);
            if let (true, Some(payload)) = (recent, message.payload()) {
                self.correlator.learn(payload);
                learned += 1;
            }
            positions.insert(message.partition(), message.offset() + 1);
            if !self.correlator.is_caught_up() && caught_up(&positions) {
                self.correlator.set_caught_up();
                tracing::info!(
                    message = "Ack topic read up to its end; DPS errors can be correlated.",
                    acks = learned,
                    submissions = self.correlator.len()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(api: &str, call: &str, bundle: &str, offset: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": "ads.ack.v1",
            "source": {"topic": "cad", "partition": 0, "offset": offset, "timestamp_ms": 1},
            "call_id": call, "provider_ods": "RX6", "outcome": "submitted",
            "api_id": api, "batch_id": "b", "bundle_id": bundle,
        }))
        .unwrap()
    }

    fn issues(bundle: Option<&str>, call: Option<&str>) -> CallIssues {
        CallIssues {
            bundle_id: bundle.map(Into::into),
            call_id: call.map(Into::into),
            provider_ods: None,
            issues: vec![],
        }
    }

    #[test]
    fn finds_calls_by_bundle_then_call_id_and_stores_duplicates_once() {
        let c = Correlator::new(10);
        c.learn(&ack("S1", "c1", "b1", 1));
        c.learn(&ack("S1", "c1", "b1", 1));
        c.learn(&ack("S1", "c2", "b2", 2));
        assert_eq!(
            c.lookup("S1", &issues(Some("b2"), None))[0].source.offset,
            2
        );
        assert_eq!(c.lookup("S1", &issues(None, Some("c1"))).len(), 1);
        assert!(c.lookup("S1", &issues(None, None)).is_empty());
        assert!(c.lookup("S2", &issues(Some("b1"), None)).is_empty());
    }

    #[test]
    fn forgets_the_oldest_submissions_whole_beyond_the_bound_on_calls() {
        let c = Correlator::new(3);
        c.learn(&ack("S1", "c1", "b1", 1));
        c.learn(&ack("S1", "c2", "b2", 2));
        c.learn(&ack("S2", "c3", "b3", 3));
        assert_eq!((c.len(), c.calls()), (2, 3));
        c.learn(&ack("S3", "c4", "b4", 4));
        assert_eq!((c.len(), c.calls()), (2, 2));
        assert!(!c.knows("S1"));
        assert!(c.knows("S2") && c.knows("S3"));
        assert_eq!(c.lookup("S3", &issues(None, None)).len(), 1);
    }

    #[test]
    fn a_submission_of_several_bundles_is_not_matched_without_an_id() {
        let c = Correlator::new(10);
        c.learn(&ack("S1", "c1", "b1", 1));
        c.learn(&ack("S1", "c1", "b1", 2));
        assert_eq!(c.lookup("S1", &issues(None, None)).len(), 2);
        c.learn(&ack("S1", "c2", "b2", 3));
        assert!(c.lookup("S1", &issues(None, None)).is_empty());
    }
}
