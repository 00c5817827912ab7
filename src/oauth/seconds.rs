//! Durations an authorization server sends: the `expires_in` of a token or
//! a device code, a refresh token's lifetime, the device flow's `interval`.
//! A server may send anything there: 2^64 - 1, a negative number, a string,
//! 1e308. Each is read by [`parse`], clamped to what svc acts on by
//! [`clamped`], and added to a clock by [`after`], which never overflows
//! (`Instant + Duration` panics: "overflow when adding duration to instant").

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: as far ahead as a deadline needs to be.
const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);

/// Seconds as a JSON number or a numeric string (some servers quote it);
/// `None` when it is neither, negative, or not finite.
pub fn parse(value: &serde_json::Value) -> Option<f64> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// A server's number of seconds as a duration from `min` to `max`;
/// `None` when it is not a number of seconds at all.
pub fn clamped(value: &serde_json::Value, min: Duration, max: Duration) -> Option<Duration> {
    let seconds = parse(value)?.clamp(min.as_secs_f64(), max.as_secs_f64());
    Duration::try_from_secs_f64(seconds).ok()
}

/// `now + wait`; as far as the clock counts when that would overflow it.
pub fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_numbers_and_numeric_strings_only() {
        assert_eq!(parse(&json!(1800)), Some(1800.0));
        assert_eq!(parse(&json!(" 5 ")), Some(5.0));
        assert_eq!(parse(&json!(u64::MAX)), Some(u64::MAX as f64));
        for bad in [
            json!(-1),
            json!("soon"),
            json!("NaN"),
            json!("inf"),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn clamps_into_the_range_svc_acts_on() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(clamped(&json!(u64::MAX), min, max), Some(max));
        assert_eq!(clamped(&json!(0), min, max), Some(min));
        assert_eq!(clamped(&json!("1e308"), min, max), Some(max));
        assert_eq!(clamped(&json!(7), min, max), Some(Duration::from_secs(7)));
        assert_eq!(clamped(&json!(-7), min, max), None);
    }

    #[test]
    fn a_deadline_never_overflows_the_clock() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > after(now, Duration::from_secs(86_400)));
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
