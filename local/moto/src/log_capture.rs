//! Everything a test process logs, at TRACE (the AWS SDK's and the HTTP client's records too),
//! for tests that prove a secret never reaches the logs.

use std::sync::{Arc, Mutex};

/// What was logged since [`capture_all_logs`].
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a global TRACE subscriber writing into the returned capture.
///
/// Global, so call it once, in a test binary of its own: a scoped subscriber misses events
/// whose callsite interest another test thread cached first.
///
/// # Panics
/// If a global subscriber is already set.
pub fn capture_all_logs() -> LogCapture {
    let captured = LogCapture::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("capture_all_logs runs once per test binary");
    captured
}
