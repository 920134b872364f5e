//! The mobile part of a notice: what halting the bad release in each store and raising the
//! minimum supported version would do, so the approver sees who keeps the bad build before
//! choosing to include mobile (issue 16).

use std::fmt::Write as _;

use rollback_core::contract::mobile::{
    AppStoreResolution, MinimumVersionResolution, MobileResolution, PlayResolution,
};
use rollback_core::contract::notify::StepError;
use rollback_core::plan::MobileRef;

use crate::runbook::cause_text;
use crate::text::clean;

/// The `Mobile releases` section; `future`: an approval or escalation (not yet done).
pub fn section(out: &mut String, mobile: &MobileResolution, future: bool) {
    let _ = writeln!(out, "Mobile releases{}:", heading_note(mobile, future));
    if let Some(error) = &mobile.error {
        let _ = writeln!(
            out,
            "  The stores could not be read, so the mobile releases are left out of this \
             rollback (the bad release stays in the stores): {}",
            error_text(error)
        );
        return;
    }
    for line in mobile.headlines() {
        let _ = writeln!(out, "  - {}", clean(&line, 600));
    }
    if !mobile.has_work() {
        let _ = writeln!(
            out,
            "  Nothing to halt, pause or raise in the stores{}",
            if future {
                ": no link includes mobile."
            } else {
                "."
            }
        );
    }
}

fn heading_note(mobile: &MobileResolution, future: bool) -> &'static str {
    match (mobile.has_work(), future) {
        (true, true) => " (halted only with an \"approve … + mobile\" link)",
        // The headlines describe what was found before the approval; the step, what was done.
        (true, false) => {
            " (as found before the approval; the mobile step below says what was done)"
        }
        (false, _) => "",
    }
}

/// `Rollback.StoreCredentials: <message>`, the Lambda's JSON cause unwrapped.
fn error_text(error: &StepError) -> String {
    format!(
        "{}: {}",
        clean(&error.error, 80),
        clean(&cause_text(&error.cause), 600)
    )
}

/// Lines for the approval page's summary of a link (empty when the stores hold nothing to
/// do). The page cuts each line at 160 characters, so a platform's minimum version gets a line
/// of its own instead of trailing its headline.
pub fn summary_lines(mobile: &MobileResolution, included: bool) -> Vec<String> {
    if let Some(error) = &mobile.error {
        return vec![format!(
            "mobile releases left out: the stores could not be read ({})",
            clean(&error.error, 80)
        )];
    }
    if !mobile.has_work() {
        return Vec::new();
    }
    if !included {
        return vec![
            "mobile releases NOT halted, minimum versions NOT raised: the bad release stays in \
             the stores"
                .to_owned(),
        ];
    }
    let mut lines = Vec::new();
    if let Some(play) = &mobile.android {
        lines.push(play_headline(play));
        lines.extend(minimum_line("Android", &play.minimum_version));
    }
    if let Some(ios) = &mobile.ios {
        lines.push(app_store_headline(ios));
        lines.extend(minimum_line("iOS", &ios.minimum_version));
    }
    lines
}

/// The Play headline without its minimum version (see [`summary_lines`]).
fn play_headline(play: &PlayResolution) -> String {
    let bare = PlayResolution {
        minimum_version: None,
        ..play.clone()
    };
    clean(&bare.headline(), 300)
}

/// The App Store headline without its minimum version (see [`summary_lines`]).
fn app_store_headline(ios: &AppStoreResolution) -> String {
    let bare = AppStoreResolution {
        minimum_version: None,
        ..ios.clone()
    };
    clean(&bare.headline(), 300)
}

fn minimum_line(platform: &str, minimum: &Option<MinimumVersionResolution>) -> Option<String> {
    minimum
        .as_ref()
        .map(|m| format!("{platform}: {}", clean(&m.line(), 200)))
}

/// What to check in each store's console when the mobile step failed (the success notice's
/// MOBILE section, the contingency notice's next step): the halt or the raise may have
/// stopped halfway.
pub fn by_hand(mobile: &MobileRef) -> Vec<String> {
    let mut lines = vec![
        "The mobile step failed: the bad release may still be served. Check each store by hand:"
            .to_owned(),
    ];
    if let Some(android) = &mobile.android {
        lines.push(format!(
            "  Google Play {} ({} track): Play Console > Release > {} > halt the rollout if the \
             bad release is still in progress",
            clean(&android.package_name, 150),
            clean(&android.track, 50),
            clean(&android.track, 50)
        ));
    }
    if let Some(ios) = &mobile.ios {
        lines.push(format!(
            "  App Store app {}: App Store Connect > the version's Phased Release for Automatic \
             Updates > Pause",
            clean(&ios.app_id, 30)
        ));
    }
    let parameters: Vec<String> = [
        mobile
            .android
            .as_ref()
            .and_then(|a| a.minimum_version.as_ref()),
        mobile.ios.as_ref().and_then(|i| i.minimum_version.as_ref()),
    ]
    .into_iter()
    .flatten()
    .filter_map(|m| m.ssm_parameter.as_deref())
    .map(|p| clean(p, 200))
    .collect();
    if !parameters.is_empty() {
        lines.push(format!(
            "  Minimum versions (aws ssm get-parameter --name …): {}; raise one by hand only once \
             a safe build is live in its store, or users are locked out",
            parameters.join(", ")
        ));
    }
    lines
}

/// Store resolutions the notify tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use rollback_core::contract::mobile::{
        PhasedRelease, PhasedReleaseState, PlayRelease, PlayStatus,
    };

    fn release(name: &str, code: &str, status: PlayStatus, fraction: Option<f64>) -> PlayRelease {
        PlayRelease {
            name: Some(name.into()),
            version_codes: vec![code.into()],
            status,
            user_fraction: fraction,
        }
    }

    fn minimum(parameter: &str, current: &str, safe_build_live: bool) -> MinimumVersionResolution {
        MinimumVersionResolution {
            ssm_parameter: parameter.into(),
            current: Some(current.into()),
            stable_version: "4.2.1".into(),
            safe_build_live,
        }
    }

    /// A staged Play release at 20 % over 4.1.2, and an App Store phased release on day 3.
    pub(crate) fn staged_and_phased(safe_build_live: bool) -> MobileResolution {
        let stable = release("4.1.2", "41", PlayStatus::Completed, None);
        let staged = release("4.2.0", "42", PlayStatus::InProgress, Some(0.2));
        MobileResolution {
            android: Some(PlayResolution {
                package_name: "com.example.mint".into(),
                track: "production".into(),
                releases: vec![stable.clone(), staged.clone()],
                to_halt: Some(staged),
                already_halted: None,
                completed: Some(stable),
                minimum_version: Some(minimum("/mint/android/min", "4.0.0", safe_build_live)),
            }),
            ios: Some(AppStoreResolution {
                app_id: "1234567890".into(),
                version: Some("4.2.0".into()),
                version_id: Some("v1".into()),
                phased_release: Some(PhasedRelease {
                    id: "p1".into(),
                    state: PhasedReleaseState::Active,
                    current_day: Some(3),
                    total_pause_days: Some(0),
                }),
                minimum_version: Some(minimum("/mint/ios/min", "4.0.0", safe_build_live)),
            }),
            error: None,
        }
    }

    /// A plan with an image and both platforms; Android has a minimum version in SSM.
    pub(crate) fn plan_with_mobile() -> rollback_core::plan::Plan {
        serde_json::from_value(serde_json::json!({
            "service": "mint-replica",
            "images": [{"repository": "mint-backend", "release_tag": "prod", "stable_tag": "stable"}],
            "approval": {"timeout_minutes": 60, "escalate_after_minutes": 15},
            "mobile": {
                "android": {"package_name": "com.example.mint", "credentials_secret": "mint/play",
                            "minimum_version": {"ssm_parameter": "/mint/android/min",
                                                "stable_version": "4.2.1", "safe_build_live": true}},
                "ios": {"app_id": "1234567890", "credentials_secret": "mint/asc"}
            }
        }))
        .unwrap()
    }

    pub(crate) fn unread() -> MobileResolution {
        MobileResolution {
            error: Some(StepError {
                error: "Rollback.StoreCredentials".into(),
                cause: r#"{"errorType":"Rollback.StoreCredentials","errorMessage":"secret mint/play is not a service account key"}"#.into(),
            }),
            ..MobileResolution::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{staged_and_phased, unread};
    use super::*;

    #[test]
    fn the_approval_section_says_what_each_store_will_do_and_who_keeps_the_release() {
        let mut out = String::new();
        section(&mut out, &staged_and_phased(true), true);
        assert!(
            out.starts_with("Mobile releases (halted only with an \"approve … + mobile\" link):\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "  - Google Play production: 4.2.0 (42) at 20 % → halted; new and eligible users \
                 get 4.1.2 (41); users who installed 4.2.0 keep it; minimum version 4.0.0 → 4.2.1 \
                 (users below must update)\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "  - App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused; \
                 anyone can still update to 4.2.0 by hand, and users who installed it keep it; \
                 minimum version 4.0.0 → 4.2.1"
            ),
            "{out}"
        );
    }

    #[test]
    fn without_a_safe_build_the_section_says_the_minimum_stays() {
        let mut out = String::new();
        section(&mut out, &staged_and_phased(false), true);
        assert!(
            out.contains("minimum version stays 4.0.0: no safe build is live"),
            "{out}"
        );
        assert!(!out.contains("→ 4.2.1"), "{out}");
        assert!(out.contains("→ halted"), "the halt is still offered: {out}");
    }

    #[test]
    fn unread_stores_leave_mobile_out_and_say_why() {
        let mut out = String::new();
        section(&mut out, &unread(), true);
        assert_eq!(
            out,
            "Mobile releases:\n  The stores could not be read, so the mobile releases are left \
             out of this rollback (the bad release stays in the stores): \
             Rollback.StoreCredentials: secret mint/play is not a service account key\n"
        );
        assert_eq!(
            summary_lines(&unread(), false),
            ["mobile releases left out: the stores could not be read (Rollback.StoreCredentials)"]
        );
    }

    #[test]
    fn nothing_to_do_in_the_stores_says_no_link_includes_mobile() {
        let mut idle = staged_and_phased(false);
        if let Some(play) = idle.android.as_mut() {
            play.to_halt = None;
        }
        if let Some(ios) = idle.ios.as_mut() {
            ios.phased_release = None;
        }
        let mut out = String::new();
        section(&mut out, &idle, true);
        assert!(out.starts_with("Mobile releases:\n"), "{out}");
        assert!(
            out.ends_with(
                "Nothing to halt, pause or raise in the stores: no link includes mobile.\n"
            ),
            "{out}"
        );
        assert!(summary_lines(&idle, true).is_empty());
    }

    #[test]
    fn page_lines_give_each_minimum_version_its_own_line() {
        let lines = summary_lines(&staged_and_phased(true), true);
        assert_eq!(
            lines,
            [
                "Google Play production: 4.2.0 (42) at 20 % → halted; new and eligible users get \
                 4.1.2 (41); users who installed 4.2.0 keep it",
                "Android: minimum version 4.0.0 → 4.2.1 (users below must update)",
                "App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused; anyone \
                 can still update to 4.2.0 by hand, and users who installed it keep it",
                "iOS: minimum version 4.0.0 → 4.2.1 (users below must update)",
            ]
        );
        for line in &lines {
            let bound = rollback_core::approval_link::LinkSummary::MAX_LINE_CHARS;
            assert!(line.chars().count() <= bound, "cut on the page: {line}");
        }
        assert_eq!(
            summary_lines(&staged_and_phased(true), false),
            [
                "mobile releases NOT halted, minimum versions NOT raised: the bad release stays in \
              the stores"
            ]
        );
    }
}
