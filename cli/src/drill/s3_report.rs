//! The post-mortem the execution wrote itself (notify `report`, just before its final notice),
//! read back from moto's S3 and checked against what the drill saw.
//!
//! The report step ran before the final notice, so its history is the first N events of the
//! execution's (task tokens removed) and `report.md` is what the shared renderer makes of them.
//! The drill's own `report.md` comes from the whole history after the end, so the two differ
//! exactly in what came after the report step: the notice, the end state, the end time. The
//! check: the object exists, its history is that prefix of the drill's, and its report is
//! byte for byte what `rollbackctl report` renders from those events.

use anyhow::{Context, Result, bail};
use rollback_core::report::history::History;
use rollback_core::report::{analyse, render};

use super::seed::REPORT_BUCKET;

/// Where the execution's own report is and how it relates to the drill's.
#[derive(Debug, Clone)]
pub struct S3Report {
    /// `s3://…/report.md`.
    pub uri: String,
    pub history_uri: String,
    /// Events in the S3 history (the execution's first ones).
    pub events: usize,
    /// Events in the drill's history (the whole execution).
    pub total_events: usize,
    /// States the execution entered after the report step read its history.
    pub after: Vec<String>,
    /// Lines only in the S3 report, and lines only in the drill's `report.md`.
    pub only_in_s3: Vec<String>,
    pub only_local: Vec<String>,
}

impl S3Report {
    pub fn identical(&self) -> bool {
        self.only_in_s3.is_empty() && self.only_local.is_empty()
    }
}

/// Reads `reports/<execution>/report.md` and `history.json` from the report bucket and checks
/// them against the drill's `history` and `local_report`.
pub async fn check(
    s3: &aws_sdk_s3::Client,
    execution: &str,
    history: &History,
    local_report: &str,
) -> Result<S3Report> {
    let base = format!("{}/{execution}", rollback_notify::report::DEFAULT_PREFIX);
    let report_key = format!("{base}/report.md");
    let history_key = format!("{base}/history.json");
    let get = |key: String| async move {
        let out = s3
            .get_object()
            .bucket(REPORT_BUCKET)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("s3://{REPORT_BUCKET}/{key} is not there"))?;
        let bytes = out
            .body
            .collect()
            .await
            .with_context(|| format!("reading s3://{REPORT_BUCKET}/{key}"))?
            .into_bytes();
        String::from_utf8(bytes.to_vec()).with_context(|| format!("{key} is not UTF-8"))
    };
    let markdown = get(report_key.clone()).await?;
    let stored: History = serde_json::from_str(&get(history_key.clone()).await?)
        .context("history.json in S3 is not a get-execution-history document")?;

    // Its events are the execution's first ones, task tokens removed.
    let n = stored.events.len();
    if n == 0 || n > history.events.len() {
        bail!(
            "history.json in S3 has {n} events; the execution has {}",
            history.events.len()
        );
    }
    for (i, (theirs, ours)) in stored.events.iter().zip(&history.events).enumerate() {
        let mut ours = ours.clone();
        ours.redact_task_tokens();
        if *theirs != ours {
            bail!(
                "history.json in S3 differs from the execution's history at event {} ({} vs {})",
                i + 1,
                theirs.kind,
                ours.kind
            );
        }
    }
    // Its report is the shared renderer's text of those events (what `rollbackctl report`
    // prints for them).
    let expected = render(&analyse(execution, &stored));
    if markdown != expected {
        let (only_s3, only_renderer) = line_difference(&markdown, &expected);
        bail!(
            "report.md in S3 is not the renderer's text of its own history.json:\n  only in S3: {only_s3:?}\n  only rendered: {only_renderer:?}"
        );
    }
    let after: Vec<String> = history.events[n..]
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .filter_map(|e| e.detail_str("name").map(str::to_owned))
        .collect();
    let (only_in_s3, only_local) = line_difference(&markdown, local_report);
    Ok(S3Report {
        uri: format!("s3://{REPORT_BUCKET}/{report_key}"),
        history_uri: format!("s3://{REPORT_BUCKET}/{history_key}"),
        events: n,
        total_events: history.events.len(),
        after,
        only_in_s3,
        only_local,
    })
}

/// Lines of `a` missing from `b` and of `b` missing from `a`, each in its own order.
fn line_difference(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let only = |x: &str, y: &str| -> Vec<String> {
        let others: std::collections::HashSet<&str> = y.lines().collect();
        x.lines()
            .filter(|l| !others.contains(l))
            .map(str::to_owned)
            .collect()
    };
    (only(a, b), only(b, a))
}
