//! One upload to the in-memory store, from the decision to accept it to its commit, discard or
//! suspension: the folder store's steps, with its syncs as the points where data turns durable.
//!
//! ```text
//!  PUT ─► begin: name, lock, AlreadyExists, resume point, quota, free space ─► PUT_READY(offset)
//!         data  ─► appended to the partial's data (volatile); the disk can fill mid-write
//!         every checkpoint_interval ─► the data written so far and the hash state turn durable
//!         DONE, digest ok ─► commit: AlreadyExists checked again; file and digest durable
//!         DONE, digest bad ─► discard
//!         interrupted ─► suspend: the latest hash state made durable, data cut to it
//! ```
//!
//! A streamed upload (size unknown until its end) reserves its quota a write at a time, makes
//! no checkpoints, and is discarded by whatever ends it short of its commit.

use std::io;
use std::sync::MutexGuard;

use ferry_protocol::{Digest, HashCheckpoint, PutRequest};

use crate::store::error::StorageError;
use crate::store::locks::{NameLock, Waker};
use crate::store::memory::{Machine, MemoryStore, faults};
use crate::store::progress::Progress;
use crate::store::{Left, PartialKey, StagedUpload, Upload};

/// An upload under way to a [`MemoryStore`]. Its name is locked until it is dropped.
#[derive(Debug)]
pub(super) struct MemoryUpload {
    store: MemoryStore,
    /// The boot of the machine it began on: after a power cut it is dead.
    boot: u64,
    name: String,
    /// The declared size; for a streamed upload, the bytes reserved so far.
    size: u64,
    /// A streamed upload: no checkpoints, quota reserved as the data arrives.
    streamed: bool,
    /// Bytes of the file the upload will replace, credited against the quota.
    replaced: u64,
    overwrite: bool,
    key: PartialKey,
    /// Whether the data became the visible file.
    published: bool,
    /// Bytes staged and checkpoints (made durable at once: none is ever under way).
    progress: Progress,
    lock: NameLock,
}

/// Decides on a `PUT` whose size is within the file limit, as the folder store does: checks
/// the name, locks it, refuses an existing name without overwrite, finds where to resume,
/// reserves the quota and checks the free space. Returns the upload and its checkpoint.
pub(super) fn begin(
    store: &MemoryStore,
    request: &PutRequest,
) -> Result<(Upload, HashCheckpoint), StorageError> {
    let name = request.name.as_str();
    let (locks, boot) = {
        let machine = store.enter("looking up a name")?;
        machine.disk.check_place(name)?;
        (machine.locks.clone(), machine.boots)
    };
    let key = PartialKey::new(name, &request.tag);
    let lock = locks.lock(name, &key, store.shared.limits.takeover_wait)?;
    let now = store.now();
    let mut machine = store.enter("opening the staging file")?;
    if machine.boots != boot {
        return Err(faults::restarted("opening the staging file"));
    }
    // Looked up again under the lock: taking a name over can wait for another upload to end.
    machine.disk.check_place(name)?;
    let replaced = machine.disk.files.get(name).map(|file| file.bytes.len());
    if replaced.is_some() && !request.overwrite {
        return Err(StorageError::AlreadyExists);
    }
    let resumed = if request.resume {
        machine
            .disk
            .resumable(&key, name, &request.tag)
            .filter(|(_, size)| *size == request.size)
            .map(|(checkpoint, _)| checkpoint.clone())
    } else {
        None
    };
    if resumed.is_none() {
        machine.disk.forget_checkpoint(&key);
    }
    let checkpoint = resumed.unwrap_or_else(HashCheckpoint::start);
    let offset = checkpoint.offset();

    let need = request.size.saturating_sub(offset);
    machine.usage.reserve(need, replaced.unwrap_or(0) as u64)?;
    if let Some(capacity) = store.shared.limits.capacity {
        let free = capacity.saturating_sub(machine.disk.bytes());
        if need > free {
            machine.usage.release(need);
            return Err(StorageError::DiskFull { need, free });
        }
    }
    let before = machine
        .disk
        .stage(&key, (name, request.tag, request.size), offset, now);
    machine.usage.release(before.saturating_sub(offset));
    drop(machine);
    let upload = MemoryUpload {
        store: store.clone(),
        boot,
        name: name.to_owned(),
        size: request.size,
        streamed: request.streamed,
        replaced: replaced.unwrap_or(0) as u64,
        overwrite: request.overwrite,
        key,
        published: false,
        progress: Progress::new(&checkpoint, !request.streamed),
        lock,
    };
    Ok((Upload::new(name, offset, Box::new(upload)), checkpoint))
}

impl StagedUpload for MemoryUpload {
    fn is_superseded(&self) -> bool {
        self.lock.is_superseded()
    }

    fn when_superseded(&self, wake: Waker) {
        self.lock.when_superseded(wake);
    }

    /// Appends received file data: volatile until a checkpoint. On a full disk it stores what
    /// fits and fails with [`StorageError::NoSpace`].
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        const DURING: &str = "writing the staging file";
        let now = self.store.now();
        let store = self.store.clone();
        let mut machine = enter(&store, self.boot, DURING)?;
        if self.streamed {
            let len = data.len() as u64;
            machine.usage.reserve(len, self.replaced)?;
            self.size += len;
        }
        machine.charge_data(data.len());
        let room = machine.room(&self.store.shared.limits);
        let fits = &data[..usize::try_from(room).map_or(data.len(), |room| room.min(data.len()))];
        let machine = &mut *machine;
        let partial = machine
            .disk
            .partials
            .get_mut(&self.key.0)
            .ok_or_else(|| missing(DURING))?;
        partial.data.extend_from_slice(fits);
        partial.touched = now;
        self.progress.written += fits.len() as u64;
        if let Some(left) = machine.faults.full_after.as_mut() {
            *left = left.saturating_sub(fits.len() as u64);
        }
        if fits.len() < data.len() {
            return Err(faults::no_space(DURING));
        }
        Ok(())
    }

    /// Records the protocol's hash state after the data written so far.
    fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.progress.note(checkpoint);
    }

    /// Whether enough data arrived since the last checkpoint to make another (never for a
    /// streamed upload, which cannot be resumed).
    fn wants_checkpoint(&self, interval: u64) -> bool {
        self.progress.wants_checkpoint(interval)
    }

    /// Makes the data written so far and the latest hash state durable (where the folder store
    /// syncs its data and then writes its checkpoint). Durable at once: the folder store's
    /// thread is not modelled.
    fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        if !self.checkpoint_due() {
            return Ok(());
        }
        let store = self.store.clone();
        let mut machine = enter(&store, self.boot, "saving an upload checkpoint")?;
        self.checkpoint(&mut machine)
    }

    /// Leaves the upload resumable from its last durable checkpoint (making one of the latest
    /// state first), cuts the data to it, and stops reserving space it will not receive now.
    /// A lost store is left as it is; an upload of a machine since crashed touches nothing.
    fn suspend(mut self: Box<Self>) -> Left {
        if self.published {
            return Left::Removed;
        }
        let store = self.store.clone();
        let mut machine = store.machine();
        if machine.boots != self.boot {
            return self.left();
        }
        machine.charge_call();
        if machine.faults.lost {
            machine
                .usage
                .release(self.size - self.progress.written.min(self.size));
            return self.left();
        }
        // (The folder store first frees the bytes past the latest hash state, so that on a full
        // disk the checkpoint finds room; here a checkpoint needs none, and the cut below drops
        // them.)
        if self.checkpoint_due() {
            let _ = self.checkpoint(&mut machine);
        }
        if self.progress.saved == 0 {
            machine.disk.discard(&self.key);
            machine.usage.release(self.size);
            return Left::Removed;
        }
        machine.disk.cut(&self.key, self.progress.saved);
        self.progress.written = self.progress.saved;
        machine
            .usage
            .release(self.size - self.progress.written.min(self.size));
        Left::Resumable(self.progress.saved)
    }

    /// Deletes the staged data.
    fn discard(self: Box<Self>) -> Left {
        let mut machine = self.store.machine();
        if self.published || machine.boots != self.boot {
            return Left::Removed;
        }
        machine.charge_call();
        if !machine.faults.lost {
            machine.disk.discard(&self.key);
        }
        machine.usage.release(self.size);
        Left::Removed
    }

    /// Makes the verified upload durable and visible under its name, with its digest.
    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        let committed = self.try_commit(digest);
        if committed.is_err() {
            // The suspension that follows keeps the last durable checkpoint, not a new one.
            self.progress.forget_latest();
        }
        committed
    }
}

/// The machine of `store` for a call on an upload begun on boot `boot`: refused if the store
/// is lost or restarted since.
fn enter<'s>(
    store: &'s MemoryStore,
    boot: u64,
    during: &'static str,
) -> Result<MutexGuard<'s, Machine>, StorageError> {
    let machine = store.enter(during)?;
    if machine.boots != boot {
        return Err(faults::restarted(during));
    }
    Ok(machine)
}

impl MemoryUpload {
    /// Whether the latest hash state is past the last durable one and covers only written data.
    fn checkpoint_due(&self) -> bool {
        self.progress.due_after(self.progress.saved).is_some()
    }

    /// Makes the written data and the latest hash state durable.
    fn checkpoint(&mut self, machine: &mut Machine) -> Result<(), StorageError> {
        let now = self.store.now();
        let partial = machine
            .disk
            .partials
            .get_mut(&self.key.0)
            .ok_or_else(|| missing("saving an upload checkpoint"))?;
        partial.synced = partial.data.len() as u64;
        partial.checkpoint = Some(self.progress.latest().clone());
        partial.touched = now;
        let offset = self.progress.latest().offset();
        self.progress.saved_at(offset);
        Ok(())
    }

    /// How it is left without touching the store: resumable from its last durable checkpoint.
    fn left(&self) -> Left {
        match self.progress.saved {
            0 => Left::Removed,
            saved => Left::Resumable(saved),
        }
    }

    /// The size check, the name checked again (it may have been taken meanwhile), then the
    /// data and digest made the visible, durable file in one step.
    fn try_commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        let now = self.store.now();
        let store = self.store.clone();
        let mut machine = enter(&store, self.boot, "checking the staged data")?;
        if self.progress.written != self.size {
            let short = io::Error::other("the staged data is not the declared size");
            return Err(StorageError::io("checking the staged data")(short));
        }
        machine.disk.check_place(&self.name)?;
        if machine.disk.files.contains_key(&self.name) && !self.overwrite {
            return Err(StorageError::AlreadyExists);
        }
        let mut partial = machine
            .disk
            .partials
            .remove(&self.key.0)
            .ok_or_else(|| missing("checking the staged data"))?;
        if machine.faults.corrupt_commits {
            faults::corrupt(&mut partial.data);
        }
        let before = machine.disk.files.get(&self.name).cloned();
        let replaced = machine
            .disk
            .publish(&self.name, partial.data, Some(*digest), now);
        self.published = true;
        if machine.faults.volatile_commits {
            let version = machine.disk.files.get(&self.name).map_or(0, |f| f.version);
            machine.volatile.push((self.name.clone(), version, before));
        }
        machine.usage.release(replaced.unwrap_or(0));
        Ok(())
    }
}

/// The error of an upload whose staged data is gone (swept, or removed by hand).
fn missing(during: &'static str) -> StorageError {
    StorageError::Io {
        during,
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "the upload's staged data is gone; start the upload again",
        ),
    }
}
