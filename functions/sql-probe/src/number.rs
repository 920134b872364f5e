//! Numbers as PostgreSQL prints them (`count(*)`, `max(version)`, `numeric`): integers exactly
//! (a `bigint` row count does not fit an `f64`), anything else as a float.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// `1204`, `-3`, `1.50`, `1e3`; not `NaN` nor infinities.
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i128>() {
            return Some(Number::Int(i));
        }
        let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
        // `parse::<f64>` also reads `inf`, `NaN` (refused above) and `infinity`.
        if text
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        {
            return None;
        }
        Some(Number::Float(f))
    }

    /// From the plan's JSON number.
    pub fn from_json(n: &serde_json::Number) -> Option<Number> {
        if let Some(i) = n.as_i64() {
            return Some(Number::Int(i.into()));
        }
        if let Some(u) = n.as_u64() {
            return Some(Number::Int(u.into()));
        }
        n.as_f64().filter(|f| f.is_finite()).map(Number::Float)
    }

    pub fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Integers with thousands separators (`1,204`); floats as Rust prints them.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Float(x) => write!(f, "{x}"),
            Number::Int(i) => {
                let digits = i.unsigned_abs().to_string();
                let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
                if *i < 0 {
                    out.push('-');
                }
                for (n, c) in digits.chars().enumerate() {
                    if n > 0 && (digits.len() - n) % 3 == 0 {
                        out.push(',');
                    }
                    out.push(c);
                }
                f.write_str(&out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_numbers() {
        assert_eq!(Number::parse("1204"), Some(Number::Int(1204)));
        assert_eq!(Number::parse(" -3 "), Some(Number::Int(-3)));
        assert_eq!(Number::parse("1.50"), Some(Number::Float(1.5)));
        assert_eq!(Number::parse("1e3"), Some(Number::Float(1000.0)));
        for bad in ["", "abc", "NaN", "inf", "Infinity", "1,204", "v42"] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
        // Beyond f64's exact integers, still exact.
        let big = Number::parse("9007199254740993").unwrap();
        assert_eq!(
            big.compare(Number::parse("9007199254740992").unwrap()),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn compares_across_kinds_and_prints_with_separators() {
        assert_eq!(
            Number::Int(2).compare(Number::Float(1.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Number::Float(2.0).compare(Number::Int(2)),
            Some(Ordering::Equal)
        );
        assert_eq!(Number::Int(1_204).to_string(), "1,204");
        assert_eq!(Number::Int(-1_234_567).to_string(), "-1,234,567");
        assert_eq!(Number::Int(999).to_string(), "999");
        assert_eq!(Number::Float(1.5).to_string(), "1.5");
        let n: serde_json::Number = serde_json::from_str("42").unwrap();
        assert_eq!(Number::from_json(&n), Some(Number::Int(42)));
    }
}
