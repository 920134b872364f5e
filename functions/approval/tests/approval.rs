//! The approval handler against moto's real Step Functions executor.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use common::*;
use http::{Method, StatusCode};
use rollback_approval::{handle_at, handle_request};
use rollback_core::approval_link::{Decision, LinkKey};
use rollback_core::contract::approval::{ApprovalDecision, RejectionCause};
use rollback_core::request::Scope;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;

async fn still_running(arn: &str) {
    assert_eq!(
        describe(arn).await.0,
        "RUNNING",
        "the execution was decided"
    );
}

#[tokio::test]
async fn get_shows_the_plan_and_changes_nothing() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-get", None).await;
    let link = link(
        &key,
        &payload(&w.token, Decision::Approve, Scope::APP_AND_DATABASE),
    );
    for method in [Method::GET, Method::HEAD, Method::GET] {
        let mut request = get(&link);
        *request.method_mut() = method;
        let response = handle_request(&approval, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.body();
        assert!(page.contains("mint-replica"));
        assert!(page.contains("restore database mint-replica-db from predeploy-v42"));
        assert!(page.contains("INCLUDING THE DATABASES"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains(&format!("name=\"t\" value=\"{link}\"")));
        assert!(page.contains("Approve (app + database)"));
        assert!(!page.contains(&w.token), "the task token is on the page");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
    still_running(&w.execution_arn).await;
}

#[tokio::test]
async fn approve_then_a_second_decision_is_already_decided() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-approve", None).await;
    let link = link(
        &key,
        &payload(&w.token, Decision::Approve, Scope::APP_AND_DATABASE),
    );
    let before = Utc::now();
    let response = handle_request(&approval, post(&link, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    assert!(response.body().contains("Approved (app + database)"));

    let (status, output, ..) = finished(&w.execution_arn).await;
    assert_eq!(status, "SUCCEEDED");
    let decision: ApprovalDecision = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(decision.decision, Decision::Approve);
    assert_eq!(decision.scope, Scope::APP_AND_DATABASE);
    assert_eq!(decision.approver, "oncall@example.com");
    assert_eq!(decision.fingerprint, "fp-1234567890abcdef");
    assert!(decision.decided_at >= before - Duration::seconds(1));
    // The signed decision verifies with the decision key's public half and says the same.
    let verifier = rollback_core::decision::DecisionVerifier::new(
        aws_sdk_kms::Client::new(&MotoServer::shared_executing().sdk_config()),
        MotoServer::shared_executing().decision_key(),
    );
    let claims = verifier
        .key()
        .await
        .unwrap()
        .open(&decision.signed)
        .unwrap();
    let sealed = key.open(&link, Utc::now()).unwrap();
    assert_eq!(claims.execution, sealed.execution);
    assert_eq!(claims.fingerprint, "fp-1234567890abcdef");
    assert_eq!(claims.scope, Scope::APP_AND_DATABASE);
    assert_eq!(claims.approvers, ["oncall@example.com"]);
    assert_eq!(
        claims.identity,
        rollback_core::decision::Identity::SelfAsserted
    );
    assert!(claims.expires_at > Utc::now() + Duration::hours(23));

    // Double click, or another approver with the app-only link.
    for again in [
        link.clone(),
        common::link(&key, &payload(&w.token, Decision::Approve, Scope::APP)),
    ] {
        let response = handle_request(&approval, post(&again, "other@example.com")).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(
            response.body().contains("Already decided"),
            "{}",
            response.body()
        );
    }
}

/// A link of a rollback that was stopped (and maybe started again after a crash) says so and
/// points at the newer email, instead of "someone already decided".
#[tokio::test]
async fn a_link_of_a_stopped_rollback_says_it_was_stopped() {
    let gate = gate();
    let key = LinkKey::generate();
    // The test stack's state machine name: the approval role may read only its executions.
    let machine = "mint-replica-stack-rollback";
    let w = waiting_execution(machine, None).await;
    let stopped = sfn()
        .stop_execution()
        .execution_arn(&w.execution_arn)
        .send()
        .await
        .unwrap();
    let stopped_at = chrono::DateTime::<Utc>::from_timestamp(stopped.stop_date().secs(), 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let mut decision = payload(&w.token, Decision::Approve, Scope::APP);
    decision.execution = w.execution_arn.rsplit(':').next().unwrap().to_owned();
    let link = link(&key, &decision);
    let machine_arn = w.execution_arn.replace(":execution:", ":stateMachine:");
    let machine_arn = machine_arn.rsplit_once(':').unwrap().0;

    let approval = page(&gate, &key).with_state_machine(machine_arn);
    let response = handle_request(&approval, post(&link, "oncall@example.com")).await;
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "{}",
        response.body()
    );
    let body = response.body();
    assert!(body.contains("Rollback stopped"), "{body}");
    assert!(
        body.contains(&format!("was stopped at {stopped_at}")),
        "{body}"
    );
    assert!(body.contains("newer approval email supersedes"), "{body}");
    assert!(!body.contains("someone already"), "{body}");
    assert!(gate.violations().is_empty(), "{:?}", gate.violations());

    // Without the state machine's name the page says what the error code allows.
    let response = handle_request(&page(&gate, &key), post(&link, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.body().contains("Already decided"));
    assert_eq!(describe(&w.execution_arn).await.0, "ABORTED");
}

#[tokio::test]
async fn reject_fails_the_task_with_rollback_rejected() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-reject", None).await;
    let reject = link(&key, &payload(&w.token, Decision::Reject, Scope::APP));
    let page = handle_request(&approval, get(&reject)).await;
    assert!(page.body().contains("REJECT the rollback"));
    let response = handle_request(&approval, post(&reject, "lead@example.com")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    assert!(response.body().contains("Rejected"));
    let (status, _, error, cause) = finished(&w.execution_arn).await;
    assert_eq!(status, "FAILED");
    assert_eq!(error.as_deref(), Some("Rollback.Rejected"));
    // moto 5.2.5's SendTaskFailure drops `cause` (responses.py passes only the error); on
    // AWS the cause carries who rejected, checked here whenever the executor keeps it.
    if let Some(cause) = cause {
        let cause: RejectionCause = serde_json::from_str(&cause).unwrap();
        assert_eq!(cause.approver, "lead@example.com");
        assert_eq!(cause.fingerprint, "fp-1234567890abcdef");
    }

    let approve = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));
    let response = handle_request(&approval, post(&approve, "late@example.com")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_timed_out_task_is_already_decided() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-timeout", Some(1)).await;
    let (status, _, error, _) = finished(&w.execution_arn).await;
    assert_eq!(status, "FAILED");
    assert_eq!(error.as_deref(), Some("States.Timeout"));
    let link = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));
    let response = handle_request(&approval, post(&link, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.body().contains("no longer waiting"));
}

#[tokio::test]
async fn tampered_links_are_refused_without_a_step_functions_call() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-tamper", None).await;
    let good = link(&key, &payload(&w.token, Decision::Reject, Scope::APP));
    let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
    // Version byte, nonce, start / middle / end of the ciphertext, and the tag.
    let n = raw.len();
    for i in [0, 1, 12, 13, n / 2, n - 17, n - 16, n - 1] {
        let mut bad = raw.clone();
        bad[i] ^= 0x80;
        let bad = URL_SAFE_NO_PAD.encode(bad);
        for request in [get(&bad), post(&bad, "oncall@example.com")] {
            let response = handle_request(&approval, request).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "byte {i}");
            assert!(response.body().contains("altered"), "{}", response.body());
        }
    }
    // A link sealed with another key (another deployment) is refused the same way.
    let foreign = link(
        &LinkKey::generate(),
        &payload(&w.token, Decision::Reject, Scope::APP),
    );
    let response = handle_request(&approval, post(&foreign, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Malformed: missing, garbage, truncated.
    for token in ["", "%%%", "AAAA", &good[..good.len() / 2]] {
        let response = handle_request(&approval, post(token, "oncall@example.com")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{token:?}");
    }
    let calls = gate.proxy().log();
    assert!(calls.is_empty(), "Step Functions was called: {calls:?}");
    still_running(&w.execution_arn).await;
}

#[tokio::test]
async fn expired_links_are_gone() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-expired", None).await;
    let mut p = payload(&w.token, Decision::Approve, Scope::APP);
    p.expires_at = Utc::now().timestamp() - 5;
    let expired = link(&key, &p);
    for request in [get(&expired), post(&expired, "oncall@example.com")] {
        let response = handle_request(&approval, request).await;
        assert_eq!(response.status(), StatusCode::GONE);
        assert!(response.body().contains("expired"));
    }
    // A valid link, presented after its expiry.
    let valid = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));
    let later = Utc::now() + Duration::hours(2);
    let response = handle_at(&approval, post(&valid, "oncall@example.com"), later).await;
    assert_eq!(response.status(), StatusCode::GONE);
    still_running(&w.execution_arn).await;
}

#[tokio::test]
async fn cross_site_posts_and_bad_approvers_decide_nothing() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-csrf", None).await;
    let link = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));

    let mut forged = post(&link, "oncall@example.com");
    forged
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let response = handle_request(&approval, forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let hostile = "<img src=x onerror=alert(1)>";
    let response = handle_request(&approval, post(&link, hostile)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.body().contains("Enter your email address"));
    assert!(
        response
            .body()
            .contains("&lt;img src=x onerror=alert(1)&gt;")
    );
    assert!(!response.body().contains(hostile));

    let mut put = post(&link, "oncall@example.com");
    *put.method_mut() = Method::PUT;
    let response = handle_request(&approval, put).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    still_running(&w.execution_arn).await;
}

#[tokio::test]
async fn the_local_server_serves_the_same_handler() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-local", None).await;
    let (addr, _server) = rollback_approval::serve_local(([127, 0, 0, 1], 0).into(), approval)
        .await
        .unwrap();
    let link = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));
    let http = reqwest::Client::new();
    let page = http
        .get(format!("http://{addr}/?t={link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("mint-replica"));
    still_running(&w.execution_arn).await;
    let done = http
        .post(format!("http://{addr}/"))
        .header("origin", format!("http://{addr}"))
        .form(&[("t", link.as_str()), ("approver", "oncall@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(finished(&w.execution_arn).await.0, "SUCCEEDED");
}

/// The Lambda reads the link key on first use (secrets.rs has the page's reads), under the
/// approval role: the stack's link key, by the ARN the template gives it (`!Ref ApprovalLinkKey`).
#[tokio::test]
async fn the_link_key_is_read_under_the_approval_role() {
    let (bytes, arn) = MotoServer::shared_executing()
        .link_key_secret("appr-key-approval-link-key")
        .await;
    let stack = test_stack("appr-key").resource("ApprovalLinkKey", &arn, &[]);
    let gate = IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "approval",
        &stack,
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&gate.sdk_config());
    let key = LinkKey::load(&secrets, &arn).await.unwrap();
    let sealed = LinkKey::from_bytes(&bytes)
        .seal(&payload("tok", Decision::Approve, Scope::APP))
        .unwrap();
    assert_eq!(key.open(&sealed, Utc::now()).unwrap().task_token, "tok");
}
