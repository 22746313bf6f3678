//! The `validate` command: check CAD records or FHIR bundles from files, before they ever
//! reach Kafka or the API.
//!
//! **In:** files. Each file is one JSON document (a pretty-printed `cad.call.v1` record or a
//! FHIR Bundle) or JSON lines (one `cad.call.v1` record or FHIR Bundle per line; blank lines
//! are skipped). A file whose first line is not a JSON value by itself is one document. A record whose top-level object has `resourceType` is a FHIR Bundle (a call
//! Bundle, or a `batch` submission of call Bundles); anything else is a CAD record.
//!
//! **Out:** one line per problem on `out`, `FILE:RECORD: error|warning [rule] PATH: message`,
//! where RECORD is the 1-based line number (1 for a single-document file), then a summary. A CAD
//! record is decoded, mapped and locally validated exactly as the connector does it; a FHIR
//! Bundle is locally validated ([`crate::mapping::check`]). Either way the call Bundle is then
//! checked against the UK Core profiles ([`crate::conformance`]): a violation is an error with
//! rule `uk_core` (its message starts with the profile's constraint id), an advisory a warning
//! with rule `uk_core_advisory`. With `emit_fhir`, the Bundle of every valid CAD record is
//! written to `DIR/<bundle id>.json` (pretty JSON). Of several snapshots of one call, the one
//! with the newest `snapshot_at` is kept, whatever their order in the files (the later one in
//! file order on a tie), as DPS keeps the latest.
//!
//! **Result:** `Ok(true)` when no record has an error (warnings allowed), `Ok(false)` otherwise;
//! `Err` only for I/O (a file that cannot be read, an output that cannot be written). Messages
//! never contain patient values.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cad::{self, Problem};
use crate::conformance;
use crate::mapping::{self, check, MappingOptions};

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records without errors.
    pub valid: usize,
    /// Records with at least one error.
    pub invalid: usize,
    /// Warnings by rule.
    pub warnings: BTreeMap<&'static str, usize>,
}

/// Validates `files` with the default mapping options; see the module header.
pub fn run(
    files: &[PathBuf],
    emit_fhir: Option<&Path>,
    out: &mut impl Write,
) -> Result<bool, std::io::Error> {
    let summary = run_with(files, emit_fhir, &MappingOptions::default(), out)?;
    Ok(summary.invalid == 0)
}

/// Validates `files` with the given mapping options and returns the counts.
pub fn run_with(
    files: &[PathBuf],
    emit_fhir: Option<&Path>,
    options: &MappingOptions,
    out: &mut impl Write,
) -> Result<Summary, std::io::Error> {
    if let Some(dir) = emit_fhir {
        std::fs::create_dir_all(dir)?;
    }
    let mut summary = Summary::default();
    // Bundle id → `snapshot_at` of the Bundle written for it.
    let mut written = HashMap::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display()))
        })?;
        let name = file.display().to_string();
        let records: Vec<(usize, &[u8])> = if is_one_document(&bytes) {
            vec![(1, bytes.as_slice())]
        } else {
            bytes
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
                .map(|(i, line)| (i + 1, line))
                .collect()
        };
        for (n, record) in records {
            let outcome = validate_record(record, options);
            let at = format!("{name}:{n}");
            for p in &outcome.errors {
                print_problem(out, &at, "error", p)?;
            }
            for p in &outcome.warnings {
                print_problem(out, &at, "warning", p)?;
                *summary.warnings.entry(p.rule).or_default() += 1;
            }
            if outcome.errors.is_empty() {
                summary.valid += 1;
                if let (Some(dir), Some(bundle)) = (emit_fhir, outcome.bundle) {
                    let newer = written
                        .get(&bundle.bundle_id)
                        .is_none_or(|at| *at <= bundle.snapshot_at);
                    if newer {
                        let mut text = serde_json::to_vec_pretty(&bundle.json)?;
                        text.push(b'\n');
                        std::fs::write(dir.join(format!("{}.json", bundle.bundle_id)), text)?;
                        written.insert(bundle.bundle_id, bundle.snapshot_at);
                    }
                }
            } else {
                summary.invalid += 1;
            }
        }
    }
    let warnings: usize = summary.warnings.values().sum();
    write!(
        out,
        "{} valid, {} invalid, {warnings} warnings",
        summary.valid, summary.invalid
    )?;
    if warnings > 0 {
        let by_rule: Vec<String> = summary
            .warnings
            .iter()
            .map(|(rule, n)| format!("{rule}: {n}"))
            .collect();
        write!(out, " ({})", by_rule.join(", "))?;
    }
    writeln!(out)?;
    Ok(summary)
}

/// A file is one JSON document when it parses as one object, or when its first non-blank line
/// is not a JSON value of its own (a pretty-printed document, broken somewhere further down:
/// the decoder then reports the real position instead of one error per line).
fn is_one_document(bytes: &[u8]) -> bool {
    if serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v.is_object()) {
        return true;
    }
    let first = bytes
        .split(|b| *b == b'\n')
        .find(|line| !line.iter().all(u8::is_ascii_whitespace));
    first.is_some_and(|line| serde_json::from_slice::<Value>(line).is_err())
        && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The problems of one record, and its Bundle when it was a valid CAD record.
struct Outcome {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    bundle: Option<mapping::CallBundle>,
}

fn validate_record(record: &[u8], options: &MappingOptions) -> Outcome {
    if let Some(bundle) = as_fhir(record) {
        let report = check::submission(&bundle);
        let mut outcome = Outcome {
            errors: report.errors,
            warnings: report.warnings,
            bundle: None,
        };
        if bundle["type"] == "batch" {
            for (i, entry) in bundle["entry"].as_array().into_iter().flatten().enumerate() {
                let inner = &entry["resource"];
                if inner["resourceType"] == "Bundle" {
                    uk_core(inner, &format!("$.entry[{i}].resource"), &mut outcome);
                }
            }
        } else {
            uk_core(&bundle, "$", &mut outcome);
        }
        return outcome;
    }
    let result = cad::decode(record)
        .map_err(|e| e.problems())
        .and_then(|call| mapping::map_validated(&call, options).map_err(|e| e.problems()));
    match result {
        Ok(mut bundle) => {
            let mut outcome = Outcome {
                errors: Vec::new(),
                warnings: std::mem::take(&mut bundle.warnings),
                bundle: None,
            };
            uk_core(&bundle.json, "$", &mut outcome);
            outcome.bundle = Some(bundle);
            outcome
        }
        Err(errors) => Outcome {
            errors,
            warnings: Vec::new(),
            bundle: None,
        },
    }
}

/// The UK Core findings of one call Bundle at `base`: violations as errors, advisories as
/// warnings. Conformance paths start at `Bundle`; here they start at `base`.
fn uk_core(bundle: &Value, base: &str, outcome: &mut Outcome) {
    let path = |p: &str| format!("{base}{}", p.strip_prefix("Bundle").unwrap_or(p));
    for v in conformance::check_bundle(bundle) {
        outcome.errors.push(Problem {
            path: path(&v.path),
            rule: "uk_core",
            message: format!("{}: {}", v.rule, v.message),
        });
    }
    for v in conformance::advisories(bundle) {
        outcome.warnings.push(Problem {
            path: path(&v.path),
            rule: "uk_core_advisory",
            message: format!("{}: {}", v.rule, v.message),
        });
    }
}

/// The record as JSON when it is a FHIR resource (has a top-level `resourceType`).
fn as_fhir(record: &[u8]) -> Option<Value> {
    // Cheap pre-check so CAD records are parsed once, by the decoder.
    let needle = b"\"resourceType\"";
    if !record.windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    serde_json::from_slice::<Value>(record)
        .ok()
        .filter(|v| v.get("resourceType").is_some())
}

fn print_problem(
    out: &mut impl Write,
    at: &str,
    severity: &str,
    p: &Problem,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{at}: {severity} [{}] {}: {}",
        p.rule, p.path, p.message
    )
}
