//! File names on the wire: relative paths that can never reach outside the storage root.
//!
//! PROTOCOL.md §6 ("Names"). Both sides check names with [`validate_name`]: the client before it
//! sends a request, the server before it touches storage.

use crate::limits::{MAX_NAME_COMPONENT_LEN, MAX_NAME_DEPTH, MAX_NAME_LEN, RESERVED_PREFIX};

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
    /// The name starts with `/` or a Windows drive or UNC prefix.
    #[error("the name is an absolute path; use a path relative to the storage root")]
    Absolute,
    /// A component is `..` or `.`.
    #[error("the name contains a `.` or `..` component")]
    DotComponent,
    /// Two `/` in a row, or a trailing `/`.
    #[error("the name contains an empty component (`//` or a trailing `/`)")]
    EmptyComponent,
    /// A backslash, which Windows would read as a separator.
    #[error("the name contains a backslash; use `/` between folders")]
    Backslash,
    /// NUL or another control character.
    #[error("the name contains a control character (byte {byte:#04x})")]
    ControlCharacter {
        /// The offending character's code point.
        byte: u32,
    },
    /// The first component starts with the server's reserved prefix.
    #[error("names starting with `{RESERVED_PREFIX}` are reserved for the server")]
    Reserved,
}

/// Checks that `name` is a relative path of bounded length and depth made of ordinary
/// components: no `..` or `.`, no absolute or drive prefix, no backslash, no NUL or control
/// characters, and not in the server's reserved area.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameError::ControlCharacter { byte: c as u32 });
    }
    if name.contains('\\') {
        return Err(NameError::Backslash);
    }
    if name.starts_with('/') || has_drive_prefix(name) {
        return Err(NameError::Absolute);
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
    if name.starts_with(RESERVED_PREFIX) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// `C:` style drive prefixes, which Windows treats as absolute (or drive-relative).
fn has_drive_prefix(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
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

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "a",
            "report.pdf",
            "photos/2026/img 001.jpg",
            "ünïcødé/файл",
            ".hidden",
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
            ("C:/Windows", NameError::Absolute),
            ("c:evil", NameError::Absolute),
            ("a\\..\\b", NameError::Backslash),
            ("\\\\server\\share", NameError::Backslash),
            ("a\0b", NameError::ControlCharacter { byte: 0 }),
            ("a\nb", NameError::ControlCharacter { byte: 10 }),
            ("a\u{7f}", NameError::ControlCharacter { byte: 0x7f }),
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
    }
}
