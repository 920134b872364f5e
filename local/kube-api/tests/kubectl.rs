//! The real kubectl against the local API: get, scale, rollout history/undo/status, and
//! `auth can-i` / RBAC denials as the function's identity.
//! Skipped (loudly) when kubectl is not installed; the Makefile installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rollback_kube_api::{DEFAULT_TOKEN, LocalKube, MintImages, Options, REVISION};

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);

fn kubectl_path() -> Option<PathBuf> {
    let from_env = std::env::var_os("KUBECTL").map(PathBuf::from);
    let candidates = from_env.into_iter().chain(
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("kubectl"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    candidates.into_iter().find(|p| p.is_file())
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(kube: &LocalKube) -> Option<Kubectl> {
        Self::with_token(kube, DEFAULT_TOKEN)
    }

    /// kubectl authenticating with `token` (e.g. the function's EKS token).
    fn with_token(kube: &LocalKube, token: &str) -> Option<Kubectl> {
        let Some(bin) = kubectl_path() else {
            eprintln!(
                "\n!!!!! SKIPPED: kubectl not found on PATH (install kubernetes-client); kubectl tests did not run !!!!!\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig, token).unwrap();
        let cache = dir.path().join("cache");
        Some(Kubectl {
            bin,
            kubeconfig,
            cache,
            _dir: dir,
        })
    }

    /// Run kubectl in namespace mint; returns (success, stdout, stderr). Bounded by a timeout.
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(["-n", "mint"])
            .args(args);
        // Keep kubectl away from the user's config and caches.
        cmd.env("HOME", self.cache.parent().unwrap_or(Path::new("/tmp")))
            .env_remove("KUBECONFIG");
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        let out = tokio::time::timeout(KUBECTL_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in {KUBECTL_TIMEOUT:?}"))
            .expect("kubectl runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        (out.status.success(), stdout, stderr)
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }
}

/// An empty local API and kubectl for it (`None`: kubectl is missing).
async fn empty() -> Option<(LocalKube, Kubectl)> {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let kubectl = Kubectl::new(&kube)?;
    Some((kube, kubectl))
}

/// [`empty`] with the mint demo deployments.
async fn setup() -> Option<(LocalKube, Kubectl)> {
    let (kube, kubectl) = empty().await?;
    kube.seed_mint_demo(&MintImages::example()).unwrap();
    Some((kube, kubectl))
}

/// `kubectl -n <ns> patch <resource> mint-replica --type merge -p <patch>`'s arguments.
fn merge_patch<'a>(ns: &'a str, resource: &'a str, patch: &'a str) -> [&'a str; 9] {
    [
        "-n",
        ns,
        "patch",
        resource,
        "mint-replica",
        "--type",
        "merge",
        "-p",
        patch,
    ]
}

fn image_of(kube: &LocalKube, name: &str) -> String {
    let d = kube.deployment("mint", name).unwrap();
    d.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn revision_of(kube: &LocalKube, name: &str) -> String {
    kube.deployment("mint", name)
        .unwrap()
        .metadata
        .annotations
        .unwrap()[REVISION]
        .clone()
}

#[tokio::test]
async fn get_and_scale() {
    let Some((kube, kubectl)) = setup().await else {
        return;
    };
    let out = kubectl.ok(&["get", "deploy"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("READY") && lines[0].contains("UP-TO-DATE"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("backend-deployment") && l.contains("2/2")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("frontend-deployment")),
        "{out}"
    );

    kubectl
        .ok(&["scale", "deploy/backend-deployment", "--replicas=0"])
        .await;
    let d = kube.deployment("mint", "backend-deployment").unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    let out = kubectl
        .ok(&[
            "get",
            "deploy",
            "backend-deployment",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ])
        .await;
    assert!(
        out.is_empty() || out == "0",
        "no replicas available: {out:?}"
    );
    kubectl
        .ok(&["scale", "deploy/backend-deployment", "--replicas=2"])
        .await;
    assert_eq!(
        kube.deployment("mint", "backend-deployment")
            .unwrap()
            .status
            .unwrap()
            .available_replicas,
        Some(2)
    );
    assert_eq!(
        revision_of(&kube, "backend-deployment"),
        "2",
        "scaling is not a rollout"
    );

    let rs = kubectl
        .ok(&["get", "rs", "-l", "app=backend-deployment", "-o", "name"])
        .await;
    assert_eq!(rs.lines().count(), 2, "{rs}");
}

#[tokio::test]
async fn rollout_history_undo_and_status() {
    let Some((kube, kubectl)) = setup().await else {
        return;
    };
    let images = MintImages::example();

    let history = kubectl
        .ok(&["rollout", "history", "deploy/backend-deployment"])
        .await;
    assert!(
        history.contains(&format!("1         release {}", images.backend_stable)),
        "{history}"
    );
    assert!(
        history.contains(&format!("2         release {}", images.backend_bad)),
        "{history}"
    );

    // Server-side dry run changes nothing.
    let out = kubectl
        .ok(&[
            "rollout",
            "undo",
            "deploy/backend-deployment",
            "--dry-run=server",
        ])
        .await;
    assert!(out.contains("rolled back (server dry run)"), "{out}");
    assert_eq!(image_of(&kube, "backend-deployment"), images.backend_bad);

    let out = kubectl
        .ok(&["rollout", "undo", "deploy/backend-deployment"])
        .await;
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(image_of(&kube, "backend-deployment"), images.backend_stable);
    assert_eq!(revision_of(&kube, "backend-deployment"), "3");
    // kubectl sent the JSON patch of the template and annotations (rollback.go).
    let patch = kube
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.uri.contains("backend-deployment"))
        .expect("a PATCH");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json-patch+json")
    );

    let status = kubectl
        .ok(&[
            "rollout",
            "status",
            "deploy/backend-deployment",
            "--timeout=10s",
        ])
        .await;
    assert!(status.contains("successfully rolled out"), "{status}");

    // --to-revision: frontend back to revision 1.
    kubectl
        .ok(&[
            "rollout",
            "undo",
            "deploy/frontend-deployment",
            "--to-revision=1",
        ])
        .await;
    assert_eq!(
        image_of(&kube, "frontend-deployment"),
        images.frontend_stable
    );
    assert_eq!(revision_of(&kube, "frontend-deployment"), "3");
    let (ok, _, stderr) = kubectl
        .run(&[
            "rollout",
            "undo",
            "deploy/frontend-deployment",
            "--to-revision=9",
        ])
        .await;
    assert!(
        !ok && stderr.contains("unable to find specified revision"),
        "{stderr}"
    );
}

#[tokio::test]
async fn rollout_status_follows_a_stepped_rollout_and_reports_a_stuck_one() {
    let Some((kube, kubectl)) = setup().await else {
        return;
    };
    kube.set_auto_progress(false);
    kubectl
        .ok(&[
            "set",
            "image",
            "deploy/backend-deployment",
            "backend=mint-replica-backend:v3",
        ])
        .await;

    // Drive the rollout from a background task while kubectl watches.
    let stepper = {
        let kube_steps = async {
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if !kube.step() {
                    break;
                }
            }
        };
        let status = kubectl.run(&[
            "rollout",
            "status",
            "deploy/backend-deployment",
            "--timeout=20s",
        ]);
        tokio::join!(kube_steps, status).1
    };
    let (ok, stdout, stderr) = stepper;
    assert!(ok, "rollout status failed: {stdout}\n{stderr}");
    assert!(
        stdout.contains("Waiting for deployment"),
        "saw progress messages: {stdout}"
    );
    assert!(stdout.contains("successfully rolled out"), "{stdout}");

    // A stuck rollout: the deadline passes, kubectl reports it and fails.
    kubectl
        .ok(&[
            "set",
            "image",
            "deploy/frontend-deployment",
            "frontend=mint-replica-frontend:v3",
        ])
        .await;
    kube.expire_progress_deadline("mint", "frontend-deployment")
        .unwrap();
    let (ok, _, stderr) = kubectl
        .run(&[
            "rollout",
            "status",
            "deploy/frontend-deployment",
            "--timeout=10s",
        ])
        .await;
    assert!(!ok, "stuck rollout must fail");
    assert!(
        stderr.contains("exceeded its progress deadline"),
        "{stderr}"
    );
}

#[tokio::test]
async fn paused_deployment_refuses_undo() {
    let Some((kube, kubectl)) = setup().await else {
        return;
    };
    kubectl
        .ok(&["rollout", "pause", "deploy/backend-deployment"])
        .await;
    let (ok, _, stderr) = kubectl
        .run(&["rollout", "undo", "deploy/backend-deployment"])
        .await;
    assert!(!ok && stderr.contains("paused"), "{stderr}");
    kubectl
        .ok(&["rollout", "resume", "deploy/backend-deployment"])
        .await;
    kubectl
        .ok(&["rollout", "undo", "deploy/backend-deployment"])
        .await;
    assert_eq!(
        image_of(&kube, "backend-deployment"),
        MintImages::example().backend_stable
    );
}

#[tokio::test]
async fn auth_can_i_answers_for_the_functions_identity_from_the_shipped_role() {
    let kube = LocalKube::start(common::eks_options()).await.unwrap();
    kube.seed_mint_demo(&MintImages::example()).unwrap();
    let Some(function) = Kubectl::with_token(&kube, &common::function_token()) else {
        return;
    };
    // kubectl auth can-i: exit 0 and "yes", or exit 1 and "no".
    for (args, allowed) in [
        (&["auth", "can-i", "update", "deployments"][..], true),
        (&["auth", "can-i", "get", "deployments.apps"][..], true),
        (
            &["auth", "can-i", "patch", "deployment/backend-deployment"][..],
            true,
        ),
        (&["auth", "can-i", "list", "replicasets"][..], true),
        (&["auth", "can-i", "delete", "deployments"][..], false),
        (&["auth", "can-i", "list", "deployments"][..], false),
        (
            &[
                "auth",
                "can-i",
                "patch",
                "deployments",
                "--subresource=scale",
            ][..],
            false,
        ),
        (
            &["auth", "can-i", "update", "deployments", "-n", "default"][..],
            false,
        ),
        (&["auth", "can-i", "get", "/metrics"][..], false),
        (&["auth", "can-i", "get", "/version"][..], true),
    ] {
        let (ok, stdout, stderr) = function.run(args).await;
        assert_eq!(ok, allowed, "kubectl {args:?}: {stdout} {stderr}");
        assert_eq!(
            stdout.trim(),
            if allowed { "yes" } else { "no" },
            "kubectl {args:?}: {stderr}"
        );
    }

    // A denied request shows the API server's own message.
    let (ok, _, stderr) = function.run(&["get", "deployments"]).await;
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "deployments.apps is forbidden: User \"{}\" cannot list resource \"deployments\" \
             in API group \"apps\" in the namespace \"mint\"",
            common::FUNCTION_USER
        )),
        "{stderr}"
    );
    // What the Role grants works through kubectl too.
    function
        .ok(&["get", "deployment", "backend-deployment"])
        .await;

    // The admin kubeconfig is in system:masters.
    let admin = Kubectl::new(&kube).unwrap();
    assert_eq!(
        admin
            .ok(&["auth", "can-i", "delete", "deployments"])
            .await
            .trim(),
        "yes"
    );
}

/// `kubectl rollout restart` against the pull-policy model: after the tag moves, restarted
/// pods with `Always` run the new digest, with `IfNotPresent` the node's cached one; kubectl
/// reads both from the pods' `status.containerStatuses[].imageID`.
#[tokio::test]
async fn rollout_restart_pulls_per_the_pull_policy() {
    let Some((kube, kubectl)) = empty().await else {
        return;
    };
    kube.set_image_digest("reg.local/app:prod", "sha256:bad");
    kube.seed_deployment("mint", "always", &[("app", "reg.local/app:prod")], 2, None)
        .unwrap();
    kube.merge_patch_deployment(
        "mint",
        "always",
        &serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "reg.local/app:prod", "imagePullPolicy": "Always"}]}}}}),
    )
    .unwrap();
    kube.seed_deployment("mint", "cached", &[("app", "reg.local/app:prod")], 2, None)
        .unwrap();
    let image_ids = |name: &'static str| {
        let kubectl = &kubectl;
        async move {
            kubectl
                .ok(&[
                    "get",
                    "pods",
                    "-l",
                    &format!("app={name}"),
                    "-o",
                    "jsonpath={.items[*].status.containerStatuses[*].imageID}",
                ])
                .await
        }
    };
    assert_eq!(
        image_ids("always").await,
        "reg.local/app@sha256:bad reg.local/app@sha256:bad"
    );
    assert_eq!(
        image_ids("cached").await,
        "reg.local/app@sha256:bad reg.local/app@sha256:bad"
    );
    // The tag moves back to the stable digest; nothing runs it until pods are recreated.
    kube.set_image_digest("reg.local/app:prod", "sha256:good");
    assert!(image_ids("always").await.contains("sha256:bad"));
    kubectl
        .ok(&["rollout", "restart", "deployment/cached"])
        .await;
    assert_eq!(
        image_ids("cached").await,
        "reg.local/app@sha256:bad reg.local/app@sha256:bad",
        "IfNotPresent (the default for a tag) keeps the node's cached image"
    );
    kubectl
        .ok(&["rollout", "restart", "deployment/always"])
        .await;
    assert_eq!(
        image_ids("always").await,
        "reg.local/app@sha256:good reg.local/app@sha256:good",
        "Always pulls the tag again"
    );
    let template = kube.deployment("mint", "cached").unwrap().spec.template;
    assert!(
        template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
            .contains_key("kubectl.kubernetes.io/restartedAt"),
        "kubectl restarts through the template annotation"
    );
    assert_eq!(
        kube.cached_digest("reg.local/app:prod").as_deref(),
        Some("sha256:good"),
        "the Always pull refreshed the node's cache"
    );
}

/// Argo CD Applications and Flux Kustomizations are served as their CRDs are: kubectl finds
/// them by name and short name, lists them, and merge-patches them.
#[tokio::test]
async fn gitops_custom_resources_work_with_kubectl() {
    let Some((kube, kubectl)) = empty().await else {
        return;
    };
    kube.seed_argocd_application(
        "argocd",
        "mint-replica",
        "mint",
        Some(serde_json::json!({"prune": true, "selfHeal": true})),
    )
    .unwrap();
    kube.seed_flux_kustomization("flux-system", "mint-replica", "mint", false)
        .unwrap();
    let out = kubectl
        .ok(&["get", "applications.argoproj.io", "-n", "argocd"])
        .await;
    assert!(
        out.contains("NAME") && out.contains("mint-replica"),
        "{out}"
    );
    kubectl
        .ok(&merge_patch(
            "argocd",
            "app",
            r#"{"spec":{"syncPolicy":{"automated":null}}}"#,
        ))
        .await;
    let app = kube
        .custom_object(
            "argoproj.io/v1alpha1",
            "Application",
            "argocd",
            "mint-replica",
        )
        .unwrap();
    assert!(app.pointer("/spec/syncPolicy/automated").is_none(), "{app}");
    assert!(
        app.pointer("/spec/syncPolicy/syncOptions").is_some(),
        "the rest stays"
    );
    kubectl
        .ok(&merge_patch(
            "flux-system",
            "ks",
            r#"{"spec":{"suspend":true}}"#,
        ))
        .await;
    let suspend = kubectl
        .ok(&[
            "-n",
            "flux-system",
            "get",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "mint-replica",
            "-o",
            "jsonpath={.spec.suspend}",
        ])
        .await;
    assert_eq!(suspend, "true");
    // The CRD's schema: suspend is a boolean.
    let (ok, _, stderr) = kubectl
        .run(&merge_patch(
            "flux-system",
            "ks",
            r#"{"spec":{"suspend":"yes"}}"#,
        ))
        .await;
    assert!(!ok && stderr.contains("spec.suspend"), "{stderr}");
}
