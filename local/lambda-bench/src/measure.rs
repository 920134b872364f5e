//! One cold start: exec a function under a fresh [`RuntimeApi`], time it to its first
//! `/next`, read its peak RSS, optionally hand it one event and read the peak again, then
//! stop it and reap it.
//!
//! Peak RSS is `VmHWM` from `/proc/<pid>/status`, not `wait4`'s `ru_maxrss`: Linux carries
//! the parent's resident size across fork/exec into the child's `ru_maxrss`, so that figure
//! is at least the bench's own RSS whatever the function uses.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::runtime_api::{Event, RuntimeApi, RuntimeApiError};

/// How to start one function.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Shown in errors and used as the function name.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment (the child starts from an empty one, as in Lambda);
    /// `AWS_LAMBDA_RUNTIME_API` is added per run.
    pub env: Vec<(OsString, OsString)>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

/// What one event produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(String),
    /// The Diagnostic's `errorType`.
    Error(String),
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// From just before `spawn` (fork + exec) to the arrival of the first `/next`.
    pub to_first_next: Duration,
    /// `VmHWM` right after the first `/next`: the peak RSS of the init phase, in KiB.
    pub init_hwm_kib: u64,
    /// `VmHWM` after the event was answered (or equal to `init_hwm_kib` without one), KiB.
    pub max_rss_kib: u64,
    /// The answer to the event, if one was sent.
    pub outcome: Option<Outcome>,
    /// From handing out the event to its answer.
    pub invoke: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Api(#[from] RuntimeApiError),
    #[error("{name}: could not start {program}: {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{name}: could not open its log {log}: {source}")]
    Log {
        name: String,
        log: String,
        source: std::io::Error,
    },
    #[error("{name}: exited ({status}) before polling /next; its output is in {log}{init_error}")]
    ExitedEarly {
        name: String,
        status: String,
        log: String,
        init_error: String,
    },
    #[error("{name}: no {what} within {secs} s; its output is in {log}")]
    Timeout {
        name: String,
        what: &'static str,
        secs: u64,
        log: String,
    },
}

/// Bounds on each phase; generous, since the machine may be busy compiling.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub init: Duration,
    pub invoke: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            init: Duration::from_secs(60),
            invoke: Duration::from_secs(30),
        }
    }
}

/// Runs `launch` once. Call from a current-thread runtime so the bench itself competes as
/// little as possible with the child for the CPU.
pub async fn cold_start(
    launch: &Launch,
    event: Option<&serde_json::Value>,
    limits: Limits,
) -> Result<ColdStart, MeasureError> {
    let mut api = RuntimeApi::start(&launch.name).await?;
    let (started, mut reaper) = spawn(launch, &api)?;
    let polled_at = first_next(launch, &mut api, &mut reaper, started, limits).await?;
    let to_first_next = polled_at.saturating_duration_since(started);
    let init_hwm_kib = proc_status_kib(reaper.pid, "VmHWM").unwrap_or(0);

    let (outcome, invoke) = match event {
        Some(event) => {
            let (outcome, invoke) = answer(launch, &mut api, &mut reaper, event, limits).await?;
            (Some(outcome), Some(invoke))
        }
        None => (None, None),
    };

    let max_rss_kib = proc_status_kib(reaper.pid, "VmHWM").unwrap_or(init_hwm_kib);
    reaper.stop().await;
    Ok(ColdStart {
        to_first_next,
        init_hwm_kib,
        max_rss_kib,
        outcome,
        invoke,
    })
}

/// Starts the function with its log as stdout and stderr, under `api`: when it started (just
/// before fork + exec), and its pid.
fn spawn(launch: &Launch, api: &RuntimeApi) -> Result<(Instant, Reaper), MeasureError> {
    let log_error = |source| MeasureError::Log {
        name: launch.name.clone(),
        log: launch.log.display().to_string(),
        source,
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)
        .map_err(log_error)?;
    let log_err = log.try_clone().map_err(log_error)?;
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.runtime_api())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let started = Instant::now();
    let child = command.spawn().map_err(|source| MeasureError::Spawn {
        name: launch.name.clone(),
        program: launch.program.display().to_string(),
        source,
    })?;
    // Reaped by `Reaper`, not by std, so an abandoned run still kills it.
    let reaper = Reaper {
        pid: child.id() as libc::pid_t,
        reaped: None,
    };
    drop(child);
    Ok((started, reaper))
}

/// Waits for the first /next, watching for an early exit so a crash is reported at once.
async fn first_next(
    launch: &Launch,
    api: &mut RuntimeApi,
    reaper: &mut Reaper,
    started: Instant,
    limits: Limits,
) -> Result<Instant, MeasureError> {
    let mut init_error = String::new();
    loop {
        if started.elapsed() > limits.init {
            return Err(MeasureError::Timeout {
                name: launch.name.clone(),
                what: "/next request",
                secs: limits.init.as_secs(),
                log: launch.log.display().to_string(),
            });
        }
        match api.next_event(Duration::from_millis(5)).await {
            Some(Event::NextPolled { at }) => return Ok(at),
            Some(Event::InitError { error_type, body }) => {
                init_error = format!(
                    "; /init/error {error_type}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Some(_) => {}
            None => {
                if let Some(status) = reaper.try_reap() {
                    return Err(MeasureError::ExitedEarly {
                        name: launch.name.clone(),
                        status: describe_status(status),
                        log: launch.log.display().to_string(),
                        init_error,
                    });
                }
            }
        }
    }
}

/// Hands the function `event` and waits for its answer: what it was, and how long it took.
async fn answer(
    launch: &Launch,
    api: &mut RuntimeApi,
    reaper: &mut Reaper,
    event: &serde_json::Value,
    limits: Limits,
) -> Result<(Outcome, Duration), MeasureError> {
    let request_id = api.invoke(event);
    let sent = Instant::now();
    loop {
        if sent.elapsed() > limits.invoke {
            return Err(MeasureError::Timeout {
                name: launch.name.clone(),
                what: "answer to the event",
                secs: limits.invoke.as_secs(),
                log: launch.log.display().to_string(),
            });
        }
        match api.next_event(Duration::from_millis(5)).await {
            Some(Event::Response {
                request_id: id,
                body,
                at,
            }) if id == request_id => {
                return Ok((
                    Outcome::Response(String::from_utf8_lossy(&body).into_owned()),
                    at.saturating_duration_since(sent),
                ));
            }
            Some(Event::Error {
                request_id: id,
                error_type,
                at,
                ..
            }) if id == request_id => {
                return Ok((
                    Outcome::Error(error_type),
                    at.saturating_duration_since(sent),
                ));
            }
            Some(_) => {}
            None => {
                if let Some(status) = reaper.try_reap() {
                    return Err(MeasureError::ExitedEarly {
                        name: launch.name.clone(),
                        status: format!("{} while handling the event", describe_status(status)),
                        log: launch.log.display().to_string(),
                        init_error: String::new(),
                    });
                }
            }
        }
    }
}

/// Owns the child's pid until it is reaped; kills it if a run is abandoned.
struct Reaper {
    pid: libc::pid_t,
    reaped: Option<i32>,
}

impl Reaper {
    /// The wait status, if the child has exited.
    fn try_reap(&mut self) -> Option<i32> {
        if self.reaped.is_none() {
            self.reaped = waitpid(self.pid, libc::WNOHANG);
        }
        self.reaped
    }

    /// SIGTERM (what Lambda sends at shutdown), SIGKILL after two seconds.
    async fn stop(&mut self) {
        if self.try_reap().is_none() {
            // SAFETY: plain syscall on our own, not yet reaped, child.
            unsafe { libc::kill(self.pid, libc::SIGTERM) };
            let asked = Instant::now();
            while self.try_reap().is_none() {
                if asked.elapsed() > Duration::from_secs(2) {
                    // SAFETY: as above.
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                    self.reaped = waitpid(self.pid, 0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            // SAFETY: our own child, not yet reaped, so the pid cannot have been reused.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = waitpid(self.pid, 0);
        }
    }
}

fn waitpid(pid: libc::pid_t, flags: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: a valid pointer to a local; pid is our child.
    let r = unsafe { libc::waitpid(pid, &mut status, flags) };
    (r == pid).then_some(status)
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

/// A `kB` line of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: libc::pid_t, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}
