//! Every URI and code the mapping emits, in one place.
//!
//! **In:** nothing (constants and lookup tables). **Out:** code systems, extension URLs,
//! identifier systems and the fixed code tables of `cad.call.v1` enumerations. Items marked
//! *assumed* are not published by NHS England (see `docs/mapping.md`); correcting one is a
//! one-line change here plus regenerated golden files.

use crate::cad::{ConveyanceOutcome, ObservationKind, ResourceType, TreatmentType};

// Identifier systems.

/// Identifier system of the ADS call identifier (ADS3); *assumed*.
pub const CALL_ID_SYSTEM: &str = "https://fhir.nhs.uk/Id/ads-call-identifier";
/// Identifier system of a response call sign on its vehicle `Location`; *assumed*.
pub const CALL_SIGN_SYSTEM: &str = "https://fhir.nhs.uk/Id/ads-call-sign";
/// UK Core: NHS number.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// UK Core: ODS organisation code.
pub const ODS_ORGANIZATION_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// UK Core: ODS site code.
pub const ODS_SITE_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-site-code";

// Profiles and extensions.

/// Canonical URL of the UKCore-ADS-Communication profile (name public, URL *assumed*).
pub const ADS_COMMUNICATION_PROFILE: &str =
    "https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Communication";
/// Canonical URL of the UKCore-ADS-Bundle profile (name public, URL *assumed*).
pub const ADS_BUNDLE_PROFILE: &str = "https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Bundle";
/// ADS-CallOrigin extension (URL *assumed*).
pub const EXT_CALL_ORIGIN: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-CallOrigin";
/// ADS-111Flag extension (URL *assumed*).
pub const EXT_111_FLAG: &str = "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-111Flag";
/// ADS-AQIIncidentFlag extension (URL *assumed*).
pub const EXT_AQI_INCIDENT_FLAG: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIIncidentFlag";
/// ADS-AQIResponseTime extension, a Duration (URL *assumed*).
pub const EXT_AQI_RESPONSE_TIME: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIResponseTime";
/// ADS-Cat1EarlyPrediction extension, complex (URL and sub-extension name *assumed*).
pub const EXT_CAT1_EARLY_PREDICTION: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-Cat1EarlyPrediction";
/// ADS-ResponseCategory extension (URL *assumed*).
pub const EXT_RESPONSE_CATEGORY: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-ResponseCategory";
/// UK Core typed date-time extension.
pub const EXT_TYPED_DATE_TIME: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-TypedDateTime";
/// UK Core NHS number verification status extension (on `Patient.identifier`).
pub const EXT_NHS_NUMBER_VERIFICATION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
/// UK Core extension saying why a Patient has no NHS number identifier (context `Patient`).
pub const EXT_NHS_NUMBER_UNAVAILABLE_REASON: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberUnavailableReason";
/// Its code system (`nhs-number-not-known`, `overseas-patient`, `devolved-nation`).
pub const NHS_NUMBER_UNAVAILABLE_REASON_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberUnavailableReason";

/// The profile every resource of a type declares in `meta.profile`: UK Core's for its type
/// (public canonical URLs, `https://fhir.hl7.org.uk/StructureDefinition/UKCore-<Type>`), and the
/// ADS profiles for the Bundle and the Communication. The ADS canonical URLs are *assumed*: the
/// IG names `UKCore-ADS-Bundle` and `UKCore-ADS-Communication` but shows no URL (nhs-api.md
/// §2.3); they follow the NHS England pattern of the ADS extensions.
pub fn profile_of(resource_type: &str) -> Option<&'static str> {
    profile_index(resource_type).map(|at| PROFILES[at].1)
}

/// Where `resource_type` is in [`PROFILES`].
pub fn profile_index(resource_type: &str) -> Option<usize> {
    PROFILES.iter().position(|(t, _)| *t == resource_type)
}

/// Each resource type the mapping emits and its profile ([`profile_of`]).
pub const PROFILES: [(&str, &str); 12] = [
    ("Bundle", ADS_BUNDLE_PROFILE),
    ("Communication", ADS_COMMUNICATION_PROFILE),
    (
        "Condition",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Condition",
    ),
    (
        "Encounter",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter",
    ),
    (
        "Flag",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Flag",
    ),
    (
        "Location",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Location",
    ),
    (
        "MedicationAdministration",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-MedicationAdministration",
    ),
    (
        "MessageHeader",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-MessageHeader",
    ),
    (
        "Observation",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation",
    ),
    (
        "Organization",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Organization",
    ),
    (
        "Patient",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient",
    ),
    (
        "Procedure",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Procedure",
    ),
];

/// HL7 data-absent-reason extension (for a mandatory FHIR element the call does not know).
pub const EXT_DATA_ABSENT_REASON: &str =
    "http://hl7.org/fhir/StructureDefinition/data-absent-reason";

// NHS England code systems. Spelled as the IG pages spell them; `CodeSystemStyle` rewrites
// the `/R4/` segment when configured.

/// ADS-BundleType code system; the code goes in `Bundle.meta.tag`.
pub const ADS_BUNDLE_TYPE_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-BundleType";
/// Ambulance-CallOrigin code system.
pub const CALL_ORIGIN_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/Ambulance-CallOrigin";
/// ADS-ResponseCategoryType code system, as the extension's conformance rules spell it.
pub const RESPONSE_CATEGORY_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/CodeSystem/ADS-ResponseCategoryType";
/// ADS-ResponseCategory code system (ValueSet name public, system and codes *assumed*).
pub const RESPONSE_CATEGORY_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-ResponseCategory";
/// ADS-TriageCategory code system (`01` AMPDS, `02` Pathways, `03` SG, `04` SD).
pub const TRIAGE_CATEGORY_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-TriageCategory";
/// Ambulance-Cat1EarlyPredictionFlag code system (only code `01` is visible).
pub const CAT1_EARLY_PREDICTION_SYSTEM: &str =
    "https://fhir.nhs.uk/R4/CodeSystem/Ambulance-Cat1EarlyPredictionFlag";
/// ADS stop codes (ADS4, `Communication.statusReason`); *assumed* system, trust codes.
pub const STOP_CODE_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-StopCode";
/// ADS treatment type (ADS33, `Communication.category`); *assumed* system and codes.
pub const TREATMENT_TYPE_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/ADS-TreatmentType";
/// Conveyance outcome (`Encounter.hospitalization.dischargeDisposition`); *assumed*.
pub const CONVEYANCE_OUTCOME_SYSTEM: &str =
    "https://fhir.nhs.uk/R4/CodeSystem/ADS-ConveyanceOutcome";
/// Kind of responding resource (second `Location.type`); *assumed*.
pub const RESPONSE_RESOURCE_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/R4/CodeSystem/ADS-ResponseResourceType";
/// AMPDS determinant codes (NHS Booking and Referral IG; ADS use unconfirmed).
pub const AMPDS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ampds-code";
/// Pathways disposition (Dx) codes (NHS Booking and Referral IG).
pub const PATHWAYS_DX_SYSTEM: &str = "https://fhir.nhs.uk/Id/pathways-dx-code";
/// Pathways symptom group codes (NHS Booking and Referral IG).
pub const PATHWAYS_SG_SYSTEM: &str = "https://fhir.nhs.uk/Id/pathways-sg-code";
/// Pathways symptom discriminator codes (NHS Booking and Referral IG).
pub const PATHWAYS_SD_SYSTEM: &str = "https://fhir.nhs.uk/Id/pathways-sd-code";

// UK Core and HL7 code systems.

/// UK Core DateTimeType code system.
pub const DATE_TIME_TYPE_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-DateTimeType";
/// UK Core NHS number verification status (England).
pub const NHS_NUMBER_VERIFICATION_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
/// HL7 v2 table 0136 (Yes/No), used for the ADS flag extensions' CodeableConcepts (*assumed*).
pub const YES_NO_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0136";
/// SNOMED CT.
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// LOINC.
pub const LOINC_SYSTEM: &str = "http://loinc.org";
/// UCUM.
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
/// FHIR observation categories.
pub const OBSERVATION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
/// FHIR condition categories.
pub const CONDITION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/condition-category";
/// FHIR condition clinical status.
pub const CONDITION_CLINICAL_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/condition-clinical";
/// FHIR flag categories.
pub const FLAG_CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/flag-category";
/// HL7 v3 ActCode (Encounter.class).
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// HL7 v3 RoleCode (Location.type).
pub const ROLE_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
/// FHIR location physical type.
pub const LOCATION_PHYSICAL_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/location-physical-type";

/// The ADS-BundleType codes and displays.
pub const ADS_BUNDLE_TYPES: [(&str, &str); 4] = [
    ("mvp", "ADS FHIR Bundle - MVP items"),
    ("bundle-1", "ADS FHIR Bundle - Stage 2 Bundle 1 items"),
    ("bundle-2", "ADS FHIR Bundle - Stage 2 Bundle 2 items"),
    ("epr", "ADS FHIR Bundle - EPR items"),
];

/// ADS-TriageCategory codes and displays.
pub const TRIAGE_CATEGORIES: [(&str, &str); 4] = [
    ("01", "AMPDS Triage Disposition"),
    ("02", "Pathways Triage Disposition"),
    ("03", "SG Code (Symptom Group)"),
    ("04", "SD Code (Symptom Discriminator)"),
];

/// UK Core DateTimeType codes and displays (all 13 of the code system).
pub const DATE_TIME_TYPES: [(&str, &str); 13] = [
    ("time-call-answered", "Time Call Answered"),
    ("time-call-ended", "Time Call Ended"),
    (
        "time-dispatch-code-established",
        "Time Dispatch Code Established",
    ),
    ("clock-start-date-time", "Clock Start Date Time"),
    ("clock-stop-date-time", "Clock Stop Date Time"),
    ("time-resource-mobilised", "Time Resource Mobilised"),
    (
        "time-resource-arrived-on-scene",
        "Time Resource Arrived On Scene",
    ),
    ("time-resource-left-scene", "Time Resource Left Scene"),
    (
        "time-arrived-receiving-location",
        "Time Arrived at Receiving Location",
    ),
    ("time-patient-handover", "Time Patient Handover"),
    ("time-clinical-handover", "Time of Clinical Handover"),
    ("time-clear", "Time Clear"),
    ("time-stood-down", "Time Stood Down"),
];

/// The display of a UK Core DateTimeType code.
pub fn date_time_type_display(code: &str) -> &'static str {
    DATE_TIME_TYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, d)| d)
}

/// ADS33 treatment type code and display (*assumed* codes).
pub fn treatment_type(t: TreatmentType) -> (&'static str, &'static str) {
    match t {
        TreatmentType::HearAndTreat => ("hear-and-treat", "Hear and treat"),
        TreatmentType::SeeAndTreat => ("see-and-treat", "See and treat"),
        TreatmentType::SeeAndConveyEd => (
            "see-and-convey-ed",
            "See and convey to an emergency department",
        ),
        TreatmentType::SeeAndConveyOther => (
            "see-and-convey-other",
            "See and convey to another destination",
        ),
    }
}

/// Conveyance outcome code and display (*assumed* codes).
pub fn conveyance_outcome(o: ConveyanceOutcome) -> (&'static str, &'static str) {
    match o {
        ConveyanceOutcome::ConveyedToEmergencyDepartment => (
            "conveyed-to-emergency-department",
            "Conveyed to an emergency department",
        ),
        ConveyanceOutcome::ConveyedToOtherDestination => (
            "conveyed-to-other-destination",
            "Conveyed to another destination",
        ),
        ConveyanceOutcome::TreatedAtScene => ("treated-at-scene", "Treated at scene"),
        ConveyanceOutcome::ReferredToOtherService => {
            ("referred-to-other-service", "Referred to another service")
        }
        ConveyanceOutcome::RefusedConveyance => ("refused-conveyance", "Refused conveyance"),
        ConveyanceOutcome::Deceased => ("deceased", "Deceased"),
        ConveyanceOutcome::NotConveyedOther => ("not-conveyed-other", "Not conveyed, other reason"),
    }
}

/// Responding resource kind code and display (*assumed* codes).
pub fn resource_type(r: ResourceType) -> (&'static str, &'static str) {
    match r {
        ResourceType::EmergencyAmbulance => ("emergency-ambulance", "Emergency ambulance"),
        ResourceType::RapidResponseVehicle => ("rapid-response-vehicle", "Rapid response vehicle"),
        ResourceType::IntermediateTier => ("intermediate-tier", "Intermediate tier vehicle"),
        ResourceType::SpecialistPractitioner => {
            ("specialist-practitioner", "Specialist practitioner")
        }
        ResourceType::HazardousAreaResponse => {
            ("hazardous-area-response", "Hazardous area response team")
        }
        ResourceType::AirAmbulance => ("air-ambulance", "Air ambulance"),
        ResourceType::CommunityFirstResponder => {
            ("community-first-responder", "Community first responder")
        }
        ResourceType::Other => ("other", "Other"),
    }
}

/// How an observation kind is coded: category, codings `(system, code, display)` (LOINC first,
/// as the FHIR vital-signs profile requires, then SNOMED CT for UK Core) and the unit's display.
pub struct ObservationCoding {
    /// `Observation.category` code (observation-category).
    pub category: (&'static str, &'static str),
    /// `Observation.code.coding`.
    pub codings: &'static [(&'static str, &'static str, &'static str)],
    /// `valueQuantity.unit` (the UCUM code is [`ObservationKind::unit`]).
    pub unit_display: &'static str,
}

/// The `vital-signs` Observation category (code, display).
pub const VITAL_SIGNS: (&str, &str) = ("vital-signs", "Vital Signs");
/// The `survey` Observation category (code, display).
pub const SURVEY: (&str, &str) = ("survey", "Survey");
const LABORATORY: (&str, &str) = ("laboratory", "Laboratory");

/// The coding of one observation kind.
pub fn observation(kind: ObservationKind) -> ObservationCoding {
    use ObservationKind as K;
    let (category, codings, unit_display): (_, &'static [_], _) = match kind {
        K::HeartRate => (
            VITAL_SIGNS,
            &[
                (LOINC_SYSTEM, "8867-4", "Heart rate"),
                (SNOMED_SYSTEM, "364075005", "Heart rate"),
            ],
            "beats/minute",
        ),
        K::RespiratoryRate => (
            VITAL_SIGNS,
            &[
                (LOINC_SYSTEM, "9279-1", "Respiratory rate"),
                (SNOMED_SYSTEM, "86290005", "Respiratory rate"),
            ],
            "breaths/minute",
        ),
        K::OxygenSaturation => (
            VITAL_SIGNS,
            &[
                (
                    LOINC_SYSTEM,
                    "2708-6",
                    "Oxygen saturation in Arterial blood",
                ),
                (
                    LOINC_SYSTEM,
                    "59408-5",
                    "Oxygen saturation in Arterial blood by Pulse oximetry",
                ),
                (SNOMED_SYSTEM, "431314004", "Peripheral oxygen saturation"),
            ],
            "%",
        ),
        K::SystolicBloodPressure => (
            VITAL_SIGNS,
            &[
                (LOINC_SYSTEM, "8480-6", "Systolic blood pressure"),
                (SNOMED_SYSTEM, "271649006", "Systolic blood pressure"),
            ],
            "mmHg",
        ),
        K::DiastolicBloodPressure => (
            VITAL_SIGNS,
            &[
                (LOINC_SYSTEM, "8462-4", "Diastolic blood pressure"),
                (SNOMED_SYSTEM, "271650006", "Diastolic blood pressure"),
            ],
            "mmHg",
        ),
        K::Temperature => (
            VITAL_SIGNS,
            &[
                (LOINC_SYSTEM, "8310-5", "Body temperature"),
                (SNOMED_SYSTEM, "386725007", "Body temperature"),
            ],
            "Cel",
        ),
        K::BloodGlucose => (
            LABORATORY,
            &[
                (LOINC_SYSTEM, "15074-8", "Glucose [Moles/volume] in Blood"),
                (SNOMED_SYSTEM, "434912009", "Blood glucose concentration"),
            ],
            "mmol/L",
        ),
        K::GcsTotal => (
            SURVEY,
            &[
                (LOINC_SYSTEM, "9269-2", "Glasgow coma score total"),
                (SNOMED_SYSTEM, "248241002", "Glasgow coma score"),
            ],
            "score",
        ),
        K::PainScore => (
            SURVEY,
            &[
                (
                    LOINC_SYSTEM,
                    "72514-3",
                    "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
                ),
                (SNOMED_SYSTEM, "225908003", "Pain score"),
            ],
            "score",
        ),
        K::News2Score => (
            SURVEY,
            &[(
                SNOMED_SYSTEM,
                "1104051000000101",
                "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score",
            )],
            "score",
        ),
    };
    ObservationCoding {
        category,
        codings,
        unit_display,
    }
}

/// `Observation.code` of a blood pressure panel (systolic and diastolic taken together).
pub const BLOOD_PRESSURE_PANEL: &[(&str, &str, &str)] = &[
    (
        LOINC_SYSTEM,
        "85354-9",
        "Blood pressure panel with all children optional",
    ),
    (SNOMED_SYSTEM, "75367002", "Blood pressure"),
];

/// SNOMED CT "Traumatic injury": the extra `Condition.category` that marks an injury.
pub const TRAUMATIC_INJURY: (&str, &str) = ("417746004", "Traumatic injury");
