//! Seeding helpers: put deployments with a known revision history in place without a client.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use crate::LocalKube;
use crate::api::{self, Part, WriteOptions};
use crate::error::ApiError;
use crate::patch::PatchKind;
use crate::server::lock;
use crate::store::Kind;

/// The annotation `kubectl rollout history` shows as CHANGE-CAUSE.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// Images for the "Mint Replica" demo: revision 1 runs the stable ones, revision 2 the bad ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintImages {
    pub backend_stable: String,
    pub backend_bad: String,
    pub frontend_stable: String,
    pub frontend_bad: String,
}

impl MintImages {
    /// Placeholder images, for examples and tests that do not care about digests.
    pub fn example() -> Self {
        MintImages {
            backend_stable: "mint-replica-backend:stable".into(),
            backend_bad: "mint-replica-backend:bad".into(),
            frontend_stable: "mint-replica-frontend:stable".into(),
            frontend_bad: "mint-replica-frontend:bad".into(),
        }
    }
}

pub const MINT_NAMESPACE: &str = "mint";

impl LocalKube {
    /// Create `ns/name` with label `app=<name>` and the given `(container, image)` pairs.
    pub fn seed_deployment(
        &self,
        ns: &str,
        name: &str,
        containers: &[(&str, &str)],
        replicas: i32,
        change_cause: Option<&str>,
    ) -> Result<Deployment, ApiError> {
        let labels = BTreeMap::from([("app".to_string(), name.to_string())]);
        let annotations =
            change_cause.map(|c| BTreeMap::from([(CHANGE_CAUSE.to_string(), c.to_string())]));
        let d = Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some(labels.clone()),
                annotations,
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: containers
                            .iter()
                            .map(|(c, image)| Container {
                                name: (*c).into(),
                                image: Some((*image).into()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            },
            status: None,
        };
        self.create_deployment(&d)
    }

    /// Roll `ns/name` to new images (a strategic merge patch of the containers by name, as
    /// `kubectl set image` sends), recording `change_cause` when given.
    pub fn set_images(
        &self,
        ns: &str,
        name: &str,
        images: &[(&str, &str)],
        change_cause: Option<&str>,
    ) -> Result<Deployment, ApiError> {
        let containers: Vec<Value> = images
            .iter()
            .map(|(c, i)| json!({"name": c, "image": i}))
            .collect();
        let mut patch = json!({"spec": {"template": {"spec": {"containers": containers}}}});
        if let Some(cause) = change_cause {
            patch["metadata"] = json!({"annotations": {CHANGE_CAUSE: cause}});
        }
        let body = serde_json::to_vec(&patch).map_err(|e| ApiError::internal(e.to_string()))?;
        api::patch(
            &mut lock(&self.shared.store),
            Kind::Deployment,
            ns,
            name,
            (PatchKind::Strategic, &body),
            Part::Main,
            WriteOptions::default(),
        )?;
        self.deployment(ns, name)
            .ok_or_else(|| ApiError::not_found("deployments.apps", name))
    }

    /// A deployment with two revisions: 1 runs `stable`, 2 (current) runs `bad`.
    pub fn seed_two_revisions(
        &self,
        ns: &str,
        name: &str,
        container: &str,
        stable: &str,
        bad: &str,
        replicas: i32,
    ) -> Result<Deployment, ApiError> {
        self.seed_deployment(
            ns,
            name,
            &[(container, stable)],
            replicas,
            Some(&format!("release {stable}")),
        )?;
        self.set_images(
            ns,
            name,
            &[(container, bad)],
            Some(&format!("release {bad}")),
        )
    }

    /// An Argo CD Application `ns/name` syncing `path` of a repository into `dest_ns`, with
    /// `spec.syncPolicy.automated` = `automated` (None: manual sync).
    pub fn seed_argocd_application(
        &self,
        ns: &str,
        name: &str,
        dest_ns: &str,
        automated: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut sync_policy = json!({"syncOptions": ["CreateNamespace=false"]});
        if let Some(a) = automated {
            sync_policy["automated"] = a;
        }
        self.create_custom_object(&json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "project": "default",
                "source": {"repoURL": format!("https://git.example.com/{name}.git"), "path": "deploy", "targetRevision": "main"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
                "syncPolicy": sync_policy,
            }
        }))
    }

    /// A Flux Kustomization `ns/name` applying `./deploy` into `dest_ns`, suspended or not.
    pub fn seed_flux_kustomization(
        &self,
        ns: &str,
        name: &str,
        dest_ns: &str,
        suspend: bool,
    ) -> Result<Value, ApiError> {
        self.create_custom_object(&json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "interval": "10m", "path": "./deploy", "prune": true, "suspend": suspend,
                "targetNamespace": dest_ns,
                "sourceRef": {"kind": "GitRepository", "name": name},
            }
        }))
    }

    /// The drill's demo: namespace `mint`, `backend-deployment` and `frontend-deployment`
    /// (2 replicas each), revision 1 = stable images, revision 2 (current) = bad images.
    pub fn seed_mint_demo(&self, images: &MintImages) -> Result<(), ApiError> {
        self.seed_two_revisions(
            MINT_NAMESPACE,
            "backend-deployment",
            "backend",
            &images.backend_stable,
            &images.backend_bad,
            2,
        )?;
        self.seed_two_revisions(
            MINT_NAMESPACE,
            "frontend-deployment",
            "frontend",
            &images.frontend_stable,
            &images.frontend_bad,
            2,
        )?;
        Ok(())
    }
}
