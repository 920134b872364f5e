//! SQL probes against PostgreSQL (RDS, Aurora PostgreSQL): credentials from an RDS-style
//! Secrets Manager secret, `verify-full` TLS (see `rollback_sql_probe`), connect and query
//! bounded by the probe's timeout in a read-only session, and the row count, the first value
//! or a comparison of it (with a value, or with the baseline recorded at the pre-deploy
//! snapshot) checked. The reason says what was compared.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rollback_core::RollbackError;
use rollback_core::contract::smoke_test::{CheckKind, CheckResult};
use rollback_core::plan::{SqlComparison, SqlProbe};
use rollback_sql_probe::{Number, Rows, SecretError, Target};

use crate::baseline::Baseline;
use crate::{millis, one_line};

/// Reads every distinct secret the probes name. A missing or unusable secret is a
/// configuration error.
pub(crate) async fn load_secrets(
    client: &aws_sdk_secretsmanager::Client,
    probes: &[SqlProbe],
) -> Result<HashMap<String, Target>, RollbackError> {
    let mut secrets = HashMap::new();
    for probe in probes {
        if secrets.contains_key(&probe.secret_arn) {
            continue;
        }
        let target = rollback_sql_probe::load_secret(client, &probe.secret_arn)
            .await
            .map_err(|e| match e {
                SecretError::Aws(e) => e,
                SecretError::Config(why) => {
                    RollbackError::SmokeConfig(format!("SQL probe {:?}: {why}", probe.name))
                }
            })?;
        secrets.insert(probe.secret_arn.clone(), target);
    }
    Ok(secrets)
}

/// Runs one probe. `baseline` is what the pre-deploy snapshot recorded, for a probe that
/// compares with it (or why there is none).
pub(crate) async fn run(
    probe: &SqlProbe,
    target: Target,
    baseline: Option<Result<Baseline, String>>,
) -> CheckResult {
    let start = Instant::now();
    let timeout = Duration::from_millis(probe.timeout_ms);
    let (passed, reason) = match rollback_sql_probe::query(
        &target,
        &probe.query,
        timeout,
        "rollback-smoke-test",
    )
    .await
    {
        Err(why) => (false, why),
        Ok(rows) => judge(probe, &rows, baseline.as_ref()),
    };
    let took = millis(start.elapsed());
    let reason = if passed {
        format!("{reason} in {took} ms")
    } else {
        reason
    };
    CheckResult {
        kind: CheckKind::Sql,
        name: probe.name.clone(),
        passed,
        elapsed_ms: took,
        attempts: 1,
        // First, so that a cut reason keeps it.
        reason: match target.plaintext_notice() {
            Some(notice) => format!("{notice}: {reason}"),
            None => reason,
        },
    }
}

fn judge(
    probe: &SqlProbe,
    rows: &Rows,
    baseline: Option<&Result<Baseline, String>>,
) -> (bool, String) {
    let count = rows.count_words();
    if let Some(expected) = probe.expect_rows
        && expected != rows.count
    {
        return (false, format!("expected {expected} rows, got {count}"));
    }
    let mut seen = vec![count];
    if let Some(expected) = &probe.expect_value {
        let got = rows.first.clone().flatten();
        if !value_matches(expected, got.as_deref()) {
            let got = match (&rows.first, got) {
                (None, _) => "no row".to_owned(),
                (Some(_), None) => "NULL".to_owned(),
                (Some(_), Some(text)) => format!("{:?}", one_line(&text, 60)),
            };
            return (false, format!("expected first value {expected}, got {got}"));
        }
        seen.push(format!("first value {expected}"));
    }
    if let Some(compare) = &probe.compare {
        match compared(compare, rows, baseline) {
            Ok(words) => seen.push(words),
            Err(why) => return (false, why),
        }
    }
    (true, seen.join(", "))
}

/// `first value 1,204 ≥ baseline 1,204 of pre-deploy snapshot …` when the comparison holds;
/// otherwise why not, with both sides.
fn compared(
    compare: &SqlComparison,
    rows: &Rows,
    baseline: Option<&Result<Baseline, String>>,
) -> Result<String, String> {
    let op = compare.op.symbol();
    let (expected, what) = match (&compare.value, baseline) {
        (Some(value), _) => match Number::from_json(value) {
            Some(n) => (n, n.to_string()),
            None => return Err(format!("compare.value {value} is not a finite number")),
        },
        (None, Some(Ok(b))) => (
            b.value,
            format!(
                "baseline {} of pre-deploy snapshot {}",
                b.value, b.snapshot_id
            ),
        ),
        (None, Some(Err(why))) => return Err(format!("no baseline to compare with: {why}")),
        (None, None) => return Err("no baseline to compare with".to_owned()),
    };
    let seen = rows
        .first_number()
        .map_err(|got| format!("expected first value {op} {what}, got {got}"))?;
    match seen.compare(expected) {
        Some(ordering) if compare.op.holds(ordering) => {
            Ok(format!("first value {seen} {op} {what}"))
        }
        _ => Err(format!("first value {seen}, expected {op} {what}")),
    }
}

/// Compares PostgreSQL's text form of a value with the plan's JSON expectation.
fn value_matches(expected: &serde_json::Value, got: Option<&str>) -> bool {
    use serde_json::Value;
    match (expected, got) {
        (Value::Null, None) => true,
        (_, None) | (Value::Null, Some(_)) => false,
        (Value::String(s), Some(text)) => s == text,
        (Value::Bool(b), Some(text)) => match text {
            "t" | "true" => *b,
            "f" | "false" => !*b,
            _ => false,
        },
        (Value::Number(n), Some(text)) => match (n.as_f64(), text.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        // Arrays and objects: compare JSON text (e.g. a json column).
        (other, Some(text)) => serde_json::from_str::<Value>(text).is_ok_and(|v| v == *other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_compare_by_postgres_text_form() {
        assert!(value_matches(&json!(1), Some("1")));
        assert!(value_matches(&json!(1.5), Some("1.50")));
        assert!(value_matches(&json!("v42"), Some("v42")));
        assert!(value_matches(&json!(true), Some("t")));
        assert!(value_matches(&json!(null), None));
        assert!(!value_matches(&json!(1), Some("2")));
        assert!(!value_matches(&json!("1"), None));
        assert!(!value_matches(&json!(false), Some("t")));
    }

    fn probe(compare: serde_json::Value) -> SqlProbe {
        serde_json::from_value(
            json!({"name": "accounts", "database": "db", "secret_arn": "s",
            "query": "select count(*) from accounts", "compare": compare}),
        )
        .unwrap()
    }

    fn rows(first: Option<&str>) -> Rows {
        Rows {
            count: 1,
            first: Some(first.map(str::to_owned)),
        }
    }

    #[test]
    fn comparisons_say_what_was_compared() {
        let p = probe(json!({"op": "ge", "value": 1000}));
        assert_eq!(
            judge(&p, &rows(Some("1204")), None),
            (true, "1 row, first value 1,204 ≥ 1,000".to_owned())
        );
        assert_eq!(
            judge(&p, &rows(Some("999")), None),
            (false, "first value 999, expected ≥ 1,000".to_owned())
        );
        assert_eq!(
            judge(&p, &rows(None), None),
            (false, "expected first value ≥ 1,000, got NULL".to_owned())
        );
        let (passed, why) = judge(&p, &rows(Some("v42")), None);
        assert!(!passed && why.contains("\"v42\", not a number"), "{why}");
        let lt = probe(json!({"op": "lt", "value": 0.5}));
        assert!(judge(&lt, &rows(Some("0.25")), None).0);
        assert!(!judge(&lt, &rows(Some("0.5")), None).0);
    }

    #[test]
    fn baseline_comparisons_name_the_snapshot() {
        let p = probe(json!({"op": "ge", "baseline": "pre-deploy-snapshot"}));
        let b = Ok(Baseline {
            value: Number::Int(1204),
            snapshot_id: "predeploy-svc-v42-db".to_owned(),
        });
        assert_eq!(
            judge(&p, &rows(Some("1204")), Some(&b)),
            (
                true,
                "1 row, first value 1,204 ≥ baseline 1,204 of pre-deploy snapshot \
                 predeploy-svc-v42-db"
                    .to_owned()
            )
        );
        let (passed, why) = judge(&p, &rows(Some("1100")), Some(&b));
        assert!(!passed);
        assert_eq!(
            why,
            "first value 1,100, expected ≥ baseline 1,204 of pre-deploy snapshot \
             predeploy-svc-v42-db"
        );
        let missing = Err("snapshot x has no tag rollback:baseline:accounts".to_owned());
        let (passed, why) = judge(&p, &rows(Some("1204")), Some(&missing));
        assert!(
            !passed && why.starts_with("no baseline to compare with: snapshot x"),
            "{why}"
        );
    }
}
