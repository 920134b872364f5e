//! The users' incident on Atlassian Statuspage (REST API v1, `Authorization: OAuth <key>`):
//! `GET /pages/{page}/incidents/unresolved`, `POST /pages/{page}/incidents` and
//! `PATCH /pages/{page}/incidents/{id}`, each with `{"incident": {"name", "status", "body",
//! "component_ids", "components"}}`.
//!
//! No incident id is stored anywhere: the incident of an execution is the unresolved one whose
//! updates carry [`marker`] (the execution name). Every step looks first, so a retry (Step
//! Functions' at-least-once delivery, or a POST whose answer was lost after Statuspage applied
//! it) never opens a second incident or posts an update twice, and resolving an incident that
//! is already resolved does nothing.

use rollback_core::plan::channels::{StatusMessages, StatuspageRef};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelError, Milestone, Notice, secret_value};
use crate::text::cut;

/// Component status while the incident is open, and after it is resolved.
const OPEN_COMPONENT_STATUS: &str = "degraded_performance";
const RESOLVED_COMPONENT_STATUS: &str = "operational";

/// The tag that ties an incident to its execution, in the opening update's body. Closed by a
/// bracket so that `exec-1` never matches `exec-10`.
pub fn marker(execution: &str) -> String {
    format!("[rollback {execution}]")
}

#[derive(Debug, Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    status: String,
    /// Newest first, as Statuspage lists them.
    #[serde(default)]
    incident_updates: Vec<IncidentUpdate>,
}

#[derive(Debug, Deserialize)]
struct IncidentUpdate {
    #[serde(default)]
    status: String,
    #[serde(default)]
    body: String,
}

impl Incident {
    fn is_of(&self, marker: &str) -> bool {
        self.incident_updates
            .iter()
            .any(|u| u.body.contains(marker))
    }
    /// Whether the newest update already says this.
    fn says(&self, status: &str, body: &str) -> bool {
        self.incident_updates
            .first()
            .is_some_and(|u| u.status == status && u.body.trim() == body.trim())
    }
}

struct Api<'a> {
    http: &'a reqwest::Client,
    /// `<api_base>/pages/<page_id>`.
    page: String,
    key: String,
}

impl Api<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChannelError> {
        let what = format!("Statuspage {method} {}", call_name(path));
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.page))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("OAuth {}", self.key),
            )
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ChannelError::http(&what, e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ChannelError::http(&what, e))?;
        if !status.is_success() {
            return Err(ChannelError::Status {
                call: what,
                status: status.as_u16(),
                body: cut(&crate::text::clean(&text, 120), 120),
            });
        }
        serde_json::from_str(&text).map_err(|e| ChannelError::Answer {
            call: what,
            reason: cut(&e.to_string(), 100),
        })
    }

    async fn find(&self, marker: &str) -> Result<Option<Incident>, ChannelError> {
        let listed = self
            .call(reqwest::Method::GET, "/incidents/unresolved", None)
            .await?;
        let incidents: Vec<Incident> =
            serde_json::from_value(listed).map_err(|e| ChannelError::Answer {
                call: "Statuspage GET incidents/unresolved".into(),
                reason: cut(&e.to_string(), 100),
            })?;
        Ok(incidents.into_iter().find(|i| i.is_of(marker)))
    }

    async fn create(&self, incident: &Value) -> Result<String, ChannelError> {
        let created = self
            .call(
                reqwest::Method::POST,
                "/incidents",
                Some(&json!({ "incident": incident })),
            )
            .await?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn update(&self, id: &str, incident: &Value) -> Result<(), ChannelError> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/incidents/{id}"),
            Some(&json!({ "incident": incident })),
        )
        .await
        .map(|_| ())
    }
}

/// `/incidents/abc123` → `incidents/{id}`: what an error names (ids are not secret, but short).
fn call_name(path: &str) -> String {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some(("incidents", "unresolved")) => "incidents/unresolved".into(),
        Some(("incidents", _)) => "incidents/{id}".into(),
        _ => path.to_owned(),
    }
}

/// What a milestone asks of the incident: open it with a text, update it, or both (a failure
/// after approval opens it if it is not yet).
#[derive(Clone, Copy)]
struct Asked<'a> {
    open_with: Option<&'a str>,
    /// The update's incident status, text, and component status (if the components change).
    update: Option<(&'static str, &'a str, Option<&'static str>)>,
}

/// Does the notice's part on the status page; returns what it did.
pub(crate) async fn drive(
    http: &reqwest::Client,
    secrets: &aws_sdk_secretsmanager::Client,
    page: &StatuspageRef,
    notice: &Notice<'_>,
) -> Result<String, ChannelError> {
    let Some(asked) = asked_of(notice, &page.messages) else {
        return Ok("nothing to show users before approval".into());
    };
    let key = secret_value(secrets, &page.api_key_secret, "the Statuspage API key").await?;
    let api = Api {
        http,
        page: format!("{}/pages/{}", page.api_base(), page.page_id),
        key,
    };
    let marker = marker(notice.execution);

    // Two tries, each looking first: after a failed POST or PATCH (a timeout after Statuspage
    // applied it, a 5xx), the look tells whether it was applied.
    let mut last_error = None;
    for _attempt in 0..2 {
        let found = match api.find(&marker).await {
            Ok(found) => found,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        match apply(&api, page, notice.milestone, &marker, found, asked).await {
            Ok(done) => return Ok(done),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("two attempts, each failed"))
}

/// What this milestone asks of the incident; `None` before approval (nothing to show users).
fn asked_of<'a>(notice: &Notice<'_>, m: &'a StatusMessages) -> Option<Asked<'a>> {
    let (open_with, update) = match notice.milestone {
        Milestone::Started | Milestone::Rejected => return None,
        Milestone::Approved => (Some(m.identified()), None),
        Milestone::Progress => (None, Some(("monitoring", m.monitoring(), None))),
        Milestone::Succeeded => (
            None,
            Some(("resolved", m.resolved(), Some(RESOLVED_COMPONENT_STATUS))),
        ),
        Milestone::Failed if notice.approved => {
            (Some(m.failed()), Some(("identified", m.failed(), None)))
        }
        Milestone::Failed => (None, Some(("identified", m.failed(), None))),
    };
    Some(Asked { open_with, update })
}

/// One try's change, given the incident `found` (if any): opens it, updates it, or says why
/// nothing was needed.
async fn apply(
    api: &Api<'_>,
    page: &StatuspageRef,
    milestone: Milestone,
    marker: &str,
    found: Option<Incident>,
    asked: Asked<'_>,
) -> Result<String, ChannelError> {
    match (found, asked.open_with, asked.update) {
        (None, Some(text), _) => {
            let mut incident = json!({
                "name": page.messages.name(),
                "status": "identified",
                "body": format!("{text}\n\n{marker}"),
                "deliver_notifications": true,
            });
            if !page.component_ids.is_empty() {
                incident["component_ids"] = json!(page.component_ids);
                incident["components"] = Value::Object(components(page, OPEN_COMPONENT_STATUS));
            }
            api.create(&incident)
                .await
                .map(|id| format!("incident {id} opened (identified)"))
        }
        (None, None, _) => Ok(match milestone {
            Milestone::Succeeded => "no open incident: nothing to resolve".into(),
            _ => "no open incident: nothing to update".into(),
        }),
        (Some(incident), _, None) => Ok(format!(
            "incident {} already open ({})",
            incident.id, incident.status
        )),
        (Some(incident), _, Some((status, text, component_status))) => {
            if incident.says(status, text) {
                return Ok(format!("incident {} already {status}", incident.id));
            }
            let mut change = json!({"status": status, "body": text});
            if let Some(component_status) = component_status
                && !page.component_ids.is_empty()
            {
                change["component_ids"] = json!(page.component_ids);
                change["components"] = Value::Object(components(page, component_status));
            }
            api.update(&incident.id, &change)
                .await
                .map(|()| format!("incident {} {status}", incident.id))
        }
    }
}

/// The page's components, each with `status`.
fn components(page: &StatuspageRef, status: &str) -> serde_json::Map<String, Value> {
    page.component_ids
        .iter()
        .map(|id| (id.clone(), json!(status)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_never_matches_a_longer_execution_name() {
        let incident = Incident {
            id: "i".into(),
            status: "identified".into(),
            incident_updates: vec![IncidentUpdate {
                status: "identified".into(),
                body: format!("text\n\n{}", marker("exec-10")),
            }],
        };
        assert!(incident.is_of(&marker("exec-10")));
        assert!(!incident.is_of(&marker("exec-1")));
        assert!(incident.says("identified", &format!("text\n\n{}", marker("exec-10"))));
        assert!(!incident.says("monitoring", "text"));
    }

    #[test]
    fn errors_name_the_call_not_the_id() {
        assert_eq!(call_name("/incidents/abc"), "incidents/{id}");
        assert_eq!(call_name("/incidents/unresolved"), "incidents/unresolved");
        assert_eq!(call_name("/incidents"), "incidents");
    }
}
