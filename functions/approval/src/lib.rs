//! The approval page behind the signed links in the approval email.
//!
//! - `GET ?t=<link>` shows what the link will do and a form. It changes nothing: mail
//!   security scanners prefetch links.
//! - `POST` (form fields `t` and `approver`) decides: `SendTaskSuccess` with
//!   `{decision, scope, approver, decided_at, fingerprint, signed}` or `SendTaskFailure` with
//!   `Rollback.Rejected`. `signed` is the decision signed with the decision key (KMS), which
//!   every destructive function verifies before it changes anything
//!   (`rollback_core::decision`).
//!
//! CSRF: the link payload itself is the credential (AEAD-sealed, unguessable), so a forged
//! cross-site POST needs the link already. As defence in depth a POST whose `Origin` (or, if
//! absent, `Referer`) names another host is refused; requests without either (non-browser
//! clients) are accepted because they must carry the payload anyway.
//!
//! Tampered, expired or malformed links get a 4xx page and no Step Functions call. Step
//! Functions' "this task is gone" answers become an "already decided" page; nothing is a 500.
//! Other Step Functions errors show their code only: the message (role ARNs, account ids) is
//! logged, not shown. The task token, the payload and the key are never logged.
//!
//! The link keys are read on the first request that carries a link ([`LinkKeySource`]), not
//! at cold start.
//!
//! Deployed as `ApprovalFunction` (infra/template.yaml) behind the HTTP API; `main.rs` serves
//! the library with `lambda_http`. Tests: `cargo test -p rollback-approval` (moto via
//! `make venv`; the browser test drives Chromium and chromedriver).

pub mod fate;
mod html;
mod keys;
pub mod ledger;
mod local;
pub mod login;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Response, StatusCode, header};
use rollback_core::approval_link::{Decision, LinkError, LinkKey, LinkPayload, is_email};
use rollback_core::contract::approval::{ApprovalDecision, REJECTED_ERROR, RejectionCause};
use rollback_core::decision::{DecisionClaims, DecisionSigner, Identity};

use ledger::{Entry, Ledger, Outcome};
use login::{Login, SignedIn};

pub use html::escape;
pub use keys::{LinkKeySource, MAX_AGE, RELOAD_AFTER};
pub use local::serve_local;

/// Form bodies are small; anything bigger is not ours.
pub const MAX_BODY: usize = 16 * 1024;

/// What the page works with: Step Functions to decide, the link keys to open links, the
/// decision key to sign approvals, and the ledger that records approvals until enough people
/// have approved.
#[derive(Clone)]
pub struct Services {
    pub sfn: aws_sdk_sfn::Client,
    /// Shared by clones: one cache of the keys per process.
    pub link_keys: Arc<LinkKeySource>,
    pub signer: DecisionSigner,
    /// Needed only by plans that ask more than one person ([`ledger`]).
    pub ledger: Option<Ledger>,
    /// The organisation's identity provider, when approvers sign in ([`login`]); without it
    /// the approver's identity is self-asserted.
    pub login: Option<Arc<Login>>,
    /// The state machine the links' executions belong to ([`fate::STATE_MACHINE_ENV`]): with
    /// it, a link whose task is gone says what became of the rollback.
    pub state_machine_arn: Option<String>,
}

impl Services {
    pub fn new(sfn: aws_sdk_sfn::Client, keys: LinkKeySource, signer: DecisionSigner) -> Services {
        Services {
            sfn,
            link_keys: Arc::new(keys),
            signer,
            ledger: None,
            login: None,
            state_machine_arn: None,
        }
    }

    /// Names the state machine whose executions the links belong to ([`fate`]).
    pub fn with_state_machine(mut self, arn: impl Into<String>) -> Services {
        self.state_machine_arn = Some(arn.into());
        self
    }

    /// Approvers sign in through `login`; the POST must carry the validated token's claims
    /// ([`SignedIn`] in the request's extensions).
    pub fn with_login(mut self, login: Login) -> Services {
        self.login = Some(Arc::new(login));
        self
    }

    /// Records approvals in `ledger` when a decision needs several people.
    pub fn with_ledger(mut self, ledger: Ledger) -> Services {
        self.ledger = Some(ledger);
        self
    }

    /// With one key in hand (tests, the local drill).
    pub fn with_key(sfn: aws_sdk_sfn::Client, key: LinkKey, signer: DecisionSigner) -> Services {
        Self::new(sfn, LinkKeySource::single(key), signer)
    }
}

/// Handles one request. Plain async, no Lambda types: the Lambda and the local server share it.
pub async fn handle_request(
    services: &Services,
    request: http::Request<Vec<u8>>,
) -> Response<String> {
    handle_at(services, request, Utc::now()).await
}

/// [`handle_request`] with an explicit clock (expiry tests).
pub async fn handle_at(
    services: &Services,
    request: http::Request<Vec<u8>>,
    now: DateTime<Utc>,
) -> Response<String> {
    let (parts, body) = request.into_parts();
    match parts.method {
        Method::GET | Method::HEAD => {
            if parts.uri.path().ends_with("/favicon.ico") {
                return respond(
                    StatusCode::NOT_FOUND,
                    html::notice("Not found", "bad", "No such page."),
                );
            }
            let token = query_param(parts.uri.query(), "t");
            let back_from_sign_in = query_param(parts.uri.query(), "code").is_some()
                || query_param(parts.uri.query(), "error").is_some();
            if let (None, true, Some(login)) = (&token, back_from_sign_in, &services.login) {
                return match login.provider().await {
                    Ok(provider) => respond_signing_in(
                        StatusCode::OK,
                        html::sign_in_return(),
                        &provider.token_endpoint,
                    ),
                    Err(e) => sign_in_unavailable_page(&e),
                };
            }
            show(services, token.as_deref(), now).await
        }
        Method::POST => {
            if let Err(why) = same_origin(&parts.headers) {
                tracing::warn!(reason = why, "cross-origin decision refused");
                return respond(
                    StatusCode::FORBIDDEN,
                    html::notice(
                        "Refused",
                        "bad",
                        "This form was submitted from another site. Open the link from the \
                         email and press the button on this site's page.",
                    ),
                );
            }
            if body.len() > MAX_BODY {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    html::notice("Too large", "bad", "The form is too large."),
                );
            }
            let form = String::from_utf8_lossy(&body);
            let token =
                query_param(Some(&form), "t").or_else(|| query_param(parts.uri.query(), "t"));
            let approver = query_param(Some(&form), "approver").unwrap_or_default();
            let signed_in = parts.extensions.get::<SignedIn>();
            decide(services, token.as_deref(), &approver, signed_in, now).await
        }
        _ => {
            let mut response = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                html::notice("Not allowed", "bad", "Use the link from the email."),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("GET, POST"));
            response
        }
    }
}

async fn show(services: &Services, token: Option<&str>, now: DateTime<Utc>) -> Response<String> {
    let Some(token) = token else {
        return link_error_page(&LinkError::Malformed);
    };
    match open(services, token, now).await {
        Ok(payload) => {
            tracing::info!(execution = %payload.execution, decision = payload.decision.as_str(), "confirmation page shown");
            let so_far = approvals_so_far(services, &payload).await;
            confirm_page(services, StatusCode::OK, &payload, token, None, "", &so_far).await
        }
        Err(page) => *page,
    }
}

/// The confirmation page; with sign-in, its button goes to the identity provider, whose
/// endpoints come from its discovery document (a 503 "try again" when it cannot be read).
async fn confirm_page(
    services: &Services,
    status: StatusCode,
    payload: &LinkPayload,
    token: &str,
    error: Option<&str>,
    typed: &str,
    so_far: &[Entry],
) -> Response<String> {
    let Some(login) = &services.login else {
        return respond(
            status,
            html::confirm(payload, token, error, typed, so_far, None),
        );
    };
    let provider = match login.provider().await {
        Ok(provider) => provider,
        Err(e) => return sign_in_unavailable_page(&e),
    };
    let sign_in = html::SignIn {
        authorize: &provider.authorization_endpoint,
        token: &provider.token_endpoint,
        client_id: &login.config.audience,
    };
    respond_signing_in(
        status,
        html::confirm(payload, token, error, typed, so_far, Some(&sign_in)),
        &provider.token_endpoint,
    )
}

/// The identity provider's discovery document could not be read: nothing was decided.
fn sign_in_unavailable_page(e: &login::ProviderError) -> Response<String> {
    tracing::warn!(error = %e, "identity provider unavailable");
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        html::notice(
            "Try again",
            "warn",
            "The sign-in service cannot be reached right now. Nothing was decided; open the \
             link again in a minute, or tell the team that runs the rollback system if it \
             persists.",
        ),
    )
}

/// The approvals recorded for this link's decision, shown to the next approver. A ledger
/// that cannot be read shows none: the page still works, and the POST reads it again.
async fn approvals_so_far(services: &Services, payload: &LinkPayload) -> Vec<Entry> {
    match (&services.ledger, payload.decision) {
        (Some(ledger), Decision::Approve) if !payload.rules.single() => {
            ledger.entries(payload).await.unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Opens a link with the keys it may name; the error page when it cannot be used.
async fn open(
    services: &Services,
    token: &str,
    now: DateTime<Utc>,
) -> Result<LinkPayload, Box<Response<String>>> {
    let keys = services
        .link_keys
        .for_token(token)
        .await
        .map_err(|e| Box::new(keys_unavailable_page(&e)))?;
    keys.open(token, now)
        .map_err(|e| Box::new(link_error_page(&e)))
}

/// Who is deciding, and how the page knows it.
struct Person {
    /// Lowercased: compared with the plan's approvers and with earlier approvals.
    name: String,
    groups: Vec<String>,
    identity: Identity,
}

impl Person {
    fn self_asserted(email: &str) -> Person {
        Person {
            name: email.to_ascii_lowercase(),
            groups: Vec::new(),
            identity: Identity::SelfAsserted,
        }
    }
}

async fn decide(
    services: &Services,
    token: Option<&str>,
    approver: &str,
    signed_in: Option<&SignedIn>,
    now: DateTime<Utc>,
) -> Response<String> {
    let Some(token) = token else {
        return link_error_page(&LinkError::Malformed);
    };
    let payload = match open(services, token, now).await {
        Ok(payload) => payload,
        Err(page) => return *page,
    };
    let person = match &services.login {
        Some(login) => match signed_in.and_then(|s| s.person(&login.config)) {
            Some((name, groups)) => Person {
                name,
                groups,
                identity: Identity::Authenticated,
            },
            None => return not_signed_in_page(&payload, signed_in.is_some(), login),
        },
        None => {
            let typed = approver.trim();
            if !is_email(typed) {
                let so_far = approvals_so_far(services, &payload).await;
                return confirm_page(
                    services,
                    StatusCode::BAD_REQUEST,
                    &payload,
                    token,
                    Some("Enter your email address; it is recorded as the approver."),
                    typed,
                    &so_far,
                )
                .await;
            }
            Person::self_asserted(typed)
        }
    };
    if !payload.rules.allows(&person.name, &person.groups) {
        return not_an_approver_page(&payload, &person);
    }
    match payload.decision {
        Decision::Approve => approve(services, &payload, &person, now).await,
        Decision::Reject => reject(services, &payload, &person, now).await,
    }
}

async fn approve(
    services: &Services,
    payload: &LinkPayload,
    person: &Person,
    now: DateTime<Utc>,
) -> Response<String> {
    let mine = Entry {
        approver: person.name.clone(),
        identity: person.identity,
        decided_at: now,
    };
    let entries = if payload.rules.single() {
        vec![mine]
    } else {
        match count_approval(services, payload, mine).await {
            Ok(entries) => entries,
            Err(page) => return *page,
        }
    };
    let names = ledger::names(&entries);
    let claims = DecisionClaims::new(
        &payload.execution,
        &payload.plan_fingerprint,
        &payload.fingerprint,
        payload.scope,
        &names,
        person.identity,
        now,
    );
    let signed = match services.signer.sign(&claims).await {
        Ok(signed) => signed,
        Err(e) => return signing_failed_page(payload, &e),
    };
    let decision = ApprovalDecision {
        decision: Decision::Approve,
        scope: payload.scope,
        approver: person.name.clone(),
        approvers: if names.len() > 1 { names } else { Vec::new() },
        identity: person.identity,
        decided_at: now,
        fingerprint: payload.fingerprint.clone(),
        signed,
    };
    let output = serde_json::to_string(&decision).unwrap_or_default();
    let sent = services
        .sfn
        .send_task_success()
        .task_token(&payload.task_token)
        .output(output)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify(&e));
    recorded_or_failed(services, payload, &decision.approved_by(), sent, now).await
}

/// Records an approval of a decision that needs several people: the approvals that complete
/// it (this one last), or the page that says what happened instead (recorded and waiting,
/// counted before, completed by others, ledger unavailable).
async fn count_approval(
    services: &Services,
    payload: &LinkPayload,
    mine: Entry,
) -> Result<Vec<Entry>, Box<Response<String>>> {
    let Some(ledger) = &services.ledger else {
        return Err(Box::new(ledger_unavailable_page(
            payload,
            "no ledger is configured",
        )));
    };
    let approver = mine.approver.clone();
    let page = match ledger.approve(payload, &payload.rules, mine).await {
        Ok(Outcome::Complete(entries)) => return Ok(entries),
        Ok(Outcome::Waiting(entries)) => {
            tracing::info!(
                execution = %payload.execution,
                scope = html::scope_label(payload.scope),
                approver = %approver,
                approvals = entries.len(),
                "approval recorded; waiting for more"
            );
            respond(
                StatusCode::ACCEPTED,
                html::recorded(payload, &entries, false),
            )
        }
        Ok(Outcome::AlreadyCounted(entries)) => respond(
            StatusCode::CONFLICT,
            html::recorded(payload, &entries, true),
        ),
        Ok(Outcome::CompletedByOthers(entries)) => respond(
            StatusCode::CONFLICT,
            html::notice(
                "Already approved",
                "warn",
                &format!(
                    "This rollback ({}) was approved already by {}. Your approval was not \
                     needed and nothing more was changed.",
                    payload.execution,
                    ledger::names(&entries).join(" and ")
                ),
            ),
        ),
        Err(e) => ledger_unavailable_page(payload, &e.0),
    };
    Err(Box::new(page))
}

async fn reject(
    services: &Services,
    payload: &LinkPayload,
    person: &Person,
    now: DateTime<Utc>,
) -> Response<String> {
    let cause = RejectionCause {
        approver: person.name.clone(),
        decided_at: now,
        fingerprint: payload.fingerprint.clone(),
        message: format!("rejected by {} on the approval page", person.name),
    };
    let sent = services
        .sfn
        .send_task_failure()
        .task_token(&payload.task_token)
        .error(REJECTED_ERROR)
        .cause(serde_json::to_string(&cause).unwrap_or_default())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify(&e));
    recorded_or_failed(services, payload, &person.name, sent, now).await
}

async fn recorded_or_failed(
    services: &Services,
    payload: &LinkPayload,
    by: &str,
    sent: Result<(), SfnFailure>,
    now: DateTime<Utc>,
) -> Response<String> {
    match sent {
        Ok(()) => {
            tracing::info!(
                execution = %payload.execution,
                decision = payload.decision.as_str(),
                scope = html::scope_label(payload.scope),
                approver = %by,
                "decision recorded"
            );
            respond(StatusCode::OK, html::decided(payload, by, now))
        }
        Err(failure @ SfnFailure::AlreadyDecided(_)) => {
            let fate = match &services.state_machine_arn {
                Some(machine) => fate::read(&services.sfn, machine, &payload.execution).await,
                None => None,
            };
            failure_page(payload, failure, fate.as_ref())
        }
        Err(failure) => failure_page(payload, failure, None),
    }
}

/// Sign-in is required and the request carries no usable identity: API Gateway's authorizer
/// lets no such request through, so this is a local misconfiguration or a token without the
/// identity claim. Nothing is decided.
fn not_signed_in_page(payload: &LinkPayload, had_token: bool, login: &Login) -> Response<String> {
    tracing::warn!(execution = %payload.execution, had_token, "decision without a signed-in identity refused");
    let message = if had_token {
        format!(
            "Your sign-in does not name you: the token has no {:?} claim. Nothing was \
             decided; tell the team that runs the rollback system (ApprovalLoginIdentityClaim).",
            login.config.identity_claim
        )
    } else {
        "Sign in first: open the link from the email and press the button there. Nothing \
         was decided."
            .to_owned()
    };
    respond(
        StatusCode::UNAUTHORIZED,
        html::notice("Not signed in", "bad", &message),
    )
}

/// The plan names who may decide, and this person is not among them: 403, nothing decided.
fn not_an_approver_page(payload: &LinkPayload, person: &Person) -> Response<String> {
    tracing::warn!(execution = %payload.execution, person = %person.name, "not an approver of this plan");
    let groups_only = payload
        .rules
        .approvers
        .iter()
        .all(|a| a.starts_with(rollback_core::plan::GROUP_PREFIX));
    let hint = if groups_only && person.identity == Identity::SelfAsserted {
        " The plan names its approvers by group, which only a sign-in through the \
         organisation's identity provider can show; this page has none configured."
    } else {
        ""
    };
    respond(
        StatusCode::FORBIDDEN,
        html::notice(
            "Not an approver",
            "bad",
            &format!(
                "The plan for this rollback lists who may decide on it, and {} is not among \
                 them. Nothing was decided. Forward the email to one of the approvers it \
                 names.{hint}",
                person.name
            ),
        ),
    )
}

/// Approvals could not be recorded or read: nothing was decided by this request.
fn ledger_unavailable_page(payload: &LinkPayload, why: &str) -> Response<String> {
    tracing::warn!(execution = %payload.execution, reason = why, "approvals ledger unavailable");
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        html::notice(
            "Try again",
            "warn",
            "This decision needs more than one person, and the record of approvals cannot be \
             read or written right now. Nothing was decided; press the button again in a \
             minute, or tell the team that runs the rollback system if it persists.",
        ),
    )
}

/// How a Step Functions answer is shown. Each variant holds what the page may show: an
/// error code or a fixed phrase, never the error's message, which can name role ARNs and
/// account ids ([`classify`] logs it instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfnFailure {
    /// The task is no longer waiting: decided already, timed out, or the execution ended.
    AlreadyDecided(String),
    /// Throttling, 5xx, network: try again.
    Unavailable(String),
    /// Anything else (permissions, validation): not the approver's fault, not retryable.
    Rejected(String),
}

/// Shown for an error without a code.
const NO_CODE: &str = "no error code";

/// Classifies a Step Functions error by its code.
pub fn classify_code(code: Option<&str>) -> SfnFailure {
    match code {
        Some(c @ ("TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist")) => {
            SfnFailure::AlreadyDecided(c.to_owned())
        }
        Some(c)
            if rollback_core::error::is_throttling_code(c)
                || rollback_core::error::is_transient_code(c) =>
        {
            SfnFailure::Unavailable(c.to_owned())
        }
        Some(c) => SfnFailure::Rejected(c.to_owned()),
        None => SfnFailure::Unavailable(NO_CODE.to_owned()),
    }
}

fn classify<E, R>(err: &aws_sdk_sfn::error::SdkError<E, R>) -> SfnFailure
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_sfn::error::SdkError::ServiceError(service) => classify_error(service.err()),
        _ => SfnFailure::Unavailable("Step Functions could not be reached".to_owned()),
    }
}

/// Logs the error's message, for the operators (it is not secret, but not for the approver's
/// browser), and classifies the error by its code.
fn classify_error(meta: &impl aws_sdk_sfn::error::ProvideErrorMetadata) -> SfnFailure {
    tracing::warn!(
        code = meta.code().unwrap_or(NO_CODE),
        message = %loggable(meta.message().unwrap_or_default()),
        "Step Functions refused the decision"
    );
    classify_code(meta.code())
}

/// An error message as logged: a long token-like run (a task token echoed back) is cut out,
/// since a task token is never logged.
fn loggable(message: &str) -> String {
    const LONGEST: usize = 200;
    let token_like = |c: char| c.is_ascii_alphanumeric() || "+/=-_".contains(c);
    let mut out = String::with_capacity(message.len().min(2000));
    let mut run = String::new();
    for c in message.chars().chain(std::iter::once(' ')) {
        if token_like(c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() > LONGEST {
            "<redacted>"
        } else {
            &run
        });
        run.clear();
        out.push(c);
    }
    out.pop();
    out.chars().take(2000).collect()
}

/// `fate`: what became of the execution, read for [`SfnFailure::AlreadyDecided`].
fn failure_page(
    payload: &LinkPayload,
    failure: SfnFailure,
    fate: Option<&fate::ExecutionFate>,
) -> Response<String> {
    tracing::warn!(execution = %payload.execution, failure = ?failure, fate = ?fate, "decision not recorded");
    match failure {
        SfnFailure::AlreadyDecided(code) => {
            let mut response = respond(
                StatusCode::CONFLICT,
                html::notice(
                    match fate {
                        Some(fate::ExecutionFate::Stopped(_)) => "Rollback stopped",
                        Some(fate::ExecutionFate::Running) | None => "Already decided",
                        Some(_) => "Rollback ended",
                    },
                    "warn",
                    &fate::explain(&payload.execution, fate, &code),
                ),
            );
            response.headers_mut().insert(
                fate::EXECUTION_STATE_HEADER,
                http::HeaderValue::from_static(fate.map_or("unknown", fate::ExecutionFate::word)),
            );
            response
        }
        SfnFailure::Unavailable(why) => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            html::notice(
                "Try again",
                "warn",
                &format!(
                    "Step Functions did not accept the decision right now ({why}). Nothing \
                     was decided; press the button again in a minute."
                ),
            ),
        ),
        SfnFailure::Rejected(code) => respond(
            StatusCode::BAD_GATEWAY,
            html::notice(
                "Not recorded",
                "bad",
                &format!(
                    "Step Functions refused the decision ({code}): the rollback system is not \
                     allowed to record it, or the request was not valid. Nothing was decided; \
                     tell the team that runs the rollback system (the details are in the \
                     approval function's log), or decide with rollbackctl."
                ),
            ),
        ),
    }
}

/// The decision key did not sign: nothing was decided. The error is logged, not shown (it
/// names the key and the account).
fn signing_failed_page(
    payload: &LinkPayload,
    e: &rollback_core::RollbackError,
) -> Response<String> {
    tracing::warn!(execution = %payload.execution, error = %e, "decision not signed");
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        html::notice(
            "Try again",
            "warn",
            "The decision could not be signed right now. Nothing was decided; press the button \
             again in a minute, or tell the team that runs the rollback system if it persists.",
        ),
    )
}

/// The link keys could not be read: nothing was opened or decided. The error is logged, not
/// shown (it names the secret and the account).
fn keys_unavailable_page(e: &rollback_core::RollbackError) -> Response<String> {
    tracing::warn!(error = %e, "approval link keys not loaded");
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        html::notice(
            "Try again",
            "warn",
            "The approval page cannot read its keys right now. Nothing was decided; open the \
             link again in a minute, or tell the team that runs the rollback system if it \
             persists.",
        ),
    )
}

fn link_error_page(e: &LinkError) -> Response<String> {
    tracing::info!(reason = %e, "unusable approval link");
    let (status, title) = match e {
        LinkError::Expired(_) => (StatusCode::GONE, "Link expired"),
        LinkError::Tampered => (StatusCode::BAD_REQUEST, "Invalid link"),
        LinkError::Malformed | LinkError::TooLong(_) => (StatusCode::BAD_REQUEST, "Invalid link"),
    };
    let advice = match e {
        LinkError::Expired(_) => {
            " The approval window has passed; the rollback stopped without changes or was \
             decided already. Start a new rollback if it is still needed."
        }
        _ => " Nothing was decided.",
    };
    respond(
        status,
        html::notice(
            title,
            "bad",
            &format!("{}.{advice}", capitalize(&e.to_string())),
        ),
    )
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Origin (or Referer) must name the host the request came to, when present.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    let claimed = if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| "unreadable Origin")?;
        if origin == "null" {
            return Err("Origin null");
        }
        origin.to_owned()
    } else if let Some(referer) = headers.get(header::REFERER) {
        referer
            .to_str()
            .map_err(|_| "unreadable Referer")?
            .to_owned()
    } else {
        return Ok(());
    };
    let url = url::Url::parse(&claimed).map_err(|_| "Origin is not a URL")?;
    let claimed_host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err("Origin without host"),
    }
    .to_ascii_lowercase();
    match host {
        Some(host) if host == claimed_host => Ok(()),
        Some(_) => Err("Origin names another host"),
        None => Err("no Host header to compare with"),
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// CSP of every page without sign-in: no script at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A page with the sign-in script: only that script (by hash), and fetches only to this page
/// and the identity provider's token endpoint.
fn respond_signing_in(status: StatusCode, body: String, token_endpoint: &str) -> Response<String> {
    let idp = url::Url::parse(token_endpoint)
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src {}; connect-src 'self'{idp}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        html::sign_in_script_hash()
    );
    let mut response = respond(status, body);
    if let Ok(value) = http::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert("content-security-policy", value);
    }
    response
}

fn respond(status: StatusCode, body: String) -> Response<String> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        // Same-origin: the link must not leak through Referer, while the form POST still
        // carries a real Origin for the same-origin check.
        .header("referrer-policy", "same-origin")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header("content-security-policy", CSP)
        .body(body)
        .expect("static headers are valid")
}

/// A signed link's payload for tests: execution `exec-1`, valid for an hour.
#[cfg(test)]
pub(crate) fn test_link(decision: Decision, scope: rollback_core::request::Scope) -> LinkPayload {
    LinkPayload {
        task_token: "AQB8AAAAKgAAAAMAAAAAAAAAAX-token".into(),
        decision,
        scope,
        expires_at: Utc::now().timestamp() + 3600,
        execution: "exec-1".into(),
        fingerprint: "ab".repeat(32),
        plan_fingerprint: String::new(),
        summary: Default::default(),
        rules: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_functions_codes_are_mapped() {
        for code in ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"] {
            assert_eq!(
                classify_code(Some(code)),
                SfnFailure::AlreadyDecided(code.into())
            );
        }
        assert!(matches!(
            classify_code(Some("ThrottlingException")),
            SfnFailure::Unavailable(_)
        ));
        assert!(matches!(
            classify_code(Some("AccessDeniedException")),
            SfnFailure::Rejected(_)
        ));
        assert!(matches!(classify_code(None), SfnFailure::Unavailable(_)));
    }

    fn link_payload() -> LinkPayload {
        super::test_link(Decision::Approve, rollback_core::request::Scope::APP)
    }

    /// Programs that follow links (the drill) read the execution's state from a header, not
    /// from the page's prose.
    #[test]
    fn a_page_for_a_task_that_no_longer_waits_names_the_execution_state() {
        let state = |fate: Option<&fate::ExecutionFate>| {
            let failure = SfnFailure::AlreadyDecided("TaskTimedOut".into());
            let response = failure_page(&link_payload(), failure, fate);
            assert_eq!(response.status(), StatusCode::CONFLICT);
            response.headers()[fate::EXECUTION_STATE_HEADER]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let at = Utc::now();
        assert_eq!(state(Some(&fate::ExecutionFate::Running)), "running");
        assert_eq!(state(Some(&fate::ExecutionFate::Stopped(at))), "stopped");
        assert_eq!(
            state(Some(&fate::ExecutionFate::Failed(at, None))),
            "failed"
        );
        assert_eq!(state(Some(&fate::ExecutionFate::TimedOut(at))), "timed-out");
        assert_eq!(
            state(Some(&fate::ExecutionFate::Succeeded(at))),
            "succeeded"
        );
        assert_eq!(state(None), "unknown");
        // Other failures are not about the execution's state.
        let busy = failure_page(&link_payload(), SfnFailure::Unavailable("503".into()), None);
        assert!(!busy.headers().contains_key(fate::EXECUTION_STATE_HEADER));
    }

    /// Step Functions' messages name the caller's role and account; the page shows the code.
    #[test]
    fn error_pages_show_the_code_and_not_the_message() {
        let message = "User: arn:aws:sts::123456789012:assumed-role/mint-ApprovalFunctionRole-X1/\
                       mint-approval is not authorized to perform: states:SendTaskSuccess on \
                       resource: arn:aws:states:us-east-1:123456789012:stateMachine:mint-rollback";
        for code in [
            Some("AccessDeniedException"),
            Some("ValidationException"),
            Some("TaskTimedOut"),
            Some("ThrottlingException"),
            None,
        ] {
            let mut meta = aws_sdk_sfn::error::ErrorMetadata::builder().message(message);
            if let Some(code) = code {
                meta = meta.code(code);
            }
            let response = failure_page(&link_payload(), classify_error(&meta.build()), None);
            let page = response.body();
            for secret in [
                "123456789012",
                "arn:aws",
                "assumed-role",
                "ApprovalFunctionRole",
            ] {
                assert!(!page.contains(secret), "{code:?} shows {secret}: {page}");
            }
            assert!(page.contains(code.unwrap_or(NO_CODE)), "{page}");
            assert_ne!(response.status(), StatusCode::OK);
        }
        let rejected = classify_code(Some("AccessDeniedException"));
        let page = failure_page(&link_payload(), rejected, None);
        assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
        assert!(page.body().contains("Nothing was decided"));
    }

    #[test]
    fn logged_messages_lose_token_like_runs() {
        let token = format!("AQB8{}", "A".repeat(600));
        let message = format!(
            "Invalid Token: '{token}' for arn:aws:states:us-east-1:123456789012:execution:x"
        );
        let logged = loggable(&message);
        assert!(!logged.contains(&token[..250]), "{logged}");
        assert!(logged.contains("<redacted>"));
        // What operators need stays: the ARN and the account.
        assert!(logged.contains("arn:aws:states:us-east-1:123456789012:execution:x"));
        assert_eq!(loggable("short message"), "short message");
        assert!(loggable(&"x y ".repeat(2000)).chars().count() <= 2000);
    }

    #[test]
    fn origin_check() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "a.example:8080")])).is_ok());
        assert!(
            same_origin(&headers(&[
                ("host", "a.example:8080"),
                ("origin", "http://a.example:8080")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[
                ("host", "a.example"),
                ("origin", "https://evil.example")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[("host", "a.example"), ("origin", "null")])).is_err());
        assert!(
            same_origin(&headers(&[
                ("host", "a.example"),
                ("referer", "https://a.example/x?t=1")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[
                ("host", "a.example"),
                ("referer", "https://evil.example/")
            ]))
            .is_err()
        );
    }
}
