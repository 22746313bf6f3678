//! Helpers shared by the end-to-end tests: topics, producing, reading topics back, offsets,
//! and a sandbox NHS API with a fresh application key.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ads_connector::cad::CadCall;
use ads_connector::keygen;
use ads_devkit::generate::{self, Generator};
use nhs_emulator as sandbox;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The real broker `scripts/test.sh` started (Tansu). Tests that call it are ignored (reported
/// as skipped) unless the build saw `ADS_TEST_KAFKA_BOOTSTRAP` (`build.rs`); run without it
/// (`--include-ignored`), they fail rather than pass without testing anything.
pub fn real_broker() -> Option<String> {
    match std::env::var("ADS_TEST_KAFKA_BOOTSTRAP") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => panic!("this test needs ADS_TEST_KAFKA_BOOTSTRAP (run scripts/test.sh)"),
    }
}

/// Unique topic and group names, so tests can share a broker and run in parallel.
pub struct Names {
    pub cad: String,
    pub ack: String,
    pub dlq: String,
    pub group: String,
}

impl Names {
    pub fn new(test: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..8];
        Self {
            cad: format!("{test}-cad-{id}"),
            ack: format!("{test}-ack-{id}"),
            dlq: format!("{test}-dlq-{id}"),
            group: format!("{test}-group-{id}"),
        }
    }
}

pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20");
    c
}

pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// One produced record and what the test expects of it.
#[derive(Debug, Clone)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
    pub call_id: String,
    pub valid: bool,
    pub snapshot_at: String,
}

/// Produces `n` records: new calls, some later snapshots of earlier calls, and every
/// `invalid_every`-th one truncated (invalid).
pub async fn produce_calls(
    bootstrap: &str,
    topic: &str,
    n: usize,
    seed: u64,
    invalid_every: usize,
) -> Vec<Produced> {
    CallSource::new(seed, invalid_every)
        .produce(bootstrap, topic, n)
        .await
}

/// A generator of call records that can be produced in several slices.
pub struct CallSource {
    generator: Generator,
    calls: Vec<CadCall>,
    invalid_every: usize,
    i: usize,
}

impl CallSource {
    pub fn new(seed: u64, invalid_every: usize) -> Self {
        Self {
            generator: Generator::new(seed),
            calls: Vec::new(),
            invalid_every,
            i: 0,
        }
    }

    pub async fn produce(&mut self, bootstrap: &str, topic: &str, n: usize) -> Vec<Produced> {
        let producer: FutureProducer = client(bootstrap).set("linger.ms", "5").create().unwrap();
        let mut out = Vec::with_capacity(n);
        let mut pending = Vec::new();
        for _ in 0..n {
            let i = self.i;
            self.i += 1;
            let call = if i % 7 == 3 && !self.calls.is_empty() {
                let j = (i * 31) % self.calls.len();
                let next = self.generator.next_update(&self.calls[j]);
                self.calls[j] = next.clone();
                next
            } else {
                let c = self.generator.next_call();
                self.calls.push(c.clone());
                c
            };
            let mut payload = generate::to_json_line(&call).into_bytes();
            let every = self.invalid_every;
            let valid = !(every > 0 && i % every == every - 1);
            if !valid {
                payload.truncate(payload.len() / 2);
            }
            let key = call.call_id.clone();
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
            pending.push((
                delivery,
                call.call_id.clone(),
                valid,
                call.snapshot_at.to_rfc3339(),
            ));
        }
        for (delivery, call_id, valid, snapshot_at) in pending {
            let delivered = delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            out.push(Produced {
                partition: delivered.partition,
                offset: delivered.offset,
                call_id,
                valid,
                snapshot_at,
            });
        }
        out
    }
}

/// A consumer of every partition of `topics` from their start, in a throwaway group that never
/// commits; `client` may carry extra properties (e.g. `isolation.level`).
pub fn reader_from_start(mut client: ClientConfig, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = client
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        for p in metadata.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Reads every partition of `topic` from the start until `expected` records arrived or the
/// timeout passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer = reader_from_start(client(bootstrap), &[topic]);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.unwrap().detach());
        }
    }
    // Anything beyond `expected` (duplicates) that is already there.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(m) = consumer.poll(Duration::from_millis(50)) {
            out.push(m.unwrap().detach());
        }
    }
    out
}

pub fn header<'a>(m: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// `(partition, offset)` of the source record an ack answers for.
pub fn ack_source(m: &OwnedMessage) -> (i32, i64, serde_json::Value) {
    let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
    let p = v["source"]["partition"].as_i64().unwrap() as i32;
    let o = v["source"]["offset"].as_i64().unwrap();
    (p, o, v)
}

/// `(partition, offset)` of the source record a dead letter carries.
pub fn dlq_source(m: &OwnedMessage) -> (i32, i64) {
    (
        header(m, "ads-source-partition").unwrap().parse().unwrap(),
        header(m, "ads-source-offset").unwrap().parse().unwrap(),
    )
}

/// The group's committed offset of every partition of `topic`.
pub fn committed(bootstrap: &str, group: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", group).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = consumer
        .committed_offsets(tpl, Timeout::After(Duration::from_secs(10)))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| {
            let c = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), c)
        })
        .collect()
}

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

/// The sandbox with authentication and one application whose key is freshly generated.
pub struct AuthSandbox {
    pub handle: sandbox::SandboxHandle,
    pub api_key_file: PathBuf,
    pub private_key: PathBuf,
    pub kid: String,
    pub dir: tempfile::TempDir,
}

pub async fn auth_sandbox() -> AuthSandbox {
    auth_sandbox_with(|_| {}).await
}

pub async fn auth_sandbox_with(configure: impl FnOnce(&mut sandbox::SandboxConfig)) -> AuthSandbox {
    let dir = tempfile::tempdir().unwrap();
    let kid = "test-1".to_string();
    let pair = keygen::generate(&kid, 2048).unwrap();
    let paths = keygen::write(&pair, dir.path()).unwrap();
    let api_key = format!("app-{}", uuid::Uuid::new_v4().simple());
    let api_key_file = dir.path().join("api-key");
    std::fs::write(&api_key_file, &api_key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = sandbox::SandboxConfig {
        apps: vec![sandbox::SandboxApp {
            api_key,
            jwks_path: Some(paths.jwks.clone()),
        }],
        ..sandbox::SandboxConfig::default()
    };
    configure(&mut cfg);
    let handle = sandbox::start(listener, cfg).await.unwrap();
    AuthSandbox {
        handle,
        api_key_file,
        private_key: paths.private_key,
        kid,
        dir,
    }
}

/// A connector configuration for `names` against `bootstrap` and the sandbox.
pub fn config_toml(
    bootstrap: &str,
    names: &Names,
    sandbox: &AuthSandbox,
    batch: &str,
    extra: &str,
) -> String {
    format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        group_id = "{group}"
        topics = ["{cad}"]
        ack_topic = "{ack}"
        dead_letter_topic = "{dlq}"
        session_timeout_ms = 10000
        revoke_drain_timeout_ms = 5000
        [nhs_api]
        environment = "custom"
        base_url = "{base}"
        token_url = "{token}"
        api_key_file = "{api_key_file}"
        private_key_file = "{key}"
        kid = "{kid}"
        [batch]
        {batch}
        [http]
        listen = "127.0.0.1:0"
        [shutdown]
        drain_timeout_s = 8
        {extra}
        "#,
        group = names.group,
        cad = names.cad,
        ack = names.ack,
        dlq = names.dlq,
        base = sandbox.handle.api_base_url(),
        token = sandbox.handle.token_url(),
        api_key_file = sandbox.api_key_file.display(),
        key = sandbox.private_key.display(),
        kid = sandbox.kid,
    )
}

/// Asserts the sandbox received every valid call, its newest snapshot last.
pub fn assert_sandbox_received_every_call(sandbox: &sandbox::SandboxHandle, produced: &[Produced]) {
    let received = sandbox.received_calls();
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for r in produced.iter().filter(|r| r.valid) {
        let e = newest.entry(&r.call_id).or_insert(&r.snapshot_at);
        if r.snapshot_at.as_str() > *e {
            *e = &r.snapshot_at;
        }
    }
    let got: std::collections::HashSet<&str> =
        received.iter().map(|c| c.call_id.as_str()).collect();
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

/// Produces `n` calls in `slices` slices spread over `over`, so faults hit a pipeline in motion.
pub async fn produce_paced(
    bootstrap: &str,
    topic: &str,
    n: usize,
    seed: u64,
    invalid_every: usize,
    slices: usize,
    over: Duration,
) -> Vec<Produced> {
    let mut out = Vec::new();
    let per = n.div_ceil(slices);
    for i in 0..slices {
        let mut part =
            produce_calls(bootstrap, topic, per, seed * 1000 + i as u64, invalid_every).await;
        out.append(&mut part);
        tokio::time::sleep(over / slices as u32).await;
    }
    out
}

/// Reads the ack and dead-letter topics until every produced record has an outcome (or the
/// timeout passes), then a little longer to catch duplicates.
pub fn read_outcomes(
    bootstrap: &str,
    names: &Names,
    produced: &[Produced],
    timeout: Duration,
) -> (Vec<OwnedMessage>, Vec<OwnedMessage>) {
    let consumer = reader_from_start(client(bootstrap), &[&names.ack, &names.dlq]);
    let wanted: std::collections::HashSet<(i32, i64)> =
        produced.iter().map(|r| (r.partition, r.offset)).collect();
    let mut seen = std::collections::HashSet::new();
    let (mut acks, mut dlq) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + timeout;
    let mut settle: Option<Instant> = None;
    while Instant::now() < settle.unwrap_or(deadline) {
        if settle.is_none() && wanted.iter().all(|k| seen.contains(k)) {
            settle = Some(Instant::now() + Duration::from_millis(700));
        }
        let Some(m) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let m = m.unwrap().detach();
        if m.topic() == names.ack {
            let (p, o, _) = ack_source(&m);
            seen.insert((p, o));
            acks.push(m);
        } else {
            seen.insert(dlq_source(&m));
            dlq.push(m);
        }
    }
    (acks, dlq)
}

/// After a crash or an expired revocation drain, work in flight is consumed and sent again, so
/// an older snapshot can reach the API after a newer one; the newer one is then always resent
/// after it. So: every call the API saw out of order must also have been resent (some snapshot
/// received twice), and the last snapshot the API received of every call is its newest.
pub fn assert_out_of_order_only_if_redelivered(
    received: &[sandbox::ReceivedCall],
    _acks: &[OwnedMessage],
) {
    type Ts = chrono::DateTime<chrono::FixedOffset>;
    let mut newest: HashMap<&str, Ts> = HashMap::new();
    let mut last: HashMap<&str, Ts> = HashMap::new();
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut resent: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut out_of_order: std::collections::HashSet<&str> = std::collections::HashSet::new();
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
