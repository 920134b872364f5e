//! The drill's mobile apps: Mint Replica's Android and iOS apps on the local store server
//! (`rollback-stores`), part-way through rolling out the bad 4.2.0 (Play production at 20 %
//! with 4.1.2 completed; the App Store phased release on day 3), with the store credentials in
//! Secrets Manager and the minimum supported versions in SSM, where a team keeps them.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use rollback_stores::{PhasedReleaseState, PlayRelease, ReleaseStatus, StoreServer, test_keys};
use serde_json::{Value, json};

pub const PACKAGE: &str = "com.mintreplica.app";
pub const APP_STORE_APP_ID: &str = "1452013590";
const SERVICE_ACCOUNT: &str = "rollback@mint-replica.iam.gserviceaccount.com";
/// Under the template's default `MobileSecretPrefix` (`store-credentials/<service>`).
const GOOGLE_SECRET: &str = "store-credentials/mint-replica/google-play";
const APPLE_SECRET: &str = "store-credentials/mint-replica/app-store-connect";
/// Under the template's default `MobileMinimumVersionPath` (`/<service>/mobile/`).
pub const ANDROID_MINIMUM: &str = "/mint-replica/mobile/android-minimum-version";
pub const IOS_MINIMUM: &str = "/mint-replica/mobile/ios-minimum-version";
const KEY_ID: &str = "2X9R4HXF34";
const ISSUER_ID: &str = "57246542-96fe-1a63-e053-0824d011072a";
const VERSION_ID: &str = "asc-version-420";
const PHASED_ID: &str = "asc-phased-420";
pub const BAD_VERSION: &str = "4.2.0";
/// The minimum before the release, and the safe build (the stable code, shipped above the bad
/// version so that users of 4.2.0 must update).
const MINIMUM_BEFORE: &str = "4.0.0";
pub const SAFE_VERSION: &str = "4.2.1";

/// The plan's `mobile` section for these apps. Android's safe build is live (the minimum is
/// raised); iOS's is still in review (the minimum is left alone, so nobody is locked out).
pub fn plan_section() -> Value {
    let minimum = |parameter: &str, live: bool| json!({"ssm_parameter": parameter, "stable_version": SAFE_VERSION, "safe_build_live": live});
    json!({
        "android": {"package_name": PACKAGE, "credentials_secret": GOOGLE_SECRET,
                    "minimum_version": minimum(ANDROID_MINIMUM, true)},
        "ios": {"app_id": APP_STORE_APP_ID, "credentials_secret": APPLE_SECRET,
                "minimum_version": minimum(IOS_MINIMUM, false)}
    })
}

/// The releases in the stores, the credentials the stores know, the minimum versions.
pub async fn seed(sdk: &SdkConfig, stores: &StoreServer) -> Result<()> {
    stores.put_play_track(
        PACKAGE,
        "production",
        vec![
            PlayRelease::new(ReleaseStatus::Completed, ["41"]).with_name("4.1.2"),
            PlayRelease::new(ReleaseStatus::InProgress, ["42"])
                .with_name(BAD_VERSION)
                .with_fraction(0.2),
        ],
    );
    stores.put_app_store_version(APP_STORE_APP_ID, VERSION_ID, BAD_VERSION, "READY_FOR_SALE");
    stores.put_phased_release(VERSION_ID, PHASED_ID, PhasedReleaseState::Active, 3);

    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let (key_file, public) =
        test_keys::google_service_account(SERVICE_ACCOUNT, &stores.google_token_uri());
    stores
        .register_service_account(SERVICE_ACCOUNT, &public)
        .context("registering the drill's Google service account")?;
    put_secret(&secrets, GOOGLE_SECRET, &key_file).await?;
    let (p8, public) = test_keys::app_store_key();
    stores
        .register_app_store_key(KEY_ID, ISSUER_ID, &public)
        .context("registering the drill's App Store Connect key")?;
    let apple = json!({"key_id": KEY_ID, "issuer_id": ISSUER_ID, "private_key": p8});
    put_secret(&secrets, APPLE_SECRET, &apple).await?;

    let ssm = aws_sdk_ssm::Client::new(sdk);
    for parameter in [ANDROID_MINIMUM, IOS_MINIMUM] {
        ssm.put_parameter()
            .name(parameter)
            .value(MINIMUM_BEFORE)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .with_context(|| format!("PutParameter {parameter}"))?;
    }
    Ok(())
}

async fn put_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &Value,
) -> Result<()> {
    secrets
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .with_context(|| format!("CreateSecret {name}"))?;
    Ok(())
}

/// The function's store endpoints: the local server for Play and the App Store (Google's
/// token endpoint comes from the key file's `token_uri`, which names the local server).
pub fn endpoints(stores: &StoreServer) -> rollback_mobile::Endpoints {
    rollback_mobile::Endpoints {
        google_token: None,
        play: format!("{}/androidpublisher/v3", stores.android_publisher_url()),
        app_store: stores.app_store_url(),
    }
}

/// What users see now, per platform, read off the stores and SSM: for the drill's summary.
pub async fn what_users_see(sdk: &SdkConfig, stores: &StoreServer) -> Vec<String> {
    let play = stores
        .play_track(PACKAGE, "production")
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let name = r.name.clone().unwrap_or_default();
            let status = serde_json::to_value(r.status).unwrap_or_default();
            format!("{name} {}", status.as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let phased = stores
        .phased_release(PHASED_ID)
        .map(|p| format!("{:?}", p.phased_release_state))
        .unwrap_or_else(|| "none".to_owned());
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let mut minimum = Vec::new();
    for parameter in [ANDROID_MINIMUM, IOS_MINIMUM] {
        let value = ssm
            .get_parameter()
            .name(parameter)
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter.and_then(|p| p.value))
            .unwrap_or_else(|| "unset".to_owned());
        minimum.push(format!("{parameter} = {value}"));
    }
    vec![
        format!("Google Play production: {play}"),
        format!("App Store {BAD_VERSION} phased release: {phased}"),
        format!("minimum versions: {}", minimum.join(", ")),
    ]
}
