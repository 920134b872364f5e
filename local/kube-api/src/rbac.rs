//! RBAC, as the API server's authorizer applies it: request attributes from the method and
//! path (apiserver's `RequestInfoFactory`), rules from Role/ClusterRole objects reached through
//! RoleBindings/ClusterRoleBindings whose subjects match the user or one of its groups, and the
//! bootstrap policy every cluster has (`system:masters` may do anything; every authenticated
//! user may read discovery and create self-subject access reviews).
//!
//! The rules come from a manifest like `infra/k8s/rollback-rbac.yaml` (one or more YAML
//! documents of kind Role, ClusterRole, RoleBinding, ClusterRoleBinding), parsed with
//! [`Rbac::from_manifest`]. A denied request gets the real 403 `Status` ([`forbidden`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Members of this group bypass authorization (the API server's superuser group).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";

const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// Who is asking: what authentication made of the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The harness's identity: in `system:masters`, so never subject to RBAC.
    pub fn admin() -> Self {
        UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec![SYSTEM_MASTERS.into(), SYSTEM_AUTHENTICATED.into()],
        }
    }
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub verb: String,
    /// False for non-resource paths (`/api`, `/version`, …).
    pub resource_request: bool,
    pub path: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    /// apiserver's `RequestInfoFactory.NewRequestInfo`, for the paths this server knows.
    pub fn from_request(method: &str, path: &str, query: &BTreeMap<String, String>) -> Self {
        let mut attrs = Attributes {
            path: path.to_string(),
            verb: method.to_ascii_lowercase(),
            ..Default::default()
        };
        let mut parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return attrs;
        }
        let prefix = parts.remove(0);
        if prefix == "apis" {
            if parts.len() < 3 {
                return attrs;
            }
            attrs.api_group = parts.remove(0).to_string();
        }
        attrs.resource_request = true;
        attrs.api_version = parts.remove(0).to_string();
        let mut watch_prefix = false;
        if parts.first() == Some(&"watch") {
            parts.remove(0);
            watch_prefix = true;
        }
        attrs.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
        if watch_prefix {
            attrs.verb = "watch".into();
        }
        if parts.first() == Some(&"namespaces") && parts.len() > 1 {
            attrs.namespace = parts[1].to_string();
            if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
                parts.drain(..2);
            }
        }
        if parts.len() >= 3 {
            attrs.subresource = parts[2].to_string();
        }
        if parts.len() >= 2 {
            attrs.name = parts[1].to_string();
        }
        if let Some(r) = parts.first() {
            attrs.resource = r.to_string();
        }
        if attrs.name.is_empty() && attrs.verb == "get" {
            attrs.verb = if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                "watch"
            } else {
                "list"
            }
            .into();
            // A list or watch of one object by field selector is authorized for that name.
            if let Some(sel) = query.get("fieldSelector")
                && let Some(name) = sel
                    .strip_prefix("metadata.name=")
                    .map(|n| n.trim_start_matches('='))
                && !name.contains(',')
            {
                attrs.name = name.to_string();
            }
        }
        if attrs.name.is_empty() && attrs.verb == "delete" {
            attrs.verb = "deletecollection".into();
        }
        attrs
    }

    /// `deployments/scale`, or `deployments`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    fn allows(&self, a: &Attributes) -> bool {
        let verb = self.verbs.iter().any(|v| v == "*" || *v == a.verb);
        if !verb {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        let group = self
            .api_groups
            .iter()
            .any(|g| g == "*" || *g == a.api_group);
        let combined = a.combined_resource();
        let resource = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(a.subresource.as_str()))
        });
        let name = self.resource_names.is_empty()
            || (!a.name.is_empty() && self.resource_names.contains(&a.name));
        group && resource && name
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Subject {
    fn matches(&self, user: &UserInfo) -> bool {
        match self.kind.as_str() {
            "User" => self.name == user.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                user.name
                    == format!(
                        "system:serviceaccount:{}:{}",
                        self.namespace.as_deref().unwrap_or(""),
                        self.name
                    )
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => format!(
                "ServiceAccount \"{}/{}\"",
                self.name,
                self.namespace.as_deref().unwrap_or("")
            ),
            kind => format!("{kind} \"{}\"", self.name),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default)]
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// None for a ClusterRole.
    pub namespace: Option<String>,
    pub name: String,
    pub rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// None for a ClusterRoleBinding.
    pub namespace: Option<String>,
    pub name: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    role_ref: Option<RoleRef>,
    #[serde(default)]
    subjects: Vec<Subject>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
    namespace: Option<String>,
}

/// The RBAC objects of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rbac {
    pub roles: Vec<Role>,
    pub bindings: Vec<Binding>,
}

/// Why a request was allowed (for SelfSubjectAccessReview's `status.reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny,
}

impl Rbac {
    /// Parse a manifest of Role, ClusterRole, RoleBinding and ClusterRoleBinding documents.
    /// Namespaced objects without `metadata.namespace` land in `default`, as with
    /// `kubectl apply` in the default namespace.
    pub fn from_manifest(yaml: &str) -> Result<Rbac, String> {
        let mut rbac = Rbac::default();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
            let doc: Option<Document> = Option::deserialize(doc)
                .map_err(|e| format!("RBAC manifest document {}: {e}", i + 1))?;
            let Some(doc) = doc else { continue };
            let kind = doc.kind.unwrap_or_default();
            let api_version = doc.api_version.unwrap_or_default();
            if api_version != RBAC_API_VERSION {
                return Err(format!(
                    "RBAC manifest document {} ({kind} {:?}): apiVersion must be {RBAC_API_VERSION}, not {api_version:?}",
                    i + 1,
                    doc.metadata.name
                ));
            }
            let namespace = doc.metadata.namespace.unwrap_or_else(|| "default".into());
            match kind.as_str() {
                "Role" | "ClusterRole" => rbac.roles.push(Role {
                    namespace: (kind == "Role").then_some(namespace),
                    name: doc.metadata.name,
                    rules: doc.rules,
                }),
                "RoleBinding" | "ClusterRoleBinding" => {
                    let role_ref = doc.role_ref.ok_or_else(|| {
                        format!(
                            "RBAC manifest: {kind} {:?} has no roleRef",
                            doc.metadata.name
                        )
                    })?;
                    rbac.bindings.push(Binding {
                        namespace: (kind == "RoleBinding").then_some(namespace),
                        name: doc.metadata.name,
                        role_ref,
                        subjects: doc.subjects,
                    })
                }
                other => {
                    return Err(format!(
                        "RBAC manifest document {}: kind {other:?} is not an RBAC object",
                        i + 1
                    ));
                }
            }
        }
        Ok(rbac)
    }

    /// The RBAC authorizer's decision, after the bootstrap policy.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return Decision::Allow(format!("{SYSTEM_MASTERS} may do anything"));
        }
        if let Some(reason) = bootstrap(user, a) {
            return Decision::Allow(reason);
        }
        for b in &self.bindings {
            if let Some(ns) = &b.namespace
                && *ns != a.namespace
            {
                continue;
            }
            let Some(subject) = b.subjects.iter().find(|s| s.matches(user)) else {
                continue;
            };
            let role_ns = match b.role_ref.kind.as_str() {
                "Role" => b.namespace.clone(),
                _ => None,
            };
            let Some(role) = self
                .roles
                .iter()
                .find(|r| r.name == b.role_ref.name && r.namespace == role_ns)
            else {
                continue;
            };
            if role.rules.iter().any(|r| r.allows(a)) {
                let binding = match &b.namespace {
                    Some(ns) => format!("RoleBinding \"{}/{ns}\"", b.name),
                    None => format!("ClusterRoleBinding \"{}\"", b.name),
                };
                return Decision::Allow(format!(
                    "RBAC: allowed by {binding} of {} \"{}\" to {}",
                    b.role_ref.kind,
                    role.name,
                    subject.describe()
                ));
            }
        }
        Decision::Deny
    }
}

/// The bootstrap ClusterRoles bound to `system:authenticated` that matter here:
/// system:discovery, system:public-info-viewer and system:basic-user.
fn bootstrap(user: &UserInfo, a: &Attributes) -> Option<String> {
    if !user.groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
        return None;
    }
    if !a.resource_request {
        let discovery = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: [
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        };
        return discovery
            .allows(a)
            .then(|| "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\"".into());
    }
    let basic_user = PolicyRule {
        verbs: vec!["create".into()],
        api_groups: vec!["authorization.k8s.io".into()],
        resources: vec![
            "selfsubjectaccessreviews".into(),
            "selfsubjectrulesreviews".into(),
        ],
        ..Default::default()
    };
    basic_user.allows(a).then(|| "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\"".into())
}

/// The 403 the API server answers a denied request with (apiserver's
/// `responsewriters.Forbidden` and `forbiddenMessage`).
pub fn forbidden(user: &UserInfo, a: &Attributes) -> ApiError {
    let why = if !a.resource_request {
        format!(
            "User \"{}\" cannot {} path \"{}\"",
            user.name, a.verb, a.path
        )
    } else if !a.namespace.is_empty() {
        format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
            user.name,
            a.verb,
            a.combined_resource(),
            a.api_group,
            a.namespace
        )
    } else {
        format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" at the cluster scope",
            user.name,
            a.verb,
            a.combined_resource(),
            a.api_group
        )
    };
    let qualified = match (a.resource.is_empty(), a.api_group.is_empty()) {
        (true, _) => String::new(),
        (false, true) => a.resource.clone(),
        (false, false) => format!("{}.{}", a.resource, a.api_group),
    };
    let message = match (qualified.is_empty(), a.name.is_empty()) {
        (true, _) => format!("forbidden: {why}"),
        (false, true) => format!("{qualified} is forbidden: {why}"),
        (false, false) => format!("{qualified} \"{}\" is forbidden: {why}", a.name),
    };
    let mut details = serde_json::Map::new();
    for (key, value) in [
        ("name", &a.name),
        ("group", &a.api_group),
        ("kind", &a.resource),
    ] {
        if !value.is_empty() {
            details.insert(key.into(), json!(value));
        }
    }
    ApiError::new(403, "Forbidden", message).with_details(Value::Object(details))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../../../infra/k8s/rollback-rbac.yaml");

    fn attrs(method: &str, path_and_query: &str) -> Attributes {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        Attributes::from_request(method, path, &query)
    }

    fn function() -> UserInfo {
        UserInfo {
            name: "deploy-undo".into(),
            groups: vec!["rollback-deploy-undo".into(), SYSTEM_AUTHENTICATED.into()],
        }
    }

    #[test]
    fn verbs_come_from_method_and_path() {
        let d = "/apis/apps/v1/namespaces/mint/deployments";
        let cases = [
            ("GET", format!("{d}/web"), "get", "deployments", ""),
            ("GET", d.to_string(), "list", "deployments", ""),
            ("GET", format!("{d}?watch=true"), "watch", "deployments", ""),
            ("POST", d.to_string(), "create", "deployments", ""),
            ("PUT", format!("{d}/web"), "update", "deployments", ""),
            ("PATCH", format!("{d}/web"), "patch", "deployments", ""),
            ("DELETE", format!("{d}/web"), "delete", "deployments", ""),
            (
                "DELETE",
                d.to_string(),
                "deletecollection",
                "deployments",
                "",
            ),
            (
                "PATCH",
                format!("{d}/web/scale"),
                "patch",
                "deployments",
                "scale",
            ),
            (
                "PUT",
                format!("{d}/web/status"),
                "update",
                "deployments",
                "status",
            ),
        ];
        for (method, path, verb, resource, sub) in cases {
            let a = attrs(method, &path);
            assert!(a.resource_request, "{path}");
            assert_eq!(
                (a.verb.as_str(), a.resource.as_str(), a.subresource.as_str()),
                (verb, resource, sub),
                "{method} {path}"
            );
            assert_eq!(
                (a.api_group.as_str(), a.namespace.as_str()),
                ("apps", "mint")
            );
        }
        let all = attrs("GET", "/apis/apps/v1/deployments");
        assert_eq!((all.verb.as_str(), all.namespace.as_str()), ("list", ""));
        let ns = attrs("GET", "/api/v1/namespaces/mint");
        assert_eq!(
            (
                ns.verb.as_str(),
                ns.resource.as_str(),
                ns.name.as_str(),
                ns.api_group.as_str()
            ),
            ("get", "namespaces", "mint", "")
        );
        for discovery in ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version"] {
            assert!(!attrs("GET", discovery).resource_request, "{discovery}");
        }
    }

    #[test]
    fn the_shipped_role_allows_exactly_what_deploy_undo_does() {
        let rbac = Rbac::from_manifest(MANIFEST).unwrap();
        let d = "/apis/apps/v1/namespaces/mint/deployments";
        let allowed = [
            ("GET", format!("{d}/web")),
            ("PATCH", format!("{d}/web")),
            ("PUT", format!("{d}/web?dryRun=All")),
            (
                "GET",
                "/apis/apps/v1/namespaces/mint/replicasets?labelSelector=app%3Dweb".into(),
            ),
            ("GET", "/apis/apps/v1".into()),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".into(),
            ),
        ];
        for (method, path) in allowed {
            assert!(
                matches!(
                    rbac.authorize(&function(), &attrs(method, &path)),
                    Decision::Allow(_)
                ),
                "{method} {path}"
            );
        }
        let denied = [
            ("DELETE", format!("{d}/web")),
            ("POST", d.to_string()),
            ("GET", d.to_string()),
            ("GET", format!("{d}?watch=true")),
            ("PATCH", format!("{d}/web/scale")),
            ("PUT", format!("{d}/web/status")),
            (
                "GET",
                "/apis/apps/v1/namespaces/other/deployments/web".into(),
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/mint/replicasets/rs-1".into(),
            ),
            ("GET", "/api/v1/namespaces/mint/pods".into()),
            ("GET", "/metrics".into()),
        ];
        for (method, path) in denied {
            assert_eq!(
                rbac.authorize(&function(), &attrs(method, &path)),
                Decision::Deny,
                "{method} {path}"
            );
        }
        let stranger = UserInfo {
            name: "someone".into(),
            groups: vec![SYSTEM_AUTHENTICATED.into()],
        };
        assert_eq!(
            rbac.authorize(&stranger, &attrs("GET", &format!("{d}/web"))),
            Decision::Deny
        );
        assert!(matches!(
            rbac.authorize(&UserInfo::admin(), &attrs("DELETE", d)),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn resource_names_wildcards_and_cluster_roles() {
        let rbac = Rbac::from_manifest(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: scaler}
rules:
  - {apiGroups: [apps], resources: ["*/scale"], verbs: [patch], resourceNames: [web]}
  - {apiGroups: ["*"], resources: [replicasets], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: scaler}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scaler}
subjects: [{kind: User, name: deploy-undo}]
"#,
        )
        .unwrap();
        let d = "/apis/apps/v1/namespaces/any/deployments";
        let allow = |m, p: &str| {
            matches!(
                rbac.authorize(&function(), &attrs(m, p)),
                Decision::Allow(_)
            )
        };
        assert!(allow("PATCH", &format!("{d}/web/scale")));
        assert!(!allow("PATCH", &format!("{d}/api/scale")));
        assert!(!allow("PATCH", &format!("{d}/web")));
        assert!(allow("DELETE", "/apis/apps/v1/namespaces/x/replicasets"));
    }

    #[test]
    fn the_forbidden_status_is_the_api_servers() {
        let a = attrs("PUT", "/apis/apps/v1/namespaces/mint/deployments/x");
        let user = UserInfo {
            name: "U".into(),
            groups: vec![],
        };
        assert_eq!(
            forbidden(&user, &a).to_status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"deployments.apps \"x\" is forbidden: User \"U\" cannot update resource \"deployments\" in API group \"apps\" in the namespace \"mint\"",
                "reason":"Forbidden","details":{"name":"x","group":"apps","kind":"deployments"},"code":403})
        );
        let list = attrs("GET", "/apis/apps/v1/namespaces/mint/replicasets");
        assert_eq!(
            forbidden(&user, &list).message,
            "replicasets.apps is forbidden: User \"U\" cannot list resource \"replicasets\" in API group \"apps\" in the namespace \"mint\""
        );
        let path = attrs("GET", "/metrics");
        assert_eq!(
            forbidden(&user, &path).message,
            "forbidden: User \"U\" cannot get path \"/metrics\""
        );
    }

    #[test]
    fn manifests_that_are_not_rbac_are_refused() {
        assert!(Rbac::from_manifest("apiVersion: v1\nkind: ConfigMap\n").is_err());
        assert!(
            Rbac::from_manifest("apiVersion: rbac.authorization.k8s.io/v1\nkind: Secret\n")
                .is_err()
        );
        assert_eq!(Rbac::from_manifest("# nothing\n").unwrap(), Rbac::default());
    }
}
