//! Local validation of an ADS call Bundle (or of a `batch` submission of call Bundles).
//!
//! **In:** Bundle JSON, ours or anyone's. **Out:** a [`Report`] of error and warning
//! [`Problem`]s with JSON paths into the Bundle. Pure; never fails; messages never contain a
//! value from the Bundle (codes and identifiers can be patient data).
//!
//! **Errors** (the Bundle must not be submitted): not an ADS call Bundle; a missing ADS
//! mandatory call item that every snapshot has (ADS0, ADS1, ADS2A, ADS2B, ADS3, ADS10,
//! `Communication.status`); an NHS number that is not ten digits or fails modulus 11; a
//! malformed ODS code; a code outside a closed code system we know; typed timestamps in an
//! impossible order or repeated; a `fullUrl` that is not `urn:uuid:<id>`, a duplicate, or a
//! reference that does not resolve.
//!
//! **Warnings** (submitted; DPS keeps the latest snapshot, so a later one can fix them): an ADS
//! mandatory item that is only known later in a call's life (ADS15, ADS20, ADS21, ADS33); an
//! NHS number without its verification status; a code outside the visible part of a code
//! system whose list NHS England has not fully published; a timestamp after the snapshot time;
//! no ADS-BundleType tag.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::codes::*;
use super::Problem;
use crate::cad::{is_ods_code, is_snomed_id, is_valid_nhs_number};

/// The outcome of local validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems that make the Bundle unfit to submit.
    pub errors: Vec<Problem>,
    /// Problems worth a look that do not stop submission.
    pub warnings: Vec<Problem>,
}

impl Report {
    /// True when there are no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, path: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.errors.push(Problem {
            path: path.into(),
            rule,
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            rule,
            message: message.into(),
        });
    }
}

/// Validates one call Bundle, or each call Bundle of a `batch` submission Bundle.
pub fn submission(b: &Value) -> Report {
    let mut report = Report::default();
    if b["resourceType"] == "Bundle" && b["type"] == "batch" {
        let entries = b["entry"].as_array().map_or(&[][..], Vec::as_slice);
        if entries.is_empty() {
            report.error("$.entry", "empty_bundle", "a batch Bundle needs entries");
        }
        for (i, e) in entries.iter().enumerate() {
            check_bundle(
                &e["resource"],
                &format!("$.entry[{i}].resource"),
                &mut report,
            );
        }
    } else {
        check_bundle(b, "$", &mut report);
    }
    report
}

/// Validates one ADS call Bundle.
pub fn bundle(b: &Value) -> Report {
    let mut report = Report::default();
    check_bundle(b, "$", &mut report);
    report
}

fn check_bundle(b: &Value, base: &str, r: &mut Report) {
    if b["resourceType"] != "Bundle" {
        r.error(
            format!("{base}.resourceType"),
            "not_a_bundle",
            "must be a FHIR Bundle",
        );
        return;
    }
    if !matches!(b["type"].as_str(), Some("collection" | "message")) {
        r.error(
            format!("{base}.type"),
            "bundle_type",
            "an ADS call Bundle is of type collection or message",
        );
    }
    if b["id"].as_str().is_none() {
        r.error(
            format!("{base}.id"),
            "missing_element",
            "Bundle.id is missing",
        );
    }
    let snapshot = b["timestamp"].as_str().and_then(parse_time);
    if snapshot.is_none() {
        r.error(
            format!("{base}.timestamp"),
            "missing_element",
            "Bundle.timestamp is missing or not an RFC 3339 instant",
        );
    }
    bundle_tag(b, base, r);

    let entries = b["entry"].as_array().map_or(&[][..], Vec::as_slice);
    if entries.is_empty() {
        r.error(
            format!("{base}.entry"),
            "empty_bundle",
            "an ADS call Bundle needs entries",
        );
        return;
    }
    let full_urls = full_urls(entries, base, r);
    let refs = if super::all_references_resolve(b, &full_urls) {
        Vec::new()
    } else {
        super::references(b)
    };
    for (path, reference) in refs {
        if !full_urls.contains(reference.as_str()) {
            let path = format!("{base}{}", &path[1..]);
            r.error(
                path,
                "unresolved_reference",
                "reference does not resolve to a bundle entry",
            );
        }
    }
    if b["type"] == "message" && entries[0]["resource"]["resourceType"] != "MessageHeader" {
        r.error(
            format!("{base}.entry[0]"),
            "message_header_first",
            "a message Bundle starts with its MessageHeader",
        );
    }

    let communications: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i]["resource"]["resourceType"] == "Communication")
        .collect();
    if communications.len() != 1 {
        r.error(
            format!("{base}.entry"),
            "ads_communication_count",
            "an ADS call Bundle has exactly one Communication",
        );
    }
    for (i, e) in entries.iter().enumerate() {
        let path = format!("{base}.entry[{i}].resource");
        let res = &e["resource"];
        match res["resourceType"].as_str() {
            Some("Communication") => communication(res, &path, r),
            Some("Organization") => identifiers(res, &path, ODS_ORGANIZATION_SYSTEM, r),
            Some("Location") => identifiers(res, &path, ODS_SITE_SYSTEM, r),
            Some("Patient") => patient(res, &path, r),
            _ => {}
        }
        codings(res, &mut path.clone(), r);
        typed_times(res, &path, snapshot, r);
    }
}

fn bundle_tag(b: &Value, base: &str, r: &mut Report) {
    let tags = b["meta"]["tag"].as_array().map_or(&[][..], Vec::as_slice);
    let name = system_name(ADS_BUNDLE_TYPE_SYSTEM);
    if !tags
        .iter()
        .any(|t| t["system"].as_str().map(system_name) == Some(name))
    {
        r.warn(
            format!("{base}.meta.tag"),
            "ads_bundle_type_missing",
            "no ADS-BundleType tag (mvp, bundle-1, bundle-2 or epr)",
        );
    }
}

fn full_urls<'a>(entries: &'a [Value], base: &str, r: &mut Report) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let path = format!("{base}.entry[{i}]");
        let Some(url) = e["fullUrl"].as_str() else {
            r.error(
                format!("{path}.fullUrl"),
                "full_url",
                "every entry needs a fullUrl",
            );
            continue;
        };
        let id = url
            .strip_prefix("urn:uuid:")
            .filter(|u| uuid::Uuid::parse_str(u).is_ok());
        match id {
            None => r.error(
                format!("{path}.fullUrl"),
                "full_url",
                "fullUrl must be urn:uuid:<uuid>",
            ),
            Some(id) if e["resource"]["id"].as_str() != Some(id) => r.error(
                format!("{path}.resource.id"),
                "resource_id_mismatch",
                "resource.id must be the UUID of the entry's fullUrl",
            ),
            Some(_) => {}
        }
        if !seen.insert(url) {
            r.error(
                format!("{path}.fullUrl"),
                "duplicate_full_url",
                "fullUrl appears in more than one entry",
            );
        }
    }
    seen
}

/// ADS items of the Communication.
fn communication(c: &Value, path: &str, r: &mut Report) {
    let mut missing = |present: bool, at: &str, item: &str| {
        if !present {
            r.error(
                format!("{path}.{at}"),
                "ads_mandatory_item_missing",
                format!("{item} is mandatory"),
            );
        }
    };
    let id = &c["identifier"][0];
    missing(
        c["sender"]["reference"].is_string(),
        "sender",
        "ADS0 submitting organisation code (Communication.sender)",
    );
    missing(
        c["recipient"][0]["reference"].is_string(),
        "recipient",
        "ADS1 provider organisation code (Communication.recipient)",
    );
    missing(
        id["value"].is_string(),
        "identifier[0].value",
        "ADS3 call identifier (Communication.identifier.value)",
    );
    missing(
        id["period"]["start"].is_string(),
        "identifier[0].period.start",
        "ADS2A call date (Communication.identifier.period.start)",
    );
    missing(
        extension(c, EXT_CALL_ORIGIN).is_some(),
        "extension",
        "ADS2B call origin (extension ADS-CallOrigin)",
    );
    missing(
        c["sent"].is_string(),
        "sent",
        "ADS10 time call connected (Communication.sent)",
    );
    missing(c["status"].is_string(), "status", "Communication.status");

    let categories: Vec<&str> = extensions(c, EXT_RESPONSE_CATEGORY)
        .filter_map(|e| {
            e["extension"].as_array()?.iter().find_map(|sub| {
                (sub["url"] == "responseCategoryType")
                    .then(|| sub["valueCodeableConcept"]["coding"][0]["code"].as_str())
                    .flatten()
            })
        })
        .collect();
    let mut later = |present: bool, at: &str, item: &str| {
        if !present {
            r.warn(
                format!("{path}.{at}"),
                "ads_mandatory_item_not_yet_known",
                format!("{item} is mandatory in ADS but not known in this snapshot"),
            );
        }
    };
    later(
        categories.contains(&"initial"),
        "extension",
        "ADS15 initial response category (cad: initial_response_category)",
    );
    later(
        categories.contains(&"reporting"),
        "extension",
        "ADS20 reporting response category (cad: reporting_response_category)",
    );
    later(
        typed_codes(c).contains("time-dispatch-code-established"),
        "extension",
        "ADS21 time dispatch code established (cad: times.dispatch_code_established)",
    );
    later(
        c["category"].is_array(),
        "category",
        "ADS33 treatment type (cad: treatment_type)",
    );
    if let Some(e) = extension(c, EXT_AQI_RESPONSE_TIME) {
        if e["valueDuration"]["value"].as_f64().is_none_or(|v| v < 0.0) {
            r.error(
                format!("{path}.extension"),
                "invalid_duration",
                "the AQI response time must be a duration of zero or more seconds",
            );
        }
    }
}

fn identifiers(res: &Value, path: &str, system: &str, r: &mut Report) {
    let (min, max) = if system == ODS_SITE_SYSTEM {
        (3, 6)
    } else {
        (3, 5)
    };
    for (i, id) in res["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if id["system"] != system {
            continue;
        }
        if !id["value"]
            .as_str()
            .is_some_and(|v| is_ods_code(v, min, max))
        {
            r.error(
                format!("{path}.identifier[{i}].value"),
                "invalid_ods_code",
                format!("must be an ODS code: {min} to {max} upper-case letters or digits"),
            );
        }
    }
}

fn patient(p: &Value, path: &str, r: &mut Report) {
    for (i, id) in p["identifier"].as_array().into_iter().flatten().enumerate() {
        if id["system"] != NHS_NUMBER_SYSTEM {
            continue;
        }
        let at = format!("{path}.identifier[{i}]");
        let status = extension(id, EXT_NHS_NUMBER_VERIFICATION);
        match id["value"].as_str() {
            Some(n) if !is_valid_nhs_number(n) => r.error(
                format!("{at}.value"),
                "invalid_nhs_number",
                "must be ten digits with a valid modulus-11 check digit",
            ),
            Some(_) if status.is_none() => r.warn(
                format!("{at}.extension"),
                "nhs_number_verification_status_missing",
                "NHS number without its UK Core verification status",
            ),
            _ => {}
        }
    }
}

/// Checks every `coding` whose system we know.
fn codings(v: &Value, path: &mut String, r: &mut Report) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                if k == "coding" {
                    for (i, c) in child.as_array().into_iter().flatten().enumerate() {
                        if let (Some(system), Some(code)) =
                            (c["system"].as_str(), c["code"].as_str())
                        {
                            coding(system, code, || format!("{path}[{i}].code"), r);
                        }
                    }
                } else {
                    codings(child, path, r);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                codings(child, path, r);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// What we know about a code system: a closed list, a partly published list, or a check.
enum Known {
    Closed(&'static [&'static str]),
    Visible(&'static [&'static str]),
    Check(fn(&str) -> bool),
}

const CALL_ORIGIN_CODES: [&str; 16] = [
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "98",
];

fn known(system: &str) -> Option<(&'static str, Known)> {
    Some(match (system_name(system), system) {
        ("ADS-BundleType", _) => (
            "ADS-BundleType",
            Known::Closed(&["mvp", "bundle-1", "bundle-2", "epr"]),
        ),
        ("Ambulance-CallOrigin", _) => ("Ambulance-CallOrigin", Known::Closed(&CALL_ORIGIN_CODES)),
        ("ADS-ResponseCategoryType", _) => (
            "ADS-ResponseCategoryType",
            Known::Closed(&["initial", "reporting"]),
        ),
        ("ADS-ResponseCategory", _) => (
            "ADS-ResponseCategory",
            Known::Closed(&["1", "2", "3", "4", "5"]),
        ),
        ("ADS-TriageCategory", _) => (
            "ADS-TriageCategory",
            Known::Closed(&["01", "02", "03", "04"]),
        ),
        ("Ambulance-Cat1EarlyPredictionFlag", _) => {
            ("Ambulance-Cat1EarlyPredictionFlag", Known::Visible(&["01"]))
        }
        ("ADS-TreatmentType", _) => (
            "ADS-TreatmentType",
            Known::Closed(&[
                "hear-and-treat",
                "see-and-treat",
                "see-and-convey-ed",
                "see-and-convey-other",
            ]),
        ),
        ("ADS-ConveyanceOutcome", _) => (
            "ADS-ConveyanceOutcome",
            Known::Closed(&[
                "conveyed-to-emergency-department",
                "conveyed-to-other-destination",
                "treated-at-scene",
                "referred-to-other-service",
                "refused-conveyance",
                "deceased",
                "not-conveyed-other",
            ]),
        ),
        (_, DATE_TIME_TYPE_SYSTEM) => (
            "UKCore-DateTimeType",
            Known::Check(|c| DATE_TIME_TYPES.iter().any(|(d, _)| *d == c)),
        ),
        (_, NHS_NUMBER_VERIFICATION_SYSTEM) => (
            "UKCore-NHSNumberVerificationStatusEngland",
            Known::Closed(&["01", "02", "03", "04", "05", "06", "07", "08"]),
        ),
        (_, YES_NO_SYSTEM) => ("v2-0136 Yes/No", Known::Closed(&["Y", "N"])),
        (_, SNOMED_SYSTEM) => ("SNOMED CT concept id", Known::Check(is_snomed_id)),
        (_, LOINC_SYSTEM) => ("LOINC code", Known::Check(is_loinc_code)),
        _ => return None,
    })
}

/// Checks one coding; `path` is only built when there is something to report.
fn coding(system: &str, code: &str, path: impl FnOnce() -> String, r: &mut Report) {
    let Some((label, k)) = known(system) else {
        return;
    };
    match k {
        Known::Closed(codes) if !codes.contains(&code) => r.error(
            path(),
            "code_not_in_code_system",
            format!("code is not in {label}"),
        ),
        Known::Check(ok) if !ok(code) => r.error(
            path(),
            "code_not_in_code_system",
            format!("code is not a valid {label} code"),
        ),
        Known::Visible(codes) if !codes.contains(&code) => r.warn(
            path(),
            "code_not_in_visible_code_system",
            format!("code is not in the published part of {label}"),
        ),
        _ => {}
    }
}

/// The name of an NHS England code system (`…/CodeSystem/<name>`, with or without `/R4/`),
/// or `""` for any other URI.
fn system_name(uri: &str) -> &str {
    uri.strip_prefix("https://fhir.nhs.uk/R4/CodeSystem/")
        .or_else(|| uri.strip_prefix("https://fhir.nhs.uk/CodeSystem/"))
        .unwrap_or("")
}

/// A LOINC code `NNNNN-C` whose check digit is the mod-10 check of its digits.
pub fn is_loinc_code(code: &str) -> bool {
    let Some((body, check)) = code.split_once('-') else {
        return false;
    };
    if body.is_empty()
        || body.len() > 7
        || check.len() != 1
        || !body
            .bytes()
            .chain(check.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let dd = d * 2;
                dd / 10 + dd % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
}

fn extensions<'a>(res: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    res["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |e| e["url"] == url)
}

fn extension<'a>(res: &'a Value, url: &'a str) -> Option<&'a Value> {
    extensions(res, url).next()
}

/// The typed date-times of a resource: `(code, time, extension index)`.
fn typed(res: &Value) -> Vec<(&str, Option<DateTime<Utc>>, usize)> {
    res["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| e["url"] == EXT_TYPED_DATE_TIME)
        .filter_map(|(i, e)| {
            let subs = e["extension"].as_array()?;
            let code = subs.iter().find(|s| s["url"] == "dateTimeType")?["valueCodeableConcept"]
                ["coding"][0]["code"]
                .as_str()?;
            let at = subs
                .iter()
                .find(|s| s["url"] == "dateTime")
                .and_then(|s| s["valueDateTime"].as_str())
                .and_then(parse_time);
            Some((code, at, i))
        })
        .collect()
}

fn typed_codes(res: &Value) -> BTreeSet<&str> {
    typed(res).into_iter().map(|(code, ..)| code).collect()
}

/// Pairs `(earlier, later)` of DateTimeType codes whose order is fixed (the `cad.call.v1`
/// rules, restated on the FHIR side).
fn order_rules() -> Vec<(&'static str, &'static str)> {
    let mut rules = vec![
        ("time-call-answered", "time-call-ended"),
        ("time-call-answered", "time-dispatch-code-established"),
        ("clock-start-date-time", "clock-stop-date-time"),
        ("time-resource-mobilised", "time-stood-down"),
    ];
    let chain = [
        "time-resource-mobilised",
        "time-resource-arrived-on-scene",
        "time-resource-left-scene",
        "time-arrived-receiving-location",
    ];
    for (i, a) in chain.iter().enumerate() {
        for b in &chain[i + 1..] {
            rules.push((a, b));
        }
        rules.push((a, "time-patient-handover"));
        rules.push((a, "time-clinical-handover"));
    }
    for a in chain.iter().chain(&[
        "time-patient-handover",
        "time-clinical-handover",
        "time-stood-down",
    ]) {
        rules.push((a, "time-clear"));
    }
    rules
}

fn typed_times(res: &Value, path: &str, snapshot: Option<DateTime<Utc>>, r: &mut Report) {
    let times = typed(res);
    if times.is_empty() {
        return;
    }
    let mut by_code: BTreeMap<&str, (Option<DateTime<Utc>>, usize)> = BTreeMap::new();
    for (code, at, i) in times {
        if by_code.insert(code, (at, i)).is_some() {
            r.error(
                format!("{path}.extension[{i}]"),
                "typed_date_time_repeated",
                "the same DateTimeType appears twice in one resource",
            );
        }
        if let (Some(at), Some(snapshot)) = (at, snapshot) {
            if at > snapshot {
                r.warn(
                    format!("{path}.extension[{i}]"),
                    "timestamp_after_snapshot",
                    "typed timestamp is later than Bundle.timestamp",
                );
            }
        }
    }
    for (earlier, later) in order_rules() {
        if let (Some((Some(a), _)), Some((Some(b), i))) = (by_code.get(earlier), by_code.get(later))
        {
            if b < a {
                r.error(
                    format!("{path}.extension[{i}]"),
                    "timestamps_out_of_order",
                    format!("{later} must not be before {earlier}"),
                );
            }
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cad::CallOrigin;

    #[test]
    fn call_origin_codes_match_the_decoder() {
        let codes: Vec<&str> = CallOrigin::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, CALL_ORIGIN_CODES);
    }

    #[test]
    fn loinc_check_digits_follow_mod_10() {
        for ok in ["8867-4", "9279-1", "59408-5", "85354-9", "15074-8"] {
            assert!(is_loinc_code(ok), "{ok}");
        }
        for bad in ["8867-5", "8867", "-4", "88a7-4", "12345678-9"] {
            assert!(!is_loinc_code(bad), "{bad}");
        }
    }

    #[test]
    fn order_rules_cover_every_response_step_before_clear() {
        let rules = order_rules();
        assert!(rules.contains(&("time-resource-mobilised", "time-clear")));
        assert!(rules.contains(&("time-resource-left-scene", "time-clinical-handover")));
        assert!(!rules.contains(&("time-resource-arrived-on-scene", "time-stood-down")));
    }
}
