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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// Longest duration a spec may give (one day): anything longer is surely a typo.
const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

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

    /// Whether this profile injects nothing (whatever its seed and `retry_after`).
    pub fn is_none(&self) -> bool {
        *self
            == Self {
                retry_after: self.retry_after,
                seed: self.seed,
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

/// Applies one `key=value` item; `seen` catches a knob given twice.
fn apply_knob(
    profile: &mut FaultProfile,
    item: &str,
    seen: &mut HashSet<String>,
) -> Result<(), String> {
    let (key, value) = item.split_once('=').ok_or_else(|| unknown_knob(item))?;
    let (key, value) = (key.trim(), value.trim());
    let context = |error: String| format!("`{item}`: {error}");
    let field = match key {
        "reset" => {
            profile.reset_rate = parse_rate(value).map_err(context)?;
            key.to_owned()
        }
        "latency" => {
            profile.latency = parse_latency(value).map_err(context)?;
            key.to_owned()
        }
        "retry_after" => {
            let wait = parse_duration(value).map_err(context)?;
            if wait.is_zero() || wait.subsec_nanos() != 0 {
                return Err(context(
                    "Retry-After is whole seconds, at least 1s (like `retry_after=5s`)".into(),
                ));
            }
            profile.retry_after = wait;
            key.to_owned()
        }
        "storm" => {
            profile.storm = Some(parse_window(value).map_err(context)?);
            key.to_owned()
        }
        "token_outage" | "token_reset" => {
            let outage = key == "token_outage";
            if looks_like_rate(value) {
                let rate = parse_rate(value).map_err(context)?;
                if outage {
                    profile.token_outage_rate = rate;
                } else {
                    profile.token_reset_rate = rate;
                }
                format!("{key} rate")
            } else {
                let window = Some(parse_window(value).map_err(context)?);
                if outage {
                    profile.token_outage_window = window;
                } else {
                    profile.token_reset_window = window;
                }
                format!("{key} window")
            }
        }
        "seed" => {
            let seed = value
                .parse()
                .map_err(|_| context("seed must be a whole number from 0 to 2^64-1".into()))?;
            profile.seed = Some(seed);
            key.to_owned()
        }
        status if !status.is_empty() && status.bytes().all(|b| b.is_ascii_digit()) => {
            let code: u16 = status.parse().unwrap_or(0);
            if !(400..=599).contains(&code) {
                return Err(context(
                    "an injected status must be an error status from 400 to 599".into(),
                ));
            }
            let rate = parse_rate(value).map_err(context)?;
            profile.status_rates.insert(code, rate);
            status.to_owned()
        }
        _ => return Err(unknown_knob(item)),
    };
    if !seen.insert(field.clone()) {
        return Err(format!("`{item}`: {field} is given twice"));
    }
    Ok(())
}

fn unknown_knob(item: &str) -> String {
    format!(
        "unknown fault knob `{item}`: expected STATUS=RATE (STATUS 400-599), reset=RATE, \
         latency=DUR or MIN..MAX, retry_after=DUR, storm=WINDOW, token_outage=RATE|WINDOW, \
         token_reset=RATE|WINDOW or seed=N; or a profile name first ({})",
        FaultProfile::NAMES.join(", ")
    )
}

/// A rate is a bare number or a percentage; a window always has a unit.
fn looks_like_rate(value: &str) -> bool {
    value
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '%')
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "rate must be a number from 0 to 1 or a percentage (like 0.05 or 5%), not `{value}`"
        )
    };
    let (number, scale) = match value.strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (value, 1.0),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let rate = number.parse::<f64>().map_err(|_| bad())? / scale;
    if !(0.0..=1.0).contains(&rate) {
        return Err(bad());
    }
    Ok(rate)
}

/// `250ms`, `1.5s`, `2m`: a number and a unit, a whole number of milliseconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let (number, unit) = split_unit(value);
    let scale = unit_ms(unit).ok_or_else(|| {
        format!("duration needs a unit, ms, s or m (like 250ms, 1.5s or 2m), not `{value}`")
    })?;
    duration_in(number, scale, value)
}

fn split_unit(value: &str) -> (&str, &str) {
    let at = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    value.split_at(at)
}

fn unit_ms(unit: &str) -> Option<f64> {
    match unit {
        "ms" => Some(1.0),
        "s" => Some(1_000.0),
        "m" => Some(60_000.0),
        _ => None,
    }
}

fn duration_in(number: &str, scale: f64, original: &str) -> Result<Duration, String> {
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{original}` is not a duration like 250ms, 1.5s or 2m"))?;
    let ms = value * scale;
    if (ms - ms.round()).abs() > 1e-6 {
        return Err(format!(
            "`{original}` is not a whole number of milliseconds"
        ));
    }
    if ms > MAX_DURATION_MS as f64 {
        return Err(format!("`{original}` is longer than a day"));
    }
    Ok(Duration::from_millis(ms.round() as u64))
}

/// `DUR` or `MIN..MAX`; a unitless `MIN` takes the unit of `MAX` (`20..200ms`).
fn parse_latency(value: &str) -> Result<LatencyRange, String> {
    let Some((low, high)) = value.split_once("..") else {
        let fixed = parse_duration(value)?;
        return Ok(LatencyRange {
            min: fixed,
            max: fixed,
        });
    };
    let max = parse_duration(high)?;
    let min = match split_unit(low) {
        (number, "") => duration_in(number, unit_ms(split_unit(high).1).unwrap_or(1.0), low)?,
        _ => parse_duration(low)?,
    };
    if min > max {
        return Err(format!(
            "latency range `{value}` runs backwards: the minimum is above the maximum"
        ));
    }
    Ok(LatencyRange { min, max })
}

/// `LEN[/PERIOD][@START]`.
fn parse_window(value: &str) -> Result<FaultWindow, String> {
    let (rest, start) = match value.split_once('@') {
        Some((rest, start)) => (rest, parse_duration(start)?),
        None => (value, Duration::ZERO),
    };
    let (length, period) = match rest.split_once('/') {
        Some((length, period)) => (parse_duration(length)?, Some(parse_duration(period)?)),
        None => (parse_duration(rest)?, None),
    };
    if length.is_zero() {
        return Err(format!("window `{value}` has zero length"));
    }
    if let Some(period) = period {
        if period < length {
            return Err(format!(
                "window `{value}`: the period must be at least the window's length \
                 (LEN/PERIOD, like 5s/60s for 5 seconds every minute)"
            ));
        }
    }
    Ok(FaultWindow {
        length,
        period,
        start,
    })
}

fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms > 0 && ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

fn show_window(window: &FaultWindow) -> String {
    let mut text = show_duration(window.length);
    if let Some(period) = window.period {
        text.push('/');
        text.push_str(&show_duration(period));
    }
    if !window.start.is_zero() {
        text.push('@');
        text.push_str(&show_duration(window.start));
    }
    text
}

/// What to do with a `$process-message` request that passed the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiFault {
    /// Accept and record it.
    None,
    /// Answer with this status instead.
    Status(u16),
    /// Reset the connection without a response.
    Reset,
}

/// The delay and the fault for one `$process-message` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiPlan {
    pub delay: Duration,
    pub fault: ApiFault,
}

/// What to do with a token request, before any check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenFault {
    None,
    /// Refuse with 503.
    Unavailable,
    /// Reset the connection without a response.
    Reset,
}

/// The profile in force and its dice; cheap to consult (one short lock, no `.await`).
#[derive(Debug)]
pub(crate) struct Injector {
    dice: Mutex<Dice>,
}

#[derive(Debug)]
struct Dice {
    profile: FaultProfile,
    rng: StdRng,
    since: Instant,
}

impl Dice {
    fn new(profile: FaultProfile) -> Self {
        let rng = match profile.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            profile,
            rng,
            since: Instant::now(),
        }
    }

    fn is_open(&self, window: Option<&FaultWindow>) -> bool {
        window.is_some_and(|w| w.is_open(self.since.elapsed()))
    }
}

impl Injector {
    pub(crate) fn new(profile: FaultProfile) -> Self {
        Self {
            dice: Mutex::new(Dice::new(profile)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Dice> {
        self.dice
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `profile` in force: reseeds the dice and restarts its windows' clock.
    pub(crate) fn set(&self, profile: FaultProfile) {
        *self.lock() = Dice::new(profile);
    }

    pub(crate) fn profile(&self) -> FaultProfile {
        self.lock().profile.clone()
    }

    /// The `Retry-After` to refuse with when a 429 storm is on.
    pub(crate) fn storm(&self) -> Option<Duration> {
        let dice = self.lock();
        dice.is_open(dice.profile.storm.as_ref())
            .then_some(dice.profile.retry_after)
    }

    /// `Retry-After` of injected 429s.
    pub(crate) fn retry_after(&self) -> Duration {
        self.lock().profile.retry_after
    }

    /// Draws the delay, then the fault, for a `$process-message` request past the quota.
    pub(crate) fn plan_api(&self) -> ApiPlan {
        let mut dice = self.lock();
        let Dice { profile, rng, .. } = &mut *dice;
        let LatencyRange { min, max } = profile.latency;
        let delay = if max > min {
            let ms = rng.gen_range(min.as_millis() as u64..=max.as_millis() as u64);
            Duration::from_millis(ms)
        } else {
            min
        };
        let roll: f64 = rng.gen();
        let mut bound = profile.reset_rate;
        let fault = if roll < bound {
            ApiFault::Reset
        } else {
            profile
                .status_rates
                .iter()
                .find(|(_, rate)| {
                    bound += **rate;
                    roll < bound
                })
                .map_or(ApiFault::None, |(status, _)| ApiFault::Status(*status))
        };
        ApiPlan { delay, fault }
    }

    /// Decides the fate of a token request: windows first (reset, then outage), then the rates.
    pub(crate) fn plan_token(&self) -> TokenFault {
        let mut dice = self.lock();
        if dice.is_open(dice.profile.token_reset_window.as_ref()) {
            return TokenFault::Reset;
        }
        if dice.is_open(dice.profile.token_outage_window.as_ref()) {
            return TokenFault::Unavailable;
        }
        let (reset, outage) = (
            dice.profile.token_reset_rate,
            dice.profile.token_outage_rate,
        );
        let roll: f64 = dice.rng.gen();
        if roll < reset {
            TokenFault::Reset
        } else if roll < reset + outage {
            TokenFault::Unavailable
        } else {
            TokenFault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn windows_open_from_start_for_length_then_every_period() {
        let once = parse_window("2s@5s").unwrap();
        assert!(!once.is_open(secs(4)));
        assert!(once.is_open(secs(5)));
        assert!(once.is_open(Duration::from_millis(6_999)));
        assert!(!once.is_open(secs(7)));
        assert!(!once.is_open(secs(60)));
        let repeating = parse_window("2s/10s@5s").unwrap();
        assert!(repeating.is_open(secs(5)) && repeating.is_open(secs(16)));
        assert!(!repeating.is_open(secs(8)) && !repeating.is_open(secs(17)));
        assert!(parse_window("1s").unwrap().is_open(Duration::ZERO));
    }

    #[test]
    fn durations_need_units_and_whole_milliseconds() {
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            Duration::from_millis(1_500)
        );
        assert_eq!(parse_duration("2m").unwrap(), secs(120));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1.5ms").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2d").is_err());
    }

    #[test]
    fn latency_lower_bound_borrows_the_upper_bound_unit() {
        let range = parse_latency("20..200ms").unwrap();
        assert_eq!(range.min, Duration::from_millis(20));
        assert_eq!(range.max, Duration::from_millis(200));
        let mixed = parse_latency("500ms..2s").unwrap();
        assert_eq!(
            (mixed.min, mixed.max),
            (Duration::from_millis(500), secs(2))
        );
        assert!(parse_latency("2s..1s").is_err());
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

    #[test]
    fn plans_follow_the_rates_in_order() {
        let always_reset = Injector::new(FaultProfile::parse("reset=1").unwrap());
        assert_eq!(always_reset.plan_api().fault, ApiFault::Reset);
        let always_503 = Injector::new(FaultProfile::parse("503=1,latency=7ms").unwrap());
        let plan = always_503.plan_api();
        assert_eq!(plan.fault, ApiFault::Status(503));
        assert_eq!(plan.delay, Duration::from_millis(7));
        let calm = Injector::new(FaultProfile::default());
        assert_eq!(calm.plan_api().fault, ApiFault::None);
        assert_eq!(calm.plan_token(), TokenFault::None);
        assert_eq!(calm.storm(), None);
    }
}
