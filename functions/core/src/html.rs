//! Text for HTML pages (the approval page; the local identity provider's login form).

/// Escapes text for HTML element content and quoted (double or single) attribute values.
/// Control characters and bidirectional overrides become spaces, so a hostile value cannot
/// reorder what a person reads next to it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push(' ')
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(
            escape("<a href=\"x\" onclick='y'>&\u{1b}"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp; "
        );
        assert_eq!(escape("paid\u{202E}evil"), "paid evil");
    }
}
