//! What a Terraform plan would do, read from `terraform show -json plan.tfplan` (Terraform's
//! documented JSON output format: `resource_changes[].change.actions`).
//!
//! The infrastructure rollback shows the approver this summary before anything is applied, and
//! refuses a destroy of a protected resource type unless the approver allowed destroys. Counts
//! follow Terraform's own "Plan: X to add, Y to change, Z to destroy" line: a replacement
//! (`["delete","create"]` or `["create","delete"]`) counts once in add and once in destroy, and
//! is also listed as a replacement. Data-source reads and no-ops change nothing and are not
//! counted; `forget` (a `removed` block without destroy) is counted apart, since the resource
//! stays.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Plan documents larger than this are not a service's plan (and would not fit the email).
pub const MAX_PLAN_BYTES: usize = 64 * 1024 * 1024;
/// Addresses listed per kind in the summary; the counts stay exact. The summary travels in the
/// execution's state (256 KiB) and in every approval link, so it stays small.
pub const MAX_LISTED: usize = 10;
/// Characters kept of one address (longer ones end in `…`).
pub const MAX_ADDRESS_CHARS: usize = 150;
/// Providers listed (the rest are counted in the plan JSON, not here).
pub const MAX_PROVIDERS: usize = 10;

/// The approver's view of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// The Terraform version that made the plan (`unknown` when it does not say).
    pub terraform_version: String,
    /// Provider name → version constraint, from the configuration.
    #[serde(default)]
    pub providers: BTreeMap<String, String>,
    /// Resources created (replacements included).
    pub add: usize,
    /// Resources updated in place.
    pub change: usize,
    /// Resources destroyed (replacements included).
    pub destroy: usize,
    /// Replacements (each also counted in `add` and `destroy`).
    pub replace: usize,
    /// Resources a `removed` block takes out of the state without destroying them.
    #[serde(default)]
    pub forget: usize,
    /// Addresses of the resources destroyed (not replaced), at most [`MAX_LISTED`].
    #[serde(default)]
    pub destroyed: Vec<String>,
    /// Addresses of the resources replaced, at most [`MAX_LISTED`].
    #[serde(default)]
    pub replaced: Vec<String>,
    /// Destroyed or replaced resources whose type the plan protects, at most [`MAX_LISTED`].
    #[serde(default)]
    pub protected: Vec<String>,
    /// How many destroyed or replaced resources have a protected type (exact).
    #[serde(default)]
    pub protected_total: usize,
}

impl PlanSummary {
    /// Terraform's own summary line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} to add, {} to change, {} to destroy",
            self.add, self.change, self.destroy
        );
        if self.replace > 0 {
            line.push_str(&format!(" ({} replaced)", self.replace));
        }
        line
    }

    /// Whether applying the plan would change nothing (no add, change, destroy or forget).
    pub fn changes_nothing(&self) -> bool {
        self.add == 0 && self.change == 0 && self.destroy == 0 && self.forget == 0
    }
}

/// Why a plan document cannot be summarized: nothing is applied from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Not JSON, or JSON of the wrong shape (what is wrong).
    #[error("the plan is not JSON from `terraform show -json`: {0}")]
    NotJson(String),
    /// Larger than [`MAX_PLAN_BYTES`] (its size).
    #[error("the plan is {0} bytes, more than the {MAX_PLAN_BYTES} a service's plan may be")]
    TooLarge(usize),
    /// No `format_version`: not `terraform show -json` output.
    #[error("the plan has no format_version: it is not `terraform show -json` output")]
    NoFormatVersion,
    /// A `format_version` other than 1.x.
    #[error(
        "the plan's format_version {0:?} is not 1.x, the version this reads; upgrade the \
         rollback system or pin Terraform"
    )]
    UnsupportedFormat(String),
    /// One resource change cannot be read.
    #[error("resource_changes[{index}] ({address}): {why}")]
    BadChange {
        /// Its index in `resource_changes`.
        index: usize,
        /// Its address (`?` when it has none).
        address: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Summarizes a plan document; `protected_types` are the resource types (e.g.
/// `aws_db_instance`) whose destroy or replacement must be approved explicitly.
pub fn summarize(document: &[u8], protected_types: &[String]) -> Result<PlanSummary, PlanError> {
    if document.len() > MAX_PLAN_BYTES {
        return Err(PlanError::TooLarge(document.len()));
    }
    let plan: Value =
        serde_json::from_slice(document).map_err(|e| PlanError::NotJson(e.to_string()))?;
    let format = plan
        .get("format_version")
        .and_then(Value::as_str)
        .ok_or(PlanError::NoFormatVersion)?;
    if !format.starts_with("1.") {
        return Err(PlanError::UnsupportedFormat(format.to_owned()));
    }
    let mut summary = PlanSummary {
        terraform_version: plan
            .get("terraform_version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        providers: providers(&plan),
        ..Default::default()
    };
    // Absent when the plan changes nothing.
    let changes = match plan.get("resource_changes") {
        None | Some(Value::Null) => return Ok(summary),
        Some(Value::Array(changes)) => changes,
        Some(_) => {
            return Err(PlanError::NotJson(
                "resource_changes is not an array".into(),
            ));
        }
    };
    for (index, change) in changes.iter().enumerate() {
        let address = change
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let bad = |why: &str| PlanError::BadChange {
            index,
            address: address.clone(),
            why: why.to_owned(),
        };
        let actions: Vec<&str> = change
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no change.actions array"))?
            .iter()
            .map(|a| a.as_str().ok_or_else(|| bad("an action is not a string")))
            .collect::<Result<_, _>>()?;
        let kind = change.get("type").and_then(Value::as_str).unwrap_or("");
        let protected = protected_types.iter().any(|t| t == kind);
        match actions.as_slice() {
            ["no-op"] | ["read"] => {}
            ["create"] => summary.add += 1,
            ["update"] => summary.change += 1,
            ["forget"] => summary.forget += 1,
            ["delete"] => {
                summary.destroy += 1;
                push_listed(&mut summary.destroyed, &address);
                if protected {
                    summary.protected_total += 1;
                    push_listed(&mut summary.protected, &address);
                }
            }
            ["delete", "create"] | ["create", "delete"] => {
                summary.add += 1;
                summary.destroy += 1;
                summary.replace += 1;
                push_listed(&mut summary.replaced, &address);
                if protected {
                    summary.protected_total += 1;
                    push_listed(&mut summary.protected, &address);
                }
            }
            other => return Err(bad(&format!("unknown actions {other:?}"))),
        }
    }
    Ok(summary)
}

fn push_listed(list: &mut Vec<String>, address: &str) {
    if list.len() < MAX_LISTED {
        list.push(cut(address, MAX_ADDRESS_CHARS));
    }
}

/// `text` in at most `max` characters, ending in `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max - 1) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// `configuration.provider_config.<name>.version_constraint`, by provider name.
fn providers(plan: &Value) -> BTreeMap<String, String> {
    plan.pointer("/configuration/provider_config")
        .and_then(Value::as_object)
        .map(|providers| {
            providers
                .iter()
                .take(MAX_PROVIDERS)
                .map(|(key, config)| {
                    let name = config
                        .get("full_name")
                        .or_else(|| config.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or(key);
                    let version = config
                        .get("version_constraint")
                        .and_then(Value::as_str)
                        .unwrap_or("any");
                    (cut(name, 100), cut(version, 40))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(address: &str, kind: &str, actions: &[&str]) -> Value {
        json!({"address": address, "mode": "managed", "type": kind, "name": "x",
               "change": {"actions": actions, "before": null, "after": null}})
    }

    fn plan(changes: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "format_version": "1.2",
            "terraform_version": "1.9.8",
            "resource_changes": changes,
            "configuration": {"provider_config": {
                "aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws",
                        "version_constraint": "~> 5.0"}
            }}
        }))
        .unwrap()
    }

    fn protected() -> Vec<String> {
        vec!["aws_db_instance".into(), "aws_s3_bucket".into()]
    }

    #[test]
    fn counts_follow_terraform_and_list_destroys_and_replacements() {
        let summary = summarize(
            &plan(vec![
                change("aws_sqs_queue.new", "aws_sqs_queue", &["create"]),
                change(
                    "aws_lambda_function.api",
                    "aws_lambda_function",
                    &["update"],
                ),
                change("aws_iam_role.api", "aws_iam_role", &["update"]),
                change("aws_s3_bucket.old", "aws_s3_bucket", &["delete"]),
                change("aws_instance.a", "aws_instance", &["delete", "create"]),
                change(
                    "aws_db_instance.main",
                    "aws_db_instance",
                    &["create", "delete"],
                ),
                change("aws_vpc.main", "aws_vpc", &["no-op"]),
                json!({"address": "data.aws_ami.x", "mode": "data", "type": "aws_ami",
                       "change": {"actions": ["read"]}}),
                change("aws_ssm_parameter.kept", "aws_ssm_parameter", &["forget"]),
            ]),
            &protected(),
        )
        .unwrap();
        assert_eq!(
            (
                summary.add,
                summary.change,
                summary.destroy,
                summary.replace
            ),
            (3, 2, 3, 2)
        );
        assert_eq!(summary.forget, 1);
        assert_eq!(summary.destroyed, ["aws_s3_bucket.old"]);
        assert_eq!(summary.replaced, ["aws_instance.a", "aws_db_instance.main"]);
        assert_eq!(
            summary.protected,
            ["aws_s3_bucket.old", "aws_db_instance.main"]
        );
        assert_eq!(
            summary.line(),
            "3 to add, 2 to change, 3 to destroy (2 replaced)"
        );
        assert_eq!(summary.terraform_version, "1.9.8");
        assert_eq!(
            summary.providers["registry.terraform.io/hashicorp/aws"],
            "~> 5.0"
        );
    }

    #[test]
    fn a_plan_without_changes_changes_nothing() {
        let document = serde_json::to_vec(&json!({"format_version": "1.2"})).unwrap();
        let summary = summarize(&document, &protected()).unwrap();
        assert!(summary.changes_nothing());
        assert_eq!(summary.line(), "0 to add, 0 to change, 0 to destroy");
        let noop = summarize(
            &plan(vec![change("aws_vpc.main", "aws_vpc", &["no-op"])]),
            &[],
        )
        .unwrap();
        assert!(noop.changes_nothing());
    }

    #[test]
    fn malformed_plans_are_refused_naming_what_is_wrong() {
        assert!(matches!(
            summarize(b"Plan: 1 to add", &[]),
            Err(PlanError::NotJson(_))
        ));
        assert_eq!(
            summarize(b"{}", &[]).unwrap_err(),
            PlanError::NoFormatVersion
        );
        let v2 = serde_json::to_vec(&json!({"format_version": "2.0"})).unwrap();
        assert!(matches!(
            summarize(&v2, &[]),
            Err(PlanError::UnsupportedFormat(_))
        ));
        let unknown = plan(vec![change("aws_x.y", "aws_x", &["explode"])]);
        let err = summarize(&unknown, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource_changes[0] (aws_x.y): unknown actions [\"explode\"]"
        );
        let no_actions = plan(vec![json!({"address": "aws_x.y", "change": {}})]);
        assert!(
            summarize(&no_actions, &[])
                .unwrap_err()
                .to_string()
                .contains("no change.actions")
        );
    }

    #[test]
    fn long_lists_are_cut_but_the_counts_stay_exact() {
        let many: Vec<Value> = (0..120)
            .map(|i| {
                change(
                    &format!("aws_db_instance.db{i}"),
                    "aws_db_instance",
                    &["delete"],
                )
            })
            .collect();
        let summary = summarize(&plan(many), &protected()).unwrap();
        assert_eq!(summary.destroy, 120);
        assert_eq!(summary.destroyed.len(), MAX_LISTED);
        assert_eq!(summary.protected.len(), MAX_LISTED);
        assert_eq!(summary.protected_total, 120);

        let long = format!("module.{}.aws_s3_bucket.b", "m".repeat(400));
        let summary = summarize(
            &plan(vec![change(&long, "aws_s3_bucket", &["delete"])]),
            &protected(),
        )
        .unwrap();
        assert_eq!(summary.destroyed[0].chars().count(), MAX_ADDRESS_CHARS);
        assert!(summary.destroyed[0].ends_with('…'));
    }
}
