//! Android Publisher edits and tracks: the halt a rollback makes, and what Play refuses.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use rollback_stores::{PlayRelease, ReleaseStatus, StoreServer};
use serde_json::{Value, json};

const EXPIRED_EDIT: &str = "This edit has expired, please create a new Edit.";

/// The live production track: 2.0.0 completed, 2.1.0 rolling out to 20 %.
fn production() -> Vec<PlayRelease> {
    vec![
        PlayRelease::new(ReleaseStatus::Completed, ["100"]).with_name("2.0.0"),
        PlayRelease::new(ReleaseStatus::InProgress, ["101", "102"])
            .with_name("2.1.0")
            .with_fraction(0.2),
    ]
}

async fn server_with_rollout() -> (StoreServer, Value, String) {
    let (server, key_file) = google_server().await;
    server.put_play_track(PACKAGE, "production", production());
    let token = access_token(&server, &key_file).await;
    (server, key_file, token)
}

fn track_path(edit: &str) -> String {
    format!("{PACKAGE}/edits/{edit}/tracks/production")
}

/// The production track of the edit with the staged rollout flipped to `halted`, as a
/// rollback builds it from what it read.
async fn halted_track(server: &StoreServer, token: &str, edit: &str) -> Value {
    let (status, mut track) = play(server, Some(token), Method::GET, &track_path(edit), None).await;
    assert_eq!(status, StatusCode::OK, "{track}");
    for release in track["releases"].as_array_mut().unwrap() {
        if release["status"] == "inProgress" {
            release["status"] = json!("halted");
        }
    }
    track
}

async fn commit(server: &StoreServer, token: &str, edit: &str, query: &str) -> (StatusCode, Value) {
    play(
        server,
        Some(token),
        Method::POST,
        &format!("{PACKAGE}/edits/{edit}:commit{query}"),
        None,
    )
    .await
}

#[tokio::test]
async fn halting_a_staged_rollout_keeps_its_version_codes_and_fraction() {
    let (server, _, token) = server_with_rollout().await;
    let edit = insert_edit(&server, &token).await;

    let (status, track) = play(&server, Some(&token), Method::GET, &track_path(&edit), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        track,
        json!({"track": "production", "releases": [
            {"name": "2.0.0", "versionCodes": ["100"], "status": "completed"},
            {"name": "2.1.0", "versionCodes": ["101", "102"], "status": "inProgress", "userFraction": 0.2}
        ]})
    );

    let halted = halted_track(&server, &token, &edit).await;
    let (status, updated) = play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(halted.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated, halted);
    // Not live before the commit.
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );

    let (status, committed) = commit(
        &server,
        &token,
        &edit,
        "?changesInReviewBehavior=ERROR_IF_IN_REVIEW",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    assert_eq!(committed["id"], edit.as_str());

    let live = server.play_track(PACKAGE, "production").unwrap();
    assert_eq!(
        live,
        vec![
            PlayRelease::new(ReleaseStatus::Completed, ["100"]).with_name("2.0.0"),
            PlayRelease::new(ReleaseStatus::Halted, ["101", "102"])
                .with_name("2.1.0")
                .with_fraction(0.2),
        ]
    );
    assert_eq!(server.commits(PACKAGE), 1);
    assert_eq!(server.reviews_cancelled(PACKAGE), 0);

    // A committed edit is spent; a new one starts from the halted track.
    let (status, body) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        google_error(&body).0,
        "This edit has already been successfully committed, please create a new Edit."
    );
    let next = insert_edit(&server, &token).await;
    let (_, track) = play(&server, Some(&token), Method::GET, &track_path(&next), None).await;
    assert_eq!(track["releases"][1]["status"], "halted");
    assert_eq!(track["releases"][1]["userFraction"], 0.2);
}

#[tokio::test]
async fn uncommitted_edits_change_nothing() {
    let (server, _, token) = server_with_rollout().await;
    let edit = insert_edit(&server, &token).await;
    let halted = halted_track(&server, &token, &edit).await;
    let (status, _) = play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(halted),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The edit sees its change; the store does not.
    let (_, in_edit) = play(&server, Some(&token), Method::GET, &track_path(&edit), None).await;
    assert_eq!(in_edit["releases"][1]["status"], "halted");
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );

    let (status, body) = play(
        &server,
        Some(&token),
        Method::DELETE,
        &format!("{PACKAGE}/edits/{edit}"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );
    assert_eq!(server.commits(PACKAGE), 0);

    // A deleted edit cannot be committed or read.
    let (status, body) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(google_error(&body).0, "This Edit has been deleted.");
    let (status, _) = play(&server, Some(&token), Method::GET, &track_path(&edit), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An expired edit neither.
    let edit = insert_edit(&server, &token).await;
    server.expire_edits();
    let (status, body) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(google_error(&body).0, EXPIRED_EDIT);
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );
}

#[tokio::test]
async fn error_if_in_review_fails_the_commit_and_cancels_nothing() {
    let (server, _, token) = server_with_rollout().await;
    server.set_in_review(PACKAGE, true);
    let edit = insert_edit(&server, &token).await;
    let halted = halted_track(&server, &token, &edit).await;
    play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(halted),
    )
    .await;

    let (status, body) = commit(
        &server,
        &token,
        &edit,
        "?changesInReviewBehavior=ERROR_IF_IN_REVIEW",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["status"], "FAILED_PRECONDITION");
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "CHANGES_ALREADY_IN_REVIEW"
    );
    assert_eq!(
        body["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You already have changes in review."),
        "{body}"
    );
    assert_eq!(server.reviews_cancelled(PACKAGE), 0);
    assert!(server.in_review(PACKAGE));
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );

    // "This won't invalidate the edit": once the review is over, the same edit commits.
    server.set_in_review(PACKAGE, false);
    let (status, _) = commit(
        &server,
        &token,
        &edit,
        "?changesInReviewBehavior=ERROR_IF_IN_REVIEW",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap()[1].status,
        ReleaseStatus::Halted
    );
    assert_eq!(server.reviews_cancelled(PACKAGE), 0);
}

#[tokio::test]
async fn the_default_commit_cancels_the_review_and_it_is_counted() {
    let (server, _, token) = server_with_rollout().await;
    server.set_in_review(PACKAGE, true);
    let edit = insert_edit(&server, &token).await;
    let halted = halted_track(&server, &token, &edit).await;
    play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(halted),
    )
    .await;
    let (status, _) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.reviews_cancelled(PACKAGE), 1);
    assert!(!server.in_review(PACKAGE));

    let (status, body) = commit(
        &server,
        &token,
        &insert_edit(&server, &token).await,
        "?changesInReviewBehavior=SOMETIMES",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = commit(
        &server,
        &token,
        &insert_edit(&server, &token).await,
        "?changesNotSentForReview=true",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        google_error(&body).0,
        "Changes are sent for review automatically. The query parameter changesNotSentForReview must not be set."
    );
}

#[tokio::test]
async fn a_commit_after_another_commit_fails() {
    let (server, key_file, token) = server_with_rollout().await;
    let other_file = register_other_account(&server);
    let other = access_token(&server, &other_file).await;
    assert_ne!(key_file["client_email"], other_file["client_email"]);

    // Two users open edits; the other commits a full rollout first.
    let mine = insert_edit(&server, &token).await;
    let theirs = insert_edit(&server, &other).await;
    let halted = halted_track(&server, &token, &mine).await;
    let (status, _) = play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&mine),
        Some(halted.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let completed = json!({"track": "production", "releases": [
        {"name": "2.1.0", "versionCodes": ["101", "102"], "status": "completed"}
    ]});
    let (status, _) = play(
        &server,
        Some(&other),
        Method::PUT,
        &track_path(&theirs),
        Some(completed),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(commit(&server, &other, &theirs, "").await.0, StatusCode::OK);

    let (status, body) = commit(
        &server,
        &token,
        &mine,
        "?changesInReviewBehavior=ERROR_IF_IN_REVIEW",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(google_error(&body), (EXPIRED_EDIT, "badRequest"));
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        vec![PlayRelease::new(ReleaseStatus::Completed, ["101", "102"]).with_name("2.1.0")]
    );
    assert_eq!(server.commits(PACKAGE), 1);

    // The same user opening a second edit invalidates the first.
    let first = insert_edit(&server, &token).await;
    let second = insert_edit(&server, &token).await;
    let (status, body) = play(
        &server,
        Some(&token),
        Method::GET,
        &track_path(&first),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(google_error(&body).0, EXPIRED_EDIT);
    let (status, _) = play(
        &server,
        Some(&token),
        Method::GET,
        &track_path(&second),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn only_a_staged_rollout_can_be_halted_and_it_keeps_its_fraction() {
    let (server, _, token) = server_with_rollout().await;
    let halt = |codes: &[&str], fraction: Option<f64>| {
        let mut release = json!({"versionCodes": codes, "status": "halted"});
        if let Some(f) = fraction {
            release["userFraction"] = json!(f);
        }
        json!({"track": "production", "releases": [release]})
    };
    let cases = [
        ("the completed release", halt(&["100"], Some(0.2))),
        ("a release never rolled out", halt(&["103"], Some(0.2))),
        (
            "the rollout with another fraction",
            halt(&["101", "102"], Some(0.5)),
        ),
        ("part of the rollout", halt(&["101"], Some(0.2))),
        (
            "the rollout without its fraction",
            halt(&["101", "102"], None),
        ),
        (
            "the track's first fully rolled-out release",
            halt(&["100"], None),
        ),
    ];
    for (case, body) in cases {
        let edit = insert_edit(&server, &token).await;
        let (status, _) = play(
            &server,
            Some(&token),
            Method::PUT,
            &track_path(&edit),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{case}");
        // :validate answers as the commit would.
        let (status, body) = play(
            &server,
            Some(&token),
            Method::POST,
            &format!("{PACKAGE}/edits/{edit}:validate"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        let (status, body) = commit(&server, &token, &edit, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(
            google_error(&body),
            (
                "Cannot halt release, no matching in progress release found.",
                "releaseToHaltNotFound"
            ),
            "{case}"
        );
        assert_eq!(body["error"]["errors"][0]["domain"], "androidpublisher");
    }
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        production()
    );
    assert_eq!(server.commits(PACKAGE), 0);

    // Shapes refused at the update.
    let edit = insert_edit(&server, &token).await;
    let shapes = [
        (
            halt(&["101", "102"], Some(1.0)),
            "Rollout fraction must be greater than 0 and less than 1",
        ),
        (
            json!({"track": "production", "releases": [{"versionCodes": ["101"], "status": "inProgress"}]}),
            "Rollout fraction must be greater than 0 and less than 1",
        ),
        (
            json!({"track": "beta", "releases": []}),
            "The track in the request body does not match the track in the URL.",
        ),
    ];
    for (body, message) in shapes {
        let (status, answer) = play(
            &server,
            Some(&token),
            Method::PUT,
            &track_path(&edit),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(google_error(&answer).0, message);
    }
    let (status, answer) = play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(json!({"track": "production", "releases": [
            {"versionCodes": ["101"], "status": "halted", "userFraction": 0.2, "rolloutPercent": 20}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        google_error(&answer)
            .0
            .starts_with("Invalid JSON payload received."),
        "{answer}"
    );
    let (status, answer) = play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(json!({"track": "production", "releases": [{"versionCodes": ["101"], "status": "statusUnspecified"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // The same halt twice is no change: a retried rollback commits again.
    let edit = insert_edit(&server, &token).await;
    let halted = halted_track(&server, &token, &edit).await;
    play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&edit),
        Some(halted),
    )
    .await;
    assert_eq!(commit(&server, &token, &edit, "").await.0, StatusCode::OK);
    let again = insert_edit(&server, &token).await;
    let (_, track) = play(
        &server,
        Some(&token),
        Method::GET,
        &track_path(&again),
        None,
    )
    .await;
    play(
        &server,
        Some(&token),
        Method::PUT,
        &track_path(&again),
        Some(track),
    )
    .await;
    assert_eq!(commit(&server, &token, &again, "").await.0, StatusCode::OK);
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap()[1].status,
        ReleaseStatus::Halted
    );
}

#[tokio::test]
async fn unknown_edits_and_tracks_are_not_found() {
    let (server, _, token) = server_with_rollout().await;
    let (status, _) = play(
        &server,
        Some(&token),
        Method::GET,
        &track_path("12345678901234567890"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let edit = insert_edit(&server, &token).await;
    let (status, _) = play(
        &server,
        Some(&token),
        Method::GET,
        &format!("{PACKAGE}/edits/{edit}/tracks/nightly"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = play(
        &server,
        Some(&token),
        Method::GET,
        &format!("{PACKAGE}/edits/{edit}/tracks"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["track"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "internal", "production"]);
    let (status, got) = play(
        &server,
        Some(&token),
        Method::GET,
        &format!("{PACKAGE}/edits/{edit}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["id"], edit.as_str());
    let expiry: i64 = got["expiryTimeSeconds"].as_str().unwrap().parse().unwrap();
    assert!((expiry - now() - 3600).abs() <= 5, "{expiry}");
}

/// Play Console Help, "Halting a fully rolled-out release": any track but internal, not the
/// track's first release; the previous fully rolled-out release takes its place.
#[tokio::test]
async fn a_fully_rolled_out_release_is_halted_and_the_previous_one_comes_back() {
    let (server, key_file) = google_server().await;
    let token = access_token(&server, &key_file).await;
    for track in ["production", "internal"] {
        server.put_play_track(
            PACKAGE,
            track,
            vec![PlayRelease::new(ReleaseStatus::Completed, ["100"]).with_name("2.0.0")],
        );
        server.put_play_track(
            PACKAGE,
            track,
            vec![PlayRelease::new(ReleaseStatus::Completed, ["200"]).with_name("2.1.0")],
        );
    }
    let halt = |track: &str| {
        json!({"track": track, "releases": [
            {"name": "2.1.0", "versionCodes": ["200"], "status": "halted"}
        ]})
    };
    let put = |edit: String, track: &'static str| {
        let body = halt(track);
        let path = format!("{PACKAGE}/edits/{edit}/tracks/{track}");
        let server = &server;
        let token = &token;
        async move { play(server, Some(token), Method::PUT, &path, Some(body)).await }
    };

    let edit = insert_edit(&server, &token).await;
    assert_eq!(put(edit.clone(), "internal").await.0, StatusCode::OK);
    let (status, body) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "internal: {body}");
    assert_eq!(google_error(&body).1, "releaseToHaltNotFound");

    let edit = insert_edit(&server, &token).await;
    assert_eq!(put(edit.clone(), "production").await.0, StatusCode::OK);
    let (status, body) = commit(&server, &token, &edit, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.play_track(PACKAGE, "production").unwrap(),
        vec![
            PlayRelease::new(ReleaseStatus::Completed, ["100"]).with_name("2.0.0"),
            PlayRelease::new(ReleaseStatus::Halted, ["200"]).with_name("2.1.0"),
        ]
    );
    assert_eq!(server.commits(PACKAGE), 1);
}
