//! The storage interface: what a connection asks of the place files live, whichever backend
//! holds them — a folder on this machine ([`crate::store::folder`]), an S3-compatible object store
//! shared by several nodes ([`crate::store::s3`]), or memory, for tests and the simulator
//! ([`crate::store::memory`], with the `memory-store` feature).
//!
//! Every backend keeps the same promises: a name shows a file only once all its bytes arrived
//! and its digest matched; an interrupted upload stays resumable from its last checkpoint; one
//! upload per name at a time (a reconnecting client takes its own upload over); downloads
//! stream with bounded memory from any offset.

pub(crate) mod error;
pub(crate) mod folder;
mod key;
pub(crate) mod locks;
#[cfg(any(test, feature = "memory-store"))]
#[cfg_attr(not(feature = "memory-store"), allow(dead_code))]
pub mod memory;
pub(crate) mod moves;
mod progress;
#[cfg(test)]
mod promises;
pub(crate) mod s3;
pub(crate) mod timed;

pub(crate) use key::PartialKey;
use locks::Waker;

use std::fmt;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag};

use crate::config::ServerConfig;
use crate::store::error::StorageError;
use crate::transfer_log::{Op, Transfer};

/// Where a server's files live. Shared by every connection of a server.
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the files are, for logs: a folder path or an `s3://` location.
    fn describe(&self) -> String;

    /// Decides on a `PUT`: checks the size against the file limit, then lets the backend check
    /// its own limits and the name, take the name's upload lock and find where to resume.
    /// Returns the upload and the hash state to accept it with.
    ///
    /// A streamed upload (size unknown, PROTOCOL.md §7) is checked against the file limit as
    /// its bytes arrive instead ([`Upload::write`]); its backend reserves space as it grows.
    fn begin_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        if request.streamed {
            let (upload, checkpoint) = self.open_upload(config, request)?;
            let mut upload = upload.without_resume();
            upload.stream_limit = Some(config.max_file_size);
            return Ok((upload, checkpoint));
        }
        if request.size > config.max_file_size {
            return Err(StorageError::TooLarge {
                size: request.size,
                limit: config.max_file_size,
            });
        }
        self.open_upload(config, request)
    }

    /// The backend's part of [`Store::begin_upload`], for a size within the file limit.
    fn open_upload(
        &self,
        config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError>;

    /// Opens `name` for download: its size, the digest of exactly this version if known, and
    /// its content (which stays this version even if the name is replaced meanwhile).
    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError>;

    /// Removes the file `name`; returns its size.
    fn remove(&self, name: &str) -> Result<u64, StorageError>;

    /// Gives the file `from`, or the folder `from` with everything under it, the name `to`,
    /// atomically where the backend can (a reader of `to` gets the old file or the new one,
    /// whole), durably before it returns. Refused: `from` missing (`NotFound`); `to` taken,
    /// unless `overwrite` and both are files (`NameTaken`); the same name, a folder into
    /// itself, or a bad name (`BadName`); an upload under way to either name or under either
    /// folder (`InProgress`). Digest records move with the files.
    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError>;

    /// What is held under `name`: the stored file and the partial upload tagged `tag`.
    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError>;

    /// Every visible file whose name starts with `prefix`, in name order, handed to `page` a
    /// batch at a time (so a huge listing never sits in memory whole) until it says stop.
    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError>;

    /// Removes partial uploads untouched for longer than `max_age`, sparing those under way.
    fn sweep_staging(&self, max_age: Duration);

    /// Whether several uploads' commits are best run at the same time (a file system whose
    /// journal joins concurrent fsyncs into one flush). One at a time otherwise.
    /// (No default: a wrapper that forgot to forward it would quietly commit one at a time.)
    fn commits_in_parallel(&self) -> bool;
}

/// What the server holds under a name, as a `QUERY` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Size of the stored file, if any.
    pub stored_size: Option<u64>,
    /// Its digest, if recorded for this exact version.
    pub stored_digest: Option<Digest>,
    /// Resumable offset of a partial upload with the asked tag, if any.
    pub partial_offset: Option<u64>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// A file opened for download.
pub struct OpenedFile {
    /// Its size in bytes.
    pub size: u64,
    /// The digest of exactly this version, if one is recorded.
    pub digest: Option<Digest>,
    /// Its bytes.
    pub content: Box<dyn FileContent>,
}

/// The bytes of one version of a stored file.
pub trait FileContent: Send {
    /// A reader of this version from `offset` to its end, independent of this handle (a
    /// session keeps it while the download runs).
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + Send>>;

    /// Records a digest computed for this version, if the name still is this version.
    fn remember_digest(&self, digest: &Digest);
}

/// How an upload that did not commit was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Left {
    /// Resumable from this offset.
    Resumable(u64),
    /// Nothing worth keeping was staged.
    Removed,
}

/// A sync a commit still owes: its file is in place under its name, and the folder holding the
/// name must be synced before the commit is confirmed. The commits of one group into the same
/// folder share its sync (see [`Upload::commit_owing_sync`]).
pub trait OwedSync: Send + Sync + fmt::Debug {
    /// Which folder: owed syncs with the same value are one sync.
    fn folder(&self) -> (u64, u64);

    /// Makes the names in the folder durable.
    fn sync(&self) -> Result<(), StorageError>;
}

/// An upload's staged data in a backend: what [`Upload`] drives.
pub trait StagedUpload: Send + fmt::Debug {
    /// Appends received file data.
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;

    /// Records the protocol's hash state after the data written so far.
    fn note_progress(&mut self, checkpoint: HashCheckpoint);

    /// Whether a checkpoint is due (`interval` is the server's checkpoint interval in bytes).
    fn wants_checkpoint(&self, interval: u64) -> bool;

    /// Starts making the latest hash state durable with the data it covers.
    fn start_checkpoint(&mut self) -> Result<(), StorageError>;

    /// Whether a newer connection for the same client file took this upload over.
    fn is_superseded(&self) -> bool;

    /// Calls `wake` when a newer connection for the same client file takes this upload over.
    fn when_superseded(&self, wake: Waker);

    /// Leaves the upload resumable from its last durable checkpoint.
    fn suspend(self: Box<Self>) -> Left;

    /// Deletes the staged data.
    fn discard(self: Box<Self>) -> Left;

    /// Makes the verified upload visible under its name. On failure nothing is visible and
    /// [`Upload::commit`] suspends the upload.
    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError>;

    /// Like [`StagedUpload::commit`], but a backend whose last step is a folder sync may leave
    /// it to the caller: the file is then in place, and durable only once the returned sync
    /// is made. The default makes the whole commit.
    fn commit_owing_sync(
        &mut self,
        digest: &Digest,
    ) -> Result<Option<Box<dyn OwedSync>>, StorageError> {
        self.commit(digest).map(|()| None)
    }
}

/// An upload under way, whatever the backend. Its name is locked against other uploads until it
/// is committed, suspended or discarded.
///
/// A streamed upload (its size told only at the end) never resumes: whatever ends it short of
/// its commit discards its staged data, and it is refused as soon as it grows past the file
/// limit.
#[derive(Debug)]
pub struct Upload {
    name: String,
    start_offset: u64,
    received: u64,
    started: Instant,
    /// Whether its client can resume it; if not, whatever ends it unfinished deletes it.
    resumable: bool,
    staged: Box<dyn StagedUpload>,
    /// For a streamed upload, the server's file size limit, checked as bytes arrive.
    stream_limit: Option<u64>,
}

impl Upload {
    /// An upload of `name` resumed at `start_offset` (0 for a new one) into `staged`.
    pub fn new(name: &str, start_offset: u64, staged: Box<dyn StagedUpload>) -> Upload {
        Upload {
            name: name.to_owned(),
            start_offset,
            received: 0,
            started: Instant::now(),
            resumable: true,
            staged,
            stream_limit: None,
        }
    }

    /// The same upload for a client that has no way to resume it (the original protocol's,
    /// or a stream's): ended unfinished, or failing to commit, it is deleted rather than kept.
    pub fn without_resume(self) -> Upload {
        Upload {
            resumable: false,
            ..self
        }
    }

    /// Whether this is a streamed upload (size unknown until its end; never resumed).
    pub fn is_streamed(&self) -> bool {
        self.stream_limit.is_some()
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a newer connection for the same client file is taking this upload over.
    pub fn is_superseded(&self) -> bool {
        self.staged.is_superseded()
    }

    /// Calls `wake` when a newer connection for the same client file takes this upload over.
    pub(crate) fn when_superseded(&self, wake: Waker) {
        self.staged.when_superseded(wake);
    }

    /// Its transfer-log entry so far, to log once its outcome is known.
    pub(crate) fn transfer(&self) -> Transfer {
        Transfer {
            op: Op::Put,
            name: self.name.clone(),
            bytes: self.received,
            started: self.started,
        }
    }

    /// Offset this session resumed from.
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    /// Appends received file data. A streamed upload that would grow past the file limit is
    /// refused before anything of `data` is written.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if let Some(limit) = self.stream_limit
            && self.start_offset + self.received + data.len() as u64 > limit
        {
            return Err(StorageError::StreamTooLarge { limit });
        }
        self.staged.write(data)?;
        self.received += data.len() as u64;
        Ok(())
    }

    /// Records the protocol's hash state after the data written so far.
    pub fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.staged.note_progress(checkpoint);
    }

    /// Whether a checkpoint is due.
    pub fn wants_checkpoint(&self, interval: u64) -> bool {
        self.staged.wants_checkpoint(interval)
    }

    /// Starts making the latest hash state durable.
    pub fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        self.staged.start_checkpoint()
    }

    /// Leaves the upload resumable from its last durable checkpoint (whoever may resume it:
    /// [`Upload::leave`] asks first).
    pub fn suspend(self) -> Left {
        self.staged.suspend()
    }

    /// Deletes the staged data.
    pub fn discard(self) -> Left {
        self.staged.discard()
    }

    /// Ends the upload unfinished: resumable from its last durable checkpoint if its client
    /// can resume it, deleted otherwise.
    pub fn leave(self) -> Left {
        if self.resumable {
            self.suspend()
        } else {
            self.discard()
        }
    }

    /// Makes the verified upload visible under its name; on failure it stays resumable from
    /// its last checkpoint, whatever the backend.
    pub fn commit(self, digest: &Digest) -> Result<(), StorageError> {
        self.commit_or_keep(digest).map_err(|(error, _)| error)
    }

    /// Like [`Upload::commit`], also saying, when it failed, how the upload was left (so the
    /// client can be told the truth): resumable, or deleted if its client cannot resume it.
    pub fn commit_or_keep(self, digest: &Digest) -> Result<(), (StorageError, Left)> {
        self.end(|staged| staged.commit(digest))
    }

    /// Like [`Upload::commit_or_keep`], leaving the backend's last folder sync, if it has one,
    /// to the caller: the commit is done once the returned sync is made (group commit shares
    /// one sync among the uploads of a group that went into the same folder).
    pub fn commit_owing_sync(
        self,
        digest: &Digest,
    ) -> Result<Option<Box<dyn OwedSync>>, (StorageError, Left)> {
        self.end(|staged| staged.commit_owing_sync(digest))
    }

    /// Runs `commit`; on failure leaves the upload resumable, or deletes it if its client
    /// cannot resume it.
    fn end<T>(
        self,
        commit: impl FnOnce(&mut dyn StagedUpload) -> Result<T, StorageError>,
    ) -> Result<T, (StorageError, Left)> {
        let mut staged = self.staged;
        match commit(staged.as_mut()) {
            Ok(value) => Ok(value),
            Err(error) if self.resumable => Err((error, staged.suspend())),
            Err(error) => Err((error, staged.discard())),
        }
    }
}
