//! The shared context of one mapping and the small FHIR building blocks every resource uses.
//!
//! **In:** the call and the options. **Out:** deterministic ids and `urn:uuid:` URLs, codings
//! with the configured code-system spelling, typed date-time extensions and entries, as
//! [`Node`]s borrowing from the call. Pure.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::codes::{
    date_time_type_display, DATE_TIME_TYPES, DATE_TIME_TYPE_SYSTEM, EXT_TYPED_DATE_TIME,
    UCUM_SYSTEM, YES_NO_SYSTEM,
};
use super::node::{frozen, key, node, Frozen, FrozenSet, Node, Uid};
use super::{resource_id_of, CodeSystemStyle, MappingOptions};
use crate::cad::CadCall;

/// One call being mapped, with its options.
pub(super) struct Ctx<'a> {
    pub(super) call: &'a CadCall,
    pub(super) opts: &'a MappingOptions,
    /// The provider Organization's full URL (referenced by most resources).
    provider: Uid,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(call: &'a CadCall, opts: &'a MappingOptions) -> Self {
        let provider = Uid::url(resource_id_of(
            &call.provider_ods,
            &call.call_id,
            &["Organization/", &call.provider_ods],
        ));
        Ctx {
            call,
            opts,
            provider,
        }
    }

    /// The `urn:uuid:` full URL of the resource path that is `parts` joined (`["Patient/",
    /// contact_id]`: no `format!` per id).
    pub(super) fn url(&self, parts: &[&str]) -> Uid {
        Uid::url(resource_id_of(
            &self.call.provider_ods,
            &self.call.call_id,
            parts,
        ))
    }

    /// `{"reference": <url of the path that is parts joined>}`.
    pub(super) fn reference(&self, parts: &[&str]) -> Node<'a> {
        node!({ "reference": self.url(parts) })
    }

    /// A code system URI in the configured spelling.
    pub(super) fn system(&self, uri: &'a str) -> Cow<'a, str> {
        spelled(self.opts.code_system_style, uri)
    }

    /// A CodeableConcept with one coding from an NHS England code system.
    pub(super) fn nhs_concept(
        &self,
        system: &'a str,
        code: impl Into<Node<'a>>,
        display: Option<&'a str>,
    ) -> Node<'a> {
        nhs_concept_in(self.opts.code_system_style, system, code.into(), display)
    }

    /// [`Self::nhs_concept`] of constants, frozen ([`FrozenSet`]): `set` holds `N / 3` per code
    /// system style, `index` (an enum's discriminant) chooses among them. An index beyond them is
    /// built unfrozen.
    pub(super) fn nhs_concept_frozen<const N: usize>(
        &self,
        set: &'static FrozenSet<N>,
        index: usize,
        system: &'static str,
        code: &'static str,
        display: Option<&'static str>,
    ) -> Node<'a> {
        let style = self.opts.code_system_style;
        let make = || nhs_concept_in(style, system, Node::Str(code), display);
        let per_style = N / CODE_SYSTEM_STYLES;
        if index >= per_style {
            return make();
        }
        set.get(style_index(style) * per_style + index, make)
    }

    /// The provider Organization's reference.
    pub(super) fn provider(&self) -> Node<'a> {
        node!({ "reference": self.provider })
    }
}

/// How many [`CodeSystemStyle`]s there are ([`style_index`]).
pub(super) const CODE_SYSTEM_STYLES: usize = 3;

fn style_index(style: CodeSystemStyle) -> usize {
    match style {
        CodeSystemStyle::AsPublished => 0,
        CodeSystemStyle::WithR4 => 1,
        CodeSystemStyle::WithoutR4 => 2,
    }
}

/// `uri` in the spelling of `style`.
fn spelled(style: CodeSystemStyle, uri: &str) -> Cow<'_, str> {
    match style {
        CodeSystemStyle::AsPublished => Cow::Borrowed(uri),
        style => {
            let spelled = style.apply(uri);
            if spelled == uri {
                Cow::Borrowed(uri)
            } else {
                Cow::Owned(spelled)
            }
        }
    }
}

/// A CodeableConcept with one coding from an NHS England code system, its URI spelled as `style`.
fn nhs_concept_in<'a>(
    style: CodeSystemStyle,
    system: &'a str,
    code: Node<'a>,
    display: Option<&'a str>,
) -> Node<'a> {
    let mut coding = node!({ "system": spelled(style, system), "code": code });
    if let Some(display) = display {
        coding.set(key!("display"), display);
    }
    node!({ "coding": [coding] })
}

/// One Bundle entry; sets the resource's `id` (the UUID of its full URL).
pub(super) fn entry(full_url: Uid, mut resource: Node<'_>) -> Node<'_> {
    resource.set(key!("id"), full_url.id_only());
    Node::Object(vec![
        (key!("fullUrl"), Node::Uid(full_url)),
        (key!("resource"), resource),
    ])
}

/// A CodeableConcept with one coding.
pub(super) fn concept<'a>(system: &'a str, code: &'a str, display: &'a str) -> Node<'a> {
    node!({ "coding": [ { "system": system, "code": code, "display": display } ] })
}

/// A CodeableConcept with several `(system, code, display)` codings.
pub(super) fn concept_of<'a>(codings: &'a [(&'a str, &'a str, &'a str)]) -> Node<'a> {
    let codings: Vec<Node<'a>> = codings
        .iter()
        .map(|(system, code, display)| {
            node!({ "system": *system, "code": *code, "display": *display })
        })
        .collect();
    node!({ "coding": codings })
}

/// The HL7 Yes/No CodeableConcept of an ADS flag.
pub(super) fn yes_no(flag: bool) -> Node<'static> {
    if flag {
        frozen!(concept(YES_NO_SYSTEM, "Y", "Yes"))
    } else {
        frozen!(concept(YES_NO_SYSTEM, "N", "No"))
    }
}

/// A UCUM quantity.
pub(super) fn quantity<'a>(value: f64, unit_display: &'a str, ucum: &'a str) -> Node<'a> {
    node!({ "value": decimal(value), "unit": unit_display, "system": UCUM_SYSTEM, "code": ucum })
}

/// A FHIR decimal: a whole number is written without a fraction (`112`, not `112.0`); any
/// other value as the shortest form that reads back the same.
pub(super) fn decimal(value: f64) -> Node<'static> {
    // Below 2^53 every whole f64 is an exact i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        Node::Int(value as i64)
    } else {
        Node::Float(value)
    }
}

/// The UK Core typed date-time extension for one DateTimeType code.
pub(super) fn typed_date_time<'a>(code: &'a str, at: DateTime<Utc>) -> Node<'a> {
    node!({
        "url": EXT_TYPED_DATE_TIME,
        "extension": [
            date_time_type(code),
            { "url": "dateTime", "valueDateTime": at },
        ],
    })
}

/// The `dateTimeType` half of a typed date-time: frozen for every code of
/// [`DATE_TIME_TYPES`] (the mapping uses no other).
fn date_time_type(code: &str) -> Node<'_> {
    static FROZEN: std::sync::LazyLock<Vec<Frozen>> = std::sync::LazyLock::new(|| {
        DATE_TIME_TYPES
            .iter()
            .map(|(code, _)| Frozen::new(date_time_type_item(code)))
            .collect()
    });
    match DATE_TIME_TYPES.iter().position(|(c, _)| *c == code) {
        Some(at) => Node::Frozen(&FROZEN[at]),
        None => date_time_type_item(code),
    }
}

fn date_time_type_item(code: &str) -> Node<'_> {
    node!({
        "url": "dateTimeType",
        "valueCodeableConcept": concept(DATE_TIME_TYPE_SYSTEM, code, date_time_type_display(code)),
    })
}

/// Typed date-time extensions for the times that are present, in the given order.
pub(super) fn typed_date_times<'a>(times: &[(&'a str, Option<DateTime<Utc>>)]) -> Vec<Node<'a>> {
    times
        .iter()
        .filter_map(|(code, at)| at.map(|at| typed_date_time(code, at)))
        .collect()
}
