//! A small IAM identity-policy evaluator: what the local stack needs to say "no" where AWS
//! would, and nothing more.
//!
//! Supported, with AWS's semantics:
//! - `Effect` `Allow` / `Deny`; an explicit `Deny` wins over any `Allow`; no `Allow` is an
//!   implicit deny;
//! - `Action` / `NotAction` with `*` and `?` wildcards, case-insensitive (`rds:Describe*`);
//! - `Resource` / `NotResource` with `*` and `?` wildcards, case-sensitive;
//! - `Condition`: every operator block and every key must hold (AND), any of a key's values
//!   may match (OR). Operators: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
//!   `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`,
//!   `ArnNotEquals`, `ArnNotLike`, `Bool`, `Null`, each with `…IfExists`, and the
//!   `ForAllValues:` / `ForAnyValue:` set qualifiers. A key missing from the request makes
//!   a positive operator false and a negated one (`…Not…`) true, as in AWS; `…IfExists`
//!   makes a missing key true. Condition keys are case-insensitive.
//!
//! Not supported (refused when the template is loaded, so nothing is silently lax): numeric,
//! date, IP and binary operators, policy variables (`${aws:username}`), `Principal` (identity
//! policies have none). Permission boundaries, SCPs and session policies do not exist here.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` / `NotAction`, or `Resource` / `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    /// `NotAction` / `NotResource`: matches what none of the patterns match.
    pub not: bool,
    pub patterns: Vec<String>,
}

impl Patterns {
    fn matches(&self, value: &str, case_insensitive: bool) -> bool {
        let any = self
            .patterns
            .iter()
            .any(|p| glob(p, value, case_insensitive));
        any != self.not
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnEquals,
    ArnLike,
    Bool,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAllValues,
    ForAnyValue,
}

/// One `"Operator": {"key": [values]}` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// As written, e.g. `ForAllValues:StringLike`.
    pub operator: String,
    /// As written, e.g. `aws:ResourceTag/rollback-drill`.
    pub key: String,
    pub values: Vec<String>,
    op: Op,
    negated: bool,
    if_exists: bool,
    set: SetQualifier,
}

impl Condition {
    /// Parses an operator name; unknown operators are refused.
    pub fn new(operator: &str, key: &str, values: Vec<String>) -> Result<Condition, String> {
        let (set, rest) = if let Some(rest) = operator.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else {
            (SetQualifier::None, operator)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (op, negated) = match rest {
            "StringEquals" => (Op::StringEquals, false),
            "StringNotEquals" => (Op::StringEquals, true),
            "StringEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, true),
            "StringLike" => (Op::StringLike, false),
            "StringNotLike" => (Op::StringLike, true),
            "ArnEquals" => (Op::ArnEquals, false),
            "ArnNotEquals" => (Op::ArnEquals, true),
            "ArnLike" => (Op::ArnLike, false),
            "ArnNotLike" => (Op::ArnLike, true),
            "Bool" => (Op::Bool, false),
            "Null" => (Op::Null, false),
            other => {
                return Err(format!(
                    "condition operator {other:?} is not supported by the local IAM check \
                     (local/fault-proxy/src/iam/policy.rs)"
                ));
            }
        };
        if op == Op::Null && (if_exists || set != SetQualifier::None) {
            return Err(format!("condition operator {operator:?} is not valid IAM"));
        }
        Ok(Condition {
            operator: operator.to_owned(),
            key: key.to_owned(),
            values,
            op,
            negated,
            if_exists,
            set,
        })
    }

    /// Whether the condition holds for `context`.
    pub fn holds(&self, context: &RequestContext) -> bool {
        let present = context.get(&self.key);
        if self.op == Op::Null {
            // "Null": "true" means the key must be absent.
            let absent = present.is_none_or(|v| v.is_empty());
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(actual) = present.filter(|v| !v.is_empty()) else {
            return match self.set {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::None => self.if_exists || self.negated,
            };
        };
        let one = |value: &str| {
            let hit = self.values.iter().any(|p| self.value_matches(p, value));
            hit != self.negated
        };
        match self.set {
            SetQualifier::ForAllValues => actual.iter().all(|v| one(v)),
            SetQualifier::ForAnyValue | SetQualifier::None => actual.iter().any(|v| one(v)),
        }
    }

    fn value_matches(&self, pattern: &str, value: &str) -> bool {
        match self.op {
            Op::StringEquals | Op::ArnEquals => pattern == value,
            Op::StringEqualsIgnoreCase => pattern.eq_ignore_ascii_case(value),
            Op::StringLike | Op::ArnLike => glob(pattern, value, false),
            Op::Bool => pattern.eq_ignore_ascii_case(value),
            Op::Null => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    pub conditions: Vec<Condition>,
}

impl Statement {
    pub fn matches_action(&self, action: &str) -> bool {
        self.actions.matches(action, true)
    }

    /// Action, resource and every condition.
    pub fn applies(&self, action: &str, resource: &str, context: &RequestContext) -> bool {
        self.matches_action(action)
            && self.resources.matches(resource, false)
            && self.conditions.iter().all(|c| c.holds(context))
    }

    /// `Sid` or `#<index>`.
    pub fn label(&self, index: usize) -> String {
        self.sid.clone().unwrap_or_else(|| format!("#{index}"))
    }
}

/// One named policy of a role (SAM names them `<Function>RolePolicy<N>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub statements: Vec<Statement>,
}

/// The request's condition keys (lowercased) and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    keys: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.keys
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

/// Where a decision came from: the policy name and the statement's Sid (or `#index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: String,
    pub statement: String,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} statement {}", self.policy, self.statement)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by these statements (every one that applies).
    Allow(Vec<StatementRef>),
    ExplicitDeny(StatementRef),
    ImplicitDeny,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// AWS's evaluation for one action on one resource under a set of identity policies.
pub fn evaluate(
    policies: &[Policy],
    action: &str,
    resource: &str,
    context: &RequestContext,
) -> Decision {
    let mut allowed = Vec::new();
    for policy in policies {
        for (index, statement) in policy.statements.iter().enumerate() {
            if !statement.applies(action, resource, context) {
                continue;
            }
            let at = StatementRef {
                policy: policy.name.clone(),
                statement: statement.label(index),
            };
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny(at),
                Effect::Allow => allowed.push(at),
            }
        }
    }
    if allowed.is_empty() {
        Decision::ImplicitDeny
    } else {
        Decision::Allow(allowed)
    }
}

/// IAM wildcard match: `*` any run of characters (also none), `?` one character.
pub fn glob(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, v) = (norm(pattern), norm(value));
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect,
            actions: Patterns {
                not: false,
                patterns: actions.iter().map(|s| s.to_string()).collect(),
            },
            resources: Patterns {
                not: false,
                patterns: resources.iter().map(|s| s.to_string()).collect(),
            },
            conditions: Vec::new(),
        }
    }

    fn policy(statements: Vec<Statement>) -> Vec<Policy> {
        vec![Policy {
            name: "P".into(),
            statements,
        }]
    }

    #[test]
    fn wildcards() {
        assert!(glob("rds:Describe*", "rds:describedbinstances", true));
        assert!(!glob("rds:Describe*", "rds:describedbinstances", false));
        assert!(glob(
            "arn:*:db:mint*-drill-*",
            "arn:aws:db:mint-db-drill-x1",
            false
        ));
        assert!(!glob("arn:*:db:mint*-drill-*", "arn:aws:db:mint-db", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob("*", "", false));
        assert!(glob("**a", "bba", false));
    }

    #[test]
    fn allow_deny_and_implicit_deny() {
        let ctx = RequestContext::default();
        let p = policy(vec![statement(
            Effect::Allow,
            &["rds:Describe*"],
            &["arn:aws:rds:*:*:db:mint*"],
        )]);
        assert!(
            evaluate(
                &p,
                "rds:DescribeDBInstances",
                "arn:aws:rds:r:a:db:mint-db",
                &ctx
            )
            .allowed()
        );
        assert_eq!(
            evaluate(
                &p,
                "rds:DeleteDBInstance",
                "arn:aws:rds:r:a:db:mint-db",
                &ctx
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &p,
                "rds:DescribeDBInstances",
                "arn:aws:rds:r:a:db:other",
                &ctx
            ),
            Decision::ImplicitDeny
        );
        let mut with_deny = p.clone();
        with_deny[0]
            .statements
            .push(statement(Effect::Deny, &["*"], &["*:db:mint-db"]));
        assert!(matches!(
            evaluate(
                &with_deny,
                "rds:DescribeDBInstances",
                "arn:aws:rds:r:a:db:mint-db",
                &ctx
            ),
            Decision::ExplicitDeny(_)
        ));
        let mut not_action = statement(Effect::Allow, &["rds:Delete*"], &["*"]);
        not_action.actions.not = true;
        let p = policy(vec![not_action]);
        assert!(evaluate(&p, "rds:ModifyDBInstance", "x", &ctx).allowed());
        assert!(!evaluate(&p, "rds:DeleteDBInstance", "x", &ctx).allowed());
    }

    #[test]
    fn conditions() {
        let mut ctx = RequestContext::default();
        ctx.insert("aws:RequestTag/rollback-drill", "exec-1");
        ctx.insert("aws:TagKeys", "rollback-drill");
        ctx.insert("aws:TagKeys", "team");
        let c = |op: &str, key: &str, values: &[&str]| {
            Condition::new(op, key, values.iter().map(|s| s.to_string()).collect()).unwrap()
        };
        assert!(c("StringLike", "aws:requesttag/rollback-drill", &["exec-*"]).holds(&ctx));
        assert!(!c("StringEquals", "aws:RequestTag/rollback-drill", &["exec-2"]).holds(&ctx));
        assert!(
            c(
                "StringNotEquals",
                "aws:RequestTag/rollback-drill",
                &["exec-2"]
            )
            .holds(&ctx)
        );
        // Missing keys: positive false, negated true, IfExists true, Null true.
        assert!(
            !c(
                "StringEquals",
                "kms:ViaService",
                &["rds.us-east-1.amazonaws.com"]
            )
            .holds(&ctx)
        );
        assert!(c("StringNotEquals", "kms:ViaService", &["x"]).holds(&ctx));
        assert!(c("StringEqualsIfExists", "kms:ViaService", &["x"]).holds(&ctx));
        assert!(c("Null", "kms:ViaService", &["true"]).holds(&ctx));
        assert!(!c("Null", "aws:TagKeys", &["true"]).holds(&ctx));
        // Set qualifiers.
        assert!(!c("ForAllValues:StringEquals", "aws:TagKeys", &["team"]).holds(&ctx));
        assert!(
            c(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["team", "rollback-drill"]
            )
            .holds(&ctx)
        );
        assert!(
            c(
                "ForAnyValue:StringEquals",
                "aws:TagKeys",
                &["rollback-drill"]
            )
            .holds(&ctx)
        );
        assert!(c("ForAllValues:StringEquals", "absent", &["x"]).holds(&ctx));
        assert!(!c("ForAnyValue:StringEquals", "absent", &["x"]).holds(&ctx));
        assert!(Condition::new("NumericLessThan", "k", vec![]).is_err());
    }
}
