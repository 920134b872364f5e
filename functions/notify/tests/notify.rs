//! notify against moto: messages are published to SNS and read back through an SQS queue
//! subscribed with RawMessageDelivery (moto's /moto-api/data.json breaks once RDS resources
//! exist, so it is not used).

mod common;

use chrono::Utc;
use common::*;
use rollback_core::approval_link::{Decision, LinkKey};
use rollback_core::request::Scope;
use rollback_fault_proxy::gate::test_stack;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_notify::{Config, handle};
use serde_json::{Value, json};

fn plan() -> Value {
    json!({
        "service": "mint-replica",
        "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}],
        "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
        "cluster": {"name": "mint-eks", "namespace": "mint", "deployments": ["backend-deployment"]},
        "approval": {"timeout_minutes": 60, "escalate_after_minutes": 15}
    })
}

fn request() -> Value {
    json!({
        "trigger": {"kind": "alarm", "alarm_name": "mint-replica-5xx", "state": "ALARM",
                    "previous_state": "OK", "state_changed_at": "2024-05-01T12:31:00Z",
                    "state_reason": "Threshold Crossed: 5xx > 10 <b>bold</b>\u{1b}[31m"},
        "reason": "5xx after release v42",
        "scope": "app+database"
    })
}

const BAD: &str = "sha256:badbadbadbad0000000000000000000000000000000000000000000000000000";
const GOOD: &str = "sha256:600d600d600d1111111111111111111111111111111111111111111111111111";

fn resolved(hostile_note: &str) -> Value {
    json!({
        "databases": [{
            "database": "mint-replica-db", "kind": "rds-instance",
            "snapshot_id": "predeploy-mint-replica-v42-mint-replica-db",
            "snapshot_created_at": "2024-05-01T11:02:00Z", "snapshot_type": "manual",
            "release": "v42",
            "data_loss": {"from": "2024-05-01T11:02:00Z", "to": "2024-05-01T12:30:00Z",
                          "seconds": 5280, "summary": "…"}
        }],
        "images": [{
            "repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable",
            "stable_digest": GOOD, "release_digest": BAD, "retag_needed": true,
            "immutable_tags": false, "note": hostile_note
        }],
        "deployments": [{
            "name": "backend-deployment", "namespace": "mint", "current_revision": 7,
            "target_revision": 6, "current_images": ["repo/backend@sha256:bad"],
            "target_images": ["repo/backend@sha256:good"], "replicas": 3
        }]
    })
}

fn links(body: &str) -> Vec<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("http://approve.test/"))
        .map(str::to_owned)
        .collect()
}

fn token_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "t")
        .unwrap()
        .1
        .into_owned()
}

fn assert_clean(body: &str) {
    for c in body.chars() {
        assert!(
            c == '\n' || !c.is_control(),
            "control character {c:?} in {body}"
        );
    }
    assert!(!body.contains('\u{202E}'));
}

#[tokio::test]
async fn approval_request_renders_the_plan_and_signed_links() {
    let gate = gate(&test_stack("notify-approval"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-approval-approvals", Delivery::Raw)
        .await;
    let key = LinkKey::generate();
    let config = Config::local(&topic_arn, "http://approve.test/approval", key.clone());
    let token = "AAAAKgAAAAIAAAAAAAAAAQ-very-secret-task-token";
    let hostile = format!(
        "<script>alert(1)</script>\u{1b}[2J\u{202E}evil\r\nInjected: header {}",
        "A".repeat(100_000)
    );
    let out = handle(
        &clients(&gate),
        &config,
        json!({
            "action": "approval-request",
            "task_token": token,
            "resolved": resolved(&hostile),
            "fingerprint": "f1ngerprint",
            "started_at": "2024-05-01T12:32:00Z",
            "plan": plan(), "request": request(), "execution": "exec-approval-1"
        }),
    )
    .await
    .unwrap();
    let subject = out["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        "[rollback] APPROVAL NEEDED: mint-replica (alarm mint-replica-5xx)"
    );
    assert!(subject.len() < 100);
    assert_eq!(out["topic_arn"], json!(topic_arn));

    let body = MotoServer::shared().next_message(&queue).await;
    println!("{body}");
    assert_clean(&body);
    assert!(
        body.len() < 20_000,
        "hostile note not bounded: {}",
        body.len()
    );
    assert!(!body.contains(token), "task token leaked into the mail");
    for expected in [
        "Service:    mint-replica",
        "alarm mint-replica-5xx went ALARM at 2024-05-01 12:31:00 UTC",
        "Reason:     5xx after release v42",
        "predeploy-mint-replica-v42-mint-replica-db taken 2024-05-01 11:02:00 UTC",
        "DATA LOSS: writes from 2024-05-01 11:02:00 UTC to 2024-05-01 12:30:00 UTC (1 h 28 min)",
        "mint-replica-backend:prod  sha256:badbadbadbad -> sha256:600d600d600d (stable)",
        "mint/backend-deployment: revision 7 -> 6 (3 replicas)",
        "Plan fingerprint: f1ngerprint",
        "Approve app + database:",
        "Approve app only:",
        "Reject:",
    ] {
        assert!(body.contains(expected), "missing {expected:?}");
    }
    // The deterministic backup names are announced before anything happens.
    let exec = rollback_core::ExecutionId::new("exec-approval-1");
    assert!(body.contains(&rollback_core::ids::aside_identifier(
        "mint-replica-db",
        &exec
    )));

    let urls = links(&body);
    assert_eq!(urls.len(), 3, "{urls:?}");
    let opened: Vec<_> = urls
        .iter()
        .map(|u| key.open(&token_of(u), Utc::now()).unwrap())
        .collect();
    assert_eq!(
        opened
            .iter()
            .map(|p| (p.decision, p.scope))
            .collect::<Vec<_>>(),
        vec![
            (Decision::Approve, Scope::APP_AND_DATABASE),
            (Decision::Approve, Scope::APP),
            (Decision::Reject, Scope::APP)
        ]
    );
    for p in &opened {
        assert_eq!(p.task_token, token);
        assert_eq!(p.fingerprint, "f1ngerprint");
        assert_eq!(p.execution, "exec-approval-1");
        assert_eq!(p.summary.service, "mint-replica");
        // Default expiry: the plan's approval timeout.
        let minutes = (p.expires_at() - Utc::now()).num_minutes();
        assert!((58..=60).contains(&minutes), "{minutes}");
    }
    assert!(opened[0].summary.lines[0].starts_with("restore database mint-replica-db"));
    assert!(opened[1].summary.lines[0].starts_with("databases NOT restored"));
}

/// The plan's approver rules travel sealed in each link (two people for the database link,
/// one for app-only and reject; the manual starter named on approvals), and the mail says who
/// decides and that identity is self-asserted.
#[tokio::test]
async fn approval_links_carry_the_plans_approver_rules_and_the_mail_says_who_decides() {
    let gate = gate(&test_stack("notify-approvers"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-approvers-approvals", Delivery::Raw)
        .await;
    let key = LinkKey::generate();
    let config = Config::local(&topic_arn, "http://approve.test/approval", key.clone());
    let mut plan = plan();
    plan["approval"]["approvers"] = json!(["Oncall@Example.com", "dba@example.com", "group:SRE"]);
    plan["approval"]["database_approvers"] = json!(2);
    plan["approval"]["starter_may_approve_alone"] = json!(false);
    let request = json!({
        "trigger": {"kind": "manual", "requested_by": "Dev@Example.com"},
        "reason": "bad migration", "scope": "app+database"
    });
    handle(
        &clients(&gate),
        &config,
        json!({
            "action": "approval-request", "task_token": "token", "resolved": resolved(""),
            "plan": plan, "request": request, "execution": "exec-approvers-1"
        }),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    for expected in [
        "WHO DECIDES",
        "Only: Oncall@Example.com, dba@example.com, group:SRE. Others are refused.",
        "App + database needs 2 different people to approve",
        "dev@example.com started this rollback and may not approve it alone.",
        "identity is self-asserted",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in {body}");
    }
    let opened: Vec<_> = links(&body)
        .iter()
        .map(|u| key.open(&token_of(u), Utc::now()).unwrap())
        .collect();
    let rules: Vec<_> = opened
        .iter()
        .map(|p| (p.decision, p.scope, p.rules.needed, p.rules.starter.clone()))
        .collect();
    let dev = Some("dev@example.com".to_owned());
    assert_eq!(
        rules,
        [
            (Decision::Approve, Scope::APP_AND_DATABASE, 2, dev.clone()),
            (Decision::Approve, Scope::APP, 1, dev),
            (Decision::Reject, Scope::APP, 1, None),
        ]
    );
    for p in &opened {
        assert_eq!(
            p.rules.approvers,
            ["oncall@example.com", "dba@example.com", "group:SRE"]
        );
    }
}

#[tokio::test]
async fn without_databases_there_is_no_database_approval() {
    let gate = gate(&test_stack("notify-approval-nodb"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-approval-nodb-approvals", Delivery::Raw)
        .await;
    let key = LinkKey::generate();
    let config = Config::local(&topic_arn, "http://approve.test/", key.clone());
    let mut resolved = resolved("");
    resolved["databases"] = json!([]);
    let mut plan = plan();
    plan["databases"] = json!([]);
    handle(
        &clients(&gate),
        &config,
        json!({"action": "approval-request", "task_token": "tok", "resolved": resolved,
               "plan": plan, "execution": "exec-approval-2"}),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(!body.contains("Approve app + database"));
    let urls = links(&body);
    assert_eq!(urls.len(), 2);
    // Without an explicit fingerprint the links carry the resolved plan's.
    let p = key.open(&token_of(&urls[0]), Utc::now()).unwrap();
    let parsed: rollback_core::contract::notify::ResolvedPlan =
        serde_json::from_value(resolved).unwrap();
    assert_eq!(
        p.fingerprint,
        rollback_core::fingerprint::fingerprint(&parsed)
    );
}

#[tokio::test]
async fn failure_is_a_contingency_notice() {
    let gate = gate(&test_stack("notify-failure"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-failure-notices", Delivery::Raw)
        .await;
    let config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    let out = handle(
        &clients(&gate),
        &config,
        json!({
            "action": "failure",
            "error": {"Error": "Rollback.SwapFailed",
                      "Cause": "{\"errorType\":\"Rollback.SwapFailed\",\"errorMessage\":\"renaming mint-replica-db-restored-1 to mint-replica-db failed: InvalidDBInstanceState\"}"},
            "progress": {
                "steps": [
                    {"name": "backup snapshot", "status": "done", "detail": "rollback-mint-replica-x-mint-replica-db available"},
                    {"name": "restore", "status": "done"},
                    {"name": "swap", "status": "failed", "detail": "second rename failed"},
                    {"name": "retag", "status": "not-started"},
                    {"name": "undo deployments", "status": "not-started"}
                ],
                "resources": [
                    {"resource": "rds-instance mint-replica-db", "state": "missing (renamed aside)"},
                    {"resource": "rds-instance mint-replica-db-pre-rollback-x", "state": "available (the previous live database)"}
                ],
                "backups": [{"database": "mint-replica-db", "snapshot_id": "rollback-mint-replica-x-mint-replica-db",
                             "aside_id": "mint-replica-db-pre-rollback-x"}]
            },
            "plan": plan(), "request": request(), "execution": "exec-failure-1"
        }),
    )
    .await
    .unwrap();
    assert!(
        out["subject"]
            .as_str()
            .unwrap()
            .starts_with("[rollback] FAILED: mint-replica - manual action needed")
    );
    let body = MotoServer::shared().next_message(&queue).await;
    println!("{body}");
    assert_clean(&body);
    let completed = body.find("WHAT COMPLETED").unwrap();
    let not_done = body.find("WHAT DID NOT").unwrap();
    let state = body.find("STATE OF EACH RESOURCE").unwrap();
    let backups = body.find("WHERE THE BACKUPS ARE").unwrap();
    let next = body.find("NEXT MANUAL STEP").unwrap();
    assert!(completed < not_done && not_done < state && state < backups && backups < next);
    assert!(body[completed..not_done].contains("[done] restore"));
    assert!(body[not_done..state].contains("[FAILED] swap: second rename failed"));
    assert!(body[not_done..state].contains("[not started] retag"));
    assert!(body[state..backups].contains("mint-replica-db-pre-rollback-x: available"));
    assert!(body[backups..next].contains(
        "mint-replica-db: snapshot rollback-mint-replica-x-mint-replica-db; previous database kept as mint-replica-db-pre-rollback-x"
    ));
    let exec = rollback_core::ExecutionId::new("exec-failure-1");
    let aside = rollback_core::ids::aside_identifier("mint-replica-db", &exec);
    assert!(body[next..].contains(&format!("rename {aside} back to mint-replica-db")));
    // The Lambda error's message, not its JSON wrapper.
    assert!(
        body.contains("Cause:      renaming mint-replica-db-restored-1 to mint-replica-db failed")
    );
}

#[tokio::test]
async fn failure_without_a_record_still_says_where_backups_would_be() {
    let gate = gate(&test_stack("notify-failure-bare"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-failure-bare-notices", Delivery::Raw)
        .await;
    let config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    handle(
        &clients(&gate),
        &config,
        json!({"action": "failure", "error": {"Error": "States.Timeout", "Cause": "x"},
               "plan": plan(), "request": request(), "execution": "exec-failure-2"}),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    let exec = rollback_core::ExecutionId::new("exec-failure-2");
    assert!(body.contains(&rollback_core::ids::rollback_snapshot_id(
        "mint-replica",
        &exec,
        "mint-replica-db"
    )));
    assert!(body.contains("not reported"));
    assert!(body.contains("WHAT COMPLETED\n  nothing"));
}

#[tokio::test]
async fn progress_success_and_escalation() {
    let gate = gate(&test_stack("notify-progress"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-progress-notices", Delivery::Raw)
        .await;
    let (escalation_arn, escalation_queue) = MotoServer::shared()
        .topic_with_queue("notify-progress-escalations", Delivery::Raw)
        .await;
    let mut config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    config.escalation_topic_arn = Some(escalation_arn);

    let out = handle(
        &clients(&gate),
        &config,
        json!({"action": "progress", "stage": "restoring databases",
               "message": "restore of mint-replica-db started",
               "plan": plan(), "request": request(), "execution": "exec-p"}),
    )
    .await
    .unwrap();
    assert_eq!(
        out["subject"],
        json!("[rollback] mint-replica: restoring databases")
    );
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(body.contains("restore of mint-replica-db started"));

    let started = (Utc::now() - chrono::Duration::minutes(42)).to_rfc3339();
    handle(
        &clients(&gate),
        &config,
        json!({"action": "success", "resolved": resolved("n"), "started_at": started,
               "decision": {"decision": "approve", "scope": "app", "approver": "oncall@example.com",
                            "decided_at": "2024-05-01T12:40:00Z", "fingerprint": "f"},
               "smoke": {"passed": true, "started_at": "2024-05-01T13:00:00Z", "elapsed_ms": 40,
                         "budget_exhausted": false, "summary": "all 1 checks passed",
                         "checks": [{"kind": "http", "name": "api health", "passed": true,
                                     "elapsed_ms": 12, "attempts": 1, "reason": "200 OK in 12 ms"}]},
               "plan": plan(), "request": request(), "execution": "exec-p"}),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    println!("{body}");
    assert!(body.contains("finished and the smoke tests passed"));
    assert!(body.contains("Took:       42 min"));
    assert!(body.contains("Approved:   by oncall@example.com"));
    assert!(body.contains("Databases: not restored (approved for app only)."));
    assert!(!body.contains("restored from snapshot"));
    assert!(body.contains("[pass] http api health: 200 OK in 12 ms"));

    let requested = (Utc::now() - chrono::Duration::minutes(16)).to_rfc3339();
    let out = handle(
        &clients(&gate),
        &config,
        json!({"action": "escalate", "requested_at": requested,
               "plan": plan(), "request": request(), "execution": "exec-p"}),
    )
    .await
    .unwrap();
    assert_eq!(
        out["subject"],
        json!("[rollback] ESCALATION: mint-replica approval pending 16 min")
    );
    let body = MotoServer::shared().next_message(&escalation_queue).await;
    assert!(body.contains("waiting for approval for 16 min"));
    assert!(
        MotoServer::shared().queue_is_empty(&queue).await,
        "escalation went to the main topic"
    );
}

#[tokio::test]
async fn missing_configuration_is_invalid_input() {
    let gate = gate(&test_stack("notify-missing"));
    let config = Config {
        topic_arn: None,
        escalation_topic_arn: None,
        approval_url: None,
        key: rollback_core::approval_link::KeyCache::with_key(LinkKey::generate()),
        report_bucket: None,
        report_prefix: rollback_notify::report::DEFAULT_PREFIX.into(),
        report_part_size: rollback_notify::report::PART_SIZE,
        approval_login: false,
        channels: Default::default(),
    };
    let err = handle(
        &clients(&gate),
        &config,
        json!({"action": "progress", "stage": "x", "plan": plan(), "execution": "e"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.InvalidInput");
    assert!(err.to_string().contains("ROLLBACK_TOPIC_ARN"));
    let err = handle(
        &clients(&gate),
        &config,
        json!({"action": "approval-request", "task_token": "t", "plan": plan(), "execution": "e"}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("ROLLBACK_APPROVAL_URL"), "{err}");
    // Unknown fields are typos, not ignored.
    let err = handle(
        &clients(&gate),
        &config,
        json!({"action": "progress", "stage": "x", "stgae": "y", "plan": plan(), "execution": "e"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.InvalidInput", "{err}");
}

#[tokio::test]
async fn the_key_comes_from_secrets_manager() {
    let (bytes, key_arn) = MotoServer::shared()
        .link_key_secret("notify-key-approval-link-key")
        .await;
    // The stack's link key is that secret, and notify is given its ARN (`!Ref ApprovalLinkKey`).
    let gate = gate(&test_stack("notify-key").resource("ApprovalLinkKey", &key_arn, &[]));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-key-approvals", Delivery::Raw)
        .await;
    let config = Config {
        topic_arn: Some(topic_arn),
        escalation_topic_arn: None,
        approval_url: Some("http://approve.test/".into()),
        key: rollback_core::approval_link::KeyCache::new(key_arn.as_str()),
        report_bucket: None,
        report_prefix: rollback_notify::report::DEFAULT_PREFIX.into(),
        report_part_size: rollback_notify::report::PART_SIZE,
        approval_login: false,
        channels: Default::default(),
    };
    handle(
        &clients(&gate),
        &config,
        json!({"action": "approval-request", "task_token": "tok", "resolved": resolved(""),
               "plan": plan(), "execution": "e-key"}),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    let url = &links(&body)[0];
    let opened = LinkKey::from_bytes(&bytes)
        .open(&token_of(url), Utc::now())
        .unwrap();
    assert_eq!(opened.task_token, "tok");

    // The stack's link key does not exist: the role may read it, and AWS says it is not there.
    let no_key = common::gate(&test_stack("notify-no-key"));
    let missing = Config {
        key: rollback_core::approval_link::KeyCache::new(MISSING_KEY_ARN),
        ..config
    };
    let err = handle(
        &clients(&no_key),
        &missing,
        json!({"action": "approval-request", "task_token": "tok", "plan": plan(), "execution": "e"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.AwsError", "{err}");
}

/// The link key of `test_stack("notify-no-key")`, never created.
const MISSING_KEY_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:notify-no-key-approval-link-key-AbCdEf";

/// A database with read replicas: the approval email says they stay with the database moved
/// aside, that they will not follow the restored copy, what to do, and the exact commands.
#[tokio::test]
async fn approval_request_warns_about_read_replicas() {
    let gate = gate(&test_stack("notify-approval-replicas"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-approval-replicas-approvals", Delivery::Raw)
        .await;
    let key = LinkKey::generate();
    let config = Config::local(&topic_arn, "http://approve.test/approval", key);
    let mut with_replicas = resolved("note");
    with_replicas["databases"][0]["read_replicas"] = json!(["mint-replica-db-reader"]);
    // Chosen from an AWS Backup recovery point: the email says so in words.
    with_replicas["databases"][0]["snapshot_id"] =
        json!("awsbackup:job-be59cf2a-2343-4402-bd8b-226993d23453");
    with_replicas["databases"][0]["snapshot_type"] = json!("awsbackup");
    handle(
        &clients(&gate),
        &config,
        json!({
            "action": "approval-request",
            "task_token": "token-replicas",
            "resolved": with_replicas,
            "plan": plan(), "request": request(), "execution": "exec-approval-replicas"
        }),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert_clean(&body);
    let exec = rollback_core::ExecutionId::new("exec-approval-replicas");
    let aside = rollback_core::ids::aside_identifier("mint-replica-db", &exec);
    let new = format!("mint-replica-db-reader-{}", exec.short());
    // One paragraph, wrapped however the mail client likes: compare with whitespace folded.
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        format!(
            "READ REPLICAS: mint-replica-db has read replicas mint-replica-db-reader: they stay \
             attached to the database moved aside ({aside}) and will NOT follow the restored \
             copy; after the rollback create new replicas of mint-replica-db and repoint \
             readers, then delete the old replicas. Recreating replicas is not automated"
        ),
        format!(
            "aws rds create-db-instance-read-replica --db-instance-identifier {new} \
             --source-db-instance-identifier mint-replica-db"
        ),
        format!("aws rds wait db-instance-available --db-instance-identifier {new}"),
        "aws rds delete-db-instance --db-instance-identifier mint-replica-db-reader \
         --skip-final-snapshot"
            .to_owned(),
        "restore from snapshot awsbackup:job-be59cf2a-2343-4402-bd8b-226993d23453 taken \
         2024-05-01 11:02:00 UTC (AWS Backup recovery point, release v42)"
            .to_owned(),
    ] {
        assert!(
            folded.contains(&expected),
            "missing {expected:?} in\n{body}"
        );
    }

    // Without replicas, no warning.
    handle(
        &clients(&gate),
        &config,
        json!({
            "action": "approval-request",
            "task_token": "token-no-replicas",
            "resolved": resolved("note"),
            "plan": plan(), "request": request(), "execution": "exec-approval-replicas"
        }),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(!body.contains("READ REPLICAS"), "{body}");
}

#[tokio::test]
async fn approval_request_shows_the_point_in_time_and_its_data_loss_window() {
    let gate = gate(&test_stack("notify-approval-pitr"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-approval-pitr-approvals", Delivery::Raw)
        .await;
    let config = Config::local(
        &topic_arn,
        "http://approve.test/approval",
        LinkKey::generate(),
    );
    let mut pitr = resolved("note");
    pitr["databases"][0] = json!({
        "database": "mint-replica-db", "kind": "rds-instance",
        "snapshot_id": "point-in-time:2024-05-01T11:47:13Z",
        "snapshot_created_at": "2024-05-01T11:47:13Z", "snapshot_type": "point-in-time",
        "method": "point-in-time", "restore_time": "2024-05-01T11:47:13Z",
        "restorable_window": {"latest": "2024-05-01T12:25:00Z",
                              "earliest_bound": "2024-04-24T12:30:00Z",
                              "note": "RDS reported no earliest restorable time"},
        "data_loss": {"from": "2024-05-01T11:47:13Z", "to": "2024-05-01T12:30:00Z",
                      "seconds": 2567, "summary": "…"}
    });
    handle(
        &clients(&gate),
        &config,
        json!({
            "action": "approval-request",
            "task_token": "token-pitr",
            "resolved": pitr,
            "plan": plan(), "request": request(), "execution": "exec-approval-pitr"
        }),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert_clean(&body);
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "restore to point in time 2024-05-01 11:47:13 UTC",
        "unknown (not before 2024-04-24 12:30:00 UTC) to 2024-05-01 12:25:00 UTC",
        "DATA LOSS: writes from 2024-05-01 11:47:13 UTC to 2024-05-01 12:30:00 UTC (42 min 47 s) \
         are not in the copy restored to that point in time",
    ] {
        assert!(folded.contains(expected), "missing {expected:?} in\n{body}");
    }
    assert!(!folded.contains("snapshot point-in-time:"), "{body}");
}
