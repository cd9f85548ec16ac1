//! The rule-based content analyzer behind moderation: blocked terms matched
//! after normalization, and a limit on links. Pure functions, no I/O.
//!
//! Normalization folds what people use to dodge a word list: case,
//! diacritics (`é` → `e`), compatibility forms (fullwidth `ｆ`), look-alike
//! letters from other scripts (Cyrillic `а`, Greek `ο`), digits and symbols
//! inside words (`sh1t`, `a$$`), letters spelled out with separators
//! (`f.u.c.k`, `f u c k`), and stretched letters (`fuuuuck`).

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;

/// What the analyzer decided about one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The text must be hidden; `reason` is for the author and the audit trail.
    Hide {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Analyzer {
    terms: Vec<Term>,
    /// `None`: links are not limited.
    max_links: Option<usize>,
}

/// A blocked term, normalized into words of letter runs.
#[derive(Debug, Clone)]
struct Term {
    original: String,
    words: Vec<Runs>,
    /// `word*`: the last word matches any word it begins.
    prefix: bool,
}

/// A word as runs of one letter: `"boo"` is `[('b',1), ('o',2)]`. Matching
/// on runs lets `fuuuck` match `fuck` while `as` does not match `ass`.
type Runs = Vec<(char, usize)>;

impl Analyzer {
    /// `terms` are matched as whole words (several words must appear in a
    /// row); a term ending in `*` also matches longer words it begins.
    /// Terms that normalize to nothing are ignored.
    pub fn new<S: AsRef<str>>(terms: &[S], max_links: Option<usize>) -> Self {
        let terms = terms
            .iter()
            .filter_map(|t| {
                let raw = t.as_ref().trim();
                let (body, prefix) = match raw.strip_suffix('*') {
                    Some(body) => (body, true),
                    None => (raw, false),
                };
                let words: Vec<Runs> = words(body).iter().map(|w| runs(w)).collect();
                (!words.is_empty()).then(|| Term {
                    original: raw.to_owned(),
                    words,
                    prefix,
                })
            })
            .collect();
        Self { terms, max_links }
    }

    pub fn check(&self, text: &str) -> Verdict {
        if let Some(max) = self.max_links {
            let links = count_links(text);
            if links > max {
                return Verdict::Hide {
                    reason: format!("too many links: {links} (at most {max} are allowed)"),
                };
            }
        }
        let found = words(text);
        let found: Vec<Runs> = found.iter().map(|w| runs(w)).collect();
        for term in &self.terms {
            if contains_term(&found, term) {
                return Verdict::Hide {
                    reason: format!("contains the blocked term \"{}\"", term.original),
                };
            }
        }
        Verdict::Clean
    }
}

fn contains_term(text: &[Runs], term: &Term) -> bool {
    let n = term.words.len();
    if n == 0 || text.len() < n {
        return false;
    }
    text.windows(n).any(|window| {
        window
            .iter()
            .zip(&term.words)
            .enumerate()
            .all(|(i, (w, t))| {
                let last = i + 1 == n;
                runs_match(w, t, last && term.prefix)
            })
    })
}

/// Same letters in the same order, each run at least as long as the term's.
fn runs_match(word: &Runs, term: &Runs, prefix: bool) -> bool {
    if word.len() < term.len() || (!prefix && word.len() != term.len()) {
        return false;
    }
    word.iter().zip(term).all(|(w, t)| w.0 == t.0 && w.1 >= t.1)
}

fn runs(word: &str) -> Runs {
    let mut out: Runs = Vec::new();
    for c in word.chars() {
        match out.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

/// The normalized words of `text`, with spelled-out letters joined.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Single letters in a row ("f u c k", "f.u.c.k") also form a word.
    let mut singles = String::new();
    for chunk in text.split(|c: char| c.is_whitespace()) {
        for word in fold_chunk(chunk) {
            if word.chars().count() == 1 {
                singles.push_str(&word);
            } else {
                if singles.chars().count() > 1 {
                    out.push(std::mem::take(&mut singles));
                }
                singles.clear();
            }
            out.push(word);
        }
    }
    if singles.chars().count() > 1 {
        out.push(singles);
    }
    out
}

/// Folds one whitespace-free chunk into lower-case ASCII-ish words.
fn fold_chunk(chunk: &str) -> Vec<String> {
    let chars: Vec<char> = chunk
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(look_alike)
        .collect();
    let has_letter = chars.iter().any(|c| c.is_alphabetic());
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let letter = if c.is_alphabetic() {
            Some(c)
        } else if has_letter && c.is_ascii_digit() {
            // Digits stand for letters only in words that have letters:
            // "sh1t" is a word, "2024" is a number.
            leet(c)
        } else if has_letter && !current.is_empty() {
            // Symbols only inside or at the end of a word ("sh!t", "a$$"),
            // and `!` only before more of it, so "wow!" stays "wow".
            let more_follows = chars[i + 1..].iter().any(|n| n.is_alphanumeric());
            leet(c).filter(|_| more_follows || c == '$')
        } else {
            None
        };
        match letter {
            Some(l) => current.push(l),
            None if c.is_numeric() => current.push(c),
            None => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

/// Letters of other scripts that look like Latin ones.
fn look_alike(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ς' => 'c',
        'е' | 'ё' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'н' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'у' | 'υ' => 'u',
        'х' | 'χ' => 'x',
        'ү' | 'γ' => 'y',
        other => other,
    }
}

/// Links in `text`: `http://`, `https://` and `www.` occurrences.
pub fn count_links(text: &str) -> usize {
    let lower = text.to_lowercase();
    let mut count = 0;
    for (i, _) in lower.match_indices("http") {
        let rest = &lower[i + 4..];
        if rest.starts_with("://") || rest.starts_with("s://") {
            count += 1;
        }
    }
    for (i, _) in lower.match_indices("www.") {
        // "https://www.x" is one link, not two.
        if !lower[..i].ends_with("://") {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hides(analyzer: &Analyzer, text: &str) -> bool {
        matches!(analyzer.check(text), Verdict::Hide { .. })
    }

    #[test]
    fn normalization_folds_case_diacritics_and_look_alikes() {
        assert_eq!(words("Héllo WORLD"), vec!["hello", "world"]);
        assert_eq!(words("ｆｕｌｌｗｉｄｔｈ"), vec!["fullwidth"]);
        // Cyrillic а, е and о.
        assert_eq!(
            words("s\u{441}\u{430}m \u{456}s g\u{43e}\u{3bf}d"),
            vec!["scam", "is", "good"]
        );
        assert_eq!(words("sh1t l33t"), vec!["shit", "leet"]);
        assert_eq!(words("a$$ sh!t"), vec!["ass", "shit"]);
        assert_eq!(words("wow! 2024"), vec!["wow", "2024"]);
    }

    #[test]
    fn spelled_out_letters_are_joined() {
        assert!(words("f u c k you").contains(&"fuck".to_owned()));
        assert!(words("f.u.c.k").contains(&"fuck".to_owned()));
        assert!(words("say a b").contains(&"ab".to_owned()));
    }

    #[test]
    fn blocked_terms_match_after_normalization() {
        let a = Analyzer::new(&["scam", "crypto giveaway", "spam*"], None);
        for text in [
            "this is a SCAM",
            "Scám!",
            "s\u{441}\u{430}m",
            "5c4m",
            "sssscaaaaam",
            "s c a m",
            "s.c.a.m here",
            "big Crypto   GIVEAWAY today",
            "spammers everywhere",
            "spam",
        ] {
            assert!(hides(&a, text), "{text}");
        }
        for text in [
            "scampi for dinner",
            "a crypto post; giveaway later",
            "giveaway crypto",
            "spa",
            "",
        ] {
            assert!(!hides(&a, text), "{text}");
        }
    }

    #[test]
    fn doubled_letters_in_terms_are_required() {
        let a = Analyzer::new(&["ass"], None);
        assert!(hides(&a, "ass"));
        assert!(hides(&a, "aaasss"));
        assert!(hides(&a, "a$$"));
        assert!(!hides(&a, "as"));
        assert!(!hides(&a, "class"));
    }

    #[test]
    fn the_reason_names_the_rule() {
        let a = Analyzer::new(&["scam"], Some(2));
        assert_eq!(
            a.check("total scam"),
            Verdict::Hide {
                reason: "contains the blocked term \"scam\"".into()
            }
        );
        let Verdict::Hide { reason } = a.check("http://a.example https://b.example www.c.example")
        else {
            panic!("three links are over the limit")
        };
        assert!(reason.contains("3") && reason.contains("2"), "{reason}");
    }

    #[test]
    fn links_are_counted() {
        assert_eq!(count_links("no links"), 0);
        assert_eq!(count_links("see https://www.example.com"), 1);
        assert_eq!(count_links("HTTP://A http://b www.c"), 3);
        let a = Analyzer::new::<&str>(&[], Some(2));
        assert!(!hides(&a, "http://a http://b"));
        assert!(hides(&a, "http://a http://b http://c"));
        assert!(!hides(
            &Analyzer::new::<&str>(&[], None),
            "http://a http://b http://c"
        ));
    }

    #[test]
    fn empty_terms_are_ignored() {
        let a = Analyzer::new(&["", "  ", "!!"], None);
        assert!(!hides(&a, "anything at all"));
    }
}
