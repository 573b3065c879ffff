//! File names on the wire: relative paths that can never reach outside the storage root, and
//! that look like what they are.
//!
//! PROTOCOL.md §6 ("Names"). Both sides check names with [`validate_name`]: the client before it
//! sends a request, the server before it touches storage. The rules, in the order they are
//! checked:
//!
//! 1. not empty, at most [`MAX_NAME_LEN`] bytes;
//! 2. every character can be seen: no control characters, no bidirectional controls, no
//!    invisible format characters (general category `Cf`), no line or paragraph separators; and
//!    no backslash;
//! 3. Unicode NFC, so that names that look the same are the same name;
//! 4. relative: no leading `/`, no Windows drive (`C:`) at the start;
//! 5. at most [`MAX_NAME_DEPTH`] components of at most [`MAX_NAME_COMPONENT_LEN`] bytes, none
//!    of them empty, `.` or `..`;
//! 6. the first component does not start with [`RESERVED_PREFIX`], in any letter case.

use unicode_normalization::{UnicodeNormalization, is_nfc};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::limits::{MAX_NAME_COMPONENT_LEN, MAX_NAME_DEPTH, MAX_NAME_LEN, RESERVED_PREFIX};

/// The bidirectional controls (PROTOCOL.md §6) and what each is called: they reorder the text
/// around them, so `a` + U+202E + `gpj.exe` displays as `aexe.jpg`.
const BIDI_CONTROLS: [(char, &str); 12] = [
    ('\u{061C}', "an Arabic letter mark"),
    ('\u{200E}', "a left-to-right mark"),
    ('\u{200F}', "a right-to-left mark"),
    ('\u{202A}', "a left-to-right embedding"),
    ('\u{202B}', "a right-to-left embedding"),
    ('\u{202C}', "a pop directional formatting"),
    ('\u{202D}', "a left-to-right override"),
    ('\u{202E}', "a right-to-left override"),
    ('\u{2066}', "a left-to-right isolate"),
    ('\u{2067}', "a right-to-left isolate"),
    ('\u{2068}', "a first strong isolate"),
    ('\u{2069}', "a pop directional isolate"),
];

/// The invisible format characters most often met in names, and what each is called; any
/// other `Cf` character is "an invisible format character".
const KNOWN_INVISIBLES: [(char, &str); 7] = [
    ('\u{00AD}', "a soft hyphen"),
    ('\u{180E}', "a Mongolian vowel separator"),
    ('\u{200B}', "a zero-width space"),
    ('\u{200C}', "a zero-width non-joiner"),
    ('\u{200D}', "a zero-width joiner"),
    ('\u{2060}', "a word joiner"),
    ('\u{FEFF}', "a zero-width no-break space (byte order mark)"),
];

/// Why a name is not an acceptable ferry file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is {len} bytes long; the limit is {MAX_NAME_LEN}")]
    TooLong {
        /// Length of the name in bytes.
        len: usize,
    },
    /// One path component is longer than [`MAX_NAME_COMPONENT_LEN`] bytes.
    #[error("a path component is longer than {MAX_NAME_COMPONENT_LEN} bytes")]
    ComponentTooLong,
    /// The name has more than [`MAX_NAME_DEPTH`] components.
    #[error("the name has more than {MAX_NAME_DEPTH} folder levels")]
    TooDeep,
    /// The name starts with `/`.
    #[error("the name starts with `/`, an absolute path; use a path relative to the storage root")]
    Absolute,
    /// The name starts with a letter and a colon (`C:`, `C:x`), which Windows reads as a path
    /// on another drive.
    #[error(
        "the name starts with `{drive}:`, which looks like a Windows drive path; \
         rename it, or put it in a folder (`files/{drive}:…` is fine)"
    )]
    DrivePath {
        /// The letter before the colon.
        drive: char,
    },
    /// A component is `..` or `.`.
    #[error("the name contains a `.` or `..` component")]
    DotComponent,
    /// Two `/` in a row, or a trailing `/`.
    #[error("the name contains an empty component (`//` or a trailing `/`)")]
    EmptyComponent,
    /// A backslash, which Windows would read as a separator.
    #[error("the name contains a backslash; use `/` between folders")]
    Backslash,
    /// NUL, a newline or another control character (general category `Cc`).
    #[error(
        "the name contains {}, a control character, which cannot be shown or stored safely",
        code_point_text(*code_point)
    )]
    ControlCharacter {
        /// The offending character's code point.
        code_point: u32,
    },
    /// A bidirectional control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
    #[error(
        "the name contains {} ({}), which would make the name display as something else",
        code_point_text(*code_point),
        described(*code_point, &BIDI_CONTROLS, "a bidirectional control")
    )]
    BidiControl {
        /// The offending character's code point.
        code_point: u32,
    },
    /// An invisible format character (general category `Cf`, other than the bidi controls),
    /// such as a zero-width space or joiner, a word joiner, a byte order mark or a soft hyphen.
    #[error(
        "the name contains {} ({}), which cannot be seen, so two names that look the same \
         could differ",
        code_point_text(*code_point),
        described(*code_point, &KNOWN_INVISIBLES, "an invisible format character")
    )]
    InvisibleCharacter {
        /// The offending character's code point.
        code_point: u32,
    },
    /// U+2028 (line separator) or U+2029 (paragraph separator).
    #[error(
        "the name contains {} (a {} separator), which would break the name across lines",
        code_point_text(*code_point),
        if *code_point == 0x2029 { "paragraph" } else { "line" }
    )]
    LineSeparator {
        /// The offending character's code point.
        code_point: u32,
    },
    /// The name is not in Unicode Normalization Form C.
    #[error(
        "the name is not in Unicode NFC form (it spells a letter decomposed, as a letter plus \
         a combining accent the way macOS file names do, or with a compatibility character); \
         ferry keeps names composed so that names that look the same are the same file: send \
         it as {nfc:?}"
    )]
    NotNfc {
        /// The same name in NFC, to send instead.
        nfc: String,
    },
    /// The first component starts with the server's reserved prefix, in any letter case.
    #[error(
        "names starting with `{RESERVED_PREFIX}` (in any mix of upper and lower case) are \
         reserved for the server's own files"
    )]
    Reserved,
}

/// `U+202E` style text for a code point.
fn code_point_text(code_point: u32) -> String {
    format!("U+{code_point:04X}")
}

/// What `code_point` is called in `table`, or `otherwise`.
fn described(
    code_point: u32,
    table: &[(char, &'static str)],
    otherwise: &'static str,
) -> &'static str {
    table
        .iter()
        .find(|(c, _)| u32::from(*c) == code_point)
        .map_or(otherwise, |(_, what)| what)
}

/// Checks that `name` is an acceptable ferry file name (PROTOCOL.md §6): a relative path of
/// bounded length and depth, made of ordinary components, whose every character can be seen,
/// in Unicode NFC, and outside the server's reserved area. The error says which rule failed
/// first.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    for c in name.chars() {
        check_char(c)?;
    }
    if !is_nfc(name) {
        return Err(NameError::NotNfc {
            nfc: name.nfc().collect(),
        });
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    if let Some(drive) = drive_letter(name) {
        return Err(NameError::DrivePath { drive });
    }
    let mut depth = 0;
    for component in name.split('/') {
        depth += 1;
        if depth > MAX_NAME_DEPTH {
            return Err(NameError::TooDeep);
        }
        match component {
            "" => return Err(NameError::EmptyComponent),
            "." | ".." => return Err(NameError::DotComponent),
            c if c.len() > MAX_NAME_COMPONENT_LEN => return Err(NameError::ComponentTooLong),
            _ => {}
        }
    }
    if is_reserved(name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// The character rules of §6: every character can be seen and none is a Windows separator.
fn check_char(c: char) -> Result<(), NameError> {
    let code_point = u32::from(c);
    if c.is_control() {
        return Err(NameError::ControlCharacter { code_point });
    }
    if c == '\\' {
        return Err(NameError::Backslash);
    }
    // The bidi controls are format characters too; they get their own, plainer message.
    if BIDI_CONTROLS.iter().any(|(bidi, _)| *bidi == c) {
        return Err(NameError::BidiControl { code_point });
    }
    match c.general_category() {
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Err(NameError::LineSeparator { code_point })
        }
        GeneralCategory::Format => Err(NameError::InvisibleCharacter { code_point }),
        _ => Ok(()),
    }
}

/// The drive letter of a name that starts `C:` (absolute, or drive-relative like `C:x`), which
/// Windows reads as a path on that drive.
fn drive_letter(name: &str) -> Option<char> {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(letter), Some(':')) if letter.is_ascii_alphabetic() => Some(letter),
        _ => None,
    }
}

/// Whether the first component starts with [`RESERVED_PREFIX`], ignoring ASCII case: on a
/// case-insensitive disk `.Ferry-tls` is the server's `.ferry-tls`. Servers hide such entries
/// from listings and space counts.
pub fn is_reserved(name: &str) -> bool {
    name.as_bytes()
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes()))
}

/// Checks a listing prefix: empty (everything) or a name-like string that may end in `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), NameError> {
    match prefix.strip_suffix('/') {
        _ if prefix.is_empty() => Ok(()),
        Some(folder) => validate_name(folder),
        None => validate_name(prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(name: &str) -> NameError {
        match validate_name(name) {
            Err(error) => error,
            Ok(()) => panic!("{name:?} was accepted"),
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "a",
            "report.pdf",
            "photos/2026/img 001.jpg",
            "ünïcødé/файл",
            ".hidden",
            "notes/.ferry-looks-reserved-only-at-the-top",
            "日本語/ファイル.txt",
            "عربي/ملف.txt",
        ] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn hostile_names_are_refused_with_their_reason() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let deep = vec!["d"; MAX_NAME_DEPTH + 1].join("/");
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("../etc/passwd", NameError::DotComponent),
            ("a/../../b", NameError::DotComponent),
            ("./a", NameError::DotComponent),
            ("/etc/passwd", NameError::Absolute),
            ("C:/Windows", NameError::DrivePath { drive: 'C' }),
            ("a\\..\\b", NameError::Backslash),
            ("\\\\server\\share", NameError::Backslash),
            ("a\0b", NameError::ControlCharacter { code_point: 0 }),
            ("a\nb", NameError::ControlCharacter { code_point: 10 }),
            ("a\u{7f}", NameError::ControlCharacter { code_point: 0x7f }),
            ("a\u{85}", NameError::ControlCharacter { code_point: 0x85 }),
            ("a//b", NameError::EmptyComponent),
            ("a/", NameError::EmptyComponent),
            (
                &long,
                NameError::TooLong {
                    len: MAX_NAME_LEN + 1,
                },
            ),
            (&deep, NameError::TooDeep),
            (".ferry-staging/x", NameError::Reserved),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_name(name).as_ref(), Err(expected), "{name:?}");
        }
    }

    #[test]
    fn nfd_name_is_refused_and_the_message_gives_its_nfc_form() {
        let error = refused("cafe\u{301}");
        assert_eq!(
            error,
            NameError::NotNfc {
                nfc: "caf\u{e9}".into()
            }
        );
        let message = error.to_string();
        assert!(message.contains("not in Unicode NFC form"), "{message}");
        assert!(message.contains("\"café\""), "{message}");
    }

    #[test]
    fn nfc_name_is_accepted() {
        assert_eq!(validate_name("caf\u{e9}"), Ok(()));
        assert_eq!(validate_name("Ångström/한국어"), Ok(()));
        // A combining mark with nothing to compose with is already NFC.
        assert_eq!(validate_name("x\u{301}\u{301}"), Ok(()));
    }

    #[test]
    fn every_bidi_control_is_refused_by_code_point() {
        for (c, what) in BIDI_CONTROLS {
            let name = format!("a{c}gpj.exe");
            let error = refused(&name);
            assert_eq!(
                error,
                NameError::BidiControl {
                    code_point: u32::from(c)
                },
                "{name:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("U+{:04X}", u32::from(c))),
                "{message}"
            );
            assert!(message.contains(what), "{message}");
        }
    }

    #[test]
    fn right_to_left_override_message_says_the_name_would_display_differently() {
        assert_eq!(
            refused("a\u{202E}gpj.exe").to_string(),
            "the name contains U+202E (a right-to-left override), which would make the name \
             display as something else"
        );
    }

    #[test]
    fn zero_width_and_other_invisible_characters_are_refused() {
        for c in [
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            let error = refused(&format!("in{c}visible"));
            assert_eq!(
                error,
                NameError::InvisibleCharacter {
                    code_point: u32::from(c)
                }
            );
            assert!(
                error
                    .to_string()
                    .contains(&format!("U+{:04X}", u32::from(c))),
                "{error}"
            );
        }
        assert!(
            refused("a\u{200B}b")
                .to_string()
                .contains("a zero-width space")
        );
    }

    #[test]
    fn line_and_paragraph_separators_are_refused() {
        let error = refused("one\u{2028}two");
        assert_eq!(error, NameError::LineSeparator { code_point: 0x2028 });
        assert_eq!(
            error.to_string(),
            "the name contains U+2028 (a line separator), which would break the name across lines"
        );
        assert_eq!(
            refused("one\u{2029}two"),
            NameError::LineSeparator { code_point: 0x2029 }
        );
    }

    #[test]
    fn reserved_prefix_is_matched_in_any_letter_case() {
        for name in [
            ".Ferry-tls/key.pem",
            ".FERRY-staging/x",
            ".ferry",
            ".fErRy-anything",
        ] {
            assert_eq!(validate_name(name), Err(NameError::Reserved), "{name}");
        }
        assert!(
            refused(".Ferry-tls/key.pem")
                .to_string()
                .contains("any mix of upper and lower case")
        );
        // Only the first component is the server's.
        assert_eq!(validate_name("docs/.Ferry-tls"), Ok(()));
        assert_eq!(validate_name(".ferr"), Ok(()));
    }

    #[test]
    fn a_colon_after_a_single_first_letter_is_refused_as_a_drive_path() {
        for (name, drive) in [("C:x", 'C'), ("c:evil", 'c'), ("a:b", 'a'), ("Z:", 'Z')] {
            let error = refused(name);
            assert_eq!(error, NameError::DrivePath { drive }, "{name}");
            let message = error.to_string();
            assert!(
                message.contains("looks like a Windows drive path"),
                "{message}"
            );
            assert!(!message.contains("absolute"), "{message}");
        }
    }

    #[test]
    fn a_colon_anywhere_else_is_an_ordinary_character() {
        for name in ["ab:c", "12:30 notes.txt", "x/C:y", "1:2", ":leading", "é:x"] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn over_long_component_is_refused() {
        let name = format!("a/{}", "y".repeat(MAX_NAME_COMPONENT_LEN + 1));
        assert_eq!(validate_name(&name), Err(NameError::ComponentTooLong));
    }

    #[test]
    fn prefixes_may_end_with_a_slash() {
        assert_eq!(validate_prefix(""), Ok(()));
        assert_eq!(validate_prefix("photos/"), Ok(()));
        assert_eq!(validate_prefix("photos/20"), Ok(()));
        assert_eq!(validate_prefix("../"), Err(NameError::DotComponent));
        assert_eq!(validate_prefix(".Ferry-tls/"), Err(NameError::Reserved));
    }

    /// Characters a name generator draws from: plain letters, composed and combining letters,
    /// and every kind of character the policy refuses.
    fn name_char() -> impl Strategy<Value = char> {
        prop_oneof![
            16 => proptest::char::range('a', 'z'),
            1 => Just('/'),
            1 => Just(':'),
            1 => Just('.'),
            3 => prop::sample::select(vec!['é', 'Å', 'ñ', '한', 'ф', 'F', 'R']),
            3 => prop::sample::select(vec!['\u{301}', '\u{308}', '\u{30A}', '\u{1161}', '\u{11A8}']),
            1 => prop::sample::select(BIDI_CONTROLS.map(|(c, _)| c).to_vec()),
            1 => prop::sample::select(vec!['\u{200B}', '\u{200D}', '\u{FEFF}', '\u{AD}', '\u{2028}', '\u{2029}', '\u{600}']),
            1 => any::<char>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_accepted_name_is_nfc_and_every_character_can_be_seen(
            chars in proptest::collection::vec(name_char(), 1..24)
        ) {
            let name: String = chars.into_iter().collect();
            if validate_name(&name).is_ok() {
                prop_assert!(name.nfc().eq(name.chars()), "{name:?} is not NFC");
                for c in name.chars() {
                    let category = c.general_category();
                    prop_assert!(
                        !matches!(
                            category,
                            GeneralCategory::Control
                                | GeneralCategory::Format
                                | GeneralCategory::LineSeparator
                                | GeneralCategory::ParagraphSeparator
                        ),
                        "{name:?} has {c:?} ({category:?})"
                    );
                    prop_assert!(!BIDI_CONTROLS.iter().any(|(b, _)| *b == c));
                }
            }
        }
    }
}
