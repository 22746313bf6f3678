//! The `cad.call.v1` contract and the CAD → ADS FHIR mapping, end to end: generated calls,
//! golden fixtures (`tests/fixtures/cad/*.json` → `tests/fixtures/fhir/*.json`), the official
//! FHIR R4 JSON Schema (`schemas/fhir-r4.schema.json`, compiled once per test binary), the CAD
//! JSON Schema against the decoder, property tests over generated calls, determinism and the
//! decoder's rejection classes.
//!
//! Regenerate the FHIR goldens after an intended mapping change with
//! `UPDATE_FIXTURES=1 cargo test --test mapping`, then review the diff.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use ads_connector::cad::{self, CadCall, DecodeErrorKind};
use ads_connector::mapping::{self, check, map_call, BundleType, CodeSystemStyle, MappingOptions};
use ads_devkit::generate::{to_json_line, Generator};
use common::{fixture_dir, fixture_path, repo_path};
use proptest::prelude::*;
use serde_json::{json, Value};

fn compile_schema(path: &str) -> jsonschema::Validator {
    let text = std::fs::read(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_slice(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The official FHIR R4 JSON Schema (a copy of `shared/reference/fhir-r4.schema.json`).
fn fhir_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| compile_schema("schemas/fhir-r4.schema.json"))
}

/// The published `cad.call.v1` JSON Schema.
fn cad_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| compile_schema("schemas/cad.call.v1.schema.json"))
}

fn schema_errors(schema: &jsonschema::Validator, v: &Value) -> Vec<String> {
    schema
        .iter_errors(v)
        .take(5)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The Bundle passes the FHIR R4 JSON Schema and local validation without errors.
fn assert_valid_bundle(what: &str, bundle: &Value) {
    let errors = schema_errors(fhir_schema(), bundle);
    assert!(errors.is_empty(), "{what}: FHIR schema: {errors:#?}");
    let report = check::bundle(bundle);
    assert!(
        report.is_valid(),
        "{what}: local validation: {:#?}",
        report.errors
    );
}

/// The names of every golden CAD record, sorted.
fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir("cad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path("cad", name)).unwrap()
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_slice(&read_fixture(name)).unwrap()
}

fn message_options() -> MappingOptions {
    MappingOptions {
        bundle_type: BundleType::Message,
        ..MappingOptions::default()
    }
}

/// Every `reference` in the Bundle, found independently of the mapping module.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| references(c, out)),
        _ => {}
    }
}

fn assert_references_resolve(bundle: &Value) {
    let entries = bundle["entry"].as_array().expect("entries");
    let full_urls: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["fullUrl"].as_str().expect("fullUrl"))
        .collect();
    assert_eq!(full_urls.len(), entries.len(), "fullUrls are unique");
    for entry in entries {
        let url = entry["fullUrl"].as_str().unwrap();
        let id = entry["resource"]["id"].as_str().expect("resource id");
        assert_eq!(url, format!("urn:uuid:{id}"));
    }
    let mut refs = Vec::new();
    references(bundle, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(r.starts_with("urn:uuid:"), "{r}");
        assert!(full_urls.contains(r.as_str()), "unresolved {r}");
    }
}

fn generated_calls(seed: u64, n: usize) -> Vec<CadCall> {
    let mut generator = Generator::new(seed);
    (0..n).map(|_| generator.next_call()).collect()
}

#[test]
fn every_generated_call_decodes_and_maps_with_resolving_references() {
    for seed in 1..=5 {
        let mut generator = Generator::new(seed);
        for _ in 0..100 {
            let call = generator.next_call();
            let update = generator.next_update(&call);
            for snapshot in [call, update] {
                let decoded = cad::decode(to_json_line(&snapshot).as_bytes())
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert_eq!(decoded, snapshot);
                for opts in [MappingOptions::default(), message_options()] {
                    let bundle = map_call(&decoded, &opts).unwrap_or_else(|e| panic!("{e}"));
                    assert_references_resolve(&bundle.json);
                    assert_eq!(bundle.call_key, snapshot.call_key());
                }
            }
        }
    }
}

#[test]
fn bundles_have_the_ads_shape() {
    for call in generated_calls(21, 200) {
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        assert_eq!(bundle["timestamp"], cad::format_utc(&call.snapshot_at));
        assert_eq!(
            bundle["meta"]["tag"][0]["system"],
            "https://fhir.nhs.uk/R4/CodeSystem/ADS-BundleType"
        );
        let kinds: Vec<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
        assert_eq!(kinds[0], "Communication");
        assert_eq!(count("Communication"), 1);
        // One Encounter per patient contact; every other Encounter is a vehicle's (part of a
        // contact, or a response that attended no one) and names exactly one vehicle.
        let encounters: Vec<&Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Encounter")
            .collect();
        let contacts = encounters
            .iter()
            .filter(|e| e.get("partOf").is_none() && e.get("subject").is_some())
            .count();
        assert_eq!(contacts, call.patients.len());
        for e in encounters
            .iter()
            .filter(|e| e.get("partOf").is_some() || e.get("subject").is_none())
        {
            assert_eq!(e["location"].as_array().unwrap().len(), 1);
        }
        assert_eq!(count("Patient"), call.patients.len());
        let orgs = if call.provider_ods == call.submitter_ods {
            1
        } else {
            2
        };
        assert_eq!(count("Organization"), orgs);
        let destinations: BTreeSet<_> = call
            .patients
            .iter()
            .filter_map(|p| p.conveyance.as_ref()?.destination.as_ref())
            .map(|d| d.ods_site.clone())
            .collect();
        assert_eq!(count("Location"), call.responses.len() + destinations.len());

        let communication = &bundle["entry"][0]["resource"];
        assert_eq!(
            communication["meta"]["profile"][0],
            mapping::ADS_COMMUNICATION_PROFILE
        );
        let identifier = &communication["identifier"][0];
        assert_eq!(identifier["system"], mapping::CALL_ID_SYSTEM);
        assert_eq!(identifier["value"], call.call_id.as_str());
        assert_eq!(
            identifier["period"]["start"],
            call.call_date.to_string().as_str()
        );
        assert_eq!(
            communication["sent"],
            cad::format_utc(&call.times.call_answered)
        );
        // Every patient contact, and every response that attended no patient.
        let about = communication["about"].as_array().map_or(0, Vec::len);
        let no_patient = call
            .responses
            .iter()
            .filter(|r| {
                !call
                    .patients
                    .iter()
                    .any(|p| p.call_signs.contains(&r.call_sign))
            })
            .count();
        assert_eq!(about, call.patients.len() + no_patient);
    }
}

#[test]
fn patients_carry_the_nhs_number_under_the_uk_core_system() {
    let mut seen = 0;
    for call in generated_calls(8, 200) {
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        let patients: Vec<&Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Patient")
            .collect();
        for (p, contact) in patients.iter().zip(&call.patients) {
            match &contact.demographics.nhs_number {
                Some(n) => {
                    seen += 1;
                    let id = &p["identifier"][0];
                    assert_eq!(id["system"], "https://fhir.nhs.uk/Id/nhs-number");
                    assert_eq!(id["value"], n.as_str());
                    let status = &id["extension"][0]["valueCodeableConcept"]["coding"][0];
                    assert_eq!(
                        status["code"],
                        contact.demographics.nhs_number_status.unwrap().code()
                    );
                }
                None => assert!(p["identifier"][0].get("value").is_none()),
            }
        }
    }
    assert!(seen > 50, "{seen}");
}

#[test]
fn same_input_gives_byte_identical_bundles() {
    for call in generated_calls(5, 100) {
        let a = map_call(&call, &MappingOptions::default()).unwrap();
        let b = map_call(&call, &MappingOptions::default()).unwrap();
        let redecoded = cad::decode(&call.to_json_bytes()).unwrap();
        let c = map_call(&redecoded, &MappingOptions::default()).unwrap();
        let bytes = serde_json::to_vec(&a.json).unwrap();
        assert_eq!(bytes, serde_json::to_vec(&b.json).unwrap());
        assert_eq!(bytes, serde_json::to_vec(&c.json).unwrap());
    }
}

#[test]
fn every_snapshot_of_a_call_shares_the_bundle_id_but_not_the_content() {
    let mut generator = Generator::new(13);
    for _ in 0..50 {
        let first = generator.next_call();
        let later = generator.next_update(&first);
        let a = map_call(&first, &MappingOptions::default()).unwrap();
        let b = map_call(&later, &MappingOptions::default()).unwrap();
        assert_eq!(a.bundle_id, b.bundle_id);
        assert_eq!(a.json["id"], b.json["id"]);
        assert_eq!(a.json["id"], a.bundle_id.to_string().as_str());
        assert!(b.snapshot_at > a.snapshot_at);
        assert_ne!(a.json, b.json);
        // The Communication keeps its id across snapshots too.
        assert_eq!(a.json["entry"][0]["fullUrl"], b.json["entry"][0]["fullUrl"]);
    }
}

#[test]
fn different_calls_never_share_ids() {
    let mut ids = BTreeSet::new();
    for call in generated_calls(17, 300) {
        let bundle = map_call(&call, &MappingOptions::default()).unwrap();
        assert!(ids.insert(bundle.bundle_id.to_string()));
        for e in bundle.json["entry"].as_array().unwrap() {
            assert!(ids.insert(e["fullUrl"].as_str().unwrap().to_string()));
        }
    }
}

/// Every golden CAD record with the default options, plus option variants of a few.
fn golden_cases() -> Vec<(String, String, MappingOptions)> {
    let mut cases: Vec<_> = fixture_names()
        .into_iter()
        .map(|n| (n.clone(), n, MappingOptions::default()))
        .collect();
    let style = |code_system_style| MappingOptions {
        code_system_style,
        ..MappingOptions::default()
    };
    cases.retain(|(n, ..)| n != "hear-and-treat");
    cases.push((
        "hear-and-treat".into(),
        "hear-and-treat.message".into(),
        message_options(),
    ));
    cases.push((
        "conveyed-two-patients".into(),
        "conveyed-two-patients.with-r4".into(),
        style(CodeSystemStyle::WithR4),
    ));
    cases.push((
        "conveyed-two-patients".into(),
        "conveyed-two-patients.without-r4".into(),
        style(CodeSystemStyle::WithoutR4),
    ));
    cases
}

#[test]
fn there_are_at_least_25_golden_cad_records() {
    assert!(fixture_names().len() >= 25, "{:?}", fixture_names());
}

#[test]
fn golden_fixtures_map_to_their_fhir_bundles() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    for (input, output, opts) in golden_cases() {
        let call = cad::decode(&read_fixture(&input)).unwrap_or_else(|e| panic!("{input}: {e}"));
        let bundle = map_call(&call, &opts).unwrap().json;
        assert_references_resolve(&bundle);
        let path = fixture_dir("fhir").join(format!("{output}.json"));
        if update {
            let mut text = serde_json::to_string_pretty(&bundle).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
        }
        let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bundle, expected, "{output} differs from its golden file");
    }
}

#[test]
fn every_golden_fhir_bundle_passes_the_fhir_r4_schema_and_local_validation() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture_dir("fhir")).unwrap() {
        let path = entry.unwrap().path();
        let bundle: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_valid_bundle(&path.display().to_string(), &bundle);
        seen += 1;
    }
    assert!(seen >= 25, "{seen}");
}

#[test]
fn the_cad_json_schema_and_the_decoder_agree_on_every_golden_record() {
    for name in fixture_names() {
        let value = fixture_value(&name);
        let errors = schema_errors(cad_schema(), &value);
        assert!(errors.is_empty(), "{name}: CAD schema: {errors:#?}");
        cad::decode(&read_fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_cad_json_schema_examples_decode() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(repo_path("schemas/cad.call.v1.schema.json")).unwrap(),
    )
    .unwrap();
    for (i, example) in schema["examples"].as_array().unwrap().iter().enumerate() {
        assert!(cad_schema().is_valid(example), "example {i}");
        let call = cad::decode(&serde_json::to_vec(example).unwrap())
            .unwrap_or_else(|e| panic!("example {i}: {e}"));
        map_call(&call, &MappingOptions::default()).unwrap();
    }
}

/// Every golden FHIR Bundle, parsed.
fn golden_bundles() -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture_dir("fhir")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        out.push(serde_json::from_slice(&bytes).unwrap());
    }
    out
}

#[test]
fn the_goldens_cover_every_resource_type_and_every_uk_core_date_time_type() {
    let text: String = golden_bundles().iter().map(Value::to_string).collect();
    for kind in [
        "MessageHeader",
        "Communication",
        "Organization",
        "Encounter",
        "Patient",
        "Observation",
        "Condition",
        "Procedure",
        "MedicationAdministration",
        "Flag",
        "Location",
    ] {
        assert!(
            text.contains(&format!("\"resourceType\":\"{kind}\"")),
            "{kind}"
        );
    }
    for (code, _) in mapping::DATE_TIME_TYPES {
        assert!(text.contains(&format!("\"code\":\"{code}\"")), "{code}");
    }
    for (code, display) in mapping::TRIAGE_CATEGORIES {
        let coding = format!("\"code\":\"{code}\",\"display\":\"{display}\"");
        assert!(text.contains(&coding), "{coding}");
    }
}

#[test]
fn code_system_styles_rewrite_only_nhs_england_code_systems() {
    let r4 = "https://fhir.nhs.uk/R4/CodeSystem/ADS-ResponseCategoryType";
    let plain = "https://fhir.nhs.uk/CodeSystem/ADS-ResponseCategoryType";
    assert_eq!(CodeSystemStyle::WithR4.apply(plain), r4);
    assert_eq!(CodeSystemStyle::WithoutR4.apply(r4), plain);
    assert_eq!(CodeSystemStyle::AsPublished.apply(plain), plain);
    for other in [
        mapping::SNOMED_SYSTEM,
        mapping::NHS_NUMBER_SYSTEM,
        mapping::DATE_TIME_TYPE_SYSTEM,
    ] {
        assert_eq!(CodeSystemStyle::WithR4.apply(other), other);
        assert_eq!(CodeSystemStyle::WithoutR4.apply(other), other);
    }
    let call = cad::decode(&read_fixture("conveyed-two-patients")).unwrap();
    for style in [CodeSystemStyle::WithR4, CodeSystemStyle::WithoutR4] {
        let opts = MappingOptions {
            code_system_style: style,
            ..MappingOptions::default()
        };
        let text = map_call(&call, &opts).unwrap().json.to_string();
        let unwanted = match style {
            CodeSystemStyle::WithR4 => "https://fhir.nhs.uk/CodeSystem/",
            _ => "https://fhir.nhs.uk/R4/CodeSystem/",
        };
        assert!(!text.contains(unwanted), "{style:?}");
    }
}

#[test]
fn the_fhir_schema_rejects_what_fhir_forbids() {
    let good = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "birthDate": "1950-06-01"}}]});
    assert!(fhir_schema().is_valid(&good));
    let cases = [
        (
            "misspelled element",
            "/entry/0/resource/birthdate",
            json!("1950-06-01"),
        ),
        (
            "bad date",
            "/entry/0/resource/birthDate",
            json!("01/06/1950"),
        ),
        (
            "unknown resource",
            "/entry/0/resource/resourceType",
            json!("Ambulance"),
        ),
        ("bad bundle type", "/type", json!("bag")),
    ];
    for (what, pointer, value) in cases {
        let mut bad = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        bad.pointer_mut(parent).unwrap()[key] = value;
        assert!(!fhir_schema().is_valid(&bad), "{what}");
    }
}

#[test]
fn generated_bundles_pass_the_fhir_r4_schema_with_every_option_set() {
    let option_sets = [
        MappingOptions::default(),
        message_options(),
        MappingOptions {
            code_system_style: CodeSystemStyle::WithoutR4,
            ads_bundle_type_code: "epr".into(),
            ..MappingOptions::default()
        },
    ];
    for (i, call) in generated_calls(31, 60).into_iter().enumerate() {
        let opts = &option_sets[i % option_sets.len()];
        let bundle = map_call(&call, opts).unwrap_or_else(|e| panic!("{e}"));
        assert_valid_bundle(&call.call_key(), &bundle.json);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_generated_call_and_its_updates_map_to_a_valid_bundle(
        seed in any::<u64>(),
        updates in 0usize..6,
        message in any::<bool>(),
    ) {
        let mut generator = Generator::new(seed);
        let mut call = generator.next_call();
        for _ in 0..updates {
            call = generator.next_update(&call);
        }
        let decoded = cad::decode(to_json_line(&call).as_bytes()).unwrap();
        prop_assert_eq!(&decoded, &call);
        let opts = if message { message_options() } else { MappingOptions::default() };
        let bundle = map_call(&decoded, &opts).unwrap();
        let errors = schema_errors(fhir_schema(), &bundle.json);
        prop_assert!(errors.is_empty(), "FHIR schema: {:#?}", errors);
        let report = check::bundle(&bundle.json);
        prop_assert!(report.is_valid(), "local validation: {:#?}", report.errors);
        prop_assert_eq!(report.warnings, bundle.warnings);
        let mut uk_core = ads_connector::conformance::check_bundle(&bundle.json);
        uk_core.extend(ads_connector::conformance::advisories(&bundle.json));
        prop_assert!(uk_core.is_empty(), "UK Core: {:#?}", uk_core);
        let again = map_call(&decoded, &opts).unwrap();
        prop_assert_eq!(
            serde_json::to_vec(&bundle.json).unwrap(),
            serde_json::to_vec(&again.json).unwrap()
        );
    }
}

fn as_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(as_floats).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_floats(v))).collect())
        }
        other => other,
    }
}

#[test]
fn golden_fixtures_round_trip_through_the_model() {
    for name in fixture_names() {
        let name = name.as_str();
        let call = cad::decode(&read_fixture(name)).unwrap();
        assert_eq!(cad::decode(&call.to_json_bytes()).unwrap(), call, "{name}");
        // These two spell the same data differently on purpose (nulls, offsets).
        if matches!(
            name,
            "nulls-and-empty-lists" | "offset-and-fractional-timestamps"
        ) {
            continue;
        }
        // No field is dropped or renamed (numbers compared as numbers: 5 and 5.0 are equal).
        let reencoded: Value = serde_json::from_slice(&call.to_json_bytes()).unwrap();
        assert_eq!(
            as_floats(reencoded),
            as_floats(fixture_value(name)),
            "{name}"
        );
    }
}

#[test]
fn the_documented_example_decodes() {
    let doc = std::fs::read_to_string(repo_path("docs/cad.call.v1.md")).unwrap();
    let start = doc.find("```json\n").expect("an example") + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let call = cad::decode(&doc.as_bytes()[start..end]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(call.patients.len(), 2);
    map_call(&call, &MappingOptions::default()).unwrap();
}

#[test]
fn debug_of_a_call_shows_no_patient_data() {
    let call = cad::decode(&read_fixture("conveyed-two-patients")).unwrap();
    let debug = format!("{call:?} {call:#?} {:?}", call.patients);
    for secret in [
        "9990000018",
        "Margaret",
        "Clarke",
        "Peter",
        "1941",
        "LS9",
        "5913000",
    ] {
        assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
    }
    assert!(debug.contains("250301-004217") && debug.contains("RX8"));
    let bundle = map_call(&call, &MappingOptions::default()).unwrap();
    let debug = format!("{bundle:?}");
    assert!(!debug.contains("9990000018") && !debug.contains("Margaret"));
}

/// One way to break the base fixture, the kind and path it must be rejected with, and a value
/// that must not appear in the message.
struct Bad {
    what: &'static str,
    mutate: fn(&mut Value),
    kind: DecodeErrorKind,
    path: &'static str,
    secret: Option<&'static str>,
}

#[test]
fn decode_rejects_each_bad_input_class_with_its_kind_and_path() {
    let cases = [
        Bad {
            what: "wrong schema",
            mutate: |v| v["schema"] = json!("cad.call.v2"),
            kind: DecodeErrorKind::SchemaMismatch,
            path: "$.schema",
            secret: Some("v2"),
        },
        Bad {
            what: "unknown top-level field",
            mutate: |v| v["colour"] = json!("red"),
            kind: DecodeErrorKind::UnknownField,
            path: "$.colour",
            secret: Some("red"),
        },
        Bad {
            what: "unknown nested field",
            mutate: |v| v["patients"][0]["demographics"]["nickname"] = json!("Maggie"),
            kind: DecodeErrorKind::UnknownField,
            path: "$.patients[0].demographics.nickname",
            secret: Some("Maggie"),
        },
        Bad {
            what: "missing call id",
            mutate: |v| {
                v.as_object_mut().unwrap().remove("call_id");
            },
            kind: DecodeErrorKind::MissingField,
            path: "$.call_id",
            secret: None,
        },
        Bad {
            what: "missing call answered time",
            mutate: |v| {
                v["times"].as_object_mut().unwrap().remove("call_answered");
            },
            kind: DecodeErrorKind::MissingField,
            path: "$.times.call_answered",
            secret: None,
        },
        Bad {
            what: "number instead of a date",
            mutate: |v| v["call_date"] = json!(20250301),
            kind: DecodeErrorKind::InvalidType,
            path: "$.call_date",
            secret: Some("20250301"),
        },
        Bad {
            what: "name of the wrong type",
            mutate: |v| v["patients"][1]["demographics"]["given_name"] = json!(["Peter"]),
            kind: DecodeErrorKind::InvalidType,
            path: "$.patients[1].demographics.given_name",
            secret: Some("Peter"),
        },
        Bad {
            what: "impossible date",
            mutate: |v| v["patients"][0]["demographics"]["birth_date"] = json!("1941-02-30"),
            kind: DecodeErrorKind::InvalidValue,
            path: "$.patients[0].demographics.birth_date",
            secret: Some("1941"),
        },
        Bad {
            what: "an object given as an array of its fields",
            mutate: |v| v["times"] = json!(["2025-03-01T13:05:12Z"]),
            kind: DecodeErrorKind::InvalidType,
            path: "$.times",
            secret: Some("13:05:12"),
        },
        Bad {
            what: "lower-case timestamp separator",
            mutate: |v| v["snapshot_at"] = json!("2025-03-01t14:52:10Z"),
            kind: DecodeErrorKind::InvalidValue,
            path: "$.snapshot_at",
            secret: Some("14:52"),
        },
        Bad {
            what: "lower-case provider ODS code",
            mutate: |v| v["provider_ods"] = json!("rx8"),
            kind: DecodeErrorKind::InvalidOdsCode,
            path: "$.provider_ods",
            secret: Some("rx8"),
        },
        Bad {
            what: "over-long submitter ODS code",
            mutate: |v| v["submitter_ods"] = json!("RX8ABC"),
            kind: DecodeErrorKind::InvalidOdsCode,
            path: "$.submitter_ods",
            secret: Some("RX8ABC"),
        },
        Bad {
            what: "malformed destination site code",
            mutate: |v| v["patients"][0]["conveyance"]["destination"]["ods_site"] = json!("R-8"),
            kind: DecodeErrorKind::InvalidOdsCode,
            path: "$.patients[0].conveyance.destination.ods_site",
            secret: Some("R-8"),
        },
        Bad {
            what: "NHS number failing modulus 11",
            mutate: |v| v["patients"][0]["demographics"]["nhs_number"] = json!("9990000017"),
            kind: DecodeErrorKind::InvalidNhsNumber,
            path: "$.patients[0].demographics.nhs_number",
            secret: Some("9990000017"),
        },
        Bad {
            what: "NHS number with spaces",
            mutate: |v| v["patients"][0]["demographics"]["nhs_number"] = json!("999 000 0018"),
            kind: DecodeErrorKind::InvalidNhsNumber,
            path: "$.patients[0].demographics.nhs_number",
            secret: Some("999 000"),
        },
        Bad {
            what: "call origin outside the code list",
            mutate: |v| v["call_origin"] = json!("16"),
            kind: DecodeErrorKind::InvalidCode,
            path: "$.call_origin",
            secret: Some("16"),
        },
        Bad {
            what: "response category outside the code list",
            mutate: |v| v["reporting_response_category"] = json!("C6"),
            kind: DecodeErrorKind::InvalidCode,
            path: "$.reporting_response_category",
            secret: Some("C6"),
        },
        Bad {
            what: "SNOMED code with a bad check digit",
            mutate: |v| v["patients"][1]["diagnoses"][0]["snomed"] = json!("271594008"),
            kind: DecodeErrorKind::InvalidCode,
            path: "$.patients[1].diagnoses[0].snomed",
            secret: Some("271594008"),
        },
        Bad {
            what: "call ended before it was answered",
            mutate: |v| v["times"]["call_ended"] = json!("2025-03-01T13:00:00Z"),
            kind: DecodeErrorKind::TimestampsOutOfOrder,
            path: "$.times.call_ended",
            secret: Some("13:00:00"),
        },
        Bad {
            what: "arrived on scene before mobilised",
            mutate: |v| {
                v["responses"][0]["times"]["arrived_on_scene"] = json!("2025-03-01T13:08:00Z")
            },
            kind: DecodeErrorKind::TimestampsOutOfOrder,
            path: "$.responses[0].times.arrived_on_scene",
            secret: None,
        },
        Bad {
            what: "clear before handover",
            mutate: |v| v["responses"][0]["times"]["clear"] = json!("2025-03-01T14:30:00Z"),
            kind: DecodeErrorKind::TimestampsOutOfOrder,
            path: "$.responses[0].times.clear",
            secret: None,
        },
        Bad {
            what: "clock stop before clock start",
            mutate: |v| v["times"]["clock_stop"] = json!("2025-03-01T13:07:00Z"),
            kind: DecodeErrorKind::TimestampsOutOfOrder,
            path: "$.times.clock_stop",
            secret: None,
        },
        Bad {
            what: "patient attended by an unknown call sign",
            mutate: |v| v["patients"][1]["call_signs"] = json!(["YA999"]),
            kind: DecodeErrorKind::InconsistentReference,
            path: "$.patients[1].call_signs[0]",
            secret: Some("YA999"),
        },
        Bad {
            what: "duplicate call sign",
            mutate: |v| v["responses"][2]["call_sign"] = json!("YA214"),
            kind: DecodeErrorKind::InconsistentReference,
            path: "$.responses[2].call_sign",
            secret: None,
        },
        Bad {
            what: "conveyance without destination",
            mutate: |v| {
                v["patients"][0]["conveyance"]
                    .as_object_mut()
                    .unwrap()
                    .remove("destination");
            },
            kind: DecodeErrorKind::MissingField,
            path: "$.patients[0].conveyance.destination",
            secret: None,
        },
        Bad {
            what: "malformed postcode",
            mutate: |v| v["patients"][0]["demographics"]["postcode"] = json!("LS9 7T"),
            kind: DecodeErrorKind::InvalidValue,
            path: "$.patients[0].demographics.postcode",
            secret: Some("LS9"),
        },
    ];
    // The rules a JSON Schema cannot express (docs/cad.call.v1.md, "Rules beyond the schema");
    // the schema must reject every other case too.
    let beyond_schema = [
        "impossible date",
        "NHS number failing modulus 11",
        "SNOMED code with a bad check digit",
        "call ended before it was answered",
        "arrived on scene before mobilised",
        "clear before handover",
        "clock stop before clock start",
        "patient attended by an unknown call sign",
        "duplicate call sign",
    ];
    for case in cases {
        let mut value = fixture_value("conveyed-two-patients");
        (case.mutate)(&mut value);
        assert_eq!(
            cad_schema().is_valid(&value),
            beyond_schema.contains(&case.what),
            "the CAD schema and the decoder disagree on: {}",
            case.what
        );
        let err = cad::decode(&serde_json::to_vec(&value).unwrap()).expect_err(case.what);
        assert_eq!(err.kind(), case.kind, "{}: {err}", case.what);
        assert_eq!(err.path(), case.path, "{}: {err}", case.what);
        assert!(
            err.to_string().starts_with(case.path),
            "{}: {err}",
            case.what
        );
        if let Some(secret) = case.secret {
            assert!(
                !err.to_string().contains(secret),
                "{} leaks: {err}",
                case.what
            );
        }
    }
}

#[test]
fn decode_rejects_bytes_that_are_not_one_json_document() {
    let good = read_fixture("answered-only");
    let truncated = &good[..good.len() / 2];
    let trailing = [good.as_slice(), b" {}"].concat();
    let cases: [(&[u8], DecodeErrorKind); 5] = [
        (truncated, DecodeErrorKind::InvalidJson),
        (b"", DecodeErrorKind::InvalidJson),
        (&trailing, DecodeErrorKind::InvalidJson),
        (b"[1, 2]", DecodeErrorKind::InvalidType),
        (
            b"{\"schema\": \"cad.call.v1\xc3\x28\"}",
            DecodeErrorKind::InvalidUtf8,
        ),
    ];
    for (bytes, kind) in cases {
        let err = cad::decode(bytes).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(err.path(), "$", "{err}");
    }
}

#[test]
fn error_kind_labels_are_bounded_and_distinct() {
    let labels: BTreeSet<&str> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(labels.len(), DecodeErrorKind::ALL.len());
    let mapping_labels: BTreeSet<&str> = mapping::MappingErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(mapping_labels.len(), mapping::MappingErrorKind::ALL.len());
}

/// The golden Bundle of `conveyed-two-patients`, as JSON to break on purpose.
fn two_patient_bundle() -> Value {
    serde_json::from_slice(
        &std::fs::read(fixture_dir("fhir").join("conveyed-two-patients.json")).unwrap(),
    )
    .unwrap()
}

/// Sets the `dateTime` of the typed timestamp `code` of the first resource that has one.
fn set_typed_time(bundle: &mut Value, code: &str, at: &str) {
    for e in bundle["entry"].as_array_mut().unwrap() {
        for ext in e["resource"]["extension"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            let Some(subs) = ext["extension"].as_array_mut() else {
                continue;
            };
            if subs[0]["valueCodeableConcept"]["coding"][0]["code"] == code {
                subs[1]["valueDateTime"] = json!(at);
                return;
            }
        }
    }
    panic!("no {code} in the bundle");
}

fn rules(problems: &[ads_connector::cad::Problem]) -> Vec<&'static str> {
    problems.iter().map(|p| p.rule).collect()
}

#[test]
fn the_unbroken_golden_has_no_cross_section_problem() {
    let report = check::bundle(&two_patient_bundle());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        !rules(&report.warnings).contains(&"clinical_time_before_call_answered"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_response_time_before_the_call_was_answered_is_an_error() {
    let mut bundle = two_patient_bundle();
    set_typed_time(
        &mut bundle,
        "time-resource-mobilised",
        "2025-03-01T12:00:00Z",
    );
    let report = check::bundle(&bundle);
    let found: Vec<_> = report
        .errors
        .iter()
        .filter(|p| p.rule == "response_time_before_call_answered")
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.errors);
    assert!(found[0].path.contains(".extension["), "{}", found[0].path);
    assert!(
        !found[0].message.contains("2025"),
        "no value in the message"
    );
}

#[test]
fn a_clinical_time_before_the_call_was_answered_is_a_warning() {
    let mut bundle = two_patient_bundle();
    let observation = bundle["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["resourceType"] == "Observation" && r.get("encounter").is_some())
        .unwrap();
    observation["effectiveDateTime"] = json!("2025-03-01T12:00:00Z");
    let report = check::bundle(&bundle);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(rules(&report.warnings).contains(&"clinical_time_before_call_answered"));
}

#[test]
fn a_planned_encounter_whose_vehicle_arrived_is_an_error() {
    let mut bundle = two_patient_bundle();
    let encounter = bundle["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["resourceType"] == "Encounter" && r["status"] == "in-progress")
        .unwrap();
    encounter["status"] = json!("planned");
    let report = check::bundle(&bundle);
    assert!(rules(&report.errors).contains(&"encounter_status_contradicts_times"));
}

#[test]
fn an_open_encounter_in_a_closed_call_is_an_error() {
    // refused-conveyance: the call ended and every vehicle is clear, so the call is closed.
    let call = cad::decode(&read_fixture("refused-conveyance")).unwrap();
    let mut bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
    assert!(check::bundle(&bundle).errors.is_empty());
    let encounter = bundle["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["resourceType"] == "Encounter")
        .unwrap();
    assert_eq!(encounter["status"], "finished");
    encounter["status"] = json!("planned");
    let report = check::bundle(&bundle);
    assert!(rules(&report.errors).contains(&"encounter_open_after_call_closed"));
}

#[test]
fn a_contact_no_vehicle_attended_is_finished_once_the_call_is_closed() {
    let mut call = cad::decode(&read_fixture("refused-conveyance")).unwrap();
    for p in &mut call.patients {
        p.call_signs.clear();
        p.conveyance = None;
    }
    let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
    let statuses: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Encounter" && r.get("subject").is_some())
        .map(|r| &r["status"])
        .collect();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| *s == "finished"), "{statuses:?}");
}

#[test]
fn a_closed_call_lacking_a_mandatory_item_names_it_and_an_open_one_does_not() {
    let mut call = cad::decode(&read_fixture("refused-conveyance")).unwrap();
    let complete = map_call(&call, &MappingOptions::default()).unwrap();
    assert!(complete.missing_at_close.is_empty());
    call.treatment_type = None;
    let closed = map_call(&call, &MappingOptions::default()).unwrap();
    let items: Vec<&str> = closed.missing_at_close.iter().map(|i| i.as_str()).collect();
    assert_eq!(items, ["ADS33"]);
    assert!(closed
        .warnings
        .iter()
        .any(|w| w.rule == "ads_mandatory_item_missing_at_close"));
    // The same gap while a vehicle is still out is only "not yet known".
    call.responses[0].times.clear = None;
    call.responses[0].times.stood_down = None;
    let open = map_call(&call, &MappingOptions::default()).unwrap();
    assert!(open.missing_at_close.is_empty());
    assert!(open
        .warnings
        .iter()
        .any(|w| w.rule == "ads_mandatory_item_not_yet_known"));
}
