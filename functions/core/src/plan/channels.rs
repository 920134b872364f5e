//! The plan's `channels` section: where the notices go besides the SNS topics (issue 17).
//!
//! - `statuspage`: an Atlassian Statuspage incident for the service's users, opened when the
//!   rollback is approved (`identified`), updated as it progresses (`monitoring`), resolved
//!   when it succeeds, and left open with a user-facing failure text when it fails. The
//!   approver sees the opening text in the approval email before deciding.
//! - `slack`: the notices topic's milestones in a Slack channel through an incoming webhook
//!   (no approval links: approval stays on the authenticated page).
//!
//! Both credentials (the Statuspage API key, the webhook URL, itself a secret) are in Secrets
//! Manager; the plan names the secrets. The plan travels in every execution's state, so the
//! section is bounded as a whole: at most [`MAX_CHANNELS_BYTES`] as JSON.

use std::net::IpAddr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::validation::{Rule, ValidationErrors, check_len, truncate};

use super::rules;

/// The whole section, as JSON. The plan is part of the execution's state (256 KiB, measured by
/// tests/tests/definition.rs at every maximum): this is the room it has.
pub const MAX_CHANNELS_BYTES: usize = 600;
/// Components a status page incident marks.
pub const MAX_COMPONENTS: usize = 5;
/// Each user-facing text (a tweet's length: Statuspage can tweet its updates).
pub const MAX_MESSAGE_CHARS: usize = 280;
/// Incident names.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest `api_base` URL.
pub const MAX_API_BASE_CHARS: usize = 200;
/// Atlassian Statuspage's API.
pub const DEFAULT_STATUSPAGE_API: &str = "https://api.statuspage.io/v1";
/// Slack's incoming webhooks are under this (a webhook URL is `…/services/T…/B…/…`).
pub const SLACK_WEBHOOK_PREFIX: &str = "https://hooks.slack.com/";

/// The incident's name unless the plan gives one.
pub const DEFAULT_INCIDENT_NAME: &str = "Problems after our latest release";
/// Opens the incident when the rollback is approved, unless the plan gives its own text.
pub const DEFAULT_IDENTIFIED: &str = "We found a problem with our latest release and are putting \
     the previous version back. Some features may be unavailable until then.";
/// Posted when the release is back and being verified, unless the plan gives its own text.
pub const DEFAULT_MONITORING: &str =
    "The previous version is back in place. We are checking that everything works.";
/// Resolves the incident when the rollback succeeded, unless the plan gives its own text.
pub const DEFAULT_RESOLVED: &str =
    "The previous version is live again and working. Thank you for your patience.";
/// Posted when the rollback failed, unless the plan gives its own text.
pub const DEFAULT_FAILED: &str = "Putting the previous version back did not complete. Our \
     engineers are working on it and will post an update here.";

/// `channels`: at least one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRef {
    /// A Statuspage incident for the service's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuspage: Option<StatuspageRef>,
    /// The notices, posted to the team's Slack channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackRef>,
}

/// `channels.statuspage`: the incident users see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatuspageRef {
    /// The page's id (Statuspage: API info, e.g. `kctbh9vrtdwd`).
    pub page_id: String,
    /// Secrets Manager secret (ARN or name) whose value is the Statuspage API key (sent as
    /// `Authorization: OAuth <key>`).
    pub api_key_secret: String,
    /// Default [`DEFAULT_STATUSPAGE_API`]. https, except on a loopback address (local tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// Components marked `degraded_performance` while the incident is open and `operational`
    /// when it is resolved (left as they are when the rollback fails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub component_ids: Vec<String>,
    /// What users read; each has a default.
    #[serde(default, skip_serializing_if = "StatusMessages::is_default")]
    pub messages: StatusMessages,
}

/// `channels.statuspage.messages`: the user-facing texts, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMessages {
    /// The incident's name (default [`DEFAULT_INCIDENT_NAME`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the rollback is approved: the incident opens `identified` with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identified: Option<String>,
    /// When the release is back and being verified: `monitoring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<String>,
    /// When the rollback succeeded: `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// When the rollback failed: the incident stays open (`identified`) with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl StatusMessages {
    fn is_default(&self) -> bool {
        *self == StatusMessages::default()
    }
    /// The incident's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(DEFAULT_INCIDENT_NAME)
    }
    /// The text that opens the incident.
    pub fn identified(&self) -> &str {
        self.identified.as_deref().unwrap_or(DEFAULT_IDENTIFIED)
    }
    /// The text posted while the rollback is verified.
    pub fn monitoring(&self) -> &str {
        self.monitoring.as_deref().unwrap_or(DEFAULT_MONITORING)
    }
    /// The text that resolves the incident.
    pub fn resolved(&self) -> &str {
        self.resolved.as_deref().unwrap_or(DEFAULT_RESOLVED)
    }
    /// The text posted when the rollback failed.
    pub fn failed(&self) -> &str {
        self.failed.as_deref().unwrap_or(DEFAULT_FAILED)
    }
}

impl StatuspageRef {
    /// The API root, without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_base
            .as_deref()
            .unwrap_or(DEFAULT_STATUSPAGE_API)
            .trim_end_matches('/')
    }
}

/// `channels.slack`: the notices in a Slack channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackRef {
    /// Secrets Manager secret (ARN or name) whose value is the incoming webhook URL
    /// (`https://hooks.slack.com/services/…`): whoever has the URL can post, so it is a secret.
    pub webhook_secret: String,
}

static STATUSPAGE_ID: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[a-z0-9]+$",
        1,
        32,
        "Statuspage ids have 1-32 lowercase letters and digits (e.g. kctbh9vrtdwd)",
    )
});

impl ChannelsRef {
    pub(super) fn validate(&self, errors: &mut ValidationErrors) {
        if self.statuspage.is_none() && self.slack.is_none() {
            errors.push(
                "channels",
                "name statuspage or slack (or both), or remove the section",
            );
        }
        if let Some(page) = &self.statuspage {
            page.validate(errors, "channels.statuspage");
        }
        if let Some(slack) = &self.slack {
            rules::SECRET_ID.check(
                errors,
                "channels.slack.webhook_secret",
                &slack.webhook_secret,
            );
        }
        let bytes = serde_json::to_vec(self).map(|b| b.len()).unwrap_or(0);
        if bytes > MAX_CHANNELS_BYTES {
            errors.push(
                "channels",
                format!(
                    "takes {bytes} bytes as JSON; at most {MAX_CHANNELS_BYTES} fit (the plan travels in \
                     every execution's state): shorten the messages or the secret names, or leave \
                     texts out to use the defaults"
                ),
            );
        }
    }
}

impl StatuspageRef {
    fn validate(&self, errors: &mut ValidationErrors, path: &str) {
        STATUSPAGE_ID.check(errors, &format!("{path}.page_id"), &self.page_id);
        rules::SECRET_ID.check(
            errors,
            &format!("{path}.api_key_secret"),
            &self.api_key_secret,
        );
        if let Some(base) = &self.api_base
            && let Err(why) = check_endpoint(base, None, MAX_API_BASE_CHARS)
        {
            errors.push(format!("{path}.api_base"), why);
        }
        let components = format!("{path}.component_ids");
        check_len(errors, &components, &self.component_ids, MAX_COMPONENTS);
        for (i, id) in self.component_ids.iter().enumerate() {
            let at = format!("{components}[{i}]");
            STATUSPAGE_ID.check(errors, &at, id);
            if self.component_ids[..i].contains(id) {
                errors.push(at, format!("component {id:?} is listed twice"));
            }
        }
        let m = &self.messages;
        for (field, text, max) in [
            ("name", &m.name, MAX_NAME_CHARS),
            ("identified", &m.identified, MAX_MESSAGE_CHARS),
            ("monitoring", &m.monitoring, MAX_MESSAGE_CHARS),
            ("resolved", &m.resolved, MAX_MESSAGE_CHARS),
            ("failed", &m.failed, MAX_MESSAGE_CHARS),
        ] {
            let Some(text) = text else { continue };
            let at = format!("{path}.messages.{field}");
            let chars = text.chars().count();
            if text.trim().is_empty() {
                errors.push(
                    at,
                    "is empty: write the text users read, or leave it out for the default",
                );
            } else if chars > max {
                errors.push(at, format!("has {chars} characters; at most {max}"));
            } else if text.chars().any(|c| c.is_control() && c != '\n') {
                errors.push(
                    at,
                    "has control characters: plain text and line breaks only",
                );
            }
        }
    }
}

/// Checks an endpoint URL: absolute, https (plain http only on a loopback address, for local
/// tests), no credentials, query or fragment, at most `max_chars`; with `https_prefix`, an https
/// URL must start with it. The message never quotes the URL (a webhook URL is a secret), only
/// what is wrong with it.
pub fn check_endpoint(
    raw: &str,
    https_prefix: Option<&str>,
    max_chars: usize,
) -> Result<url::Url, String> {
    if raw.chars().count() > max_chars {
        return Err(format!("is longer than {max_chars} characters"));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| format!("is not an absolute URL ({e}); e.g. {DEFAULT_STATUSPAGE_API}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (user:password@)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    match url.scheme() {
        "https" => {
            if let Some(prefix) = https_prefix
                && !raw.starts_with(prefix)
            {
                return Err(format!("must start with {prefix}"));
            }
            Ok(url)
        }
        "http" if is_loopback(&url) => Ok(url),
        "http" => {
            Err("must use https (plain http only on a loopback address, for local tests)".into())
        }
        other => Err(format!("has scheme {:?}; use https", truncate(other, 20))),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;
    use serde_json::{Value, json};

    fn plan(channels: Value) -> Result<Plan, ValidationErrors> {
        Plan::from_value(json!({
            "service": "svc",
            "images": [{"repository": "svc/api", "release_tag": "prod", "stable_tag": "stable"}],
            "channels": channels
        }))
    }

    fn full() -> Value {
        json!({
            "statuspage": {"page_id": "kctbh9vrtdwd", "api_key_secret": "notice-channels/svc/statuspage",
                           "component_ids": ["8kbf7d35c070"],
                           "messages": {"identified": "Checkout fails: we are putting the previous version back."}},
            "slack": {"webhook_secret": "notice-channels/svc/slack"}
        })
    }

    fn errors_of(channels: Value) -> Vec<(String, String)> {
        plan(channels)
            .unwrap_err()
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect()
    }

    #[test]
    fn a_full_section_parses_with_defaults_and_round_trips_small() {
        let p = plan(full()).unwrap();
        let c = p.channels.as_ref().unwrap();
        let page = c.statuspage.as_ref().unwrap();
        assert_eq!(page.api_base(), DEFAULT_STATUSPAGE_API);
        assert_eq!(
            page.messages.identified(),
            "Checkout fails: we are putting the previous version back."
        );
        assert_eq!(page.messages.resolved(), DEFAULT_RESOLVED);
        assert_eq!(page.messages.name(), DEFAULT_INCIDENT_NAME);
        // Defaults do not travel in the state: only what the plan says is serialized.
        let back = serde_json::to_value(c).unwrap();
        assert_eq!(back, full());
        // Without the section, nothing is serialized at all.
        let none = Plan::from_value(json!({"service": "svc",
            "images": [{"repository": "svc/api", "release_tag": "prod", "stable_tag": "stable"}]}))
        .unwrap();
        assert!(
            serde_json::to_value(&none)
                .unwrap()
                .get("channels")
                .is_none()
        );
    }

    #[test]
    fn each_problem_names_its_path() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (
                Box::new(|c| c["statuspage"]["page_id"] = json!("Not An Id")),
                "channels.statuspage.page_id",
                "lowercase",
            ),
            (
                Box::new(|c| c["statuspage"]["api_key_secret"] = json!("a b")),
                "channels.statuspage.api_key_secret",
                "Secrets Manager",
            ),
            (
                Box::new(|c| c["slack"]["webhook_secret"] = json!("")),
                "channels.slack.webhook_secret",
                "Secrets Manager",
            ),
            (
                Box::new(|c| c["statuspage"]["api_base"] = json!("http://api.statuspage.io/v1")),
                "channels.statuspage.api_base",
                "https",
            ),
            (
                Box::new(|c| c["statuspage"]["api_base"] = json!("ftp://127.0.0.1/v1")),
                "channels.statuspage.api_base",
                "scheme",
            ),
            (
                Box::new(|c| {
                    c["statuspage"]["api_base"] = json!("https://u:p@api.statuspage.io/v1")
                }),
                "channels.statuspage.api_base",
                "credentials",
            ),
            (
                Box::new(|c| c["statuspage"]["api_base"] = json!("/v1")),
                "channels.statuspage.api_base",
                "absolute",
            ),
            (
                Box::new(|c| c["statuspage"]["component_ids"] = json!(["a", "a"])),
                "channels.statuspage.component_ids[1]",
                "twice",
            ),
            (
                Box::new(|c| {
                    c["statuspage"]["component_ids"] = json!(["a", "b", "c", "d", "e", "f"])
                }),
                "channels.statuspage.component_ids",
                "at most 5",
            ),
            (
                Box::new(|c| c["statuspage"]["messages"]["resolved"] = json!(" ")),
                "channels.statuspage.messages.resolved",
                "empty",
            ),
            (
                Box::new(|c| c["statuspage"]["messages"]["failed"] = json!("x".repeat(281))),
                "channels.statuspage.messages.failed",
                "at most 280",
            ),
            (
                Box::new(|c| c["statuspage"]["messages"]["name"] = json!("a\u{7}b")),
                "channels.statuspage.messages.name",
                "control",
            ),
        ];
        for (change, path, words) in cases {
            let mut c = full();
            change(&mut c);
            let errors = errors_of(c);
            assert!(
                errors.iter().any(|(p, m)| p == path && m.contains(words)),
                "{path}: {errors:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_an_empty_section_are_refused() {
        let mut c = full();
        c["statuspage"]["page"] = json!("x");
        let errors = errors_of(c);
        assert_eq!(errors[0].0, "channels.statuspage.page", "{errors:?}");
        assert!(errors[0].1.contains("unknown field"), "{errors:?}");
        let mut c = full();
        c["statuspage"]["messages"]["investigating"] = json!("x");
        assert_eq!(
            errors_of(c)[0].0,
            "channels.statuspage.messages.investigating"
        );
        let errors = errors_of(json!({}));
        assert!(
            errors
                .iter()
                .any(|(p, m)| p == "channels" && m.contains("statuspage or slack")),
            "{errors:?}"
        );
    }

    #[test]
    fn loopback_http_is_allowed_for_local_tests_only() {
        for ok in [
            "http://127.0.0.1:8080/v1",
            "http://[::1]:9/v1",
            "http://localhost:1/v1",
            "https://api.statuspage.io/v1",
        ] {
            assert!(check_endpoint(ok, None, 200).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1/v1", "http://127.example.com/v1"] {
            assert!(check_endpoint(bad, None, 200).is_err(), "{bad}");
        }
        // A Slack webhook must be Slack's (or loopback); the message never quotes the URL.
        let secret = "https://hooks.example.com/services/T0/B0/secretpath";
        let err = check_endpoint(secret, Some(SLACK_WEBHOOK_PREFIX), 500).unwrap_err();
        assert!(
            err.contains(SLACK_WEBHOOK_PREFIX) && !err.contains("secretpath"),
            "{err}"
        );
        assert!(
            check_endpoint(
                "https://hooks.slack.com/services/T0/B0/x",
                Some(SLACK_WEBHOOK_PREFIX),
                500
            )
            .is_ok()
        );
        let err =
            check_endpoint("http://hooks.example.com/services/secretpath", None, 500).unwrap_err();
        assert!(!err.contains("secretpath"), "{err}");
    }

    #[test]
    fn the_whole_section_is_bounded_for_the_execution_state() {
        // Every field at its own maximum is too big together: the budget speaks.
        let long = |n: usize| "x".repeat(n);
        let c = json!({
            "statuspage": {"page_id": "a".repeat(32), "api_key_secret": long(200),
                           "messages": {"identified": long(280), "resolved": long(280)}},
        });
        let errors = errors_of(c);
        assert!(
            errors
                .iter()
                .any(|(p, m)| p == "channels" && m.contains("at most 600")),
            "{errors:?}"
        );
        // A realistic section fits with room to spare: the README's example.
        let example = json!({
            "statuspage": {"page_id": "kctbh9vrtdwd", "api_key_secret": "notice-channels/mint-replica/statuspage",
                           "component_ids": ["8kbf7d35c070", "vtnh60py4yd7"],
                           "messages": {"identified": "Payments may fail after today's release: we are putting the previous version back.",
                                        "resolved": "The previous version is live again and payments work."}},
            "slack": {"webhook_secret": "notice-channels/mint-replica/slack"}
        });
        let bytes = serde_json::to_vec(&example).unwrap().len();
        assert!(bytes < MAX_CHANNELS_BYTES, "{bytes}");
        plan(example).unwrap();
    }
}
