//! Duration literals: `500ms`, `10s`, `5m`, `3h`, `7d`.

use std::time::Duration;

pub const HELP: &str = "write a whole number and one unit: `500ms`, `10s`, `5m`, `3h` or `7d`";

/// Parses a duration as written in `.svc` files and on the command line.
/// The error says what is wrong, in a few words.
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err("a duration starts with a number".into());
    }
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| "this number is too large".to_string())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err("the unit is missing".into()),
        other => return Err(format!("`{other}` is not a unit")),
    };
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| "this duration is too long".to_string())?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration the way it would be written in a `.svc` file, using
/// the largest unit that divides it.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("3h"), Ok(Duration::from_secs(10_800)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn rejects_bad_units_and_overflow() {
        assert_eq!(parse("10x"), Err("`x` is not a unit".into()));
        assert_eq!(parse("10"), Err("the unit is missing".into()));
        assert!(parse("s").is_err());
        assert!(parse("99999999999999999999d").is_err());
        assert!(parse("999999999999999999d").is_err());
    }

    #[test]
    fn formats_with_the_largest_unit() {
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
