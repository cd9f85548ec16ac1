//! Pure extraction of hashtags and mentions from post text.

use crate::domain::accounts::validate::{USERNAME_MAX, USERNAME_MIN};

pub const TEXT_MAX: usize = 500;
pub const TAG_MAX: usize = 100;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Positions just after each `marker` that starts a token: at the start of the
/// text or after a character that is not part of a word (so `a#b` and
/// `me@example.com` are not tags or mentions).
fn tokens(text: &str, marker: char, accept: impl Fn(char) -> bool) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts =
            chars[i] == marker && (i == 0 || !(is_word(chars[i - 1]) || chars[i - 1] == marker));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && accept(chars[j]) {
            j += 1;
        }
        // A token that runs straight into another word character is not one.
        let clean_end = j >= chars.len() || !is_word(chars[j]);
        if j > i + 1 && clean_end {
            let token: String = chars[i + 1..j].iter().collect::<String>().to_lowercase();
            if !found.contains(&token) {
                found.push(token);
            }
        }
        i = j.max(i + 1);
    }
    found
}

/// `#word` tags (Unicode letters, digits and `_`), lower-cased, each once, in order.
pub fn hashtags(text: &str) -> Vec<String> {
    tokens(text, '#', is_word)
        .into_iter()
        .filter(|t| t.chars().any(char::is_alphabetic) && t.chars().count() <= TAG_MAX)
        .collect()
}

/// `@username` mentions, lower-cased, each once, in order. Whether the user
/// exists is for the caller to check.
pub fn mentions(text: &str) -> Vec<String> {
    tokens(text, '@', |c| c.is_ascii_alphanumeric() || c == '_')
        .into_iter()
        .filter(|m| (USERNAME_MIN..=USERNAME_MAX).contains(&m.len()))
        .collect()
}

/// Post or comment text that passed [`validate`]: trimmed, 1 to its limit's
/// characters, no control characters but tabs and line breaks. Only
/// [`validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trims, then checks 1 to `max` Unicode scalar values.
pub fn validate(raw: &str, max: usize) -> Result<Text, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters long"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("may not contain control characters".into());
    }
    Ok(Text(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_are_unicode_words_lowercased_once() {
        assert_eq!(
            hashtags("#Rust and #rust, #café! #日本 #1 #a_b"),
            vec!["rust", "café", "日本", "a_b"]
        );
        assert!(hashtags("no#tag here").is_empty());
        assert!(hashtags("## #").is_empty());
        assert_eq!(hashtags("(#paren)"), vec!["paren"]);
    }

    #[test]
    fn mentions_are_usernames_not_emails() {
        assert_eq!(
            mentions("hi @Alice and @bob_1, mail me@example.com"),
            vec!["alice", "bob_1"]
        );
        assert!(mentions("@ab too short").is_empty());
        assert!(mentions(&format!("@{}", "a".repeat(31))).is_empty());
        assert!(
            mentions("@alicé").is_empty(),
            "a mention running into a non-ASCII letter is not a username"
        );
        assert_eq!(mentions("@alice @alice @ALICE"), vec!["alice"]);
    }

    #[test]
    fn text_is_trimmed_and_counted_in_scalar_values() {
        assert_eq!(validate("  hi  ", 500).unwrap().as_str(), "hi");
        assert!(validate("   ", 500).is_err());
        assert!(validate(&"é".repeat(500), 500).is_ok());
        assert!(validate(&"é".repeat(501), 500).is_err());
        assert!(validate("a\u{0}b", 500).is_err());
    }
}
