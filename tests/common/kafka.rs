//! Kafka for the tests: librdkafka's mock cluster or a real broker (plain or secured), unique
//! topic names, client configurations, producing generated calls (with or without a
//! `traceparent`), reading topics back, and committed offsets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ads_connector::cad::CadCall;
use ads_devkit::generate::{self, Generator};
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Unique topic and group names, so tests can share a broker and run in parallel.
#[derive(Debug, Clone)]
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

    /// The test's topics: `cad` in `cad_partitions` partitions, `ack` and `dlq` in one each.
    pub fn topics(&self, cad_partitions: i32) -> [(&str, i32); 3] {
        [(&self.cad, cad_partitions), (&self.ack, 1), (&self.dlq, 1)]
    }
}

/// Where a test's records go: librdkafka's in-process mock cluster, or a real broker (see
/// [`real_broker`](super::env::real_broker)).
pub enum Broker {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Real(String),
}

impl Broker {
    /// A mock cluster of `brokers` brokers with `topics` (name, partitions), replication 1.
    pub fn mock(brokers: i32, topics: &[(&str, i32)]) -> Self {
        let cluster = MockCluster::new(brokers).unwrap();
        for (topic, partitions) in topics {
            cluster.create_topic(topic, *partitions, 1).unwrap();
        }
        Self::Mock(cluster)
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Self::Mock(cluster) => cluster.bootstrap_servers(),
            Self::Real(bootstrap) => bootstrap.clone(),
        }
    }

    /// Creates `topics` (name, partitions), replication 1.
    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        match self {
            Self::Mock(cluster) => {
                for (topic, partitions) in topics {
                    cluster.create_topic(topic, *partitions, 1).unwrap();
                }
            }
            Self::Real(bootstrap) => create_topics(bootstrap, topics).await,
        }
    }

    /// The mock cluster (to take brokers down or inject errors); panics on a real broker.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        match self {
            Self::Mock(cluster) => cluster,
            Self::Real(bootstrap) => panic!("{bootstrap} is a real broker, not the mock cluster"),
        }
    }
}

/// A test client of `bootstrap`; with the security properties of `scripts/tansu-secure.sh`'s
/// brokers when it is one of them, so every helper here works on them unchanged.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20");
    if let Some(broker) = SecuredBroker::from_env(bootstrap) {
        for (key, value) in broker.properties() {
            c.set(key, value);
        }
    }
    c
}

/// A broker of `scripts/tansu-secure.sh` and how a client authenticates to it; the fields are
/// public so a test can get one wrong (a password file, a CA).
#[derive(Debug, Clone)]
pub struct SecuredBroker {
    pub bootstrap: String,
    /// `SASL_SSL` or `SSL`.
    pub protocol: &'static str,
    /// SASL SCRAM-SHA-512 user and the file of its password (`SASL_SSL`).
    pub sasl: Option<(String, PathBuf)>,
    /// The CA the client trusts.
    pub ca: PathBuf,
    /// Client certificate and key (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl SecuredBroker {
    /// SASL SCRAM-SHA-512 over TLS, with the user of `dir`.
    pub fn sasl_ssl(bootstrap: String, dir: &Path) -> Self {
        let username = std::fs::read_to_string(dir.join("username")).unwrap();
        Self {
            bootstrap,
            protocol: "SASL_SSL",
            sasl: Some((username.trim().to_string(), dir.join("password"))),
            ca: dir.join("ca.pem"),
            client_cert: None,
        }
    }

    /// TLS with the client certificate of `dir`.
    pub fn mutual_tls(bootstrap: String, dir: &Path) -> Self {
        Self {
            bootstrap,
            protocol: "SSL",
            sasl: None,
            ca: dir.join("ca.pem"),
            client_cert: Some((dir.join("client.pem"), dir.join("client.key"))),
        }
    }

    /// The secured broker at `bootstrap`, if the environment names one.
    fn from_env(bootstrap: &str) -> Option<Self> {
        let is = |var: &str| std::env::var(var).is_ok_and(|v| v == bootstrap);
        let dir = || PathBuf::from(std::env::var("ADS_TEST_KAFKA_SECURE_DIR").unwrap());
        if is("ADS_TEST_KAFKA_SECURE_BOOTSTRAP") {
            Some(Self::sasl_ssl(bootstrap.into(), &dir()))
        } else if is("ADS_TEST_KAFKA_MTLS_BOOTSTRAP") {
            Some(Self::mutual_tls(bootstrap.into(), &dir()))
        } else {
            None
        }
    }

    /// The librdkafka properties, without the password (see [`Self::properties`]).
    fn public_properties(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        let mut props = vec![
            ("security.protocol", self.protocol.to_string()),
            ("ssl.ca.location", path(&self.ca)),
        ];
        if let Some((username, _)) = &self.sasl {
            props.push(("sasl.mechanism", "SCRAM-SHA-512".into()));
            props.push(("sasl.username", username.clone()));
        }
        if let Some((cert, key)) = &self.client_cert {
            props.push(("ssl.certificate.location", path(cert)));
            props.push(("ssl.key.location", path(key)));
        }
        props
    }

    /// The librdkafka properties of a test client, the password read from its file.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut props = self.public_properties();
        if let Some((_, file)) = &self.sasl {
            let password = std::fs::read_to_string(file).unwrap();
            props.push(("sasl.password", password.trim().to_string()));
        }
        props
    }

    /// The connector's `[kafka]` security keys: `properties` and `sasl_password_file`.
    pub fn kafka_toml(&self) -> String {
        let props: Vec<String> = self
            .public_properties()
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
            .collect();
        let mut toml = format!("properties = {{ {} }}\n", props.join(", "));
        if let Some((_, file)) = &self.sasl {
            toml.push_str(&format!("sasl_password_file = \"{}\"\n", file.display()));
        }
        toml
    }
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

/// A producer to `bootstrap` that lingers 5 ms.
pub fn producer(bootstrap: &str) -> FutureProducer {
    client(bootstrap).set("linger.ms", "5").create().unwrap()
}

/// A random W3C `traceparent` (version 00, sampled).
pub fn random_traceparent(rng: &mut impl Rng) -> String {
    format!("00-{:032x}-{:016x}-01", rng.gen::<u128>(), rng.gen::<u64>())
}

/// Produces one record with a `traceparent` header, as an instrumented CAD producer would;
/// returns its `(partition, offset)`.
pub async fn send_traced(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &str,
    traceparent: &str,
) -> (i32, i64) {
    let headers = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some(traceparent),
    });
    let record = FutureRecord::to(topic)
        .key(key)
        .payload(payload)
        .headers(headers);
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    (delivered.partition, delivered.offset)
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
        self.produce_through(&producer(bootstrap), topic, n).await
    }

    /// [`Self::produce`] through `producer` (a transactional one, say).
    pub async fn produce_through(
        &mut self,
        producer: &FutureProducer,
        topic: &str,
        n: usize,
    ) -> Vec<Produced> {
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
            let key = call.call_id.to_string();
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
            pending.push((
                delivery,
                call.call_id.to_string(),
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
    // The wanted records not seen yet (a count, not a scan per message: 200k records).
    let mut missing = wanted.len();
    let (mut acks, mut dlq) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + timeout;
    let mut settle: Option<Instant> = None;
    while Instant::now() < settle.unwrap_or(deadline) {
        if settle.is_none() && missing == 0 {
            settle = Some(Instant::now() + Duration::from_millis(700));
        }
        let Some(m) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let m = m.unwrap().detach();
        let source = if m.topic() == names.ack {
            let (p, o, _) = ack_source(&m);
            acks.push(m);
            (p, o)
        } else {
            let source = dlq_source(&m);
            dlq.push(m);
            source
        };
        if seen.insert(source) && wanted.contains(&source) {
            missing -= 1;
        }
    }
    (acks, dlq)
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

/// [`read_topic`] off the async runtime.
pub async fn read_topic_async(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let (b, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_topic(&b, &topic, expected, timeout))
        .await
        .unwrap()
}

/// Reads, at once and off the async runtime, `names.ack` until `acks` records and `names.dlq`
/// until `dead` records arrived (each within `timeout`).
pub async fn read_acks_and_dead_letters(
    bootstrap: &str,
    names: &Names,
    acks: usize,
    dead: usize,
    timeout: Duration,
) -> (Vec<OwnedMessage>, Vec<OwnedMessage>) {
    let acks = read_topic_async(bootstrap, &names.ack, acks, timeout);
    let dead = read_topic_async(bootstrap, &names.dlq, dead, timeout);
    tokio::join!(acks, dead)
}

/// Produces `rounds` snapshots of each of `calls` calls, round by round (every call's first
/// snapshot, then every call's second, …), so the snapshots of one call lie far apart in the
/// log, as in a day's backlog. Each snapshot is newer than the one before. With
/// `invalid_newest_every` > 0, the last snapshot of every such call is truncated (invalid).
pub async fn produce_snapshots(
    bootstrap: &str,
    topic: &str,
    calls: usize,
    rounds: usize,
    seed: u64,
    invalid_newest_every: usize,
) -> Vec<Produced> {
    let mut generator = Generator::new(seed);
    let mut current: Vec<CadCall> = (0..calls).map(|_| generator.next_call()).collect();
    let producer = producer(bootstrap);
    let mut pending = Vec::with_capacity(calls * rounds);
    for round in 0..rounds {
        for (c, call) in current.iter_mut().enumerate() {
            if round > 0 {
                *call = generator.next_update(call);
            }
            let mut payload = generate::to_json_line(call).into_bytes();
            let every = invalid_newest_every;
            let valid = !(round + 1 == rounds && every > 0 && c % every == every - 1);
            if !valid {
                payload.truncate(payload.len() / 2);
            }
            let record = FutureRecord::to(topic)
                .key(call.call_id.as_str())
                .payload(&payload);
            let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
            pending.push((
                delivery,
                call.call_id.to_string(),
                valid,
                call.snapshot_at.to_rfc3339(),
            ));
        }
    }
    let mut out = Vec::with_capacity(pending.len());
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
