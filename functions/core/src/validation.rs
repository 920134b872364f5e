//! Field-level validation errors: every problem names the JSON path and says what would be valid.

use std::fmt;

use regex::Regex;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `databases[1].kind` (`.` for the document itself).
    pub path: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// Every problem found in a document, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a problem at `path` (`smoke.http[0].url`).
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in the order they were recorded.
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was pushed.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// True when some error is about `path` (exactly).
    pub fn mentions(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }

    /// The same errors, their paths under `prefix` (`.` becomes `prefix` itself).
    pub fn prefixed(self, prefix: &str) -> ValidationErrors {
        ValidationErrors(
            self.0
                .into_iter()
                .map(|mut e| {
                    e.path = if e.path == "." {
                        prefix.to_owned()
                    } else {
                        format!("{prefix}.{}", e.path)
                    };
                    e
                })
                .collect(),
        )
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.path, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Deserializes `value` into `T`, turning serde's first error into a [`FieldError`] with its path.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ValidationErrors> {
    // serde would fill a struct's fields by position from an array: our documents are objects.
    if !value.is_object() {
        let mut errors = ValidationErrors::default();
        errors.push(
            ".",
            format!("expected a JSON object, found {}", json_kind(&value)),
        );
        return Err(errors);
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = display_path(&err.path().to_string());
        let mut errors = ValidationErrors::default();
        errors.push(path, explain_serde(&err.inner().to_string()));
        errors
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// serde_path_to_error writes `databases[1].kind`; the document root is `.`. An unknown key
/// becomes part of the path, so it is cut like any echoed input.
fn display_path(raw: &str) -> String {
    if raw.is_empty() || raw == "." {
        ".".to_owned()
    } else {
        truncate(raw, 120)
    }
}

/// serde's messages are good but terse about the fix; add the hint where we can.
fn explain_serde(message: &str) -> String {
    // serde quotes unknown names and bad values whole; a hostile document must not come back.
    let message = truncate(message.split(" at line ").next().unwrap_or(message), 300);
    if message.starts_with("unknown field") {
        format!("{message}; remove it or fix its spelling")
    } else if message.starts_with("missing field") {
        format!("{message}; add it")
    } else if message.starts_with("unknown variant") {
        format!("{message}; use one of those values")
    } else {
        message
    }
}

/// Checks `value` against an identifier rule and records a readable error.
pub struct Rule {
    pattern: Regex,
    min: usize,
    max: usize,
    describe: &'static str,
}

impl Rule {
    /// A rule: `pattern` (a regex), `min` to `max` characters, and `describe`, the error's
    /// explanation of what is valid. Panics if `pattern` does not compile.
    pub fn new(pattern: &str, min: usize, max: usize, describe: &'static str) -> Self {
        Rule {
            pattern: Regex::new(pattern).expect("identifier rule regex compiles"),
            min,
            max,
            describe,
        }
    }

    /// Whether `value` has `min` to `max` characters and matches the pattern.
    pub fn is_valid(&self, value: &str) -> bool {
        let len = value.chars().count();
        len >= self.min && len <= self.max && self.pattern.is_match(value)
    }

    /// Records an error at `path` when `value` is not valid.
    pub fn check(&self, errors: &mut ValidationErrors, path: &str, value: &str) {
        if !self.is_valid(value) {
            errors.push(
                path,
                format!("{:?} is not valid: {}", truncate(value, 80), self.describe),
            );
        }
    }
}

/// Shortens hostile or huge input before it is echoed back in an error message.
pub fn truncate(value: &str, max_chars: usize) -> String {
    if value.chars().count() <= max_chars {
        value.to_owned()
    } else {
        let head: String = value.chars().take(max_chars).collect();
        format!("{head}…")
    }
}

/// Control characters out, whitespace collapsed, at most `max_chars` characters (the last
/// one `…` when cut): messages quote what remote systems said, on one line.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() <= max_chars {
        clean
    } else {
        let mut out: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Records an error when `items` has more than `max` entries.
pub fn check_len<T>(errors: &mut ValidationErrors, path: &str, items: &[T], max: usize) {
    if items.len() > max {
        errors.push(
            path,
            format!("has {} entries; at most {max} are allowed", items.len()),
        );
    }
}
