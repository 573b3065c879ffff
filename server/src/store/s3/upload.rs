//! One upload to the S3 backend, from the decision to accept it to its commit, discard or
//! suspension.
//!
//! ```text
//!  PUT ─► begin: limits, this node's name lock, the name's upload record taken over with
//!         If-Match (or created with If-None-Match) ─► PUT_READY(offset of the last part)
//!         data ─► memory; once the hash state passes a part's worth, the bytes up to it
//!              become the next part, uploaded on a thread of its own while data keeps
//!              arriving (two parts at most at once); as soon as a part and every one before
//!              it are in, the record gets its ETag and the hash state at its end
//!         DONE, digest ok  ─► the rest as the last part, CompleteMultipartUpload (or one PUT
//!                             for a file of one part), digest record, record deleted ─► ACK
//!         DONE, digest bad ─► AbortMultipartUpload
//!         CANCEL / EOF / timeout / S3 error ─► record released, resumable from the last part
//! ```
//!
//! A streamed upload (size unknown until its `DONE_SIZED`) cuts parts the same way, starting
//! at the configured part size and doubling it every thousand parts ([`streamed_part_size`]),
//! and is discarded (its multipart upload aborted) by whatever ends it short of its commit.

use std::io;
use std::mem;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, HASH_UNIT_LEN, HashCheckpoint, PutRequest};

use super::record::{Part, UploadRecord, multipart_etag, single_etag};
use super::store::{S3Store, now_ms, s3_error};
use super::{PutCondition, S3Error};
use crate::store::PartialKey;
use crate::store::error::StorageError;
use crate::store::locks::{NameLock, Waker};
use crate::store::{Left, StagedUpload, Upload};

/// Smallest part S3 accepts (but for the last one).
pub(crate) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Most parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// How long a reconnecting client's upload waits for its old connection on this node.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// Times `begin` reads the record again after losing a race to write it.
const RECORD_RACES: usize = 5;

/// Most bytes held in memory past a part's worth: data arrives a read (at most a few hundred
/// KiB) at a time and a part is cut at the next hash checkpoint, so more means the driver
/// stopped reporting progress, and memory would grow with the file.
const MAX_UNCUT: u64 = 4 * 1024 * 1024;

/// Parts one upload sends at once: two keep the object store busy while the previous part is
/// recorded and the next one fills (measured: see the README), and bound the memory an upload
/// holds to three parts.
const PARTS_IN_FLIGHT: usize = 2;

/// Looks for a file completed by a taken-over connection (see `stored_by_earlier_connection`):
/// its digest is recorded before it completes (after, on stores with unusual ETags), so a
/// short wait suffices.
const STORED_CHECKS: usize = 5;

/// Stack of a part thread: the part's bytes live on the heap.
const PART_STACK: usize = 256 * 1024;

/// The name's upload record as this upload last wrote it, and that version's ETag.
#[derive(Debug)]
struct Ledger {
    record: UploadRecord,
    etag: String,
}

/// Why a part did not make it.
#[derive(Debug)]
enum PartFailure {
    /// Another connection took the name's upload over.
    Lost,
    /// Storing failed; the record still says what it said.
    Failed(StorageError),
}

/// What a part thread leaves: the record as it stands (`None`: nothing to resume) and how the
/// part, and every one before it, fared.
type PartOutcome = (Option<Ledger>, Result<(), PartFailure>);

/// Bounds the parts of one upload being sent at once.
#[derive(Debug, Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

/// One part's right to be sent; freed when dropped.
struct Slot(Arc<Slots>);

impl Slots {
    /// Waits for a free slot.
    fn take(self: &Arc<Self>) -> Slot {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= PARTS_IN_FLIGHT {
            busy = self
                .freed
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
        Slot(Arc::clone(self))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(PoisonError::into_inner);
        *busy -= 1;
        self.0.freed.notify_one();
    }
}

/// An upload under way to the S3 backend.
#[derive(Debug)]
pub(crate) struct S3Upload {
    store: Arc<S3Store>,
    name: String,
    key: String,
    /// The declared size; for a streamed upload, the bytes received so far.
    size: u64,
    /// A streamed upload (size unknown until its end): parts are cut as usual, but it is never
    /// resumed (a suspension discards it).
    streamed: bool,
    overwrite: bool,
    part_size: u64,
    /// Received bytes not yet in a part; the first is at `buffer_start`.
    buffer: Vec<u8>,
    buffer_start: u64,
    written: u64,
    /// Hash state after the latest data.
    latest: HashCheckpoint,
    /// The record, held here unless the part threads have it.
    ledger: Option<Ledger>,
    /// The newest part thread: it yields the record once it and every part before it are
    /// recorded (each part thread waits for the one before it).
    pending: Option<JoinHandle<PartOutcome>>,
    /// Parts being sent.
    slots: Arc<Slots>,
    /// The multipart upload, once created.
    upload_id: Option<String>,
    /// Number of the next part to cut.
    next_part: usize,
    renewed: Instant,
    /// Another connection (of any node) took this upload over.
    lost: bool,
    lock: NameLock,
}

/// Decides on a `PUT` whose size is within the file limit (see the module's diagram).
pub(crate) fn begin(
    store: &S3Store,
    request: &PutRequest,
) -> Result<(Upload, HashCheckpoint), StorageError> {
    let name = request.name.as_str();
    let lock = store
        .locks
        .lock(name, &PartialKey::new(name, &request.tag), TAKEOVER_WAIT)?;
    if store.head(name)?.is_some() && !request.overwrite {
        return Err(StorageError::AlreadyExists);
    }
    store.check_tree(name)?;
    let owner = store.new_owner();
    for _ in 0..RECORD_RACES {
        let (etag, old) = match store.read_upload_record(name)? {
            Some((etag, old)) => (Some(etag), old),
            None => (None, None),
        };
        if let Some(old) = &old
            && store.is_held(old)
            && old.tag != request.tag
        {
            return Err(StorageError::InProgress);
        }
        let resumable = old.as_ref().filter(|old| {
            request.resume
                && old.tag == request.tag
                && old.size == request.size
                && !old.parts.is_empty()
        });
        let record = match resumable {
            Some(old) => UploadRecord {
                owner: Some(owner.clone()),
                renewed_ms: now_ms(),
                ..old.clone()
            },
            None => UploadRecord {
                name: name.to_owned(),
                tag: request.tag,
                size: request.size,
                owner: Some(owner.clone()),
                renewed_ms: now_ms(),
                upload_id: None,
                parts: Vec::new(),
                checkpoint: HashCheckpoint::start(),
            },
        };
        let Some(new_etag) = store.write_upload_record(&record, etag.as_deref())? else {
            continue; // another node wrote it meanwhile: look again
        };
        if resumable.is_none()
            && let Some(id) = old.as_ref().and_then(|old| old.upload_id.as_ref())
        {
            // The old partial is replaced: free what S3 holds for it.
            let _ = store.client().abort_multipart(&store.key(name), id);
        }
        let checkpoint = record.checkpoint.clone();
        let offset = record.offset();
        let (upload_id, next_part) = (record.upload_id.clone(), record.parts.len() + 1);
        let upload = S3Upload {
            store: store.arc()?,
            name: name.to_owned(),
            key: store.key(name),
            size: request.size,
            streamed: request.streamed,
            overwrite: request.overwrite,
            part_size: match request.streamed {
                true => streamed_part_size(store.part_size, next_part),
                false => part_size(store.part_size, request.size),
            },
            buffer: Vec::new(),
            buffer_start: offset,
            written: offset,
            latest: checkpoint.clone(),
            ledger: Some(Ledger {
                record,
                etag: new_etag,
            }),
            pending: None,
            slots: Arc::default(),
            upload_id,
            next_part,
            renewed: Instant::now(),
            lost: false,
            lock,
        };
        return Ok((Upload::new(name, offset, Box::new(upload)), checkpoint));
    }
    Err(StorageError::InProgress)
}

/// Parts a streamed upload cuts at one size before the size doubles.
const PARTS_PER_SIZE: usize = 1000;

/// Bytes of the part numbered `number` (from 1) of a streamed upload, whose size is not known:
/// the first [`PARTS_PER_SIZE`] parts have the configured size, each next thousand twice the
/// size before. Memory stays at one part of a small stream however large the file limit, and
/// S3's 10 000 parts still hold 1023 000 configured parts' worth (over 5 TB at the 5 MiB
/// minimum).
fn streamed_part_size(configured: u64, number: usize) -> u64 {
    let doublings = (number.saturating_sub(1) / PARTS_PER_SIZE).min(32) as u32;
    part_size(configured, 0).saturating_mul(1 << doublings)
}

/// Bytes per part for a file of `size`: the configured size, larger if the file would need
/// more parts than S3 allows, in whole hash units.
fn part_size(configured: u64, size: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS - 1);
    configured
        .max(needed)
        .max(MIN_PART_SIZE)
        .next_multiple_of(HASH_UNIT_LEN)
}

impl StagedUpload for S3Upload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if (self.buffer.len() + data.len()) as u64 > self.part_size + MAX_UNCUT {
            let error = io::Error::other("received data is not being cut into parts");
            return Err(StorageError::io("buffering a part")(error));
        }
        self.buffer.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.streamed {
            self.size = self.written;
        }
        self.collect(false)?;
        if self.ledger.is_some() && self.renewed.elapsed() > self.store.lease / 3 {
            self.renew()?;
        }
        Ok(())
    }

    fn note_progress(&mut self, checkpoint: HashCheckpoint) {
        self.latest = checkpoint;
    }

    fn wants_checkpoint(&self, _interval: u64) -> bool {
        // A part is the unit of durability here: the checkpoint interval does not apply.
        self.latest.offset() >= self.buffer_start + self.part_size
    }

    fn start_checkpoint(&mut self) -> Result<(), StorageError> {
        let cut = self.latest.offset();
        if cut < self.buffer_start + self.part_size || cut > self.written {
            return Ok(());
        }
        self.collect(false)?;
        let upload_id = self.multipart_upload()?;
        let number = u16::try_from(self.next_part).map_err(|_| too_many_parts())?;
        let len = usize::try_from(cut - self.buffer_start).map_err(|_| too_many_parts())?;
        // Waits while two parts are being sent: memory stays bounded when the object store is
        // slower than the client.
        let slot = self.slots.take();
        let rest = self.buffer.split_off(len);
        let part = SendPart {
            key: self.key.clone(),
            upload_id,
            number,
            bytes: mem::replace(&mut self.buffer, rest),
            checkpoint: self.latest.clone(),
        };
        self.buffer_start = cut;
        self.next_part += 1;
        if self.streamed {
            self.part_size = streamed_part_size(self.store.part_size, self.next_part);
        }
        let store = Arc::clone(&self.store);
        let ledger = self.ledger.take();
        let previous = self.pending.take();
        let spawned = thread::Builder::new()
            .name("ferry-s3-part".into())
            .stack_size(PART_STACK)
            .spawn(move || part.send(&store, slot, ledger, previous));
        match spawned {
            Ok(handle) => {
                self.pending = Some(handle);
                Ok(())
            }
            Err(error) => Err(StorageError::io("starting a part upload")(error)),
        }
    }

    fn is_superseded(&self) -> bool {
        self.lost || self.lock.is_superseded()
    }

    fn when_superseded(&self, wake: Waker) {
        self.lock.when_superseded(wake);
    }

    fn suspend(mut self: Box<Self>) -> Left {
        if let Err(error) = self.collect(true) {
            tracing::warn!(name = %self.name, "a part of an interrupted upload failed: {error}");
        }
        let Some(ledger) = self.ledger.take() else {
            return Left::Removed; // taken over: what is kept is the new holder's
        };
        if ledger.record.parts.is_empty() {
            self.release_empty(ledger);
            return Left::Removed;
        }
        let offset = ledger.record.offset();
        let released = UploadRecord {
            owner: None,
            renewed_ms: now_ms(),
            ..ledger.record
        };
        match self
            .store
            .write_upload_record(&released, Some(&ledger.etag))
        {
            Ok(Some(_)) => Left::Resumable(offset),
            Ok(None) => Left::Removed,
            // The hold lapses by itself after the lease; the parts stay resumable.
            Err(error) => {
                tracing::warn!(name = %self.name, "could not release an upload record: {error}");
                Left::Resumable(offset)
            }
        }
    }

    fn discard(mut self: Box<Self>) -> Left {
        let _ = self.collect(true);
        if let Some(ledger) = self.ledger.take() {
            self.release_empty(ledger);
        }
        Left::Removed
    }

    fn commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        self.try_commit(digest)
    }
}

impl S3Upload {
    /// Takes in the result of the part upload running on its own thread, if it has finished
    /// (or, with `wait`, once it has).
    fn collect(&mut self, wait: bool) -> Result<(), StorageError> {
        let Some(handle) = self.pending.take_if(|handle| wait || handle.is_finished()) else {
            return Ok(());
        };
        let Ok((ledger, result)) = handle.join() else {
            let panicked = io::Error::other("the part upload thread panicked");
            return Err(StorageError::io("uploading a part")(panicked));
        };
        match result {
            Ok(()) => {
                self.ledger = ledger;
                self.renewed = Instant::now();
                Ok(())
            }
            Err(PartFailure::Lost) => {
                self.lost = true;
                Err(taken_over())
            }
            Err(PartFailure::Failed(error)) => {
                // The part's bytes are gone from memory: this session cannot go on, and the
                // record still says where a resume starts.
                self.ledger = ledger;
                Err(error)
            }
        }
    }

    /// The multipart upload's id, created at the first part and recorded at once, so that it
    /// is never orphaned (the record is in hand then: no part thread runs before the first).
    fn multipart_upload(&mut self) -> Result<String, StorageError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let ledger = self.ledger.as_mut().ok_or_else(taken_over)?;
        let id = self
            .store
            .client()
            .create_multipart(&self.key)
            .map_err(s3_error("starting a multipart upload"))?;
        let mut record = ledger.record.clone();
        record.upload_id = Some(id.clone());
        match write(&self.store, ledger, record) {
            Ok(()) => {}
            Err(PartFailure::Lost) => {
                self.ledger = None;
                self.lost = true;
                return Err(taken_over());
            }
            Err(PartFailure::Failed(error)) => return Err(error),
        }
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Renews the hold on the name (and learns whether another connection took it).
    fn renew(&mut self) -> Result<(), StorageError> {
        let ledger = self.ledger.as_mut().ok_or_else(taken_over)?;
        let mut record = ledger.record.clone();
        record.renewed_ms = now_ms();
        match self
            .store
            .write_upload_record(&record, Some(&ledger.etag))?
        {
            Some(etag) => {
                *ledger = Ledger { record, etag };
                self.renewed = Instant::now();
                Ok(())
            }
            None => {
                self.ledger = None;
                self.lost = true;
                Err(taken_over())
            }
        }
    }

    fn try_commit(&mut self, digest: &Digest) -> Result<(), StorageError> {
        self.collect(true)?;
        if self.written != self.size {
            let short = io::Error::other("the received data is not the declared size");
            return Err(StorageError::io("checking the received data")(short));
        }
        // Proves the name is still ours before anything becomes visible.
        self.renew()?;
        let ledger = self.ledger.as_ref().ok_or_else(taken_over)?;
        let condition = if self.overwrite {
            PutCondition::Always
        } else {
            PutCondition::IfAbsent
        };
        let client = self.store.client();
        // The digest is recorded under the ETag S3 will give before the file is visible.
        let mut predicted = None;
        let completed = match &ledger.record.upload_id {
            // The whole file is in memory: one request.
            None => {
                let etag = single_etag(&self.buffer);
                self.store
                    .write_digest(&self.name, &etag, digest)
                    .map_err(s3_error("recording the digest"))?;
                predicted = Some(etag);
                client.put(&self.key, &self.buffer, condition)
            }
            Some(id) => {
                let mut parts: Vec<(u16, String)> = ledger
                    .record
                    .parts
                    .iter()
                    .map(|part| (part.number, part.etag.clone()))
                    .collect();
                let last = if !self.buffer.is_empty() || parts.is_empty() {
                    let number = u16::try_from(parts.len() + 1).map_err(|_| too_many_parts())?;
                    client
                        .upload_part(&self.key, id, number, &self.buffer)
                        .map(|etag| parts.push((number, etag)))
                } else {
                    Ok(())
                };
                last.and_then(|()| {
                    let etags = parts.iter().map(|(_, etag)| etag.as_str());
                    predicted = multipart_etag(etags);
                    if let Some(etag) = &predicted {
                        self.store.write_digest(&self.name, etag, digest)?;
                    }
                    client.complete_multipart(&self.key, id, &parts, condition)
                })
            }
        };
        let etag = match completed {
            Ok(etag) => etag,
            Err(S3Error::PreconditionFailed) => {
                // Either another file holds the name, or the connection this one took over
                // completed this very file first.
                if self.stored_by_earlier_connection(digest) {
                    if let Some(ledger) = self.ledger.take() {
                        self.release_empty(ledger);
                    }
                    return Ok(());
                }
                return Err(StorageError::AlreadyExists);
            }
            Err(error) if is_beyond_repair(&error) => {
                // The multipart upload is gone. Either the connection this one took over
                // (same client file, on another node) still had every byte and completed it
                // first — then the file is stored as the client wants it — or it was swept or
                // aborted, or a part is not the one recorded: resuming would fail the same way,
                // so the next attempt starts over.
                if let Some(ledger) = self.ledger.take() {
                    self.release_empty(ledger);
                }
                if self.stored_by_earlier_connection(digest) {
                    return Ok(());
                }
                return Err(s3_error("completing the upload")(error));
            }
            Err(error) => return Err(s3_error("completing the upload")(error)),
        };
        // A store whose ETags are not the usual MD5s: recorded now instead.
        if predicted.as_ref() != Some(&etag)
            && let Err(error) = self.store.write_digest(&self.name, &etag, digest)
        {
            tracing::warn!(name = %self.name, "could not record the digest of a stored file: {error}");
        }
        if let Some(ledger) = self.ledger.take() {
            self.store.delete_upload_record(&self.name, &ledger.etag);
        }
        Ok(())
    }

    /// Whether the name now holds exactly the file this upload carries, completed by the
    /// connection this one took over.
    fn stored_by_earlier_connection(&self, digest: &Digest) -> bool {
        for _ in 0..STORED_CHECKS {
            let Ok(Some(object)) = self.store.head(&self.name) else {
                return false;
            };
            if self.store.read_digest(&self.name, &object.etag) == Some(*digest) {
                tracing::info!(name = %self.name, "stored meanwhile by the connection this one took over");
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn release_empty(&self, ledger: Ledger) {
        release_empty(&self.store, &self.key, ledger);
    }
}

/// Aborts the multipart upload, if any, and leaves the record released with nothing to
/// resume.
fn release_empty(store: &S3Store, key: &str, ledger: Ledger) {
    if let Some(id) = &ledger.record.upload_id {
        let _ = store.client().abort_multipart(key, id);
    }
    let released = UploadRecord {
        owner: None,
        renewed_ms: now_ms(),
        upload_id: None,
        parts: Vec::new(),
        checkpoint: HashCheckpoint::start(),
        ..ledger.record
    };
    let _ = store.write_upload_record(&released, Some(&ledger.etag));
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // A part still being recorded lands before the name lock is released.
        let _ = self.collect(true);
    }
}

/// One part to send, on a thread of its own.
struct SendPart {
    key: String,
    upload_id: String,
    number: u16,
    bytes: Vec<u8>,
    /// Hash state at the part's end.
    checkpoint: HashCheckpoint,
}

impl SendPart {
    /// Uploads the part (holding `slot` meanwhile), then waits for the part before it to be
    /// recorded (its thread is `previous`; with none, the record is `ledger`) and records this
    /// one: its ETag and the hash state at its end, so the record never claims a part before
    /// an earlier one is in.
    fn send(
        self,
        store: &S3Store,
        slot: Slot,
        ledger: Option<Ledger>,
        previous: Option<JoinHandle<PartOutcome>>,
    ) -> PartOutcome {
        let uploaded =
            store
                .client()
                .upload_part(&self.key, &self.upload_id, self.number, &self.bytes);
        drop(self.bytes);
        drop(slot);
        let (ledger, before) = match previous {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                let panicked = io::Error::other("a part upload thread panicked");
                let error = StorageError::io("uploading a part")(panicked);
                (None, Err(PartFailure::Failed(error)))
            }),
            None => (ledger, Ok(())),
        };
        if before.is_err() {
            return (ledger, before);
        }
        let Some(mut ledger) = ledger else {
            return (None, Err(PartFailure::Lost));
        };
        let etag = match uploaded {
            Ok(etag) => etag,
            Err(error) if is_beyond_repair(&error) => {
                // The multipart upload is gone: a resume would fail the same way, so the
                // record is emptied.
                release_empty(store, &self.key, ledger);
                let error = s3_error("uploading a part")(error);
                return (None, Err(PartFailure::Failed(error)));
            }
            Err(error) => {
                let error = s3_error("uploading a part")(error);
                return (Some(ledger), Err(PartFailure::Failed(error)));
            }
        };
        let mut record = ledger.record.clone();
        record.parts.push(Part {
            number: self.number,
            end: self.checkpoint.offset(),
            etag,
        });
        record.checkpoint = self.checkpoint;
        record.renewed_ms = now_ms();
        let result = write(store, &mut ledger, record);
        (Some(ledger), result)
    }
}

/// Writes `record` over the ledger's version.
fn write(store: &S3Store, ledger: &mut Ledger, record: UploadRecord) -> Result<(), PartFailure> {
    match store.write_upload_record(&record, Some(&ledger.etag)) {
        Ok(Some(etag)) => {
            *ledger = Ledger { record, etag };
            Ok(())
        }
        Ok(None) => Err(PartFailure::Lost),
        Err(error) => Err(PartFailure::Failed(error)),
    }
}

/// Whether completing failed in a way no retry of the same parts can mend.
fn is_beyond_repair(error: &S3Error) -> bool {
    match error {
        S3Error::NotFound => true,
        S3Error::Service { code, .. } => {
            matches!(
                code.as_str(),
                "InvalidPart" | "InvalidPartOrder" | "NoSuchUpload"
            )
        }
        _ => false,
    }
}

fn taken_over() -> StorageError {
    StorageError::TakenOver
}

fn too_many_parts() -> StorageError {
    let error = io::Error::other("the file needs more parts than S3 allows");
    StorageError::io("uploading a part")(error)
}

#[cfg(test)]
mod tests;
