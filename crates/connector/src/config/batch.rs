//! `[batch]`: how call bundles are grouped into submissions, as written ([`RawBatch`]) and
//! validated ([`BatchConfig`], [`SubmissionMode`]), and its keys ([`SECTION`]: default, valid
//! values, example, meaning). The checks (a known mode, a positive `max_calls`, `max_bytes` of at
//! least 1024; `single` means one call per submission) run in
//! [`RawConfig::validate`](super::RawConfig::validate).

use std::time::Duration;

use serde::Deserialize;

use super::settings::{Absent, Section, Setting};

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
    default: Absent::Value(MODE_BATCH),
    prod_default: None,
    expected: "`batch` or `single`",
    example: None,
    meaning:
        "`batch` (a FHIR `batch` Bundle of call Bundles per POST) or `single` (one call per POST)",
};
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
    /// [`MODE`]
    #[serde(default = "default_batch_mode")]
    pub mode: String,
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

fn default_batch_mode() -> String {
    MODE.parsed_default()
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
            mode: default_batch_mode(),
            max_calls: default_max_calls(),
            max_bytes: default_max_bytes(),
            linger_ms: default_linger_ms(),
        }
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
