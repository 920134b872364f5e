//! For the same starting state, the real `kubectl rollout undo` and deploy-undo's `undo` leave
//! the same deployment (spec, revision, annotations). kubectl is /usr/bin/kubectl (the Makefile
//! installs Debian's kubernetes-client when it is missing).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{NS, env_with_tokens};
use rollback_kube_api::DEFAULT_TOKEN;
use serde_json::json;

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

fn kubectl() -> PathBuf {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    assert!(
        path.is_file(),
        "kubectl not found at {} (install kubernetes-client or set KUBECTL)",
        path.display()
    );
    path
}

/// Three revisions: v1, v2 (new image), v3 (new image and a pod annotation), with change causes
/// and an extra deployment annotation, in namespace `ns`.
fn seed(kube: &rollback_kube_api::LocalKube, ns: &str) {
    kube.seed_deployment(
        ns,
        "backend",
        &[("app", "img:v1"), ("sidecar", "proxy:1")],
        2,
        Some("release v1"),
    )
    .unwrap();
    kube.set_images(ns, "backend", &[("app", "img:v2")], Some("release v2"))
        .unwrap();
    kube.merge_patch_deployment(
        ns,
        "backend",
        &json!({
            "metadata": {"annotations": {"team": "payments", "kubernetes.io/change-cause": "release v3"}},
            "spec": {"template": {"metadata": {"annotations": {"build": "333"}},
                                  "spec": {"containers": [{"name": "app", "image": "img:v3"}, {"name": "sidecar", "image": "proxy:1"}]}}}
        }),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_undo_and_deploy_undo_leave_the_same_deployment() {
    for (case, to_revision) in [("default", None), ("to-1", Some(1))] {
        // A fresh API per case; kubectl works in namespace `theirs`, deploy-undo in `mint`.
        let e = env_with_tokens(
            &format!("kubectl-parity-{case}"),
            vec![DEFAULT_TOKEN.to_owned()],
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        e.kube.write_kubeconfig(&kubeconfig, DEFAULT_TOKEN).unwrap();
        let (theirs, ours) = ("theirs", NS);
        seed(&e.kube, theirs);
        seed(&e.kube, ours);

        let mut cmd = tokio::process::Command::new(kubectl());
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(["-n", theirs, "rollout", "undo", "deployment/backend"]);
        if let Some(r) = to_revision {
            cmd.arg(format!("--to-revision={r}"));
        }
        cmd.env("HOME", dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(KUBECTL_TIMEOUT, cmd.output())
            .await
            .expect("kubectl finished in time")
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl rollout undo: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut action = json!({"action": "resolve"});
        if let Some(r) = to_revision {
            action["to_revision"] = json!(r);
        }
        let resolved = e.call(&["backend"], action, false).await.unwrap();
        let undone = e
            .call(
                &["backend"],
                json!({"action": "undo", "deployments": resolved["deployments"]}),
                false,
            )
            .await
            .unwrap();
        assert_eq!(
            undone["deployments"][0]["outcome"], "rolled-back",
            "{undone}"
        );

        let a = e.kube.deployment(theirs, "backend").unwrap();
        let b = e.kube.deployment(ours, "backend").unwrap();
        assert_eq!(
            semantic(serde_json::to_value(&a.spec).unwrap()),
            semantic(serde_json::to_value(&b.spec).unwrap()),
            "spec after kubectl (left) and deploy-undo (right), to_revision {to_revision:?}"
        );
        assert_eq!(
            a.metadata.annotations, b.metadata.annotations,
            "annotations, to_revision {to_revision:?}"
        );
        let expected = if to_revision.is_some() {
            "img:v1"
        } else {
            "img:v2"
        };
        assert_eq!(
            a.spec.template.spec.as_ref().unwrap().containers[0]
                .image
                .as_deref(),
            Some(expected)
        );
    }
}

/// apimachinery's semantic equality: empty and absent objects are the same. kubectl (Go)
/// always serializes a container's `resources` struct as `{}`; a real API server stores it that
/// way for everyone, the local one stores what each client sent.
fn semantic(mut value: serde_json::Value) -> serde_json::Value {
    fn prune(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.values_mut().for_each(prune);
                map.retain(|_, v| !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty())));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(prune),
            _ => {}
        }
    }
    prune(&mut value);
    value
}
