//! Task tokens for `.waitForTaskToken` tasks.
//!
//! A token is `rbt1.` + base64url(JSON {"e": execution ARN, "n": nonce}). Anything that does not
//! decode is `InvalidToken`; a well-formed token we never issued is `TaskDoesNotExist`; a token
//! whose task already finished (succeeded, failed or timed out) is `TaskTimedOut`, as in AWS.

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

const PREFIX: &str = "rbt1.";

/// What a SendTask* call delivers to the task waiting on a token.
#[derive(Debug)]
pub enum TokenMsg {
    /// SendTaskSuccess, with the parsed output.
    Success(Value),
    /// SendTaskFailure.
    Failure {
        /// The error name (empty when not given).
        error: String,
        /// The cause (empty when not given).
        cause: String,
    },
    /// SendTaskHeartbeat.
    Heartbeat,
}

/// Why a SendTask* call was refused; each maps to the API error of the same meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token does not decode (holds its first 64 characters).
    #[error("Invalid Token: '{0}'")]
    Invalid(String),
    /// A well-formed token that was never issued here.
    #[error("Task does not exist anymore")]
    DoesNotExist,
    /// The token's task has already finished.
    #[error("Task Timed Out: 'Provided task does not exist anymore'")]
    TimedOut,
}

enum Slot {
    Open(mpsc::UnboundedSender<TokenMsg>),
    Closed,
}

/// Every task token the engine issued, shared by all executions. Finished tokens stay (closed) so
/// that late answers get `TimedOut`.
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a token for a task of `execution_arn`, with the receiver the task's answers arrive
    /// on.
    pub fn issue(&self, execution_arn: &str) -> (String, mpsc::UnboundedReceiver<TokenMsg>) {
        let body = json!({"e": execution_arn, "n": uuid::Uuid::new_v4().to_string()}).to_string();
        let token = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
        );
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(token.clone(), Slot::Open(tx));
        (token, rx)
    }

    /// Marks the token's task finished, so later SendTask* calls get `TimedOut`.
    pub fn close(&self, token: &str) {
        if let Some(s) = self.lock().get_mut(token) {
            *s = Slot::Closed;
        }
    }

    /// The execution a well-formed token belongs to.
    pub fn execution_of(token: &str) -> Result<String, TokenError> {
        let invalid = || TokenError::Invalid(token.chars().take(64).collect());
        let body = token.strip_prefix(PREFIX).ok_or_else(invalid)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid())?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        v.get("e")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(invalid)
    }

    /// Delivers `msg` to the task waiting on `token`; a success or failure also closes the token.
    pub fn send(&self, token: &str, msg: TokenMsg) -> Result<(), TokenError> {
        Self::execution_of(token)?;
        let mut slots = self.lock();
        let slot = slots.get_mut(token).ok_or(TokenError::DoesNotExist)?;
        let Slot::Open(tx) = slot else {
            return Err(TokenError::TimedOut);
        };
        let terminal = !matches!(msg, TokenMsg::Heartbeat);
        if tx.send(msg).is_err() {
            // The waiting task is gone (timed out or the execution stopped).
            *slot = Slot::Closed;
            return Err(TokenError::TimedOut);
        }
        if terminal {
            *slot = Slot::Closed;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifecycle() {
        let t = Tokens::default();
        let (tok, mut rx) = t.issue("arn:x");
        assert_eq!(Tokens::execution_of(&tok).unwrap(), "arn:x");
        t.send(&tok, TokenMsg::Heartbeat).unwrap();
        t.send(&tok, TokenMsg::Success(json!(1))).unwrap();
        assert!(matches!(rx.try_recv(), Ok(TokenMsg::Heartbeat)));
        assert!(matches!(rx.try_recv(), Ok(TokenMsg::Success(_))));
        assert_eq!(
            t.send(&tok, TokenMsg::Success(json!(1))),
            Err(TokenError::TimedOut)
        );
        assert!(matches!(
            t.send("garbage", TokenMsg::Heartbeat),
            Err(TokenError::Invalid(_))
        ));
        let (other, _) = Tokens::default().issue("arn:y");
        assert_eq!(
            t.send(&other, TokenMsg::Heartbeat),
            Err(TokenError::DoesNotExist)
        );
    }
}
