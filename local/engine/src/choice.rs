//! Choice rules: parsing into a tree and evaluation against the effective input.

use crate::paths::JsonPath;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

/// A parsed choice rule: a comparison on one variable, or And/Or/Not over nested rules.
#[derive(Debug, Clone)]
pub enum ChoiceRule {
    /// True when every nested rule is true (evaluated in order, stopping at the first false).
    And(Vec<ChoiceRule>),
    /// True when any nested rule is true (evaluated in order, stopping at the first true).
    Or(Vec<ChoiceRule>),
    /// True when the nested rule is false.
    Not(Box<ChoiceRule>),
    /// A comparison of the value at `variable` with `operand`.
    Cmp {
        /// The `Variable` path, over the effective input or (`$$`) the context object.
        variable: JsonPath,
        /// The comparison operator (the rule's field name, without `Path`).
        op: Op,
        /// What the value is compared with.
        operand: Operand,
    },
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A literal (`"StringEquals": "x"`), whose type is checked when the definition loads.
    Lit(Value),
    /// A value read when the rule is evaluated (`"StringEqualsPath": "$.x"`).
    Path(JsonPath),
}

/// A comparison operator, named as in ASL. All but `StringMatches` and the `Is…` tests also have a
/// `…Path` form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Both are strings and equal.
    StringEquals,
    /// Both are strings and the value sorts before the operand.
    StringLessThan,
    /// Both are strings and the value sorts after the operand.
    StringGreaterThan,
    /// Both are strings and the value does not sort after the operand.
    StringLessThanEquals,
    /// Both are strings and the value does not sort before the operand.
    StringGreaterThanEquals,
    /// The value is a string matching the pattern, where `*` is any run of characters (see
    /// [`string_matches`]).
    StringMatches,
    /// Both are numbers and equal.
    NumericEquals,
    /// Both are numbers and the value is less.
    NumericLessThan,
    /// Both are numbers and the value is greater.
    NumericGreaterThan,
    /// Both are numbers and the value is not greater.
    NumericLessThanEquals,
    /// Both are numbers and the value is not less.
    NumericGreaterThanEquals,
    /// Both are booleans and equal.
    BooleanEquals,
    /// Both are RFC 3339 timestamps of the same instant.
    TimestampEquals,
    /// Both are RFC 3339 timestamps and the value is earlier.
    TimestampLessThan,
    /// Both are RFC 3339 timestamps and the value is later.
    TimestampGreaterThan,
    /// Both are RFC 3339 timestamps and the value is not later.
    TimestampLessThanEquals,
    /// Both are RFC 3339 timestamps and the value is not earlier.
    TimestampGreaterThanEquals,
    /// The value is null (operand `true`) or is not (`false`).
    IsNull,
    /// The variable's path selects something (operand `true`) or nothing (`false`).
    IsPresent,
    /// The value is a number (operand `true`) or is not (`false`).
    IsNumeric,
    /// The value is a string (operand `true`) or is not (`false`).
    IsString,
    /// The value is a boolean (operand `true`) or is not (`false`).
    IsBoolean,
    /// The value is an RFC 3339 timestamp string (operand `true`) or is not (`false`).
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// Parses one rule. `top` rules carry `Next`; nested ones must not.
pub fn parse_rule(v: &Value, at: &str, top: bool) -> Result<ChoiceRule, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{at}: a choice rule must be an object"))?;
    let list = |k: &str| -> Result<Vec<ChoiceRule>, String> {
        let a = o[k]
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("{at}/{k}: must be a non-empty array"))?;
        a.iter()
            .enumerate()
            .map(|(i, r)| parse_rule(r, &format!("{at}/{k}[{i}]"), false))
            .collect()
    };
    if !top && o.contains_key("Next") {
        return Err(format!("{at}: nested rules cannot have Next"));
    }
    for k in o.keys() {
        let known = ["Next", "Variable", "And", "Or", "Not", "Comment"].contains(&k.as_str())
            || OPS.iter().any(|(n, _)| *n == k || format!("{n}Path") == *k);
        if !known {
            return Err(format!("{at}: unknown field '{k}' in choice rule"));
        }
    }
    // A rule is exactly one thing: And, Or, Not, or one comparison of its Variable.
    let kinds: Vec<&str> = o
        .keys()
        .map(String::as_str)
        .filter(|k| !["Next", "Variable", "Comment"].contains(k))
        .collect();
    if kinds.len() > 1 {
        return Err(format!(
            "{at}: a choice rule has exactly one of And, Or, Not or a comparison operator, \
             this one has {}",
            kinds.join(", ")
        ));
    }
    if kinds.iter().any(|k| ["And", "Or", "Not"].contains(k)) && o.contains_key("Variable") {
        return Err(format!(
            "{at}/Variable: not allowed beside {}; put it in the nested comparisons",
            kinds[0]
        ));
    }
    if o.contains_key("And") {
        return Ok(ChoiceRule::And(list("And")?));
    }
    if o.contains_key("Or") {
        return Ok(ChoiceRule::Or(list("Or")?));
    }
    if let Some(n) = o.get("Not") {
        return Ok(ChoiceRule::Not(Box::new(parse_rule(
            n,
            &format!("{at}/Not"),
            false,
        )?)));
    }
    let variable = o
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}/Variable: missing (or use And/Or/Not)"))?;
    let variable = JsonPath::parse(variable).map_err(|e| format!("{at}/Variable: {e}"))?;
    let (name, op, operand) = comparison(o, at)?;
    if let Operand::Lit(l) = &operand
        && !literal_fits(op, l)
    {
        return Err(format!("{at}/{name}: operand {l} has the wrong type"));
    }
    Ok(ChoiceRule::Cmp {
        variable,
        op,
        operand,
    })
}

/// A comparison rule's operator (its field name) and operand: a literal, or a `…Path`.
fn comparison(
    o: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<(&'static str, Op, Operand), String> {
    let mut found = None;
    for (name, op) in OPS {
        let path_key = format!("{name}Path");
        if let Some(v) = o.get(*name) {
            found = Some((*name, *op, Operand::Lit(v.clone())));
        } else if let Some(v) = o.get(&path_key) {
            if name.starts_with("Is") || *op == Op::StringMatches {
                return Err(format!("{at}: {path_key} is not a comparison operator"));
            }
            let p = v
                .as_str()
                .ok_or_else(|| format!("{at}/{path_key}: must be a path string"))
                .and_then(|s| JsonPath::parse(s).map_err(|e| format!("{at}/{path_key}: {e}")))?;
            found = Some((*name, *op, Operand::Path(p)));
        }
    }
    found.ok_or_else(|| format!("{at}: no comparison operator"))
}

/// Whether a literal operand has the type `op` compares.
fn literal_fits(op: Op, l: &Value) -> bool {
    match op {
        Op::StringEquals
        | Op::StringLessThan
        | Op::StringGreaterThan
        | Op::StringLessThanEquals
        | Op::StringGreaterThanEquals
        | Op::StringMatches => l.is_string(),
        Op::NumericEquals
        | Op::NumericLessThan
        | Op::NumericGreaterThan
        | Op::NumericLessThanEquals
        | Op::NumericGreaterThanEquals => l.is_number(),
        Op::TimestampEquals
        | Op::TimestampLessThan
        | Op::TimestampGreaterThan
        | Op::TimestampLessThanEquals
        | Op::TimestampGreaterThanEquals => l.as_str().and_then(parse_ts).is_some(),
        _ => l.is_boolean(),
    }
}

/// Parses an RFC 3339 timestamp, as the `Timestamp…` comparisons and `IsTimestamp` read them.
pub fn parse_ts(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// `*` matches any run of characters; `\*` and `\\` are literal.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()))
                }
            }
            '*' => re.push_str(".*"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::RegexBuilder::new(&re)
        .dot_matches_new_line(true)
        .build()
        .is_ok_and(|r| r.is_match(s))
}

/// Why a rule could not be evaluated (AWS fails the execution with States.Runtime).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChoiceError(pub String);

impl ChoiceRule {
    /// Evaluates the rule against the effective input and the context object. An error means a path
    /// the rule compares selected nothing (AWS: States.Runtime).
    pub fn eval(&self, input: &Value, ctx: &Value) -> Result<bool, ChoiceError> {
        match self {
            ChoiceRule::And(rs) => {
                for r in rs {
                    if !r.eval(input, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            ChoiceRule::Or(rs) => {
                for r in rs {
                    if r.eval(input, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            ChoiceRule::Not(r) => Ok(!r.eval(input, ctx)?),
            ChoiceRule::Cmp {
                variable,
                op,
                operand,
            } => {
                let val = variable.select(input, ctx);
                if *op == Op::IsPresent {
                    let present = match &val {
                        None => false,
                        // An indefinite path that matched nothing is absent too.
                        Some(Value::Array(a)) if !variable.is_definite() => !a.is_empty(),
                        Some(_) => true,
                    };
                    return Ok(Some(&Value::Bool(present)) == lit(operand));
                }
                let val = val.ok_or_else(|| {
                    ChoiceError(format!(
                        "Invalid path '{variable}': The choice state's condition path references an invalid value."
                    ))
                })?;
                let rhs = match operand {
                    Operand::Lit(v) => v.clone(),
                    Operand::Path(p) => p.select(input, ctx).ok_or_else(|| {
                        ChoiceError(format!(
                            "Invalid path '{p}': The choice state's condition path references an invalid value."
                        ))
                    })?,
                };
                Ok(compare(*op, &val, &rhs))
            }
        }
    }
}

fn lit(o: &Operand) -> Option<&Value> {
    match o {
        Operand::Lit(v) => Some(v),
        Operand::Path(_) => None,
    }
}

/// Type mismatches make a comparison false rather than an error, as in AWS.
fn compare(op: Op, l: &Value, r: &Value) -> bool {
    let is = |b: bool| Some(&Value::Bool(b)) == Some(r);
    match op {
        Op::IsNull => is(l.is_null()),
        Op::IsNumeric => is(l.is_number()),
        Op::IsString => is(l.is_string()),
        Op::IsBoolean => is(l.is_boolean()),
        Op::IsTimestamp => is(l.as_str().and_then(parse_ts).is_some()),
        Op::IsPresent => true,
        Op::BooleanEquals => matches!((l, r), (Value::Bool(a), Value::Bool(b)) if a == b),
        Op::StringMatches => {
            matches!((l, r), (Value::String(a), Value::String(p)) if string_matches(a, p))
        }
        Op::StringEquals
        | Op::StringLessThan
        | Op::StringGreaterThan
        | Op::StringLessThanEquals
        | Op::StringGreaterThanEquals => {
            let (Value::String(a), Value::String(b)) = (l, r) else {
                return false;
            };
            ord_ok(op, a.cmp(b))
        }
        Op::NumericEquals
        | Op::NumericLessThan
        | Op::NumericGreaterThan
        | Op::NumericLessThanEquals
        | Op::NumericGreaterThanEquals => {
            let (Some(a), Some(b)) = (l.as_f64().filter(|_| l.is_number()), r.as_f64()) else {
                return false;
            };
            a.partial_cmp(&b).is_some_and(|o| ord_ok(op, o))
        }
        Op::TimestampEquals
        | Op::TimestampLessThan
        | Op::TimestampGreaterThan
        | Op::TimestampLessThanEquals
        | Op::TimestampGreaterThanEquals => {
            let (Some(a), Some(b)) = (l.as_str().and_then(parse_ts), r.as_str().and_then(parse_ts))
            else {
                return false;
            };
            ord_ok(op, a.cmp(&b))
        }
    }
}

fn ord_ok(op: Op, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::StringEquals | Op::NumericEquals | Op::TimestampEquals => o == Equal,
        Op::StringLessThan | Op::NumericLessThan | Op::TimestampLessThan => o == Less,
        Op::StringGreaterThan | Op::NumericGreaterThan | Op::TimestampGreaterThan => o == Greater,
        Op::StringLessThanEquals | Op::NumericLessThanEquals | Op::TimestampLessThanEquals => {
            o != Greater
        }
        _ => o != Less,
    }
}
