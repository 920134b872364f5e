//! Sign-in at the HTTP level: the local OIDC issuer (local/oidc) plays the identity provider,
//! the local approval server plays API Gateway's JWT authorizer. A POST without a valid token
//! is refused before the handler runs; a valid one decides as the token's person, whatever
//! the form says. The script's part of the flow runs in a real browser in browser.rs.

mod common;

use std::net::SocketAddr;

use common::*;
use rollback_approval::login::Login;
use rollback_core::approval_link::{ApproverRules, Decision, LinkKey};
use rollback_core::contract::approval::{ApprovalDecision, Identity};
use rollback_core::oidc::OidcConfig;
use rollback_core::request::Scope;
use rollback_oidc_issuer::OidcIssuer;
use serde_json::json;

const CLIENT: &str = "rollback-approval";

/// The issuer (with `ana`, in group `sre`, and `bo`), and the approval page signing in
/// through it, on a port chosen first so the issuer can register its redirect URI.
struct SignIn {
    issuer: OidcIssuer,
    page: String,
    key: LinkKey,
    _gate: rollback_fault_proxy::gate::IamGate,
}

async fn sign_in() -> SignIn {
    let port = rollback_moto::free_port().unwrap();
    let page = format!("http://127.0.0.1:{port}/approval");
    let issuer = OidcIssuer::builder()
        .client(CLIENT, [page.clone()])
        .user("ana", "Ana@Example.com", ["sre"])
        .user("bo", "bo@example.com", Vec::<String>::new())
        .start()
        .await
        .unwrap();
    let gate = gate();
    let key = LinkKey::generate();
    let services =
        common::page(&gate, &key).with_login(Login::new(OidcConfig::new(issuer.issuer(), CLIENT)));
    rollback_approval::serve_local(SocketAddr::from(([127, 0, 0, 1], port)), services)
        .await
        .unwrap();
    SignIn {
        issuer,
        page,
        key,
        _gate: gate,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(s: &SignIn, link: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = client()
        .post(&s.page)
        .form(&[("t", link), ("approver", "typed@example.com")]);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_offers_sign_in_with_a_script_allowed_by_hash_and_nothing_else() {
    let s = sign_in().await;
    let w = waiting_execution("sign-in-page", None).await;
    let link = link(&s.key, &payload(&w.token, Decision::Approve, Scope::APP));
    let response = client()
        .get(&s.page)
        .query(&[("t", &link)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"sign-in\""), "{html}");
    assert!(html.contains(&format!(
        "data-authorize=\"{}/authorize\"",
        s.issuer.issuer()
    )));
    assert!(html.contains(&format!("data-client=\"{CLIENT}\"")));
    assert!(
        !html.contains("name=\"approver\""),
        "no typed identity with sign-in"
    );
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        csp.contains(&format!("connect-src 'self' http://{}", s.issuer.addr())),
        "{csp}"
    );
    let script_src: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("script-src "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(script_src.len(), 1, "only the sign-in script: {csp}");
    assert!(script_src[0].starts_with("'sha256-"), "{csp}");

    // Back from the identity provider: the script's page, same CSP.
    let back = client()
        .get(&s.page)
        .query(&[("code", "c"), ("state", "s")])
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    assert!(back.text().await.unwrap().contains("login-status"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_a_valid_token_is_refused_before_anything_is_decided() {
    let s = sign_in().await;
    let w = waiting_execution("sign-in-refused", None).await;
    let link = link(&s.key, &payload(&w.token, Decision::Approve, Scope::APP));
    let other_audience = s.issuer.mint("ana", json!({"aud": "someone-else"}));
    let expired = s.issuer.mint("ana", json!({"exp": 1_000_000_000}));
    let foreign = s.issuer.mint_with_foreign_key("ana", json!({}));
    for (why, token) in [
        ("no token", None),
        ("another audience", Some(other_audience.as_str())),
        ("expired", Some(expired.as_str())),
        ("signed by another key", Some(foreign.as_str())),
        ("not a JWT", Some("garbage")),
    ] {
        let (status, body) = post(&s, &link, token).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body, r#"{"message":"Unauthorized"}"#, "{why}");
    }
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_approval_records_the_token_s_person_not_the_form() {
    let s = sign_in().await;
    let w = waiting_execution("sign-in-approve", None).await;
    let mut p = payload(&w.token, Decision::Approve, Scope::APP);
    // Listed by group: only a signed-in person can show one.
    p.rules = ApproverRules {
        approvers: vec!["group:sre".into()],
        needed: 1,
        starter: None,
    };
    let link = link(&s.key, &p);
    let (status, body) = post(&s, &link, Some(&s.issuer.mint("bo", json!({})))).await;
    assert_eq!(status, 403, "bo is not in group sre: {body}");
    let (status, body) = post(&s, &link, Some(&s.issuer.mint("ana", json!({})))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ana@example.com (signed in)"), "{body}");
    let (state, output, ..) = finished(&w.execution_arn).await;
    assert_eq!(state, "SUCCEEDED");
    let decision: ApprovalDecision = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(decision.approver, "ana@example.com");
    assert_eq!(decision.identity, Identity::Authenticated);
}
