//! Data flow: the context object, and the InputPath → Parameters → ResultSelector →
//! ResultPath → OutputPath pipeline the states share.

use super::{Interpreter, StatesError, Visit, check_size, ts};
use crate::definition::{Compound, Num, ResultPath, State, Template};
use crate::paths::JsonPath;
use serde_json::{Map, Value, json};

impl Interpreter {
    pub(super) fn context(&self, visit: &Visit<'_>) -> Value {
        let mut c = json!({
            "Execution": {
                "Id": self.info.arn,
                "Name": self.info.name,
                "Input": self.info.input,
                "StartTime": ts(self.info.start),
                "RoleArn": self.info.role_arn,
                "RedriveCount": 0,
            },
            "State": {"Name": visit.state, "EnteredTime": ts(visit.entered), "RetryCount": visit.retry_count},
            "StateMachine": {"Id": self.info.state_machine_arn, "Name": self.info.state_machine_name},
        });
        if let Some(t) = &visit.token {
            c["Task"] = json!({"Token": t});
        }
        if let Some((i, val)) = visit.item {
            c["Map"] = json!({"Item": {"Index": i, "Value": val}});
        }
        c
    }

    /// The context object, built only when the path reads it (most paths don't, and building
    /// it is the bulk of a Pass state's cost).
    fn context_for(&self, p: &JsonPath, visit: &Visit<'_>) -> Value {
        if p.is_context() {
            self.context(visit)
        } else {
            Value::Null
        }
    }

    pub(super) fn input_path(
        &self,
        state: &State,
        input: &Value,
        visit: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        match &state.input_path {
            None => Ok(json!({})),
            Some(p) => p.select(input, &self.context_for(p, visit)).ok_or_else(|| {
                StatesError::runtime(
                    state.name.as_str(),
                    format!("Invalid input path '{p}': could not be found in the input '{input}'"),
                )
            }),
        }
    }

    pub(super) fn output_path(
        &self,
        state: &State,
        output: Value,
        visit: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        match &state.output_path {
            None => Ok(json!({})),
            Some(p) => p
                .select(&output, &self.context_for(p, visit))
                .ok_or_else(|| {
                    StatesError::runtime(
                        state.name.as_str(),
                        format!(
                            "Invalid output path '{p}': could not be found in the output '{output}'"
                        ),
                    )
                }),
        }
    }

    pub(super) fn resolve(
        &self,
        t: &Template,
        input: &Value,
        visit: &Visit<'_>,
        field: &str,
    ) -> Result<Value, StatesError> {
        let ctx = self.context(visit);
        resolve_template(t, input, &ctx, field)
            .map_err(|cause| StatesError::runtime(visit.state, cause))
    }

    pub(super) fn result_path(
        state: &str,
        rp: &ResultPath,
        raw: Value,
        result: Value,
    ) -> Result<Value, StatesError> {
        match rp {
            None => Ok(raw),
            Some(p) => p.set(raw, result).map_err(|e| {
                StatesError::new(
                    "States.ResultPathMatchFailure",
                    format!("State '{state}': {e}"),
                )
            }),
        }
    }

    /// InputPath → Parameters, shared by Parallel and Map.
    pub(super) fn effective_input(
        &self,
        state: &State,
        common: &Compound,
        raw: &Value,
        visit: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        let effective_input = self.input_path(state, raw, visit)?;
        let effective_input = match &common.parameters {
            Some(t) => self.resolve(t, &effective_input, visit, "Parameters")?,
            None => effective_input,
        };
        check_size(&state.name, &effective_input, "input (after Parameters)")?;
        Ok(effective_input)
    }

    /// ResultSelector → ResultPath → OutputPath, shared by Task, Parallel and Map.
    pub(super) fn finish(
        &self,
        state: &State,
        common: &Compound,
        raw: Value,
        result: Value,
        visit: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        check_size(&state.name, &result, "result")?;
        let result = match &common.result_selector {
            Some(t) => self.resolve(t, &result, visit, "ResultSelector")?,
            None => result,
        };
        let out = Self::result_path(&state.name, &common.result_path, raw, result)?;
        self.output_path(state, out, visit)
    }
}

/// The input `*Path` timeout fields read from: the state's effective input.
pub(super) fn params_input(raw: &Value, state: &State, ctx: &Value) -> Value {
    match &state.input_path {
        None => json!({}),
        Some(p) => p.select(raw, ctx).unwrap_or(Value::Null),
    }
}

pub(super) fn num_value(n: &Num, input: &Value, ctx: &Value) -> Result<f64, String> {
    match n {
        Num::Lit(x) => Ok(*x),
        Num::Path(p) => match p.select(input, ctx) {
            Some(Value::Number(x)) => x.as_f64().ok_or_else(|| format!("'{p}' is not a number")),
            Some(other) => Err(format!("The path '{p}' must select a number, got {other}")),
            None => Err(format!(
                "The path '{p}' could not be found in the input '{input}'"
            )),
        },
    }
}

/// Resolves a payload template. Errors are the cause text of a States.Runtime failure.
pub fn resolve_template(
    t: &Template,
    input: &Value,
    ctx: &Value,
    field: &str,
) -> Result<Value, String> {
    match t {
        Template::Lit(value) => Ok(value.clone()),
        Template::Path(p) => p.select(input, ctx).ok_or_else(|| {
            let src = if p.is_context() { ctx } else { input };
            format!("The JSONPath '{p}' specified for the field '{field}.$' could not be found in the input '{src}'")
        }),
        Template::Intrinsic(c) => c.eval(input, ctx).map_err(|e| format!("The function for field '{field}.$' failed: {e}")),
        Template::Object(fields) => {
            let mut m = Map::new();
            for (key, template) in fields {
                m.insert(key.clone(), resolve_template(template, input, ctx, key)?);
            }
            Ok(Value::Object(m))
        }
        Template::Array(items) => items.iter().map(|i| resolve_template(i, input, ctx, field)).collect::<Result<Vec<_>, _>>().map(Value::Array),
    }
}
