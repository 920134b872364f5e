//! The drill's notice channels (issue 17): the local Statuspage and Slack webhook record
//! exactly the calls the real definition and notify make, and the drill says where they went.
//!
//! The incident opens at the definition's `approved…` progress notice and is updated at the
//! later ones. `statemachine/rollback.asl.json` has none yet (the notify side is ready; the
//! README's *Status page and chat* names the two states to add): until it has, a success finds
//! no incident to resolve and a failure after approval opens it, left open. The expectations
//! follow the definition, so they tighten by themselves when those states are added.

mod common;
use common::options;

use rollbackctl::drill::channels::events;
use rollbackctl::drill::{Drill, DrillOptions, Outcome};

/// The `progress` stages the definition sends, in document order.
fn definition_stages() -> Vec<String> {
    let text = std::fs::read_to_string(
        rollback_moto::workspace_root().join("statemachine/rollback.asl.json"),
    )
    .unwrap();
    text.split("\"stage\": \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

fn has_stage(prefix: &str) -> bool {
    definition_stages().iter().any(|s| s.starts_with(prefix))
}

/// Post-approval progress stages (neither `started…`, `approved…` nor `rejected`).
fn later_stages() -> usize {
    definition_stages()
        .iter()
        .filter(|s| {
            !["started", "approved", "rejected"]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .count()
}

fn slack_text(drill: &Drill) -> String {
    drill
        .stack
        .seeded
        .channels
        .slack
        .messages()
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_drill_resolves_the_incident_and_posts_the_milestones_to_slack() {
    let drill = Drill::prepare(options("approve")).await.unwrap();
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.error);
    let channels = &drill.stack.seeded.channels;

    let page_events = events(&channels.statuspage.calls());
    let mut expected = Vec::new();
    if has_stage("approved") {
        expected.push("opened".to_owned());
        expected.extend((0..later_stages()).map(|_| "updated (monitoring)".to_owned()));
        expected.push("resolved".to_owned());
    }
    assert_eq!(page_events, expected, "{:#?}", channels.statuspage.calls());
    assert!(channels.statuspage.calls().iter().all(|c| c.authorized));
    if has_stage("approved") {
        let incident = &channels.statuspage.incidents()[0];
        assert_eq!(incident["status"], "resolved");
        assert_eq!(
            channels
                .statuspage
                .component_status(rollbackctl::drill::channels::COMPONENT_ID)
                .as_deref(),
            Some("operational")
        );
    }

    // Slack: started, (approved, later stages,) success: the notices topic's milestones.
    let headers = channels.slack_headers();
    let approved = usize::from(has_stage("approved"));
    assert_eq!(headers.len(), 2 + approved + later_stages(), "{headers:#?}");
    assert!(
        headers[0].contains("STARTED") || headers[0].to_lowercase().contains("started"),
        "{headers:#?}"
    );
    // Never the approval page or a sealed link.
    let text = slack_text(&drill);
    assert!(
        !text.contains(&drill.stack.approval_url) && !text.contains("?t="),
        "{text}"
    );
    // The approval email showed the users' text first.
    let approval = report
        .emails
        .iter()
        .find(|m| m.body.contains("DECIDE"))
        .unwrap();
    assert!(
        approval.body.contains("Status page will say (on approval): \"Problems after our latest release: Checkout may fail"),
        "{}",
        approval.body
    );
    // The summary says where the calls went.
    let summary = channels.summary();
    assert!(
        summary[0].starts_with("Status page (local): "),
        "{summary:?}"
    );
    assert!(
        summary[0].contains(channels.statuspage.api_base()),
        "{summary:?}"
    );
    assert!(
        summary[1].contains(&format!("{} messages", headers.len())),
        "{summary:?}"
    );
    assert!(
        !summary.join(" ").contains(&channels.slack.url()),
        "the webhook URL is a secret"
    );
    if has_stage("approved") {
        assert!(
            summary[0].contains("incident opened") && summary[0].contains("resolved"),
            "{summary:?}"
        );
    } else {
        assert!(summary[0].contains("no incident"), "{summary:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_drill_leaves_the_incident_open_with_the_failure_text() {
    let drill = Drill::prepare(DrillOptions {
        fail_at: Some("Swap databases".into()),
        ..options("fail")
    })
    .await
    .unwrap();
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    let channels = &drill.stack.seeded.channels;
    let page_events = events(&channels.statuspage.calls());
    // Opened at approval (or, without that notice, by the failure), then the failure's text.
    let expected: Vec<String> = if has_stage("approved") {
        vec!["opened".into(), "updated (identified)".into()]
    } else {
        vec!["opened".into()]
    };
    assert_eq!(page_events, expected, "{:#?}", channels.statuspage.calls());
    let incidents = channels.statuspage.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["status"], "identified", "left open");
    let newest = incidents[0]["incident_updates"][0]["body"]
        .as_str()
        .unwrap();
    assert!(newest.contains("did not complete"), "{newest}");
    assert!(
        channels.summary()[0].contains("left open"),
        "{:?}",
        channels.summary()
    );
    // The contingency notice reached Slack.
    let headers = channels.slack_headers();
    assert!(
        headers.last().unwrap().to_uppercase().contains("FAIL"),
        "{headers:#?}"
    );
}
