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
