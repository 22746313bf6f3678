//! Helpers shared by the end-to-end tests: topics, producing, reading topics back, offsets,
//! and a sandbox NHS API with a fresh application key.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ads_connector::cad::CadCall;
use ads_connector::generate::{self, Generator};
use ads_connector::{keygen, sandbox};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

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
    let producer: FutureProducer = client(bootstrap).set("linger.ms", "5").create().unwrap();
    let mut generator = Generator::new(seed);
    let mut calls: Vec<CadCall> = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut pending = Vec::new();
    for i in 0..n {
        let call = if i % 7 == 3 && !calls.is_empty() {
            let j = (i * 31) % calls.len();
            let next = generator.next_update(&calls[j]);
            calls[j] = next.clone();
            next
        } else {
            let c = generator.next_call();
            calls.push(c.clone());
            c
        };
        let mut payload = generate::to_json_line(&call).into_bytes();
        let valid = !(invalid_every > 0 && i % invalid_every == invalid_every - 1);
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

/// Reads every partition of `topic` from the start until `expected` records arrived or the
/// timeout passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let kid = "test-1".to_string();
    let pair = keygen::generate(&kid, 2048).unwrap();
    let paths = keygen::write(&pair, dir.path()).unwrap();
    let api_key = format!("app-{}", uuid::Uuid::new_v4().simple());
    let api_key_file = dir.path().join("api-key");
    std::fs::write(&api_key_file, &api_key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = sandbox::start(
        listener,
        sandbox::SandboxConfig {
            apps: vec![sandbox::SandboxApp {
                api_key,
                jwks_path: Some(paths.jwks.clone()),
            }],
            ..sandbox::SandboxConfig::default()
        },
    )
    .await
    .unwrap();
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
