//! The plan and request documents: the example validates, and every bad case names its field.

use rollback_core::plan::DatabaseKind;
use rollback_core::request::{AlarmState, Trigger};
use rollback_core::{Mode, Plan, RollbackRequest, Scope};
use serde_json::{Value, json};

fn example() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/plans/mint-replica.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn errors_of(plan: Value) -> Vec<(String, String)> {
    Plan::from_value(plan)
        .expect_err("plan should be rejected")
        .iter()
        .map(|e| (e.path.clone(), e.message.clone()))
        .collect()
}

fn assert_rejects(mutate: impl FnOnce(&mut Value), path: &str, says: &str) {
    let mut plan = example();
    mutate(&mut plan);
    let errors = errors_of(plan);
    assert!(
        errors.iter().any(|(p, m)| p == path && m.contains(says)),
        "expected an error at {path} saying {says:?}, got {errors:?}"
    );
}

#[test]
fn example_plan_validates() {
    let plan = Plan::from_value(example()).unwrap();
    assert_eq!(plan.service, "mint-replica");
    assert_eq!(plan.databases[1].kind, DatabaseKind::DocdbCluster);
    assert_eq!(plan.polling.max_polls(), 240);
    assert_eq!(plan.smoke.max_settle_minutes, 30);
}

#[test]
fn an_action_selects_its_databases_by_id_and_names_a_bad_entry() {
    let plan = Plan::from_value(example()).unwrap();
    let ids = |filter: Option<&[String]>| -> Vec<(usize, String)> {
        let selected = plan.select_databases(filter).unwrap();
        selected
            .into_iter()
            .map(|(i, d)| (i, d.id.clone()))
            .collect()
    };
    assert_eq!(
        ids(None),
        [
            (0, "mint-replica-db".into()),
            (1, "mint-replica-docs".into())
        ]
    );
    // The plan's index stays with each database, for error paths.
    assert_eq!(
        ids(Some(&["mint-replica-docs".into()])),
        [(1, "mint-replica-docs".into())]
    );
    let unknown = plan
        .select_databases(Some(&["mint-replica-docs".into(), "orders".into()]))
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains(
            "databases[1]: \"orders\" is not one of the plan's databases \
             (mint-replica-db, mint-replica-docs)"
        ),
        "{unknown}"
    );
    let empty = plan.select_databases(Some(&[])).unwrap_err().to_string();
    assert!(
        empty.contains("databases: the list is empty; omit it"),
        "{empty}"
    );
}

#[test]
fn unknown_field_is_named_with_its_path() {
    assert_rejects(
        |p| p["databases"][1]["engine"] = json!("docdb"),
        "databases[1].engine",
        "unknown field `engine`",
    );
    assert_rejects(
        |p| p["colour"] = json!("red"),
        "colour",
        "unknown field `colour`",
    );
}

#[test]
fn bad_database_kind_lists_the_valid_kinds() {
    assert_rejects(
        |p| p["databases"][1]["kind"] = json!("mongo"),
        "databases[1].kind",
        "expected one of `rds-instance`, `aurora-cluster`, `docdb-cluster`",
    );
}

#[test]
fn identifier_rules() {
    assert_rejects(
        |p| p["databases"][0]["id"] = json!("1db"),
        "databases[0].id",
        "start with a letter",
    );
    assert_rejects(
        |p| p["databases"][0]["id"] = json!("db--x"),
        "databases[0].id",
        "consecutive hyphens",
    );
    assert_rejects(
        |p| p["databases"][0]["id"] = json!("a".repeat(64)),
        "databases[0].id",
        "1-63",
    );
    assert_rejects(
        |p| p["images"][0]["repository"] = json!("Upper"),
        "images[0].repository",
        "lowercase",
    );
    assert_rejects(
        |p| p["images"][1]["stable_tag"] = json!("-x"),
        "images[1].stable_tag",
        "do not start with",
    );
    assert_rejects(
        |p| p["images"][0]["stable_tag"] = json!("prod"),
        "images[0].stable_tag",
        "differ from release_tag",
    );
    assert_rejects(
        |p| p["cluster"]["namespace"] = json!("Mint"),
        "cluster.namespace",
        "DNS-1123",
    );
    assert_rejects(
        |p| p["cluster"]["deployments"][1] = json!("Bad_Name"),
        "cluster.deployments[1]",
        "DNS-1123",
    );
    assert_rejects(
        |p| p["cluster"]["deployments"] = json!([]),
        "cluster.deployments",
        "at least one",
    );
    assert_rejects(
        |p| p["service"] = json!("Mint Replica"),
        "service",
        "lowercase",
    );
}

#[test]
fn duplicates_and_list_limits() {
    assert_rejects(
        |p| p["databases"][1] = json!({"kind": "rds-instance", "id": "mint-replica-db"}),
        "databases[1].id",
        "listed twice",
    );
    assert_rejects(
        |p| p["smoke"]["alarms"] = json!((0..21).map(|i| format!("a{i}")).collect::<Vec<_>>()),
        "smoke.alarms",
        "at most 20",
    );
}

#[test]
fn smoke_checks_are_checked() {
    assert_rejects(
        |p| p["smoke"]["http"][0]["url"] = json!("ftp://x"),
        "smoke.http[0].url",
        "http(s) URL",
    );
    assert_rejects(
        |p| p["smoke"]["http"][0]["body_regex"] = json!("("),
        "smoke.http[0].body_regex",
        "regex",
    );
    assert_rejects(
        |p| p["smoke"]["http"][0]["expect_status"] = json!(42),
        "smoke.http[0].expect_status",
        "100-599",
    );
    assert_rejects(
        |p| p["smoke"]["sql"][0]["database"] = json!("other"),
        "smoke.sql[0].database",
        "mint-replica-db",
    );
    assert_rejects(
        |p| {
            let probe = p["smoke"]["sql"][0].as_object_mut().unwrap();
            probe.remove("expect_rows");
            probe.remove("compare");
        },
        "smoke.sql[0].expect_rows",
        "cannot fail",
    );
}

#[test]
fn sql_comparisons_and_baselines_are_checked() {
    let plan = Plan::from_value(example()).unwrap();
    let accounts = &plan.smoke.sql[1];
    assert!(accounts.records_baseline());
    assert_eq!(
        accounts.compare.as_ref().unwrap().op,
        rollback_core::plan::CompareOp::Ge
    );
    // Comparisons travel in the state: they share the smoke checks' detail budget.
    let compares: usize = plan
        .smoke
        .sql
        .iter()
        .filter_map(|p| p.compare.as_ref())
        .map(|c| serde_json::to_vec(c).unwrap().len())
        .sum();
    assert!(compares > 0);
    assert_eq!(plan.smoke.detail_bytes(), compares);
    // A value instead of a baseline: fine; both, or neither, are not.
    let mut ok = example();
    ok["smoke"]["sql"][1]["compare"] = json!({"op": "lt", "value": 2.5});
    Plan::from_value(ok).unwrap();
    assert_rejects(
        |p| p["smoke"]["sql"][1]["compare"]["value"] = json!(1),
        "smoke.sql[1].compare",
        "not both",
    );
    assert_rejects(
        |p| p["smoke"]["sql"][1]["compare"] = json!({"op": "ge"}),
        "smoke.sql[1].compare",
        "pre-deploy-snapshot",
    );
    // Unknown operators and baselines are refused by name.
    for (compare, says) in [
        (json!({"op": ">=", "value": 1}), "unknown variant"),
        (
            json!({"op": "ge", "baseline": "yesterday"}),
            "pre-deploy-snapshot",
        ),
    ] {
        let mut plan = example();
        plan["smoke"]["sql"][1]["compare"] = compare;
        let errors = format!("{:?}", errors_of(plan));
        assert!(
            errors.contains("smoke.sql[1].compare") && errors.contains(says),
            "{errors}"
        );
    }
    // A baseline is a snapshot tag: its probe's name must fit an RDS tag key, once per database.
    assert_rejects(
        |p| p["smoke"]["sql"][1]["name"] = json!("accounts (all)"),
        "smoke.sql[1].name",
        "rollback:baseline:<name>",
    );
    assert_rejects(
        |p| p["smoke"]["sql"][1]["name"] = json!("schema version"),
        "smoke.sql[1].name",
        "same name",
    );
    // A probe without a baseline may use any check name.
    let mut ok = example();
    ok["smoke"]["sql"][2]["name"] = json!("ledger (balanced)");
    Plan::from_value(ok).unwrap();
}

#[test]
fn the_infrastructure_section_names_valid_aws_resources() {
    let mut ok = example();
    ok["infrastructure"] = json!({
        "codebuild_project": "mint-replica-terraform",
        "stable_commit_parameter": "/mint-replica/terraform/stable-commit",
        "artifact_bucket": "mint-replica-terraform-plans"
    });
    let plan = Plan::from_value(ok).unwrap();
    let infrastructure = plan.infrastructure.unwrap();
    assert_eq!(infrastructure.artifact_prefix, "rollback-plans");
    assert!(
        infrastructure
            .protected_types
            .contains(&"aws_db_instance".to_owned())
    );
    for (field, bad, says) in [
        (
            "codebuild_project",
            json!("has space"),
            "CodeBuild project names",
        ),
        (
            "stable_commit_parameter",
            json!("a b"),
            "SSM parameter names",
        ),
        ("artifact_bucket", json!("Upper_Bucket"), "S3 bucket names"),
        (
            "artifact_prefix",
            json!("/leading"),
            "without leading or trailing /",
        ),
        (
            "protected_types",
            json!(["aws_db_instance", "DROP TABLE"]),
            "Terraform resource type",
        ),
    ] {
        let path = if field == "protected_types" {
            "infrastructure.protected_types[1]".to_owned()
        } else {
            format!("infrastructure.{field}")
        };
        assert_rejects(
            |p| {
                p["infrastructure"] = json!({
                    "codebuild_project": "mint-replica-terraform",
                    "stable_commit_parameter": "/mint-replica/terraform/stable-commit",
                    "artifact_bucket": "mint-replica-terraform-plans"
                });
                p["infrastructure"][field] = bad.clone();
            },
            &path,
            says,
        );
    }
}

#[test]
fn approver_rules_are_checked() {
    assert_rejects(
        |p| p["approval"]["database_approvers"] = json!(0),
        "approval.database_approvers",
        "use 1-3",
    );
    assert_rejects(
        |p| p["approval"]["database_approvers"] = json!(4),
        "approval.database_approvers",
        "use 1-3",
    );
    assert_rejects(
        |p| p["approval"]["approvers"] = json!(["oncall@example.com", "Jane Doe"]),
        "approval.approvers[1]",
        "neither an email address nor `group:<value>`",
    );
    assert_rejects(
        |p| p["approval"]["approvers"] = json!(["group:"]),
        "approval.approvers[0]",
        "group:<value>",
    );
    // Two people needed, one listed (case does not make a second person).
    assert_rejects(
        |p| {
            p["approval"]["database_approvers"] = json!(2);
            p["approval"]["approvers"] = json!(["a@example.com", "A@example.com"]);
        },
        "approval.approvers",
        "lists 1 distinct people, but a decision may need 2",
    );
    let mut ok = example();
    ok["approval"]["database_approvers"] = json!(2);
    ok["approval"]["starter_may_approve_alone"] = json!(false);
    ok["approval"]["approvers"] = json!(["a@example.com", "b@example.com", "c@example.com"]);
    let plan = Plan::from_value(ok.clone()).unwrap();
    assert_eq!(plan.approval.approvals_needed(Scope::APP_AND_DATABASE), 2);
    assert_eq!(plan.approval.approvals_needed(Scope::APP), 1);
    // A group may hold any number of people.
    ok["approval"]["approvers"] = json!(["group:sre-oncall"]);
    Plan::from_value(ok).unwrap();
}

#[test]
fn policies_are_bounded() {
    assert_rejects(
        |p| p["approval"]["escalate_after_minutes"] = json!(90),
        "approval.escalate_after_minutes",
        "less than approval.timeout_minutes",
    );
    assert_rejects(
        |p| p["polling"]["interval_seconds"] = json!(0),
        "polling.interval_seconds",
        "1-3600",
    );
    assert_rejects(
        |p| p["smoke"]["max_settle_minutes"] = json!(0),
        "smoke.max_settle_minutes",
        "1-120 minutes",
    );
}

#[test]
fn polling_limits_past_the_history_budget_are_refused_naming_the_fields() {
    // 15 s polls for 90 minutes, each status check one look: six loops at their limit would
    // write ≈ 25,000 events.
    let one_look =
        json!({"interval_seconds": 15, "max_wait_minutes": 90, "status_wait_seconds": 0});
    assert_rejects(
        |p| p["polling"] = one_look.clone(),
        "polling",
        "lower polling.max_wait_minutes to at most 68",
    );
    assert_rejects(
        |p| p["polling"] = one_look.clone(),
        "polling",
        "raise polling.interval_seconds to at least",
    );
    // Checks that keep looking 240 s (the default) take 90 minutes in 21 iterations; the
    // acting loops (swap, put-back) still poll every interval and bound the wait at 185.
    let mut plan = example();
    plan["polling"] = json!({"interval_seconds": 15, "max_wait_minutes": 90});
    Plan::from_value(plan).unwrap();
    assert_rejects(
        |p| p["polling"] = json!({"interval_seconds": 15, "max_wait_minutes": 186}),
        "polling",
        "lower polling.max_wait_minutes to at most 185",
    );
    assert_rejects(
        |p| p["polling"] = json!({"interval_seconds": 1, "max_wait_minutes": 60}),
        "polling",
        "25000 events",
    );
}

#[test]
fn a_status_wait_past_the_functions_timeout_is_refused() {
    assert_rejects(
        |p| p["polling"]["status_wait_seconds"] = json!(241),
        "polling.status_wait_seconds",
        "use 0-240 seconds",
    );
    let mut plan = example();
    plan["polling"]["status_wait_seconds"] = json!(0);
    assert_eq!(Plan::from_value(plan).unwrap().polling.max_checks(), 240);
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut plan = example();
    plan["service"] = json!("");
    plan["databases"][0]["id"] = json!("-");
    plan["polling"]["max_wait_minutes"] = json!(0);
    assert!(errors_of(plan).len() >= 3);
}

#[test]
fn empty_manual_start_means_roll_back_the_app_now() {
    let request = RollbackRequest::from_start_input(json!({})).unwrap();
    assert!(matches!(
        request.trigger,
        Trigger::Manual { requested_by: None }
    ));
    assert_eq!(request.scope, Scope::APP);
    assert_eq!(request.mode, Mode::Live);
    assert!(request.dedup_execution_name().is_none());
}

#[test]
fn manual_start_with_fields_and_errors() {
    let request = RollbackRequest::from_start_input(json!({
        "reason": "checkout broken", "scope": "app+database", "mode": "drill",
        "cutoff": "2024-05-01T12:00:00Z", "release": "v42"
    }))
    .unwrap();
    assert_eq!(request.scope, Scope::APP_AND_DATABASE);
    assert!(request.mode.is_drill());
    let err = RollbackRequest::from_start_input(json!({"scope": "everything"})).unwrap_err();
    assert!(err.mentions("scope"), "{err}");
    assert!(err.to_string().contains("app+database"), "{err}");
    let err = RollbackRequest::from_start_input(json!({"cutoff": "yesterday"})).unwrap_err();
    assert!(err.mentions("cutoff"), "{err}");
    let err = RollbackRequest::from_start_input(json!({"reson": "typo"})).unwrap_err();
    assert!(err.to_string().contains("unknown field `reson`"), "{err}");
    let err =
        RollbackRequest::from_start_input(json!({"cutoff": "2999-01-01T00:00:00Z"})).unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
}

fn alarm_event(previous: &str, state: &str) -> Value {
    json!({
        "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": "123456789012", "time": "2024-05-01T12:00:05Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:mint-replica-5xx"],
        "detail": {
            "alarmName": "mint-replica-5xx",
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2024-05-01T12:00:00.000+0000"},
            "previousState": {"value": previous, "reason": "ok", "timestamp": "2024-05-01T09:00:00.000+0000"},
            "configuration": {"metrics": []}
        }
    })
}

#[test]
fn alarm_event_becomes_an_alarm_trigger_with_a_dedup_name() {
    let request = RollbackRequest::from_start_input(alarm_event("OK", "ALARM")).unwrap();
    let Trigger::Alarm(alarm) = &request.trigger else {
        panic!("not an alarm trigger")
    };
    assert_eq!(alarm.alarm_name, "mint-replica-5xx");
    assert_eq!(alarm.previous_state, AlarmState::Ok);
    assert_eq!(
        request.dedup_execution_name().unwrap(),
        "alarm-mint-replica-5xx-20240501T120000Z"
    );
    assert!(request.should_act(&Default::default()).is_ok());
    // A duplicate delivery of the same transition gets the same name.
    let again = RollbackRequest::from_start_input(alarm_event("OK", "ALARM")).unwrap();
    assert_eq!(again.dedup_execution_name(), request.dedup_execution_name());
}

/// Two 60-character ids sharing their first 50 characters are accepted: their derived names
/// differ (a hash of the whole id replaces the cut tail).
#[test]
fn long_database_ids_sharing_a_prefix_are_accepted() {
    let shared = format!("orders-{}", "x".repeat(43));
    let mut plan = example();
    plan["databases"][0]["id"] = json!(format!("{shared}-aaaaaaaaa"));
    plan["databases"][1]["id"] = json!(format!("{shared}-bbbbbbbbb"));
    plan["smoke"]["sql"] = json!([]);
    Plan::from_value(plan).unwrap();
}

/// Derived names that would still collide are refused at the second database's id, with the
/// fix: here the two ids' hashes collide (found by search), and a database named like another
/// one's moved-aside copy.
#[test]
fn databases_whose_derived_names_collide_are_refused_with_the_path() {
    let shared = format!("orders-{}", "x".repeat(43));
    let mut plan = example();
    // The first six hex digits of SHA-256 of these two ids are equal (a567d6).
    plan["databases"][0]["id"] = json!(format!("{shared}-000003168"));
    plan["databases"][1]["id"] = json!(format!("{shared}-000005117"));
    plan["smoke"]["sql"] = json!([]);
    let errors = errors_of(plan);
    assert!(
        errors.iter().any(|(p, m)| p == "databases[1].id"
            && m.contains(
                "moved-aside (pre-rollback) name would be the same as that of databases[0]"
            )
            && m.contains("aws rds modify-db-cluster --db-cluster-identifier")),
        "{errors:?}"
    );

    let exec = rollback_core::ExecutionId::new("alarm-mint-replica-5xx-20240501T120000Z");
    for name in [
        rollback_core::ids::aside_identifier("mint-replica-db", &exec),
        rollback_core::ids::restore_identifier("mint-replica-db", &exec, true),
    ] {
        assert_rejects(
            |p| p["databases"][1]["id"] = json!(name),
            "databases[1].id",
            "is named like a copy a rollback makes of databases[0] (mint-replica-db)",
        );
    }
    // The other way round: the copy listed first is reported too.
    let aside = rollback_core::ids::aside_identifier("mint-replica-docs", &exec);
    assert_rejects(
        |p| p["databases"][0]["id"] = json!(aside),
        "databases[0].id",
        "remove it from the plan",
    );
}

#[test]
fn alarm_scope_comes_from_the_plan_and_manual_scope_from_the_request() {
    let policy = rollback_core::plan::TriggerPolicy {
        alarm_scope: Scope::APP_AND_DATABASE,
        ..Default::default()
    };
    let alarm = RollbackRequest::from_start_input(alarm_event("OK", "ALARM")).unwrap();
    assert_eq!(alarm.scope, Scope::APP);
    assert_eq!(
        alarm.with_trigger_policy(&policy).scope,
        Scope::APP_AND_DATABASE
    );
    let manual = RollbackRequest::from_start_input(json!({"scope": "app"})).unwrap();
    assert_eq!(manual.with_trigger_policy(&policy).scope, Scope::APP);
}

#[test]
fn only_transitions_into_alarm_act() {
    let policy = Default::default();
    let to_ok = RollbackRequest::from_start_input(alarm_event("ALARM", "OK")).unwrap();
    assert!(to_ok.should_act(&policy).unwrap_err().contains("not ALARM"));
    let from_insufficient =
        RollbackRequest::from_start_input(alarm_event("INSUFFICIENT_DATA", "ALARM")).unwrap();
    assert!(from_insufficient.should_act(&policy).is_err());
    let permissive = rollback_core::plan::TriggerPolicy {
        act_from_insufficient_data: true,
        ..Default::default()
    };
    assert!(from_insufficient.should_act(&permissive).is_ok());
}

#[test]
fn foreign_events_are_refused_with_the_field() {
    let mut event = alarm_event("OK", "ALARM");
    event["source"] = json!("aws.ec2");
    let err = RollbackRequest::from_start_input(event).unwrap_err();
    assert!(err.mentions("source"), "{err}");
    let mut event = alarm_event("OK", "ALARM");
    event["detail"]["state"]["timestamp"] = json!("noon");
    let err = RollbackRequest::from_start_input(event).unwrap_err();
    assert!(err.mentions("detail.state.timestamp"), "{err}");
}

#[test]
fn normalized_request_round_trips_through_json() {
    let request = RollbackRequest::from_start_input(alarm_event("OK", "ALARM")).unwrap();
    let value = serde_json::to_value(&request).unwrap();
    let back: RollbackRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, request);
}

#[test]
fn restore_method_defaults_to_snapshot_and_names_the_fix_for_bad_values() {
    use rollback_core::plan::RestoreMethod;
    let plan = Plan::from_value(example()).unwrap();
    assert!(
        plan.databases
            .iter()
            .all(|d| d.restore == RestoreMethod::Snapshot)
    );
    // The default is not written back, so existing plans serialize unchanged.
    assert!(
        serde_json::to_value(&plan).unwrap()["databases"][0]
            .get("restore")
            .is_none()
    );

    let mut pitr = example();
    pitr["databases"][1]["restore"] = json!("point-in-time");
    let plan = Plan::from_value(pitr).unwrap();
    assert_eq!(plan.databases[1].restore, RestoreMethod::PointInTime);
    assert_eq!(plan.databases[0].restore, RestoreMethod::Snapshot);
    assert_eq!(
        serde_json::to_value(&plan).unwrap()["databases"][1]["restore"],
        "point-in-time"
    );

    assert_rejects(
        |p| p["databases"][0]["restore"] = json!("pitr"),
        "databases[0].restore",
        "expected one of `snapshot`, `point-in-time`, `snapshot-or-point-in-time`; use one of \
         those values",
    );
    assert_rejects(
        |p| p["databases"][1]["restore"] = json!(true),
        "databases[1].restore",
        "expected",
    );
}

#[test]
fn on_failure_defaults_to_stay_paused_is_always_serialized_and_names_the_fix_for_bad_values() {
    use rollback_core::plan::OnFailure;
    let plan = Plan::from_value(example()).unwrap();
    assert_eq!(plan.on_failure, OnFailure::StayPaused);
    // Written even when it is the default: the state machine reads `$.plan.on_failure`.
    assert_eq!(
        serde_json::to_value(&plan).unwrap()["on_failure"],
        "stay-paused"
    );

    let mut resume = example();
    resume["on_failure"] = json!("resume");
    let plan = Plan::from_value(resume).unwrap();
    assert_eq!(plan.on_failure, OnFailure::Resume);
    assert_eq!(serde_json::to_value(&plan).unwrap()["on_failure"], "resume");
    let mut explicit = example();
    explicit["on_failure"] = json!("stay-paused");
    assert_eq!(
        Plan::from_value(explicit).unwrap().on_failure,
        OnFailure::StayPaused
    );

    assert_rejects(
        |p| p["on_failure"] = json!("rollback"),
        "on_failure",
        "expected `stay-paused` or `resume`; use one of those values",
    );
    assert_rejects(
        |p| p["on_failure"] = json!("Resume"),
        "on_failure",
        "expected `stay-paused` or `resume`",
    );
    assert_rejects(|p| p["on_failure"] = json!(true), "on_failure", "expected");
    // Misplaced under another section: the unknown field is named where it was put.
    assert_rejects(
        |p| p["cluster"]["on_failure"] = json!("resume"),
        "cluster.on_failure",
        "unknown field `on_failure`",
    );
    // `resume` with nothing to resume says what to do.
    assert_rejects(
        |p| {
            p["on_failure"] = json!("resume");
            p.as_object_mut().unwrap().remove("cluster");
        },
        "on_failure",
        "remove on_failure or add cluster.deployments",
    );
}

#[test]
fn gitops_entries_name_their_object_and_every_problem_has_its_path() {
    let mut plan = example();
    plan["cluster"]["gitops"] = json!([
        {"kind": "argocd", "application": "mint-replica", "namespace": "argocd"},
        {"kind": "flux", "kustomization": "mint-replica"},
        {"kind": "argocd"}
    ]);
    let parsed = Plan::from_value(plan.clone()).unwrap();
    let gitops = &parsed.cluster.as_ref().unwrap().gitops;
    assert_eq!(
        gitops[1].namespace(),
        "flux-system",
        "Flux's default namespace"
    );
    assert_eq!(
        gitops[2].name(),
        None,
        "the kind alone is allowed: the email warns"
    );
    assert_eq!(
        gitops[0].describe(),
        "Argo CD Application argocd/mint-replica"
    );
    // Round trip: what validate passes on is what deploy-undo reads.
    let again = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        again["cluster"]["gitops"][1],
        json!({"kind": "flux", "kustomization": "mint-replica"})
    );
    // No gitops: the field is not serialized (the definition tests its presence).
    let without = serde_json::to_value(Plan::from_value(example()).unwrap()).unwrap();
    assert!(without["cluster"].get("gitops").is_none(), "{without}");

    assert_rejects(
        |p| p["cluster"]["gitops"] = json!([{"kind": "jenkins-x", "application": "a"}]),
        "cluster.gitops[0].kind",
        "expected `argocd` or `flux`",
    );
    assert_rejects(
        |p| p["cluster"]["gitops"] = json!([{"kind": "argocd", "kustomization": "a"}]),
        "cluster.gitops[0].kustomization",
        "names its object with `application`",
    );
    assert_rejects(
        |p| p["cluster"]["gitops"] = json!([{"kind": "flux", "kustomization": "Bad_Name"}]),
        "cluster.gitops[0].kustomization",
        "DNS-1123",
    );
    assert_rejects(
        |p| {
            p["cluster"]["gitops"] =
                json!([{"kind": "flux", "kustomization": "a", "namespace": "-x"}])
        },
        "cluster.gitops[0].namespace",
        "DNS-1123 label",
    );
    assert_rejects(
        |p| {
            p["cluster"]["gitops"] = json!([
                {"kind": "argocd", "application": "a"},
                {"kind": "argocd", "application": "a", "namespace": "argocd"}
            ])
        },
        "cluster.gitops[1].application",
        "listed twice",
    );
    assert_rejects(
        |p| p["cluster"]["gitops"] = json!([{"kind": "argocd", "app": "a"}]),
        "cluster.gitops[0].app",
        "unknown field `app`",
    );
    assert_rejects(
        |p| {
            p["cluster"]["gitops"] = json!(
                (0..6)
                    .map(|i| json!({"kind": "argocd", "application": format!("a{i}")}))
                    .collect::<Vec<_>>()
            )
        },
        "cluster.gitops",
        "at most 5",
    );
}
