//! UK Core conformance checker driven by the profiles' own StructureDefinitions.
//!
//! The UK Core StructureDefinitions (differentials), CodeSystems and ValueSets that the ADS
//! bundles use are embedded at compile time (see [`uk_core_file!`] for the one place that
//! names their directory) and compiled once into checks:
//!
//! * cardinality (`min`/`max`) of every differential element, slices included
//!   (`Patient.identifier:nhsNumber.value`), with slices recognised by their discriminators
//!   (value/pattern on `system`, `url`, ...; extension slices by url);
//! * `fixed[x]` / `pattern[x]` values;
//! * `required` bindings whose ValueSet is enumerable from the bundled CodeSystems/ValueSets;
//! * declared types (choice type allowed, JSON shape and R4 lexical form of primitives),
//!   extension type profiles (each extension instance is checked against its own
//!   definition), reference target profiles (resolved inside the Bundle);
//! * closed slicing;
//! * for every extension anywhere: its url is known (bundled UK Core extension, or the ADS /
//!   FHIR core tables in `tables.rs`) and its context allows the element it sits on;
//! * codes that claim a bundled complete CodeSystem exist in it.
//!
//! What is deliberately not checked is listed, per constraint, in [`NOT_CHECKED`]; the test
//! `every_constraint_is_either_checked_or_listed_as_not_checked` keeps the two in step.
//!
//! Violations never contain instance values (patient data): only rule ids, paths and what
//! the profile expects.
//!
//! The module has no `crate::` paths: copy the directory as `<crate>/src/conformance/` and
//! the XML files to `<crate>/profiles/uk-core/`.

/// Embeds one conformance resource from the profiles directory. THE ONE PLACE that names the
/// directory: `<crate root>/profiles/uk-core/` (crate root = `CARGO_MANIFEST_DIR`, so it does
/// not depend on where this module sits). Keep [`PROFILES_DIR`] in step (a test checks it).
macro_rules! uk_core_file {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/profiles/uk-core/",
                $name
            )),
        )
    };
}

mod compile;
mod constraints;
mod engine;
mod model;
mod parse;
mod path;
mod primitive;
mod tables;
mod terminology;

use std::collections::BTreeSet;
use std::sync::OnceLock;

pub use constraints::{ConstraintInfo, NOT_CHECKED};
pub use engine::{Registry, Violation};

/// The profiles directory relative to the crate root (same as in [`uk_core_file!`]).
pub const PROFILES_DIR: &str = "profiles/uk-core";

/// Errors while reading conformance resources.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("two StructureDefinitions share the url {0}")]
    Duplicate(String),
}

/// The embedded files, `(file name, XML)`.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    tables::FILES
}

/// The registry built from the embedded files (parsed and compiled once).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::from_sources(tables::FILES)
            .unwrap_or_else(|e| panic!("embedded UK Core profiles do not load: {e}"))
    })
}

/// Checks an ADS Bundle (`serde_json::Value`) against the bundled UK Core profiles.
pub fn check_bundle(bundle: &serde_json::Value) -> Vec<Violation> {
    registry().check_bundle(bundle)
}

/// Checks one resource outside a Bundle (reference targets are not resolved).
pub fn check_resource(resource: &serde_json::Value) -> Vec<Violation> {
    registry().check_resource(resource)
}

/// Findings that are not UK Core violations (no `meta.profile`, whole numbers written with a
/// fraction). Same shape as violations, rule ids start with `advisory:`.
pub fn advisories(bundle: &serde_json::Value) -> Vec<Violation> {
    engine::advisories(bundle)
}

/// Every differential constraint of the loaded StructureDefinitions.
pub fn constraints() -> Vec<ConstraintInfo> {
    registry().constraints()
}

/// Ids of the constraints that the checker runs.
pub fn checked_constraint_ids() -> BTreeSet<String> {
    registry().checked_ids()
}

/// Reason a constraint is not checked, from [`NOT_CHECKED`].
pub fn not_checked_reason(c: &ConstraintInfo) -> Option<&'static str> {
    constraints::not_checked_reason(c)
}

/// Constraints that are neither checked nor listed in [`NOT_CHECKED`] (must be empty), and
/// constraints that are both (also a mistake: the table would hide a check).
pub fn coverage_gaps() -> (Vec<ConstraintInfo>, Vec<ConstraintInfo>) {
    let checked = checked_constraint_ids();
    let mut neither = Vec::new();
    let mut both = Vec::new();
    for c in constraints() {
        match (checked.contains(&c.id), not_checked_reason(&c).is_some()) {
            (false, false) => neither.push(c),
            (true, true) => both.push(c),
            _ => {}
        }
    }
    (neither, both)
}

/// Entries of [`NOT_CHECKED`] that name no loaded constraint (stale entries).
pub fn stale_not_checked_entries() -> Vec<&'static str> {
    let all = constraints();
    NOT_CHECKED
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| !all.iter().any(|c| constraints::not_checked_matches(e, c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_is_either_checked_or_listed_as_not_checked() {
        let (neither, both) = coverage_gaps();
        let show = |v: &[ConstraintInfo]| {
            v.iter()
                .map(|c| format!("{} ({})", c.id, c.detail))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        assert!(
            neither.is_empty(),
            "neither checked nor in NOT_CHECKED:\n  {}",
            show(&neither)
        );
        assert!(
            both.is_empty(),
            "checked AND in NOT_CHECKED:\n  {}",
            show(&both)
        );
        assert!(
            stale_not_checked_entries().is_empty(),
            "stale NOT_CHECKED entries: {:?}",
            stale_not_checked_entries()
        );
    }

    #[test]
    fn a_constraint_that_is_not_checked_and_not_listed_is_reported_as_a_gap() {
        // A profile with a FHIRPath invariant that NOT_CHECKED does not name.
        let xml = r#"<StructureDefinition xmlns="http://hl7.org/fhir">
          <id value="Test-Gap"/><url value="urn:test:gap"/><type value="Patient"/><kind value="resource"/>
          <differential><element id="Patient.name"><path value="Patient.name"/>
            <constraint><key value="gap-1"/><severity value="error"/><human value="x"/><expression value="family.exists()"/></constraint>
          </element></differential></StructureDefinition>"#;
        let reg = Registry::from_sources(&[("gap.xml", xml)]).unwrap();
        let checked = reg.checked_ids();
        let gaps: Vec<_> = reg
            .constraints()
            .into_iter()
            .filter(|c| !checked.contains(&c.id) && not_checked_reason(c).is_none())
            .collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].id, "Test-Gap:Patient.name:constraint:gap-1");
    }

    #[test]
    fn the_profiles_dir_constant_names_the_directory_the_files_are_embedded_from() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PROFILES_DIR);
        for (name, xml) in embedded_files() {
            let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(&on_disk, xml, "{name}");
        }
    }

    #[test]
    fn every_bundled_file_loads_and_each_profile_type_has_a_default() {
        let reg = registry();
        assert_eq!(reg.profiles.len(), 15);
        for p in &reg.profiles {
            if !p.sd.is_extension() {
                assert_eq!(
                    tables::default_profile(&p.sd.type_).as_deref(),
                    Some(p.sd.url.as_str())
                );
            }
        }
        assert!(
            reg.terminology
                .expand("https://fhir.hl7.org.uk/ValueSet/UKCore-NHSNumberVerificationStatus")
                .unwrap()
                .len()
                == 18
        );
    }
}
