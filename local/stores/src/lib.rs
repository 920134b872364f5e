//! A small local stand-in for the two app stores the mobile rollback talks to: Google Play
//! (the OAuth 2.0 service-account grant and the Android Publisher v3 edits/tracks calls) and
//! App Store Connect (versions and their phased release). Neither store has an emulator, so
//! this server implements exactly the calls the rollback makes, over real HTTP on 127.0.0.1,
//! with the stores' JSON shapes and error bodies, verifying the credentials it is sent and
//! keeping state so that tests can assert what the store would show. The rule throughout:
//! never laxer than the real store. Where the real store's exact wording or status is not
//! documented, the answer is a refusal all the same, and the docs below say the wording is
//! local.
//!
//! # Google
//!
//! [`google`] (token endpoint `POST /google/token`, [`StoreServer::google_token_uri`]):
//! the JWT-bearer grant of "Using OAuth 2.0 for Server to Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/service-account>): an RS256
//! assertion signed with a registered service account's key, `iss` = its `client_email`,
//! `aud` = this endpoint, `exp` at most one hour after `iat`, a `scope`. The answer is an
//! opaque access token the server remembers with its expiry; errors are Google's OAuth
//! `{"error", "error_description"}` bodies.
//!
//! [`play`] (under `/androidpublisher/v3/applications/{packageName}`, the real paths of
//! <https://developers.google.com/android-publisher/api-ref/rest/v3/edits>): `POST …/edits`,
//! `GET|DELETE …/edits/{editId}`, `POST …/edits/{editId}:commit` and `:validate`,
//! `GET …/edits/{editId}/tracks` and `GET|PUT …/edits/{editId}/tracks/{track}`, each
//! requiring a bearer token from the grant above, with the edit semantics of
//! <https://developers.google.com/android-publisher/edits> and
//! <https://developers.google.com/android-publisher/concurrency-considerations>.
//!
//! # Apple
//!
//! [`appstore`] (under `/appstore/v1`, [`StoreServer::app_store_url`] stands for
//! `https://api.appstoreconnect.apple.com`): `GET /v1/apps/{id}/appStoreVersions`,
//! `GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease`,
//! `GET|PATCH /v1/appStoreVersionPhasedReleases/{id}`, JSON:API documents, each request
//! carrying an ES256 token made as "Generating Tokens for API Requests" says
//! (<https://developer.apple.com/documentation/appstoreconnectapi/generating-tokens-for-api-requests>).
//!
//! # Setup and inspection
//!
//! Tests arrange the stores with Rust calls rather than HTTP: register the credentials
//! ([`StoreServer::register_service_account`], [`StoreServer::register_app_store_key`]; the
//! [`test_keys`] module makes them), put the live state
//! ([`StoreServer::put_play_track`], [`StoreServer::put_app_store_version`],
//! [`StoreServer::put_phased_release`], [`StoreServer::set_in_review`]), then read what the
//! store shows ([`StoreServer::play_track`], [`StoreServer::phased_release`],
//! [`StoreServer::reviews_cancelled`], [`StoreServer::requests`]).
//!
//! Tests and the drill start it in-process; `cargo test -p rollback-stores` needs no other
//! service.

// The handlers build their refusals as the stores' HTTP answers (`Response`) and return them
// as they are: boxing them would buy nothing on a loopback test server.
#![allow(clippy::result_large_err)]

pub mod appstore;
mod faults;
pub mod google;
pub mod play;
mod state;
pub mod test_keys;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::faults::StoreFault;
use crate::state::{AscVersion, PhasedRecord, Stores};

/// Why a key could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not an RSA public key in PEM (SPKI or PKCS#1): {0}")]
    InvalidRsaKey(#[source] jsonwebtoken::errors::Error),
    #[error("not a P-256 public key in PEM (SPKI): {0}")]
    InvalidEcKey(#[source] jsonwebtoken::errors::Error),
}

/// A release on a Play track, as the Android Publisher API's `TrackRelease`
/// (<https://developers.google.com/android-publisher/api-ref/rest/v3/edits.tracks#Release>).
/// Unknown fields are refused, as Google's JSON parser refuses unknown names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayRelease {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// int64 values, which Google's JSON carries as strings.
    #[serde(default)]
    pub version_codes: Vec<String>,
    pub status: ReleaseStatus,
    /// The rollout fraction, only for `inProgress` and `halted` releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_notes: Vec<LocalizedText>,
}

impl PlayRelease {
    /// A release of `status` with these version codes and no name, fraction or notes.
    pub fn new<I, S>(status: ReleaseStatus, version_codes: I) -> PlayRelease
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PlayRelease {
            name: None,
            version_codes: version_codes.into_iter().map(Into::into).collect(),
            status,
            user_fraction: None,
            release_notes: Vec::new(),
        }
    }

    pub fn with_fraction(mut self, fraction: f64) -> PlayRelease {
        self.user_fraction = Some(fraction);
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> PlayRelease {
        self.name = Some(name.into());
        self
    }
}

/// `TrackRelease.status`; `statusUnspecified` is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReleaseStatus {
    Draft,
    InProgress,
    Halted,
    Completed,
}

/// `LocalizedText`: release notes in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalizedText {
    pub language: String,
    pub text: String,
}

/// An App Store phased release as the store shows it
/// (<https://developer.apple.com/documentation/appstoreconnectapi/appstoreversionphasedrelease>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhasedRelease {
    pub id: String,
    pub phased_release_state: PhasedReleaseState,
    pub current_day_number: u32,
    /// RFC 3339 UTC; none while `INACTIVE`.
    pub start_date: Option<String>,
    /// Whole days spent paused so far.
    pub total_pause_duration: u32,
}

/// `PhasedReleaseState`
/// (<https://developer.apple.com/documentation/appstoreconnectapi/phasedreleasestate>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhasedReleaseState {
    Inactive,
    Active,
    Paused,
    Complete,
}

impl PhasedReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            PhasedReleaseState::Inactive => "INACTIVE",
            PhasedReleaseState::Active => "ACTIVE",
            PhasedReleaseState::Paused => "PAUSED",
            PhasedReleaseState::Complete => "COMPLETE",
        }
    }
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
}

/// What every handler shares.
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) base: String,
    stores: Mutex<Stores>,
}

impl Shared {
    pub(crate) fn stores(&self) -> MutexGuard<'_, Stores> {
        // A handler that panicked mid-update leaves the state as it was at the panic; the
        // tests that caused it fail on their own, so the others keep going.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn token_uri(&self) -> String {
        format!("{}/google/token", self.base)
    }
}

/// Seconds since the epoch: every expiry here is compared on the wall clock, like the stores.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A running store server on a free port of 127.0.0.1. Dropping it stops the server.
pub struct StoreServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn log_requests(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let response = next.run(request).await;
    shared.stores().log.push(LoggedRequest {
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

impl StoreServer {
    /// Binds a free port on 127.0.0.1 and serves in the background on the current Tokio
    /// runtime until the server is dropped. No credential is registered and no app exists.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound.
    pub async fn start() -> StoreServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("the store server binds a free port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            stores: Mutex::new(Stores::default()),
        });
        let app = Router::new()
            .merge(google::router())
            .merge(play::router())
            .merge(appstore::router())
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                faults::inject,
            ))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                log_requests,
            ))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            // Ends only when the listener fails; the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        StoreServer { shared, addr, task }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.shared.base
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OAuth token endpoint, Google's `https://oauth2.googleapis.com/token`: the
    /// `token_uri` of the service-account key files and the `aud` their assertions must name.
    pub fn google_token_uri(&self) -> String {
        self.shared.token_uri()
    }

    /// The Android Publisher root, Google's `https://androidpublisher.googleapis.com`: the
    /// API is under `/androidpublisher/v3/…` of it, as there.
    pub fn android_publisher_url(&self) -> &str {
        &self.shared.base
    }

    /// The App Store Connect root, Apple's `https://api.appstoreconnect.apple.com`: the API
    /// is under `/v1/…` of it, as there.
    pub fn app_store_url(&self) -> String {
        format!("{}/appstore", self.shared.base)
    }

    /// Registers a service account: assertions with `iss` = `client_email` must be signed by
    /// the private half of `public_key_pem` (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    /// Registering the same email again replaces its key.
    pub fn register_service_account(
        &self,
        client_email: &str,
        public_key_pem: &str,
    ) -> Result<(), StoreError> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .map_err(StoreError::InvalidRsaKey)?;
        self.shared
            .stores()
            .service_accounts
            .insert(client_email.to_string(), key);
        Ok(())
    }

    /// Registers an App Store Connect API key: tokens with header `kid` = `key_id` must be
    /// signed by the private half of `public_key_pem` (SPKI) and carry `iss` = `issuer_id`.
    pub fn register_app_store_key(
        &self,
        key_id: &str,
        issuer_id: &str,
        public_key_pem: &str,
    ) -> Result<(), StoreError> {
        let key = jsonwebtoken::DecodingKey::from_ec_pem(public_key_pem.as_bytes())
            .map_err(StoreError::InvalidEcKey)?;
        self.shared.stores().app_store_keys.insert(
            key_id.to_string(),
            state::AppStoreKey {
                issuer_id: issuer_id.to_string(),
                key,
            },
        );
        Ok(())
    }

    /// Sets the live (committed) releases of `track` of the app `package`, creating the app if
    /// needed. An app has the standard tracks `production`, `beta`, `alpha` and `internal`
    /// (empty until put); any other name makes a custom track. Open edits keep the snapshot
    /// they were opened on, as in Play.
    ///
    /// Completed releases are remembered as the track's history: put `[4.1.2 completed]`, then
    /// `[4.2.0 completed]`, and halting 4.2.0 brings 4.1.2 back, as Play does.
    pub fn put_play_track(&self, package: &str, track: &str, releases: Vec<PlayRelease>) {
        let mut stores = self.shared.stores();
        let app = stores.play_app_mut(package);
        let history = app.completed_before.entry(track.to_string()).or_default();
        for release in releases
            .iter()
            .filter(|r| r.status == ReleaseStatus::Completed)
        {
            history.retain(|h| h.version_codes != release.version_codes);
            history.push(release.clone());
        }
        app.tracks.insert(track.to_string(), releases);
    }

    /// The live (committed) releases of `track`, as the store shows them; `None` if the app or
    /// the track does not exist. Edits that were not committed change nothing here.
    pub fn play_track(&self, package: &str, track: &str) -> Option<Vec<PlayRelease>> {
        let stores = self.shared.stores();
        stores.play_apps.get(package)?.tracks.get(track).cloned()
    }

    /// Whether the app has changes in review (created if needed). A commit with
    /// `changesInReviewBehavior=ERROR_IF_IN_REVIEW` then fails; any other commit cancels the
    /// review (counted by [`StoreServer::reviews_cancelled`]).
    pub fn set_in_review(&self, package: &str, in_review: bool) {
        self.shared.stores().play_app_mut(package).in_review = in_review;
    }

    /// Whether the app has changes in review now.
    pub fn in_review(&self, package: &str) -> bool {
        let stores = self.shared.stores();
        stores.play_apps.get(package).is_some_and(|a| a.in_review)
    }

    /// How many times a commit cancelled the app's changes in review (a rollback must never
    /// do that to a release the team has sent for review).
    pub fn reviews_cancelled(&self, package: &str) -> usize {
        let stores = self.shared.stores();
        stores
            .play_apps
            .get(package)
            .map_or(0, |a| a.reviews_cancelled)
    }

    /// How many edits of the app were committed.
    pub fn commits(&self, package: &str) -> usize {
        let stores = self.shared.stores();
        stores.play_apps.get(package).map_or(0, |a| a.commits)
    }

    /// Test hook: every access token issued so far is expired from now on (API calls with it
    /// get 401, as after `expires_in`).
    pub fn expire_tokens(&self) {
        for token in self.shared.stores().access_tokens.values_mut() {
            token.expires_at = now() - 1;
        }
    }

    /// Test hook: every open edit is past its `expiryTimeSeconds` from now on.
    pub fn expire_edits(&self) {
        for edit in self.shared.stores().edits.values_mut() {
            edit.expires_at = now() - 1;
        }
    }

    /// Puts an App Store version of the app `app_id` (created if needed), replacing one with
    /// the same id. `state` is an `AppStoreVersionState`
    /// (<https://developer.apple.com/documentation/appstoreconnectapi/appstoreversionstate>).
    ///
    /// # Panics
    /// If `state` is not one of those values: the store could not show it.
    pub fn put_app_store_version(
        &self,
        app_id: &str,
        version_id: &str,
        version_string: &str,
        state: &str,
    ) {
        assert!(
            appstore::APP_STORE_VERSION_STATES.contains(&state),
            "{state:?} is not an AppStoreVersionState"
        );
        let mut stores = self.shared.stores();
        if let Some(old) = stores
            .asc_versions
            .get(version_id)
            .map(|v| v.app_id.clone())
            && let Some(ids) = stores.asc_apps.get_mut(&old)
        {
            ids.retain(|id| id != version_id);
        }
        stores
            .asc_apps
            .entry(app_id.to_string())
            .or_default()
            .push(version_id.to_string());
        stores.asc_versions.insert(
            version_id.to_string(),
            AscVersion {
                app_id: app_id.to_string(),
                version_string: version_string.to_string(),
                state: state.to_string(),
            },
        );
    }

    /// Puts the phased release `phased_release_id` of the version `version_id` (replacing the
    /// version's previous one), on day `current_day` (started `current_day - 1` days ago
    /// unless `INACTIVE`), never paused so far.
    ///
    /// # Panics
    /// If the version was not put first.
    pub fn put_phased_release(
        &self,
        version_id: &str,
        phased_release_id: &str,
        state: PhasedReleaseState,
        current_day: u32,
    ) {
        let mut stores = self.shared.stores();
        assert!(
            stores.asc_versions.contains_key(version_id),
            "put_phased_release: put the version {version_id:?} first"
        );
        stores.phased.retain(|_, p| p.version_id != version_id);
        let start_date = (state != PhasedReleaseState::Inactive).then(|| {
            let days = i64::from(current_day.saturating_sub(1));
            appstore::format_date(chrono::Utc::now() - chrono::Duration::days(days))
        });
        stores.phased.insert(
            phased_release_id.to_string(),
            PhasedRecord {
                version_id: version_id.to_string(),
                release: PhasedRelease {
                    id: phased_release_id.to_string(),
                    phased_release_state: state,
                    current_day_number: current_day,
                    start_date,
                    total_pause_duration: 0,
                },
                paused_at: None,
            },
        );
    }

    /// The phased release as the store shows it now.
    pub fn phased_release(&self, id: &str) -> Option<PhasedRelease> {
        let stores = self.shared.stores();
        stores.phased.get(id).map(|p| p.release.clone())
    }

    /// The next `times` requests with `method` whose path contains `path_contains` (e.g.
    /// `":commit"`, `"appStoreVersionPhasedReleases"`) get `fault`.
    pub fn inject(&self, method: &str, path_contains: &str, fault: StoreFault, times: usize) {
        self.shared.stores().faults.push(faults::FaultRule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.stores().log.clone()
    }
}

async fn not_found(request: Request) -> Response {
    use axum::response::IntoResponse as _;
    let path = request.uri().path();
    if path.starts_with("/appstore/") {
        appstore::not_found_path(path)
    } else {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": {
                    "code": 404,
                    "message": format!("The requested URL {path} was not found on this server."),
                    "status": "NOT_FOUND"
                }
            })),
        )
            .into_response()
    }
}
