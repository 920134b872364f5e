//! App Store Connect: the version on the App Store and its phased release, paused by
//! `PATCH /v1/appStoreVersionPhasedReleases/{id}` with `phasedReleaseState: PAUSED`.
//!
//! Apple offers no rollback of a version: pausing stops automatic updates to it (for up to 30
//! days in total), while anyone may still update by hand and those who did keep it.

use chrono::Utc;
use rollback_core::RollbackError;
use rollback_core::contract::mobile::{
    AppStoreResolution, HaltOutcome, PhasedRelease, PhasedReleaseState, PlatformHalt,
};
use rollback_core::plan::IosRef;
use serde_json::{Value, json};

use crate::Clients;
use crate::credentials::{AppStoreKey, Bearer};
use crate::http::{self, AppleError};

/// The App Store state of the live version: `appStoreState` (deprecated but still served)
/// and its successor `appVersionState`.
const LIVE_STATES: [&str; 2] = ["READY_FOR_SALE", "READY_FOR_DISTRIBUTION"];

/// A session with App Store Connect for one app.
pub struct AppStore<'a> {
    clients: &'a Clients,
    token: Bearer,
    ios: &'a IosRef,
    key: &'a AppStoreKey,
}

/// An App Store version: its id and version string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub version: String,
}

impl<'a> AppStore<'a> {
    pub fn open(
        clients: &'a Clients,
        ios: &'a IosRef,
        key: &'a AppStoreKey,
    ) -> Result<AppStore<'a>, RollbackError> {
        Ok(AppStore {
            clients,
            token: key.token(Utc::now())?,
            ios,
            key,
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.clients.endpoints.app_store.trim_end_matches('/')
        )
    }

    /// Sends `request`; `None` for a 404 where `missing_ok`.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
        missing_ok: bool,
    ) -> Result<Option<Value>, RollbackError> {
        let request = request.bearer_auth(self.token.as_str());
        let answer = http::send(request, operation).await?;
        if answer.is_success() {
            return Ok(Some(answer.body));
        }
        if missing_ok && answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let error = AppleError::parse(&answer.body);
        if let Some(err) = http::retryable(operation, &answer, &error.describe()) {
            return Err(err);
        }
        Err(self.refusal(operation, answer.status.as_u16(), &error))
    }

    fn refusal(&self, operation: &str, status: u16, error: &AppleError) -> RollbackError {
        let app = &self.ios.app_id;
        let said = format!("{operation}: {status} {}", error.describe());
        let message = match status {
            401 => {
                return RollbackError::StoreCredentials(format!(
                    "App Store Connect refused the API key {} ({said}): check key_id, \
                     issuer_id and private_key in secret {:?}, and that the key is not revoked \
                     (Users and Access, Integrations)",
                    self.key.key_id, self.key.secret
                ));
            }
            403 => format!(
                "the App Store Connect API key {} may not change app {app} ({said}): give it \
                 the App Manager or Admin role",
                self.key.key_id
            ),
            404 => format!(
                "App Store Connect has no app {app} for this API key ({said}): check \
                 mobile.ios.app_id (the Apple ID under App Information)"
            ),
            409 => format!(
                "App Store Connect refused to pause the phased release ({said}): its state \
                 changed since it was read (completed, or paused for 30 days in total); run \
                 status"
            ),
            _ => format!("App Store Connect refused {operation} for app {app} ({said})"),
        };
        RollbackError::StoreRefused(message)
    }

    /// The version to pause: the plan's version string, else the live version.
    pub async fn version(&self) -> Result<Option<Version>, RollbackError> {
        let filter = match &self.ios.version {
            Some(v) => format!("filter[versionString]={}", query_value(v)),
            None => "filter[appStoreState]=READY_FOR_SALE".to_owned(),
        };
        let path = format!("/v1/apps/{}/appStoreVersions?{filter}", self.ios.app_id);
        let list = self
            .call(
                self.clients.http.get(self.url(&path)),
                "appStoreVersions",
                false,
            )
            .await?
            .unwrap_or_default();
        Ok(pick_version(&list, self.ios.version.as_deref()))
    }

    /// The version's phased release; none when it has none.
    pub async fn phased_release(
        &self,
        version: &Version,
    ) -> Result<Option<PhasedRelease>, RollbackError> {
        let path = format!(
            "/v1/appStoreVersions/{}/appStoreVersionPhasedRelease",
            version.id
        );
        let request = self.clients.http.get(self.url(&path));
        let body = self
            .call(request, "appStoreVersionPhasedRelease", true)
            .await?;
        Ok(body.and_then(|b| phased(&b["data"])))
    }

    /// Pauses the phased release; its state as Apple answers.
    pub async fn pause(&self, phased_release: &str) -> Result<PhasedRelease, RollbackError> {
        let path = format!("/v1/appStoreVersionPhasedReleases/{phased_release}");
        let body = json!({"data": {
            "type": "appStoreVersionPhasedReleases",
            "id": phased_release,
            "attributes": {"phasedReleaseState": "PAUSED"}
        }});
        let request = self.clients.http.patch(self.url(&path)).json(&body);
        let answer = self
            .call(request, "appStoreVersionPhasedReleases.update", false)
            .await?
            .unwrap_or_default();
        phased(&answer["data"]).ok_or_else(|| {
            RollbackError::Internal(
                "App Store Connect answered the pause without the release".into(),
            )
        })
    }
}

/// `v` for a query string (version strings are digits and dots; anything else is encoded).
fn query_value(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The version from a list of `appStoreVersions`: the one with this version string, or the
/// live one; an iOS one before any other platform's.
fn pick_version(list: &Value, version: Option<&str>) -> Option<Version> {
    let items = list["data"].as_array()?;
    let matches = |item: &&Value| {
        let attributes = &item["attributes"];
        match version {
            Some(v) => attributes["versionString"].as_str() == Some(v),
            None => ["appStoreState", "appVersionState"]
                .iter()
                .any(|f| LIVE_STATES.contains(&attributes[*f].as_str().unwrap_or_default())),
        }
    };
    let candidates: Vec<&Value> = items.iter().filter(matches).collect();
    let ios = candidates
        .iter()
        .find(|item| item["attributes"]["platform"].as_str() == Some("IOS"));
    let item = ios.or(candidates.first())?;
    Some(Version {
        id: item["id"].as_str()?.to_owned(),
        version: item["attributes"]["versionString"].as_str()?.to_owned(),
    })
}

/// An `appStoreVersionPhasedReleases` resource; `None` for `null`.
fn phased(data: &Value) -> Option<PhasedRelease> {
    let attributes = &data["attributes"];
    let state = serde_json::from_value(attributes["phasedReleaseState"].clone())
        .unwrap_or(PhasedReleaseState::Unknown);
    let number = |field: &str| {
        attributes[field]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    };
    Some(PhasedRelease {
        id: data["id"].as_str()?.to_owned(),
        state,
        current_day: number("currentDayNumber"),
        total_pause_days: number("totalPauseDuration"),
    })
}

/// What the App Store shows now (`resolve`, `status`).
pub async fn read(
    clients: &Clients,
    ios: &IosRef,
    key: &AppStoreKey,
) -> Result<AppStoreResolution, RollbackError> {
    read_with(&AppStore::open(clients, ios, key)?).await
}

async fn read_with(store: &AppStore<'_>) -> Result<AppStoreResolution, RollbackError> {
    let ios = store.ios;
    let mut resolution = AppStoreResolution {
        app_id: ios.app_id.clone(),
        version: None,
        version_id: None,
        phased_release: None,
        minimum_version: None,
    };
    if let Some(version) = store.version().await? {
        resolution.phased_release = store.phased_release(&version).await?;
        resolution.version = Some(version.version);
        resolution.version_id = Some(version.id);
    }
    Ok(resolution)
}

/// `halt` on the App Store: pauses the approved version's phased release while it is active.
pub async fn halt(
    clients: &Clients,
    ios: &IosRef,
    key: &AppStoreKey,
    approved: &AppStoreResolution,
    drill: bool,
) -> Result<PlatformHalt, RollbackError> {
    let store = AppStore::open(clients, ios, key)?;
    let live = read_with(&store).await?;
    let done = |outcome, summary: String| Ok(PlatformHalt { outcome, summary });
    let shown = approved.version.as_deref().unwrap_or("no live version");
    if live.version != approved.version || live.version_id != approved.version_id {
        if live.pausable() || approved.pausable() {
            return Err(RollbackError::PlanDrifted(format!(
                "the approver saw {shown} on the App Store, which now shows {}; resolve again \
                 and approve",
                live.version.as_deref().unwrap_or("no live version")
            )));
        }
        return done(
            HaltOutcome::NothingToHalt,
            "App Store: nothing to pause; nothing changed".to_owned(),
        );
    }
    let Some(phased) = live.phased_release.as_ref() else {
        return done(
            HaltOutcome::NothingToHalt,
            format!("App Store: {shown} has no phased release to pause; nothing changed"),
        );
    };
    match phased.state {
        PhasedReleaseState::Active => {}
        PhasedReleaseState::Paused => {
            return done(
                HaltOutcome::AlreadyDone,
                format!(
                    "App Store: the phased release of {shown} was already paused; nothing changed"
                ),
            );
        }
        _ => {
            return done(
                HaltOutcome::NothingToHalt,
                format!("{}; nothing changed", live.headline()),
            );
        }
    }
    let line = live.headline();
    if drill {
        return done(
            HaltOutcome::Rehearsed,
            format!("drill (nothing paused): {line}"),
        );
    }
    match store.pause(&phased.id).await {
        Ok(paused) => {
            tracing::info!(app = %ios.app_id, version = %shown, state = ?paused.state, "phased release paused");
        }
        // A lost answer or a 5xx may come after Apple paused it: look before reporting.
        Err(err) => {
            let now = read_with(&store).await.ok();
            let state = now
                .as_ref()
                .and_then(|n| n.phased_release.as_ref())
                .map(|p| p.state);
            if state != Some(PhasedReleaseState::Paused) {
                return Err(err);
            }
            tracing::warn!(error = %err, "the PATCH failed, but the phased release is paused");
        }
    }
    done(HaltOutcome::Paused, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_or_live_version_is_picked_ios_first() {
        let list = json!({"data": [
            {"id": "mac", "attributes": {"versionString": "4.2.0", "platform": "MAC_OS",
             "appStoreState": "READY_FOR_SALE"}},
            {"id": "ios", "attributes": {"versionString": "4.2.0", "platform": "IOS",
             "appVersionState": "READY_FOR_DISTRIBUTION"}},
            {"id": "old", "attributes": {"versionString": "4.1.2", "platform": "IOS",
             "appStoreState": "REPLACED_WITH_NEW_VERSION"}}
        ]});
        assert_eq!(pick_version(&list, Some("4.2.0")).unwrap().id, "ios");
        assert_eq!(pick_version(&list, None).unwrap().id, "ios");
        assert_eq!(pick_version(&list, Some("4.1.2")).unwrap().id, "old");
        assert!(pick_version(&list, Some("9.9")).is_none());
        assert!(pick_version(&json!({"data": []}), None).is_none());
    }

    #[test]
    fn phased_releases_read_as_apple_writes_them() {
        let p = phased(&json!({"type": "appStoreVersionPhasedReleases", "id": "p1",
            "attributes": {"phasedReleaseState": "ACTIVE", "currentDayNumber": 3,
                           "totalPauseDuration": 0, "startDate": "2026-05-01T00:00:00Z"}}))
        .unwrap();
        assert_eq!(p.state, PhasedReleaseState::Active);
        assert_eq!(p.current_day, Some(3));
        assert!(phased(&Value::Null).is_none());
    }
}
