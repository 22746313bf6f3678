//! The patient contact section of `cad.call.v1`: [`PatientContact`] with its demographics, NHS
//! number verification status, gender and conveyance. Model only: the code and order rules are
//! in `cad/rules.rs`. `Debug` of every type that can carry patient data is redacted.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{time, ClinicalCode, Medication, Observation, Text};

/// One patient contact (ADS patient contact section). `Debug` shows only `contact_id`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientContact {
    /// The contact's identifier within the call, stable across snapshots (e.g. `"1"`).
    pub contact_id: Text,
    /// Call signs (from `responses`) that attended this patient; the first is the lead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_signs: Vec<Text>,
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
    pub nhs_number: Option<Text>,
    /// How far the NHS number was verified: a UK Core `NHSNumberVerificationStatusEngland`
    /// code, `01` … `08`; `01` and `02` ("number present") need `nhs_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_number_status: Option<NhsNumberStatus>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<Text>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<Text>,
    /// Date of birth, `YYYY-MM-DD`, not after `call_date`.
    #[serde(
        default,
        with = "time::date::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub birth_date: Option<NaiveDate>,
    /// Administrative gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// Postcode of usual address, upper case (e.g. `LS9 7TF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<Text>,
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
    pub conveyed_by: Option<Text>,
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
    pub ods_site: Text,
    /// The site's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
}
