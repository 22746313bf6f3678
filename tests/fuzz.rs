//! Fuzzing every boundary on stable Rust, inside `cargo test` (so in CI), for a fixed number of
//! iterations: one test per harness of `ads_connector::fuzz` (the same functions the cargo-fuzz
//! targets of `fuzz/` call). Each test
//! 1. replays every file of `fuzz/corpus/<harness>/`: the seeds (golden records, the hostile
//!    records of `tests/fixtures/hostile/`, answers of each API) and every crasher ever found,
//!    kept there as a regression case;
//! 2. runs a fixed number of seeded mutations of that corpus through the harness: byte-level
//!    (bit flips, interesting bytes, insertions, deletions, duplications, truncations, splices
//!    of two inputs) and structure-aware (a JSON value replaced, removed, duplicated or nested
//!    deep; a key added or doubled; a TOML line dropped, doubled or given another value; a
//!    record's key, headers or value changed).
//!
//! A harness panic fails the test and leaves the input in
//! `$CARGO_TARGET_TMPDIR/fuzz-findings/`; fix the bug and copy the input into the corpus
//! directory as `regression-<what>`. `ADS_FUZZ_ITERATIONS` multiplies the iterations and
//! `ADS_FUZZ_SEED` changes the mutations, for a longer local run (`fuzz/README.md`).
//! `the_corpora_hold_every_hostile_record` keeps the corpora in step with the fixtures
//! (`ADS_UPDATE_CORPUS=1` rewrites the generated seeds).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ads_connector::fuzz::{self, RecordInput};
use common::*;

/// Mutations per harness (before `ADS_FUZZ_ITERATIONS`), sized so this whole file takes well under
/// a minute in a debug build (about 15 s on two busy cores).
const ITERATIONS: &[(&str, usize)] = &[
    ("decode", 3000),
    ("record", 5000),
    ("token_response", 20000),
    ("submission_response", 20000),
    ("mesh_response", 3000),
    ("configuration", 2000),
];

/// Seeds larger than this are replayed but not mutated (the 100k-deep nestings): mutating them
/// costs time and finds nothing their smaller cousins do not.
const MAX_MUTATED_LEN: usize = 64 * 1024;

// ---- the tests -------------------------------------------------------------------------------

#[test]
fn decode_survives_its_corpus_and_mutations() {
    run("decode");
}

#[test]
fn the_whole_kafka_record_survives_its_corpus_and_mutations() {
    run("record");
}

#[test]
fn the_token_response_parser_survives_its_corpus_and_mutations() {
    run("token_response");
}

#[test]
fn the_submission_response_classification_survives_its_corpus_and_mutations() {
    run("submission_response");
}

#[test]
fn the_mesh_response_readers_survive_their_corpus_and_mutations() {
    run("mesh_response");
}

#[test]
fn the_configuration_parser_survives_its_corpus_and_mutations() {
    run("configuration");
}

#[test]
fn every_harness_has_a_test_a_corpus_and_an_iteration_count() {
    for (name, _) in fuzz::HARNESSES {
        assert!(
            ITERATIONS.iter().any(|(n, _)| *n == name),
            "{name}: no iteration count"
        );
        assert!(!corpus(name).is_empty(), "{name}: empty corpus");
        let target = repo_path(&format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(target.exists(), "{name}: no cargo-fuzz target");
    }
}

/// The generated seeds: every hostile record (`tests/fixtures/hostile/`) in the `record` corpus
/// (with a header key that is not UTF-8) and, as a value, in the `decode` corpus; every golden
/// record in the `record` corpus.
#[test]
fn the_corpora_hold_every_hostile_record() {
    let update = std::env::var("ADS_UPDATE_CORPUS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (harness, name, bytes) in generated_seeds() {
        let path = corpus_dir(harness).join(&name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            if update {
                std::fs::write(&path, &bytes).unwrap();
            } else {
                stale.push(format!("{harness}/{name}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "corpus files missing or stale (ADS_UPDATE_CORPUS=1 cargo test --test fuzz rewrites them): {stale:?}"
    );
}

fn generated_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let odd_headers = vec![
        (b"\xff\xfe-key".to_vec(), Some(b"\xc3\x28".to_vec())),
        (b"traceparent".to_vec(), None),
    ];
    for case in hostile_cases() {
        let record = RecordInput {
            key: Some(case.name.as_bytes().to_vec()),
            value: case.value.clone(),
            headers: odd_headers.clone(),
            oversize: false,
        };
        out.push((
            "record",
            format!("hostile-{}", case.name),
            record.to_bytes(),
        ));
        if let Some(value) = case.value {
            out.push(("decode", format!("hostile-{}", case.name), value));
        }
    }
    let mut golden: Vec<PathBuf> = std::fs::read_dir(fixture_dir("cad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    golden.sort();
    for path in golden {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let record = RecordInput {
            key: Some(name.as_bytes().to_vec()),
            value: Some(serde_json::to_vec(&value).unwrap()),
            headers: odd_headers.clone(),
            oversize: false,
        };
        out.push(("record", format!("golden-{name}"), record.to_bytes()));
    }
    out
}

// ---- the driver ------------------------------------------------------------------------------

fn corpus_dir(harness: &str) -> PathBuf {
    repo_path("fuzz/corpus").join(harness)
}

/// Every file of the harness's corpus, by name.
fn corpus(harness: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(harness)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn harness(name: &str) -> fn(&[u8]) {
    fuzz::HARNESSES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap()
}

fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `input` through the harness; a panic keeps the input and fails with where it is.
fn check(name: &str, f: fn(&[u8]), input: &[u8], what: &str) {
    let outcome = std::panic::catch_unwind(|| f(input));
    if outcome.is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{:016x}", fnv(input)));
        std::fs::write(&path, input).unwrap();
        panic!(
            "the {name} harness failed on {what}; input kept in {} (add it to fuzz/corpus/{name}/ as a regression once fixed)",
            path.display()
        );
    }
}

fn run(name: &str) {
    let started = Instant::now();
    let f = harness(name);
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ is empty");
    for (file, bytes) in &seeds {
        check(name, f, bytes, &format!("corpus file {file}"));
    }
    let pool: Vec<&[u8]> = seeds
        .iter()
        .map(|(_, b)| b.as_slice())
        .filter(|b| b.len() <= MAX_MUTATED_LEN)
        .collect();
    let base = ITERATIONS.iter().find(|(n, _)| *n == name).unwrap().1 as u64;
    let iterations = base * env_number("ADS_FUZZ_ITERATIONS", 1).max(1);
    let seed = env_number("ADS_FUZZ_SEED", 0x5eed_ad5c);
    let mut rng = Rng(seed ^ fnv(name.as_bytes()));
    for i in 0..iterations {
        let input = mutate(name, &mut rng, &pool);
        check(name, f, &input, &format!("mutation {i} (seed {seed:#x})"));
    }
    eprintln!(
        "fuzz {name}: {} corpus files and {iterations} mutations in {:.2?}",
        seeds.len(),
        started.elapsed()
    );
}

// ---- mutations -------------------------------------------------------------------------------

/// splitmix64: small, seeded, the same on every platform and toolchain.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xc0, 0xc3, 0xed, 0xef, 0xfe, 0xff, b'"', b'\\', b'{', b'}', b'[',
    b']', b',', b':', b'\n', b'=', b'.', b'-', b'0', b'9', b'e',
];

/// Text that has broken parsers before, spliced in anywhere.
const TOKENS: &[&str] = &[
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-0",
    "18446744073709551616",
    "-9223372036854775809",
    "0.0000000000000000000000000001",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\u{feff}",
    "\u{202e}",
    "\\",
    "\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":",
    "2025-02-30T25:61:61Z",
    "9999-12-31T23:59:59+14:00",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "/messageexchange/x/inbox?continue_from=1",
    "//evil.example/x",
    "http://[::1",
    "\u{0}",
    "\r\n",
];

/// One input mutated 1–4 times, the kind of mutation chosen for the harness.
fn mutate(name: &str, rng: &mut Rng, pool: &[&[u8]]) -> Vec<u8> {
    let mut data = rng.pick(pool).to_vec();
    for _ in 0..1 + rng.below(4) {
        data = match (name, rng.below(3)) {
            ("record", 0 | 1) => mutate_record(rng, &data, pool),
            ("token_response" | "submission_response", 0) => mutate_lines(rng, &data),
            ("token_response" | "submission_response", 1) => {
                let at = body_start(&data, if name == "token_response" { 1 } else { 2 });
                let mut out = data[..at].to_vec();
                out.extend(mutate_json(rng, &data[at..]));
                out
            }
            ("configuration", 0 | 1) => mutate_toml(rng, &data),
            (_, 0 | 1) => mutate_json(rng, &data),
            _ => mutate_bytes(rng, &data, pool),
        };
    }
    data
}

/// Where the body starts after `lines` header lines (`status\n`, `retry-after\n`).
fn body_start(data: &[u8], lines: usize) -> usize {
    let mut at = 0;
    for _ in 0..lines {
        match data[at..].iter().position(|b| *b == b'\n') {
            Some(i) => at += i + 1,
            None => return at,
        }
    }
    at
}

fn mutate_bytes(rng: &mut Rng, data: &[u8], pool: &[&[u8]]) -> Vec<u8> {
    let mut d = data.to_vec();
    let at = rng.below(d.len() + 1);
    match rng.below(9) {
        0 if !d.is_empty() => {
            let i = rng.below(d.len());
            d[i] ^= 1 << rng.below(8);
        }
        1 if !d.is_empty() => {
            let i = rng.below(d.len());
            d[i] = *rng.pick(INTERESTING_BYTES);
        }
        2 => d.insert(at, *rng.pick(INTERESTING_BYTES)),
        3 => {
            let end = (at + 1 + rng.below(16)).min(d.len());
            d.drain(at.min(end)..end);
        }
        4 => {
            let end = (at + 1 + rng.below(64)).min(d.len());
            let copy = d[at.min(end)..end].to_vec();
            let to = rng.below(d.len() + 1);
            d.splice(to..to, copy);
        }
        5 => d.truncate(at),
        6 => {
            // Splice: this input's head, another's tail.
            let other = rng.pick(pool);
            let from = rng.below(other.len() + 1);
            d.truncate(at);
            d.extend_from_slice(&other[from..]);
        }
        7 => {
            let token = rng.pick(TOKENS).as_bytes();
            d.splice(at..at, token.iter().copied());
        }
        _ => {
            let token = rng.pick(TOKENS).as_bytes();
            let end = (at + token.len()).min(d.len());
            d.splice(at..end, token.iter().copied());
        }
    }
    d
}

/// A JSON-aware mutation when `data` parses as JSON, else a byte-level one.
fn mutate_json(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return mutate_bytes(rng, data, &[data]);
    };
    let mut count = 0;
    count_nodes(&value, &mut count);
    let target = rng.below(count);
    let choice = rng.below(10);
    let mut seen = 0;
    let replacement = random_value(rng);
    let key = random_key(rng);
    let odd = char::from_u32(*rng.pick(&[
        0x00, 0x07, 0x1f, 0x7f, 0x85, 0x2028, 0xfeff, 0x1f600, 0x10ffff,
    ]))
    .unwrap_or('\u{7}');
    edit_node(
        &mut value,
        target,
        &mut seen,
        &mut |node: &mut serde_json::Value| match choice {
            0..=3 => *node = replacement.clone(),
            4 => {
                if let Some(map) = node.as_object_mut() {
                    if let Some(k) = map.keys().next().cloned() {
                        map.remove(&k);
                    }
                } else if let Some(list) = node.as_array_mut() {
                    list.pop();
                }
            }
            5 => {
                if let Some(map) = node.as_object_mut() {
                    map.insert(key.clone(), replacement.clone());
                } else if let Some(list) = node.as_array_mut() {
                    let copy = list.first().cloned().unwrap_or(serde_json::Value::Null);
                    list.push(copy);
                }
            }
            6 => *node = serde_json::Value::Array(vec![node.take()]),
            7 => {
                let mut deep = node.take();
                for _ in 0..40 {
                    deep = serde_json::json!({ "a": deep });
                }
                *node = deep;
            }
            8 => {
                if let Some(s) = node.as_str() {
                    let mut s = s.to_string();
                    s.push(odd);
                    *node = serde_json::Value::String(s);
                } else {
                    *node = serde_json::Value::String(node.to_string());
                }
            }
            _ => {
                if let Some(n) = node.as_f64() {
                    *node = serde_json::json!(-n);
                } else {
                    *node = serde_json::Value::Null;
                }
            }
        },
    );
    let mut text = serde_json::to_string(&value).unwrap();
    if rng.chance(6) {
        // A key twice in one object: serde_json::Value cannot hold that, text can.
        if let Some(at) = text.find("{\"") {
            let end = text[at..].find(',').map(|e| at + e);
            if let Some(end) = end {
                let pair = text[at + 1..end].to_string();
                text.insert_str(at + 1, &format!("{pair},"));
            }
        }
    }
    if rng.chance(8) {
        // Numbers beyond f64, which serde_json::Value cannot hold either.
        if let Some(at) = text.find(|c: char| c.is_ascii_digit()) {
            let len = text[at..]
                .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
                .unwrap_or(text.len() - at);
            text.replace_range(at..at + len, "1e400");
        }
    }
    text.into_bytes()
}

fn count_nodes(v: &serde_json::Value, n: &mut usize) {
    *n += 1;
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| count_nodes(i, n)),
        serde_json::Value::Object(map) => map.values().for_each(|i| count_nodes(i, n)),
        _ => {}
    }
}

/// Applies `edit` to the `target`-th node in depth-first order.
fn edit_node(
    v: &mut serde_json::Value,
    target: usize,
    seen: &mut usize,
    edit: &mut dyn FnMut(&mut serde_json::Value),
) -> bool {
    if *seen == target {
        edit(v);
        return true;
    }
    *seen += 1;
    match v {
        serde_json::Value::Array(items) => items
            .iter_mut()
            .any(|i| edit_node(i, target, seen, &mut *edit)),
        serde_json::Value::Object(map) => map
            .values_mut()
            .any(|i| edit_node(i, target, seen, &mut *edit)),
        _ => false,
    }
}

fn random_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(16) {
        0 => json!(null),
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(u64::MAX),
        5 => json!(i64::MIN),
        6 => json!(1.7976931348623157e308),
        7 => json!(0.5),
        8 => json!(""),
        9 => json!(" "),
        10 => json!("x".repeat(300)),
        11 => json!("\u{0}\u{7}\u{1b}[31m"),
        12 => json!([]),
        13 => json!({}),
        14 => json!("2025-03-01T13:05:12Z"),
        _ => json!("9990000018"),
    }
}

fn random_key(rng: &mut Rng) -> String {
    (*rng.pick(&[
        "schema",
        "call_id",
        "extra",
        "9990000018",
        "",
        "\u{0}",
        "links",
        "next",
        "expires_in",
        "access_token",
        "message",
        "id",
        "count",
        "messages",
        "errorDescription",
        "detail",
        "submission_id",
        "calls",
    ]))
    .to_string()
}

/// The status line or the `Retry-After` line of a response input replaced.
fn mutate_lines(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let first = body_start(data, 1);
    let statuses = [
        "0", "100", "200", "201", "204", "299", "301", "400", "401", "403", "404", "405", "408",
        "413", "422", "429", "500", "501", "502", "503", "599", "600", "999", "65535",
    ];
    if rng.chance(2) || first == 0 {
        let status = if rng.chance(4) {
            rng.below(1000).to_string()
        } else {
            rng.pick(&statuses).to_string()
        };
        let mut out = format!("{status}\n").into_bytes();
        out.extend_from_slice(&data[first..]);
        return out;
    }
    let second = body_start(data, 2);
    let values = [
        "0",
        "1",
        "120",
        "-1",
        " 30 ",
        "1.5",
        "99999999999999999999999",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "",
        "soon",
        "\u{0}",
    ];
    let mut out = data[..first].to_vec();
    out.extend_from_slice(rng.pick(&values).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&data[second..]);
    out
}

/// A line-level TOML mutation: a line dropped, doubled, moved, or given another value.
fn mutate_toml(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return mutate_bytes(rng, data, &[data]);
    }
    let i = rng.below(lines.len());
    let values = [
        "-1",
        "0",
        "1e400",
        "inf",
        "nan",
        "99999999999999999999",
        "\"\"",
        "\" \"",
        "\"\\u0000\"",
        "[]",
        "{}",
        "true",
        "\"http://\"",
        "\"https://[::1\"",
        "\"/nonexistent/x\"",
        "1979-05-27T07:32:00Z",
        "\"x\"",
        "[1, \"a\"]",
        "{ a = 1 }",
        "18446744073709551615",
    ];
    match rng.below(6) {
        0 => {
            lines.remove(i);
        }
        1 => {
            let copy = lines[i].clone();
            lines.insert(i, copy);
        }
        2 => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        3 => {
            let sections = [
                "[kafka]",
                "[nhs_api]",
                "[nhs_api.request]",
                "[batch]",
                "[rate_limit]",
                "[mesh]",
                "[schedule]",
                "[http]",
                "[shutdown]",
                "[mapping]",
                "[[kafka]]",
                "[unknown]",
            ];
            lines.insert(i, rng.pick(&sections).to_string());
        }
        _ => {
            if let Some(eq) = lines[i].find('=') {
                let head = lines[i][..eq].to_string();
                lines[i] = format!("{head}= {}", rng.pick(&values));
            } else {
                lines[i].push_str(" = 1");
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// A record with its key, one header, its value or its flags changed.
fn mutate_record(rng: &mut Rng, data: &[u8], pool: &[&[u8]]) -> Vec<u8> {
    let mut r = RecordInput::from_bytes(data);
    match rng.below(8) {
        0 => {
            r.key = if rng.chance(3) {
                None
            } else {
                Some(mutate_bytes(
                    rng,
                    r.key.as_deref().unwrap_or_default(),
                    pool,
                ))
            }
        }
        1 => {
            let names: [&[u8]; 6] = [
                b"traceparent",
                b"\xff\xfe-key",
                b"",
                b"\x00",
                b"content-type",
                b"ads-error-kind",
            ];
            let value = match rng.below(4) {
                0 => None,
                1 => Some(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec()),
                2 => Some(b"\xc3\x28".to_vec()),
                _ => Some(vec![b'v'; rng.below(300)]),
            };
            r.headers.push((rng.pick(&names).to_vec(), value));
        }
        2 => {
            if !r.headers.is_empty() {
                let i = rng.below(r.headers.len());
                r.headers.remove(i);
            }
        }
        3 => r.value = None,
        4 => r.oversize = rng.chance(4),
        _ => {
            let value = r.value.take().unwrap_or_default();
            r.value = Some(if rng.chance(2) {
                mutate_json(rng, &value)
            } else {
                mutate_bytes(rng, &value, &[&value])
            });
        }
    }
    r.to_bytes()
}
