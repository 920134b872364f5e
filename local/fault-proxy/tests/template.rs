//! The operations side of `infra/template.yaml`: every log group the stack creates keeps its
//! logs for `LogRetentionDays` (the functions' too), a backstop alarm covers every way an
//! execution can end badly, only the functions that reach private endpoints join the VPC, and
//! the approval page's optional sign-in puts API Gateway's JWT authorizer on the deciding POST
//! only, and nothing at all when it is not configured.

use std::collections::{BTreeMap, BTreeSet};

use rollback_fault_proxy::iam::template::template_json;
use serde_json::{Value, json};

fn template() -> Value {
    let text = std::fs::read_to_string(rollback_moto::workspace_root().join("infra/template.yaml"))
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
        // Snapshot runs the SQL probes' baselines on the live database before a pre-deploy
        // snapshot.
        [
            "DeployUndoFunction",
            "SmokeTestFunction",
            "SnapshotFunction"
        ]
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

// ---- Approver sign-in (infra/DEPLOY.md "Approver sign-in (optional)") -----------------------

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
const AUDIENCE: &str = "1example23456789abcdefghij";

/// The template's parameters as a deployment would have them: `given`, else their `Default`.
fn parameter_values(template: &Value, given: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, p)| {
            let default = match &p["Default"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name.clone(), default))
        })
        .collect();
    for (name, value) in given {
        assert!(
            template["Parameters"].get(name).is_some(),
            "no parameter {name}"
        );
        values.insert(name.to_string(), value.to_string());
    }
    values
}

/// Evaluates a condition (`Fn::Not`, `Fn::Equals`, `Fn::And`, `Fn::Or`, `Condition`) as
/// CloudFormation would with these parameter values; also a `Rules` assertion.
fn truth(template: &Value, values: &BTreeMap<String, String>, condition: &Value) -> bool {
    let (key, arg) = condition
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .unwrap_or_else(|| panic!("condition {condition}"));
    let items = arg.as_array().cloned().unwrap_or_default();
    match key.as_str() {
        "Condition" => {
            let name = arg.as_str().unwrap();
            let body = template["Conditions"]
                .get(name)
                .unwrap_or_else(|| panic!("no condition {name}"));
            truth(template, values, body)
        }
        "Fn::Not" => !truth(template, values, &items[0]),
        "Fn::And" => items.iter().all(|c| truth(template, values, c)),
        "Fn::Or" => items.iter().any(|c| truth(template, values, c)),
        "Fn::Equals" => {
            resolve(template, values, &items[0]) == resolve(template, values, &items[1])
        }
        other => panic!("condition function {other} is not handled here"),
    }
}

/// `value` with `Ref` to parameters and `Fn::If` resolved, `AWS::NoValue` removed; other
/// intrinsic functions (`Fn::Sub`, `Fn::GetAtt`…) are left as written.
fn resolve(template: &Value, values: &BTreeMap<String, String>, value: &Value) -> Value {
    resolve_opt(template, values, value).unwrap_or(Value::Null)
}

fn resolve_opt(
    template: &Value,
    values: &BTreeMap<String, String>,
    value: &Value,
) -> Option<Value> {
    match value {
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|v| resolve_opt(template, values, v))
                .collect(),
        )),
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            match map["Ref"].as_str().unwrap() {
                "AWS::NoValue" => None,
                name => match values.get(name) {
                    Some(v) => Some(Value::String(v.clone())),
                    None => Some(value.clone()),
                },
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::If") => {
            let items = map["Fn::If"].as_array().unwrap();
            let condition = json!({"Condition": items[0]});
            let branch = if truth(template, values, &condition) {
                &items[1]
            } else {
                &items[2]
            };
            resolve_opt(template, values, branch)
        }
        Value::Object(map) => Some(Value::Object(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), resolve_opt(template, values, v)?)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// ApprovalApi's OpenAPI document as CloudFormation receives it with these parameters. SAM adds
/// the Show (GET) and Decide (POST) events' Lambda integrations to it (checked below).
fn approval_api_document(template: &Value, given: &[(&str, &str)]) -> Value {
    let values = parameter_values(template, given);
    let body = &template["Resources"]["ApprovalApi"]["Properties"]["DefinitionBody"];
    assert!(body.is_object(), "ApprovalApi has no DefinitionBody");
    resolve(template, &values, body)
}

/// Every `security` requirement anywhere in the document, by JSON path.
fn security_requirements(document: &Value, at: &str, found: &mut BTreeMap<String, Value>) {
    match document {
        Value::Object(map) => {
            for (k, v) in map {
                let here = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at} {k}")
                };
                if k == "security" {
                    found.insert(here.clone(), v.clone());
                }
                security_requirements(v, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                security_requirements(v, &format!("{at} {i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn approval_routes_are_the_sam_events_and_their_throttling_stays() {
    let template = template();
    let function = &template["Resources"]["ApprovalFunction"]["Properties"];
    let mut routes = BTreeSet::new();
    for (id, event) in function["Events"].as_object().unwrap() {
        let p = &event["Properties"];
        assert_eq!(event["Type"], "HttpApi", "{id}");
        assert_eq!(p["ApiId"], json!({"Ref": "ApprovalApi"}), "{id}");
        // An event Auth would make SAM set (or clear) the route's security itself; the
        // authorizer lives in the document, under the sign-in condition.
        assert!(p.get("Auth").is_none(), "{id} has an Auth: {}", p["Auth"]);
        // The function reads requestContext.authorizer.jwt.claims: payload 2.0 (SAM's default).
        assert!(
            p.get("PayloadFormatVersion").is_none_or(|v| v == "2.0"),
            "{id}: {}",
            p["PayloadFormatVersion"]
        );
        routes.insert(format!(
            "{} {}",
            p["Method"].as_str().unwrap(),
            p["Path"].as_str().unwrap()
        ));
    }
    assert_eq!(
        routes,
        BTreeSet::from(["GET /approval".to_owned(), "POST /approval".to_owned()])
    );
    let api = &template["Resources"]["ApprovalApi"];
    assert_eq!(api["Type"], "AWS::Serverless::HttpApi");
    assert!(
        api["Properties"].get("Auth").is_none(),
        "SAM's Auth takes no condition"
    );
    assert!(template["Globals"].get("HttpApi").is_none());
    assert_eq!(
        api["Properties"]["DefaultRouteSettings"],
        json!({"ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10})
    );
    // Routes, integrations or authorizers defined beside an OpenAPI document may be deleted
    // by API Gateway on a stack update (aws/serverless-application-model#1971): none here.
    for kind in [
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Authorizer",
    ] {
        assert!(
            resources(&template, kind).is_empty(),
            "{kind} beside ApprovalApi's document"
        );
    }
}

#[test]
fn with_sign_in_only_the_deciding_post_needs_the_jwt_authorizer() {
    let template = template();
    let document = approval_api_document(
        &template,
        &[
            ("ApprovalLoginIssuer", ISSUER),
            ("ApprovalLoginAudience", AUDIENCE),
        ],
    );
    let mut security = BTreeMap::new();
    security_requirements(&document, "", &mut security);
    // POST only: GET serves the page and the sign-in script (mail scanners fetch it), and a
    // document-wide `security` would cover it too.
    assert_eq!(
        security,
        BTreeMap::from([(
            "paths /approval post security".to_owned(),
            json!([{"ApprovalLogin": []}])
        )]),
    );
    assert!(document["paths"]["/approval"].get("get").is_none());
    assert_eq!(
        document["components"],
        json!({"securitySchemes": {"ApprovalLogin": {
            "type": "oauth2",
            "x-amazon-apigateway-authorizer": {
                "type": "jwt",
                "identitySource": "$request.header.Authorization",
                "jwtConfiguration": {"issuer": ISSUER, "audience": [AUDIENCE]},
            },
        }}})
    );
}

#[test]
fn without_sign_in_no_route_has_an_authorizer_and_none_exists() {
    let template = template();
    for parameter in ["ApprovalLoginIssuer", "ApprovalLoginAudience"] {
        let p = &template["Parameters"][parameter];
        assert_eq!(p["Type"], "String", "{parameter}");
        assert_eq!(p["Default"], "", "{parameter} is optional");
    }
    assert_eq!(
        template["Parameters"]["ApprovalLoginIdentityClaim"]["Default"],
        "email"
    );
    let document = approval_api_document(&template, &[]);
    let mut security = BTreeMap::new();
    security_requirements(&document, "", &mut security);
    assert!(security.is_empty(), "{security:?}");
    assert!(
        document.get("components").is_none(),
        "an authorizer without an issuer: {}",
        document["components"]
    );
    // What SAM completes with the events' integrations: the one path, nothing else set on it.
    assert_eq!(document["paths"], json!({"/approval": {"post": {}}}));
}

#[test]
fn sign_in_issuer_and_audience_come_together_and_the_issuer_is_https() {
    let template = template();
    assert_eq!(
        template["Conditions"]["HasApprovalLogin"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "ApprovalLoginIssuer"}, ""]}]})
    );
    let rule = &template["Rules"]["ApprovalLoginIssuerAndAudienceTogether"];
    let assertions = rule["Assertions"].as_array().unwrap();
    assert!(!assertions.is_empty());
    let accepted = |given: &[(&str, &str)]| {
        let values = parameter_values(&template, given);
        assertions
            .iter()
            .all(|a| truth(&template, &values, &a["Assert"]))
    };
    assert!(accepted(&[]));
    assert!(accepted(&[
        ("ApprovalLoginIssuer", ISSUER),
        ("ApprovalLoginAudience", AUDIENCE)
    ]));
    assert!(!accepted(&[("ApprovalLoginIssuer", ISSUER)]));
    assert!(!accepted(&[("ApprovalLoginAudience", AUDIENCE)]));
    // CloudFormation matches AllowedPattern against the whole value: empty, or https://.
    assert_eq!(
        template["Parameters"]["ApprovalLoginIssuer"]["AllowedPattern"],
        r"^(https://\S+)?$"
    );
}

#[test]
fn sign_in_settings_reach_the_approval_and_notify_functions() {
    let template = template();
    let env = |function: &str| {
        template["Resources"][function]["Properties"]["Environment"]["Variables"].clone()
    };
    let approval = env("ApprovalFunction");
    for (variable, parameter) in [
        ("ROLLBACK_OIDC_ISSUER", "ApprovalLoginIssuer"),
        ("ROLLBACK_OIDC_AUDIENCE", "ApprovalLoginAudience"),
        ("ROLLBACK_OIDC_IDENTITY_CLAIM", "ApprovalLoginIdentityClaim"),
    ] {
        assert_eq!(approval[variable], json!({"Ref": parameter}), "{variable}");
    }
    // Notify only says in the email whether approvers sign in.
    let notify = env("NotifyFunction");
    assert_eq!(
        notify["ROLLBACK_OIDC_ISSUER"],
        json!({"Ref": "ApprovalLoginIssuer"})
    );
    // The approval function reads the issuer's discovery document: it needs internet egress.
    assert!(
        template["Resources"]["ApprovalFunction"]["Properties"]
            .get("VpcConfig")
            .is_none()
    );
}

// ---- Status checks that keep looking (rollback_core::wait) -----------------------------------

/// Every state of the definition, branches included.
fn states(states: &serde_json::Map<String, Value>, out: &mut Vec<Value>) {
    for state in states.values() {
        out.push(state.clone());
        for branch in state["Branches"].as_array().into_iter().flatten() {
            self::states(branch["States"].as_object().unwrap(), out);
        }
    }
}

#[test]
fn functions_whose_status_checks_keep_looking_outlast_the_longest_status_wait() {
    use rollback_core::wait::STATUS_FUNCTION_TIMEOUT_SECONDS;
    let template = template();
    let definition: Value = serde_json::from_str(
        &std::fs::read_to_string(
            rollback_moto::workspace_root().join("statemachine/rollback.asl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut all = Vec::new();
    states(definition["States"].as_object().unwrap(), &mut all);
    let substitutions = resources(&template, "AWS::Serverless::StateMachine")
        .into_values()
        .next()
        .unwrap()["Properties"]["DefinitionSubstitutions"]
        .clone();
    let looking: BTreeSet<String> = all
        .iter()
        .filter(|s| s["Parameters"]["Payload"]["keep_looking"] == json!(true))
        .map(|s| {
            let placeholder = s["Parameters"]["FunctionName"].as_str().unwrap();
            let key = placeholder.trim_start_matches("${").trim_end_matches('}');
            let arn = &substitutions[key];
            // !GetAtt X.Arn, in either of the forms the YAML reader gives it.
            arn["Fn::GetAtt"]
                .as_array()
                .and_then(|a| a[0].as_str().map(str::to_owned))
                .or_else(|| {
                    let dotted = arn["Fn::GetAtt"].as_str()?;
                    Some(dotted.split('.').next()?.to_owned())
                })
                .unwrap_or_else(|| panic!("{key}: {arn}"))
        })
        .collect();
    assert_eq!(
        looking.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "DeployUndoFunction",
            "InfraFunction",
            "RestoreFunction",
            "SnapshotFunction"
        ]
    );
    let functions = resources(&template, "AWS::Serverless::Function");
    for id in &looking {
        let timeout = functions[id]["Properties"]["Timeout"].as_u64().unwrap();
        assert!(
            timeout >= u64::from(STATUS_FUNCTION_TIMEOUT_SECONDS),
            "{id}: Timeout {timeout} cuts its status checks short"
        );
    }
}
