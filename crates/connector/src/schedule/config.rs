//! `[schedule]`: when submissions run, as written ([`ScheduleConfig`]) and validated
//! ([`Schedule`]).
//!
//! Contract: every key is defined once, as a [`Setting`] const (key, default, `prod` default,
//! expected form, example); the serde field names are the keys' last parts, and a test checks
//! that the two agree. Unknown keys are rejected (`deny_unknown_fields`). Missing keys take the
//! defaults of the environment (`nhs_api.environment`): in `prod` a window `03:00-06:00` in
//! `Europe/London` with `on_overrun = "stop"` (NHS England: "the data items are to flow daily
//! between 3am and 6am"); elsewhere `continuous`. Writing `window`, `timezone` or `on_overrun`
//! without `mode` where the default is `continuous` is an error rather than silently ignored;
//! an explicit `mode = "continuous"` next to them is allowed (so `ADS__SCHEDULE__MODE` can turn a
//! window off) and they are still checked. Each [`ScheduleError`] names the key and shows an
//! example, as `` `schedule.window` must be HH:MM-HH:MM in local time, e.g. `03:00-06:00` ``.

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;

use super::window::{OnOverrun, Schedule, Window};

/// One configuration key: everything the loader, the errors and the docs say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, as written in the file (`schedule.window`).
    pub key: &'static str,
    /// The value when the key is absent, outside `prod`.
    pub default: &'static str,
    /// The value when the key is absent, in `prod`.
    pub prod_default: &'static str,
    /// What a valid value is, as the error says it ("must be …").
    pub expected: &'static str,
    /// A valid value.
    pub example: &'static str,
}

impl Setting {
    /// The value taken when the key is absent in `environment`.
    pub fn default_for(&self, environment: &str) -> &'static str {
        if environment == PROD_ENVIRONMENT {
            self.prod_default
        } else {
            self.default
        }
    }

    /// The key within `[schedule]` (`window`).
    pub fn name(&self) -> &'static str {
        self.key.rsplit('.').next().unwrap_or(self.key)
    }

    fn error(&self, problem: impl Into<String>) -> ScheduleError {
        ScheduleError {
            key: self.key,
            problem: problem.into(),
            example: self.example,
        }
    }

    fn invalid(&self) -> ScheduleError {
        self.error(format!("must be {}", self.expected))
    }
}

/// The TOML section.
pub const SECTION: &str = "schedule";
/// The `nhs_api.environment` whose defaults are a window.
pub const PROD_ENVIRONMENT: &str = "prod";
/// `mode` value: submit whenever records arrive.
pub const MODE_CONTINUOUS: &str = "continuous";
/// `mode` value: submit only inside `window`.
pub const MODE_WINDOW: &str = "window";

/// `schedule.mode`
pub const MODE: Setting = Setting {
    key: "schedule.mode",
    default: MODE_CONTINUOUS,
    prod_default: MODE_WINDOW,
    expected: "`continuous` or `window`",
    example: MODE_WINDOW,
};
/// `schedule.window`
pub const WINDOW: Setting = Setting {
    key: "schedule.window",
    default: "03:00-06:00",
    prod_default: "03:00-06:00",
    expected: "HH:MM-HH:MM in local time",
    example: "03:00-06:00",
};
/// `schedule.timezone`
pub const TIMEZONE: Setting = Setting {
    key: "schedule.timezone",
    default: "Europe/London",
    prod_default: "Europe/London",
    expected: "an IANA time zone",
    example: "Europe/London",
};
/// `schedule.on_overrun`
pub const ON_OVERRUN: Setting = Setting {
    key: "schedule.on_overrun",
    default: OnOverrun::Stop.as_str(),
    prod_default: OnOverrun::Stop.as_str(),
    expected: "`stop` or `continue`",
    example: OnOverrun::Stop.as_str(),
};
/// Every key of `[schedule]`, in the order the docs list them.
pub const SETTINGS: [Setting; 4] = [MODE, WINDOW, TIMEZONE, ON_OVERRUN];

/// A `[schedule]` value that is not acceptable: `` `{key}` {problem}, e.g. `{example}` ``
/// (the shape of the connector's `ConfigError::Invalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` {problem}, e.g. `{example}`")]
pub struct ScheduleError {
    /// Dotted key, as written in the file.
    pub key: &'static str,
    /// What is wrong ("must be …").
    pub problem: String,
    /// An acceptable value.
    pub example: &'static str,
}

/// `[schedule]` as written; an absent key is `None` and takes the environment's default in
/// [`ScheduleConfig::validate`]. `Default` is the empty section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `continuous` or `window` (default: `window` in `prod`, else `continuous`).
    pub mode: Option<String>,
    /// `HH:MM-HH:MM` local time; may cross midnight (`22:00-02:00`). Default `03:00-06:00`.
    pub window: Option<String>,
    /// IANA time zone of `window`. Default `Europe/London`.
    pub timezone: Option<String>,
    /// `stop` or `continue`: the backlog left at closing time. Default `stop`.
    pub on_overrun: Option<String>,
}

impl ScheduleConfig {
    /// The section as if written out in full with `environment`'s defaults.
    pub fn default_for(environment: &str) -> Self {
        let value = |s: Setting| Some(s.default_for(environment).to_owned());
        Self {
            mode: value(MODE),
            window: value(WINDOW),
            timezone: value(TIMEZONE),
            on_overrun: value(ON_OVERRUN),
        }
    }

    /// Fills absent keys with `environment`'s defaults and checks every value, also those that
    /// `continuous` ignores.
    pub fn validate(&self, environment: &str) -> Result<Schedule, ScheduleError> {
        let default_mode = MODE.default_for(environment);
        if self.mode.is_none() && default_mode == MODE_CONTINUOUS {
            let written = [
                (WINDOW, &self.window),
                (TIMEZONE, &self.timezone),
                (ON_OVERRUN, &self.on_overrun),
            ];
            if let Some((setting, _)) = written.iter().find(|(_, v)| v.is_some()) {
                return Err(MODE.error(format!(
                    "must be set when `{}` is: in `{environment}` it defaults to \
                     `{MODE_CONTINUOUS}`, which has no window",
                    setting.key
                )));
            }
        }
        let text = |value: &Option<String>, s: Setting| {
            value
                .clone()
                .unwrap_or_else(|| s.default_for(environment).to_owned())
        };
        let mode = text(&self.mode, MODE);
        if mode != MODE_CONTINUOUS && mode != MODE_WINDOW {
            return Err(MODE.invalid());
        }
        let (start, end) = parse_window(&text(&self.window, WINDOW))?;
        let timezone: Tz = text(&self.timezone, TIMEZONE)
            .parse()
            .map_err(|_| TIMEZONE.invalid())?;
        let on_overrun = OnOverrun::from_name(&text(&self.on_overrun, ON_OVERRUN))
            .ok_or(ON_OVERRUN.invalid())?;
        let window = Window::new(start, end, timezone).ok_or_else(|| {
            WINDOW.error(format!(
                "must end at another time than it starts (for no window, set `{}` to `{MODE_CONTINUOUS}`)",
                MODE.key
            ))
        })?;
        Ok(if mode == MODE_WINDOW {
            Schedule::Window { window, on_overrun }
        } else {
            Schedule::Continuous
        })
    }
}

/// `HH:MM-HH:MM`, two digits each, hours 00–23.
fn parse_window(text: &str) -> Result<(NaiveTime, NaiveTime), ScheduleError> {
    let time = |part: &str| {
        let (h, m) = part.split_once(':')?;
        let two_digits = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        NaiveTime::from_hms_opt(two_digits(h)?, two_digits(m)?, 0)
    };
    text.split_once('-')
        .and_then(|(start, end)| Some((time(start)?, time(end)?)))
        .ok_or(WINDOW.invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Result<ScheduleConfig, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            schedule: ScheduleConfig,
        }
        toml::from_str::<File>(toml_text)
            .map(|f| f.schedule)
            .map_err(|e| e.to_string())
    }

    fn error(toml_text: &str, environment: &str) -> String {
        section(toml_text)
            .unwrap()
            .validate(environment)
            .unwrap_err()
            .to_string()
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn nhs_window() -> Schedule {
        Schedule::Window {
            window: Window::new(hm("03:00"), hm("06:00"), chrono_tz::Europe::London).unwrap(),
            on_overrun: OnOverrun::Stop,
        }
    }

    #[test]
    fn prod_defaults_to_the_nhs_window_of_three_to_six_in_london_stopping_at_the_end() {
        assert_eq!(
            ScheduleConfig::default().validate("prod").unwrap(),
            nhs_window()
        );
        assert_eq!(
            ScheduleConfig::default_for("prod"),
            ScheduleConfig {
                mode: Some("window".into()),
                window: Some("03:00-06:00".into()),
                timezone: Some("Europe/London".into()),
                on_overrun: Some("stop".into()),
            }
        );
        assert_eq!(
            ScheduleConfig::default_for("prod")
                .validate("prod")
                .unwrap(),
            nhs_window()
        );
    }

    #[test]
    fn every_other_environment_defaults_to_continuous() {
        for env in ["sandbox", "int", "custom", "dev"] {
            assert_eq!(
                ScheduleConfig::default().validate(env).unwrap(),
                Schedule::Continuous
            );
            assert_eq!(
                ScheduleConfig::default_for(env).validate(env).unwrap(),
                Schedule::Continuous
            );
            assert_eq!(
                ScheduleConfig::default_for(env).mode.as_deref(),
                Some("continuous")
            );
        }
    }

    #[test]
    fn a_full_section_is_read_from_toml() {
        let s = section(
            r#"
            [schedule]
            mode = "window"
            window = "22:00-02:00"
            timezone = "Europe/Dublin"
            on_overrun = "continue"
            "#,
        )
        .unwrap()
        .validate("int")
        .unwrap();
        assert_eq!(
            s,
            Schedule::Window {
                window: Window::new(hm("22:00"), hm("02:00"), chrono_tz::Europe::Dublin).unwrap(),
                on_overrun: OnOverrun::Continue,
            }
        );
        assert!(s.window().unwrap().crosses_midnight());
    }

    #[test]
    fn mode_window_alone_takes_the_nhs_defaults_in_any_environment() {
        let s = section("[schedule]\nmode = \"window\"").unwrap();
        assert_eq!(s.validate("int").unwrap(), nhs_window());
    }

    #[test]
    fn prod_can_be_made_continuous_and_still_checks_the_window() {
        let s = section("[schedule]\nmode = \"continuous\"").unwrap();
        assert_eq!(s.validate("prod").unwrap(), Schedule::Continuous);
        let s = section("[schedule]\nmode = \"continuous\"\nwindow = \"04:00-05:00\"").unwrap();
        assert_eq!(s.validate("int").unwrap(), Schedule::Continuous);
        assert_eq!(
            error(
                "[schedule]\nmode = \"continuous\"\nwindow = \"4-5\"",
                "prod"
            ),
            "`schedule.window` must be HH:MM-HH:MM in local time, e.g. `03:00-06:00`"
        );
    }

    #[test]
    fn the_setting_keys_are_the_serde_field_names() {
        let mut text = String::from("[schedule]\n");
        for s in SETTINGS {
            assert_eq!(s.key, format!("{SECTION}.{}", s.name()));
            text.push_str(&format!("{} = \"{}\"\n", s.name(), s.prod_default));
        }
        assert_eq!(section(&text).unwrap(), ScheduleConfig::default_for("prod"));
    }

    #[test]
    fn every_example_is_valid() {
        let config = ScheduleConfig {
            mode: Some(MODE.example.into()),
            window: Some(WINDOW.example.into()),
            timezone: Some(TIMEZONE.example.into()),
            on_overrun: Some(ON_OVERRUN.example.into()),
        };
        assert_eq!(config.validate("int").unwrap(), nhs_window());
    }

    #[test]
    fn an_unknown_key_is_refused_by_the_parser() {
        let err = section("[schedule]\nwindows = \"03:00-06:00\"").unwrap_err();
        assert!(err.contains("unknown field `windows`"), "{err}");
    }

    #[test]
    fn an_unknown_mode_names_the_key_and_the_choices() {
        assert_eq!(
            error("[schedule]\nmode = \"nightly\"", "prod"),
            "`schedule.mode` must be `continuous` or `window`, e.g. `window`"
        );
    }

    #[test]
    fn a_window_that_is_not_hh_mm_hh_mm_names_the_key_and_the_form() {
        for bad in [
            "3:00-6:00",
            "03:00–06:00",
            "03:00",
            "03:00-06:00-07:00",
            "24:00-06:00",
            "03:60-06:00",
            "03:00 - 06:00",
            "0300-0600",
            "+3:00-06:00",
            "",
        ] {
            assert_eq!(
                error(&format!("[schedule]\nwindow = \"{bad}\""), "prod"),
                "`schedule.window` must be HH:MM-HH:MM in local time, e.g. `03:00-06:00`",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_window_that_starts_where_it_ends_is_refused() {
        assert_eq!(
            error("[schedule]\nwindow = \"03:00-03:00\"", "prod"),
            "`schedule.window` must end at another time than it starts (for no window, set \
             `schedule.mode` to `continuous`), e.g. `03:00-06:00`"
        );
    }

    #[test]
    fn a_timezone_that_is_not_iana_names_the_key() {
        for bad in [
            "BST",
            "Europe/Londn",
            "europe/london",
            "+01:00",
            "GMT+1",
            "",
        ] {
            assert_eq!(
                error(&format!("[schedule]\ntimezone = \"{bad}\""), "prod"),
                "`schedule.timezone` must be an IANA time zone, e.g. `Europe/London`",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_unknown_overrun_names_the_key_and_the_choices() {
        assert_eq!(
            error("[schedule]\non_overrun = \"drain\"", "prod"),
            "`schedule.on_overrun` must be `stop` or `continue`, e.g. `stop`"
        );
    }

    #[test]
    fn a_window_without_a_mode_outside_prod_is_an_error_not_ignored() {
        assert_eq!(
            error("[schedule]\nwindow = \"22:00-02:00\"", "int"),
            "`schedule.mode` must be set when `schedule.window` is: in `int` it defaults to \
             `continuous`, which has no window, e.g. `window`"
        );
        assert_eq!(
            error("[schedule]\ntimezone = \"Europe/London\"", "sandbox"),
            "`schedule.mode` must be set when `schedule.timezone` is: in `sandbox` it defaults \
             to `continuous`, which has no window, e.g. `window`"
        );
        assert_eq!(
            error("[schedule]\non_overrun = \"continue\"", "int"),
            "`schedule.mode` must be set when `schedule.on_overrun` is: in `int` it defaults \
             to `continuous`, which has no window, e.g. `window`"
        );
        // In prod the default mode is the window, so the same section is fine.
        let s = section("[schedule]\nwindow = \"22:00-02:00\"").unwrap();
        assert!(s.validate("prod").unwrap().window().is_some());
    }

    #[test]
    fn the_error_carries_key_problem_and_example_apart() {
        let err = section("[schedule]\ntimezone = \"Mars/Olympus\"")
            .unwrap()
            .validate("prod")
            .unwrap_err();
        assert_eq!(err.key, "schedule.timezone");
        assert_eq!(err.problem, "must be an IANA time zone");
        assert_eq!(err.example, "Europe/London");
    }
}
