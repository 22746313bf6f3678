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
//!
//! Layout: this file holds [`Report`], the entry points and the Bundle-level rules (type, id,
//! timestamp, tag, `fullUrl`s, references, one Communication); `check/resources.rs` the ADS
//! items of the Communication, ODS identifiers and NHS numbers; `check/code_systems.rs` the code
//! systems we know and their codes; `check/times.rs` the typed timestamps and their order.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::codes::*;
use super::node::{Json, Walked};
use super::Problem;

mod code_systems;
mod resources;
mod times;

pub use code_systems::is_loinc_code;
pub(crate) use code_systems::{coding_is_clean, system_codes};
use code_systems::{codings, system_name};
use resources::{communication, identifiers, patient};
use times::typed_times;

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
                NOT_WALKED,
                &mut report,
            );
        }
    } else {
        check_bundle(b, "$", NOT_WALKED, &mut report);
    }
    report
}

/// Validates one ADS call Bundle.
pub fn bundle(b: &Value) -> Report {
    let mut report = Report::default();
    check_bundle(b, "$", NOT_WALKED, &mut report);
    report
}

/// [`bundle`] of the mapping's own tree, after its write: the references and codings the
/// write's own walk found in order ([`Walked`]) are not walked again here.
pub(crate) fn bundle_walked<J: Json>(b: &J, walked: Walked) -> Report {
    let mut report = Report::default();
    check_bundle(b, "$", walked, &mut report);
    report
}

/// Nothing known yet: every check walks the Bundle itself.
const NOT_WALKED: Walked = Walked {
    references_resolve: false,
    codings_clean: false,
};

fn check_bundle<J: Json>(b: &J, base: &str, walked: Walked, r: &mut Report) {
    if !b["resourceType"].is("Bundle") {
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
    if !b["id"].is_string() {
        r.error(
            format!("{base}.id"),
            "missing_element",
            "Bundle.id is missing",
        );
    }
    let snapshot = b["timestamp"].as_time();
    if snapshot.is_none() {
        r.error(
            format!("{base}.timestamp"),
            "missing_element",
            "Bundle.timestamp is missing or not an RFC 3339 instant",
        );
    }
    bundle_tag(b, base, r);

    let entries = b["entry"].as_array().unwrap_or(&[]);
    if entries.is_empty() {
        r.error(
            format!("{base}.entry"),
            "empty_bundle",
            "an ADS call Bundle needs entries",
        );
        return;
    }
    let full_urls = full_urls(entries, base, r);
    let refs = if walked.references_resolve || super::all_references_resolve(b, &full_urls) {
        Vec::new()
    } else {
        super::references_in(b)
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
    if b["type"].is("message") && !entries[0]["resource"]["resourceType"].is("MessageHeader") {
        r.error(
            format!("{base}.entry[0]"),
            "message_header_first",
            "a message Bundle starts with its MessageHeader",
        );
    }

    let communications: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i]["resource"]["resourceType"].is("Communication"))
        .collect();
    if communications.len() != 1 {
        r.error(
            format!("{base}.entry"),
            "ads_communication_count",
            "an ADS call Bundle has exactly one Communication",
        );
    }
    // Each resource's typed date-times, read once for every rule that needs them.
    let typed: Vec<times::Typed<'_>> = entries
        .iter()
        .map(|e| times::typed(&e["resource"]))
        .collect();
    let mut segments = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let path = &Resource { base, entry: i };
        let res = &e["resource"];
        match res["resourceType"].as_str() {
            Some("Communication") => communication(res, &typed[i], path, r),
            Some("Organization") => identifiers(res, path, ODS_ORGANIZATION_SYSTEM, r),
            Some("Location") => identifiers(res, path, ODS_SITE_SYSTEM, r),
            Some("Patient") => patient(res, path, r),
            _ => {}
        }
        if !walked.codings_clean {
            codings(res, path, &mut segments, r);
        }
        typed_times(&typed[i], path, snapshot, r);
    }
    if times::cross_section(entries, &typed, base, r) {
        // The call is closed: an ADS mandatory item still absent is missing, not "not yet
        // known" (the ack of such a call names it: `missing_ads_items`).
        for w in &mut r.warnings {
            if w.rule == "ads_mandatory_item_not_yet_known" {
                w.rule = "ads_mandatory_item_missing_at_close";
            }
        }
    }
}

/// The JSON path of entry `entry`'s resource, written only when a problem is reported.
#[derive(Clone, Copy)]
struct Resource<'b> {
    base: &'b str,
    entry: usize,
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.entry[{}].resource", self.base, self.entry)
    }
}

fn bundle_tag<J: Json>(b: &J, base: &str, r: &mut Report) {
    let tags = b["meta"]["tag"].as_array().unwrap_or(&[]);
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

fn full_urls<'a, J: Json>(entries: &'a [J], base: &str, r: &mut Report) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let path = || format!("{base}.entry[{i}]");
        let Some(url) = e["fullUrl"].as_str() else {
            r.error(
                format!("{}.fullUrl", path()),
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
                format!("{}.fullUrl", path()),
                "full_url",
                "fullUrl must be urn:uuid:<uuid>",
            ),
            Some(id) if e["resource"]["id"].as_str() != Some(id) => r.error(
                format!("{}.resource.id", path()),
                "resource_id_mismatch",
                "resource.id must be the UUID of the entry's fullUrl",
            ),
            Some(_) => {}
        }
        if !seen.insert(url) {
            r.error(
                format!("{}.fullUrl", path()),
                "duplicate_full_url",
                "fullUrl appears in more than one entry",
            );
        }
    }
    seen
}
