//! What `+ - * /` and `< <= > >=` compute. Time arithmetic is checked: a
//! result out of range is an error, never a wrapped value.

use chrono::TimeDelta;

use super::value::{Value, duration_of_seconds, seconds_of};
use crate::syntax::ast::BinaryOp;

/// One operand, as the operators see it: a JSON number counts as a number
/// and a JSON string as a string.
enum Operand<'a> {
    Number(f64),
    Text(&'a str),
    Duration(TimeDelta),
    Time(chrono::DateTime<chrono::Utc>),
    Other,
}

fn operand(value: &Value) -> Operand<'_> {
    match value {
        Value::Number(n) => Operand::Number(*n),
        Value::Json(serde_json::Value::Number(n)) => {
            n.as_f64().map_or(Operand::Other, Operand::Number)
        }
        Value::String(s) => Operand::Text(s),
        Value::Json(serde_json::Value::String(s)) => Operand::Text(s),
        Value::Duration(d) => Operand::Duration(*d),
        Value::Time(t) => Operand::Time(*t),
        _ => Operand::Other,
    }
}

/// `+ - * /`; the error names the operand kinds, never their values.
pub fn arithmetic(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, String> {
    use Operand as O;
    let mismatch = || {
        format!(
            "`{}` does not take a {} and a {}",
            op.symbol(),
            left.kind(),
            right.kind()
        )
    };
    let out_of_range = || format!("`{}`: the result is out of range", op.symbol());
    let value = match (op, operand(left), operand(right)) {
        (BinaryOp::Add, O::Text(a), O::Text(b)) => Value::String(format!("{a}{b}")),
        (_, O::Number(a), O::Number(b)) => {
            let n = match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div if b == 0.0 => return Err("division by zero".into()),
                BinaryOp::Div => a / b,
                _ => return Err(mismatch()),
            };
            if !n.is_finite() {
                return Err(out_of_range());
            }
            Value::Number(n)
        }
        (BinaryOp::Add, O::Duration(a), O::Duration(b)) => {
            Value::Duration(a.checked_add(&b).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Sub, O::Duration(a), O::Duration(b)) => {
            Value::Duration(a.checked_sub(&b).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Add, O::Time(t), O::Duration(d))
        | (BinaryOp::Add, O::Duration(d), O::Time(t)) => {
            Value::Time(t.checked_add_signed(d).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Sub, O::Time(t), O::Duration(d)) => {
            Value::Time(t.checked_sub_signed(d).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Sub, O::Time(a), O::Time(b)) => Value::Duration(a.signed_duration_since(b)),
        (BinaryOp::Mul, O::Duration(d), O::Number(n))
        | (BinaryOp::Mul, O::Number(n), O::Duration(d)) => {
            Value::Duration(duration_of_seconds(seconds_of(d) * n).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Div, O::Duration(_), O::Number(0.0)) => {
            return Err("division by zero".into());
        }
        (BinaryOp::Div, O::Duration(d), O::Number(n)) => {
            Value::Duration(duration_of_seconds(seconds_of(d) / n).ok_or_else(out_of_range)?)
        }
        (BinaryOp::Div, O::Duration(a), O::Duration(b)) => {
            if b.is_zero() {
                return Err("division by zero".into());
            }
            Value::Number(seconds_of(a) / seconds_of(b))
        }
        _ => return Err(mismatch()),
    };
    Ok(value)
}

/// `< <= > >=` on two numbers, two durations or two times.
pub fn compare(op: BinaryOp, left: &Value, right: &Value) -> Result<bool, String> {
    use Operand as O;
    let ordering = match (operand(left), operand(right)) {
        (O::Number(a), O::Number(b)) => a.partial_cmp(&b),
        (O::Duration(a), O::Duration(b)) => Some(a.cmp(&b)),
        (O::Time(a), O::Time(b)) => Some(a.cmp(&b)),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return Err(format!(
            "`{}` compares two numbers, two durations or two times, not a {} and a {}",
            op.symbol(),
            left.kind(),
            right.kind()
        ));
    };
    Ok(match op {
        BinaryOp::Lt => ordering.is_lt(),
        BinaryOp::Le => ordering.is_le(),
        BinaryOp::Gt => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(n: i64) -> Value {
        Value::Duration(TimeDelta::minutes(n))
    }

    #[test]
    fn numbers_strings_durations_and_times() {
        let n = |x: f64| Value::Number(x);
        assert_eq!(arithmetic(BinaryOp::Add, &n(1.0), &n(2.0)), Ok(n(3.0)));
        assert_eq!(arithmetic(BinaryOp::Div, &n(1.0), &n(4.0)), Ok(n(0.25)));
        assert!(arithmetic(BinaryOp::Div, &n(1.0), &n(0.0)).is_err());
        assert_eq!(
            arithmetic(
                BinaryOp::Add,
                &Value::String("Bearer ".into()),
                &Value::Json(serde_json::json!("t"))
            ),
            Ok(Value::String("Bearer t".into()))
        );
        assert!(arithmetic(BinaryOp::Add, &Value::String("a".into()), &n(1.0)).is_err());
        assert_eq!(
            arithmetic(BinaryOp::Mul, &minutes(5), &n(2.0)),
            Ok(minutes(10))
        );
        assert_eq!(
            arithmetic(BinaryOp::Div, &minutes(10), &minutes(5)),
            Ok(n(2.0))
        );
        let t = Value::Time(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let later = arithmetic(BinaryOp::Add, &t, &minutes(5)).unwrap();
        assert_eq!(later.to_text(), "2023-11-14T22:18:20Z");
        assert_eq!(arithmetic(BinaryOp::Sub, &later, &t), Ok(minutes(5)));
        assert_eq!(
            arithmetic(BinaryOp::Sub, &later, &minutes(5)),
            Ok(t.clone())
        );
        assert_eq!(compare(BinaryOp::Lt, &t, &later), Ok(true));
        assert!(compare(BinaryOp::Lt, &t, &minutes(1)).is_err());
    }

    #[test]
    fn time_arithmetic_is_checked() {
        let end = Value::Time(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        assert!(arithmetic(BinaryOp::Add, &end, &minutes(1)).is_err());
        let huge = Value::Duration(TimeDelta::MAX);
        assert!(arithmetic(BinaryOp::Add, &huge, &huge).is_err());
        assert!(arithmetic(BinaryOp::Mul, &minutes(1), &Value::Number(1e300)).is_err());
    }
}
