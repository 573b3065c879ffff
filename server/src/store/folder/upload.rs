//! One upload to the folder backend, from the decision to accept it to its commit, discard or
//! suspension.
//!
//! ```text
//!  PUT ─► begin: limits, name lock, resume point ─► PUT_READY(offset)
//!         data  ─► write to <key>.part ─► every checkpoint_interval: fdatasync, then <key>.ckpt
//!                      (on a thread of its own, while the next data keeps arriving)
//!         DONE, digest ok  ─► commit: fsync, digest record, rename into place, fsync folder ─► ACK
//!                      (the rename must not replace a name unless the client asked to overwrite:
//!                       RENAME_NOREPLACE; a visible name never shares its file with a staged one)
//!         DONE, digest bad ─► discard the staged data
//!         CANCEL / EOF / timeout / disk full / shutdown ─► suspend: last durable checkpoint kept
//!
//!  eager PUT of ≤ 1 MiB (version 2) ─► data held in memory ─► commit: the staging file is made
//!         and written first, then the same steps; interrupted, nothing is kept (never resumed)
//! ```
//!
//! A streamed upload (size unknown until its `DONE_SIZED`) takes the same path without the
//! checkpoints: its quota is reserved a write at a time, a full disk shows as the write's
//! `ENOSPC`, and whatever ends it short of its commit discards it ([`Upload::suspend`]).

use std::fs::File;
use std::io::{self, Seek, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};
use rustix::io::Errno;

use crate::config::ServerConfig;
use crate::confined::{Folder, Replace, Status};
use crate::store::PartialKey;
use crate::store::error::StorageError;
use crate::store::folder::Storage;
use crate::store::folder::crash_point::{self, CommitStep};
use crate::store::folder::digests::FileId;
use crate::store::folder::paths;
use crate::store::folder::staging::{SavedState, Staging};
use crate::store::locks::{NameLock, Waker};
use crate::store::progress::Progress;
use crate::store::{Left, OwedSync, StagedUpload, Upload};

/// Stack of a checkpoint thread: it only syncs a file and writes a small one.
const CHECKPOINT_STACK: usize = 256 * 1024;

/// Largest upload held in memory until its commit (see [`FolderUpload::buffer`]).
const BUFFERED_MAX: u64 = 1 << 20;

/// An upload under way to the folder backend. Its name is locked against other uploads until it
/// is dropped.
#[derive(Debug)]
pub(crate) struct FolderUpload {
    storage: Arc<Storage>,
    name: String,
    /// The declared size; for a streamed upload, the bytes reserved so far (it grows with
    /// each write).
    size: u64,
    /// A streamed upload: no checkpoints, quota reserved as the data arrives.
    streamed: bool,
    /// Bytes of the file the upload will replace, credited against the quota.
    replaced: u64,
    tag: SourceTag,
    overwrite: bool,
    key: PartialKey,
    /// The staging folder holding the data, as opened when the upload began.
    staging: Arc<Folder>,
    /// The staged data file; `None` while the bytes are held in `buffer`.
    file: Option<File>,
    /// The bytes of a small upload sent eagerly (protocol version 2, never resumed), held in
    /// memory until its commit: the staging file is then made, written, synced and renamed on
    /// the commit pool, with the other uploads of its group, so that the connection reading the
    /// next uploads never waits on the file system. At most [`BUFFERED_MAX`] per upload, and
    /// only the uploads of one burst of input wait for a commit at a time.
    buffer: Vec<u8>,
    /// Whether the data has been given its visible name: from then on it is never written,
    /// truncated or removed through this upload.
    published: bool,
    /// Bytes staged and checkpoints (a checkpoint started and not yet durable is `pending`).
    progress: Progress,
    /// A checkpoint being made durable on its own thread; it yields its offset.
    pending: Option<JoinHandle<io::Result<u64>>>,
    /// The test-only full disk: staged data may not grow past this many bytes.
    #[cfg(feature = "faults")]
    fault_limit: Option<u64>,
    lock: NameLock,
}

/// Decides on a `PUT` whose size is within the file limit: checks the quota, the free space and
/// the name, locks the name, and finds where to resume. Returns the upload and the checkpoint
/// to accept it with.
pub(crate) fn begin(
    storage: Arc<Storage>,
    // Read only for the test-only full disk (feature `faults`).
    #[cfg_attr(not(feature = "faults"), allow(unused_variables))] config: &ServerConfig,
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

    // Check the space for the rest before touching the staged data; then drop its bytes past
    // the checkpoint (they are not covered by the hash state).
    let staging = Arc::new(storage.staging.folder()?);
    let need = request.size - offset;
    let replaced = resolved.existing.as_ref().map_or(0, Status::size);
    storage.usage.reserve(need, replaced)?;
    let opened = storage
        .root_folder()
        .free_space()
        .map_err(StorageError::io("measuring free space"))
        .and_then(|free| {
            if need > free {
                Err(StorageError::DiskFull { need, free })
            } else {
                Ok(())
            }
        })
        .and_then(|()| {
            if request.eager && request.size <= BUFFERED_MAX {
                return Ok(None);
            }
            Staging::open_data(&staging, &key, offset).map(Some)
        });
    let file = match opened {
        Ok(Some((file, old_len))) => {
            storage.usage.release(old_len.saturating_sub(offset));
            Some(file)
        }
        Ok(None) => None,
        Err(error) => {
            storage.usage.release(need);
            return Err(error);
        }
    };
    let upload = FolderUpload {
        storage: Arc::clone(&storage),
        name: name.to_owned(),
        size: request.size,
        streamed: request.streamed,
        replaced,
        tag: request.tag,
        overwrite: request.overwrite,
        key,
        staging,
        file,
        buffer: Vec::new(),
        published: false,
        progress: Progress::new(&checkpoint, !request.streamed),
        pending: None,
        #[cfg(feature = "faults")]
        fault_limit: config.fault_disk_full_after,
        lock,
    };
    Ok((Upload::new(name, offset, Box::new(upload)), checkpoint))
}

impl StagedUpload for FolderUpload {
    fn is_superseded(&self) -> bool {
        self.lock.is_superseded()
    }

    fn when_superseded(&self, wake: Waker) {
        self.lock.when_superseded(wake);
    }

    /// Appends received file data to the staged file (for a streamed upload, once the quota
    /// allows it).
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if self.streamed {
            let len = data.len() as u64;
            self.storage.usage.reserve(len, self.replaced)?;
            self.size += len;
        }
        #[cfg(feature = "faults")]
        let now = match self.fault_limit {
            Some(limit) => {
                let allowed = usize::try_from(limit.saturating_sub(self.progress.written))
                    .unwrap_or(usize::MAX);
                &data[..data.len().min(allowed)]
            }
            None => data,
        };
        #[cfg(not(feature = "faults"))]
        let now = data;
        let Some(file) = self.file.as_mut() else {
            self.buffer.extend_from_slice(now);
            self.progress.written += now.len() as u64;
            return cut_short(now.len(), data.len());
        };
        match file.write_all(now) {
            Ok(()) => self.progress.written += now.len() as u64,
            Err(error) => {
                // Learn how much did land, so no checkpoint ever claims more.
                self.progress.written = file
                    .stream_position()
                    .unwrap_or(self.progress.saved)
                    .max(self.progress.saved);
                return Err(StorageError::io("writing the staging file")(error));
            }
        }
        cut_short(now.len(), data.len())
    }

    /// Records the protocol's hash state after the data written so far.
    fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.progress.note(checkpoint);
    }

    /// Whether enough data arrived since the last checkpoint started to start another (never
    /// for an upload held in memory, nothing of which is durable before its commit, nor for a
    /// streamed upload, which cannot be resumed).
    fn wants_checkpoint(&self, interval: u64) -> bool {
        self.file.is_some() && self.progress.wants_checkpoint(interval)
    }

    /// Starts making the latest hash state a durable checkpoint on a thread of its own: the
    /// data is synced there and only then the state saved, so the checkpoint never claims bytes
    /// that are not durable, while the connection goes on receiving (a sync in line would stall
    /// it for as long as the disk takes). One runs at a time: if the last one is still running,
    /// this waits for it, so a resume never loses more than two intervals. A failure of an
    /// earlier one is reported here.
    fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        self.collect_checkpoint(false)?;
        let Some(offset) = self.progress.due_after(self.progress.requested) else {
            return Ok(());
        };
        self.collect_checkpoint(true)?;
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let file = file
            .try_clone()
            .map_err(StorageError::io("syncing the staging file"))?;
        let staging = Arc::clone(&self.staging);
        let key = self.key.clone();
        let state = self.saved_state();
        let spawned = thread::Builder::new()
            .name("ferry-checkpoint".into())
            .stack_size(CHECKPOINT_STACK)
            .spawn(move || {
                file.sync_data()?;
                Staging::save(&staging, &key, &state)?;
                Ok(offset)
            });
        match spawned {
            Ok(handle) => {
                self.pending = Some(handle);
                self.progress.requested = offset;
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
        if self.published {
            // The data has its visible name (a later commit step failed): nothing staged is left.
            return Left::Removed;
        }
        if self.file.is_none() {
            // Held in memory: nothing of it is durable to resume from.
            return self.discard();
        }
        if let Err(error) = self.collect_checkpoint(true) {
            tracing::warn!(name = %self.name, "a checkpoint of an interrupted upload failed: {error}");
        }
        // Bytes past the latest hash state are not covered by it: free them first, so that on
        // a full disk the checkpoint itself finds room.
        let latest = self.progress.latest().offset();
        if latest >= self.progress.saved
            && latest < self.progress.written
            && self
                .file
                .as_ref()
                .is_some_and(|file| file.set_len(latest).is_ok())
        {
            self.progress.written = latest;
        }
        if let Err(error) = self.checkpoint() {
            tracing::warn!(name = %self.name, "could not checkpoint an interrupted upload: {error}");
        }
        if self.progress.saved == 0 {
            return self.discard();
        }
        // Bytes past the checkpoint are not covered by the saved hash state: a resume would
        // drop them anyway, so free their space now.
        if self
            .file
            .as_ref()
            .is_some_and(|file| file.set_len(self.progress.saved).is_ok())
        {
            self.progress.written = self.progress.saved;
        }
        self.storage
            .usage
            .release(self.size - self.progress.written.min(self.size));
        Left::Resumable(self.progress.saved)
    }

    /// Deletes the staged data.
    fn discard(mut self: Box<Self>) -> Left {
        // A checkpoint still being written would otherwise land after the data is gone.
        let _ = self.collect_checkpoint(true);
        if !self.published {
            self.storage.staging.discard(&self.key);
            self.storage.usage.release(self.size);
        }
        Left::Removed
    }

    /// Makes the verified upload durable and visible under its name.
    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        self.commit_owing_sync(digest)?
            .map_or(Ok(()), |owed| owed.sync())
    }

    /// Makes the verified upload visible under its name, durable once the returned sync of
    /// its folder is made.
    fn commit_owing_sync(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<Box<dyn OwedSync>>, StorageError> {
        match self.place_verified(digest) {
            Ok(folder) => Ok(Some(Box::new(FolderSync::new(folder)?))),
            Err(error) => {
                // The suspension that follows keeps the last durable checkpoint, not a new one.
                self.progress.forget_latest();
                Err(error)
            }
        }
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
                self.progress.saved_at(offset);
                Ok(())
            }
            Err(error) => {
                self.progress.requested = self.progress.saved;
                Err(StorageError::io("saving an upload checkpoint")(error))
            }
        }
    }

    /// The staged data file, made now and given the bytes held in memory if there is none yet.
    fn staged_file(&mut self) -> Result<&File, StorageError> {
        if self.file.is_none() {
            let (mut file, _) = Staging::open_data(&self.staging, &self.key, 0)?;
            file.write_all(&self.buffer)
                .map_err(StorageError::io("writing the staging file"))?;
            self.buffer = Vec::new();
            self.file = Some(file);
        }
        self.file.as_ref().ok_or_else(|| {
            StorageError::io("opening the staging file")(io::ErrorKind::NotFound.into())
        })
    }

    fn saved_state(&self) -> SavedState {
        SavedState {
            name: self.name.clone(),
            tag: self.tag,
            size: self.size,
            checkpoint: self.progress.latest().clone(),
        }
    }

    /// Makes the data durable, then the latest hash state beside it, on this thread (after any
    /// checkpoint still running on its own).
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        self.collect_checkpoint(true)?;
        let (Some(file), Some(offset)) = (
            self.file.as_ref(),
            self.progress.due_after(self.progress.saved),
        ) else {
            return Ok(());
        };
        file.sync_data()
            .map_err(StorageError::io("syncing the staging file"))?;
        Staging::save(&self.staging, &self.key, &self.saved_state())
            .map_err(StorageError::io("saving an upload checkpoint"))?;
        self.progress.saved_at(offset);
        Ok(())
    }

    /// Digest record, fsync, rename into place (never over an existing name unless asked to
    /// overwrite); the fsync of the folder, which follows, is the caller's ([`FolderSync`]). A
    /// crash at any step leaves the name with its old file or with the whole new one, and never
    /// a visible file that is also a staged one. Returns the folder the name is in.
    fn place_verified(&mut self, digest: &Digest) -> Result<Folder, StorageError> {
        if self.progress.written != self.size {
            let short = io::Error::other("the staged data is not the declared size");
            return Err(StorageError::io("checking the staged data")(short));
        }
        self.collect_checkpoint(true)?;
        let storage = Arc::clone(&self.storage);
        let name = self.name.clone();
        let file = self.staged_file()?;
        let status = Status::of(file).map_err(StorageError::io("reading the staged data"))?;
        // Required: every visible file's digest is known, so an identical re-upload is
        // confirmed without its bytes and a download need not hash the file first. On the file
        // itself where the file system allows, before the fsync that makes both durable.
        storage
            .digests
            .attach(&name, file, &FileId::of(&status), digest)?;
        crash_point::reach(CommitStep::DigestRecorded);
        file.sync_all()
            .map_err(StorageError::io("syncing the staged data"))?;
        crash_point::reach(CommitStep::Synced);
        let folder = paths::create_parents(self.storage.root_folder(), &self.name)?;
        let leaf = self
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&self.name)
            .to_owned();
        let existing = paths::existing_file(&folder, &self.name, &leaf)?;
        if existing.is_some() && !self.overwrite {
            return Err(StorageError::AlreadyExists);
        }
        self.place(&folder, &leaf)?;
        self.storage.staging.forget_state(&self.key);
        self.storage
            .usage
            .release(existing.as_ref().map_or(0, Status::size));
        Ok(folder)
    }

    /// Gives the staged data its visible name `leaf` in `folder`, atomically: a rename that
    /// replaces the old file when the client asked to overwrite, and otherwise one that fails if
    /// the name exists (`RENAME_NOREPLACE`), so a race never replaces a file.
    fn place(&mut self, folder: &Folder, leaf: &str) -> Result<(), StorageError> {
        let data = Staging::data_name(&self.key);
        let replace = if self.overwrite {
            Replace::Allowed
        } else {
            Replace::Never
        };
        if replace == Replace::Allowed || !crash_point::commit_by_link() {
            match self.staging.rename(&data, folder, leaf, replace) {
                Ok(()) => {
                    self.published = true;
                    crash_point::reach(CommitStep::Renamed);
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(StorageError::AlreadyExists);
                }
                Err(error) if replace == Replace::Never && is_unsupported(&error) => {}
                Err(error) => {
                    return Err(StorageError::io("renaming the upload into place")(error));
                }
            }
        }
        // A file system without RENAME_NOREPLACE: a hard link is "create only if absent", then
        // the staged name goes. A crash between the two leaves one file with both names; the
        // staged one is removed at start (`Staging::repair`) and never written to before that
        // (`Staging::open_data` refuses a staged file with another name).
        match self.staging.link(&data, folder, leaf) {
            Ok(()) => self.published = true,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::AlreadyExists);
            }
            Err(error) => return Err(StorageError::io("linking the upload into place")(error)),
        }
        crash_point::reach(CommitStep::Linked);
        self.staging
            .remove(&data)
            .map_err(StorageError::io("removing the staged name"))?;
        crash_point::reach(CommitStep::StagedNameRemoved);
        Ok(())
    }
}

/// The last step of a commit: the sync of the folder the file was renamed into.
#[derive(Debug)]
struct FolderSync {
    folder: Folder,
    /// Which folder it is (device and inode).
    id: (u64, u64),
}

impl FolderSync {
    fn new(folder: Folder) -> Result<FolderSync, StorageError> {
        let id = folder
            .identity()
            .map_err(StorageError::io("reading the folder"))?;
        Ok(FolderSync { folder, id })
    }
}

impl OwedSync for FolderSync {
    fn folder(&self) -> (u64, u64) {
        self.id
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.folder
            .sync()
            .map_err(StorageError::io("syncing the folder"))?;
        crash_point::reach(CommitStep::FolderSynced);
        Ok(())
    }
}

/// The test-only full disk (feature `faults`) stores only part of a write: then the error a
/// full disk gives.
fn cut_short(stored: usize, given: usize) -> Result<(), StorageError> {
    if stored < given {
        let injected = io::Error::from(io::ErrorKind::StorageFull);
        return Err(StorageError::io("writing the staging file")(injected));
    }
    Ok(())
}

/// Whether a rename failed only because the file system has no `RENAME_NOREPLACE`.
fn is_unsupported(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(|code| {
        [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP]
            .iter()
            .any(|errno| errno.raw_os_error() == code)
    })
}

impl Drop for FolderUpload {
    fn drop(&mut self) {
        // A checkpoint still being written lands before the name lock is released, so that a
        // newer connection resuming this upload never sees it change under its feet.
        let _ = self.collect_checkpoint(true);
    }
}
