//! The drill's approvers: they open the emailed link (GET shows the confirmation page and
//! changes nothing) and confirm, one person after another when the plan asks several. With
//! `--sign-in` each signs in at the local identity provider first, doing over HTTP what the
//! page's script does in a browser (authorization code with PKCE, the token exchange, the POST
//! with the ID token); the browser itself is exercised by functions/approval/tests/browser.rs.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

use super::Approve;
use super::inbox::Mail;

/// Who approves in the drill, in order (`--approvers N` takes the first N).
pub const APPROVERS: [&str; 3] = [
    "drill@example.com",
    "second-approver@example.com",
    "third-approver@example.com",
];

/// The approval page's client id at the drill's identity provider.
pub const CLIENT_ID: &str = "rollback-approval";

/// The identity provider's user name of an approver (the part before `@`).
pub fn username(email: &str) -> &str {
    email.split('@').next().unwrap_or(email)
}

/// Answers the approval request in `mail` as `approve` says. Returns true once decided.
pub async fn decide(
    mail: &Mail,
    approve: Approve,
    approvers: u8,
    sign_in: bool,
    quiet: bool,
) -> Result<bool> {
    let wanted: fn(&str) -> bool = match approve {
        Approve::Auto => |l| l.contains("approve") && l.contains("database"),
        Approve::AppOnly => |l| l.contains("approve") && l.contains("app only"),
        // A pre-approved rollback's email has one link: "stop it now".
        Approve::Reject => |l| l.contains("reject") || l.contains("stop it now"),
        Approve::Manual => {
            println!(
                "\n  --approve manual: open one of the links above in a browser and confirm; the drill waits."
            );
            return Ok(false);
        }
    };
    let link = mail
        .link(wanted)
        .with_context(|| format!("the approval email has no link for --approve {approve:?}"))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // One person per approval the plan asks for (only the database link asks more than one);
    // everyone but the last is recorded (202) and shown to the next.
    let needed = if approve == Approve::Auto {
        approvers.clamp(1, 3)
    } else {
        1
    };
    let people = &APPROVERS[..usize::from(needed)];
    for (i, person) in people.iter().enumerate() {
        let html = open_page(&client, &link, person, sign_in, quiet).await?;
        let form = Form::of(&html, sign_in)?;
        let page_url = link.split('?').next().unwrap_or(&link);
        let Pressed {
            status,
            html: answer,
            execution_state,
        } = press(&client, page_url, &form, person).await?;
        let title = answer
            .split("<title>")
            .nth(1)
            .and_then(|t| t.split("</title>").next())
            .unwrap_or_default();
        if !quiet {
            println!("  the approval page answered {status}: {title}");
        }
        let accepted = if i + 1 == people.len() {
            status == reqwest::StatusCode::OK
        } else {
            // Recorded now, or by an earlier press whose answer was lost.
            status == reqwest::StatusCode::ACCEPTED
                || (status == reqwest::StatusCode::CONFLICT && answer.contains("Already counted"))
        };
        // A link of an approval request that was sent again (its notify task was retried,
        // so the task waits on a newer token): as a person would, wait for the newer email.
        if status == reqwest::StatusCode::CONFLICT && execution_state.as_deref() == Some("running")
        {
            if !quiet {
                println!("  that link was superseded by a newer approval email; waiting for it");
            }
            return Ok(false);
        }
        if !accepted {
            anyhow::bail!("the decision by {person} was not accepted ({status}): {answer}");
        }
    }
    Ok(true)
}

/// GETs the confirmation page (which changes nothing) and says what `person` sees on it.
async fn open_page(
    client: &reqwest::Client,
    link: &str,
    person: &str,
    sign_in: bool,
    quiet: bool,
) -> Result<String> {
    let page = client
        .get(link)
        .send()
        .await
        .context("opening the approval link")?;
    let status = page.status();
    let html = page.text().await?;
    if !status.is_success() {
        anyhow::bail!("the approval page answered {status}: {html}");
    }
    if !quiet {
        println!(
            "\n  {person} opened the approval page ({} bytes) and confirms{}",
            html.len(),
            if sign_in { " after signing in" } else { "" }
        );
        if let Some(so_far) = html
            .split("Approved so far by ")
            .nth(1)
            .and_then(|t| t.split("</div>").next())
        {
            println!(
                "  the page shows: approved so far by {}",
                so_far.trim_end_matches('.')
            );
        }
    }
    Ok(html)
}

/// What the confirmation page gives the person to decide with.
enum Form {
    /// Type an email address and press the button (identity self-asserted).
    Typed { link: String },
    /// Sign in at the identity provider, then post the link with the ID token.
    SignIn {
        link: String,
        authorize: String,
        token: String,
        client: String,
    },
}

impl Form {
    fn of(html: &str, sign_in: bool) -> Result<Form> {
        if !sign_in {
            let link =
                field(html, "name=\"t\" value=\"").context("the approval page has no form")?;
            return Ok(Form::Typed { link });
        }
        let data = |name: &str| {
            field(html, &format!("data-{name}=\""))
                .with_context(|| format!("the approval page has no sign-in button (data-{name})"))
        };
        Ok(Form::SignIn {
            link: data("link")?,
            authorize: data("authorize")?,
            token: data("token")?,
            client: data("client")?,
        })
    }
}

/// Decides as `person`. A person presses the button again when the page says "Try again"
/// (503: Step Functions, the decision key or the ledger did not answer); so does the drill,
/// for up to about 30 s (a fault schedule can fail several calls in a row).
/// The approval page's answer to a press.
struct Pressed {
    status: reqwest::StatusCode,
    html: String,
    /// For a link whose task no longer waits, the execution's state
    /// (`rollback_approval::fate::EXECUTION_STATE_HEADER`).
    execution_state: Option<String>,
}

async fn press(client: &reqwest::Client, page: &str, form: &Form, person: &str) -> Result<Pressed> {
    let origin = page.split("/approval").next().unwrap_or_default();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let request = client.post(page).header("Origin", origin);
        let request = match form {
            Form::Typed { link } => request.form(&[("t", link.as_str()), ("approver", person)]),
            Form::SignIn { link, .. } => request
                .bearer_auth(sign_in(client, page, form, person).await?)
                .form(&[("t", link.as_str())]),
        };
        let answer = request
            .send()
            .await
            .context("submitting the approval form")?;
        let status = answer.status();
        let execution_state = answer
            .headers()
            .get(rollback_approval::fate::EXECUTION_STATE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let html = answer.text().await?;
        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || attempts >= 15 {
            return Ok(Pressed {
                status,
                html,
                execution_state,
            });
        }
        let pause = 200 * (1u64 << attempts.min(4));
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
}

/// The sign-in the page's script does: authorization code with PKCE (S256) at the identity
/// provider, as `person`; returns the ID token.
async fn sign_in(
    client: &reqwest::Client,
    page: &str,
    form: &Form,
    person: &str,
) -> Result<String> {
    let Form::SignIn {
        link,
        authorize,
        token,
        client: client_id,
    } = form
    else {
        anyhow::bail!("not a sign-in form");
    };
    // 32 random bytes, as RFC 7636 recommends (two v4 UUIDs).
    let random = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].map(|u| u.into_bytes());
    let verifier = URL_SAFE_NO_PAD.encode(random.concat());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let link_id: String = URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(link.as_bytes()))
        .chars()
        .take(22)
        .collect();
    let state = format!("{link_id}.{}", uuid::Uuid::new_v4().simple());
    let query = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", page),
        ("scope", "openid email"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // The login form, then the person signs in; the provider redirects back with a code.
    let login = client.get(authorize).query(&query).send().await?;
    if !login.status().is_success() {
        anyhow::bail!(
            "the identity provider refused the sign-in request: {}",
            login.text().await?
        );
    }
    let mut fields: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fields.push(("username".into(), username(person).into()));
    let redirect = client.post(authorize).form(&fields).send().await?;
    let location = redirect
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .context("the identity provider did not redirect back after the sign-in")?;
    let back = url::Url::parse(location)?;
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.as_str()) {
        anyhow::bail!("the identity provider came back with another state");
    }
    let code = param("code").context("the identity provider gave no code")?;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", page),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    id_token(client, token, &exchange).await
}

/// The ID token the token endpoint gives for an authorization code.
async fn id_token(
    client: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<String> {
    let tokens: serde_json::Value = client
        .post(endpoint)
        .form(form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    tokens["id_token"]
        .as_str()
        .map(str::to_owned)
        .context("the token answer has no id_token")
}

/// The attribute value after `marker` (`name="t" value="` or `data-link="`), unescaped.
fn field(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let value = &html[start..start + html[start..].find('"')?];
    Some(
        value
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}
