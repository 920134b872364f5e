//! Per-execution clocks.
//!
//! The virtual clock never sleeps for real. An execution runs as a single future (branches of
//! Parallel and Map are joined, not spawned), wrapped by [`Clock::drive`]. Whenever that future
//! returns `Pending` and no *external* wait is outstanding (a task handler still running, a
//! task token waiting for SendTaskSuccess), every branch is blocked on the clock alone, so the
//! driver jumps virtual time to the earliest deadline and wakes those sleepers. Checking only
//! after a complete poll makes the decision race-free: nothing inside the execution can be
//! half-way through a hand-off when we look.
//!
//! External waits keep time still. That is what a human approval needs (the drill must not
//! time out while someone reads the email); tests that want a token wait to time out call
//! [`Clock::advance`].

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Which time an execution runs on: virtual (the default) or the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Waits, retries and timeouts take no real time.
    #[default]
    Virtual,
    /// Wall-clock time with real sleeps.
    Real,
}

/// One execution's clock, shared by its interpreter and the engine: its time, its sleepers and its
/// outstanding external waits.
pub struct Clock {
    mode: ClockMode,
    state: Mutex<State>,
}

struct State {
    now: DateTime<Utc>,
    external: usize,
    seq: u64,
    sleepers: BTreeMap<(DateTime<Utc>, u64), Waker>,
    driver: Option<Waker>,
}

/// How many virtual-time jumps the driver makes in one poll before yielding to the runtime, so
/// an execution that loops on Wait states cannot monopolise a worker thread.
const JUMPS_PER_POLL: usize = 64;

impl Clock {
    /// A clock in `mode`; virtual time starts at `start` (real mode reads the wall clock).
    pub fn new(mode: ClockMode, start: DateTime<Utc>) -> Arc<Clock> {
        Arc::new(Clock {
            mode,
            state: Mutex::new(State {
                now: start,
                external: 0,
                seq: 0,
                sleepers: BTreeMap::new(),
                driver: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update; the data is still a
        // consistent clock (every update is a single assignment), so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mode the clock was created with.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The current time: virtual time, or the wall clock in real mode.
    pub fn now(&self) -> DateTime<Utc> {
        match self.mode {
            ClockMode::Real => Utc::now(),
            ClockMode::Virtual => self.lock().now,
        }
    }

    /// Moves virtual time forward by `d` (no effect in real mode) and wakes due sleepers.
    pub fn advance(&self, d: std::time::Duration) {
        if self.mode == ClockMode::Real {
            return;
        }
        let wakers = {
            let mut s = self.lock();
            s.now += TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
            let mut w = due(&mut s);
            w.extend(s.driver.clone());
            w
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A future that completes at `deadline` on this clock.
    pub fn sleep_until(self: &Arc<Self>, deadline: DateTime<Utc>) -> Sleep {
        match self.mode {
            ClockMode::Real => {
                let d = (deadline - Utc::now()).to_std().unwrap_or_default();
                Sleep::Real(Box::pin(tokio::time::sleep(d)))
            }
            ClockMode::Virtual => Sleep::Virtual {
                clock: self.clone(),
                deadline,
                id: None,
            },
        }
    }

    /// A future that completes `d` from [`Clock::now`] on this clock.
    pub fn sleep(self: &Arc<Self>, d: std::time::Duration) -> Sleep {
        let deadline = self.now() + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        self.sleep_until(deadline)
    }

    /// Marks `fut` as an external wait: while it is pending, virtual time stands still.
    pub async fn external<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        let _guard = ExternalGuard::new(self.clone());
        fut.await
    }

    /// Sleeps `d` on this clock from inside a task handler (which the engine runs as an
    /// external wait): for the sleep the handler is not an external wait, so virtual time moves
    /// on to it, alongside the Wait states and modelled tasks of parallel branches. For task
    /// handlers that model an operation taking time (a status check that keeps looking).
    pub async fn sleep_in_task(self: &Arc<Self>, d: std::time::Duration) {
        let _released = ExternalRelease::new(self.clone());
        self.sleep(d).await;
    }

    /// Runs `fut` (an execution) on this clock, advancing virtual time whenever it is blocked
    /// only on the clock.
    pub fn drive<F: Future>(self: &Arc<Self>, fut: F) -> Drive<F> {
        Drive {
            clock: self.clone(),
            fut: Box::pin(fut),
        }
    }
}

fn due(s: &mut State) -> Vec<Waker> {
    let now = s.now;
    let keys: Vec<_> = s
        .sleepers
        .range(..=(now, u64::MAX))
        .map(|(k, _)| *k)
        .collect();
    keys.into_iter()
        .filter_map(|k| s.sleepers.remove(&k))
        .collect()
}

struct ExternalGuard(Arc<Clock>);

impl ExternalGuard {
    fn new(c: Arc<Clock>) -> Self {
        c.lock().external += 1;
        ExternalGuard(c)
    }
}

impl Drop for ExternalGuard {
    fn drop(&mut self) {
        let w = {
            let mut s = self.0.lock();
            s.external -= 1;
            if s.external == 0 {
                s.driver.clone()
            } else {
                None
            }
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// Lifts one external wait for its lifetime (see [`Clock::sleep_in_task`]); dropped early, it
/// still puts the wait back, so the handler's own guard stays balanced.
struct ExternalRelease {
    clock: Arc<Clock>,
    /// Whether an external wait was lifted (none is outside a task handler): only that one
    /// is put back.
    lifted: bool,
}

impl ExternalRelease {
    fn new(clock: Arc<Clock>) -> Self {
        let (lifted, driver) = {
            let mut s = clock.lock();
            let lifted = s.external > 0;
            if lifted {
                s.external -= 1;
            }
            (
                lifted,
                if s.external == 0 {
                    s.driver.clone()
                } else {
                    None
                },
            )
        };
        if let Some(driver) = driver {
            driver.wake();
        }
        ExternalRelease { clock, lifted }
    }
}

impl Drop for ExternalRelease {
    fn drop(&mut self) {
        if self.lifted {
            self.clock.lock().external += 1;
        }
    }
}

/// The future [`Clock::sleep`] and [`Clock::sleep_until`] return.
pub enum Sleep {
    /// Real mode: a Tokio timer.
    Real(Pin<Box<tokio::time::Sleep>>),
    /// Virtual mode: woken by the clock once its time reaches `deadline`.
    Virtual {
        /// The clock that wakes the sleep.
        clock: Arc<Clock>,
        /// When the sleep completes, in the clock's time.
        deadline: DateTime<Utc>,
        /// The sleep's key among the clock's sleepers, once it has been polled.
        id: Option<u64>,
    },
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Real(s) => s.as_mut().poll(cx),
            Sleep::Virtual {
                clock,
                deadline,
                id,
            } => {
                let mut s = clock.lock();
                if s.now >= *deadline {
                    if let Some(i) = id.take() {
                        s.sleepers.remove(&(*deadline, i));
                    }
                    return Poll::Ready(());
                }
                let i = *id.get_or_insert_with(|| {
                    s.seq += 1;
                    s.seq
                });
                s.sleepers.insert((*deadline, i), cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Sleep::Virtual {
            clock,
            deadline,
            id: Some(i),
        } = self
        {
            clock.lock().sleepers.remove(&(*deadline, *i));
        }
    }
}

/// The future [`Clock::drive`] returns: the execution, with virtual time jumped forward whenever
/// the execution is blocked on the clock alone.
pub struct Drive<F: Future> {
    clock: Arc<Clock>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Drive<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        for _ in 0..JUMPS_PER_POLL {
            if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            if self.clock.mode == ClockMode::Real {
                return Poll::Pending;
            }
            let wakers = {
                let mut s = self.clock.lock();
                s.driver = Some(cx.waker().clone());
                if s.external > 0 {
                    return Poll::Pending;
                }
                let Some(((next, _), _)) = s.sleepers.first_key_value() else {
                    // Blocked on something that is neither the clock nor marked external
                    // (e.g. a stop signal): just wait to be woken.
                    return Poll::Pending;
                };
                let next = *next;
                if next > s.now {
                    s.now = next;
                }
                due(&mut s)
            };
            // The wakers lead back to this task, but combinators such as FuturesUnordered only
            // re-poll children whose own waker fired, so they must be woken, not dropped.
            wakers.into_iter().for_each(Waker::wake);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn virtual_sleeps_take_no_real_time() {
        let t0 = Utc::now();
        let c = Clock::new(ClockMode::Virtual, t0);
        let c2 = c.clone();
        let real = std::time::Instant::now();
        let out = c
            .drive(async move {
                let a = async {
                    c2.sleep(Duration::from_secs(3600)).await;
                    c2.now()
                };
                let b = async {
                    c2.sleep(Duration::from_secs(60)).await;
                    c2.now()
                };
                futures::join!(a, b)
            })
            .await;
        assert!(real.elapsed() < Duration::from_secs(1));
        assert_eq!(out.0 - t0, TimeDelta::seconds(3600));
        assert_eq!(out.1 - t0, TimeDelta::seconds(60));
    }

    #[tokio::test]
    async fn tasks_that_sleep_in_parallel_overlap_on_the_clock() {
        let t0 = Utc::now();
        let c = Clock::new(ClockMode::Virtual, t0);
        let c2 = c.clone();
        let out = c
            .drive(async move {
                // Two task handlers (external waits) in parallel branches, each modelling time.
                let task = |seconds: u64| {
                    let c3 = c2.clone();
                    let inner = c2.clone();
                    async move {
                        c3.external(async move {
                            inner.sleep_in_task(Duration::from_secs(seconds)).await;
                            inner.now()
                        })
                        .await
                    }
                };
                futures::join!(task(60), task(100))
            })
            .await;
        assert_eq!(out.0 - t0, TimeDelta::seconds(60));
        assert_eq!(
            out.1 - t0,
            TimeDelta::seconds(100),
            "the sleeps overlap, not add up"
        );
        assert_eq!(
            c.lock().external,
            0,
            "every external wait was put back and ended"
        );
    }

    #[tokio::test]
    async fn a_sleep_in_task_outside_a_task_leaves_time_free() {
        let t0 = Utc::now();
        let c = Clock::new(ClockMode::Virtual, t0);
        let c2 = c.clone();
        let run = c.drive(async move {
            c2.sleep_in_task(Duration::from_secs(30)).await;
            c2.sleep(Duration::from_secs(30)).await;
            c2.now()
        });
        // A leaked external wait would stop the clock for good: bound the test in real time.
        let end = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("virtual time stopped after the sleep");
        assert_eq!(end - t0, TimeDelta::seconds(60));
        assert_eq!(c.lock().external, 0);
    }

    #[tokio::test]
    async fn external_wait_holds_time_until_advanced() {
        let t0 = Utc::now();
        let c = Clock::new(ClockMode::Virtual, t0);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = c.clone();
        let h = tokio::spawn(c.drive(async move {
            tokio::select! {
                _ = c2.external(rx) => "external",
                _ = c2.sleep(Duration::from_secs(10)) => "timeout",
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(c.now(), t0, "time must not move during an external wait");
        c.advance(Duration::from_secs(11));
        assert_eq!(h.await.unwrap(), "timeout");
        drop(tx);
    }
}
