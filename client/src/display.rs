//! Names and peer text made safe to print (PROTOCOL.md §6, "Showing names").
//!
//! A name that comes from a server may hold anything: an older server, or a file put into the
//! storage folder by hand, can list `a` + U+202E + `gpj.exe`, which a terminal shows as
//! `aexe.jpg`. So every front end prints names through [`display_name`], whatever the name
//! policy says, and the text of a server's messages through [`display_text`].

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// `name` as it should be printed: every control, format (which includes the bidirectional
/// controls and the zero-width characters) and line or paragraph separator character is written
/// as `\u{202e}`, and a backslash as `\\`, so two different names never print the same and
/// nothing in a name can reorder, hide or break the text around it. A name with none of these
/// is returned as it is, without a copy.
///
/// ```
/// assert_eq!(ferry_client::display_name("a\u{202E}gpj.exe"), r"a\u{202e}gpj.exe");
/// assert_eq!(ferry_client::display_name(r"a\b"), r"a\\b");
/// assert_eq!(ferry_client::display_name("café.txt"), "café.txt");
/// ```
pub fn display_name(name: &str) -> Cow<'_, str> {
    escape(name, true)
}

/// `text` (a server's message, an error that quotes one) as it should be printed: the same
/// characters as [`display_name`] are escaped, but a backslash is left alone, since a message
/// is read, not parsed back into a name.
pub fn display_text(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Whether `c` could hide, reorder or break the text it is printed in: a control character, a
/// format character (bidi controls, zero-width characters, soft hyphen, …) or a line or
/// paragraph separator.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

fn escape(text: &str, backslash: bool) -> Cow<'_, str> {
    let escaped = |c: char| is_hidden(c) || (backslash && c == '\\');
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if backslash && c == '\\' {
            out.push_str(r"\\");
        } else if is_hidden(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_right_to_left_override_is_shown_as_its_escape() {
        assert_eq!(display_name("a\u{202E}gpj.exe"), r"a\u{202e}gpj.exe");
    }

    #[test]
    fn zero_width_separator_and_control_characters_are_escaped() {
        assert_eq!(display_name("a\u{200B}b"), r"a\u{200b}b");
        assert_eq!(display_name("a\u{200D}b\u{FEFF}"), r"a\u{200d}b\u{feff}");
        assert_eq!(display_name("soft\u{AD}hyphen"), r"soft\u{ad}hyphen");
        assert_eq!(
            display_name("one\u{2028}two\u{2029}"),
            r"one\u{2028}two\u{2029}"
        );
        assert_eq!(display_name("bell\u{7}\nnul\0"), r"bell\u{7}\u{a}nul\u{0}");
        assert_eq!(display_name("\u{1b}[31mred"), r"\u{1b}[31mred");
    }

    #[test]
    fn a_backslash_is_doubled_so_an_escape_cannot_be_faked() {
        let hostile = display_name("a\u{202E}b");
        let imitation = display_name(r"a\u{202e}b");
        assert_eq!(imitation, r"a\\u{202e}b");
        assert_ne!(hostile, imitation);
    }

    #[test]
    fn ordinary_names_are_borrowed_unchanged() {
        for name in ["report.pdf", "café/ファイル", "عربي.txt", "notes:v2", "x y"] {
            assert!(
                matches!(display_name(name), Cow::Borrowed(n) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn messages_keep_their_backslashes_but_lose_their_hidden_characters() {
        assert_eq!(
            display_text("bad name \"a\u{202E}b\" in C:\\x"),
            "bad name \"a\\u{202e}b\" in C:\\x"
        );
    }

    #[test]
    fn no_character_at_all_survives_as_a_hidden_one() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let shown = display_name(c.encode_utf8(&mut buf));
            assert!(!shown.chars().any(is_hidden), "{c:?} shows as {shown:?}");
            assert_eq!(
                shown.chars().count() == 1,
                !is_hidden(c) && c != '\\',
                "{c:?}"
            );
        }
    }
}
