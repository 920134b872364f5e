//! The proxy against a real moto, with the real SDK clients of each protocol the functions
//! speak: AWS query (RDS, SNS, CloudWatch 1.99), AWS JSON 1.1 (ECR, Secrets Manager),
//! AWS JSON 1.0 (Step Functions), REST-JSON (EKS), REST-XML (S3).

use std::error::Error as StdError;
use std::fmt::Debug;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use rollback_core::aws::{LOCAL_REGION, for_endpoint};
use rollback_core::error::{ErrorKind, RollbackError};
use rollback_fault_proxy::{FaultKind, FaultProxy, FaultSchedule, Matcher, Protocol, Rule};
use rollback_moto::MotoServer;

/// The functions' configuration (`for_endpoint`), pointed at the proxy, with test-chosen
/// retries and attempt timeout.
fn sdk(url: &str, retry: RetryConfig, attempt_timeout: Duration) -> SdkConfig {
    for_endpoint(url, LOCAL_REGION)
        .to_builder()
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build()
}

/// The standard strategy at 3 attempts; the first backoff is shortened so the test does not
/// sleep for seconds (the classification and retry decisions are the SDK's own).
fn standard_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Svc {
    Rds,
    Sns,
    CloudWatch,
    Ecr,
    Secrets,
    Sfn,
    Eks,
    S3,
}

impl Svc {
    const ALL: [Svc; 8] = [
        Svc::Rds,
        Svc::Sns,
        Svc::CloudWatch,
        Svc::Ecr,
        Svc::Secrets,
        Svc::Sfn,
        Svc::Eks,
        Svc::S3,
    ];

    fn protocol(self) -> Protocol {
        match self {
            Svc::Rds | Svc::Sns | Svc::CloudWatch => Protocol::Query,
            Svc::Ecr | Svc::Secrets | Svc::Sfn => Protocol::Json,
            Svc::Eks => Protocol::RestJson,
            Svc::S3 => Protocol::RestXml,
        }
    }

    /// The throttling code each protocol's answer carries.
    fn throttle_code(self) -> &'static str {
        match self.protocol() {
            Protocol::Query => "Throttling",
            Protocol::Json => "ThrottlingException",
            Protocol::RestJson => "TooManyRequestsException",
            Protocol::RestXml => "SlowDown",
        }
    }

    fn internal_code(self) -> &'static str {
        match self.protocol() {
            Protocol::RestJson => "ServerException",
            Protocol::RestXml => "InternalError",
            _ => "InternalFailure",
        }
    }

    fn unavailable_code(self) -> &'static str {
        match self.protocol() {
            Protocol::RestJson => "ServiceUnavailableException",
            _ => "ServiceUnavailable",
        }
    }
}

/// How the SDK reported a failure, and how the functions classify it.
#[derive(Debug)]
struct Failure {
    class: &'static str,
    code: Option<String>,
    error: RollbackError,
}

fn failure<E, R>(operation: &str, err: SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug,
{
    let class = match &err {
        SdkError::ServiceError(_) => "service",
        SdkError::DispatchFailure(_) => "dispatch",
        SdkError::TimeoutError(_) => "timeout",
        SdkError::ResponseError(_) => "response",
        _ => "other",
    };
    Failure {
        class,
        code: err.code().map(str::to_owned),
        error: RollbackError::from_sdk(operation, err),
    }
}

struct Clients {
    rds: aws_sdk_rds::Client,
    sns: aws_sdk_sns::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    ecr: aws_sdk_ecr::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sfn: aws_sdk_sfn::Client,
    eks: aws_sdk_eks::Client,
    s3: aws_sdk_s3::Client,
}

impl Clients {
    fn new(config: &SdkConfig) -> Clients {
        Clients {
            rds: aws_sdk_rds::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            ecr: aws_sdk_ecr::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            // Path-style, as the functions address S3 behind an endpoint override.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(true)
                    .build(),
            ),
        }
    }

    /// One read-only call per service.
    async fn probe(&self, svc: Svc) -> Result<(), Failure> {
        match svc {
            Svc::Rds => self
                .rds
                .describe_db_instances()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("DescribeDBInstances", e)),
            Svc::Sns => self
                .sns
                .list_topics()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("ListTopics", e)),
            Svc::CloudWatch => self
                .cloudwatch
                .describe_alarms()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("DescribeAlarms", e)),
            Svc::Secrets => self
                .secrets
                .list_secrets()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("ListSecrets", e)),
            Svc::Sfn => self
                .sfn
                .list_state_machines()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("ListStateMachines", e)),
            Svc::Ecr => self
                .ecr
                .describe_repositories()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("DescribeRepositories", e)),
            Svc::Eks => self
                .eks
                .list_clusters()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("ListClusters", e)),
            Svc::S3 => self
                .s3
                .list_buckets()
                .send()
                .await
                .map(drop)
                .map_err(|e| failure("ListBuckets", e)),
        }
    }
}

/// moto imports each service's backend on first use, which under load can take longer than
/// an attempt timeout; tests that count attempts get that out of the way directly.
async fn warm_up_moto() {
    let direct = Clients::new(&MotoServer::shared().sdk_config());
    for svc in Svc::ALL {
        direct
            .probe(svc)
            .await
            .unwrap_or_else(|e| panic!("moto answers {svc:?}: {e:?}"));
    }
}

fn start(schedule: FaultSchedule) -> FaultProxy {
    FaultProxy::start(&MotoServer::shared().endpoint(), schedule).expect("fault proxy starts")
}

#[tokio::test]
async fn passes_every_protocol_through_and_logs_each_call() {
    let proxy = start(FaultSchedule::none());
    let clients = Clients::new(&sdk(
        &proxy.url(),
        RetryConfig::disabled(),
        Duration::from_secs(60),
    ));

    clients
        .rds
        .create_db_instance()
        .db_instance_identifier("fp-pass-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("CreateDBInstance through the proxy");
    let topic = clients
        .sns
        .create_topic()
        .name("fp-pass-topic")
        .send()
        .await
        .expect("CreateTopic");
    clients
        .ecr
        .create_repository()
        .repository_name("fp-pass-repo")
        .send()
        .await
        .expect("CreateRepository");
    clients
        .eks
        .create_cluster()
        .name("fp-pass-eks")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    let cluster = clients
        .eks
        .describe_cluster()
        .name("fp-pass-eks")
        .send()
        .await
        .expect("DescribeCluster");
    assert_eq!(
        cluster.cluster().and_then(|c| c.name()),
        Some("fp-pass-eks")
    );
    clients
        .s3
        .create_bucket()
        .bucket("fp-pass-bucket")
        .send()
        .await
        .expect("CreateBucket");
    clients
        .s3
        .put_object()
        .bucket("fp-pass-bucket")
        .key("reports/e1/report.md")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"# report"))
        .send()
        .await
        .expect("PutObject");

    // What went through the proxy is really in moto.
    let direct = Clients::new(&MotoServer::shared().sdk_config());
    let dbs = direct
        .rds
        .describe_db_instances()
        .db_instance_identifier("fp-pass-db")
        .send()
        .await
        .expect("the instance exists in moto");
    assert_eq!(dbs.db_instances().len(), 1);
    assert!(topic.topic_arn().unwrap().ends_with(":fp-pass-topic"));
    let repos = direct
        .ecr
        .describe_repositories()
        .repository_names("fp-pass-repo")
        .send()
        .await
        .expect("the repository exists in moto");
    assert_eq!(repos.repositories().len(), 1);
    let object = direct
        .s3
        .get_object()
        .bucket("fp-pass-bucket")
        .key("reports/e1/report.md")
        .send()
        .await
        .expect("the object exists in moto");
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"# report");

    let log = proxy.log();
    let seen: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.request.service.as_deref().unwrap_or("-"),
                r.request.protocol,
                r.request.operation.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("rds", Protocol::Query, "CreateDBInstance"),
            ("sns", Protocol::Query, "CreateTopic"),
            ("ecr", Protocol::Json, "CreateRepository"),
            ("eks", Protocol::RestJson, "CreateCluster"),
            ("eks", Protocol::RestJson, "DescribeCluster"),
            ("s3", Protocol::RestXml, "CreateBucket"),
            ("s3", Protocol::RestXml, "PutObject"),
        ]
    );
    for record in &log {
        assert_eq!(record.fault, None, "{record}");
        assert_eq!(record.upstream_status, Some(200), "{record}");
        assert_eq!(record.client_status, Some(200), "{record}");
    }
    assert_eq!(proxy.faulted_count(), 0);
}

#[tokio::test]
async fn every_protocol_sees_throttling_and_5xx_as_the_sdk_does_for_aws() {
    let proxy = start(FaultSchedule::none());
    let clients = Clients::new(&sdk(
        &proxy.url(),
        RetryConfig::disabled(),
        Duration::from_secs(60),
    ));
    let cases = [
        (FaultKind::Throttle, ErrorKind::Throttled),
        (FaultKind::InternalError, ErrorKind::Transient),
        (FaultKind::Unavailable, ErrorKind::Transient),
    ];
    for (kind, expected) in cases {
        proxy.set_schedule(FaultSchedule::seeded(1, 1.0, &[kind]));
        for svc in Svc::ALL {
            let err = clients
                .probe(svc)
                .await
                .expect_err("every call is faulted at rate 1.0");
            let code = match kind {
                FaultKind::Throttle => svc.throttle_code(),
                FaultKind::InternalError => svc.internal_code(),
                _ => svc.unavailable_code(),
            };
            assert_eq!(err.class, "service", "{svc:?} {kind}: {err:?}");
            assert_eq!(err.code.as_deref(), Some(code), "{svc:?} {kind}: {err:?}");
            assert_eq!(err.error.kind(), expected, "{svc:?} {kind}: {err:?}");
            assert_eq!(
                err.error.error_name(),
                expected.error_name(),
                "{svc:?} {kind}"
            );
        }
    }
    // Nothing faulted reached moto.
    let log = proxy.log();
    assert_eq!(log.len(), 3 * Svc::ALL.len());
    assert!(
        log.iter()
            .all(|r| r.fault.is_some() && !r.reached_upstream())
    );
    assert_eq!(proxy.faulted_count(), 3 * Svc::ALL.len());
}

#[tokio::test]
async fn dropped_connections_are_transient_dispatch_failures() {
    let proxy = start(FaultSchedule::none());
    let clients = Clients::new(&sdk(
        &proxy.url(),
        RetryConfig::disabled(),
        Duration::from_secs(60),
    ));
    for kind in [FaultKind::Drop, FaultKind::DropAfterForward] {
        for svc in Svc::ALL {
            proxy.set_schedule(FaultSchedule::seeded(3, 1.0, &[kind]));
            let err = clients.probe(svc).await.expect_err("dropped");
            assert_eq!(err.class, "dispatch", "{svc:?} {kind}: {err:?}");
            assert_eq!(err.error.kind(), ErrorKind::Transient, "{svc:?} {kind}");
            // The proxy still serves the next call on a fresh connection.
            proxy.set_schedule(FaultSchedule::none());
            clients
                .probe(svc)
                .await
                .unwrap_or_else(|e| panic!("{svc:?} after {kind}: {e:?}"));
        }
    }
    let log = proxy.log();
    let faulted: Vec<_> = log.iter().filter(|r| r.fault.is_some()).collect();
    assert_eq!(faulted.len(), 2 * Svc::ALL.len());
    for r in faulted {
        assert_eq!(r.client_status, None, "{r}");
        // Only drop-after-forward lets the call reach moto.
        assert_eq!(
            r.reached_upstream(),
            r.fault == Some(FaultKind::DropAfterForward),
            "{r}"
        );
    }
}

#[tokio::test]
async fn slow_answers_time_out_the_client_but_the_call_took_effect() {
    let proxy = start(FaultSchedule::none());
    let clients = Clients::new(&sdk(
        &proxy.url(),
        RetryConfig::disabled(),
        Duration::from_millis(300),
    ));
    for svc in Svc::ALL {
        proxy.set_schedule(
            FaultSchedule::seeded(5, 1.0, &[FaultKind::Slow])
                .with_slow_delay(Duration::from_millis(1500)),
        );
        let err = clients.probe(svc).await.expect_err("times out");
        assert_eq!(err.class, "timeout", "{svc:?}: {err:?}");
        assert_eq!(err.error.kind(), ErrorKind::Transient, "{svc:?}");
        assert!(
            err.error.to_string().contains("timed out"),
            "{:?}",
            err.error
        );
    }

    // A slow CreateRepository: the client gives up, yet moto created the repository.
    proxy.set_schedule(
        FaultSchedule::none()
            .fail_next(1, "CreateRepository", FaultKind::Slow)
            .with_slow_delay(Duration::from_millis(1500)),
    );
    let err = clients
        .ecr
        .create_repository()
        .repository_name("fp-slow-repo")
        .send()
        .await
        .map_err(|e| failure("CreateRepository", e))
        .expect_err("times out");
    assert_eq!(err.class, "timeout");
    let repos = aws_sdk_ecr::Client::new(&MotoServer::shared().sdk_config())
        .describe_repositories()
        .repository_names("fp-slow-repo")
        .send()
        .await
        .expect("the slow call created the repository");
    assert_eq!(repos.repositories().len(), 1);
    let last = proxy.log().pop().unwrap();
    assert_eq!(last.fault, Some(FaultKind::Slow));
    assert_eq!(last.upstream_status, Some(200), "{last}");
}

#[tokio::test]
async fn dropping_the_proxy_cancels_answers_it_is_holding() {
    let proxy = start(
        FaultSchedule::seeded(9, 1.0, &[FaultKind::Slow]).with_slow_delay(Duration::from_secs(100)),
    );
    let url = format!("{}/?Action=ListTopics&Version=2010-03-31", proxy.url());
    let client = reqwest::Client::new();
    let pending = tokio::spawn(async move { client.get(url).send().await });
    // Wait (bounded) until the proxy holds the answer.
    for _ in 0..200 {
        if proxy.log().first().is_some_and(|r| r.reached_upstream()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        proxy.log().first().is_some_and(|r| r.reached_upstream()),
        "{}",
        proxy.report()
    );
    drop(proxy);
    let outcome = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .expect("the held request ends when the proxy is dropped, not after 100 s")
        .expect("task");
    assert!(outcome.is_err(), "no answer after shutdown: {outcome:?}");
}

#[tokio::test]
async fn rules_fail_the_next_n_calls_of_an_operation_and_the_sdk_retries_them() {
    let proxy = start(
        FaultSchedule::none()
            .fail_next(2, "DescribeDBInstances", FaultKind::Throttle)
            .fail_next(2, "ListTopics", FaultKind::Drop)
            .fail_next(2, "DescribeRepositories", FaultKind::InternalError)
            .with_rule(Rule::next(
                2,
                Matcher::path_prefix("/clusters"),
                FaultKind::Unavailable,
            )),
    );
    let clients = Clients::new(&sdk(
        &proxy.url(),
        standard_retries(),
        Duration::from_secs(60),
    ));
    for svc in [Svc::Rds, Svc::Sns, Svc::Ecr, Svc::Eks] {
        clients
            .probe(svc)
            .await
            .unwrap_or_else(|e| panic!("{svc:?} succeeds on its third attempt: {e:?}"));
    }
    let log = proxy.log();
    assert_eq!(log.len(), 12, "{}", proxy.report());
    for attempts in log.chunks(3) {
        assert!(attempts[0].fault.is_some() && attempts[1].fault.is_some());
        assert_eq!(attempts[2].fault, None);
        assert_eq!(attempts[2].client_status, Some(200));
        assert!(
            attempts
                .iter()
                .all(|a| a.request.operation == attempts[0].request.operation)
        );
    }
    assert!(proxy.schedule().rules().iter().all(|r| r.remaining == 0));
    assert!(proxy.report().contains("FAULT drop"));
}

/// A fixed sequence of calls without retries: which ones fail, by index.
async fn run_sequence(seed: u64) -> (Vec<u64>, Vec<bool>) {
    warm_up_moto().await;
    let proxy = start(FaultSchedule::seeded(
        seed,
        0.3,
        &[
            FaultKind::Throttle,
            FaultKind::InternalError,
            FaultKind::Drop,
        ],
    ));
    let clients = Clients::new(&sdk(
        &proxy.url(),
        RetryConfig::disabled(),
        Duration::from_secs(60),
    ));
    let mut ok = Vec::new();
    for i in 0..40 {
        ok.push(clients.probe(Svc::ALL[i % Svc::ALL.len()]).await.is_ok());
    }
    (proxy.faulted_indices(), ok)
}

#[tokio::test]
async fn a_seed_reproduces_the_same_faulted_calls() {
    let (first, first_ok) = run_sequence(2024).await;
    let (again, again_ok) = run_sequence(2024).await;
    let (other, _) = run_sequence(2025).await;
    assert_eq!(first, again);
    assert_eq!(first_ok, again_ok);
    assert_ne!(first, other);
    assert!(
        (4..=24).contains(&first.len()),
        "about 30% of 40: {first:?}"
    );
    let failed: Vec<u64> = (0..40u64).filter(|i| !first_ok[*i as usize]).collect();
    assert_eq!(
        failed, first,
        "without retries, exactly the faulted calls fail"
    );
}

#[tokio::test]
async fn standard_retries_ride_out_a_30_percent_throttle_rate() {
    warm_up_moto().await;
    let seed = 77;
    let proxy = start(FaultSchedule::seeded(seed, 0.3, &[FaultKind::Throttle]));
    let clients = Clients::new(&sdk(
        &proxy.url(),
        standard_retries(),
        Duration::from_secs(60),
    ));
    let calls = 80;
    let mut succeeded = 0;
    let mut attempts_total = 0;
    let mut trace = String::new();
    for i in 0..calls {
        let result = clients.probe(Svc::ALL[i % Svc::ALL.len()]).await;
        // One call's attempts, in order.
        let attempts = proxy.take_log();
        attempts_total += attempts.len();
        for a in &attempts {
            trace.push_str(&format!("  call {i}: {a}\n"));
        }
        let faulted = attempts.iter().filter(|a| a.fault.is_some()).count();
        match result {
            Ok(()) => {
                succeeded += 1;
                // The SDK retried every throttle, and only throttles.
                assert_eq!(faulted, attempts.len() - 1, "seed {seed}\n{trace}");
                assert_eq!(attempts.last().unwrap().fault, None, "seed {seed}\n{trace}");
            }
            Err(e) => {
                assert_eq!(e.error.kind(), ErrorKind::Throttled, "seed {seed}: {e:?}");
                // Only after all three attempts were throttled.
                assert_eq!((attempts.len(), faulted), (3, 3), "seed {seed}\n{trace}");
            }
        }
    }
    println!(
        "seed {seed}: {succeeded}/{calls} calls succeeded over {attempts_total} attempts \
         ({} throttled)",
        attempts_total - calls
    );
    assert!(
        attempts_total >= calls + 10,
        "the schedule throttled, seed {seed}\n{trace}"
    );
    // 0.3^3 ≈ 2.7% of calls fail all three attempts.
    assert!(succeeded >= calls * 9 / 10, "seed {seed}\n{trace}");
}

#[tokio::test]
async fn oversized_bodies_get_413_and_moto_control_calls_are_never_faulted() {
    let proxy = start(FaultSchedule::seeded(11, 1.0, &[FaultKind::Drop]));
    let client = reqwest::Client::new();
    let control = client
        .get(format!("{}/moto-api/", proxy.url()))
        .send()
        .await
        .expect("moto's control API passes");
    assert!(control.status().is_success());

    let big = vec![b'a'; rollback_fault_proxy::MAX_BODY + 1];
    let answer = client
        .post(format!("{}/", proxy.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await;
    // hyper may close the connection before reading the whole body; either way no 2xx.
    if let Ok(answer) = answer {
        assert_eq!(answer.status(), 413);
    }
    let log = proxy.log();
    assert_eq!(log.len(), 2, "{}", proxy.report());
    assert_eq!(log[0].fault, None);
    assert_eq!(log[1].client_status, Some(413));
    assert!(!log[1].reached_upstream());
}

#[test]
fn the_upstream_must_be_loopback() {
    let err = FaultProxy::start("http://192.0.2.1:5000", FaultSchedule::none())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}
