//! What the notify tests against moto share: notify's clients behind the IAM gate (its role
//! in infra/template.yaml) and the channel secrets. The topics and their queues are
//! `rollback_moto::inbox`'s.
#![allow(dead_code)]

use rollback_fault_proxy::gate::IamGate;
use rollback_fault_proxy::iam::StackValues;
use rollback_moto::MotoServer;
use rollback_notify::Clients;

/// notify's role for `stack`, checking every call notify makes: with
/// `test_stack(service)` it may publish to `<service>-approvals`, `<service>-notices` and
/// `<service>-escalations` (name the test's topics so) and read the stack's link key. The
/// test seeds and reads through moto directly.
pub fn gate(stack: &StackValues) -> IamGate {
    IamGate::start(&MotoServer::shared().endpoint(), "notify", stack)
}

/// notify's clients: its own credentials, through `gate`.
pub fn clients(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config())
}

/// The plan's channel secrets in moto, under the default ChannelSecretPrefix
/// (`notice-channels/<service>/statuspage` holds the API key, `…/slack` the webhook URL).
pub async fn seed_channel_secrets(service: &str, statuspage_key: &str, slack_url: &str) {
    let secrets = aws_sdk_secretsmanager::Client::new(&MotoServer::shared().sdk_config());
    for (name, value) in [("statuspage", statuspage_key), ("slack", slack_url)] {
        secrets
            .create_secret()
            .name(format!("notice-channels/{service}/{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
}
