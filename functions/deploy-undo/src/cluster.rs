//! Reaching the cluster the way EKS clients do: endpoint and CA from `DescribeCluster`, bearer
//! token from a presigned STS `GetCallerIdentity` (see `rollback_core::eks_token`).
//!
//! `DescribeCluster` always runs (it proves the cluster exists and is the one the plan names),
//! but its endpoint and CA can be overridden with [`ApiOverride`]: for local stacks (moto's EKS
//! returns an unreachable endpoint and a CA that is not PEM) and for private endpoints reached
//! through a tunnel. The token is still made and sent either way.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::AuthInfo;
use rollback_core::RollbackError;
use rollback_core::contract::deploy_undo::RBAC_MANIFEST;
use rollback_core::eks_token::TokenCache;
use rollback_core::plan::ClusterRef;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::Clients;

/// An explicit API endpoint (and CA) used instead of `DescribeCluster`'s.
#[derive(Clone, Default)]
pub struct ApiOverride {
    /// `https://host:port` (or `http://` for a plain-HTTP local API).
    pub url: String,
    /// PEM of the CA that signed the API server's certificate.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for ApiOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOverride")
            .field("url", &self.url)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// Environment variables of the override (read by the Lambda's `main`).
pub const URL_VAR: &str = "ROLLBACK_KUBE_API_URL";
pub const CA_FILE_VAR: &str = "ROLLBACK_KUBE_CA_FILE";
pub const CA_PEM_VAR: &str = "ROLLBACK_KUBE_CA_PEM";

impl ApiOverride {
    /// `ROLLBACK_KUBE_API_URL` with `ROLLBACK_KUBE_CA_FILE` (a path) or `ROLLBACK_KUBE_CA_PEM`
    /// (the PEM itself); `None` when the URL is unset.
    pub fn from_env() -> Result<Option<ApiOverride>, RollbackError> {
        let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let ca_pem = match (std::env::var(CA_FILE_VAR), std::env::var(CA_PEM_VAR)) {
            (Ok(path), _) if !path.is_empty() => {
                Some(std::fs::read_to_string(&path).map_err(|e| {
                    RollbackError::InvalidInput(format!("{CA_FILE_VAR}={path}: {e}"))
                })?)
            }
            (_, Ok(pem)) if !pem.is_empty() => Some(pem),
            _ => None,
        };
        Ok(Some(ApiOverride { url, ca_pem }))
    }
}

/// One cluster, for one invocation: a kube client renewed with the token.
pub struct Cluster {
    pub name: String,
    pub namespace: String,
    endpoint: String,
    ca_pem: Option<Vec<u8>>,
    tokens: TokenCache,
    client: Mutex<Option<(String, kube::Client)>>,
}

impl Cluster {
    pub async fn connect(
        clients: &Clients,
        cluster: &ClusterRef,
    ) -> Result<Cluster, RollbackError> {
        let described = clients
            .eks
            .describe_cluster()
            .name(&cluster.name)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    RollbackError::Kubernetes {
                        operation: "eks:DescribeCluster".into(),
                        message: format!(
                            "EKS cluster {} does not exist in this account and region; check the \
                             plan's cluster.name",
                            cluster.name
                        ),
                        retryable: false,
                    }
                } else {
                    RollbackError::from_sdk("eks:DescribeCluster", e)
                }
            })?;
        let info = described
            .cluster()
            .ok_or_else(|| RollbackError::Kubernetes {
                operation: "eks:DescribeCluster".into(),
                message: format!("no description of cluster {}", cluster.name),
                retryable: true,
            })?;
        let (endpoint, ca_pem) = match &clients.api_override {
            Some(o) => {
                tracing::info!(cluster = %cluster.name, url = %o.url, "using the API endpoint override");
                (o.url.clone(), o.ca_pem.clone().map(String::into_bytes))
            }
            None => {
                let endpoint = info.endpoint().map(str::to_owned).ok_or_else(|| {
                    RollbackError::Kubernetes {
                        operation: "eks:DescribeCluster".into(),
                        message: format!(
                            "cluster {} has no API endpoint yet (status {:?})",
                            cluster.name,
                            info.status()
                        ),
                        retryable: true,
                    }
                })?;
                let ca = info
                    .certificate_authority()
                    .and_then(|c| c.data())
                    .map(|data| STANDARD.decode(data.trim()))
                    .transpose()
                    .map_err(|e| RollbackError::Kubernetes {
                        operation: "eks:DescribeCluster".into(),
                        message: format!("cluster {}'s CA data is not base64: {e}", cluster.name),
                        retryable: false,
                    })?;
                (endpoint, ca)
            }
        };
        let tokens = TokenCache::from_sdk_config(&clients.config, &cluster.name)
            .map_err(|e| RollbackError::Internal(e.to_string()))?;
        Ok(Cluster {
            name: cluster.name.clone(),
            namespace: cluster.namespace.clone(),
            endpoint,
            ca_pem,
            tokens,
            client: Mutex::new(None),
        })
    }

    /// A client carrying a token that is good for a while yet.
    pub async fn client(&self) -> Result<kube::Client, RollbackError> {
        let token = self
            .tokens
            .token()
            .await
            .map_err(|e| RollbackError::Internal(e.to_string()))?;
        let mut cached = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, client)) = cached.as_ref()
            && t == token.secret()
        {
            return Ok(client.clone());
        }
        let client = self.build(token.secret())?;
        *cached = Some((token.secret().to_owned(), client.clone()));
        Ok(client)
    }

    fn build(&self, token: &str) -> Result<kube::Client, RollbackError> {
        // kube builds its rustls config from the process default provider; with both ring
        // (kube) and aws-lc-rs (the AWS SDK) compiled in there is none until one is chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bad = |message: String| RollbackError::Kubernetes {
            operation: "connect".into(),
            message,
            retryable: false,
        };
        let uri: http::Uri = self.endpoint.parse().map_err(|e| {
            bad(format!(
                "API endpoint {:?} is not a URL: {e}",
                self.endpoint
            ))
        })?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = self.namespace.clone();
        config.read_timeout = Some(Duration::from_secs(30));
        config.reset_reader_on_write = true;
        if let Some(pem) = &self.ca_pem {
            let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
                .map(|c| c.map(|c| c.as_ref().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("cluster {}'s CA is not PEM: {e}", self.name)))?;
            if certs.is_empty() {
                return Err(bad(format!(
                    "cluster {}'s CA holds no certificate; with a local API, give its CA with \
                     {CA_FILE_VAR} or {CA_PEM_VAR}",
                    self.name
                )));
            }
            config.root_cert = Some(certs);
        }
        config.auth_info = serde_json::from_value::<AuthInfo>(serde_json::json!({"token": token}))
            .map_err(|e| RollbackError::Internal(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| bad(format!("building the client: {e}")))
    }
}

/// Classifies a Kubernetes API failure: conflicts, throttling and server trouble are retryable.
/// A 403 names the missing RBAC permission and the manifest that grants it.
pub fn k8s_error(operation: &str, err: kube::Error) -> RollbackError {
    k8s_error_granted_by(operation, err, RBAC_MANIFEST)
}

/// [`k8s_error`] for a request whose permission `manifest` grants (the GitOps objects' Roles
/// live in their own manifests).
pub fn k8s_error_granted_by(operation: &str, err: kube::Error, manifest: &str) -> RollbackError {
    match &err {
        kube::Error::Api(status) if status.code == 403 => RollbackError::Kubernetes {
            operation: operation.to_owned(),
            message: match forbidden_permission(&status.message) {
                Some((verb, resource, scope)) => format!(
                    "the deploy-undo role may not {verb} {resource} in {scope}: add the verb to \
                     {manifest} and kubectl apply it (the API server said: {})",
                    status.message
                ),
                None => format!(
                    "403 {}: {} — the function's Kubernetes identity lacks this permission: \
                     grant it in {manifest} and kubectl apply it",
                    status.reason, status.message
                ),
            },
            retryable: false,
        },
        kube::Error::Api(status) => {
            let retryable = matches!(status.code, 409 | 429 | 500 | 502 | 503 | 504);
            let hint = match status.code {
                401 => {
                    " — the cluster refused the EKS token: map the function's role in the \
                     cluster's access entries (or aws-auth)"
                }
                409 => " — the object changed meanwhile; the step is retried",
                _ => "",
            };
            RollbackError::Kubernetes {
                operation: operation.to_owned(),
                message: format!(
                    "{} {}: {}{hint}",
                    status.code, status.reason, status.message
                ),
                retryable,
            }
        }
        _ => RollbackError::Kubernetes {
            operation: operation.to_owned(),
            message: err.to_string(),
            retryable: true,
        },
    }
}

/// (verb, resource, scope) from the API server's forbidden message, e.g. `… User "u" cannot
/// update resource "deployments" in API group "apps" in the namespace "mint"` →
/// (`update`, `deployments`, `mint`); a cluster-scoped request's scope is `the cluster`.
fn forbidden_permission(message: &str) -> Option<(String, String, String)> {
    let (_, rest) = message.rsplit_once("\" cannot ")?;
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, rest) = rest.split_once('"')?;
    let scope = match rest.split_once(" in the namespace \"") {
        Some((_, ns)) => ns.split_once('"')?.0.to_string(),
        None if rest.ends_with("at the cluster scope") => "the cluster".to_string(),
        None => return None,
    };
    Some((verb.to_string(), resource.to_string(), scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_name_the_permission() {
        let namespaced = "deployments.apps \"x\" is forbidden: User \"arn:aws:sts::1:assumed-role/r/s\" \
                          cannot update resource \"deployments\" in API group \"apps\" in the namespace \"mint\"";
        assert_eq!(
            forbidden_permission(namespaced),
            Some(("update".into(), "deployments".into(), "mint".into()))
        );
        let scale = "deployments.apps \"x\" is forbidden: User \"u\" cannot patch resource \
                     \"deployments/scale\" in API group \"apps\" in the namespace \"shop\"";
        assert_eq!(
            forbidden_permission(scale),
            Some(("patch".into(), "deployments/scale".into(), "shop".into()))
        );
        let cluster = "replicasets.apps is forbidden: User \"u\" cannot list resource \
                       \"replicasets\" in API group \"apps\" at the cluster scope";
        assert_eq!(
            forbidden_permission(cluster),
            Some(("list".into(), "replicasets".into(), "the cluster".into()))
        );
        assert_eq!(
            forbidden_permission("forbidden: User \"u\" cannot get path \"/x\""),
            None
        );
    }
}
