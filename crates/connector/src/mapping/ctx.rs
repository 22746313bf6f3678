//! The shared context of one mapping and the small FHIR building blocks every resource uses.
//!
//! **In:** the call and the options. **Out:** deterministic ids and `urn:uuid:` URLs, codings
//! with the configured code-system spelling, typed date-time extensions and entries. Pure.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::codes::{
    date_time_type_display, DATE_TIME_TYPE_SYSTEM, EXT_TYPED_DATE_TIME, UCUM_SYSTEM, YES_NO_SYSTEM,
};
use super::{resource_id, MappingOptions};
use crate::cad::{format_utc, CadCall};

/// One call being mapped, with its options.
pub(super) struct Ctx<'a> {
    pub(super) call: &'a CadCall,
    pub(super) opts: &'a MappingOptions,
}

impl Ctx<'_> {
    /// The resource id (UUIDv5) of a resource path such as `Patient/1`.
    pub(super) fn id(&self, path: &str) -> String {
        resource_id(&self.call.provider_ods, &self.call.call_id, path).to_string()
    }

    /// The `urn:uuid:` full URL of a resource path.
    pub(super) fn url(&self, path: &str) -> String {
        format!(
            "urn:uuid:{}",
            resource_id(&self.call.provider_ods, &self.call.call_id, path)
        )
    }

    /// `{"reference": <url of path>}`.
    pub(super) fn reference(&self, path: &str) -> Value {
        json!({ "reference": self.url(path) })
    }

    /// A code system URI in the configured spelling.
    pub(super) fn system(&self, uri: &str) -> String {
        self.opts.code_system_style.apply(uri)
    }

    /// A CodeableConcept with one coding from an NHS England code system.
    pub(super) fn nhs_concept(&self, system: &str, code: &str, display: Option<&str>) -> Value {
        let mut coding = json!({ "system": self.system(system), "code": code });
        if let Some(display) = display {
            coding["display"] = json!(display);
        }
        json!({ "coding": [coding] })
    }

    /// The provider Organization's reference.
    pub(super) fn provider(&self) -> Value {
        self.reference(&format!("Organization/{}", self.call.provider_ods))
    }
}

/// One Bundle entry.
pub(super) fn entry(full_url: String, resource: Value) -> Value {
    object([("fullUrl", Value::String(full_url)), ("resource", resource)])
}

/// A JSON object from owned values. `json!` would copy each interpolated `Value` through the
/// serializer; this moves them, which matters for whole resources and Bundles.
pub(super) fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A CodeableConcept with one coding.
pub(super) fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [ { "system": system, "code": code, "display": display } ] })
}

/// A CodeableConcept with several `(system, code, display)` codings.
pub(super) fn concept_of(codings: &[(&str, &str, &str)]) -> Value {
    let codings: Vec<Value> = codings
        .iter()
        .map(
            |(system, code, display)| json!({ "system": system, "code": code, "display": display }),
        )
        .collect();
    json!({ "coding": codings })
}

/// The HL7 Yes/No CodeableConcept of an ADS flag.
pub(super) fn yes_no(flag: bool) -> Value {
    if flag {
        concept(YES_NO_SYSTEM, "Y", "Yes")
    } else {
        concept(YES_NO_SYSTEM, "N", "No")
    }
}

/// A UCUM quantity.
pub(super) fn quantity(value: f64, unit_display: &str, ucum: &str) -> Value {
    json!({ "value": decimal(value), "unit": unit_display, "system": UCUM_SYSTEM, "code": ucum })
}

/// A FHIR decimal: a whole number is written without a fraction (`112`, not `112.0`); any
/// other value as the shortest form that reads back the same.
pub(super) fn decimal(value: f64) -> Value {
    // Below 2^53 every whole f64 is an exact i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// The UK Core typed date-time extension for one DateTimeType code.
pub(super) fn typed_date_time(code: &str, at: &DateTime<Utc>) -> Value {
    json!({
        "url": EXT_TYPED_DATE_TIME,
        "extension": [
            {
                "url": "dateTimeType",
                "valueCodeableConcept":
                    concept(DATE_TIME_TYPE_SYSTEM, code, date_time_type_display(code)),
            },
            { "url": "dateTime", "valueDateTime": format_utc(at) },
        ],
    })
}

/// Typed date-time extensions for the times that are present, in the given order.
pub(super) fn typed_date_times(times: &[(&str, Option<DateTime<Utc>>)]) -> Vec<Value> {
    times
        .iter()
        .filter_map(|(code, at)| at.as_ref().map(|at| typed_date_time(code, at)))
        .collect()
}

/// `YYYY-MM-DD`.
pub(super) fn date(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
