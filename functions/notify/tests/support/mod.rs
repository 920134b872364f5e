//! What the notify tests against moto share: one moto per process, notify's clients behind
//! the IAM gate (its role in infra/template.yaml), a topic whose messages arrive raw on an
//! SQS queue, and bounded reads of that queue.
#![allow(dead_code)]

use std::time::Duration;

use rollback_fault_proxy::gate::IamGate;
use rollback_fault_proxy::iam::StackValues;
use rollback_moto::MotoServer;
use rollback_notify::Clients;

/// One moto per test process (the harness keeps it alive past the first test's thread).
pub fn moto() -> &'static MotoServer {
    MotoServer::shared()
}

/// A topic with a raw-delivery SQS subscription: returns (topic ARN, queue URL).
pub async fn topic(name: &str) -> (String, String) {
    let config = moto().sdk_config();
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = sns.create_topic().name(name).send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{name}-q"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}-q");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    (topic_arn, queue_url)
}

/// The next message on the queue (bounded wait).
pub async fn next_message(queue_url: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(&moto().sdk_config());
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages().first() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            return m.body().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message on {queue_url}");
}

pub async fn queue_is_empty(queue_url: &str) -> bool {
    let sqs = aws_sdk_sqs::Client::new(&moto().sdk_config());
    sqs.receive_message()
        .queue_url(queue_url)
        .send()
        .await
        .unwrap()
        .messages()
        .is_empty()
}

/// notify's role for `stack`, checking every call notify makes: with
/// `test_stack(service)` it may publish to `<service>-approvals`, `<service>-notices` and
/// `<service>-escalations` (name the test's topics so) and read the stack's link key. The
/// test seeds and reads through moto directly.
pub fn gate(stack: &StackValues) -> IamGate {
    IamGate::start(&moto().endpoint(), "notify", stack)
}

/// notify's clients: its own credentials, through `gate`.
pub fn clients(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config())
}

/// The plan's channel secrets in moto, under the default ChannelSecretPrefix
/// (`notice-channels/<service>/statuspage` holds the API key, `…/slack` the webhook URL).
pub async fn seed_channel_secrets(service: &str, statuspage_key: &str, slack_url: &str) {
    let secrets = aws_sdk_secretsmanager::Client::new(&moto().sdk_config());
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
