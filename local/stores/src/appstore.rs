//! The App Store Connect calls the rollback makes: find a version, read its phased release,
//! pause it.
//!
//! Paths, as on `https://api.appstoreconnect.apple.com` with `/appstore` in front
//! (<https://developer.apple.com/documentation/appstoreconnectapi>):
//!
//! - `GET /v1/apps/{id}/appStoreVersions` with `filter[versionString]` and
//!   `filter[appStoreState]` (each a comma-separated list), `limit` (1–200, default 50) and
//!   `fields[appStoreVersions]`: a JSON:API document whose `data[]` are `appStoreVersions`
//!   with `attributes.platform`, `versionString` and `appStoreState`. Any other parameter is
//!   refused with 400 `PARAMETER_ERROR.ILLEGAL` "The parameter '…' can not be used with this
//!   request" (Apple's answer to `sort` and, per client notes, to `filter[platform]` on this
//!   relationship); a filter value outside the `AppStoreVersionState` enum with 400
//!   `PARAMETER_ERROR.INVALID` "A parameter has an invalid value".
//! - `GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease`
//!   (<https://developer.apple.com/documentation/appstoreconnectapi/get-v1-appstoreversions-_id_-appstoreversionphasedrelease>):
//!   `data` an `appStoreVersionPhasedReleases` resource with `phasedReleaseState`,
//!   `currentDayNumber`, `startDate` and `totalPauseDuration`, or `null` when the version has
//!   none (released to everyone at once).
//! - `GET|PATCH /v1/appStoreVersionPhasedReleases/{id}`
//!   (<https://developer.apple.com/documentation/appstoreconnectapi/patch-v1-appstoreversionphasedreleases-_id_>,
//!   "Pause or resume a phased release, or immediately release an app"): the body
//!   `{"data": {"type": "appStoreVersionPhasedReleases", "id", "attributes":
//!   {"phasedReleaseState"}}}`. A phased release can be paused only while `ACTIVE`, resumed
//!   (`ACTIVE`) only while `PAUSED`, completed only while `ACTIVE` or `PAUSED`
//!   (<https://developer.apple.com/help/app-store-connect/update-your-app/release-a-version-update-in-phases>);
//!   anything else is 409 `STATE_ERROR` "The request cannot be fulfilled because of the state
//!   of another resource." (Apple's code and title for a state conflict, from its documented
//!   409 example at
//!   <https://developer.apple.com/documentation/appstoreconnectapi/post-v1-appstoreversionexperiments>;
//!   Apple does not document the phased-release case, so the `detail` is local). A value that is not a settable state is 409
//!   `ENTITY_ERROR.ATTRIBUTE.INVALID`, a `type` or `id` that does not match the URL 409
//!   `ENTITY_ERROR` (409 is Apple's status for a body that "conflicts with rules enforced by
//!   the API": <https://developer.apple.com/documentation/appstoreconnectapi/about-the-http-status-code>).
//!   Resuming adds the whole days spent paused to `totalPauseDuration`.
//! - Unknown ids are 404 `NOT_FOUND` "The specified resource does not exist", "There is no
//!   resource of type '…' with id '…'" (Apple's wording).
//!
//! Every request needs `Authorization: Bearer` a JWT made as "Generating Tokens for API
//! Requests" (<https://developer.apple.com/documentation/appstoreconnectapi/generating-tokens-for-api-requests>)
//! says: header `alg` ES256, `kid` a registered key id, `typ` JWT; claims `iss` the key's
//! issuer id, `aud` `appstoreconnect-v1`, `iat`, and `exp` in the future and no more than 20
//! minutes after both now and `iat` ("Tokens that expire more than 20 minutes into the future
//! are not valid"), signed by the key. Anything else is 401 with the body Apple sends
//! (`NOT_AUTHORIZED`, "Authentication credentials are missing or invalid.", "Provide a
//! properly configured and signed bearer token, and make sure that it has not expired. …", as
//! quoted on <https://developer.apple.com/forums/topics/app-store-distribution-and-marketing/app-store-distribution-and-marketing-app-store-connect-api>).
//! No clock skew is allowed on `exp`, as Apple documents none; `iat` may be up to a minute
//! ahead. The wording of the `ENTITY_ERROR` (type or id mismatch), `ENTITY_UNPARSABLE` and
//! `PARAMETER_ERROR.ILLEGAL` titles is local.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::google::{signature_verifies, unverified_claims};
use crate::state::Stores;
use crate::{PhasedRelease, PhasedReleaseState, Shared, now};

/// The `aud` of every App Store Connect token.
pub const AUDIENCE: &str = "appstoreconnect-v1";
/// The longest-lived token Apple accepts for these resources: 20 minutes.
pub const MAX_TOKEN_SECS: i64 = 20 * 60;
/// How far in the future `iat` may be (local: tokens are made on the same clock here).
pub const IAT_SKEW_SECS: i64 = 60;

/// `AppStoreVersionState`
/// (<https://developer.apple.com/documentation/appstoreconnectapi/appstoreversionstate>).
pub const APP_STORE_VERSION_STATES: [&str; 20] = [
    "ACCEPTED",
    "DEVELOPER_REMOVED_FROM_SALE",
    "DEVELOPER_REJECTED",
    "IN_REVIEW",
    "INVALID_BINARY",
    "METADATA_REJECTED",
    "PENDING_APPLE_RELEASE",
    "PENDING_CONTRACT",
    "PENDING_DEVELOPER_RELEASE",
    "PREPARE_FOR_SUBMISSION",
    "PREORDER_READY_FOR_SALE",
    "PROCESSING_FOR_APP_STORE",
    "READY_FOR_REVIEW",
    "READY_FOR_SALE",
    "REJECTED",
    "REMOVED_FROM_SALE",
    "WAITING_FOR_EXPORT_COMPLIANCE",
    "WAITING_FOR_REVIEW",
    "REPLACED_WITH_NEW_VERSION",
    "NOT_APPLICABLE",
];

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/appstore/v1/apps/{id}/appStoreVersions",
            get(list_versions),
        )
        .route(
            "/appstore/v1/appStoreVersions/{id}/appStoreVersionPhasedRelease",
            get(version_phased_release),
        )
        .route(
            "/appstore/v1/appStoreVersionPhasedReleases/{id}",
            get(get_phased_release).patch(patch_phased_release),
        )
}

/// Apple's dates: RFC 3339 in UTC, whole seconds.
pub(crate) fn format_date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A JSON:API error document with one error.
fn error(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    source: Option<Value>,
) -> Response {
    let mut error = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status": status.as_u16().to_string(),
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(source) = source {
        error["source"] = source;
    }
    (status, axum::Json(json!({"errors": [error]}))).into_response()
}

fn not_found(resource_type: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The specified resource does not exist",
        &format!("There is no resource of type '{resource_type}' with id '{id}'"),
        None,
    )
}

/// The answer to a path under `/appstore` that names no resource.
pub(crate) fn not_found_path(_path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The specified resource does not exist",
        "The path provided does not match a defined resource type.",
        None,
    )
}

fn not_authorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({
            "errors": [{
                "status": "401",
                "code": "NOT_AUTHORIZED",
                "title": "Authentication credentials are missing or invalid.",
                "detail": "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens"
            }]
        })),
    )
        .into_response()
}

/// Whether `headers` carry a token Apple would accept (see the module docs).
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some("JWT") {
        return false;
    }
    let Some((issuer, key)) = header.kid.as_ref().and_then(|kid| {
        let stores = shared.stores();
        let key = stores.app_store_keys.get(kid)?;
        Some((key.issuer_id.clone(), key.key.clone()))
    }) else {
        return false;
    };
    if !signature_verifies(token, Algorithm::ES256, &key) {
        return false;
    }
    let Some(claims) = unverified_claims(token) else {
        return false;
    };
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_i64),
        claims.get("exp").and_then(Value::as_i64),
    ) else {
        return false;
    };
    let now = now();
    claims.get("iss").and_then(Value::as_str) == Some(issuer.as_str())
        && claims.get("aud").and_then(Value::as_str) == Some(AUDIENCE)
        && exp > now
        && exp > iat
        && exp - now <= MAX_TOKEN_SECS
        && exp - iat <= MAX_TOKEN_SECS
        && iat <= now + IAT_SKEW_SECS
}

fn version_resource(base: &str, id: &str, stores: &Stores) -> Value {
    let version = &stores.asc_versions[id];
    json!({
        "type": "appStoreVersions",
        "id": id,
        "attributes": {
            "platform": "IOS",
            "versionString": version.version_string,
            "appStoreState": version.state,
        },
        "links": {"self": format!("{base}/appstore/v1/appStoreVersions/{id}")},
    })
}

fn phased_resource(base: &str, release: &PhasedRelease) -> Value {
    json!({
        "type": "appStoreVersionPhasedReleases",
        "id": release.id,
        "attributes": {
            "phasedReleaseState": release.phased_release_state,
            "startDate": release.start_date,
            "totalPauseDuration": release.total_pause_duration,
            "currentDayNumber": release.current_day_number,
        },
        "links": {"self": format!("{base}/appstore/v1/appStoreVersionPhasedReleases/{}", release.id)},
    })
}

/// A comma-separated filter: its values, or Apple's refusal of an empty one.
fn filter_values(name: &str, value: &str) -> Result<Vec<String>, Response> {
    let values: Vec<String> = value.split(',').map(str::to_string).collect();
    if values.iter().any(String::is_empty) {
        return Err(invalid_parameter(name, value));
    }
    Ok(values)
}

fn invalid_parameter(name: &str, value: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "PARAMETER_ERROR.INVALID",
        "A parameter has an invalid value",
        &format!("'{value}' is not a valid value for the parameter '{name}'"),
        Some(json!({"parameter": name})),
    )
}

async fn list_versions(
    State(shared): State<Arc<Shared>>,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return not_authorized();
    }
    let mut version_strings = None;
    let mut states = None;
    let mut limit = DEFAULT_LIMIT;
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "filter[versionString]" => match filter_values(&name, &value) {
                Ok(values) => version_strings = Some(values),
                Err(refusal) => return refusal,
            },
            "filter[appStoreState]" => match filter_values(&name, &value) {
                Ok(values) => {
                    if let Some(bad) = values
                        .iter()
                        .find(|v| !APP_STORE_VERSION_STATES.contains(&v.as_str()))
                    {
                        return invalid_parameter(&name, bad);
                    }
                    states = Some(values);
                }
                Err(refusal) => return refusal,
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => return invalid_parameter(&name, &value),
            },
            // Sparse fieldsets are accepted and ignored: every field is always returned.
            "fields[appStoreVersions]" => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "PARAMETER_ERROR.ILLEGAL",
                    "A parameter is not allowed for this request",
                    &format!("The parameter '{other}' can not be used with this request"),
                    Some(json!({"parameter": other})),
                );
            }
        }
    }
    let stores = shared.stores();
    let Some(ids) = stores.asc_apps.get(&app_id) else {
        return not_found("apps", &app_id);
    };
    let matching: Vec<&String> = ids
        .iter()
        .filter(|id| {
            let version = &stores.asc_versions[id.as_str()];
            version_strings
                .as_ref()
                .is_none_or(|v| v.contains(&version.version_string))
                && states.as_ref().is_none_or(|s| s.contains(&version.state))
        })
        .collect();
    let data: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|id| version_resource(&shared.base, id, &stores))
        .collect();
    let self_link = match &query {
        Some(q) => format!(
            "{}/appstore/v1/apps/{app_id}/appStoreVersions?{q}",
            shared.base
        ),
        None => format!("{}/appstore/v1/apps/{app_id}/appStoreVersions", shared.base),
    };
    axum::Json(json!({
        "data": data,
        "links": {"self": self_link},
        "meta": {"paging": {"total": matching.len(), "limit": limit}},
    }))
    .into_response()
}

async fn version_phased_release(
    State(shared): State<Arc<Shared>>,
    Path(version_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return not_authorized();
    }
    let stores = shared.stores();
    if !stores.asc_versions.contains_key(&version_id) {
        return not_found("appStoreVersions", &version_id);
    }
    let data = stores
        .phased
        .values()
        .find(|p| p.version_id == version_id)
        .map_or(Value::Null, |p| phased_resource(&shared.base, &p.release));
    axum::Json(json!({
        "data": data,
        "links": {"self": format!(
            "{}/appstore/v1/appStoreVersions/{version_id}/appStoreVersionPhasedRelease",
            shared.base
        )},
    }))
    .into_response()
}

async fn get_phased_release(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return not_authorized();
    }
    let stores = shared.stores();
    match stores.phased.get(&id) {
        Some(record) => phased_document(&shared.base, &record.release),
        None => not_found("appStoreVersionPhasedReleases", &id),
    }
}

fn phased_document(base: &str, release: &PhasedRelease) -> Response {
    axum::Json(json!({
        "data": phased_resource(base, release),
        "links": {"self": format!("{base}/appstore/v1/appStoreVersionPhasedReleases/{}", release.id)},
    }))
    .into_response()
}

fn entity_error(code: &str, title: &str, detail: &str, pointer: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        code,
        title,
        detail,
        Some(json!({"pointer": pointer})),
    )
}

async fn patch_phased_release(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&shared, &headers) {
        return not_authorized();
    }
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ENTITY_UNPARSABLE",
            "The request entity is not valid JSON",
            "The request body could not be parsed as a JSON:API document.",
            None,
        );
    };
    let mut stores = shared.stores();
    let Some(record) = stores.phased.get_mut(&id) else {
        return not_found("appStoreVersionPhasedReleases", &id);
    };
    let target = match requested_state(&document["data"], &id) {
        Ok(Some(target)) => target,
        // Nothing to change: the resource as it is.
        Ok(None) => return phased_document(&shared.base, &record.release),
        Err(refusal) => return refusal,
    };
    let current = record.release.phased_release_state;
    if !transition_allowed(current, target) {
        return error(
            StatusCode::CONFLICT,
            "STATE_ERROR",
            "The request cannot be fulfilled because of the state of another resource.",
            &format!(
                "The phased release is {}; it cannot be changed to {}.",
                current.as_str(),
                target.as_str()
            ),
            Some(json!({"pointer": "/data/attributes/phasedReleaseState"})),
        );
    }
    let now = now();
    if let Some(since) = record.paused_at.take() {
        let days = (now - since).max(0) / 86_400;
        record.release.total_pause_duration += u32::try_from(days).unwrap_or(u32::MAX);
    }
    if target == PhasedReleaseState::Paused {
        record.paused_at = Some(now);
    }
    record.release.phased_release_state = target;
    phased_document(&shared.base, &record.release)
}

/// The state a PATCH document asks for (`None`: it asks for no change), or Apple's refusal of
/// an entity of another type or id or an unknown state.
fn requested_state(data: &Value, id: &str) -> Result<Option<PhasedReleaseState>, Response> {
    if data["type"] != "appStoreVersionPhasedReleases" {
        return Err(entity_error(
            "ENTITY_ERROR",
            "The provided entity is invalid",
            "The type of the provided entity must be 'appStoreVersionPhasedReleases'.",
            "/data/type",
        ));
    }
    if data["id"] != id {
        return Err(entity_error(
            "ENTITY_ERROR",
            "The provided entity is invalid",
            &format!("The id of the provided entity must be '{id}', the id in the URL."),
            "/data/id",
        ));
    }
    let requested = &data["attributes"]["phasedReleaseState"];
    match requested.as_str() {
        None if requested.is_null() => Ok(None),
        Some("ACTIVE") => Ok(Some(PhasedReleaseState::Active)),
        Some("PAUSED") => Ok(Some(PhasedReleaseState::Paused)),
        Some("COMPLETE") => Ok(Some(PhasedReleaseState::Complete)),
        _ => Err(entity_error(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "An attribute in the provided entity has invalid value",
            &format!(
                "An invalid value {requested} was provided for the parameter 'phasedReleaseState'."
            ),
            "/data/attributes/phasedReleaseState",
        )),
    }
}

/// Pause only what is active, resume only what is paused, complete what is either.
fn transition_allowed(current: PhasedReleaseState, target: PhasedReleaseState) -> bool {
    match target {
        PhasedReleaseState::Paused => current == PhasedReleaseState::Active,
        PhasedReleaseState::Active => current == PhasedReleaseState::Paused,
        PhasedReleaseState::Complete => matches!(
            current,
            PhasedReleaseState::Active | PhasedReleaseState::Paused
        ),
        PhasedReleaseState::Inactive => false,
    }
}
