//! `[schedule]` in the configuration: the keys as [`SECTION`] (for the docs and the key checks),
//! read as [`crate::schedule::ScheduleConfig`] and validated into a [`Schedule`].
//!
//! Contract: the keys' defaults, valid values and examples are written once, in
//! `schedule::config` (the schedule module is below `config` in the layers and cannot use its
//! [`Setting`] type); this file adds each key's meaning and converts the table at compile time,
//! so the docs, the errors and the loader cannot disagree. The validation is
//! [`crate::schedule::ScheduleConfig::validate`] with `nhs_api.environment`: `window 03:00-06:00
//! Europe/London` (stop at the end) in `prod`, `continuous` elsewhere.

use super::settings::{Absent, Section, Setting};
use super::ConfigError;
use crate::schedule::config as sc;
use crate::schedule::{Schedule, ScheduleConfig};

/// `[schedule]`
pub const SECTION: Section = Section {
    name: sc::SECTION,
    about: "When submissions run. NHS England's \"Flowing ADS data\" (digital.nhs.uk): \"The data \
            items are to flow daily between 3am and 6am\", and \"the latest submission \
            overwrites the last\". In `window` mode the connector waits outside the window \
            (Kafka holds the backlog: keep the source topics' retention at least a day plus the \
            window plus a margin, 48 hours or more), and inside it POSTs only the newest snapshot \
            of each call in the backlog, acking every older one `superseded` (README, \"Submission \
            schedule\").",
    settings: &SETTINGS,
};

/// Every key of `[schedule]`, in the order of `schedule::config::SETTINGS`.
pub const SETTINGS: [Setting; 4] = [
    from_schedule(
        sc::MODE,
        "`continuous`: submit as records arrive; `window`: submit only inside `window`, the \
         newest snapshot of each call",
    ),
    from_schedule(
        sc::WINDOW,
        "the daily window, local time of `timezone`; may cross midnight (`22:00-02:00`)",
    ),
    from_schedule(
        sc::TIMEZONE,
        "the window's time zone (tz database: the window follows the clock changes)",
    ),
    from_schedule(
        sc::ON_OVERRUN,
        "the backlog left at closing time: `stop` (no new submission after the window; the rest \
         waits for the next one, as NHS England's window asks) or `continue` (a pass begun inside \
         the window runs until the backlog is drained)",
    ),
];

/// One `schedule::config::Setting` as a configuration [`Setting`], with its meaning.
const fn from_schedule(s: sc::Setting, meaning: &'static str) -> Setting {
    Setting {
        key: s.key,
        default: Absent::Value(s.default),
        prod_default: if same(s.default, s.prod_default) {
            None
        } else {
            Some(s.prod_default)
        },
        expected: s.expected,
        example: Some(s.example),
        meaning,
    }
}

/// `a == b`, usable in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Validates `[schedule]` for `environment` (`nhs_api.environment`).
pub fn validate(raw: &ScheduleConfig, environment: &str) -> Result<Schedule, ConfigError> {
    raw.validate(environment).map_err(|e| ConfigError::Invalid {
        key: e.key,
        problem: e.problem,
        example: e.example,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_the_schedule_modules_keys_defaults_and_examples() {
        for (ours, theirs) in SETTINGS.iter().zip(sc::SETTINGS) {
            assert_eq!(ours.key, theirs.key);
            assert_eq!(ours.default, Absent::Value(theirs.default));
            assert_eq!(
                ours.prod_default.unwrap_or(theirs.default),
                theirs.prod_default
            );
            assert_eq!(ours.example(), theirs.example);
        }
        assert_eq!(sc::MODE.default, "continuous");
        assert_eq!(SETTINGS[0].prod_default, Some("window"));
        assert_eq!(SETTINGS[1].prod_default, None);
    }

    #[test]
    fn a_schedule_error_becomes_a_config_error_with_the_same_text() {
        let raw = ScheduleConfig {
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        };
        let err = validate(&raw, "prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`schedule.timezone` must be an IANA time zone, e.g. `Europe/London`"
        );
    }
}
