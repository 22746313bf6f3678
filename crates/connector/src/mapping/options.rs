//! [`MappingOptions`]: the payload choices NHS England has not published (`docs/mapping.md`),
//! with their defaults: the Bundle's [`BundleType`], the ADS-BundleType tag, the MessageHeader
//! fields of message bundles, and the [`CodeSystemStyle`] of NHS England code-system URIs.
//! Checked when a call is mapped ([`super::map_call`]), not here.

/// `Bundle.type` of a call bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BundleType {
    /// `collection` (the default: no MessageHeader).
    #[default]
    Collection,
    /// `message`, with a MessageHeader as the first entry.
    Message,
}

impl BundleType {
    /// The FHIR code.
    pub fn as_str(&self) -> &'static str {
        match self {
            BundleType::Collection => "collection",
            BundleType::Message => "message",
        }
    }
}

/// How NHS England code-system URIs are spelled.
///
/// The ADS IG spells them both with and without an `/R4/` segment
/// (`https://fhir.nhs.uk/R4/CodeSystem/ADS-ResponseCategoryType` on the CodeSystems page,
/// `https://fhir.nhs.uk/CodeSystem/ADS-ResponseCategoryType` in the extension's conformance
/// rules; `shared/docs/nhs-api.md` §2.6). Which one DPS expects is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodeSystemStyle {
    /// Each URI exactly as the IG page that defines its use spells it (the default).
    #[default]
    AsPublished,
    /// Every `https://fhir.nhs.uk/…CodeSystem/…` URI with `/R4/`.
    WithR4,
    /// Every `https://fhir.nhs.uk/…CodeSystem/…` URI without `/R4/`.
    WithoutR4,
}

const NHS_CS_R4: &str = "https://fhir.nhs.uk/R4/CodeSystem/";
const NHS_CS_PLAIN: &str = "https://fhir.nhs.uk/CodeSystem/";

impl CodeSystemStyle {
    /// The URI in this spelling (URIs outside `https://fhir.nhs.uk/` are returned unchanged).
    pub fn apply(&self, uri: &str) -> String {
        let name = uri
            .strip_prefix(NHS_CS_R4)
            .or_else(|| uri.strip_prefix(NHS_CS_PLAIN));
        match (self, name) {
            (CodeSystemStyle::WithR4, Some(name)) => format!("{NHS_CS_R4}{name}"),
            (CodeSystemStyle::WithoutR4, Some(name)) => format!("{NHS_CS_PLAIN}{name}"),
            _ => uri.to_string(),
        }
    }
}

/// Payload choices that NHS England has not published (see `docs/mapping.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingOptions {
    /// `Bundle.type`.
    pub bundle_type: BundleType,
    /// ADS-BundleType code in `Bundle.meta.tag`: `mvp`, `bundle-1`, `bundle-2` or `epr`.
    pub ads_bundle_type_code: String,
    /// `MessageHeader.eventCoding.system` (message bundles only).
    pub message_event_system: String,
    /// `MessageHeader.eventCoding.code` (message bundles only).
    pub message_event_code: String,
    /// `MessageHeader.source.endpoint` (message bundles only).
    pub message_source_endpoint: String,
    /// Spelling of NHS England code-system URIs (the IG's `/R4/` inconsistency).
    pub code_system_style: CodeSystemStyle,
}

impl Default for MappingOptions {
    fn default() -> Self {
        MappingOptions {
            bundle_type: BundleType::Collection,
            ads_bundle_type_code: "mvp".to_string(),
            message_event_system: "https://fhir.nhs.uk/CodeSystem/message-event".to_string(),
            message_event_code: "ambulance-data-submission".to_string(),
            message_source_endpoint: "urn:nhs:ads-connector".to_string(),
            code_system_style: CodeSystemStyle::AsPublished,
        }
    }
}
