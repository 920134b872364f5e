//! Tracing initialisation: JSON in Lambda (honouring `AWS_LAMBDA_LOG_FORMAT` and
//! `AWS_LAMBDA_LOG_LEVEL` as the runtime's default subscriber does), readable text locally.

use tracing_subscriber::EnvFilter;

/// For a Lambda's `main`. Call once.
pub fn init_lambda() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter =
        EnvFilter::try_new(level.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|f| f.eq_ignore_ascii_case("text"))
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // CloudWatch adds its own timestamp.
        .without_time();
    let _ = if text {
        builder.with_ansi(false).try_init()
    } else {
        builder.json().with_current_span(false).try_init()
    };
}

/// For local tools (`rollbackctl`, the drill): human-readable on stderr, `RUST_LOG` or `warn`.
pub fn init_local() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
