//! The folder backend: a storage root on this machine, with what clients see (files under
//! their names) and what they do not (staging, digest records), and the rules that keep the two
//! apart.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};

use crate::config::ServerConfig;
use crate::digests::{DigestStore, FileId};
use crate::error::StorageError;
use crate::locks::{NameLock, UploadLocks};
use crate::paths::{self, META_DIR, RESERVED_PREFIX, Resolved, STAGING_DIR};
use crate::staging::{PartialKey, Staging};
use crate::store::{Entry, FileContent, Held, OpenedFile, Store, Upload};
use crate::upload;
use crate::usage::{Usage, bytes_under};

/// How long a reconnecting client's upload waits for its old connection to stand down.
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The storage root and its bookkeeping. Shared by every connection.
#[derive(Debug)]
pub(crate) struct Storage {
    root: PathBuf,
    pub(crate) staging: Staging,
    pub(crate) digests: DigestStore,
    pub(crate) usage: Usage,
    locks: UploadLocks,
    /// This storage itself, for the uploads and downloads it hands out to hold on to.
    me: Weak<Storage>,
}

impl Storage {
    /// Opens (creating if needed) the root of `config`, measures what it holds, and removes
    /// partial uploads past their age and leftovers of interrupted writes.
    pub(crate) fn open(config: &ServerConfig) -> io::Result<Arc<Storage>> {
        fs::create_dir_all(&config.root)?;
        let root = config.root.canonicalize()?;
        let staging_dir = root.join(STAGING_DIR);
        let meta_dir = root.join(META_DIR);
        fs::create_dir_all(&staging_dir)?;
        fs::create_dir_all(&meta_dir)?;
        let staging = Staging::new(staging_dir);
        let digests = DigestStore::new(meta_dir);
        digests.clean_temporaries();
        staging.clean_temporaries();
        staging.sweep(config.staging_max_age, |key| staging.discard(key));
        let used = visible_bytes(&root).saturating_add(bytes_under(staging.dir()));
        Ok(Arc::new_cyclic(|me| Storage {
            root,
            staging,
            digests,
            usage: Usage::new(used, config.quota),
            locks: UploadLocks::default(),
            me: me.clone(),
        }))
    }

    /// The canonical root folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a client's name strictly inside the root.
    pub(crate) fn resolve(&self, name: &str) -> Result<Resolved, StorageError> {
        paths::resolve(&self.root, name)
    }

    /// Marks an upload to `name` as under way, or fails with `InProgress` if another one is
    /// (see [`crate::locks`] for how a reconnecting client takes its own upload back).
    pub(crate) fn lock_name(&self, name: &str, key: &PartialKey) -> Result<NameLock, StorageError> {
        self.locks.lock(name, key, TAKEOVER_WAIT)
    }

    /// This storage as the shared handle uploads and downloads keep.
    fn arc(&self) -> Result<Arc<Storage>, StorageError> {
        self.me.upgrade().ok_or(StorageError::ShuttingDown)
    }
}

impl Store for Storage {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        upload::begin(self.arc()?, config, request)
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let resolved = self.resolve(name)?;
        if resolved.existing.is_none() {
            return Err(StorageError::NotFound(name.to_owned()));
        }
        let file = match File::open(&resolved.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(name.to_owned()));
            }
            Err(error) => return Err(StorageError::io("opening a file to send")(error)),
        };
        // From here on the handle is the version sent, even if the name is replaced.
        let meta = file
            .metadata()
            .map_err(StorageError::io("reading a file's metadata"))?;
        if !meta.is_file() {
            return Err(StorageError::NotFound(name.to_owned()));
        }
        let id = FileId::of(&meta);
        Ok(OpenedFile {
            digest: self.digests.get(name, &id),
            size: meta.len(),
            content: Box::new(FolderFile {
                file,
                id,
                name: name.to_owned(),
                storage: self.arc()?,
            }),
        })
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        let resolved = self.resolve(name)?;
        let Some(meta) = resolved.existing else {
            return Err(StorageError::NotFound(name.to_owned()));
        };
        match fs::remove_file(&resolved.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(name.to_owned()));
            }
            Err(error) => return Err(StorageError::io("removing a file")(error)),
        }
        self.digests.remove(name);
        paths::sync_dir(paths::parent_of(&resolved.path))
            .map_err(StorageError::io("syncing a folder"))?;
        self.usage.release(meta.len());
        Ok(meta.len())
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        let resolved = self.resolve(name)?;
        let stored = resolved.existing.as_ref().map(|meta| meta.len());
        let digest = resolved
            .existing
            .as_ref()
            .and_then(|meta| self.digests.get(name, &FileId::of(meta)));
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
                match fs::symlink_metadata(self.root.join(folder)) {
                    Ok(meta) if meta.is_dir() => folder.to_owned(),
                    _ => return Ok(()),
                }
            }
            None => String::new(),
        };
        let mut entries = Vec::new();
        let mut pending = vec![start];
        while let Some(folder) = pending.pop() {
            let dir = if folder.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&folder)
            };
            let read = match fs::read_dir(&dir) {
                Ok(read) => read,
                Err(error) if folder.is_empty() => {
                    return Err(StorageError::io("listing the root")(error));
                }
                Err(_) => continue,
            };
            for entry in read.flatten() {
                let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if folder.is_empty() && file_name.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let name = if folder.is_empty() {
                    file_name
                } else {
                    format!("{folder}/{file_name}")
                };
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if name.starts_with(prefix) || prefix.starts_with(&format!("{name}/")) {
                        pending.push(name);
                    }
                } else if kind.is_file()
                    && name.starts_with(prefix)
                    && ferry_protocol::validate_name(&name).is_ok()
                {
                    let Ok(meta) = entry.metadata() else { continue };
                    entries.push(Entry {
                        name,
                        size: meta.len(),
                        modified_ms: modified_ms(meta.modified().ok()),
                    });
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let _ = page(&entries);
        Ok(())
    }

    fn sweep_staging(&self, max_age: Duration) {
        let freed = self.staging.sweep(max_age, |key| {
            // No upload can start using the files while they are removed.
            self.locks
                .unless_busy(key, || self.staging.discard(key))
                .unwrap_or(0)
        });
        self.usage.release(freed);
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
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        self.file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(&mut self.file))
    }

    fn remember_digest(&self, digest: &Digest) {
        if let Ok(Resolved {
            existing: Some(meta),
            ..
        }) = self.storage.resolve(&self.name)
            && FileId::of(&meta) == self.id
        {
            let _ = self.storage.digests.put(&self.name, &self.id, digest);
        }
    }
}

fn modified_ms(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Bytes of the visible files under `root` (everything but the reserved folders).
fn visible_bytes(root: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(root) else {
        return 0;
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(RESERVED_PREFIX)
        {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            total = total.saturating_add(bytes_under(&entry.path()));
        } else if kind.is_file() {
            total = total.saturating_add(entry.metadata().map(|m| m.len()).unwrap_or(0));
        }
    }
    total
}
