//! The plan's `mobile` section: which store releases a rollback stops, and which minimum
//! supported version it raises (issue 16).
//!
//! Neither store can roll a build back. Google Play can halt a release (users who installed it
//! keep it; Play serves the previous completed release to new and eligible users), and App
//! Store Connect can pause a phased release (anyone may still update by hand). What a rollback
//! can add is a forced update: the backend serves a minimum supported version per platform, and
//! raising it to a safe build sends users to that build, which only works once the build is
//! live in the store (else they are locked out), hence `safe_build_live`.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::validation::{Rule, ValidationErrors};

use super::rules;

/// Per platform, the app whose bad release is stopped. At least one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileRef {
    /// The Android app in Google Play, when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<AndroidRef>,
    /// The iOS app in App Store Connect, when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ios: Option<IosRef>,
}

/// The Android app in Google Play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidRef {
    /// The application id (`com.example.app`).
    pub package_name: String,
    /// The Play track the bad release is on (default `production`).
    #[serde(default = "default_track")]
    pub track: String,
    /// Secrets Manager secret (ARN or name) holding the Google service account's JSON key, as
    /// the Google Cloud console downloads it. The account needs release permissions for the app
    /// in Play Console (see infra/DEPLOY.md).
    pub credentials_secret: String,
    /// Also halt a fully rolled-out (100 %) release when no staged rollout is in progress:
    /// Play then serves the previous completed release to new and eligible users, and refuses
    /// for a track's first release. Off by default, because the newest completed release is
    /// usually the stable one; turn it on where releases go to 100 % at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub halt_completed: bool,
    /// Where its minimum supported version is, and what to raise it to (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<MinimumVersionRef>,
}

/// The iOS app in App Store Connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IosRef {
    /// The app's Apple ID (digits; App Store Connect, App Information).
    pub app_id: String,
    /// The bad version string (`4.2.0`). Default: the version live on the App Store, whose
    /// phased release is the one paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Secrets Manager secret (ARN or name) holding `{"key_id", "issuer_id", "private_key"}`:
    /// an App Store Connect API key (role App Manager or Admin) and its `.p8` PEM.
    pub credentials_secret: String,
    /// Where its minimum supported version is, and what to raise it to (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<MinimumVersionRef>,
}

/// Where the backend reads the platform's minimum supported version, and what a rollback sets
/// it to. Exactly one of `ssm_parameter` and `appconfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumVersionRef {
    /// SSM parameter (a plain String) holding the minimum version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
    /// An AWS AppConfig configuration instead: refused by validation for now (use
    /// `ssm_parameter`); the shape is accepted so the message can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appconfig: Option<AppConfigRef>,
    /// The version of the safe build users are sent to (`4.2.1`: the stable code, released with
    /// a version above the bad one so that users of the bad build must update).
    pub stable_version: String,
    /// Whether that build is live in the store now. Only then does a rollback raise the
    /// minimum: raising it before would lock out users who cannot get the build.
    #[serde(default)]
    pub safe_build_live: bool,
}

/// An AWS AppConfig hosted configuration holding the minimum version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfigRef {
    /// The AppConfig application.
    pub application: String,
    /// The AppConfig environment.
    pub environment: String,
    /// The AppConfig configuration profile.
    pub profile: String,
}

fn default_track() -> String {
    "production".to_owned()
}

/// An Android application id: at least two dot-separated segments of letters, digits and `_`,
/// each starting with a letter.
pub static PACKAGE_NAME: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$",
        3,
        150,
        "an Android application id such as com.example.app: two or more dot-separated \
         segments of letters, digits and _, each starting with a letter",
    )
});
/// A Play track: `production`, `beta`, `alpha`, `internal`, a closed testing track's name, or
/// a form factor's (`wear:production`).
pub static PLAY_TRACK: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$",
        1,
        100,
        "a Google Play track such as production, beta or wear:production (letters, digits, \
         space, _ . : -)",
    )
});
/// The app's Apple ID, as App Store Connect shows it.
pub static APPLE_APP_ID: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[0-9]+$",
        1,
        20,
        "the app's Apple ID: digits, as App Store Connect shows it under App Information \
         (not the bundle id)",
    )
});
/// An App Store version string: one to three dot-separated integers.
pub static APP_STORE_VERSION: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[0-9]+(\.[0-9]+){0,2}$",
        1,
        32,
        "an App Store version string such as 4.2.0 (one to three dot-separated integers)",
    )
});
/// A version the backend compares: dot-separated integers, optionally a `-`/`+` suffix.
pub static MINIMUM_VERSION: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[0-9]+(\.[0-9]+)*([-+][0-9A-Za-z.-]+)?$",
        1,
        64,
        "a version such as 4.2.1: dot-separated integers, optionally a -suffix",
    )
});

impl MobileRef {
    pub(super) fn validate(&self, errors: &mut ValidationErrors) {
        if self.android.is_none() && self.ios.is_none() {
            errors.push(
                "mobile",
                "name android, ios or both: an empty mobile section halts nothing (or remove it)",
            );
        }
        if let Some(android) = &self.android {
            android.validate(errors);
        }
        if let Some(ios) = &self.ios {
            ios.validate(errors);
        }
        if let (Some(a), Some(i)) = (&self.android, &self.ios) {
            check_shared_parameter(errors, a, i);
        }
    }
}

/// One SSM parameter for both platforms is fine only when both set it to the same version;
/// otherwise the second write would undo the first.
fn check_shared_parameter(errors: &mut ValidationErrors, android: &AndroidRef, ios: &IosRef) {
    let (Some(a), Some(i)) = (&android.minimum_version, &ios.minimum_version) else {
        return;
    };
    if a.ssm_parameter.is_some()
        && a.ssm_parameter == i.ssm_parameter
        && a.stable_version != i.stable_version
    {
        errors.push(
            "mobile.ios.minimum_version.ssm_parameter",
            format!(
                "is also android's, with another stable_version ({} here, {} there): give each \
                 platform its own parameter, or the same stable_version",
                i.stable_version, a.stable_version
            ),
        );
    }
}

impl AndroidRef {
    fn validate(&self, errors: &mut ValidationErrors) {
        let at = |field: &str| format!("mobile.android.{field}");
        PACKAGE_NAME.check(errors, &at("package_name"), &self.package_name);
        PLAY_TRACK.check(errors, &at("track"), &self.track);
        rules::SECRET_ID.check(errors, &at("credentials_secret"), &self.credentials_secret);
        if let Some(minimum) = &self.minimum_version {
            minimum.validate(errors, "mobile.android.minimum_version");
        }
    }
}

impl IosRef {
    fn validate(&self, errors: &mut ValidationErrors) {
        let at = |field: &str| format!("mobile.ios.{field}");
        APPLE_APP_ID.check(errors, &at("app_id"), &self.app_id);
        if let Some(version) = &self.version {
            APP_STORE_VERSION.check(errors, &at("version"), version);
        }
        rules::SECRET_ID.check(errors, &at("credentials_secret"), &self.credentials_secret);
        if let Some(minimum) = &self.minimum_version {
            minimum.validate(errors, "mobile.ios.minimum_version");
            if self.version.as_ref() == Some(&minimum.stable_version) {
                errors.push(
                    at("minimum_version.stable_version"),
                    "is the bad version (mobile.ios.version): give the version of the safe \
                     build users are sent to",
                );
            }
        }
    }
}

impl MinimumVersionRef {
    fn validate(&self, errors: &mut ValidationErrors, path: &str) {
        match (&self.ssm_parameter, &self.appconfig) {
            (Some(parameter), None) => {
                rules::SSM_PARAMETER.check(errors, &format!("{path}.ssm_parameter"), parameter);
            }
            (None, Some(_)) => errors.push(
                format!("{path}.appconfig"),
                "AWS AppConfig is not supported yet: keep the minimum version in an SSM \
                 parameter and name it in ssm_parameter",
            ),
            (Some(_), Some(_)) => errors.push(
                path,
                "give ssm_parameter or appconfig, not both: the backend reads one of them",
            ),
            (None, None) => errors.push(
                format!("{path}.ssm_parameter"),
                "name the SSM parameter the backend reads the minimum supported version from",
            ),
        }
        MINIMUM_VERSION.check(
            errors,
            &format!("{path}.stable_version"),
            &self.stable_version,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::plan::Plan;

    fn plan(mobile: Value) -> Value {
        json!({"service": "mint-replica", "images": [
            {"repository": "mint/api", "release_tag": "prod", "stable_tag": "stable"}
        ], "mobile": mobile})
    }

    fn mobile() -> Value {
        json!({
            "android": {
                "package_name": "com.example.mint",
                "credentials_secret": "mint-replica/google-play",
                "minimum_version": {"ssm_parameter": "/mint-replica/android/min-version",
                                    "stable_version": "4.2.1", "safe_build_live": true}
            },
            "ios": {
                "app_id": "1234567890",
                "version": "4.2.0",
                "credentials_secret": "mint-replica/app-store-connect",
                "minimum_version": {"ssm_parameter": "/mint-replica/ios/min-version",
                                    "stable_version": "4.2.1"}
            }
        })
    }

    /// The errors of a plan with this mobile section, as `(path, message)`.
    fn errors(mobile: Value) -> Vec<(String, String)> {
        match Plan::from_value(plan(mobile)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| (e.path.clone(), e.message.clone()))
                .collect(),
        }
    }

    fn rejects(mutate: impl FnOnce(&mut Value), path: &str, says: &str) {
        let mut m = mobile();
        mutate(&mut m);
        let errors = errors(m);
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(says)),
            "expected {path}: …{says}… in {errors:?}"
        );
    }

    #[test]
    fn a_full_mobile_section_validates_with_its_defaults() {
        let parsed = Plan::from_value(plan(mobile())).unwrap();
        let mobile = parsed.mobile.unwrap();
        let android = mobile.android.unwrap();
        assert_eq!(android.track, "production");
        assert!(android.minimum_version.unwrap().safe_build_live);
        assert!(!mobile.ios.unwrap().minimum_version.unwrap().safe_build_live);
        // Absent, the section is not serialized (plans without it keep their fingerprint).
        let without = Plan::from_value(plan(Value::Null)).unwrap();
        assert!(
            serde_json::to_value(&without)
                .unwrap()
                .get("mobile")
                .is_none()
        );
    }

    #[test]
    fn every_field_names_its_fix() {
        rejects(
            |m| m["android"]["package_name"] = json!("mint"),
            "mobile.android.package_name",
            "com.example.app",
        );
        rejects(
            |m| m["android"]["track"] = json!("prod/uction"),
            "mobile.android.track",
            "Google Play track",
        );
        rejects(
            |m| m["android"]["credentials_secret"] = json!("a b"),
            "mobile.android.credentials_secret",
            "Secrets Manager",
        );
        rejects(
            |m| m["ios"]["app_id"] = json!("com.example.mint"),
            "mobile.ios.app_id",
            "Apple ID",
        );
        rejects(
            |m| m["ios"]["version"] = json!("4.2.0.1"),
            "mobile.ios.version",
            "one to three",
        );
        rejects(
            |m| m["ios"]["minimum_version"]["stable_version"] = json!("4.2.0"),
            "mobile.ios.minimum_version.stable_version",
            "is the bad version",
        );
        rejects(
            |m| m["android"]["minimum_version"]["stable_version"] = json!("latest"),
            "mobile.android.minimum_version.stable_version",
            "such as 4.2.1",
        );
        rejects(|m| *m = json!({}), "mobile", "name android, ios or both");
    }

    #[test]
    fn the_minimum_version_lives_in_one_place_ssm_for_now() {
        rejects(
            |m| {
                m["android"]["minimum_version"]["appconfig"] =
                    json!({"application": "a", "environment": "e", "profile": "p"});
                m["android"]["minimum_version"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ssm_parameter");
            },
            "mobile.android.minimum_version.appconfig",
            "not supported yet",
        );
        rejects(
            |m| {
                m["ios"]["minimum_version"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ssm_parameter");
            },
            "mobile.ios.minimum_version.ssm_parameter",
            "name the SSM parameter",
        );
        rejects(
            |m| {
                m["ios"]["minimum_version"]["ssm_parameter"] =
                    json!("/mint-replica/android/min-version");
                m["ios"]["minimum_version"]["stable_version"] = json!("4.3.0");
            },
            "mobile.ios.minimum_version.ssm_parameter",
            "give each platform its own parameter",
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let mut m = mobile();
        m["android"]["version_code"] = json!(42);
        let errors = errors(m);
        assert!(
            errors
                .iter()
                .any(|(p, msg)| p.starts_with("mobile.android") && msg.contains("unknown field")),
            "{errors:?}"
        );
    }
}
