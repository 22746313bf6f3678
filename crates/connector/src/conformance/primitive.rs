//! FHIR R4 data types as seen in JSON: which type names are primitives, how a choice
//! element's JSON key maps to a type (`valueDateTime` -> `dateTime`), and lexical checks of
//! primitive values (the regular expressions of the R4 specification, written out by hand so
//! that no regex crate is needed).

use serde_json::Value;

/// The R4 primitive types.
pub const PRIMITIVES: &[&str] = &[
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
    "xhtml",
];

/// R4 complex data types (used to tell a datatype extension context from a resource one,
/// and to recognise choice-type JSON keys).
pub const COMPLEX_TYPES: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "BackboneElement",
    "CodeableConcept",
    "Coding",
    "ContactDetail",
    "ContactPoint",
    "Contributor",
    "Count",
    "DataRequirement",
    "Distance",
    "Dosage",
    "Duration",
    "Element",
    "ElementDefinition",
    "Expression",
    "Extension",
    "HumanName",
    "Identifier",
    "MarketingStatus",
    "Meta",
    "Money",
    "MoneyQuantity",
    "Narrative",
    "ParameterDefinition",
    "Period",
    "Population",
    "ProdCharacteristic",
    "ProductShelfLife",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "RelatedArtifact",
    "SampledData",
    "Signature",
    "SimpleQuantity",
    "SubstanceAmount",
    "Timing",
    "TriggerDefinition",
    "UsageContext",
];

pub fn is_primitive(type_code: &str) -> bool {
    PRIMITIVES.contains(&type_code)
}

pub fn is_datatype(name: &str) -> bool {
    is_primitive(name) || COMPLEX_TYPES.contains(&name)
}

/// `DateTime` -> `dateTime`, `CodeableConcept` -> `CodeableConcept`; `None` when the suffix
/// names no R4 type.
pub fn type_from_suffix(suffix: &str) -> Option<String> {
    if COMPLEX_TYPES.contains(&suffix) {
        return Some(suffix.to_string());
    }
    let mut chars = suffix.chars();
    let first = chars.next()?;
    let lowered: String = first.to_lowercase().chain(chars).collect();
    is_primitive(&lowered).then_some(lowered)
}

/// `dateTime` -> `DateTime` (the JSON key suffix of a choice element).
pub fn suffix_from_type(type_code: &str) -> String {
    let mut chars = type_code.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Does this JSON value have the shape of `type_code`? Complex types must be objects,
/// primitives must have the JSON kind and lexical form that R4 requires. Returns a short
/// description of the problem (never the value itself).
pub fn shape_problem(type_code: &str, v: &Value) -> Option<&'static str> {
    if !is_primitive(type_code) {
        // Complex type (or a type we do not know): must be a JSON object.
        return (!v.is_object()).then_some("is not a JSON object");
    }
    match type_code {
        "boolean" => (!v.is_boolean()).then_some("is not a JSON boolean"),
        "decimal" => (!v.is_number()).then_some("is not a JSON number"),
        "integer" | "unsignedInt" | "positiveInt" => {
            let Some(n) = v.as_i64() else {
                return Some(if v.is_number() {
                    "is a JSON number with a fraction or exponent, not an integer"
                } else {
                    "is not a JSON number"
                });
            };
            match type_code {
                "unsignedInt" if n < 0 => Some("is negative"),
                "positiveInt" if n < 1 => Some("is not positive"),
                "integer" if i32::try_from(n).is_err() => Some("is outside the 32-bit range"),
                _ => None,
            }
        }
        _ => {
            let Some(s) = v.as_str() else {
                return Some("is not a JSON string");
            };
            string_problem(type_code, s)
        }
    }
}

fn string_problem(type_code: &str, s: &str) -> Option<&'static str> {
    // R4: string values are never empty; leading/trailing whitespace is not allowed in code/id/uri.
    if s.is_empty() {
        return Some("is an empty string");
    }
    match type_code {
        "code" => (s.trim() != s || s.contains("  ")).then_some("is not a valid code (whitespace)"),
        "id" => (s.len() > 64
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .then_some("is not a valid id"),
        "uri" | "url" | "canonical" | "oid" | "uuid" => s
            .chars()
            .any(char::is_whitespace)
            .then_some("contains whitespace"),
        "date" => (!is_date(s)).then_some("is not a valid FHIR date"),
        "dateTime" => (!is_date_time(s)).then_some("is not a valid FHIR dateTime"),
        "instant" => (!is_instant(s)).then_some("is not a valid FHIR instant"),
        "time" => (!is_time(s)).then_some("is not a valid FHIR time"),
        _ => None,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// YYYY, YYYY-MM or YYYY-MM-DD (R4 `date`).
pub fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some(year) = parts.first().and_then(|y| digits(y, 4)) else {
        return false;
    };
    if year == 0 || parts.len() > 3 {
        return false;
    }
    let month = match parts.get(1) {
        None => return true,
        Some(m) => match digits(m, 2) {
            Some(m @ 1..=12) => m,
            _ => return false,
        },
    };
    match parts.get(2) {
        None => true,
        Some(d) => match digits(d, 2) {
            Some(d) => d >= 1 && d <= days_in_month(year, month),
            None => false,
        },
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// hh:mm:ss(.fraction)? (R4 `time`).
pub fn is_time(s: &str) -> bool {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let p: Vec<&str> = main.split(':').collect();
    p.len() == 3
        && matches!(digits(p[0], 2), Some(0..=23))
        && matches!(digits(p[1], 2), Some(0..=59))
        && matches!(digits(p[2], 2), Some(0..=60))
}

fn is_offset(s: &str) -> bool {
    if s == "Z" {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    match rest.split_once(':') {
        Some((h, m)) => matches!(
            (digits(h, 2), digits(m, 2)),
            (Some(14), Some(0)) | (Some(0..=13), Some(0..=59))
        ),
        None => false,
    }
}

fn split_time_zone(t: &str) -> Option<(&str, &str)> {
    if let Some(stripped) = t.strip_suffix('Z') {
        return Some((stripped, "Z"));
    }
    let idx = t.rfind(['+', '-'])?;
    Some((&t[..idx], &t[idx..]))
}

/// R4 `dateTime`: a date, or a full date with time and a time zone.
pub fn is_date_time(s: &str) -> bool {
    match s.split_once('T') {
        None => is_date(s),
        Some((d, t)) => {
            if d.len() != 10 || !is_date(d) {
                return false;
            }
            match split_time_zone(t) {
                Some((time, zone)) => is_time(time) && is_offset(zone),
                None => false,
            }
        }
    }
}

/// R4 `instant`: a full date-time with seconds and a time zone.
pub fn is_instant(s: &str) -> bool {
    s.contains('T') && is_date_time(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_follow_the_r4_lexical_rules() {
        for ok in [
            "2025",
            "2025-03",
            "2025-03-04",
            "2025-03-04T09:00:00Z",
            "2024-02-29T23:59:60.123+14:00",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "",
            "25",
            "2025-13",
            "2025-02-30",
            "2025-03-04T09:00Z",
            "2025-03-04T09:00:00",
            "2025-03-04 09:00:00Z",
            "0000",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert!(!is_instant("2025-03-04"));
    }

    #[test]
    fn choice_suffixes_map_to_type_codes_and_back() {
        assert_eq!(type_from_suffix("DateTime").as_deref(), Some("dateTime"));
        assert_eq!(
            type_from_suffix("CodeableConcept").as_deref(),
            Some("CodeableConcept")
        );
        assert_eq!(type_from_suffix("Nonsense"), None);
        assert_eq!(suffix_from_type("dateTime"), "DateTime");
    }

    #[test]
    fn integers_written_with_a_fraction_are_not_integers() {
        let v: Value = serde_json::from_str("112.0").unwrap();
        assert!(shape_problem("integer", &v).is_some());
        assert!(shape_problem("decimal", &v).is_none());
        assert!(shape_problem("integer", &Value::from(112)).is_none());
    }
}
