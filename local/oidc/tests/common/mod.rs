//! What the issuer's tests share: a configured issuer, an HTTP client that shows redirects
//! instead of following them, PKCE pairs, and the sign-in as a browser does it.

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use rollback_core::oidc::{Jwks, OidcConfig};
use rollback_oidc_issuer::{IssuerBuilder, OidcIssuer};
use sha2::{Digest as _, Sha256};

pub const CLIENT: &str = "rollback-approval";
pub const REDIRECT: &str = "http://127.0.0.1:9/oidc/callback";

pub fn builder() -> IssuerBuilder {
    OidcIssuer::builder()
        .client(CLIENT, [REDIRECT])
        .user("ana", "ana@example.com", ["approvers", "dba"])
        .user("bob", "bob@example.com", Vec::<String>::new())
}

pub async fn issuer() -> OidcIssuer {
    builder().start().await.expect("issuer starts")
}

/// Every request bounded; redirects are looked at, not followed.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A random verifier and its S256 challenge, computed here independently of the issuer.
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn config(issuer: &OidcIssuer) -> OidcConfig {
    OidcConfig::new(issuer.issuer(), CLIENT)
}

pub async fn fetch_jwks(issuer: &OidcIssuer) -> Jwks {
    let text = http()
        .get(issuer.jwks_uri())
        .send()
        .await
        .expect("GET /jwks")
        .text()
        .await
        .expect("JWKS body");
    Jwks::from_json(&text).expect("JWKS parses")
}

/// The authorization request's query, with `changes` replacing or adding parameters.
pub fn authorize_query(challenge: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut query: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        query.retain(|(k, _)| k != name);
        query.push((name.to_string(), value.to_string()));
    }
    query
}

/// The hidden fields of the login form, as a browser would submit them.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let input = regex::Regex::new(r#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#)
        .expect("regex");
    input
        .captures_iter(html)
        .map(|c| (unescape(&c[1]), unescape(&c[2])))
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Opens the login page, submits it as `username`, and returns the `/authorize` answer.
pub async fn submit_login(
    issuer: &OidcIssuer,
    challenge: &str,
    username: &str,
) -> reqwest::Response {
    let http = http();
    let page = http
        .get(format!("{}/authorize", issuer.issuer()))
        .query(&authorize_query(challenge, &[]))
        .send()
        .await
        .expect("GET /authorize");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("login page");
    let mut form = hidden_fields(&html);
    form.push(("username".into(), username.into()));
    http.post(format!("{}/authorize", issuer.issuer()))
        .form(&form)
        .send()
        .await
        .expect("POST /authorize")
}

/// Signs in as `username` and returns the code from the redirect (checking the state).
pub async fn sign_in(issuer: &OidcIssuer, challenge: &str, username: &str) -> String {
    let answer = submit_login(issuer, challenge, username).await;
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().expect("location");
    let url = url::Url::parse(location).expect("redirect URL");
    assert!(location.starts_with(REDIRECT), "{location}");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-123"));
    param("code").expect("code in the redirect")
}

/// `POST /token` with the authorization code grant.
pub async fn exchange(
    issuer: &OidcIssuer,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> reqwest::Response {
    http()
        .post(format!("{}/token", issuer.issuer()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("POST /token")
}

/// The `error` of an OAuth error answer, checking its status.
pub async fn oauth_error(answer: reqwest::Response, status: u16) -> String {
    assert_eq!(answer.status(), status);
    let body: serde_json::Value = answer.json().await.expect("OAuth error JSON");
    body["error"].as_str().expect("error member").to_string()
}
