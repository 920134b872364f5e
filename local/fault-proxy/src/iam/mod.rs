//! The local IAM check: every request a function makes is authorized against that
//! function's role as `infra/template.yaml` defines it, and refused the way AWS refuses it.
//!
//! - **Who is calling.** Each function gets its own credentials in the drill, with an access
//!   key id naming it ([`access_key_id`]: `ASIA` + the function, e.g. `ASIARESTORE`); the
//!   proxy reads the key from the SigV4 `Credential=` scope. Requests signed with another key
//!   (the drill's own seeding and checks) are not checked.
//! - **What is asked.** [`request::authorization`]: the action, the resource ARNs the service
//!   checks it against, and the request's condition keys.
//! - **What the role allows.** [`template::function_roles`] reads the roles from the template
//!   (short tags resolved with the stack's values); [`policy::evaluate`] decides, with
//!   explicit Deny over Allow over implicit deny.
//! - **What happens.** A refused call gets the service's own access-denied answer (403
//!   `AccessDenied` for query services, `AccessDeniedException` for JSON and REST-JSON ones)
//!   and is recorded as a [`Violation`], whose message names the function, action, resource
//!   and policy; the drill fails on any. Allowed calls mark the policy actions they used
//!   ([`Coverage`]), so a test can list the actions no run exercised.
//!
//! Limitations (also in the README's "Real parts"): `aws:ResourceTag/*` is read from moto
//! for RDS resources only; keys only AWS can set (`kms:ViaService`, `iam:PassedToService`,
//! `aws:SourceArn`) are absent, so statements conditioned on them never allow a direct call —
//! which is also true in AWS; calls AWS services make on a function's behalf (RDS using KMS,
//! passing the monitoring role) are not made locally and so not checked; resource policies,
//! permission boundaries and SCPs are not modelled.

pub mod policy;
pub mod request;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use policy::{Decision, Policy, RequestContext, StatementRef, evaluate};
pub use request::{Authorization, authorization};
pub use template::{Role, StackValues, function_roles};

/// The account the local stack plays (moto's default).
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// The access key id the drill gives `function` (`restore` → `ASIARESTORE`).
pub fn access_key_id(function: &str) -> String {
    format!("ASIA{}", function.replace('-', "").to_ascii_uppercase())
}

/// A call a role does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub function: String,
    /// The role SAM creates for it: `RestoreFunctionRole`.
    pub role: String,
    pub action: String,
    pub resource: String,
    /// Which policy refused (explicit Deny) or would have had to allow it.
    pub policy: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "function {} called {} on {}, which its role does not allow (template.yaml, policy {})",
            self.function, self.action, self.resource, self.policy
        )
    }
}

/// Which of a role's policy actions allowed calls used: `function → {action as written}`.
pub type Coverage = BTreeMap<String, BTreeSet<String>>;

/// The roles, by access key id.
#[derive(Debug, Clone)]
pub struct IamChecker {
    roles: BTreeMap<String, Role>,
    account: String,
}

/// The outcome of checking one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Not a function's request (unknown key, unsigned, or needing no permission).
    Unchecked,
    /// Allowed; the policy actions (as written) it used.
    Allowed {
        function: String,
        used: BTreeSet<String>,
    },
    Denied(Violation),
}

impl IamChecker {
    /// The checker for `template_yaml` resolved with `values`.
    pub fn from_template(template_yaml: &str, values: &StackValues) -> Result<IamChecker, String> {
        let roles = function_roles(template_yaml, values)?;
        Ok(IamChecker {
            roles: roles
                .into_iter()
                .map(|role| (access_key_id(&role.function), role))
                .collect(),
            account: values.account.clone(),
        })
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role_for_key(&self, access_key: &str) -> Option<&Role> {
        self.roles.get(access_key)
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Whether deciding `action` for the role may need `aws:ResourceTag/*` (so the proxy
    /// looks the resource's tags up first).
    pub fn needs_resource_tags(&self, role: &Role, action: &str) -> bool {
        role.policies.iter().flat_map(|p| &p.statements).any(|s| {
            s.matches_action(action)
                && s.conditions
                    .iter()
                    .any(|c| c.key.to_ascii_lowercase().starts_with("aws:resourcetag/"))
        })
    }

    /// Decides `authz` for `role`; `resource_context` adds per-resource keys
    /// (`aws:ResourceTag/*`).
    pub fn check(
        &self,
        role: &Role,
        authz: &Authorization,
        resource_context: &dyn Fn(&str) -> Vec<(String, String)>,
    ) -> Check {
        let Some(action) = &authz.action else {
            return Check::Unchecked;
        };
        let mut used = BTreeSet::new();
        for resource in &authz.resources {
            let mut context = authz.context.clone();
            for (key, value) in resource_context(resource) {
                context.insert(&key, value);
            }
            match evaluate(&role.policies, action, resource, &context) {
                Decision::Allow(by) => {
                    for at in by {
                        used.extend(self.actions_used(role, &at, action));
                    }
                }
                Decision::ExplicitDeny(at) => {
                    return Check::Denied(Violation {
                        function: role.function.clone(),
                        role: format!("{}Role", role.logical_id),
                        action: action.clone(),
                        resource: resource.clone(),
                        policy: format!("{at}: explicit Deny"),
                    });
                }
                Decision::ImplicitDeny => {
                    return Check::Denied(Violation {
                        function: role.function.clone(),
                        role: format!("{}Role", role.logical_id),
                        action: action.clone(),
                        resource: resource.clone(),
                        policy: implicit_deny_reason(role, action),
                    });
                }
            }
        }
        Check::Allowed {
            function: role.function.clone(),
            used,
        }
    }

    fn actions_used(&self, role: &Role, at: &StatementRef, action: &str) -> Vec<String> {
        role.policies
            .iter()
            .filter(|p| p.name == at.policy)
            .flat_map(|p| p.statements.iter().enumerate())
            .filter(|(i, s)| s.label(*i) == at.statement && !s.actions.not)
            .flat_map(|(_, s)| s.actions.patterns.iter())
            .filter(|pattern| policy::glob(pattern, action, true))
            .cloned()
            .collect()
    }

    /// Every Allow action of every role, as written: what [`Coverage`] is compared with.
    pub fn granted_actions(&self) -> Coverage {
        let mut out = Coverage::new();
        for role in self.roles.values() {
            let entry = out.entry(role.function.clone()).or_default();
            for statement in role.policies.iter().flat_map(|p| &p.statements) {
                if statement.effect == policy::Effect::Allow && !statement.actions.not {
                    entry.extend(statement.actions.patterns.iter().cloned());
                }
            }
        }
        out
    }
}

/// Names the policy that would have had to allow the call, and why it does not.
fn implicit_deny_reason(role: &Role, action: &str) -> String {
    for policy in &role.policies {
        for (index, statement) in policy.statements.iter().enumerate() {
            if statement.effect == policy::Effect::Allow && statement.matches_action(action) {
                let scope = statement.resources.patterns.join(", ");
                let conditions = if statement.conditions.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> = statement
                        .conditions
                        .iter()
                        .map(|c| format!("{} {} {:?}", c.operator, c.key, c.values))
                        .collect();
                    format!(" when {}", list.join(" and "))
                };
                return format!(
                    "{} statement {} allows {action} only on {scope}{conditions}",
                    policy.name,
                    statement.label(index)
                );
            }
        }
    }
    let names: Vec<&str> = role.policies.iter().map(|p| p.name.as_str()).collect();
    let names = if names.is_empty() {
        format!("{}Role has no policies", role.logical_id)
    } else {
        names.join(", ")
    };
    format!("{names}: no statement allows {action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> IamChecker {
        let template =
            std::fs::read_to_string(rollback_moto::workspace_root().join("infra/template.yaml"))
                .unwrap();
        IamChecker::from_template(&template, &drill_values()).unwrap()
    }

    fn drill_values() -> StackValues {
        StackValues::new("us-east-1", LOCAL_ACCOUNT, "mint-replica")
            .parameter("ServiceName", "mint-replica")
            .parameter("RollbackPlanParameter", "/mint-replica/plan")
            .parameter("AlarmNames", "mint-replica-5xx")
            .parameter("ClusterName", "mint-replica-eks")
            .resource(
                "ApprovalsTopic",
                "arn:aws:sns:us-east-1:123456789012:t",
                &[("TopicName", "t")],
            )
            .resource(
                "NoticesTopic",
                "arn:aws:sns:us-east-1:123456789012:t",
                &[("TopicName", "t")],
            )
            .resource(
                "EscalationTopic",
                "arn:aws:sns:us-east-1:123456789012:e",
                &[("TopicName", "e")],
            )
            .resource(
                "ApprovalLinkKey",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf",
                &[],
            )
            .report_bucket("mint-replica-rollback-reports")
            .decision_key("arn:aws:kms:us-east-1:123456789012:key/decision")
    }

    fn authz(action: &str, resource: &str) -> Authorization {
        Authorization {
            action: Some(action.into()),
            resources: vec![resource.into()],
            context: RequestContext::default(),
        }
    }

    #[test]
    fn the_shipped_template_reads_and_decides() {
        let checker = checker();
        let restore = checker.role_for_key("ASIARESTORE").expect("restore role");
        let none = |_: &str| Vec::new();
        let db = "arn:aws:rds:us-east-1:123456789012:db:mint-replica-db";
        assert!(matches!(
            checker.check(restore, &authz("rds:ModifyDBInstance", db), &none),
            Check::Allowed { .. }
        ));
        let other = "arn:aws:rds:us-east-1:123456789012:db:payments-db";
        let Check::Denied(v) = checker.check(restore, &authz("rds:ModifyDBInstance", other), &none)
        else {
            panic!("another service's database must be refused");
        };
        assert!(
            v.to_string().starts_with(&format!(
                "function restore called rds:ModifyDBInstance on {other}, which its role does not allow (template.yaml, policy RestoreFunctionRolePolicy0 statement"
            )),
            "{v}"
        );
        let retag = checker.role_for_key("ASIARETAG").unwrap();
        let Check::Denied(v) = checker.check(retag, &authz("rds:DeleteDBInstance", db), &none)
        else {
            panic!("retag may not touch RDS");
        };
        assert!(
            v.policy
                .ends_with("no statement allows rds:DeleteDBInstance"),
            "{v}"
        );
        // Keys only AWS sets are absent: a direct KMS call is refused.
        let key = "arn:aws:kms:us-east-1:123456789012:key/1";
        assert!(matches!(
            checker.check(restore, &authz("kms:Decrypt", key), &none),
            Check::Denied(_)
        ));
        assert!(checker.granted_actions()["notify"].contains("sns:Publish"));

        // Only approval signs decisions; the destructive functions read the public half.
        let decision_key = "arn:aws:kms:us-east-1:123456789012:key/decision";
        let allowed = |key: &str, action: &str| {
            let role = checker.role_for_key(key).unwrap();
            matches!(
                checker.check(role, &authz(action, decision_key), &none),
                Check::Allowed { .. }
            )
        };
        assert!(allowed("ASIAAPPROVAL", "kms:Sign"));
        // The plan function signs its pre-approval policy's app-only decisions.
        assert!(allowed("ASIAPLAN", "kms:Sign"));
        for key in [
            "ASIARESTORE",
            "ASIARETAG",
            "ASIADEPLOYUNDO",
            "ASIANOTIFY",
            "ASIAINFRA",
        ] {
            assert!(!allowed(key, "kms:Sign"), "{key} may sign decisions");
        }
        for key in ["ASIARESTORE", "ASIARETAG", "ASIADEPLOYUNDO", "ASIAINFRA"] {
            assert!(
                allowed(key, "kms:GetPublicKey"),
                "{key} cannot verify decisions"
            );
        }

        // notify writes reports under the prefix of the stack's bucket, and nothing else there.
        let notify = checker.role_for_key("ASIANOTIFY").unwrap();
        let report = "arn:aws:s3:::mint-replica-rollback-reports/reports/e1/report.md";
        assert!(matches!(
            checker.check(notify, &authz("s3:PutObject", report), &none),
            Check::Allowed { .. }
        ));
        for (action, resource) in [
            ("s3:GetObject", report),
            ("s3:DeleteObject", report),
            (
                "s3:PutObject",
                "arn:aws:s3:::mint-replica-rollback-reports/other/e1/report.md",
            ),
            (
                "s3:PutObject",
                "arn:aws:s3:::another-bucket/reports/e1/report.md",
            ),
        ] {
            assert!(
                matches!(
                    checker.check(notify, &authz(action, resource), &none),
                    Check::Denied(_)
                ),
                "{action} on {resource}"
            );
        }
        let execution = "arn:aws:states:us-east-1:123456789012:execution:mint-replica-rollback:e1";
        assert!(matches!(
            checker.check(
                notify,
                &authz("states:GetExecutionHistory", execution),
                &none
            ),
            Check::Allowed { .. }
        ));
        let other = "arn:aws:states:us-east-1:123456789012:execution:other-rollback:e1";
        assert!(matches!(
            checker.check(notify, &authz("states:GetExecutionHistory", other), &none),
            Check::Denied(_)
        ));
    }

    /// The infra role: the service's Terraform project (default `<service>-terraform`), its
    /// commit parameters (default under `/<service>/terraform/`) and its artifacts, nothing
    /// else; a StartBuild with its own buildspec is refused; no artifact bucket, no builds.
    #[test]
    fn the_mobile_role_reads_its_store_secrets_and_writes_its_minimum_versions_only() {
        let checker = checker();
        let mobile = checker.role_for_key("ASIAMOBILE").expect("mobile role");
        let none = |_: &str| Vec::new();
        let allowed = |action: &str, resource: &str| {
            matches!(
                checker.check(mobile, &authz(action, resource), &none),
                Check::Allowed { .. }
            )
        };
        let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:store-credentials/mint-replica/google-play-AbCdEf";
        let minimum = "arn:aws:ssm:us-east-1:123456789012:parameter/mint-replica/mobile/android-minimum-version";
        for (action, resource) in [
            ("secretsmanager:GetSecretValue", secret),
            ("ssm:GetParameter", minimum),
            ("ssm:PutParameter", minimum),
        ] {
            assert!(allowed(action, resource), "{action} on {resource}");
        }
        for (action, resource) in [
            (
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:mint-replica-db-smoke-AbCdEf",
            ),
            ("secretsmanager:PutSecretValue", secret),
            (
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:123456789012:parameter/mint-replica/rollback-plan",
            ),
            ("ssm:DeleteParameter", minimum),
        ] {
            assert!(!allowed(action, resource), "{action} on {resource}");
        }
        // The default prefixes keep the store keys from the smoke test's SQL-probe scope.
        let smoke = checker
            .role_for_key("ASIASMOKETEST")
            .expect("smoke-test role");
        let read = authz("secretsmanager:GetSecretValue", secret);
        assert!(!matches!(
            checker.check(smoke, &read, &none),
            Check::Allowed { .. }
        ));
    }

    #[test]
    fn the_infra_role_reaches_its_project_commits_and_artifacts_only() {
        let template =
            std::fs::read_to_string(rollback_moto::workspace_root().join("infra/template.yaml"))
                .unwrap();
        let values = drill_values().parameter("TerraformArtifactBucket", "mint-replica-tf");
        let checker = IamChecker::from_template(&template, &values).unwrap();
        let infra = checker.role_for_key("ASIAINFRA").expect("infra role");
        let none = |_: &str| Vec::new();
        let decide = |checker: &IamChecker, authz: &Authorization| {
            let role = checker.role_for_key("ASIAINFRA").unwrap();
            matches!(checker.check(role, authz, &none), Check::Allowed { .. })
        };
        let project = "arn:aws:codebuild:us-east-1:123456789012:project/mint-replica-terraform";
        let commit = "arn:aws:ssm:us-east-1:123456789012:parameter/mint-replica/terraform/stable";
        let plan = "arn:aws:s3:::mint-replica-tf/rollback-plans/mint-replica/e1/plan.json";
        for (action, resource) in [
            ("codebuild:StartBuild", project),
            ("codebuild:ListBuildsForProject", project),
            ("codebuild:BatchGetBuilds", project),
            ("ssm:GetParameter", commit),
            ("s3:GetObject", plan),
        ] {
            assert!(
                decide(&checker, &authz(action, resource)),
                "{action} on {resource}"
            );
        }
        for (action, resource) in [
            (
                "codebuild:StartBuild",
                "arn:aws:codebuild:us-east-1:123456789012:project/payments-terraform",
            ),
            ("codebuild:CreateProject", project),
            ("codebuild:BatchDeleteBuilds", project),
            (
                "ssm:GetParameter",
                "arn:aws:ssm:us-east-1:123456789012:parameter/mint-replica/terraform-other/stable",
            ),
            ("ssm:PutParameter", commit),
            (
                "s3:GetObject",
                "arn:aws:s3:::mint-replica-tf/rollback-plans/payments/e1/plan.json",
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::mint-replica-rollback-reports/rollback-plans/mint-replica/e1/plan.json",
            ),
            ("s3:PutObject", plan),
        ] {
            assert!(
                !decide(&checker, &authz(action, resource)),
                "{action} on {resource}"
            );
        }
        assert!(
            infra.policies[0]
                .statements
                .iter()
                .any(|s| s.sid.as_deref() == Some("NoBuildspecOverride"))
        );

        // Bringing its own buildspec would run any commands under the project's role.
        let mut own_buildspec = authz("codebuild:StartBuild", project);
        own_buildspec
            .context
            .insert("codebuild:source.buildspec", "version: 0.2");
        let Check::Denied(v) = checker.check(infra, &own_buildspec, &none) else {
            panic!("a StartBuild with buildspecOverride must be refused");
        };
        assert!(
            v.policy.contains("NoBuildspecOverride: explicit Deny"),
            "{v}"
        );

        // The parameters name another project, commit path and prefix.
        let named = values
            .clone()
            .parameter("TerraformProject", "infra-mint")
            .parameter("TerraformCommitParameterPath", "/release/mint/")
            .parameter("TerraformArtifactPrefix", "tf/plans");
        let named = IamChecker::from_template(&template, &named).unwrap();
        for (action, resource) in [
            (
                "codebuild:StartBuild",
                "arn:aws:codebuild:us-east-1:123456789012:project/infra-mint",
            ),
            (
                "ssm:GetParameter",
                "arn:aws:ssm:us-east-1:123456789012:parameter/release/mint/stable-commit",
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::mint-replica-tf/tf/plans/mint-replica/e1/apply-result.json",
            ),
        ] {
            assert!(
                decide(&named, &authz(action, resource)),
                "{action} on {resource}"
            );
        }
        assert!(!decide(&named, &authz("codebuild:StartBuild", project)));

        // No artifact bucket (the default): no infrastructure rollback, only the public key.
        let without = IamChecker::from_template(&template, &drill_values()).unwrap();
        for (action, resource) in [
            ("codebuild:StartBuild", project),
            ("ssm:GetParameter", commit),
            ("s3:GetObject", plan),
        ] {
            assert!(
                !decide(&without, &authz(action, resource)),
                "{action} on {resource} without TerraformArtifactBucket"
            );
        }
        assert_eq!(
            without.granted_actions()["infra"],
            BTreeSet::from(["kms:GetPublicKey".to_owned()])
        );
    }
}
