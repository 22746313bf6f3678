//! The list of differential constraints of the bundled StructureDefinitions, their stable
//! ids, and the table of constraints that are deliberately not checked.

use serde::Serialize;

use super::model::StructureDef;

/// One constraint read from a differential (or an extension's `context`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConstraintInfo {
    /// Stable id, `<StructureDefinition.id>:<element id>:<kind>`, e.g.
    /// `UKCore-Patient:Patient.identifier:nhsNumber.value:min`; for contexts
    /// `<StructureDefinition.id>:context`.
    pub id: String,
    /// `StructureDefinition.id`.
    pub profile: String,
    pub profile_url: String,
    /// Element id (empty for a context).
    pub element: String,
    /// `min`, `max`, `fixed`, `pattern`, `binding`, `type`, `profile`, `targetProfile`,
    /// `slicing`, `constraint:<key>`, `mustSupport`, `isModifier` or `context`.
    pub kind: String,
    /// The constraint as written, e.g. `min=1`, `fixedUri=https://fhir.nhs.uk/Id/nhs-number`.
    pub detail: String,
}

pub fn constraint_id(sd: &StructureDef, element: &str, kind: &str) -> String {
    format!("{}:{}:{}", sd.id, element, kind)
}

pub fn context_id(sd: &StructureDef) -> String {
    format!("{}:context", sd.id)
}

/// Every constraint in the differential of `sd`, in document order.
pub fn of_structure_definition(sd: &StructureDef) -> Vec<ConstraintInfo> {
    let mut out = Vec::new();
    let mut push = |element: &str, kind: &str, detail: String| {
        out.push(ConstraintInfo {
            id: if kind == "context" {
                context_id(sd)
            } else {
                constraint_id(sd, element, kind)
            },
            profile: sd.id.clone(),
            profile_url: sd.url.clone(),
            element: element.to_string(),
            kind: kind.to_string(),
            detail,
        });
    };
    if !sd.contexts.is_empty() {
        let list: Vec<String> = sd
            .contexts
            .iter()
            .map(|c| format!("{}:{}", c.kind, c.expression))
            .collect();
        push("", "context", list.join(", "));
    }
    for el in &sd.elements {
        let id = el.id.as_str();
        if let Some(m) = el.min {
            push(id, "min", format!("min={m}"));
        }
        if let Some(m) = el.max {
            push(id, "max", format!("max={m}"));
        }
        if let Some(f) = &el.fixed {
            push(
                id,
                "fixed",
                format!("fixed{}={}", f.type_suffix, show(&f.value)),
            );
        }
        if let Some(p) = &el.pattern {
            push(
                id,
                "pattern",
                format!("pattern{}={}", p.type_suffix, show(&p.value)),
            );
        }
        if let Some(b) = &el.binding {
            push(
                id,
                "binding",
                format!(
                    "{} {}",
                    b.strength,
                    b.value_set.as_deref().unwrap_or("(no valueSet)")
                ),
            );
        }
        if !el.types.is_empty() {
            let codes: Vec<&str> = el.types.iter().map(|t| t.code.as_str()).collect();
            push(id, "type", codes.join("|"));
            let profiles: Vec<&str> = el
                .types
                .iter()
                .flat_map(|t| &t.profiles)
                .map(String::as_str)
                .collect();
            if !profiles.is_empty() {
                push(id, "profile", profiles.join(" | "));
            }
            let targets: Vec<&str> = el
                .types
                .iter()
                .flat_map(|t| &t.target_profiles)
                .map(String::as_str)
                .collect();
            if !targets.is_empty() {
                push(id, "targetProfile", targets.join(" | "));
            }
        }
        if let Some(s) = &el.slicing {
            let d: Vec<String> = s
                .discriminators
                .iter()
                .map(|d| format!("{}:{}", d.kind, d.path))
                .collect();
            push(
                id,
                "slicing",
                format!(
                    "discriminator {} rules {}{}",
                    d.join(","),
                    s.rules,
                    if s.ordered == Some(true) {
                        " ordered"
                    } else {
                        ""
                    }
                ),
            );
        }
        for inv in &el.invariants {
            push(
                id,
                &format!("constraint:{}", inv.key),
                format!("{} {}", inv.severity, inv.expression),
            );
        }
        if let Some(ms) = el.must_support {
            push(id, "mustSupport", format!("mustSupport={ms}"));
        }
        if let Some(m) = el.is_modifier {
            push(id, "isModifier", format!("isModifier={m}"));
        }
    }
    out
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Constraints deliberately not checked, `(constraint id, reason)`. An id may start with
/// `*:` to name a kind of constraint in every profile (only used for declarations that never
/// carry an instance rule). The coverage test fails when a constraint is neither checked nor
/// listed here, and when an entry here matches no constraint or a checked one.
pub const NOT_CHECKED: &[(&str, &str)] = &[
    // ---- declarations without an instance rule (all profiles) ----
    ("*:mustSupport", "mustSupport is an obligation on sending/receiving systems, not a rule on an instance"),
    ("*:isModifier", "isModifier=false on an extension slice only declares the extension is not a modifier"),
    // ---- required binding to a ValueSet that is not enumerable from the bundled files ----
    ("UKCore-Patient:Patient.communication.language:binding",
        "required http://hl7.org/fhir/ValueSet/all-languages is BCP-47 (a grammar, not a list); ADS bundles carry no Patient.communication"),
    // ---- extensible / preferred bindings: codes outside the ValueSet are conformant ----
    ("UKCore-Patient:Patient.maritalStatus:binding", "extensible binding"),
    ("UKCore-Patient:Patient.contact.relationship:binding", "extensible binding"),
    ("UKCore-Encounter:Encounter.type:binding", "preferred binding"),
    ("UKCore-Encounter:Encounter.serviceType:binding", "preferred binding"),
    ("UKCore-Encounter:Encounter.hospitalization.admitSource:binding", "preferred binding"),
    ("UKCore-Encounter:Encounter.hospitalization.dischargeDisposition:binding", "preferred binding"),
    ("UKCore-Encounter:Encounter.location.physicalType:binding", "preferred binding"),
    ("UKCore-Organization:Organization.type:binding", "extensible binding"),
    ("UKCore-Observation:Observation.code:binding", "preferred binding"),
    ("UKCore-Observation:Observation.bodySite:binding", "preferred binding (no ValueSet named)"),
    ("UKCore-Observation:Observation.method:binding", "preferred binding (no ValueSet named)"),
    ("UKCore-Observation:Observation.component.code:binding", "preferred binding"),
    ("UKCore-Condition:Condition.category:binding", "extensible binding"),
    ("UKCore-Condition:Condition.code:binding", "preferred binding"),
    ("UKCore-Condition:Condition.bodySite:binding", "preferred binding (no ValueSet named)"),
    ("UKCore-Procedure:Procedure.code:binding", "preferred binding"),
    ("UKCore-Procedure:Procedure.bodySite:binding", "preferred binding (no ValueSet named)"),
    ("UKCore-Procedure:Procedure.complication:binding", "preferred binding"),
    ("UKCore-MedicationAdministration:MedicationAdministration.category:binding", "extensible binding"),
    ("UKCore-MedicationAdministration:MedicationAdministration.medication[x]:binding", "preferred binding"),
    ("UKCore-MedicationAdministration:MedicationAdministration.dosage.site:binding", "preferred binding"),
    ("UKCore-MedicationAdministration:MedicationAdministration.dosage.route:binding", "preferred binding"),
    ("UKCore-MedicationAdministration:MedicationAdministration.dosage.method:binding", "preferred binding"),
    ("Extension-UKCore-TypedDateTime:Extension.extension:dateTimeType.value[x]:binding",
        "extensible binding (codings that claim the bundled UKCore-DateTimeType CodeSystem are still checked to exist in it)"),
    ("Extension-UKCore-NHSNumberUnavailableReason:Extension.value[x]:binding",
        "extensible binding (codings that claim a bundled CodeSystem are still checked to exist in it)"),
    // ---- extension slices whose extension definition is not bundled (not used by ADS bundles;
    //      an instance would be reported as extension:unknown-url, so it cannot pass unseen) ----
    ("UKCore-Patient:Patient.extension:birthPlace:profile", "FHIR core extension patient-birthPlace not bundled"),
    ("UKCore-Patient:Patient.extension:birthSex:profile", "Extension-UKCore-BirthSex not bundled"),
    ("UKCore-Patient:Patient.extension:cadavericDonor:profile", "FHIR core extension patient-cadavericDonor not bundled"),
    ("UKCore-Patient:Patient.extension:contactPreference:profile", "Extension-UKCore-ContactPreference not bundled"),
    ("UKCore-Patient:Patient.extension:deathNotificationStatus:profile", "Extension-UKCore-DeathNotificationStatus not bundled"),
    ("UKCore-Patient:Patient.extension:ethnicCategory:profile", "Extension-UKCore-EthnicCategory not bundled"),
    ("UKCore-Patient:Patient.extension:fetalStatus:profile", "R6 cross-version extension not bundled"),
    ("UKCore-Patient:Patient.extension:residentialStatus:profile", "Extension-UKCore-ResidentialStatus not bundled"),
    ("UKCore-Patient:Patient.extension:patientInterpreterRequired:profile", "FHIR core extension patient-interpreterRequired not bundled"),
    ("UKCore-Patient:Patient.telecom.system.extension:otherContactSystem:profile", "Extension-UKCore-OtherContactSystem not bundled"),
    ("UKCore-Patient:Patient.birthDate.extension:birthTime:profile", "FHIR core extension patient-birthTime not bundled"),
    ("UKCore-Patient:Patient.address.extension:addressKey:profile", "Extension-UKCore-AddressKey not bundled"),
    ("UKCore-Patient:Patient.contact.extension:contactRank:profile", "Extension-UKCore-ContactRank not bundled"),
    ("UKCore-Patient:Patient.contact.extension:copyCorrespondenceIndicator:profile", "Extension-UKCore-CopyCorrespondenceIndicator not bundled"),
    ("UKCore-Patient:Patient.contact.telecom.system.extension:otherContactSystem:profile", "Extension-UKCore-OtherContactSystem not bundled"),
    ("UKCore-Patient:Patient.communication.extension:proficiency:profile", "FHIR core extension patient-proficiency not bundled"),
    ("UKCore-Encounter:Encounter.extension:dischargeMethod:profile", "Extension-UKCore-DischargeMethod not bundled"),
    ("UKCore-Encounter:Encounter.extension:emergencyCareDischargeStatus:profile", "Extension-UKCore-EmergencyCareDischargeStatus not bundled"),
    ("UKCore-Encounter:Encounter.extension:legalStatus:profile", "Extension-UKCore-LegalStatus not bundled"),
    ("UKCore-Encounter:Encounter.extension:OutcomeOfAttendance:profile", "Extension-UKCore-OutcomeOfAttendance not bundled"),
    ("UKCore-Encounter:Encounter.hospitalization.extension:admissionMethod:profile", "Extension-UKCore-AdmissionMethod not bundled"),
    ("UKCore-Organization:Organization.extension:mainLocation:profile", "Extension-UKCore-MainLocation not bundled"),
    ("UKCore-Organization:Organization.extension:organizationPeriod:profile", "FHIR core extension organization-period not bundled"),
    ("UKCore-Observation:Observation.extension:triggeredByR5:profile", "R5 cross-version extension not bundled"),
    ("UKCore-Observation:Observation.extension:bodyStructureR5:profile", "R5 cross-version extension not bundled"),
    ("UKCore-Condition:Condition.extension:bodyStructureR6:profile", "R6 cross-version extension not bundled"),
    ("UKCore-Condition:Condition.extension:conditionEpisode:profile", "Extension-UKCore-ConditionEpisode not bundled"),
];

/// Does a NOT_CHECKED entry name this constraint?
pub fn not_checked_matches(entry: &str, c: &ConstraintInfo) -> bool {
    match entry.strip_prefix("*:") {
        Some(kind) => c.kind == kind,
        None => entry == c.id,
    }
}

pub fn not_checked_reason(c: &ConstraintInfo) -> Option<&'static str> {
    NOT_CHECKED
        .iter()
        .find(|(e, _)| not_checked_matches(e, c))
        .map(|(_, r)| *r)
}
