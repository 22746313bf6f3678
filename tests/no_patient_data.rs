//! No patient data in telemetry: the real pipeline (mock Kafka cluster, sandbox API with
//! signed-JWT authentication) runs on generated calls, some of them later snapshots, some
//! truncated and some with invalid patient values (the paths where an error message could quote
//! a value), while every log event at debug level (with span open/close events and span fields),
//! every exported span (through a local OTLP endpoint) and the `/metrics` text are captured. No
//! NHS number, given or family name, date of birth or postcode of any produced call may appear
//! in any of them. The sandbox's own logs are left out: it plays the NHS side, which receives
//! patient data by design; every other target of the crate, and every library, is in. Nor may
//! the API key reach logs or spans, or any JWT (the client assertion) a span.
//!
//! One test in this binary on purpose: it installs the global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ads_connector::cad::CadCall;
use ads_connector::metrics::Metrics;
use ads_connector::telemetry::{self, TraceExport};
use ads_devkit::generate::{self, Generator};
use common::otlp::{self, Collector};
use common::*;
use rand::Rng;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const RECORDS: usize = 300;

/// Log lines, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_nhs_number_name_birth_date_or_postcode_reaches_logs_spans_or_metrics() {
    let collector = Collector::start().await;
    let provider = telemetry::tracer_provider(&TraceExport::Otlp {
        endpoint: Some(collector.traces_url()),
    })
    .unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(move || writer.clone())
                .with_filter(EnvFilter::new("debug")),
        )
        .with(telemetry::otel_layer(&provider))
        .try_init()
        .unwrap();

    let names = Names::new("privacy");
    let broker = Broker::mock(1, &names.topics(3));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox().await;
    let (calls, mutated, invalid) = produce(&bootstrap, &names.cad).await;
    assert!(
        invalid > 10 && !mutated.is_empty(),
        "the workload has no invalid records"
    );

    let config = connector_config(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 40\nlinger_ms = 100",
        "",
    );
    let (pipeline, cancel) = start_pipeline(config, Metrics::new()).await;
    let (acks, dead) = read_acks_and_dead_letters(
        &bootstrap,
        &names,
        RECORDS - invalid,
        invalid,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        acks.len() + dead.len(),
        RECORDS,
        "the workload did not finish"
    );
    assert_eq!(dead.len(), invalid);
    let metrics = reqwest::get(format!("http://{}/metrics", pipeline.health_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    cancel.cancel();
    pipeline.finish().await.unwrap();
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();

    let log_text =
        without_sandbox_and_timestamps(&String::from_utf8_lossy(&logs.0.lock().unwrap()));
    let spans = collector.spans();
    let span_text: String = spans
        .iter()
        .map(otlp::span_text)
        .collect::<Vec<_>>()
        .join("\n");

    // The captures are real: debug events, span fields, exported spans, metric samples.
    assert!(
        log_text.contains("\"level\":\"DEBUG\""),
        "no debug event captured"
    );
    assert!(
        log_text.contains("ads.batch.id"),
        "span fields are not in the log capture"
    );
    assert!(spans.iter().any(|s| s.span.name.starts_with("process ")));
    assert!(spans.iter().any(|s| s.span.name == "POST"));
    assert!(spans.iter().any(|s| s.span.name == "token refresh"));
    let dead_letter_send = format!("send {}", names.dlq);
    assert!(spans.iter().any(|s| s.span.name == dead_letter_send));
    assert!(metrics.contains("ads_connector_acks_published_total"));

    let mut needles = needles(&calls);
    needles.extend(mutated.into_iter().map(|text| Needle {
        text,
        word: false,
        lowercase_variant: true,
    }));
    assert!(needles.len() > 200, "too few patient values to look for");
    // The matcher finds what is there: every needle is in the records that were produced.
    let produced: String = calls.iter().map(generate::to_json_line).collect();
    for needle in needles.iter().filter(|n| !n.lowercase_variant) {
        assert!(
            needle.found_in(&produced),
            "{} not found in its own record",
            needle.text
        );
    }
    for (what, haystack) in [
        ("logs", &log_text),
        ("spans", &span_text),
        ("metrics", &metrics),
    ] {
        let leaked: Vec<&str> = needles
            .iter()
            .filter(|n| n.found_in(haystack))
            .map(|n| n.text.as_str())
            .collect();
        assert!(leaked.is_empty(), "patient data in {what}: {leaked:?}");
    }
    let api_key = std::fs::read_to_string(&sandbox.api_key_file).unwrap();
    for (what, haystack) in [("logs", &log_text), ("spans", &span_text)] {
        assert!(!haystack.contains(api_key.trim()), "the API key in {what}");
    }
    // Every JWT starts with the base64 of `{"`; span text is otherwise names, hex ids and URLs.
    assert!(!span_text.contains("eyJ"), "a JWT in the spans");
}

/// Produces `RECORDS` records: new calls, later snapshots, truncated records, and records whose
/// patient values are invalid. Returns every call produced, the invalid values written, and the
/// number of records the connector must dead-letter.
async fn produce(bootstrap: &str, topic: &str) -> (Vec<CadCall>, Vec<String>, usize) {
    let producer = producer(bootstrap);
    let mut generator = Generator::new(99);
    let mut rng = rand::thread_rng();
    let mut calls: Vec<CadCall> = Vec::new();
    let mut mutated = Vec::new();
    let mut invalid = 0;
    for i in 0..RECORDS {
        let call = if i % 6 == 5 && !calls.is_empty() {
            let j = rng.gen_range(0..calls.len());
            generator.next_update(&calls[j])
        } else {
            generator.next_call()
        };
        calls.push(call.clone());
        let line = generate::to_json_line(&call);
        let mut json: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut none = serde_json::Value::Null;
        let demographics = match json.pointer_mut("/patients/0/demographics") {
            Some(d) => d,
            None => &mut none,
        };
        let payload = match i % 25 {
            // Truncated: undecodable.
            7 => line[..line.len() / 2].to_string(),
            // A wrong check digit: the NHS number rule fails on this patient's number.
            13 if demographics["nhs_number"].is_string() => {
                let n = demographics["nhs_number"].as_str().unwrap().to_string();
                let last = (n.as_bytes()[9] - b'0' + 1) % 10;
                let wrong = format!("{}{last}", &n[..9]);
                mutated.push(wrong.clone());
                demographics["nhs_number"] = wrong.into();
                json.to_string()
            }
            // A lower-case postcode: the postcode rule fails on this patient's postcode.
            19 if demographics["postcode"].is_string() => {
                let pc = demographics["postcode"].as_str().unwrap().to_lowercase();
                mutated.push(pc.clone());
                demographics["postcode"] = pc.into();
                json.to_string()
            }
            _ => line,
        };
        let options = ads_connector::mapping::MappingOptions::default();
        let valid = ads_connector::cad::decode(payload.as_bytes())
            .is_ok_and(|c| ads_connector::mapping::map_call(&c, &options).is_ok());
        invalid += usize::from(!valid);
        let traceparent = random_traceparent(&mut rng);
        send_traced(&producer, topic, &call.call_id, &payload, &traceparent).await;
    }
    (calls, mutated, invalid)
}

/// Drops the sandbox's own log lines and every line's timestamp (a birth date could be today).
fn without_sandbox_and_timestamps(logs: &str) -> String {
    logs.lines()
        .filter_map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).ok()?;
            let target = v["target"].as_str().unwrap_or_default();
            if target.starts_with("nhs_emulator") {
                return None;
            }
            v.as_object_mut()?.remove("timestamp");
            Some(v.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A patient value to look for.
struct Needle {
    text: String,
    /// Names match as whole words (so `Hall` does not match `Halls`); other values anywhere.
    word: bool,
    /// A variant that the produced records themselves may not contain.
    lowercase_variant: bool,
}

impl Needle {
    fn found_in(&self, haystack: &str) -> bool {
        if !self.word {
            return haystack.contains(&self.text);
        }
        haystack.match_indices(&self.text).any(|(i, m)| {
            let before = haystack[..i].chars().next_back();
            let after = haystack[i + m.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    }
}

fn needles(calls: &[CadCall]) -> Vec<Needle> {
    let mut out: Vec<Needle> = Vec::new();
    let mut add = |text: String, word: bool, lowercase_variant: bool| {
        if !out.iter().any(|n| n.text == text) {
            out.push(Needle {
                text,
                word,
                lowercase_variant,
            });
        }
    };
    for call in calls {
        for patient in &call.patients {
            let d = &patient.demographics;
            if let Some(n) = &d.nhs_number {
                add(n.to_string(), false, false);
                add(format!("{} {} {}", &n[..3], &n[3..6], &n[6..]), false, true);
            }
            for name in [&d.given_name, &d.family_name].into_iter().flatten() {
                add(name.to_string(), true, false);
            }
            if let Some(born) = d.birth_date {
                add(born.to_string(), false, false);
            }
            if let Some(pc) = &d.postcode {
                add(pc.to_string(), false, false);
                add(pc.to_lowercase().to_string(), false, true);
                add(pc.replace(" ", "").to_string(), false, true);
            }
        }
    }
    out
}
