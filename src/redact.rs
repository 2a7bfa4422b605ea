//! What may reach a log line. Logs never carry a full card id (API.md "Operations, version 2"), and nothing a
//! client chose (a certificate CN, a path) reaches them raw: a newline, an escape sequence or a NUL there would
//! forge or break log lines.
//!
//! * [`mask_card`] — a card id with all but a few trailing characters hidden;
//! * [`mask_card_in`] — a text (a `hospital_settlement_id`) with any copy of the card id in it masked;
//! * [`log_safe`] — any text as a bounded, printable-ASCII form with everything else escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// How many characters of a CN (or other client-chosen text) a log line shows; the rest is cut.
pub const LOG_TEXT_MAX_CHARS: usize = 64;

/// Masks a card id for logs: at most the last 4 characters and at most a third of the id stay visible (so an id of
/// 1–2 characters is all stars, one of 3–5 shows 1 character, 6–8 shows 2, 9–11 shows 3). The length stays, so a
/// log reader can tell two masked ids apart only by their last characters.
pub fn mask_card(card_id: &str) -> String {
    let n = card_id.chars().count();
    let keep = (n / 3).min(4);
    card_id.chars().enumerate().map(|(i, c)| if i + keep < n { '*' } else { c }).collect()
}

/// `text` with every occurrence of `card_id` masked ([`mask_card`]): a hospital may build its settlement ids from
/// the card id (`H0001-C100001-1`), and those ids are logged.
pub fn mask_card_in<'t>(text: &'t str, card_id: &str) -> Cow<'t, str> {
    if card_id.is_empty() || !text.contains(card_id) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.replace(card_id, &mask_card(card_id)))
    }
}

/// A form of `text` that is safe in a text log line: at most [`LOG_TEXT_MAX_CHARS`] characters of it (then `...`),
/// visible ASCII kept, and everything else — space, control characters (newline, ESC, NUL), `\`, `"`, `=`
/// and non-ASCII — escaped as `\xNN` or `\u{NNNN}`. Borrowed when nothing needs escaping.
pub fn log_safe(text: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_graphic() && !matches!(c, '\\' | '"' | '=');
    if text.len() <= LOG_TEXT_MAX_CHARS && text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(LOG_TEXT_MAX_CHARS) + 8);
    for (i, c) in text.chars().enumerate() {
        if i == LOG_TEXT_MAX_CHARS {
            out.push_str("...");
            break;
        }
        if plain(c) {
            out.push(c);
        } else if c.is_ascii() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_never_reveal_a_short_id_or_most_of_one() {
        assert_eq!(mask_card(""), "");
        assert_eq!(mask_card("C"), "*");
        assert_eq!(mask_card("C1"), "**");
        assert_eq!(mask_card("C12"), "**2");
        assert_eq!(mask_card("C123"), "***3");
        assert_eq!(mask_card("C1234"), "****4");
        assert_eq!(mask_card("C100003"), "*****03");
        assert_eq!(mask_card("C10000003"), "******003");
        assert_eq!(mask_card("C1000000000003"), "**********0003");
        for id in ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefghijklmnopqrstuvwxyz"] {
            let visible = mask_card(id).chars().filter(|c| *c != '*').count();
            assert!(visible <= 4 && visible * 3 <= id.len(), "{id}: {}", mask_card(id));
        }
    }

    #[test]
    fn card_ids_inside_other_ids_are_masked() {
        assert_eq!(mask_card_in("H0001-C100003-1", "C100003"), "H0001-*****03-1");
        assert_eq!(mask_card_in("H0001-20261129-1", "C100003"), "H0001-20261129-1");
        assert!(matches!(mask_card_in("x", ""), Cow::Borrowed("x")));
    }

    #[test]
    fn log_safe_escapes_controls_and_bounds_length() {
        assert!(matches!(log_safe("H0001"), Cow::Borrowed("H0001")));
        assert_eq!(log_safe("a\nb\x1b[31mc\0d"), "a\\x0ab\\x1b[31mc\\x00d");
        assert_eq!(log_safe("bad cn!"), "bad\\x20cn!");
        assert_eq!(log_safe("k=\"v\"\\"), "k\\x3d\\x22v\\x22\\x5c");
        assert_eq!(log_safe("王丽"), "\\u{738b}\\u{4e3d}");
        let long = "x".repeat(500);
        assert_eq!(log_safe(&long), format!("{}...", "x".repeat(LOG_TEXT_MAX_CHARS)));
        for s in ["\u{202e}rtl", "\r\n\t\u{7f}\u{85}\u{2028}", &"\n".repeat(300)] {
            let safe = log_safe(s);
            assert!(safe.chars().all(|c| c.is_ascii_graphic()), "{safe}");
            assert!(safe.len() <= LOG_TEXT_MAX_CHARS * 10 + 3);
        }
    }
}
