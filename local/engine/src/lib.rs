//! `rollback-engine`: a local AWS Step Functions engine.
//!
//! - [`definition`]: ASL (JSONPath mode) parsed and validated into a typed model;
//! - [`interpreter`]: runs executions, with Retry/Catch, timeouts and `waitForTaskToken`;
//! - [`clock`]: per-execution virtual clocks, so waits take no real time;
//! - [`task`]: the [`TaskHandler`] trait embedders implement, and a [`LambdaRegistry`];
//! - [`engine`]: Step Functions API semantics (executions, history, tokens);
//! - [`service::http`]: the AWS JSON 1.0 endpoint for `aws-sdk-sfn`, the AWS CLI and boto3.
//!
//! Inputs: ASL definitions (JSON text, with optional `${Name}` substitutions), execution input
//! JSON, task results from a [`TaskHandler`] (usually Lambda functions registered in a
//! [`LambdaRegistry`]) and SendTask* answers to task tokens. Outputs: execution status, output
//! or error and cause, and GetExecutionHistory-shaped event histories, through [`Engine`]'s
//! methods or the HTTP endpoint ([`serve`], [`serve_on_loopback`], [`serve_standalone`]).
//!
//! On its own: `cargo test -p rollback-engine` runs its tests (no AWS account needed).
//! `cargo run -p rollback-engine -- serve [--port N] [--real-time]` serves a standalone endpoint
//! (state machine operations included) on `127.0.0.1:N`, default 8083, on the virtual clock
//! unless `--real-time`. It has no Lambda functions registered, so its Task states fail with
//! States.TaskFailed. Point the AWS CLI at it with `--endpoint-url http://127.0.0.1:8083`.

pub mod choice;
pub mod clock;
pub mod definition;
mod digest;
pub mod engine;
pub mod history;
pub mod interpreter;
pub mod intrinsics;
pub mod paths;
pub mod service;
pub mod task;
pub mod tokens;

pub use clock::ClockMode;
pub use engine::{Engine, EngineConfig, ExecutionDescription, ExecutionStatus, ServiceError};
pub use interpreter::StatesError;
pub use service::http::{Mode, Server, serve};
pub use task::{LambdaRegistry, NoTasks, TaskFailure, TaskHandler, TaskRequest};

/// An engine with default settings running the functions in `registry`, and its endpoint on
/// a free loopback port in `mode` (tests that drive executions through the SDK or the engine).
pub async fn serve_on_loopback(
    registry: LambdaRegistry,
    mode: Mode,
) -> std::io::Result<(Engine, Server)> {
    let engine = Engine::new(std::sync::Arc::new(registry), EngineConfig::default());
    let server = serve(
        engine.clone(),
        mode,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    Ok((engine, server))
}

/// Serves a standalone Step Functions endpoint on 127.0.0.1:`port` (0 = any free port) whose
/// Lambda tasks run the functions in `registry`. `rollback-engine serve` uses this with an
/// empty registry; `rollbackctl` can use it with the project's functions registered.
pub async fn serve_standalone(
    registry: LambdaRegistry,
    port: u16,
    clock: ClockMode,
) -> std::io::Result<Server> {
    let engine = Engine::new(
        std::sync::Arc::new(registry),
        EngineConfig {
            clock,
            ..Default::default()
        },
    );
    serve(
        engine,
        Mode::Standalone,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    )
    .await
}
