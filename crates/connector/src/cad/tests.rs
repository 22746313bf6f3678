//! Unit tests of the decoder, its rules and its value-free errors.

use std::collections::HashSet;

use super::time::parse_rfc3339;
use super::*;

/// A valid NHS number from the synthetic 999 range (check digit 8).
const NHS_NUMBER: &str = "9990000018";

fn minimal() -> serde_json::Value {
    serde_json::json!({
        "schema": "cad.call.v1",
        "snapshot_at": "2025-03-01T12:00:05Z",
        "provider_ods": "RX8",
        "submitter_ods": "RX8",
        "call_id": "250301-0000001",
        "call_date": "2025-03-01",
        "call_origin": "01",
        "times": { "call_answered": "2025-03-01T12:00:00Z" }
    })
}

fn full() -> serde_json::Value {
    let mut v = minimal();
    v["triage"] = serde_json::json!({"system": "pathways", "disposition_code": "Dx011",
        "symptom_group": "1011", "symptom_discriminator": "4042"});
    v["initial_response_category"] = "C2".into();
    v["responses"] = serde_json::json!([{"call_sign": "YA123", "resource_type": "emergency_ambulance",
        "times": {"mobilised": "2025-03-01T12:03:00Z", "arrived_on_scene": "2025-03-01T12:15:00Z"}}]);
    v["patients"] = serde_json::json!([{"contact_id": "1", "call_signs": ["YA123"],
        "demographics": {"nhs_number": NHS_NUMBER, "given_name": "Olivia", "family_name": "Smith",
            "birth_date": "1950-06-01", "gender": "female", "postcode": "LS9 7TF"},
        "diagnoses": [{"snomed": "29857009"}]}]);
    v
}

fn decode_value(v: &serde_json::Value) -> Result<CadCall, DecodeError> {
    decode(&serde_json::to_vec(v).unwrap())
}

#[test]
fn decodes_a_minimal_call() {
    let call = decode_value(&minimal()).unwrap();
    assert_eq!(call.call_key(), "RX8/250301-0000001");
    assert_eq!(call.call_origin, CallOrigin::Emergency999);
    assert!(call.responses.is_empty() && call.patients.is_empty());
}

#[test]
fn round_trips_a_full_call_through_json() {
    let call = decode_value(&full()).unwrap();
    let again = decode(&call.to_json_bytes()).unwrap();
    assert_eq!(call, again);
}

#[test]
fn nhs_number_check_digit_follows_modulus_11() {
    assert!(is_valid_nhs_number(NHS_NUMBER));
    assert!(is_valid_nhs_number("9434765919"));
    assert!(!is_valid_nhs_number("9434765918"));
    assert!(!is_valid_nhs_number("943476591"));
    assert!(!is_valid_nhs_number("94347659１9"));
}

#[test]
fn snomed_ids_need_a_verhoeff_check_digit() {
    for ok in ["29857009", "22298006", "387458008", "125605004"] {
        assert!(is_snomed_id(ok), "{ok}");
    }
    for bad in ["29857008", "12345", "0298570090", "2985700x"] {
        assert!(!is_snomed_id(bad), "{bad}");
    }
}

#[test]
fn postcodes_accept_every_uk_shape_and_nothing_else() {
    for ok in [
        "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "W1A 0AX", "EC1A 1BB", "LS97TF",
    ] {
        assert!(is_uk_postcode(ok), "{ok}");
    }
    for bad in ["ls9 7tf", "LS9  7TF", "LS9 7T", "9LS 7TF", "LS9 77F", ""] {
        assert!(!is_uk_postcode(bad), "{bad}");
    }
}

#[test]
fn rejects_an_unknown_call_origin_with_the_code_list_kind() {
    let mut v = minimal();
    v["call_origin"] = "99".into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::InvalidCode);
    assert_eq!(err.path(), "$.call_origin");
    assert!(!err.to_string().contains("99"), "{err}");
}

#[test]
fn rejects_a_wrong_type_without_echoing_the_value() {
    let mut v = full();
    v["patients"][0]["demographics"]["family_name"] = 12345678.into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::InvalidType);
    assert_eq!(err.path(), "$.patients[0].demographics.family_name");
    assert!(!err.to_string().contains("12345678"), "{err}");
}

#[test]
fn reports_the_path_of_a_missing_nested_field() {
    let mut v = full();
    v["responses"][0]
        .as_object_mut()
        .unwrap()
        .remove("resource_type");
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::MissingField);
    assert_eq!(err.path(), "$.responses[0].resource_type");
}

#[test]
fn hides_unknown_field_names_that_do_not_look_like_field_names() {
    let mut v = minimal();
    v["Olivia Smith"] = 1.into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::UnknownField);
    assert_eq!(err.path(), "$.?");
    let mut v = minimal();
    v["colour"] = 1.into();
    assert_eq!(decode_value(&v).unwrap_err().path(), "$.colour");
}

#[test]
fn prefers_schema_mismatch_over_unknown_fields_of_another_version() {
    let mut v = minimal();
    v["schema"] = "cad.call.v2".into();
    v["new_field"] = true.into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::SchemaMismatch);
    assert!(!err.to_string().contains("v2"));
}

#[test]
fn rejects_timestamps_with_a_bad_format_with_an_example() {
    let mut v = minimal();
    v["times"]["call_answered"] = "01/03/2025 12:00".into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::InvalidValue);
    assert_eq!(err.path(), "$.times.call_answered");
    assert!(err.to_string().contains("RFC 3339"), "{err}");
    assert!(!err.to_string().contains("01/03"), "{err}");
}

#[test]
fn accepts_only_the_rfc3339_shape_of_the_schema() {
    for ok in [
        "2025-03-01T12:00:00Z",
        "2025-03-01T12:00:00.125Z",
        "2025-03-01T13:00:00+01:00",
    ] {
        assert!(parse_rfc3339(ok).is_some(), "{ok}");
    }
    for bad in [
        "2025-03-01t12:00:00Z",
        "2025-03-01T12:00:00z",
        "2025-03-01 12:00:00Z",
        "2025-03-01T12:00:00",
        "2025-03-01T12:00:00.Z",
        "2025-02-30T12:00:00Z",
        "2025-03-01T12:00Z",
    ] {
        assert!(parse_rfc3339(bad).is_none(), "{bad}");
    }
}

#[test]
fn converts_offsets_to_utc() {
    let mut v = minimal();
    v["snapshot_at"] = "2025-03-01T13:00:05+01:00".into();
    let call = decode_value(&v).unwrap();
    assert_eq!(format_utc(&call.snapshot_at), "2025-03-01T12:00:05Z");
}

#[test]
fn rejects_trailing_garbage_and_invalid_utf8() {
    let mut bytes = serde_json::to_vec(&minimal()).unwrap();
    bytes.extend_from_slice(b" {}");
    assert_eq!(
        decode(&bytes).unwrap_err().kind(),
        DecodeErrorKind::InvalidJson
    );
    assert_eq!(
        decode(b"{\"schema\": \"\xff\"}").unwrap_err().kind(),
        DecodeErrorKind::InvalidUtf8
    );
}

#[test]
fn rejects_symptom_groups_for_ampds_triage() {
    let mut v = full();
    v["triage"]["system"] = "ampds".into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::InvalidValue);
    assert_eq!(err.path(), "$.triage.symptom_group");
}

#[test]
fn rejects_a_conveyance_without_destination() {
    let mut v = full();
    v["patients"][0]["conveyance"] =
        serde_json::json!({"outcome": "conveyed_to_emergency_department"});
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::MissingField);
    assert_eq!(err.path(), "$.patients[0].conveyance.destination");
}

#[test]
fn rejects_a_birth_date_after_the_call() {
    let mut v = full();
    v["patients"][0]["demographics"]["birth_date"] = "2030-01-01".into();
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.path(), "$.patients[0].demographics.birth_date");
    assert!(!err.to_string().contains("2030"));
}

#[test]
fn rejects_observations_out_of_range() {
    let mut v = full();
    v["patients"][0]["observations"] = serde_json::json!([
        {"kind": "oxygen_saturation", "value": 101, "taken_at": "2025-03-01T12:20:00Z"}]);
    let err = decode_value(&v).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::InvalidValue);
    assert_eq!(err.path(), "$.patients[0].observations[0].value");
}

#[test]
fn error_kinds_have_distinct_snake_case_labels() {
    let labels: HashSet<_> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(labels.len(), DecodeErrorKind::ALL.len());
    assert!(labels.iter().all(|l| l
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')));
}

#[test]
fn debug_of_patient_types_shows_no_patient_data() {
    let call = decode_value(&full()).unwrap();
    let debug = format!("{call:?} {:?}", call.patients);
    for secret in [NHS_NUMBER, "Olivia", "Smith", "1950", "LS9", "29857009"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("250301-0000001") && debug.contains("RX8"));
}
