//! Redaction of what looks like a secret in text quoted from elsewhere (log lines, response
//! bodies): a check's reason ends up in the execution's state, the notices and the report, so
//! an application that logs a credential must not have it copied there too.

use std::sync::LazyLock;

use regex::{Captures, Regex};

const REDACTED: &str = "[redacted]";

/// `Authorization: Bearer <token>`, `authorization=<token>`: the credential after the scheme.
static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:bearer|basic|digest|token)?\s*)([^\s"',;}\]]+)"#,
    )
    .expect("regex")
});
/// `Bearer <token>` anywhere else.
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+").expect("regex"));
/// `Basic <base64>`; the token must look like base64 (a digit, `+`, `/`, `=` or mixed case), so
/// "basic authentication" stays readable.
static BASIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(basic)\s+([A-Za-z0-9+/]{8,}={0,2})").expect("regex"));
/// `password=…`, `"api_key": "…"`, `X-Auth-Token: …`: a key that names a secret, a `:` or `=`,
/// and the value up to the next delimiter.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|credentials?|private[_-]?key|session[_-]?id))(["']?\s*[:=]\s*["']?)([^\s"'&,;}\]]+)"#,
    )
    .expect("regex")
});
/// `scheme://user:password@host`.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@").expect("regex")
});
/// A JSON Web Token (header `{"…` base64url-encoded starts `eyJ`).
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").expect("regex")
});
/// AWS access key ids (`AKIA…` long-term, `ASIA…` temporary, and the other unique-id prefixes).
static AWS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b")
        .expect("regex")
});
/// Long runs of token characters; redacted when they mix upper case, lower case and digits
/// (AWS secret access keys, API keys), which identifiers and hex digests do not.
static OPAQUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_=-]{32,}").expect("regex"));

/// `text` with every secret-looking part replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let text = URL_USERINFO.replace_all(text, format!("${{1}}{REDACTED}@"));
    let text = JWT.replace_all(&text, REDACTED);
    let text = AUTH_HEADER.replace_all(&text, format!("${{1}}{REDACTED}"));
    let text = BEARER.replace_all(&text, |c: &Captures<'_>| {
        if c[0].ends_with(REDACTED) {
            c[0].to_owned()
        } else {
            format!("{} {REDACTED}", &c[1])
        }
    });
    let text = BASIC.replace_all(&text, |c: &Captures<'_>| {
        if looks_encoded(&c[2]) {
            format!("{} {REDACTED}", &c[1])
        } else {
            c[0].to_owned()
        }
    });
    let text = KEY_VALUE.replace_all(&text, |c: &Captures<'_>| {
        let value = &c[3];
        let scheme = ["bearer", "basic", "digest"]
            .iter()
            .any(|s| value.eq_ignore_ascii_case(s));
        if value.starts_with(REDACTED) || scheme {
            c[0].to_owned()
        } else {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        }
    });
    let text = AWS_KEY_ID.replace_all(&text, REDACTED);
    OPAQUE
        .replace_all(&text, |c: &Captures<'_>| {
            if mixes_classes(&c[0]) {
                REDACTED.to_owned()
            } else {
                c[0].to_owned()
            }
        })
        .into_owned()
}

fn looks_encoded(token: &str) -> bool {
    token
        .chars()
        .any(|c| c.is_ascii_digit() || "+/=".contains(c))
        || mixes_case(token)
}

fn mixes_case(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_uppercase()) && token.chars().any(|c| c.is_ascii_lowercase())
}

fn mixes_classes(token: &str) -> bool {
    mixes_case(token) && token.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_redacted_and_the_rest_stays_readable() {
        let cases = [
            (
                "GET /x Authorization: Bearer abc.DEF-123_xyz failed",
                "Bearer [redacted]",
                "abc.DEF",
            ),
            (
                "auth header Basic dXNlcjpodW50ZXIy",
                "Basic [redacted]",
                "dXNlcjpodW50ZXIy",
            ),
            (
                "login password=hunter2 for bob",
                "password=[redacted]",
                "hunter2",
            ),
            (
                r#"{"db_password": "s3cr3t!", "user": "bob"}"#,
                r#""db_password": "[redacted]""#,
                "s3cr3t!",
            ),
            (
                "X-Api-Key: k-12345 sent",
                "X-Api-Key: [redacted]",
                "k-12345",
            ),
            (
                "client_secret=abc&grant=x",
                "client_secret=[redacted]&grant=x",
                "abc&",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE used",
                "key [redacted] used",
                "AKIAIOSFODNN7EXAMPLE",
            ),
            (
                "aws_secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end",
                "aws_secret [redacted] end",
                "wJalrXUtnFEMI",
            ),
            (
                "connect postgres://app:pa55w0rd@db.internal:5432/app",
                "postgres://[redacted]@db.internal",
                "pa55w0rd",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ok",
                "jwt [redacted] ok",
                "eyJzdWIiOiIxIn0",
            ),
        ];
        for (line, shows, hides) in cases {
            let out = redact(line);
            assert!(
                out.contains(shows),
                "{line:?} → {out:?}, expected {shows:?}"
            );
            assert!(
                !out.contains(hides),
                "{line:?} → {out:?} still has {hides:?}"
            );
        }
    }

    #[test]
    fn ordinary_log_lines_are_left_alone() {
        for line in [
            "ERROR payment failed: upstream timed out after 3000 ms (order 42)",
            "basic authentication is disabled",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b deployed",
            "request 9b2c4d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e took 12 ms",
            "tokens remaining: 5",
        ] {
            assert_eq!(redact(line), line);
        }
    }
}
