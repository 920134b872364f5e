//! Retry and Catch around the attempts of a Task, Parallel or Map state.

use super::cursor::Cursor;
use super::{Flow, Interpreter, StatesError, Visit, error_matches};
use crate::definition::{Catcher, Compound, State};
use crate::task::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

impl Interpreter {
    /// Runs attempts of a Task/Parallel/Map state under its Retry and Catch rules. An attempt
    /// takes the state's raw input, the cursor and the visit, and hands the cursor back.
    pub(super) async fn with_retry<'s, F>(
        &'s self,
        state: &'s State,
        common: &'s Compound,
        input: Value,
        at: &mut Cursor<'s>,
        visit: Visit<'s>,
        attempt: F,
    ) -> Result<(Value, Flow), StatesError>
    where
        F: Fn(
            Value,
            Cursor<'s>,
            Visit<'s>,
        ) -> BoxFuture<'s, (Result<Value, StatesError>, Cursor<'s>)>,
    {
        let mut counts = vec![0u32; common.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let attempt_visit = Visit {
                retry_count,
                ..visit.clone()
            };
            let (r, moved) = attempt(input.clone(), *at, attempt_visit).await;
            *at = moved;
            let err = match r {
                Ok(out) => return Ok((out, Self::next_of(state))),
                Err(e) => e,
            };
            if let Some(i) = common
                .retry
                .iter()
                .position(|r| error_matches(&r.errors, &err.error))
            {
                let r = &common.retry[i];
                if counts[i] < r.max_attempts {
                    let mut delay = r.interval * r.backoff.powi(counts[i] as i32);
                    if let Some(m) = r.max_delay {
                        delay = delay.min(m);
                    }
                    if r.jitter_full {
                        delay *= rand::random::<f64>();
                    }
                    counts[i] += 1;
                    retry_count += 1;
                    self.clock
                        .sleep(Duration::from_secs_f64(delay.clamp(0.0, 1e9)))
                        .await;
                    continue;
                }
            }
            if let Some(c) = common
                .catch
                .iter()
                .find(|c| error_matches(&c.errors, &err.error))
            {
                return Self::caught(state, c, input, err);
            }
            return Err(err);
        }
    }

    fn caught(
        state: &State,
        c: &Catcher,
        input: Value,
        err: StatesError,
    ) -> Result<(Value, Flow), StatesError> {
        let out = Self::result_path(
            &state.name,
            &c.result_path,
            input,
            json!({"Error": err.error, "Cause": err.cause}),
        )?;
        Ok((out, Flow::Next(c.next.clone())))
    }
}
