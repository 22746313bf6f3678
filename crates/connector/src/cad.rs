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
//! The model covers the three ADS sections (call, response, patient contact); `docs/mapping.md`
//! says where every field goes in FHIR. The JSON Schema is `schemas/cad.call.v1.schema.json` and
//! the field reference is `docs/cad.call.v1.md`; the decoder rejects everything the schema
//! rejects, plus the checks a schema cannot express (NHS number check digit, SNOMED CT check
//! digit, timestamp order, cross references).
//!
//! Layout: this file holds [`Problem`] and the call section of the model ([`CadCall`], its codes
//! and times); `cad/response.rs` the responses; `cad/contact.rs` the patient contacts;
//! `cad/clinical.rs` their clinical entries; `cad/decode.rs` (+ `cad/decode/`: the error type,
//! the shape checks) the decoder and [`DecodeError`]; `cad/rules.rs` (+ `cad/rules/formats.rs`:
//! ODS, NHS number, SNOMED, postcode formats) the rules beyond serde and the code checks;
//! `cad/time.rs` the timestamp and date formats.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
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
    pub schema: Text,
    /// When this snapshot was taken (RFC 3339, UTC). Of two snapshots of one call, the later
    /// one wins.
    #[serde(with = "time::rfc3339")]
    pub snapshot_at: DateTime<Utc>,
    /// ODS code of the ambulance service that provided the response (ADS1).
    pub provider_ods: Text,
    /// ODS code of the organisation submitting the data (ADS0); often the provider itself.
    pub submitter_ods: Text,
    /// The call identifier given by the control room (ADS3); unique per provider.
    pub call_id: Text,
    /// The date the call identifier was generated (ADS2A), `YYYY-MM-DD`.
    #[serde(with = "time::date")]
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
    pub cat1_early_prediction: Option<Text>,
    /// Why the call closed without a face-to-face response (ADS4), as the trust's stop code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<Text>,
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
    pub fn call_key(&self) -> Text {
        let mut key = Text::with_capacity(self.provider_ods.len() + 1 + self.call_id.len());
        key.push_str(&self.provider_ods);
        key.push('/');
        key.push_str(&self.call_id);
        key
    }

    /// Checks every rule of the contract that serde does not (codes, check digits, timestamp
    /// order, cross references). [`decode`] runs this; call it on calls built in code.
    pub fn validate(&self) -> Result<(), DecodeError> {
        rules::call(self)
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
    pub disposition_code: Text,
    /// Pathways symptom group (SG) code; Pathways only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_group: Option<Text>,
    /// Pathways symptom discriminator (SD) code; Pathways only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_discriminator: Option<Text>,
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
    #[serde(with = "time::rfc3339")]
    pub call_answered: DateTime<Utc>,
    /// The call ended (`time-call-ended`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_ended: Option<DateTime<Utc>>,
    /// The disposition code was established (`time-dispatch-code-established`; ADS21).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub dispatch_code_established: Option<DateTime<Utc>>,
    /// The AQI clock started (`clock-start-date-time`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_start: Option<DateTime<Utc>>,
    /// The AQI clock stopped (`clock-stop-date-time`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_stop: Option<DateTime<Utc>>,
}

mod clinical;
mod contact;
mod decode;
mod response;
mod rules;
mod time;

pub use clinical::{ClinicalCode, Dose, Medication, Observation, ObservationKind};
pub use contact::{
    Conveyance, ConveyanceOutcome, Demographics, Destination, Gender, NhsNumberStatus,
    PatientContact,
};
pub use decode::{decode, DecodeError, DecodeErrorKind};
pub use response::{ResourceType, Response, ResponseTimes};
pub use rules::{is_ods_code, is_snomed_id, is_uk_postcode, is_valid_nhs_number, nhs_check_digit};
pub use time::{format_utc, utc_text, UtcText};

/// The text of a decoded call: ids, codes, call signs and names. Up to 24 bytes (nearly every
/// one of them) is held inline, so decoding a call makes no allocation per string; it reads as
/// a `&str` and is made from one with `.into()`.
pub type Text = compact_str::CompactString;

#[cfg(test)]
mod tests;
