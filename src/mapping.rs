//! CAD call → ADS FHIR R4 call Bundle.
//!
//! **In:** one decoded [`CadCall`] and the [`MappingOptions`]. **Out:** a [`CallBundle`]: the
//! Bundle as a `serde_json::Value` plus the identity the batcher and acker need. Pure: no I/O,
//! no clock, no randomness.
//!
//! **Shape** (ADS IG, `shared/docs/nhs-api.md` §2; every choice where the IG is not public is in
//! `docs/mapping.md`): one `Communication` (UKCore-ADS-Communication: header and call details,
//! ADS extensions, UK Core typed timestamps), one `Organization` per distinct ODS code (submitter
//! and provider), one `Encounter` + `Patient` per patient contact, one vehicle `Location` per
//! call sign and one receiving `Location` per destination. `type` is `collection` by default, or
//! `message` with a `MessageHeader` first. Entries use `urn:uuid:` full URLs and every reference
//! points at one of them (checked before returning).
//!
//! **Determinism:** every id is a UUIDv5 under [`ID_NAMESPACE`] of
//! `"{provider_ods}|{call_id}|{resource path}"`; the Bundle id uses the path `Bundle`, so every
//! snapshot of a call has the same Bundle id and the receiver can deduplicate. The same input
//! gives byte-identical `serde_json::to_vec(&bundle.json)`.
//!
//! **Scope of this first pass:** the mandatory call items. Triage observations, stop-code reason,
//! treatment type, response times and the clinical resources of a patient contact are modelled
//! in `cad.call.v1` but not yet mapped (see `docs/mapping.md`, "Not mapped yet").
//!
//! **Failures:** [`MappingError`] (invalid input, invalid options, an unresolved reference);
//! messages carry paths and rules, never patient data.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::cad::{format_utc, CadCall, DecodeError, PatientContact, ResponseCategory};

/// Identifier system of the ADS call identifier (ADS3) in `Communication.identifier`.
///
/// The ADS IG does not publish one; this follows the NHS England `https://fhir.nhs.uk/Id/…`
/// naming pattern and must be confirmed with NHS England before go-live.
pub const CALL_ID_SYSTEM: &str = "https://fhir.nhs.uk/Id/ads-call-identifier";
/// Identifier system of a response call sign on its vehicle `Location` (not public; as above).
pub const CALL_SIGN_SYSTEM: &str = "https://fhir.nhs.uk/Id/ads-call-sign";
/// UK Core: NHS number.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// UK Core: ODS organisation code.
pub const ODS_ORGANIZATION_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// UK Core: ODS site code.
pub const ODS_SITE_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-site-code";

/// Canonical URL of the UKCore-ADS-Communication profile (name public, URL assumed).
pub const ADS_COMMUNICATION_PROFILE: &str =
    "https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Communication";
/// ADS-BundleType code system; the code goes in `Bundle.meta.tag`.
pub const ADS_BUNDLE_TYPE_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-BundleType";
/// ADS-CallOrigin extension (URL assumed).
pub const EXT_CALL_ORIGIN: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-CallOrigin";
/// ADS-111Flag extension (URL assumed).
pub const EXT_111_FLAG: &str = "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-111Flag";
/// ADS-AQIIncidentFlag extension (URL assumed).
pub const EXT_AQI_INCIDENT_FLAG: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIIncidentFlag";
/// ADS-ResponseCategory extension (URL assumed).
pub const EXT_RESPONSE_CATEGORY: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-ResponseCategory";
/// UK Core typed date-time extension.
pub const EXT_TYPED_DATE_TIME: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-TypedDateTime";
/// Ambulance-CallOrigin code system.
pub const CALL_ORIGIN_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/Ambulance-CallOrigin";
/// ADS-ResponseCategoryType code system, as the extension's conformance rules spell it.
pub const RESPONSE_CATEGORY_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/CodeSystem/ADS-ResponseCategoryType";
/// ADS-ResponseCategory code system (ValueSet name public, system and codes assumed).
pub const RESPONSE_CATEGORY_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-ResponseCategory";
/// UK Core DateTimeType code system.
pub const DATE_TIME_TYPE_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-DateTimeType";
/// HL7 v2 table 0136 (Yes/No), used for the ADS flag extensions' CodeableConcepts (assumed).
pub const YES_NO_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0136";

/// Namespace of every UUIDv5 this module makes. Never change it: ids would change with it.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0xb541606d_3dbb_49ed_a57d_12617645f7db);

/// `Bundle.type` of a call bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BundleType {
    /// `collection` (the default: no MessageHeader).
    #[default]
    Collection,
    /// `message`, with a MessageHeader as the first entry.
    Message,
}

impl BundleType {
    /// The FHIR code.
    pub fn as_str(&self) -> &'static str {
        match self {
            BundleType::Collection => "collection",
            BundleType::Message => "message",
        }
    }
}

/// Payload choices that NHS England has not published (see `docs/mapping.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingOptions {
    /// `Bundle.type`.
    pub bundle_type: BundleType,
    /// ADS-BundleType code in `Bundle.meta.tag`: `mvp`, `bundle-1`, `bundle-2` or `epr`.
    pub ads_bundle_type_code: String,
    /// `MessageHeader.eventCoding.system` (message bundles only).
    pub message_event_system: String,
    /// `MessageHeader.eventCoding.code` (message bundles only).
    pub message_event_code: String,
    /// `MessageHeader.source.endpoint` (message bundles only).
    pub message_source_endpoint: String,
}

impl Default for MappingOptions {
    fn default() -> Self {
        MappingOptions {
            bundle_type: BundleType::Collection,
            ads_bundle_type_code: "mvp".to_string(),
            message_event_system: "https://fhir.nhs.uk/CodeSystem/message-event".to_string(),
            message_event_code: "ambulance-data-submission".to_string(),
            message_source_endpoint: "urn:nhs:ads-connector".to_string(),
        }
    }
}

/// The ADS-BundleType codes and displays.
const ADS_BUNDLE_TYPES: [(&str, &str); 4] = [
    ("mvp", "ADS FHIR Bundle - MVP items"),
    ("bundle-1", "ADS FHIR Bundle - Stage 2 Bundle 1 items"),
    ("bundle-2", "ADS FHIR Bundle - Stage 2 Bundle 2 items"),
    ("epr", "ADS FHIR Bundle - EPR items"),
];

/// One call's Bundle and its identity. `Debug` omits the JSON (it holds patient data).
#[derive(Clone, PartialEq)]
pub struct CallBundle {
    /// `"{provider_ods}/{call_id}"`, as [`CadCall::call_key`].
    pub call_key: String,
    /// `Bundle.id`; the same for every snapshot of the call.
    pub bundle_id: Uuid,
    /// The snapshot this Bundle was made from (`Bundle.timestamp`).
    pub snapshot_at: DateTime<Utc>,
    /// The Bundle.
    pub json: Value,
}

impl fmt::Debug for CallBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBundle")
            .field("call_key", &self.call_key)
            .field("bundle_id", &self.bundle_id)
            .field("snapshot_at", &self.snapshot_at)
            .finish_non_exhaustive()
    }
}

/// Why a call could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The call breaks the `cad.call.v1` rules (only for calls not made by [`crate::cad::decode`]).
    #[error("input is not a valid cad.call.v1 call: {0}")]
    InvalidInput(#[from] DecodeError),
    /// A [`MappingOptions`] value is not acceptable.
    #[error("mapping option `{option}` {rule}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong.
        rule: String,
    },
    /// A reference in the Bundle does not match any entry's fullUrl (a mapping bug).
    #[error("{path}: reference does not resolve to a bundle entry")]
    UnresolvedReference {
        /// JSON path of the reference inside the Bundle.
        path: String,
    },
}

/// The closed set of mapping failure kinds: a metric label and the `ads-error-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingErrorKind {
    /// `invalid_input`
    InvalidInput,
    /// `invalid_option`
    InvalidOption,
    /// `unresolved_reference`
    UnresolvedReference,
}

impl MappingErrorKind {
    /// Every kind (for pre-registering metric label values).
    pub const ALL: [MappingErrorKind; 3] = [
        MappingErrorKind::InvalidInput,
        MappingErrorKind::InvalidOption,
        MappingErrorKind::UnresolvedReference,
    ];

    /// The snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            MappingErrorKind::InvalidInput => "invalid_input",
            MappingErrorKind::InvalidOption => "invalid_option",
            MappingErrorKind::UnresolvedReference => "unresolved_reference",
        }
    }
}

impl fmt::Display for MappingErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MappingError {
    /// The bounded kind of this error.
    pub fn kind(&self) -> MappingErrorKind {
        match self {
            MappingError::InvalidInput(_) => MappingErrorKind::InvalidInput,
            MappingError::InvalidOption { .. } => MappingErrorKind::InvalidOption,
            MappingError::UnresolvedReference { .. } => MappingErrorKind::UnresolvedReference,
        }
    }
}

/// The UUIDv5 of one resource of a call (`path` such as `Communication` or `Patient/1`).
pub fn resource_id(provider_ods: &str, call_id: &str, path: &str) -> Uuid {
    // `|` cannot occur in ODS codes, call ids, contact ids or call signs (cad.call.v1 rules),
    // so distinct (provider, call, path) triples never give the same name.
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("{provider_ods}|{call_id}|{path}").as_bytes(),
    )
}

/// The Bundle id shared by every snapshot of a call.
pub fn bundle_id(provider_ods: &str, call_id: &str) -> Uuid {
    resource_id(provider_ods, call_id, "Bundle")
}

/// Maps one call to its ADS call Bundle.
pub fn map_call(call: &CadCall, opts: &MappingOptions) -> Result<CallBundle, MappingError> {
    call.validate()?;
    let bundle_type_display = check_options(opts)?;
    let ids = Ids { call };

    let mut entries: Vec<Value> = Vec::new();
    let communication = ids.url("Communication");
    let submitter = ids.url(&format!("Organization/{}", call.submitter_ods));
    let provider = ids.url(&format!("Organization/{}", call.provider_ods));

    if opts.bundle_type == BundleType::Message {
        entries.push(entry(
            &ids.url("MessageHeader"),
            json!({
                "resourceType": "MessageHeader",
                "id": ids.id("MessageHeader"),
                "eventCoding": {
                    "system": opts.message_event_system,
                    "code": opts.message_event_code,
                },
                "source": { "endpoint": opts.message_source_endpoint },
                "sender": { "reference": submitter },
                "focus": [ { "reference": communication } ],
            }),
        ));
    }

    let encounters: Vec<String> = call
        .patients
        .iter()
        .map(|p| ids.url(&format!("Encounter/{}", p.contact_id)))
        .collect();
    entries.push(entry(
        &communication,
        communication_resource(call, &ids, &submitter, &provider, &encounters),
    ));

    for ods in ods_codes(call) {
        let path = format!("Organization/{ods}");
        entries.push(entry(
            &ids.url(&path),
            json!({
                "resourceType": "Organization",
                "id": ids.id(&path),
                "identifier": [ { "system": ODS_ORGANIZATION_SYSTEM, "value": ods } ],
            }),
        ));
    }

    for p in &call.patients {
        entries.push(entry(
            &ids.url(&format!("Encounter/{}", p.contact_id)),
            encounter_resource(call, p, &ids, &provider),
        ));
        entries.push(entry(
            &ids.url(&format!("Patient/{}", p.contact_id)),
            patient_resource(p, &ids),
        ));
    }

    for r in &call.responses {
        let path = format!("Location/vehicle/{}", r.call_sign);
        entries.push(entry(
            &ids.url(&path),
            json!({
                "resourceType": "Location",
                "id": ids.id(&path),
                "identifier": [ { "system": CALL_SIGN_SYSTEM, "value": r.call_sign } ],
                "name": r.call_sign,
                "mode": "instance",
                "type": [ coding_concept(
                    "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "AMB", "Ambulance") ],
                "physicalType": coding_concept(
                    "http://terminology.hl7.org/CodeSystem/location-physical-type", "ve",
                    "Vehicle"),
                "managingOrganization": { "reference": provider },
            }),
        ));
    }

    for (ods_site, name) in receiving_locations(call) {
        let path = format!("Location/receiving/{ods_site}");
        let mut location = json!({
            "resourceType": "Location",
            "id": ids.id(&path),
            "identifier": [ { "system": ODS_SITE_SYSTEM, "value": ods_site } ],
            "mode": "instance",
        });
        if let Some(name) = name {
            location["name"] = json!(name);
        }
        entries.push(entry(&ids.url(&path), location));
    }

    let bundle_id = bundle_id(&call.provider_ods, &call.call_id);
    let mut tag = json!({ "system": ADS_BUNDLE_TYPE_SYSTEM, "code": opts.ads_bundle_type_code });
    tag["display"] = json!(bundle_type_display);
    let bundle = json!({
        "resourceType": "Bundle",
        "id": bundle_id.to_string(),
        "meta": { "tag": [ tag ] },
        "type": opts.bundle_type.as_str(),
        "timestamp": format_utc(&call.snapshot_at),
        "entry": entries,
    });
    check_references(&bundle)?;
    Ok(CallBundle {
        call_key: call.call_key(),
        bundle_id,
        snapshot_at: call.snapshot_at,
        json: bundle,
    })
}

/// Validates the options; returns the display of the ADS bundle type code.
fn check_options(opts: &MappingOptions) -> Result<&'static str, MappingError> {
    let display = ADS_BUNDLE_TYPES
        .iter()
        .find(|(code, _)| *code == opts.ads_bundle_type_code)
        .map(|(_, display)| *display)
        .ok_or(MappingError::InvalidOption {
            option: "ads_bundle_type_code",
            rule: "must be one of `mvp`, `bundle-1`, `bundle-2`, `epr`".into(),
        })?;
    if opts.bundle_type == BundleType::Message {
        for (option, value) in [
            ("message_event_system", &opts.message_event_system),
            ("message_event_code", &opts.message_event_code),
            ("message_source_endpoint", &opts.message_source_endpoint),
        ] {
            if value.trim().is_empty() {
                return Err(MappingError::InvalidOption {
                    option,
                    rule: "must not be empty when bundle_type is `message`".into(),
                });
            }
        }
    }
    Ok(display)
}

/// Resource ids and `urn:uuid:` URLs of one call.
struct Ids<'a> {
    call: &'a CadCall,
}

impl Ids<'_> {
    fn uuid(&self, path: &str) -> Uuid {
        resource_id(&self.call.provider_ods, &self.call.call_id, path)
    }

    fn id(&self, path: &str) -> String {
        self.uuid(path).to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("urn:uuid:{}", self.uuid(path))
    }
}

fn entry(full_url: &str, resource: Value) -> Value {
    json!({ "fullUrl": full_url, "resource": resource })
}

fn coding_concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [ { "system": system, "code": code, "display": display } ] })
}

fn yes_no(flag: bool) -> Value {
    if flag {
        coding_concept(YES_NO_SYSTEM, "Y", "Yes")
    } else {
        coding_concept(YES_NO_SYSTEM, "N", "No")
    }
}

/// The typed timestamp extension for one UK Core DateTimeType code.
fn typed_date_time(code: &str, display: &str, at: &DateTime<Utc>) -> Value {
    json!({
        "url": EXT_TYPED_DATE_TIME,
        "extension": [
            {
                "url": "dateTimeType",
                "valueCodeableConcept": coding_concept(DATE_TIME_TYPE_SYSTEM, code, display),
            },
            { "url": "dateTime", "valueDateTime": format_utc(at) },
        ],
    })
}

fn response_category(kind: &str, kind_display: &str, category: ResponseCategory) -> Value {
    let number = category.number();
    json!({
        "url": EXT_RESPONSE_CATEGORY,
        "extension": [
            {
                "url": "responseCategoryType",
                "valueCodeableConcept":
                    coding_concept(RESPONSE_CATEGORY_TYPE_SYSTEM, kind, kind_display),
            },
            {
                "url": "responseCategoryCode",
                "valueCodeableConcept": coding_concept(
                    RESPONSE_CATEGORY_SYSTEM, &number.to_string(), &format!("Category {number}")),
            },
        ],
    })
}

fn communication_resource(
    call: &CadCall,
    ids: &Ids<'_>,
    submitter: &str,
    provider: &str,
    encounters: &[String],
) -> Value {
    let mut extensions = vec![json!({
        "url": EXT_CALL_ORIGIN,
        "valueCodeableConcept": coding_concept(
            CALL_ORIGIN_SYSTEM, call.call_origin.code(), call.call_origin.display()),
    })];
    if let Some(flag) = call.nhs111_flag {
        extensions.push(json!({ "url": EXT_111_FLAG, "valueCodeableConcept": yes_no(flag) }));
    }
    if let Some(flag) = call.aqi_flag {
        extensions
            .push(json!({ "url": EXT_AQI_INCIDENT_FLAG, "valueCodeableConcept": yes_no(flag) }));
    }
    if let Some(c) = call.initial_response_category {
        extensions.push(response_category("initial", "Initial Response Category", c));
    }
    if let Some(c) = call.reporting_response_category {
        extensions.push(response_category(
            "reporting",
            "Reporting Response Category",
            c,
        ));
    }
    let t = &call.times;
    let typed = [
        (
            "time-call-answered",
            "Time Call Answered",
            Some(t.call_answered),
        ),
        ("time-call-ended", "Time Call Ended", t.call_ended),
        (
            "time-dispatch-code-established",
            "Time Dispatch Code Established",
            t.dispatch_code_established,
        ),
        (
            "clock-start-date-time",
            "Clock Start Date Time",
            t.clock_start,
        ),
        ("clock-stop-date-time", "Clock Stop Date Time", t.clock_stop),
    ];
    for (code, display, at) in typed {
        if let Some(at) = at {
            extensions.push(typed_date_time(code, display, &at));
        }
    }

    let status = if call.stop_code.is_some() {
        "stopped"
    } else if t.call_ended.is_some() {
        "completed"
    } else {
        "in-progress"
    };
    let mut communication = json!({
        "resourceType": "Communication",
        "id": ids.id("Communication"),
        "meta": { "profile": [ ADS_COMMUNICATION_PROFILE ] },
        "extension": extensions,
        "identifier": [ {
            "system": CALL_ID_SYSTEM,
            "value": call.call_id,
            "period": { "start": call.call_date.format("%Y-%m-%d").to_string() },
            "assigner": { "reference": provider },
        } ],
        "status": status,
        "sent": format_utc(&t.call_answered),
        "sender": { "reference": submitter },
        "recipient": [ { "reference": provider } ],
    });
    if !encounters.is_empty() {
        communication["about"] = encounters
            .iter()
            .map(|url| json!({ "reference": url }))
            .collect();
    }
    communication
}

fn encounter_resource(call: &CadCall, p: &PatientContact, ids: &Ids<'_>, provider: &str) -> Value {
    let attending: Vec<_> = call
        .responses
        .iter()
        .filter(|r| p.call_signs.contains(&r.call_sign))
        .collect();
    let finished = !attending.is_empty()
        && attending
            .iter()
            .all(|r| r.times.clear.is_some() || r.times.stood_down.is_some());
    let on_scene = attending.iter().any(|r| r.times.arrived_on_scene.is_some());
    let status = if finished {
        "finished"
    } else if on_scene {
        "in-progress"
    } else {
        "planned"
    };
    let mut encounter = json!({
        "resourceType": "Encounter",
        "id": ids.id(&format!("Encounter/{}", p.contact_id)),
        "status": status,
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "FLD",
            "display": "field",
        },
        "subject": { "reference": ids.url(&format!("Patient/{}", p.contact_id)) },
        "serviceProvider": { "reference": provider },
    });
    let mut period = Map::new();
    if let Some(start) = attending
        .iter()
        .filter_map(|r| r.times.arrived_on_scene)
        .min()
    {
        period.insert("start".into(), json!(format_utc(&start)));
    }
    if finished {
        if let Some(end) = attending
            .iter()
            .filter_map(|r| r.times.clear.or(r.times.stood_down))
            .max()
        {
            period.insert("end".into(), json!(format_utc(&end)));
        }
    }
    if !period.is_empty() {
        encounter["period"] = Value::Object(period);
    }
    if !p.call_signs.is_empty() {
        encounter["location"] = p
            .call_signs
            .iter()
            .map(|cs| {
                json!({ "location": { "reference": ids.url(&format!("Location/vehicle/{cs}")) } })
            })
            .collect();
    }
    if let Some(dest) = p.conveyance.as_ref().and_then(|c| c.destination.as_ref()) {
        encounter["hospitalization"] = json!({
            "destination": {
                "reference": ids.url(&format!("Location/receiving/{}", dest.ods_site)),
            },
        });
    }
    encounter
}

fn patient_resource(p: &PatientContact, ids: &Ids<'_>) -> Value {
    let d = &p.demographics;
    let mut patient = json!({
        "resourceType": "Patient",
        "id": ids.id(&format!("Patient/{}", p.contact_id)),
    });
    if let Some(n) = &d.nhs_number {
        patient["identifier"] = json!([ { "system": NHS_NUMBER_SYSTEM, "value": n } ]);
    }
    if d.given_name.is_some() || d.family_name.is_some() {
        let mut name = Map::new();
        if let Some(family) = &d.family_name {
            name.insert("family".into(), json!(family));
        }
        if let Some(given) = &d.given_name {
            name.insert("given".into(), json!([given]));
        }
        patient["name"] = json!([Value::Object(name)]);
    }
    if let Some(g) = d.gender {
        patient["gender"] = json!(g.code());
    }
    if let Some(born) = d.birth_date {
        patient["birthDate"] = json!(born.format("%Y-%m-%d").to_string());
    }
    if let Some(pc) = &d.postcode {
        patient["address"] = json!([ { "postalCode": pc } ]);
    }
    patient
}

/// Submitter first, then provider when different (the IG: one Organization if they are equal).
fn ods_codes(call: &CadCall) -> Vec<&str> {
    let mut codes = vec![call.submitter_ods.as_str()];
    if call.provider_ods != call.submitter_ods {
        codes.push(call.provider_ods.as_str());
    }
    codes
}

/// Distinct destinations in order of first appearance, with the first name given for each.
fn receiving_locations(call: &CadCall) -> Vec<(&str, Option<&str>)> {
    let mut seen = BTreeSet::new();
    call.patients
        .iter()
        .filter_map(|p| p.conveyance.as_ref()?.destination.as_ref())
        .filter(|d| seen.insert(d.ods_site.as_str()))
        .map(|d| {
            let name = call
                .patients
                .iter()
                .filter_map(|p| p.conveyance.as_ref()?.destination.as_ref())
                .filter(|other| other.ods_site == d.ods_site)
                .find_map(|other| other.name.as_deref());
            (d.ods_site.as_str(), name)
        })
        .collect()
}

/// Every `reference` string in the Bundle, with its JSON path.
pub fn references(bundle: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: &mut String, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    match (k.as_str(), child) {
                        ("reference", Value::String(s)) => out.push((path.clone(), s.clone())),
                        _ => walk(child, path, out),
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(child, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(bundle, &mut String::from("$"), &mut out);
    out
}

fn check_references(bundle: &Value) -> Result<(), MappingError> {
    let full_urls: BTreeSet<&str> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    match references(bundle)
        .into_iter()
        .find(|(_, reference)| !full_urls.contains(reference.as_str()))
    {
        Some((path, _)) => Err(MappingError::UnresolvedReference { path }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Generator;

    fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == kind)
            .collect()
    }

    fn call_with_patients(seed: u64) -> CadCall {
        let mut generator = Generator::new(seed);
        loop {
            let call = generator.next_call();
            if call.patients.len() == 2 {
                return call;
            }
        }
    }

    #[test]
    fn maps_a_call_to_one_communication_and_an_encounter_and_patient_per_contact() {
        let call = call_with_patients(4);
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(bundle["type"], "collection");
        assert_eq!(resources(&bundle, "Communication").len(), 1);
        assert_eq!(resources(&bundle, "Encounter").len(), 2);
        assert_eq!(resources(&bundle, "Patient").len(), 2);
        assert_eq!(
            resources(&bundle, "Location").len(),
            call.responses.len() + receiving_locations(&call).len()
        );
        let communication = resources(&bundle, "Communication")[0];
        assert_eq!(communication["identifier"][0]["system"], CALL_ID_SYSTEM);
        assert_eq!(
            communication["identifier"][0]["value"],
            call.call_id.as_str()
        );
        assert_eq!(communication["about"].as_array().unwrap().len(), 2);
        assert_eq!(bundle["meta"]["tag"][0]["code"], "mvp");
    }

    #[test]
    fn uses_one_organization_when_provider_submits_for_itself() {
        let mut call = call_with_patients(4);
        call.submitter_ods = call.provider_ods.clone();
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(resources(&bundle, "Organization").len(), 1);
        call.submitter_ods = "X26".into();
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(resources(&bundle, "Organization").len(), 2);
    }

    #[test]
    fn message_bundles_start_with_a_message_header_focused_on_the_communication() {
        let call = call_with_patients(6);
        let opts = MappingOptions {
            bundle_type: BundleType::Message,
            ..MappingOptions::default()
        };
        let bundle = map_call(&call, &opts).unwrap().json;
        assert_eq!(bundle["type"], "message");
        let first = &bundle["entry"][0];
        assert_eq!(first["resource"]["resourceType"], "MessageHeader");
        assert_eq!(
            first["resource"]["focus"][0]["reference"],
            bundle["entry"][1]["fullUrl"]
        );
    }

    #[test]
    fn rejects_an_unknown_ads_bundle_type_code() {
        let opts = MappingOptions {
            ads_bundle_type_code: "stage-3".into(),
            ..MappingOptions::default()
        };
        let err = map_call(&call_with_patients(4), &opts).unwrap_err();
        assert_eq!(err.kind(), MappingErrorKind::InvalidOption);
    }

    #[test]
    fn rejects_an_invalid_call_built_in_code_without_patient_data_in_the_error() {
        let mut call = call_with_patients(4);
        call.patients[0].demographics.nhs_number = Some("9434765918".into());
        let err = map_call(&call, &MappingOptions::default()).unwrap_err();
        assert_eq!(err.kind(), MappingErrorKind::InvalidInput);
        assert!(!err.to_string().contains("9434765918"));
    }

    #[test]
    fn finds_references_that_do_not_resolve() {
        let bundle = json!({"entry": [{"fullUrl": "urn:uuid:a", "resource": {
            "subject": {"reference": "urn:uuid:b"}}}]});
        let err = check_references(&bundle).unwrap_err();
        assert_eq!(
            err,
            MappingError::UnresolvedReference {
                path: "$.entry[0].resource.subject.reference".into()
            }
        );
    }

    #[test]
    fn ids_depend_on_provider_call_and_path_only() {
        let a = resource_id("RX8", "250301-000001", "Patient/1");
        assert_eq!(a, resource_id("RX8", "250301-000001", "Patient/1"));
        assert_ne!(a, resource_id("RX9", "250301-000001", "Patient/1"));
        assert_ne!(a, resource_id("RX8", "250301-000002", "Patient/1"));
        assert_ne!(a, resource_id("RX8", "250301-000001", "Patient/2"));
        assert_eq!(a.get_version_num(), 5);
    }
}
