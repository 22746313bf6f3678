//! Hand-kept tables: which files are embedded, which profile a resource type defaults to,
//! which ADS profile constrains which UK Core profile, and the extensions that are not UK
//! Core (ADS extensions from `nhs-api.md` §2.6, FHIR core extensions).

/// The bundled conformance resources, `(file name, XML)`, embedded at compile time from
/// `<crate>/profiles/uk-core/` (see the `uk_core_file!` macro in `mod.rs`).
pub const FILES: &[(&str, &str)] = &[
    uk_core_file!("UKCore-Bundle.xml"),
    uk_core_file!("UKCore-Communication.xml"),
    uk_core_file!("UKCore-Condition.xml"),
    uk_core_file!("UKCore-Encounter.xml"),
    uk_core_file!("UKCore-Flag.xml"),
    uk_core_file!("UKCore-Location.xml"),
    uk_core_file!("UKCore-MedicationAdministration.xml"),
    uk_core_file!("UKCore-MessageHeader.xml"),
    uk_core_file!("UKCore-Observation.xml"),
    uk_core_file!("UKCore-Organization.xml"),
    uk_core_file!("UKCore-Patient.xml"),
    uk_core_file!("UKCore-Procedure.xml"),
    uk_core_file!("Extension-UKCore-NHSNumberUnavailableReason.xml"),
    uk_core_file!("Extension-UKCore-NHSNumberVerificationStatus.xml"),
    uk_core_file!("Extension-UKCore-TypedDateTime.xml"),
    uk_core_file!("CodeSystem-UKCore-DateTimeType.xml"),
    uk_core_file!("CodeSystem-UKCore-NHSNumberUnavailableReason.xml"),
    uk_core_file!("CodeSystem-UKCore-NHSNumberVerificationStatusEngland.xml"),
    uk_core_file!("CodeSystem-UKCore-NHSNumberVerificationStatusWales.xml"),
    uk_core_file!("CodeSystem-UKCore-WithheldIdentityReason.xml"),
    uk_core_file!("ValueSet-UKCore-DateTimeType.xml"),
    uk_core_file!("ValueSet-UKCore-NHSNumberUnavailableReason.xml"),
    uk_core_file!("ValueSet-UKCore-NHSNumberVerificationStatus.xml"),
];

const UKCORE_SD: &str = "https://fhir.hl7.org.uk/StructureDefinition/";

/// Profile used when a resource has no (usable) `meta.profile`.
pub fn default_profile(resource_type: &str) -> Option<String> {
    const TYPES: &[&str] = &[
        "Bundle",
        "Communication",
        "Condition",
        "Encounter",
        "Flag",
        "Location",
        "MedicationAdministration",
        "MessageHeader",
        "Observation",
        "Organization",
        "Patient",
        "Procedure",
    ];
    TYPES
        .contains(&resource_type)
        .then(|| format!("{UKCORE_SD}UKCore-{resource_type}"))
}

/// ADS profiles (not public as files) and the UK Core profile each one constrains, so that a
/// resource claiming the ADS profile is at least checked against its UK Core base.
/// Source: `nhs-api.md` §2.3 ("UKCore-ADS-Communication (constraints on UK Core
/// Communication)", "UKCore-ADS-Bundle (constraints on UK Core Bundle)").
pub const ADS_PROFILE_BASES: &[(&str, &str)] = &[
    (
        "https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Communication",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Communication",
    ),
    (
        "https://fhir.nhs.uk/StructureDefinition/UKCore-ADS-Bundle",
        "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Bundle",
    ),
];

/// What the value of a table extension must be.
#[derive(Debug, Clone, Copy)]
pub enum ExtValue {
    /// `value[x]` of this one type.
    Type(&'static str),
    /// No `value[x]`, sub-extensions instead; `(relative url, value type)` of the known
    /// parts; an empty list when the parts are not documented (then they are not checked).
    Complex(&'static [(&'static str, &'static str)]),
}

/// An extension that has no bundled StructureDefinition but is known from a table.
#[derive(Debug, Clone, Copy)]
pub struct KnownExtension {
    pub url: &'static str,
    /// Prefix of the rule ids of this extension.
    pub rule: &'static str,
    /// Element contexts (same meaning as `StructureDefinition.context.expression`).
    pub contexts: &'static [&'static str],
    pub value: ExtValue,
    pub source: &'static str,
}

const ADS_SRC: &str = "nhs-api.md §2.6 (ADS IG 'All Extensions'; context Communication)";

pub const KNOWN_EXTENSIONS: &[KnownExtension] = &[
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-111Flag",
        rule: "ADS:Extension-ADS-111Flag",
        contexts: &["Communication"],
        value: ExtValue::Type("CodeableConcept"),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIIncidentFlag",
        rule: "ADS:Extension-ADS-AQIIncidentFlag",
        contexts: &["Communication"],
        value: ExtValue::Type("CodeableConcept"),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-AQIResponseTime",
        rule: "ADS:Extension-ADS-AQIResponseTime",
        contexts: &["Communication"],
        value: ExtValue::Type("Duration"),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-CallOrigin",
        rule: "ADS:Extension-ADS-CallOrigin",
        contexts: &["Communication"],
        value: ExtValue::Type("CodeableConcept"),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-Cat1EarlyPrediction",
        rule: "ADS:Extension-ADS-Cat1EarlyPrediction",
        contexts: &["Communication"],
        value: ExtValue::Complex(&[]),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "https://fhir.nhs.uk/StructureDefinition/Extension-ADS-ResponseCategory",
        rule: "ADS:Extension-ADS-ResponseCategory",
        contexts: &["Communication"],
        value: ExtValue::Complex(&[
            ("responseCategoryType", "CodeableConcept"),
            ("responseCategoryCode", "CodeableConcept"),
        ]),
        source: ADS_SRC,
    },
    KnownExtension {
        url: "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        rule: "FHIR:data-absent-reason",
        contexts: &["Element"],
        value: ExtValue::Type("code"),
        source: "FHIR R4 core extension data-absent-reason (context Element, value code)",
    },
];

pub fn known_extension(url: &str) -> Option<&'static KnownExtension> {
    KNOWN_EXTENSIONS.iter().find(|k| k.url == url)
}
