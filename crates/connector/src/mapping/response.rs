//! The response section: one vehicle Location per call sign, carrying the response's kind and
//! typed timestamps, and one receiving Location per distinct destination.
//!
//! **In:** the mapping context. **Out:** Bundle entries in `responses` order, then receiving
//! Locations in order of first appearance. Pure.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::codes::*;
use super::ctx::{concept, entry, typed_date_times, Ctx};
use crate::cad::{CadCall, ResponseTimes};

/// A response's times as `(DateTimeType code, time)`, in the order of the journey.
pub(super) fn response_times(t: &ResponseTimes) -> [(&'static str, Option<DateTime<Utc>>); 8] {
    [
        ("time-resource-mobilised", t.mobilised),
        ("time-resource-arrived-on-scene", t.arrived_on_scene),
        ("time-resource-left-scene", t.left_scene),
        (
            "time-arrived-receiving-location",
            t.arrived_receiving_location,
        ),
        ("time-patient-handover", t.patient_handover),
        ("time-clinical-handover", t.clinical_handover),
        ("time-stood-down", t.stood_down),
        ("time-clear", t.clear),
    ]
}

/// One AmbulanceResponseVehicle Location per response.
pub(super) fn vehicle_locations(cx: &Ctx<'_>) -> Vec<Value> {
    cx.call
        .responses
        .iter()
        .map(|r| {
            let path = format!("Location/vehicle/{}", r.call_sign);
            let (kind, kind_display) = resource_type(r.resource_type);
            let mut location = json!({
                "resourceType": "Location",
                "id": cx.id(&path),
                "identifier": [ { "system": CALL_SIGN_SYSTEM, "value": r.call_sign } ],
                "name": r.call_sign,
                "mode": "instance",
                "type": [
                    concept(ROLE_CODE_SYSTEM, "AMB", "Ambulance"),
                    cx.nhs_concept(RESPONSE_RESOURCE_TYPE_SYSTEM, kind, Some(kind_display)),
                ],
                "physicalType": concept(LOCATION_PHYSICAL_TYPE_SYSTEM, "ve", "Vehicle"),
                "managingOrganization": cx.provider(),
            });
            let times = typed_date_times(&response_times(&r.times));
            if !times.is_empty() {
                location["extension"] = Value::Array(times);
            }
            entry(cx.url(&path), location)
        })
        .collect()
}

/// One receiving Location per distinct destination site.
pub(super) fn receiving_locations(cx: &Ctx<'_>) -> Vec<Value> {
    destinations(cx.call)
        .into_iter()
        .map(|(ods_site, name)| {
            let path = format!("Location/receiving/{ods_site}");
            let mut location = json!({
                "resourceType": "Location",
                "id": cx.id(&path),
                "identifier": [ { "system": ODS_SITE_SYSTEM, "value": ods_site } ],
                "mode": "instance",
            });
            if let Some(name) = name {
                location["name"] = json!(name);
            }
            entry(cx.url(&path), location)
        })
        .collect()
}

/// Distinct destinations in order of first appearance, with the first name given for each.
pub(super) fn destinations(call: &CadCall) -> Vec<(&str, Option<&str>)> {
    let all: Vec<_> = call
        .patients
        .iter()
        .filter_map(|p| p.conveyance.as_ref()?.destination.as_ref())
        .collect();
    let mut seen = BTreeSet::new();
    all.iter()
        .filter(|d| seen.insert(d.ods_site.as_str()))
        .map(|d| {
            let name = all
                .iter()
                .filter(|other| other.ods_site == d.ods_site)
                .find_map(|other| other.name.as_deref());
            (d.ods_site.as_str(), name)
        })
        .collect()
}
