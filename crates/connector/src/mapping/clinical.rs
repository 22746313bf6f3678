//! The clinical items of a patient contact: Observations (vital signs and scores, LOINC and
//! SNOMED CT codes, UCUM units), Conditions (diagnoses and injuries), Procedures,
//! MedicationAdministrations, Flags (safeguarding) and social-history Observations (public
//! health).
//!
//! **In:** the mapping context and one contact. **Out:** Bundle entries in contract order:
//! observations, diagnoses, injuries, procedures, medications, safeguarding, public health.
//! Each resource's path is `<Type>/<contact_id>/<list>/<index>`, so an item keeps its id as
//! long as the producer only appends to its list. Pure.

use serde_json::{json, Value};

use super::codes::*;
use super::ctx::{concept, concept_of, entry, quantity, Ctx};
use crate::cad::{format_utc, ClinicalCode, Observation, ObservationKind, PatientContact};

/// Every clinical entry of one contact.
pub(super) fn entries(cx: &Ctx<'_>, p: &PatientContact) -> Vec<Value> {
    let mut out = observations(cx, p);
    let subject = Subject::of(cx, p);
    for (list, items) in [("diagnoses", &p.diagnoses), ("injuries", &p.injuries)] {
        for (i, item) in items.iter().enumerate() {
            out.push(condition(cx, &subject, list, i, item));
        }
    }
    for (i, item) in p.procedures.iter().enumerate() {
        let path = subject.path("Procedure", "procedures", i);
        let mut r = json!({
            "resourceType": "Procedure",
            "id": cx.id(&path),
            "status": "completed",
            "code": snomed(item),
            "subject": subject.patient,
            "encounter": subject.encounter,
        });
        if let Some(at) = item.recorded_at {
            r["performedDateTime"] = json!(format_utc(&at));
        }
        out.push(entry(cx.url(&path), r));
    }
    for (i, m) in p.medications.iter().enumerate() {
        let path = subject.path("MedicationAdministration", "medications", i);
        let mut r = json!({
            "resourceType": "MedicationAdministration",
            "id": cx.id(&path),
            "status": "completed",
            "medicationCodeableConcept": snomed_concept(&m.snomed, m.display.as_deref()),
            "subject": subject.patient,
            "context": subject.encounter,
        });
        match m.administered_at {
            Some(at) => r["effectiveDateTime"] = json!(format_utc(&at)),
            // effective[x] is 1..1 in FHIR R4: say that the time is unknown.
            None => r["_effectiveDateTime"] = data_absent("unknown"),
        }
        if let Some(dose) = &m.dose {
            r["dosage"] = json!({ "dose": quantity(dose.value, &dose.unit, &dose.unit) });
        }
        out.push(entry(cx.url(&path), r));
    }
    for (i, item) in p.safeguarding.iter().enumerate() {
        let path = subject.path("Flag", "safeguarding", i);
        let mut r = json!({
            "resourceType": "Flag",
            "id": cx.id(&path),
            "status": "active",
            "category": [ concept(FLAG_CATEGORY_SYSTEM, "safety", "Safety") ],
            "code": snomed(item),
            "subject": subject.patient,
            "encounter": subject.encounter,
        });
        if let Some(at) = item.recorded_at {
            r["period"] = json!({ "start": format_utc(&at) });
        }
        out.push(entry(cx.url(&path), r));
    }
    for (i, item) in p.public_health.iter().enumerate() {
        let path = subject.path("Observation", "public_health", i);
        let mut r = json!({
            "resourceType": "Observation",
            "id": cx.id(&path),
            "status": "final",
            "category": [
                concept(OBSERVATION_CATEGORY_SYSTEM, "social-history", "Social History"),
            ],
            "code": snomed(item),
            "subject": subject.patient,
            "encounter": subject.encounter,
        });
        if let Some(at) = item.recorded_at {
            r["effectiveDateTime"] = json!(format_utc(&at));
        }
        out.push(entry(cx.url(&path), r));
    }
    out
}

/// The Patient and Encounter references every clinical resource carries.
struct Subject {
    contact_id: String,
    patient: Value,
    encounter: Value,
}

impl Subject {
    fn of(cx: &Ctx<'_>, p: &PatientContact) -> Self {
        Subject {
            contact_id: p.contact_id.clone(),
            patient: cx.reference(&format!("Patient/{}", p.contact_id)),
            encounter: cx.reference(&format!("Encounter/{}", p.contact_id)),
        }
    }

    fn path(&self, resource: &str, list: &str, index: usize) -> String {
        format!("{resource}/{}/{list}/{index}", self.contact_id)
    }
}

fn condition(
    cx: &Ctx<'_>,
    subject: &Subject,
    list: &str,
    index: usize,
    item: &ClinicalCode,
) -> Value {
    let path = subject.path("Condition", list, index);
    let mut category = vec![concept(
        CONDITION_CATEGORY_SYSTEM,
        "encounter-diagnosis",
        "Encounter Diagnosis",
    )];
    if list == "injuries" {
        category.push(concept(
            SNOMED_SYSTEM,
            TRAUMATIC_INJURY.0,
            TRAUMATIC_INJURY.1,
        ));
    }
    let mut r = json!({
        "resourceType": "Condition",
        "id": cx.id(&path),
        "clinicalStatus": concept(CONDITION_CLINICAL_SYSTEM, "active", "Active"),
        "category": category,
        "code": snomed(item),
        "subject": subject.patient,
        "encounter": subject.encounter,
    });
    if let Some(at) = item.recorded_at {
        r["recordedDate"] = json!(format_utc(&at));
    }
    entry(cx.url(&path), r)
}

/// Vital signs and scores. A systolic and a diastolic pressure taken at the same instant
/// become one blood-pressure panel (as the FHIR vital-signs profile models it), under the
/// systolic reading's path; every other reading is an Observation of its own.
fn observations(cx: &Ctx<'_>, p: &PatientContact) -> Vec<Value> {
    let subject = Subject::of(cx, p);
    let obs = &p.observations;
    let mut paired = vec![false; obs.len()];
    let mut out = Vec::new();
    for (i, o) in obs.iter().enumerate() {
        if paired[i] {
            continue;
        }
        let path = subject.path("Observation", "observations", i);
        let partner = (o.kind == ObservationKind::SystolicBloodPressure)
            .then(|| {
                (i + 1..obs.len()).find(|&j| {
                    !paired[j]
                        && obs[j].kind == ObservationKind::DiastolicBloodPressure
                        && obs[j].taken_at == o.taken_at
                })
            })
            .flatten();
        let mut r = json!({
            "resourceType": "Observation",
            "id": cx.id(&path),
            "status": "final",
            "subject": subject.patient,
            "encounter": subject.encounter,
            "effectiveDateTime": format_utc(&o.taken_at),
        });
        match partner {
            Some(j) => {
                paired[j] = true;
                r["category"] = Value::Array(vec![category(o.kind)]);
                r["code"] = concept_of(BLOOD_PRESSURE_PANEL);
                r["component"] = Value::Array(vec![component(o), component(&obs[j])]);
            }
            None => {
                let coding = observation(o.kind);
                r["category"] = Value::Array(vec![category(o.kind)]);
                r["code"] = concept_of(coding.codings);
                r["valueQuantity"] = quantity(o.value, coding.unit_display, o.kind.unit());
            }
        }
        out.push(entry(cx.url(&path), r));
    }
    out
}

fn category(kind: ObservationKind) -> Value {
    let (code, display) = observation(kind).category;
    concept(OBSERVATION_CATEGORY_SYSTEM, code, display)
}

fn component(o: &Observation) -> Value {
    let coding = observation(o.kind);
    json!({
        "code": concept_of(coding.codings),
        "valueQuantity": quantity(o.value, coding.unit_display, o.kind.unit()),
    })
}

fn snomed(item: &ClinicalCode) -> Value {
    snomed_concept(&item.snomed, item.display.as_deref())
}

fn snomed_concept(code: &str, display: Option<&str>) -> Value {
    let mut coding = json!({ "system": SNOMED_SYSTEM, "code": code });
    if let Some(display) = display {
        coding["display"] = json!(display);
    }
    json!({ "coding": [coding] })
}

fn data_absent(reason: &str) -> Value {
    json!({ "extension": [ { "url": EXT_DATA_ABSENT_REASON, "valueCode": reason } ] })
}
