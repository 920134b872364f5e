//! Parallel: runs every branch on the state's effective input; the first failure ends them all.

use super::cursor::Cursor;
use super::{Interpreter, StatesError, Visit};
use crate::definition::{Compound, State, StateMachine};
use serde_json::{Value, json};

impl Interpreter {
    pub(super) async fn parallel_attempt<'a>(
        &'a self,
        state: &State,
        branches: &'a [StateMachine],
        common: &Compound,
        raw: Value,
        at: &mut Cursor<'a>,
        visit: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let effective_input = self.effective_input(state, common, &raw, &visit)?;
        at.record("ParallelStateStarted", None, json!({}))?;
        let start = *at;
        let runs = branches.iter().map(|b| {
            let effective_input = effective_input.clone();
            async move {
                self.run_from(b, effective_input, start, None)
                    .await
                    .map(|(o, _)| o)
            }
        });
        // try_join_all drops (aborts) the other branches as soon as one fails, like AWS.
        match futures::future::try_join_all(runs).await {
            Ok(outs) => {
                at.record("ParallelStateSucceeded", None, json!({}))?;
                self.finish(state, common, raw, Value::Array(outs), &visit)
            }
            Err(e) => {
                at.record("ParallelStateFailed", None, json!({}))?;
                Err(e)
            }
        }
    }
}
