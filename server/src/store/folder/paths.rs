//! Names to places, strictly inside the storage root.
//!
//! The protocol machine already checked each name with `validate_name` (PROTOCOL.md §6: no
//! `..`, nothing absolute, every character visible, NFC, nothing under `.ferry*` in any case).
//! This module checks it again and then opens the folder holding it through the root's handle ([`crate::confined`]):
//! the kernel refuses a folder in the name that is a symbolic link or a file, and the last
//! component is looked at without following it, so a symbolic link, a folder or a special file
//! there is refused too. What comes back is a handle of the folder and the file's own name in
//! it: every later step acts on that handle, never on a path looked up again.

use std::io;

use ferry_protocol::validate_name;
use rustix::io::Errno;

use crate::confined::{Folder, Kind, SHARED_FOLDER, Status};
use crate::store::error::StorageError;

/// Folder of partial uploads, inside the root. Reserved by the protocol's `.ferry` prefix, so
/// no client name can reach it, and hidden from listings.
pub(crate) const STAGING_DIR: &str = ".ferry-staging";

/// Folder of digest records of stored files, inside the root; reserved and hidden likewise.
pub(crate) const META_DIR: &str = ".ferry-meta";

/// A name resolved inside the root.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The folder holding the name, if all of its folders exist.
    pub(crate) folder: Option<Folder>,
    /// The last component of the name: the file's name in `folder`.
    pub(crate) leaf: String,
    /// The regular file there now, if any.
    pub(crate) existing: Option<Status>,
}

fn bad(name: &str, reason: &'static str) -> StorageError {
    StorageError::BadName {
        name: name.to_owned(),
        reason,
    }
}

/// Splits a valid name into its folders and its last component.
pub(crate) fn split(name: &str) -> Result<(&str, &str), StorageError> {
    validate_name(name).map_err(|_| bad(name, "not an acceptable relative path"))?;
    Ok(match name.rsplit_once('/') {
        Some((folders, leaf)) => (folders, leaf),
        None => ("", name),
    })
}

/// What an error opening a name's folders means for the client.
pub(crate) fn folder_error(name: &str, error: io::Error) -> StorageError {
    match error.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::LOOP) => bad(
            name,
            "a folder in the name is a symbolic link, which the server does not follow",
        ),
        Some(Errno::NOTDIR) => bad(name, "a folder in the name is a file"),
        Some(Errno::XDEV) => bad(name, "the name leads outside the storage root"),
        _ => StorageError::io("opening a folder")(error),
    }
}

/// Resolves `name` under `root` without creating anything.
pub(crate) fn resolve(root: &Folder, name: &str) -> Result<Resolved, StorageError> {
    let (folders, leaf) = split(name)?;
    let folder = if folders.is_empty() {
        root.folder(".")
    } else {
        root.folder(folders)
    };
    let folder = match folder {
        Ok(folder) => folder,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Resolved {
                folder: None,
                leaf: leaf.to_owned(),
                existing: None,
            });
        }
        Err(error) => return Err(folder_error(name, error)),
    };
    let existing = existing_file(&folder, name, leaf)?;
    Ok(Resolved {
        folder: Some(folder),
        leaf: leaf.to_owned(),
        existing,
    })
}

/// The regular file `leaf` in `folder`, if any; anything else under that name is refused.
pub(crate) fn existing_file(
    folder: &Folder,
    name: &str,
    leaf: &str,
) -> Result<Option<Status>, StorageError> {
    let status = folder
        .status(leaf)
        .map_err(StorageError::io("looking up a file"))?;
    match status.map(|s| (s.kind(), s)) {
        None => Ok(None),
        Some((Kind::File, status)) => Ok(Some(status)),
        Some((Kind::Symlink, _)) => Err(bad(
            name,
            "the name is a symbolic link, which the server does not follow",
        )),
        Some((Kind::Folder, _)) => Err(bad(name, "the name is a folder")),
        Some((Kind::Other, _)) => Err(bad(name, "the name is not a regular file")),
    }
}

/// Opens the folder that will hold `name`, creating its missing folders (each new entry made
/// durable) and refusing symbolic links and files on the way.
pub(crate) fn create_parents(root: &Folder, name: &str) -> Result<Folder, StorageError> {
    let (folders, _) = split(name)?;
    let components: Vec<&str> = if folders.is_empty() {
        Vec::new()
    } else {
        folders.split('/').collect()
    };
    root.folders(&components, SHARED_FOLDER)
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists => {
                StorageError::io("creating a folder")(error)
            }
            _ => folder_error(name, error),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root_of(dir: &tempfile::TempDir) -> Folder {
        Folder::open(dir.path()).unwrap()
    }

    #[test]
    fn symlinked_folder_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let error = resolve(&root_of(&root), "link/file").unwrap_err();
        assert!(matches!(error, StorageError::BadName { .. }), "{error}");
        let error = create_parents(&root_of(&root), "link/sub/file").unwrap_err();
        assert!(matches!(error, StorageError::BadName { .. }), "{error}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn symlinked_file_and_folder_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("dir")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("pw")).unwrap();
        assert!(matches!(
            resolve(&root_of(&root), "pw"),
            Err(StorageError::BadName { .. })
        ));
        assert!(matches!(
            resolve(&root_of(&root), "dir"),
            Err(StorageError::BadName { .. })
        ));
    }

    #[test]
    fn a_file_used_as_a_folder_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"").unwrap();
        let error = resolve(&root_of(&root), "f/g").unwrap_err();
        assert!(error.to_string().contains("is a file"), "{error}");
    }

    #[test]
    fn ordinary_nested_name_resolves_under_root() {
        let root = tempfile::tempdir().unwrap();
        let resolved = resolve(&root_of(&root), "a/b/c.txt").unwrap();
        assert!(resolved.folder.is_none());
        assert_eq!(resolved.leaf, "c.txt");
        assert!(resolved.existing.is_none());
        let folder = create_parents(&root_of(&root), "a/b/c.txt").unwrap();
        folder.create_new("c.txt", 0o644).unwrap();
        assert!(root.path().join("a/b/c.txt").is_file());
        let resolved = resolve(&root_of(&root), "a/b/c.txt").unwrap();
        assert_eq!(resolved.existing.unwrap().size(), 0);
    }
}
