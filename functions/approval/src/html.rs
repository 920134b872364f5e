//! HTML pages. Every dynamic value goes through [`escape`].

use chrono::{DateTime, Utc};
use rollback_core::approval_link::{Decision, LinkPayload};
use rollback_core::request::Scope;

use crate::ledger::Entry;

pub use rollback_core::html::escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;line-height:1.45;color:#222}h1{font-size:1.4rem}li{margin:.25rem 0}\
.box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}\
.warn{background:#fff4e5;border-color:#f0a040}.bad{background:#fdecea;border-color:#e57373}\
.ok{background:#edf7ed;border-color:#66bb6a}button{font-size:1rem;padding:.6rem 1.2rem;\
border-radius:6px;border:1px solid #444;cursor:pointer}button.approve{background:#2e7d32;\
color:#fff}button.reject{background:#c62828;color:#fff}input{font-size:1rem;padding:.4rem;\
width:20rem}code{font-size:.9em}";

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    )
}

pub fn scope_label(scope: Scope) -> String {
    scope.label()
}

pub fn action_label(payload: &LinkPayload) -> String {
    match payload.decision {
        Decision::Approve => format!("Approve ({})", scope_label(payload.scope)),
        Decision::Reject => "Reject".to_owned(),
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The plan summary carried in the link.
fn summary(payload: &LinkPayload) -> String {
    let s = &payload.summary;
    let mut html = String::new();
    html.push_str(&format!(
        "<p><b>Service:</b> {}<br><b>Why:</b> {}<br><b>Execution:</b> <code>{}</code></p>",
        escape(&s.service),
        escape(&s.reason),
        escape(&payload.execution)
    ));
    if !s.lines.is_empty() {
        html.push_str("<p><b>What will be done:</b></p><ul>");
        for line in &s.lines {
            html.push_str(&format!("<li>{}</li>", escape(line)));
        }
        html.push_str("</ul>");
    }
    html.push_str(&format!(
        "<p><small>Plan fingerprint <code>{}</code> · link valid until {}</small></p>",
        escape(&payload.fingerprint.chars().take(16).collect::<String>()),
        fmt_time(payload.expires_at())
    ));
    html
}

/// Who may decide, how many must approve, and who has: for a decision that needs more than
/// one person or names its approvers.
fn who_decides(payload: &LinkPayload, so_far: &[Entry]) -> String {
    let rules = &payload.rules;
    let mut lines = Vec::new();
    if !rules.approvers.is_empty() {
        lines.push(format!(
            "Only the approvers the plan lists may decide: {}.",
            escape(&rules.approvers.join(", "))
        ));
    }
    if payload.decision == Decision::Approve && !rules.single() {
        let mut needs = format!(
            "This approval needs {} different people",
            rules.needed.max(1)
        );
        if let Some(starter) = &rules.starter {
            needs.push_str(&format!(
                ", and someone besides {} (who started the rollback)",
                escape(starter)
            ));
        }
        needs.push('.');
        lines.push(needs);
        if so_far.is_empty() {
            lines.push("Nobody has approved yet: yours is recorded and shown to the next.".into());
        } else {
            lines.push(format!("Approved so far by {}.", approvals(so_far)));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!("<div class=\"box\">{}</div>", lines.join("<br>"))
}

/// The sign-in script, served inline and allowed by its hash in the page's CSP.
pub const SIGN_IN_SCRIPT: &str = include_str!("assets/sign-in.js");

/// `'sha256-…'` of [`SIGN_IN_SCRIPT`], for `script-src`.
pub fn sign_in_script_hash() -> &'static str {
    static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(SIGN_IN_SCRIPT.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    });
    &HASH
}

/// Where the sign-in goes: the identity provider's endpoints and the page's client id.
pub struct SignIn<'a> {
    pub authorize: &'a str,
    pub token: &'a str,
    pub client_id: &'a str,
}

fn sign_in_script() -> String {
    format!("<script>{SIGN_IN_SCRIPT}</script>")
}

/// "a@x at 12:00 UTC; b@x at 12:05 UTC", escaped.
fn approvals(entries: &[Entry]) -> String {
    let who: Vec<String> = entries
        .iter()
        .map(|e| format!("{} at {}", escape(&e.approver), fmt_time(e.decided_at)))
        .collect();
    who.join("; ")
}

/// GET: what the link will do, and the form that does it. Changes nothing. With `sign_in`,
/// the button signs the person in first and the identity provider names the approver.
pub fn confirm(
    payload: &LinkPayload,
    token: &str,
    error: Option<&str>,
    approver: &str,
    so_far: &[Entry],
    sign_in: Option<&SignIn<'_>>,
) -> String {
    let label = action_label(payload);
    let (intro, class, button_class) = match payload.decision {
        Decision::Approve if payload.scope.includes_database() => (
            "You are about to APPROVE the rollback INCLUDING THE DATABASES. Writes made since \
             the snapshot are rolled back (they stay in the backups listed in the email).",
            "warn",
            "approve",
        ),
        Decision::Approve => (
            "You are about to APPROVE the rollback of the application. Databases are not \
             restored.",
            "warn",
            "approve",
        ),
        Decision::Reject => (
            "You are about to REJECT the rollback. Nothing is changed and the execution ends.",
            "bad",
            "reject",
        ),
    };
    let intro = format!("{intro}{}", mobile_note(payload));
    let error = error
        .map(|e| format!("<div class=\"box bad\"><b>{}</b></div>", escape(e)))
        .unwrap_or_default();
    let title = format!("{label}: rollback of {}", payload.summary.service);
    if let Some(sign_in) = sign_in {
        let body = format!(
            "<h1>{}</h1>{error}<div class=\"box {class}\">{}</div>{}{}\
             <p><button type=\"button\" id=\"sign-in\" class=\"{button_class}\" \
             data-authorize=\"{}\" data-token=\"{}\" data-client=\"{}\" data-link=\"{}\">\
             Sign in and {}</button></p><p id=\"login-status\"></p>\
             <p><small>You sign in with your organisation's account; the name it gives is \
             recorded as the approver. Nothing has happened yet: opening this page changes \
             nothing; only the button does.</small></p>{}",
            escape(&title),
            escape(&intro),
            who_decides(payload, so_far),
            summary(payload),
            escape(sign_in.authorize),
            escape(sign_in.token),
            escape(sign_in.client_id),
            escape(token),
            escape(&label.to_lowercase()),
            sign_in_script(),
        );
        return page(&title, &body);
    }
    let body = format!(
        "<h1>{}</h1>{error}<div class=\"box {class}\">{}</div>{}{}\
         <form method=\"post\" action=\"\">\
         <input type=\"hidden\" name=\"t\" value=\"{}\">\
         <p><label>Your email (recorded as the approver; self-asserted: this page does not \
         verify it):<br>\
         <input type=\"email\" name=\"approver\" required maxlength=\"254\" \
         autocomplete=\"email\" value=\"{}\"></label></p>\
         <p><button type=\"submit\" id=\"decide\" class=\"{button_class}\">{}</button></p>\
         </form><p><small>Nothing has happened yet. Opening this page changes nothing; only \
         the button does.</small></p>",
        escape(&title),
        escape(&intro),
        who_decides(payload, so_far),
        summary(payload),
        escape(token),
        escape(approver),
        escape(&label),
    );
    page(&title, &body)
}

/// What an approval including mobile does beyond the app, said before the button: it
/// reaches users' phones (issue 16).
fn mobile_note(payload: &LinkPayload) -> &'static str {
    if payload.decision == Decision::Approve && payload.scope.includes_mobile() {
        " The bad mobile release is stopped in the stores (Google Play rollout halted, App \
         Store phased release paused; users who installed it keep it) and the minimum \
         supported version is raised where a safe build is live."
    } else {
        ""
    }
}

pub fn decided(payload: &LinkPayload, approver: &str, at: DateTime<Utc>) -> String {
    let (head, class, next) = match payload.decision {
        Decision::Approve => (
            format!("Approved ({})", scope_label(payload.scope)),
            "ok",
            "The rollback continues now; progress and the result arrive by email.",
        ),
        Decision::Reject => (
            "Rejected".to_owned(),
            "bad",
            "The rollback stops without changing anything.",
        ),
    };
    let body = format!(
        "<h1>{}</h1><div class=\"box {class}\">Recorded for <b>{}</b> by {} at {}. {}</div>{}",
        escape(&head),
        escape(&payload.summary.service),
        escape(approver),
        fmt_time(at),
        escape(next),
        summary(payload)
    );
    page(&head, &body)
}

/// POST of an approval that was recorded, or counted before, while more people must approve.
pub fn recorded(payload: &LinkPayload, entries: &[Entry], already: bool) -> String {
    let head = if already {
        "Already counted"
    } else {
        "Approval recorded"
    };
    let body = format!(
        "<h1>{head}</h1><div class=\"box ok\">Approved so far by {}. The rollback of <b>{}</b> \
         waits for another person's approval{}; nothing changes until then. Forward the \
         email to another approver.</div>{}",
        approvals(entries),
        escape(&payload.summary.service),
        match &payload.rules.starter {
            Some(starter) => format!(" (someone besides {})", escape(starter)),
            None => String::new(),
        },
        summary(payload)
    );
    page(head, &body)
}

/// GET back from the identity provider (`?code=…&state=…`): the script finishes the sign-in
/// and posts the decision the person chose before signing in.
pub fn sign_in_return() -> String {
    page(
        "Signing in",
        &format!(
            "<h1>Signing in</h1><div class=\"box\"><p id=\"login-status\">Completing the \
             sign-in…</p></div>{}",
            sign_in_script()
        ),
    )
}

/// A page that only explains (errors, already decided).
pub fn notice(title: &str, class: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1><div class=\"box {}\">{}</div>",
            escape(title),
            escape(class),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(decision: Decision, scope: Scope) -> LinkPayload {
        crate::test_link(decision, scope)
    }

    /// The page names the scope with `Scope::label` and says what mobile does only when the
    /// approval includes it.
    #[test]
    fn an_approval_including_mobile_says_so_before_the_button() {
        let scope = Scope::APP_AND_DATABASE.and_mobile();
        let page = confirm(&payload(Decision::Approve, scope), "t", None, "", &[], None);
        assert!(
            page.contains("Approve (app + database + mobile): rollback of"),
            "{page}"
        );
        assert!(page.contains("INCLUDING THE DATABASES"), "{page}");
        assert!(page.contains("Google Play rollout halted"), "{page}");
        let done = decided(&payload(Decision::Approve, scope), "a@x.io", Utc::now());
        assert!(
            done.contains("Approved (app + database + mobile)"),
            "{done}"
        );
        for (decision, scope) in [
            (Decision::Approve, Scope::APP),
            (Decision::Reject, Scope::APP.and_mobile()),
        ] {
            let page = confirm(&payload(decision, scope), "t", None, "", &[], None);
            assert!(!page.contains("Google Play"), "{page}");
        }
        let app_mobile = confirm(
            &payload(Decision::Approve, Scope::APP.and_mobile()),
            "t",
            None,
            "",
            &[],
            None,
        );
        assert!(
            app_mobile.contains("Approve (app + mobile)")
                && app_mobile.contains("Databases are not restored. The bad mobile release"),
            "{app_mobile}"
        );
    }
}
