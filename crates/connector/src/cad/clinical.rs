//! The clinical entries of a patient contact: observations with their fixed units and plausible
//! ranges, SNOMED CT coded entries, and medications with their doses. Model only: the code and
//! range rules are in `cad/rules.rs`. `Debug` of every type that can carry patient data is
//! redacted.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{time, Text};

/// One observation. `Debug` is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// What was measured; fixes the unit.
    pub kind: ObservationKind,
    /// The measured value, in the kind's unit.
    pub value: f64,
    /// When it was taken.
    #[serde(with = "time::rfc3339")]
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
    pub snomed: Text,
    /// The concept's display term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Text>,
    /// When it was recorded or performed.
    #[serde(
        default,
        with = "time::rfc3339::option",
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
    pub snomed: Text,
    /// The concept's display term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Text>,
    /// The dose given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<Dose>,
    /// When it was given.
    #[serde(
        default,
        with = "time::rfc3339::option",
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
    pub unit: Text,
}
