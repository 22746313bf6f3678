//! Hostile input cannot stop the connector. The 47 hostile records of
//! `tests/fixtures/hostile/records.jsonl` (bad bytes, framing, shape, fields, codes, values and
//! cross-field rules, each with the dead-letter kind the connector gives it), an oversized
//! record and a header key that is not UTF-8, mixed with good records, through the
//! `ads-connector run` binary: every good record is acked, every bad one dead-lettered with its
//! kind (the original headers kept byte for byte), the process keeps running, and the group's
//! offsets are committed to the end. On librdkafka's mock cluster (always) and on Tansu
//! (`ADS_TEST_KAFKA_BOOTSTRAP`, with a 5 MB record).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ads_connector::cad::DecodeErrorKind;
use ads_connector::fuzz::{transform_record, RecordInput};
use ads_connector::kafka::headers;
use ads_connector::transform::Transformed;
use ads_devkit::generate::{to_json_line, Generator};
use common::*;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sha2::Digest;

/// The header every record of these tests carries: its key and value are not UTF-8.
const ODD_KEY: &[u8] = b"\xff\xfe-key";
const ODD_VALUE: &[u8] = b"\xc3\x28";

#[test]
fn the_fixture_holds_47_distinct_hostile_records_covering_every_decode_kind() {
    let cases = hostile_cases();
    assert_eq!(cases.len(), 47);
    let names: HashSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "names are unique");
    let kinds: HashSet<&str> = cases.iter().map(|c| c.kind.as_str()).collect();
    for kind in DecodeErrorKind::ALL {
        assert!(
            kinds.contains(kind.as_str()),
            "no hostile record of kind {kind}"
        );
    }
    assert!(kinds.contains("empty_value"), "no tombstone");
}

#[test]
fn every_hostile_record_is_dead_lettered_with_its_kind_by_the_transform_stage() {
    let mut wrong = Vec::new();
    for case in hostile_cases() {
        let record = RecordInput {
            key: Some(case.name.as_bytes().to_vec()),
            value: case.value.clone(),
            headers: vec![(ODD_KEY.to_vec(), Some(ODD_VALUE.to_vec()))],
            oversize: false,
        };
        match transform_record(&record) {
            Transformed::Invalid(letter) if letter.kind.as_str() == case.kind => {}
            Transformed::Invalid(letter) => wrong.push(format!(
                "{}: {} ({}), expected {}",
                case.name, letter.kind, letter.message, case.kind
            )),
            Transformed::Mapped(_) => {
                wrong.push(format!("{} ({}) was mapped", case.name, case.why))
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_cluster_hostile_records_are_dead_lettered_and_good_ones_acked_without_a_stop()
{
    let names = Names::new("hostile");
    // The mock cluster's own message limit is about 1 MB.
    hostile_input(Broker::mock(1, &names.topics(1)), names, 1_100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(ads_test_broker),
    ignore = "needs a Kafka broker: ADS_TEST_KAFKA_BOOTSTRAP (scripts/test.sh starts Tansu)"
)]
async fn on_tansu_hostile_records_a_5_mb_record_and_non_utf8_header_keys_cannot_stop_the_run_binary(
) {
    let Some(bootstrap) = real_broker() else {
        return;
    };
    let names = Names::new("hostile-tansu");
    let broker = Broker::Real(bootstrap);
    broker.create_topics(&names.topics(2)).await;
    hostile_input(broker, names, 5 * 1024 * 1024).await;
}

/// What a produced record must become.
#[derive(Debug, Clone)]
enum Expect {
    Ack,
    DeadLetter(String),
}

async fn hostile_input(broker: Broker, names: Names, big_bytes: usize) {
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let producer: FutureProducer = client(&bootstrap)
        .set("message.max.bytes", (big_bytes + 1_000_000).to_string())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let odd = || headers::owned([(ODD_KEY, Some(ODD_VALUE))]);

    // Good calls and hostile records interleaved, every one with the odd header; the oversized
    // record in the middle.
    let mut generator = Generator::new(5);
    let cases = hostile_cases();
    let big = vec![b'x'; big_bytes];
    let mut records: Vec<(Vec<u8>, Option<Vec<u8>>, Expect)> = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let call = generator.next_call();
        records.push((
            call.call_id.as_bytes().to_vec(),
            Some(to_json_line(&call).into_bytes()),
            Expect::Ack,
        ));
        records.push((
            case.name.clone().into_bytes(),
            case.value.clone(),
            Expect::DeadLetter(case.kind.clone()),
        ));
        if i == cases.len() / 2 {
            records.push((
                b"big".to_vec(),
                Some(big.clone()),
                Expect::DeadLetter("record_too_large".into()),
            ));
        }
    }
    let mut produced: Vec<Produced> = Vec::new();
    let mut expected: HashMap<(i32, i64), (String, Expect)> = HashMap::new();
    for (key, value, expect) in &records {
        let mut record = FutureRecord::<[u8], [u8]>::to(&names.cad)
            .key(key.as_slice())
            .headers(odd());
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        let delivered = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        let name = String::from_utf8_lossy(key).into_owned();
        produced.push(Produced {
            partition: delivered.partition,
            offset: delivered.offset,
            call_id: name.clone(),
            valid: matches!(expect, Expect::Ack),
            snapshot_at: String::new(),
        });
        expected.insert(
            (delivered.partition, delivered.offset),
            (name, expect.clone()),
        );
    }
    let good = produced.iter().filter(|p| p.valid).count();
    let bad = produced.len() - good;

    let config = config_toml(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 10\nlinger_ms = 50",
        "",
    );
    let path = write_file(sandbox.dir.path(), "connector.toml", &config);
    let log = connector_log_dir().join(format!("{}.log", names.cad));
    let mut child = spawn_run_logged(&path, LogFormat::Json, &log);

    let (b, ack) = (bootstrap.clone(), names.ack.clone());
    let acks =
        tokio::task::spawn_blocking(move || read_topic(&b, &ack, good, Duration::from_secs(120)));
    let (b, dlq) = (bootstrap.clone(), names.dlq.clone());
    let letters = tokio::task::spawn_blocking(move || dead_letters(&b, &dlq, bad));
    let (acks, letters) = (acks.await.unwrap(), letters.await.unwrap());

    // Every good record acked once, every bad one dead-lettered once with its kind.
    let mut acked = HashSet::new();
    for m in &acks {
        let (p, o, _) = ack_source(m);
        let (name, expect) = &expected[&(p, o)];
        assert!(matches!(expect, Expect::Ack), "{name} ({p}:{o}) was acked");
        assert!(acked.insert((p, o)), "{name} ({p}:{o}) acked twice");
    }
    assert_eq!(acked.len(), good, "every good record is acked");
    let mut dead = HashSet::new();
    for (value, hs) in &letters {
        let text =
            |key: &[u8]| std::str::from_utf8(header(hs, key).expect("reason header")).unwrap();
        let (p, o) = (
            text(b"ads-source-partition").parse::<i32>().unwrap(),
            text(b"ads-source-offset").parse::<i64>().unwrap(),
        );
        let (name, expect) = &expected[&(p, o)];
        let Expect::DeadLetter(kind) = expect else {
            panic!(
                "good record {name} ({p}:{o}) was dead-lettered: {}",
                text(b"ads-error-message")
            );
        };
        assert_eq!(
            text(b"ads-error-kind"),
            kind,
            "{name}: {}",
            text(b"ads-error-message")
        );
        assert_eq!(
            header(hs, ODD_KEY),
            Some(ODD_VALUE),
            "{name}: the original header kept byte for byte"
        );
        if kind == "record_too_large" {
            assert!(
                value.is_none(),
                "an oversized record is dead-lettered without its value"
            );
            assert_eq!(
                text(b"ads-record-size"),
                (big_bytes + 3 + ODD_KEY.len() + ODD_VALUE.len()).to_string()
            );
            let sha: String = sha2::Sha256::digest(&big)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(text(b"ads-record-sha256"), sha);
        }
        assert!(dead.insert((p, o)), "{name} ({p}:{o}) dead-lettered twice");
    }
    assert_eq!(dead.len(), bad, "every bad record is dead-lettered");

    // Still running, and the offsets committed to the end while it runs.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the connector exited; its log: {}",
        log.display()
    );
    let (b, group, cad) = (bootstrap.clone(), names.group.clone(), names.cad.clone());
    let at_end = produced.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let committed = committed(&b, &group, &cad);
            let mut end: HashMap<i32, i64> = HashMap::new();
            for r in &at_end {
                let e = end.entry(r.partition).or_insert(0);
                *e = (*e).max(r.offset + 1);
            }
            if end.iter().all(|(p, e)| committed.get(p) == Some(e)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "committed {committed:?}, end {end:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    assert!(child.try_wait().unwrap().is_none(), "the connector exited");

    // And it still stops cleanly.
    assert!(sigterm(&child).success());
    let status = wait_for_exit(&mut child, Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "exit status {status}; its log: {}",
        log.display()
    );
}

/// The dead letters of `topic`, read with their headers as bytes (rdkafka's own accessor
/// panics on a key that is not UTF-8).
fn dead_letters(
    bootstrap: &str,
    topic: &str,
    expected: usize,
) -> Vec<(Option<Vec<u8>>, Vec<headers::RawHeader>)> {
    let consumer: BaseConsumer = reader_from_start(client(bootstrap), &[topic]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            out.push((m.payload().map(<[u8]>::to_vec), headers::read(&m)));
        }
    }
    // Anything beyond `expected` (duplicates) that is already there.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(m) = consumer.poll(Duration::from_millis(50)) {
            let m = m.unwrap();
            out.push((m.payload().map(<[u8]>::to_vec), headers::read(&m)));
        }
    }
    out
}

fn header<'a>(headers: &'a [headers::RawHeader], key: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
}
