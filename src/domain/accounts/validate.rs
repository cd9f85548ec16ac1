//! Pure validation of account fields. Each function returns the normalised
//! value or the message a person should read.

use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// A username that passed [`username`]: trimmed, lower-case ASCII letters,
/// digits and underscores, of an allowed length. Only [`username`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// An email address that passed [`email`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// A new password that passed [`password`]: the only kind a hash is made of.
#[derive(Clone, Copy)]
pub struct Password<'a>(&'a str);

impl Username {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'a> Password<'a> {
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl std::fmt::Debug for Password<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 30;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
pub const DISPLAY_NAME_MAX: usize = 50;
pub const BIO_MAX: usize = 300;
pub const EMAIL_MAX: usize = 254;
pub const EMAIL_LOCAL_MAX: usize = 64;
pub const EMAIL_LABEL_MAX: usize = 63;
pub const API_KEY_NAME_MAX: usize = 100;

/// Usernames are compared without regard to case, and stored lower-case.
/// Only ASCII is checked and lower-cased, so no other character (the Kelvin
/// sign lower-cases to `k`) can become a letter of a username.
pub fn username(raw: &str) -> Result<Username, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(format!(
            "must be {USERNAME_MIN} to {USERNAME_MAX} characters long"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("may contain only letters a-z, digits 0-9 and underscores".into());
    }
    Ok(Username(name.to_ascii_lowercase()))
}

/// Characters of an address's local part: those of the HTML standard's
/// "valid e-mail address".
fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c)
}

/// A domain label: 1 to 63 ASCII letters, digits and hyphens, with no hyphen
/// first or last.
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=EMAIL_LABEL_MAX).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// The HTML standard's grammar of a valid e-mail address (no display name,
/// no quoted local part), with RFC 5321's length limits (64 for the local
/// part, 254 in all) and a dot in the domain: a domain without one is valid
/// by RFC 5322 but never a reachable mailbox here. The whole value, spaces
/// around it included, counts towards the 254 characters.
pub fn email(raw: &str) -> Result<Email, String> {
    if raw.chars().count() > EMAIL_MAX {
        return Err(format!("must be at most {EMAIL_MAX} characters long"));
    }
    let email = raw.trim();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            (1..=EMAIL_LOCAL_MAX).contains(&local.len())
                && local.chars().all(is_local_char)
                && domain.contains('.')
                && domain.split('.').all(is_domain_label)
        }
        None => false,
    };
    if valid {
        Ok(Email(email.to_owned()))
    } else {
        Err("is not a valid email address".into())
    }
}

/// Counted in Unicode scalar values, not bytes; never trimmed or altered.
pub fn password(raw: &str) -> Result<Password<'_>, String> {
    let len = raw.chars().count();
    if len < PASSWORD_MIN {
        return Err(format!("must be at least {PASSWORD_MIN} characters long"));
    }
    if len > PASSWORD_MAX {
        return Err(format!("must be at most {PASSWORD_MAX} characters long"));
    }
    Ok(Password(raw))
}

/// A short free-text field: trimmed, control characters refused, empty means none.
pub fn text_field(raw: &str, max: usize) -> Result<Option<String>, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters long"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err("may not contain control characters".into());
    }
    Ok(Some(value.to_owned()))
}

/// The explicit bidirectional embeddings, overrides and isolates (U+202A to
/// U+202E, U+2066 to U+2069). All are format characters too; they are named
/// here so the rule does not depend on a table alone.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text shown as who someone is (display names and bios): a short free-text
/// field, in Unicode NFC, without format characters (general category Cf:
/// bidirectional controls, zero-width spaces and joiners, soft hyphens...).
/// Those render as nothing, or reorder what follows, so `\u{202E}` or a
/// zero-width space lets one name pass for another in clients. Every script
/// is kept: only invisible formatting is refused. The length is counted after
/// normalisation, in Unicode scalar values.
pub fn display_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    let normalized: String = raw.nfc().collect();
    let value = normalized.trim();
    if let Some(c) = value
        .chars()
        .find(|&c| is_bidi_control(c) || c.general_category() == GeneralCategory::Format)
    {
        let what = if is_bidi_control(c) {
            "bidirectional control characters"
        } else {
            "invisible formatting characters (such as zero-width spaces and joiners)"
        };
        return Err(format!(
            "may not contain {what}; found U+{:04X}",
            u32::from(c)
        ));
    }
    text_field(value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(username("Alice_01").unwrap().as_str(), "alice_01");
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(31)).is_err());
        assert!(username(&"a".repeat(30)).is_ok());
        assert!(username("al ice").is_err());
        assert!(username("alïce").is_err());
        assert!(username("al-ice").is_err());
        assert_eq!(username(" Bob_2\n").unwrap().as_str(), "bob_2");
        // The Kelvin sign lower-cases to an ASCII `k`; it is still refused.
        assert!(username("\u{212A}elvin").is_err());
    }

    #[test]
    fn emails_must_look_deliverable() {
        assert_eq!(email(" a@example.com ").unwrap().as_str(), "a@example.com");
        assert!(email("a@localhost").is_err());
        assert!(email("not-an-email").is_err());
        assert!(email("a@@example.com").is_err());
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(email(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert!(email(&format!("a@{}.com", "b".repeat(64))).is_err());
        assert!(email("a@-example.com").is_err());
        assert!(email("a@example-.com").is_err());
        assert!(email("a@example..com").is_err());
        assert!(email("o'neil+tag@mail.example.co").is_ok());
        // A display name is not part of an address.
        assert!(email("Alice <alice@example.com>").is_err());
        assert!(email("\"a b\"@example.com").is_err());
        assert!(email("a@[127.0.0.1]").is_err());
        assert!(email("al\u{0000}ice@example.com").is_err());
        // Surrounding spaces count towards the limit, then are trimmed.
        let padded = format!(" {}@example.com", "a".repeat(64));
        assert_eq!(email(&padded).unwrap().as_str(), padded.trim());
        assert!(email(&format!("{}{}", " ".repeat(200), &padded)).is_err());
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        // Eight characters, twenty-four bytes.
        assert!(password("ééééééé€").is_ok());
        assert!(password(&"x".repeat(1024)).is_ok());
        assert!(password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn text_fields_trim_and_refuse_control_characters() {
        assert_eq!(text_field("  hi  ", 10).unwrap(), Some("hi".into()));
        assert_eq!(text_field("   ", 10).unwrap(), None);
        assert!(text_field("a\u{0007}b", 10).is_err());
        assert!(text_field(&"é".repeat(11), 10).is_err());
        assert!(text_field(&"é".repeat(10), 10).is_ok());
    }

    #[test]
    fn display_text_is_nfc_and_keeps_every_script() {
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(
            display_text("Rene\u{0301}e", 10).unwrap(),
            Some("Ren\u{00E9}e".into())
        );
        // Counted after normalisation: five decomposed pairs fit in five.
        assert!(display_text(&"e\u{0301}".repeat(5), 5).is_ok());
        for name in [
            "Алиса Петрова",
            "Ελένη",
            "李小龍",
            "محمد",
            "שלום",
            "नमस्ते",
            "Zoë 🐦",
        ] {
            assert_eq!(
                display_text(name, 50).unwrap().as_deref(),
                Some(name),
                "{name}"
            );
        }
        assert_eq!(display_text("  ", 10).unwrap(), None);
        assert!(display_text("a\u{0007}b", 10).is_err());
    }

    #[test]
    fn display_text_refuses_bidi_controls_and_format_characters() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let err = display_text(&format!("ali{c}ce"), 50).unwrap_err();
            assert!(
                err.contains("bidirectional"),
                "U+{:04X}: {err}",
                u32::from(c)
            );
            assert!(err.contains(&format!("U+{:04X}", u32::from(c))), "{err}");
        }
        // Zero-width space, non-joiner, joiner, word joiner, byte-order mark,
        // soft hyphen, left-to-right and right-to-left marks, Arabic letter
        // mark, Mongolian vowel separator: all format characters (Cf).
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{200E}',
            '\u{200F}', '\u{061C}', '\u{180E}',
        ] {
            let err = display_text(&format!("al{c}ice"), 50).unwrap_err();
            assert!(err.contains("invisible"), "U+{:04X}: {err}", u32::from(c));
        }
        // At the edges too: trimming does not hide them.
        assert!(display_text("\u{200B}alice", 50).is_err());
        assert!(display_text("alice\u{FEFF}", 50).is_err());
    }
}
