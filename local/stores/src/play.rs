//! The Android Publisher v3 calls the rollback makes: edits and tracks.
//!
//! Paths, as on `https://androidpublisher.googleapis.com`
//! (<https://developers.google.com/android-publisher/api-ref/rest/v3/edits>):
//!
//! - `POST /androidpublisher/v3/applications/{packageName}/edits` (edits.insert) →
//!   `{"id", "expiryTimeSeconds"}`;
//! - `GET|DELETE …/edits/{editId}` (edits.get, edits.delete: 204, empty body);
//! - `POST …/edits/{editId}:commit?changesInReviewBehavior=…` (edits.commit) and
//!   `POST …/edits/{editId}:validate` (edits.validate) → the AppEdit;
//! - `GET …/edits/{editId}/tracks` (edits.tracks.list) and
//!   `GET|PUT …/edits/{editId}/tracks/{track}` (edits.tracks.get, edits.tracks.update; the
//!   body a `Track`: `{"track", "releases": [{"name", "versionCodes", "status",
//!   "userFraction", "releaseNotes"}]}`).
//!
//! Every call needs a bearer token from [`crate::google`] with the androidpublisher scope.
//! The rules, and where they come from:
//!
//! - **An unknown package** is 404 `applicationNotFound` "No application was found for the
//!   given package name." (the answer Google sends, as recorded in public client tests).
//! - **Edits** hold changes until committed
//!   (<https://developers.google.com/android-publisher/edits>): an edit starts as a copy of
//!   the live app, a track update changes the edit only, and only a commit makes it live
//!   ([`crate::StoreServer::play_track`] shows the committed state). An edit expires at its
//!   `expiryTimeSeconds` (an hour here; [`crate::StoreServer::expire_edits`] ends them early).
//! - **Concurrency** (<https://developers.google.com/android-publisher/concurrency-considerations>):
//!   "Creating a new edit for an application invalidates any active edits for that application
//!   created by the same user", and when several users have edits open, "the first commit
//!   invalidates the others". Using an invalidated or expired edit is refused with 400 "This
//!   edit has expired, please create a new Edit." (Play's answer to an edit invalidated by a
//!   concurrent one, as reported by publishing tools); a deleted edit with 400 "This Edit has
//!   been deleted." and a committed one with 400 "This edit has already been successfully
//!   committed, please create a new Edit." (both Play's wording:
//!   <https://github.com/Triple-T/gradle-play-publisher/issues/998>,
//!   <https://github.com/r0adkll/upload-google-play/issues/48>). An edit id this server never
//!   issued is 404 (local wording).
//! - **Changes in review** (<https://developers.google.com/android-publisher/api-ref/rest/v3/edits/commit>):
//!   `changesInReviewBehavior=ERROR_IF_IN_REVIEW` fails the commit, when the app has changes
//!   in review ([`crate::StoreServer::set_in_review`]), with the documented sample: 400
//!   `FAILED_PRECONDITION` "You already have changes in review. …" and an `ErrorInfo` detail
//!   of reason `CHANGES_ALREADY_IN_REVIEW`; the edit stays open ("this won't invalidate the
//!   edit"). Unset, `CHANGES_IN_REVIEW_BEHAVIOR_TYPE_UNSPECIFIED` or
//!   `CANCEL_IN_REVIEW_AND_SUBMIT` cancel the review and commit; each cancellation is counted
//!   ([`crate::StoreServer::reviews_cancelled`]) so that tests can assert it never happens.
//!   `changesNotSentForReview=true` is refused with Play's "Changes are sent for review
//!   automatically. The query parameter changesNotSentForReview must not be set.", as Play
//!   answers for an app whose last review was not rejected
//!   (<https://github.com/tramlinehq/store-quirks/issues/6>).
//! - **Halting** (the `Status` enum of the Track resource,
//!   <https://developers.google.com/android-publisher/api-ref/rest/v3/edits.tracks#Status>:
//!   a halted release's APKs are no longer served): a staged rollout (`inProgress`) is halted
//!   keeping its version codes and fraction; a fully rolled-out (`completed`) release is halted
//!   without a fraction, except the first one on its track and any on `internal`, and the
//!   track's previous fully rolled-out release then is live again (Play Console Help,
//!   "Halting a fully rolled-out release": "a previously live, fully rolled-out version of
//!   your app will automatically take its place"; "You cannot halt your first release on a
//!   track"). At commit, a `halted` release that matches none of these (or the same release
//!   already halted) is refused with 400
//!   `releaseToHaltNotFound` "Cannot halt release, no matching in progress release found."
//!   (Play's answer at commit: <https://github.com/Triple-T/gradle-play-publisher/issues/547>,
//!   <https://github.com/fastlane/fastlane/issues/13588>). Requiring the
//!   same fraction is stricter than anything Play documents: a halt must not change it.
//! - **Release shape**, checked at the track update: `inProgress` needs a `userFraction`
//!   strictly between 0 and 1, `halted` one too unless it halts a fully rolled-out release
//!   ("Rollout fraction must be greater than 0 and less than 1": Play's wording, as quoted by
//!   publishing tools, e.g. <https://github.com/fastlane/fastlane/pull/29594>); other statuses take none, and every release but a draft names at
//!   least one positive int64 version code (local wording). The body's `track`, when given,
//!   must name the track of the URL (local wording), and unknown JSON fields are refused, as
//!   Google's parser does ("Invalid JSON payload received. …").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::json;

use crate::google::{ANDROID_PUBLISHER_SCOPE, api_error, authorize};
use crate::state::{Edit, EditStatus, PlayApp, Stores};
use crate::{PlayRelease, ReleaseStatus, Shared, now};

/// How long an edit stays usable (local choice: Play does not document the figure).
pub const EDIT_TTL_SECS: i64 = 3600;

const APPLICATIONS: &str = "/androidpublisher/v3/applications";

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{APPLICATIONS}/{{package}}/edits"), post(insert))
        .route(
            &format!("{APPLICATIONS}/{{package}}/edits/{{edit}}"),
            get(get_edit).post(edit_action).delete(delete_edit),
        )
        .route(
            &format!("{APPLICATIONS}/{{package}}/edits/{{edit}}/tracks"),
            get(list_tracks),
        )
        .route(
            &format!("{APPLICATIONS}/{{package}}/edits/{{edit}}/tracks/{{track}}"),
            get(get_track).put(update_track),
        )
}

fn bad_request(reason: &str, message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "global", reason, message)
}

fn application_not_found() -> Response {
    let message = "No application was found for the given package name.";
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": {
                "code": 404,
                "message": message,
                "errors": [{
                    "message": message,
                    "domain": "global",
                    "reason": "applicationNotFound",
                    "location": "packageName",
                    "locationType": "parameter"
                }],
                "status": "NOT_FOUND"
            }
        })),
    )
        .into_response()
}

fn app_edit(id: &str, edit: &Edit) -> Response {
    axum::Json(json!({"id": id, "expiryTimeSeconds": edit.expires_at.to_string()})).into_response()
}

/// The bearer check, then the app: the caller's account, or the refusal.
fn authorize_app(shared: &Shared, headers: &HeaderMap, package: &str) -> Result<String, Response> {
    let account = authorize(shared, headers, ANDROID_PUBLISHER_SCOPE)?;
    if !shared.stores().play_apps.contains_key(package) {
        return Err(application_not_found());
    }
    Ok(account)
}

/// The usable edit `id` of `package`, or Play's refusal.
fn open_edit<'a>(
    stores: &'a mut Stores,
    package: &str,
    id: &str,
) -> Result<&'a mut Edit, Response> {
    let edit = stores
        .edits
        .get_mut(id)
        .filter(|e| e.package == package)
        .ok_or_else(|| {
            api_error(
                StatusCode::NOT_FOUND,
                "global",
                "notFound",
                &format!("No edit with id {id} exists for this application."),
            )
        })?;
    match edit.status {
        EditStatus::Deleted => Err(bad_request("badRequest", "This Edit has been deleted.")),
        EditStatus::Committed => Err(bad_request(
            "badRequest",
            "This edit has already been successfully committed, please create a new Edit.",
        )),
        EditStatus::Invalidated => Err(expired()),
        EditStatus::Open if edit.expires_at <= now() => Err(expired()),
        EditStatus::Open => Ok(edit),
    }
}

fn expired() -> Response {
    bad_request(
        "badRequest",
        "This edit has expired, please create a new Edit.",
    )
}

fn new_edit_id() -> String {
    // Play's edit ids are 20-digit decimal numbers.
    rand::thread_rng()
        .gen_range(10_000_000_000_000_000_000u128..100_000_000_000_000_000_000u128)
        .to_string()
}

async fn insert(
    State(shared): State<Arc<Shared>>,
    Path(package): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let owner = match authorize_app(&shared, &headers, &package) {
        Ok(owner) => owner,
        Err(refusal) => return refusal,
    };
    // The body is an optional AppEdit whose fields are output only.
    if !body.iter().all(u8::is_ascii_whitespace)
        && let Err(e) = serde_json::from_slice::<AppEditBody>(&body)
    {
        return bad_request("invalid", &format!("Invalid JSON payload received. {e}"));
    }
    let mut stores = shared.stores();
    // A new edit invalidates the same user's open edits of the app.
    for edit in stores.edits.values_mut() {
        if edit.package == package && edit.owner == owner && edit.status == EditStatus::Open {
            edit.status = EditStatus::Invalidated;
        }
    }
    let tracks = stores.play_apps[&package].tracks.clone();
    let id = new_edit_id();
    let edit = Edit {
        package,
        owner,
        expires_at: now() + EDIT_TTL_SECS,
        tracks,
        modified: BTreeSet::new(),
        status: EditStatus::Open,
    };
    let response = app_edit(&id, &edit);
    stores.edits.insert(id, edit);
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Parsed to refuse what Google would refuse; the fields are output only.
struct AppEditBody {
    id: Option<String>,
    #[serde(rename = "expiryTimeSeconds")]
    expiry_time_seconds: Option<String>,
}

async fn get_edit(
    State(shared): State<Arc<Shared>>,
    Path((package, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let mut stores = shared.stores();
    match open_edit(&mut stores, &package, &id) {
        Ok(edit) => app_edit(&id, edit),
        Err(refusal) => refusal,
    }
}

async fn delete_edit(
    State(shared): State<Arc<Shared>>,
    Path((package, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let mut stores = shared.stores();
    match open_edit(&mut stores, &package, &id) {
        Ok(edit) => {
            edit.status = EditStatus::Deleted;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal,
    }
}

/// `POST …/edits/{editId}:commit` and `:validate` (one path segment, as gRPC transcoding
/// writes custom methods).
async fn edit_action(
    State(shared): State<Arc<Shared>>,
    Path((package, segment)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if let Some(id) = segment.strip_suffix(":commit") {
        commit(&shared, &package, id, &query)
    } else if let Some(id) = segment.strip_suffix(":validate") {
        let mut stores = shared.stores();
        let (tracks, modified, expires_at) = match open_edit(&mut stores, &package, id) {
            Ok(edit) => (edit.tracks.clone(), edit.modified.clone(), edit.expires_at),
            Err(refusal) => return refusal,
        };
        if let Err(refusal) = check_halts(&stores.play_apps[&package], &tracks, &modified) {
            return refusal;
        }
        axum::Json(json!({"id": id, "expiryTimeSeconds": expires_at.to_string()})).into_response()
    } else {
        api_error(
            StatusCode::NOT_FOUND,
            "global",
            "notFound",
            &format!("The requested URL was not found: POST edits/{segment}"),
        )
    }
}

fn commit(shared: &Shared, package: &str, id: &str, query: &HashMap<String, String>) -> Response {
    let error_if_in_review = match query.get("changesInReviewBehavior").map(String::as_str) {
        None
        | Some("CHANGES_IN_REVIEW_BEHAVIOR_TYPE_UNSPECIFIED")
        | Some("CANCEL_IN_REVIEW_AND_SUBMIT") => false,
        Some("ERROR_IF_IN_REVIEW") => true,
        Some(other) => {
            return bad_request(
                "invalid",
                &format!(
                    "Invalid value at 'changes_in_review_behavior' (type.googleapis.com/google.play.publishing.v3.CommitEditRequest.ChangesInReviewBehaviorType), \"{other}\""
                ),
            );
        }
    };
    let mut stores = shared.stores();
    let (tracks, modified) = match open_edit(&mut stores, package, id) {
        Ok(edit) => (edit.tracks.clone(), edit.modified.clone()),
        Err(refusal) => return refusal,
    };
    match query.get("changesNotSentForReview").map(String::as_str) {
        None | Some("false") => {}
        Some(_) => {
            return bad_request(
                "badRequest",
                "Changes are sent for review automatically. The query parameter changesNotSentForReview must not be set.",
            );
        }
    }
    let app = stores
        .play_apps
        .get_mut(package)
        .expect("checked by authorize_app");
    if let Err(refusal) = check_halts(app, &tracks, &modified) {
        return refusal;
    }
    if app.in_review {
        if error_if_in_review {
            return changes_already_in_review();
        }
        app.in_review = false;
        app.reviews_cancelled += 1;
    }
    for track in &modified {
        let committed = committed_track(app, track, &tracks[track]);
        app.tracks.insert(track.clone(), committed);
    }
    app.commits += 1;
    // The first commit invalidates every other open edit of the app.
    for (other_id, edit) in stores.edits.iter_mut() {
        if edit.package == package && other_id != id && edit.status == EditStatus::Open {
            edit.status = EditStatus::Invalidated;
        }
    }
    let edit = stores.edits.get_mut(id).expect("found by open_edit");
    edit.status = EditStatus::Committed;
    app_edit(id, edit)
}

/// The documented sample of edits.commit for `ERROR_IF_IN_REVIEW`.
fn changes_already_in_review() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": {
                "code": 400,
                "message": "You already have changes in review. Cancel this review or wait for it to complete before you try again. See https://developers.google.com/android-publisher/api-ref/rest/v3/applications.tracks.releases",
                "status": "FAILED_PRECONDITION",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "CHANGES_ALREADY_IN_REVIEW",
                    "domain": "googleapis.com"
                }]
            }
        })),
    )
        .into_response()
}

fn same_codes(a: &PlayRelease, b: &PlayRelease) -> bool {
    let set = |r: &PlayRelease| -> BTreeSet<i64> {
        r.version_codes
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    set(a) == set(b)
}

/// Every `halted` release of the updated tracks halts a matching staged rollout of the live
/// track (or is that release already halted).
fn check_halts(
    app: &PlayApp,
    tracks: &BTreeMap<String, Vec<PlayRelease>>,
    modified: &BTreeSet<String>,
) -> Result<(), Response> {
    for name in modified {
        let live = app.tracks.get(name).map(Vec::as_slice).unwrap_or_default();
        for release in tracks[name]
            .iter()
            .filter(|r| r.status == ReleaseStatus::Halted)
        {
            let matched = live.iter().any(|l| {
                matches!(l.status, ReleaseStatus::InProgress | ReleaseStatus::Halted)
                    && same_codes(l, release)
                    && l.user_fraction == release.user_fraction
            });
            if !matched && halts_completed(app, name, release).is_none() {
                return Err(api_error(
                    StatusCode::BAD_REQUEST,
                    "androidpublisher",
                    "releaseToHaltNotFound",
                    "Cannot halt release, no matching in progress release found.",
                ));
            }
        }
    }
    Ok(())
}

/// For a `halted` release without a fraction that is the live track's fully rolled-out
/// release: the release Play serves instead (the track's previous fully rolled-out one).
/// `None` when there is none (the track's first release) or the track is `internal`.
fn halts_completed(app: &PlayApp, track: &str, halted: &PlayRelease) -> Option<PlayRelease> {
    if track == "internal" || halted.user_fraction.is_some() {
        return None;
    }
    let live = app.tracks.get(track)?;
    live.iter()
        .find(|l| l.status == ReleaseStatus::Completed && same_codes(l, halted))?;
    let history = app.completed_before.get(track)?;
    let at = history.iter().position(|h| same_codes(h, halted))?;
    history[..at].last().cloned()
}

/// The track as committed: a halted fully rolled-out release brings the previous one back.
fn committed_track(app: &PlayApp, track: &str, releases: &[PlayRelease]) -> Vec<PlayRelease> {
    let mut out = Vec::new();
    for release in releases {
        if release.status == ReleaseStatus::Halted
            && let Some(previous) = halts_completed(app, track, release)
            && !releases.iter().any(|r| same_codes(r, &previous))
        {
            out.push(previous);
        }
        out.push(release.clone());
    }
    out
}

fn track_json(name: &str, releases: &[PlayRelease]) -> serde_json::Value {
    json!({"track": name, "releases": releases})
}

fn track_not_found(name: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "global",
        "notFound",
        &format!("Track not found: {name}"),
    )
}

async fn list_tracks(
    State(shared): State<Arc<Shared>>,
    Path((package, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let mut stores = shared.stores();
    match open_edit(&mut stores, &package, &id) {
        Ok(edit) => {
            let tracks: Vec<_> = edit
                .tracks
                .iter()
                .map(|(name, releases)| track_json(name, releases))
                .collect();
            axum::Json(json!({"kind": "androidpublisher#tracksListResponse", "tracks": tracks}))
                .into_response()
        }
        Err(refusal) => refusal,
    }
}

async fn get_track(
    State(shared): State<Arc<Shared>>,
    Path((package, id, track)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let mut stores = shared.stores();
    match open_edit(&mut stores, &package, &id) {
        Ok(edit) => match edit.tracks.get(&track) {
            Some(releases) => axum::Json(track_json(&track, releases)).into_response(),
            None => track_not_found(&track),
        },
        Err(refusal) => refusal,
    }
}

/// The request body of edits.tracks.update.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackBody {
    track: Option<String>,
    #[serde(default)]
    releases: Vec<PlayRelease>,
}

/// The shape rules of a release (see the module docs).
fn check_release(release: &PlayRelease) -> Result<(), Response> {
    match release.status {
        ReleaseStatus::InProgress | ReleaseStatus::Halted => match release.user_fraction {
            // A halted fully rolled-out release has none; whether the release is one is
            // checked at commit, against the live track.
            None if release.status == ReleaseStatus::Halted => {}
            None => {
                return Err(bad_request(
                    "badRequest",
                    "Rollout fraction must be greater than 0 and less than 1",
                ));
            }
            Some(f) if !(f > 0.0 && f < 1.0) => {
                return Err(bad_request(
                    "badRequest",
                    "Rollout fraction must be greater than 0 and less than 1",
                ));
            }
            Some(_) => {}
        },
        ReleaseStatus::Completed | ReleaseStatus::Draft => {
            if release.user_fraction.is_some() {
                return Err(bad_request(
                    "badRequest",
                    "userFraction can only be set on inProgress and halted releases.",
                ));
            }
        }
    }
    for code in &release.version_codes {
        if !code.parse::<i64>().is_ok_and(|c| c > 0) {
            return Err(bad_request(
                "invalidValue",
                &format!("Invalid version code: {code:?}"),
            ));
        }
    }
    if release.version_codes.is_empty() && release.status != ReleaseStatus::Draft {
        return Err(bad_request(
            "badRequest",
            "A release that is not a draft must name at least one version code.",
        ));
    }
    Ok(())
}

async fn update_track(
    State(shared): State<Arc<Shared>>,
    Path((package, id, track)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = authorize_app(&shared, &headers, &package) {
        return refusal;
    }
    let body: TrackBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return bad_request("invalid", &format!("Invalid JSON payload received. {e}"));
        }
    };
    if body.track.as_ref().is_some_and(|t| *t != track) {
        return bad_request(
            "badRequest",
            "The track in the request body does not match the track in the URL.",
        );
    }
    for release in &body.releases {
        if let Err(refusal) = check_release(release) {
            return refusal;
        }
    }
    let mut stores = shared.stores();
    let edit = match open_edit(&mut stores, &package, &id) {
        Ok(edit) => edit,
        Err(refusal) => return refusal,
    };
    edit.tracks.insert(track.clone(), body.releases.clone());
    edit.modified.insert(track.clone());
    axum::Json(track_json(&track, &body.releases)).into_response()
}
