//! Where rollback plans are stored (SSM Parameter Store), and which version an execution runs.
//!
//! The plan is read at run time: the `plan` function's `validate` step reads the parameter at
//! the start of every execution (GetParameter, with its `Version`) and the execution carries
//! that plan, and its [`PlanSource`] (`request.plan_source`), through every later state. A plan
//! pushed while an execution runs is used by the next execution, never half-way through one.
//!
//! A stack keeps its plans in one of two layouts ([`PlanLocation`]):
//! - one parameter holding the stack's only plan (`RollbackPlanParameter`, e.g.
//!   `/rollback/mint-replica/plan`); the execution input may name the service, and must then
//!   name that plan's;
//! - a path (`RollbackPlanPath`, e.g. `/rollback/plans`) under which each service's plan is
//!   `<path>/<service>`; the execution input names the service (`{"service": "mint-replica"}`;
//!   the stack's EventBridge rule adds it to alarm events).

use serde::{Deserialize, Serialize};

/// The plan function's environment variable naming the stack's one plan parameter.
pub const PARAMETER_ENV: &str = "ROLLBACK_PLAN_PARAMETER";
/// The plan function's environment variable naming the path the services' plans are under.
pub const PATH_ENV: &str = "ROLLBACK_PLAN_PATH";

/// SSM's standard tier holds values up to 4 KB; larger plans need the advanced tier.
pub const STANDARD_TIER_MAX_BYTES: usize = 4096;
/// The advanced tier's limit: no plan can be larger.
pub const ADVANCED_TIER_MAX_BYTES: usize = 8192;
/// SSM parameter names (with their path) have at most 1011 characters.
pub const MAX_PARAMETER_NAME_CHARS: usize = 1011;

/// The plan an execution runs with: the parameter `validate` read and its version. Shown as
/// `/rollback/plans/mint-replica@3` wherever the plan fingerprint is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSource {
    /// The SSM parameter name.
    pub parameter: String,
    /// The parameter version `validate` read.
    pub version: i64,
}

impl std::fmt::Display for PlanSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.parameter, self.version)
    }
}

/// Where the stack keeps its plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanLocation {
    /// One parameter holding the stack's only plan.
    Parameter(String),
    /// A path: each service's plan is `<path>/<service>`.
    Path(String),
}

impl PlanLocation {
    /// From the plan function's environment ([`PARAMETER_ENV`], [`PATH_ENV`]; empty counts as
    /// unset). Exactly one must be set, to a valid name.
    pub fn from_env_values(
        parameter: Option<&str>,
        path: Option<&str>,
    ) -> Result<PlanLocation, String> {
        let parameter = parameter.map(str::trim).filter(|v| !v.is_empty());
        let path = path.map(str::trim).filter(|v| !v.is_empty());
        match (parameter, path) {
            (Some(name), None) => {
                check_parameter_name(name).map_err(|e| format!("{PARAMETER_ENV}: {e}"))?;
                Ok(PlanLocation::Parameter(name.to_owned()))
            }
            (None, Some(path)) => {
                let path = path.trim_end_matches('/');
                check_parameter_name(path).map_err(|e| format!("{PATH_ENV}: {e}"))?;
                Ok(PlanLocation::Path(path.to_owned()))
            }
            (None, None) => Err(format!(
                "no rollback plan location configured: set {PARAMETER_ENV} (the stack's \
                 RollbackPlanParameter) or {PATH_ENV} (RollbackPlanPath) and redeploy"
            )),
            (Some(_), Some(_)) => Err(format!(
                "both {PARAMETER_ENV} and {PATH_ENV} are set; give the stack either \
                 RollbackPlanParameter (one plan) or RollbackPlanPath (a plan per service)"
            )),
        }
    }

    /// Whether the execution input must name the service.
    pub fn requires_service(&self) -> bool {
        matches!(self, PlanLocation::Path(_))
    }

    /// The parameter holding `service`'s plan; `None` when the input must name a service and
    /// did not.
    pub fn parameter_for(&self, service: Option<&str>) -> Option<String> {
        match (self, service) {
            (PlanLocation::Parameter(name), _) => Some(name.clone()),
            (PlanLocation::Path(path), Some(service)) => Some(format!("{path}/{service}")),
            (PlanLocation::Path(_), None) => None,
        }
    }
}

impl std::fmt::Display for PlanLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanLocation::Parameter(name) => write!(f, "parameter {name}"),
            PlanLocation::Path(path) => write!(f, "path {path} (one parameter per service)"),
        }
    }
}

/// A plan parameter's name: hierarchical (`/rollback/plans/mint-replica`), SSM's characters,
/// not under the reserved `/aws` or `/ssm` prefixes. The error says what to change.
pub fn check_parameter_name(name: &str) -> Result<(), String> {
    let shown = crate::validation::truncate(name, 80);
    if !name.starts_with('/') {
        return Err(format!(
            "{shown:?} is not a hierarchical name; start it with / (e.g. /rollback/plans/mint-replica)"
        ));
    }
    if name.chars().count() > MAX_PARAMETER_NAME_CHARS {
        return Err(format!(
            "has more than {MAX_PARAMETER_NAME_CHARS} characters (SSM's limit)"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(format!(
            "{shown:?} contains {bad:?}; SSM names use letters, digits and _ . - /"
        ));
    }
    if name.contains("//") || name.ends_with('/') {
        return Err(format!(
            "{shown:?} has an empty path segment; use single slashes and no trailing one"
        ));
    }
    let first = name[1..].split('/').next().unwrap_or_default();
    if ["aws", "ssm"]
        .iter()
        .any(|reserved| first.to_ascii_lowercase().starts_with(reserved))
    {
        return Err(format!(
            "{shown:?} starts with a prefix SSM reserves (aws, ssm); choose another, e.g. /rollback/…"
        ));
    }
    Ok(())
}

/// The SSM tier a plan of `bytes` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Values up to [`STANDARD_TIER_MAX_BYTES`].
    Standard,
    /// Values up to [`ADVANCED_TIER_MAX_BYTES`], for plans too large for the standard tier.
    Advanced,
}

impl Tier {
    /// The tier a plan of `bytes` (compact JSON) needs; an error when it fits neither.
    pub fn for_size(bytes: usize) -> Result<Tier, String> {
        if bytes <= STANDARD_TIER_MAX_BYTES {
            Ok(Tier::Standard)
        } else if bytes <= ADVANCED_TIER_MAX_BYTES {
            Ok(Tier::Advanced)
        } else {
            Err(format!(
                "the plan has {bytes} bytes (compact JSON); an SSM parameter holds at most \
                 {ADVANCED_TIER_MAX_BYTES} (advanced tier): shorten names or drop checks"
            ))
        }
    }

    /// The tier's name as SSM's `Tier` parameter takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "Standard",
            Tier::Advanced => "Advanced",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_from_env() {
        assert_eq!(
            PlanLocation::from_env_values(Some("/rollback/mint-replica/plan"), None),
            Ok(PlanLocation::Parameter(
                "/rollback/mint-replica/plan".into()
            ))
        );
        assert_eq!(
            PlanLocation::from_env_values(Some(""), Some("/rollback/plans/")),
            Ok(PlanLocation::Path("/rollback/plans".into()))
        );
        let none = PlanLocation::from_env_values(None, Some(" ")).unwrap_err();
        assert!(
            none.contains(PARAMETER_ENV) && none.contains(PATH_ENV),
            "{none}"
        );
        let both = PlanLocation::from_env_values(Some("/a"), Some("/b")).unwrap_err();
        assert!(both.contains("both"), "{both}");
        let bad = PlanLocation::from_env_values(Some("plan"), None).unwrap_err();
        assert!(bad.starts_with(PARAMETER_ENV), "{bad}");
    }

    #[test]
    fn parameter_for_a_service() {
        let path = PlanLocation::Path("/rollback/plans".into());
        assert!(path.requires_service());
        assert_eq!(
            path.parameter_for(Some("mint-replica")).as_deref(),
            Some("/rollback/plans/mint-replica")
        );
        assert_eq!(path.parameter_for(None), None);
        let one = PlanLocation::Parameter("/p".into());
        assert!(!one.requires_service());
        assert_eq!(one.parameter_for(Some("x")).as_deref(), Some("/p"));
    }

    #[test]
    fn parameter_names() {
        assert!(check_parameter_name("/rollback/plans/mint-replica").is_ok());
        assert!(check_parameter_name("/a_b.c-d").is_ok());
        for bad in [
            "plan",
            "/a//b",
            "/a/",
            "/a b",
            "/aws/x",
            "/ssm-plans/x",
            "/AWSplans",
        ] {
            assert!(check_parameter_name(bad).is_err(), "{bad}");
        }
        assert!(check_parameter_name(&format!("/{}", "a".repeat(1011))).is_err());
    }

    #[test]
    fn tiers_and_display() {
        assert_eq!(Tier::for_size(4096), Ok(Tier::Standard));
        assert_eq!(Tier::for_size(4097), Ok(Tier::Advanced));
        assert!(Tier::for_size(8193).unwrap_err().contains("8192"));
        let source = PlanSource {
            parameter: "/rollback/plans/mint-replica".into(),
            version: 3,
        };
        assert_eq!(source.to_string(), "/rollback/plans/mint-replica@3");
    }
}
