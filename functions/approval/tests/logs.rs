//! Logs never carry the task token, the link payload or the key, even at TRACE (which also
//! records what the AWS SDK logs).

mod common;

use common::*;
use rollback_approval::{LinkKeySource, Services, handle_request};
use rollback_core::approval_link::{Decision, LinkKey};
use rollback_core::request::Scope;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_moto::log_capture::capture_all_logs;

#[tokio::test]
async fn logs_never_carry_the_token_or_the_payload() {
    let gate = gate();
    let key = LinkKey::generate();
    let approval = page(&gate, &key);
    let w = waiting_execution("appr-logs", None).await;
    // A page that reads its keys from the secret, as the Lambda does.
    let (bytes, arn) = MotoServer::shared_executing()
        .link_key_secret("logs-approval-link-key")
        .await;
    let stack = test_stack("logs").resource("ApprovalLinkKey", &arn, &[]);
    let keys_gate = IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "approval",
        &stack,
    );
    let from_secret = Services::new(
        approval_sfn(&gate),
        LinkKeySource::from_secret(
            aws_sdk_secretsmanager::Client::new(&keys_gate.sdk_config()),
            &arn,
        ),
        signer(&gate),
    );
    // Capture from here: the setup above reads the token from SQS itself.
    let captured = capture_all_logs();
    let link = link(&key, &payload(&w.token, Decision::Approve, Scope::APP));
    let mut tampered = link.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    handle_request(&approval, get(&link)).await;
    handle_request(&approval, get(&tampered)).await;
    let sealed = common::link(
        &LinkKey::from_bytes(&bytes),
        &payload(&w.token, Decision::Approve, Scope::APP),
    );
    handle_request(&from_secret, get(&sealed)).await;
    handle_request(&approval, post(&link, "oncall@example.com")).await;
    handle_request(&approval, post(&link, "oncall@example.com")).await;

    let logs = captured.text();
    assert!(logs.contains("decision recorded"), "{logs}");
    assert!(logs.contains("unusable approval link"), "{logs}");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(&w.token)).collect();
    assert!(leaks.is_empty(), "task token logged: {leaks:#?}");
    assert!(!logs.contains(&link[..40]), "link payload logged");
    assert!(!logs.contains(&tampered[..40]), "link payload logged");
    assert!(logs.contains("approval link keys loaded"), "{logs}");
    // The secret as stored (base64) and the bytes as hex, as a debug print might show them.
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    for key in [LinkKey::encode_secret(&bytes), hex] {
        assert!(!logs.contains(&key[..24]), "link key logged");
    }
}
