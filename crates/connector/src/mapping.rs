//! CAD call → ADS FHIR R4 call Bundle.
//!
//! **In:** one decoded [`CadCall`] and the [`MappingOptions`]. **Out:** an [`EncodedBundle`]
//! (the per-record path, [`encode_validated`]): the Bundle as the compact JSON bytes of the
//! request body, the identity the batcher and acker need, and the local validation warnings; or
//! a [`CallBundle`] ([`map_call`], [`map_validated`]: tools and tests), the same with the Bundle
//! also as a `serde_json::Value`, read back from those bytes. Pure: no I/O, no clock, no
//! randomness.
//!
//! **One tree, one write:** the entries build one `Node` tree (`mapping/node.rs`: static keys,
//! strings borrowed from the call, ids inline, times as values, no `serde_json::Value`); local
//! validation reads that tree (times as values, never parsed back; references checked by the
//! write's own walk) and it is written once, keys in the order `serde_json::Value` keeps them,
//! so the bytes are those `serde_json::to_vec` of the equivalent `Value` gives (debug builds
//! assert it on every [`map_validated`], so every test that maps a call checks it).
//!
//! **Shape** (ADS IG, `shared/docs/nhs-api.md` §2; every choice where the IG is not public is in
//! `docs/mapping.md`), in Bundle order:
//!
//! | module | entries |
//! |---|---|
//! | `call` | `MessageHeader` (message bundles only), one `Communication` (UKCore-ADS-Communication: header and call items, ADS extensions, typed timestamps), triage `Observation`s, one `Organization` per distinct ODS code |
//! | `contact`, `clinical` | per patient contact: `Encounter`, `Patient`, then its `Observation`s, `Condition`s, `Procedure`s, `MedicationAdministration`s, safeguarding `Flag`s and public-health `Observation`s |
//! | `response` | one vehicle `Location` per call sign (kind and response times), one receiving `Location` per destination |
//!
//! `type` is `collection` by default, or `message` with a `MessageHeader` first. Entries use
//! `urn:uuid:` full URLs and every reference points at one of them.
//!
//! **Determinism:** every id is a UUIDv5 under [`ID_NAMESPACE`] of
//! `"{provider_ods}|{call_id}|{resource path}"`; the Bundle id uses the path `Bundle`, so every
//! snapshot of a call has the same Bundle id and the receiver can deduplicate. The same input
//! gives byte-identical [`EncodedBundle::bytes`].
//!
//! **Validation:** [`map_call`] re-runs the `cad.call.v1` rules, then checks the Bundle it built
//! with [`check::bundle`] (ADS mandatory items, NHS number, ODS codes, code systems, timestamp
//! order, references). Errors fail the call ([`MappingError::InvalidBundle`]), warnings travel
//! with the [`CallBundle`].
//!
//! **Failures:** [`MappingError`], with a machine-readable [`MappingError::problems`] list;
//! messages carry paths and rules, never patient data.
//!
//! Layout: this file holds [`map_call`], the Bundle's ids and its reference checks, and
//! [`CallBundle`]; `mapping/node.rs` the tree and its writer; `mapping/options.rs` the
//! [`MappingOptions`]; `mapping/error.rs`
//! [`MappingError`] and its [`MappingErrorKind`]; `mapping/check.rs` local validation;
//! `mapping/codes.rs` the systems and codes; the other files the entries, as above.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::cad::{CadCall, Text};
use node::{key, node, FrozenSet, Json, Node};

mod call;
pub mod check;
mod clinical;
pub mod codes;
mod contact;
mod ctx;
mod error;
pub(crate) mod node;
mod options;
mod response;

pub use crate::cad::Problem;
pub use codes::*;
pub use error::{MappingError, MappingErrorKind};
pub use options::{BundleType, CodeSystemStyle, MappingOptions};

/// Namespace of every UUIDv5 this module makes. Never change it: ids would change with it.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0xb541606d_3dbb_49ed_a57d_12617645f7db);

/// One call's Bundle and its identity. `Debug` omits the JSON (it holds patient data).
#[derive(Clone, PartialEq)]
pub struct CallBundle {
    /// `"{provider_ods}/{call_id}"`, as [`CadCall::call_key`].
    pub call_key: Text,
    /// `Bundle.id`; the same for every snapshot of the call.
    pub bundle_id: Uuid,
    /// The snapshot this Bundle was made from (`Bundle.timestamp`).
    pub snapshot_at: DateTime<Utc>,
    /// The Bundle, read back from [`CallBundle::bytes`].
    pub json: Value,
    /// The Bundle as compact JSON, as it is submitted.
    pub bytes: Vec<u8>,
    /// Local validation warnings: the Bundle is submitted, but something is worth a look
    /// (typically an ADS mandatory item a later snapshot will fill in).
    pub warnings: Vec<Problem>,
    /// The ADS mandatory items a **closed** call still lacks ([`missing_at_close`]): submitted
    /// anyway (a later snapshot may complete it), and named in the call's ack.
    pub missing_at_close: Vec<AdsItem>,
}

/// An ADS item the guide makes mandatory that a call may not know yet when it is first sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdsItem {
    /// ADS15 initial response category.
    Ads15InitialResponseCategory,
    /// ADS20 reporting response category.
    Ads20ReportingResponseCategory,
    /// ADS21 time dispatch code established.
    Ads21TimeDispatchCodeEstablished,
    /// ADS33 treatment type.
    Ads33TreatmentType,
}

impl AdsItem {
    /// Every value.
    pub const ALL: [Self; 4] = [
        Self::Ads15InitialResponseCategory,
        Self::Ads20ReportingResponseCategory,
        Self::Ads21TimeDispatchCodeEstablished,
        Self::Ads33TreatmentType,
    ];

    /// The ADS item number: the metric label and what the ack names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ads15InitialResponseCategory => "ADS15",
            Self::Ads20ReportingResponseCategory => "ADS20",
            Self::Ads21TimeDispatchCodeEstablished => "ADS21",
            Self::Ads33TreatmentType => "ADS33",
        }
    }
}

/// The ADS mandatory items a closed call lacks (none for a call still open: a later snapshot
/// may bring them). A call is closed when its call-ended time is known and either every
/// response is clear or stood down, or no vehicle was sent and it has its stop code.
pub fn missing_at_close(call: &CadCall) -> Vec<AdsItem> {
    if !contact::call_closed(call) {
        return Vec::new();
    }
    [
        (
            AdsItem::Ads15InitialResponseCategory,
            call.initial_response_category.is_some(),
        ),
        (
            AdsItem::Ads20ReportingResponseCategory,
            call.reporting_response_category.is_some(),
        ),
        (
            AdsItem::Ads21TimeDispatchCodeEstablished,
            call.times.dispatch_code_established.is_some(),
        ),
        (AdsItem::Ads33TreatmentType, call.treatment_type.is_some()),
    ]
    .into_iter()
    .filter(|(_, known)| !known)
    .map(|(item, _)| item)
    .collect()
}

impl fmt::Debug for CallBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBundle")
            .field("call_key", &self.call_key)
            .field("bundle_id", &self.bundle_id)
            .field("snapshot_at", &self.snapshot_at)
            .field("warnings", &self.warnings.len())
            .finish_non_exhaustive()
    }
}

/// The UUIDv5 of one resource of a call (`path` such as `Communication` or `Patient/1`).
pub fn resource_id(provider_ods: &str, call_id: &str, path: &str) -> Uuid {
    // `|` cannot occur in ODS codes, call ids, contact ids or call signs (cad.call.v1 rules),
    // so distinct (provider, call, path) triples never give the same name.
    resource_id_of(provider_ods, call_id, &[path])
}

/// [`resource_id`] of the path that is `path_parts` joined (`["Patient/", contact_id]`), as
/// `Uuid::new_v5(&ID_NAMESPACE, name)` of the whole name, hashed by the `sha1` crate: it uses
/// the CPU's SHA instructions where there are some (a Bundle has about 60 ids and references).
pub(crate) fn resource_id_of(provider_ods: &str, call_id: &str, path_parts: &[&str]) -> Uuid {
    use sha1::Digest as _;
    let mut hasher = sha1::Sha1::new();
    hasher.update(ID_NAMESPACE.as_bytes());
    for part in [provider_ods, "|", call_id, "|"].iter().chain(path_parts) {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // RFC 9562 §5.5: the first 128 bits of the SHA-1, version 5, variant 10.
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The Bundle id shared by every snapshot of a call.
pub fn bundle_id(provider_ods: &str, call_id: &str) -> Uuid {
    resource_id(provider_ods, call_id, "Bundle")
}

/// One call's Bundle as the request body carries it, and its identity; what the per-record
/// path needs of a [`CallBundle`]. `Debug` omits the bytes (they hold patient data).
#[derive(Clone, PartialEq)]
pub struct EncodedBundle {
    /// `"{provider_ods}/{call_id}"`, as [`CadCall::call_key`].
    pub call_key: Text,
    /// `Bundle.id`; the same for every snapshot of the call.
    pub bundle_id: Uuid,
    /// The snapshot this Bundle was made from (`Bundle.timestamp`).
    pub snapshot_at: DateTime<Utc>,
    /// The Bundle as compact JSON (keys sorted, as `serde_json::to_vec` of a `Value`).
    pub bytes: Vec<u8>,
    /// Local validation warnings, as [`CallBundle::warnings`].
    pub warnings: Vec<Problem>,
    /// As [`CallBundle::missing_at_close`].
    pub missing_at_close: Vec<AdsItem>,
}

impl fmt::Debug for EncodedBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedBundle")
            .field("call_key", &self.call_key)
            .field("bundle_id", &self.bundle_id)
            .field("snapshot_at", &self.snapshot_at)
            .field("bytes", &self.bytes.len())
            .field("warnings", &self.warnings.len())
            .finish_non_exhaustive()
    }
}

/// Maps one call to its ADS call Bundle and validates the result.
pub fn map_call(call: &CadCall, opts: &MappingOptions) -> Result<CallBundle, MappingError> {
    call.validate()?;
    map_validated(call, opts)
}

/// [`map_call`] for a call the contract rules already accepted ([`crate::cad::decode`] runs
/// them): [`encode_validated`], and the Bundle read back as a `serde_json::Value`.
pub fn map_validated(call: &CadCall, opts: &MappingOptions) -> Result<CallBundle, MappingError> {
    let encoded = encode_validated(call, opts)?;
    let json: Value =
        serde_json::from_slice(&encoded.bytes).expect("the mapping writes valid JSON");
    debug_assert!(
        serde_json::to_vec(&json).is_ok_and(|again| again == encoded.bytes),
        "the Bundle's bytes are those serde_json writes for its Value"
    );
    Ok(CallBundle {
        call_key: encoded.call_key,
        bundle_id: encoded.bundle_id,
        snapshot_at: encoded.snapshot_at,
        json,
        bytes: encoded.bytes,
        warnings: encoded.warnings,
        missing_at_close: encoded.missing_at_close,
    })
}

/// The per-record path: maps a call the contract rules already accepted, validates the Bundle
/// and writes it once, as the request body carries it.
pub fn encode_validated(
    call: &CadCall,
    opts: &MappingOptions,
) -> Result<EncodedBundle, MappingError> {
    let bundle_type_display = check_options(opts)?;
    let cx = ctx::Ctx::new(call, opts);

    // Room for the usual Bundle: a few call-level entries, and a dozen or so per patient.
    let mut entries: Vec<Node<'_>> = Vec::with_capacity(16 + 12 * call.patients.len());
    entries.extend(call::message_header(&cx));
    let vehicles = response::vehicle_encounter_plan(&cx);
    entries.push(call::communication(&cx, &vehicles));
    entries.extend(call::triage_observations(&cx));
    entries.extend(call::organizations(&cx));
    for p in &call.patients {
        entries.push(contact::encounter(&cx, p));
        entries.push(contact::patient(&cx, p));
        entries.extend(clinical::entries(&cx, p));
    }
    entries.extend(response::vehicle_encounters(&cx, &vehicles));
    entries.extend(response::vehicle_locations(&cx));
    entries.extend(response::receiving_locations(&cx));
    declare_profiles(&mut entries);
    let entry_count = entries.len();

    let bundle_id = bundle_id(&call.provider_ods, &call.call_id);
    let bundle = node!({
        "resourceType": "Bundle",
        "id": node::Uid::id(bundle_id),
        "meta": {
            "tag": [ {
                "system": cx.system(ADS_BUNDLE_TYPE_SYSTEM),
                "code": &opts.ads_bundle_type_code,
                "display": bundle_type_display,
            } ],
            "profile": [ profile_of("Bundle").expect("the Bundle has a profile") ],
        },
        "type": opts.bundle_type.as_str(),
        "timestamp": call.snapshot_at,
        "entry": entries,
    });
    // About 1.3 kB per entry in generated calls; one growth at most for most Bundles. The
    // write checks the references and the codings on its way (references always resolve and
    // codings are clean unless the mapping has a bug or a call carries a code the checks
    // refuse; the detailed walks, which name paths, run only then), before the other checks, and
    // nothing written is kept unless all of them pass.
    let (bytes, walked) = bundle.to_bytes_walked(1024 + entry_count * 1280, &entry_uids(&bundle));
    if !walked.references_resolve {
        check_references(&bundle)?;
    }
    let report = check::bundle_walked(&bundle, walked);
    if !report.errors.is_empty() {
        return Err(MappingError::InvalidBundle {
            problems: report.errors,
        });
    }
    Ok(EncodedBundle {
        call_key: call.call_key(),
        bundle_id,
        snapshot_at: call.snapshot_at,
        bytes,
        warnings: report.warnings,
        missing_at_close: missing_at_close(call),
    })
}

/// Puts each resource's profile ([`profile_of`]) in its `meta.profile`; a `meta` of only the
/// profile is frozen, one per resource type.
fn declare_profiles(entries: &mut [Node<'_>]) {
    static META: FrozenSet<{ PROFILES.len() }> = FrozenSet::new();
    for entry in entries {
        let Some(resource) = entry.get_mut("resource") else {
            continue;
        };
        let Some(at) = resource["resourceType"].as_str().and_then(profile_index) else {
            continue;
        };
        let profile = PROFILES[at].1;
        match resource.get_mut("meta") {
            Some(meta) => meta.set(key!("profile"), node!([profile])),
            None => resource.set(
                key!("meta"),
                META.get(at, || node!({ "profile": [profile] })),
            ),
        }
    }
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

/// Every `reference` string in the Bundle, with its JSON path.
pub fn references(bundle: &Value) -> Vec<(String, String)> {
    references_in(bundle)
}

/// [`references`] of any [`Json`].
pub(crate) fn references_in<J: Json>(bundle: &J) -> Vec<(String, String)> {
    fn walk<J: Json>(v: &J, path: &mut String, out: &mut Vec<(String, String)>) {
        if let Some(items) = v.as_array() {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, out);
                path.truncate(len);
            }
            return;
        }
        for (k, child) in v.members() {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            match (k, child.as_str()) {
                ("reference", Some(s)) => out.push((path.clone(), s.to_string())),
                _ => walk(child, path, out),
            }
            path.truncate(len);
        }
    }
    let mut out = Vec::new();
    walk(bundle, &mut String::from("$"), &mut out);
    out
}

/// True when every `reference` string in `v` is in `full_urls`. A fast walk that builds no
/// paths; [`references`] gives the paths when something is wrong.
pub(crate) fn all_references_resolve<J: Json>(v: &J, full_urls: &BTreeSet<&str>) -> bool {
    if let Some(items) = v.as_array() {
        return items.iter().all(|c| all_references_resolve(c, full_urls));
    }
    v.members().all(|(k, child)| match (k, child.as_str()) {
        ("reference", Some(s)) => full_urls.contains(s),
        _ => all_references_resolve(child, full_urls),
    })
}

/// The `fullUrl` of every entry of the mapping's tree (all ids: [`ctx::entry`] makes them).
fn entry_uids(bundle: &Node<'_>) -> Vec<node::Uid> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| match e["fullUrl"] {
            Node::Uid(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// The `fullUrl` of every entry.
fn entry_full_urls<J: Json>(bundle: &J) -> BTreeSet<&str> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect()
}

fn check_references<J: Json>(bundle: &J) -> Result<(), MappingError> {
    let full_urls = entry_full_urls(bundle);
    if all_references_resolve(bundle, &full_urls) {
        return Ok(());
    }
    match references_in(bundle)
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

    fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == kind)
            .collect()
    }

    /// A closed, conveyed call with two patients (a golden fixture; the library cannot use the
    /// dev kit's generator).
    fn call_with_patients() -> CadCall {
        let json = include_str!("../../../tests/fixtures/cad/conveyed-two-patients.json");
        let call = crate::cad::decode(json.as_bytes()).expect("the fixture decodes");
        assert_eq!(call.patients.len(), 2);
        call
    }

    #[test]
    fn maps_a_call_to_one_communication_and_an_encounter_and_patient_per_contact() {
        let call = call_with_patients();
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(bundle["type"], "collection");
        assert_eq!(resources(&bundle, "Communication").len(), 1);
        // One Encounter per patient contact (vehicle Encounters are `partOf` one of them).
        let contacts = resources(&bundle, "Encounter")
            .into_iter()
            .filter(|e| e.get("partOf").is_none() && e.get("subject").is_some())
            .count();
        assert_eq!(contacts, 2);
        assert_eq!(resources(&bundle, "Patient").len(), 2);
        assert_eq!(
            resources(&bundle, "Location").len(),
            call.responses.len() + response::destinations(&call).len()
        );
        let communication = resources(&bundle, "Communication")[0];
        assert_eq!(communication["identifier"][0]["system"], CALL_ID_SYSTEM);
        assert_eq!(
            communication["identifier"][0]["value"],
            call.call_id.as_str()
        );
        // Both contacts, and each response that attended no patient.
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
        assert_eq!(
            communication["about"].as_array().unwrap().len(),
            2 + no_patient
        );
        assert_eq!(bundle["meta"]["tag"][0]["code"], "mvp");
    }

    #[test]
    fn uses_one_organization_when_provider_submits_for_itself() {
        let mut call = call_with_patients();
        call.submitter_ods = call.provider_ods.clone();
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(resources(&bundle, "Organization").len(), 1);
        call.submitter_ods = "X26".into();
        let bundle = map_call(&call, &MappingOptions::default()).unwrap().json;
        assert_eq!(resources(&bundle, "Organization").len(), 2);
    }

    #[test]
    fn message_bundles_start_with_a_message_header_focused_on_the_communication() {
        let call = call_with_patients();
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
        let err = map_call(&call_with_patients(), &opts).unwrap_err();
        assert_eq!(err.kind(), MappingErrorKind::InvalidOption);
    }

    #[test]
    fn rejects_an_invalid_call_built_in_code_without_patient_data_in_the_error() {
        let mut call = call_with_patients();
        call.patients[0].demographics.nhs_number = Some("9434765918".into());
        let err = map_call(&call, &MappingOptions::default()).unwrap_err();
        assert_eq!(err.kind(), MappingErrorKind::InvalidInput);
        assert!(!err.to_string().contains("9434765918"));
    }

    #[test]
    fn finds_references_that_do_not_resolve() {
        let bundle = serde_json::json!({"entry": [{"fullUrl": "urn:uuid:a", "resource": {
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
    fn the_writes_reference_check_finds_a_reference_without_its_entry() {
        let a = node::Uid::url(Uuid::from_u128(1));
        let b = node::Uid::url(Uuid::from_u128(2));
        let bundle = |target: Node<'static>| {
            node!({ "entry": [ { "fullUrl": a, "resource": {
                "subject": { "reference": target } } } ] })
        };
        let resolves = |n: &Node<'_>| n.to_bytes_walked(0, &entry_uids(n)).1.references_resolve;
        assert!(resolves(&bundle(Node::Uid(a))));
        assert!(resolves(&bundle(Node::String(a.as_str().to_string()))));
        assert!(!resolves(&bundle(Node::Uid(b))));
        assert!(!resolves(&bundle(Node::String(b.as_str().to_string()))));
        assert!(check_references(&bundle(Node::Uid(b))).is_err());
    }

    #[test]
    fn the_writes_coding_check_leaves_every_coding_problem_to_local_validation_with_its_path() {
        let a = node::Uid::url(Uuid::from_u128(1));
        let bundle = |system: &'static str, code: &'static str| {
            node!({
                "resourceType": "Bundle", "id": a.id_only(), "type": "collection",
                "timestamp": "2025-03-01T12:00:00Z",
                "meta": { "tag": [ { "system": ADS_BUNDLE_TYPE_SYSTEM, "code": "mvp" } ] },
                "entry": [ { "fullUrl": a, "resource": { "resourceType": "Basic", "id": a.id_only(),
                    "code": { "coding": [ { "system": system, "code": code } ] } } } ],
            })
        };
        for (system, code, clean) in [
            (YES_NO_SYSTEM, "Y", true),
            (YES_NO_SYSTEM, "maybe", false),
            (SNOMED_SYSTEM, "22298006", true),
            (SNOMED_SYSTEM, "22298007", false),
            (CAT1_EARLY_PREDICTION_SYSTEM, "01", true),
            (CAT1_EARLY_PREDICTION_SYSTEM, "02", false),
            ("https://example.org/any", "anything", true),
        ] {
            let n = bundle(system, code);
            let (bytes, walked) = n.to_bytes_walked(0, &entry_uids(&n));
            assert_eq!(walked.codings_clean, clean, "{system} {code}");
            // Whatever the walk found, the report is the one of the same Bundle read as JSON.
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            let report = check::bundle_walked(&n, walked);
            assert_eq!(report, check::bundle(&value), "{system} {code}");
            let coding_problems = report
                .errors
                .iter()
                .chain(&report.warnings)
                .filter(|p| p.path == "$.entry[0].resource.code.coding[0].code")
                .count();
            assert_eq!(coding_problems, usize::from(!clean), "{system} {code}");
        }
    }

    #[test]
    fn ids_are_the_uuid_crates_v5_of_the_joined_name_at_every_length() {
        // Names of 0 to 200 bytes cross SHA-1's 55-byte and 64-byte block edges.
        for len in 0..200 {
            let path: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            assert_eq!(
                resource_id("RX8", "250301-000001", &path),
                Uuid::new_v5(
                    &ID_NAMESPACE,
                    format!("RX8|250301-000001|{path}").as_bytes()
                ),
                "{len}"
            );
        }
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
