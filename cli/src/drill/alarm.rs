//! CloudWatch, locally: the 5xx alarm follows the demo app's health, as the real metric would.
//!
//! It catches up in two ways: a background look every 100 ms (for whoever watches the drill
//! in real time), and a look before every task the engine runs. The second makes the drill
//! deterministic: on the engine's virtual clock a step may start microseconds after the
//! rollout finished, while in the modelled world the metric has long recovered; without it the
//! smoke test could race the background look and see an alarm that only the host's load kept
//! firing.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use tokio::sync::Mutex;

use super::seed;

/// How often the background look runs.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// The longest one look may take (the health request and the alarm update): a task waits for
/// it, so it is bounded.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The alarm and the health URL it follows.
pub struct AlarmFollower {
    cloudwatch: aws_sdk_cloudwatch::Client,
    http: reqwest::Client,
    health_url: String,
    /// Whether the app was healthy at the last look; held across a look so two looks never
    /// interleave (the second must not return before the first has moved the alarm).
    was_healthy: Mutex<bool>,
}

impl AlarmFollower {
    pub fn new(cloudwatch: aws_sdk_cloudwatch::Client, health_url: String) -> Arc<Self> {
        Arc::new(AlarmFollower {
            cloudwatch,
            http: reqwest::Client::new(),
            health_url,
            was_healthy: Mutex::new(false),
        })
    }

    /// Looks at the app once; when it has just become healthy, the alarm goes back to OK. A
    /// look that takes longer than [`LOOK_TIMEOUT`] is abandoned (the next one retries).
    pub async fn catch_up(&self) {
        let _ = tokio::time::timeout(LOOK_TIMEOUT, self.look()).await;
    }

    async fn look(&self) {
        let mut was_healthy = self.was_healthy.lock().await;
        let healthy = matches!(
            self.http.get(&self.health_url).send().await,
            Ok(r) if r.status().is_success()
        );
        if healthy && !*was_healthy {
            let _ =
                seed::set_alarm(&self.cloudwatch, StateValue::Ok, "5xx rate back to normal").await;
        }
        *was_healthy = healthy;
    }

    /// The background look; runs until its task is aborted.
    pub async fn follow(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            self.catch_up().await;
        }
    }
}
