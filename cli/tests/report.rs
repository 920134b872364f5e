//! The post-mortem skeleton from a saved history: trigger, decision, folded polling loops,
//! changes, data-loss window and failures, in the shape the AWS CLI prints histories.

use rollbackctl::history::History;
use rollbackctl::report::{analyse, render};
use serde_json::{Value, json};

fn event(id: i64, kind: &str, t: f64, details: Value) -> Value {
    let mut e = json!({"id": id, "previousEventId": id - 1, "type": kind, "timestamp": t});
    if let Value::Object(d) = details {
        e.as_object_mut().unwrap().extend(d);
    }
    e
}

fn entered(id: i64, name: &str, t: f64) -> Value {
    event(
        id,
        "TaskStateEntered",
        t,
        json!({"stateEnteredEventDetails": {"name": name, "input": "{}"}}),
    )
}

fn exited(id: i64, name: &str, t: f64, output: Value) -> Value {
    event(
        id,
        "TaskStateExited",
        t,
        json!({"stateExitedEventDetails": {"name": name, "output": output.to_string()}}),
    )
}

fn sample() -> History {
    let alarm = json!({
        "version": "0", "id": "e1", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:mint-replica-5xx"],
        "detail": {"alarmName": "mint-replica-5xx",
            "state": {"value": "ALARM", "reason": "Threshold <b>Crossed</b>\n| injected", "timestamp": "2024-05-01T12:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2024-05-01T09:00:00.000+0000"}}
    });
    let t0 = 1_714_564_800.0; // 2024-05-01T12:00:00Z
    // State outputs shaped by the function contracts (rollback_core::contract).
    let retag = json!({"drill": false, "images": [{"repository": "mint-replica-backend", "tag": "prod", "outcome": "retagged",
        "stable_digest": "sha256:1111111111111111aaaa", "previous_digest": "sha256:2222222222222222bbbb", "kept_as": "rolled-back-e1",
        "media_type": "application/vnd.docker.distribution.manifest.v2+json", "message": "retagged"}]});
    let resolved = json!({"databases": [{"database": "mint-replica-db", "kind": "rds-instance",
        "snapshot_id": "predeploy-mint-replica-v41-mint-replica-db", "snapshot_created_at": "2024-05-01T11:00:00Z", "snapshot_type": "manual",
        "data_loss": {"from": "2024-05-01T11:00:00Z", "to": "2024-05-01T12:00:00Z", "seconds": 3600,
            "summary": "writes from 11:00 to 12:00 are not in the snapshot"}}]});
    let decision = json!({"decision": {"decision": "approve", "scope": "app+database", "approver": "alice@example.com",
        "decided_at": "2024-05-01T12:00:05Z", "fingerprint": "ab12"}});
    let swap = json!({"drill": false, "complete": true, "aside": ["mint-replica-db-pre-rollback-1234abcd"],
        "databases": [{"database": "mint-replica-db", "kind": "rds-instance", "state": "done",
            "aside": "mint-replica-db-pre-rollback-1234abcd", "restored_from": "mint-replica-db-restored-1234abcd", "note": ""}]});
    let events = vec![
        event(
            1,
            "ExecutionStarted",
            t0,
            json!({"executionStartedEventDetails": {"input": alarm.to_string()}}),
        ),
        entered(2, "Retag images", t0 + 1.0),
        exited(3, "Retag images", t0 + 2.0, retag),
        entered(4, "Restore status", t0 + 10.0),
        exited(5, "Restore status", t0 + 20.0, json!({})),
        entered(6, "Restore status", t0 + 30.0),
        exited(
            7,
            "Restore status",
            t0 + 600.0,
            json!({"resolved": resolved}),
        ),
        entered(8, "Approval", t0 + 3.0),
        exited(9, "Approval", t0 + 5.0, decision),
        entered(10, "Swap", t0 + 601.0),
        exited(11, "Swap", t0 + 602.0, swap),
        entered(12, "Smoke tests", t0 + 700.0),
        event(
            13,
            "TaskFailed",
            t0 + 701.0,
            json!({"taskFailedEventDetails": {"error": "Rollback.SmokeFailed", "cause": "api health: 503"}}),
        ),
        event(
            14,
            "ExecutionFailed",
            t0 + 702.0,
            json!({"executionFailedEventDetails": {"error": "Rollback.SmokeFailed", "cause": "smoke tests failed"}}),
        ),
    ];
    serde_json::from_value(json!({"events": events})).unwrap()
}

#[test]
fn findings_cover_trigger_decision_changes_and_failures() {
    let f = analyse("alarm-mint-replica-5xx-20240501T120000Z", &sample());
    assert_eq!(f.status, "FAILED");
    assert_eq!(f.transitions, 6);
    let restore = f
        .timeline
        .iter()
        .find(|r| r.state == "Restore status")
        .unwrap();
    assert_eq!(restore.visits, 2, "a polling loop folds into one row");
    assert_eq!(
        (restore.exited.unwrap() - restore.entered).num_seconds(),
        590
    );
    assert_eq!(
        f.decision.as_ref().unwrap()["approver"],
        "alice@example.com"
    );
    assert!(
        f.changes["Images"][0]
            .contains("mint-replica-backend:prod: sha256:222222222222 → sha256:111111111111"),
        "{:?}",
        f.changes
    );
    assert!(
        f.changes["Images"][0].contains("rolled-back-e1"),
        "{:?}",
        f.changes
    );
    assert!(
        f.changes["Databases"]
            .iter()
            .any(|l| l
                .contains("restored from snapshot `predeploy-mint-replica-v41-mint-replica-db`")),
        "{:?}",
        f.changes
    );
    assert!(
        f.changes["Databases"]
            .iter()
            .any(|l| l.contains("mint-replica-db-pre-rollback-1234abcd"))
    );
    assert_eq!(f.data_loss.len(), 1);
    assert_eq!(f.failures[0].0, "Smoke tests");
    assert_eq!(f.failures[0].1, "Rollback.SmokeFailed");
}

#[test]
fn rendered_report_has_every_section_and_neutralises_hostile_text() {
    let md = render(&analyse("exec-1", &sample()));
    for section in [
        "## Trigger",
        "## Decision",
        "## Timeline",
        "## Changes made",
        "## Data-loss window",
        "## Failures",
        "### Root cause",
        "### Impact",
        "### Lessons",
        "### Preventive measures",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
    assert!(md.contains("mint-replica-5xx"));
    assert!(md.contains("OK → ALARM"));
    assert!(md.contains("alice@example.com"));
    // The alarm reason's newline and pipe cannot break the Markdown table or lines.
    assert!(
        md.contains("Threshold &lt;b&gt;Crossed&lt;/b&gt; \\| injected"),
        "{md}"
    );
}

#[test]
fn history_reads_iso_timestamps_too() {
    let h: History = serde_json::from_value(json!({"events": [
        {"id": 1, "previousEventId": 0, "type": "ExecutionStarted", "timestamp": "2024-05-01T12:00:00.000Z",
         "executionStartedEventDetails": {"input": "{}"}}
    ]})).unwrap();
    let f = analyse("x", &h);
    assert_eq!(f.started.unwrap().to_rfc3339(), "2024-05-01T12:00:00+00:00");
    assert!(f.request.is_some(), "{{}} is a valid manual request");
}

#[test]
fn the_report_names_the_stored_plan_the_execution_ran() {
    let t0 = 1_714_564_800.0;
    let validated = json!({"plan": {"service": "mint-replica"}, "act": true,
        "request": {"trigger": {"kind": "manual"}, "reason": "r",
                    "plan_source": {"parameter": "/rollback/plans/mint-replica", "version": 4}}});
    let events = vec![
        event(
            1,
            "ExecutionStarted",
            t0,
            json!({"executionStartedEventDetails": {"input": r#"{"service": "mint-replica"}"#}}),
        ),
        entered(2, "Validate request", t0 + 1.0),
        exited(3, "Validate request", t0 + 2.0, validated),
    ];
    let history: History = serde_json::from_value(json!({"events": events})).unwrap();
    let f = analyse("manual-1", &history);
    assert_eq!(
        f.plan_source.as_ref().map(ToString::to_string).as_deref(),
        Some("/rollback/plans/mint-replica@4")
    );
    assert!(
        f.request.is_some(),
        "the start input names the service and is still read"
    );
    assert!(
        render(&f).contains("- **Plan:** `/rollback/plans/mint-replica@4`\n"),
        "{}",
        render(&f)
    );
    // An execution of an older stack (plan at deploy time) has no plan line.
    let f = analyse("alarm-1", &sample());
    assert!(f.plan_source.is_none());
    assert!(!render(&f).contains("**Plan:**"));
}

/// The history the execution's own report step reads ends with that step's scheduled event
/// (the notice and the end come after): the outcome is the one the step records, the
/// execution's error is listed as its `ExecutionFailed` event would list it, and the report
/// says when and by whom it was written. Once the end is in the history, the end wins.
#[test]
fn a_history_ending_at_the_report_step_takes_its_outcome() {
    let t0 = 1_714_564_800.0;
    let report_step = |id: i64, t: f64, outcome: &str, error: Value| {
        let mut payload = json!({"action": "report", "outcome": outcome, "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:m-rollback:e1",
                                 "execution": "e1", "plan": {"service": "s"}});
        if !error.is_null() {
            payload["error"] = error;
        }
        event(
            id,
            "TaskScheduled",
            t,
            json!({"taskScheduledEventDetails": {"resourceType": "lambda", "resource": "invoke",
                "parameters": json!({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:notify", "Payload": payload}).to_string()}}),
        )
    };
    let mut events = vec![
        event(
            1,
            "ExecutionStarted",
            t0,
            json!({"executionStartedEventDetails": {"input": "{}"}}),
        ),
        entered(2, "Swap databases", t0 + 1.0),
        event(
            3,
            "TaskFailed",
            t0 + 2.0,
            json!({"taskFailedEventDetails": {"error": "Rollback.SwapFailed", "cause": "rename refused"}}),
        ),
        entered(4, "Write the failure report", t0 + 90.0),
        report_step(
            5,
            t0 + 90.0,
            "failed",
            json!({"Error": "Rollback.SwapFailed", "Cause": "rename refused"}),
        ),
    ];
    let so_far: History = serde_json::from_value(json!({"events": events})).unwrap();
    let f = analyse("e1", &so_far);
    assert_eq!(f.status, "FAILED");
    assert_eq!(f.ended, None);
    assert_eq!(f.failures.len(), 2);
    assert_eq!(
        f.failures[1],
        (
            "(execution)".to_owned(),
            "Rollback.SwapFailed".to_owned(),
            "rename refused".to_owned()
        )
    );
    let md = render(&f);
    assert!(md.contains("- **Outcome:** FAILED\n"), "{md}");
    assert!(
        md.contains("- **Report written:** 2024-05-01 12:01:30 UTC (after 1 min 30 s), by the execution itself before its final notice"),
        "{md}"
    );
    assert!(!md.contains("**Ended:**"), "{md}");
    assert!(
        md.contains("| 12:01:30 | Write the failure report | (not exited) | 1 |"),
        "{md}"
    );

    // The whole history, as `rollbackctl report ARN` reads it after the end: its end event.
    events.push(exited(6, "Write the failure report", t0 + 91.0, json!({})));
    events.push(event(
        7,
        "ExecutionFailed",
        t0 + 92.0,
        json!({"executionFailedEventDetails": {"error": "Rollback.SwapFailed", "cause": "rename refused"}}),
    ));
    let whole: History = serde_json::from_value(json!({"events": events})).unwrap();
    let f = analyse("e1", &whole);
    assert_eq!(f.status, "FAILED");
    assert_eq!(f.report_written, None);
    assert_eq!(f.failures.len(), 2, "the end is listed once");
    let md = render(&f);
    assert!(md.contains("- **Ended:** "), "{md}");
    assert!(!md.contains("Report written"), "{md}");

    // A rejection's report: the execution will succeed.
    let rejected: History = serde_json::from_value(json!({"events": [
        event(1, "ExecutionStarted", t0, json!({"executionStartedEventDetails": {"input": "{}"}})),
        report_step(2, t0 + 5.0, "rejected", Value::Null),
    ]}))
    .unwrap();
    let f = analyse("e2", &rejected);
    assert_eq!(f.status, "SUCCEEDED");
    assert!(f.failures.is_empty());
}

/// A copy of the history kept in the report bucket has no task tokens; what the report says
/// does not change.
#[test]
fn task_tokens_are_removed_from_a_kept_history_and_the_report_is_unchanged() {
    let params = json!({"FunctionName": "notify", "Payload": {"action": "approval-request", "task_token": "AAAA-token",
        "nested": [{"TaskToken": "BBBB-token"}], "fingerprint": "f1"}});
    let mut history: History = serde_json::from_value(json!({"events": [
        event(1, "TaskScheduled", 1_714_564_800.0, json!({"taskScheduledEventDetails": {"resourceType": "lambda",
            "resource": "invoke.waitForTaskToken", "parameters": params.to_string()}}))
    ]}))
    .unwrap();
    let before = render(&analyse("e1", &history));
    assert!(history.events[0].redact_task_tokens());
    let text = serde_json::to_string(&history).unwrap();
    assert!(
        !text.contains("AAAA-token") && !text.contains("BBBB-token"),
        "{text}"
    );
    assert!(text.contains("f1"), "the rest of the parameters stay");
    assert!(
        !history.events[0].redact_task_tokens(),
        "nothing left to remove"
    );
    assert_eq!(render(&analyse("e1", &history)), before);
}

/// `rollbackctl report ARN --history FILE` (the history.json from the report bucket): the
/// report is titled by the execution, so it is the bucket's report.md byte for byte.
#[test]
fn report_from_a_saved_history_is_titled_by_the_execution_arn() {
    let dir = std::env::temp_dir().join(format!("rollbackctl-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.json");
    std::fs::write(&path, serde_json::to_string(&sample()).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollbackctl"))
        .args([
            "report",
            "arn:aws:states:us-east-1:123456789012:execution:mint-replica-rollback:alarm-1",
            "--history",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, render(&analyse("alarm-1", &sample())));
    assert!(text.starts_with("# Rollback report: alarm-1\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
