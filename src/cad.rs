//! The `cad.call.v1` input contract and its decoder.
//!
//! **In:** the value bytes of one Kafka record. One record carries the *full current state* of
//! one Computer Aided Despatch (CAD) call; the record key is the call identifier. A call is
//! re-published whenever it changes and the snapshot with the latest `snapshot_at` is the truth.
//!
//! **Out:** a validated [`CadCall`], or a [`DecodeError`] naming the JSON path and the rule that
//! failed. The error's [`DecodeErrorKind`] is a small closed set used as a metric label and as the
//! `ads-error-kind` dead-letter header.
//!
//! **Privacy:** a call carries patient data (NHS number, name, birth date, postcode, clinical
//! codes). Nothing in this module ever puts a field *value* into an error message or a `Debug`
//! string: errors carry paths and rules only, and `Debug` of the patient types is redacted.
//!
//! The model covers the three ADS sections (call, response, patient contact) so that later
//! mapping work deepens the FHIR output without changing this contract. The JSON Schema is
//! `schemas/cad.call.v1.schema.json` and the field reference is `docs/cad.call.v1.md`; the
//! decoder rejects everything the schema rejects, plus the checks a schema cannot express
//! (NHS number check digit, SNOMED CT check digit, timestamp order, cross references).

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The value of the `schema` field of every `cad.call.v1` record.
pub const SCHEMA_ID: &str = "cad.call.v1";

/// One machine-readable validation problem: where, which rule, and a value-free message.
///
/// Serialised as JSON (`{"path": …, "rule": …, "message": …}`) for the dead-letter header and
/// the `validate` command. `path` is a JSON path into the input record (`$.patients[0]…`) or
/// into the Bundle (`$.entry[3].resource…`); `rule` is a stable snake_case rule id (see
/// `docs/mapping.md`, "Local validation"); `message` never contains a field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the offending element.
    pub path: String,
    /// Stable rule id, e.g. `invalid_nhs_number` or `ads_mandatory_item_missing`.
    pub rule: &'static str,
    /// Human-readable explanation, free of patient values.
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// One CAD call snapshot (`cad.call.v1`): call details, responses and patient contacts.
///
/// `Debug` prints only the call's identity (provider, call id, snapshot time), never patient
/// data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadCall {
    /// Always `"cad.call.v1"`.
    pub schema: String,
    /// When this snapshot was taken (RFC 3339, UTC). Of two snapshots of one call, the later
    /// one wins.
    #[serde(with = "rfc3339")]
    pub snapshot_at: DateTime<Utc>,
    /// ODS code of the ambulance service that provided the response (ADS1).
    pub provider_ods: String,
    /// ODS code of the organisation submitting the data (ADS0); often the provider itself.
    pub submitter_ods: String,
    /// The call identifier given by the control room (ADS3); unique per provider.
    pub call_id: String,
    /// The date the call identifier was generated (ADS2A), `YYYY-MM-DD`.
    #[serde(with = "date")]
    pub call_date: NaiveDate,
    /// Where the call came from (ADS2B), an `Ambulance-CallOrigin` code.
    pub call_origin: CallOrigin,
    /// The call was received from NHS 111, by manual or automated transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs111_flag: Option<bool>,
    /// The call counts in the Ambulance Quality Indicators (ADS8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aqi_flag: Option<bool>,
    /// Call triage: system, disposition and (Pathways) symptom group and discriminator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
    /// Response category when the call was first categorised (ADS15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_response_category: Option<ResponseCategory>,
    /// Final response category, used for AQI reporting (ADS20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_response_category: Option<ResponseCategory>,
    /// `Ambulance-Cat1EarlyPredictionFlag` code (two digits), when Cat 1 early prediction applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat1_early_prediction: Option<String>,
    /// Why the call closed without a face-to-face response (ADS4), as the trust's stop code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// How the call was dealt with (ADS33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_type: Option<TreatmentType>,
    /// The call's typed timestamps.
    pub times: CallTimes,
    /// One entry per responding resource (vehicle or person), keyed by call sign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<Response>,
    /// One entry per patient contact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<PatientContact>,
}

impl fmt::Debug for CadCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CadCall")
            .field("provider_ods", &self.provider_ods)
            .field("call_id", &self.call_id)
            .field("snapshot_at", &self.snapshot_at)
            .finish_non_exhaustive()
    }
}

impl CadCall {
    /// The call's identity across snapshots: `"{provider_ods}/{call_id}"`.
    pub fn call_key(&self) -> String {
        format!("{}/{}", self.provider_ods, self.call_id)
    }

    /// Checks every rule of the contract that serde does not (codes, check digits, timestamp
    /// order, cross references). [`decode`] runs this; call it on calls built in code.
    pub fn validate(&self) -> Result<(), DecodeError> {
        validate::call(self)
    }

    /// The call as compact JSON bytes (the record value a producer would publish).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a CadCall always serialises")
    }
}

/// `Ambulance-CallOrigin` (`https://fhir.nhs.uk/R4/CodeSystem/Ambulance-CallOrigin`), sent as
/// its two-digit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallOrigin {
    /// `01` 999.
    #[serde(rename = "01")]
    Emergency999,
    /// `02` NHS 111.
    #[serde(rename = "02")]
    Nhs111,
    /// `03` Healthcare Professional.
    #[serde(rename = "03")]
    HealthcareProfessional,
    /// `04` Police Force.
    #[serde(rename = "04")]
    Police,
    /// `05` Telecare Provider/Service.
    #[serde(rename = "05")]
    Telecare,
    /// `06` Other Ambulance Service.
    #[serde(rename = "06")]
    OtherAmbulanceService,
    /// `07` Custodial Service.
    #[serde(rename = "07")]
    CustodialService,
    /// `08` Coastguard Service.
    #[serde(rename = "08")]
    Coastguard,
    /// `09` Military Service.
    #[serde(rename = "09")]
    Military,
    /// `10` Fire Service.
    #[serde(rename = "10")]
    FireService,
    /// `11` Operational running call.
    #[serde(rename = "11")]
    OperationalRunningCall,
    /// `12` Event running call.
    #[serde(rename = "12")]
    EventRunningCall,
    /// `13` Mountain Rescue.
    #[serde(rename = "13")]
    MountainRescue,
    /// `14` Water Rescue.
    #[serde(rename = "14")]
    WaterRescue,
    /// `15` British Transport Police.
    #[serde(rename = "15")]
    BritishTransportPolice,
    /// `98` Other Agency (not listed).
    #[serde(rename = "98")]
    OtherAgency,
}

impl CallOrigin {
    /// Every code, in code order.
    pub const ALL: [CallOrigin; 16] = [
        CallOrigin::Emergency999,
        CallOrigin::Nhs111,
        CallOrigin::HealthcareProfessional,
        CallOrigin::Police,
        CallOrigin::Telecare,
        CallOrigin::OtherAmbulanceService,
        CallOrigin::CustodialService,
        CallOrigin::Coastguard,
        CallOrigin::Military,
        CallOrigin::FireService,
        CallOrigin::OperationalRunningCall,
        CallOrigin::EventRunningCall,
        CallOrigin::MountainRescue,
        CallOrigin::WaterRescue,
        CallOrigin::BritishTransportPolice,
        CallOrigin::OtherAgency,
    ];

    /// The two-digit code.
    pub fn code(self) -> &'static str {
        self.code_and_display().0
    }

    /// The code system's display text.
    pub fn display(self) -> &'static str {
        self.code_and_display().1
    }

    fn code_and_display(self) -> (&'static str, &'static str) {
        match self {
            CallOrigin::Emergency999 => ("01", "999"),
            CallOrigin::Nhs111 => ("02", "NHS 111"),
            CallOrigin::HealthcareProfessional => ("03", "Healthcare Professional"),
            CallOrigin::Police => ("04", "Police Force"),
            CallOrigin::Telecare => ("05", "Telecare Provider/Service"),
            CallOrigin::OtherAmbulanceService => ("06", "Other Ambulance Service"),
            CallOrigin::CustodialService => ("07", "Custodial Service"),
            CallOrigin::Coastguard => ("08", "Coastguard Service"),
            CallOrigin::Military => ("09", "Military Service"),
            CallOrigin::FireService => ("10", "Fire Service"),
            CallOrigin::OperationalRunningCall => ("11", "Operational running call"),
            CallOrigin::EventRunningCall => ("12", "Event running call"),
            CallOrigin::MountainRescue => ("13", "Mountain Rescue"),
            CallOrigin::WaterRescue => ("14", "Water Rescue"),
            CallOrigin::BritishTransportPolice => ("15", "British Transport Police"),
            CallOrigin::OtherAgency => ("98", "Other Agency (not listed)"),
        }
    }
}

/// Ambulance Response Programme category, sent as `"C1"` … `"C5"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResponseCategory {
    /// Category 1: life-threatening.
    C1,
    /// Category 2: emergency.
    C2,
    /// Category 3: urgent.
    C3,
    /// Category 4: less urgent.
    C4,
    /// Category 5: hear and treat / referral.
    C5,
}

impl ResponseCategory {
    /// Every category, most urgent first.
    pub const ALL: [ResponseCategory; 5] = [
        ResponseCategory::C1,
        ResponseCategory::C2,
        ResponseCategory::C3,
        ResponseCategory::C4,
        ResponseCategory::C5,
    ];

    /// The category number, 1 to 5.
    pub fn number(self) -> u8 {
        match self {
            ResponseCategory::C1 => 1,
            ResponseCategory::C2 => 2,
            ResponseCategory::C3 => 3,
            ResponseCategory::C4 => 4,
            ResponseCategory::C5 => 5,
        }
    }

    /// The contract's code, `"C1"` … `"C5"`.
    pub fn code(self) -> &'static str {
        match self {
            ResponseCategory::C1 => "C1",
            ResponseCategory::C2 => "C2",
            ResponseCategory::C3 => "C3",
            ResponseCategory::C4 => "C4",
            ResponseCategory::C5 => "C5",
        }
    }
}

/// Triage system used to establish the disposition (dispatch) code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageSystem {
    /// Advanced Medical Priority Dispatch System (AMPDS / MPDS).
    Ampds,
    /// NHS Pathways.
    Pathways,
}

/// Call triage (ADS call triage items).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    /// The triage system.
    pub system: TriageSystem,
    /// AMPDS determinant (e.g. `09E01`) or Pathways disposition (e.g. `Dx011`).
    pub disposition_code: String,
    /// Pathways symptom group (SG) code; Pathways only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_group: Option<String>,
    /// Pathways symptom discriminator (SD) code; Pathways only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_discriminator: Option<String>,
}

/// How the call was dealt with (ADS33).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreatmentType {
    /// Resolved by telephone advice, no face-to-face response.
    HearAndTreat,
    /// Treated face to face, not conveyed.
    SeeAndTreat,
    /// Conveyed to an emergency department.
    SeeAndConveyEd,
    /// Conveyed somewhere other than an emergency department.
    SeeAndConveyOther,
}

/// The call's typed timestamps (UK Core DateTimeType codes in brackets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallTimes {
    /// The call was answered in the control room (`time-call-answered`; ADS10). Mandatory.
    #[serde(with = "rfc3339")]
    pub call_answered: DateTime<Utc>,
    /// The call ended (`time-call-ended`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_ended: Option<DateTime<Utc>>,
    /// The disposition code was established (`time-dispatch-code-established`; ADS21).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub dispatch_code_established: Option<DateTime<Utc>>,
    /// The AQI clock started (`clock-start-date-time`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_start: Option<DateTime<Utc>>,
    /// The AQI clock stopped (`clock-stop-date-time`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_stop: Option<DateTime<Utc>>,
}

/// One responding resource (ADS response section). Call signs are unique within a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The resource's call sign.
    pub call_sign: String,
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The response's typed timestamps.
    #[serde(default)]
    pub times: ResponseTimes,
}

/// Kind of responding resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// Double-crewed emergency ambulance.
    EmergencyAmbulance,
    /// Rapid response car (solo responder).
    RapidResponseVehicle,
    /// Intermediate tier / urgent care transport.
    IntermediateTier,
    /// Specialist or advanced paramedic practitioner.
    SpecialistPractitioner,
    /// Hazardous area response team.
    HazardousAreaResponse,
    /// Helicopter or other air ambulance.
    AirAmbulance,
    /// Community first responder.
    CommunityFirstResponder,
    /// Anything else.
    Other,
}

/// A response's typed timestamps (UK Core DateTimeType codes in brackets).
///
/// Order rules: mobilised ≤ arrived_on_scene ≤ left_scene ≤ arrived_receiving_location ≤
/// patient_handover and clinical_handover; mobilised ≤ stood_down; every time ≤ clear.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimes {
    /// Started moving towards the incident (`time-resource-mobilised`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub mobilised: Option<DateTime<Utc>>,
    /// Arrived at the incident (`time-resource-arrived-on-scene`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrived_on_scene: Option<DateTime<Utc>>,
    /// Left the incident to convey (`time-resource-left-scene`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub left_scene: Option<DateTime<Utc>>,
    /// Arrived at the receiving location (`time-arrived-receiving-location`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrived_receiving_location: Option<DateTime<Utc>>,
    /// Patient handed over (`time-patient-handover`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub patient_handover: Option<DateTime<Utc>>,
    /// Clinical responsibility handed over (`time-clinical-handover`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clinical_handover: Option<DateTime<Utc>>,
    /// Clear and available for another call (`time-clear`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clear: Option<DateTime<Utc>>,
    /// Stood down while travelling (`time-stood-down`).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub stood_down: Option<DateTime<Utc>>,
}

/// One patient contact (ADS patient contact section). `Debug` shows only `contact_id`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientContact {
    /// The contact's identifier within the call, stable across snapshots (e.g. `"1"`).
    pub contact_id: String,
    /// Call signs (from `responses`) that attended this patient; the first is the lead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_signs: Vec<String>,
    /// Who the patient is.
    pub demographics: Demographics,
    /// Conveyance outcome and destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conveyance: Option<Conveyance>,
    /// Observations (vital signs and scores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// Working or final diagnoses / clinical impressions (SNOMED CT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnoses: Vec<ClinicalCode>,
    /// Injuries (SNOMED CT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injuries: Vec<ClinicalCode>,
    /// Medications given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub medications: Vec<Medication>,
    /// Procedures performed (SNOMED CT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procedures: Vec<ClinicalCode>,
    /// Safeguarding concerns raised (SNOMED CT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safeguarding: Vec<ClinicalCode>,
    /// Public health findings (e.g. alcohol, drugs, mental health; SNOMED CT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_health: Vec<ClinicalCode>,
}

impl fmt::Debug for PatientContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientContact")
            .field("contact_id", &self.contact_id)
            .finish_non_exhaustive()
    }
}

/// Patient demographics; every field optional. `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// NHS number: ten digits, valid modulus-11 check digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_number: Option<String>,
    /// How far the NHS number was verified: a UK Core `NHSNumberVerificationStatusEngland`
    /// code, `01` … `08`; `01` and `02` ("number present") need `nhs_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_number_status: Option<NhsNumberStatus>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Date of birth, `YYYY-MM-DD`, not after `call_date`.
    #[serde(
        default,
        with = "date::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub birth_date: Option<NaiveDate>,
    /// Administrative gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// Postcode of usual address, upper case (e.g. `LS9 7TF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}

impl fmt::Debug for Demographics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Demographics").finish_non_exhaustive()
    }
}

/// UK Core `NHSNumberVerificationStatusEngland`
/// (`https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland`), sent as its
/// two-digit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NhsNumberStatus {
    /// `01` Number present and verified.
    #[serde(rename = "01")]
    Verified,
    /// `02` Number present but not traced.
    #[serde(rename = "02")]
    NotTraced,
    /// `03` Trace required.
    #[serde(rename = "03")]
    TraceRequired,
    /// `04` Trace attempted - No match or multiple match found.
    #[serde(rename = "04")]
    TraceNoMatch,
    /// `05` Trace needs to be resolved - (NHS Number or patient detail conflict).
    #[serde(rename = "05")]
    TraceToResolve,
    /// `06` Trace in progress.
    #[serde(rename = "06")]
    TraceInProgress,
    /// `07` Number not present and trace not required.
    #[serde(rename = "07")]
    NotPresentTraceNotRequired,
    /// `08` Trace postponed (baby under six weeks old).
    #[serde(rename = "08")]
    TracePostponed,
}

impl NhsNumberStatus {
    /// Every code, in code order.
    pub const ALL: [NhsNumberStatus; 8] = [
        NhsNumberStatus::Verified,
        NhsNumberStatus::NotTraced,
        NhsNumberStatus::TraceRequired,
        NhsNumberStatus::TraceNoMatch,
        NhsNumberStatus::TraceToResolve,
        NhsNumberStatus::TraceInProgress,
        NhsNumberStatus::NotPresentTraceNotRequired,
        NhsNumberStatus::TracePostponed,
    ];

    /// The two-digit code.
    pub fn code(self) -> &'static str {
        self.code_and_display().0
    }

    /// The code system's display text.
    pub fn display(self) -> &'static str {
        self.code_and_display().1
    }

    fn code_and_display(self) -> (&'static str, &'static str) {
        match self {
            NhsNumberStatus::Verified => ("01", "Number present and verified"),
            NhsNumberStatus::NotTraced => ("02", "Number present but not traced"),
            NhsNumberStatus::TraceRequired => ("03", "Trace required"),
            NhsNumberStatus::TraceNoMatch => {
                ("04", "Trace attempted - No match or multiple match found")
            }
            NhsNumberStatus::TraceToResolve => (
                "05",
                "Trace needs to be resolved - (NHS Number or patient detail conflict)",
            ),
            NhsNumberStatus::TraceInProgress => ("06", "Trace in progress"),
            NhsNumberStatus::NotPresentTraceNotRequired => {
                ("07", "Number not present and trace not required")
            }
            NhsNumberStatus::TracePostponed => ("08", "Trace postponed (baby under six weeks old)"),
        }
    }
}

/// FHIR administrative gender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

impl Gender {
    /// The FHIR `administrative-gender` code.
    pub fn code(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

/// Conveyance outcome of a patient contact. `Debug` is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conveyance {
    /// What happened to the patient.
    pub outcome: ConveyanceOutcome,
    /// Where the patient was conveyed; required when conveyed, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// The conveying call sign; one of the contact's `call_signs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conveyed_by: Option<String>,
}

impl fmt::Debug for Conveyance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conveyance").finish_non_exhaustive()
    }
}

/// Conveyance outcome codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConveyanceOutcome {
    /// Conveyed to an emergency department.
    ConveyedToEmergencyDepartment,
    /// Conveyed elsewhere (urgent treatment centre, assessment unit, …).
    ConveyedToOtherDestination,
    /// Treated at scene, not conveyed.
    TreatedAtScene,
    /// Referred to another service, not conveyed.
    ReferredToOtherService,
    /// Refused conveyance.
    RefusedConveyance,
    /// Deceased at scene.
    Deceased,
    /// Not conveyed, other reason.
    NotConveyedOther,
}

impl ConveyanceOutcome {
    /// Whether the patient was conveyed (and so a destination is required).
    pub fn is_conveyed(self) -> bool {
        matches!(
            self,
            ConveyanceOutcome::ConveyedToEmergencyDepartment
                | ConveyanceOutcome::ConveyedToOtherDestination
        )
    }
}

/// A receiving location, identified by its ODS site code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// ODS site (or organisation) code: 3 to 6 upper-case letters and digits.
    pub ods_site: String,
    /// The site's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One observation. `Debug` is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// What was measured; fixes the unit.
    pub kind: ObservationKind,
    /// The measured value, in the kind's unit.
    pub value: f64,
    /// When it was taken.
    #[serde(with = "rfc3339")]
    pub taken_at: DateTime<Utc>,
}

impl fmt::Debug for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observation").finish_non_exhaustive()
    }
}

/// Observation kinds; each has a fixed UCUM unit and a plausible range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    /// Heart rate, beats per minute (`/min`), 0–300.
    HeartRate,
    /// Respiratory rate, breaths per minute (`/min`), 0–80.
    RespiratoryRate,
    /// Oxygen saturation, percent (`%`), 0–100.
    OxygenSaturation,
    /// Systolic blood pressure, `mm[Hg]`, 0–300.
    SystolicBloodPressure,
    /// Diastolic blood pressure, `mm[Hg]`, 0–200.
    DiastolicBloodPressure,
    /// Body temperature, `Cel`, 20–45.
    Temperature,
    /// Blood glucose, `mmol/L`, 0–60.
    BloodGlucose,
    /// Glasgow Coma Scale total, 3–15.
    GcsTotal,
    /// Pain score, 0–10.
    PainScore,
    /// NEWS2 total score, 0–20.
    News2Score,
}

impl ObservationKind {
    /// The UCUM unit of the value (`{score}` for scores).
    pub fn unit(self) -> &'static str {
        match self {
            ObservationKind::HeartRate | ObservationKind::RespiratoryRate => "/min",
            ObservationKind::OxygenSaturation => "%",
            ObservationKind::SystolicBloodPressure | ObservationKind::DiastolicBloodPressure => {
                "mm[Hg]"
            }
            ObservationKind::Temperature => "Cel",
            ObservationKind::BloodGlucose => "mmol/L",
            ObservationKind::GcsTotal
            | ObservationKind::PainScore
            | ObservationKind::News2Score => "{score}",
        }
    }

    /// The inclusive range of plausible values.
    pub fn range(self) -> (f64, f64) {
        match self {
            ObservationKind::HeartRate => (0.0, 300.0),
            ObservationKind::RespiratoryRate => (0.0, 80.0),
            ObservationKind::OxygenSaturation => (0.0, 100.0),
            ObservationKind::SystolicBloodPressure => (0.0, 300.0),
            ObservationKind::DiastolicBloodPressure => (0.0, 200.0),
            ObservationKind::Temperature => (20.0, 45.0),
            ObservationKind::BloodGlucose => (0.0, 60.0),
            ObservationKind::GcsTotal => (3.0, 15.0),
            ObservationKind::PainScore => (0.0, 10.0),
            ObservationKind::News2Score => (0.0, 20.0),
        }
    }
}

/// A SNOMED CT coded clinical entry (diagnosis, injury, procedure, safeguarding or public
/// health finding). `Debug` is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalCode {
    /// SNOMED CT concept id (6–18 digits, valid Verhoeff check digit).
    pub snomed: String,
    /// The concept's display term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// When it was recorded or performed.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ClinicalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClinicalCode").finish_non_exhaustive()
    }
}

/// A medication given to the patient. `Debug` is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    /// SNOMED CT / dm+d concept id of the medicine.
    pub snomed: String,
    /// The concept's display term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The dose given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<Dose>,
    /// When it was given.
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub administered_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Medication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Medication").finish_non_exhaustive()
    }
}

/// A dose quantity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dose {
    /// Amount, greater than zero.
    pub value: f64,
    /// UCUM unit (e.g. `mg`, `mL`, `ug`).
    pub unit: String,
}

// ---------------------------------------------------------------------------------------------
// Decoding and its errors
// ---------------------------------------------------------------------------------------------

/// Why a record is not a valid `cad.call.v1` call.
///
/// Messages give the JSON path (`$.patients[0].demographics.nhs_number`) and the rule; they
/// never contain a field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not UTF-8.
    #[error("record is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The bytes are not one JSON document.
    #[error("record is not valid JSON: {reason} at line {line} column {column}")]
    InvalidJson {
        /// The parser's reason (a fixed phrase).
        reason: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `schema` is not `cad.call.v1`.
    #[error("{path}: must be \"{SCHEMA_ID}\"")]
    SchemaMismatch {
        /// JSON path of the field.
        path: String,
    },
    /// A field the contract does not define.
    #[error("{path}: unknown field, not part of {SCHEMA_ID}")]
    UnknownField {
        /// JSON path of the field (unusual names are shown as `?`).
        path: String,
    },
    /// A mandatory field is absent.
    #[error("{path}: missing mandatory field")]
    MissingField {
        /// JSON path of the missing field.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path}: wrong JSON type, expected {expected}")]
    InvalidType {
        /// JSON path of the field.
        path: String,
        /// What was expected.
        expected: String,
    },
    /// A value breaks a format or range rule.
    #[error("{path}: {rule}")]
    InvalidValue {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// A code is not in its code list.
    #[error("{path}: {rule}")]
    InvalidCode {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// An ODS code is malformed.
    #[error("{path}: {rule}")]
    InvalidOdsCode {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// An NHS number is malformed or fails its check digit.
    #[error("{path}: {rule}")]
    InvalidNhsNumber {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// Two timestamps are in an impossible order.
    #[error("{path}: {rule}")]
    TimestampsOutOfOrder {
        /// JSON path of the later-in-sequence field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
    /// A cross reference does not resolve, or an identifier is duplicated.
    #[error("{path}: {rule}")]
    InconsistentReference {
        /// JSON path of the field.
        path: String,
        /// The rule that failed.
        rule: String,
    },
}

/// The closed set of decode failure kinds: a metric label and the `ads-error-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// `invalid_utf8`
    InvalidUtf8,
    /// `invalid_json`
    InvalidJson,
    /// `schema_mismatch`
    SchemaMismatch,
    /// `unknown_field`
    UnknownField,
    /// `missing_field`
    MissingField,
    /// `invalid_type`
    InvalidType,
    /// `invalid_value`
    InvalidValue,
    /// `invalid_code`
    InvalidCode,
    /// `invalid_ods_code`
    InvalidOdsCode,
    /// `invalid_nhs_number`
    InvalidNhsNumber,
    /// `timestamps_out_of_order`
    TimestampsOutOfOrder,
    /// `inconsistent_reference`
    InconsistentReference,
}

impl DecodeErrorKind {
    /// Every kind (for pre-registering metric label values).
    pub const ALL: [DecodeErrorKind; 12] = [
        DecodeErrorKind::InvalidUtf8,
        DecodeErrorKind::InvalidJson,
        DecodeErrorKind::SchemaMismatch,
        DecodeErrorKind::UnknownField,
        DecodeErrorKind::MissingField,
        DecodeErrorKind::InvalidType,
        DecodeErrorKind::InvalidValue,
        DecodeErrorKind::InvalidCode,
        DecodeErrorKind::InvalidOdsCode,
        DecodeErrorKind::InvalidNhsNumber,
        DecodeErrorKind::TimestampsOutOfOrder,
        DecodeErrorKind::InconsistentReference,
    ];

    /// The snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeErrorKind::InvalidUtf8 => "invalid_utf8",
            DecodeErrorKind::InvalidJson => "invalid_json",
            DecodeErrorKind::SchemaMismatch => "schema_mismatch",
            DecodeErrorKind::UnknownField => "unknown_field",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::InvalidType => "invalid_type",
            DecodeErrorKind::InvalidValue => "invalid_value",
            DecodeErrorKind::InvalidCode => "invalid_code",
            DecodeErrorKind::InvalidOdsCode => "invalid_ods_code",
            DecodeErrorKind::InvalidNhsNumber => "invalid_nhs_number",
            DecodeErrorKind::TimestampsOutOfOrder => "timestamps_out_of_order",
            DecodeErrorKind::InconsistentReference => "inconsistent_reference",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecodeError {
    /// The bounded kind of this error.
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            DecodeError::InvalidUtf8 { .. } => DecodeErrorKind::InvalidUtf8,
            DecodeError::InvalidJson { .. } => DecodeErrorKind::InvalidJson,
            DecodeError::SchemaMismatch { .. } => DecodeErrorKind::SchemaMismatch,
            DecodeError::UnknownField { .. } => DecodeErrorKind::UnknownField,
            DecodeError::MissingField { .. } => DecodeErrorKind::MissingField,
            DecodeError::InvalidType { .. } => DecodeErrorKind::InvalidType,
            DecodeError::InvalidValue { .. } => DecodeErrorKind::InvalidValue,
            DecodeError::InvalidCode { .. } => DecodeErrorKind::InvalidCode,
            DecodeError::InvalidOdsCode { .. } => DecodeErrorKind::InvalidOdsCode,
            DecodeError::InvalidNhsNumber { .. } => DecodeErrorKind::InvalidNhsNumber,
            DecodeError::TimestampsOutOfOrder { .. } => DecodeErrorKind::TimestampsOutOfOrder,
            DecodeError::InconsistentReference { .. } => DecodeErrorKind::InconsistentReference,
        }
    }

    /// The error as a machine-readable problem list (one entry: the decoder stops at the first
    /// broken rule). `rule` is the [`DecodeErrorKind`] label.
    pub fn problems(&self) -> Vec<Problem> {
        let path = self.path().to_string();
        let full = self.to_string();
        let message = match full.strip_prefix(&path).and_then(|m| m.strip_prefix(": ")) {
            Some(rule) => rule.to_string(),
            None => full.clone(),
        };
        vec![Problem {
            path,
            rule: self.kind().as_str(),
            message,
        }]
    }

    /// The JSON path the error is about (`$` for the whole record).
    pub fn path(&self) -> &str {
        match self {
            DecodeError::InvalidUtf8 { .. } | DecodeError::InvalidJson { .. } => "$",
            DecodeError::SchemaMismatch { path }
            | DecodeError::UnknownField { path }
            | DecodeError::MissingField { path }
            | DecodeError::InvalidType { path, .. }
            | DecodeError::InvalidValue { path, .. }
            | DecodeError::InvalidCode { path, .. }
            | DecodeError::InvalidOdsCode { path, .. }
            | DecodeError::InvalidNhsNumber { path, .. }
            | DecodeError::TimestampsOutOfOrder { path, .. }
            | DecodeError::InconsistentReference { path, .. } => path,
        }
    }
}

/// Decodes and validates one `cad.call.v1` record value.
pub fn decode(bytes: &[u8]) -> Result<CadCall, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let call = match parse(text) {
        Ok(call) => call,
        Err(err) => {
            // A record of another schema version usually fails on its new fields first; say
            // "wrong schema" rather than "unknown field" when that is the real cause.
            if !matches!(err, DecodeError::InvalidJson { .. }) && schema_is_foreign(text) {
                return Err(DecodeError::SchemaMismatch {
                    path: "$.schema".into(),
                });
            }
            return Err(err);
        }
    };
    call.validate()?;
    Ok(call)
}

fn parse(text: &str) -> Result<CadCall, DecodeError> {
    // serde's derived structs also accept a JSON array of their fields in order; the schema
    // does not, so a first pass checks that arrays appear only where the schema has lists.
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    serde::de::DeserializeSeed::deserialize(
        shape::Shape {
            array_allowed: false,
        },
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
    )
    .map_err(|e| from_serde(serde_path_to_error::Error::new(track.path(), e)))?;

    let mut de = serde_json::Deserializer::from_str(text);
    let call: CadCall = serde_path_to_error::deserialize(&mut de).map_err(from_serde)?;
    de.end().map_err(|e| json_syntax(&e))?;
    Ok(call)
}

/// A non-allocating walk over the JSON that rejects arrays outside the schema's list fields.
mod shape {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    /// The fields whose values are JSON arrays in `cad.call.v1`; list items are never arrays.
    const LIST_FIELDS: [&str; 10] = [
        "responses",
        "patients",
        "call_signs",
        "observations",
        "diagnoses",
        "injuries",
        "medications",
        "procedures",
        "safeguarding",
        "public_health",
    ];

    pub(super) struct Shape {
        pub(super) array_allowed: bool,
    }

    impl<'de> DeserializeSeed<'de> for Shape {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Shape {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }

        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }

        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }

        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }

        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }

        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if !self.array_allowed {
                return Err(de::Error::custom(
                    "invalid type: array, expected a JSON object or a single value",
                ));
            }
            while seq
                .next_element_seed(Shape {
                    array_allowed: false,
                })?
                .is_some()
            {}
            Ok(())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(ListKey(array_allowed)) = map.next_key()? {
                map.next_value_seed(Shape { array_allowed })?;
            }
            Ok(())
        }
    }

    /// An object key, reduced to "is it a list field?".
    struct ListKey(bool);

    impl<'de> de::Deserialize<'de> for ListKey {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = ListKey;

                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a field name")
                }

                fn visit_str<E>(self, key: &str) -> Result<ListKey, E> {
                    Ok(ListKey(LIST_FIELDS.contains(&key)))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }
}

/// True when the record is a JSON object whose `schema` is a string other than ours.
fn schema_is_foreign(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        schema: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Probe>(text) {
        Ok(Probe {
            schema: Some(serde_json::Value::String(s)),
        }) => s != SCHEMA_ID,
        _ => false,
    }
}

fn json_syntax(err: &serde_json::Error) -> DecodeError {
    DecodeError::InvalidJson {
        reason: message_without_position(err),
        line: err.line(),
        column: err.column(),
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn message_without_position(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(at) if err.line() > 0 => full[..at].to_string(),
        _ => full,
    }
}

/// Turns a serde error into a value-free [`DecodeError`].
///
/// serde's messages quote the offending value (``invalid type: string "Smith", expected …``);
/// only the parts that come from the schema (field names, expectations) are kept.
fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    use serde_json::error::Category;

    let path = render_path(err.path());
    let inner = err.inner();
    match inner.classify() {
        Category::Io | Category::Syntax | Category::Eof => json_syntax(inner),
        Category::Data => {
            let msg = message_without_position(inner);
            if let Some(field) = backticked_after(&msg, "missing field ") {
                DecodeError::MissingField {
                    path: join(&path, field),
                }
            } else if msg.starts_with("unknown field ") {
                DecodeError::UnknownField { path }
            } else if let Some(field) = backticked_after(&msg, "duplicate field ") {
                DecodeError::InvalidValue {
                    path: join(&path, field),
                    rule: "field appears more than once".into(),
                }
            } else if msg.starts_with("unknown variant ") {
                DecodeError::InvalidCode {
                    path,
                    rule: format!("not in the code list; {}", expectation(&msg)),
                }
            } else if msg.starts_with("invalid type: ") {
                DecodeError::InvalidType {
                    path,
                    expected: expectation(&msg)
                        .trim_start_matches("expected ")
                        .to_string(),
                }
            } else if msg.starts_with("invalid value: ") || msg.starts_with("invalid length ") {
                DecodeError::InvalidValue {
                    path,
                    rule: expectation(&msg).to_string(),
                }
            } else if msg.starts_with("expected ") {
                // Our own deserializers' messages: a fixed rule with an example, no value.
                DecodeError::InvalidValue { path, rule: msg }
            } else {
                DecodeError::InvalidValue {
                    path,
                    rule: "invalid value".into(),
                }
            }
        }
    }
}

/// The `expected …` tail of a serde message (value-free), or a generic phrase.
fn expectation(msg: &str) -> &str {
    match msg.find(", expected ") {
        Some(at) => &msg[at + 2..],
        None => "value not allowed",
    }
}

/// The backticked word right after `prefix`, when it is a plain field name.
fn backticked_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?.strip_prefix('`')?;
    let name = &rest[..rest.find('`')?];
    is_field_name(name).then_some(name)
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn join(path: &str, field: &str) -> String {
    format!("{path}.{field}")
}

/// `$.a.b[0].c`; object keys that are not plain field names are shown as `?` because an unknown
/// key could be anything a producer put there.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('.');
                out.push_str(if is_field_name(key) { key } else { "?" });
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Validation: the rules serde cannot express
// ---------------------------------------------------------------------------------------------

mod validate {
    use super::*;

    type Result = std::result::Result<(), DecodeError>;

    pub(super) fn call(c: &CadCall) -> Result {
        if c.schema != SCHEMA_ID {
            return Err(DecodeError::SchemaMismatch {
                path: "$.schema".into(),
            });
        }
        ods_org(&c.provider_ods, "$.provider_ods")?;
        ods_org(&c.submitter_ods, "$.submitter_ods")?;
        identifier(&c.call_id, "$.call_id", 64)?;
        if let Some(t) = &c.triage {
            triage(t)?;
        }
        if let Some(code) = &c.cat1_early_prediction {
            if !(code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())) {
                return Err(DecodeError::InvalidCode {
                    path: "$.cat1_early_prediction".into(),
                    rule: "must be a two-digit Ambulance-Cat1EarlyPredictionFlag code".into(),
                });
            }
        }
        if let Some(code) = &c.stop_code {
            code_text(code, "$.stop_code")?;
        }
        call_times(&c.times)?;

        let mut call_signs = HashSet::new();
        for (i, r) in c.responses.iter().enumerate() {
            let base = format!("$.responses[{i}]");
            call_sign(&r.call_sign, &format!("{base}.call_sign"))?;
            if !call_signs.insert(r.call_sign.as_str()) {
                return Err(DecodeError::InconsistentReference {
                    path: format!("{base}.call_sign"),
                    rule: "call sign appears in more than one response".into(),
                });
            }
            response_times(&r.times, &format!("{base}.times"))?;
        }

        let mut contact_ids = HashSet::new();
        for (i, p) in c.patients.iter().enumerate() {
            let base = format!("$.patients[{i}]");
            identifier(&p.contact_id, &format!("{base}.contact_id"), 32)?;
            if !contact_ids.insert(p.contact_id.as_str()) {
                return Err(DecodeError::InconsistentReference {
                    path: format!("{base}.contact_id"),
                    rule: "contact id appears in more than one patient contact".into(),
                });
            }
            patient(p, &base, c.call_date, &call_signs)?;
        }
        Ok(())
    }

    fn triage(t: &Triage) -> Result {
        code_text(&t.disposition_code, "$.triage.disposition_code")?;
        for (value, field) in [
            (&t.symptom_group, "symptom_group"),
            (&t.symptom_discriminator, "symptom_discriminator"),
        ] {
            if let Some(v) = value {
                let path = format!("$.triage.{field}");
                if t.system != TriageSystem::Pathways {
                    return Err(DecodeError::InvalidValue {
                        path,
                        rule: "only allowed when triage.system is \"pathways\"".into(),
                    });
                }
                code_text(v, &path)?;
            }
        }
        Ok(())
    }

    fn call_times(t: &CallTimes) -> Result {
        let answered = Some(t.call_answered);
        not_before(
            t.call_ended,
            answered,
            "$.times.call_ended",
            "call_answered",
        )?;
        not_before(
            t.dispatch_code_established,
            answered,
            "$.times.dispatch_code_established",
            "call_answered",
        )?;
        if t.clock_stop.is_some() && t.clock_start.is_none() {
            return Err(DecodeError::TimestampsOutOfOrder {
                path: "$.times.clock_stop".into(),
                rule: "clock_stop is set but clock_start is not".into(),
            });
        }
        not_before(
            t.clock_stop,
            t.clock_start,
            "$.times.clock_stop",
            "clock_start",
        )
    }

    fn response_times(t: &ResponseTimes, base: &str) -> Result {
        // The journey, in order; absent steps are skipped.
        let chain = [
            ("mobilised", t.mobilised),
            ("arrived_on_scene", t.arrived_on_scene),
            ("left_scene", t.left_scene),
            ("arrived_receiving_location", t.arrived_receiving_location),
        ];
        let mut last: Option<(&str, DateTime<Utc>)> = None;
        for (name, time) in chain {
            if let Some(time) = time {
                if let Some((prev, prev_time)) = last {
                    not_before(Some(time), Some(prev_time), &format!("{base}.{name}"), prev)?;
                }
                last = Some((name, time));
            }
        }
        for (name, time) in [
            ("patient_handover", t.patient_handover),
            ("clinical_handover", t.clinical_handover),
        ] {
            if let Some((prev, prev_time)) = last {
                not_before(time, Some(prev_time), &format!("{base}.{name}"), prev)?;
            }
        }
        not_before(
            t.stood_down,
            t.mobilised,
            &format!("{base}.stood_down"),
            "mobilised",
        )?;
        for (name, time) in [
            ("mobilised", t.mobilised),
            ("arrived_on_scene", t.arrived_on_scene),
            ("left_scene", t.left_scene),
            ("arrived_receiving_location", t.arrived_receiving_location),
            ("patient_handover", t.patient_handover),
            ("clinical_handover", t.clinical_handover),
            ("stood_down", t.stood_down),
        ] {
            not_before(t.clear, time, &format!("{base}.clear"), name)?;
        }
        Ok(())
    }

    /// `later` (at `path`) must not be before `earlier` (named `earlier_name`), when both exist.
    fn not_before(
        later: Option<DateTime<Utc>>,
        earlier: Option<DateTime<Utc>>,
        path: &str,
        earlier_name: &str,
    ) -> Result {
        match (later, earlier) {
            (Some(l), Some(e)) if l < e => Err(DecodeError::TimestampsOutOfOrder {
                path: path.into(),
                rule: format!("must not be before {earlier_name}"),
            }),
            _ => Ok(()),
        }
    }

    fn patient(
        p: &PatientContact,
        base: &str,
        call_date: NaiveDate,
        call_signs: &HashSet<&str>,
    ) -> Result {
        for (j, cs) in p.call_signs.iter().enumerate() {
            if !call_signs.contains(cs.as_str()) {
                return Err(DecodeError::InconsistentReference {
                    path: format!("{base}.call_signs[{j}]"),
                    rule: "not the call sign of any entry in responses".into(),
                });
            }
        }
        demographics(&p.demographics, &format!("{base}.demographics"), call_date)?;
        if let Some(c) = &p.conveyance {
            conveyance(c, &format!("{base}.conveyance"), &p.call_signs)?;
        }
        for (j, o) in p.observations.iter().enumerate() {
            let (lo, hi) = o.kind.range();
            if !o.value.is_finite() || o.value < lo || o.value > hi {
                return Err(DecodeError::InvalidValue {
                    path: format!("{base}.observations[{j}].value"),
                    rule: format!("must be between {lo} and {hi} for this kind"),
                });
            }
        }
        for (list, field) in [
            (&p.diagnoses, "diagnoses"),
            (&p.injuries, "injuries"),
            (&p.procedures, "procedures"),
            (&p.safeguarding, "safeguarding"),
            (&p.public_health, "public_health"),
        ] {
            for (j, entry) in list.iter().enumerate() {
                let item = format!("{base}.{field}[{j}]");
                snomed(&entry.snomed, &format!("{item}.snomed"))?;
                if let Some(d) = &entry.display {
                    text(d, &format!("{item}.display"), 200)?;
                }
            }
        }
        for (j, m) in p.medications.iter().enumerate() {
            let item = format!("{base}.medications[{j}]");
            snomed(&m.snomed, &format!("{item}.snomed"))?;
            if let Some(d) = &m.display {
                text(d, &format!("{item}.display"), 200)?;
            }
            if let Some(dose) = &m.dose {
                if !dose.value.is_finite() || dose.value <= 0.0 {
                    return Err(DecodeError::InvalidValue {
                        path: format!("{item}.dose.value"),
                        rule: "must be a number greater than zero".into(),
                    });
                }
                code_text(&dose.unit, &format!("{item}.dose.unit"))?;
            }
        }
        Ok(())
    }

    fn demographics(d: &Demographics, base: &str, call_date: NaiveDate) -> Result {
        if let Some(n) = &d.nhs_number {
            nhs_number(n, &format!("{base}.nhs_number"))?;
        }
        let number_present = matches!(
            d.nhs_number_status,
            Some(NhsNumberStatus::Verified | NhsNumberStatus::NotTraced)
        );
        if number_present && d.nhs_number.is_none() {
            return Err(DecodeError::InvalidValue {
                path: format!("{base}.nhs_number_status"),
                rule: "codes 01 and 02 (number present) need nhs_number".into(),
            });
        }
        if let Some(name) = &d.given_name {
            text(name, &format!("{base}.given_name"), 100)?;
        }
        if let Some(name) = &d.family_name {
            text(name, &format!("{base}.family_name"), 100)?;
        }
        if let Some(born) = d.birth_date {
            if born > call_date {
                return Err(DecodeError::InvalidValue {
                    path: format!("{base}.birth_date"),
                    rule: "must not be after call_date".into(),
                });
            }
        }
        if let Some(pc) = &d.postcode {
            if !is_uk_postcode(pc) {
                return Err(DecodeError::InvalidValue {
                    path: format!("{base}.postcode"),
                    rule: "must be a full UK postcode in upper case, e.g. SW1A 1AA".into(),
                });
            }
        }
        Ok(())
    }

    fn conveyance(c: &Conveyance, base: &str, call_signs: &[String]) -> Result {
        match (&c.destination, c.outcome.is_conveyed()) {
            (None, true) => {
                return Err(DecodeError::MissingField {
                    path: format!("{base}.destination"),
                })
            }
            (Some(_), false) => {
                return Err(DecodeError::InvalidValue {
                    path: format!("{base}.destination"),
                    rule: "only allowed when the outcome is a conveyance".into(),
                })
            }
            (Some(dest), true) => {
                ods_site(&dest.ods_site, &format!("{base}.destination.ods_site"))?;
                if let Some(name) = &dest.name {
                    text(name, &format!("{base}.destination.name"), 200)?;
                }
            }
            (None, false) => {}
        }
        if let Some(by) = &c.conveyed_by {
            if !call_signs.iter().any(|cs| cs == by) {
                return Err(DecodeError::InconsistentReference {
                    path: format!("{base}.conveyed_by"),
                    rule: "not one of this patient contact's call_signs".into(),
                });
            }
        }
        Ok(())
    }

    fn ods_org(code: &str, path: &str) -> Result {
        if is_ods_code(code, 3, 5) {
            Ok(())
        } else {
            Err(DecodeError::InvalidOdsCode {
                path: path.into(),
                rule: "must be an ODS organisation code: 3 to 5 upper-case letters or digits"
                    .into(),
            })
        }
    }

    fn ods_site(code: &str, path: &str) -> Result {
        if is_ods_code(code, 3, 6) {
            Ok(())
        } else {
            Err(DecodeError::InvalidOdsCode {
                path: path.into(),
                rule: "must be an ODS site or organisation code: 3 to 6 upper-case letters or \
                       digits"
                    .into(),
            })
        }
    }

    fn nhs_number(n: &str, path: &str) -> Result {
        if !(n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DecodeError::InvalidNhsNumber {
                path: path.into(),
                rule: "must be exactly ten digits, no spaces".into(),
            });
        }
        if !is_valid_nhs_number(n) {
            return Err(DecodeError::InvalidNhsNumber {
                path: path.into(),
                rule: "fails the NHS number modulus-11 check".into(),
            });
        }
        Ok(())
    }

    fn snomed(code: &str, path: &str) -> Result {
        if !is_snomed_id(code) {
            return Err(DecodeError::InvalidCode {
                path: path.into(),
                rule: "must be a SNOMED CT concept id: 6 to 18 digits with a valid Verhoeff \
                       check digit"
                    .into(),
            });
        }
        Ok(())
    }

    /// Identifiers that end up in keys and resource paths: no separators, no spaces.
    fn identifier(id: &str, path: &str, max: usize) -> Result {
        let ok = !id.is_empty()
            && id.len() <= max
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                path: path.into(),
                rule: format!("must be 1 to {max} characters: letters, digits, '-', '_', '.', ':'"),
            })
        }
    }

    fn call_sign(cs: &str, path: &str) -> Result {
        let ok = !cs.is_empty()
            && cs.len() <= 20
            && !cs.starts_with(' ')
            && !cs.ends_with(' ')
            && cs
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b'/'));
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                path: path.into(),
                rule: "must be 1 to 20 characters: letters, digits, ' ', '-', '_', '/', not \
                       starting or ending with a space"
                    .into(),
            })
        }
    }

    /// Short codes from code lists we do not enumerate (disposition, SG/SD, stop code, units).
    fn code_text(code: &str, path: &str) -> Result {
        let ok = !code.is_empty()
            && code.len() <= 16
            && code.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'[' | b']')
            });
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                path: path.into(),
                rule: "must be a code of 1 to 16 characters: letters, digits, '-', '_', '.', \
                       '/', '[', ']'"
                    .into(),
            })
        }
    }

    /// Free text: non-blank, bounded, no control characters.
    fn text(s: &str, path: &str, max_chars: usize) -> Result {
        let ok = !s.trim().is_empty()
            && s.chars().count() <= max_chars
            && !s.chars().any(char::is_control);
        if ok {
            Ok(())
        } else {
            Err(DecodeError::InvalidValue {
                path: path.into(),
                rule: format!(
                    "must be 1 to {max_chars} characters, not blank, no control characters"
                ),
            })
        }
    }
}

/// An ODS code: `min..=max` upper-case ASCII letters or digits.
pub fn is_ods_code(code: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Ten digits whose tenth is the modulus-11 check digit of the first nine.
pub fn is_valid_nhs_number(n: &str) -> bool {
    let digits: Vec<u32> = n.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || n.len() != 10 {
        return false;
    }
    nhs_check_digit(&digits[..9]) == Some(digits[9])
}

/// The modulus-11 check digit of nine NHS number digits; `None` when the remainder makes the
/// number unusable (check value 10).
pub fn nhs_check_digit(first_nine: &[u32]) -> Option<u32> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check),
    }
}

/// A SNOMED CT identifier: 6 to 18 digits, no leading zero, valid Verhoeff check digit.
pub fn is_snomed_id(code: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if !(6..=18).contains(&code.len())
        || code.starts_with('0')
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let mut c = 0u8;
    for (i, b) in code.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

/// A full UK postcode in upper case, with or without the single space before the inward code:
/// `A9 9AA`, `A99 9AA`, `A9A 9AA`, `AA9 9AA`, `AA99 9AA`, `AA9A 9AA`.
pub fn is_uk_postcode(pc: &str) -> bool {
    let compact: Vec<u8> = match pc.split_once(' ') {
        Some((outward, inward)) if !inward.contains(' ') => {
            outward.bytes().chain(inward.bytes()).collect()
        }
        Some(_) => return false,
        None => pc.bytes().collect(),
    };
    if !(5..=7).contains(&compact.len()) {
        return false;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    if pc.contains(' ') && pc.split_once(' ').map(|(o, _)| o.len()) != Some(outward.len()) {
        return false;
    }
    let inward_ok = inward[0].is_ascii_digit()
        && inward[1].is_ascii_uppercase()
        && inward[2].is_ascii_uppercase();
    let outward_ok = match outward {
        [a, d] => a.is_ascii_uppercase() && d.is_ascii_digit(),
        [a, b, c] => {
            a.is_ascii_uppercase()
                && ((b.is_ascii_uppercase() && c.is_ascii_digit())
                    || (b.is_ascii_digit() && (c.is_ascii_digit() || c.is_ascii_uppercase())))
        }
        [a, b, c, d] => {
            a.is_ascii_uppercase()
                && b.is_ascii_uppercase()
                && c.is_ascii_digit()
                && (d.is_ascii_digit() || d.is_ascii_uppercase())
        }
        _ => false,
    };
    inward_ok && outward_ok
}

// ---------------------------------------------------------------------------------------------
// Timestamp and date (de)serialisation with value-free error messages
// ---------------------------------------------------------------------------------------------

/// Formats a UTC time as RFC 3339 with `Z` and only as many fraction digits as it has.
pub fn format_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

const RFC3339_RULE: &str = "expected an RFC 3339 date-time with offset, e.g. 2025-03-01T12:00:00Z";
const DATE_RULE: &str = "expected a calendar date YYYY-MM-DD, e.g. 2025-03-01";

fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    // chrono also accepts a space, `t` or `z`; the schema's pattern does not, so neither do we.
    if !has_rfc3339_shape(s.as_bytes()) {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the schema's `timestamp` pattern.
fn has_rfc3339_shape(b: &[u8]) -> bool {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shape_ok
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).ok_or_else(|| D::Error::custom(super::RFC3339_RULE))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_utc(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(super::super::RFC3339_RULE)),
            }
        }
    }
}

mod date {
    use chrono::NaiveDate;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format("%Y-%m-%d").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_date(&s).ok_or_else(|| D::Error::custom(super::DATE_RULE))
    }

    pub mod option {
        use chrono::NaiveDate;
        use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_date(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(super::super::DATE_RULE)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
