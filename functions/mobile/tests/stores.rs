//! The mobile function against the local store server (`rollback-stores`: Google's token
//! endpoint, Play's edits and tracks, App Store Connect's versions and phased releases, each
//! verifying the credentials it is sent) and a real moto (Secrets Manager for the store
//! credentials, SSM for the minimum versions, KMS for the approval decision).
//!
//! Each test has its own store server and its own service name (its secrets and parameters),
//! so they share one moto. The function's AWS calls pass the IAM gate of its role in
//! infra/template.yaml (secrets under `store-credentials/<service>/`, parameters under `/<service>/mobile/`).

use chrono::Utc;
use rollback_core::contract::mobile::{
    HaltOutcome, HaltOutput, MobileResolution, PlayStatus, RaiseOutcome, RaiseOutput,
};
use rollback_core::decision::{ApprovalProof, DecisionClaims, Identity};
use rollback_core::fingerprint::fingerprint;
use rollback_core::{ErrorKind, Mode, Plan, RollbackError, Scope};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollback_mobile::{Clients, Endpoints, handle};
use rollback_moto::MotoServer;
use rollback_stores::{
    PhasedReleaseState, PlayRelease, ReleaseStatus, StoreFault, StoreServer, test_keys,
};
use serde_json::{Value, json};

const APP_ID: &str = "1452013590";
const KEY_ID: &str = "2X9R4HXF34";
const ISSUER_ID: &str = "57246542-96fe-1a63-e053-0824d011072a";
const VERSION_ID: &str = "asc-version-420";
const PHASED_ID: &str = "asc-phased-420";

/// One service's mobile apps: a store server with its apps, secrets in moto, and the
/// function's clients pointed at both.
struct Stage {
    name: String,
    stores: StoreServer,
    gate: IamGate,
    clients: Clients,
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Stage {
    async fn new(name: &str) -> Stage {
        let moto = MotoServer::shared();
        let config = moto.sdk_config();
        let stores = StoreServer::start().await;
        let endpoints = Endpoints {
            google_token: None,
            play: format!("{}/androidpublisher/v3", stores.android_publisher_url()),
            app_store: stores.app_store_url(),
        };
        let gate = IamGate::start(&moto.endpoint(), "mobile", &test_stack(name));
        Stage {
            name: name.to_owned(),
            clients: Clients::new(&gate.sdk_config(), moto.decision_key(), endpoints),
            stores,
            gate,
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }

    fn package(&self) -> String {
        format!("com.example.{}", self.name.replace('-', "_"))
    }

    fn account(&self) -> String {
        format!("rollback@{}.iam.gserviceaccount.com", self.name)
    }

    fn secret(&self, store: &str) -> String {
        format!("store-credentials/{}/{store}", self.name)
    }

    fn parameter(&self, platform: &str) -> String {
        format!("/{}/mobile/{platform}-minimum-version", self.name)
    }

    async fn put_secret(&self, name: &str, value: &Value) {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }

    /// The service account known to the store, its key file in Secrets Manager.
    async fn google_credentials(&self) {
        let (key_file, public) =
            test_keys::google_service_account(&self.account(), &self.stores.google_token_uri());
        self.stores
            .register_service_account(&self.account(), &public)
            .unwrap();
        self.put_secret(&self.secret("google-play"), &key_file)
            .await;
    }

    /// An App Store Connect key known to the store, in Secrets Manager.
    async fn apple_credentials(&self) {
        let (p8, public) = test_keys::app_store_key();
        self.stores
            .register_app_store_key(KEY_ID, ISSUER_ID, &public)
            .unwrap();
        let secret = json!({"key_id": KEY_ID, "issuer_id": ISSUER_ID, "private_key": p8});
        self.put_secret(&self.secret("app-store-connect"), &secret)
            .await;
    }

    /// 4.1.2 (41) completed and 4.2.0 (42) at 20 % on production; 4.2.0 on day 3 of its
    /// phased release on the App Store.
    async fn staged_release(&self) {
        self.google_credentials().await;
        self.apple_credentials().await;
        self.stores.put_play_track(
            &self.package(),
            "production",
            vec![
                PlayRelease::new(ReleaseStatus::Completed, ["41"]).with_name("4.1.2"),
                PlayRelease::new(ReleaseStatus::InProgress, ["42"])
                    .with_name("4.2.0")
                    .with_fraction(0.2),
            ],
        );
        self.stores
            .put_app_store_version(APP_ID, VERSION_ID, "4.2.0", "READY_FOR_SALE");
        self.stores
            .put_phased_release(VERSION_ID, PHASED_ID, PhasedReleaseState::Active, 3);
    }

    fn android(&self) -> Value {
        json!({"package_name": self.package(), "credentials_secret": self.secret("google-play")})
    }

    fn ios(&self) -> Value {
        json!({"app_id": APP_ID, "credentials_secret": self.secret("app-store-connect")})
    }

    fn both(&self) -> Value {
        json!({"android": self.android(), "ios": self.ios()})
    }

    fn envelope(&self, mobile: &Value, action: Value) -> Value {
        let mut envelope = action;
        envelope["execution"] = json!(format!("rb-{}", self.name));
        envelope["plan"] = json!({
            "service": self.name,
            "images": [{"repository": format!("{}/api", self.name), "release_tag": "prod", "stable_tag": "stable"}],
            "mobile": mobile,
        });
        envelope
    }

    async fn call(&self, mobile: &Value, action: Value) -> Result<Value, RollbackError> {
        let result = handle(&self.clients, self.envelope(mobile, action)).await;
        self.gate.assert_allowed();
        result
    }

    async fn resolve(&self, mobile: &Value) -> MobileResolution {
        let out = self
            .call(mobile, json!({"action": "resolve"}))
            .await
            .unwrap();
        serde_json::from_value(out).unwrap()
    }

    /// `action` with the approved resolution and a signed decision for it.
    async fn approved(
        &self,
        mobile: &Value,
        action: &str,
        resolution: &MobileResolution,
    ) -> Result<Value, RollbackError> {
        let mut envelope = self.envelope(mobile, json!({"action": action, "mobile": resolution}));
        approve(&mut envelope, Scope::APP.and_mobile()).await;
        let result = handle(&self.clients, envelope).await;
        self.gate.assert_allowed();
        result
    }

    async fn halt(
        &self,
        mobile: &Value,
        resolution: &MobileResolution,
    ) -> Result<HaltOutput, RollbackError> {
        let out = self.approved(mobile, "halt", resolution).await?;
        Ok(serde_json::from_value(out).unwrap())
    }

    fn track(&self) -> Vec<PlayRelease> {
        self.stores
            .play_track(&self.package(), "production")
            .unwrap_or_default()
    }

    fn phased_state(&self) -> PhasedReleaseState {
        self.stores
            .phased_release(PHASED_ID)
            .unwrap()
            .phased_release_state
    }

    /// Requests that could change something: anything but a read, an edit opened to read,
    /// the edit's deletion, or a token.
    fn writes(&self) -> Vec<String> {
        self.stores
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" || r.method == "PUT" || r.path.ends_with(":commit"))
            .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
            .collect()
    }

    async fn parameter_value(&self, platform: &str) -> Option<String> {
        self.ssm
            .get_parameter()
            .name(self.parameter(platform))
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter().and_then(|p| p.value()).map(str::to_owned))
    }

    async fn set_parameter(&self, platform: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(self.parameter(platform))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
}

/// A decision, signed with moto's decision key, for the envelope's execution, plan and
/// mobile resolution, as the approval function would sign after an approval of `scope`.
async fn approve(envelope: &mut Value, scope: Scope) {
    let plan: Plan = serde_json::from_value(envelope["plan"].clone()).unwrap();
    let resolved = json!({
        "databases": [], "images": [], "deployments": [], "infrastructure": null,
        "mobile": envelope["mobile"],
    });
    let claims = DecisionClaims::new(
        envelope["execution"].as_str().unwrap(),
        &fingerprint(&plan),
        &fingerprint(&resolved),
        scope,
        &["approver1@example.com".to_owned()],
        Identity::SelfAsserted,
        Utc::now(),
    );
    let decision = rollback_moto::decision::sign(MotoServer::shared(), &claims).await;
    envelope["approval"] = serde_json::to_value(ApprovalProof { decision, resolved }).unwrap();
}

async fn raise_minimum(stage: &Stage, mobile: &Value, resolved: &MobileResolution) -> RaiseOutput {
    let out = stage
        .approved(mobile, "raise-minimum", resolved)
        .await
        .unwrap();
    serde_json::from_value(out).unwrap()
}

fn status_of(release: &PlayRelease) -> ReleaseStatus {
    release.status
}

#[tokio::test]
async fn a_staged_release_is_halted_and_paused_once() {
    let stage = Stage::new("mob-staged").await;
    stage.staged_release().await;
    let mobile = stage.both();

    let resolved = stage.resolve(&mobile).await;
    let play = resolved.android.as_ref().unwrap();
    assert_eq!(play.to_halt.as_ref().unwrap().version_codes, ["42"]);
    assert_eq!(
        play.to_halt.as_ref().unwrap().status,
        PlayStatus::InProgress
    );
    assert_eq!(
        resolved.headlines(),
        [
            "Google Play production: 4.2.0 (42) at 20 % → halted; new and eligible users get \
             4.1.2 (41); users who installed 4.2.0 keep it",
            "App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused; anyone \
             can still update to 4.2.0 by hand, and users who installed it keep it",
        ]
    );
    assert!(
        stage.writes().is_empty(),
        "resolve changes nothing: {:?}",
        stage.writes()
    );

    let halted = stage.halt(&mobile, &resolved).await.unwrap();
    assert_eq!(halted.android.unwrap().outcome, HaltOutcome::Halted);
    assert_eq!(halted.ios.unwrap().outcome, HaltOutcome::Paused);
    let track = stage.track();
    assert_eq!(track[1].version_codes, ["42"]);
    assert_eq!(status_of(&track[1]), ReleaseStatus::Halted);
    assert_eq!(track[1].user_fraction, Some(0.2), "the fraction is kept");
    assert_eq!(status_of(&track[0]), ReleaseStatus::Completed);
    assert_eq!(stage.phased_state(), PhasedReleaseState::Paused);
    assert_eq!(stage.stores.reviews_cancelled(&stage.package()), 0);
    let commit = stage
        .stores
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with(":commit"))
        .unwrap();
    assert_eq!(
        commit.query.as_deref(),
        Some("changesInReviewBehavior=ERROR_IF_IN_REVIEW")
    );

    // A retry (or a second approval) finds both done and changes nothing more.
    let again = stage.halt(&mobile, &resolved).await.unwrap();
    assert_eq!(again.android.unwrap().outcome, HaltOutcome::AlreadyDone);
    assert_eq!(again.ios.unwrap().outcome, HaltOutcome::AlreadyDone);
    assert_eq!(stage.stores.commits(&stage.package()), 1);

    let status: MobileResolution = serde_json::from_value(
        stage
            .call(&mobile, json!({"action": "status"}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(status.headlines()[0].contains("4.2.0 (42) is already halted"));
    assert!(status.headlines()[1].contains("already paused"));
}

#[tokio::test]
async fn halt_refuses_without_a_decision_for_what_was_shown() {
    let stage = Stage::new("mob-unapproved").await;
    stage.staged_release().await;
    let mobile = stage.both();
    let resolved = stage.resolve(&mobile).await;

    let unsigned = stage
        .call(&mobile, json!({"action": "halt", "mobile": resolved}))
        .await
        .unwrap_err();
    assert_eq!(unsigned.kind(), ErrorKind::NotApproved, "{unsigned}");

    // A decision for another resolution than the one the call carries.
    let mut other = resolved.clone();
    other.android.as_mut().unwrap().to_halt = None;
    let mut envelope = stage.envelope(&mobile, json!({"action": "halt", "mobile": other}));
    approve(&mut envelope, Scope::APP.and_mobile()).await;
    envelope["mobile"] = serde_json::to_value(&resolved).unwrap();
    let swapped = handle(&stage.clients, envelope).await.unwrap_err();
    assert_eq!(swapped.kind(), ErrorKind::NotApproved, "{swapped}");

    // A decision for exactly this resolution, but an approved scope without mobile.
    let mut envelope = stage.envelope(&mobile, json!({"action": "halt", "mobile": resolved}));
    approve(&mut envelope, Scope::APP_AND_DATABASE).await;
    let narrower = handle(&stage.clients, envelope).await.unwrap_err();
    assert_eq!(narrower.kind(), ErrorKind::NotApproved, "{narrower}");
    assert!(
        narrower
            .to_string()
            .contains("does not cover mobile releases"),
        "{narrower}"
    );

    assert!(stage.writes().is_empty(), "{:?}", stage.writes());
    assert_eq!(stage.phased_state(), PhasedReleaseState::Active);
}

#[tokio::test]
async fn a_drill_makes_the_edit_and_deletes_it() {
    let stage = Stage::new("mob-drill").await;
    stage.staged_release().await;
    let mobile = stage.both();
    let resolved = stage.resolve(&mobile).await;
    let mut envelope = stage.envelope(&mobile, json!({"action": "halt", "mobile": resolved}));
    envelope["request"] =
        json!({"trigger": {"kind": "manual"}, "reason": "drill", "mode": Mode::Drill});
    assert_eq!(envelope["request"]["mode"], "drill");
    let out: HaltOutput =
        serde_json::from_value(handle(&stage.clients, envelope).await.unwrap()).unwrap();
    assert!(out.drill);
    assert_eq!(out.android.unwrap().outcome, HaltOutcome::Rehearsed);
    assert_eq!(out.ios.unwrap().outcome, HaltOutcome::Rehearsed);
    assert_eq!(stage.stores.commits(&stage.package()), 0);
    assert_eq!(status_of(&stage.track()[1]), ReleaseStatus::InProgress);
    assert_eq!(stage.phased_state(), PhasedReleaseState::Active);
    let requests = stage.stores.requests();
    assert!(
        requests.iter().any(|r| r.method == "PUT"),
        "Play took the change in the edit"
    );
    assert!(
        requests.iter().any(|r| r.method == "DELETE"),
        "and the edit was deleted"
    );
}

/// Play halts a fully rolled-out release only when an earlier one can take its place (Play
/// Console Help, "Halting a fully rolled-out release", 2025); the local store keeps the
/// older rule (only a staged rollout) and refuses. Either way: off unless the plan says
/// `halt_completed`, and a refusal says what to do, with nothing changed.
#[tokio::test]
async fn a_fully_rolled_out_release_is_halted_only_when_the_plan_says_so() {
    let stage = Stage::new("mob-full").await;
    stage.google_credentials().await;
    stage.stores.put_play_track(
        &stage.package(),
        "production",
        vec![PlayRelease::new(ReleaseStatus::Completed, ["42"]).with_name("4.2.0")],
    );
    let by_default = json!({"android": stage.android()});
    let resolved = stage.resolve(&by_default).await;
    assert!(resolved.android.as_ref().unwrap().to_halt.is_none());
    assert!(
        resolved.headlines()[0].contains("fully rolled out"),
        "{:?}",
        resolved.headlines()
    );
    let nothing = stage.halt(&by_default, &resolved).await.unwrap();
    assert_eq!(nothing.android.unwrap().outcome, HaltOutcome::NothingToHalt);

    let mut android = stage.android();
    android["halt_completed"] = json!(true);
    let allowed = json!({"android": android});
    let resolved = stage.resolve(&allowed).await;
    assert!(resolved.headlines()[0].contains("4.2.0 (42) at 100 % → halted"));
    let err = stage.halt(&allowed, &resolved).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreRefused, "{err}");
    assert!(
        err.to_string().contains("fully rolled out (100 %)"),
        "{err}"
    );
    assert!(err.to_string().contains("Halt rollout"), "{err}");
    assert_eq!(status_of(&stage.track()[0]), ReleaseStatus::Completed);
    assert_eq!(stage.stores.commits(&stage.package()), 0);

    // With 4.1.2 fully rolled out before it, Play halts 4.2.0 and serves 4.1.2 again.
    let release = |code: &str, name: &str| {
        vec![PlayRelease::new(ReleaseStatus::Completed, [code]).with_name(name)]
    };
    stage
        .stores
        .put_play_track(&stage.package(), "production", release("41", "4.1.2"));
    stage
        .stores
        .put_play_track(&stage.package(), "production", release("42", "4.2.0"));
    let resolved = stage.resolve(&allowed).await;
    let halted = stage.halt(&allowed, &resolved).await.unwrap();
    let android = halted.android.unwrap();
    assert_eq!(android.outcome, HaltOutcome::Halted, "{}", android.summary);
    let track = stage.track();
    assert_eq!(track[0].version_codes, ["41"]);
    assert_eq!(status_of(&track[0]), ReleaseStatus::Completed);
    assert_eq!(status_of(&track[1]), ReleaseStatus::Halted);
    assert_eq!(track[1].user_fraction, None);
    let again = stage.halt(&allowed, &resolved).await.unwrap();
    assert_eq!(again.android.unwrap().outcome, HaltOutcome::AlreadyDone);
    assert_eq!(stage.stores.commits(&stage.package()), 1);
}

#[tokio::test]
async fn nothing_to_halt_is_a_clear_no_op() {
    let stage = Stage::new("mob-nothing").await;
    stage.google_credentials().await;
    stage.apple_credentials().await;
    stage
        .stores
        .put_play_track(&stage.package(), "production", Vec::new());
    // Released to everyone at once: no phased release to pause.
    stage
        .stores
        .put_app_store_version(APP_ID, VERSION_ID, "4.2.0", "READY_FOR_SALE");
    let mobile = stage.both();
    let resolved = stage.resolve(&mobile).await;
    let lines = resolved.headlines();
    assert!(lines[0].contains("nothing to halt"), "{lines:?}");
    assert!(lines[1].contains("without a phased release"), "{lines:?}");
    let out = stage.halt(&mobile, &resolved).await.unwrap();
    let (android, ios) = (out.android.unwrap(), out.ios.unwrap());
    assert_eq!(android.outcome, HaltOutcome::NothingToHalt);
    assert!(
        android.summary.contains("nothing changed"),
        "{}",
        android.summary
    );
    assert_eq!(ios.outcome, HaltOutcome::NothingToHalt);
    assert!(stage.writes().is_empty(), "{:?}", stage.writes());
}

#[tokio::test]
async fn a_release_in_review_is_refused_not_cancelled() {
    let stage = Stage::new("mob-review").await;
    stage.staged_release().await;
    stage.stores.set_in_review(&stage.package(), true);
    let mobile = json!({"android": stage.android()});
    let resolved = stage.resolve(&mobile).await;
    let err = stage.halt(&mobile, &resolved).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreRefused, "{err}");
    assert!(err.to_string().contains("in review"), "{err}");
    assert!(err.to_string().contains("not cancelled"), "{err}");
    assert_eq!(stage.stores.reviews_cancelled(&stage.package()), 0);
    assert!(stage.stores.in_review(&stage.package()));
    assert_eq!(status_of(&stage.track()[1]), ReleaseStatus::InProgress);
    assert_eq!(stage.stores.commits(&stage.package()), 0);
}

#[tokio::test]
async fn badly_signed_or_foreign_tokens_are_reported_as_credentials() {
    let stage = Stage::new("mob-tokens").await;
    stage.staged_release().await;

    // An App Store key whose registered public half is another key's: 401 NOT_AUTHORIZED.
    let (_, other_public) = test_keys::app_store_key();
    stage
        .stores
        .register_app_store_key(KEY_ID, ISSUER_ID, &other_public)
        .unwrap();
    let err = stage
        .call(&json!({"ios": stage.ios()}), json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreCredentials, "{err}");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(
        err.to_string().contains(&stage.secret("app-store-connect")),
        "{err}"
    );

    // A Google key file whose private key is not the account's: the token endpoint refuses.
    let forged = json!({
        "type": "service_account",
        "client_email": stage.account(),
        "private_key": test_keys::foreign_rsa_private_key_pem(),
        "token_uri": stage.stores.google_token_uri(),
    });
    stage.put_secret(&stage.secret("forged"), &forged).await;
    let mut android = stage.android();
    android["credentials_secret"] = json!(stage.secret("forged"));
    let err = stage
        .call(&json!({"android": android}), json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreCredentials, "{err}");
    assert!(err.to_string().contains("Invalid JWT Signature"), "{err}");

    // A token Play does not know (another token endpoint's, as an expired one): 401.
    let elsewhere = StoreServer::start().await;
    let (_, public) =
        test_keys::google_service_account(&stage.account(), &elsewhere.google_token_uri());
    elsewhere
        .register_service_account(&stage.account(), &public)
        .unwrap();
    let mut clients = stage.clients.clone();
    clients.endpoints.google_token = Some(elsewhere.google_token_uri());
    let envelope = stage.envelope(
        &json!({"android": stage.android()}),
        json!({"action": "resolve"}),
    );
    let err = handle(&clients, envelope).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreCredentials, "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    // Tokens are made per call: the store expiring every token it issued changes nothing.
    stage.stores.expire_tokens();
    stage.resolve(&json!({"android": stage.android()})).await;
}

#[tokio::test]
async fn missing_credentials_stop_before_any_store_is_asked() {
    let stage = Stage::new("mob-nosecret").await;
    stage.google_credentials().await;
    // The App Store secret was never created.
    let mobile = stage.both();
    let resolve = stage
        .call(&mobile, json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(resolve.kind(), ErrorKind::StoreCredentials, "{resolve}");
    assert!(
        resolve
            .to_string()
            .contains(&stage.secret("app-store-connect"))
    );
    assert!(
        resolve.to_string().contains("ResourceNotFoundException"),
        "{resolve}"
    );

    let halt = stage
        .approved(&mobile, "halt", &MobileResolution::default())
        .await
        .unwrap_err();
    assert_eq!(halt.kind(), ErrorKind::StoreCredentials, "{halt}");
    assert!(
        stage.stores.requests().is_empty(),
        "{:?}",
        stage.stores.requests()
    );

    // A secret that is there but is not a key file: named by what it lacks.
    stage
        .put_secret(
            &stage.secret("app-store-connect"),
            &json!({"key_id": KEY_ID}),
        )
        .await;
    let malformed = stage
        .call(&mobile, json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(malformed.kind(), ErrorKind::StoreCredentials);
    assert!(
        malformed
            .to_string()
            .contains("lacks key_id, issuer_id or private_key")
    );
    assert!(stage.stores.requests().is_empty());
}

#[tokio::test]
async fn the_minimum_is_raised_only_where_a_safe_build_is_live() {
    let stage = Stage::new("mob-minimum").await;
    stage.staged_release().await;
    stage.set_parameter("android", "4.0.0").await;
    stage.set_parameter("ios", "4.0.0").await;
    let mut android = stage.android();
    android["minimum_version"] = json!({
        "ssm_parameter": stage.parameter("android"), "stable_version": "4.2.1",
        "safe_build_live": true
    });
    let mut ios = stage.ios();
    ios["minimum_version"] = json!({
        "ssm_parameter": stage.parameter("ios"), "stable_version": "4.2.1"
    });
    let mobile = json!({"android": android, "ios": ios});
    let resolved = stage.resolve(&mobile).await;
    let lines = resolved.headlines();
    assert!(lines[0].ends_with("minimum version 4.0.0 → 4.2.1 (users below must update)"));
    assert!(lines[1].contains("minimum version stays 4.0.0: no safe build is live"));

    let unsigned = stage
        .call(
            &mobile,
            json!({"action": "raise-minimum", "mobile": resolved}),
        )
        .await
        .unwrap_err();
    assert_eq!(unsigned.kind(), ErrorKind::NotApproved);
    assert_eq!(
        stage.parameter_value("android").await.as_deref(),
        Some("4.0.0")
    );

    let raise = || raise_minimum(&stage, &mobile, &resolved);
    let out = raise().await;
    assert_eq!(out.android.unwrap().outcome, RaiseOutcome::Raised);
    let ios_out = out.ios.unwrap();
    assert_eq!(ios_out.outcome, RaiseOutcome::NotRaised);
    assert!(
        ios_out.summary.contains("would lock users out"),
        "{}",
        ios_out.summary
    );
    assert_eq!(
        stage.parameter_value("android").await.as_deref(),
        Some("4.2.1")
    );
    assert_eq!(stage.parameter_value("ios").await.as_deref(), Some("4.0.0"));

    let again = raise().await;
    assert_eq!(again.android.unwrap().outcome, RaiseOutcome::AlreadyRaised);

    // A later fix's higher minimum is never lowered.
    stage.set_parameter("android", "4.3.0").await;
    let later = raise().await;
    assert_eq!(later.android.unwrap().outcome, RaiseOutcome::AlreadyRaised);
    assert_eq!(
        stage.parameter_value("android").await.as_deref(),
        Some("4.3.0")
    );
    assert!(
        stage.writes().is_empty(),
        "raise-minimum does not touch the stores"
    );
}

/// Every state-changing store call (Play's commit, the App Store's PATCH) under a fault after
/// the store carried it out: an answer lost mid-way, or a 5xx. The function reads the store
/// back and reports what happened, done once.
#[tokio::test]
async fn store_faults_after_a_write_are_observed_before_reporting() {
    for (n, fault) in [StoreFault::AnswerLostAfter, StoreFault::ErrorAfter]
        .into_iter()
        .enumerate()
    {
        let stage = Stage::new(&format!("mob-storefault{n}")).await;
        stage.staged_release().await;
        let mobile = stage.both();
        let resolved = stage.resolve(&mobile).await;
        stage.stores.inject("POST", ":commit", fault, 1);
        stage
            .stores
            .inject("PATCH", "appStoreVersionPhasedReleases", fault, 1);

        let halted = stage
            .halt(&mobile, &resolved)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(
            halted.android.unwrap().outcome,
            HaltOutcome::Halted,
            "{fault:?}"
        );
        assert_eq!(
            halted.ios.unwrap().outcome,
            HaltOutcome::Paused,
            "{fault:?}"
        );
        assert_eq!(status_of(&stage.track()[1]), ReleaseStatus::Halted);
        assert_eq!(stage.phased_state(), PhasedReleaseState::Paused);
        assert_eq!(stage.stores.commits(&stage.package()), 1, "{fault:?}");
        let faulted: Vec<u16> = stage
            .stores
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(":commit") || r.method == "PATCH")
            .map(|r| r.status)
            .collect();
        assert_eq!(
            faulted.len(),
            2,
            "{fault:?}: each write sent once: {faulted:?}"
        );
    }
}

/// A throttle before each write: a retryable error, nothing changed by the throttled call,
/// and what the other store already did named; the retries finish the job.
#[tokio::test]
async fn a_throttled_write_changes_nothing_and_the_retry_does_it() {
    let stage = Stage::new("mob-throttled").await;
    stage.staged_release().await;
    let mobile = stage.both();
    let resolved = stage.resolve(&mobile).await;
    stage
        .stores
        .inject("POST", ":commit", StoreFault::Throttle, 1);
    stage.stores.inject(
        "PATCH",
        "appStoreVersionPhasedReleases",
        StoreFault::Throttle,
        1,
    );

    let play_throttled = stage.halt(&mobile, &resolved).await.unwrap_err();
    assert_eq!(
        play_throttled.kind(),
        ErrorKind::Throttled,
        "{play_throttled}"
    );
    assert_eq!(status_of(&stage.track()[1]), ReleaseStatus::InProgress);
    assert_eq!(stage.phased_state(), PhasedReleaseState::Active);

    let apple_throttled = stage.halt(&mobile, &resolved).await.unwrap_err();
    assert_eq!(
        apple_throttled.kind(),
        ErrorKind::Throttled,
        "{apple_throttled}"
    );
    assert!(
        apple_throttled
            .to_string()
            .contains("already done: Google Play production: halted"),
        "{apple_throttled}"
    );
    assert_eq!(status_of(&stage.track()[1]), ReleaseStatus::Halted);
    assert_eq!(stage.phased_state(), PhasedReleaseState::Active);

    let done = stage.halt(&mobile, &resolved).await.unwrap();
    assert_eq!(done.android.unwrap().outcome, HaltOutcome::AlreadyDone);
    assert_eq!(done.ios.unwrap().outcome, HaltOutcome::Paused);
    assert_eq!(stage.stores.commits(&stage.package()), 1);
}

/// SSM's PutParameter of the minimum version, through the IAM gate's fault proxy: after an
/// answer lost or a 500 once SSM wrote it, the function reads the parameter back and reports
/// it raised; after a throttle it is retried (by the SDK or the definition) and raised once.
#[tokio::test]
async fn put_parameter_faults_are_observed_before_reporting() {
    for (n, fault) in [
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
        FaultKind::Throttle,
    ]
    .into_iter()
    .enumerate()
    {
        let stage = Stage::new(&format!("mob-ssmfault{n}")).await;
        stage.staged_release().await;
        stage.set_parameter("android", "4.0.0").await;
        let mut android = stage.android();
        android["minimum_version"] = json!({
            "ssm_parameter": stage.parameter("android"), "stable_version": "4.2.1",
            "safe_build_live": true
        });
        let mobile = json!({ "android": android });
        let resolved = stage.resolve(&mobile).await;
        stage
            .gate
            .proxy()
            .set_schedule(FaultSchedule::none().fail_next(1, "PutParameter", fault));
        let raised = match stage.approved(&mobile, "raise-minimum", &resolved).await {
            Ok(out) => out,
            Err(err) => {
                assert!(err.is_retryable(), "{fault}: {err}");
                stage
                    .approved(&mobile, "raise-minimum", &resolved)
                    .await
                    .unwrap()
            }
        };
        let raised: RaiseOutput = serde_json::from_value(raised).unwrap();
        let android = raised.android.unwrap();
        assert!(
            matches!(
                android.outcome,
                RaiseOutcome::Raised | RaiseOutcome::AlreadyRaised
            ),
            "{fault}: {android:?}"
        );
        assert_eq!(
            stage.parameter_value("android").await.as_deref(),
            Some("4.2.1")
        );
    }
}
