//! One upload to the folder backend, from the decision to accept it to its commit, discard or
//! suspension.
//!
//! ```text
//!  PUT ─► begin: limits, name lock, resume point ─► PUT_READY(offset)
//!         data  ─► write to <key>.part ─► every checkpoint_interval: fdatasync, then <key>.ckpt
//!                      (on a thread of its own, while the next data keeps arriving)
//!         DONE, digest ok  ─► commit: fsync, digest record, rename into place, fsync folder ─► ACK
//!         DONE, digest bad ─► discard the staged data
//!         CANCEL / EOF / timeout / disk full / shutdown ─► suspend: last durable checkpoint kept
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};

use crate::config::ServerConfig;
use crate::digests::FileId;
use crate::error::StorageError;
use crate::locks::NameLock;
use crate::paths;
use crate::staging::{PartialKey, SavedState};
use crate::storage::Storage;
use crate::store::{Left, StagedUpload, Upload};
use crate::usage::free_space;

/// Stack of a checkpoint thread: it only syncs a file and writes a small one.
const CHECKPOINT_STACK: usize = 256 * 1024;

/// An upload under way to the folder backend. Its name is locked against other uploads until it
/// is dropped.
#[derive(Debug)]
pub(crate) struct FolderUpload {
    storage: Arc<Storage>,
    name: String,
    size: u64,
    tag: SourceTag,
    overwrite: bool,
    key: PartialKey,
    file: File,
    /// Bytes in the staged data file (all from offset 0).
    written: u64,
    /// Offset of the last checkpoint made durable.
    saved: u64,
    /// Offset of the last checkpoint started (`saved`, or the one `pending` is writing).
    requested: u64,
    /// A checkpoint being made durable on its own thread; it yields its offset.
    pending: Option<JoinHandle<io::Result<u64>>>,
    /// Hash state after the latest data the protocol handed out (and we wrote).
    latest: HashCheckpoint,
    fault_limit: Option<u64>,
    lock: NameLock,
}

/// Decides on a `PUT` whose size is within the file limit: checks the quota, the free space and
/// the name, locks the name, and finds where to resume. Returns the upload and the checkpoint
/// to accept it with.
pub(crate) fn begin(
    storage: Arc<Storage>,
    config: &ServerConfig,
    request: &PutRequest,
) -> Result<(Upload, HashCheckpoint), StorageError> {
    let name = request.name.as_str();
    storage.resolve(name)?;
    let key = PartialKey::new(name, &request.tag);
    let lock = storage.lock_name(name, &key)?;
    // Looked up again under the lock: taking a name over can wait for another upload to end.
    let resolved = storage.resolve(name)?;
    if resolved.existing.is_some() && !request.overwrite {
        return Err(StorageError::AlreadyExists);
    }
    let state = if request.resume {
        storage
            .staging
            .load(&key, name, &request.tag)
            .filter(|state| state.size == request.size)
    } else {
        None
    };
    if state.is_none() {
        storage.staging.forget_state(&key);
    }
    let checkpoint = state.map_or_else(HashCheckpoint::start, |state| state.checkpoint);
    let offset = checkpoint.offset();

    // Drop the partial's bytes past its checkpoint (they are not covered by the hash state),
    // then check the space for the rest before creating anything.
    let data_path = storage.staging.data_path(&key);
    if let Ok(existing) = OpenOptions::new().write(true).open(&data_path) {
        let old_len = existing.metadata().map(|m| m.len()).unwrap_or(0);
        existing
            .set_len(offset.min(old_len))
            .map_err(StorageError::io("truncating the staging file"))?;
        storage.usage.release(old_len.saturating_sub(offset));
    }
    let need = request.size - offset;
    let replaced = resolved.existing.as_ref().map_or(0, |meta| meta.len());
    storage.usage.reserve(need, replaced)?;
    let opened = free_space(storage.root())
        .map_err(StorageError::io("measuring free space"))
        .and_then(|free| {
            if need > free {
                Err(StorageError::DiskFull { need, free })
            } else {
                Ok(())
            }
        })
        .and_then(|()| open_staged(&data_path, offset));
    let file = match opened {
        Ok(file) => file,
        Err(error) => {
            storage.usage.release(need);
            return Err(error);
        }
    };
    let upload = FolderUpload {
        storage: Arc::clone(&storage),
        name: name.to_owned(),
        size: request.size,
        tag: request.tag,
        overwrite: request.overwrite,
        key,
        file,
        written: offset,
        saved: offset,
        requested: offset,
        pending: None,
        latest: checkpoint.clone(),
        fault_limit: config.fault_disk_full_after,
        lock,
    };
    Ok((Upload::new(name, offset, Box::new(upload)), checkpoint))
}

/// Opens (creating if needed) a staged data file, positioned to append at `offset`.
fn open_staged(path: &std::path::Path, offset: u64) -> Result<File, StorageError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(StorageError::io("opening the staging file"))?;
    file.set_len(offset)
        .map_err(StorageError::io("truncating the staging file"))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(StorageError::io("positioning in the staging file"))?;
    Ok(file)
}

impl StagedUpload for FolderUpload {
    fn is_superseded(&self) -> bool {
        self.lock.is_superseded()
    }

    /// Appends received file data to the staged file.
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let allowed = match self.fault_limit {
            Some(limit) => {
                usize::try_from(limit.saturating_sub(self.written)).unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        };
        let now = &data[..data.len().min(allowed)];
        let result = self.file.write_all(now);
        match result {
            Ok(()) => self.written += now.len() as u64,
            Err(error) => {
                // Learn how much did land, so no checkpoint ever claims more.
                self.written = self
                    .file
                    .stream_position()
                    .unwrap_or(self.saved)
                    .max(self.saved);
                return Err(StorageError::io("writing the staging file")(error));
            }
        }
        if now.len() < data.len() {
            let injected = io::Error::from(io::ErrorKind::StorageFull);
            return Err(StorageError::io("writing the staging file")(injected));
        }
        Ok(())
    }

    /// Records the protocol's hash state after the data written so far.
    fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.latest = checkpoint;
    }

    /// Whether enough data arrived since the last checkpoint started to start another.
    fn wants_checkpoint(&self, interval: u64) -> bool {
        self.latest.offset().saturating_sub(self.requested) >= interval.max(1)
    }

    /// Starts making the latest hash state a durable checkpoint on a thread of its own: the
    /// data is synced there and only then the state saved, so the checkpoint never claims bytes
    /// that are not durable, while the connection goes on receiving (a sync in line would stall
    /// it for as long as the disk takes). One runs at a time: if the last one is still running,
    /// this waits for it, so a resume never loses more than two intervals. A failure of an
    /// earlier one is reported here.
    fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        self.collect_checkpoint(false)?;
        let offset = self.latest.offset();
        if offset <= self.requested || offset > self.written {
            return Ok(());
        }
        self.collect_checkpoint(true)?;
        let file = self
            .file
            .try_clone()
            .map_err(StorageError::io("syncing the staging file"))?;
        let staging = self.storage.staging.clone();
        let key = self.key.clone();
        let state = self.saved_state();
        let spawned = thread::Builder::new()
            .name("ferry-checkpoint".into())
            .stack_size(CHECKPOINT_STACK)
            .spawn(move || {
                file.sync_data()?;
                staging.save(&key, &state)?;
                Ok(offset)
            });
        match spawned {
            Ok(handle) => {
                self.pending = Some(handle);
                self.requested = offset;
                Ok(())
            }
            // No thread to be had: checkpoint in line instead.
            Err(_) => self.checkpoint(),
        }
    }

    /// Leaves the upload resumable from its last durable checkpoint (making one of the latest
    /// state first if it can), trims the staged data to it, and stops reserving space it will
    /// not receive now.
    fn suspend(mut self: Box<Self>) -> Left {
        if let Err(error) = self.collect_checkpoint(true) {
            tracing::warn!(name = %self.name, "a checkpoint of an interrupted upload failed: {error}");
        }
        if let Err(error) = self.checkpoint() {
            tracing::warn!(name = %self.name, "could not checkpoint an interrupted upload: {error}");
        }
        if self.saved == 0 {
            return self.discard();
        }
        // Bytes past the checkpoint are not covered by the saved hash state: a resume would
        // drop them anyway, so free their space now.
        if self.file.set_len(self.saved).is_ok() {
            self.written = self.saved;
        }
        self.storage
            .usage
            .release(self.size - self.written.min(self.size));
        Left::Resumable(self.saved)
    }

    /// Deletes the staged data.
    fn discard(mut self: Box<Self>) -> Left {
        // A checkpoint still being written would otherwise land after the data is gone.
        let _ = self.collect_checkpoint(true);
        self.storage.staging.discard(&self.key);
        self.storage.usage.release(self.size);
        Left::Removed
    }

    /// Makes the verified upload durable and visible under its name.
    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        let committed = self.try_commit(digest);
        if committed.is_err() {
            // The suspension that follows keeps the last durable checkpoint, not a new one.
            self.latest = HashCheckpoint::start();
        }
        committed
    }
}

impl FolderUpload {
    /// Takes in the result of the checkpoint running on its own thread, if it has finished
    /// (or, with `wait`, once it has).
    fn collect_checkpoint(&mut self, wait: bool) -> Result<(), StorageError> {
        let Some(handle) = self.pending.take_if(|handle| wait || handle.is_finished()) else {
            return Ok(());
        };
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the checkpoint thread panicked")));
        match result {
            Ok(offset) => {
                self.saved = self.saved.max(offset);
                Ok(())
            }
            Err(error) => {
                self.requested = self.saved;
                Err(StorageError::io("saving an upload checkpoint")(error))
            }
        }
    }

    fn saved_state(&self) -> SavedState {
        SavedState {
            name: self.name.clone(),
            tag: self.tag,
            size: self.size,
            checkpoint: self.latest.clone(),
        }
    }

    /// Makes the data durable, then the latest hash state beside it, on this thread (after any
    /// checkpoint still running on its own).
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        self.collect_checkpoint(true)?;
        let offset = self.latest.offset();
        if offset <= self.saved || offset > self.written {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(StorageError::io("syncing the staging file"))?;
        self.storage
            .staging
            .save(&self.key, &self.saved_state())
            .map_err(StorageError::io("saving an upload checkpoint"))?;
        self.saved = offset;
        self.requested = offset;
        Ok(())
    }

    fn try_commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        if self.written != self.size {
            let short = io::Error::other("the staged data is not the declared size");
            return Err(StorageError::io("checking the staged data")(short));
        }
        self.collect_checkpoint(true)?;
        self.file
            .sync_all()
            .map_err(StorageError::io("syncing the staged data"))?;
        let meta = self
            .file
            .metadata()
            .map_err(StorageError::io("reading the staged data"))?;
        let target = self.storage.resolve(&self.name)?;
        if target.existing.is_some() && !self.overwrite {
            return Err(StorageError::AlreadyExists);
        }
        paths::create_parents(self.storage.root(), &self.name)?;
        if let Err(error) = self
            .storage
            .digests
            .put(&self.name, &FileId::of(&meta), digest)
        {
            tracing::warn!(name = %self.name, "could not record the digest (downloads will compute it): {error}");
        }
        let staged = self.storage.staging.data_path(&self.key);
        let replaced = if self.overwrite {
            let old = fs::symlink_metadata(&target.path)
                .map(|m| m.len())
                .unwrap_or(0);
            fs::rename(&staged, &target.path)
                .map_err(StorageError::io("renaming the upload into place"))?;
            old
        } else {
            // A hard link fails if the name exists: "create only if absent", atomically.
            match fs::hard_link(&staged, &target.path) {
                Ok(()) => {
                    let _ = fs::remove_file(&staged);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(StorageError::AlreadyExists);
                }
                // A file system without hard links: the name lock already keeps other uploads
                // away, so check and rename.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    if fs::symlink_metadata(&target.path).is_ok() {
                        return Err(StorageError::AlreadyExists);
                    }
                    fs::rename(&staged, &target.path)
                        .map_err(StorageError::io("renaming the upload into place"))?;
                }
                Err(error) => return Err(StorageError::io("linking the upload into place")(error)),
            }
            0
        };
        paths::sync_dir(paths::parent_of(&target.path))
            .map_err(StorageError::io("syncing the folder"))?;
        self.storage.staging.forget_state(&self.key);
        self.storage.usage.release(replaced);
        Ok(())
    }
}

impl Drop for FolderUpload {
    fn drop(&mut self) {
        // A checkpoint still being written lands before the name lock is released, so that a
        // newer connection resuming this upload never sees it change under its feet.
        let _ = self.collect_checkpoint(true);
    }
}
