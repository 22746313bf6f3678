//! The knobs of a fault spec (`500=2%`, `latency=20..200ms`, `storm=2s/20s@10s`, …): parsing
//! one `key=value` item into a [`FaultProfile`], its rates, durations, latency ranges and windows,
//! and printing durations and windows back in the same grammar. Errors are messages that quote
//! the item and show the expected form. The grammar is documented on [`FaultProfile::parse`].

use std::collections::HashSet;
use std::time::Duration;

use super::{FaultProfile, FaultWindow, LatencyRange};

/// Longest duration a spec may give (one day): anything longer is surely a typo.
const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Applies one `key=value` item; `seen` catches a knob given twice.
pub(super) fn apply_knob(
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
        "token_outage_status" => {
            let code: u16 = value.parse().unwrap_or(0);
            if !(400..=599).contains(&code) {
                return Err(context(
                    "a token outage status must be an error status from 400 to 599 (like 500 or 429)"
                        .into(),
                ));
            }
            profile.token_outage_status = Some(code);
            key.to_owned()
        }
        "retry_after_format" => {
            profile.retry_after_http_date = match value {
                "seconds" => false,
                "http-date" => true,
                _ => {
                    return Err(context(
                        "the Retry-After format is `seconds` or `http-date`".into(),
                    ))
                }
            };
            key.to_owned()
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
         token_reset=RATE|WINDOW, token_outage_status=STATUS, retry_after_format=seconds|http-date \
         or seed=N; or a profile name first ({})",
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
pub(super) fn parse_duration(value: &str) -> Result<Duration, String> {
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
pub(super) fn parse_latency(value: &str) -> Result<LatencyRange, String> {
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
pub(super) fn parse_window(value: &str) -> Result<FaultWindow, String> {
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

pub(super) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms > 0 && ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

pub(super) fn show_window(window: &FaultWindow) -> String {
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
}
