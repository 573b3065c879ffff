//! Confined file access: everything under the storage root is reached through folder handles.
//!
//! A [`Folder`] is an open handle of a folder. Every file and folder ferryd touches under its
//! root is opened relative to such a handle with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, or, for a single name, with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`;
//! renames, links and removals act on (folder handle, single name) pairs. So the kernel itself
//! refuses, at the moment of each call, any path that would leave the root or pass through a
//! symbolic link: there is no check of a path followed later by a use of the same path, and a
//! local user who swaps a folder for a symbolic link while uploads run cannot redirect a read
//! or a write. (A local user who *moves* a real folder out of the root while a file is being
//! renamed into it moves that file with it: that is their own folder, not a redirection.)
//!
//! `rustix` makes the system calls; `openat2` needs Linux 5.6 or later.
//!
//! The server's own folders (`.ferry-staging`, `.ferry-meta`, the TLS state folder) are opened
//! with [`Folder::own_folder`]: created with mode 0700, and refused, with the path named, if
//! they are a symbolic link, not a folder, or owned by another user.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// How every multi-component path under a handle is resolved: never above the handle's folder,
/// never through a symbolic link (nor a `/proc` magic link).
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Mode of the server's own folders: its owner only.
pub(crate) const PRIVATE_FOLDER: u32 = 0o700;

/// Mode of folders made for clients' names (before the umask).
pub(crate) const SHARED_FOLDER: u32 = 0o755;

/// An open folder. Everything reached through it stays beneath it.
#[derive(Debug)]
pub(crate) struct Folder {
    fd: OwnedFd,
}

/// What a name is, looked at without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else (device, socket, pipe).
    Other,
}

/// The status of one entry, as `fstatat(AT_SYMLINK_NOFOLLOW)` or `fstat` gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status(Stat);

impl Status {
    /// The status of an open file.
    pub(crate) fn of(file: &impl AsFd) -> io::Result<Status> {
        Ok(Status(rustix::fs::fstat(file)?))
    }

    /// What kind of entry it is.
    pub(crate) fn kind(&self) -> Kind {
        match FileType::from_raw_mode(self.0.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Folder,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> u64 {
        u64::try_from(self.0.st_size).unwrap_or(0)
    }

    /// How many names the file has. A staged file with more than one is also visible somewhere.
    #[allow(
        clippy::useless_conversion,
        reason = "st_nlink is a u32 on some targets"
    )]
    pub(crate) fn links(&self) -> u64 {
        u64::from(self.0.st_nlink)
    }

    /// The user that owns it.
    pub(crate) fn owner(&self) -> u32 {
        self.0.st_uid
    }

    /// Permission bits.
    pub(crate) fn mode(&self) -> u32 {
        self.0.st_mode & 0o7777
    }

    /// The device and inode: which file this is, whatever its names.
    pub(crate) fn inode(&self) -> (u64, u64) {
        (self.0.st_dev, self.0.st_ino)
    }

    /// Last modification, in seconds and nanoseconds since the Unix epoch.
    pub(crate) fn modified(&self) -> (i64, i64) {
        (self.0.st_mtime, self.0.st_mtime_nsec as i64)
    }

    /// Last modification in milliseconds since the Unix epoch (0 before it).
    pub(crate) fn modified_ms(&self) -> u64 {
        let (secs, nanos) = self.modified();
        u64::try_from(secs)
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(u64::try_from(nanos / 1_000_000).unwrap_or(0))
    }
}

/// Whether a rename may replace an existing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Replace whatever file is there, atomically.
    Allowed,
    /// Fail with `AlreadyExists` if the name exists (`RENAME_NOREPLACE`), atomically.
    Never,
}

/// Why one of the server's own folders cannot be used. The server refuses to start on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFolderError {
    /// The path is a symbolic link, which ferryd never follows for its own folders.
    #[error(
        "{} is a symbolic link; ferryd keeps its own state there and does not follow links: \
         remove the link (ferryd makes the folder itself) or point the option at a real folder",
        path.display()
    )]
    Symlink {
        /// The folder.
        path: PathBuf,
    },
    /// The path exists and is not a folder.
    #[error("{} is not a folder; ferryd keeps its own state there: move it away", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The folder belongs to another user, who could read or change what ferryd keeps there.
    #[error(
        "{} is owned by user {owner}, not by user {me} that ferryd runs as: \
         give it to ferryd's user (chown) or remove it",
        path.display()
    )]
    NotOwned {
        /// The folder.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
        /// The user id ferryd runs as.
        me: u32,
    },
    /// The folder could not be created, opened or inspected.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl From<StateFolderError> for io::Error {
    fn from(error: StateFolderError) -> io::Error {
        let kind = match &error {
            StateFolderError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, error)
    }
}

impl Folder {
    /// Opens the folder at `path` (a path the operator gave, such as the storage root).
    pub(crate) fn open(path: &Path) -> io::Result<Folder> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder { fd })
    }

    /// The folder at `relative` ("a/b") beneath this one. Fails with `ELOOP` if any component
    /// is a symbolic link, `ENOTDIR` if one is not a folder, `ENOENT` if one is missing.
    pub(crate) fn folder(&self, relative: &str) -> io::Result<Folder> {
        let fd = rustix::fs::openat2(
            &self.fd,
            relative,
            // No O_NOFOLLOW: RESOLVE_NO_SYMLINKS refuses a last component that is a link too,
            // with ELOOP (O_NOFOLLOW would turn that into ENOTDIR).
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH,
        )?;
        Ok(Folder { fd })
    }

    /// The folders `components` beneath this one, creating those that are missing (with
    /// `mode`, each new entry made durable in its parent) and refusing symbolic links.
    pub(crate) fn folders(&self, components: &[&str], mode: u32) -> io::Result<Folder> {
        let mut current = self.folder(".")?;
        for component in components {
            current = match current.folder(component) {
                Ok(next) => next,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    current.make_folder(component, mode)?;
                    current.folder(component)?
                }
                Err(error) => return Err(error),
            };
        }
        Ok(current)
    }

    /// Creates the folder `name` here with `mode` unless something has that name; makes the
    /// new entry durable. Returns whether it made it.
    pub(crate) fn make_folder(&self, name: &str, mode: u32) -> io::Result<bool> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                self.sync()?;
                Ok(true)
            }
            Err(Errno::EXIST) => Ok(false),
            Err(errno) => Err(errno.into()),
        }
    }

    /// One of the server's own folders, `name` here (shown as `path` in errors): created with
    /// mode 0700 if missing; refused if it is a symbolic link, not a folder or another user's;
    /// given mode 0700 if it had a wider one.
    pub(crate) fn own_folder(&self, name: &str, path: &Path) -> Result<Folder, StateFolderError> {
        let io = |source: io::Error| StateFolderError::Io {
            path: path.to_owned(),
            source,
        };
        self.make_folder(name, PRIVATE_FOLDER).map_err(io)?;
        let folder = match self.folder(name) {
            Ok(folder) => folder,
            Err(error) => {
                return Err(match self.status(name) {
                    Ok(Some(status)) if status.kind() == Kind::Symlink => {
                        StateFolderError::Symlink {
                            path: path.to_owned(),
                        }
                    }
                    Ok(Some(status)) if status.kind() != Kind::Folder => {
                        StateFolderError::NotAFolder {
                            path: path.to_owned(),
                        }
                    }
                    _ => io(error),
                });
            }
        };
        folder.check_own(path)?;
        Ok(folder)
    }

    /// Refuses this folder unless ferryd's user owns it; narrows its mode to 0700.
    pub(crate) fn check_own(&self, path: &Path) -> Result<(), StateFolderError> {
        let status = Status::of(&self.fd).map_err(|source| StateFolderError::Io {
            path: path.to_owned(),
            source,
        })?;
        let me = rustix::process::geteuid().as_raw();
        if status.owner() != me {
            return Err(StateFolderError::NotOwned {
                path: path.to_owned(),
                owner: status.owner(),
                me,
            });
        }
        if status.mode() & 0o077 != 0 {
            rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(PRIVATE_FOLDER)).map_err(|e| {
                StateFolderError::Io {
                    path: path.to_owned(),
                    source: e.into(),
                }
            })?;
        }
        Ok(())
    }

    /// The status of `name` here, not following it; `None` if nothing has that name.
    pub(crate) fn status(&self, name: &str) -> io::Result<Option<Status>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Status(stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Opens the existing file `name` here for reading; fails with `ELOOP` on a symbolic link.
    /// Never waits: a FIFO put in a file's place opens at once (and is then no regular file).
    pub(crate) fn open_read(&self, name: &str) -> io::Result<File> {
        self.open_with(name, OFlags::RDONLY | OFlags::NONBLOCK, 0)
    }

    /// Opens the file `name` here for writing, creating it with `mode` if missing (never
    /// through a symbolic link), without truncating it.
    pub(crate) fn open_write(&self, name: &str, mode: u32) -> io::Result<File> {
        self.open_with(name, OFlags::WRONLY | OFlags::CREATE, mode)
    }

    /// Creates the file `name` here with `mode`; fails if anything has that name.
    pub(crate) fn create_new(&self, name: &str, mode: u32) -> io::Result<File> {
        self.open_with(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, mode)
    }

    fn open_with(&self, name: &str, flags: OFlags, mode: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    /// The whole content of the file `name` here, if it is at most `limit` bytes.
    pub(crate) fn read(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
        let file = self.open_read(name)?;
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file is larger than expected",
            ));
        }
        Ok(bytes)
    }

    /// Replaces the file `name` here by one holding `bytes`, written aside under a name of its
    /// own (ending in `.tmp`), made durable when `durable`, then renamed over; the aside file is
    /// removed if anything fails.
    pub(crate) fn write_atomically(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        durable: bool,
    ) -> io::Result<()> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let aside = format!(
            "{name}.{}.{}.tmp",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        );
        let written = self.create_new(&aside, mode).and_then(|mut file| {
            file.write_all(bytes)?;
            if durable {
                file.sync_data()?;
            }
            self.rename(&aside, self, name, Replace::Allowed)
        });
        if written.is_err() {
            let _ = self.remove(&aside);
        }
        written
    }

    /// Renames `from` here to `to` in `target`.
    pub(crate) fn rename(
        &self,
        from: &str,
        target: &Folder,
        to: &str,
        replace: Replace,
    ) -> io::Result<()> {
        let flags = match replace {
            Replace::Allowed => RenameFlags::empty(),
            Replace::Never => RenameFlags::NOREPLACE,
        };
        rustix::fs::renameat_with(&self.fd, from, &target.fd, to, flags)?;
        Ok(())
    }

    /// Gives the file `from` here a second name, `to` in `target` (fails if `to` exists).
    pub(crate) fn link(&self, from: &str, target: &Folder, to: &str) -> io::Result<()> {
        rustix::fs::linkat(&self.fd, from, &target.fd, to, AtFlags::empty())?;
        Ok(())
    }

    /// Removes the name `name` here (a file or symbolic link, never what a link points at).
    /// Returns whether there was one.
    pub(crate) fn remove(&self, name: &str) -> io::Result<bool> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The device and inode of this folder: which folder it is, whatever its path.
    pub(crate) fn identity(&self) -> io::Result<(u64, u64)> {
        Ok(Status::of(&self.fd)?.inode())
    }

    /// Makes this folder's entries (creations, renames, removals) durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd)?;
        Ok(())
    }

    /// The names in this folder (not `.` and `..`) with their kinds.
    pub(crate) fn entries(&self) -> io::Result<Vec<(OsString, Kind)>> {
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsString::from_vec(name.to_vec());
            let kind = match entry.file_type() {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Folder,
                FileType::Symlink => Kind::Symlink,
                FileType::Unknown => match name.to_str().map(|n| self.status(n)) {
                    Some(Ok(Some(status))) => status.kind(),
                    _ => Kind::Other,
                },
                _ => Kind::Other,
            };
            entries.push((name, kind));
        }
        Ok(entries)
    }

    /// Bytes available to this process on the file system holding this folder.
    pub(crate) fn free_space(&self) -> io::Result<u64> {
        let stat = rustix::fs::fstatvfs(&self.fd)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Sum of the sizes of the regular files beneath this folder (symbolic links not followed),
    /// skipping top-level entries for which `skip` is true.
    pub(crate) fn bytes_under(&self, skip: impl Fn(&str) -> bool) -> u64 {
        let mut total = 0u64;
        let mut pending = vec![String::new()];
        while let Some(relative) = pending.pop() {
            let folder = if relative.is_empty() {
                self.folder(".")
            } else {
                self.folder(&relative)
            };
            let Ok(folder) = folder else { continue };
            let Ok(entries) = folder.entries() else {
                continue;
            };
            for (name, kind) in entries {
                let Some(name) = name.to_str() else { continue };
                if relative.is_empty() && skip(name) {
                    continue;
                }
                match kind {
                    Kind::Folder if relative.is_empty() => pending.push(name.to_owned()),
                    Kind::Folder => pending.push(format!("{relative}/{name}")),
                    Kind::File => {
                        if let Ok(Some(status)) = folder.status(name) {
                            total = total.saturating_add(status.size());
                        }
                    }
                    Kind::Symlink | Kind::Other => {}
                }
            }
        }
        total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_symlinked_folder_anywhere_on_the_way_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        symlink(outside.path(), root.path().join("a/link")).unwrap();
        let folder = Folder::open(root.path()).unwrap();
        let error = folder.folder("a/link").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(Errno::LOOP.raw_os_error()));
        let error = folder
            .folders(&["a", "link", "b"], SHARED_FOLDER)
            .unwrap_err();
        assert_eq!(error.raw_os_error(), Some(Errno::LOOP.raw_os_error()));
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn paths_above_the_folder_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("inner")).unwrap();
        let folder = Folder::open(&root.path().join("inner")).unwrap();
        assert!(folder.folder("..").is_err());
        assert!(folder.folder("/tmp").is_err());
    }

    #[test]
    fn a_symlink_as_the_last_name_is_neither_opened_nor_written_through() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        std::fs::write(&target, b"outside").unwrap();
        symlink(&target, root.path().join("file")).unwrap();
        let folder = Folder::open(root.path()).unwrap();
        assert!(folder.open_read("file").is_err());
        assert!(folder.open_write("file", 0o600).is_err());
        assert_eq!(
            folder.status("file").unwrap().unwrap().kind(),
            Kind::Symlink
        );
        assert!(folder.remove("file").unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"outside");
    }

    #[test]
    fn a_rename_that_must_not_replace_refuses_an_existing_name() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a"), b"new").unwrap();
        std::fs::write(root.path().join("b"), b"old").unwrap();
        let folder = Folder::open(root.path()).unwrap();
        let error = folder
            .rename("a", &folder, "b", Replace::Never)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(root.path().join("b")).unwrap(), b"old");
        folder.rename("a", &folder, "c", Replace::Never).unwrap();
        assert_eq!(std::fs::read(root.path().join("c")).unwrap(), b"new");
        assert_eq!(folder.status("c").unwrap().unwrap().links(), 1);
    }

    #[test]
    fn own_folders_are_made_private_and_symlinks_refused_with_their_path() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let folder = Folder::open(root.path()).unwrap();
        let made = folder
            .own_folder("state", &root.path().join("state"))
            .unwrap();
        assert_eq!(Status::of(&made.fd).unwrap().mode(), PRIVATE_FOLDER);

        std::fs::create_dir(root.path().join("wide")).unwrap();
        std::fs::set_permissions(
            root.path().join("wide"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let wide = folder
            .own_folder("wide", &root.path().join("wide"))
            .unwrap();
        assert_eq!(Status::of(&wide.fd).unwrap().mode(), PRIVATE_FOLDER);

        symlink(outside.path(), root.path().join("planted")).unwrap();
        let error = folder
            .own_folder("planted", &root.path().join("planted"))
            .unwrap_err();
        assert!(matches!(error, StateFolderError::Symlink { .. }), "{error}");
        assert!(
            error.to_string().contains("planted is a symbolic link"),
            "{error}"
        );

        std::fs::write(root.path().join("plain"), b"").unwrap();
        let error = folder
            .own_folder("plain", &root.path().join("plain"))
            .unwrap_err();
        assert!(
            matches!(error, StateFolderError::NotAFolder { .. }),
            "{error}"
        );
    }

    #[test]
    fn an_atomic_write_leaves_no_aside_file() {
        let root = tempfile::tempdir().unwrap();
        let folder = Folder::open(root.path()).unwrap();
        folder.write_atomically("rec", b"one", 0o600, true).unwrap();
        folder
            .write_atomically("rec", b"two", 0o600, false)
            .unwrap();
        assert_eq!(folder.read("rec", 16).unwrap(), b"two");
        assert!(
            folder.read("rec", 2).is_err(),
            "a size past the limit is refused"
        );
        let names: Vec<_> = folder
            .entries()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec![OsString::from("rec")]);
    }
}
