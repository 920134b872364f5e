//! The states that call nothing: Pass, Succeed, Fail, Choice and Wait.

use super::data_flow::num_value;
use super::{Flow, Interpreter, StatesError, Visit};
use crate::choice::ChoiceRule;
use crate::definition::{ResultPath, State, StrSource, Template, WaitSpec};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

impl Interpreter {
    pub(super) fn pass(
        &self,
        state: &State,
        parameters: &Option<Template>,
        result: &Option<Value>,
        result_path: &ResultPath,
        input: Value,
        visit: &Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let effective_input = self.input_path(state, &input, visit)?;
        let res = match (result, parameters) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => self.resolve(p, &effective_input, visit, "Parameters")?,
            (None, None) => effective_input,
        };
        let out = Self::result_path(&state.name, result_path, input, res)?;
        Ok((self.output_path(state, out, visit)?, Self::next_of(state)))
    }

    pub(super) fn succeed(
        &self,
        state: &State,
        input: Value,
        visit: &Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let effective_input = self.input_path(state, &input, visit)?;
        Ok((self.output_path(state, effective_input, visit)?, Flow::End))
    }

    /// Always an error: the state's own, or the States.Runtime of a path that can't be read.
    pub(super) fn fail(
        &self,
        state: &State,
        error: &Option<StrSource>,
        cause: &Option<StrSource>,
        input: &Value,
        visit: &Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let ctx = self.context(visit);
        let error = fail_field(&state.name, error, "Error", input, &ctx)?;
        let cause = fail_field(&state.name, cause, "Cause", input, &ctx)?;
        Err(StatesError {
            error: error.unwrap_or_default(),
            cause: cause.unwrap_or_default(),
        })
    }

    pub(super) fn choice(
        &self,
        state: &State,
        choices: &[(ChoiceRule, String)],
        default: &Option<String>,
        input: Value,
        visit: &Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let name = state.name.as_str();
        let effective_input = self.input_path(state, &input, visit)?;
        let ctx = self.context(visit);
        let mut target = None;
        for (rule, next) in choices {
            if rule
                .eval(&effective_input, &ctx)
                .map_err(|e| StatesError::runtime(name, e))?
            {
                target = Some(next.clone());
                break;
            }
        }
        let target = target.or_else(|| default.clone()).ok_or_else(|| {
            StatesError::new(
                "States.NoChoiceMatched",
                format!("No Matches! (state '{name}')"),
            )
        })?;
        Ok((
            self.output_path(state, effective_input, visit)?,
            Flow::Next(target),
        ))
    }

    pub(super) async fn wait(
        &self,
        state: &State,
        spec: &WaitSpec,
        input: Value,
        visit: &Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let effective_input = self.input_path(state, &input, visit)?;
        let until = self.wait_until(&state.name, spec, &effective_input, visit)?;
        self.clock.sleep_until(until).await;
        Ok((
            self.output_path(state, effective_input, visit)?,
            Self::next_of(state),
        ))
    }

    /// When a Wait state with effective input `effective_input` ends.
    fn wait_until(
        &self,
        name: &str,
        spec: &WaitSpec,
        effective_input: &Value,
        visit: &Visit<'_>,
    ) -> Result<DateTime<Utc>, StatesError> {
        let ctx = self.context(visit);
        Ok(match spec {
            WaitSpec::Seconds(n) => {
                let secs = num_value(n, effective_input, &ctx)
                    .map_err(|e| StatesError::runtime(name, e))?;
                if secs < 0.0 || secs.fract() != 0.0 {
                    return Err(StatesError::runtime(
                        name,
                        format!("Wait seconds must be a non-negative integer, got {secs}"),
                    ));
                }
                self.now() + TimeDelta::seconds(secs.min(99_999_999.0) as i64)
            }
            WaitSpec::Timestamp(t) => parse_time(t).map_err(|e| StatesError::runtime(name, e))?,
            WaitSpec::TimestampPath(p) => match p.select(effective_input, &ctx) {
                Some(Value::String(s)) => {
                    parse_time(&s).map_err(|e| StatesError::runtime(name, e))?
                }
                other => {
                    return Err(StatesError::runtime(
                        name,
                        format!(
                            "TimestampPath '{p}' must select an RFC3339 timestamp string, got {other:?}"
                        ),
                    ));
                }
            },
        })
    }
}

/// A Fail state's Error or Cause (`what`): literal, read by a path, or computed.
fn fail_field(
    name: &str,
    s: &Option<StrSource>,
    what: &str,
    input: &Value,
    ctx: &Value,
) -> Result<Option<String>, StatesError> {
    Ok(match s {
        None => None,
        Some(StrSource::Lit(l)) => Some(l.clone()),
        Some(StrSource::Path(p)) => match p.select(input, ctx) {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(StatesError::runtime(
                    name,
                    format!("The {what}Path '{p}' must select a string, got {other}"),
                ));
            }
            None => {
                return Err(StatesError::runtime(
                    name,
                    format!("The {what}Path '{p}' could not be found in the input '{input}'"),
                ));
            }
        },
        Some(StrSource::Intrinsic(c)) => match c.eval(input, ctx) {
            Ok(Value::String(s)) => Some(s),
            Ok(other) => Some(other.to_string()),
            Err(e) => return Err(StatesError::runtime(name, e)),
        },
    })
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("'{s}' is not an RFC3339 timestamp: {e}"))
}
