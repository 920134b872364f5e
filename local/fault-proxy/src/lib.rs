//! A loopback HTTP proxy between the functions' AWS SDK clients and moto that answers some
//! calls with faults instead of forwarding them, per a seeded [`FaultSchedule`]:
//!
//! - **throttling** in the shape of the protocol being called: AWS query (RDS, SNS, STS,
//!   CloudWatch 1.99) gets `400 <ErrorResponse>…<Code>Throttling</Code>…`, AWS JSON (ECR,
//!   Secrets Manager, SFN, SQS) gets `400 {"__type": "ThrottlingException"}` with
//!   `x-amzn-ErrorType`, REST-JSON (EKS) gets `429` with
//!   `x-amzn-ErrorType: TooManyRequestsException`, REST-XML (S3) gets
//!   `503 <Error><Code>SlowDown</Code>…`. The SDK reads them as throttling, and
//!   `RollbackError::from_sdk` gives `Rollback.Throttled`;
//! - **5xx**: `500 InternalFailure` / `503 ServiceUnavailable` (`ServerException` /
//!   `ServiceUnavailableException` for REST-JSON) → `Rollback.Transient`;
//! - **slow answers**: forwarded at once, answer held for the schedule's delay (bounded by
//!   [`schedule::MAX_SLOW_DELAY`]), so a client with a shorter attempt timeout gives up while
//!   the call did take effect → `Rollback.Transient` (timeout);
//! - **dropped connections**, before forwarding or after (the call took effect, the answer is
//!   lost) → `Rollback.Transient` (dispatch failure).
//!
//! Every request is logged with its fault ([`FaultProxy::log`]), so invariant checks can
//! tell which calls reached moto, and a failing test can print the seed and schedule
//! ([`FaultProxy::report`]). The proxy runs on its own thread and runtime (it outlives any
//! one test's runtime), binds `127.0.0.1:0`, forwards only to a loopback upstream, bounds
//! every wait, and stops — cancelling slow answers in flight — when dropped.
//!
//! # How the drill's fault test uses it
//!
//! ```no_run
//! use rollback_fault_proxy::{FaultKind, FaultProxy, FaultSchedule};
//! # fn demo(moto: &rollback_moto::MotoServer, seed: u64) {
//! let schedule = FaultSchedule::seeded(seed, 0.2, &FaultKind::ALL)
//!     .with_slow_delay(std::time::Duration::from_secs(2));
//! let proxy = FaultProxy::start(&moto.endpoint(), schedule).expect("fault proxy");
//! // Every AWS client of every function is built from this one config, exactly as
//! // `main.rs` builds them from `rollback_core::aws::from_env()` in Lambda. For slow
//! // faults to bite, give the config an `operation_attempt_timeout` below the slow delay.
//! let sdk = rollback_core::aws::for_endpoint(&proxy.url(), rollback_core::aws::LOCAL_REGION);
//! // … run the drill with clients from `sdk`; moto setup and invariant checks talk to
//! // `moto.sdk_config()` directly, so they are never faulted …
//! # let drill_ok = true;
//! if !drill_ok {
//!     panic!("drill failed under faults:\n{}", proxy.report());
//! }
//! # }
//! ```
//!
//! The seed decides each call's fate from its operation and how many calls of that
//! operation came before, not from the global arrival order, so the parallel branches of a
//! drill interleaving differently do not change which calls fail: rerunning a printed seed
//! reproduces the run. [`FaultSchedule::fail_next`] adds explicit rules ("the next 2
//! `CreateDBSnapshot` calls are dropped") for targeted tests; [`FaultProxy::set_schedule`]
//! swaps the schedule between phases. Requests to moto's own `/moto-api` are never faulted.
//!
//! Tests: `cargo test -p rollback-fault-proxy` (moto via `make venv`).

pub mod gate;
pub mod iam;
mod protocol;
mod proxy;
mod record;
pub mod schedule;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use iam::{IamChecker, Violation};
pub use protocol::{Protocol, RequestInfo};
pub use proxy::{MAX_BODY, UPSTREAM_TIMEOUT};
pub use record::RequestRecord;
pub use schedule::{FaultKind, FaultSchedule, Matcher, Rule};

#[derive(Debug, thiserror::Error)]
pub enum FaultProxyError {
    #[error(
        "upstream {url:?} is not usable: {reason} (the proxy forwards only to http://127.0.0.1:PORT)"
    )]
    Upstream { url: String, reason: String },
    #[error("could not bind 127.0.0.1:0 for the fault proxy: {0}")]
    Bind(std::io::Error),
    #[error("could not start the fault proxy's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<proxy::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to `upstream_url` (moto's
    /// `http://127.0.0.1:PORT`). Needs no runtime from the caller.
    pub fn start(
        upstream_url: &str,
        schedule: FaultSchedule,
    ) -> Result<FaultProxy, FaultProxyError> {
        FaultProxy::start_with_iam(upstream_url, schedule, None)
    }

    /// [`FaultProxy::start`] with the IAM check: requests signed with a function's access key
    /// ([`iam::access_key_id`]) are authorized against its role first, and refused as AWS
    /// would refuse them (see [`iam`]).
    pub fn start_with_iam(
        upstream_url: &str,
        schedule: FaultSchedule,
        iam: Option<Arc<IamChecker>>,
    ) -> Result<FaultProxy, FaultProxyError> {
        let upstream = loopback_upstream(upstream_url)?;
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(FaultProxyError::Bind)?;
        listener
            .set_nonblocking(true)
            .map_err(FaultProxyError::Bind)?;
        let addr = listener.local_addr().map_err(FaultProxyError::Bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FaultProxyError::Runtime)?;
        let shared = Arc::new(proxy::Shared::new(upstream, schedule, iam));
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel();
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            proxy::accept_loop(listener, task_shared, shutdown_rx).await
                        }
                        Err(e) => tracing::error!("fault proxy listener: {e}"),
                    }
                });
                // Dropping the runtime here cancels every connection task still running.
            })
            .map_err(FaultProxyError::Runtime)?;
        tracing::debug!(%addr, "fault proxy started");
        Ok(FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL to give the SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the schedule (its rules and per-operation counters start afresh); the log
    /// carries on.
    pub fn set_schedule(&self, schedule: FaultSchedule) {
        self.shared.lock().schedule = schedule;
    }

    /// The current schedule, with its rules' remaining counts.
    pub fn schedule(&self) -> FaultSchedule {
        self.shared.lock().schedule.clone()
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Returns the log and empties it; later records keep counting indices from here.
    pub fn take_log(&self) -> Vec<RequestRecord> {
        let mut state = self.shared.lock();
        let taken = std::mem::take(&mut state.log);
        state.base += taken.len() as u64;
        taken
    }

    /// The calls the IAM check refused, in arrival order.
    pub fn iam_violations(&self) -> Vec<Violation> {
        self.shared.lock().iam_violations.clone()
    }

    /// The policy actions (as written in the template) that allowed calls used, per function.
    /// The refused calls so far, forgotten by the proxy.
    pub fn take_iam_violations(&self) -> Vec<Violation> {
        std::mem::take(&mut self.shared.lock().iam_violations)
    }

    pub fn iam_coverage(&self) -> iam::Coverage {
        self.shared.lock().iam_coverage.clone()
    }

    /// How many logged requests were faulted.
    pub fn faulted_count(&self) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.fault.is_some())
            .count()
    }

    /// The indices of the faulted requests in the log.
    pub fn faulted_indices(&self) -> Vec<u64> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.fault.is_some())
            .map(|r| r.index)
            .collect()
    }

    /// The schedule and the log, one request a line: what to print when a test fails.
    pub fn report(&self) -> String {
        let state = self.shared.lock();
        let faulted = state.log.iter().filter(|r| r.fault.is_some()).count();
        let mut out = format!(
            "fault schedule: {}\n{} requests, {} faulted:\n",
            state.schedule,
            state.log.len(),
            faulted
        );
        for record in &state.log {
            out.push_str(&format!("  {record}\n"));
        }
        out
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `http://<loopback>:PORT` → `http://127.0.0.1:PORT` (an IP literal, so no DNS lookup).
fn loopback_upstream(upstream_url: &str) -> Result<String, FaultProxyError> {
    let fail = |reason: &str| FaultProxyError::Upstream {
        url: upstream_url.to_owned(),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(upstream_url).map_err(|e| fail(&e.to_string()))?;
    if url.scheme() != "http" {
        return Err(fail("only plain http is proxied"));
    }
    let ip = match url.host() {
        Some(url::Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Err(fail("the host is not a loopback address")),
    };
    if !ip.is_loopback() {
        return Err(fail("the host is not a loopback address"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(fail(
            "the upstream must be a bare origin, without path or query",
        ));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(format!("http://{}", SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_must_be_loopback_http() {
        assert_eq!(
            loopback_upstream("http://127.0.0.1:5000").unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            loopback_upstream("http://localhost:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        for bad in [
            "https://127.0.0.1:5000",
            "http://10.0.0.1:5000",
            "http://example.com",
            "http://127.0.0.1:5000/x",
            "nonsense",
        ] {
            let err = loopback_upstream(bad).unwrap_err().to_string();
            assert!(err.contains("127.0.0.1:PORT"), "{bad}: {err}");
        }
    }
}
