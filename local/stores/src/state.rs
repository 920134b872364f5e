//! What the stores hold: credentials, tokens, Play apps and edits, App Store versions and
//! phased releases, and the request log.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jsonwebtoken::DecodingKey;

use crate::{LoggedRequest, PhasedRelease, PlayRelease};

/// The tracks every Play app has
/// (<https://developers.google.com/android-publisher/tracks>).
pub(crate) const STANDARD_TRACKS: [&str; 4] = ["production", "beta", "alpha", "internal"];

#[derive(Default)]
pub(crate) struct Stores {
    /// client_email → public key.
    pub(crate) service_accounts: HashMap<String, DecodingKey>,
    /// access token → what it grants.
    pub(crate) access_tokens: HashMap<String, AccessToken>,
    pub(crate) play_apps: HashMap<String, PlayApp>,
    /// edit id → edit (ids are unique across apps).
    pub(crate) edits: HashMap<String, Edit>,
    /// App Store Connect key id → its issuer and public key.
    pub(crate) app_store_keys: HashMap<String, AppStoreKey>,
    /// app id → its version ids, in the order they were put.
    pub(crate) asc_apps: BTreeMap<String, Vec<String>>,
    pub(crate) asc_versions: HashMap<String, AscVersion>,
    /// phased release id → record.
    pub(crate) phased: BTreeMap<String, PhasedRecord>,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) faults: Vec<crate::faults::FaultRule>,
}

impl Stores {
    pub(crate) fn play_app_mut(&mut self, package: &str) -> &mut PlayApp {
        self.play_apps
            .entry(package.to_string())
            .or_insert_with(PlayApp::new)
    }
}

pub(crate) struct AccessToken {
    pub(crate) client_email: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: i64,
}

pub(crate) struct PlayApp {
    /// The live (committed) tracks.
    pub(crate) tracks: BTreeMap<String, Vec<PlayRelease>>,
    /// Per track, every release that was live there fully rolled out, oldest first: halting
    /// a fully rolled-out release brings back the one before it.
    pub(crate) completed_before: BTreeMap<String, Vec<PlayRelease>>,
    pub(crate) in_review: bool,
    pub(crate) reviews_cancelled: usize,
    pub(crate) commits: usize,
}

impl PlayApp {
    fn new() -> PlayApp {
        PlayApp {
            tracks: STANDARD_TRACKS
                .iter()
                .map(|t| (t.to_string(), Vec::new()))
                .collect(),
            completed_before: BTreeMap::new(),
            in_review: false,
            reviews_cancelled: 0,
            commits: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EditStatus {
    Open,
    Committed,
    Deleted,
    /// Another edit of the app was committed, or the same user opened a new one.
    Invalidated,
}

pub(crate) struct Edit {
    pub(crate) package: String,
    /// The service account that opened it.
    pub(crate) owner: String,
    pub(crate) expires_at: i64,
    /// The app's tracks when the edit was opened, with the edit's changes.
    pub(crate) tracks: BTreeMap<String, Vec<PlayRelease>>,
    /// Tracks the edit updated: what a commit applies.
    pub(crate) modified: BTreeSet<String>,
    pub(crate) status: EditStatus,
}

pub(crate) struct AppStoreKey {
    pub(crate) issuer_id: String,
    pub(crate) key: DecodingKey,
}

pub(crate) struct AscVersion {
    pub(crate) app_id: String,
    pub(crate) version_string: String,
    pub(crate) state: String,
}

pub(crate) struct PhasedRecord {
    pub(crate) version_id: String,
    pub(crate) release: PhasedRelease,
    /// When the current pause began (seconds since the epoch).
    pub(crate) paused_at: Option<i64>,
}
