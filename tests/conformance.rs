//! Each kind of check, shown failing on a small hand-written resource (and passing on the
//! corrected one). Instance values carry the marker `SENTINEL` so that the last test can
//! prove no message or path ever repeats them.

mod common;

use ads_connector::conformance::{self, Registry, Violation};
use serde_json::{json, Value};

const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const VS_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const TDT: &str = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-TypedDateTime";
const UNAVAILABLE: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberUnavailableReason";

fn rules(vs: &[Violation]) -> Vec<&str> {
    vs.iter().map(|v| v.rule.as_str()).collect()
}

fn has(vs: &[Violation], rule: &str, path: &str) -> bool {
    vs.iter().any(|v| v.rule == rule && v.path == path)
}

fn bundle(resources: Vec<Value>) -> Value {
    let entry: Vec<Value> = resources
        .into_iter()
        .enumerate()
        .map(|(i, r)| json!({"fullUrl": format!("urn:uuid:00000000-0000-0000-0000-00000000000{i}"), "resource": r}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry})
}

fn verification(code: &str, system: &str) -> Value {
    json!({"url": VS_EXT, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}})
}

const ENGLAND: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

fn typed(code: &str, value: Value) -> Value {
    let mut dt = json!({"url": "dateTime"});
    if let (Some(o), Some(v)) = (dt.as_object_mut(), value.as_object()) {
        o.extend(v.clone());
    }
    json!({"url": TDT, "extension": [
        {"url": "dateTimeType", "valueCodeableConcept": {"coding": [
            {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-DateTimeType", "code": code}]}},
        dt
    ]})
}

#[test]
fn a_conformant_patient_and_encounter_have_no_violations() {
    let b = bundle(vec![
        json!({"resourceType": "Patient", "identifier": [
            {"extension": [verification("01", ENGLAND)], "system": NHS, "value": "SENTINEL-9990000018"}]}),
        json!({"resourceType": "Encounter", "status": "finished",
               "extension": [typed("time-resource-mobilised", json!({"valueDateTime": "2025-03-04T09:03:00Z"}))]}),
    ]);
    assert_eq!(conformance::check_bundle(&b), vec![]);
}

#[test]
fn a_missing_mandatory_element_is_reported_at_the_missing_path() {
    // NHS-number identifier without value: Patient.identifier:nhsNumber.value min=1.
    let b = bundle(vec![json!({"resourceType": "Patient", "identifier": [
        {"system": "urn:other", "value": "SENTINEL-other"}, {"system": NHS}]})]);
    let v = conformance::check_bundle(&b);
    assert_eq!(
        rules(&v),
        vec!["UKCore-Patient:Patient.identifier:nhsNumber.value:min"]
    );
    assert_eq!(v[0].path, "Bundle.entry[0].resource.identifier[1].value");

    // TypedDateTime without its dateTime part: Extension.extension:dateTime min=1 and
    // Extension.extension min=2.
    let e = json!({"resourceType": "Encounter", "status": "finished", "extension": [
        {"url": TDT, "extension": [{"url": "dateTimeType", "valueCodeableConcept": {"text": "SENTINEL"}}]}]});
    let v = conformance::check_resource(&e);
    assert!(
        has(
            &v,
            "Extension-UKCore-TypedDateTime:Extension.extension:dateTime:min",
            "Encounter.extension[0].extension"
        ),
        "{v:#?}"
    );
    assert!(
        has(
            &v,
            "Extension-UKCore-TypedDateTime:Extension.extension:min",
            "Encounter.extension[0].extension"
        ),
        "{v:#?}"
    );
}

#[test]
fn too_many_repetitions_are_reported() {
    // Two NHS numbers: Patient.identifier:nhsNumber max=1.
    let p = json!({"resourceType": "Patient", "identifier": [
        {"system": NHS, "value": "SENTINEL-1"}, {"system": NHS, "value": "SENTINEL-2"}]});
    let v = conformance::check_resource(&p);
    assert_eq!(
        rules(&v),
        vec!["UKCore-Patient:Patient.identifier:nhsNumber:max"]
    );
    assert_eq!(v[0].path, "Patient.identifier");

    // Two verification statuses on one NHS number: slice max=1.
    let p = json!({"resourceType": "Patient", "identifier": [{"system": NHS, "value": "SENTINEL-1",
        "extension": [verification("01", ENGLAND), verification("02", ENGLAND)]}]});
    let v = conformance::check_resource(&p);
    assert_eq!(
        rules(&v),
        vec![
            "UKCore-Patient:Patient.identifier:nhsNumber.extension:nhsNumberVerificationStatus:max"
        ]
    );

    // A value[x] on TypedDateTime, which allows none (Extension.value[x] max=0).
    let mut ext = typed(
        "time-clear",
        json!({"valueDateTime": "2025-03-04T09:03:00Z"}),
    );
    ext["valueString"] = json!("SENTINEL");
    let v = conformance::check_resource(&json!({"resourceType": "Encounter", "extension": [ext]}));
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-TypedDateTime:Extension.value[x]:max"]
    );

    // The unavailable-reason extension twice on one Patient (root Extension max=1).
    let reason = json!({"url": UNAVAILABLE, "valueCodeableConcept": {"coding": [
        {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberUnavailableReason", "code": "nhs-number-not-known"}]}});
    let v = conformance::check_resource(
        &json!({"resourceType": "Patient", "extension": [reason.clone(), reason]}),
    );
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-NHSNumberUnavailableReason:Extension:max"]
    );
    assert_eq!(v[0].path, "Patient.extension[1]");
}

#[test]
fn a_wrong_fixed_value_is_reported() {
    // Real profile: Extension.url is fixed to the unversioned canonical; a versioned url is
    // still recognised as the extension but breaks the fixed value.
    let e = json!({"resourceType": "Encounter", "extension": [{
        "url": format!("{TDT}|2.2.0"),
        "extension": typed("time-clear", json!({"valueDateTime": "2025-03-04T09:03:00Z"}))["extension"].clone()}]});
    let v = conformance::check_resource(&e);
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-TypedDateTime:Extension.url:fixed"]
    );
    assert_eq!(v[0].path, "Encounter.extension[0].url");

    // Hand-written profile with a fixed value that is not a slice discriminator.
    let reg = test_registry();
    let v = reg.check_resource(
        &json!({"resourceType": "Encounter", "meta": {"profile": ["urn:test:Encounter"]},
        "status": "in-progress", "class": {"system": "urn:x", "code": "FLD"}}),
    );
    assert!(
        has(
            &v,
            "Test-Encounter:Encounter.status:fixed",
            "Encounter.status"
        ),
        "{v:#?}"
    );
}

#[test]
fn a_code_outside_a_required_value_set_is_reported() {
    // A code that is not in the England CodeSystem ...
    let p = json!({"resourceType": "Patient", "identifier": [{"system": NHS, "value": "SENTINEL-1",
        "extension": [verification("SENTINEL-99", ENGLAND)]}]});
    let v = conformance::check_resource(&p);
    let rs = rules(&v);
    assert!(
        rs.contains(&"Extension-UKCore-NHSNumberVerificationStatus:Extension.value[x]:binding"),
        "{v:#?}"
    );
    assert!(
        rs.contains(&"CodeSystem/UKCore-NHSNumberVerificationStatusEngland:code-defined"),
        "{v:#?}"
    );
    // ... and a code from a system that the ValueSet does not include.
    let p = json!({"resourceType": "Patient", "identifier": [{"system": NHS, "value": "SENTINEL-1",
        "extension": [verification("01", "urn:example:not-in-the-value-set")]}]});
    let v = conformance::check_resource(&p);
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-NHSNumberVerificationStatus:Extension.value[x]:binding"]
    );
    assert_eq!(
        v[0].path,
        "Patient.identifier[0].extension[0].valueCodeableConcept"
    );
    // The NullFlavor code that the ValueSet lists explicitly is accepted.
    let p = json!({"resourceType": "Patient", "identifier": [{"system": NHS, "value": "SENTINEL-1",
        "extension": [verification("NI", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor")]}]});
    assert_eq!(conformance::check_resource(&p), vec![]);
}

#[test]
fn an_extension_outside_its_context_is_reported() {
    // TypedDateTime on Location (UK Core allows Encounter, Communication, Organization,
    // OrganizationAffiliation).
    let l = json!({"resourceType": "Location", "extension": [
        typed("time-resource-arrived-on-scene", json!({"valueDateTime": "2025-03-04T09:14:00Z"}))]});
    let v = conformance::check_resource(&l);
    assert_eq!(rules(&v), vec!["Extension-UKCore-TypedDateTime:context"]);
    assert_eq!(v[0].path, "Location.extension[0]");
    // The verification status on the Patient itself instead of on Patient.identifier.
    let v = conformance::check_resource(
        &json!({"resourceType": "Patient", "extension": [verification("01", ENGLAND)]}),
    );
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-NHSNumberVerificationStatus:context"]
    );
    // An ADS extension (table: context Communication) on an Encounter.
    let v = conformance::check_resource(&json!({"resourceType": "Encounter", "extension": [
        {"url": "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-CallOrigin",
         "valueCodeableConcept": {"coding": [{"system": "urn:x", "code": "01"}]}}]}));
    assert_eq!(rules(&v), vec!["ADS:Extension-ADS-CallOrigin:context"]);
    // data-absent-reason (context Element) is fine on a primitive.
    let m = json!({"resourceType": "MedicationAdministration", "status": "completed",
        "_effectiveDateTime": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}});
    assert_eq!(conformance::check_resource(&m), vec![]);
}

#[test]
fn a_wrong_type_is_reported() {
    // dateTime part given as a string.
    let e = json!({"resourceType": "Encounter", "extension": [typed("time-clear", json!({"valueString": "SENTINEL"}))]});
    let v = conformance::check_resource(&e);
    assert!(
        has(
            &v,
            "Extension-UKCore-TypedDateTime:Extension.extension:dateTime.value[x]:type",
            "Encounter.extension[0].extension[1].valueString"
        ),
        "{v:#?}"
    );
    // dateTime with the right key but not a FHIR dateTime.
    let e = json!({"resourceType": "Encounter", "extension": [typed("time-clear", json!({"valueDateTime": "SENTINEL yesterday"}))]});
    let v = conformance::check_resource(&e);
    assert_eq!(
        rules(&v),
        vec!["Extension-UKCore-TypedDateTime:Extension.extension:dateTime.value[x]:type"]
    );
    assert!(!v[0].message.contains("SENTINEL"));
    // Verification status as a Coding instead of a CodeableConcept.
    let p = json!({"resourceType": "Patient", "identifier": [{"system": NHS, "value": "SENTINEL-1",
        "extension": [{"url": VS_EXT, "valueCoding": {"system": ENGLAND, "code": "01"}}]}]});
    let v = conformance::check_resource(&p);
    assert!(
        rules(&v).contains(&"Extension-UKCore-NHSNumberVerificationStatus:Extension.value[x]:type"),
        "{v:#?}"
    );
    // ADS table: AQI response time must be a Duration.
    let c = json!({"resourceType": "Communication", "status": "completed", "extension": [
        {"url": "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIResponseTime", "valueInteger": 720}]});
    assert_eq!(
        rules(&conformance::check_resource(&c)),
        vec!["ADS:Extension-ADS-AQIResponseTime:value[x]:type"]
    );
}

#[test]
fn an_unknown_extension_or_profile_is_reported() {
    let c = json!({"resourceType": "Communication", "meta": {"profile": ["https://example.org/SENTINEL-profile"]},
        "extension": [{"url": "https://example.org/SENTINEL-extension", "valueString": "SENTINEL"}]});
    let v = conformance::check_resource(&c);
    assert_eq!(
        rules(&v),
        vec!["profile-selection:unknown-profile", "extension:unknown-url"]
    );
    assert_eq!(v[0].path, "Communication.meta.profile[0]");
    // The ADS Communication profile is known and checked as its UK Core base.
    let c = json!({"resourceType": "Communication", "meta": {"profile": ["https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Communication"]}});
    assert_eq!(conformance::check_resource(&c), vec![]);
    // A profile for another resource type.
    let c = json!({"resourceType": "Communication", "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]}});
    assert_eq!(
        rules(&conformance::check_resource(&c)),
        vec!["profile-selection:type-mismatch"]
    );
}

/// A hand-written profile exercising the kinds of constraint that the bundled UK Core
/// differentials happen not to make fail-able: a non-discriminator fixed value, a pattern,
/// a closed slicing and a reference target profile.
fn test_registry() -> Registry {
    let sd = r#"<StructureDefinition xmlns="http://hl7.org/fhir">
      <id value="Test-Encounter"/><url value="urn:test:Encounter"/><kind value="resource"/><type value="Encounter"/>
      <baseDefinition value="http://hl7.org/fhir/StructureDefinition/Encounter"/><derivation value="constraint"/>
      <differential>
        <element id="Encounter.status"><path value="Encounter.status"/><fixedCode value="finished"/></element>
        <element id="Encounter.class"><path value="Encounter.class"/>
          <patternCoding><system value="http://terminology.hl7.org/CodeSystem/v3-ActCode"/><code value="FLD"/></patternCoding></element>
        <element id="Encounter.identifier"><path value="Encounter.identifier"/>
          <slicing><discriminator><type value="value"/><path value="system"/></discriminator><rules value="closed"/></slicing></element>
        <element id="Encounter.identifier:call"><path value="Encounter.identifier"/><sliceName value="call"/><max value="1"/></element>
        <element id="Encounter.identifier:call.system"><path value="Encounter.identifier.system"/><fixedUri value="urn:test:call"/></element>
        <element id="Encounter.subject"><path value="Encounter.subject"/>
          <type><code value="Reference"/><targetProfile value="https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"/></type></element>
      </differential></StructureDefinition>"#;
    let mut files: Vec<(&str, &str)> = conformance::embedded_files().to_vec();
    files.push(("Test-Encounter.xml", sd));
    Registry::from_sources(&files).unwrap()
}

#[test]
fn pattern_closed_slicing_and_reference_targets_are_checked_from_a_hand_written_profile() {
    let reg = test_registry();
    let enc = |class: Value, ids: Value, subject: &str| {
        json!({"resourceType": "Encounter", "meta": {"profile": ["urn:test:Encounter"]}, "status": "finished",
               "class": class, "identifier": ids, "subject": {"reference": subject}})
    };
    let fld = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD", "display": "field"});
    let good = bundle(vec![
        enc(
            fld.clone(),
            json!([{"system": "urn:test:call", "value": "SENTINEL"}]),
            "urn:uuid:00000000-0000-0000-0000-000000000001",
        ),
        json!({"resourceType": "Patient"}),
    ]);
    assert_eq!(reg.check_bundle(&good), vec![]);

    let bad = bundle(vec![
        enc(
            json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}),
            json!([{"system": "urn:other", "value": "SENTINEL"}]),
            "urn:uuid:00000000-0000-0000-0000-000000000001",
        ),
        json!({"resourceType": "Location"}),
    ]);
    let v = reg.check_bundle(&bad);
    assert_eq!(
        rules(&v),
        vec![
            "Test-Encounter:Encounter.class:pattern",
            "Test-Encounter:Encounter.identifier:slicing",
            "Test-Encounter:Encounter.subject:targetProfile",
        ],
        "{v:#?}"
    );
    assert_eq!(v[1].path, "Bundle.entry[0].resource.identifier[0]");
    assert_eq!(v[2].path, "Bundle.entry[0].resource.subject.reference");
}

#[test]
fn no_message_or_path_repeats_an_instance_value() {
    // Every SENTINEL value above is instance data; run a bundle full of them through every
    // failing shape and look for the marker.
    let b = bundle(vec![
        json!({"resourceType": "Patient", "name": [{"family": "SENTINEL-family"}], "identifier": [
            {"system": NHS, "value": "SENTINEL-1", "extension": [verification("SENTINEL-99", ENGLAND)]},
            {"system": NHS, "value": "SENTINEL-2"}],
            "extension": [verification("SENTINEL-98", "urn:SENTINEL-system")]}),
        json!({"resourceType": "Location", "extension": [
            typed("SENTINEL-type", json!({"valueDateTime": "SENTINEL-date"})),
            {"url": "https://example.org/SENTINEL", "valueString": "SENTINEL"}]}),
    ]);
    let v = conformance::check_bundle(&b);
    assert!(v.len() >= 6, "{v:#?}");
    for x in &v {
        assert!(
            !x.message.contains("SENTINEL") && !x.path.contains("SENTINEL"),
            "{x:?}"
        );
    }
}

#[test]
fn the_recommended_json_for_a_patient_whose_nhs_number_is_unknown_conforms() {
    // Recommended (REPORT.md): no NHS-number identifier, and the UK Core reason extension.
    let recommended = json!({"resourceType": "Patient", "gender": "unknown", "extension": [{
        "url": UNAVAILABLE,
        "valueCodeableConcept": {"coding": [{
            "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberUnavailableReason",
            "code": "nhs-number-not-known", "display": "NHS number not known"}]}}]});
    assert_eq!(
        conformance::check_bundle(&bundle(vec![recommended])),
        vec![]
    );

    // Fallback that keeps a trace status: the value itself marked absent with
    // data-absent-reason (an element with an extension is present for cardinality).
    let fallback = json!({"resourceType": "Patient", "identifier": [{
        "extension": [verification("03", ENGLAND)], "system": NHS,
        "_value": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}]});
    assert_eq!(conformance::check_bundle(&bundle(vec![fallback])), vec![]);

    // What the mapping emits today fails.
    let today = json!({"resourceType": "Patient", "identifier": [{"extension": [verification("03", ENGLAND)], "system": NHS}]});
    assert_eq!(
        rules(&conformance::check_bundle(&bundle(vec![today]))),
        vec!["UKCore-Patient:Patient.identifier:nhsNumber.value:min"]
    );
    // The reason extension belongs on the Patient, not on the identifier.
    let misplaced = json!({"resourceType": "Patient", "identifier": [{"system": "urn:local", "value": "SENTINEL",
        "extension": [{"url": UNAVAILABLE, "valueCodeableConcept": {"coding": [{
            "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberUnavailableReason", "code": "nhs-number-not-known"}]}}]}]});
    assert_eq!(
        rules(&conformance::check_resource(&misplaced)),
        vec!["Extension-UKCore-NHSNumberUnavailableReason:context"]
    );
}

#[test]
fn typed_date_times_on_an_encounter_or_communication_conform_but_not_on_a_location() {
    let t = typed(
        "time-resource-mobilised",
        json!({"valueDateTime": "2025-03-04T09:03:00Z"}),
    );
    for rt in ["Encounter", "Communication", "Organization"] {
        assert_eq!(
            conformance::check_resource(&json!({"resourceType": rt, "extension": [t.clone()]})),
            vec![],
            "{rt}"
        );
    }
    assert_eq!(
        rules(&conformance::check_resource(
            &json!({"resourceType": "Location", "extension": [t]})
        )),
        vec!["Extension-UKCore-TypedDateTime:context"]
    );
}

#[test]
fn every_differential_constraint_is_checked_or_deliberately_not_checked() {
    let (neither, both) = conformance::coverage_gaps();
    assert!(
        neither.is_empty(),
        "constraints neither checked nor in NOT_CHECKED: {:#?}",
        neither.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    assert!(
        both.is_empty(),
        "checked constraints listed in NOT_CHECKED: {both:#?}"
    );
    assert!(conformance::stale_not_checked_entries().is_empty());
}

/// Every golden bundle conforms to the UK Core profiles: no violation at all.
#[test]
fn every_golden_bundle_conforms_to_uk_core() {
    let dir = common::fixture_dir("fhir");
    let mut bundles = 0;
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        bundles += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let advisories = conformance::advisories(&bundle);
        for v in conformance::check_bundle(&bundle)
            .into_iter()
            .chain(advisories)
        {
            violations.push(format!("{name}: {} {}: {}", v.rule, v.path, v.message));
        }
    }
    assert!(bundles >= 30, "{bundles} golden bundles");
    assert!(violations.is_empty(), "{violations:#?}");
}

/// 10,000 generated calls (five seeds, each call and a later snapshot of it, under the default
/// options) conform to UK Core: no violation, no advisory.
#[test]
fn ten_thousand_generated_calls_conform_to_uk_core() {
    use ads_connector::mapping::{map_call, MappingOptions};
    use ads_devkit::generate::Generator;
    let mut checked = 0;
    for seed in [1, 7, 42, 1234, 99_999] {
        let mut generator = Generator::new(seed);
        for _ in 0..1000 {
            let call = generator.next_call();
            let update = generator.next_update(&call);
            for snapshot in [call, update] {
                let bundle = map_call(&snapshot, &MappingOptions::default())
                    .unwrap()
                    .json;
                let mut found = conformance::check_bundle(&bundle);
                found.extend(conformance::advisories(&bundle));
                assert!(
                    found.is_empty(),
                    "seed {seed}, call {}: {:#?}",
                    checked,
                    found
                        .iter()
                        .map(|v| format!("{} {}", v.rule, v.path))
                        .collect::<Vec<_>>()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10_000);
}
