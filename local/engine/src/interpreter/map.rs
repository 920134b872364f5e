//! Map: runs the item processor on each item of the selected array, at most MaxConcurrency at
//! a time; the first failure ends them all.

use super::cursor::Cursor;
use super::data_flow::num_value;
use super::{Interpreter, StatesError, Visit};
use crate::definition::{Compound, Num, State, StateMachine, Template};
use crate::paths::JsonPath;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

/// A Map state's own fields.
pub(super) struct MapSpec<'a> {
    pub processor: &'a StateMachine,
    pub items_path: Option<&'a JsonPath>,
    pub item_selector: Option<&'a Template>,
    pub max_concurrency: Option<&'a Num>,
    pub common: &'a Compound,
}

impl Interpreter {
    pub(super) async fn map_attempt<'a>(
        &'a self,
        state: &'a State,
        spec: &MapSpec<'a>,
        raw: Value,
        at: &mut Cursor<'a>,
        visit: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let effective_input = self.input_path(state, &raw, &visit)?;
        let (items, limit) = self.map_items(state, spec, &effective_input, &visit)?;
        at.record(
            "MapStateStarted",
            Some("mapStateStartedEventDetails"),
            json!({"length": items.len()}),
        )?;
        let entries: Vec<(usize, Value)> = items.into_iter().enumerate().collect();
        let inputs = self.item_inputs(spec.item_selector, &effective_input, &entries, &visit)?;
        let result = self
            .run_iterations(&state.name, spec.processor, &entries, inputs, limit, *at)
            .await;
        match result {
            Ok(outs) => {
                at.record("MapStateSucceeded", None, json!({}))?;
                self.finish(state, spec.common, raw, Value::Array(outs), &visit)
            }
            Err(e) => {
                at.record("MapStateFailed", None, json!({}))?;
                Err(e)
            }
        }
    }

    /// The items (ItemsPath of the effective input) and how many may run at once.
    fn map_items(
        &self,
        state: &State,
        spec: &MapSpec<'_>,
        effective_input: &Value,
        visit: &Visit<'_>,
    ) -> Result<(Vec<Value>, usize), StatesError> {
        let name = state.name.as_str();
        let ctx = self.context(visit);
        let items = match spec.items_path {
            None => json!({}),
            Some(p) => p.select(effective_input, &ctx).ok_or_else(|| {
                StatesError::runtime(
                    name,
                    format!(
                        "Invalid path '{p}': The ItemsPath field could not be found in the input"
                    ),
                )
            })?,
        };
        let Value::Array(items) = items else {
            return Err(StatesError::runtime(
                name,
                format!("Item selection for Map state '{name}' must be a JSON array, got {items}"),
            ));
        };
        let limit = match spec.max_concurrency {
            None => 0,
            Some(n) => num_value(n, effective_input, &ctx)
                .map_err(|e| StatesError::runtime(name, e))? as usize,
        };
        let limit = if limit == 0 {
            items.len().max(1)
        } else {
            limit
        };
        Ok((items, limit))
    }

    /// Each iteration's input: the item, or the ItemSelector resolved for it.
    fn item_inputs(
        &self,
        item_selector: Option<&Template>,
        effective_input: &Value,
        entries: &[(usize, Value)],
        visit: &Visit<'_>,
    ) -> Result<Vec<Value>, StatesError> {
        let mut inputs = Vec::with_capacity(entries.len());
        for entry in entries {
            let item_input = match item_selector {
                Some(t) => {
                    let item_visit = Visit {
                        item: Some(entry),
                        ..visit.clone()
                    };
                    self.resolve(t, effective_input, &item_visit, "ItemSelector")?
                }
                None => entry.1.clone(),
            };
            inputs.push(item_input);
        }
        Ok(inputs)
    }

    /// Runs the iterations, each from a copy of `start`, at most `limit` at a time; their
    /// outputs in item order.
    async fn run_iterations<'a>(
        &'a self,
        name: &'a str,
        processor: &'a StateMachine,
        entries: &'a [(usize, Value)],
        inputs: Vec<Value>,
        limit: usize,
        start: Cursor<'a>,
    ) -> Result<Vec<Value>, StatesError> {
        let runs = inputs
            .into_iter()
            .enumerate()
            .map(move |(i, input)| async move {
                let entry = &entries[i];
                let mut started = start;
                started.record(
                    "MapIterationStarted",
                    Some("mapIterationStartedEventDetails"),
                    json!({"name": name, "index": i}),
                )?;
                match self.run_from(processor, input, started, Some(entry)).await {
                    Ok((o, mut last)) => {
                        last.record(
                            "MapIterationSucceeded",
                            Some("mapIterationSucceededEventDetails"),
                            json!({"name": name, "index": i}),
                        )?;
                        Ok(o)
                    }
                    Err(e) => {
                        let _ = started.record(
                            "MapIterationFailed",
                            Some("mapIterationFailedEventDetails"),
                            json!({"name": name, "index": i}),
                        );
                        Err(e)
                    }
                }
            });
        futures::stream::iter(runs)
            .buffered(limit)
            .try_collect()
            .await
    }
}
