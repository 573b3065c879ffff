//! A move in the folder backend: one `renameat2` of a file, or of a folder with everything
//! under it, through the root's folder handles.
//!
//! ```text
//!  MOVE from → to ─► checks: from exists (file or folder), to free (or a file over a file with
//!                    overwrite), to not inside from, no upload under way to either
//!                 ─► under the upload locks (no upload can start meanwhile):
//!                    digest records written under the new names ─► crash point move-after-digest
//!                    folders of `to` made, renameat2 (RENAME_NOREPLACE unless overwriting)
//!                                                              ─► crash point move-after-rename
//!                 ─► fsync of both folders ─► crash point move-after-sync ─► ACK
//!                 ─► the old names' records removed (stale ones are harmless: see below)
//! ```
//!
//! A reader of either name sees the old state or the new one, whole: the rename is one system
//! call, and a download already under way keeps its open handle. A crash before the rename
//! leaves everything under the old names; after it, under the new ones; either way each file
//! has its digest record, because the records for the new names are written first. A record
//! names the exact file version (device, inode, size, modification time) it describes, so one
//! left behind by a crash is never taken for another file's: at worst it is unused.

use std::io;

use rustix::io::Errno;

use crate::confined::{Folder, Kind, Replace, Status};
use crate::store::error::StorageError;
use crate::store::folder::Storage;
use crate::store::folder::crash_point::{self, CommitStep};
use crate::store::folder::digests::FileId;
use crate::store::folder::paths;
use crate::store::moves::{check_names, check_target, is_at_or_under};

/// Files a folder move carries their digest records for, at most: a larger folder still moves
/// whole, and its files past this many have their digests computed by their next download.
const MAX_RECORDS_MOVED: usize = 100_000;

/// The folder holding `name` (if all its folders exist), the name's last component, and the
/// file or folder there, looked at without following it. A symbolic link or special file there
/// is refused.
fn locate(
    storage: &Storage,
    name: &str,
) -> Result<(Option<Folder>, String, Option<Status>), StorageError> {
    let (parent, leaf) = paths::split(name)?;
    let parent = if parent.is_empty() { "." } else { parent };
    let Some(folder) = open_folder(storage.root_folder(), parent, name)? else {
        return Ok((None, leaf.to_owned(), None));
    };
    let status = folder
        .status(leaf)
        .map_err(StorageError::io("looking up a name"))?;
    let bad = |reason| StorageError::BadName {
        name: name.to_owned(),
        reason,
    };
    match status.map(|s| s.kind()) {
        Some(Kind::Symlink) => Err(bad(
            "the name is a symbolic link, which the server does not follow",
        )),
        Some(Kind::Other) => Err(bad("the name is not a regular file or folder")),
        _ => Ok((Some(folder), leaf.to_owned(), status)),
    }
}

/// The folder `relative` under `root`, `None` if it (or a folder above it) does not exist.
fn open_folder(root: &Folder, relative: &str, name: &str) -> Result<Option<Folder>, StorageError> {
    match root.folder(relative) {
        Ok(folder) => Ok(Some(folder)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(paths::folder_error(name, error)),
    }
}

/// Every regular file under the folder `top` (a name), as names, with their identities;
/// symbolic links and special files are skipped (they are not files of the store), and so is
/// anything past [`MAX_RECORDS_MOVED`].
fn files_under(root: &Folder, top: &str) -> Vec<(String, FileId)> {
    let mut found = Vec::new();
    let mut pending = vec![top.to_owned()];
    while let Some(relative) = pending.pop() {
        let Ok(folder) = root.folder(&relative) else {
            continue;
        };
        let Ok(entries) = folder.entries() else {
            continue;
        };
        for (entry, kind) in entries {
            let Some(entry) = entry.to_str() else {
                continue;
            };
            let name = format!("{relative}/{entry}");
            match kind {
                Kind::Folder => pending.push(name),
                Kind::File if found.len() < MAX_RECORDS_MOVED => {
                    if let Ok(Some(status)) = folder.status(entry) {
                        found.push((name, FileId::of(&status)));
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Gives `from` (a file, or a folder with everything under it) the name `to`; see the module
/// docs for the steps and what a crash leaves.
pub(crate) fn rename(
    storage: &Storage,
    from: &str,
    to: &str,
    overwrite: bool,
) -> Result<(), StorageError> {
    check_names(from, to)?;
    let (from_folder, from_leaf, from_status) = locate(storage, from)?;
    let (Some(from_folder), Some(from_status)) = (from_folder, from_status) else {
        return Err(StorageError::NotFound(from.to_owned()));
    };
    let moving = from_status.kind();
    // Checked before anything is made, so a refused move leaves no new folder behind.
    let (_, _, there) = locate(storage, to)?;
    check_target(to, moving, there.map(|s| s.kind()), overwrite)?;

    let busy = |held: &str| is_at_or_under(held, from) || is_at_or_under(held, to);
    let moved = storage.locks_unless_any(busy, || {
        // Looked at again under the locks: an upload may have committed meanwhile.
        let (_, _, there) = locate(storage, to)?;
        let replace = check_target(to, moving, there.map(|s| s.kind()), overwrite)?;
        let records = carry_records(storage, from, to, moving, &from_status);
        crash_point::reach(CommitStep::MoveRecorded);
        let to_folder = paths::create_parents(storage.root_folder(), to)?;
        let to_leaf = to.rsplit('/').next().unwrap_or(to);
        place(
            &from_folder,
            &from_leaf,
            &to_folder,
            to_leaf,
            moving,
            replace,
            to,
        )?;
        crash_point::reach(CommitStep::MoveRenamed);
        Ok::<_, StorageError>((to_folder, records, there))
    });
    let (to_folder, records, replaced) = moved.ok_or(StorageError::InProgress)??;
    to_folder
        .sync()
        .map_err(StorageError::io("syncing the new name's folder"))?;
    from_folder
        .sync()
        .map_err(StorageError::io("syncing the old name's folder"))?;
    crash_point::reach(CommitStep::MoveSynced);
    for old in records {
        storage.digests.remove(&old);
    }
    if let Some(replaced) = replaced {
        storage.usage.release(replaced.size());
    }
    Ok(())
}

/// Writes the digest record of each file being moved under its new name; returns the old
/// names whose records are stale once the rename is done.
fn carry_records(
    storage: &Storage,
    from: &str,
    to: &str,
    moving: Kind,
    status: &Status,
) -> Vec<String> {
    let files = match moving {
        Kind::Folder => files_under(storage.root_folder(), from),
        _ => vec![(from.to_owned(), FileId::of(status))],
    };
    let mut old_names = Vec::with_capacity(files.len());
    for (old, id) in files {
        let new = format!("{to}{}", &old[from.len()..]);
        if let Some(digest) = storage.digests.recorded(&old, &id)
            && let Err(error) = storage.digests.put(&new, &id, &digest)
        {
            // Only a shortcut is lost: the next download computes the digest.
            tracing::warn!(name = new, "could not move a digest record: {error}");
        }
        old_names.push(old);
    }
    old_names
}

/// The rename itself: one `renameat2`, refusing to replace anything unless `replace` allows
/// it. On a file system without `RENAME_NOREPLACE`, a file is hard-linked to its new name and
/// its old name removed (a crash between the two leaves it under both names, never under
/// none); a folder is renamed after its new name was seen free, under the upload locks.
fn place(
    from_folder: &Folder,
    from_leaf: &str,
    to_folder: &Folder,
    to_leaf: &str,
    moving: Kind,
    replace: Replace,
    to: &str,
) -> Result<(), StorageError> {
    let taken = || StorageError::NameTaken {
        name: to.to_owned(),
        reason: "already exists (it appeared while moving); nothing was moved",
    };
    match from_folder.rename(from_leaf, to_folder, to_leaf, replace) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(taken()),
        Err(error) if replace == Replace::Never && is_unsupported(&error) => match moving {
            Kind::File => {
                from_folder
                    .link(from_leaf, to_folder, to_leaf)
                    .map_err(|error| match error.kind() {
                        io::ErrorKind::AlreadyExists => taken(),
                        _ => StorageError::io("linking a file to its new name")(error),
                    })?;
                from_folder
                    .remove(from_leaf)
                    .map_err(StorageError::io("removing a file's old name"))?;
                Ok(())
            }
            _ => from_folder
                .rename(from_leaf, to_folder, to_leaf, Replace::Allowed)
                .map_err(StorageError::io("renaming a folder")),
        },
        Err(error) => Err(match error.raw_os_error().map(Errno::from_raw_os_error) {
            Some(Errno::NOTEMPTY | Errno::ISDIR | Errno::NOTDIR) => taken(),
            _ => StorageError::io("renaming")(error),
        }),
    }
}

/// Whether a rename failed only because the file system has no `RENAME_NOREPLACE`.
fn is_unsupported(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(|code| {
        [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP]
            .iter()
            .any(|errno| errno.raw_os_error() == code)
    })
}
