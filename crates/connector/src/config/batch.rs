//! `[batch]`: how call bundles are grouped into submissions, as written ([`RawBatch`]) and
//! validated ([`BatchConfig`], [`SubmissionMode`]). The checks (a known mode, a positive
//! `max_calls`, `max_bytes` of at least 1024; `single` means one call per submission) run in
//! [`RawConfig::validate`](super::RawConfig::validate).

use std::time::Duration;

use serde::Deserialize;

/// `[batch]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    /// `batch` (a FHIR batch Bundle of call Bundles) or `single` (one call per POST).
    #[serde(default = "default_batch_mode")]
    pub mode: String,
    /// Most call bundles in one submission.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Most bytes in one submission body.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest a call waits for its submission to fill.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
}

fn default_batch_mode() -> String {
    "batch".into()
}
fn default_max_calls() -> usize {
    100
}
fn default_max_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_linger_ms() -> u64 {
    1000
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
