#![recursion_limit = "256"]
//! Checks over `statemachine/rollback.asl.json`: the graph is sound, every failure reaches the
//! contingency notice, the functions and actions it calls exist in the contracts, the error
//! names exist in core, the template provides every substitution, and the execution data stays
//! far below Step Functions' 256 KB limit at the plan's maximum sizes.

use std::collections::{BTreeMap, BTreeSet};

use rollback_core::ErrorKind;
use rollback_core::contract;
use rollback_moto::workspace_root;
use serde_json::{Value, json};

const CONTINGENCY: &str = "Report failure";
/// Where every failure enters the contingency path: an unfinished swap is put back and what
/// is live is observed, then the notice.
const CONTINGENCY_ENTRY: &str = "Keep what the notice needs";
/// Tasks whose Catch may not go to the contingency notice, and why.
/// Why a failure in Terraform planning does not end the rollback.
const LEAVES_INFRASTRUCTURE_OUT: &str = "a planning failure leaves infrastructure out of this rollback (the approval email says why); the app rollback goes on";
const CATCH_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "Find the stable infrastructure commit",
        LEAVES_INFRASTRUCTURE_OUT,
    ),
    ("Plan infrastructure", LEAVES_INFRASTRUCTURE_OUT),
    ("Check infrastructure plan", LEAVES_INFRASTRUCTURE_OUT),
    ("Summarize infrastructure plan", LEAVES_INFRASTRUCTURE_OUT),
    (
        "Apply the pre-approval policy",
        "a policy that cannot be applied leaves the decision to people (the approval request follows)",
    ),
    (
        "Offer to stop it",
        "the grace period's end (States.Timeout) lets the policy's decision stand, the stop link rejects, and an email that cannot be sent leaves the decision to people",
    ),
    (
        "Announce the approved rollback",
        "the status page and chat announcements are best effort: the rollback never waits on them",
    ),
    (
        "Announce verification",
        "the status page and chat announcements are best effort: the rollback never waits on them",
    ),
    (
        "Announce the rollback",
        "the \"rollback started\" broadcast is best effort: the rollback never waits on it",
    ),
    (
        "Find live mobile releases",
        "a store that cannot be read leaves the mobile releases out of this rollback (the approval email says why); the app rollback goes on",
    ),
    (
        "Put back an unfinished swap",
        "the contingency path itself: its failure goes on to observe and notify",
    ),
    (
        "Resume the paused service",
        "the contingency path itself: its failure goes on to observe and notify",
    ),
    (
        "Observe what is live",
        "the contingency path itself: its failure goes on to the notice",
    ),
    (
        "Report failure",
        "the contingency notice itself: its failure goes straight to Fail",
    ),
    (
        "Validate request",
        "without a valid plan notify cannot render; the ExecutionsFailed alarm reports it",
    ),
    (
        "Write the success report",
        "the post-mortem in S3 is best effort: its failure goes on to the notice, which says so",
    ),
    (
        "Write the rejection report",
        "the post-mortem in S3 is best effort: its failure goes on to the notice, which says so",
    ),
    (
        "Write the failure report",
        "the contingency path itself: its failure goes on to the notice, which says so",
    ),
];
/// The notices that end an execution, each with the report step just before it.
const FINAL_NOTICES: &[(&str, &str, &str)] = &[
    ("Write the success report", "rolled-back", "Report success"),
    ("Write the rejection report", "rejected", "Report rejection"),
    ("Write the failure report", "failed", "Report failure"),
];
const RETRIED: &[&str] = &[
    "Rollback.Throttled",
    "Rollback.Transient",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn definition() -> Value {
    serde_json::from_str(&rollback_e2e::definition()).unwrap()
}

/// One state-graph scope: the top level or one Parallel branch.
struct Scope {
    path: String,
    start: String,
    states: serde_json::Map<String, Value>,
}

fn scopes(def: &Value, path: &str, out: &mut Vec<Scope>) {
    let states = def["States"].as_object().unwrap().clone();
    for (name, state) in &states {
        if let Some(branches) = state["Branches"].as_array() {
            for (i, b) in branches.iter().enumerate() {
                scopes(b, &format!("{path}/{name}[{i}]"), out);
            }
        }
    }
    out.push(Scope {
        path: path.to_owned(),
        start: def["StartAt"].as_str().unwrap().to_owned(),
        states,
    });
}

fn all_scopes() -> Vec<Scope> {
    let mut out = Vec::new();
    scopes(&definition(), "", &mut out);
    out
}

/// Every state a state can go to next (Next, Default, Choice rules, Catch).
fn successors(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(n) = state[key].as_str() {
            out.push(n.to_owned());
        }
    }
    for list in ["Choices", "Catch"] {
        for item in state[list].as_array().into_iter().flatten() {
            if let Some(n) = item["Next"].as_str() {
                out.push(n.to_owned());
            }
        }
    }
    out
}

fn is_terminal(state: &Value) -> bool {
    matches!(state["Type"].as_str(), Some("Succeed" | "Fail")) || state["End"] == json!(true)
}

fn reachable(scope: &Scope, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone())
            && let Some(state) = scope.states.get(&name)
        {
            todo.extend(successors(state));
        }
    }
    seen
}

/// Every (state, Task) pair, with the scope path it is in.
fn tasks() -> Vec<(String, String, Value)> {
    all_scopes()
        .into_iter()
        .flat_map(|s| {
            let path = s.path.clone();
            s.states
                .into_iter()
                .filter(|(_, st)| st["Type"] == "Task")
                .map(move |(n, st)| (path.clone(), n, st))
        })
        .collect()
}

#[test]
fn every_target_exists() {
    for scope in all_scopes() {
        assert!(
            scope.states.contains_key(&scope.start),
            "{}: StartAt {}",
            scope.path,
            scope.start
        );
        for (name, state) in &scope.states {
            for next in successors(state) {
                assert!(
                    scope.states.contains_key(&next),
                    "{}/{name}: target {next:?} is not a state of this scope",
                    scope.path
                );
            }
            assert!(
                is_terminal(state) || state["Type"] == "Choice" || state["Next"].is_string(),
                "{}/{name} has neither Next nor End",
                scope.path
            );
        }
    }
}

#[test]
fn every_state_is_reachable() {
    for scope in all_scopes() {
        let seen = reachable(&scope, &scope.start);
        for name in scope.states.keys() {
            assert!(seen.contains(name), "{}/{name} is unreachable", scope.path);
        }
    }
}

#[test]
fn every_state_can_reach_an_end() {
    for scope in all_scopes() {
        for name in scope.states.keys() {
            let ends = reachable(&scope, name)
                .into_iter()
                .any(|n| is_terminal(&scope.states[&n]));
            assert!(
                ends,
                "{}/{name} cannot reach Succeed, Fail or End",
                scope.path
            );
        }
    }
}

#[test]
fn every_loop_is_bounded_by_a_plan_limit() {
    // States in a cycle are mutually reachable; each cycle must pass a Choice that compares a
    // counter with a `$.timing` bound.
    for scope in all_scopes() {
        for name in scope.states.keys() {
            let from_here = reachable(&scope, name);
            let cycle: Vec<&String> = from_here
                .iter()
                .filter(|other| *other != name && reachable(&scope, other).contains(name))
                .collect();
            if cycle.is_empty() {
                continue;
            }
            let bounded = cycle.iter().chain([&name]).any(|n| {
                let s = &scope.states[*n];
                s["Choices"].as_array().into_iter().flatten().any(|rule| {
                    rule["NumericGreaterThanEqualsPath"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("$.timing."))
                })
            });
            assert!(
                bounded,
                "{}/{name} is in a loop with no bound from the plan",
                scope.path
            );
        }
    }
}

#[test]
fn every_failure_reaches_the_contingency_notice() {
    let def = definition();
    let top = def["States"].as_object().unwrap();
    assert_eq!(top[CONTINGENCY]["Type"], "Task");
    // The notice must not loop back into itself.
    for c in top[CONTINGENCY]["Catch"].as_array().unwrap() {
        assert_eq!(top[c["Next"].as_str().unwrap()]["Type"], "Fail");
    }
    assert_eq!(
        top[CONTINGENCY]["Next"].as_str().map(|n| &top[n]["Type"]),
        Some(&json!("Fail"))
    );
    for (name, state) in top {
        let kind = state["Type"].as_str().unwrap();
        if !matches!(kind, "Task" | "Parallel") {
            continue;
        }
        if let Some((_, why)) = CATCH_EXCEPTIONS.iter().find(|(n, _)| n == name) {
            assert!(
                state["Catch"].as_array().is_some_and(|c| !c.is_empty()),
                "{name} ({why}) still needs a Catch"
            );
            continue;
        }
        let catch_all = state["Catch"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["ErrorEquals"] == json!(["States.ALL"]))
            .unwrap_or_else(|| panic!("{name} has no States.ALL Catch"));
        assert_eq!(catch_all["Next"], CONTINGENCY_ENTRY, "{name}");
        assert_eq!(
            catch_all["ResultPath"], "$.failure",
            "{name}: the notice reads $.failure"
        );
    }
    // Synthesised failures (timeouts, drift) go through the notice too.
    for (name, state) in top {
        if state["Type"] == "Pass" && state["ResultPath"] == "$.failure" {
            assert_eq!(state["Next"], CONTINGENCY_ENTRY, "{name}");
        }
    }
    // Every top-level Fail other than the two documented ends is reached only via the notice.
    let fails: Vec<&String> = top
        .iter()
        .filter(|(_, s)| s["Type"] == "Fail")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(fails, ["Request or plan invalid", "Rollback failed"]);
}

#[test]
fn every_final_notice_links_the_report_written_just_before_it() {
    let def = definition();
    let top = def["States"].as_object().unwrap();
    for (report, outcome, notice) in FINAL_NOTICES {
        let state = &top[*report];
        let payload = &state["Parameters"]["Payload"];
        assert_eq!(payload["action"], "report", "{report}");
        assert_eq!(payload["outcome"], *outcome, "{report}");
        assert_eq!(payload["execution_arn.$"], "$$.Execution.Id", "{report}");
        assert_eq!(
            payload["error.$"].as_str(),
            (*outcome == "failed").then_some("$.failure"),
            "{report}: the failure report names the execution's error"
        );
        // Written or not, the notice follows, with the location or the error at $.report.
        assert_eq!(state["Next"], *notice, "{report}");
        assert_eq!(state["ResultPath"], "$.report", "{report}");
        let catches = state["Catch"].as_array().unwrap();
        assert_eq!(catches.len(), 1, "{report}");
        assert_eq!(catches[0]["ErrorEquals"], json!(["States.ALL"]), "{report}");
        assert_eq!(catches[0]["Next"], *notice, "{report}");
        assert_eq!(catches[0]["ResultPath"], "$.report", "{report}");
        assert_eq!(
            top[*notice]["Parameters"]["Payload"]["report.$"], "$.report",
            "{notice} links the report"
        );
        // Nothing reaches the notice except through its report step.
        for (name, other) in top {
            if name != report {
                assert!(
                    !successors(other).iter().any(|n| n == notice),
                    "{name} goes to {notice} without writing the report first"
                );
            }
        }
    }
}

#[test]
fn every_task_retries_transient_errors_with_jittered_backoff() {
    for (path, name, state) in tasks() {
        let retry = state["Retry"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}/{name}: no Retry"));
        let covered: BTreeSet<&str> = retry
            .iter()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        for e in RETRIED {
            assert!(covered.contains(e), "{path}/{name}: {e} is not retried");
        }
        for r in retry {
            assert_eq!(r["JitterStrategy"], "FULL", "{path}/{name}");
            assert!(r["MaxDelaySeconds"].as_u64().is_some(), "{path}/{name}");
            assert!(
                r["BackoffRate"].as_f64().unwrap_or(1.0) > 1.0,
                "{path}/{name}"
            );
            assert!(
                !r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("States.ALL")),
                "{path}/{name}"
            );
        }
    }
}

fn contract_actions(function: &str) -> &'static [&'static str] {
    match function {
        "PlanFunctionArn" => contract::plan::ACTIONS,
        "SnapshotFunctionArn" => contract::snapshot::ACTIONS,
        // The restore binary's two deployments; which actions each serves is the template's
        // ROLLBACK_RESTORE_ACTIONS (checked below).
        "RestoreFunctionArn" | "DrillCleanupFunctionArn" => contract::restore::ACTIONS,
        "RetagFunctionArn" => contract::retag::ACTIONS,
        "DeployUndoFunctionArn" => contract::deploy_undo::ACTIONS,
        "SmokeTestFunctionArn" => contract::smoke_test::ACTIONS,
        "NotifyFunctionArn" => contract::notify::ACTIONS,
        "InfraFunctionArn" => contract::infra::ACTIONS,
        "MobileFunctionArn" => contract::mobile::ACTIONS,
        other => panic!("the definition calls {other}, which no contract describes"),
    }
}

#[test]
fn every_function_action_exists_in_its_contract() {
    let mut used = BTreeSet::new();
    for (path, name, state) in tasks() {
        let params = &state["Parameters"];
        let function = params["FunctionName"].as_str().unwrap();
        let key = function
            .strip_prefix("${")
            .and_then(|f| f.strip_suffix('}'))
            .unwrap_or_else(|| {
                panic!("{path}/{name}: FunctionName {function} is not a substitution")
            });
        let action = params["Payload"]["action"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}/{name}: no action"));
        assert!(
            contract_actions(key).contains(&action),
            "{path}/{name}: {key} has no action {action:?} (contract: {:?})",
            contract_actions(key)
        );
        let function = key.strip_suffix("Arn").unwrap_or(key);
        if let Some(served) = template_served_actions(function) {
            assert!(
                served.iter().any(|a| a == action),
                "{path}/{name}: {function} deployment does not serve {action:?} \
                 (its ROLLBACK_RESTORE_ACTIONS in infra/template.yaml: {served:?})"
            );
        }
        let resource = state["Resource"].as_str().unwrap();
        assert!(
            resource == "arn:aws:states:::lambda:invoke"
                || resource == "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "{path}/{name}: {resource}"
        );
        if resource.ends_with("waitForTaskToken") {
            assert_eq!(
                params["Payload"]["task_token.$"], "$$.Task.Token",
                "{path}/{name}"
            );
            assert!(state["TimeoutSecondsPath"].is_string() || state["TimeoutSeconds"].is_u64());
        } else {
            assert!(
                state["ResultSelector"].is_object() || state["ResultPath"].is_null(),
                "{path}/{name}: keep the lambda:invoke envelope out of the state"
            );
        }
        // The envelope every function parses (validate reads the raw input instead).
        if action != "validate" {
            for field in ["plan.$", "request.$", "execution.$"] {
                assert!(
                    params["Payload"][field].is_string(),
                    "{path}/{name}: Payload lacks {field}"
                );
            }
        }
        used.insert((key.to_owned(), action.to_owned()));
    }
    // The definition exercises the whole rollback, not a subset.
    for needed in [
        ("PlanFunctionArn", "validate"),
        ("PlanFunctionArn", "guard"),
        ("SnapshotFunctionArn", "create"),
        ("RestoreFunctionArn", "swap"),
        ("DrillCleanupFunctionArn", "cleanup-drill"),
        ("RetagFunctionArn", "apply"),
        ("InfraFunctionArn", "plan"),
        ("InfraFunctionArn", "summary"),
        ("InfraFunctionArn", "apply"),
        ("DeployUndoFunctionArn", "undo"),
        ("DeployUndoFunctionArn", "suspend-gitops"),
        ("DeployUndoFunctionArn", "restart"),
        ("SmokeTestFunctionArn", "run"),
        ("NotifyFunctionArn", "approval-request"),
        ("NotifyFunctionArn", "escalate"),
        ("NotifyFunctionArn", "failure"),
    ] {
        assert!(
            used.contains(&(needed.0.to_owned(), needed.1.to_owned())),
            "{needed:?} unused"
        );
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[test]
fn every_rollback_error_name_exists_in_core() {
    let mut strings = Vec::new();
    collect_strings(&definition(), &mut strings);
    let names: BTreeSet<String> = strings
        .iter()
        .filter(|s| s.starts_with("Rollback.") && !s.contains(' '))
        .cloned()
        .collect();
    assert!(names.contains("Rollback.Rejected") && names.contains("Rollback.WaitTimedOut"));
    for name in names {
        assert!(
            ErrorKind::from_error_name(&name).is_some(),
            "{name} is not an ErrorKind"
        );
    }
    assert_eq!(contract::approval::REJECTED_ERROR, "Rollback.Rejected");
}

/// `DefinitionSubstitutions:` keys in the template (a line scan: the template uses CloudFormation
/// tags that plain YAML parsers reject).
fn template_substitutions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap();
    let mut keys = BTreeSet::new();
    let mut indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        if trimmed.starts_with("DefinitionSubstitutions:") {
            indent = Some(depth);
            continue;
        }
        if let Some(base) = indent {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if depth <= base {
                indent = None;
                continue;
            }
            if let Some((key, _)) = trimmed.split_once(':')
                && depth == base + 2
            {
                keys.insert(key.trim().to_owned());
            }
        }
    }
    keys
}

#[test]
fn every_substitution_is_provided_by_the_template() {
    let re = regex_lite(&rollback_e2e::definition());
    let provided = template_substitutions();
    assert!(
        !provided.is_empty(),
        "no DefinitionSubstitutions found in infra/template.yaml"
    );
    for key in &re {
        assert!(
            provided.contains(key),
            "${{{key}}} is not in the template's DefinitionSubstitutions"
        );
    }
    assert_eq!(re.len(), 11, "{re:?}");
}

/// The `ROLLBACK_RESTORE_ACTIONS` of the template's function `logical_id` (a line scan, as
/// above), when it sets one: the actions that deployment of the restore binary serves.
fn template_served_actions(logical_id: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap();
    let header = format!("{logical_id}:");
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        if depth == 2 && !trimmed.starts_with('#') {
            inside = trimmed == header;
            continue;
        }
        if inside && let Some(value) = trimmed.strip_prefix("ROLLBACK_RESTORE_ACTIONS:") {
            return Some(value.split(',').map(|a| a.trim().to_owned()).collect());
        }
    }
    None
}

/// `${Name}` placeholders in the definition.
fn regex_lite(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find('}') {
            out.insert(rest[..j].to_owned());
            rest = &rest[j..];
        }
    }
    out
}

#[test]
fn the_state_stays_far_below_256_kb_at_the_plan_maximum() {
    let failure = serde_json::to_vec(&failure_state()).unwrap().len();
    println!(
        "worst-case failure-path state: {failure} bytes ({:.1}% of 256 KiB)",
        failure as f64 * 100.0 / 262_144.0
    );
    // 88 %: the infrastructure section (its names at AWS's maxima) took the failure path from
    // 84.7 % to 85.2 %, the mobile section (secret names and parameters at their maxima, the
    // mobile progress record) to 86.2 %, the smoke checks' HTTP details and logs checks to
    // 87.8 %, the channels section at its 600-byte bound to 88.0 %; 31 KiB stay free for what
    // Step Functions adds around a task's input.
    assert!(failure < 262_144 * 885 / 1000, "{failure} bytes");
    let state = success_state();
    let bytes = serde_json::to_vec(&state).unwrap().len();
    for (key, value) in state.as_object().unwrap() {
        println!(
            "  {key}: {} bytes",
            serde_json::to_vec(value).unwrap().len()
        );
    }
    // The fullest state: Report success, after every step stored its selected result.
    println!(
        "worst-case execution state: {bytes} bytes ({:.1}% of 256 KiB)",
        bytes as f64 * 100.0 / 262_144.0
    );
    // Every count and every string at its maximum: must fit, with room for the envelope. 93 %:
    // the Terraform summary (10 addresses of each kind at 150 characters, 10 providers, the
    // planning error) and the two build references took it from 84.0 % to 88.7 %, the mobile
    // section, its resolution and the halt and raise results to 92.6 %, the smoke logs checks
    // and HTTP details to 95.0 %, and every check's reason cut to the 200 characters a notice
    // shows (MAX_REASON_CHARS, was 300) back to 92.8 %, the SQL comparisons, the
    // pre-approval's reason and the channels section (600 bytes) to 93.1 %; 17.5 KiB stay
    // free.
    // Pessimistic: the results kept only inside a Parallel branch (infra_plan, infra_apply,
    // mobile_halt, mobile_raise: 4.5 KiB) never reach the top-level state.
    assert!(bytes < 262_144 * 935 / 1000, "{bytes} bytes");
    TYPICAL.set(true);
    let typical = serde_json::to_vec(&success_state()).unwrap().len();
    println!("maximum counts, typical name lengths: {typical} bytes");
    assert!(typical < 262_144 / 3, "{typical} bytes");
    TYPICAL.set(false);
    // The plan really is at its maximum sizes (and valid).
    let plan = rollback_core::Plan::from_value(state["plan"].clone()).unwrap();
    assert_eq!(plan.databases.len(), rollback_core::plan::MAX_DATABASES);
    assert_eq!(plan.images.len(), rollback_core::plan::MAX_IMAGES);
    assert_eq!(
        plan.cluster.unwrap().deployments.len(),
        rollback_core::plan::MAX_DEPLOYMENTS
    );
}

thread_local! {
    /// Off: every string at its longest allowed length. On: at a typical length (24).
    static TYPICAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn long(prefix: &str, i: usize, len: usize) -> String {
    let len = if TYPICAL.get() { len.min(24) } else { len };
    let mut s = format!("{prefix}{i}-");
    while s.len() < len {
        s.push('x');
    }
    s
}

/// The plan's `channels` at its bound: the validator refuses a section over
/// `MAX_CHANNELS_BYTES` of JSON, whatever its fields hold.
fn worst_case_channels() -> Value {
    use rollback_core::plan::channels::MAX_CHANNELS_BYTES;
    use rollback_core::plan::channels::MAX_MESSAGE_CHARS;
    let mut channels = json!({
        "statuspage": {"page_id": "p".repeat(12), "api_key_secret": "notice-channels/s/statuspage",
                       "messages": {"identified": "i".repeat(MAX_MESSAGE_CHARS), "monitoring": ""}},
        "slack": {"webhook_secret": "notice-channels/s/slack"}
    });
    let room = MAX_CHANNELS_BYTES - serde_json::to_vec(&channels).unwrap().len();
    channels["statuspage"]["messages"]["monitoring"] = json!("m".repeat(room));
    assert_eq!(
        serde_json::to_vec(&channels).unwrap().len(),
        MAX_CHANNELS_BYTES
    );
    channels
}

/// The `mobile` resolution at its largest: every listed Play release named at Play's 50
/// characters with 20 version codes. (A failed `resolve` leaves only its error instead.)
fn worst_case_mobile(at: &str) -> Value {
    let release = |i: usize, status: &str| {
        json!({"name": long("4.2.", i, 50), "version_codes": (0..20).map(|c| format!("{}", 1_000_000_000 + c)).collect::<Vec<_>>(),
        "status": status, "user_fraction": 0.123456789})
    };
    let minimum = json!({"ssm_parameter": format!("/{}", long("m", 0, 255)), "current": long("4.", 0, 64), "stable_version": long("4.", 1, 64), "safe_build_live": true});
    json!({
        "android": {"package_name": long("com.p", 0, 150), "track": long("t", 0, 100),
                    "releases": (0..rollback_core::contract::mobile::MAX_LISTED_RELEASES).map(|i| release(i, "inProgress")).collect::<Vec<_>>(),
                    "to_halt": release(0, "inProgress"), "already_halted": release(1, "halted"), "completed": release(2, "completed"),
                    "minimum_version": minimum},
        "ios": {"app_id": "1".repeat(20), "version": long("4.", 0, 64), "version_id": long("v", 0, 64),
                "phased_release": {"id": long("p", 0, 64), "state": "ACTIVE", "current_day": 7, "total_pause_days": 30, "start_date": at},
                "minimum_version": minimum}
    })
}

/// Every field the definition keeps, filled as large as the plan limits allow.
fn worst_case_state() -> Value {
    use rollback_core::plan::*;
    let at = "2024-05-01T12:00:00Z";
    let plan = json!({
        "service": long("s", 0, 40),
        "databases": (0..MAX_DATABASES).map(|i| json!({"kind": "aurora-cluster", "id": long("db", i, 63)})).collect::<Vec<_>>(),
        "images": (0..MAX_IMAGES).map(|i| json!({"repository": long("repo", i, 200), "release_tag": long("r", i, 128), "stable_tag": long("s", i, 128), "registry_id": "123456789012"})).collect::<Vec<_>>(),
        "cluster": {"name": long("c", 0, 100), "namespace": long("n", 0, 63),
                    "deployments": (0..MAX_DEPLOYMENTS).map(|i| long("d", i, 253)).collect::<Vec<_>>(),
                    "gitops": (0..MAX_GITOPS).map(|i| json!({"kind": "argocd", "application": long("app", i, 253), "namespace": long("argocd", 0, 63)})).collect::<Vec<_>>()},
        "smoke": {
            // Every check with a method; the shared detail budget (MAX_SMOKE_DETAIL_BYTES) taken
            // by one body and the logs checks' groups and patterns.
            "http": (0..MAX_HTTP_CHECKS).map(|i| json!({"name": long("h", i, 100), "url": format!("https://{}.example.com/health", long("h", i, 200)), "expect_status": 200, "body_contains": long("b", i, 200), "timeout_ms": 3000,
                "method": "OPTIONS", "body": if i == 0 { long("b", 0, MAX_SMOKE_DETAIL_BYTES - 200) } else { String::new() }})).collect::<Vec<_>>(),
            "logs": (0..MAX_LOGS_CHECKS).map(|i| json!({"name": long("l", i, 100), "log_groups": [format!("/{i}")], "filter_pattern": "ERROR", "max_matches": 1000, "window_minutes": 1440, "timeout_ms": 60000})).collect::<Vec<_>>(),
            "sql": (0..MAX_SQL_PROBES).map(|i| json!({"name": long("q", i, 100), "database": long("db", i % MAX_DATABASES, 63), "secret_arn": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{}", long("s", i, 200)), "query": long("select ", i, 500), "expect_rows": 1})).collect::<Vec<_>>(),
            "alarms": (0..MAX_ALARMS).map(|i| long("a", i, 255)).collect::<Vec<_>>()
        },
        "infrastructure": {"codebuild_project": long("p", 0, 255), "stable_commit_parameter": format!("/{}", long("s", 0, 255)),
                           "current_commit_parameter": format!("/{}", long("c", 0, 255)), "artifact_bucket": long("b", 0, 63),
                           "artifact_prefix": long("p", 0, 128)},
        "mobile": {"android": {"package_name": format!("com.{}", "p".repeat(146)), "track": long("t", 0, 100), "credentials_secret": long("s", 0, 600), "halt_completed": true,
                               "minimum_version": {"ssm_parameter": format!("/{}", long("m", 0, 255)), "stable_version": format!("4.{}", "9".repeat(62)), "safe_build_live": true}},
                   "ios": {"app_id": "1".repeat(20), "version": format!("{0}.{0}.{0}", "9".repeat(10)), "credentials_secret": long("s", 1, 600),
                           "minimum_version": {"ssm_parameter": format!("/{}", long("m", 1, 255)), "stable_version": format!("5.{}", "9".repeat(62)), "safe_build_live": true}}},
        // The channels section at its bound (MAX_CHANNELS_BYTES as JSON).
        "channels": worst_case_channels()
    });
    let sha1 = "a".repeat(40);
    let addresses = |kind: &str| {
        (0..rollback_core::terraform_plan::MAX_LISTED)
            .map(|i| long(kind, i, rollback_core::terraform_plan::MAX_ADDRESS_CHARS))
            .collect::<Vec<_>>()
    };
    let resolution = json!({
        "codebuild_project": long("p", 0, 255), "stable_commit": sha1, "current_commit": sha1, "needs_plan": true,
        "artifact_bucket": long("b", 0, 63), "artifact_key": long("k", 0, 250), "plan_build": long("p", 0, 300), "plan_sha256": "f".repeat(64),
        "summary": {"terraform_version": "1.10.0-beta1", "providers": (0..rollback_core::terraform_plan::MAX_PROVIDERS).map(|i| (long("registry.terraform.io/p", i, 100), json!(long("~> ", i, 40)))).collect::<serde_json::Map<_, _>>(),
                    "add": 100000, "change": 100000, "destroy": 100000, "replace": 100000, "forget": 100000,
                    "destroyed": addresses("aws_x.d"), "replaced": addresses("aws_x.r"), "protected": addresses("aws_db_instance.p"), "protected_total": 100000}});
    let mobile = worst_case_mobile(at);
    let build = json!({"id": long("p", 0, 300), "purpose": "apply", "codebuild_project": long("p", 0, 255), "source_version": sha1,
                       "artifact_bucket": long("b", 0, 63), "artifact_key": long("k", 0, 250), "started_now": true});
    let digest = format!("sha256:{}", "a".repeat(64));
    let images: Vec<Value> = (0..MAX_IMAGES).map(|i| json!({
        "repository": long("repo", i, 200), "release_tag": long("r", i, 128), "stable_tag": long("s", i, 128),
        "stable_digest": digest, "release_digest": digest, "stable_pushed_at": at, "release_pushed_at": at,
        "retag_needed": true, "immutable_tags": false, "note": long("note", i, 200)})).collect();
    let deployments: Vec<Value> = (0..MAX_DEPLOYMENTS).map(|i| json!({
        "name": long("d", i, 253), "namespace": long("n", 0, 63), "current_revision": 12, "target_revision": 11,
        "current_images": (0..4).map(|_| format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}@{digest}", long("repo", i, 200))).collect::<Vec<_>>(),
        "target_images": (0..4).map(|_| format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}@{digest}", long("repo", i, 200))).collect::<Vec<_>>(),
        "current_rolled_out_at": at, "replicas": 10, "matches_stable": true, "note": long("note", i, 350),
        "restart_needed": true,
        "pull_policy_keeps_cache": true})).collect();
    let gitops_results: Vec<Value> = (0..MAX_GITOPS).map(|i| json!({
        "kind": "argocd", "namespace": long("argocd", 0, 63), "name": long("app", i, 253), "outcome": "suspended",
        "previous": long("{\"selfHeal\":true", i, 120), "suspended_by": long("alarm-", 0, 80),
        "message": long("auto-sync suspended by rollback ", i, 160)})).collect();
    let databases: Vec<Value> = (0..MAX_DATABASES).map(|i| json!({
        "database": long("db", i, 63), "kind": "aurora-cluster", "snapshot_id": long("predeploy-", i, 255),
        "snapshot_created_at": at, "snapshot_type": "manual", "release": long("v", i, 128),
        "data_loss": {"from": at, "to": at, "seconds": 5400, "summary": long("writes from ", i, 300)}})).collect();
    let record = |name: &str| json!({"name": name, "status": "done", "detail": long("detail ", 0, 120), "at": at});
    let observed_dbs: Vec<Value> = (0..MAX_DATABASES).map(|i| json!({
        "database": long("db", i, 63), "kind": "aurora-cluster", "placement": "between", "status": "available",
        "aside": long("db", i, 63), "aside_status": "available", "restore_id": long("db", i, 63),
        "restore_status": "available", "summary": long("NO DATABASE at ", i, 400)})).collect();
    let reverted = json!({"complete": false, "needs_person": true, "databases": observed_dbs.iter().map(|o| json!({
        "database": o["database"], "kind": "aurora-cluster", "state": "needs-person", "observed": o, "reverted": true,
        "note": long("renaming failed: ", 0, 600),
        "commands": (0..5).map(|i| long("aws rds modify-db-cluster --db-cluster-identifier ", i, 220)).collect::<Vec<_>>()})).collect::<Vec<_>>()});
    let mut checks: Vec<Value> = (0..MAX_HTTP_CHECKS + MAX_SQL_PROBES + MAX_ALARMS).map(|i| json!({
        "kind": "http", "name": long("h", i, 255), "passed": true, "elapsed_ms": 1234, "attempts": 3, "reason": long("200 OK ", i, rollback_core::contract::smoke_test::MAX_REASON_CHARS)})).collect();
    checks.extend((0..MAX_LOGS_CHECKS).map(|i| json!({
        "kind": "logs", "name": long("l", i, 100), "passed": false, "elapsed_ms": 1234, "attempts": 1,
        "reason": long("1001 matches ", i, rollback_core::contract::smoke_test::MAX_LOGS_REASON_CHARS)})));
    json!({
        "plan": plan,
        "request": {"trigger": {"kind": "alarm", "alarm_name": long("a", 0, 255), "alarm_arn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}", long("a", 0, 255)),
                    "state": "ALARM", "previous_state": "OK", "state_changed_at": at, "previous_state_changed_at": at,
                    "state_reason": long("reason ", 0, 1000), "event_id": long("e", 0, 36)},
                    "reason": long("alarm ", 0, 1000), "scope": "app+database", "mode": "live", "release": long("v", 0, 128),
                    "plan_source": {"parameter": format!("/{}", long("plans/", 0, 1010)), "version": 100_000}},
        "act": true, "skip_reason": null, "dedup_key": long("alarm-", 0, 80),
        "scope": {"databases": true, "images": true, "cluster": true, "infrastructure": true, "mobile": true},
        "timing": {"approval_timeout_seconds": 604800, "escalate_after_seconds": 604740, "escalation_tail_seconds": 120,
                   "poll_interval_seconds": 3600, "max_polls": 86400, "infra_max_polls": 3600, "smoke_max_retries": 7200, "smoke_retry_seconds": 3600,
                   "smoke_settle_seconds": 7200, "smoke_settle_reason": long("waits up to 2 h 0 min for ", 0, 300)},
        "found": {"restore": {"databases": databases},
                  "retag": {"images": images},
                  "undo": {"output": {"deployments": deployments, "release_time": at, "restart_needed": true,
                                      "warnings": (0..MAX_DEPLOYMENTS).map(|i| long("warning ", i, 300)).collect::<Vec<_>>()}},
                  "infra": {"resolution": merge(resolution, json!({"plan_error": {"Error": "Rollback.InfrastructureFailed", "Cause": "x".repeat(600)}})), "error": {"Error": "Rollback.InfrastructureFailed", "Cause": "x".repeat(600)}},
                  "mobile": {"resolution": mobile, "failure": {"Error": "Rollback.StoreCredentials", "Cause": "x".repeat(600)}}},
        "mobile_halt": {"summary": "x".repeat(1200)},
        "mobile_raise": {"summary": "x".repeat(1200)},
        "infra_plan": {"build": build},
        "infra_apply": {"build": build},
        "guard": {"proceed": true, "duplicate_of": null},
        "fingerprint": {"sha256": "f".repeat(64)},
        "polls": {"backup": {"count": 86400}, "restore": {"count": 86400}, "swap": {"count": 86400}, "revert": {"count": 86400}, "final_revert": {"count": 86400}, "settle": {"count": 86400}, "cleanup": {"count": 86400}, "rollout": {"count": 86400}, "infra_plan": {"count": 3600}, "infra_apply": {"count": 3600}},
        "smoke_retry": {"count": 7200, "wait": 3600, "next": 3600},
        "checked": {"complete": true},
        "swapped": {"complete": true, "aside": (0..MAX_DATABASES).map(|i| long("db", i, 63)).collect::<Vec<_>>()},
        // A person's decision, or the pre-approval policy's with its reason and grace period.
        "decided": {"Error": "Approval.Decided", "Cause": "x".repeat(400), "pre_approved": true,
                    "reason": "x".repeat(rollback_core::contract::plan::PRE_APPROVE_REASON_MAX_CHARS), "grace_seconds": 900},
        // The report step's error (larger than its location: three URLs of at most ≈ 650
        // bytes): notify's report action cuts every message to 400 characters
        // (rollback_notify::report::MAX_ERROR_MESSAGE), its Display adds the operation and code.
        "report": {"Error": "Rollback.AwsError", "Cause": "x".repeat(600)},
        "progress": {
            "backup": {"name": "backup", "status": "in-progress", "detail": long("d", 0, 120), "at": at,
                       "snapshots": (0..MAX_DATABASES).map(|i| json!({"database": long("db", i, 63), "kind": "aurora-cluster", "snapshot_id": long("rollback-", i, 255), "purpose": "pre-rollback", "status": "creating", "created_at": at, "progress_percent": 10, "created_now": true})).collect::<Vec<_>>()},
            "approval": {"name": "approval", "status": "done", "detail": "approved", "at": at,
                         "decision": {"decision": "approve", "scope": "app+database", "approver": long("someone@", 0, 254), "decided_at": at, "fingerprint": "f".repeat(64)}},
            "pause": record("pause"),
            "restore_retag": {"databases": merge(record("databases"), json!({"aside": (0..MAX_DATABASES).map(|i| long("db", i, 63)).collect::<Vec<_>>()})),
                              "images": record("images"),
                              "infrastructure": record("infrastructure"),
                              "mobile": record("mobile")},
            "gitops": merge(record("gitops"), json!({"objects": gitops_results})),
            "undo": record("undo"),
            "restart": record("restart"),
            "resume": record("resume"),
            "rollout": record("rollout"),
            "smoke": record("smoke")
        },
        "smoke": {"passed": true, "checks": checks, "started_at": at, "elapsed_ms": 60000, "budget_exhausted": false, "summary": long("60 of 60 ", 0, 300)},
        // Inside the databases branch only: revert's completion.
        "reverted": {"complete": false, "needs_person": true},
        // The failure path (see failure_state): after "Keep what the notice needs".
        "final_revert": reverted,
        "resumed_after_failure": {"deployments": (0..MAX_DEPLOYMENTS).map(|i| json!({
            "name": long("d", i, 253), "namespace": long("n", 0, 63), "replicas_before": 0, "replicas_after": 10,
            "changed": true, "message": long("scaled back to ", i, 300)})).collect::<Vec<_>>()},
        "observed": {
            "databases": {"drill": false, "databases": observed_dbs},
            "images": {"images": images},
            "deployments": {"complete": false, "deployments": (0..MAX_DEPLOYMENTS).map(|i| json!({
                "name": long("d", i, 253), "namespace": long("n", 0, 63), "complete": false, "revision": 12,
                "generation": 5, "observed_generation": 5, "replicas": 10, "updated_replicas": 10, "total_replicas": 10,
                "available_replicas": 10, "paused_replicas": 10,
                "images": (0..4).map(|_| format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}@{digest}", long("repo", i, 200))).collect::<Vec<_>>(),
                "message": long("Waiting for deployment ", i, 300)})).collect::<Vec<_>>(),
                "gitops": (0..MAX_GITOPS).map(|i| json!({"kind": "argocd", "namespace": long("argocd", 0, 63), "name": long("app", i, 253),
                    "suspended": true, "suspended_by": long("alarm-", 0, 80), "previous": long("{\"selfHeal\":true", i, 120),
                    "message": long("not observed ", i, 200)})).collect::<Vec<_>>()},
            "at": at
        }
    })
}

/// The failure path's state: what "Keep what the notice needs" keeps, plus the revert and
/// the observations, at their largest.
fn failure_state() -> Value {
    let full = worst_case_state();
    let mut out = serde_json::Map::new();
    for key in [
        "plan",
        "request",
        "timing",
        "progress",
        "final_revert",
        "resumed_after_failure",
        "observed",
        "report",
    ] {
        out.insert(key.into(), full[key].clone());
    }
    out.insert(
        "failure".into(),
        json!({"Error": "Rollback.SwapFailed", "Cause": "x".repeat(32_768)}),
    );
    out.insert("polls".into(), json!({"final_revert": {"count": 86400}}));
    Value::Object(out)
}

/// The success path's state: everything but what only the failure path writes.
fn success_state() -> Value {
    let mut state = worst_case_state();
    for key in ["final_revert", "resumed_after_failure", "observed"] {
        state.as_object_mut().unwrap().remove(key);
    }
    state
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

#[test]
fn the_worst_case_state_has_every_field_the_definition_writes() {
    // Each ResultPath the definition writes to must be a key of the worst-case state, so the
    // size test above cannot silently miss a field.
    let state = worst_case_state();
    let mut paths = BTreeMap::new();
    for scope in all_scopes() {
        for (name, s) in &scope.states {
            if let Some(p) = s["ResultPath"].as_str() {
                paths.insert(p.to_owned(), format!("{}/{name}", scope.path));
            }
        }
    }
    for (path, at) in paths {
        if path == "$" {
            continue;
        }
        let mut v = &state;
        for part in path.trim_start_matches("$.").split('.') {
            v = &v[part];
        }
        assert!(
            !v.is_null() || path == "$.failure" || path.ends_with("_failure"),
            "{path} (written by {at}) is missing from the worst case"
        );
    }
}
