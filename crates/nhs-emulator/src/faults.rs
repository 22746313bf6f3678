//! Fault injection for the sandbox: which faults to inject ([`FaultProfile`], chosen by name or
//! parsed from a `--faults` spec) and the seeded dice that decide, request by request, what each
//! `$process-message` and `/oauth2/token` request gets ([`Injector`]).
//!
//! Contract: `FaultProfile::default()` (the `none` profile) injects nothing, and the sandbox is then
//! exactly the emulation of nhs-api.md §1. Every decision comes from one `StdRng` seeded with the
//! profile's `seed` (from entropy when absent), so the same sequence of requests meets the same
//! faults run after run. Windows (storms, outages) are measured from the moment the profile took
//! effect: the server's start, or the last [`Injector::set`]. The spec grammar is documented on
//! [`FaultProfile::parse`] and in `docs/sandbox.md`; [`FaultProfile`]'s `Display` prints a spec
//! that parses back to the same profile. No I/O, never logs.
//!
//! Layout: this file holds the profile ([`FaultProfile`], its windows and latency range, the
//! named profiles, the spec's entry points and its `Display`); `faults/spec.rs` the knob grammar
//! (rates, durations, windows) and its printing; `faults/injector.rs` the dice ([`Injector`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

mod injector;
mod spec;

pub(crate) use injector::{ApiFault, Injector, TokenFault, TokenRefusal};
use spec::{apply_knob, show_duration, show_window};

/// Named profiles, as the specs they stand for (so `docs/sandbox.md` can show them verbatim).
const NAMED: [(&str, &str); 5] = [
    ("none", ""),
    (
        "flaky",
        "500=2%,502=1%,503=2%,504=1%,reset=1%,latency=20..200ms",
    ),
    (
        "chaos",
        "500=3%,502=2%,503=3%,504=2%,408=2%,429=2%,reset=3%,latency=20..500ms,retry_after=1s,\
         storm=2s/20s@10s,token_outage=10%,token_outage=5s/30s@15s,token_reset=5%",
    ),
    ("token-outage", "token_outage=15s/45s@10s"),
    ("429-storm", "storm=10s/30s@10s,retry_after=5s"),
];

/// Which faults the sandbox injects. `Default` injects none.
///
/// On `$process-message`, faults apply only to requests that passed the token check: a 429 storm
/// refuses them at the rate-limiting step (before the app quota counts them); the others come
/// after the quota check, where the real proxy calls the backend. A request is delayed by
/// `latency`, then answered with at most one of `reset` or a status from `status_rates`; only a
/// request with no such fault is accepted and recorded. On `/oauth2/token`, outages and resets
/// come before any check, so a refused request uses neither the token quota nor its `jti`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultProfile {
    /// Status (400–599) → probability that a `$process-message` request is answered with it
    /// instead of being accepted. The rates and `reset_rate` together are at most 1.
    pub status_rates: BTreeMap<u16, f64>,
    /// Probability that a `$process-message` request's connection is reset without a response.
    pub reset_rate: f64,
    /// Delay before every `$process-message` response that gets past the quota (accepted or
    /// faulted), drawn uniformly from `min..=max` in whole milliseconds.
    pub latency: LatencyRange,
    /// `Retry-After` of injected 429s and 429 storms, rounded up to whole seconds, at least 1 s
    /// (so the default, zero, sends `Retry-After: 1`).
    pub retry_after: Duration,
    /// While this window is open, every `$process-message` request past the token check is 429.
    pub storm: Option<FaultWindow>,
    /// Probability that a token request is refused with 503.
    pub token_outage_rate: f64,
    /// While this window is open, every token request is refused with 503.
    pub token_outage_window: Option<FaultWindow>,
    /// Probability that a token request's connection is reset without a response.
    pub token_reset_rate: f64,
    /// While this window is open, every token request's connection is reset.
    pub token_reset_window: Option<FaultWindow>,
    /// Status of injected token outages (`token_outage=`): `None` is Apigee's 503; `429` answers
    /// like the token quota, with `Retry-After` (`retry_after`, in `retry_after_format`); any
    /// other status (`500`, …) an Apigee fault body.
    pub token_outage_status: Option<u16>,
    /// Whether injected token 429s write `Retry-After` as an HTTP-date (an IMF-fixdate
    /// `retry_after` ahead, RFC 9110 §10.2.3) instead of delta-seconds (`retry_after_format=`).
    pub retry_after_http_date: bool,
    /// Seed of the dice; `None` seeds from entropy.
    pub seed: Option<u64>,
}

/// A uniform delay range; `min == max` is a fixed delay, both zero is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyRange {
    pub min: Duration,
    pub max: Duration,
}

/// When a fault is on, measured from the moment its profile took effect: from `start` for
/// `length`, then (with a `period`) again at `start + period`, `start + 2 × period`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultWindow {
    pub length: Duration,
    pub period: Option<Duration>,
    pub start: Duration,
}

impl FaultWindow {
    /// Whether the window is open `elapsed` after the profile took effect.
    pub fn is_open(&self, elapsed: Duration) -> bool {
        let Some(since_start) = elapsed.checked_sub(self.start) else {
            return false;
        };
        let into_cycle = match self.period {
            Some(period) if !period.is_zero() => {
                Duration::from_nanos((since_start.as_nanos() % period.as_nanos()) as u64)
            }
            _ => since_start,
        };
        into_cycle < self.length
    }
}

impl FaultProfile {
    /// The names [`FaultProfile::named`] knows.
    pub const NAMES: [&'static str; 5] = ["none", "flaky", "chaos", "token-outage", "429-storm"];

    /// A named profile:
    /// * `none`: no faults (the default);
    /// * `flaky`: `500=2%,502=1%,503=2%,504=1%,reset=1%,latency=20..200ms`;
    /// * `chaos`: `500=3%,502=2%,503=3%,504=2%,408=2%,429=2%,reset=3%,latency=20..500ms,`
    ///   `retry_after=1s,storm=2s/20s@10s,token_outage=10%,token_outage=5s/30s@15s,token_reset=5%`;
    /// * `token-outage`: `token_outage=15s/45s@10s` (token endpoint 503 from 10 s to 25 s, then
    ///   every 45 s);
    /// * `429-storm`: `storm=10s/30s@10s,retry_after=5s` (every request 429 from 10 s to 20 s,
    ///   then every 30 s).
    pub fn named(name: &str) -> Option<Self> {
        let (_, spec) = NAMED.iter().find(|(n, _)| *n == name)?;
        let mut profile = Self::default();
        let mut seen = HashSet::new();
        for item in spec.split(',').filter(|item| !item.is_empty()) {
            apply_knob(&mut profile, item, &mut seen).expect("named profiles are valid specs");
        }
        Some(profile)
    }

    /// Parses a fault spec: a profile name, or comma-separated knobs, or a name followed by knobs
    /// that override it (`flaky,seed=7`). Whitespace around items is ignored.
    ///
    /// ```text
    /// SPEC   := NAME | NAME ',' KNOBS | KNOBS
    /// KNOB   := STATUS '=' RATE                 $process-message answered STATUS (400–599)
    ///         | 'reset=' RATE                   $process-message connection reset
    ///         | 'latency=' DUR | DUR '..' DUR    delay, fixed or uniform (`20..200ms`: the unit
    ///                                           of the upper bound also applies to the lower)
    ///         | 'retry_after=' DUR              Retry-After of injected 429s (whole seconds ≥ 1)
    ///         | 'storm=' WINDOW                 every $process-message request 429
    ///         | 'token_outage=' RATE | WINDOW   token endpoint 503
    ///         | 'token_reset=' RATE | WINDOW    token endpoint connection reset
    ///         | 'token_outage_status=' STATUS   status of token outages (default 503; 429
    ///                                           carries Retry-After)
    ///         | 'retry_after_format=' FORMAT    `seconds` (default) or `http-date`, for the
    ///                                           Retry-After of injected token 429s
    ///         | 'seed=' u64                     reproducible dice
    /// RATE   := a number from 0 to 1 (`0.05`) or a percentage (`5%`)
    /// DUR    := a number and a unit, `ms`, `s` or `m` (`250ms`, `1.5s`, `2m`), whole milliseconds
    /// WINDOW := DUR ['/' DUR] ['@' DUR]         length, repeat period, first start (default 0)
    /// ```
    ///
    /// Each knob may be given once (`token_outage` and `token_reset` once as a rate and once as
    /// a window). The `$process-message` rates (statuses and `reset`) must add up to at most 1,
    /// and so must the two token rates.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(format!(
                "empty fault spec: give a profile name ({}) or knobs like `500=0.05,latency=20..200ms`",
                Self::NAMES.join(", ")
            ));
        }
        let mut items = spec.split(',').map(str::trim);
        let first = items.next().unwrap_or_default();
        let (mut profile, knobs) = if first.is_empty() || first.contains('=') {
            (Self::default(), Some(first))
        } else {
            let profile = Self::named(first).ok_or_else(|| {
                format!(
                    "unknown fault profile `{first}`: expected one of {}, or knobs like `503=0.05`",
                    Self::NAMES.join(", ")
                )
            })?;
            (profile, None)
        };
        let mut seen = HashSet::new();
        for item in knobs.into_iter().chain(items) {
            if item.is_empty() {
                return Err(format!(
                    "empty item in fault spec `{spec}` (two commas in a row?)"
                ));
            }
            if !item.contains('=') && Self::named(item).is_some() {
                return Err(format!(
                    "profile name `{item}` must come first in the fault spec, before any knob"
                ));
            }
            apply_knob(&mut profile, item, &mut seen)?;
        }
        profile.validate()?;
        Ok(profile)
    }

    /// Checks that the rates can be honoured: each at most 1 and the sums at most 1.
    pub fn validate(&self) -> Result<(), String> {
        let api = self.reset_rate + self.status_rates.values().sum::<f64>();
        if api > 1.0 + 1e-9 {
            return Err(format!(
                "$process-message fault rates (statuses and reset) add up to {api}; they must total at most 1"
            ));
        }
        let token = self.token_outage_rate + self.token_reset_rate;
        if token > 1.0 + 1e-9 {
            return Err(format!(
                "token_outage and token_reset rates add up to {token}; they must total at most 1"
            ));
        }
        Ok(())
    }

    /// Whether this profile injects nothing (whatever its seed, `retry_after`, token outage
    /// status and Retry-After format).
    pub fn is_none(&self) -> bool {
        *self
            == Self {
                retry_after: self.retry_after,
                seed: self.seed,
                token_outage_status: self.token_outage_status,
                retry_after_http_date: self.retry_after_http_date,
                ..Self::default()
            }
    }
}

impl fmt::Display for FaultProfile {
    /// The canonical spec: knobs in a fixed order, `none` for a profile without any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut knobs: Vec<String> = Vec::new();
        for (status, rate) in &self.status_rates {
            knobs.push(format!("{status}={rate}"));
        }
        if self.reset_rate > 0.0 {
            knobs.push(format!("reset={}", self.reset_rate));
        }
        let LatencyRange { min, max } = self.latency;
        if min == max && !min.is_zero() {
            knobs.push(format!("latency={}", show_duration(min)));
        } else if min != max {
            knobs.push(format!(
                "latency={}..{}",
                show_duration(min),
                show_duration(max)
            ));
        }
        if !self.retry_after.is_zero() {
            knobs.push(format!("retry_after={}", show_duration(self.retry_after)));
        }
        if let Some(window) = &self.storm {
            knobs.push(format!("storm={}", show_window(window)));
        }
        if self.token_outage_rate > 0.0 {
            knobs.push(format!("token_outage={}", self.token_outage_rate));
        }
        if let Some(window) = &self.token_outage_window {
            knobs.push(format!("token_outage={}", show_window(window)));
        }
        if self.token_reset_rate > 0.0 {
            knobs.push(format!("token_reset={}", self.token_reset_rate));
        }
        if let Some(window) = &self.token_reset_window {
            knobs.push(format!("token_reset={}", show_window(window)));
        }
        if let Some(status) = self.token_outage_status {
            knobs.push(format!("token_outage_status={status}"));
        }
        if self.retry_after_http_date {
            knobs.push("retry_after_format=http-date".to_owned());
        }
        if let Some(seed) = self.seed {
            knobs.push(format!("seed={seed}"));
        }
        if knobs.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&knobs.join(","))
        }
    }
}

impl std::str::FromStr for FaultProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_outage_status_and_retry_after_format_round_trip() {
        let profile = FaultProfile::parse(
            "token_outage=1,token_outage_status=429,retry_after=3s,retry_after_format=http-date",
        )
        .unwrap();
        assert_eq!(profile.token_outage_status, Some(429));
        assert!(profile.retry_after_http_date);
        assert_eq!(FaultProfile::parse(&profile.to_string()).unwrap(), profile);
        assert!(
            FaultProfile::parse("token_outage_status=500,retry_after_format=http-date")
                .unwrap()
                .is_none()
        );
        for bad in [
            "token_outage_status=200",
            "token_outage_status=x",
            "retry_after_format=minutes",
        ] {
            assert!(FaultProfile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_named_profile_is_valid_and_round_trips() {
        for name in FaultProfile::NAMES {
            let profile = FaultProfile::named(name).unwrap();
            profile.validate().unwrap();
            assert_eq!(FaultProfile::parse(&profile.to_string()).unwrap(), profile);
        }
        assert_eq!(NAMED.map(|(name, _)| name), FaultProfile::NAMES);
    }
}
