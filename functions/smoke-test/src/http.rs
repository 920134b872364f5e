//! HTTP checks: expected status, optional body substring or regex, per-attempt timeout, and
//! bounded retries with backoff for transient failures (connection errors, timeouts, 5xx, 429).

use std::time::{Duration, Instant};

use rollback_core::RollbackError;
use rollback_core::contract::smoke::{CheckKind, CheckResult};
use rollback_core::plan::HttpCheck;

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
    deadline: tokio::time::Instant,
) -> CheckResult {
    let start = Instant::now();
    let timeout = Duration::from_millis(check.timeout_ms);
    let max_attempts = check.retries + 1;
    let mut attempts = 0;
    let mut backoff = FIRST_BACKOFF;
    let (passed, reason) = loop {
        attempts += 1;
        let attempt_start = Instant::now();
        let outcome = attempt(client, check, timeout).await;
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
                tracing::debug!(check = %check.name, attempt = attempts, reason = %why, "retrying");
                tokio::time::sleep_until(next).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    CheckResult {
        kind: CheckKind::Http,
        name: check.name.clone(),
        passed,
        elapsed_ms: millis(start.elapsed()),
        attempts,
        reason,
    }
}

async fn attempt(client: &reqwest::Client, check: &HttpCheck, timeout: Duration) -> Attempt {
    let response = match tokio::time::timeout(timeout, client.get(&check.url).send()).await {
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
        let why = format!("expected {}, got {status_text}", check.expect_status);
        return if status.is_server_error() || status.as_u16() == 429 {
            Attempt::Transient(why)
        } else {
            Attempt::Fail(why)
        };
    }
    if check.body_contains.is_none() && check.body_regex.is_none() {
        return Attempt::Pass(status_text);
    }
    let body = match tokio::time::timeout(timeout, read_body(response)).await {
        Err(_) => {
            return Attempt::Transient(format!("body not read within {} ms", check.timeout_ms));
        }
        Ok(Err(e)) => return Attempt::Transient(format!("reading the body: {}", describe(&e))),
        Ok(Ok(body)) => body,
    };
    if let Some(needle) = &check.body_contains
        && !body.contains(needle.as_str())
    {
        return Attempt::Fail(format!(
            "{status_text} but the body does not contain {:?} (body starts {:?})",
            one_line(needle, 60),
            one_line(&body, 60)
        ));
    }
    if let Some(pattern) = &check.body_regex {
        // The plan validated the pattern; a failure here would be a bug.
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(&body) => {}
            Ok(_) => {
                return Attempt::Fail(format!(
                    "{status_text} but the body does not match /{}/ (body starts {:?})",
                    one_line(pattern, 60),
                    one_line(&body, 60)
                ));
            }
            Err(e) => return Attempt::Fail(format!("invalid body_regex: {e}")),
        }
    }
    Attempt::Pass(format!("{status_text}, body as expected"))
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
