//! The in-memory backend: the folder store's promises kept in memory, with a clock handed in,
//! a model of what is durable, and faults a test can switch on — for the simulator and for the
//! tests that run the real server over a store they control (feature `memory-store`).
//!
//! ```text
//!  MemoryStore (a handle; clones share one machine)
//!     └─ machine: files by name ─────────── durable at commit, removed durably
//!                 partial uploads by key ── data volatile until a checkpoint syncs it
//!                 quota ledger, name locks, boot count
//!                 faults: full after N bytes, latency, lost
//!
//!  crash(): a power cut and a restart. Visible files and durable checkpoints stay; bytes past
//!           the last checkpoint, partial uploads never checkpointed, locks and the uploads
//!           under way are gone (their next call fails; their name is free at once).
//! ```
//!
//! It keeps the folder store's promises, checked by the same tests against both
//! (`store::promises`): a name shows a file only once all its bytes arrived, its digest matched
//! and it is durable; an interrupted upload resumes from its last durable checkpoint; a name
//! that exists is refused unless overwritten, at the start and again at the commit; one upload
//! per name, taken over by the same client file (the folder store's locks); a download reads
//! the version it opened; listings are in name order and hide reserved `.ferry*` names; partial
//! uploads are swept by age, on the store's clock.
//!
//! Where it differs, on purpose: it never reads the system clock; an upload of the same client
//! file does not wait for the old one to stand down unless [`MemoryLimits::takeover_wait`] says
//! so (a single-threaded simulator cannot wait: the old upload is told to stand down and the
//! new request gets `InProgress`, to retry); a checkpoint is durable as soon as it is started
//! (the folder store finishes it on a thread of its own), and a full disk never fails one;
//! a commit's digest is durable with its file (the folder store's unsynced record may be lost in
//! a crash, which only costs a later download the hashing); folders exist only while a file is
//! in them.
//!
//! ```
//! # use std::sync::Arc;
//! use ferry_server::memory::{Faults, ManualClock, MemoryLimits, MemoryStore};
//! use ferry_server::Store;
//!
//! let clock = ManualClock::default();
//! let store = MemoryStore::new(MemoryLimits::default(), clock.clock());
//! store.set_faults(Faults { full_after: Some(1 << 20), ..Faults::default() });
//! let shared: Arc<dyn Store> = Arc::new(store.clone());
//! // ... run a server session over `shared`, then cut the power:
//! store.crash();
//! ```

mod clock;
mod disk;
mod faults;
mod rename;
mod upload;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock};
pub use disk::StoredFile;
pub use faults::{CORRUPTED_BYTE, Faults};

use std::fmt;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferry_protocol::{Digest, HashCheckpoint, PutRequest, SourceTag, Timestamp, is_reserved};

use crate::config::ServerConfig;
use crate::store::error::StorageError;
use crate::store::folder::usage::Usage;
use crate::store::locks::UploadLocks;
use crate::store::{Entry, FileContent, Held, OpenedFile, PartialKey, Store, Upload};
use disk::Disk;

/// Entries handed to a listing's callback at a time.
const LIST_PAGE: usize = 1000;

/// The in-memory store's limits, fixed for its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Most bytes stored, visible files and partial uploads together, counting the bytes an
    /// accepted upload has yet to receive (the folder store's [`ServerConfig::quota`]).
    pub quota: Option<u64>,
    /// Size of the simulated disk: an upload needing more than its free space is refused with
    /// [`StorageError::DiskFull`] before any data moves, and a write past it fails with
    /// [`StorageError::NoSpace`]. `None`: unbounded.
    pub capacity: Option<u64>,
    /// How long an upload of the same client file (name and tag) waits for the upload holding
    /// its name to stand down. Zero, the default, never blocks: the holder is told to stand down
    /// and the new request gets [`StorageError::InProgress`] until it has.
    pub takeover_wait: Duration,
}

/// The machine behind a [`MemoryStore`]: what it holds and what is wrong with it.
#[derive(Debug)]
struct Machine {
    disk: Disk,
    usage: Usage,
    locks: UploadLocks,
    /// Power cuts survived so far: an upload begun before the last one is dead.
    boots: u64,
    faults: Faults,
    /// Simulated time the calls since the last [`MemoryStore::poll_delay`] cost.
    delay: Duration,
    /// Commits made under the sabotage [`Faults::volatile_commits`]: the name, the version it
    /// published and the file it replaced, which a crash brings back.
    volatile: Vec<(String, u64, Option<StoredFile>)>,
}

impl Machine {
    /// Charges one call.
    fn charge_call(&mut self) {
        self.delay = self.delay.saturating_add(self.faults.latency);
    }

    /// Charges moving `bytes` bytes of file data, on top of the call.
    fn charge_data(&mut self, bytes: usize) {
        self.delay = self.delay.saturating_add(self.faults.data_cost(bytes));
    }

    /// Bytes a write can still store before the disk is full.
    fn room(&self, limits: &MemoryLimits) -> u64 {
        let free = limits.capacity.map_or(u64::MAX, |capacity| {
            capacity.saturating_sub(self.disk.bytes())
        });
        free.min(self.faults.full_after.unwrap_or(u64::MAX))
    }
}

struct Shared {
    machine: Mutex<Machine>,
    limits: MemoryLimits,
    clock: Clock,
}

/// A [`Store`] in memory, deterministic, with faults on demand. Cheap to clone: clones are
/// handles on the same store, so a test keeps one to inspect, fault and crash while a server
/// runs over another.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never waits: a handle may be printed while its machine is in use.
        let Ok(machine) = self.shared.machine.try_lock() else {
            return f.write_str("MemoryStore { <in use> }");
        };
        f.debug_struct("MemoryStore")
            .field("files", &machine.disk.files.len())
            .field("partials", &machine.disk.partials.len())
            .field("boots", &machine.boots)
            .field("faults", &machine.faults)
            .finish()
    }
}

impl MemoryStore {
    /// An empty, healthy store with `limits`, reading the time from `clock`.
    pub fn new(limits: MemoryLimits, clock: Clock) -> MemoryStore {
        MemoryStore {
            shared: Arc::new(Shared {
                machine: Mutex::new(Machine {
                    disk: Disk::default(),
                    usage: Usage::new(0, limits.quota),
                    locks: UploadLocks::default(),
                    boots: 0,
                    faults: Faults::default(),
                    delay: Duration::ZERO,
                    volatile: Vec::new(),
                }),
                limits,
                clock,
            }),
        }
    }

    /// The faults in force now (with [`Faults::full_after`] counted down by the writes since).
    pub fn faults(&self) -> Faults {
        self.machine().faults
    }

    /// Puts `faults` in force from the next call on.
    pub fn set_faults(&self, faults: Faults) {
        self.machine().faults = faults;
    }

    /// The simulated time the calls since the last poll cost under [`Faults::latency`] and
    /// [`Faults::latency_per_mib`]; zero for a fast store. The simulator adds it to its clock.
    #[must_use]
    pub fn poll_delay(&self) -> Duration {
        std::mem::take(&mut self.machine().delay)
    }

    /// A power cut and a restart: keeps the visible files and each partial upload's last
    /// durable checkpoint with the bytes it covers, and drops the rest — bytes written since,
    /// partial uploads never checkpointed, name locks. Uploads begun before fail from now on
    /// (the client resumes with a new request). Faults stay as they were set.
    pub fn crash(&self) {
        let mut machine = self.machine();
        machine.disk.power_cut();
        for (name, version, before) in std::mem::take(&mut machine.volatile).into_iter().rev() {
            machine.disk.undo_publish(&name, version, before);
        }
        machine.usage = Usage::new(machine.disk.bytes(), self.shared.limits.quota);
        machine.locks = UploadLocks::default();
        machine.boots += 1;
        machine.delay = Duration::ZERO;
    }

    /// Places a file under `name` as someone outside the server would (a local user, another
    /// node): durable at once, with no digest recorded (a download computes it) and none of an
    /// upload's checks, so a test can set up a store or race an upload. Replaces a file of that
    /// name.
    pub fn insert(&self, name: &str, bytes: &[u8]) {
        let now = self.now();
        let mut machine = self.machine();
        let replaced = machine.disk.publish(name, bytes.to_vec(), None, now);
        machine.usage.release(replaced.unwrap_or(0));
        machine.usage.add(bytes.len() as u64);
    }

    /// The visible file `name`, if there is one.
    pub fn file(&self, name: &str) -> Option<StoredFile> {
        self.machine().disk.files.get(name).cloned()
    }

    /// The names of every visible file, in order.
    pub fn names(&self) -> Vec<String> {
        self.machine().disk.files.keys().cloned().collect()
    }

    /// Uploads under way now (each holds its name's lock).
    pub fn uploads_under_way(&self) -> usize {
        // Never the locks' mutex under the machine's: a sweep takes them the other way round.
        let locks = self.machine().locks.clone();
        locks.held_count()
    }

    /// Bytes held: visible files and partial uploads' data.
    pub fn bytes_held(&self) -> u64 {
        self.machine().disk.bytes()
    }

    /// The time on the store's clock.
    fn now(&self) -> Timestamp {
        (self.shared.clock)()
    }

    /// The machine, whatever state a panicking thread left it in.
    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.shared
            .machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The machine for a call `during` something: charged its latency, refused if lost.
    fn enter(&self, during: &'static str) -> Result<MutexGuard<'_, Machine>, StorageError> {
        let mut machine = self.machine();
        machine.charge_call();
        if machine.faults.lost {
            return Err(faults::unreachable(during));
        }
        Ok(machine)
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn open_upload(
        &self,
        _config: &ServerConfig,
        request: &PutRequest,
    ) -> Result<(Upload, HashCheckpoint), StorageError> {
        upload::begin(self, request)
    }

    fn open_for_download(&self, name: &str) -> Result<OpenedFile, StorageError> {
        let machine = self.enter("opening a file to send")?;
        machine.disk.check_place(name)?;
        let file = machine
            .disk
            .files
            .get(name)
            .ok_or_else(|| StorageError::NotFound(name.to_owned()))?;
        Ok(OpenedFile {
            size: file.bytes.len() as u64,
            digest: file.digest,
            content: Box::new(MemoryFile {
                store: self.clone(),
                name: name.to_owned(),
                file: file.clone(),
            }),
        })
    }

    fn remove(&self, name: &str) -> Result<u64, StorageError> {
        let mut machine = self.enter("removing a file")?;
        machine.disk.check_place(name)?;
        let file = machine
            .disk
            .files
            .remove(name)
            .ok_or_else(|| StorageError::NotFound(name.to_owned()))?;
        let size = file.bytes.len() as u64;
        machine.usage.release(size);
        Ok(size)
    }

    fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<(), StorageError> {
        rename::rename(self, from, to, overwrite)
    }

    fn query(&self, name: &str, tag: &SourceTag) -> Result<Held, StorageError> {
        let machine = self.enter("looking up a file")?;
        machine.disk.check_place(name)?;
        let stored = machine.disk.files.get(name);
        let key = PartialKey::new(name, tag);
        Ok(Held {
            stored_size: stored.map(|file| file.bytes.len() as u64),
            stored_digest: stored.and_then(|file| file.digest),
            partial_offset: machine
                .disk
                .resumable(&key, name, tag)
                .map(|(checkpoint, _)| checkpoint.offset()),
        })
    }

    fn list(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(&[Entry]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        let entries: Vec<Entry> = {
            let machine = self.enter("listing the root")?;
            machine
                .disk
                .files
                .range(prefix.to_owned()..)
                .take_while(|(name, _)| name.starts_with(prefix))
                .filter(|(name, _)| !is_reserved(name))
                .map(|(name, file)| Entry {
                    name: name.clone(),
                    size: file.bytes.len() as u64,
                    modified_ms: file.modified.as_micros() / 1000,
                })
                .collect()
        };
        for batch in entries.chunks(LIST_PAGE) {
            if page(batch).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn sweep_staging(&self, max_age: Duration) {
        let now = self.now();
        let (old, locks) = {
            let Ok(machine) = self.enter("sweeping the staging area") else {
                return;
            };
            let old: Vec<PartialKey> = machine
                .disk
                .partials
                .iter()
                .filter(|(_, partial)| now.saturating_since(partial.touched) > max_age)
                .map(|(key, _)| PartialKey(key.clone()))
                .collect();
            (old, machine.locks.clone())
        };
        for key in old {
            // No upload can start using the partial while it is removed.
            locks.unless_busy(&key, || {
                let mut machine = self.machine();
                let freed = machine.disk.discard(&key);
                machine.usage.release(freed);
            });
        }
    }

    /// One at a time, so that the simulator's runs stay the same for the same seed.
    fn commits_in_parallel(&self) -> bool {
        false
    }
}

/// A stored file opened for download: this version's bytes, even if the name is replaced.
struct MemoryFile {
    store: MemoryStore,
    name: String,
    file: StoredFile,
}

impl FileContent for MemoryFile {
    fn read_from(&mut self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        if self.store.enter("reading a file").is_err() {
            return Err(faults::unreachable_io());
        }
        let start = usize::try_from(offset)
            .ok()
            .filter(|start| *start <= self.file.bytes.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset past the end"))?;
        Ok(Box::new(MemoryReader {
            store: self.store.clone(),
            bytes: Arc::clone(&self.file.bytes),
            position: start,
        }))
    }

    fn remember_digest(&self, digest: &Digest) {
        let mut machine = self.store.machine();
        if machine.faults.lost {
            return;
        }
        if let Some(file) = machine.disk.files.get_mut(&self.name)
            && file.version == self.file.version
        {
            file.digest = Some(*digest);
        }
    }
}

/// Reads a version's bytes, charging the store's latency and failing once it is lost.
struct MemoryReader {
    store: MemoryStore,
    bytes: Arc<Vec<u8>>,
    position: usize,
}

impl Read for MemoryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut machine = self.store.machine();
        if machine.faults.lost {
            return Err(faults::unreachable_io());
        }
        let mut rest = self.bytes.get(self.position..).unwrap_or_default();
        let n = rest.read(buf)?;
        self.position += n;
        machine.charge_data(n);
        Ok(n)
    }
}
