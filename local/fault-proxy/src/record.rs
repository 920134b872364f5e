//! The request log: every request the proxy saw, whether it was faulted, and what happened.

use std::fmt;

use crate::protocol::RequestInfo;
use crate::schedule::FaultKind;

/// One request, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Position in the proxy's log (0-based, over the proxy's whole life).
    pub index: u64,
    pub request: RequestInfo,
    /// The fault applied, if any.
    pub fault: Option<FaultKind>,
    /// moto's answer status, when the request was forwarded and moto answered.
    pub upstream_status: Option<u16>,
    /// The status sent to the client; `None` while in flight or when the connection was
    /// closed without an answer.
    pub client_status: Option<u16>,
    /// Why forwarding failed (moto unreachable, too slow, unreadable answer).
    pub upstream_error: Option<String>,
    /// The IAM check refused the call (it was not forwarded): the violation.
    pub iam_denied: Option<String>,
}

impl RequestRecord {
    /// Whether moto saw this request, i.e. whether it may have taken effect.
    pub fn reached_upstream(&self) -> bool {
        self.upstream_status.is_some()
    }
}

impl fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} {}",
            self.index,
            self.request.service.as_deref().unwrap_or("-"),
            self.request.protocol.name(),
            self.request.operation
        )?;
        match self.fault {
            Some(kind) => write!(f, " FAULT {kind}")?,
            None => f.write_str(" ok")?,
        }
        if let Some(status) = self.upstream_status {
            write!(f, " upstream={status}")?;
        }
        match self.client_status {
            Some(status) => write!(f, " client={status}")?,
            None => f.write_str(" client=closed")?,
        }
        if let Some(err) = &self.upstream_error {
            write!(f, " error={err}")?;
        }
        if let Some(denied) = &self.iam_denied {
            write!(f, " IAM-DENIED {denied}")?;
        }
        Ok(())
    }
}
