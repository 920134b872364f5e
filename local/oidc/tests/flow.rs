//! The authorization code flow with PKCE over real HTTP, and the requests it must refuse.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use rollback_core::oidc::validate;
use serde_json::Value;

/// The discovery document, checked for what a client of the flow needs.
async fn discovery(issuer: &rollback_oidc_issuer::OidcIssuer) -> Value {
    let url = format!("{}/.well-known/openid-configuration", issuer.issuer());
    let discovery: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], issuer.issuer());
    assert_eq!(discovery["jwks_uri"], issuer.jwks_uri());
    assert_eq!(
        discovery["token_endpoint"],
        format!("{}/token", issuer.issuer())
    );
    let listed = |name: &str, value: &str| discovery[name] == serde_json::json!([value]);
    assert!(listed("code_challenge_methods_supported", "S256"));
    assert!(listed("response_types_supported", "code"));
    assert!(listed("id_token_signing_alg_values_supported", "RS256"));
    discovery
}

#[tokio::test]
async fn code_flow_with_pkce_ends_in_tokens_that_validate_like_api_gateway() {
    let issuer = issuer().await;
    let http = http();
    let discovery = discovery(&issuer).await;

    let (verifier, challenge) = pkce();
    let page = http
        .get(discovery["authorization_endpoint"].as_str().unwrap())
        .query(&authorize_query(&challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"name="username""#) && html.contains(r#"id="login""#),
        "{html}"
    );
    let secret = ["@example.com", "approvers", "dba"];
    assert!(
        !secret.iter().any(|s| html.contains(s)),
        "the page lists users: {html}"
    );

    let code = sign_in(&issuer, &challenge, "ana").await;
    let answer = exchange(&issuer, &code, &verifier, REDIRECT).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let tokens: Value = answer.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);

    let jwks = fetch_jwks(&issuer).await;
    let config = config(&issuer);
    let id = validate(
        tokens["id_token"].as_str().unwrap(),
        &jwks,
        &config,
        Utc::now(),
    )
    .expect("the ID token validates");
    assert_eq!(id.identity(&config).as_deref(), Some("ana@example.com"));
    assert_eq!(id.groups(), vec!["approvers", "dba"]);
    assert_eq!(id.raw()["nonce"], "n-456");
    assert_eq!(id.raw()["aud"], CLIENT);
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let access = validate(&bearer, &jwks, &config, Utc::now()).expect("the access token validates");
    assert!(
        access.raw().get("aud").is_none(),
        "checked through client_id"
    );
    assert_eq!(access.raw()["client_id"], CLIENT);

    let again = exchange(&issuer, &code, &verifier, REDIRECT).await;
    assert_eq!(
        oauth_error(again, 400).await,
        "invalid_grant",
        "a code is single-use"
    );
}

#[tokio::test]
async fn a_wrong_verifier_is_an_invalid_grant_and_burns_the_code() {
    let issuer = issuer().await;
    let (verifier, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let code = sign_in(&issuer, &challenge, "bob").await;
    let answer = exchange(&issuer, &code, &other_verifier, REDIRECT).await;
    assert_eq!(oauth_error(answer, 400).await, "invalid_grant");
    let answer = exchange(&issuer, &code, &verifier, REDIRECT).await;
    assert_eq!(oauth_error(answer, 400).await, "invalid_grant");
    // A verifier that is not even well-formed is refused before the code is looked at.
    let code = sign_in(&issuer, &challenge, "bob").await;
    let answer = exchange(&issuer, &code, "short", REDIRECT).await;
    assert_eq!(oauth_error(answer, 400).await, "invalid_request");
    let answer = exchange(&issuer, &code, &verifier, REDIRECT).await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_client_gets_a_page_and_no_redirect() {
    let issuer = issuer().await;
    let (_, challenge) = pkce();
    let cases: [&[(&str, &str)]; 4] = [
        &[("redirect_uri", "http://127.0.0.1:9/elsewhere")],
        &[("redirect_uri", "http://127.0.0.1:9/oidc/callback/")],
        &[("client_id", "someone-else")],
        &[("redirect_uri", "")],
    ];
    for changes in cases {
        let query = authorize_query(&challenge, changes);
        let url = format!("{}/authorize", issuer.issuer());
        for answer in [
            http().get(&url).query(&query).send().await.unwrap(),
            http().post(&url).form(&query).send().await.unwrap(),
        ] {
            assert_eq!(answer.status(), 400, "{changes:?}");
            assert!(answer.headers().get("location").is_none(), "{changes:?}");
            let page = answer.text().await.unwrap();
            assert!(page.contains("Invalid sign-in request"), "{page}");
        }
    }
}

#[tokio::test]
async fn other_bad_requests_go_back_to_the_client_with_an_oauth_error() {
    let issuer = issuer().await;
    let (_, challenge) = pkce();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("scope", "email")], "invalid_scope"),
    ];
    for (changes, error) in cases {
        let answer = http()
            .get(format!("{}/authorize", issuer.issuer()))
            .query(&authorize_query(&challenge, changes))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302, "{changes:?}");
        let location = answer.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert!(location.contains(&format!("error={error}")), "{location}");
        assert!(location.contains("state=st-123"), "{location}");
    }
    let answer = submit_login(&issuer, &challenge, "mallory").await;
    assert_eq!(answer.status(), 401);
    assert!(answer.headers().get("location").is_none());
}

#[tokio::test]
async fn the_token_endpoint_refuses_as_oauth_says() {
    let issuer = builder()
        .code_ttl(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let code = sign_in(&issuer, &challenge, "ana").await;
    let answer = exchange(&issuer, &code, &verifier, "http://127.0.0.1:9/other").await;
    assert_eq!(
        oauth_error(answer, 400).await,
        "invalid_grant",
        "other redirect_uri"
    );

    let code = sign_in(&issuer, &challenge, "ana").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = exchange(&issuer, &code, &verifier, REDIRECT).await;
    assert_eq!(
        oauth_error(answer, 400).await,
        "invalid_grant",
        "expired code"
    );

    let url = format!("{}/token", issuer.issuer());
    let post = |form: Vec<(&'static str, &'static str)>| http().post(&url).form(&form).send();
    let answer = post(vec![("grant_type", "password"), ("client_id", CLIENT)])
        .await
        .unwrap();
    assert_eq!(oauth_error(answer, 400).await, "unsupported_grant_type");
    let answer = post(vec![
        ("grant_type", "authorization_code"),
        ("client_id", "x"),
    ])
    .await
    .unwrap();
    assert_eq!(oauth_error(answer, 401).await, "invalid_client");
    let answer = post(vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
    ])
    .await
    .unwrap();
    assert_eq!(oauth_error(answer, 400).await, "invalid_request");
    let twice = vec![
        ("grant_type", "authorization_code"),
        ("grant_type", "authorization_code"),
    ];
    assert_eq!(
        oauth_error(post(twice).await.unwrap(), 400).await,
        "invalid_request"
    );
}

/// The token endpoint answers a browser script with CORS only for the origin of a registered
/// redirect URI (a single-page-application client), so another site's script cannot read it.
#[tokio::test]
async fn the_token_endpoint_allows_only_registered_origins() {
    let issuer = issuer().await;
    let url = format!("{}/token", issuer.issuer());
    for (origin, allowed) in [
        ("http://127.0.0.1:9", true),
        ("http://127.0.0.1:10", false),
        ("https://evil.example", false),
    ] {
        let answer = http()
            .post(&url)
            .header("origin", origin)
            .form(&[("grant_type", "authorization_code"), ("client_id", CLIENT)])
            .send()
            .await
            .unwrap();
        let header = answer
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), allowed.then_some(origin), "{origin}");
    }
}
