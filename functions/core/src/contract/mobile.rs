//! Contract of the `mobile` function: stop the bad release in the app stores and raise the
//! minimum supported version (`plan.mobile`).
//!
//! - `resolve` reads each platform's store credentials first (a missing or malformed secret is
//!   `Rollback.StoreCredentials` before any store is asked), then what is live: the Play track's
//!   releases and the one `halt` would halt; the App Store version and its phased release; the
//!   current minimum version (→ [`MobileResolution`]). Changes nothing.
//! - `halt` takes the approved resolution back and, with a signed decision, halts the Play
//!   release: its staged rollout, or a fully rolled-out release where the plan sets
//!   `halt_completed` (an edit: status `halted`, version codes and user fraction kept, committed
//!   with `changesInReviewBehavior=ERROR_IF_IN_REVIEW` so a review in progress is never
//!   cancelled), and pauses the App Store phased release (→ [`HaltOutput`]). Already halted or paused, or nothing
//!   to halt: a no-op that says so. A release that is no longer the approved one:
//!   `Rollback.PlanDrifted`. In drill mode the Play edit is made and deleted, never committed,
//!   and the App Store is only read.
//! - `status` reads what is live now (→ [`MobileResolution`]), for the report.
//! - `raise-minimum` takes the approved resolution back and, with a signed decision, writes
//!   each platform's stable version to its SSM parameter, only where the plan says a safe build
//!   is live, and never lowers a minimum (→ [`RaiseOutput`]).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::notify::StepError;

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &["resolve", "halt", "status", "raise-minimum"];

/// A Play track's releases listed in a resolution at most (the newest): Play keeps a few
/// active releases per track; the list is for people and bounded for the state's size.
pub const MAX_LISTED_RELEASES: usize = 4;

/// The function's actions, with their own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MobileAction {
    /// Read the store credentials and what is live in each store; changes nothing.
    Resolve,
    /// Halt the Play release and pause the App Store phased release that were approved.
    Halt {
        /// The approved resolution (`resolved.mobile`).
        mobile: MobileResolution,
    },
    /// Read what is live now, for the report.
    Status,
    /// Write each platform's stable version as its minimum supported version.
    RaiseMinimum {
        /// The approved resolution (`resolved.mobile`).
        mobile: MobileResolution,
    },
}

/// What "stop the bad mobile release" means for this execution, per platform: shown to the
/// approver and fingerprinted with the rest of the resolved plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MobileResolution {
    /// Google Play, when the plan names an Android app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<PlayResolution>,
    /// The App Store, when the plan names an iOS app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ios: Option<AppStoreResolution>,
    /// Why the stores could not be read before the approval (the definition's catch of
    /// `resolve`): the mobile releases are left out of this rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

impl MobileResolution {
    /// One line per platform, for the approval email and the report.
    pub fn headlines(&self) -> Vec<String> {
        let android = self.android.as_ref().map(PlayResolution::headline);
        let ios = self.ios.as_ref().map(AppStoreResolution::headline);
        let error = self.error.as_ref().map(|e| {
            format!(
                "the stores could not be read ({}: {}); the mobile releases are left out of \
                 this rollback",
                e.error, e.cause
            )
        });
        android.into_iter().chain(ios).chain(error).collect()
    }

    /// Whether `halt` or `raise-minimum` would change anything: a release to halt or pause, or
    /// a minimum version to raise. The approval offers mobile only then.
    pub fn has_work(&self) -> bool {
        self.error.is_none()
            && (self.android.as_ref().is_some_and(PlayResolution::has_work)
                || self.ios.as_ref().is_some_and(AppStoreResolution::has_work))
    }
}

/// A Play release's status (`edits.tracks` Release.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlayStatus {
    /// Not yet sent to users.
    Draft,
    /// A staged rollout (`userFraction` below 1).
    InProgress,
    /// Halted: no longer offered to new users.
    Halted,
    /// Rolled out to every user.
    Completed,
    /// `statusUnspecified`, or a status this version does not know.
    #[serde(other)]
    StatusUnspecified,
}

/// One release of a Play track, as `edits.tracks.get` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayRelease {
    /// The release name (`4.2.0`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The version codes the release ships.
    pub version_codes: Vec<String>,
    /// Its rollout status.
    pub status: PlayStatus,
    /// The staged rollout's fraction of users (0-1); none for a completed release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_fraction: Option<f64>,
}

impl PlayRelease {
    /// `4.2.0 (42)`, or `version code 42` for a release without a name.
    pub fn label(&self) -> String {
        let codes = self.version_codes.join(", ");
        match &self.name {
            Some(name) if !name.is_empty() => format!("{name} ({codes})"),
            _ if self.version_codes.len() == 1 => format!("version code {codes}"),
            _ => format!("version codes {codes}"),
        }
    }

    /// `20 %` for a staged rollout, `100 %` for a completed release.
    pub fn rollout(&self) -> String {
        match (self.status, self.user_fraction) {
            (PlayStatus::Completed, _) | (_, None) => "100 %".to_owned(),
            (_, Some(fraction)) => percent(fraction),
        }
    }

    /// The name users see when they say which version they have (`4.2.0`), else the label.
    fn version_name(&self) -> String {
        match &self.name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => self.label(),
        }
    }
}

/// `0.2` → `20 %`, `0.055` → `5.5 %`.
pub fn percent(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

/// What the Play track holds and what `halt` would do to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayResolution {
    /// The application id (`com.example.app`).
    pub package_name: String,
    /// The Play track read (`production`, …).
    pub track: String,
    /// Every active release on the track, as Play lists them.
    pub releases: Vec<PlayRelease>,
    /// The release `halt` halts: the track's staged rollout, else (with the plan's
    /// `halt_completed`) its newest completed release. None: nothing to halt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_halt: Option<PlayRelease>,
    /// A halted release on the track when nothing else is to be halted: already done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_halted: Option<PlayRelease>,
    /// The newest completed release: what new users get once the staged rollout is halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<PlayRelease>,
    /// The Android minimum supported version, when the plan sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<MinimumVersionResolution>,
}

/// What `halt` acts on, picked from a track's releases by [`PlayResolution::choose`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayChoice {
    /// See [`PlayResolution::to_halt`].
    pub to_halt: Option<PlayRelease>,
    /// See [`PlayResolution::already_halted`].
    pub already_halted: Option<PlayRelease>,
    /// See [`PlayResolution::completed`].
    pub completed: Option<PlayRelease>,
}

impl PlayResolution {
    /// Picks from the track's releases (Play lists the newest last): its staged rollout (in
    /// progress); else its halted release, already done; else, with `halt_completed`, its
    /// newest completed release, since Play can halt a fully rolled-out release too.
    pub fn choose(releases: &[PlayRelease], halt_completed: bool) -> PlayChoice {
        let find = |status| releases.iter().rev().find(|r| r.status == status).cloned();
        let completed = find(PlayStatus::Completed);
        if let Some(staged) = find(PlayStatus::InProgress) {
            return PlayChoice {
                to_halt: Some(staged),
                already_halted: None,
                completed,
            };
        }
        if let Some(halted) = find(PlayStatus::Halted) {
            return PlayChoice {
                to_halt: None,
                already_halted: Some(halted),
                completed,
            };
        }
        PlayChoice {
            to_halt: completed.clone().filter(|_| halt_completed),
            already_halted: None,
            completed,
        }
    }

    /// A release to halt, or a minimum version to raise.
    pub fn has_work(&self) -> bool {
        self.to_halt.is_some()
            || self
                .minimum_version
                .as_ref()
                .is_some_and(|m| m.would_raise())
    }

    /// `Google Play production: 4.2.0 (42) at 20 % → halted; …; users who installed 4.2.0
    /// keep it`, then the minimum version.
    pub fn headline(&self) -> String {
        let what = match (&self.to_halt, &self.already_halted, &self.completed) {
            (Some(release), _, _) if release.status == PlayStatus::Completed => format!(
                "{} at 100 % → halted; Play serves the previous completed release to new and \
                 eligible users (it refuses for the track's first release); users who \
                 installed {} keep it",
                release.label(),
                release.version_name()
            ),
            (Some(release), _, completed) => format!(
                "{} at {} → halted; new and eligible users get {}; users who installed {} keep it",
                release.label(),
                release.rollout(),
                completed.as_ref().map_or(
                    "the previous completed release".to_owned(),
                    PlayRelease::label
                ),
                release.version_name()
            ),
            (None, Some(halted), _) => {
                format!("{} is already halted; nothing to halt", halted.label())
            }
            (None, None, Some(completed)) => format!(
                "{} is fully rolled out and no release is in progress: nothing to halt (a \
                 completed release is halted only with mobile.android.halt_completed)",
                completed.label()
            ),
            (None, None, None) => "no release in progress or completed; nothing to halt".to_owned(),
        };
        with_minimum(
            format!("Google Play {}: {what}", self.track),
            &self.minimum_version,
        )
    }
}

/// `appStoreVersionPhasedReleases` `phasedReleaseState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhasedReleaseState {
    /// Set up, not started (the version is not released yet).
    Inactive,
    /// Releasing day by day: what `halt` pauses.
    Active,
    /// Paused (by a rollback or a person).
    Paused,
    /// Released to every user.
    Complete,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

/// A version's phased release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasedRelease {
    /// App Store Connect's id of the phased release.
    pub id: String,
    /// Its state.
    pub state: PhasedReleaseState,
    /// Day 1-7 of the 7-day release (Apple's `currentDayNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_day: Option<u32>,
    /// Days paused so far (Apple's `totalPauseDuration`): a phased release may stay paused
    /// for 30 days in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pause_days: Option<u32>,
}

/// Share of automatic updates Apple offers a version on each day of its phased release (App
/// Store Connect Help, "Release a version update in phases").
pub fn phased_release_percent(day: u32) -> Option<u32> {
    [1, 2, 5, 10, 20, 50, 100]
        .get(usize::try_from(day).ok()?.checked_sub(1)?)
        .copied()
}

/// The App Store version and its phased release, and what `halt` would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStoreResolution {
    /// The app's Apple ID.
    pub app_id: String,
    /// The bad version, when the App Store has it (`None`: no live version found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// App Store Connect's id of that version, so `halt` can tell the approved version from a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The version's phased release; none when it was released to everyone at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phased_release: Option<PhasedRelease>,
    /// The iOS minimum supported version, when the plan sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<MinimumVersionResolution>,
}

impl AppStoreResolution {
    /// A phased release to pause, or a minimum version to raise.
    pub fn has_work(&self) -> bool {
        self.pausable()
            || self
                .minimum_version
                .as_ref()
                .is_some_and(|m| m.would_raise())
    }

    /// Whether `halt` would pause something: the version's phased release is active.
    pub fn pausable(&self) -> bool {
        self.phased_release
            .as_ref()
            .is_some_and(|p| p.state == PhasedReleaseState::Active)
    }

    /// `App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused; …`.
    pub fn headline(&self) -> String {
        let version = self.version.as_deref().unwrap_or("the live version");
        let what = match &self.phased_release {
            _ if self.version.is_none() => "no live version found; nothing to pause".to_owned(),
            None => format!(
                "{version} was released without a phased release; Apple cannot pause or roll \
                 it back: nothing to pause"
            ),
            Some(p) => phased_line(version, p),
        };
        with_minimum(format!("App Store: {what}"), &self.minimum_version)
    }
}

fn phased_line(version: &str, phased: &PhasedRelease) -> String {
    let day = match phased.current_day {
        Some(day) => match phased_release_percent(day) {
            Some(pct) => format!("day {day} ({pct} % of automatic updates)"),
            None => format!("day {day}"),
        },
        None => "day unknown".to_owned(),
    };
    match phased.state {
        PhasedReleaseState::Active => format!(
            "{version} phased release {day} → paused; anyone can still update to {version} by \
             hand, and users who installed it keep it"
        ),
        PhasedReleaseState::Paused => {
            format!("{version} phased release is already paused ({day}); nothing to pause")
        }
        PhasedReleaseState::Complete => format!(
            "{version} is released to all users (phased release complete); Apple cannot pause \
             or roll it back: nothing to pause"
        ),
        PhasedReleaseState::Inactive => format!(
            "{version} phased release has not started; nothing to pause (do not release it)"
        ),
        PhasedReleaseState::Unknown => {
            format!("{version} phased release is in a state this version does not know")
        }
    }
}

/// A platform's minimum supported version, now and after `raise-minimum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumVersionResolution {
    /// The SSM parameter the backend reads the minimum version from.
    pub ssm_parameter: String,
    /// The value now; none when the parameter does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The plan's `stable_version`: what `raise-minimum` writes.
    pub stable_version: String,
    /// The plan's `safe_build_live`: the minimum is raised only when true.
    pub safe_build_live: bool,
}

impl MinimumVersionResolution {
    /// Whether `raise-minimum` writes the stable version: a safe build is live, and the
    /// minimum is below it (never lowered).
    pub fn would_raise(&self) -> bool {
        self.safe_build_live && self.already_at_or_above().is_none()
    }

    /// `Some(current)` when the minimum already is the stable version or above it.
    pub fn already_at_or_above(&self) -> Option<&str> {
        let current = self.current.as_deref()?;
        match version_order(current, &self.stable_version) {
            Some(Ordering::Equal | Ordering::Greater) => Some(current),
            _ if current == self.stable_version => Some(current),
            _ => None,
        }
    }

    /// `minimum version 4.0.0 → 4.2.1` or why it stays.
    pub fn line(&self) -> String {
        let current = self.current.as_deref().unwrap_or("unset");
        if let Some(current) = self.already_at_or_above() {
            format!(
                "minimum version stays {current} (already at or above {})",
                self.stable_version
            )
        } else if !self.safe_build_live {
            format!(
                "minimum version stays {current}: no safe build is live (the plan's \
                 safe_build_live is false), and raising it to {} would lock users out",
                self.stable_version
            )
        } else {
            format!(
                "minimum version {current} → {} (users below must update)",
                self.stable_version
            )
        }
    }
}

fn with_minimum(line: String, minimum: &Option<MinimumVersionResolution>) -> String {
    match minimum {
        Some(minimum) => format!("{line}; {}", minimum.line()),
        None => line,
    }
}

/// Orders two versions by their dot-separated numbers (`4.10.0` > `4.9.1`, `4.2` = `4.2.0`);
/// a `-`/`+` suffix is ignored. `None` when either is not such a version.
pub fn version_order(a: &str, b: &str) -> Option<Ordering> {
    fn numbers(v: &str) -> Option<Vec<u64>> {
        let core = v.split(['-', '+']).next()?;
        let mut parts: Vec<u64> = core
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        Some(parts)
    }
    Some(numbers(a)?.cmp(&numbers(b)?))
}

/// What `halt` did on one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaltOutcome {
    /// The Play release is halted now.
    Halted,
    /// The App Store phased release is paused now.
    Paused,
    /// It was halted or paused already: nothing changed.
    AlreadyDone,
    /// Nothing to halt or pause: nothing changed.
    NothingToHalt,
    /// Drill mode: checked as far as the store allows without changing anything.
    Rehearsed,
}

/// One platform's `halt`, with the line for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformHalt {
    /// What happened.
    pub outcome: HaltOutcome,
    /// One line for the report.
    pub summary: String,
}

/// An action's output per platform (`halt`: [`PlatformHalt`]; `raise-minimum`:
/// [`PlatformRaise`]), with every platform's line joined for the step's progress detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Not serde's inferred `T: Default` (from the fields' `default`): a missing platform is None.
#[serde(bound(deserialize = "T: Deserialize<'de>", serialize = "T: Serialize"))]
pub struct PerPlatform<T> {
    /// The execution ran in drill mode: nothing was committed to a store or written to SSM.
    pub drill: bool,
    /// Google Play's result, when the plan names an Android app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<T>,
    /// The App Store's result, when the plan names an iOS app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ios: Option<T>,
    /// The platforms' lines joined with `; `, or `nothing to do`.
    #[serde(default)]
    pub summary: String,
}

/// A platform's result with its one line for the report.
pub trait PlatformLine {
    /// The platform's one line for the report.
    fn line(&self) -> &str;
}

impl<T: PlatformLine> PerPlatform<T> {
    /// The output with its `summary` filled in from the platforms'.
    pub fn summarized(mut self) -> PerPlatform<T> {
        let lines: Vec<&str> = [&self.android, &self.ios]
            .into_iter()
            .flatten()
            .map(PlatformLine::line)
            .collect();
        self.summary = if lines.is_empty() {
            "nothing to do".to_owned()
        } else {
            lines.join("; ")
        };
        self
    }
}

/// `halt`'s output: per platform of the plan, what happened.
pub type HaltOutput = PerPlatform<PlatformHalt>;

impl PlatformLine for PlatformHalt {
    fn line(&self) -> &str {
        &self.summary
    }
}

/// What `raise-minimum` did on one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RaiseOutcome {
    /// The parameter holds the stable version now.
    Raised,
    /// It was at the stable version or above: nothing written.
    AlreadyRaised,
    /// No safe build is live: nothing written (`summary` says why).
    NotRaised,
    /// Drill mode: nothing written.
    Rehearsed,
}

/// One platform's `raise-minimum`, with the line for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRaise {
    /// What happened.
    pub outcome: RaiseOutcome,
    /// The SSM parameter written (or left alone).
    pub ssm_parameter: String,
    /// The value before (none: the parameter did not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// One line for the report.
    pub summary: String,
}

/// `raise-minimum`'s output: per platform with a minimum version, what happened.
pub type RaiseOutput = PerPlatform<PlatformRaise>;

impl PlatformLine for PlatformRaise {
    fn line(&self) -> &str {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str, code: &str, status: PlayStatus, fraction: Option<f64>) -> PlayRelease {
        PlayRelease {
            name: Some(name.into()),
            version_codes: vec![code.into()],
            status,
            user_fraction: fraction,
        }
    }

    fn play_with(releases: Vec<PlayRelease>, halt_completed: bool) -> PlayResolution {
        let choice = PlayResolution::choose(&releases, halt_completed);
        PlayResolution {
            package_name: "com.example.mint".into(),
            track: "production".into(),
            releases,
            to_halt: choice.to_halt,
            already_halted: choice.already_halted,
            completed: choice.completed,
            minimum_version: None,
        }
    }

    fn play(releases: Vec<PlayRelease>) -> PlayResolution {
        play_with(releases, false)
    }

    #[test]
    fn the_staged_rollout_is_halted_before_any_completed_release() {
        let staged = play(vec![
            release("4.1.2", "41", PlayStatus::Completed, None),
            release("4.2.0", "42", PlayStatus::InProgress, Some(0.2)),
        ]);
        assert_eq!(staged.to_halt.as_ref().unwrap().version_codes, ["42"]);
        assert_eq!(
            staged.headline(),
            "Google Play production: 4.2.0 (42) at 20 % → halted; new and eligible users get \
             4.1.2 (41); users who installed 4.2.0 keep it"
        );
        let only_completed = vec![release("4.2.0", "42", PlayStatus::Completed, None)];
        let kept = play(only_completed.clone());
        assert!(
            kept.to_halt.is_none(),
            "a completed release is not halted by default"
        );
        assert!(
            kept.headline().contains("fully rolled out"),
            "{}",
            kept.headline()
        );
        let full = play_with(only_completed, true);
        assert!(full.headline().contains("4.2.0 (42) at 100 % → halted"));
        assert!(full.headline().contains("first release"));
        let halted = play(vec![
            release("4.1.2", "41", PlayStatus::Completed, None),
            release("4.2.0", "42", PlayStatus::Halted, Some(0.2)),
        ]);
        assert!(halted.to_halt.is_none());
        assert!(halted.headline().contains("already halted"));
        assert!(play(vec![]).headline().contains("nothing to halt"));
    }

    #[test]
    fn phased_release_lines_say_what_users_see() {
        let mut ios = AppStoreResolution {
            app_id: "1234567890".into(),
            version: Some("4.2.0".into()),
            version_id: Some("v1".into()),
            phased_release: Some(PhasedRelease {
                id: "p1".into(),
                state: PhasedReleaseState::Active,
                current_day: Some(3),
                total_pause_days: Some(0),
            }),
            minimum_version: Some(MinimumVersionResolution {
                ssm_parameter: "/mint/ios/min".into(),
                current: Some("4.0.0".into()),
                stable_version: "4.2.1".into(),
                safe_build_live: true,
            }),
        };
        assert!(ios.pausable());
        assert_eq!(
            ios.headline(),
            "App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused; anyone \
             can still update to 4.2.0 by hand, and users who installed it keep it; minimum \
             version 4.0.0 → 4.2.1 (users below must update)"
        );
        ios.phased_release.as_mut().unwrap().state = PhasedReleaseState::Complete;
        assert!(!ios.pausable());
        assert!(ios.headline().contains("nothing to pause"));
        ios.phased_release = None;
        assert!(ios.headline().contains("without a phased release"));
    }

    #[test]
    fn the_minimum_is_raised_only_with_a_safe_build_and_never_lowered() {
        let mut m = MinimumVersionResolution {
            ssm_parameter: "/p".into(),
            current: Some("4.0.0".into()),
            stable_version: "4.2.1".into(),
            safe_build_live: false,
        };
        assert!(!m.would_raise());
        assert!(m.line().contains("would lock users out"), "{}", m.line());
        m.safe_build_live = true;
        assert!(m.would_raise());
        m.current = Some("4.10".into());
        assert!(!m.would_raise(), "4.10 is above 4.2.1");
        m.current = Some("4.2.1".into());
        assert!(!m.would_raise());
        m.current = None;
        assert!(m.would_raise());
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        assert_eq!(version_order("4.10.0", "4.9.1"), Some(Ordering::Greater));
        assert_eq!(version_order("4.2", "4.2.0"), Some(Ordering::Equal));
        assert_eq!(version_order("4.2.0-rc1", "4.2.0"), Some(Ordering::Equal));
        assert_eq!(version_order("x", "4.2.0"), None);
        assert_eq!(percent(0.2), "20 %");
        assert_eq!(percent(0.055), "5.5 %");
        assert_eq!(phased_release_percent(7), Some(100));
        assert_eq!(phased_release_percent(0), None);
    }

    #[test]
    fn play_statuses_read_as_play_writes_them() {
        let status: PlayStatus = serde_json::from_value(serde_json::json!("inProgress")).unwrap();
        assert_eq!(status, PlayStatus::InProgress);
        let odd: PlayStatus = serde_json::from_value(serde_json::json!("somethingNew")).unwrap();
        assert_eq!(odd, PlayStatus::StatusUnspecified);
    }
}
