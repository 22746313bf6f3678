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
    // The fields of the naive UTC time: each of `DateTime`'s own field methods first works out
    // the local time, applying the (zero) offset again.
    let t = t.naive_utc();
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
    let b = s.as_bytes();
    if !has_rfc3339_shape(b) {
        return None;
    }
    match fields_of(b) {
        Some(fields) => fields.to_utc(),
        // A leap second or an offset past 23:59: chrono's rules, as they stand.
        None => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// The parts of a timestamp of the schema's shape, as numbers, for the common case: a second
/// from 0 to 59 and an offset of at most 23:59 (`None` otherwise, left to chrono).
struct Fields {
    date: (i32, u32, u32),
    time: (u32, u32, u32, u32),
    /// East of UTC, in seconds.
    offset: i32,
}

impl Fields {
    /// The instant, as `DateTime::parse_from_rfc3339` gives it (`None` for a date or time
    /// that does not exist, as chrono refuses it).
    fn to_utc(&self) -> Option<DateTime<Utc>> {
        let (y, mo, d) = self.date;
        let (h, mi, sec, nano) = self.time;
        let local = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, sec, nano)?;
        let offset = chrono::FixedOffset::east_opt(self.offset)?;
        Some(local.checked_sub_offset(offset)?.and_utc())
    }
}

/// The number ASCII `digits` (at most nine) write.
fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// [`Fields`] of `b`, which has [`has_rfc3339_shape`]. chrono reads at most nine fraction
/// digits and ignores the rest; so does this.
fn fields_of(b: &[u8]) -> Option<Fields> {
    let num = |r: std::ops::Range<usize>| number(&b[r]);
    let sec = num(17..19);
    if sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nano = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        let kept = &fraction[..n.min(9)];
        nano = number(kept) * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[n..];
    }
    let offset = match rest {
        [b'Z'] => 0,
        [sign, h1, h2, b':', m1, m2] => {
            let (hours, minutes) = (number(&[*h1, *h2]), number(&[*m1, *m2]));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let east = (hours * 3600 + minutes * 60) as i32;
            if *sign == b'-' {
                -east
            } else {
                east
            }
        }
        _ => return None,
    };
    Some(Fields {
        date: (num(0..4) as i32, num(5..7), num(8..10)),
        time: (num(11..13), num(14..16), sec, nano),
        offset,
    })
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
    if !shape_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(number(&b[0..4]) as i32, number(&b[5..7]), number(&b[8..10]))
}

/// A string value parsed by a function, read where the deserializer holds it (the record's
/// own bytes, or its scratch copy of an escaped string) instead of a `String` made for it.
/// Expects "a string", as `String`'s own `Deserialize` does, so serde's errors read the same.
struct ParsedStr<F> {
    parse: F,
    rule: &'static str,
}

impl<'de, T, F: FnOnce(&str) -> Option<T>> serde::de::Visitor<'de> for ParsedStr<F> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        (self.parse)(s).ok_or_else(|| E::custom(self.rule))
    }
}

/// An optional [`ParsedStr`]: `null` is `None`.
struct OptionalParsedStr<F>(ParsedStr<F>);

impl<'de, T, F: FnOnce(&str) -> Option<T>> serde::de::Visitor<'de> for OptionalParsedStr<F> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_str(self.0).map(Some)
    }
}

pub(super) mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(super::ParsedStr {
            parse: super::parse_rfc3339,
            rule: super::RFC3339_RULE,
        })
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserializer, Serializer};

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
            d.deserialize_option(super::super::OptionalParsedStr(super::super::ParsedStr {
                parse: super::super::parse_rfc3339,
                rule: super::super::RFC3339_RULE,
            }))
        }
    }
}

pub(super) mod date {
    use chrono::NaiveDate;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format("%Y-%m-%d").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        d.deserialize_str(super::ParsedStr {
            parse: super::parse_date,
            rule: super::DATE_RULE,
        })
    }

    pub mod option {
        use chrono::NaiveDate;
        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            d.deserialize_option(super::super::OptionalParsedStr(super::super::ParsedStr {
                parse: super::super::parse_date,
                rule: super::super::DATE_RULE,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A timestamp of the schema's shape, its fields anywhere in their digits' range (so
    /// months 13 and up, days 32 and up, leap seconds and offsets past 23:59 come up), and a
    /// fraction of 0 to 12 digits.
    fn shaped_timestamp() -> impl Strategy<Value = String> {
        (
            (0u32..=9999, 0u32..=19, 0u32..=39),
            (0u32..=29, 0u32..=69, 0u32..=69),
            proptest::option::of("[0-9]{1,12}"),
            proptest::option::of((prop_oneof![Just('+'), Just('-')], 0u32..=29, 0u32..=69)),
        )
            .prop_map(|((y, mo, d), (h, mi, s), fraction, offset)| {
                let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
                let offset = match offset {
                    None => "Z".to_string(),
                    Some((sign, oh, om)) => format!("{sign}{oh:02}:{om:02}"),
                };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{offset}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn a_timestamp_parses_to_the_instant_chrono_gives_and_fails_where_chrono_fails(
            text in shaped_timestamp()
        ) {
            let chrono = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc));
            prop_assert_eq!(parse_rfc3339(&text), chrono, "{}", text);
        }

        #[test]
        fn a_date_parses_to_the_date_chrono_gives_and_fails_where_chrono_fails(
            (y, mo, d) in (0u32..=9999, 0u32..=19, 0u32..=39)
        ) {
            let text = format!("{y:04}-{mo:02}-{d:02}");
            let chrono = NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok();
            prop_assert_eq!(parse_date(&text), chrono, "{}", text);
        }
    }

    #[test]
    fn timestamps_at_the_edges_parse_as_chrono_parses_them() {
        for text in [
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5+01:00",
            "0000-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59.999999999-23:59",
            "2024-02-29T12:00:00.1234567890123Z",
            "2023-02-29T12:00:00Z",
            "2025-03-30T01:30:00-00:00",
            "2025-03-01T24:00:00Z",
            "2025-03-01T12:00:00+24:00",
        ] {
            let chrono = DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(parse_rfc3339(text), chrono, "{text}");
        }
    }

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
