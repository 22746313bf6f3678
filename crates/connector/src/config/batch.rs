//! `[batch]`: how call bundles are grouped into submissions, as written ([`RawBatch`]) and
//! validated ([`BatchConfig`], [`SubmissionMode`]), and its keys ([`SECTION`]: default, valid
//! values, example, meaning). The checks (a known mode, a positive `max_calls`, `max_bytes` of at
//! least 1024; `single` means one call per submission) run in
//! [`RawConfig::validate`](super::RawConfig::validate).
//!
//! Go-live guard: NHS England does not publish how several calls are encoded in one POST, so
//! `batch.mode` has no default for the `int` and `prod` environments ([`mode_for`]); the
//! operator writes it once NHS England has confirmed it during onboarding
//! (`docs/operations.md`, go-live checklist). `sandbox` and `custom` default to `batch`.

use std::time::Duration;

use serde::Deserialize;

use super::settings::{Absent, Section, Setting};
use super::ConfigError;

/// `[batch]`
pub const SECTION: Section = Section {
    name: "batch",
    about: "How call bundles are grouped into submissions.",
    settings: &[MODE, MAX_CALLS, MAX_BYTES, LINGER_MS],
};
/// `batch.mode` value: a FHIR `batch` Bundle of call Bundles per POST.
pub const MODE_BATCH: &str = "batch";
/// `batch.mode` value: one call per POST.
pub const MODE_SINGLE: &str = "single";
/// `batch.mode`
pub const MODE: Setting = Setting {
    key: "batch.mode",
    default: Absent::RequiredWhen(
        "for `nhs_api.environment` `int` and `prod` (confirm the encoding with NHS England); \
         `batch` otherwise",
    ),
    prod_default: None,
    expected: "`batch` or `single`",
    example: Some(MODE_BATCH),
    meaning:
        "`batch` (a FHIR `batch` Bundle of call Bundles per POST) or `single` (one call per POST). \
         NHS England does not publish the encoding; confirm it during onboarding",
};
/// The environments where [`MODE`] must be written (the go-live guard).
pub const MODE_REQUIRED_IN: [&str; 2] = ["int", "prod"];
/// The mode of `sandbox` and `custom` when [`MODE`] is left out.
const MODE_DEFAULT: &str = MODE_BATCH;
/// `batch.max_calls`
pub const MAX_CALLS: Setting = Setting {
    key: "batch.max_calls",
    default: Absent::Value("100"),
    prod_default: None,
    expected: "a number from 1 to 100000",
    example: None,
    meaning: "most calls per submission (1 in `single` mode)",
};
/// `batch.max_bytes`
pub const MAX_BYTES: Setting = Setting {
    key: "batch.max_bytes",
    default: Absent::Value("4194304"),
    prod_default: None,
    expected: "at least 1024",
    example: None,
    meaning: "most bytes per submission body (a larger single call is sent alone)",
};
/// `batch.linger_ms`
pub const LINGER_MS: Setting = Setting {
    key: "batch.linger_ms",
    default: Absent::Value("1000"),
    prod_default: None,
    expected: "a number of milliseconds up to 600000 (10 minutes)",
    example: None,
    meaning: "longest a call waits for its submission to fill",
};

/// `[batch]` as written: each field is the key of that name in [`SECTION`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    /// [`MODE`]: `None` when left out, which only `sandbox` and `custom` accept ([`mode_for`]).
    #[serde(default)]
    pub mode: Option<String>,
    /// [`MAX_CALLS`]
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// [`MAX_BYTES`]
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// [`LINGER_MS`]
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
}

fn default_max_calls() -> usize {
    MAX_CALLS.parsed_default()
}
fn default_max_bytes() -> usize {
    MAX_BYTES.parsed_default()
}
fn default_linger_ms() -> u64 {
    LINGER_MS.parsed_default()
}

impl Default for RawBatch {
    fn default() -> Self {
        Self {
            mode: None,
            max_calls: default_max_calls(),
            max_bytes: default_max_bytes(),
            linger_ms: default_linger_ms(),
        }
    }
}

/// The submission mode of `raw` (`batch.mode`) in `environment` (`nhs_api.environment`): as
/// written, or `batch` when left out outside `int` and `prod`.
///
/// # Errors
/// An unknown mode; a mode left out in `int` or `prod`, with why it must be written.
pub fn mode_for(raw: Option<&str>, environment: &str) -> Result<SubmissionMode, ConfigError> {
    let mode = match raw {
        Some(mode) => mode,
        None if MODE_REQUIRED_IN.contains(&environment) => {
            return Err(MODE.error(format!(
                "must be set when `nhs_api.environment` is `{environment}`: `{MODE_BATCH}` (a FHIR `batch` \
                 Bundle of call Bundles per POST) or `{MODE_SINGLE}` (one call per POST). NHS \
                 England does not publish how several calls are encoded in one POST; confirm it \
                 with NHS England during onboarding (docs/operations.md, go-live checklist) and \
                 write what they confirm"
            )))
        }
        None => MODE_DEFAULT,
    };
    match mode {
        MODE_BATCH => Ok(SubmissionMode::Batch),
        MODE_SINGLE => Ok(SubmissionMode::Single),
        _ => Err(MODE.invalid()),
    }
}

/// One call per POST, or a FHIR `batch` Bundle of call Bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionMode {
    /// A FHIR `batch` Bundle whose entries are call Bundles.
    Batch,
    /// One call Bundle per POST.
    Single,
}

/// Validated `[batch]`.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Submission mode.
    pub mode: SubmissionMode,
    /// Most calls per submission (1 in `single` mode).
    pub max_calls: usize,
    /// Most bytes per submission.
    pub max_bytes: usize,
    /// Linger.
    pub linger: Duration,
}
