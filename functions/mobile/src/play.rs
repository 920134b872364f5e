//! Google Play: the Android Publisher API v3 edits that read a track and halt its release.
//!
//! Every change goes through an edit (`edits.insert` → `edits.tracks.get` →
//! `edits.tracks.update` → `edits.commit`), committed with
//! `changesInReviewBehavior=ERROR_IF_IN_REVIEW`: the default, `CANCEL_IN_REVIEW_AND_SUBMIT`,
//! would silently cancel a review in progress. A halted release keeps its version codes and
//! user fraction (only `status` changes), so it can be resumed from Play Console. Reads open an
//! edit too, and delete it.

use rollback_core::RollbackError;
use rollback_core::contract::mobile::{
    HaltOutcome, MAX_LISTED_RELEASES, PlatformHalt, PlayRelease, PlayResolution, PlayStatus,
};
use rollback_core::plan::AndroidRef;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Clients;
use crate::credentials::{Bearer, GoogleKey};
use crate::http::{self, Answer, GoogleError};

/// A session with the Android Publisher API for one app's track.
pub struct Play<'a> {
    clients: &'a Clients,
    token: Bearer,
    android: &'a AndroidRef,
    key: &'a GoogleKey,
}

impl<'a> Play<'a> {
    /// Signs in as the service account.
    pub async fn open(
        clients: &'a Clients,
        android: &'a AndroidRef,
        key: &'a GoogleKey,
    ) -> Result<Play<'a>, RollbackError> {
        let token = key
            .access_token(clients, clients.endpoints.google_token.as_deref())
            .await?;
        Ok(Play {
            clients,
            token,
            android,
            key,
        })
    }

    /// `{play}/applications/{package}/edits{tail}`.
    fn url(&self, tail: &str) -> String {
        format!(
            "{}/applications/{}/edits{tail}",
            self.clients.endpoints.play.trim_end_matches('/'),
            segment(&self.android.package_name)
        )
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<Value, RollbackError> {
        let request = request.bearer_auth(self.token.as_str());
        let answer = http::send(request, operation).await?;
        if answer.is_success() {
            Ok(answer.body)
        } else {
            Err(self.refusal(operation, &answer))
        }
    }

    /// `edits.insert`: a new edit's id.
    pub async fn insert_edit(&self) -> Result<String, RollbackError> {
        let http = &self.clients.http;
        let edit = self.call(http.post(self.url("")), "edits.insert").await?;
        edit["id"].as_str().map(str::to_owned).ok_or_else(|| {
            RollbackError::Internal("Google Play's edits.insert answered without an edit id".into())
        })
    }

    /// `edits.tracks.get`: the track as Play returns it.
    pub async fn get_track(&self, edit: &str) -> Result<Value, RollbackError> {
        let url = self.url(&format!("/{}/tracks/{}", segment(edit), self.track()));
        self.call(self.clients.http.get(url), "edits.tracks.get")
            .await
    }

    /// `edits.tracks.update` with the whole track (its releases as they are, one changed).
    pub async fn update_track(&self, edit: &str, track: &Value) -> Result<(), RollbackError> {
        let url = self.url(&format!("/{}/tracks/{}", segment(edit), self.track()));
        let request = self.clients.http.put(url).json(track);
        self.call(request, "edits.tracks.update").await.map(drop)
    }

    /// `edits.commit`, refusing rather than cancelling changes in review.
    pub async fn commit(&self, edit: &str) -> Result<(), RollbackError> {
        let url = self.url(&format!(
            "/{}:commit?changesInReviewBehavior=ERROR_IF_IN_REVIEW",
            segment(edit)
        ));
        self.call(self.clients.http.post(url), "edits.commit")
            .await
            .map(drop)
    }

    /// `edits.delete`, best effort: an edit left open expires by itself and changes nothing.
    /// Whether the live track shows the release with these version codes halted (read in an
    /// edit of its own, deleted after). A failed read counts as no.
    pub async fn shows_halted(&self, version_codes: &[String]) -> bool {
        let Ok(edit) = self.insert_edit().await else {
            return false;
        };
        let track = self.get_track(&edit).await;
        self.delete_edit(&edit).await;
        let releases = track.and_then(|track| releases(&track)).unwrap_or_default();
        releases
            .iter()
            .any(|r| r.version_codes == version_codes && r.status == PlayStatus::Halted)
    }

    pub async fn delete_edit(&self, edit: &str) {
        let url = self.url(&format!("/{}", segment(edit)));
        if let Err(err) = self
            .call(self.clients.http.delete(url), "edits.delete")
            .await
        {
            tracing::warn!(package = %self.android.package_name, error = %err, "edit not deleted");
        }
    }

    fn track(&self) -> String {
        segment(&self.android.track)
    }

    /// A refusal, with Play's reason and the fix.
    fn refusal(&self, operation: &str, answer: &Answer) -> RollbackError {
        let error = GoogleError::parse(&answer.body);
        if let Some(err) = http::retryable(operation, answer, &error.describe()) {
            return err;
        }
        let (package, track) = (&self.android.package_name, &self.android.track);
        let said = format!(
            "{operation}: {} {}",
            answer.status.as_u16(),
            error.describe()
        );
        let message = match answer.status.as_u16() {
            401 => {
                return RollbackError::StoreCredentials(format!(
                    "Google Play refused the access token of {} ({said}); check the key in \
                     secret {:?} and that the Google Play Android Developer API is enabled \
                     for its project",
                    self.key.client_email, self.key.secret
                ));
            }
            403 => format!(
                "the service account {} may not change {package} ({said}): in Play Console, \
                 Users and permissions, give it the release permissions for this app",
                self.key.client_email
            ),
            404 => format!(
                "Google Play has no app {package} or track {track:?} for the service account \
                 ({said}): check mobile.android.package_name and track, and that the account \
                 was invited to the app in Play Console"
            ),
            409 => return concurrent(operation, format!("{package} ({said})")),
            _ if error
                .message
                .to_ascii_lowercase()
                .contains("create a new edit") =>
            {
                return concurrent(operation, format!("{package}: the edit ended ({said})"));
            }
            _ if mentions_review(&error) => format!(
                "Google Play has changes of {package} in review, so the halt was not committed \
                 and that review was not cancelled (changesInReviewBehavior=ERROR_IF_IN_REVIEW; \
                 {said}). Decide in Play Console: halt there (Releases, {track}, Manage \
                 rollout, Halt rollout), or wait for the review and run halt again"
            ),
            _ if error.has_reason("releaseToHaltNotFound") => format!(
                "Google Play found no release in progress on {track} to halt ({said}): it \
                 completed or changed since it was read. Run status, and halt it in Play \
                 Console if it is still served"
            ),
            _ => format!("Google Play refused to change {package} ({said})"),
        };
        RollbackError::StoreRefused(message)
    }
}

/// Another edit was committed (or opened by the same account) while this one was open, or it
/// expired: Play's "create a new Edit" answers and 409. A retry starts a new edit.
fn concurrent(operation: &str, what: String) -> RollbackError {
    RollbackError::Transient {
        operation: operation.to_owned(),
        message: format!(
            "Google Play reports a concurrent change to {what}: another edit was committed or \
             opened while this one was open; a retry starts a new edit"
        ),
    }
}

/// Whether Play's refusal is about changes already in review (`CHANGES_ALREADY_IN_REVIEW`,
/// "You already have changes in review"), not about sending this change for review.
fn mentions_review(error: &GoogleError) -> bool {
    let in_reasons = error
        .reasons
        .iter()
        .any(|r| r.to_ascii_lowercase().contains("in_review") || r.contains("InReview"));
    in_reasons
        || error
            .message
            .to_ascii_lowercase()
            .contains("changes in review")
}

/// A path segment: letters, digits and `-._~:` as they are, everything else %-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A track's releases, read from Play's JSON.
pub fn releases(track: &Value) -> Result<Vec<PlayRelease>, RollbackError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        version_codes: Vec<String>,
        status: PlayStatus,
        #[serde(default)]
        user_fraction: Option<f64>,
    }
    let list = track.get("releases").cloned().unwrap_or(json!([]));
    let wire: Vec<Wire> = serde_json::from_value(list).map_err(|e| {
        RollbackError::Internal(format!("Google Play's track has unreadable releases: {e}"))
    })?;
    Ok(wire
        .into_iter()
        .map(|w| PlayRelease {
            name: w.name,
            version_codes: w.version_codes,
            status: w.status,
            user_fraction: w.user_fraction,
        })
        .collect())
}

/// Sets `status: halted` on the release with these version codes, every other field kept.
fn mark_halted(track: &mut Value, version_codes: &[String]) -> bool {
    let Some(list) = track.get_mut("releases").and_then(Value::as_array_mut) else {
        return false;
    };
    for release in list {
        let codes: Vec<&str> = release["versionCodes"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if codes == version_codes {
            release["status"] = json!("halted");
            return true;
        }
    }
    false
}

/// What the track holds now (`resolve`, `status`). The edit opened to read it is deleted.
pub async fn read(
    clients: &Clients,
    android: &AndroidRef,
    key: &GoogleKey,
) -> Result<PlayResolution, RollbackError> {
    let play = Play::open(clients, android, key).await?;
    let edit = play.insert_edit().await?;
    let track = play.get_track(&edit).await;
    play.delete_edit(&edit).await;
    Ok(resolution(android, releases(&track?)?))
}

fn resolution(android: &AndroidRef, releases: Vec<PlayRelease>) -> PlayResolution {
    let choice = PlayResolution::choose(&releases, android.halt_completed);
    // The newest ones (Play lists them last): the list is for people, and the state machine's
    // state has a size limit.
    let shown = releases.len().saturating_sub(MAX_LISTED_RELEASES);
    PlayResolution {
        package_name: android.package_name.clone(),
        track: android.track.clone(),
        releases: releases[shown..].to_vec(),
        to_halt: choice.to_halt,
        already_halted: choice.already_halted,
        completed: choice.completed,
        minimum_version: None,
    }
}

/// What `halt` does with the approved release, given the track as it is now.
#[derive(Debug, PartialEq)]
enum Decision {
    Halt(PlayRelease),
    AlreadyHalted(PlayRelease),
    Nothing(String),
    Drifted(String),
}

fn decide(approved: &PlayResolution, live: &[PlayRelease], halt_completed: bool) -> Decision {
    let track = &approved.track;
    let target = approved
        .to_halt
        .as_ref()
        .or(approved.already_halted.as_ref());
    let choice = PlayResolution::choose(live, halt_completed);
    let (live_to_halt, live_halted) = (choice.to_halt, choice.already_halted);
    let nothing = match &choice.completed {
        Some(c) => format!(
            "{} is fully rolled out, no release is in progress",
            c.label()
        ),
        None => "no release in progress or completed".to_owned(),
    };
    let same = |a: &PlayRelease, b: &PlayRelease| a.version_codes == b.version_codes;
    match (target, live_to_halt) {
        (None, None) => Decision::Nothing(nothing),
        (None, Some(now)) => Decision::Drifted(format!(
            "the approver saw nothing to halt on Google Play {track}, which now has {} at {}; \
             resolve again and approve",
            now.label(),
            now.rollout()
        )),
        (Some(target), Some(now)) if same(target, &now) => Decision::Halt(now),
        (Some(target), Some(now)) => Decision::Drifted(format!(
            "the approved release to halt on Google Play {track} is {}, but the track now \
             serves {} at {}; resolve again and approve",
            target.label(),
            now.label(),
            now.rollout()
        )),
        (Some(target), None) => match live_halted {
            Some(halted) if same(target, &halted) => Decision::AlreadyHalted(halted),
            _ => Decision::Nothing(format!("{} is no longer on the track", target.label())),
        },
    }
}

/// `halt` on Google Play: the approved release, if the track still serves it.
pub async fn halt(
    clients: &Clients,
    android: &AndroidRef,
    key: &GoogleKey,
    approved: &PlayResolution,
    drill: bool,
) -> Result<PlatformHalt, RollbackError> {
    let play = Play::open(clients, android, key).await?;
    let edit = play.insert_edit().await?;
    let result = halt_in_edit(&play, &edit, approved, drill).await;
    // A committed edit is gone; any other (a refusal, a drill, nothing to do) is deleted.
    if !matches!(&result, Ok(h) if h.outcome == HaltOutcome::Halted) {
        play.delete_edit(&edit).await;
    }
    result
}

async fn halt_in_edit(
    play: &Play<'_>,
    edit: &str,
    approved: &PlayResolution,
    drill: bool,
) -> Result<PlatformHalt, RollbackError> {
    let prefix = format!("Google Play {}", approved.track);
    let mut track = play.get_track(edit).await?;
    let halt_completed = play.android.halt_completed;
    let release = match decide(approved, &releases(&track)?, halt_completed) {
        Decision::Drifted(why) => return Err(RollbackError::PlanDrifted(why)),
        Decision::Nothing(why) => {
            return Ok(PlatformHalt {
                outcome: HaltOutcome::NothingToHalt,
                summary: format!("{prefix}: nothing to halt ({why}); nothing changed"),
            });
        }
        Decision::AlreadyHalted(release) => {
            return Ok(PlatformHalt {
                outcome: HaltOutcome::AlreadyDone,
                summary: format!(
                    "{prefix}: {} was already halted; nothing changed",
                    release.label()
                ),
            });
        }
        Decision::Halt(release) => release,
    };
    if !mark_halted(&mut track, &release.version_codes) {
        return Err(RollbackError::Internal(format!(
            "{} is in Google Play's track but could not be marked halted",
            release.label()
        )));
    }
    let completed = |err| refused_completed(&release, err);
    play.update_track(edit, &track).await.map_err(completed)?;
    let what = format!("{} at {}", release.label(), release.rollout());
    if drill {
        return Ok(PlatformHalt {
            outcome: HaltOutcome::Rehearsed,
            summary: format!(
                "{prefix}: drill: {what} would be halted (Play took the change in an edit, \
                 which was deleted, not committed)"
            ),
        });
    }
    if let Err(err) = play.commit(edit).await {
        // A lost answer or a 5xx may come after Play committed: look before reporting.
        if !play.shows_halted(&release.version_codes).await {
            return Err(completed(err));
        }
        tracing::warn!(error = %err, "the commit failed, but Play shows the release halted");
    }
    tracing::info!(package = %approved.package_name, track = %approved.track, release = %release.label(), "halted");
    let previous = match &approved.completed {
        Some(c) if c.version_codes != release.version_codes => c.label(),
        _ => "the previous completed release".to_owned(),
    };
    Ok(PlatformHalt {
        outcome: HaltOutcome::Halted,
        summary: format!(
            "{prefix}: halted {what}; users who installed it keep it, new and eligible users \
             get {previous}"
        ),
    })
}

/// Play's refusal to halt a completed (100 %) release, explained: Play halts a fully
/// rolled-out release only when an earlier one can take its place (Play Console Help,
/// "Halting a fully rolled-out release").
fn refused_completed(release: &PlayRelease, err: RollbackError) -> RollbackError {
    match err {
        RollbackError::StoreRefused(said) if release.status == PlayStatus::Completed => {
            RollbackError::StoreRefused(format!(
                "{said}. {} is fully rolled out (100 %): Play halts such a release only when an \
                 earlier completed release can take its place (not the track's first release, \
                 not on the internal track). Nothing was halted: halt it in Play Console \
                 (Releases, Manage rollout, Halt rollout) if Play offers it, or roll out a fix",
                release.label()
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(code: &str, status: PlayStatus, fraction: Option<f64>) -> PlayRelease {
        PlayRelease {
            name: Some(format!("4.{code}")),
            version_codes: vec![code.into()],
            status,
            user_fraction: fraction,
        }
    }

    fn approved(releases: Vec<PlayRelease>) -> PlayResolution {
        let android: AndroidRef = serde_json::from_value(json!({
            "package_name": "com.example.mint", "credentials_secret": "s"
        }))
        .unwrap();
        resolution(&android, releases)
    }

    #[test]
    fn only_the_approved_release_is_halted() {
        let stable = release("41", PlayStatus::Completed, None);
        let bad = release("42", PlayStatus::InProgress, Some(0.2));
        let shown = approved(vec![stable.clone(), bad.clone()]);
        let decide = |shown: &PlayResolution, live: &[PlayRelease]| decide(shown, live, false);
        assert_eq!(
            decide(&shown, &[stable.clone(), bad.clone()]),
            Decision::Halt(bad.clone())
        );
        let halted = release("42", PlayStatus::Halted, Some(0.2));
        assert_eq!(
            decide(&shown, &[stable.clone(), halted.clone()]),
            Decision::AlreadyHalted(halted)
        );
        let newer = release("43", PlayStatus::InProgress, Some(0.1));
        assert!(matches!(
            decide(&shown, &[stable.clone(), newer.clone()]),
            Decision::Drifted(why) if why.contains("now serves 4.43 (43) at 10 %")
        ));
        let nothing = approved(vec![stable.clone()]);
        assert!(matches!(
            decide(&nothing, std::slice::from_ref(&stable)),
            Decision::Nothing(_)
        ));
        assert!(matches!(decide(&nothing, &[]), Decision::Nothing(_)));
        assert!(matches!(decide(&nothing, &[newer]), Decision::Drifted(_)));
    }

    #[test]
    fn halting_changes_only_the_status() {
        let mut track = json!({"track": "production", "releases": [
            {"versionCodes": ["41"], "status": "completed"},
            {"name": "4.2.0", "versionCodes": ["42"], "status": "inProgress", "userFraction": 0.2,
             "releaseNotes": [{"language": "en-US", "text": "New"}]}
        ]});
        assert!(mark_halted(&mut track, &["42".to_owned()]));
        assert_eq!(track["releases"][1]["status"], "halted");
        assert_eq!(track["releases"][1]["userFraction"], 0.2);
        assert_eq!(track["releases"][1]["releaseNotes"][0]["text"], "New");
        assert_eq!(track["releases"][0]["status"], "completed");
        assert!(!mark_halted(&mut track, &["99".to_owned()]));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("wear:production"), "wear:production");
        assert_eq!(segment("closed track/1"), "closed%20track%2F1");
    }
}
