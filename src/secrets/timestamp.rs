//! Timestamps in a store, as RFC 3339 text: `2026-11-28T21:22:31Z`.
//!
//! A store of 10,000 secrets holds 10,000 of them or more, so the common
//! form (UTC, whole seconds, as svc writes it) is read and written here
//! directly; any other RFC 3339 form goes through chrono.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `YYYY-MM-DDTHH:MM:SSZ`, or `None` when the text has another form.
fn parse_fast(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    let time = date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?;
    Some(time.and_utc())
}

pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(time) = parse_fast(text) {
        return Ok(time);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "a timestamp that is not RFC 3339".to_string())
}

fn format(time: &DateTime<Utc>) -> String {
    if time.nanosecond() != 0 || !(0..=9999).contains(&time.year()) {
        return time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    }
    let digits = |n: u32, width: usize| format!("{n:0width$}");
    let mut out = String::with_capacity(20);
    out.push_str(&digits(time.year() as u32, 4));
    for (n, sep) in [(time.month(), '-'), (time.day(), '-')] {
        out.push(sep);
        out.push_str(&digits(n, 2));
    }
    out.push('T');
    for (i, n) in [time.hour(), time.minute(), time.second()]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    }
    out.push('Z');
    out
}

/// For `#[serde(with = "timestamp::optional")]` on `Option<DateTime<Utc>>`.
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(
        time: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.serialize_str(&format(time)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text: Option<std::borrow::Cow<'de, str>> = Option::deserialize(deserializer)?;
        text.map(|t| parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// For `#[serde(with = "timestamp::required")]` on `DateTime<Utc>`.
pub mod required {
    use super::*;

    pub fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text: std::borrow::Cow<'de, str> = Deserialize::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for text in [
            "2026-11-28T21:22:31Z",
            "1999-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
        ] {
            let fast = parse_fast(text).unwrap();
            let slow = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(fast, slow);
            assert_eq!(format(&fast), text);
        }
        assert!(parse_fast("2026-02-30T00:00:00Z").is_none());
        assert!(parse("2026-02-30T00:00:00Z").is_err());
        // Other RFC 3339 forms still read.
        assert_eq!(
            parse("2026-11-28T22:22:31+01:00").unwrap(),
            parse("2026-11-28T21:22:31Z").unwrap()
        );
        assert_eq!(
            format(&parse("2026-11-28T21:22:31.5Z").unwrap()),
            "2026-11-28T21:22:31.500Z"
        );
    }
}
