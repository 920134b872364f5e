//! IAM from the template, both ways: every call a function makes in the drill is checked
//! against its role in `infra/template.yaml` (the fault proxy refuses what AWS would refuse),
//! and every action a role grants is used by some drill run, or listed with a reason in
//! `local/fault-proxy/iam-unused.txt`.

mod common;
use common::options;

use std::collections::{BTreeMap, BTreeSet};

use rollbackctl::drill::{Approve, Drill, DrillOptions, IamViolations, Outcome, Restore};

const UNUSED_LIST: &str = "local/fault-proxy/iam-unused.txt";

/// `function action` → reason, from the checked-in list.
fn unused_list() -> BTreeMap<(String, String), String> {
    let path = rollback_moto::workspace_root().join(UNUSED_LIST);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (entry, reason) = line
            .split_once(" — ")
            .unwrap_or_else(|| panic!("{UNUSED_LIST}: {line:?} has no ' — reason'"));
        let mut words = entry.split_whitespace();
        let (Some(function), Some(action), None) = (words.next(), words.next(), words.next())
        else {
            panic!("{UNUSED_LIST}: {line:?} is not 'function action — reason'");
        };
        assert!(
            !reason.trim().is_empty(),
            "{UNUSED_LIST}: {line:?} gives no reason"
        );
        out.insert(
            (function.to_owned(), action.to_owned()),
            reason.trim().to_owned(),
        );
    }
    out
}

/// The happy and failure paths, each with the IAM check on; then: which granted actions did
/// no run use?
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_is_allowed_and_every_granted_action_is_used_or_listed() {
    let runs: Vec<(&str, DrillOptions)> = vec![
        (
            "approve",
            // With the SQL probe (a local PostgreSQL when the machine has one): the smoke test
            // reads the probe's credentials from Secrets Manager. Two people approve the
            // databases: the approval page records the first in its ledger (S3).
            DrillOptions {
                postgres: true,
                approvers: 2,
                ..options("approve")
            },
        ),
        (
            "reject",
            DrillOptions {
                approve: Approve::Reject,
                ..options("reject")
            },
        ),
        (
            "app-only",
            // The approver signs in at the local identity provider (code + PKCE) first.
            DrillOptions {
                approve: Approve::AppOnly,
                sign_in: true,
                ..options("app-only")
            },
        ),
        (
            "fail-at-swap",
            DrillOptions {
                fail_at: Some("Swap databases".into()),
                ..options("fail-at-swap")
            },
        ),
        (
            "point-in-time",
            DrillOptions {
                restore: Restore::PointInTime,
                ..options("pitr")
            },
        ),
    ];
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut sql_probe = false;
    for (name, options) in runs {
        let report_md = options.output_dir.join("report.md");
        let drill = Drill::prepare(options).await.unwrap();
        sql_probe |= drill.stack.seeded.sql_probe;
        match drill.execute().await {
            Ok(report) => {
                let expected = match name {
                    "reject" => Outcome::Rejected,
                    "fail-at-swap" => Outcome::Failed,
                    _ => Outcome::RolledBack,
                };
                if report.outcome != expected {
                    failures.push(format!("{name}: {:?} ({:?})", report.outcome, report.error));
                }
                let says = match name {
                    "approve" => {
                        "by drill@example.com and second-approver@example.com (self-asserted)"
                    }
                    "app-only" => "by drill@example.com (signed in)",
                    _ => "",
                };
                if !std::fs::read_to_string(&report_md)
                    .unwrap_or_default()
                    .contains(says)
                {
                    failures.push(format!(
                        "{name}: {} does not say {says:?}",
                        report_md.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
        for (function, actions) in drill.stack.iam_coverage() {
            used.entry(function).or_default().extend(actions);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let template = std::fs::read_to_string(rollbackctl::drill::template_path()).unwrap();
    let checker = rollback_fault_proxy::IamChecker::from_template(
        &template,
        &rollbackctl::drill::stack_values("arn:aws:kms:us-east-1:123456789012:key/decision"),
    )
    .unwrap();
    let listed = unused_list();
    let mut unused = Vec::new();
    let mut problems = Vec::new();
    for (function, granted) in checker.granted_actions() {
        for action in granted {
            let exercised = used.get(&function).is_some_and(|u| u.contains(&action));
            let key = (function.clone(), action.clone());
            if !sql_probe
                && function == "smoke-test"
                && (action == "secretsmanager:GetSecretValue" || action.starts_with("rds:Describe"))
            {
                println!("(no local PostgreSQL: the SQL probe and its secret were not exercised)");
                continue;
            }
            match (exercised, listed.get(&key)) {
                (false, Some(reason)) => unused.push(format!("{function} {action} — {reason}")),
                (false, None) => problems.push(format!(
                    "{function}'s role grants {action}, which no drill run used: remove it from \
                     infra/template.yaml, or list it in {UNUSED_LIST} with the reason"
                )),
                (true, Some(_)) => problems.push(format!(
                    "{function} {action} is listed in {UNUSED_LIST} but a drill run used it: \
                     remove the entry"
                )),
                (true, None) => {}
            }
        }
    }
    for (function, action) in listed.keys() {
        let granted = checker
            .granted_actions()
            .get(function)
            .is_some_and(|g| g.contains(action));
        if !granted {
            problems.push(format!(
                "{UNUSED_LIST} lists {function} {action}, which its role does not grant: remove it"
            ));
        }
    }
    println!("policy actions no drill run exercised ({}):", unused.len());
    for line in &unused {
        println!("  {line}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Take `rds:ModifyDBInstance` away from the restore role: the swap's first rename is refused
/// as AWS refuses it, the function reports the AWS error, and the drill fails naming the call
/// and the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_permission_fails_the_drill_naming_function_action_resource_and_policy() {
    let template = std::fs::read_to_string(rollbackctl::drill::template_path()).unwrap();
    let marker = "            - Sid: RestoreAndRenamePlanDatabases";
    let start = template
        .find(marker)
        .expect("the restore role's rename statement");
    let line = "                - rds:ModifyDBInstance\n";
    let at = start
        + template[start..]
            .find(line)
            .expect("rds:ModifyDBInstance in it");
    let without = format!("{}{}", &template[..at], &template[at + line.len()..]);

    let drill = Drill::prepare(DrillOptions {
        iam_template: Some(without),
        ..options("missing-modify")
    })
    .await
    .unwrap();
    let err = drill.execute().await.expect_err("the drill must fail");
    let failed = err
        .downcast_ref::<IamViolations>()
        .unwrap_or_else(|| panic!("not an IAM failure: {err:#}"));
    assert_eq!(
        failed.to_string(),
        "function restore called rds:ModifyDBInstance on \
         arn:aws:rds:us-east-1:123456789012:db:mint-replica-db, which its role does not allow \
         (template.yaml, policy RestoreFunctionRolePolicy0: no statement allows rds:ModifyDBInstance)"
    );
    // The function saw what it would see in AWS: RDS's AccessDenied, which the swap reports
    // (after observing that nothing was renamed), and the rollback took the contingency path.
    let report = &failed.report;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.contains(
            "ModifyDBInstance failed: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/\
             RestoreFunctionRole/rollback-restore is not authorized to perform: \
             rds:ModifyDBInstance on resource: arn:aws:rds:us-east-1:123456789012:db:mint-replica-db"
        ),
        "{error}"
    );
}
