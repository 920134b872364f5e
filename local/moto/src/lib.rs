//! Starts a pinned moto server (from the project's `.venv`) on a free loopback port, waits
//! until it answers, and stops it when dropped. The child also gets SIGTERM if the test
//! process dies first, so no moto outlives its tests.
//!
//! Input: a moto_server binary (`make venv` installs the pinned one into .venv, or set
//! `ROLLBACK_MOTO_SERVER`); output: a running [`MotoServer`] with its endpoint and an SDK
//! configuration that points at it. Tests: `cargo test -p rollback-moto` (after `make venv`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;

pub mod ci_runner;
pub mod decision;
pub mod inbox;
pub mod log_capture;
pub mod rds;
mod seed;

/// How long moto may take to start answering (it imports a lot of Python).
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found at {0}; run `make venv` (it installs the pinned moto into .venv) \
         or set ROLLBACK_MOTO_SERVER to a moto_server binary"
    )]
    NotInstalled(PathBuf),
    #[error("could not start moto: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("moto did not answer on {addr} within {secs} s; its log is at {log}")]
    NotReady {
        addr: SocketAddr,
        secs: u64,
        log: String,
    },
    #[error(
        "{binary} has no `python` beside it to run {rules} (the AWS rules moto lacks: \
         asynchronous RDS renames, atomic S3 conditional writes); use the .venv `make venv` \
         creates"
    )]
    NoRules { binary: PathBuf, rules: PathBuf },
    #[error("moto answered {path} with: {answer}")]
    Api { path: String, answer: String },
    #[error("{call}: {detail}")]
    Sdk { call: &'static str, detail: String },
}

impl MotoError {
    /// An SDK call to moto that failed (or answered without what it should have).
    pub fn sdk(call: &'static str, detail: impl std::fmt::Display) -> MotoError {
        MotoError::Sdk {
            call,
            detail: detail.to_string(),
        }
    }
}

pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// The decision key's ARN, created on first use ([`MotoServer::decision_key`]).
    decision_key: OnceLock<String>,
}

impl MotoServer {
    /// The moto_server the Makefile installs, or `ROLLBACK_MOTO_SERVER`.
    pub fn binary() -> PathBuf {
        std::env::var_os("ROLLBACK_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"))
    }

    /// Starts a fresh server on a free loopback port.
    pub fn start() -> Result<MotoServer, MotoError> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(MotoError::NotInstalled(binary));
        }
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::env::temp_dir().join(format!("moto-{port}-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log)?;
        let mut command = launcher(&binary)?;
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to signal the child
        // when this process exits, so a killed test run leaves no moto behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = spawn_from_lasting_thread(command)?;
        let server = MotoServer {
            child,
            addr,
            log,
            decision_key: OnceLock::new(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// One server shared by every test in this process; tests use distinct resource names.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| MotoServer::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// [`MotoServer::shared`] with its Step Functions running state machines
    /// ([`MotoServer::enable_state_machine_execution`], once per process: call this before
    /// creating any machine).
    pub fn shared_executing() -> &'static MotoServer {
        static EXECUTION_ENABLED: OnceLock<()> = OnceLock::new();
        let server = Self::shared();
        EXECUTION_ENABLED.get_or_init(|| {
            server
                .enable_state_machine_execution()
                .unwrap_or_else(|e| panic!("{e}"))
        });
        server
    }

    fn wait_ready(&self) -> Result<(), MotoError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.request("GET", "/moto-api/", "").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(MotoError::NotReady {
            addr: self.addr,
            secs: START_TIMEOUT.as_secs(),
            log: self.log.display().to_string(),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SDK configuration pointing at this server (region us-east-1, static test credentials).
    pub fn sdk_config(&self) -> SdkConfig {
        rollback_core::aws::for_endpoint(&self.endpoint(), rollback_core::aws::LOCAL_REGION)
    }

    /// Forgets every resource.
    pub fn reset(&self) -> Result<(), MotoError> {
        self.api("POST", "/moto-api/reset", "")
    }

    /// Makes moto's Step Functions actually run state machines (off by default, when
    /// SendTaskSuccess accepts any token and does nothing). Call before creating machines.
    pub fn enable_state_machine_execution(&self) -> Result<(), MotoError> {
        self.api(
            "POST",
            "/moto-api/config",
            r#"{"stepfunctions": {"execute_state_machine": true}}"#,
        )
    }

    fn api(&self, method: &str, path: &str, body: &str) -> Result<(), MotoError> {
        let answer = self.request(method, path, body)?;
        if answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2") {
            Ok(())
        } else {
            Err(MotoError::Api {
                path: path.to_owned(),
                answer: answer.lines().next().unwrap_or_default().to_owned(),
            })
        }
    }

    /// The ARN of this server's approval decision key (KMS, ECC_NIST_P256, SIGN_VERIFY), made
    /// on first use: what `ROLLBACK_DECISION_KEY` names for the functions under test.
    /// Synchronous, so the stack values a test's IAM gate resolves can name it.
    pub fn decision_key(&self) -> &str {
        self.decision_key.get_or_init(|| {
            let body = r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY","Description":"rollback approval decisions (local)"}"#;
            let headers = "Content-Type: application/x-amz-json-1.1\r\n\
                X-Amz-Target: TrentService.CreateKey\r\n\
                Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, \
                SignedHeaders=host, Signature=0\r\n";
            let answer = self
                .request_with("POST", "/", headers, body)
                .unwrap_or_else(|e| panic!("moto's KMS did not answer CreateKey: {e}"));
            let json = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
            let arn = json
                .split("\"Arn\": \"")
                .nth(1)
                .or_else(|| json.split("\"Arn\":\"").nth(1))
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("moto's CreateKey answer has no Arn: {answer}"));
            arn.to_owned()
        })
    }

    /// A tiny HTTP/1.1 client for moto's own API (its answers are small).
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        self.request_with(method, path, "Content-Type: application/json\r\n", body)
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        if answer.is_empty() {
            return Err(std::io::Error::other("empty answer"));
        }
        Ok(answer)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Spawns `command` from a thread that lives as long as the process. `PR_SET_PDEATHSIG` fires
/// when the *thread* that forked the child exits, and test harnesses run each test on its own
/// short-lived thread: spawned from there, a shared moto would die after the first test.
fn spawn_from_lasting_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("moto-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning the moto spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply_tx))
        .map_err(|_| std::io::Error::other("the moto spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the moto spawner thread did not answer"))?
}

/// moto_server with the AWS rules moto does not enforce (RDS: asynchronous renames, no rename
/// or create onto a taken identifier; S3: atomic conditional writes; CodeBuild: environment
/// overrides, idempotency tokens, builds that take time, and the CI runner of [`ci_runner`];
/// see `local/moto/rules/`),
/// run by the Python beside the moto_server binary. Without that Python (a moto_server from
/// elsewhere) the rules cannot load, and the local stack would be laxer than AWS: refuse
/// rather than test against it.
fn launcher(binary: &Path) -> Result<Command, MotoError> {
    let rules = workspace_root().join("local/moto/rules/serve.py");
    match binary.parent().map(|dir| dir.join("python")) {
        Some(python) if python.exists() && rules.exists() => {
            let mut command = Command::new(python);
            command.arg(rules);
            Ok(command)
        }
        _ => Err(MotoError::NoRules {
            binary: binary.to_owned(),
            rules,
        }),
    }
}

/// The workspace root, where the Makefile creates `.venv`.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// The Python the Makefile installs with moto (`.venv`, which has boto3 too).
pub fn venv_python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
