//! A local Kubernetes API server for rollback tests and drills.
//!
//! It serves the part of the API a rollback touches — discovery, `apps/v1` Deployments and
//! ReplicaSets (with `scale` and `status`), watches, `dryRun=All`, simulated pods that show the
//! image digest they pulled (`pods`: a tag → digest registry and one node's image cache, so
//! `imagePullPolicy` matters), and the custom resources a rollback suspends (Argo CD
//! `applications.argoproj.io`, Flux `kustomizations.kustomize.toolkit.fluxcd.io`) — over HTTPS with a
//! generated CA (or plain HTTP), with bearer-token authentication that verifies EKS tokens
//! (SigV4 signature, cluster, 15-minute window; see `auth`), RBAC authorization from a Role
//! manifest (see [`Rbac`]; `SelfSubjectAccessReview` answers `kubectl auth can-i`), and
//! runs a deployment controller that numbers revisions like the real one. The real `kubectl`
//! works against it through [`LocalKube::write_kubeconfig`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), rollback_kube_api::Error> {
//! use rollback_kube_api::{LocalKube, Options, MintImages};
//! let kube = LocalKube::start(Options::default()).await?;
//! kube.seed_mint_demo(&MintImages::example())?;
//! kube.write_kubeconfig("/tmp/kubeconfig", rollback_kube_api::DEFAULT_TOKEN)?;
//! # Ok(()) }
//! ```
//!
//! Standalone: `cargo run -p rollback-kube-api -- --seed-mint --kubeconfig /tmp/kubeconfig`, then
//! `kubectl --kubeconfig /tmp/kubeconfig …`. Tests: `cargo test -p rollback-kube-api` (kubectl).

mod api;
mod auth;
mod controller;
mod discovery;
mod error;
mod fault;
mod meta;
mod objects;
mod patch;
mod pods;
mod protobuf;
mod rbac;
mod seed;
mod server;
mod store;
mod table;
mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{
    AuthConfig, AwsPrincipal, CLUSTER_ID_HEADER, EKS_TOKEN_PREFIX, EksAuth, TOKEN_LIFETIME_SECONDS,
    validate_eks_token, verify_eks_token,
};
pub use controller::{POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY};
pub use error::{ApiError, Error};
pub use fault::{Fault, FaultKind};
pub use rbac::{
    Attributes, Decision, PolicyRule, Rbac, SYSTEM_AUTHENTICATED, SYSTEM_MASTERS, UserInfo,
};
pub use seed::{CHANGE_CAUSE, MINT_NAMESPACE, MintImages};
pub use server::RequestRecord;

use server::{Shared, lock};
use store::{Kind, Store};

/// The static bearer token accepted by default (kubectl convenience).
pub const DEFAULT_TOKEN: &str = "local-kube-token";

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve HTTPS with a generated CA (the default) or plain HTTP.
    pub tls: bool,
    /// Bearer tokens accepted as-is, as the cluster admin (`system:masters`).
    pub static_tokens: Vec<String>,
    /// Accept EKS tokens (`k8s-aws-v1.…`) that verify for this cluster and these principals.
    pub eks: Option<EksAuth>,
    /// Authorize with these RBAC rules (see [`Rbac::from_manifest`]); `None` allows every
    /// authenticated request (the API server's AlwaysAllow mode).
    pub rbac: Option<Rbac>,
    /// Pods become ready at once (true) or only on [`LocalKube::step`].
    pub auto_progress: bool,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: true,
            static_tokens: vec![DEFAULT_TOKEN.to_string()],
            eks: None,
            rbac: None,
            auto_progress: true,
            port: 0,
        }
    }
}

impl Options {
    /// Plain HTTP, same auth.
    pub fn http() -> Self {
        Options {
            tls: false,
            ..Options::default()
        }
    }
}

/// A running local API server. Dropping it shuts the server down.
pub struct LocalKube {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalKube {
    /// Bind 127.0.0.1 (port from the options, 0 = any free one) and start serving on the
    /// current Tokio runtime.
    pub async fn start(options: Options) -> Result<LocalKube, Error> {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let (ca_pem, acceptor) = if options.tls {
            let tls = tls::generate()?;
            (
                Some(tls.ca_pem),
                Some(tokio_rustls::TlsAcceptor::from(tls.config)),
            )
        } else {
            (None, None)
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut store = Store::new();
        store.sim.auto_progress = options.auto_progress;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            auth: AuthConfig {
                static_tokens: options.static_tokens,
                eks: options.eks,
            },
            rbac: Mutex::new(options.rbac),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(VecDeque::new()),
            shutdown: shutdown_rx,
            address: addr.to_string(),
        });
        let task = tokio::spawn(server::accept_loop(listener, acceptor, shared.clone()));
        tracing::info!(%addr, tls = ca_pem.is_some(), "local Kubernetes API listening");
        Ok(LocalKube {
            shared,
            addr,
            ca_pem,
            shutdown,
            task,
        })
    }

    /// `https://127.0.0.1:PORT` (or `http://…`).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that signed the server certificate; None for plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig (JSON, which is valid YAML) for this server, context `local`, namespace `default`.
    pub fn kubeconfig(&self, token: &str) -> String {
        use base64::Engine;
        let mut cluster = json!({"server": self.url()});
        if let Some(ca) = &self.ca_pem {
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(ca));
        }
        let cfg = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": cluster}],
            "users": [{"name": "local", "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local", "namespace": "default"}}],
            "current-context": "local",
            "preferences": {},
        });
        serde_json::to_string_pretty(&cfg).unwrap_or_default()
    }

    /// Write [`LocalKube::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>, token: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(token))
    }

    // ----- controller control -----

    /// Whether pods become ready at once (default) or only on [`LocalKube::step`].
    pub fn set_auto_progress(&self, on: bool) {
        let mut store = lock(&self.shared.store);
        store.sim.auto_progress = on;
        controller::reconcile(&mut store);
    }

    /// One unit of pod progress in every ReplicaSet; false when everything had settled.
    pub fn step(&self) -> bool {
        controller::step(&mut lock(&self.shared.store))
    }

    /// Step until nothing moves (at most `max_steps`); returns the steps taken.
    pub fn settle(&self, max_steps: usize) -> usize {
        (0..max_steps).take_while(|_| self.step()).count()
    }

    /// Declare the deployment's progress deadline passed: an unfinished rollout gets
    /// `Progressing=False, reason ProgressDeadlineExceeded` (as after progressDeadlineSeconds).
    pub fn expire_progress_deadline(&self, ns: &str, name: &str) -> Result<(), ApiError> {
        let mut store = lock(&self.shared.store);
        api::get(&store, Kind::Deployment, ns, name)?;
        store
            .sim
            .deadline_expired
            .insert((ns.to_string(), name.to_string()));
        controller::reconcile(&mut store);
        Ok(())
    }

    /// Replace the RBAC rules (as `kubectl apply` of a new manifest would); `None` turns
    /// authorization off.
    pub fn set_rbac(&self, rbac: Option<Rbac>) {
        *lock(&self.shared.rbac) = rbac;
    }

    // ----- faults and observation -----

    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Answer the next `count` requests with `code` (500, 503, 429 with Retry-After, ...).
    pub fn fail_next(&self, count: u32, code: u16) {
        self.inject_fault(Fault::status(code, count));
    }

    /// Hold the next `count` requests for `duration` before serving them.
    pub fn stall_next(&self, count: u32, duration: std::time::Duration) {
        self.inject_fault(Fault::stall(duration, count));
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The requests served so far (most recent last, bounded).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).iter().cloned().collect()
    }

    // ----- direct state access -----

    pub fn deployment(&self, ns: &str, name: &str) -> Option<Deployment> {
        let store = lock(&self.shared.store);
        store
            .get(Kind::Deployment, ns, name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn deployments(&self, ns: &str) -> Vec<Deployment> {
        let store = lock(&self.shared.store);
        store
            .list(Kind::Deployment, Some(ns))
            .into_iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// ReplicaSets controlled by the deployment, oldest revision first.
    pub fn replica_sets(&self, ns: &str, deployment: &str) -> Vec<ReplicaSet> {
        let store = lock(&self.shared.store);
        let Some(uid) = store
            .get(Kind::Deployment, ns, deployment)
            .and_then(|d| d.pointer("/metadata/uid").cloned())
        else {
            return Vec::new();
        };
        let mut out: Vec<ReplicaSet> = store
            .list(Kind::ReplicaSet, Some(ns))
            .into_iter()
            .filter(|rs| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(|r| r.as_array())
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            r.get("uid") == Some(&uid) && r.get("controller") == Some(&json!(true))
                        })
                    })
            })
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect();
        out.sort_by_key(|rs| controller::revision_of(&rs.metadata));
        out
    }

    /// Create any Deployment (defaulted and validated like a POST).
    pub fn create_deployment(&self, deployment: &Deployment) -> Result<Deployment, ApiError> {
        let ns = deployment
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let body = objects::to_value(deployment)?;
        api::create(
            &mut lock(&self.shared.store),
            Kind::Deployment,
            &ns,
            body,
            api::WriteOptions::default(),
        )?;
        let name = deployment.metadata.name.clone().unwrap_or_default();
        self.deployment(&ns, &name)
            .ok_or_else(|| ApiError::not_found("deployments.apps", &name))
    }

    /// Create a ReplicaSet directly (e.g. an orphan for adoption tests).
    pub fn create_replica_set(&self, rs: &ReplicaSet) -> Result<(), ApiError> {
        let ns = rs
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let body = objects::to_value(rs)?;
        api::create(
            &mut lock(&self.shared.store),
            Kind::ReplicaSet,
            &ns,
            body,
            api::WriteOptions::default(),
        )?;
        Ok(())
    }

    /// Apply a JSON merge patch to a deployment (as a client's PATCH would).
    pub fn merge_patch_deployment(
        &self,
        ns: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Deployment, ApiError> {
        let body = serde_json::to_vec(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut store = lock(&self.shared.store);
        // The patch answer is the object before the controller's pass; read the settled one.
        api::patch(
            &mut store,
            Kind::Deployment,
            ns,
            name,
            (patch::PatchKind::Merge, &body),
            api::Part::Main,
            api::WriteOptions::default(),
        )?;
        drop(store);
        self.deployment(ns, name)
            .ok_or_else(|| ApiError::not_found("deployments.apps", name))
    }

    // ----- custom resources (Argo CD Applications, Flux Kustomizations) -----

    /// Create a custom resource (an `argoproj.io/v1alpha1` Application or a
    /// `kustomize.toolkit.fluxcd.io/v1` Kustomization; its `apiVersion` and `kind` say which),
    /// validated like a POST.
    pub fn create_custom_object(
        &self,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let field = |f: &str| {
            object
                .get(f)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
        };
        let kind = Kind::from_type(field("apiVersion"), field("kind"))
            .filter(|k| k.is_custom())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no custom resource {} {} is served here",
                    field("apiVersion"),
                    field("kind")
                ))
            })?;
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("default")
            .to_owned();
        api::create(
            &mut lock(&self.shared.store),
            kind,
            &ns,
            object.clone(),
            api::WriteOptions::default(),
        )
    }

    /// A stored custom resource by `apiVersion`, `kind`, namespace and name.
    pub fn custom_object(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let kind = Kind::from_type(api_version, kind)?;
        lock(&self.shared.store).get(kind, ns, name).cloned()
    }

    // ----- pods, the registry and the node's image cache (see `pods`) -----

    /// Make the registry serve `digest` for the tag reference `image` (`repo:prod`), as a push
    /// or a retag does. Pods created from now on pull it (per their pull policy).
    pub fn set_image_digest(&self, image: &str, digest: &str) {
        lock(&self.shared.store)
            .sim
            .pods
            .registry
            .insert(image.to_owned(), digest.to_owned());
    }

    /// Empty the node's image cache, as if the pods moved to a freshly joined node: the next
    /// pod of each reference pulls it from the registry whatever its pull policy.
    pub fn clear_node_cache(&self) {
        lock(&self.shared.store).sim.pods.node_cache.clear();
    }

    /// The digest the node has cached for the tag reference `image`, if it pulled it.
    pub fn cached_digest(&self, image: &str) -> Option<String> {
        lock(&self.shared.store)
            .sim
            .pods
            .node_cache
            .get(image)
            .cloned()
    }

    /// The pods of a namespace (as `GET /api/v1/namespaces/{ns}/pods` serves them): their
    /// `status.containerStatuses[].imageID` is the digest each runs.
    pub fn pods(&self, ns: &str) -> Vec<k8s_openapi::api::core::v1::Pod> {
        pods::list(&lock(&self.shared.store), Some(ns))
            .into_iter()
            .filter_map(|p| serde_json::from_value(p).ok())
            .collect()
    }

    /// Stop serving (also done on drop). Open watches end.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl Drop for LocalKube {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Install rustls' ring provider as the process default, if none is installed yet. Clients
/// that build a rustls config without an explicit provider (kube's) need one when more than
/// one provider is compiled in; harmless otherwise.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
