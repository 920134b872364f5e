//! App Store Connect: find the version, read its phased release, pause it; and the tokens
//! Apple refuses.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use rollback_stores::{PhasedRelease, PhasedReleaseState, StoreServer, test_keys};
use serde_json::{Value, json};

const VERSION_ID: &str = "356bd5b7-219c-4b86-a958-a3ac75064ec7";
const PHASED_ID: &str = "a6d1c1c6-8a0c-4a3e-9f0e-5b8f3c1d2e4f";

async fn live_release() -> (StoreServer, String) {
    let (server, p8) = app_store_server().await;
    server.put_app_store_version(APP_ID, "old-version", "2.0.0", "REPLACED_WITH_NEW_VERSION");
    server.put_app_store_version(APP_ID, VERSION_ID, "2.1.0", "READY_FOR_SALE");
    server.put_app_store_version(APP_ID, "next-version", "2.2.0", "PREPARE_FOR_SUBMISSION");
    server.put_phased_release(VERSION_ID, PHASED_ID, PhasedReleaseState::Active, 3);
    (server, p8)
}

fn pause_body(id: &str, state: &str) -> Value {
    json!({"data": {"type": "appStoreVersionPhasedReleases", "id": id, "attributes": {"phasedReleaseState": state}}})
}

fn first_error(body: &Value) -> (&str, &str, &str) {
    let error = &body["errors"][0];
    (
        error["status"].as_str().unwrap_or_default(),
        error["code"].as_str().unwrap_or_default(),
        error["title"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn find_the_version_read_its_phased_release_and_pause_it() {
    let (server, p8) = live_release().await;
    let token = asc_token(&p8, json!({}));

    let (status, versions) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/apps/{APP_ID}/appStoreVersions?filter[versionString]=2.1.0&filter[appStoreState]=READY_FOR_SALE"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let data = versions["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{versions}");
    assert_eq!(data[0]["type"], "appStoreVersions");
    assert_eq!(data[0]["id"], VERSION_ID);
    assert_eq!(data[0]["attributes"]["versionString"], "2.1.0");
    assert_eq!(data[0]["attributes"]["appStoreState"], "READY_FOR_SALE");
    assert_eq!(versions["meta"]["paging"]["total"], 1);

    // Comma-separated states; no filter lists all three.
    let (_, both) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/apps/{APP_ID}/appStoreVersions?filter[appStoreState]=READY_FOR_SALE,PREPARE_FOR_SUBMISSION"),
        None,
    )
    .await;
    let ids: Vec<&str> = both["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [VERSION_ID, "next-version"]);
    let (_, all) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/apps/{APP_ID}/appStoreVersions"),
        None,
    )
    .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);

    let (status, phased) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/appStoreVersions/{VERSION_ID}/appStoreVersionPhasedRelease"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{phased}");
    assert_eq!(phased["data"]["type"], "appStoreVersionPhasedReleases");
    assert_eq!(phased["data"]["id"], PHASED_ID);
    let attributes = &phased["data"]["attributes"];
    assert_eq!(attributes["phasedReleaseState"], "ACTIVE");
    assert_eq!(attributes["currentDayNumber"], 3);
    assert_eq!(attributes["totalPauseDuration"], 0);
    let start = attributes["startDate"].as_str().unwrap();
    let started = chrono::DateTime::parse_from_rfc3339(start).unwrap();
    assert!(
        (now() - started.timestamp() - 2 * 86_400).abs() <= 5,
        "{start}"
    );

    let (status, paused) = asc(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/v1/appStoreVersionPhasedReleases/{PHASED_ID}"),
        Some(pause_body(PHASED_ID, "PAUSED")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["data"]["attributes"]["phasedReleaseState"], "PAUSED");
    assert_eq!(paused["data"]["attributes"]["currentDayNumber"], 3);
    assert_eq!(
        server.phased_release(PHASED_ID).unwrap(),
        PhasedRelease {
            id: PHASED_ID.into(),
            phased_release_state: PhasedReleaseState::Paused,
            current_day_number: 3,
            start_date: Some(start.to_string()),
            total_pause_duration: 0,
        }
    );

    // Pausing again is a state conflict, and changes nothing.
    let (status, body) = asc(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/v1/appStoreVersionPhasedReleases/{PHASED_ID}"),
        Some(pause_body(PHASED_ID, "PAUSED")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        first_error(&body),
        (
            "409",
            "STATE_ERROR",
            "The request cannot be fulfilled because of the state of another resource."
        )
    );
    assert_eq!(
        server
            .phased_release(PHASED_ID)
            .unwrap()
            .phased_release_state,
        PhasedReleaseState::Paused
    );

    // Resume, then complete; a completed release cannot be paused.
    for (state, code) in [
        ("ACTIVE", 200),
        ("COMPLETE", 200),
        ("PAUSED", 409),
        ("ACTIVE", 409),
    ] {
        let (status, body) = asc(
            &server,
            Some(&token),
            Method::PATCH,
            &format!("/v1/appStoreVersionPhasedReleases/{PHASED_ID}"),
            Some(pause_body(PHASED_ID, state)),
        )
        .await;
        assert_eq!(status.as_u16(), code, "{state}: {body}");
    }
    assert_eq!(
        server
            .phased_release(PHASED_ID)
            .unwrap()
            .phased_release_state,
        PhasedReleaseState::Complete
    );
}

#[tokio::test]
async fn only_an_active_phased_release_can_be_paused() {
    let (server, p8) = live_release().await;
    let token = asc_token(&p8, json!({}));
    for state in [PhasedReleaseState::Inactive, PhasedReleaseState::Complete] {
        server.put_phased_release(VERSION_ID, PHASED_ID, state, 1);
        let (status, body) = asc(
            &server,
            Some(&token),
            Method::PATCH,
            &format!("/v1/appStoreVersionPhasedReleases/{PHASED_ID}"),
            Some(pause_body(PHASED_ID, "PAUSED")),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{state:?}");
        assert_eq!(first_error(&body).1, "STATE_ERROR");
        assert_eq!(
            server
                .phased_release(PHASED_ID)
                .unwrap()
                .phased_release_state,
            state
        );
    }

    server.put_phased_release(VERSION_ID, PHASED_ID, PhasedReleaseState::Active, 1);
    let patch = |body: Value| {
        let server = &server;
        let token = token.clone();
        async move {
            asc(
                server,
                Some(&token),
                Method::PATCH,
                &format!("/v1/appStoreVersionPhasedReleases/{PHASED_ID}"),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = patch(pause_body(PHASED_ID, "STOPPED")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(first_error(&body).1, "ENTITY_ERROR.ATTRIBUTE.INVALID");
    assert_eq!(
        body["errors"][0]["source"]["pointer"],
        "/data/attributes/phasedReleaseState"
    );
    let (status, body) = patch(pause_body("another-id", "PAUSED")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(first_error(&body).1, "ENTITY_ERROR");
    let (status, _) = patch(json!({"data": {"type": "appStoreVersions", "id": PHASED_ID, "attributes": {"phasedReleaseState": "PAUSED"}}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        server
            .phased_release(PHASED_ID)
            .unwrap()
            .phased_release_state,
        PhasedReleaseState::Active
    );
}

#[tokio::test]
async fn unknown_resources_and_parameters_are_refused() {
    let (server, p8) = live_release().await;
    server.put_app_store_version(APP_ID, "no-phase", "1.9.0", "READY_FOR_SALE");
    let token = asc_token(&p8, json!({}));

    let (status, body) = asc(
        &server,
        Some(&token),
        Method::GET,
        "/v1/apps/999/appStoreVersions",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        first_error(&body),
        ("404", "NOT_FOUND", "The specified resource does not exist")
    );
    assert_eq!(
        body["errors"][0]["detail"],
        "There is no resource of type 'apps' with id '999'"
    );

    let (status, body) = asc(
        &server,
        Some(&token),
        Method::PATCH,
        "/v1/appStoreVersionPhasedReleases/nope",
        Some(pause_body("nope", "PAUSED")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["errors"][0]["detail"],
        "There is no resource of type 'appStoreVersionPhasedReleases' with id 'nope'"
    );

    // A version released to everyone at once has no phased release.
    let (status, body) = asc(
        &server,
        Some(&token),
        Method::GET,
        "/v1/appStoreVersions/no-phase/appStoreVersionPhasedRelease",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], Value::Null);

    let (status, body) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/apps/{APP_ID}/appStoreVersions?sort=-createdDate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body).1, "PARAMETER_ERROR.ILLEGAL");
    assert_eq!(
        body["errors"][0]["detail"],
        "The parameter 'sort' can not be used with this request"
    );
    let (status, body) = asc(
        &server,
        Some(&token),
        Method::GET,
        &format!("/v1/apps/{APP_ID}/appStoreVersions?filter[appStoreState]=LIVE"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        first_error(&body),
        (
            "400",
            "PARAMETER_ERROR.INVALID",
            "A parameter has an invalid value"
        )
    );

    let (status, _) = asc(&server, Some(&token), Method::GET, "/v1/nothingHere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_apple_would_refuse_are_401() {
    let (server, p8) = live_release().await;
    let path = format!("/v1/apps/{APP_ID}/appStoreVersions");
    let (other_p8, _) = test_keys::app_store_key();
    let now = now();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("another key", Some(asc_token(&other_p8, json!({})))),
        (
            "wrong audience",
            Some(asc_token(&p8, json!({"aud": "appstoreconnect-v2"}))),
        ),
        (
            "another issuer",
            Some(asc_token(
                &p8,
                json!({"iss": "00000000-0000-0000-0000-000000000000"}),
            )),
        ),
        (
            "expires in 21 minutes",
            Some(asc_token(&p8, json!({"exp": now + 21 * 60}))),
        ),
        (
            "expired",
            Some(asc_token(&p8, json!({"iat": now - 600, "exp": now - 1}))),
        ),
        ("no iat", Some(asc_token(&p8, json!({"iat": null})))),
        (
            "unknown key id",
            Some(asc_token_with_header(
                &p8,
                "ZZZZZZZZZZ",
                Some("JWT"),
                json!({}),
            )),
        ),
        (
            "no typ",
            Some(asc_token_with_header(&p8, KEY_ID, None, json!({}))),
        ),
    ];
    for (case, token) in cases {
        let (status, body) = asc(&server, token.as_deref(), Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(
            body,
            json!({"errors": [{
                "status": "401",
                "code": "NOT_AUTHORIZED",
                "title": "Authentication credentials are missing or invalid.",
                "detail": "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens"
            }]}),
            "{case}"
        );
    }
    // An RS256 token is refused whatever it says.
    let (key_file, _) = test_keys::google_service_account(SERVICE_ACCOUNT, "unused");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KEY_ID.into());
    let rsa = jsonwebtoken::encode(
        &header,
        &json!({"iss": ISSUER_ID, "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(
            key_file["private_key"].as_str().unwrap().as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        asc(&server, Some(&rsa), Method::GET, &path, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // And the same request with a good token passes: the cases above failed for their reason.
    let (status, _) = asc(
        &server,
        Some(&asc_token(&p8, json!({}))),
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let log = server.requests();
    assert_eq!(log.last().unwrap().status, 200);
    assert_eq!(log.last().unwrap().path, format!("/appstore{path}"));
    assert_eq!(log.iter().filter(|r| r.status == 401).count(), 10);
}
