//! The typed timestamps (UKCore DateTimeType extensions) of a resource: each type at most once,
//! none after the snapshot time (a warning), and the fixed orders of the `cad.call.v1` rules
//! restated on the FHIR side (an error when broken). Pure; messages carry no timestamp.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Report;
use crate::mapping::codes::*;

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

pub(super) fn typed_codes(res: &Value) -> BTreeSet<&str> {
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

pub(super) fn typed_times(
    res: &Value,
    path: &str,
    snapshot: Option<DateTime<Utc>>,
    r: &mut Report,
) {
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

pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_rules_cover_every_response_step_before_clear() {
        let rules = order_rules();
        assert!(rules.contains(&("time-resource-mobilised", "time-clear")));
        assert!(rules.contains(&("time-resource-left-scene", "time-clinical-handover")));
        assert!(!rules.contains(&("time-resource-arrived-on-scene", "time-stood-down")));
    }
}
