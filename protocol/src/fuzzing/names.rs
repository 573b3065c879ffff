//! Target 5, [`names`]: the name checks accept exactly the names an independent reading of
//! PROTOCOL.md §6 accepts, and an accepted name joined to a root stays under it.

use std::path::{Component, Path};

use crate::limits::{MAX_NAME_COMPONENT_LEN, MAX_NAME_DEPTH, MAX_NAME_LEN, RESERVED_PREFIX};
use crate::{NameError, validate_name, validate_prefix};

/// `data` as a name and as a listing prefix (lossily decoded if it is not UTF-8).
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_name(&text);
    check_prefix(&text);
    // Also every suffix after a `/`, so deep names get short variants.
    for (i, _) in text.match_indices('/').take(4) {
        check_name(&text[i + 1..]);
    }
}

/// The bidirectional controls PROTOCOL.md §6 lists, written out again for the specification.
const SPEC_BIDI_CONTROLS: [u32; 12] = [
    0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
];

/// A character §6 refuses because it cannot be seen or breaks lines: control, bidi control,
/// format (`Cf`), line or paragraph separator.
fn spec_hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control()
        || SPEC_BIDI_CONTROLS.contains(&u32::from(c))
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Whether `name` is in NFC, computed the long way (normalise and compare) rather than with the
/// quick check `validate_name` uses.
fn spec_is_nfc(name: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().eq(name.chars())
}

/// An independent reading of PROTOCOL.md §6: why `name` is not acceptable, if it is not.
fn name_violation(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("too long");
    }
    if name.chars().any(spec_hidden) {
        return Some("a character that cannot be seen");
    }
    if name.contains('\\') {
        return Some("backslash");
    }
    if !spec_is_nfc(name) {
        return Some("not NFC");
    }
    if name.starts_with('/') {
        return Some("absolute");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("drive prefix");
    }
    let components: Vec<&str> = name.split('/').collect();
    if components.len() > MAX_NAME_DEPTH {
        return Some("too deep");
    }
    if components.iter().any(|c| c.is_empty()) {
        return Some("empty component");
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Some("dot component");
    }
    if components.iter().any(|c| c.len() > MAX_NAME_COMPONENT_LEN) {
        return Some("long component");
    }
    if components[0]
        .to_ascii_lowercase()
        .starts_with(RESERVED_PREFIX)
    {
        return Some("reserved");
    }
    None
}

fn check_name(name: &str) {
    let result = validate_name(name);
    let violation = name_violation(name);
    match (&result, violation) {
        (Ok(()), None) => assert_stays_under_root(name),
        (Err(error), Some(_)) => assert_reason_holds(name, error),
        (Ok(()), Some(why)) => panic!("validate_name accepted {name:?}: {why}"),
        (Err(error), None) => panic!("validate_name refused the acceptable {name:?}: {error}"),
    }
}

fn check_prefix(prefix: &str) {
    let expected = match prefix.strip_suffix('/') {
        _ if prefix.is_empty() => None,
        Some(folder) => name_violation(folder),
        None => name_violation(prefix),
    };
    let result = validate_prefix(prefix);
    assert_eq!(
        result.is_ok(),
        expected.is_none(),
        "validate_prefix({prefix:?}) = {result:?}, spec says {expected:?}"
    );
}

/// An accepted name is a plain relative path: joined to a root it stays below it.
fn assert_stays_under_root(name: &str) {
    let path = Path::new(name);
    let components: Vec<Component<'_>> = path.components().collect();
    assert!(
        components.iter().all(|c| matches!(c, Component::Normal(_))),
        "{name:?} has a non-plain component"
    );
    assert_eq!(
        components.len(),
        name.split('/').count(),
        "{name:?} has hidden components"
    );
    assert!(components.len() <= MAX_NAME_DEPTH);
    let root = Path::new("/srv/ferry-root");
    let joined = root.join(path);
    assert!(joined.starts_with(root), "{name:?} escapes the root");
    assert_eq!(
        joined.components().count(),
        root.components().count() + components.len()
    );
}

/// The reason `validate_name` gives is true of the name.
fn assert_reason_holds(name: &str, error: &NameError) {
    let holds = match error {
        NameError::Empty => name.is_empty(),
        NameError::TooLong { len } => *len == name.len() && name.len() > MAX_NAME_LEN,
        NameError::ComponentTooLong => name.split('/').any(|c| c.len() > MAX_NAME_COMPONENT_LEN),
        NameError::TooDeep => name.split('/').count() > MAX_NAME_DEPTH,
        NameError::Absolute => name.starts_with('/'),
        NameError::DrivePath { drive } => {
            drive.is_ascii_alphabetic() && name.starts_with(*drive) && name[1..].starts_with(':')
        }
        NameError::DotComponent => name.split('/').any(|c| c == "." || c == ".."),
        NameError::EmptyComponent => name.split('/').any(str::is_empty),
        NameError::Backslash => name.contains('\\'),
        NameError::ControlCharacter { code_point } => {
            char::from_u32(*code_point).is_some_and(|c| c.is_control() && name.contains(c))
        }
        NameError::BidiControl { code_point } => {
            SPEC_BIDI_CONTROLS.contains(code_point)
                && char::from_u32(*code_point).is_some_and(|c| name.contains(c))
        }
        NameError::InvisibleCharacter { code_point } | NameError::LineSeparator { code_point } => {
            char::from_u32(*code_point).is_some_and(|c| spec_hidden(c) && name.contains(c))
        }
        NameError::NotNfc { nfc } => !spec_is_nfc(name) && spec_is_nfc(nfc) && nfc != name,
        NameError::Reserved => name
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_PREFIX)),
    };
    assert!(
        holds,
        "validate_name({name:?}) gave a reason that does not hold: {error:?}"
    );
}
