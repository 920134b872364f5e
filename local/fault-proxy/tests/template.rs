//! The operations side of `infra/template.yaml`: every log group the stack creates keeps its
//! logs for `LogRetentionDays` (the functions' too), a backstop alarm covers every way an
//! execution can end badly, and only the functions that reach private endpoints join the VPC.

use std::collections::{BTreeMap, BTreeSet};

use rollback_fault_proxy::iam::template::template_json;
use serde_json::{Value, json};

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    template_json(&text).unwrap()
}

/// Logical id → resource, for the resources of one type.
fn resources(template: &Value, kind: &str) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect()
}

#[test]
fn every_log_group_has_retention_and_every_function_its_own_group() {
    let template = template();
    let groups = resources(&template, "AWS::Logs::LogGroup");
    assert!(groups.contains_key("StateMachineLogGroup"), "{groups:?}");
    for (id, group) in &groups {
        assert_eq!(
            group["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{id} keeps its logs forever: give it RetentionInDays: !Ref LogRetentionDays"
        );
    }
    // Lambda's own /aws/lambda/<function> group would have no retention: every function logs
    // to a group of the stack instead.
    let mut used = BTreeSet::new();
    let functions = resources(&template, "AWS::Serverless::Function");
    assert!(!functions.is_empty());
    for (id, function) in &functions {
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "{id} has no LoggingConfig.LogGroup: Lambda would create \
                     /aws/lambda/<function> without retention. Add an AWS::Logs::LogGroup \
                     with RetentionInDays and point LoggingConfig.LogGroup at it"
                )
            });
        assert!(
            groups.contains_key(group),
            "{id} logs to {group}, not a log group of this stack"
        );
        assert!(used.insert(group), "{id} shares the log group {group}");
    }
}

#[test]
fn backstop_alarms_cover_failed_timed_out_and_aborted_executions() {
    let template = template();
    let alarms = resources(&template, "AWS::CloudWatch::Alarm");
    let by_metric: BTreeMap<&str, &Value> = alarms
        .values()
        .filter(|a| a["Properties"]["Namespace"] == "AWS/States")
        .map(|a| {
            (
                a["Properties"]["MetricName"].as_str().unwrap(),
                &a["Properties"],
            )
        })
        .collect();
    let actions = &by_metric["ExecutionsFailed"]["AlarmActions"];
    assert!(actions.as_array().is_some_and(|a| !a.is_empty()));
    for metric in [
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    ] {
        let alarm = by_metric
            .get(metric)
            .unwrap_or_else(|| panic!("no alarm on AWS/States {metric}"));
        assert_eq!(
            alarm["Dimensions"],
            json!([{"Name": "StateMachineArn", "Value": {"Ref": "RollbackStateMachine"}}]),
            "{metric}"
        );
        assert_eq!(&alarm["AlarmActions"], actions, "{metric}");
        assert_eq!(
            alarm["ComparisonOperator"], "GreaterThanThreshold",
            "{metric}"
        );
        assert_eq!(alarm["Threshold"], 0, "{metric}");
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{metric}");
    }
    // Each alarm says what it covers, and only that.
    let failed = by_metric["ExecutionsFailed"]["AlarmDescription"]
        .as_str()
        .unwrap();
    assert!(
        !failed.contains("timed out or was aborted"),
        "the ExecutionsFailed alarm does not see timed-out or aborted executions: {failed}"
    );
}

#[test]
fn only_the_functions_that_reach_private_endpoints_join_the_vpc() {
    let template = template();
    let in_vpc: BTreeMap<String, Value> = resources(&template, "AWS::Serverless::Function")
        .into_iter()
        .filter_map(|(id, f)| {
            let vpc = f["Properties"].get("VpcConfig")?.clone();
            Some((id, vpc))
        })
        .collect();
    // Kept in step with infra/DEPLOY.md "Private networks".
    assert_eq!(
        in_vpc.keys().collect::<Vec<_>>(),
        ["DeployUndoFunction", "SmokeTestFunction"]
    );
    for (id, vpc) in &in_vpc {
        assert_eq!(
            vpc,
            &json!({"Fn::If": [
                "InVpc",
                {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}},
                {"Ref": "AWS::NoValue"},
            ]}),
            "{id}"
        );
    }
    for parameter in ["SubnetIds", "SecurityGroupIds"] {
        let p = &template["Parameters"][parameter];
        assert_eq!(p["Type"], "CommaDelimitedList", "{parameter}");
        assert_eq!(p["Default"], "", "{parameter} is optional");
    }
}
