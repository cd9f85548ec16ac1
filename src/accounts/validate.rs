//! Pure validation of account fields. Each function returns the normalised
//! value or the message a person should read.

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
pub fn username(raw: &str) -> Result<String, String> {
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
    Ok(name.to_ascii_lowercase())
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
pub fn email(raw: &str) -> Result<String, String> {
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
        Ok(email.to_owned())
    } else {
        Err("is not a valid email address".into())
    }
}

/// Counted in Unicode scalar values, not bytes; never trimmed or altered.
pub fn password(raw: &str) -> Result<(), String> {
    let len = raw.chars().count();
    if len < PASSWORD_MIN {
        return Err(format!("must be at least {PASSWORD_MIN} characters long"));
    }
    if len > PASSWORD_MAX {
        return Err(format!("must be at most {PASSWORD_MAX} characters long"));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(username("Alice_01").unwrap(), "alice_01");
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(31)).is_err());
        assert!(username(&"a".repeat(30)).is_ok());
        assert!(username("al ice").is_err());
        assert!(username("alïce").is_err());
        assert!(username("al-ice").is_err());
        assert_eq!(username(" Bob_2\n").unwrap(), "bob_2");
        // The Kelvin sign lower-cases to an ASCII `k`; it is still refused.
        assert!(username("\u{212A}elvin").is_err());
    }

    #[test]
    fn emails_must_look_deliverable() {
        assert_eq!(email(" a@example.com ").unwrap(), "a@example.com");
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
        assert_eq!(email(&padded).unwrap(), padded.trim());
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
}
