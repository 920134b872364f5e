//! A small local OpenID Connect identity provider, for tests and drills of the approval page's
//! sign-in.
//!
//! In AWS the approver signs in at the organisation's identity provider (authorization code
//! with PKCE) and the HttpApi's JWT authorizer checks the token. Locally this issuer plays the
//! identity provider, over real HTTP on 127.0.0.1, so the sign-in can be exercised end to end
//! and its tokens checked by `rollback_core::oidc::validate` exactly as API Gateway would:
//!
//! - `GET /.well-known/openid-configuration`: the discovery document;
//! - `GET /jwks`: the signing keys (the current one and, after a rotation, the previous one);
//! - `GET /authorize`: checks the request and shows a login form (a `username` field and a
//!   `login` button; no password: it is a test double); `POST /authorize` signs the user in
//!   and redirects back with a single-use code;
//! - `POST /token`: exchanges the code, checking the PKCE (S256) verifier, for an RS256 ID token
//!   (`aud` = client id, like OIDC ID tokens) and an RS256 access token (`client_id` and no
//!   `aud`, like Cognito access tokens), so both of API Gateway's audience rules are exercised.
//!
//! The test helpers [`OidcIssuer::mint`], [`OidcIssuer::mint_with_foreign_key`] and
//! [`OidcIssuer::rotate_key`] make the tokens that validation must refuse or keep accepting.
//!
//! Tests and the drill start it in-process; `cargo test -p rollback-oidc-issuer` needs no other
//! service.

mod grants;
mod html;
pub mod keys;
mod routes;
mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use keys::SigningKey;

use crate::keys::KeyRing;

/// How long tokens last unless [`IssuerBuilder::token_ttl`] says otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long an authorization code can be exchanged: short, as RFC 6749 §4.1.2 advises.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(60);

/// Why the issuer could not start.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("could not listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    #[error(
        "redirect URI {uri:?} of client {client_id:?} is not an absolute URL without a fragment (RFC 6749 §3.1.2)"
    )]
    InvalidRedirectUri { client_id: String, uri: String },
    #[error("generating the signing key failed: {0}")]
    KeyGeneration(String),
}

/// A registered client (the approval page): public, so it authenticates with PKCE only.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    /// Compared exactly, as RFC 6749 §3.1.2.3 and OAuth 2.1 require.
    pub redirect_uris: Vec<String>,
}

/// A user who can sign in by name.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub email: String,
    pub groups: Vec<String>,
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) issuer: String,
    pub(crate) clients: Vec<Client>,
    pub(crate) users: Vec<User>,
    pub(crate) token_ttl: Duration,
    pub(crate) code_ttl: Duration,
    pub(crate) keys: Mutex<KeyRing>,
    pub(crate) codes: Mutex<HashMap<String, grants::Grant>>,
}

impl Shared {
    pub(crate) fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Whether `origin` (`scheme://host[:port]`) is the origin of a registered redirect URI.
    pub(crate) fn registered_origin(&self, origin: &str) -> bool {
        self.clients
            .iter()
            .flat_map(|c| &c.redirect_uris)
            .filter_map(|uri| url::Url::parse(uri).ok())
            .any(|uri| uri.origin().ascii_serialization() == origin)
    }

    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    pub(crate) fn current_key(&self) -> Arc<SigningKey> {
        self.keys.lock().expect("key ring").current.clone()
    }
}

/// Configures an issuer; [`IssuerBuilder::start`] runs it.
#[derive(Debug, Clone)]
pub struct IssuerBuilder {
    clients: Vec<Client>,
    users: Vec<User>,
    token_ttl: Duration,
    code_ttl: Duration,
}

impl IssuerBuilder {
    /// Registers a client and the redirect URIs it may use (a second call for the same id
    /// replaces the first).
    pub fn client<I, S>(mut self, client_id: impl Into<String>, redirect_uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let client_id = client_id.into();
        self.clients.retain(|c| c.client_id != client_id);
        self.clients.push(Client {
            client_id,
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Adds a user who can sign in as `username` (a second call for the same name replaces it).
    pub fn user<I, S>(
        mut self,
        username: impl Into<String>,
        email: impl Into<String>,
        groups: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let username = username.into();
        self.users.retain(|u| u.username != username);
        self.users.push(User {
            username,
            email: email.into(),
            groups: groups.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Lifetime of the tokens (`exp - iat`, and the token response's `expires_in`).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Lifetime of the authorization codes.
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Generates the first key, binds a free port on 127.0.0.1 and serves in the background
    /// on the current Tokio runtime until the [`OidcIssuer`] is dropped.
    pub async fn start(self) -> Result<OidcIssuer, IssuerError> {
        self.check_redirect_uris()?;
        let first = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(|e| IssuerError::KeyGeneration(e.to_string()))?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(IssuerError::Bind)?;
        let addr = listener.local_addr().map_err(IssuerError::Bind)?;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            clients: self.clients,
            users: self.users,
            token_ttl: self.token_ttl,
            code_ttl: self.code_ttl,
            keys: Mutex::new(KeyRing::new(first)),
            codes: Mutex::new(HashMap::new()),
        });
        let app = routes::router(shared.clone());
        let task = tokio::spawn(async move {
            // Ends only when the listener fails; the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        Ok(OidcIssuer {
            shared,
            addr,
            task,
            foreign: OnceLock::new(),
        })
    }

    fn check_redirect_uris(&self) -> Result<(), IssuerError> {
        for client in &self.clients {
            for uri in &client.redirect_uris {
                let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none());
                if !ok {
                    return Err(IssuerError::InvalidRedirectUri {
                        client_id: client.client_id.clone(),
                        uri: uri.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A running issuer. Dropping it stops the server.
pub struct OidcIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
    /// Made on first use of [`OidcIssuer::mint_with_foreign_key`]: key generation is slow.
    foreign: OnceLock<SigningKey>,
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OidcIssuer {
    pub fn builder() -> IssuerBuilder {
        IssuerBuilder {
            clients: Vec::new(),
            users: Vec::new(),
            token_ttl: DEFAULT_TOKEN_TTL,
            code_ttl: DEFAULT_CODE_TTL,
        }
    }

    /// An issuer with no client and no user: discovery and JWKS only. Most callers want
    /// [`OidcIssuer::builder`].
    pub async fn start() -> Result<OidcIssuer, IssuerError> {
        Self::builder().start().await
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash): the tokens' `iss`.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// The JWKS document `/jwks` serves now.
    pub fn jwks(&self) -> Value {
        self.shared.keys.lock().expect("key ring").jwks()
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.shared.current_key().kid().to_string()
    }

    /// Test helper: an ID token for `username` as `/token` would issue it (audience: the first
    /// registered client), with `overrides` merged into its claims; a `null` override removes
    /// the claim. Makes expired, not-yet-valid, other-audience… tokens.
    ///
    /// # Panics
    /// If `username` is not a configured user, no client is registered, or `overrides` is not
    /// a JSON object.
    pub fn mint(&self, username: &str, overrides: Value) -> String {
        let claims = self.minted_claims(username, overrides);
        self.shared
            .current_key()
            .sign_claims(&Value::Object(claims))
    }

    /// Test helper: like [`OidcIssuer::mint`], but signed by a key that is not in the JWKS,
    /// under the current key's `kid`: validation must refuse it with a bad signature.
    ///
    /// # Panics
    /// As [`OidcIssuer::mint`].
    pub fn mint_with_foreign_key(&self, username: &str, overrides: Value) -> String {
        let claims = self.minted_claims(username, overrides);
        let foreign = self.foreign.get_or_init(SigningKey::generate);
        foreign
            .with_kid(self.current_kid())
            .sign_claims(&Value::Object(claims))
    }

    /// Test helper: a new key signs from now on; the JWKS lists it and the previous key (the
    /// one before that leaves). Blocks while the key is generated (about 0.1 s with the
    /// workspace's dev profile; tests/keys.rs prints it).
    pub fn rotate_key(&self) {
        let next = SigningKey::generate();
        self.shared.keys.lock().expect("key ring").rotate(next);
    }

    fn minted_claims(&self, username: &str, overrides: Value) -> Map<String, Value> {
        let user = self
            .shared
            .user(username)
            .unwrap_or_else(|| panic!("mint: no user {username:?} configured on the issuer"));
        let client = self
            .shared
            .clients
            .first()
            .expect("mint: the issuer has no client to be the audience");
        let now = chrono::Utc::now().timestamp();
        let mut claims = self
            .shared
            .id_token_claims(user, &client.client_id, None, now);
        let Value::Object(overrides) = overrides else {
            panic!("mint: overrides must be a JSON object")
        };
        for (name, value) in overrides {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
        claims
    }
}
