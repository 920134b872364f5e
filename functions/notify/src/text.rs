//! Text hygiene for mails: every value that came from outside (plan fields, alarm reasons,
//! error causes) goes through here before it is printed.

/// One line, no control or bidirectional-override characters, at most `max` characters.
pub fn clean(text: &str, max: usize) -> String {
    let mapped: String = text
        .chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = mapped.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&joined, max)
}

/// `text` cut to `max` characters with an ellipsis.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Trojan-source characters: they reorder what the reader sees.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// An SNS subject: ASCII, no control characters, fewer than 100 characters.
pub fn subject(text: &str) -> String {
    let ascii: String = text
        .replace('→', "->")
        .replace('…', "...")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    let joined = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= 99 {
        joined
    } else {
        format!("{}...", &joined[..96])
    }
}

/// `sha256:0123456789abcdef…` → `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    let clean = clean(digest, 100);
    match clean.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", hex.chars().take(12).collect::<String>()),
        None => clean.chars().take(19).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_controls_and_bounds() {
        assert_eq!(clean("a\nb\r\n\x1b[31mc\u{202E}d", 100), "a b [31mcd");
        assert_eq!(clean(&"x".repeat(500), 10).chars().count(), 10);
    }

    #[test]
    fn subjects_are_sns_safe() {
        let s = subject(&format!("[rollback] ü→{}\n", "y".repeat(200)));
        assert!(s.len() < 100);
        assert!(s.is_ascii() && !s.contains('\n'));
        assert!(s.starts_with("[rollback] ->yyy"), "{s}");
    }
}
