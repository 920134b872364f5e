//! Fault injection for tests and drills: answer the next N matching requests with an error
//! status, hold them for a while before serving them normally, or serve them and then answer
//! with an error (a lost answer).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status (500, 503, 429 with Retry-After...) and a Status body.
    Status(u16),
    /// Wait this long, then serve the request normally.
    Stall(Duration),
    /// Serve the request (its change is made), then answer with this status instead: the
    /// client's view of an answer lost after the server acted.
    AfterServe(u16),
}

/// A fault applied to the next `count` requests whose path contains `path_contains`
/// (all paths when None) and whose method is `method` (all methods when None).
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub count: u32,
    pub path_contains: Option<String>,
    pub method: Option<String>,
}

impl Fault {
    pub fn status(code: u16, count: u32) -> Self {
        Fault {
            kind: FaultKind::Status(code),
            count,
            path_contains: None,
            method: None,
        }
    }

    pub fn stall(duration: Duration, count: u32) -> Self {
        Fault {
            kind: FaultKind::Stall(duration),
            count,
            path_contains: None,
            method: None,
        }
    }

    /// Serve the next `count` matching requests, then answer `code` (the change is made).
    pub fn lost_answer(code: u16, count: u32) -> Self {
        Fault {
            kind: FaultKind::AfterServe(code),
            count,
            path_contains: None,
            method: None,
        }
    }

    pub fn on_path(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }

    pub fn on_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into().to_ascii_uppercase());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.count > 0
            && self
                .path_contains
                .as_deref()
                .is_none_or(|f| path.contains(f))
            && self.method.as_deref().is_none_or(|m| m == method)
    }
}

/// Take one use of the first matching fault.
pub fn take(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<FaultKind> {
    let idx = faults.iter().position(|f| f.matches(method, path))?;
    let fault = &mut faults[idx];
    fault.count -= 1;
    let kind = fault.kind.clone();
    if fault.count == 0 {
        faults.remove(idx);
    }
    Some(kind)
}

pub fn reason_for(code: u16) -> &'static str {
    match code {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        409 => "Conflict",
        _ => "Unknown",
    }
}
