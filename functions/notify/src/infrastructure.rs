//! The Terraform part of a notice: what the plan build of the stable commit would change, so
//! the approver sees every destroy and replacement before choosing to include infrastructure.

use std::fmt::Write as _;

use rollback_core::contract::infra::{InfrastructureResolution, short};
use rollback_core::terraform_plan::PlanSummary;

use crate::text::clean;

use rollback_core::terraform_plan::MAX_LISTED as LISTED;

/// The `Infrastructure` section; `future`: an approval or escalation (not yet applied).
pub fn section(out: &mut String, infra: &InfrastructureResolution, future: bool) {
    let _ = writeln!(
        out,
        "Infrastructure{}:",
        if future && infra.has_changes() {
            " (applied only with an \"approve … + infrastructure\" link)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  {}", clean(&infra.headline(), 300));
    if let Some(error) = &infra.plan_error {
        let _ = writeln!(
            out,
            "  The plan could not be made, so infrastructure is left out of this rollback: {}: {}",
            clean(&error.error, 80),
            clean(&error.cause, 600)
        );
        return;
    }
    let Some(summary) = &infra.summary else {
        return;
    };
    details(out, infra, summary);
}

fn details(out: &mut String, infra: &InfrastructureResolution, summary: &PlanSummary) {
    let providers: Vec<String> = summary
        .providers
        .iter()
        .map(|(name, version)| format!("{} {}", clean(name, 80), clean(version, 40)))
        .collect();
    let _ = writeln!(
        out,
        "  Terraform {}{}",
        clean(&summary.terraform_version, 20),
        if providers.is_empty() {
            String::new()
        } else {
            format!("; providers {}", providers.join(", "))
        }
    );
    list(
        out,
        "destroyed",
        &summary.destroyed,
        summary.destroy - summary.replace,
    );
    list(
        out,
        "replaced (destroyed, then created)",
        &summary.replaced,
        summary.replace,
    );
    if summary.forget > 0 {
        let _ = writeln!(
            out,
            "  {} resource(s) leave the state without being destroyed (`removed` blocks)",
            summary.forget
        );
    }
    if summary.protected_total > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} destroyed or replaced resource(s) of a protected type ({}). Applying \
             needs a link that says \"including destroys\"; check that this data can go.",
            summary.protected_total,
            summary
                .protected
                .iter()
                .take(LISTED)
                .map(|a| clean(a, 200))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let (Some(build), Some(sha)) = (&infra.plan_build, &infra.plan_sha256) {
        let _ = writeln!(
            out,
            "  Plan build {} (saved plan s3://{}/{}/plan.tfplan, SHA-256 {}); the apply applies \
             exactly this plan, and Terraform refuses it if the state changed since.",
            clean(build, 200),
            clean(&infra.artifact_bucket, 63),
            clean(&infra.artifact_key, 300),
            short(sha)
        );
    }
}

fn list(out: &mut String, what: &str, addresses: &[String], total: usize) {
    if total == 0 {
        return;
    }
    let _ = writeln!(out, "  {total} {what}:");
    for address in addresses.iter().take(LISTED) {
        let _ = writeln!(out, "    - {}", clean(address, 200));
    }
    if total > LISTED.min(addresses.len()) {
        let _ = writeln!(
            out,
            "    … and {} more (the plan's JSON lists every one)",
            total - LISTED.min(addresses.len())
        );
    }
}

/// One line for the approval page's summary of a link.
pub fn summary_line(infra: &InfrastructureResolution, included: bool) -> String {
    let headline = infra.headline();
    if included {
        format!("apply {headline}")
    } else {
        format!("infrastructure NOT changed ({headline})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::contract::notify::StepError;

    fn planned(summary: PlanSummary) -> InfrastructureResolution {
        InfrastructureResolution {
            codebuild_project: "svc-terraform".into(),
            stable_commit: "abc1234f00dfeedbeef0123456789abcdef01234".into(),
            current_commit: None,
            needs_plan: true,
            artifact_bucket: "svc-plans".into(),
            artifact_key: "rollback-plans/svc/rb-1".into(),
            plan_build: Some("svc-terraform:1".into()),
            plan_sha256: Some(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            ),
            summary: Some(summary),
            plan_error: None,
        }
    }

    #[test]
    fn destroys_and_protected_types_are_spelled_out() {
        let infra = planned(PlanSummary {
            terraform_version: "1.9.8".into(),
            add: 1,
            destroy: 2,
            replace: 1,
            destroyed: vec!["aws_dynamodb_table.audit".into()],
            replaced: vec!["aws_sqs_queue.jobs".into()],
            protected: vec!["aws_dynamodb_table.audit".into()],
            protected_total: 1,
            ..Default::default()
        });
        let mut out = String::new();
        section(&mut out, &infra, true);
        assert!(
            out.contains(
                "current commit not recorded): 1 to add, 0 to change, 2 to destroy (1 replaced)"
            ),
            "{out}"
        );
        assert!(
            out.contains("1 destroyed:\n    - aws_dynamodb_table.audit"),
            "{out}"
        );
        assert!(
            out.contains("1 replaced (destroyed, then created):\n    - aws_sqs_queue.jobs"),
            "{out}"
        );
        assert!(out.contains("WARNING: 1 destroyed or replaced resource(s) of a protected type (aws_dynamodb_table.audit)"), "{out}");
        assert!(out.contains("SHA-256 e3b0c44"), "{out}");
    }

    #[test]
    fn a_failed_plan_says_why_infrastructure_is_left_out() {
        let mut infra = planned(PlanSummary::default());
        infra.summary = None;
        infra.plan_error = Some(StepError {
            error: "Rollback.InfrastructureFailed".into(),
            cause: "the plan build svc-terraform:1 ended FAILED".into(),
        });
        let mut out = String::new();
        section(&mut out, &infra, true);
        assert!(out.contains("the plan failed"), "{out}");
        assert!(out.contains("left out of this rollback: Rollback.InfrastructureFailed: the plan build svc-terraform:1 ended FAILED"), "{out}");
        assert!(
            !out.contains("applied only with"),
            "nothing to approve: {out}"
        );
    }
}
