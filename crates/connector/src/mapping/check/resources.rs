//! The per-resource ADS rules of a call Bundle: the mandatory items of the Communication (errors
//! for those every snapshot has, warnings for those known later in a call's life, and the AQI
//! response time), ODS codes in Organization and Location identifiers, and NHS numbers (check
//! digit, verification status) in Patient identifiers. Pure; messages carry no Bundle value.

use std::fmt;

use super::times::{has_code, TypedTime};
use super::Report;
use crate::cad::{is_ods_code, is_valid_nhs_number};
use crate::mapping::codes::*;
use crate::mapping::node::Json;

/// ADS items of the Communication.
/// `times` are the Communication's typed date-times ([`super::times::typed`]).
pub(super) fn communication<J: Json>(
    c: &J,
    times: &[TypedTime<'_>],
    path: &dyn fmt::Display,
    r: &mut Report,
) {
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
                sub["url"]
                    .is("responseCategoryType")
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
        has_code(times, "time-dispatch-code-established"),
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

pub(super) fn identifiers<J: Json>(res: &J, path: &dyn fmt::Display, system: &str, r: &mut Report) {
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
        if !id["system"].is(system) {
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

pub(super) fn patient<J: Json>(p: &J, path: &dyn fmt::Display, r: &mut Report) {
    for (i, id) in p["identifier"].as_array().into_iter().flatten().enumerate() {
        if !id["system"].is(NHS_NUMBER_SYSTEM) {
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

fn extensions<'a, J: Json>(res: &'a J, url: &'a str) -> impl Iterator<Item = &'a J> + 'a {
    res["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |e| e["url"].is(url))
}

fn extension<'a, J: Json>(res: &'a J, url: &'a str) -> Option<&'a J> {
    extensions(res, url).next()
}
