//! The code systems local validation knows: every `coding` in a resource whose system is one of
//! them is checked. A code outside a closed list, or failing a format check (SNOMED CT, LOINC),
//! is an error; a code outside the published part of a partly published list is a warning.
//! Code-system URIs match with or without `/R4/`. Pure; messages carry no code.

use std::fmt;

use super::Report;
use crate::cad::is_snomed_id;
use crate::mapping::codes::*;
use crate::mapping::node::Json;

/// One step of a JSON path below a resource.
pub(super) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Checks every `coding` whose system we know. `segments` is scratch space (the path below
/// `base`); a path is only written when there is something to report.
pub(super) fn codings<'a, J: Json>(
    v: &'a J,
    base: &dyn fmt::Display,
    segments: &mut Vec<Segment<'a>>,
    r: &mut Report,
) {
    if let Some(items) = v.as_array() {
        for (i, child) in items.iter().enumerate() {
            segments.push(Segment::Index(i));
            codings(child, base, segments, r);
            segments.pop();
        }
        return;
    }
    for (k, child) in v.members() {
        if k == "coding" {
            for (i, system, code) in system_codes(child) {
                let path = || {
                    let mut path = base.to_string();
                    for segment in segments.iter() {
                        match segment {
                            Segment::Key(k) => {
                                path.push('.');
                                path.push_str(k);
                            }
                            Segment::Index(i) => path.push_str(&format!("[{i}]")),
                        }
                    }
                    format!("{path}.coding[{i}].code")
                };
                coding(system, code, path, r);
            }
        } else {
            segments.push(Segment::Key(k));
            codings(child, base, segments, r);
            segments.pop();
        }
    }
}

/// The codings of a `coding` member that have both a system and a code, as local validation
/// reads them: `(index, system, code)`. The Bundle write reads them the same way
/// ([`crate::mapping::node::Walked`]).
pub(crate) fn system_codes<J: Json>(coding: &J) -> impl Iterator<Item = (usize, &str, &str)> {
    coding
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c["system"].as_str()?, c["code"].as_str()?)))
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

/// What local validation says of one coding, when it says something.
enum Verdict {
    /// Not in a closed list: an error.
    NotInList(&'static str),
    /// Failing a code system's format check: an error.
    FailsCheck(&'static str),
    /// Not in the published part of a partly published list: a warning.
    NotInVisiblePart(&'static str),
}

fn verdict(system: &str, code: &str) -> Option<Verdict> {
    let (label, k) = known(system)?;
    match k {
        Known::Closed(codes) if !codes.contains(&code) => Some(Verdict::NotInList(label)),
        Known::Check(ok) if !ok(code) => Some(Verdict::FailsCheck(label)),
        Known::Visible(codes) if !codes.contains(&code) => Some(Verdict::NotInVisiblePart(label)),
        _ => None,
    }
}

/// True when local validation has nothing to say about this coding (no error, no warning): what
/// the Bundle write checks on its way ([`crate::mapping::node::Walked`]), so that [`codings`]
/// runs only when there is something to report.
pub(crate) fn coding_is_clean(system: &str, code: &str) -> bool {
    verdict(system, code).is_none()
}

/// Checks one coding; `path` is only built when there is something to report.
fn coding(system: &str, code: &str, path: impl FnOnce() -> String, r: &mut Report) {
    match verdict(system, code) {
        Some(Verdict::NotInList(label)) => r.error(
            path(),
            "code_not_in_code_system",
            format!("code is not in {label}"),
        ),
        Some(Verdict::FailsCheck(label)) => r.error(
            path(),
            "code_not_in_code_system",
            format!("code is not a valid {label} code"),
        ),
        Some(Verdict::NotInVisiblePart(label)) => r.warn(
            path(),
            "code_not_in_visible_code_system",
            format!("code is not in the published part of {label}"),
        ),
        None => {}
    }
}

/// The name of an NHS England code system (`…/CodeSystem/<name>`, with or without `/R4/`),
/// or `""` for any other URI.
pub(super) fn system_name(uri: &str) -> &str {
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
}
