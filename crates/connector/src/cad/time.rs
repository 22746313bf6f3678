//! Timestamps and dates of `cad.call.v1`: the schema's exact RFC 3339 shape, UTC output, and
//! serde adapters whose errors carry a rule with an example, never the value.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};

/// Formats a UTC time as RFC 3339 with `Z` and only as many fraction digits as it has.
pub fn format_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// [`format_utc`] without an allocation, for the common case: a year from 0 to 9999 and no
/// leap second. `None` otherwise (the caller falls back to [`format_utc`]); the text is then
/// byte-for-byte what `format_utc` gives.
pub fn utc_text(t: &DateTime<Utc>) -> Option<UtcText> {
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut buf = [0u8; 30];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let mut len = 19;
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((value, width)) = fraction {
        put(20, value, width);
        len = 20 + width;
    }
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        buf[i] = c;
    }
    if fraction.is_some() {
        buf[19] = b'.';
    }
    buf[len] = b'Z';
    Some(UtcText {
        buf,
        len: len as u8 + 1,
    })
}

/// An RFC 3339 UTC time as text, on the stack ([`utc_text`]).
#[derive(Clone, Copy)]
pub struct UtcText {
    buf: [u8; 30],
    len: u8,
}

impl UtcText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).expect("ASCII")
    }
}

const RFC3339_RULE: &str = "expected an RFC 3339 date-time with offset, e.g. 2025-03-01T12:00:00Z";
const DATE_RULE: &str = "expected a calendar date YYYY-MM-DD, e.g. 2025-03-01";

pub(super) fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    // chrono also accepts a space, `t` or `z`; the schema's pattern does not, so neither do we.
    if !has_rfc3339_shape(s.as_bytes()) {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the schema's `timestamp` pattern.
fn has_rfc3339_shape(b: &[u8]) -> bool {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shape_ok
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

pub(super) mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).ok_or_else(|| D::Error::custom(super::RFC3339_RULE))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_utc(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(super::super::RFC3339_RULE)),
            }
        }
    }
}

pub(super) mod date {
    use chrono::NaiveDate;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format("%Y-%m-%d").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_date(&s).ok_or_else(|| D::Error::custom(super::DATE_RULE))
    }

    pub mod option {
        use chrono::NaiveDate;
        use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_date(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(super::super::DATE_RULE)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_is_the_text_of_format_utc() {
        let base = DateTime::parse_from_rfc3339("2025-03-01T12:00:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let nanos = [
            0,
            1,
            7,
            1_000,
            120_000,
            1_000_000,
            5_000_000,
            123_456_789,
            999_999_999,
            10_000_000,
        ];
        for n in nanos {
            for secs in [0, 59, 86_399, 3_600 * 24 * 400] {
                let t = base + chrono::Duration::seconds(secs) + chrono::Duration::nanoseconds(n);
                assert_eq!(utc_text(&t).unwrap().as_str(), format_utc(&t));
            }
        }
        let early = NaiveDate::from_ymd_opt(7, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        assert_eq!(utc_text(&early).unwrap().as_str(), format_utc(&early));
    }

    #[test]
    fn utc_text_leaves_years_past_9999_and_leap_seconds_to_format_utc() {
        let late = NaiveDate::from_ymd_opt(10_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert!(utc_text(&late).is_none());
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert!(utc_text(&leap).is_none());
    }
}
