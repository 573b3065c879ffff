//! The folder backend: a storage root on this machine, with what clients see (files under
//! their names) and what they do not (staging, digest records), and the rules that keep the two
//! apart.

pub(crate) mod crash_point;
pub(crate) mod digests;
pub(crate) mod paths;
pub(crate) mod rename;
pub(crate) mod staging;
pub(crate) mod upload;
pub(crate) mod usage;

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};
use rustix::io::Errno;

use crate::config::ServerConfig;
use crate::confined::{Folder, Kind, Status};
use crate::store::PartialKey;
use crate::store::error::StorageError;
use crate::store::folder::digests::{DigestStore, FileId};
use crate::store::folder::usage::Usage;
use crate::store::locks::{NameLock, UploadLocks};
use crate::store::{Entry, FileContent, Held, OpenedFile, Store, Upload};
use paths::{META_DIR, Resolved, STAGING_DIR};
use staging::Staging;

/// How long a reconnecting client's upload waits for its old connection to stand down.
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The storage root and its bookkeeping. Shared by every connection.
#[derive(Debug)]
pub(crate) struct Storage {
    /// The root folder's path, for logs.
    path: PathBuf,
    /// The root folder's handle: every file is reached through it ([`crate::confined`]).
    root: Arc<Folder>,
    pub(crate) staging: Staging,
    pub(crate) digests: DigestStore,
    pub(crate) usage: Usage,
    locks: UploadLocks,
    /// Opened by a tool that only reads ([`Storage::open_read_only`]): every change is refused.
    read_only: bool,
    /// This storage itself, for the uploads and downloads it hands out to hold on to.
    me: Weak<Storage>,
}

impl Storage {
    /// Opens (creating if needed) the root of `config` and the server's own folders in it
    /// (refusing, with the path named, one that is a symbolic link, not a folder or another
    /// user's), repairs what a crash left in them, measures what it holds, and removes partial
    /// uploads past their age.
    pub(crate) fn open(config: &ServerConfig) -> io::Result<Arc<Storage>> {
        fs::create_dir_all(&config.root)?;
        let path = config.root.canonicalize()?;
        let root = Arc::new(Folder::open(&path)?);
        for own in [STAGING_DIR, META_DIR] {
            root.own_folder(own, &path.join(own))?;
        }
        let staging = Staging::new(Arc::clone(&root));
        let digests = DigestStore::new(Arc::clone(&root));
        digests.clean_temporaries().map_err(io::Error::other)?;
        staging.repair().map_err(io::Error::other)?;
        staging.sweep(config.staging_max_age, |key| staging.discard(key));
        let used = root
            .bytes_under(ferry_protocol::is_reserved)
            .saturating_add(staging.bytes());
        Ok(Arc::new_cyclic(|me| Storage {
            path,
            root,
            staging,
            digests,
            usage: Usage::new(used, config.quota),
            locks: UploadLocks::default(),
            read_only: false,
            me: me.clone(),
        }))
    }

    /// Opens the existing root of `config` for a tool that only reads it, possibly beside a
    /// live server (`ferryd scrub`): unlike [`Storage::open`] it creates nothing, repairs and
    /// sweeps nothing (a running server's staged uploads are left alone), measures nothing,
    /// and refuses uploads, removals and digest records. The server's own folders are not
    /// owner-checked, so the tool may run as another user that can read them; a digest folder
    /// that exists but cannot be opened is an error (rather than every file looking
    /// unrecorded).
    pub(crate) fn open_read_only(config: &ServerConfig) -> io::Result<Arc<Storage>> {
        let path = config.root.canonicalize()?;
        let root = Arc::new(Folder::open(&path)?);
        match root.folder(META_DIR) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                let meta = path.join(META_DIR);
                return Err(io::Error::new(
                    error.kind(),
                    format!(
                        "cannot open the digest records in {}: {error}",
                        meta.display()
                    ),
                ));
            }
        }
        Ok(Arc::new_cyclic(|me| Storage {
            path,
            staging: Staging::new(Arc::clone(&root)),
            digests: DigestStore::read_only(Arc::clone(&root)),
            root,
            usage: Usage::new(0, None),
            locks: UploadLocks::default(),
            read_only: true,
            me: me.clone(),
        }))
    }

    /// The refusal of a change to a storage opened read-only.
    fn refuse_if_read_only(&self, during: &'static str) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::io(during)(
                io::ErrorKind::ReadOnlyFilesystem.into(),
            ));
        }
        Ok(())
    }

    /// The canonical root folder's path.
    pub(crate) fn root(&self) -> &Path {
        &self.path
    }

    /// The root folder's handle.
    pub(crate) fn root_folder(&self) -> &Folder {
        &self.root
    }

    /// Resolves a client's name strictly inside the root.
    pub(crate) fn resolve(&self, name: &str) -> Result<Resolved, StorageError> {
        paths::resolve(&self.root, name)
    }

    /// Marks an upload to `name` as under way, or fails with `InProgress` if another one is
    /// (see [`crate::store::locks`] for how a reconnecting client takes its own upload back).
    pub(crate) fn lock_name(&self, name: &str, key: &PartialKey) -> Result<NameLock, StorageError> {
        self.locks.lock(name, key, TAKEOVER_WAIT)
    }

    /// Runs `f` unless an upload under way holds a name for which `busy` is true, with no
    /// upload able to start meanwhile; `None` if one is under way.
    pub(crate) fn locks_unless_any<T>(
        &self,
        busy: impl Fn(&str) -> bool,
        f: impl FnOnce() -> T,
    ) -> Option<T> {
        self.locks.unless_any(busy, f)
    }

    /// The recorded digest of the file `leaf` in `folder`, if it is still the version
    /// `existing` (a file replaced meanwhile has none here).
    fn stored_digest(
        &self,
        name: &str,
        folder: &Folder,
        leaf: &str,
        existing: &Status,
    ) -> Option<Digest> {
        let file = folder.open_read(leaf).ok()?;
        let id = FileId::of(&Status::of(&file).ok()?);
        (id == FileId::of(existing)).then(|| self.digests.get(name, &file, &id))?
    }

    /// This storage as the shared handle uploads and downloads keep.
    fn arc(&self) -> Result<Arc<Storage>, StorageError> {
        self.me.upgrade().ok_or(StorageError::ShuttingDown)
    }
}

impl Store for Storage {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        self.refuse_if_read_only("starting an upload")?;
        upload::begin(self.arc()?, config, request)
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let not_found = || StorageError::NotFound(name.to_owned());
        let Resolved {
            folder: Some(folder),
            leaf,
            existing: Some(_),
        } = self.resolve(name)?
        else {
            return Err(not_found());
        };
        let file = match folder.open_read(&leaf) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            // Replaced by a symbolic link since it was looked at: never followed.
            Err(error) if error.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                return Err(not_found());
            }
            Err(error) => return Err(StorageError::io("opening a file to send")(error)),
        };
        // From here on the handle is the version sent, even if the name is replaced.
        let status = Status::of(&file).map_err(StorageError::io("reading a file's metadata"))?;
        if status.kind() != Kind::File {
            return Err(not_found());
        }
        let id = FileId::of(&status);
        Ok(OpenedFile {
            digest: self.digests.get(name, &file, &id),
            size: status.size(),
            content: Box::new(FolderFile {
                file,
                id,
                name: name.to_owned(),
                storage: self.arc()?,
            }),
        })
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        self.refuse_if_read_only("removing a file")?;
        let Resolved {
            folder: Some(folder),
            leaf,
            existing: Some(status),
        } = self.resolve(name)?
        else {
            return Err(StorageError::NotFound(name.to_owned()));
        };
        match folder.remove(&leaf) {
            Ok(true) => {}
            Ok(false) => return Err(StorageError::NotFound(name.to_owned())),
            Err(error) => return Err(StorageError::io("removing a file")(error)),
        }
        self.digests.remove(name);
        folder
            .sync()
            .map_err(StorageError::io("syncing a folder"))?;
        self.usage.release(status.size());
        Ok(status.size())
    }

    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        self.refuse_if_read_only("moving a file")?;
        rename::rename(self, from, to, overwrite)
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        let resolved = self.resolve(name)?;
        let stored = resolved.existing.as_ref().map(Status::size);
        let digest = match (&resolved.folder, &resolved.existing) {
            (Some(folder), Some(existing)) => {
                self.stored_digest(name, folder, &resolved.leaf, existing)
            }
            _ => None,
        };
        let key = PartialKey::new(name, tag);
        let partial = self
            .staging
            .load(&key, name, tag)
            .map(|state| state.checkpoint.offset());
        Ok(Held {
            stored_size: stored,
            stored_digest: digest,
            partial_offset: partial,
        })
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        // Walk only the deepest folder the prefix names in full.
        let start = match prefix.rfind('/') {
            Some(end) => {
                let folder = &prefix[..end];
                if self.root.folder(folder).is_err() {
                    return Ok(());
                }
                folder.to_owned()
            }
            None => String::new(),
        };
        let mut entries = Vec::new();
        let mut pending = vec![start];
        while let Some(relative) = pending.pop() {
            let folder = if relative.is_empty() {
                self.root.folder(".")
            } else {
                self.root.folder(&relative)
            };
            let listed = folder.and_then(|folder| Ok((folder.entries()?, folder)));
            let (names, folder) = match listed {
                Ok(listed) => listed,
                Err(error) if relative.is_empty() => {
                    return Err(StorageError::io("listing the root")(error));
                }
                // A folder removed or replaced meanwhile: nothing of it to list.
                Err(_) => continue,
            };
            for (file_name, kind) in names {
                let Some(file_name) = file_name.to_str() else {
                    continue;
                };
                if relative.is_empty() && ferry_protocol::is_reserved(file_name) {
                    continue;
                }
                let name = if relative.is_empty() {
                    file_name.to_owned()
                } else {
                    format!("{relative}/{file_name}")
                };
                match kind {
                    Kind::Folder
                        if name.starts_with(prefix) || prefix.starts_with(&format!("{name}/")) =>
                    {
                        pending.push(name);
                    }
                    Kind::File
                        if name.starts_with(prefix)
                            && ferry_protocol::validate_name(&name).is_ok() =>
                    {
                        let Ok(Some(status)) = folder.status(file_name) else {
                            continue;
                        };
                        entries.push(Entry {
                            name,
                            size: status.size(),
                            modified_ms: status.modified_ms(),
                        });
                    }
                    _ => {}
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let _ = page(&entries);
        Ok(())
    }

    fn sweep_staging(&self, max_age: Duration) {
        if self.read_only {
            return;
        }
        let freed = self.staging.sweep(max_age, |key| {
            // No upload can start using the files while they are removed.
            self.locks
                .unless_busy(key, || self.staging.discard(key))
                .unwrap_or(0)
        });
        self.usage.release(freed);
    }

    /// ext4 and its kin join fsyncs that run together into one journal flush.
    fn commits_in_parallel(&self) -> bool {
        true
    }
}

/// A stored file opened for download: the open handle is the version sent, even if the name is
/// replaced meanwhile.
struct FolderFile {
    file: File,
    id: FileId,
    name: String,
    storage: Arc<Storage>,
}

impl FileContent for FolderFile {
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        // A handle of its own on the same open file: the same version, whatever the name
        // holds now.
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file))
    }

    fn remember_digest(&self, digest: &Digest) {
        if let Ok(Resolved {
            existing: Some(status),
            ..
        }) = self.storage.resolve(&self.name)
            && FileId::of(&status) == self.id
        {
            let _ = self
                .storage
                .digests
                .attach(&self.name, &self.file, &self.id, digest);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn staged_files(root: &std::path::Path) -> usize {
        fs::read_dir(root.join(STAGING_DIR)).unwrap().count()
    }

    #[test]
    fn a_small_eager_upload_makes_no_file_before_its_commit_and_leaves_none_when_cut() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path().join("root"));
        let storage = Storage::open(&config).unwrap();
        let data = vec![7u8; 10_000];
        let request = |name: &str, tag| PutRequest {
            name: name.into(),
            size: data.len() as u64,
            overwrite: false,
            resume: false,
            tag: SourceTag([tag; 16]),
            eager: true,
            streamed: false,
        };
        let (mut upload, _) = storage.begin_upload(&config, &request("a", 1)).unwrap();
        upload.write(&data).unwrap();
        assert_eq!(
            staged_files(&config.root),
            0,
            "held in memory until the commit"
        );
        upload.commit(&Digest::of(&data)).unwrap();
        assert_eq!(fs::read(config.root.join("a")).unwrap(), data);
        assert_eq!(staged_files(&config.root), 0);

        let (mut cut, _) = storage.begin_upload(&config, &request("b", 2)).unwrap();
        cut.write(&data[..6000]).unwrap();
        assert_eq!(
            cut.suspend(),
            crate::store::Left::Removed,
            "nothing durable to resume from"
        );
        assert_eq!(staged_files(&config.root), 0);
        assert!(!config.root.join("b").exists());
        // The name is free again, and its space no longer reserved.
        let (again, _) = storage.begin_upload(&config, &request("b", 2)).unwrap();
        again.discard();
    }

    #[test]
    fn a_read_only_open_makes_nothing_and_refuses_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path().join("root"));
        assert!(
            Storage::open_read_only(&config).is_err(),
            "no root, no store"
        );
        assert!(!config.root.exists(), "the root is not made");

        fs::create_dir(&config.root).unwrap();
        fs::write(config.root.join("kept"), b"bytes").unwrap();
        let storage = Storage::open_read_only(&config).unwrap();
        let request = PutRequest {
            name: "new".into(),
            size: 1,
            overwrite: false,
            resume: true,
            tag: SourceTag([1; 16]),
            eager: false,
            streamed: false,
        };
        assert!(storage.begin_upload(&config, &request).is_err());
        assert!(storage.remove("kept").is_err());
        storage.sweep_staging(Duration::ZERO);
        let opened = storage.open_for_download("kept").unwrap();
        assert_eq!((opened.size, opened.digest), (5, None));
        opened.content.remember_digest(&Digest::of(b"bytes"));

        let mut left: Vec<_> = fs::read_dir(&config.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["kept"], "no staging or digest folder made");
        assert_eq!(fs::read(config.root.join("kept")).unwrap(), b"bytes");
    }
}
