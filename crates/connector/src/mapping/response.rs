//! The response section: one vehicle Location per call sign (its identifier and kind), the
//! Encounters that carry each response's typed timestamps, and one receiving Location per
//! distinct destination.
//!
//! UK Core allows `Extension-UKCore-TypedDateTime` on Encounter, Communication, Organization and
//! OrganizationAffiliation only, so response times never sit on a Location. Each response's
//! times are on an Encounter that names its vehicle in `Encounter.location`: the patient
//! contact's own Encounter for the vehicle whose times are its patient response details, a
//! vehicle Encounter (`partOf` that contact, same patient) for each other vehicle attending the
//! patient, and a response Encounter (no patient) for a vehicle that attended no one.
//!
//! **In:** the mapping context. **Out:** Bundle entries in `responses` order, then receiving
//! Locations in order of first appearance. Pure.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::codes::*;
use super::contact::{patient_response, vehicle_stay};
use super::ctx::{concept, entry, typed_date_times, Ctx, CODE_SYSTEM_STYLES};
use super::node::{frozen, key, node, FrozenSet, Node, Uid};
use crate::cad::{CadCall, Response, ResponseTimes};

/// The frozen response resource type concepts ([`Ctx::nhs_concept_frozen`]): room for 16 types per
/// code system style.
static RESOURCE_TYPE: FrozenSet<{ 16 * CODE_SYSTEM_STYLES }> = FrozenSet::new();

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
pub(super) fn vehicle_locations<'a>(cx: &Ctx<'a>) -> Vec<Node<'a>> {
    cx.call
        .responses
        .iter()
        .map(|r| {
            let url = cx.url(&["Location/vehicle/", &r.call_sign]);
            let (kind, kind_display) = resource_type(r.resource_type);
            let location = node!({
                "resourceType": "Location",
                "identifier": [ { "system": CALL_SIGN_SYSTEM, "value": &r.call_sign } ],
                "name": &r.call_sign,
                "mode": "instance",
                "type": [
                    frozen!(concept(ROLE_CODE_SYSTEM, "AMB", "Ambulance")),
                    cx.nhs_concept_frozen(
                        &RESOURCE_TYPE,
                        r.resource_type as usize,
                        RESPONSE_RESOURCE_TYPE_SYSTEM,
                        kind,
                        Some(kind_display),
                    ),
                ],
                "physicalType": frozen!(concept(LOCATION_PHYSICAL_TYPE_SYSTEM, "ve", "Vehicle")),
                "managingOrganization": cx.provider(),
            });
            entry(url, location)
        })
        .collect()
}

/// An Encounter that carries one response's times besides a patient contact's own.
pub(super) struct VehicleEncounter<'a> {
    /// Full URL (the id of the resource path `Encounter/response/<call sign>` or
    /// `Encounter/<contact id>/vehicle/<call sign>`).
    pub(super) url: Uid,
    /// The response whose times it carries.
    pub(super) response: &'a Response,
    /// The contact whose patient the vehicle attended (another vehicle's times are that
    /// contact's patient response details); `None` for a response that attended no patient.
    pub(super) contact_id: Option<&'a str>,
}

/// The vehicle and response Encounters of a call, in `responses` order (and, for one vehicle,
/// in patient order). Computed once per call: the Communication lists the responses that
/// attended no one, and [`vehicle_encounters`] builds them all.
pub(super) fn vehicle_encounter_plan<'a>(cx: &Ctx<'a>) -> Vec<VehicleEncounter<'a>> {
    let mut out = Vec::new();
    for r in &cx.call.responses {
        let attended: Vec<_> = cx
            .call
            .patients
            .iter()
            .filter(|p| p.call_signs.contains(&r.call_sign))
            .collect();
        if attended.is_empty() {
            out.push(VehicleEncounter {
                url: cx.url(&["Encounter/response/", &r.call_sign]),
                response: r,
                contact_id: None,
            });
        }
        for p in attended {
            let primary = patient_response(cx, p).is_some_and(|pr| pr.call_sign == r.call_sign);
            if !primary {
                out.push(VehicleEncounter {
                    url: cx.url(&["Encounter/", &p.contact_id, "/vehicle/", &r.call_sign]),
                    response: r,
                    contact_id: Some(&p.contact_id),
                });
            }
        }
    }
    out
}

/// One Encounter per entry of the plan; see the module header.
pub(super) fn vehicle_encounters<'a>(cx: &Ctx<'a>, plan: &[VehicleEncounter<'_>]) -> Vec<Node<'a>> {
    plan.iter()
        .map(
            |VehicleEncounter {
                 url,
                 response: r,
                 contact_id,
             }| {
                let t = &r.times;
                let status = if t.stood_down.is_some() && t.arrived_on_scene.is_none() {
                    "cancelled"
                } else if t.clear.is_some() || t.stood_down.is_some() {
                    "finished"
                } else if t.arrived_on_scene.is_some() {
                    "in-progress"
                } else {
                    "planned"
                };
                let mut e = node!({
                    "resourceType": "Encounter",
                    "status": status,
                    "class": { "system": ACT_CODE_SYSTEM, "code": "FLD", "display": "field" },
                    "serviceProvider": cx.provider(),
                    "location": [ vehicle_stay(cx, r) ],
                });
                if let Some(contact_id) = contact_id {
                    e.set(key!("subject"), cx.reference(&["Patient/", contact_id]));
                    e.set(key!("partOf"), cx.reference(&["Encounter/", contact_id]));
                }
                let times = typed_date_times(&response_times(t));
                if !times.is_empty() {
                    e.set(key!("extension"), times);
                }
                entry(*url, e)
            },
        )
        .collect()
}

/// One receiving Location per distinct destination site.
pub(super) fn receiving_locations<'a>(cx: &Ctx<'a>) -> Vec<Node<'a>> {
    destinations(cx.call)
        .into_iter()
        .map(|(ods_site, name)| {
            let url = cx.url(&["Location/receiving/", ods_site]);
            let mut location = node!({
                "resourceType": "Location",
                "identifier": [ { "system": ODS_SITE_SYSTEM, "value": ods_site } ],
                "mode": "instance",
            });
            if let Some(name) = name {
                location.set(key!("name"), name);
            }
            entry(url, location)
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
