//! The rules of a move that every backend shares (PROTOCOL.md §5, "Move"): which names can be
//! moved where, and what a move may replace.

use crate::confined::{Kind, Replace};
use crate::store::error::StorageError;

/// Whether `name` is `top` or lies under the folder `top`.
pub(crate) fn is_at_or_under(name: &str, top: &str) -> bool {
    name.strip_prefix(top)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Refuses a move that cannot be one: the same name twice, or a name into itself.
pub(crate) fn check_names(from: &str, to: &str) -> Result<(), StorageError> {
    let bad = |reason| StorageError::BadName {
        name: to.to_owned(),
        reason,
    };
    if from == to {
        return Err(bad("the new name is the old name"));
    }
    if is_at_or_under(to, from) {
        return Err(bad(
            "the new name is inside the old one; a folder cannot move into itself",
        ));
    }
    Ok(())
}

/// What holds `to`, and whether a move of a `moving` entry may replace it.
pub(crate) fn check_target(
    to: &str,
    moving: Kind,
    there: Option<Kind>,
    overwrite: bool,
) -> Result<Replace, StorageError> {
    let taken = |reason| StorageError::NameTaken {
        name: to.to_owned(),
        reason,
    };
    match (moving, there) {
        (_, None) => Ok(Replace::Never),
        (Kind::File, Some(Kind::File)) if overwrite => Ok(Replace::Allowed),
        (Kind::File, Some(Kind::File)) => {
            Err(taken("already exists; use --overwrite to replace it"))
        }
        (_, Some(Kind::Folder)) => Err(taken(
            "is a folder, which a move never replaces; move or remove what is in it first",
        )),
        (Kind::Folder, Some(_)) => Err(taken(
            "already exists; a folder moves only to a name that is free (--overwrite replaces files only)",
        )),
        (_, Some(_)) => Err(StorageError::BadName {
            name: to.to_owned(),
            reason: "the name is not a regular file",
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_under_a_folder_only_past_a_slash() {
        assert!(is_at_or_under("a", "a"));
        assert!(is_at_or_under("a/b", "a"));
        assert!(!is_at_or_under("ab", "a"));
        assert!(!is_at_or_under("b/a", "a"));
    }

    #[test]
    fn the_same_name_and_a_folder_into_itself_are_refused() {
        assert!(matches!(
            check_names("a", "a"),
            Err(StorageError::BadName { .. })
        ));
        assert!(matches!(
            check_names("a", "a/b"),
            Err(StorageError::BadName { .. })
        ));
        assert!(check_names("a", "ab").is_ok());
        assert!(check_names("a/b", "a").is_ok());
    }

    #[test]
    fn only_a_file_over_a_file_with_overwrite_replaces() {
        use Kind::{File, Folder};
        assert_eq!(
            check_target("t", File, None, false).unwrap(),
            Replace::Never
        );
        assert_eq!(
            check_target("t", File, Some(File), true).unwrap(),
            Replace::Allowed
        );
        for (moving, there, overwrite) in [
            (File, File, false),
            (File, Folder, true),
            (Folder, File, true),
            (Folder, Folder, true),
        ] {
            let error = check_target("t", moving, Some(there), overwrite).unwrap_err();
            assert!(matches!(error, StorageError::NameTaken { .. }), "{error}");
        }
    }
}
