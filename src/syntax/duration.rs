//! Duration literals: `500ms`, `10s`, `5m`, `3h`, `7d`.

use std::time::Duration;

pub const HELP: &str = "write a whole number and one unit: `500ms`, `10s`, `5m`, `3h` or `7d`";

/// The longest duration svc accepts, in `.svc` files and on the command
/// line: ten years (`3650d`). Longer ones were accepted, and then panicked
/// in date arithmetic (`every 99999999d` runs past the last date chrono
/// knows); nothing svc waits for takes that long.
pub const MAX: Duration = Duration::from_secs(3650 * 86_400);

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
    let too_long = || "longer than the maximum, `3650d` (ten years)".to_string();
    let duration = number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX)
        .ok_or_else(too_long)?;
    Ok(duration)
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
    fn ten_years_at_most_in_any_unit() {
        assert_eq!(parse("3650d"), Ok(MAX));
        assert_eq!(parse("87600h"), Ok(MAX));
        assert_eq!(parse(&format!("{}ms", MAX.as_millis())), Ok(MAX));
        for text in ["3651d", "87601h", "99999999d", "315360000001ms"] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("`3650d`"), "{text}: {error}");
        }
    }

    #[test]
    fn formats_with_the_largest_unit() {
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
