//! Which requests get which fault: explicit rules first, then a seeded random draw.
//!
//! The random draw is a pure function of `(seed, service, operation, n)` where `n` counts the
//! earlier calls of that same operation. Parallel branches of a drill interleave their calls
//! differently from run to run, but each operation's own sequence of calls does not change,
//! so a seed reproduces the same faults on the same calls.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::protocol::RequestInfo;

/// The longest a slow response may be held: the proxy must never hold a connection forever.
pub const MAX_SLOW_DELAY: Duration = Duration::from_secs(120);

/// What the proxy does instead of (or on top of) forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A throttling error in the protocol's shape (the request never reaches moto).
    Throttle,
    /// HTTP 500 `InternalFailure` (`ServerException` for REST-JSON); not forwarded.
    InternalError,
    /// HTTP 503 `ServiceUnavailable` (`ServiceUnavailableException` for REST-JSON); not forwarded.
    Unavailable,
    /// Forwarded to moto at once, but the answer is held for the schedule's slow delay, so a
    /// client with a shorter attempt timeout gives up although the call took effect.
    Slow,
    /// The connection is closed without a response; the request never reaches moto.
    Drop,
    /// Forwarded to moto, then the connection is closed without passing the answer on: the
    /// call took effect but the client sees a broken connection.
    DropAfterForward,
    /// Forwarded to moto, then answered with HTTP 500 `InternalFailure` instead of moto's
    /// answer: the call took effect but the client sees a server error.
    ErrorAfterForward,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Throttle,
        FaultKind::InternalError,
        FaultKind::Unavailable,
        FaultKind::Slow,
        FaultKind::Drop,
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::InternalError => "internal-error",
            FaultKind::Unavailable => "unavailable",
            FaultKind::Slow => "slow",
            FaultKind::Drop => "drop",
            FaultKind::DropAfterForward => "drop-after-forward",
            FaultKind::ErrorAfterForward => "error-after-forward",
        }
    }

    /// Whether moto sees the request (and so whether the call may have taken effect).
    pub fn forwards(self) -> bool {
        matches!(
            self,
            FaultKind::Slow | FaultKind::DropAfterForward | FaultKind::ErrorAfterForward
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which requests a rule (or the random draw) applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Any,
    /// The operation name: the query `Action`, the `X-Amz-Target` suffix, or for REST-JSON
    /// the known operation (`DescribeCluster`…) or else `"<METHOD> <path>"`.
    Operation(String),
    /// The signing name from the request's SigV4 credential scope (`rds`, `ecr`, `eks`…).
    Service(String),
    /// The request path starts with this (REST APIs).
    PathPrefix(String),
}

impl Matcher {
    pub fn operation(name: impl Into<String>) -> Self {
        Matcher::Operation(name.into())
    }

    pub fn service(name: impl Into<String>) -> Self {
        Matcher::Service(name.into())
    }

    pub fn path_prefix(prefix: impl Into<String>) -> Self {
        Matcher::PathPrefix(prefix.into())
    }

    pub fn matches(&self, req: &RequestInfo) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Operation(name) => req.operation == *name,
            Matcher::Service(name) => req.service.as_deref() == Some(name.as_str()),
            Matcher::PathPrefix(prefix) => req.path.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Any => f.write_str("any call"),
            Matcher::Operation(op) => write!(f, "operation {op}"),
            Matcher::Service(s) => write!(f, "service {s}"),
            Matcher::PathPrefix(p) => write!(f, "path {p}*"),
        }
    }
}

/// "Fail the next `remaining` calls matching `matcher` with `kind`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: Matcher,
    pub kind: FaultKind,
    pub remaining: u32,
}

impl Rule {
    pub fn next(count: u32, matcher: Matcher, kind: FaultKind) -> Self {
        Rule {
            matcher,
            kind,
            remaining: count,
        }
    }
}

/// A fault schedule: rules, then a seeded random draw at `rate` over `kinds`.
#[derive(Debug, Clone)]
pub struct FaultSchedule {
    seed: u64,
    rate: f64,
    kinds: Vec<FaultKind>,
    scope: Matcher,
    rules: Vec<Rule>,
    slow_delay: Duration,
    /// Calls seen so far per (service, operation): the draw's position in that sequence.
    seen: HashMap<(Option<String>, String), u64>,
}

impl Default for FaultSchedule {
    fn default() -> Self {
        FaultSchedule::none()
    }
}

impl FaultSchedule {
    /// Forward everything.
    pub fn none() -> Self {
        FaultSchedule {
            seed: 0,
            rate: 0.0,
            kinds: Vec::new(),
            scope: Matcher::Any,
            rules: Vec::new(),
            slow_delay: Duration::from_secs(2),
            seen: HashMap::new(),
        }
    }

    /// Faults a fraction `rate` (clamped to 0..=1) of calls, each with one of `kinds`, chosen
    /// deterministically from `seed`.
    pub fn seeded(seed: u64, rate: f64, kinds: &[FaultKind]) -> Self {
        FaultSchedule {
            seed,
            rate: if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            },
            kinds: kinds.to_vec(),
            ..FaultSchedule::none()
        }
    }

    /// Adds an explicit rule; rules are tried in order before the random draw.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Shorthand for `with_rule(Rule::next(count, Matcher::operation(op), kind))`.
    pub fn fail_next(self, count: u32, operation: &str, kind: FaultKind) -> Self {
        self.with_rule(Rule::next(count, Matcher::operation(operation), kind))
    }

    /// Limits the random draw to matching calls (rules are unaffected).
    pub fn only(mut self, scope: Matcher) -> Self {
        self.scope = scope;
        self
    }

    /// How long [`FaultKind::Slow`] holds an answer (at most [`MAX_SLOW_DELAY`]); make it
    /// longer than the clients' `operation_attempt_timeout`.
    pub fn with_slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay.min(MAX_SLOW_DELAY);
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn kinds(&self) -> &[FaultKind] {
        &self.kinds
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn slow_delay(&self) -> Duration {
        self.slow_delay
    }

    /// Decides the fate of one request and advances the schedule.
    pub fn decide(&mut self, req: &RequestInfo) -> Option<FaultKind> {
        let key = (req.service.clone(), req.operation.clone());
        let n = {
            let seen = self.seen.entry(key).or_insert(0);
            let n = *seen;
            *seen += 1;
            n
        };
        if let Some(rule) = self
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.matcher.matches(req))
        {
            rule.remaining -= 1;
            return Some(rule.kind);
        }
        if self.kinds.is_empty() || self.rate <= 0.0 || !self.scope.matches(req) {
            return None;
        }
        let mut h = self.seed ^ 0x6a09_e667_f3bc_c908;
        h = splitmix64(h ^ fnv1a(req.service.as_deref().unwrap_or("").as_bytes()));
        h = splitmix64(h ^ fnv1a(req.operation.as_bytes()));
        h = splitmix64(h ^ n);
        // 53 high bits → a uniform float in [0, 1).
        let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.rate {
            return None;
        }
        let pick = splitmix64(h) % self.kinds.len() as u64;
        Some(self.kinds[pick as usize])
    }
}

impl fmt::Display for FaultSchedule {
    /// One line, enough to rebuild the schedule from a test failure message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<_> = self.kinds.iter().map(|k| k.name()).collect();
        write!(
            f,
            "seed={} rate={} kinds=[{}] slow_delay={:?}",
            self.seed,
            self.rate,
            kinds.join(","),
            self.slow_delay
        )?;
        if self.scope != Matcher::Any {
            write!(f, " only={}", self.scope)?;
        }
        for rule in &self.rules {
            write!(
                f,
                " rule(next {} {} -> {})",
                rule.remaining, rule.matcher, rule.kind
            )?;
        }
        Ok(())
    }
}

/// SplitMix64's finaliser: a well-mixed, dependency-free 64-bit hash step.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    fn req(service: &str, op: &str) -> RequestInfo {
        RequestInfo {
            protocol: Protocol::Query,
            service: Some(service.to_owned()),
            access_key: None,
            region: None,
            operation: op.to_owned(),
            method: "POST".to_owned(),
            path: "/".to_owned(),
        }
    }

    fn draws(schedule: &mut FaultSchedule, n: usize) -> Vec<Option<FaultKind>> {
        (0..n)
            .map(|i| {
                let op = ["DescribeDBInstances", "Publish", "CreateDBSnapshot"][i % 3];
                schedule.decide(&req("rds", op))
            })
            .collect()
    }

    #[test]
    fn same_seed_same_faults_and_rate_is_roughly_honoured() {
        let kinds = [FaultKind::Throttle, FaultKind::Drop];
        let a = draws(&mut FaultSchedule::seeded(7, 0.3, &kinds), 3000);
        let b = draws(&mut FaultSchedule::seeded(7, 0.3, &kinds), 3000);
        let c = draws(&mut FaultSchedule::seeded(8, 0.3, &kinds), 3000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let faulted = a.iter().filter(|f| f.is_some()).count();
        assert!((750..1050).contains(&faulted), "{faulted} of 3000");
        let drops = a.iter().filter(|f| **f == Some(FaultKind::Drop)).count();
        assert!(drops > 300 && drops < faulted - 300, "{drops} of {faulted}");
    }

    #[test]
    fn per_operation_sequences_do_not_depend_on_interleaving() {
        let kinds = [FaultKind::Throttle];
        let mut one = FaultSchedule::seeded(42, 0.5, &kinds);
        let mut two = FaultSchedule::seeded(42, 0.5, &kinds);
        let a: Vec<_> = (0..50).map(|_| one.decide(&req("rds", "A"))).collect();
        let mut b = Vec::new();
        for _ in 0..50 {
            two.decide(&req("sns", "Publish"));
            b.push(two.decide(&req("rds", "A")));
        }
        assert_eq!(a, b);
    }

    #[test]
    fn rules_fire_exactly_n_times_before_the_draw() {
        let mut s = FaultSchedule::none().fail_next(2, "Publish", FaultKind::Unavailable);
        assert_eq!(s.decide(&req("sns", "CreateTopic")), None);
        assert_eq!(
            s.decide(&req("sns", "Publish")),
            Some(FaultKind::Unavailable)
        );
        assert_eq!(
            s.decide(&req("sns", "Publish")),
            Some(FaultKind::Unavailable)
        );
        assert_eq!(s.decide(&req("sns", "Publish")), None);
        assert!(
            s.to_string()
                .contains("rule(next 0 operation Publish -> unavailable)")
        );
    }

    #[test]
    fn zero_rate_scope_and_delay_cap() {
        let mut s = FaultSchedule::seeded(1, 0.0, &FaultKind::ALL);
        assert!(draws(&mut s, 100).iter().all(Option::is_none));
        let mut s =
            FaultSchedule::seeded(1, 1.0, &[FaultKind::Throttle]).only(Matcher::service("eks"));
        assert_eq!(s.decide(&req("rds", "X")), None);
        assert_eq!(s.decide(&req("eks", "X")), Some(FaultKind::Throttle));
        let s = FaultSchedule::none().with_slow_delay(Duration::from_secs(3600));
        assert_eq!(s.slow_delay(), MAX_SLOW_DELAY);
    }
}
