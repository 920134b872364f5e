//! Status checks that keep looking for a while before handing back to the state machine.
//!
//! A database restore takes tens of minutes. Polled from the definition, every look costs four
//! state transitions (status Task, Choice, counting Pass, Wait) and eleven history events: a
//! 20-minute restore polled every 15 s was 320 transitions. A status check that looks again
//! every `polling.interval_seconds` for up to `polling.status_wait_seconds` sees completion
//! just as soon (within one interval) and hands back to the definition only when its time is
//! up, so the same restore takes five loop iterations. The wait is spent in the function
//! (Lambda bills it as duration: a few hundredths of a cent per rollback), which is why it is
//! bounded well inside the function's timeout ([`STATUS_WAIT_MAX_SECONDS`]).
//!
//! Only the definition's wait loops ask for it (`keep_looking: true` in a status action's
//! input); any other caller, such as the failure path's observation of what is live, gets one
//! look.
//!
//! The looks are counted, not timed: on the local stack the engine's clock is virtual and its
//! emulators answer "not yet" for a number of looks, so [`with_pause`] lets the local engine
//! move its own clock instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::RollbackError;
use crate::plan::PollingPolicy;

/// The longest `polling.status_wait_seconds`: the functions that serve status checks
/// (snapshot, restore, deploy-undo, infra) have a 300 s timeout in `infra/template.yaml`, and
/// the last look and its answer need room inside it.
pub const STATUS_WAIT_MAX_SECONDS: u32 = 240;

/// The timeout the template gives every function that serves status checks.
pub const STATUS_FUNCTION_TIMEOUT_SECONDS: u32 = 300;

// The last look and its answer need room after the longest wait.
const _: () = assert!(STATUS_FUNCTION_TIMEOUT_SECONDS >= STATUS_WAIT_MAX_SECONDS + 60);

/// How a status check waits between looks: a real sleep in Lambda, a move of the virtual clock
/// on the local engine.
pub type Pause = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

tokio::task_local! {
    static PAUSE: Pause;
}

/// Runs `body` with `pause` as the wait between looks of every status check inside it.
pub async fn with_pause<F: Future>(pause: Pause, body: F) -> F::Output {
    PAUSE.scope(pause, body).await
}

async fn pause(duration: Duration) {
    match PAUSE.try_with(Arc::clone) {
        Ok(pause) => pause(duration).await,
        Err(_) => tokio::time::sleep(duration).await,
    }
}

/// How many looks one status check makes at most: the first, then one per interval that fits
/// in `status_wait_seconds`.
pub fn looks_per_check(polling: &PollingPolicy) -> u32 {
    polling.status_wait_seconds / polling.interval_seconds.max(1) + 1
}

/// Looks with `check` until `done` says so or the plan's status wait is used up, a poll
/// interval apart, and answers the last look; with `polling` `None` (the caller asked for a
/// plain observation) it looks once. An error ends the check at once: the definition's Retry
/// decides what happens next, as for a single look.
pub async fn keep_checking<T, F, Fut>(
    polling: Option<&PollingPolicy>,
    mut check: F,
    done: impl Fn(&T) -> bool,
) -> Result<T, RollbackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RollbackError>>,
{
    let Some(polling) = polling else {
        return check().await;
    };
    let interval = Duration::from_secs(u64::from(polling.interval_seconds.max(1)));
    let mut looks_left = looks_per_check(polling);
    loop {
        let answer = check().await?;
        looks_left -= 1;
        if done(&answer) || looks_left == 0 {
            return Ok(answer);
        }
        pause(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn polling(interval_seconds: u32, status_wait_seconds: u32) -> PollingPolicy {
        PollingPolicy {
            interval_seconds,
            status_wait_seconds,
            ..PollingPolicy::default()
        }
    }

    /// Records the pauses instead of sleeping.
    fn recorder() -> (Pause, Arc<Mutex<Vec<Duration>>>) {
        let paused = Arc::new(Mutex::new(Vec::new()));
        let log = paused.clone();
        let pause: Pause = Arc::new(move |d| {
            log.lock().unwrap().push(d);
            Box::pin(async {})
        });
        (pause, paused)
    }

    async fn run(policy: &PollingPolicy, done_at_look: u32) -> (u32, bool, Vec<Duration>) {
        let looks = AtomicU32::new(0);
        let (pause, paused) = recorder();
        let done = with_pause(
            pause,
            keep_checking(
                Some(policy),
                || async { Ok::<u32, RollbackError>(looks.fetch_add(1, Ordering::SeqCst) + 1) },
                |look| *look >= done_at_look,
            ),
        )
        .await
        .unwrap();
        let paused = paused.lock().unwrap().clone();
        (looks.into_inner(), done >= done_at_look, paused)
    }

    #[tokio::test]
    async fn stops_at_the_first_look_that_is_done() {
        let (looks, done, paused) = run(&polling(15, 240), 4).await;
        assert_eq!((looks, done), (4, true));
        assert_eq!(paused, vec![Duration::from_secs(15); 3]);
    }

    #[tokio::test]
    async fn hands_back_when_the_wait_is_used_up() {
        // 240 s at 15 s: looks at 0, 15, …, 240 s.
        let (looks, done, paused) = run(&polling(15, 240), 100).await;
        assert_eq!((looks, done), (17, false));
        assert_eq!(paused.len(), 16);
        assert_eq!(looks_per_check(&polling(15, 240)), 17);
        // An interval that does not divide the wait: the last look stays inside it.
        assert_eq!(looks_per_check(&polling(100, 240)), 3);
    }

    #[tokio::test]
    async fn no_wait_is_one_look() {
        let (looks, done, paused) = run(&polling(15, 0), 100).await;
        assert_eq!((looks, done), (1, false));
        assert!(paused.is_empty());
        // An interval longer than the wait is one look too.
        assert_eq!(run(&polling(300, 240), 100).await.0, 1);
    }

    #[tokio::test]
    async fn an_observation_looks_once() {
        let looks = AtomicU32::new(0);
        let answer = keep_checking(
            None,
            || async { Ok::<u32, RollbackError>(looks.fetch_add(1, Ordering::SeqCst)) },
            |_| false,
        )
        .await
        .unwrap();
        assert_eq!((answer, looks.into_inner()), (0, 1));
    }

    #[tokio::test]
    async fn an_error_ends_the_check_at_once() {
        let looks = AtomicU32::new(0);
        let (pause, paused) = recorder();
        let result = with_pause(
            pause,
            keep_checking(
                Some(&polling(15, 240)),
                || async {
                    match looks.fetch_add(1, Ordering::SeqCst) {
                        0 => Ok(false),
                        _ => Err(RollbackError::Transient {
                            operation: "DescribeDBInstances".into(),
                            message: "503".into(),
                        }),
                    }
                },
                |done: &bool| *done,
            ),
        )
        .await;
        assert!(matches!(result, Err(RollbackError::Transient { .. })));
        assert_eq!(looks.into_inner(), 2);
        assert_eq!(paused.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_for_real_outside_the_local_engine() {
        let started = tokio::time::Instant::now();
        let looks = AtomicU32::new(0);
        let answer = keep_checking(
            Some(&polling(15, 60)),
            || async { Ok::<u32, RollbackError>(looks.fetch_add(1, Ordering::SeqCst)) },
            |_| false,
        )
        .await
        .unwrap();
        assert_eq!(answer, 4);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
