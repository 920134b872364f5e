//! JSONPath as Step Functions uses it: `$`-rooted paths over the state input and `$$`-rooted
//! paths over the context object.
//!
//! Supported: `.key`, `['key']`, `["key"]`, `[n]` (negative counts from the end), `[*]`, `.*`,
//! `[a,b]` unions, `[start:end:step]` slices, `..key` recursive descent and simple filters
//! `[?(@.a.b OP literal)]` / `[?(@.a)]`. A path made only of keys and indexes is *definite*
//! (a "reference path"): it selects one value or nothing. Any other path is *indefinite* and,
//! like the Jayway implementation AWS uses, always yields an array of the matches.

use serde_json::{Map, Value};

/// Why a path could not be parsed or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// The path does not parse.
    #[error("invalid JSONPath '{path}': {reason}")]
    Syntax {
        /// The path as written.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An indefinite path where only keys and indexes are allowed.
    #[error("'{0}' is not a reference path (only keys and indexes are allowed here)")]
    NotReference(String),
    /// `ResultPath` could not write the result into the input.
    #[error("ResultPath '{path}' cannot be applied: {reason}")]
    Set {
        /// The path as written.
        path: String,
        /// What stood in the way.
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(i64),
    Wildcard,
    Union(Vec<UnionItem>),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `..key` or `..*`
    Descend(Option<String>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum UnionItem {
    Key(String),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Seg>,
    cmp: Option<(String, Value)>,
}

/// A parsed path, `$`-rooted (over the input) or `$$`-rooted (over the context object).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    raw: String,
    context: bool,
    segs: Vec<Seg>,
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

impl JsonPath {
    /// Parses any supported path (see the module docs).
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let err = |reason: &str| PathError::Syntax {
            path: raw.to_string(),
            reason: reason.to_string(),
        };
        let (context, rest) = if let Some(r) = raw.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = raw.strip_prefix('$') {
            (false, r)
        } else {
            return Err(err("must start with '$' or '$$'"));
        };
        let segs = parse_segments(rest).map_err(|r| err(&r))?;
        Ok(JsonPath {
            raw: raw.to_string(),
            context,
            segs,
        })
    }

    /// Parses a path that must be a reference path (ResultPath, Variable targets).
    pub fn parse_reference(raw: &str) -> Result<Self, PathError> {
        let p = Self::parse(raw)?;
        if !p.is_definite() {
            return Err(PathError::NotReference(raw.to_string()));
        }
        Ok(p)
    }

    /// The path as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the path is `$$`-rooted, reading the context object.
    pub fn is_context(&self) -> bool {
        self.context
    }

    /// Whether the path has only keys and indexes, so that it selects one value or nothing.
    pub fn is_definite(&self) -> bool {
        self.segs
            .iter()
            .all(|s| matches!(s, Seg::Key(_) | Seg::Index(_)))
    }

    /// Selects from `input` (or `context` for `$$` paths). `None` means a definite path
    /// matched nothing; indefinite paths always return an array.
    pub fn select(&self, input: &Value, context: &Value) -> Option<Value> {
        let root = if self.context { context } else { input };
        if self.is_definite() {
            let mut cur = root;
            for s in &self.segs {
                cur = match s {
                    Seg::Key(k) => cur.as_object()?.get(k)?,
                    Seg::Index(i) => {
                        let a = cur.as_array()?;
                        a.get(norm_index(*i, a.len())?)?
                    }
                    _ => return None,
                };
            }
            return Some(cur.clone());
        }
        let mut cur: Vec<&Value> = vec![root];
        for s in &self.segs {
            let mut next = Vec::new();
            for v in cur {
                apply_seg(s, v, &mut next);
            }
            cur = next;
        }
        Some(Value::Array(cur.into_iter().cloned().collect()))
    }

    /// Writes `value` into `target` at this (reference) path, creating intermediate objects,
    /// as ResultPath does.
    pub fn set(&self, target: Value, value: Value) -> Result<Value, PathError> {
        if self.context {
            return Err(PathError::Set {
                path: self.raw.clone(),
                reason: "cannot write into the context object".into(),
            });
        }
        if self.segs.is_empty() {
            return Ok(value);
        }
        let mut root = target;
        set_in(&mut root, &self.segs, value, &self.raw)?;
        Ok(root)
    }
}

fn set_in(cur: &mut Value, segs: &[Seg], value: Value, raw: &str) -> Result<(), PathError> {
    let fail = |reason: String| PathError::Set {
        path: raw.to_string(),
        reason,
    };
    let (first, rest) = match segs.split_first() {
        Some(x) => x,
        None => {
            *cur = value;
            return Ok(());
        }
    };
    match first {
        Seg::Key(k) => {
            if !cur.is_object() {
                return Err(fail(format!(
                    "cannot set field '{k}' on a non-object value {}",
                    short(cur)
                )));
            }
            let obj = cur.as_object_mut().expect("checked above");
            let slot = obj
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if rest.is_empty() {
                *slot = value;
                Ok(())
            } else {
                set_in(slot, rest, value, raw)
            }
        }
        Seg::Index(i) => {
            if !cur.is_array() {
                return Err(fail(format!(
                    "cannot index a non-array value {}",
                    short(cur)
                )));
            }
            let arr = cur.as_array_mut().expect("checked above");
            let idx = norm_index(*i, arr.len())
                .ok_or_else(|| fail(format!("index {i} out of bounds")))?;
            if rest.is_empty() {
                arr[idx] = value;
                Ok(())
            } else {
                set_in(&mut arr[idx], rest, value, raw)
            }
        }
        _ => Err(PathError::NotReference(raw.to_string())),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        let cut = (0..=80).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn norm_index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let j = if i < 0 { len + i } else { i };
    (0..len).contains(&j).then_some(j as usize)
}

fn apply_seg<'a>(s: &Seg, v: &'a Value, out: &mut Vec<&'a Value>) {
    match s {
        Seg::Key(k) => {
            if let Some(x) = v.as_object().and_then(|o| o.get(k)) {
                out.push(x)
            }
        }
        Seg::Index(i) => {
            if let Some(a) = v.as_array()
                && let Some(j) = norm_index(*i, a.len())
            {
                out.push(&a[j])
            }
        }
        Seg::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(o) => out.extend(o.values()),
            _ => {}
        },
        Seg::Union(items) => {
            for it in items {
                match it {
                    UnionItem::Key(k) => apply_seg(&Seg::Key(k.clone()), v, out),
                    UnionItem::Index(i) => apply_seg(&Seg::Index(*i), v, out),
                }
            }
        }
        Seg::Slice(start, end, step) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let step = step.unwrap_or(1);
                if step <= 0 {
                    return;
                }
                let clamp = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = clamp(start.unwrap_or(0));
                let e = clamp(end.unwrap_or(len));
                let mut i = s;
                while i < e {
                    out.push(&a[i as usize]);
                    i += step;
                }
            }
        }
        Seg::Descend(key) => descend(v, key.as_deref(), out),
        Seg::Filter(f) => {
            let children: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(o) => o.values().collect(),
                _ => vec![],
            };
            for c in children {
                if filter_matches(f, c) {
                    out.push(c)
                }
            }
        }
    }
}

fn descend<'a>(v: &'a Value, key: Option<&str>, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if key.is_none_or(|want| want == k) {
                    out.push(x);
                }
            }
            for x in o.values() {
                descend(x, key, out);
            }
        }
        Value::Array(a) => {
            if key.is_none() {
                out.extend(a.iter());
            }
            for x in a {
                descend(x, key, out);
            }
        }
        _ => {}
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let mut cur = vec![item];
    for s in &f.path {
        let mut next = Vec::new();
        for v in cur {
            apply_seg(s, v, &mut next);
        }
        cur = next;
    }
    let Some(found) = cur.first() else {
        return false;
    };
    let Some((op, lit)) = &f.cmp else {
        return true;
    };
    let ord = match (found, lit) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) => {
            return match op.as_str() {
                "==" => *a == b,
                "!=" => *a != b,
                _ => false,
            };
        }
    };
    let Some(ord) = ord else { return false };
    use std::cmp::Ordering::*;
    match op.as_str() {
        "==" => ord == Equal,
        "!=" => ord != Equal,
        "<" => ord == Less,
        "<=" => ord != Greater,
        ">" => ord == Greater,
        ">=" => ord != Less,
        _ => false,
    }
}

fn parse_segments(s: &str) -> Result<Vec<Seg>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut segs = Vec::new();
    while i < c.len() {
        match c[i] {
            '.' => {
                if c.get(i + 1) == Some(&'.') {
                    i += 2;
                    if c.get(i) == Some(&'*') {
                        i += 1;
                        segs.push(Seg::Descend(None));
                    } else {
                        let (k, n) = read_key(&c, i);
                        if k.is_empty() {
                            return Err("expected a field name after '..'".into());
                        }
                        i = n;
                        segs.push(Seg::Descend(Some(k)));
                    }
                } else {
                    i += 1;
                    if c.get(i) == Some(&'*') {
                        i += 1;
                        segs.push(Seg::Wildcard);
                    } else {
                        let (k, n) = read_key(&c, i);
                        if k.is_empty() {
                            return Err(format!("expected a field name at offset {i}"));
                        }
                        i = n;
                        segs.push(Seg::Key(k));
                    }
                }
            }
            '[' => {
                let close = find_close(&c, i).ok_or("unclosed '['")?;
                let inner: String = c[i + 1..close].iter().collect();
                segs.push(parse_bracket(inner.trim())?);
                i = close + 1;
            }
            ch => return Err(format!("unexpected '{ch}' at offset {i}")),
        }
    }
    Ok(segs)
}

fn read_key(c: &[char], mut i: usize) -> (String, usize) {
    let mut k = String::new();
    while i < c.len() && c[i] != '.' && c[i] != '[' {
        k.push(c[i]);
        i += 1;
    }
    (k, i)
}

fn find_close(c: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut i = open;
    while i < c.len() {
        let ch = c[i];
        if let Some(q) = quote {
            if ch == '\\' {
                i += 1;
            } else if ch == q {
                quote = None;
            }
        } else if ch == '\'' || ch == '"' {
            quote = Some(ch);
        } else if ch == '[' {
            depth += 1;
        } else if ch == ']' {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
    {
        Some(s[1..s.len() - 1].replace("\\'", "'").replace("\\\"", "\""))
    } else {
        None
    }
}

fn parse_bracket(inner: &str) -> Result<Seg, String> {
    if inner == "*" {
        return Ok(Seg::Wildcard);
    }
    if let Some(f) = inner.strip_prefix('?') {
        return parse_filter(f.trim());
    }
    if inner.contains(':') && unquote(inner).is_none() {
        let parts: Vec<&str> = inner.split(':').collect();
        if parts.len() > 3 {
            return Err(format!("bad slice '[{inner}]'"));
        }
        let num = |p: &str| -> Result<Option<i64>, String> {
            let p = p.trim();
            if p.is_empty() {
                Ok(None)
            } else {
                p.parse()
                    .map(Some)
                    .map_err(|_| format!("bad slice bound '{p}'"))
            }
        };
        return Ok(Seg::Slice(
            num(parts[0])?,
            num(parts.get(1).copied().unwrap_or(""))?,
            num(parts.get(2).copied().unwrap_or(""))?,
        ));
    }
    let items: Vec<&str> = split_top(inner);
    let mut parsed = Vec::new();
    for it in &items {
        if let Some(k) = unquote(it) {
            parsed.push(UnionItem::Key(k));
        } else if let Ok(n) = it.trim().parse::<i64>() {
            parsed.push(UnionItem::Index(n));
        } else {
            return Err(format!("bad subscript '[{inner}]'"));
        }
    }
    if parsed.len() == 1 {
        return Ok(match parsed.remove(0) {
            UnionItem::Key(k) => Seg::Key(k),
            UnionItem::Index(i) => Seg::Index(i),
        });
    }
    Ok(Seg::Union(parsed))
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == ',' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_filter(f: &str) -> Result<Seg, String> {
    let body = f
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("bad filter '?{f}'"))?
        .trim();
    let rest = body
        .strip_prefix('@')
        .ok_or_else(|| format!("filter must start with '@': '{body}'"))?;
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some(pos) = rest.find(op) {
            let path = parse_segments(rest[..pos].trim())?;
            let lit_s = rest[pos + op.len()..].trim();
            let lit = if let Some(s) = unquote(lit_s) {
                Value::String(s)
            } else {
                serde_json::from_str(lit_s).map_err(|_| format!("bad filter literal '{lit_s}'"))?
            };
            return Ok(Seg::Filter(Filter {
                path,
                cmp: Some((op.to_string(), lit)),
            }));
        }
    }
    Ok(Seg::Filter(Filter {
        path: parse_segments(rest.trim())?,
        cmp: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(p: &str, v: &Value) -> Option<Value> {
        JsonPath::parse(p)
            .unwrap()
            .select(v, &json!({"Execution": {"Id": "x"}}))
    }

    #[test]
    fn definite_paths() {
        let v = json!({"a": {"b": [1, 2, {"c": "d"}]}, "x y": 5});
        assert_eq!(sel("$", &v), Some(v.clone()));
        assert_eq!(sel("$.a.b[2].c", &v), Some(json!("d")));
        assert_eq!(sel("$['x y']", &v), Some(json!(5)));
        assert_eq!(sel("$.a.b[-1].c", &v), Some(json!("d")));
        assert_eq!(sel("$.a.z", &v), None);
        assert_eq!(sel("$$.Execution.Id", &v), Some(json!("x")));
    }

    #[test]
    fn indefinite_paths() {
        let v = json!({"items": [{"n": 1, "k": "a"}, {"n": 5, "k": "b"}, {"n": 3}]});
        assert_eq!(sel("$.items[*].n", &v), Some(json!([1, 5, 3])));
        assert_eq!(sel("$.items[0:2].n", &v), Some(json!([1, 5])));
        assert_eq!(sel("$..k", &v), Some(json!(["a", "b"])));
        assert_eq!(sel("$.items[?(@.n > 2)].n", &v), Some(json!([5, 3])));
        assert_eq!(sel("$.items[?(@.k)].k", &v), Some(json!(["a", "b"])));
        assert_eq!(sel("$.items[0,2].n", &v), Some(json!([1, 3])));
    }

    #[test]
    fn set_creates_and_rejects() {
        let p = JsonPath::parse_reference("$.a.b").unwrap();
        assert_eq!(
            p.set(json!({"x": 1}), json!(2)).unwrap(),
            json!({"x": 1, "a": {"b": 2}})
        );
        assert!(p.set(json!({"a": 3}), json!(2)).is_err());
        assert!(JsonPath::parse_reference("$.a[*]").is_err());
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
    }
}
