//! The response section of `cad.call.v1`: one [`Response`] per responding resource, keyed by
//! call sign, with its [`ResourceType`] and typed [`ResponseTimes`]. Model only: the order and
//! cross-reference rules are in `cad/rules.rs`. No patient data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{time, Text};

/// One responding resource (ADS response section). Call signs are unique within a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The resource's call sign.
    pub call_sign: Text,
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
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub mobilised: Option<DateTime<Utc>>,
    /// Arrived at the incident (`time-resource-arrived-on-scene`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrived_on_scene: Option<DateTime<Utc>>,
    /// Left the incident to convey (`time-resource-left-scene`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub left_scene: Option<DateTime<Utc>>,
    /// Arrived at the receiving location (`time-arrived-receiving-location`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrived_receiving_location: Option<DateTime<Utc>>,
    /// Patient handed over (`time-patient-handover`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub patient_handover: Option<DateTime<Utc>>,
    /// Clinical responsibility handed over (`time-clinical-handover`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clinical_handover: Option<DateTime<Utc>>,
    /// Clear and available for another call (`time-clear`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub clear: Option<DateTime<Utc>>,
    /// Stood down while travelling (`time-stood-down`).
    #[serde(
        default,
        with = "time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub stood_down: Option<DateTime<Utc>>,
}
