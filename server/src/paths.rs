//! Names to paths, strictly inside the storage root.
//!
//! The protocol machine already checked each name with `validate_name` (no `..`, no absolute
//! path, no backslash, no control characters, nothing under `.ferry*`). This module checks it
//! again and then walks the name component by component on disk, refusing any component that is
//! a symbolic link (it could point anywhere), a folder in the name that is a file, and a final
//! name that is a folder. So a path built here never leaves the root.

use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use ferry_protocol::validate_name;

use crate::error::StorageError;

/// Folder of partial uploads, inside the root. Reserved by the protocol's `.ferry` prefix, so
/// no client name can reach it, and hidden from listings.
pub(crate) const STAGING_DIR: &str = ".ferry-staging";

/// Folder of digest records of stored files, inside the root; reserved and hidden likewise.
pub(crate) const META_DIR: &str = ".ferry-meta";

/// Prefix of the server's own entries at the top of the root.
pub(crate) const RESERVED_PREFIX: &str = ferry_protocol::limits::RESERVED_PREFIX;

/// A name resolved to a path inside the root.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Where the file is, or would be.
    pub(crate) path: PathBuf,
    /// The regular file there now, if any.
    pub(crate) existing: Option<Metadata>,
}

fn bad(name: &str, reason: &'static str) -> StorageError {
    StorageError::BadName {
        name: name.to_owned(),
        reason,
    }
}

/// Resolves `name` under `root` without creating anything.
pub(crate) fn resolve(root: &Path, name: &str) -> Result<Resolved, StorageError> {
    validate_name(name).map_err(|_| bad(name, "not an acceptable relative path"))?;
    let mut path = root.to_path_buf();
    let components: Vec<&str> = name.split('/').collect();
    let (last, folders) = components
        .split_last()
        .ok_or_else(|| bad(name, "the name is empty"))?;
    let mut folders_exist = true;
    for folder in folders {
        path.push(folder);
        if folders_exist {
            match fs::symlink_metadata(&path) {
                Ok(meta) => check_folder(name, &meta)?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => folders_exist = false,
                Err(error) => return Err(StorageError::io("looking up a folder")(error)),
            }
        }
    }
    path.push(last);
    let existing = if folders_exist {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(bad(
                    name,
                    "the name is a symbolic link, which the server does not follow",
                ));
            }
            Ok(meta) if meta.is_dir() => return Err(bad(name, "the name is a folder")),
            Ok(meta) if meta.is_file() => Some(meta),
            Ok(_) => return Err(bad(name, "the name is not a regular file")),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(StorageError::io("looking up a file")(error)),
        }
    } else {
        None
    };
    Ok(Resolved { path, existing })
}

fn check_folder(name: &str, meta: &Metadata) -> Result<(), StorageError> {
    if meta.file_type().is_symlink() {
        Err(bad(
            name,
            "a folder in the name is a symbolic link, which the server does not follow",
        ))
    } else if meta.is_dir() {
        Ok(())
    } else {
        Err(bad(name, "a folder in the name is a file"))
    }
}

/// Creates the folders of `name` under `root` that are missing, refusing symbolic links and
/// files on the way, and makes each new folder's entry durable.
pub(crate) fn create_parents(root: &Path, name: &str) -> Result<(), StorageError> {
    let components: Vec<&str> = name.split('/').collect();
    let Some((_, folders)) = components.split_last() else {
        return Err(bad(name, "the name is empty"));
    };
    let mut path = root.to_path_buf();
    for folder in folders {
        let parent = path.clone();
        path.push(folder);
        match fs::symlink_metadata(&path) {
            Ok(meta) => check_folder(name, &meta)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&path) {
                    Ok(()) => {
                        sync_dir(&parent).map_err(StorageError::io("syncing a new folder"))?
                    }
                    // Another upload made it at the same moment: check what it is.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(StorageError::io("creating a folder")(error)),
                }
                let meta =
                    fs::symlink_metadata(&path).map_err(StorageError::io("looking up a folder"))?;
                check_folder(name, &meta)?;
            }
            Err(error) => return Err(StorageError::io("looking up a folder")(error)),
        }
    }
    Ok(())
}

/// Makes a folder's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder holding `path`, or `path` itself if it has none.
pub(crate) fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_folder_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let error = resolve(root.path(), "link/file").unwrap_err();
        assert!(matches!(error, StorageError::BadName { .. }), "{error}");
        let error = create_parents(root.path(), "link/file").unwrap_err();
        assert!(matches!(error, StorageError::BadName { .. }), "{error}");
    }

    #[test]
    fn symlinked_file_and_folder_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("dir")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("pw")).unwrap();
        assert!(matches!(
            resolve(root.path(), "pw"),
            Err(StorageError::BadName { .. })
        ));
        assert!(matches!(
            resolve(root.path(), "dir"),
            Err(StorageError::BadName { .. })
        ));
    }

    #[test]
    fn ordinary_nested_name_resolves_under_root() {
        let root = tempfile::tempdir().unwrap();
        let resolved = resolve(root.path(), "a/b/c.txt").unwrap();
        assert_eq!(resolved.path, root.path().join("a/b/c.txt"));
        assert!(resolved.existing.is_none());
        create_parents(root.path(), "a/b/c.txt").unwrap();
        assert!(root.path().join("a/b").is_dir());
    }
}
