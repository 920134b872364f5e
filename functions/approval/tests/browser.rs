//! A real browser: headless Chromium, driven over the WebDriver protocol through
//! chromedriver, opens the approval link from a notify message, sees the plan, types the
//! approver's email, clicks Approve, and the waiting task receives the decision.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Set ROLLBACK_SKIP_BROWSER_TESTS=1 to skip
//! explicitly; otherwise a missing browser fails the test with the install command.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use rollback_core::approval_link::LinkKey;
use rollback_core::contract::approval::ApprovalDecision;
use rollback_core::request::Scope;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use serde_json::{Value, json};

const SKIP_ENV: &str = "ROLLBACK_SKIP_BROWSER_TESTS";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/chromium"),
    ]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    base: String,
    profile: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A fresh directory removed on drop (Chromium's --user-data-dir).
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let path = std::env::temp_dir().join(format!(
                "rollback-chromium-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromedriver: &PathBuf) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            profile: tempfile_dir::Dir::new(),
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{}/status", driver.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready on port {port}");
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
    http: reqwest::Client,
}

impl<'a> Session<'a> {
    async fn new(driver: &'a Driver, chromium: &PathBuf) -> Session<'a> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver.profile.0.display()),
                ]
            }
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Session { driver, id, http }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.id);
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// The page source once it contains `text` (10 s at most).
    async fn wait_for(&self, text: &str) -> String {
        let mut page = String::new();
        for _ in 0..100 {
            page = self.source().await;
            if page.contains(text) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {text:?}: {page}");
    }

    async fn close(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.driver.base, self.id))
            .send()
            .await;
    }
}

/// Chromium and chromedriver, or `None` when skipped explicitly; a missing browser fails.
fn browser() -> Option<(PathBuf, PathBuf)> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipped: {SKIP_ENV}=1");
        return None;
    }
    let (Some(chromium), Some(chromedriver)) = (
        find_binary(&["chromium", "chromium-browser", "google-chrome"]),
        find_binary(&["chromedriver"]),
    ) else {
        panic!(
            "headless Chromium is needed for this test: install it with \
             `apt-get install -y --no-install-recommends chromium chromium-driver` \
             (make system-deps does), or set {SKIP_ENV}=1 to skip it explicitly"
        );
    };
    Some((chromium, chromedriver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_approves_from_the_email_link() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };

    // The execution waits for its approval; notify mails the links; the page runs locally.
    let w = waiting_execution("appr-browser", None).await;
    let key = LinkKey::generate();
    let gate = gate();
    let (addr, _server) =
        rollback_approval::serve_local(([127, 0, 0, 1], 0).into(), page(&gate, &key))
            .await
            .unwrap();
    let (topic_arn, mail_queue) = MotoServer::shared_executing()
        .topic_with_queue("appr-browser-approvals", Delivery::Raw)
        .await;
    let config =
        rollback_notify::Config::local(&topic_arn, &format!("http://{addr}/approval"), key.clone());
    let notify = notify_gate("appr-browser");
    let notify_clients = rollback_notify::Clients::new(&notify.sdk_config());
    rollback_notify::handle(
        &notify_clients,
        &config,
        json!({
            "action": "approval-request",
            "task_token": w.token,
            "fingerprint": "fp-browser-0001",
            "resolved": {
                "databases": [{
                    "database": "mint-replica-db", "kind": "rds-instance",
                    "snapshot_id": "predeploy-mint-replica-v42-mint-replica-db",
                    "snapshot_created_at": "2024-05-01T11:02:00Z", "snapshot_type": "manual",
                    "data_loss": {"from": "2024-05-01T11:02:00Z", "to": "2024-05-01T12:30:00Z",
                                  "seconds": 5280, "summary": "-"}
                }],
                "deployments": [{"name": "backend-deployment", "namespace": "mint",
                                 "current_revision": 7, "target_revision": 6,
                                 "current_images": [], "replicas": 3}]
            },
            "plan": {"service": "mint-replica",
                     "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}],
                     "cluster": {"name": "mint-eks", "namespace": "mint",
                                 "deployments": ["backend-deployment"]}},
            "request": {"trigger": {"kind": "manual", "requested_by": "<b>ops</b>"},
                        "reason": "5xx after v42 <script>alert(1)</script>",
                        "scope": "app+database"},
            "execution": "appr-browser-exec"
        }),
    )
    .await
    .unwrap();
    let mail = MotoServer::shared_executing()
        .next_message(&mail_queue)
        .await;
    let lines: Vec<&str> = mail.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Approve app + database:"))
        .expect("approve link in the mail");
    let link = lines[at + 1].trim();
    assert!(
        link.starts_with(&format!("http://{addr}/approval?t=")),
        "{link}"
    );

    let driver = Driver::start(&chromedriver).await;
    let session = Session::new(&driver, &chromium).await;
    session.goto(link).await;
    let page = session.source().await;
    assert!(page.contains("mint-replica"), "{page}");
    assert!(page.contains("restore database mint-replica-db"), "{page}");
    assert!(
        page.contains("deployment mint/backend-deployment revision 7 -&gt; 6"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;"),
        "hostile reason not escaped: {page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    // Opening the page decided nothing.
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");

    let email = session.element("input[name=approver]").await;
    session.type_into(&email, "oncall@example.com").await;
    let button = session.element("button#decide").await;
    session.click(&button).await;

    let mut confirmed = String::new();
    for _ in 0..100 {
        confirmed = session.source().await;
        if confirmed.contains("Approved (app + database)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        confirmed.contains("Approved (app + database)"),
        "{confirmed}"
    );
    session.close().await;

    let (status, output, ..) = finished(&w.execution_arn).await;
    assert_eq!(status, "SUCCEEDED");
    let decision: ApprovalDecision = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(decision.scope, Scope::APP_AND_DATABASE);
    assert_eq!(decision.approver, "oncall@example.com");
    assert_eq!(decision.fingerprint, "fp-browser-0001");
}

/// With sign-in: Chromium opens the link, presses "Sign in and approve", signs in at the local
/// identity provider, comes back, and the page's script (PKCE, the token exchange, the POST
/// with the ID token) records the decision as the signed-in person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_at_the_identity_provider_and_approves() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let port = rollback_moto::free_port().unwrap();
    let page_url = format!("http://127.0.0.1:{port}/approval");
    let issuer = rollback_oidc_issuer::OidcIssuer::builder()
        .client("rollback-approval", [page_url.clone()])
        .user("ana", "ana@example.com", ["sre"])
        .start()
        .await
        .unwrap();
    let gate = gate();
    let key = LinkKey::generate();
    let services = page(&gate, &key).with_login(rollback_approval::login::Login::new(
        rollback_core::oidc::OidcConfig::new(issuer.issuer(), "rollback-approval"),
    ));
    rollback_approval::serve_local(([127, 0, 0, 1], port).into(), services)
        .await
        .unwrap();
    let w = waiting_execution("appr-browser-sign-in", None).await;
    let mut p = payload(
        &w.token,
        rollback_core::approval_link::Decision::Approve,
        Scope::APP,
    );
    p.rules.approvers = vec!["group:sre".into()];
    let link = format!("{page_url}?t={}", common::link(&key, &p));

    let driver = Driver::start(&chromedriver).await;
    let session = Session::new(&driver, &chromium).await;
    session.goto(&link).await;
    session.wait_for("Sign in and approve (app only)").await;
    let button = session.element("button#sign-in").await;
    session.click(&button).await;
    // The identity provider's login form.
    session.wait_for("id=\"username\"").await;
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
    let username = session.element("input#username").await;
    session.type_into(&username, "ana").await;
    let login = session.element("button#login").await;
    session.click(&login).await;
    let done = session.wait_for("Approved (app only)").await;
    assert!(done.contains("ana@example.com (signed in)"), "{done}");
    session.close().await;

    let (status, output, ..) = finished(&w.execution_arn).await;
    assert_eq!(status, "SUCCEEDED");
    let decision: ApprovalDecision = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(decision.approver, "ana@example.com");
    assert_eq!(
        decision.identity,
        rollback_core::contract::approval::Identity::Authenticated
    );
}
