//! Google's service-account grant and the bearer check of the Android Publisher API.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use rollback_stores::test_keys;
use serde_json::{Value, json};

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

async fn refused(server: &rollback_stores::StoreServer, assertion: &str) -> (String, String) {
    let (status, body) = token_request(server, assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    (
        body["error"].as_str().unwrap().to_string(),
        body["error_description"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn the_key_file_grants_a_bearer_token_for_an_hour() {
    let (server, key_file) = google_server().await;
    assert_eq!(key_file["type"], "service_account");
    assert_eq!(key_file["client_email"], SERVICE_ACCOUNT);
    assert_eq!(key_file["token_uri"], server.google_token_uri());
    assert_eq!(key_file["private_key_id"].as_str().unwrap().len(), 40);
    assert!(
        key_file["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );

    let (status, body) = token_request(&server, &assertion(&key_file, json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("ya29.") && token.len() > 40, "{token}");

    // Opaque and fresh each time.
    let second = access_token(&server, &key_file).await;
    assert_ne!(token, second);

    // It opens the API.
    server.put_play_track(PACKAGE, "production", vec![]);
    let (status, edit) = play(
        &server,
        Some(token),
        Method::POST,
        &format!("{PACKAGE}/edits"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edit}");
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let (server, key_file) = google_server().await;
    let forged = assertion_signed_with(
        &key_file,
        &test_keys::foreign_rsa_private_key_pem(),
        json!({}),
    );
    assert_eq!(
        refused(&server, &forged).await,
        ("invalid_grant".into(), "Invalid JWT Signature.".into())
    );

    // A signature that does not match the claims it came with.
    let genuine = assertion(&key_file, json!({}));
    let other_claims = assertion(
        &key_file,
        json!({"scope": "https://www.googleapis.com/auth/cloud-platform"}),
    );
    let parts: Vec<&str> = genuine.split('.').collect();
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        other_claims.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(refused(&server, &spliced).await.1, "Invalid JWT Signature.");

    // Not a JWS at all.
    assert_eq!(
        refused(&server, "not-a-jwt").await.1,
        "Invalid JWT Signature."
    );
}

#[tokio::test]
async fn an_unknown_issuer_is_refused() {
    let (server, key_file) = google_server().await;
    let (stranger, _) = test_keys::google_service_account(
        "intruder@elsewhere.iam.gserviceaccount.com",
        &server.google_token_uri(),
    );
    assert_eq!(
        refused(&server, &assertion(&stranger, json!({}))).await,
        (
            "invalid_grant".into(),
            "Invalid grant: account not found".into()
        )
    );
    assert_eq!(
        refused(&server, &assertion(&key_file, json!({"iss": null})))
            .await
            .1,
        "Invalid email or User ID."
    );
}

#[tokio::test]
async fn expired_or_long_lived_assertions_are_refused() {
    let (server, key_file) = google_server().await;
    let now = now();
    let cases = [
        (
            "expired two minutes ago",
            json!({"iat": now - 3720, "exp": now - 120}),
        ),
        (
            "lives longer than an hour",
            json!({"iat": now, "exp": now + 3601}),
        ),
        (
            "issued in the future",
            json!({"iat": now + 300, "exp": now + 900}),
        ),
        (
            "expires before it is issued",
            json!({"iat": now, "exp": now - 1}),
        ),
    ];
    for (case, claims) in cases {
        assert_eq!(
            refused(&server, &assertion(&key_file, claims)).await,
            ("invalid_grant".into(), SHORT_LIVED.into()),
            "{case}"
        );
    }
    // Within the 60 s of clock skew: still granted.
    let skewed = assertion(&key_file, json!({"iat": now - 3630, "exp": now - 30}));
    assert_eq!(token_request(&server, &skewed).await.0, StatusCode::OK);
    assert_eq!(
        refused(&server, &assertion(&key_file, json!({"exp": null})))
            .await
            .1,
        "Invalid JWT: exp (expiration time) is not set."
    );
}

#[tokio::test]
async fn the_audience_the_grant_type_and_the_scope_are_checked() {
    let (server, key_file) = google_server().await;
    assert_eq!(
        refused(
            &server,
            &assertion(
                &key_file,
                json!({"aud": "https://oauth2.googleapis.com/token"})
            )
        )
        .await,
        (
            "invalid_grant".into(),
            "Invalid JWT: Failed audience check.".into()
        )
    );
    assert_eq!(
        refused(&server, &assertion(&key_file, json!({"scope": null}))).await,
        (
            "invalid_scope".into(),
            "Invalid OAuth scope or ID token audience provided.".into()
        )
    );

    let answer = http()
        .post(server.google_token_uri())
        .form(&[("grant_type", "client_credentials"), ("assertion", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(
        body["error_description"],
        "Invalid grant_type: client_credentials"
    );

    // Domain-wide delegation: not for Play service accounts.
    let (status, body) = token_request(
        &server,
        &assertion(&key_file, json!({"sub": "someone@acme.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn the_api_refuses_a_missing_unknown_or_expired_token() {
    let (server, key_file) = google_server().await;
    server.put_play_track(PACKAGE, "production", vec![]);
    let path = format!("{PACKAGE}/edits");

    let (status, body) = play(&server, None, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "required");

    let (status, body) = play(&server, Some("ya29.made-up"), Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials."),
        "{body}"
    );

    let token = access_token(&server, &key_file).await;
    assert_eq!(
        play(&server, Some(&token), Method::POST, &path, None)
            .await
            .0,
        StatusCode::OK
    );
    server.expire_tokens();
    let (status, body) = play(&server, Some(&token), Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    // The header Google sends with a 401.
    let answer = http()
        .post(format!(
            "{}/androidpublisher/v3/applications/{path}",
            server.android_publisher_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers()["www-authenticate"],
        "Bearer realm=\"https://accounts.google.com/\""
    );
}

#[tokio::test]
async fn a_token_without_the_androidpublisher_scope_is_forbidden() {
    let (server, key_file) = google_server().await;
    server.put_play_track(PACKAGE, "production", vec![]);
    let (status, body) = token_request(
        &server,
        &assertion(
            &key_file,
            json!({"scope": "https://www.googleapis.com/auth/cloud-platform"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let (status, body) = play(
        &server,
        Some(token),
        Method::POST,
        &format!("{PACKAGE}/edits"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        google_error(&body),
        (
            "Request had insufficient authentication scopes.",
            "insufficientPermissions"
        )
    );
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn an_unknown_package_is_not_found() {
    let (server, key_file) = google_server().await;
    let token = access_token(&server, &key_file).await;
    let (status, body) = play(
        &server,
        Some(&token),
        Method::POST,
        "com.acme.unknown/edits",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        google_error(&body),
        (
            "No application was found for the given package name.",
            "applicationNotFound"
        )
    );
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn the_request_log_records_method_path_and_status() {
    let (server, key_file) = google_server().await;
    let token = access_token(&server, &key_file).await;
    play(
        &server,
        Some(&token),
        Method::POST,
        "com.acme.unknown/edits",
        None,
    )
    .await;
    let log = server.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("POST", "/google/token", 200)
    );
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str(), log[1].status),
        (
            "POST",
            "/androidpublisher/v3/applications/com.acme.unknown/edits",
            404
        )
    );
}
