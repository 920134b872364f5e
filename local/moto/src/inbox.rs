//! What was published to SNS, read back: a topic whose messages land on an SQS queue, and
//! bounded reads of that queue (the notify and approval tests; the drill's notices inbox has
//! the same shape).

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::{MotoError, MotoServer};

/// How long [`MotoServer::next_message`] waits for a message.
const MESSAGE_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// How SNS delivers to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The message alone (`RawMessageDelivery`), as a mail client shows its body.
    Raw,
    /// The SNS JSON envelope, which carries the real `Subject` beside the `Message`.
    Envelope,
}

/// Creates the topic `topic` and the queue `queue`, and subscribes the queue to the topic
/// (its ARN as SQS reports it). Returns the topic's ARN and the queue's URL.
pub async fn topic_with_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic: &str,
    queue: &str,
    delivery: Delivery,
) -> Result<(String, String), MotoError> {
    let topic_arn = sns
        .create_topic()
        .name(topic)
        .send()
        .await
        .map_err(|e| MotoError::sdk("CreateTopic", DisplayErrorContext(e)))?
        .topic_arn
        .ok_or_else(|| MotoError::sdk("CreateTopic", "no topic ARN"))?;
    let queue_url = sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| MotoError::sdk("CreateQueue", DisplayErrorContext(e)))?
        .queue_url
        .ok_or_else(|| MotoError::sdk("CreateQueue", "no queue URL"))?;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| MotoError::sdk("GetQueueAttributes", DisplayErrorContext(e)))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| MotoError::sdk("GetQueueAttributes", "no queue ARN"))?;
    let mut subscribe = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn);
    if delivery == Delivery::Raw {
        subscribe = subscribe.attributes("RawMessageDelivery", "true");
    }
    subscribe
        .send()
        .await
        .map_err(|e| MotoError::sdk("Subscribe", DisplayErrorContext(e)))?;
    Ok((topic_arn, queue_url))
}

impl MotoServer {
    /// [`topic_with_queue`] in this server: the topic `name` and the queue `<name>-q`. Returns
    /// the topic's ARN and the queue's URL; panics when moto refuses (test setup).
    pub async fn topic_with_queue(&self, name: &str, delivery: Delivery) -> (String, String) {
        let config = self.sdk_config();
        topic_with_queue(
            &aws_sdk_sns::Client::new(&config),
            &aws_sdk_sqs::Client::new(&config),
            name,
            &format!("{name}-q"),
            delivery,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The body of the next message on `queue_url`, deleted once read; panics when none
    /// arrives within 10 s.
    pub async fn next_message(&self, queue_url: &str) -> String {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_config());
        let deadline = tokio::time::Instant::now() + MESSAGE_WAIT;
        while tokio::time::Instant::now() < deadline {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(1)
                .send()
                .await
                .expect("ReceiveMessage");
            if let Some(m) = out.messages().first() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage");
                return m.body().unwrap_or_default().to_owned();
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("no message on {queue_url} within {MESSAGE_WAIT:?}");
    }

    /// Whether `queue_url` has no message to receive right now.
    pub async fn queue_is_empty(&self, queue_url: &str) -> bool {
        aws_sdk_sqs::Client::new(&self.sdk_config())
            .receive_message()
            .queue_url(queue_url)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages()
            .is_empty()
    }
}
