//! HTTP checks: a request (method, headers, body, credentials from Secrets Manager), the
//! expected status, optional body substring, regex and JSON values, per-attempt timeout, and
//! bounded retries with backoff for transient failures (connection errors, timeouts, 5xx, 429).

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use rollback_core::RollbackError;
use rollback_core::contract::smoke_test::{CheckKind, CheckResult};
use rollback_core::plan::{HttpCheck, JsonExpectation, body_text};
use serde_json::Value;

use crate::credentials::HttpCredentials;
use crate::redact::redact;
use crate::{millis, one_line};

/// Bodies are read up to this size; health endpoints are small.
const MAX_BODY: usize = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) fn client() -> Result<reqwest::Client, RollbackError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent("rollback-smoke-test/0.1")
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| RollbackError::Internal(format!("building the HTTP client: {e}")))
}

enum Attempt {
    Pass(String),
    /// Worth another attempt.
    Transient(String),
    Fail(String),
}

pub(crate) async fn run(
    client: &reqwest::Client,
    check: &HttpCheck,
    credentials: Option<&HttpCredentials>,
    deadline: tokio::time::Instant,
) -> CheckResult {
    let start = Instant::now();
    let timeout = Duration::from_millis(check.timeout_ms);
    let max_attempts = check.retries + 1;
    let mut attempts = 0;
    let mut backoff = FIRST_BACKOFF;
    // A server may echo what it was sent: no form of the secret leaves in a reason or a log.
    let scrub = |text: String| match credentials {
        Some(credentials) => credentials.scrub(&text),
        None => text,
    };
    let (passed, reason) = loop {
        attempts += 1;
        let attempt_start = Instant::now();
        let outcome = attempt(client, check, credentials, timeout).await;
        let took = millis(attempt_start.elapsed());
        match outcome {
            Attempt::Pass(what) => break (true, format!("{what} in {took} ms")),
            Attempt::Fail(why) => break (false, why),
            Attempt::Transient(why) => {
                let next = tokio::time::Instant::now() + backoff;
                if attempts >= max_attempts || next >= deadline {
                    let tries = if attempts == 1 {
                        "1 attempt".to_owned()
                    } else {
                        format!("{attempts} attempts")
                    };
                    break (false, format!("{why} (after {tries})"));
                }
                let why = scrub(why);
                tracing::debug!(check = %check.name, attempt = attempts, reason = %why, "retrying");
                tokio::time::sleep_until(next).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    let reason = scrub(reason);
    CheckResult {
        kind: CheckKind::Http,
        name: check.name.clone(),
        passed,
        elapsed_ms: millis(start.elapsed()),
        attempts,
        reason,
    }
}

async fn attempt(
    client: &reqwest::Client,
    check: &HttpCheck,
    credentials: Option<&HttpCredentials>,
    timeout: Duration,
) -> Attempt {
    let request = match request(client, check, credentials) {
        Ok(request) => request,
        Err(why) => return Attempt::Fail(why),
    };
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => return Attempt::Transient(format!("no answer within {} ms", check.timeout_ms)),
        Ok(Err(e)) => return Attempt::Transient(describe(&e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let status_text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    if status.as_u16() != check.expect_status {
        let mut why = format!("expected {}, got {status_text}", check.expect_status);
        if let (Some(secret), 401 | 403) = (&check.credentials_secret, status.as_u16()) {
            why.push_str(&format!(
                " (the credentials from secret {} were refused)",
                one_line(secret, 120)
            ));
        }
        return if status.is_server_error() || status.as_u16() == 429 {
            Attempt::Transient(why)
        } else {
            Attempt::Fail(why)
        };
    }
    if !check.reads_body() {
        return Attempt::Pass(status_text);
    }
    let body = match tokio::time::timeout(timeout, read_body(response)).await {
        Err(_) => {
            return Attempt::Transient(format!("body not read within {} ms", check.timeout_ms));
        }
        Ok(Err(e)) => return Attempt::Transient(format!("reading the body: {}", describe(&e))),
        Ok(Ok(body)) => body,
    };
    match judge_body(check, &body) {
        Ok(()) => Attempt::Pass(format!("{status_text}, body as expected")),
        Err(why) => Attempt::Fail(format!("{status_text} but {why}")),
    }
}

/// The check's request: method, url, headers, body and credentials.
fn request(
    client: &reqwest::Client,
    check: &HttpCheck,
    credentials: Option<&HttpCredentials>,
) -> Result<reqwest::RequestBuilder, String> {
    let method = reqwest::Method::from_bytes(check.method.as_str().as_bytes())
        .map_err(|_| format!("unsupported method {}", check.method.as_str()))?;
    let mut request = client.request(method, &check.url);
    let mut has_content_type = false;
    for (name, value) in &check.headers {
        // The plan validated both; a failure here names the header, not its value.
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header {:?} is not a valid name", one_line(name, 64)))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("header {name} has a value HTTP cannot carry"))?;
        has_content_type |= name == CONTENT_TYPE;
        request = request.header(name, value);
    }
    if let Some(body) = &check.body {
        if !has_content_type {
            let content_type = match body {
                Value::String(_) => "text/plain; charset=utf-8",
                _ => "application/json",
            };
            request = request.header(CONTENT_TYPE, content_type);
        }
        request = request.body(body_text(body));
    }
    Ok(match credentials {
        Some(credentials) => credentials.apply(request),
        None => request,
    })
}

/// Substring, regex and JSON expectations, in that order; the first unmet one says why.
fn judge_body(check: &HttpCheck, body: &str) -> Result<(), String> {
    let starts = || quote(body);
    if let Some(needle) = &check.body_contains
        && !body.contains(needle.as_str())
    {
        return Err(format!(
            "the body does not contain {:?} (body starts {})",
            one_line(needle, 60),
            starts()
        ));
    }
    if let Some(pattern) = &check.body_regex {
        // The plan validated the pattern; a failure here would be a bug.
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(body) => {}
            Ok(_) => {
                return Err(format!(
                    "the body does not match /{}/ (body starts {})",
                    one_line(pattern, 60),
                    starts()
                ));
            }
            Err(e) => return Err(format!("invalid body_regex: {e}")),
        }
    }
    if check.expect_json.is_empty() {
        return Ok(());
    }
    let document: Value = serde_json::from_str(body)
        .map_err(|_| format!("the body is not JSON (body starts {})", starts()))?;
    check
        .expect_json
        .iter()
        .try_for_each(|e| expect(&document, e))
}

fn expect(document: &Value, expectation: &JsonExpectation) -> Result<(), String> {
    let pointer = &expectation.pointer;
    let at = format!("{:?}", one_line(pointer, 60));
    let wanted = show_json(&expectation.equals);
    match document.pointer(pointer) {
        None => Err(format!("the JSON has nothing at {at} (expected {wanted})")),
        Some(found) if json_equals(found, &expectation.equals) => Ok(()),
        Some(found) => Err(format!(
            "the JSON at {at} is {}, expected {wanted}",
            show_json(found)
        )),
    }
}

/// A JSON value as JSON text (a string keeps its quotes), redacted and short.
fn show_json(value: &Value) -> String {
    let text: String = value.to_string().chars().take(2000).collect();
    one_line(&redact(&text), 60)
}

/// JSON equality, with numbers compared by value (`1` equals `1.0`).
fn json_equals(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64().is_some_and(|a| b.as_f64() == Some(a)),
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equals(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| json_equals(v, w)))
        }
        _ => found == expected,
    }
}

/// Text from the response for a reason: one line, secret-looking parts redacted, short.
fn quote(text: &str) -> String {
    let head: String = text.chars().take(2000).collect();
    format!("{:?}", one_line(&redact(&head), 60))
}

async fn read_body(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "could not connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", one_line(&detail, 120))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_everything_else_exactly() {
        assert!(json_equals(&json!(4), &json!(4.0)));
        assert!(json_equals(
            &json!({"a": [1, 2.0]}),
            &json!({"a": [1.0, 2]})
        ));
        assert!(!json_equals(&json!("4"), &json!(4)));
        assert!(!json_equals(&json!({"a": 1, "b": 2}), &json!({"a": 1})));
        assert!(!json_equals(&json!(null), &json!(false)));
    }

    #[test]
    fn expectations_say_what_was_found() {
        let doc = json!({"status": "ok", "nested": {"n": 3}});
        let at = |pointer: &str, equals: Value| JsonExpectation {
            pointer: pointer.into(),
            equals,
        };
        assert!(expect(&doc, &at("/nested/n", json!(3.0))).is_ok());
        assert_eq!(
            expect(&doc, &at("/status", json!("degraded"))).unwrap_err(),
            r#"the JSON at "/status" is "ok", expected "degraded""#
        );
        assert_eq!(
            expect(&doc, &at("/missing", json!(1))).unwrap_err(),
            r#"the JSON has nothing at "/missing" (expected 1)"#
        );
    }
}
