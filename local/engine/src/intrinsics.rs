//! Intrinsic functions (`States.Format(...)` and friends): a parser into an expression tree at
//! definition load, and an evaluator at run time. Failures surface as `States.IntrinsicFailure`
//! at the call site.

use crate::paths::JsonPath;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest;

/// One argument of an intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A literal: a string, number, boolean or null.
    Lit(Value),
    /// A path, read from the input or the context object when the call is evaluated.
    Path(JsonPath),
    /// A nested call, evaluated first.
    Call(Box<Call>),
}

/// A parsed intrinsic function call, e.g. `States.Format('{}', $.x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name, e.g. `States.Format`.
    pub name: String,
    /// The arguments, in order.
    pub args: Vec<Arg>,
}

/// Why an intrinsic function could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntrinsicError {
    /// The expression does not parse (found when the definition loads).
    #[error("invalid intrinsic function '{expr}': {reason}")]
    Syntax {
        /// The expression as written.
        expr: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// Evaluation failed (bad arguments, a path that selects nothing, …).
    #[error("{0}")]
    Eval(String),
}

const FUNCTIONS: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

impl Call {
    /// Parses an expression such as `States.Format('{}', $.x)`; unknown function names are refused.
    pub fn parse(expr: &str) -> Result<Call, IntrinsicError> {
        let chars: Vec<char> = expr.trim().chars().collect();
        let mut p = Parser {
            c: &chars,
            i: 0,
            expr,
        };
        let call = p.call()?;
        p.ws();
        if p.i != chars.len() {
            return Err(p.err("unexpected trailing characters"));
        }
        Ok(call)
    }

    /// Evaluates the call against the input and the context object.
    pub fn eval(&self, input: &Value, ctx: &Value) -> Result<Value, IntrinsicError> {
        let mut args = Vec::with_capacity(self.args.len());
        for a in &self.args {
            args.push(match a {
                Arg::Lit(v) => v.clone(),
                Arg::Path(p) => p.select(input, ctx).ok_or_else(|| {
                    IntrinsicError::Eval(format!(
                        "the JsonPath argument '{p}' of {} could not be found in the input",
                        self.name
                    ))
                })?,
                Arg::Call(c) => c.eval(input, ctx)?,
            });
        }
        eval_fn(&self.name, args)
    }
}

struct Parser<'a> {
    c: &'a [char],
    i: usize,
    expr: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> IntrinsicError {
        IntrinsicError::Syntax {
            expr: self.expr.to_string(),
            reason: format!("{reason} at offset {}", self.i),
        }
    }
    fn ws(&mut self) {
        while self.i < self.c.len() && self.c[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    fn call(&mut self) -> Result<Call, IntrinsicError> {
        self.ws();
        let start = self.i;
        while self.i < self.c.len() && (self.c[self.i].is_alphanumeric() || self.c[self.i] == '.') {
            self.i += 1;
        }
        let name: String = self.c[start..self.i].iter().collect();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(self.err(&format!("unknown intrinsic function '{name}'")));
        }
        self.ws();
        if self.c.get(self.i) != Some(&'(') {
            return Err(self.err("expected '('"));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.ws();
        if self.c.get(self.i) == Some(&')') {
            self.i += 1;
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.ws();
            match self.c.get(self.i) {
                Some(',') => self.i += 1,
                Some(')') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or ')'")),
            }
        }
        Ok(Call { name, args })
    }
    fn arg(&mut self) -> Result<Arg, IntrinsicError> {
        self.ws();
        match self.c.get(self.i) {
            Some('\'') => self.string_arg(),
            Some('$') => self.path_arg(),
            Some(ch) if ch.is_alphabetic() => self.keyword_or_call(),
            Some(ch) if ch.is_ascii_digit() || *ch == '-' => self.number_arg(),
            _ => Err(self.err("expected an argument")),
        }
    }

    /// A quoted string, from its opening `'`.
    fn string_arg(&mut self) -> Result<Arg, IntrinsicError> {
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.c.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some('\\') => {
                    // Escapes keep `'`, `{`, `}` and `\` literal; `\{` stays escaped so
                    // States.Format can tell it from a placeholder.
                    let n = *self
                        .c
                        .get(self.i + 1)
                        .ok_or_else(|| self.err("dangling '\\'"))?;
                    if n == '{' || n == '}' {
                        s.push('\\');
                    }
                    s.push(n);
                    self.i += 2;
                }
                Some('\'') => {
                    self.i += 1;
                    break;
                }
                Some(ch) => {
                    s.push(*ch);
                    self.i += 1;
                }
            }
        }
        Ok(Arg::Lit(Value::String(s)))
    }

    /// A path, up to the `,` or `)` that ends the argument (not one inside brackets, parentheses
    /// or quotes).
    fn path_arg(&mut self) -> Result<Arg, IntrinsicError> {
        let start = self.i;
        let mut depth = 0i32;
        let mut quote = false;
        while let Some(&ch) = self.c.get(self.i) {
            if quote {
                if ch == '\'' {
                    quote = false;
                }
            } else if ch == '\'' {
                quote = true;
            } else if ch == '[' || ch == '(' {
                depth += 1;
            } else if ch == ']' || (ch == ')' && depth > 0) {
                depth -= 1;
            } else if depth == 0 && (ch == ',' || ch == ')') {
                break;
            }
            self.i += 1;
        }
        let raw: String = self.c[start..self.i].iter().collect();
        JsonPath::parse(raw.trim())
            .map(Arg::Path)
            .map_err(|e| self.err(&e.to_string()))
    }

    /// `true`, `false`, `null`, or a nested call.
    fn keyword_or_call(&mut self) -> Result<Arg, IntrinsicError> {
        let rest: String = self.c[self.i..].iter().collect();
        for (kw, v) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if rest.starts_with(kw)
                && !rest[kw.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '.')
            {
                self.i += kw.len();
                return Ok(Arg::Lit(v));
            }
        }
        Ok(Arg::Call(Box::new(self.call()?)))
    }

    fn number_arg(&mut self) -> Result<Arg, IntrinsicError> {
        let start = self.i;
        self.i += 1;
        while let Some(ch) = self.c.get(self.i) {
            if ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '+' | '-') {
                self.i += 1;
            } else {
                break;
            }
        }
        let raw: String = self.c[start..self.i].iter().collect();
        serde_json::from_str::<Value>(&raw)
            .ok()
            .filter(Value::is_number)
            .map(Arg::Lit)
            .ok_or_else(|| self.err(&format!("bad number '{raw}'")))
    }
}

fn fail(msg: impl Into<String>) -> IntrinsicError {
    IntrinsicError::Eval(msg.into())
}

fn arity(
    name: &str,
    args: &[Value],
    n: std::ops::RangeInclusive<usize>,
) -> Result<(), IntrinsicError> {
    if n.contains(&args.len()) {
        Ok(())
    } else {
        Err(fail(format!(
            "{name} expects {} argument(s) but got {}",
            if n.start() == n.end() {
                n.start().to_string()
            } else {
                format!("{}..{}", n.start(), n.end())
            },
            args.len()
        )))
    }
}

fn as_int(name: &str, v: &Value) -> Result<i64, IntrinsicError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| fail(format!("{name} expects integer arguments, got {v}"))),
        _ => Err(fail(format!("{name} expects integer arguments, got {v}"))),
    }
}

fn as_str<'v>(name: &str, v: &'v Value) -> Result<&'v str, IntrinsicError> {
    v.as_str()
        .ok_or_else(|| fail(format!("{name} expects a string argument, got {v}")))
}

fn as_arr<'v>(name: &str, v: &'v Value) -> Result<&'v Vec<Value>, IntrinsicError> {
    v.as_array()
        .ok_or_else(|| fail(format!("{name} expects an array argument, got {v}")))
}

/// States.Format: `{}` placeholders filled with the arguments in order (strings as they are,
/// other values as JSON); `\` escapes the next character.
fn states_format(args: &[Value]) -> Result<Value, IntrinsicError> {
    if args.is_empty() {
        return Err(fail("States.Format needs a template"));
    }
    let template = as_str("States.Format", &args[0])?;
    let mut out = String::new();
    let mut rest = args[1..].iter();
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '{' if chars.get(i + 1) == Some(&'}') => {
                let argument = rest
                    .next()
                    .ok_or_else(|| fail("States.Format has more placeholders than arguments"))?;
                match argument {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                i += 2;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    if rest.next().is_some() {
        return Err(fail("States.Format has more arguments than placeholders"));
    }
    Ok(Value::String(out))
}

/// Evaluates one intrinsic on its evaluated arguments: a flat table, one arm per intrinsic
/// function in the order the ASL specification lists them, each checking its arity first.
fn eval_fn(name: &str, args: Vec<Value>) -> Result<Value, IntrinsicError> {
    Ok(match name {
        "States.Format" => states_format(&args)?,
        "States.StringToJson" => string_to_json(name, &args)?,
        "States.JsonToString" => {
            arity(name, &args, 1..=1)?;
            Value::String(args[0].to_string())
        }
        "States.Array" => Value::Array(args),
        "States.ArrayPartition" => array_partition(name, &args)?,
        "States.ArrayContains" => {
            arity(name, &args, 2..=2)?;
            Value::Bool(as_arr(name, &args[0])?.contains(&args[1]))
        }
        "States.ArrayRange" => array_range(name, &args)?,
        "States.ArrayGetItem" => array_get_item(name, &args)?,
        "States.ArrayLength" => {
            arity(name, &args, 1..=1)?;
            Value::from(as_arr(name, &args[0])?.len())
        }
        "States.ArrayUnique" => array_unique(name, &args)?,
        "States.Base64Encode" => base64_encode(name, &args)?,
        "States.Base64Decode" => base64_decode(name, &args)?,
        "States.Hash" => states_hash(name, &args)?,
        "States.JsonMerge" => json_merge(name, &args)?,
        "States.MathRandom" => math_random(name, &args)?,
        "States.MathAdd" => {
            arity(name, &args, 2..=2)?;
            let (left, right) = (as_int(name, &args[0])?, as_int(name, &args[1])?);
            Value::from(
                left.checked_add(right)
                    .ok_or_else(|| fail("States.MathAdd overflow"))?,
            )
        }
        "States.StringSplit" => string_split(name, &args)?,
        "States.UUID" => {
            arity(name, &args, 0..=0)?;
            Value::String(uuid::Uuid::new_v4().to_string())
        }
        other => return Err(fail(format!("unknown intrinsic function '{other}'"))),
    })
}

/// States.StringToJson: a blank string is `null`.
fn string_to_json(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 1..=1)?;
    let text = as_str(name, &args[0])?;
    if text.trim().is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(text).map_err(|e| fail(format!("States.StringToJson: {e}")))
    }
}

fn array_partition(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 2..=2)?;
    let array = as_arr(name, &args[0])?;
    let chunk_size = as_int(name, &args[1])?;
    if chunk_size <= 0 {
        return Err(fail(
            "States.ArrayPartition chunk size must be a positive integer",
        ));
    }
    Ok(Value::Array(
        array
            .chunks(chunk_size as usize)
            .map(|chunk| Value::Array(chunk.to_vec()))
            .collect(),
    ))
}

/// States.ArrayRange: start to end inclusive by step, at most 1000 items.
fn array_range(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 3..=3)?;
    let (start, end, step) = (
        as_int(name, &args[0])?,
        as_int(name, &args[1])?,
        as_int(name, &args[2])?,
    );
    if step == 0 {
        return Err(fail("States.ArrayRange step must not be 0"));
    }
    let mut out = Vec::new();
    let mut item = start;
    while (step > 0 && item <= end) || (step < 0 && item >= end) {
        out.push(Value::from(item));
        if out.len() > 1000 {
            return Err(fail("States.ArrayRange would produce more than 1000 items"));
        }
        item += step;
    }
    Ok(Value::Array(out))
}

fn array_get_item(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 2..=2)?;
    let array = as_arr(name, &args[0])?;
    let index = as_int(name, &args[1])?;
    if index < 0 || index as usize >= array.len() {
        return Err(fail(format!(
            "States.ArrayGetItem index {index} is out of bounds (length {})",
            array.len()
        )));
    }
    Ok(array[index as usize].clone())
}

fn array_unique(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 1..=1)?;
    let mut out: Vec<Value> = Vec::new();
    for item in as_arr(name, &args[0])? {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    Ok(Value::Array(out))
}

fn base64_encode(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 1..=1)?;
    let text = as_str(name, &args[0])?;
    if text.len() > 10_000 {
        return Err(fail("States.Base64Encode input exceeds 10000 characters"));
    }
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(text),
    ))
}

fn base64_decode(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 1..=1)?;
    let text = as_str(name, &args[0])?;
    if text.len() > 10_000 {
        return Err(fail("States.Base64Decode input exceeds 10000 characters"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| fail(format!("States.Base64Decode: {e}")))?;
    Ok(Value::String(
        String::from_utf8(bytes).map_err(|_| fail("States.Base64Decode: not UTF-8"))?,
    ))
}

/// States.Hash: the hex digest of a string (other values hashed as their JSON).
fn states_hash(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 2..=2)?;
    let data = match &args[0] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if data.len() > 10_000 {
        return Err(fail("States.Hash input exceeds 10000 characters"));
    }
    let bytes = data.as_bytes();
    let digest = match as_str(name, &args[1])? {
        "MD5" => hex::encode(crate::digest::md5(bytes)),
        "SHA-1" => hex::encode(crate::digest::sha1(bytes)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(bytes)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(bytes)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(bytes)),
        other => {
            return Err(fail(format!(
                "States.Hash: unsupported algorithm '{other}'"
            )));
        }
    };
    Ok(Value::String(digest))
}

/// States.JsonMerge: shallow only (the third argument must be `false`).
fn json_merge(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 3..=3)?;
    let (Value::Object(left), Value::Object(right)) = (&args[0], &args[1]) else {
        return Err(fail("States.JsonMerge expects two JSON objects"));
    };
    if args[2] != Value::Bool(false) {
        return Err(fail(
            "States.JsonMerge supports only shallow merges (third argument false)",
        ));
    }
    let mut merged: Map<String, Value> = left.clone();
    for (key, value) in right {
        merged.insert(key.clone(), value.clone());
    }
    Ok(Value::Object(merged))
}

/// States.MathRandom: start to end inclusive, seeded by the optional third argument.
fn math_random(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    use rand::{Rng, SeedableRng};
    arity(name, args, 2..=3)?;
    let (start, end) = (as_int(name, &args[0])?, as_int(name, &args[1])?);
    if start > end {
        return Err(fail("States.MathRandom start must not exceed end"));
    }
    let number = match args.get(2) {
        Some(seed) => {
            rand::rngs::StdRng::seed_from_u64(as_int(name, seed)? as u64).gen_range(start..=end)
        }
        None => rand::thread_rng().gen_range(start..=end),
    };
    Ok(Value::from(number))
}

/// States.StringSplit: split at any of the delimiter characters, empty parts dropped.
fn string_split(name: &str, args: &[Value]) -> Result<Value, IntrinsicError> {
    arity(name, args, 2..=2)?;
    let text = as_str(name, &args[0])?;
    let delimiters: Vec<char> = as_str(name, &args[1])?.chars().collect();
    Ok(Value::Array(
        text.split(|c| delimiters.contains(&c))
            .filter(|part| !part.is_empty())
            .map(|part| Value::String(part.to_string()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(e: &str, input: Value) -> Result<Value, IntrinsicError> {
        Call::parse(e)?.eval(&input, &json!({}))
    }

    #[test]
    fn functions() {
        let i = json!({"name": "x", "n": 3, "arr": [1, 2, 2, 3], "s": "{\"a\":1}"});
        assert_eq!(
            ev("States.Format('Hi {} #{}', $.name, $.n)", i.clone()).unwrap(),
            json!("Hi x #3")
        );
        assert_eq!(
            ev("States.Format('\\{\\} {}', 'a')", i.clone()).unwrap(),
            json!("{} a")
        );
        assert_eq!(
            ev("States.StringToJson($.s)", i.clone()).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            ev("States.JsonToString($.arr)", i.clone()).unwrap(),
            json!("[1,2,2,3]")
        );
        assert_eq!(
            ev("States.Array(1, 'a', true, null, $.n)", i.clone()).unwrap(),
            json!([1, "a", true, null, 3])
        );
        assert_eq!(
            ev("States.ArrayPartition($.arr, 3)", i.clone()).unwrap(),
            json!([[1, 2, 2], [3]])
        );
        assert_eq!(
            ev("States.ArrayContains($.arr, 3)", i.clone()).unwrap(),
            json!(true)
        );
        assert_eq!(
            ev("States.ArrayRange(1, 9, 2)", i.clone()).unwrap(),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ev("States.ArrayGetItem($.arr, 3)", i.clone()).unwrap(),
            json!(3)
        );
        assert_eq!(
            ev("States.ArrayLength($.arr)", i.clone()).unwrap(),
            json!(4)
        );
        assert_eq!(
            ev("States.ArrayUnique($.arr)", i.clone()).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            ev("States.Base64Encode('hello')", i.clone()).unwrap(),
            json!("aGVsbG8=")
        );
        assert_eq!(
            ev("States.Base64Decode('aGVsbG8=')", i.clone()).unwrap(),
            json!("hello")
        );
        assert_eq!(
            ev("States.Hash('hello', 'SHA-256')", i.clone()).unwrap(),
            json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(ev("States.MathAdd($.n, -4)", i.clone()).unwrap(), json!(-1));
        assert_eq!(
            ev("States.StringSplit('a,b+c,,d', ',+')", i.clone()).unwrap(),
            json!(["a", "b", "c", "d"])
        );
        assert_eq!(
            ev("States.JsonMerge(States.StringToJson($.s), States.StringToJson('{\"b\":2}'), false)", i.clone()).unwrap(),
            json!({"a": 1, "b": 2})
        );
        let r = ev("States.MathRandom(1, 3)", i.clone())
            .unwrap()
            .as_i64()
            .unwrap();
        assert!((1..=3).contains(&r));
        assert_eq!(
            ev("States.UUID()", i.clone())
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn errors() {
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Format('a'").is_err());
        assert!(ev("States.ArrayGetItem(States.Array(1), 5)", json!({})).is_err());
        assert!(ev("States.MathAdd(1.5, 1)", json!({})).is_err());
        assert!(ev("States.Format('{}', $.missing)", json!({})).is_err());
    }
}
