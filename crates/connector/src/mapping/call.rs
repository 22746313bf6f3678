//! The call section: MessageHeader (message bundles), Communication (header and call items),
//! triage Observations and the Organizations.
//!
//! **In:** the mapping context. **Out:** Bundle entries, in Bundle order. Pure; every reference
//! points at a resource this mapping emits.

use super::codes::*;
use super::ctx::{entry, typed_date_times, yes_no, Ctx, CODE_SYSTEM_STYLES};
use super::node::{key, node, FrozenSet, Node};
use super::response::VehicleEncounter;
use super::BundleType;
use crate::cad::{ResponseCategory, TriageSystem};

/// The MessageHeader entry (only for `message` bundles).
pub(super) fn message_header<'a>(cx: &Ctx<'a>) -> Option<Node<'a>> {
    if cx.opts.bundle_type != BundleType::Message {
        return None;
    }
    let o = cx.opts;
    Some(entry(
        cx.url(&["MessageHeader"]),
        node!({
            "resourceType": "MessageHeader",
            "eventCoding": { "system": &o.message_event_system, "code": &o.message_event_code },
            "source": { "endpoint": &o.message_source_endpoint },
            "sender": cx.reference(&["Organization/", &cx.call.submitter_ods]),
            "focus": [ cx.reference(&["Communication"]) ],
        }),
    ))
}

// The frozen concepts of this section ([`Ctx::nhs_concept_frozen`]): room for 16 codes per code
// system style; the enums have fewer.
static CALL_ORIGIN: FrozenSet<{ 16 * CODE_SYSTEM_STYLES }> = FrozenSet::new();
static TREATMENT_TYPE: FrozenSet<{ 16 * CODE_SYSTEM_STYLES }> = FrozenSet::new();
static RESPONSE_CATEGORY_KIND: FrozenSet<{ 2 * CODE_SYSTEM_STYLES }> = FrozenSet::new();
static RESPONSE_CATEGORY_CODE: FrozenSet<{ 16 * CODE_SYSTEM_STYLES }> = FrozenSet::new();
static TRIAGE_CATEGORY: FrozenSet<{ TRIAGE_CATEGORIES.len() * CODE_SYSTEM_STYLES }> =
    FrozenSet::new();

/// The two response category extensions of the Communication.
#[derive(Clone, Copy)]
enum ResponseCategoryKind {
    Initial,
    Reporting,
}

/// The Communication entry: header and call details.
pub(super) fn communication<'a>(cx: &Ctx<'a>, vehicles: &[VehicleEncounter<'_>]) -> Node<'a> {
    let call = cx.call;
    let t = &call.times;
    let mut extensions = vec![node!({
        "url": EXT_CALL_ORIGIN,
        "valueCodeableConcept": cx.nhs_concept_frozen(
            &CALL_ORIGIN,
            call.call_origin as usize,
            CALL_ORIGIN_SYSTEM,
            call.call_origin.code(),
            Some(call.call_origin.display()),
        ),
    })];
    if let Some(flag) = call.nhs111_flag {
        extensions.push(node!({ "url": EXT_111_FLAG, "valueCodeableConcept": yes_no(flag) }));
    }
    if let Some(flag) = call.aqi_flag {
        extensions
            .push(node!({ "url": EXT_AQI_INCIDENT_FLAG, "valueCodeableConcept": yes_no(flag) }));
    }
    if let Some(c) = call.initial_response_category {
        extensions.push(response_category(cx, ResponseCategoryKind::Initial, c));
    }
    if let Some(c) = call.reporting_response_category {
        extensions.push(response_category(cx, ResponseCategoryKind::Reporting, c));
    }
    if let Some(code) = &call.cat1_early_prediction {
        // Only code 01 "Cat 1 e…" is visible in the code system; its display is truncated in
        // the IG, so no display is sent.
        extensions.push(node!({
            "url": EXT_CAT1_EARLY_PREDICTION,
            "extension": [ {
                "url": "cat1EarlyPredictionFlag",
                "valueCodeableConcept": cx.nhs_concept(CAT1_EARLY_PREDICTION_SYSTEM, code, None),
            } ],
        }));
    }
    if let (Some(start), Some(stop)) = (t.clock_start, t.clock_stop) {
        // AQI response time: clock start to clock stop, in whole seconds.
        extensions.push(node!({
            "url": EXT_AQI_RESPONSE_TIME,
            "valueDuration": {
                "value": (stop - start).num_seconds(),
                "unit": "s",
                "system": UCUM_SYSTEM,
                "code": "s",
            },
        }));
    }
    extensions.extend(typed_date_times(&[
        ("time-call-answered", Some(t.call_answered)),
        ("time-call-ended", t.call_ended),
        (
            "time-dispatch-code-established",
            t.dispatch_code_established,
        ),
        ("clock-start-date-time", t.clock_start),
        ("clock-stop-date-time", t.clock_stop),
    ]));

    let status = if call.stop_code.is_some() {
        "stopped"
    } else if t.call_ended.is_some() {
        "completed"
    } else {
        "in-progress"
    };
    let mut c = node!({
        "resourceType": "Communication",
        "meta": { "profile": [ ADS_COMMUNICATION_PROFILE ] },
        "identifier": [ {
            "system": CALL_ID_SYSTEM,
            "value": &call.call_id,
            "period": { "start": call.call_date },
            "assigner": cx.provider(),
        } ],
        "status": status,
        "sent": t.call_answered,
        "sender": cx.reference(&["Organization/", &call.submitter_ods]),
        "recipient": [ cx.provider() ],
    });
    c.set(key!("extension"), extensions);
    if let Some(code) = &call.stop_code {
        c.set(
            key!("statusReason"),
            cx.nhs_concept(STOP_CODE_SYSTEM, code, None),
        );
    }
    if let Some(tt) = call.treatment_type {
        let (code, display) = treatment_type(tt);
        c.set(
            key!("category"),
            vec![cx.nhs_concept_frozen(
                &TREATMENT_TYPE,
                tt as usize,
                TREATMENT_TYPE_SYSTEM,
                code,
                Some(display),
            )],
        );
    }
    // Every patient contact, then every response that attended no patient.
    let about: Vec<Node<'a>> = call
        .patients
        .iter()
        .map(|p| cx.reference(&["Encounter/", &p.contact_id]))
        .chain(
            vehicles
                .iter()
                .filter(|v| v.contact_id.is_none())
                .map(|v| node!({ "reference": v.url })),
        )
        .collect();
    if !about.is_empty() {
        c.set(key!("about"), about);
    }
    entry(cx.url(&["Communication"]), c)
}

fn response_category<'a>(
    cx: &Ctx<'a>,
    kind: ResponseCategoryKind,
    category: ResponseCategory,
) -> Node<'a> {
    let (kind_code, kind_display) = match kind {
        ResponseCategoryKind::Initial => ("initial", "Initial Response Category"),
        ResponseCategoryKind::Reporting => ("reporting", "Reporting Response Category"),
    };
    let (number, display) = match category {
        ResponseCategory::C1 => ("1", "Category 1"),
        ResponseCategory::C2 => ("2", "Category 2"),
        ResponseCategory::C3 => ("3", "Category 3"),
        ResponseCategory::C4 => ("4", "Category 4"),
        ResponseCategory::C5 => ("5", "Category 5"),
    };
    debug_assert_eq!(number, category.number().to_string());
    node!({
        "url": EXT_RESPONSE_CATEGORY,
        "extension": [
            {
                "url": "responseCategoryType",
                "valueCodeableConcept": cx.nhs_concept_frozen(
                    &RESPONSE_CATEGORY_KIND,
                    kind as usize,
                    RESPONSE_CATEGORY_TYPE_SYSTEM,
                    kind_code,
                    Some(kind_display),
                ),
            },
            {
                "url": "responseCategoryCode",
                "valueCodeableConcept": cx.nhs_concept_frozen(
                    &RESPONSE_CATEGORY_CODE,
                    category as usize,
                    RESPONSE_CATEGORY_SYSTEM,
                    number,
                    Some(display),
                ),
            },
        ],
    })
}

/// Triage Observations: up to one per ADS-TriageCategory (IG "Design Overview").
pub(super) fn triage_observations<'a>(cx: &Ctx<'a>) -> Vec<Node<'a>> {
    let Some(triage) = &cx.call.triage else {
        return Vec::new();
    };
    let mut items: Vec<(usize, &'static str, &'a str)> = Vec::new();
    match triage.system {
        TriageSystem::Ampds => items.push((0, AMPDS_SYSTEM, &triage.disposition_code)),
        TriageSystem::Pathways => {
            items.push((1, PATHWAYS_DX_SYSTEM, &triage.disposition_code));
            if let Some(sg) = &triage.symptom_group {
                items.push((2, PATHWAYS_SG_SYSTEM, sg));
            }
            if let Some(sd) = &triage.symptom_discriminator {
                items.push((3, PATHWAYS_SD_SYSTEM, sd));
            }
        }
    }
    items
        .into_iter()
        .map(|(category, system, code)| {
            let (cat_code, cat_display) = TRIAGE_CATEGORIES[category];
            let url = cx.url(&["Observation/triage/", cat_code]);
            let mut obs = node!({
                "resourceType": "Observation",
                "status": "final",
                "code": cx.nhs_concept_frozen(
                    &TRIAGE_CATEGORY,
                    category,
                    TRIAGE_CATEGORY_SYSTEM,
                    cat_code,
                    Some(cat_display),
                ),
                "focus": [ cx.reference(&["Communication"]) ],
                "performer": [ cx.provider() ],
                "valueCodeableConcept": { "coding": [ { "system": system, "code": code } ] },
            });
            if let Some(at) = cx.call.times.dispatch_code_established {
                obs.set(key!("effectiveDateTime"), at);
            }
            entry(url, obs)
        })
        .collect()
}

/// One Organization per distinct ODS code: submitter first, then the provider when different
/// (IG: "this may be the same resource if they are the same organisation").
pub(super) fn organizations<'a>(cx: &Ctx<'a>) -> Vec<Node<'a>> {
    let call = cx.call;
    let mut codes = vec![call.submitter_ods.as_str()];
    if call.provider_ods != call.submitter_ods {
        codes.push(call.provider_ods.as_str());
    }
    codes
        .into_iter()
        .map(|ods| {
            let url = cx.url(&["Organization/", ods]);
            entry(
                url,
                node!({
                    "resourceType": "Organization",
                    "identifier": [ { "system": ODS_ORGANIZATION_SYSTEM, "value": ods } ],
                }),
            )
        })
        .collect()
}
