//! The ferry names of local files: a local file name becomes a name component in Unicode NFC
//! (PROTOCOL.md §6), so that a file from a Mac, whose file system hands out decomposed (NFD)
//! names, uploads under the same name as the same file anywhere else.

use std::ffi::OsStr;

use unicode_normalization::UnicodeNormalization;

/// The ferry name component for the local file name `file_name`: its text in Unicode NFC, or
/// `None` when it is not valid Unicode (such a file must be renamed, or given a name, to be
/// uploaded). The result is not checked against the other rules of §6; the upload does that.
///
/// ```
/// use std::ffi::OsStr;
/// // "café" as macOS spells it: e + combining acute accent.
/// let name = ferry_client::name_from_local(OsStr::new("cafe\u{301}.txt"));
/// assert_eq!(name.as_deref(), Some("caf\u{e9}.txt"));
/// ```
pub fn name_from_local(file_name: &OsStr) -> Option<String> {
    file_name.to_str().map(|text| text.nfc().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decomposed_file_name_becomes_its_composed_name() {
        assert_eq!(
            name_from_local(OsStr::new("cafe\u{301}/A\u{30A}ngstro\u{308}m")).as_deref(),
            Some("caf\u{e9}/\u{c5}ngstr\u{f6}m")
        );
        // Hangul jamo compose into syllables, as on macOS.
        assert_eq!(
            name_from_local(OsStr::new("\u{1112}\u{1161}\u{11AB}")).as_deref(),
            Some("\u{d55c}")
        );
    }

    #[test]
    fn an_nfc_file_name_is_kept_as_it_is() {
        assert_eq!(
            name_from_local(OsStr::new("café.txt")).as_deref(),
            Some("café.txt")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_unicode_has_no_name() {
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(name_from_local(OsStr::from_bytes(b"bad\xff")), None);
    }
}
