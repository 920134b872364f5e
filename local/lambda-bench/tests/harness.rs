//! The bench harness without release builds: the local Runtime API spoken by hand, by
//! `lambda_runtime` (the echo function) and by the Python handler.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use rollback_lambda_bench::functions::{self, DEAD_ENDPOINT, FUNCTIONS};
use rollback_lambda_bench::measure::{self, Launch, Limits, MeasureError, Outcome};
use rollback_lambda_bench::runtime_api::{Event, RuntimeApi};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lambda-bench-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn echo_launch(name: &str) -> Launch {
    let dir = scratch(name);
    Launch {
        name: name.into(),
        program: env!("CARGO_BIN_EXE_lambda-bench-echo").into(),
        args: vec![],
        env: functions::lambda_env(name, 128, DEAD_ENDPOINT, &dir),
        log: dir.join("out.log"),
    }
}

#[tokio::test]
async fn protocol_by_hand() {
    let mut api = RuntimeApi::start("by-hand").await.unwrap();
    let base = format!("http://{}/2018-06-01/runtime", api.runtime_api());
    let http = reqwest::Client::new();

    // The long poll is answered only once an invocation is queued.
    let poll = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/invocation/next"));
        async move { http.get(url).send().await.unwrap() }
    });
    assert!(matches!(
        api.next_event(WAIT).await,
        Some(Event::NextPolled { .. })
    ));
    assert!(!poll.is_finished());
    let id = api.invoke(&json!({"action": "x"}));
    let answer = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let header = |name: &str| answer.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("lambda-runtime-aws-request-id"), id);
    let deadline: u128 = header("lambda-runtime-deadline-ms").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(deadline > now, "the deadline is in the future");
    assert_eq!(
        header("lambda-runtime-invoked-function-arn"),
        "arn:aws:lambda:us-east-1:123456789012:function:by-hand"
    );
    assert!(header("lambda-runtime-trace-id").starts_with("Root=1-"));
    assert_eq!(
        answer.json::<serde_json::Value>().await.unwrap(),
        json!({"action": "x"})
    );

    let post = |path: String, body: &'static str| {
        let http = http.clone();
        async move {
            http.post(path)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(format!("{base}/invocation/{id}/response"), r#"{"ok":true}"#).await,
        202
    );
    match api.next_event(WAIT).await {
        Some(Event::Response {
            request_id, body, ..
        }) => {
            assert_eq!(request_id, id);
            assert_eq!(&body[..], br#"{"ok":true}"#);
        }
        other => panic!("expected the response, got {other:?}"),
    }
    // Answered once only, and only for ids handed out.
    assert_eq!(
        post(format!("{base}/invocation/{id}/error"), "{}").await,
        400
    );
    assert_eq!(
        post(format!("{base}/invocation/nope/response"), "{}").await,
        400
    );
    assert_eq!(
        post(format!("{base}/invocation/{id}/other"), "{}").await,
        404
    );
    assert_eq!(
        http.get(format!("http://{}/else", api.runtime_api()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let init = r#"{"errorType":"Runtime.ImportModuleError","errorMessage":"no boto3"}"#;
    assert_eq!(post(format!("{base}/init/error"), init).await, 202);
    match api.next_event(WAIT).await {
        Some(Event::InitError { error_type, .. }) => {
            assert_eq!(error_type, "Runtime.ImportModuleError")
        }
        other => panic!("expected the init error, got {other:?}"),
    }
}

#[tokio::test]
async fn lambda_runtime_function_answers_and_fails_through_the_api() {
    let launch = echo_launch("echo-ok");
    let run = measure::cold_start(&launch, Some(&json!({"n": 1})), Limits::default())
        .await
        .unwrap();
    let Some(Outcome::Response(body)) = &run.outcome else {
        panic!("expected a response, got {:?}", run.outcome);
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["echo"], json!({"n": 1}));
    // lambda_runtime built its context from our headers.
    assert_eq!(
        body["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:echo-ok"
    );
    assert!(
        body["request_id"]
            .as_str()
            .unwrap()
            .starts_with("00000000-")
    );
    assert!(run.to_first_next > Duration::ZERO && run.to_first_next < Limits::default().init);
    // The child's own high-water mark: present, and far below a test binary's.
    assert!(
        run.init_hwm_kib > 0 && run.init_hwm_kib < 100 * 1024,
        "VmHWM {}",
        run.init_hwm_kib
    );
    assert!(
        run.max_rss_kib >= run.init_hwm_kib,
        "VmHWM after the event {} vs at init {}",
        run.max_rss_kib,
        run.init_hwm_kib
    );
    assert!(run.invoke.is_some());

    let launch = echo_launch("echo-fail");
    let run = measure::cold_start(
        &launch,
        Some(&json!({"fail": "Rollback.InvalidInput"})),
        Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        run.outcome,
        Some(Outcome::Error("Rollback.InvalidInput".into()))
    );
}

#[tokio::test]
async fn a_function_that_dies_at_init_is_reported_with_its_log() {
    let mut launch = echo_launch("echo-no-name");
    // lambda_runtime panics without the function name.
    launch
        .env
        .retain(|(k, _)| k != &OsString::from("AWS_LAMBDA_FUNCTION_NAME"));
    let err = measure::cold_start(&launch, None, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MeasureError::ExitedEarly { .. }), "{err}");
    let log = std::fs::read_to_string(&launch.log).unwrap();
    assert!(log.contains("AWS_LAMBDA_FUNCTION_NAME"), "{log}");
}

#[tokio::test]
async fn python_handler_importing_boto3_speaks_the_same_api() {
    let python = rollback_moto::venv_python();
    assert!(
        python.exists(),
        "{} is missing: run `make venv`",
        python.display()
    );
    let dir = scratch("python");
    let launch = Launch {
        name: "python".into(),
        program: python,
        args: vec![functions::python_handler().into_os_string()],
        env: functions::lambda_env("python", 256, DEAD_ENDPOINT, &dir),
        log: dir.join("out.log"),
    };
    // The bench's event: no action, answered with the same error type as the Rust functions.
    let run = measure::cold_start(&launch, Some(&json!({})), Limits::default())
        .await
        .unwrap();
    assert_eq!(
        run.outcome,
        Some(Outcome::Error("Rollback.InvalidInput".into())),
        "log: {}",
        launch.log.display()
    );
    let run = measure::cold_start(&launch, Some(&json!({"action": "noop"})), Limits::default())
        .await
        .unwrap();
    let Some(Outcome::Response(body)) = run.outcome else {
        panic!("expected a response")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["action"],
        "noop"
    );
}

#[test]
fn every_function_package_has_one_binary() {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let bins = functions::bin_targets(&cargo, &functions::workspace_root()).unwrap();
    for f in FUNCTIONS {
        let found = bins
            .get(f.package)
            .unwrap_or_else(|| panic!("{} is not in the workspace", f.package));
        assert_eq!(found.len(), 1, "{}: {found:?}", f.package);
    }
    let mut ours = bins["rollback-lambda-bench"].clone();
    ours.sort();
    assert_eq!(ours, ["lambda-bench", "lambda-bench-echo"]);
}

#[test]
fn the_bench_script_builds_every_function() {
    let script =
        std::fs::read_to_string(functions::workspace_root().join("scripts/bench-lambdas.sh"))
            .unwrap();
    for f in FUNCTIONS {
        assert!(
            script.split_whitespace().any(|word| word == f.package),
            "scripts/bench-lambdas.sh does not build {}",
            f.package
        );
    }
}
