//! `rollback-engine serve --port N`: a standalone Step Functions endpoint for the AWS CLI/boto3.

use clap::{Parser, Subcommand};
use rollback_engine::{ClockMode, LambdaRegistry};

#[derive(Parser)]
#[command(name = "rollback-engine", about = "Local AWS Step Functions engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the Step Functions API (JSON 1.0) on 127.0.0.1.
    Serve {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8083)]
        port: u16,
        /// Use wall-clock time (real sleeps) instead of the virtual clock.
        #[arg(long)]
        real_time: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match Cli::parse().cmd {
        Cmd::Serve { port, real_time } => {
            // No functions are registered here; crates embedding the engine register theirs.
            let clock = if real_time {
                ClockMode::Real
            } else {
                ClockMode::Virtual
            };
            let server =
                rollback_engine::serve_standalone(LambdaRegistry::new(), port, clock).await?;
            println!("rollback-engine: Step Functions endpoint at {}", server.url);
            tokio::signal::ctrl_c().await?;
            server.shutdown();
        }
    }
    Ok(())
}
