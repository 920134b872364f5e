//! What the page keeps to itself, against moto under the approval role: the link keys (read
//! on the first request with a link; the secret's current and previous version, so links
//! mailed before a rotation still open) and Step Functions' error text (role ARNs, account
//! ids), which is logged, not shown.

mod common;

use std::time::Duration;

use common::*;
use http::{Request, StatusCode};
use rollback_approval::{LinkKeySource, MAX_AGE, Services, handle_request};
use rollback_core::approval_link::{Decision, KeyCache, LinkKey};
use rollback_core::contract::approval::ApprovalDecision;
use rollback_core::request::Scope;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;

/// The approval role of a stack whose `ApprovalLinkKey` is the secret `arn`.
fn keyed_gate(service: &str, arn: &str) -> IamGate {
    let stack = test_stack(service).resource("ApprovalLinkKey", arn, &[]);
    IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "approval",
        &stack,
    )
}

/// The page as the Lambda builds it: the keys read from the secret on first use, under the
/// approval role. `reload_after` is the warm page's minimum time between reads.
fn page_from_secret(gate: &IamGate, arn: &str, reload_after: Duration) -> Services {
    let secrets = aws_sdk_secretsmanager::Client::new(&gate.sdk_config());
    let keys = LinkKeySource::from_secret(secrets, arn).reload_intervals(reload_after, MAX_AGE);
    Services::new(approval_sfn(gate), keys, signer(gate))
}

/// What notify seals with: the secret's current version.
async fn notify_key(arn: &str) -> LinkKey {
    let secrets = aws_sdk_secretsmanager::Client::new(&MotoServer::shared_executing().sdk_config());
    LinkKey::load(&secrets, arn).await.unwrap()
}

/// A rotation: `PutSecretValue` makes the new key `AWSCURRENT` and moves the old one to
/// `AWSPREVIOUS`.
async fn rotate(arn: &str) -> LinkKey {
    let bytes = LinkKey::generate_secret_bytes();
    aws_sdk_secretsmanager::Client::new(&MotoServer::shared_executing().sdk_config())
        .put_secret_value()
        .secret_id(arn)
        .secret_string(LinkKey::encode_secret(&bytes))
        .send()
        .await
        .unwrap();
    LinkKey::from_bytes(&bytes)
}

fn secret_reads(gate: &IamGate) -> usize {
    let log = gate.proxy().log();
    assert!(
        log.iter().all(|r| r.request.operation == "GetSecretValue"),
        "{log:?}"
    );
    log.len()
}

#[tokio::test]
async fn the_keys_are_read_on_the_first_link_not_at_start() {
    let (bytes, arn) = MotoServer::shared_executing()
        .link_key_secret("lazy-approval-link-key")
        .await;
    let keys_gate = keyed_gate("lazy", &arn);
    let approval = gate();
    let page = Services::new(
        approval_sfn(&approval),
        LinkKeySource::from_secret(
            aws_sdk_secretsmanager::Client::new(&keys_gate.sdk_config()),
            &arn,
        ),
        signer(&approval),
    );
    // Requests without a link (scanners, the favicon, the bench's cold start) read nothing.
    for uri in ["/approval", "/approval?t=", "/favicon.ico"] {
        let request = Request::builder()
            .uri(uri)
            .header("host", "approve.test")
            .body(Vec::new())
            .unwrap();
        let response = handle_request(&page, request).await;
        assert!(response.status().is_client_error(), "{uri}");
    }
    assert_eq!(secret_reads(&keys_gate), 0);
    let link = link(
        &LinkKey::from_bytes(&bytes),
        &payload("tok", Decision::Approve, Scope::APP),
    );
    for _ in 0..3 {
        assert_eq!(
            handle_request(&page, get(&link)).await.status(),
            StatusCode::OK
        );
    }
    // AWSCURRENT and AWSPREVIOUS (absent: never rotated), once.
    assert_eq!(secret_reads(&keys_gate), 2);
}

#[tokio::test]
async fn links_sealed_before_a_rotation_still_open_and_decide() {
    let (_, arn) = MotoServer::shared_executing()
        .link_key_secret("rot-approval-link-key")
        .await;
    let gate = keyed_gate("rot", &arn);
    let warm = page_from_secret(&gate, &arn, Duration::ZERO);
    let w = waiting_execution("rot-before", None).await;
    let old = notify_key(&arn).await;
    let before = link(&old, &payload(&w.token, Decision::Approve, Scope::APP));
    assert_eq!(
        handle_request(&warm, get(&before)).await.status(),
        StatusCode::OK
    );

    let new = rotate(&arn).await;
    assert_eq!(
        notify_key(&arn).await.id(),
        new.id(),
        "notify seals with the new key"
    );
    assert_ne!(new.id(), old.id());
    // A page started after the rotation (a new container) opens and decides the old link.
    let cold = page_from_secret(&gate, &arn, Duration::ZERO);
    assert_eq!(
        handle_request(&cold, get(&before)).await.status(),
        StatusCode::OK
    );
    let response = handle_request(&cold, post(&before, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    let (status, output, ..) = finished(&w.execution_arn).await;
    assert_eq!(status, "SUCCEEDED");
    let decision: ApprovalDecision = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(decision.approver, "oncall@example.com");

    // A page warm from before the rotation opens links sealed after it: a key id it has not
    // loaded makes it read the secret again.
    let w2 = waiting_execution("rot-after", None).await;
    let after = link(&new, &payload(&w2.token, Decision::Reject, Scope::APP));
    assert_eq!(
        handle_request(&warm, get(&after)).await.status(),
        StatusCode::OK
    );
    let response = handle_request(&warm, post(&after, "lead@example.com")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    let (status, _, error, _) = finished(&w2.execution_arn).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Rollback.Rejected"))
    );
    gate.assert_allowed();
}

#[tokio::test]
async fn only_the_current_and_the_previous_key_open_links() {
    let (_, arn) = MotoServer::shared_executing()
        .link_key_secret("retire-approval-link-key")
        .await;
    let gate = keyed_gate("retire", &arn);
    let w = waiting_execution("rot-retire", None).await;
    let oldest = notify_key(&arn).await;
    let previous = rotate(&arn).await;
    // Warm across the second rotation; it keeps its keys up to their maximum age.
    let warm = page_from_secret(&gate, &arn, Duration::ZERO);
    let sealed = |key: &LinkKey| link(key, &payload(&w.token, Decision::Approve, Scope::APP));
    assert_eq!(
        handle_request(&warm, get(&sealed(&oldest))).await.status(),
        StatusCode::OK
    );
    let current = rotate(&arn).await;

    let cold = page_from_secret(&gate, &arn, Duration::ZERO);
    for page in [&cold, &warm] {
        for key in [&current, &previous] {
            let response = handle_request(page, get(&sealed(key))).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
        }
    }
    // The second rotation retired the oldest key (the warm page saw the new key id and read
    // the secret again); a key that was never in the secret is refused the same way. Nothing
    // is decided and Step Functions is not called.
    for key in [&oldest, &LinkKey::generate()] {
        for page in [&cold, &warm] {
            for request in [get(&sealed(key)), post(&sealed(key), "oncall@example.com")] {
                let response = handle_request(page, request).await;
                assert_eq!(response.status(), StatusCode::BAD_REQUEST);
                assert!(response.body().contains("altered"), "{}", response.body());
            }
        }
    }
    secret_reads(&gate);
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}

/// notify seals with the current key it read; a warm notify reads the secret again after the
/// maximum age, so after two rotations it does not seal with a retired key.
#[tokio::test]
async fn notify_seals_with_the_rotated_key_after_its_maximum_age() {
    let (bytes, arn) = MotoServer::shared_executing()
        .link_key_secret("warm-approval-link-key")
        .await;
    let stack = test_stack("warm").resource("ApprovalLinkKey", &arn, &[]);
    let notify = IamGate::start(&MotoServer::shared_executing().endpoint(), "notify", &stack);
    let secrets = aws_sdk_secretsmanager::Client::new(&notify.sdk_config());
    let young = KeyCache::new(&arn);
    let old = KeyCache::new(&arn).max_age(Duration::ZERO);
    let first = LinkKey::from_bytes(&bytes).id();
    for cache in [&young, &old] {
        assert_eq!(cache.get(&secrets).await.unwrap().id(), first);
    }
    let rotated = rotate(&arn).await;
    // Within its maximum age a process keeps the key it read (the page still opens its links,
    // with the previous key); after it, it seals with the new one.
    assert_eq!(young.get(&secrets).await.unwrap().id(), first);
    assert_eq!(old.get(&secrets).await.unwrap().id(), rotated.id());
    notify.assert_allowed();
}

#[tokio::test]
async fn a_page_that_cannot_read_its_keys_says_try_again() {
    // The stack's secret, which the role may read, is missing.
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-approval-link-key-AbCdEf";
    let gate = keyed_gate("gone", arn);
    let page = page_from_secret(&gate, arn, Duration::ZERO);
    let w = waiting_execution("keys-gone", None).await;
    let link = link(
        &LinkKey::generate(),
        &payload(&w.token, Decision::Approve, Scope::APP),
    );
    for request in [get(&link), post(&link, "oncall@example.com")] {
        let response = handle_request(&page, request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.body().contains("Try again"), "{}", response.body());
        assert!(
            !response.body().contains("123456789012"),
            "{}",
            response.body()
        );
    }
    // Each request tried again: a failed read is not kept. (The AWSPREVIOUS read may be
    // dropped before it is sent once AWSCURRENT failed.)
    assert!(secret_reads(&gate) >= 2);
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}

/// A real refusal: the page's Step Functions calls go out under a role without
/// `states:SendTaskFailure` (notify's), and the IAM check answers as AWS does, naming the
/// role's ARN and the account. The page shows the error code only.
#[tokio::test]
async fn step_functions_errors_show_their_code_only() {
    let notify_role = IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "notify",
        &test_stack("mint-replica"),
    );
    let approval_role = gate();
    let key = LinkKey::generate();
    let page = Services::with_key(
        approval_sfn(&notify_role),
        key.clone(),
        signer(&approval_role),
    );
    let w = waiting_execution("appr-refused", None).await;
    let reject = link(&key, &payload(&w.token, Decision::Reject, Scope::APP));
    let response = handle_request(&page, post(&reject, "lead@example.com")).await;
    let refused = notify_role.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.body();
    assert!(body.contains("AccessDeniedException"), "{body}");
    for leak in ["123456789012", "arn:aws", "assumed-role", "not authorized"] {
        assert!(!body.contains(leak), "the page shows {leak:?}: {body}");
    }
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}
