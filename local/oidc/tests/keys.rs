//! Key rotation, tokens signed by a foreign key, the mint helper, and what key generation
//! costs in a debug build.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use rollback_core::oidc::{TokenError, validate};
use rollback_oidc_issuer::SigningKey;
use serde_json::json;

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_validate_and_foreign_keys_never_do() {
    let issuer = issuer().await;
    let config = config(&issuer);
    let before = issuer.mint("ana", json!({}));
    let first_kid = issuer.current_kid();

    issuer.rotate_key();
    assert_ne!(issuer.current_kid(), first_kid);
    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(jwks.keys.len(), 2, "current and previous key");
    validate(&before, &jwks, &config, Utc::now()).expect("the previous key still verifies");
    let after = issuer.mint("ana", json!({}));
    validate(&after, &jwks, &config, Utc::now()).expect("the new key verifies");

    let foreign = issuer.mint_with_foreign_key("ana", json!({}));
    let error = validate(&foreign, &jwks, &config, Utc::now()).unwrap_err();
    assert_eq!(error, TokenError::BadSignature);

    // A second rotation retires the first key: its tokens now name an unknown kid.
    issuer.rotate_key();
    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(jwks.keys.len(), 2);
    let error = validate(&before, &jwks, &config, Utc::now()).unwrap_err();
    assert!(matches!(error, TokenError::UnknownKid(_)), "{error}");
    validate(&after, &jwks, &config, Utc::now()).expect("the previous key still verifies");
}

#[tokio::test]
async fn mint_overrides_make_the_tokens_validation_must_refuse() {
    let issuer = issuer().await;
    let config = config(&issuer);
    let jwks = fetch_jwks(&issuer).await;
    let check = |overrides| validate(&issuer.mint("bob", overrides), &jwks, &config, Utc::now());
    let now = Utc::now().timestamp();
    let claims = check(json!({})).unwrap();
    assert_eq!(claims.identity(&config).as_deref(), Some("bob@example.com"));
    assert!(claims.groups().is_empty());
    assert!(matches!(
        check(json!({"exp": now - 1})),
        Err(TokenError::Expired { .. })
    ));
    assert!(matches!(
        check(json!({"nbf": now + 60})),
        Err(TokenError::NotYetValid { .. })
    ));
    assert!(matches!(
        check(json!({"aud": "other"})),
        Err(TokenError::WrongAudience { .. })
    ));
    assert!(matches!(
        check(json!({"iss": "http://elsewhere"})),
        Err(TokenError::WrongIssuer { .. })
    ));
    assert!(matches!(
        check(json!({"exp": null})),
        Err(TokenError::MissingClaim(_))
    ));
    let without_nbf = check(json!({"nbf": null, "iat": null})).unwrap();
    assert!(without_nbf.raw().get("nbf").is_none());
}

/// Not a pass/fail benchmark: prints what a 2048-bit key costs here (run with --nocapture),
/// and fails only if it is so slow that the issuer's start would be a problem.
#[test]
fn key_generation_time_in_this_build() {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let key = SigningKey::generate();
            assert_eq!(key.kid().len(), 43);
            start.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "2048-bit RSA key generation ({} build): min {:?}, median {:?}, max {:?}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        times[0],
        times[2],
        times[4]
    );
    assert!(times[2] < Duration::from_secs(20), "median {:?}", times[2]);
}
