//! The `validate` command's logic (`ads_connector::validate`): CAD JSON lines, single CAD
//! documents, FHIR call Bundles and `batch` submissions; problem lines with file, record number,
//! rule and path; `--emit-fhir`; the exit status; and the machine-readable problem lists of
//! `DecodeError` and `MappingError`.

mod common;

use std::path::{Path, PathBuf};

use ads_connector::cad;
use ads_connector::mapping::{self, check, map_call, MappingError, MappingOptions};
use ads_connector::validate;
use ads_devkit::generate::{to_json_line, Generator};
use common::{fixture_path as fixture, write_file as write};
use serde_json::{json, Value};

fn fixture_value(kind: &str, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(kind, name)).unwrap()).unwrap()
}

/// Runs the command on `files`; returns (all valid, output).
fn run(files: &[PathBuf], emit: Option<&Path>) -> (bool, String) {
    let mut out = Vec::new();
    let ok = validate::run(files, emit, &mut out).unwrap();
    (ok, String::from_utf8(out).unwrap())
}

fn generated_lines(seed: u64, n: usize) -> Vec<String> {
    let mut generator = Generator::new(seed);
    (0..n)
        .map(|_| to_json_line(&generator.next_call()))
        .collect()
}

#[test]
fn validates_generated_json_lines_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "calls.jsonl",
        &generated_lines(3, 60).join("\n"),
    );
    let (ok, out) = run(&[file], None);
    assert!(ok, "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("60 valid, 0 invalid, "), "{last}");
    assert!(!out.contains(": error "), "{out}");
}

#[test]
fn reports_each_problem_with_file_record_number_rule_and_path_but_no_patient_value() {
    let dir = tempfile::tempdir().unwrap();
    let good = to_json_line(
        &cad::decode(&std::fs::read(fixture("cad", "conveyed-two-patients")).unwrap()).unwrap(),
    );
    let mut bad = fixture_value("cad", "conveyed-two-patients");
    bad["patients"][0]["demographics"]["nhs_number"] = json!("9990000017");
    let text = format!(
        "{good}\n{}\n\n   \nnot json\n",
        serde_json::to_string(&bad).unwrap()
    );
    let file = write(dir.path(), "mixed.jsonl", &text);
    let (ok, out) = run(std::slice::from_ref(&file), None);
    assert!(!ok, "{out}");
    let name = file.display().to_string();
    assert!(
        out.contains(&format!(
            "{name}:2: error [invalid_nhs_number] $.patients[0].demographics.nhs_number: fails the NHS number modulus-11 check"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{name}:5: error [invalid_json] $: ")),
        "{out}"
    );
    assert!(!out.contains("9990000017"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("1 valid, 2 invalid, "),
        "{out}"
    );
}

#[test]
fn accepts_a_pretty_printed_cad_record_as_one_record() {
    let (ok, out) = run(&[fixture("cad", "every-observation-kind")], None);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("1 valid, 0 invalid"),
        "{out}"
    );
}

#[test]
fn a_broken_pretty_printed_record_is_one_invalid_record_not_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("cad", "hear-and-treat")).unwrap();
    let broken = text.replacen("\"call_origin\": \"01\",", "\"call_origin\": \"01\"", 1);
    let file = write(dir.path(), "broken.json", &broken);
    let (ok, out) = run(std::slice::from_ref(&file), None);
    assert!(!ok);
    assert_eq!(
        out.lines().filter(|l| l.contains(": error ")).count(),
        1,
        "{out}"
    );
    assert!(out.contains(":1: error [invalid_json] $: "), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("0 valid, 1 invalid"),
        "{out}"
    );
}

#[test]
fn warnings_are_printed_but_do_not_make_a_record_invalid() {
    let (ok, out) = run(&[fixture("cad", "answered-only")], None);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            ": warning [ads_mandatory_item_not_yet_known] $.entry[0].resource.extension: ADS15"
        ),
        "{out}"
    );
}

#[test]
fn emits_the_bundle_of_every_valid_call_named_by_its_bundle_id() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(5, 20);
    let file = write(dir.path(), "calls.jsonl", &lines.join("\n"));
    let emit = dir.path().join("fhir");
    let (ok, _) = run(&[file], Some(&emit));
    assert!(ok);
    let written = std::fs::read_dir(&emit).unwrap().count();
    assert_eq!(written, 20);
    let call = cad::decode(lines[7].as_bytes()).unwrap();
    let bundle = map_call(&call, &MappingOptions::default()).unwrap();
    let path = emit.join(format!("{}.json", bundle.bundle_id));
    let emitted: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(emitted, bundle.json);
}

#[test]
fn emitted_bundles_validate_again_as_fhir_input() {
    let dir = tempfile::tempdir().unwrap();
    let emit = dir.path().join("fhir");
    let (ok, _) = run(
        &[fixture("cad", "two-patients-shared-destination")],
        Some(&emit),
    );
    assert!(ok);
    let files: Vec<PathBuf> = std::fs::read_dir(&emit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (ok, out) = run(&files, None);
    assert!(ok, "{out}");
}

#[test]
fn accepts_golden_fhir_bundles_and_batch_submissions_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_value("fhir", "conveyed-two-patients");
    let b = fixture_value("fhir", "hear-and-treat.message");
    let batch = json!({"resourceType": "Bundle", "type": "batch",
        "entry": [{"resource": a}, {"resource": b}]});
    let batch_file = write(
        dir.path(),
        "batch.json",
        &serde_json::to_string_pretty(&batch).unwrap(),
    );
    let lines = format!(
        "{}\n{}\n",
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let lines_file = write(dir.path(), "bundles.jsonl", &lines);
    let (ok, out) = run(
        &[
            fixture("fhir", "safeguarding-and-public-health"),
            batch_file,
            lines_file,
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("4 valid, 0 invalid"),
        "{out}"
    );
}

/// The index of the first entry of a resource type in a Bundle.
fn first(bundle: &Value, kind: &str) -> usize {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["resource"]["resourceType"] == kind)
        .unwrap()
}

#[test]
fn local_validation_finds_each_broken_rule_in_a_fhir_bundle() {
    type Break = fn(&mut Value);
    let cases: [(&str, Break, &str, &str); 10] = [
        (
            "bad NHS number",
            |b| {
                let p = first(b, "Patient");
                b["entry"][p]["resource"]["identifier"][0]["value"] = json!("9990000017");
            },
            "invalid_nhs_number",
            ".identifier[0].value",
        ),
        (
            "malformed ODS code",
            |b| {
                let o = first(b, "Organization");
                b["entry"][o]["resource"]["identifier"][0]["value"] = json!("rx8");
            },
            "invalid_ods_code",
            ".identifier[0].value",
        ),
        (
            "call origin outside its code system",
            |b| {
                b["entry"][0]["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]
                    ["code"] = json!("99");
            },
            "code_not_in_code_system",
            "$.entry[0].resource.extension[0].valueCodeableConcept.coding[0].code",
        ),
        (
            "SNOMED CT id with a bad check digit",
            |b| {
                let c = first(b, "Condition");
                b["entry"][c]["resource"]["code"]["coding"][0]["code"] = json!("5913001");
            },
            "code_not_in_code_system",
            ".code.coding[0].code",
        ),
        (
            "call ended before it was answered",
            |b| {
                let ext = b["entry"][0]["resource"]["extension"]
                    .as_array_mut()
                    .unwrap();
                let ended = ext
                    .iter_mut()
                    .find(|e| {
                        e["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                            == "time-call-ended"
                    })
                    .unwrap();
                ended["extension"][1]["valueDateTime"] = json!("2025-03-01T12:00:00Z");
            },
            "timestamps_out_of_order",
            "$.entry[0].resource.extension[",
        ),
        (
            "missing call identifier",
            |b| {
                b["entry"][0]["resource"]["identifier"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("value");
            },
            "ads_mandatory_item_missing",
            "$.entry[0].resource.identifier[0].value",
        ),
        (
            "missing call origin",
            |b| {
                b["entry"][0]["resource"]["extension"]
                    .as_array_mut()
                    .unwrap()
                    .remove(0);
            },
            "ads_mandatory_item_missing",
            "$.entry[0].resource.extension",
        ),
        (
            "dangling reference",
            |b| {
                b["entry"][0]["resource"]["sender"]["reference"] =
                    json!("urn:uuid:00000000-0000-0000-0000-000000000000");
            },
            "unresolved_reference",
            "$.entry[0].resource.sender.reference",
        ),
        (
            "fullUrl that does not match the id",
            |b| {
                b["entry"][1]["resource"]["id"] = json!("00000000-0000-0000-0000-000000000000");
            },
            "resource_id_mismatch",
            "$.entry[1].resource.id",
        ),
        (
            "second Communication",
            |b| {
                let mut extra = b["entry"][0].clone();
                extra["fullUrl"] = json!("urn:uuid:00000000-0000-0000-0000-000000000001");
                extra["resource"]["id"] = json!("00000000-0000-0000-0000-000000000001");
                b["entry"].as_array_mut().unwrap().push(extra);
            },
            "ads_communication_count",
            "$.entry",
        ),
    ];
    let good = fixture_value("fhir", "conveyed-two-patients");
    assert!(check::bundle(&good).is_valid());
    for (what, breaker, rule, path) in cases {
        let mut bundle = good.clone();
        breaker(&mut bundle);
        let report = check::bundle(&bundle);
        let found = report.errors.iter().find(|p| p.rule == rule);
        let p = found.unwrap_or_else(|| panic!("{what}: {:#?}", report.errors));
        assert!(
            p.path.contains(path),
            "{what}: {} does not contain {path}",
            p.path
        );
        let json = serde_json::to_string(&report.errors).unwrap();
        for secret in ["9990000017", "5913001", "Margaret"] {
            assert!(!json.contains(secret), "{what} leaks {secret}: {json}");
        }
    }
}

#[test]
fn a_full_url_repeated_is_an_error_at_each_entry_after_the_first_that_has_it_in_entry_order() {
    let mut bundle = fixture_value("fhir", "conveyed-two-patients");
    let entries = bundle["entry"].as_array_mut().unwrap();
    assert!(entries.len() > 6);
    // Entry 5 repeats entry 1's fullUrl, entry 6 entry 0's, and the last entry entry 1's again.
    let (first, second) = (entries[0]["fullUrl"].clone(), entries[1]["fullUrl"].clone());
    let last = entries.len() - 1;
    entries[5]["fullUrl"] = second.clone();
    entries[6]["fullUrl"] = first;
    entries[last]["fullUrl"] = second;
    let report = check::bundle(&bundle);
    let repeated: Vec<&str> = report
        .errors
        .iter()
        .filter(|p| p.rule == "duplicate_full_url")
        .map(|p| p.path.as_str())
        .collect();
    let expected = [
        "$.entry[5].fullUrl".to_string(),
        "$.entry[6].fullUrl".to_string(),
        format!("$.entry[{last}].fullUrl"),
    ];
    assert_eq!(repeated, expected, "{:#?}", report.errors);
}

#[test]
fn an_unpublished_cat1_code_is_a_warning_and_a_later_timestamp_too() {
    let mut bundle = fixture_value("fhir", "cat1-early-prediction-unpublished-code");
    let report = check::bundle(&bundle);
    assert!(report.is_valid(), "{:#?}", report.errors);
    assert!(report
        .warnings
        .iter()
        .any(|p| p.rule == "code_not_in_visible_code_system"));
    bundle["timestamp"] = json!("2025-03-04T08:00:00Z");
    let report = check::bundle(&bundle);
    assert!(report
        .warnings
        .iter()
        .any(|p| p.rule == "timestamp_after_snapshot"));
}

#[test]
fn a_file_that_cannot_be_read_is_an_io_error_not_a_verdict() {
    let mut out = Vec::new();
    let err =
        validate::run(&[PathBuf::from("/nonexistent/calls.jsonl")], None, &mut out).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/calls.jsonl"),
        "{err}"
    );
}

#[test]
fn decode_and_mapping_problems_serialise_as_a_json_list_without_patient_values() {
    let mut bad = fixture_value("cad", "conveyed-two-patients");
    bad["patients"][0]["demographics"]["postcode"] = json!("LS9 7T");
    let err = cad::decode(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
    let json = serde_json::to_value(err.problems()).unwrap();
    assert_eq!(
        json,
        json!([{"path": "$.patients[0].demographics.postcode", "rule": "invalid_value",
            "message": "must be a full UK postcode in upper case, e.g. SW1A 1AA"}])
    );
    let mapping_err = MappingError::InvalidInput(err);
    assert_eq!(serde_json::to_value(mapping_err.problems()).unwrap(), json);

    let opts = MappingOptions {
        ads_bundle_type_code: "stage-3".into(),
        ..MappingOptions::default()
    };
    let call = cad::decode(&std::fs::read(fixture("cad", "answered-only")).unwrap()).unwrap();
    let problems = map_call(&call, &opts).unwrap_err().problems();
    assert_eq!(problems[0].path, "options.ads_bundle_type_code");
    assert_eq!(problems[0].rule, "invalid_option");
    assert_eq!(mapping::MappingErrorKind::ALL.len(), 4);
}

#[test]
fn emit_fhir_keeps_the_newest_snapshot_of_a_call_whatever_the_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(11);
    let call = generator.next_call();
    let update = generator.next_update(&call);
    assert!(update.snapshot_at > call.snapshot_at);
    // The newer snapshot first, the older one last.
    let file = write(
        dir.path(),
        "calls.jsonl",
        &format!("{}\n{}", to_json_line(&update), to_json_line(&call)),
    );
    let emit = dir.path().join("fhir");
    let (ok, _) = run(&[file], Some(&emit));
    assert!(ok);
    let newest = map_call(&update, &MappingOptions::default()).unwrap();
    let path = emit.join(format!("{}.json", newest.bundle_id));
    let emitted: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(emitted, newest.json);
}

#[test]
fn a_fhir_bundle_that_breaks_a_uk_core_profile_is_an_error_naming_the_constraint() {
    let mut bundle = fixture_value("fhir", "conveyed-two-patients");
    // UK Core allows typed date-times on Encounter, Communication, Organization and
    // OrganizationAffiliation, not on Location.
    let typed = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Encounter")
        .unwrap()["extension"][0]
        .clone();
    let location = bundle["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["resourceType"] == "Location")
        .unwrap();
    location["extension"] = json!([typed]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bundle.json", &bundle.to_string());
    let (ok, out) = run(&[file], None);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l.contains("error [uk_core]")
            && l.contains("Extension-UKCore-TypedDateTime:context")),
        "{out}"
    );
}
