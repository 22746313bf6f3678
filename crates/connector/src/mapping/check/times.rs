//! The typed timestamps (UKCore DateTimeType extensions) of a resource: each type at most once,
//! none after the snapshot time (a warning), and the fixed orders of the `cad.call.v1` rules
//! restated on the FHIR side (an error when broken). Pure; messages carry no timestamp.

use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::Report;
use crate::mapping::codes::*;
use crate::mapping::node::Json;

/// A typed date-time of a resource: `(code, time, extension index)`.
pub(super) type TypedTime<'a> = (&'a str, Option<DateTime<Utc>>, usize);

/// The typed date-times of a resource.
pub(super) type Typed<'a> = Vec<TypedTime<'a>>;

/// [`Typed`] of a resource. The checks read them once per resource ([`super::check_bundle`]
/// hands them to each rule that needs them).
pub(super) fn typed<J: Json>(res: &J) -> Typed<'_> {
    res["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| e["url"].is(EXT_TYPED_DATE_TIME))
        .filter_map(|(i, e)| {
            let subs = e["extension"].as_array()?;
            let code = subs.iter().find(|s| s["url"].is("dateTimeType"))?["valueCodeableConcept"]
                ["coding"][0]["code"]
                .as_str()?;
            let at = subs
                .iter()
                .find(|s| s["url"].is("dateTime"))
                .and_then(|s| s["valueDateTime"].as_time());
            Some((code, at, i))
        })
        .collect()
}

/// True when `times` has a typed date-time of DateTimeType `code`.
pub(super) fn has_code(times: &[TypedTime<'_>], code: &str) -> bool {
    times.iter().any(|(c, ..)| *c == code)
}

/// A typed time's instant (when it parses) and its extension index.
type TimeAt = (Option<DateTime<Utc>>, usize);

/// [`order_rules`], made once.
static ORDER_RULES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(order_rules);

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
    times: &[TypedTime<'_>],
    path: &dyn fmt::Display,
    snapshot: Option<DateTime<Utc>>,
    r: &mut Report,
) {
    if times.is_empty() {
        return;
    }
    // A resource has a handful of typed times: a scan of them beats a map.
    let mut by_code: Vec<(&str, TimeAt)> = Vec::with_capacity(times.len());
    let find =
        |by_code: &[(&str, TimeAt)], code: &str| by_code.iter().position(|(c, _)| *c == code);
    let get = |by_code: &[(&str, TimeAt)], code: &str| find(by_code, code).map(|at| by_code[at].1);
    for &(code, at, i) in times {
        // As a map's insert: a repeated code keeps its last time, and is an error.
        let repeated = find(&by_code, code);
        match repeated {
            Some(slot) => by_code[slot].1 = (at, i),
            None => by_code.push((code, (at, i))),
        }
        if repeated.is_some() {
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
    for &(earlier, later) in ORDER_RULES.iter() {
        if let (Some((Some(a), _)), Some((Some(b), i))) =
            (get(&by_code, earlier), get(&by_code, later))
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

/// The clinical times of a resource that belong to a patient contact: `(element, time)`.
fn clinical_times<J: Json>(res: &J) -> Vec<(&'static str, Option<DateTime<Utc>>)> {
    let at = |v: &J| v.as_time();
    match res["resourceType"].as_str() {
        Some("Observation") if res.has("encounter") => {
            vec![("effectiveDateTime", at(&res["effectiveDateTime"]))]
        }
        Some("MedicationAdministration") => {
            vec![("effectiveDateTime", at(&res["effectiveDateTime"]))]
        }
        Some("Procedure") => vec![("performedDateTime", at(&res["performedDateTime"]))],
        Some("Condition") => vec![("recordedDate", at(&res["recordedDate"]))],
        Some("Flag") => vec![("period.start", at(&res["period"]["start"]))],
        _ => Vec::new(),
    }
}

/// Rules across sections of one call Bundle: response and patient-contact times against the
/// call's own times, and Encounter status against the state of the call.
///
/// | rule | severity | when |
/// |---|---|---|
/// | `response_time_before_call_answered` | error | a response time (an Encounter's typed timestamp) is before the call was answered: no resource is sent to a call that does not exist yet |
/// | `clinical_time_before_call_answered` | warning | an observation, medication, procedure, diagnosis or flag is dated before the call was answered (possible with a device clock that is off) |
/// | `encounter_status_contradicts_times` | error | an Encounter is `planned` although one of its response times says a vehicle arrived on scene |
/// | `encounter_open_after_call_closed` | error | the call is closed (its call-ended time is known, and every response is clear or stood down, or no vehicle was sent and the Communication is `stopped`) but an Encounter is still `planned`, `arrived`, `triaged` or `in-progress` |
/// Returns whether the Bundle says the call is closed.
/// `typed` holds each entry's resource's [`Typed`], by entry index.
pub(super) fn cross_section<J: Json>(
    entries: &[J],
    typed: &[Typed<'_>],
    base: &str,
    r: &mut Report,
) -> bool {
    let resources = || {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| (super::Resource { base, entry: i }, &e["resource"]))
    };
    let Some((at, communication)) =
        resources().find(|(_, res)| res["resourceType"].is("Communication"))
    else {
        return false;
    };
    let call_times = &typed[at.entry];
    let time_of = |code: &str| {
        call_times
            .iter()
            .find(|(c, ..)| *c == code)
            .and_then(|(_, at, _)| *at)
    };
    let answered = time_of("time-call-answered");
    let ended = time_of("time-call-ended");
    let encounters: Vec<(super::Resource<'_>, &J)> = resources()
        .filter(|(_, res)| res["resourceType"].is("Encounter"))
        .collect();

    // Closed: the call ended, and every Encounter that saw a vehicle has it clear or stood
    // down, or (no vehicle sent) the Communication is `stopped` (ADS4 stop code). Any response
    // time shows a vehicle, not only `time-resource-mobilised`: a response may arrive on scene
    // with its mobilised time not (yet) recorded, and it is not done until clear or stood down.
    let mobilised: Vec<&Typed<'_>> = encounters
        .iter()
        .map(|(at, _)| &typed[at.entry])
        .filter(|times| times.iter().any(|(c, ..)| !c.starts_with("time-call")))
        .collect();
    let responses_done = if mobilised.is_empty() {
        communication["status"].is("stopped")
    } else {
        mobilised
            .iter()
            .all(|times| has_code(times, "time-clear") || has_code(times, "time-stood-down"))
    };
    let closed = ended.is_some() && responses_done;

    for (path, e) in &encounters {
        let times = &typed[path.entry];
        if let Some(answered) = answered {
            for (code, at, i) in times {
                if code.starts_with("time-call") {
                    continue;
                }
                if at.is_some_and(|at| at < answered) {
                    r.error(
                        format!("{path}.extension[{i}]"),
                        "response_time_before_call_answered",
                        format!("{code} is before the call was answered"),
                    );
                }
            }
        }
        let status = e["status"].as_str().unwrap_or_default();
        let arrived = times
            .iter()
            .any(|(code, at, _)| *code == "time-resource-arrived-on-scene" && at.is_some());
        if status == "planned" && arrived {
            r.error(
                format!("{path}.status"),
                "encounter_status_contradicts_times",
                "the Encounter is planned although its vehicle arrived on scene",
            );
        }
        if closed && matches!(status, "planned" | "arrived" | "triaged" | "in-progress") {
            r.error(
                format!("{path}.status"),
                "encounter_open_after_call_closed",
                format!("the call is closed but the Encounter is still {status}"),
            );
        }
    }
    if let Some(answered) = answered {
        for (path, res) in resources() {
            for (element, at) in clinical_times(res) {
                if at.is_some_and(|at| at < answered) {
                    r.warn(
                        format!("{path}.{element}"),
                        "clinical_time_before_call_answered",
                        format!("{element} is before the call was answered"),
                    );
                }
            }
        }
    }
    closed
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
