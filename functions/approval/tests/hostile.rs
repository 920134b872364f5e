//! Hostile content on the approval page: HTML, attribute break-outs, control and bidi
//! characters, NUL and 100 KB strings, in every field a link carries (sealed with a real
//! `LinkKey`), in the approver typed into the form, in the link parameter itself, and end to
//! end from an alarm description through notify's mail to the page. Each page must have
//! exactly the element structure of the same page rendered from harmless input: no `<` from
//! input survives unescaped, and no attribute is broken out of.

mod common;

use chrono::Utc;
use common::*;
use http::StatusCode;
use rollback_approval::handle_request;
use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::request::Scope;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use serde_json::{Value, json};

fn hostile(pad: usize) -> String {
    format!(
        "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'><svg onload=alert(3)>\
         </textarea></title><!--\r\n\u{0}\u{1b}[2J\u{202E}evil\u{2066}&amp;&#60;{}",
        "A".repeat(pad)
    )
}

/// The page's element structure: every tag name in order (`p`, `/p`, `!doctype`, …).
fn tags(page: &str) -> Vec<String> {
    page.match_indices('<')
        .map(|(i, _)| {
            page[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '!'))
                .collect()
        })
        .collect()
}

const TEMPLATE_TAGS: &[&str] = &[
    "!doctype", "html", "head", "meta", "title", "style", "body", "h1", "div", "b", "p", "br",
    "code", "ul", "li", "small", "form", "input", "label", "button",
];

/// The hostile page has the harmless page's structure, and nothing an attacker wrote.
fn assert_same_structure(hostile_page: &str, benign_page: &str) {
    assert_eq!(
        tags(hostile_page),
        tags(benign_page),
        "input changed the page's elements"
    );
    for tag in tags(hostile_page) {
        assert!(
            TEMPLATE_TAGS.contains(&tag.trim_start_matches('/')),
            "unexpected element <{tag}>"
        );
    }
    // Attributes: the same number of quotes, so no value was broken out of.
    assert_eq!(
        hostile_page.matches('"').count(),
        benign_page.matches('"').count(),
        "input changed the attribute quoting"
    );
    // Text like `onerror=alert(2)` may remain, as text: the structure checks show it is no
    // attribute.
    for needle in ["<script", "<img", "<svg", "<!--", "\u{0}", "\u{202E}", "\r"] {
        assert!(!hostile_page.contains(needle), "{needle:?} on the page");
    }
    // Bounded: a link's fields are cut before sealing.
    assert!(
        hostile_page.len() < 30_000,
        "page of {} bytes",
        hostile_page.len()
    );
}

fn payload_with(token: &str, decision: Decision, text: impl Fn(usize) -> String) -> LinkPayload {
    LinkPayload {
        task_token: token.to_owned(),
        decision,
        scope: Scope::APP_AND_DATABASE,
        expires_at: Utc::now().timestamp() + 3600,
        execution: text(20),
        fingerprint: text(64),
        plan_fingerprint: String::new(),
        summary: LinkSummary {
            service: text(100),
            reason: text(100_000),
            lines: vec![text(100_000), text(10), text(0)],
        }
        .bounded(),
        rules: Default::default(),
    }
}

fn benign(pad: usize) -> String {
    format!("harmless text {}", "a".repeat(pad.min(30)))
}

#[tokio::test]
async fn the_confirmation_page_escapes_every_field_of_the_link() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    for decision in [Decision::Approve, Decision::Reject] {
        let bad = key.seal(&payload_with("tok", decision, hostile)).unwrap();
        let good = key.seal(&payload_with("tok", decision, benign)).unwrap();
        let response = handle_request(&approval, get(&bad)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.body();
        let reference = handle_request(&approval, get(&good)).await;
        assert_same_structure(page, reference.body());
        // Shown, escaped: the approver sees what the alarm said.
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"));
        assert!(
            page.contains("&amp;amp;&amp;#60;"),
            "entities are not double-escaped"
        );
    }
}

#[tokio::test]
async fn a_hostile_approver_is_escaped_on_the_error_and_the_decided_page() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    // Invalid (whitespace): the form comes back with the value escaped, nothing decided.
    let link = key
        .seal(&payload_with("tok", Decision::Approve, benign))
        .unwrap();
    let typed = format!("{} x@y", hostile(10));
    let response = handle_request(&approval, post(&link, &typed)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let reference = handle_request(&approval, post(&link, "not an email")).await;
    assert_same_structure(response.body(), reference.body());

    // Valid by the approver rule (one @, no whitespace), on a real waiting execution.
    let approver = "\"><img/src=x/onerror=alert(1)><script>x</script>@evil.test";
    for (name, who) in [
        ("appr-hostile-approver", approver),
        ("appr-benign-approver", "a@b.test"),
    ] {
        let w = waiting_execution(name, None).await;
        let link = key
            .seal(&payload_with(&w.token, Decision::Approve, benign))
            .unwrap();
        let response = handle_request(&approval, post(&link, who)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
        let (status, output, ..) = finished(&w.execution_arn).await;
        assert_eq!(status, "SUCCEEDED");
        // Recorded as data (JSON), verbatim.
        let output: Value = serde_json::from_str(&output.unwrap()).unwrap();
        assert_eq!(output["approver"], json!(who));
        if who == approver {
            let decided = response.body().to_owned();
            let w2 = waiting_execution("appr-benign-reference", None).await;
            let link = key
                .seal(&payload_with(&w2.token, Decision::Approve, benign))
                .unwrap();
            let reference = handle_request(&approval, post(&link, "a@b.test")).await;
            assert_same_structure(&decided, reference.body());
            assert!(decided.contains("&quot;&gt;&lt;img/src=x/onerror=alert(1)&gt;"));
        }
    }
}

#[tokio::test]
async fn hostile_link_parameters_are_not_reflected() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let reference = handle_request(&approval, get("AAAA")).await;
    for token in [
        hostile(0),
        hostile(20_000),
        "\u{0}".into(),
        "%00%3Cscript%3E".into(),
    ] {
        for request in [get(&token), post(&token, "a@b.test")] {
            let response = handle_request(&approval, request).await;
            // 413 for a form over the body limit.
            assert!(
                matches!(
                    response.status(),
                    StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
                ),
                "{}",
                response.status()
            );
            assert_same_structure(response.body(), reference.body());
            assert!(
                !response.body().contains("script"),
                "the parameter was reflected"
            );
        }
    }
}

/// From an alarm description, through notify's mail (published to SNS on moto and read back
/// from SQS), to the page the link opens.
#[tokio::test]
async fn an_alarm_description_reaches_the_page_escaped() {
    let gate = gate();
    let moto = MotoServer::shared_executing();
    let (topic_arn, queue_url) = moto
        .topic_with_queue("appr-hostile-mail-approvals", Delivery::Raw)
        .await;
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let notify = notify_gate("appr-hostile-mail");
    let clients = rollback_notify::Clients::new(&notify.sdk_config());
    let notify_config =
        rollback_notify::Config::local(&topic_arn, "http://approve.test/approval", key.clone());
    let w = waiting_execution("appr-hostile-e2e", None).await;
    let mut alarm_name = hostile(0);
    alarm_name.truncate(200);
    let input = json!({
        "action": "approval-request", "task_token": w.token,
        "resolved": {"databases": [{
            "database": "mint-replica-db", "kind": "rds-instance",
            "snapshot_id": "predeploy-v42", "snapshot_created_at": "2024-05-01T11:02:00Z",
            "snapshot_type": "manual", "release": hostile(10),
            "data_loss": {"from": "2024-05-01T11:02:00Z", "to": "2024-05-01T12:30:00Z",
                          "seconds": 5280, "summary": hostile(1000)}}]},
        "plan": {"service": "mint-replica",
                 "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}]},
        "request": {"trigger": {"kind": "alarm", "alarm_name": alarm_name, "state": "ALARM",
                                "previous_state": "OK", "state_changed_at": "2024-05-01T12:31:00Z",
                                "state_reason": hostile(5000)},
                    "reason": hostile(300), "scope": "app+database"},
        "execution": "exec-hostile-e2e"
    });
    rollback_notify::handle(&clients, &notify_config, input)
        .await
        .unwrap();
    let body = moto.next_message(&queue_url).await;
    let link = body
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http://approve.test/approval?t="))
        .expect("a link in the mail");
    let token = url::Url::parse(link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "t")
        .unwrap()
        .1
        .into_owned();
    let response = handle_request(&approval, get(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.body();
    // The reference: the same link shape with harmless text.
    let opened = key.open(&token, Utc::now()).unwrap();
    let lines = opened.summary.lines.len();
    let reference = LinkPayload {
        summary: LinkSummary {
            service: "mint-replica".into(),
            reason: "harmless".into(),
            lines: vec!["harmless".into(); lines],
        },
        ..opened.clone()
    };
    let reference = handle_request(&approval, get(&key.seal(&reference).unwrap())).await;
    assert_same_structure(page, reference.body());
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the alarm text vanished"
    );
    assert!(!page.contains(&w.token), "the task token is on the page");
    still_waiting(&w.execution_arn).await;
}

async fn still_waiting(arn: &str) {
    assert_eq!(
        describe(arn).await.0,
        "RUNNING",
        "a GET decided the execution"
    );
}
