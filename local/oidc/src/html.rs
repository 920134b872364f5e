//! The two pages a person sees: the login form and an error page.

/// Escapes text for HTML content and double- or single-quoted attribute values. Not
/// `rollback_core::html::escape`: core's tests use this issuer, so it does not depend on core.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The login form. The authorization request travels in hidden fields and is checked again
/// when the form comes back; the page names the client and nothing else (no user list).
pub(crate) fn login_page(client_id: &str, hidden: &[(&str, &str)]) -> String {
    let fields: String = hidden
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            )
        })
        .collect();
    page(
        "Sign in",
        &format!(
            "<p>Sign in to continue to <strong>{}</strong>.</p>\n\
             <form method=\"post\" action=\"/authorize\">\n{fields}\
             <label for=\"username\">Username</label>\n\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\n\
             <button type=\"submit\" id=\"login\">Sign in</button>\n</form>",
            escape(client_id)
        ),
    )
}

/// An error page: said to the person in the browser, never redirected to the client (the
/// client or its redirect URI is the thing in doubt).
pub(crate) fn error_page(title: &str, message: &str) -> String {
    page(title, &format!("<p>{}</p>", escape(message)))
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} — local identity provider</title>\n</head>\n<body>\n\
         <h1>{title}</h1>\n{body}\n</body>\n</html>\n",
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_attributes_and_text() {
        let html = login_page("<c>", &[("state", "\"><script>x</script>")]);
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(html.contains("<strong>&lt;c&gt;</strong>"));
        assert!(!html.contains("<script>"));
    }
}
