//! The patient contact section: one Encounter and one Patient per patient contact.
//!
//! **In:** the mapping context and one contact. **Out:** the Encounter (patient response
//! details as typed timestamps, attending vehicles, conveyance outcome and destination, links
//! to the contact's Conditions) and the Patient (demographics, NHS number and its verification
//! status). Pure.

use super::clinical::item_url;
use super::codes::*;
use super::ctx::{concept, entry, typed_date_times, Ctx, CODE_SYSTEM_STYLES};
use super::node::{frozen, key, node, FrozenSet, Node};
use super::response::response_times;
use crate::cad::{PatientContact, Response};

/// The frozen conveyance outcome concepts ([`Ctx::nhs_concept_frozen`]): room for 16 outcomes per
/// code system style.
static CONVEYANCE_OUTCOME: FrozenSet<{ 16 * CODE_SYSTEM_STYLES }> = FrozenSet::new();

/// The response whose times are a contact's patient response details: the one that conveyed
/// the patient, or else the lead (first) attending response.
pub(super) fn patient_response<'a>(cx: &Ctx<'a>, p: &PatientContact) -> Option<&'a Response> {
    let attending = || {
        p.call_signs
            .iter()
            .filter_map(|cs| cx.call.responses.iter().find(|r| r.call_sign == *cs))
    };
    let conveyed_by = p.conveyance.as_ref().and_then(|c| c.conveyed_by.as_ref());
    conveyed_by
        .and_then(|cs| attending().find(|r| r.call_sign == *cs))
        .or_else(|| attending().next())
}

/// The call is closed: its call-ended time is known, and either every response is clear or
/// stood down, or no vehicle was sent and the call has its stop code (ADS4: closed without a
/// face-to-face response). A call that ended but waits for a vehicle is still open.
pub(super) fn call_closed(call: &crate::cad::CadCall) -> bool {
    let responses_done = if call.responses.is_empty() {
        call.stop_code.is_some()
    } else {
        call.responses
            .iter()
            .all(|r| r.times.clear.is_some() || r.times.stood_down.is_some())
    };
    call.times.call_ended.is_some() && responses_done
}

/// The Encounter entry of one patient contact.
pub(super) fn encounter<'a>(cx: &Ctx<'a>, p: &'a PatientContact) -> Node<'a> {
    let attending: Vec<&'a Response> = p
        .call_signs
        .iter()
        .filter_map(|cs| cx.call.responses.iter().find(|r| r.call_sign == *cs))
        .collect();
    // Finished when every attending response is done; a contact no vehicle attended (hear and
    // treat) when the call is closed (`encounter_open_after_call_closed`).
    let finished = if attending.is_empty() {
        call_closed(cx.call)
    } else {
        attending
            .iter()
            .all(|r| r.times.clear.is_some() || r.times.stood_down.is_some())
    };
    let on_scene = attending.iter().any(|r| r.times.arrived_on_scene.is_some());
    let status = if finished {
        "finished"
    } else if on_scene {
        "in-progress"
    } else {
        "planned"
    };
    let mut e = node!({
        "resourceType": "Encounter",
        "status": status,
        "class": { "system": ACT_CODE_SYSTEM, "code": "FLD", "display": "field" },
        "subject": cx.reference(&["Patient/", &p.contact_id]),
        "serviceProvider": cx.provider(),
    });

    // Patient response details: the times of the response that conveyed the patient, or else
    // of the lead (first) attending response.
    if let Some(r) = patient_response(cx, p) {
        let times = typed_date_times(&response_times(&r.times));
        if !times.is_empty() {
            e.set(key!("extension"), times);
        }
    }

    let mut period = node!({});
    if let Some(start) = attending
        .iter()
        .filter_map(|r| r.times.arrived_on_scene)
        .min()
    {
        period.set(key!("start"), start);
    }
    if finished {
        let end = attending
            .iter()
            .filter_map(|r| r.times.clear.or(r.times.stood_down))
            .max();
        if let Some(end) = end {
            period.set(key!("end"), end);
        }
    }
    if period != node!({}) {
        e.set(key!("period"), period);
    }

    if !attending.is_empty() {
        e.set(
            key!("location"),
            attending
                .iter()
                .map(|r| vehicle_stay(cx, r))
                .collect::<Vec<_>>(),
        );
    }

    if let Some(conveyance) = &p.conveyance {
        let (code, display) = conveyance_outcome(conveyance.outcome);
        let mut h = node!({
            "dischargeDisposition":
                cx.nhs_concept_frozen(
                    &CONVEYANCE_OUTCOME,
                    conveyance.outcome as usize,
                    CONVEYANCE_OUTCOME_SYSTEM,
                    code,
                    Some(display),
                ),
        });
        if let Some(dest) = &conveyance.destination {
            h.set(
                key!("destination"),
                cx.reference(&["Location/receiving/", &dest.ods_site]),
            );
        }
        e.set(key!("hospitalization"), h);
    }

    let conditions: Vec<Node<'a>> = (0..p.diagnoses.len())
        .map(|i| ("diagnoses", i))
        .chain((0..p.injuries.len()).map(|i| ("injuries", i)))
        .map(|(list, i)| {
            let url = item_url(cx, "Condition", &p.contact_id, list, i);
            node!({ "condition": { "reference": url } })
        })
        .collect();
    if !conditions.is_empty() {
        e.set(key!("diagnosis"), conditions);
    }
    entry(cx.url(&["Encounter/", &p.contact_id]), e)
}

/// One `Encounter.location`: the vehicle, its status and its time with the patient.
pub(super) fn vehicle_stay<'a>(cx: &Ctx<'a>, r: &Response) -> Node<'a> {
    let t = &r.times;
    let left = t.left_scene.or(t.clear).or(t.stood_down);
    let status = if left.is_some() {
        "completed"
    } else if t.arrived_on_scene.is_some() {
        "active"
    } else {
        "planned"
    };
    let mut stay = node!({
        "location": cx.reference(&["Location/vehicle/", &r.call_sign]),
        "status": status,
    });
    let mut period = node!({});
    if let Some(start) = t.arrived_on_scene {
        period.set(key!("start"), start);
    }
    // A stand-down can be recorded without the arrival it cancelled: keep start ≤ end.
    if let Some(end) = left.filter(|end| t.arrived_on_scene.is_none_or(|s| s <= *end)) {
        period.set(key!("end"), end);
    }
    if period != node!({}) {
        stay.set(key!("period"), period);
    }
    stay
}

/// The Patient entry of one patient contact.
pub(super) fn patient<'a>(cx: &Ctx<'a>, p: &'a PatientContact) -> Node<'a> {
    let d = &p.demographics;
    let mut patient = node!({ "resourceType": "Patient" });
    match &d.nhs_number {
        Some(n) => {
            let mut identifier = node!({ "system": NHS_NUMBER_SYSTEM, "value": n });
            if let Some(status) = d.nhs_number_status {
                identifier.set(
                    key!("extension"),
                    node!([ {
                        "url": EXT_NHS_NUMBER_VERIFICATION,
                        "valueCodeableConcept":
                            concept(NHS_NUMBER_VERIFICATION_SYSTEM, status.code(), status.display()),
                    } ]),
                );
            }
            patient.set(key!("identifier"), vec![identifier]);
        }
        // UK Core's way to say a number is absent: no NHS-number identifier (its value is 1..1
        // in UKCore-Patient) and the reason on the Patient. The CAD's trace status of a
        // missing number (`03`–`08`) has no place in UK Core without a number (the
        // verification-status extension sits only on an identifier): see docs/mapping.md.
        None => {
            patient.set(
                key!("extension"),
                node!([ {
                    "url": EXT_NHS_NUMBER_UNAVAILABLE_REASON,
                    "valueCodeableConcept": frozen!(concept(
                        NHS_NUMBER_UNAVAILABLE_REASON_SYSTEM,
                        "nhs-number-not-known",
                        "NHS number not known",
                    )),
                } ]),
            );
        }
    }
    if d.given_name.is_some() || d.family_name.is_some() {
        let mut name = node!({});
        if let Some(family) = &d.family_name {
            name.set(key!("family"), family);
        }
        if let Some(given) = &d.given_name {
            name.set(key!("given"), node!([given]));
        }
        patient.set(key!("name"), vec![name]);
    }
    if let Some(g) = d.gender {
        patient.set(key!("gender"), g.code());
    }
    if let Some(born) = d.birth_date {
        patient.set(key!("birthDate"), born);
    }
    if let Some(pc) = &d.postcode {
        patient.set(key!("address"), node!([ { "postalCode": pc } ]));
    }
    entry(cx.url(&["Patient/", &p.contact_id]), patient)
}
