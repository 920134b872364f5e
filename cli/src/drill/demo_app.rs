//! The demo "Mint Replica" front door: `/health` answers 200 only while every deployment runs
//! its stable images, like a real service that is broken by the bad release.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use rollback_kube_api::LocalKube;

pub struct DemoApp {
    pub url: String,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl DemoApp {
    /// Which image each deployment must run to be healthy (known once the images are pushed).
    pub fn set_stable(&self, stable: Vec<(String, String)>) {
        *self.state.stable.write().unwrap_or_else(|e| e.into_inner()) = stable;
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct AppState {
    kube: Arc<LocalKube>,
    namespace: String,
    /// (deployment, stable image) pairs.
    stable: std::sync::RwLock<Vec<(String, String)>>,
}

/// Serves the demo app on a free loopback port.
pub async fn start(kube: Arc<LocalKube>, namespace: &str) -> std::io::Result<DemoApp> {
    let state = Arc::new(AppState {
        kube,
        namespace: namespace.to_owned(),
        stable: Default::default(),
    });
    let app = Router::new()
        .route("/health", get(health))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(DemoApp { url, state, task })
}

async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let stable = state
        .stable
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if stable.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned());
    }
    for (name, stable) in &stable {
        let running = state
            .kube
            .deployment(&state.namespace, name)
            .map(|d| d.spec)
            .and_then(|s| s.template.spec)
            .map(|p| {
                p.containers
                    .into_iter()
                    .filter_map(|c| c.image)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !running.iter().any(|image| image == stable) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {name} runs {running:?}, not the stable image\n"),
            );
        }
    }
    (StatusCode::OK, "ok\n".to_owned())
}
