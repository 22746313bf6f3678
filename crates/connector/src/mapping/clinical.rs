//! The clinical items of a patient contact: Observations (vital signs and scores, LOINC and
//! SNOMED CT codes, UCUM units), Conditions (diagnoses and injuries), Procedures,
//! MedicationAdministrations, Flags (safeguarding) and social-history Observations (public
//! health).
//!
//! **In:** the mapping context and one contact. **Out:** Bundle entries in contract order:
//! observations, diagnoses, injuries, procedures, medications, safeguarding, public health.
//! Each resource's path is `<Type>/<contact_id>/<list>/<index>`, so an item keeps its id as
//! long as the producer only appends to its list. Pure.

use super::codes::*;
use super::ctx::{concept, concept_of, entry, quantity, Ctx};
use super::node::{frozen, key, node, FrozenSet, Node, Uid};
use crate::cad::{ClinicalCode, Observation, ObservationKind, PatientContact};

/// Every clinical entry of one contact.
pub(super) fn entries<'a>(cx: &Ctx<'a>, p: &'a PatientContact) -> Vec<Node<'a>> {
    let mut out = observations(cx, p);
    let subject = Subject::of(cx, p);
    for (list, items) in [("diagnoses", &p.diagnoses), ("injuries", &p.injuries)] {
        for (i, item) in items.iter().enumerate() {
            out.push(condition(cx, &subject, list, i, item));
        }
    }
    for (i, item) in p.procedures.iter().enumerate() {
        let url = subject.url(cx, "Procedure", "procedures", i);
        let mut r = node!({
            "resourceType": "Procedure",
            "status": "completed",
            "code": snomed(item),
            "subject": subject.patient.clone(),
            "encounter": subject.encounter.clone(),
        });
        if let Some(at) = item.recorded_at {
            r.set(key!("performedDateTime"), at);
        }
        out.push(entry(url, r));
    }
    for (i, m) in p.medications.iter().enumerate() {
        let url = subject.url(cx, "MedicationAdministration", "medications", i);
        let mut r = node!({
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": snomed_concept(&m.snomed, m.display.as_deref()),
            "subject": subject.patient.clone(),
            "context": subject.encounter.clone(),
        });
        match m.administered_at {
            Some(at) => r.set(key!("effectiveDateTime"), at),
            // effective[x] is 1..1 in FHIR R4: say that the time is unknown.
            None => r.set(key!("_effectiveDateTime"), data_absent("unknown")),
        }
        if let Some(dose) = &m.dose {
            r.set(
                key!("dosage"),
                node!({ "dose": quantity(dose.value, &dose.unit, &dose.unit) }),
            );
        }
        out.push(entry(url, r));
    }
    for (i, item) in p.safeguarding.iter().enumerate() {
        let url = subject.url(cx, "Flag", "safeguarding", i);
        let mut r = node!({
            "resourceType": "Flag",
            "status": "active",
            "category": [ frozen!(concept(FLAG_CATEGORY_SYSTEM, "safety", "Safety")) ],
            "code": snomed(item),
            "subject": subject.patient.clone(),
            "encounter": subject.encounter.clone(),
        });
        if let Some(at) = item.recorded_at {
            r.set(key!("period"), node!({ "start": at }));
        }
        out.push(entry(url, r));
    }
    for (i, item) in p.public_health.iter().enumerate() {
        let url = subject.url(cx, "Observation", "public_health", i);
        let mut r = node!({
            "resourceType": "Observation",
            "status": "final",
            "category": [
                frozen!(concept(OBSERVATION_CATEGORY_SYSTEM, "social-history", "Social History")),
            ],
            "code": snomed(item),
            "subject": subject.patient.clone(),
            "encounter": subject.encounter.clone(),
        });
        if let Some(at) = item.recorded_at {
            r.set(key!("effectiveDateTime"), at);
        }
        out.push(entry(url, r));
    }
    out
}

/// The Patient and Encounter references every clinical resource carries.
struct Subject<'a> {
    contact_id: &'a str,
    patient: Node<'a>,
    encounter: Node<'a>,
}

impl<'a> Subject<'a> {
    fn of(cx: &Ctx<'a>, p: &'a PatientContact) -> Self {
        Subject {
            contact_id: &p.contact_id,
            patient: cx.reference(&["Patient/", &p.contact_id]),
            encounter: cx.reference(&["Encounter/", &p.contact_id]),
        }
    }

    fn url(&self, cx: &Ctx<'a>, resource: &str, list: &str, index: usize) -> Uid {
        item_url(cx, resource, self.contact_id, list, index)
    }
}

/// The full URL of item `index` of a contact's `list`, a `resource`: the id of the path
/// `resource/contact_id/list/index`, hashed from its parts (no text made for it). The one
/// spelling of that path, for the resource's entry and for every reference to it.
pub(super) fn item_url(
    cx: &Ctx<'_>,
    resource: &str,
    contact_id: &str,
    list: &str,
    index: usize,
) -> Uid {
    let mut digits = itoa::Buffer::new();
    cx.url(&[
        resource,
        "/",
        contact_id,
        "/",
        list,
        "/",
        digits.format(index),
    ])
}

fn condition<'a>(
    cx: &Ctx<'a>,
    subject: &Subject<'a>,
    list: &str,
    index: usize,
    item: &'a ClinicalCode,
) -> Node<'a> {
    let url = subject.url(cx, "Condition", list, index);
    let mut category = vec![frozen!(concept(
        CONDITION_CATEGORY_SYSTEM,
        "encounter-diagnosis",
        "Encounter Diagnosis",
    ))];
    if list == "injuries" {
        category.push(frozen!(concept(
            SNOMED_SYSTEM,
            TRAUMATIC_INJURY.0,
            TRAUMATIC_INJURY.1,
        )));
    }
    let mut r = node!({
        "resourceType": "Condition",
        "clinicalStatus": frozen!(concept(CONDITION_CLINICAL_SYSTEM, "active", "Active")),
        "category": category,
        "code": snomed(item),
        "subject": subject.patient.clone(),
        "encounter": subject.encounter.clone(),
    });
    if let Some(at) = item.recorded_at {
        r.set(key!("recordedDate"), at);
    }
    entry(url, r)
}

/// Vital signs and scores. A systolic and a diastolic pressure taken at the same instant
/// become one blood-pressure panel (as the FHIR vital-signs profile models it), under the
/// systolic reading's path; every other reading is an Observation of its own.
fn observations<'a>(cx: &Ctx<'a>, p: &'a PatientContact) -> Vec<Node<'a>> {
    let subject = Subject::of(cx, p);
    let obs = &p.observations;
    let mut paired = vec![false; obs.len()];
    let mut out = Vec::new();
    for (i, o) in obs.iter().enumerate() {
        if paired[i] {
            continue;
        }
        let url = subject.url(cx, "Observation", "observations", i);
        let partner = (o.kind == ObservationKind::SystolicBloodPressure)
            .then(|| {
                (i + 1..obs.len()).find(|&j| {
                    !paired[j]
                        && obs[j].kind == ObservationKind::DiastolicBloodPressure
                        && obs[j].taken_at == o.taken_at
                })
            })
            .flatten();
        let mut r = node!({
            "resourceType": "Observation",
            "status": "final",
            "subject": subject.patient.clone(),
            "encounter": subject.encounter.clone(),
            "effectiveDateTime": o.taken_at,
        });
        match partner {
            Some(j) => {
                paired[j] = true;
                r.set(key!("category"), vec![category(o.kind)]);
                r.set(key!("code"), frozen!(concept_of(BLOOD_PRESSURE_PANEL)));
                r.set(key!("component"), vec![component(o), component(&obs[j])]);
            }
            None => {
                let coding = observation(o.kind);
                r.set(key!("category"), vec![category(o.kind)]);
                r.set(key!("code"), observation_code(o.kind));
                r.set(
                    key!("valueQuantity"),
                    quantity(o.value, coding.unit_display, o.kind.unit()),
                );
            }
        }
        out.push(entry(url, r));
    }
    out
}

fn category(kind: ObservationKind) -> Node<'static> {
    let category = observation(kind).category;
    if category == VITAL_SIGNS {
        frozen!(concept(
            OBSERVATION_CATEGORY_SYSTEM,
            VITAL_SIGNS.0,
            VITAL_SIGNS.1
        ))
    } else if category == SURVEY {
        frozen!(concept(OBSERVATION_CATEGORY_SYSTEM, SURVEY.0, SURVEY.1))
    } else {
        concept(OBSERVATION_CATEGORY_SYSTEM, category.0, category.1)
    }
}

/// An Observation's `code` for its kind, frozen (one per kind; room for 32 kinds).
fn observation_code(kind: ObservationKind) -> Node<'static> {
    static CODES: FrozenSet<32> = FrozenSet::new();
    CODES.get(kind as usize, || concept_of(observation(kind).codings))
}

fn component(o: &Observation) -> Node<'static> {
    let coding = observation(o.kind);
    node!({
        "code": observation_code(o.kind),
        "valueQuantity": quantity(o.value, coding.unit_display, o.kind.unit()),
    })
}

fn snomed(item: &ClinicalCode) -> Node<'_> {
    snomed_concept(&item.snomed, item.display.as_deref())
}

fn snomed_concept<'a>(code: &'a str, display: Option<&'a str>) -> Node<'a> {
    let mut coding = node!({ "system": SNOMED_SYSTEM, "code": code });
    if let Some(display) = display {
        coding.set(key!("display"), display);
    }
    node!({ "coding": [coding] })
}

fn data_absent(reason: &str) -> Node<'_> {
    node!({ "extension": [ { "url": EXT_DATA_ABSENT_REASON, "valueCode": reason } ] })
}
