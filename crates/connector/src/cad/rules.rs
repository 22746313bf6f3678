//! The `cad.call.v1` rules a JSON Schema cannot express, and the code checks they use.
//!
//! **In:** a deserialised [`CadCall`]. **Out:** `Ok` or the first broken rule as a
//! [`DecodeError`] (path and rule, never a value): codes, identifiers, check digits (NHS number
//! modulus 11, SNOMED CT Verhoeff), timestamp order and cross references.
//!
//! Layout: this file holds the rules and the field checks that report a [`DecodeError`];
//! `rules/formats.rs` the public, pure format predicates they use (ODS code, NHS number, SNOMED
//! CT identifier, UK postcode), which the mapping's local validation uses too.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::*;

mod formats;

pub use formats::{
    is_ods_code, is_snomed_id, is_uk_postcode, is_valid_nhs_number, nhs_check_digit,
};

type Result = std::result::Result<(), DecodeError>;

/// Where a field is in the record: the `$.patients[0].demographics.postcode` path an error
/// names, made into text only when a rule is broken (checking a valid record writes none).
#[derive(Clone, Copy)]
enum At<'a> {
    /// A field of the record itself: `$.field`.
    Root(&'static str),
    /// `base.field`.
    Field(&'a At<'a>, &'static str),
    /// `base[index]`.
    Index(&'a At<'a>, usize),
}

impl<'a> At<'a> {
    fn field(&'a self, name: &'static str) -> At<'a> {
        At::Field(self, name)
    }

    fn index(&'a self, i: usize) -> At<'a> {
        At::Index(self, i)
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root(field) => write!(f, "$.{field}"),
            At::Field(base, field) => write!(f, "{base}.{field}"),
            At::Index(base, i) => write!(f, "{base}[{i}]"),
        }
    }
}

pub(super) fn call(c: &CadCall) -> Result {
    if c.schema != SCHEMA_ID {
        return Err(DecodeError::SchemaMismatch {
            path: "$.schema".into(),
        });
    }
    ods_org(&c.provider_ods, &At::Root("provider_ods"))?;
    ods_org(&c.submitter_ods, &At::Root("submitter_ods"))?;
    identifier(&c.call_id, &At::Root("call_id"), 64)?;
    if let Some(t) = &c.triage {
        triage(t)?;
    }
    if let Some(code) = &c.cat1_early_prediction {
        if !(code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DecodeError::InvalidCode {
                path: "$.cat1_early_prediction".into(),
                rule: "must be a two-digit Ambulance-Cat1EarlyPredictionFlag code".into(),
            });
        }
    }
    if let Some(code) = &c.stop_code {
        code_text(code, &At::Root("stop_code"))?;
    }
    call_times(&c.times)?;

    let mut call_signs = HashSet::new();
    let responses = At::Root("responses");
    for (i, r) in c.responses.iter().enumerate() {
        let base = responses.index(i);
        call_sign(&r.call_sign, &base.field("call_sign"))?;
        if !call_signs.insert(r.call_sign.as_str()) {
            return Err(DecodeError::InconsistentReference {
                path: base.field("call_sign").to_string(),
                rule: "call sign appears in more than one response".into(),
            });
        }
        response_times(&r.times, &base.field("times"))?;
    }

    let mut contact_ids = HashSet::new();
    let patients = At::Root("patients");
    for (i, p) in c.patients.iter().enumerate() {
        let base = patients.index(i);
        identifier(&p.contact_id, &base.field("contact_id"), 32)?;
        if !contact_ids.insert(p.contact_id.as_str()) {
            return Err(DecodeError::InconsistentReference {
                path: base.field("contact_id").to_string(),
                rule: "contact id appears in more than one patient contact".into(),
            });
        }
        patient(p, &base, c.call_date, &call_signs)?;
    }
    Ok(())
}

fn triage(t: &Triage) -> Result {
    let at = At::Root("triage");
    code_text(&t.disposition_code, &at.field("disposition_code"))?;
    for (value, field) in [
        (&t.symptom_group, "symptom_group"),
        (&t.symptom_discriminator, "symptom_discriminator"),
    ] {
        if let Some(v) = value {
            let path = at.field(field);
            if t.system != TriageSystem::Pathways {
                return Err(DecodeError::InvalidValue {
                    path: path.to_string(),
                    rule: "only allowed when triage.system is \"pathways\"".into(),
                });
            }
            code_text(v, &path)?;
        }
    }
    Ok(())
}

fn call_times(t: &CallTimes) -> Result {
    let answered = Some(t.call_answered);
    not_before(
        t.call_ended,
        answered,
        &At::Root("times").field("call_ended"),
        "call_answered",
    )?;
    not_before(
        t.dispatch_code_established,
        answered,
        &At::Root("times").field("dispatch_code_established"),
        "call_answered",
    )?;
    if t.clock_stop.is_some() && t.clock_start.is_none() {
        return Err(DecodeError::TimestampsOutOfOrder {
            path: "$.times.clock_stop".into(),
            rule: "clock_stop is set but clock_start is not".into(),
        });
    }
    not_before(
        t.clock_stop,
        t.clock_start,
        &At::Root("times").field("clock_stop"),
        "clock_start",
    )
}

fn response_times(t: &ResponseTimes, base: &At) -> Result {
    // The journey, in order; absent steps are skipped.
    let chain = [
        ("mobilised", t.mobilised),
        ("arrived_on_scene", t.arrived_on_scene),
        ("left_scene", t.left_scene),
        ("arrived_receiving_location", t.arrived_receiving_location),
    ];
    let mut last: Option<(&str, DateTime<Utc>)> = None;
    for (name, time) in chain {
        if let Some(time) = time {
            if let Some((prev, prev_time)) = last {
                not_before(Some(time), Some(prev_time), &base.field(name), prev)?;
            }
            last = Some((name, time));
        }
    }
    for (name, time) in [
        ("patient_handover", t.patient_handover),
        ("clinical_handover", t.clinical_handover),
    ] {
        if let Some((prev, prev_time)) = last {
            not_before(time, Some(prev_time), &base.field(name), prev)?;
        }
    }
    not_before(
        t.stood_down,
        t.mobilised,
        &base.field("stood_down"),
        "mobilised",
    )?;
    for (name, time) in [
        ("mobilised", t.mobilised),
        ("arrived_on_scene", t.arrived_on_scene),
        ("left_scene", t.left_scene),
        ("arrived_receiving_location", t.arrived_receiving_location),
        ("patient_handover", t.patient_handover),
        ("clinical_handover", t.clinical_handover),
        ("stood_down", t.stood_down),
    ] {
        not_before(t.clear, time, &base.field("clear"), name)?;
    }
    Ok(())
}

/// `later` (at `path`) must not be before `earlier` (named `earlier_name`), when both exist.
fn not_before(
    later: Option<DateTime<Utc>>,
    earlier: Option<DateTime<Utc>>,
    path: &At,
    earlier_name: &str,
) -> Result {
    match (later, earlier) {
        (Some(l), Some(e)) if l < e => Err(DecodeError::TimestampsOutOfOrder {
            path: path.to_string(),
            rule: format!("must not be before {earlier_name}"),
        }),
        _ => Ok(()),
    }
}

fn patient(
    p: &PatientContact,
    base: &At,
    call_date: NaiveDate,
    call_signs: &HashSet<&str>,
) -> Result {
    for (j, cs) in p.call_signs.iter().enumerate() {
        if !call_signs.contains(cs.as_str()) {
            return Err(DecodeError::InconsistentReference {
                path: base.field("call_signs").index(j).to_string(),
                rule: "not the call sign of any entry in responses".into(),
            });
        }
    }
    demographics(&p.demographics, &base.field("demographics"), call_date)?;
    if let Some(c) = &p.conveyance {
        conveyance(c, &base.field("conveyance"), &p.call_signs)?;
    }
    for (j, o) in p.observations.iter().enumerate() {
        let (lo, hi) = o.kind.range();
        if !o.value.is_finite() || o.value < lo || o.value > hi {
            return Err(DecodeError::InvalidValue {
                path: base
                    .field("observations")
                    .index(j)
                    .field("value")
                    .to_string(),
                rule: format!("must be between {lo} and {hi} for this kind"),
            });
        }
    }
    for (list, field) in [
        (&p.diagnoses, "diagnoses"),
        (&p.injuries, "injuries"),
        (&p.procedures, "procedures"),
        (&p.safeguarding, "safeguarding"),
        (&p.public_health, "public_health"),
    ] {
        let list_at = base.field(field);
        for (j, entry) in list.iter().enumerate() {
            let item = list_at.index(j);
            snomed(&entry.snomed, &item.field("snomed"))?;
            if let Some(d) = &entry.display {
                text(d, &item.field("display"), 200)?;
            }
        }
    }
    let medications = base.field("medications");
    for (j, m) in p.medications.iter().enumerate() {
        let item = medications.index(j);
        snomed(&m.snomed, &item.field("snomed"))?;
        if let Some(d) = &m.display {
            text(d, &item.field("display"), 200)?;
        }
        if let Some(dose) = &m.dose {
            if !dose.value.is_finite() || dose.value <= 0.0 {
                return Err(DecodeError::InvalidValue {
                    path: item.field("dose").field("value").to_string(),
                    rule: "must be a number greater than zero".into(),
                });
            }
            code_text(&dose.unit, &item.field("dose").field("unit"))?;
        }
    }
    Ok(())
}

fn demographics(d: &Demographics, base: &At, call_date: NaiveDate) -> Result {
    if let Some(n) = &d.nhs_number {
        nhs_number(n, &base.field("nhs_number"))?;
    }
    let number_present = matches!(
        d.nhs_number_status,
        Some(NhsNumberStatus::Verified | NhsNumberStatus::NotTraced)
    );
    if number_present && d.nhs_number.is_none() {
        return Err(DecodeError::InvalidValue {
            path: base.field("nhs_number_status").to_string(),
            rule: "codes 01 and 02 (number present) need nhs_number".into(),
        });
    }
    if let Some(name) = &d.given_name {
        text(name, &base.field("given_name"), 100)?;
    }
    if let Some(name) = &d.family_name {
        text(name, &base.field("family_name"), 100)?;
    }
    if let Some(born) = d.birth_date {
        if born > call_date {
            return Err(DecodeError::InvalidValue {
                path: base.field("birth_date").to_string(),
                rule: "must not be after call_date".into(),
            });
        }
    }
    if let Some(pc) = &d.postcode {
        if !is_uk_postcode(pc) {
            return Err(DecodeError::InvalidValue {
                path: base.field("postcode").to_string(),
                rule: "must be a full UK postcode in upper case, e.g. SW1A 1AA".into(),
            });
        }
    }
    Ok(())
}

fn conveyance(c: &Conveyance, base: &At, call_signs: &[Text]) -> Result {
    match (&c.destination, c.outcome.is_conveyed()) {
        (None, true) => {
            return Err(DecodeError::MissingField {
                path: base.field("destination").to_string(),
            })
        }
        (Some(_), false) => {
            return Err(DecodeError::InvalidValue {
                path: base.field("destination").to_string(),
                rule: "only allowed when the outcome is a conveyance".into(),
            })
        }
        (Some(dest), true) => {
            let destination = base.field("destination");
            ods_site(&dest.ods_site, &destination.field("ods_site"))?;
            if let Some(name) = &dest.name {
                text(name, &destination.field("name"), 200)?;
            }
        }
        (None, false) => {}
    }
    if let Some(by) = &c.conveyed_by {
        if !call_signs.iter().any(|cs| cs == by) {
            return Err(DecodeError::InconsistentReference {
                path: base.field("conveyed_by").to_string(),
                rule: "not one of this patient contact's call_signs".into(),
            });
        }
    }
    Ok(())
}

fn ods_org(code: &str, path: &At) -> Result {
    if is_ods_code(code, 3, 5) {
        Ok(())
    } else {
        Err(DecodeError::InvalidOdsCode {
            path: path.to_string(),
            rule: "must be an ODS organisation code: 3 to 5 upper-case letters or digits".into(),
        })
    }
}

fn ods_site(code: &str, path: &At) -> Result {
    if is_ods_code(code, 3, 6) {
        Ok(())
    } else {
        Err(DecodeError::InvalidOdsCode {
            path: path.to_string(),
            rule: "must be an ODS site or organisation code: 3 to 6 upper-case letters or \
                   digits"
                .into(),
        })
    }
}

fn nhs_number(n: &str, path: &At) -> Result {
    if !(n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit())) {
        return Err(DecodeError::InvalidNhsNumber {
            path: path.to_string(),
            rule: "must be exactly ten digits, no spaces".into(),
        });
    }
    if !is_valid_nhs_number(n) {
        return Err(DecodeError::InvalidNhsNumber {
            path: path.to_string(),
            rule: "fails the NHS number modulus-11 check".into(),
        });
    }
    Ok(())
}

fn snomed(code: &str, path: &At) -> Result {
    if !is_snomed_id(code) {
        return Err(DecodeError::InvalidCode {
            path: path.to_string(),
            rule: "must be a SNOMED CT concept id: 6 to 18 digits with a valid Verhoeff \
                   check digit"
                .into(),
        });
    }
    Ok(())
}

/// Identifiers that end up in keys and resource paths: no separators, no spaces.
fn identifier(id: &str, path: &At, max: usize) -> Result {
    let ok = !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue {
            path: path.to_string(),
            rule: format!("must be 1 to {max} characters: letters, digits, '-', '_', '.', ':'"),
        })
    }
}

fn call_sign(cs: &str, path: &At) -> Result {
    let ok = !cs.is_empty()
        && cs.len() <= 20
        && !cs.starts_with(' ')
        && !cs.ends_with(' ')
        && cs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue {
            path: path.to_string(),
            rule: "must be 1 to 20 characters: letters, digits, ' ', '-', '_', '/', not \
                   starting or ending with a space"
                .into(),
        })
    }
}

/// Short codes from code lists we do not enumerate (disposition, SG/SD, stop code, units).
fn code_text(code: &str, path: &At) -> Result {
    let ok = !code.is_empty()
        && code.len() <= 16
        && code.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'[' | b']')
        });
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue {
            path: path.to_string(),
            rule: "must be a code of 1 to 16 characters: letters, digits, '-', '_', '.', \
                   '/', '[', ']'"
                .into(),
        })
    }
}

/// Free text: non-blank, bounded, no control characters.
fn text(s: &str, path: &At, max_chars: usize) -> Result {
    let ok =
        !s.trim().is_empty() && s.chars().count() <= max_chars && !s.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue {
            path: path.to_string(),
            rule: format!("must be 1 to {max_chars} characters, not blank, no control characters"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::At;

    #[test]
    fn a_path_is_written_as_the_json_path_of_the_field() {
        let patients = At::Root("patients");
        let patient = patients.index(1);
        let medications = patient.field("medications");
        let item = medications.index(0);
        assert_eq!(
            item.field("dose").field("unit").to_string(),
            "$.patients[1].medications[0].dose.unit"
        );
        assert_eq!(At::Root("call_id").to_string(), "$.call_id");
    }
}
